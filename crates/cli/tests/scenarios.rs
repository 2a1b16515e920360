//! Runs statemachines/cutover.asl.json for every example and asserts the outcome, the exact final
//! DNS, the audit trail, that no side effect happened twice, and that duplicate delivery of every
//! Task changes none of that.

use cutover_cli::local::LocalRun;
use cutover_cli::{load_plan, load_world, run_local, RunOptions};
use cutover_core::model::{RecordSet, RecordType, Weights};
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

fn run(name: &str, duplicate_delivery: bool) -> LocalRun {
    let dir = example(name);
    let plan = load_plan(&dir.join("plan.yaml")).expect("plan");
    let world = load_world(&dir.join("world.yaml")).expect("world");
    run_local(
        &plan,
        &world,
        &RunOptions {
            duplicate_delivery,
            ..Default::default()
        },
    )
    .expect("a simulated run needs no endpoint")
}

fn weighted(name: &str, ty: RecordType, id: &str, w: u32, value: &str) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: ty,
        set_identifier: Some(id.into()),
        weight: Some(w),
        ttl: Some(60),
        values: vec![value.into()],
        alias_target: None,
        health_check_id: None,
        failover: None,
        region: None,
        geo_location: None,
        multi_value_answer: None,
        cidr_routing_config: None,
    }
}

fn original_orders_record() -> Vec<RecordSet> {
    vec![RecordSet {
        name: "orders.example.com.".into(),
        record_type: RecordType::CNAME,
        set_identifier: None,
        weight: None,
        ttl: Some(300),
        values: vec!["blue-lb.example.com".into()],
        alias_target: None,
        health_check_id: None,
        failover: None,
        region: None,
        geo_location: None,
        multi_value_answer: None,
        cidr_routing_config: None,
    }]
}

fn events(run: &LocalRun) -> Vec<String> {
    run.report
        .timeline
        .iter()
        .map(|e| e.event.clone())
        .collect()
}

fn shifted_weights(run: &LocalRun) -> Vec<Weights> {
    run.report
        .timeline
        .iter()
        .filter(|e| e.event == "weights-changed")
        .filter_map(|e| e.weights)
        .collect()
}

/// The audit facts that must not depend on how often a Task was delivered. With injected faults
/// the extra deliveries also meet throttling, so only the times may differ there — and with them
/// the lag values, which are read from the CloudWatch period the sample time falls in.
fn facts(run: &LocalRun, with_time: bool) -> Vec<String> {
    run.report
        .timeline
        .iter()
        .map(|e| {
            let (t, lag) = if with_time {
                (e.t.to_string(), format!("{:?}", e.lag_seconds))
            } else {
                (String::new(), format!("{:?}", e.lag_seconds.map(|_| "lag")))
            };
            format!(
                "{t} {} {} {:?} {lag} {:?} {:?}",
                e.state, e.event, e.weights, e.healthy, e.actor
            )
        })
        .collect()
}

fn assert_common(run: &LocalRun) {
    let app = &run.report.application;
    assert_eq!(
        run.store.lock_holder(app),
        None,
        "the application lock is released on every path"
    );
    let keys: Vec<String> = run
        .report
        .timeline
        .iter()
        .map(|e| format!("{}/{}/{}", e.t, e.state, e.event))
        .collect();
    assert_eq!(events(run).first().map(String::as_str), Some("validated"));
    assert_eq!(
        events(run).last().map(String::as_str),
        Some("run-closed"),
        "{keys:?}"
    );
}

#[test]
fn dms_happy_path_completes_at_green_100() {
    let r = run("dms-happy-path", false);
    assert_eq!(r.report.outcome, "completed");
    assert_eq!(r.report.error, None);
    assert_eq!(r.report.exit_code(), 0);
    assert_eq!(
        r.report.dns,
        vec![
            weighted(
                "orders.example.com.",
                RecordType::CNAME,
                "blue",
                0,
                "blue-lb.example.com"
            ),
            weighted(
                "orders.example.com.",
                RecordType::CNAME,
                "green",
                100,
                "green-lb.example.com"
            ),
        ]
    );
    assert_eq!(
        shifted_weights(&r),
        vec![
            Weights {
                blue: 90,
                green: 10
            },
            Weights {
                blue: 50,
                green: 50
            },
            Weights {
                blue: 0,
                green: 100
            }
        ]
    );
    let w = &r.report.world;
    assert_eq!(
        (w.dns_changes_applied, w.dms_starts, w.dms_stops),
        (3, 1, 0)
    );
    assert_eq!(r.report.approvals.len(), 1);
    let a = &r.report.approvals[0];
    assert_eq!(
        (a.gate.as_str(), a.decision.as_str(), a.by.as_deref()),
        ("before-50", "approve", Some("alice@example.com"))
    );
    // The gate opens after the 10% bake; alice answers 120 s later; the shift follows at once.
    let opened = r
        .report
        .timeline
        .iter()
        .find(|e| e.event == "approval-requested")
        .unwrap()
        .t;
    assert_eq!(a.at, Some(opened + 120.0));
    let shift50 = r
        .report
        .timeline
        .iter()
        .find(|e| {
            e.event == "weights-changed"
                && e.weights
                    == Some(Weights {
                        blue: 50,
                        green: 50,
                    })
        })
        .unwrap();
    // The shift reads the records, then sends the change in the next slot of the account's
    // Route 53 budget (five a second).
    assert!(
        (opened + 120.0..=opened + 120.5).contains(&shift50.t),
        "{} against {}",
        shift50.t,
        opened + 120.0
    );
    // Lag converged on the third consecutive sample under 30 s, at t = 840 s; the records are
    // read then, and the change goes in the budget's next slot, 0.2 s later.
    let first_shift = r
        .report
        .timeline
        .iter()
        .find(|e| e.event == "weights-changed")
        .unwrap();
    assert_eq!(first_shift.t, 840.2);
    // Every bake window ran its full length with health checks every 30 s.
    let health = r
        .report
        .timeline
        .iter()
        .filter(|e| e.state == "RunHealthCheck")
        .count();
    assert_eq!(health, 20 + 20 + 30);
    assert!(
        r.report.simulated_seconds >= 3000.0 && r.report.simulated_seconds < 3600.0,
        "{}",
        r.report.simulated_seconds
    );
    assert_common(&r);
}

#[test]
fn mgn_happy_path_launches_once_and_never_finalizes() {
    let r = run("mgn-happy-path", false);
    assert_eq!(r.report.outcome, "completed");
    assert_eq!(
        r.report.dns,
        vec![
            weighted(
                "billing.example.com.",
                RecordType::A,
                "aws",
                100,
                "203.0.113.20"
            ),
            weighted(
                "billing.example.com.",
                RecordType::A,
                "old-dc",
                0,
                "198.51.100.10"
            ),
        ]
    );
    let w = &r.report.world;
    assert_eq!(
        (w.mgn_cutovers, w.mgn_finalizes, w.dns_changes_applied),
        (1, 0, 2)
    );
    // lagDuration (120 s falling to 5 s at t = 300) is under 60 s from the sample at t = 180 s; two in a row open the gate.
    let lags: Vec<f64> = r
        .report
        .timeline
        .iter()
        .filter_map(|e| {
            (e.event == "lag-sampled")
                .then_some(e.lag_seconds)
                .flatten()
        })
        .collect();
    assert_eq!(lags, vec![97.0, 74.0, 51.0, 28.0]);
    assert_common(&r);
}

#[test]
fn health_failure_rolls_back_to_the_exact_original_record() {
    let r = run("health-failure-rollback", false);
    assert_eq!(r.report.outcome, "rolled_back");
    assert_eq!(r.report.error.as_deref(), Some("HealthCheckFailed"));
    assert_eq!(r.report.exit_code(), 3);
    assert_eq!(
        r.report.dns,
        original_orders_record(),
        "a simple record comes back as the same simple record"
    );
    let ev = events(&r);
    let unhealthy = ev.iter().filter(|e| *e == "unhealthy").count();
    assert_eq!(unhealthy, 2, "failureThreshold is 2 consecutive rounds");
    let rb = ev
        .iter()
        .position(|e| e == "rollback-submitted")
        .expect("rolled back");
    assert!(
        ev[rb..].contains(&"dns-in-sync".to_string()),
        "rollback waits for INSYNC"
    );
    assert_eq!(
        r.report.world.dns_changes_applied, 3,
        "two shifts and one restore, nothing twice"
    );
    assert_eq!(
        r.report.world.dms_stops, 0,
        "rollback never stops replication"
    );
    assert_common(&r);
}

#[test]
fn lag_that_never_converges_aborts_with_dns_untouched() {
    let r = run("lag-never-converges", false);
    assert_eq!(r.report.outcome, "aborted");
    assert_eq!(r.report.error.as_deref(), Some("LagNotConverged"));
    assert_eq!(r.report.exit_code(), 4);
    assert_eq!(r.report.dns, original_orders_record());
    assert_eq!(r.report.world.dns_changes_applied, 0);
    assert_eq!(
        r.report.world.calls.get("route53.ChangeResourceRecordSets"),
        None,
        "no change was even attempted"
    );
    assert!(r.report.simulated_seconds >= 1800.0 && r.report.simulated_seconds < 1900.0);
    assert!(!events(&r).contains(&"rollback-submitted".to_string()));
    assert_common(&r);
}

#[test]
fn rejected_approval_rolls_back_the_first_step() {
    let r = run("approval-rejected", false);
    assert_eq!(r.report.outcome, "rolled_back");
    assert_eq!(r.report.error.as_deref(), Some("ApprovalRejected"));
    assert_eq!(r.report.dns, original_orders_record());
    assert_eq!(
        shifted_weights(&r),
        vec![Weights {
            blue: 90,
            green: 10
        }],
        "50% never happened"
    );
    let a = &r.report.approvals[0];
    assert_eq!(
        (a.decision.as_str(), a.by.as_deref(), a.reason.as_deref()),
        (
            "reject",
            Some("bob@example.com"),
            Some("error budget spent this week")
        )
    );
    assert!(r
        .report
        .cause
        .as_deref()
        .unwrap_or_default()
        .contains("bob@example.com"));
    assert_common(&r);
}

#[test]
fn route53_throttling_is_absorbed() {
    let r = run("route53-throttling", false);
    let happy = run("dms-happy-path", false);
    assert_eq!(r.report.outcome, "completed");
    assert_eq!(r.report.dns, happy.report.dns);
    assert_eq!(
        r.report.world.faults_injected, 8,
        "every injected fault fired"
    );
    assert_eq!(r.report.world.dns_changes_applied, 3);
    assert!(
        r.report.state_transitions > happy.report.state_transitions,
        "retries are transitions too"
    );
    assert_common(&r);
}

#[test]
fn duplicate_delivery_changes_nothing() {
    for name in [
        "dms-happy-path",
        "mgn-happy-path",
        "health-failure-rollback",
        "lag-never-converges",
        "approval-rejected",
        "route53-throttling",
    ] {
        let once = run(name, false);
        let twice = run(name, true);
        assert_eq!(twice.report.outcome, once.report.outcome, "{name}");
        assert_eq!(twice.report.dns, once.report.dns, "{name}");
        let with_time = once.report.world.faults_injected == 0;
        assert_eq!(
            facts(&twice, false),
            facts(&once, false),
            "{name}: same audit facts"
        );
        if with_time {
            // The same times, but for the redelivered calls' own slots of the account's Route 53
            // budget (0.2 s each): a redelivery adds no wait of its own.
            let times = |r: &LocalRun| r.report.timeline.iter().map(|e| e.t).collect::<Vec<_>>();
            let lags = |r: &LocalRun| {
                r.report
                    .timeline
                    .iter()
                    .map(|e| e.lag_seconds)
                    .collect::<Vec<_>>()
            };
            assert_eq!(lags(&twice), lags(&once), "{name}: same lag samples");
            for (a, b) in times(&twice).iter().zip(times(&once)) {
                assert!((b..=b + 5.0).contains(a), "{name}: at {a} instead of {b}");
            }
        }
        let (a, b) = (&once.report.world, &twice.report.world);
        assert_eq!(
            (
                b.dns_changes_applied,
                b.dms_starts,
                b.dms_stops,
                b.mgn_cutovers,
                b.mgn_finalizes
            ),
            (
                a.dns_changes_applied,
                a.dms_starts,
                a.dms_stops,
                a.mgn_cutovers,
                a.mgn_finalizes
            ),
            "{name}: no side effect twice"
        );
        let notices = (once.world.notices().len(), twice.world.notices().len());
        assert_eq!(
            notices.0, notices.1,
            "{name}: a human is told once per gate"
        );
    }
}

#[test]
fn no_task_token_leaves_the_backend() {
    for name in ["dms-happy-path", "approval-rejected"] {
        let r = run(name, false);
        let report = serde_json::to_string(&r.report).unwrap();
        let notices = serde_json::to_string(&r.world.notices()).unwrap();
        let history = serde_json::to_string(&r.execution.history).unwrap();
        let tokens = &r.tokens;
        assert!(
            !tokens.is_empty(),
            "the engine handed out tokens for the gates"
        );
        for t in tokens {
            assert!(!report.contains(t.as_str()), "{name}: token in the report");
            assert!(
                !notices.contains(t.as_str()),
                "{name}: token in a notification"
            );
            assert!(
                !history.contains(t.as_str()),
                "{name}: token in the execution history"
            );
        }
    }
}

/// Every report carries its cost on AWS; the DMS example stays under a cent.
#[test]
fn reports_estimate_their_cost() {
    let r = run("dms-happy-path", false);
    let c = &r.report.cost;
    assert_eq!(c.state_transitions, r.report.state_transitions);
    assert!(c.lambda_invocations > 20, "{}", c.lambda_invocations);
    assert!(
        (c.step_functions_usd - r.report.state_transitions as f64 * 0.000_025).abs() < 1e-12,
        "$0.025 per 1,000 transitions"
    );
    assert!((r.report.estimated_cost_usd - (c.step_functions_usd + c.lambda_usd)).abs() < 1e-12);
    assert!(
        r.report.estimated_cost_usd > 0.0 && r.report.estimated_cost_usd <= 0.01,
        "{}",
        r.report.estimated_cost_usd
    );
}
