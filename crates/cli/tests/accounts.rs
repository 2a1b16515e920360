//! Several accounts of a landing zone (examples/landing-zone): each plan section reaches its
//! account through the role it names, credentials are refreshed before they expire, a resource
//! of another account is invisible without its role and refused at pre-flight naming the missing
//! `roleArn`, a role that does not trust the stack (or wants another external ID) is refused
//! naming it, `sts.AssumeRole` faults are retried, and Route 53's quota is per account.

mod common;
use common::{edit, green_weight, run, text};
use cutover_core::accounts::Role;
use cutover_core::model::RecordType;
use cutover_core::ports::TrafficRouter;
use std::sync::Arc;

fn landing_zone(
    plan_edits: &[(&str, &str)],
    world_edits: &[(&str, &str)],
) -> cutover_cli::local::LocalRun {
    let plan = edit(text("landing-zone", "plan.yaml"), plan_edits);
    let world = edit(text("landing-zone", "world.yaml"), world_edits);
    run(&plan, &world, false)
}

fn calls(r: &cutover_cli::local::LocalRun, op: &str) -> u64 {
    r.report.world.calls.get(op).copied().unwrap_or(0)
}

fn problems(r: &cutover_cli::local::LocalRun) -> String {
    format!("{:?} {:?}", r.report.error, r.report.cause)
}

/// Runs `f` over the landing zone's world on a paused runtime (its virtual clock).
fn paused<F, Fut>(f: F)
where
    F: FnOnce(Arc<cutover_sim::World>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let spec = cutover_sim::WorldSpec::parse(&text("landing-zone", "world.yaml"), false).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let clock = cutover_sim::SimClock::start(spec.start_time);
            f(Arc::new(cutover_sim::World::new(spec, clock))).await
        })
}

const DNS_ROLE: &str = "  roleArn: \"arn:aws:iam::111111111111:role/cutover-member-dns\"\n";

#[test]
fn each_section_reaches_its_account_and_the_credentials_are_refreshed() {
    let r = landing_zone(&[], &[]);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.error);
    // The zone of the networking account now sends everything to green.
    assert_eq!(green_weight(&r), 100);
    let records = r
        .world
        .dns("Z0123456789", "orders.example.com", RecordType::CNAME);
    assert!(records
        .iter()
        .any(|x| x.weight == Some(100) && x.values == ["green-lb.example.com"]));
    // Three roles, each assumed at the start and once more when its hour ran out: the lag gate
    // alone waits longer than the credentials last.
    assert!(r.report.simulated_seconds > 3600.0);
    assert_eq!(calls(&r, "sts.AssumeRole"), 6);
    assert_eq!(calls(&r, "dms.StartReplicationTask"), 1);
}

#[test]
fn a_zone_of_another_account_without_its_role_is_refused_at_preflight_naming_dns_role_arn() {
    let r = landing_zone(&[(DNS_ROLE, "")], &[]);
    assert_eq!(r.report.outcome, "failed");
    let p = problems(&r);
    assert!(
        p.contains("dns.hostedZoneId: no hosted zone Z0123456789"),
        "{p}"
    );
    assert!(p.contains("dns.roleArn"), "{p}");
    assert!(
        p.contains("123456789012"),
        "names the account looked in: {p}"
    );
    assert_eq!(calls(&r, "route53.ChangeResourceRecordSets"), 0);
    assert_eq!(calls(&r, "dms.StartReplicationTask"), 0);
}

#[test]
fn a_task_or_alarm_of_another_account_without_its_role_is_refused_naming_the_section() {
    let r = landing_zone(
        &[(
            "  roleArn: \"arn:aws:iam::222222222222:role/cutover-member-replication\"\n  externalId: orders-cutover\n",
            "",
        )],
        &[],
    );
    assert_eq!(r.report.outcome, "failed");
    let p = problems(&r);
    assert!(p.contains("replication.taskArn: no DMS task"), "{p}");
    assert!(p.contains("replication.roleArn"), "{p}");

    let r = landing_zone(
        &[(
            "  roleArn: \"arn:aws:iam::222222222222:role/cutover-member-health\"\n  externalId: orders-cutover\n",
            "",
        )],
        &[],
    );
    assert_eq!(r.report.outcome, "failed");
    let p = problems(&r);
    assert!(p.contains("health.alarms"), "{p}");
    assert!(p.contains("health.roleArn"), "{p}");
    assert_eq!(calls(&r, "route53.ChangeResourceRecordSets"), 0);
}

#[test]
fn a_role_that_does_not_trust_the_stack_or_wants_another_external_id_is_refused_by_name() {
    let r = landing_zone(
        &[],
        &[(
            "role/cutover-member-dns\", trustsAccount: \"123456789012\"",
            "role/cutover-member-dns\", trustsAccount: \"999999999999\"",
        )],
    );
    assert_eq!(r.report.outcome, "failed");
    let p = problems(&r);
    assert!(
        p.contains(
            "dns.roleArn: arn:aws:iam::111111111111:role/cutover-member-dns cannot be assumed"
        ),
        "{p}"
    );
    assert_eq!(
        calls(&r, "route53.ListResourceRecordSets"),
        0,
        "nothing asked of the zone"
    );

    let r = landing_zone(
        &[(
            "  externalId: orders-cutover\n  maxLag",
            "  externalId: someone-else\n  maxLag",
        )],
        &[],
    );
    assert_eq!(r.report.outcome, "failed");
    let p = problems(&r);
    assert!(p.contains("replication.roleArn"), "{p}");
    assert!(p.contains("replication.externalId"), "{p}");
    assert_eq!(calls(&r, "dms.StartReplicationTask"), 0);
}

#[test]
fn a_throttled_assume_role_is_retried() {
    let r = landing_zone(
        &[],
        &[(
            "startTime:",
            "faults: [{operation: sts.AssumeRole, error: Throttling, times: 2}]\nstartTime:",
        )],
    );
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.error);
    assert_eq!(r.report.world.faults_injected, 2);
}

#[test]
fn a_world_naming_a_role_outside_its_account_or_a_bad_account_is_refused_by_field() {
    let world = edit(
        text("landing-zone", "world.yaml"),
        &[
            (
                "- {arn: \"arn:aws:iam::111111111111:role",
                "- {arn: \"arn:aws:iam::333333333333:role",
            ),
            (
                "account: \"111111111111\"\n      records",
                "account: \"1111\"\n      records",
            ),
        ],
    );
    let v = cutover_sim::WorldSpec::parse(&world, false)
        .unwrap_err()
        .violations();
    let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
    assert!(fields.contains(&"accounts[0].roles[0].arn"), "{v:?}");
    assert!(fields.contains(&"route53.zones[0].account"), "{v:?}");
}

#[test]
fn route53_counts_its_quota_per_account() {
    paused(|world| async move {
        let networking = world
            .assume_as(&Role {
                arn: "arn:aws:iam::111111111111:role/cutover-member-dns".into(),
                external_id: None,
            })
            .await
            .unwrap();
        let home = world.home();
        // The stack's account spends its five requests of this second (on a zone it cannot
        // see: still requests), then is throttled ...
        for _ in 0..5 {
            let e = home
                .records("Z0123456789", "orders.example.com", RecordType::CNAME)
                .await
                .unwrap_err();
            assert_eq!(e.code, "NoSuchHostedZone");
        }
        let e = home
            .records("Z0123456789", "orders.example.com", RecordType::CNAME)
            .await
            .unwrap_err();
        assert_eq!(e.code, "Throttling");
        // ... while the networking account still has its own five.
        for _ in 0..5 {
            networking
                .router
                .records("Z0123456789", "orders.example.com", RecordType::CNAME)
                .await
                .unwrap();
        }
        let e = networking
            .router
            .records("Z0123456789", "orders.example.com", RecordType::CNAME)
            .await
            .unwrap_err();
        assert_eq!(e.code, "Throttling");
    });
}

#[test]
fn assumed_credentials_expire_after_an_hour() {
    paused(|world| async move {
        let r = world
            .assume_as(&Role {
                arn: "arn:aws:iam::111111111111:role/cutover-member-dns".into(),
                external_id: None,
            })
            .await
            .unwrap();
        r.router
            .records("Z0123456789", "orders.example.com", RecordType::CNAME)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(3601)).await;
        let e = r
            .router
            .records("Z0123456789", "orders.example.com", RecordType::CNAME)
            .await
            .unwrap_err();
        assert_eq!(e.code, "ExpiredToken");
    });
}

/// Cutovers spread over five accounts' zones share each account's Route 53 budget apart: a
/// hundred applications of examples/landing-zone-1000 at once, none throttled, none failed, and
/// every account's budget spent in full while its changes wait (docs/performance.md).
#[test]
fn a_wave_across_five_accounts_uses_each_accounts_route53_budget_apart() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/landing-zone-1000");
    let mut waves = cutover_cli::calendar::load_waves(&dir.join("waves")).unwrap();
    waves[0].applications.truncate(100);
    let world = cutover_cli::load_world(&dir.join("world.yaml")).unwrap();
    let start = world.start_time;
    let r = cutover_cli::calendar::run_calendar_local(
        &waves,
        &world,
        &[start],
        &cutover_cli::RunOptions::default(),
    )
    .unwrap();
    let f = &r.firings[0];
    assert_eq!(f.outcome, "completed", "{:?}", f.error);
    assert_eq!(f.applications.len(), 100);
    let members: Vec<&String> = r
        .route53_by_account
        .keys()
        .filter(|a| a.as_str() != "123456789012")
        .collect();
    assert_eq!(members.len(), 5, "{:?}", r.route53_by_account.keys());
    for (account, u) in &r.route53_by_account {
        assert_eq!(u.throttled, 0, "{account}: {u:?}");
        if u.waiting_seconds > 0 {
            assert!(
                u.budget_used_while_waiting.unwrap_or(0.0) >= 0.9,
                "{account}: {u:?}"
            );
        }
    }
    assert!(
        r.route53_by_account.values().any(|u| u.waiting_seconds > 0),
        "changes queued for some account's budget"
    );
}
