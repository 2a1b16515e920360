//! MGN applications of several servers (examples/mgn-three-tier): every server ready before
//! anything starts, the lag gate held by the slowest, one StartCutover for all, each instance
//! booted before traffic moves, one failed launch stopping the run with DNS untouched, finalize
//! covering every server, and the report listing each.

mod common;
use common::{edit, first, happened, run, text};
use cutover_core::plan::Plan;

const A1: &str = "s-0000000000000a001";
const A2: &str = "s-0000000000000a002";
const A3: &str = "s-0000000000000a003";

fn three_tier(world_edits: &[(&str, &str)]) -> cutover_cli::local::LocalRun {
    let plan = text("mgn-three-tier", "plan.yaml");
    let world = edit(text("mgn-three-tier", "world.yaml"), world_edits);
    run(&plan, &world, false)
}

/// DNS untouched: the one simple A record to the old data centre.
fn blue_only(r: &cutover_cli::local::LocalRun) -> bool {
    r.report.dns.len() == 1
        && r.report.dns[0].values == vec!["198.51.100.30".to_string()]
        && r.report.dns[0].weight.is_none()
}

#[test]
fn three_servers_launch_together_once_the_slowest_caught_up_and_all_are_finalized() {
    let r = three_tier(&[]);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.error);
    let w = &r.report.world;
    assert_eq!(w.mgn_cutovers, 1, "one StartCutover for the three servers");
    assert_eq!(w.mgn_instances, 3);
    assert_eq!(w.mgn_finalizes, 3, "FinalizeCutover for each server");
    // a003's lag falls from 900 s to 30 s over ten minutes: under 60 s only after t = 579 s.
    // The gate (two good samples in a row) cannot open, nor the launch happen, before that.
    let launched = first(&r, "cutover-instance-launched");
    assert!(
        launched > 579.0,
        "launched at {launched} s, before a003 caught up"
    );
    // Green moves only once the slowest instance (a003, 300 s) has booted.
    let green = first(&r, "green-launched");
    assert!(
        green >= launched + 300.0,
        "green at {green} s, launch at {launched} s"
    );
    let servers: Vec<_> = r
        .report
        .mgn
        .iter()
        .map(|s| (s.source_server_id.as_str(), s.lifecycle.as_str()))
        .collect();
    assert_eq!(
        servers,
        vec![(A1, "CUTOVER"), (A2, "CUTOVER"), (A3, "CUTOVER")]
    );
    let mut instances: Vec<_> = r
        .report
        .mgn
        .iter()
        .map(|s| s.ec2_instance_id.clone().expect("instance"))
        .collect();
    instances.dedup();
    assert_eq!(instances.len(), 3, "one instance per server");
    let job = r.report.mgn[0].launch_job_id.clone();
    assert!(
        r.report.mgn.iter().all(|s| s.launch_job_id == job),
        "one job"
    );
}

#[test]
fn one_failed_launch_stops_the_run_before_traffic_moves() {
    let r = three_tier(&[(
        "launchSeconds: 180}",
        "launchSeconds: 180, launchFails: true}",
    )]);
    assert_ne!(r.report.outcome, "completed");
    assert!(blue_only(&r), "DNS moved: {:?}", r.report.dns);
    assert!(!happened(&r, "green-launched"));
    let w = &r.report.world;
    assert_eq!((w.mgn_cutovers, w.mgn_finalizes), (1, 0));
    let error = format!("{:?} {:?}", r.report.error, r.report.cause);
    assert!(error.contains(A2), "the failed server is named: {error}");
    // The instances that did launch are left as they are for the operator: nothing the run did
    // not launch is touched, and nothing is finalized.
    let a1 = &r.report.mgn[0];
    assert_eq!(a1.lifecycle, "CUTTING_OVER");
    assert!(a1.ec2_instance_id.is_some());
}

#[test]
fn a_server_not_ready_refuses_the_run_naming_its_field() {
    let r = three_tier(&[(
        "{id: s-0000000000000a003, lifecycle: READY_FOR_CUTOVER",
        "{id: s-0000000000000a003, lifecycle: READY_FOR_TEST",
    )]);
    assert_eq!(r.report.outcome, "failed");
    let error = format!("{:?} {:?}", r.report.error, r.report.cause);
    assert!(
        error.contains("replication.sourceServerIds[2]") && error.contains("READY_FOR_TEST"),
        "{error}"
    );
    assert!(blue_only(&r));
    assert_eq!(r.report.world.mgn_cutovers, 0, "nothing launched");
}

#[test]
fn one_server_that_never_catches_up_holds_the_gate_for_all() {
    let r = three_tier(&[("lag: [[0, 45], [300, 10]]", "lag: [[0, 400]]")]);
    assert_ne!(r.report.outcome, "completed");
    assert_eq!(r.report.world.mgn_cutovers, 0, "no launch on known lag");
    assert!(blue_only(&r));
    let lags: Vec<f64> = r
        .report
        .timeline
        .iter()
        .filter_map(|e| e.lag_seconds)
        .collect();
    assert!(
        !lags.is_empty() && lags.iter().all(|l| *l >= 400.0),
        "{lags:?}"
    );
}

#[test]
fn a_disconnected_server_fails_the_gate_naming_it() {
    let r = three_tier(&[(
        "{id: s-0000000000000a002, lifecycle: READY_FOR_CUTOVER, replicationState: CONTINUOUS",
        "{id: s-0000000000000a002, lifecycle: READY_FOR_CUTOVER, replicationState: DISCONNECTED",
    )]);
    assert_eq!(r.report.outcome, "failed");
    let error = format!("{:?} {:?}", r.report.error, r.report.cause);
    assert!(error.contains("replication.sourceServerIds[1]"), "{error}");
    assert_eq!(r.report.world.mgn_cutovers, 0);
}

#[test]
fn plan_check_names_the_bad_server_entry() {
    let plan = text("mgn-three-tier", "plan.yaml");
    let refused = |edits: &[(&str, &str)]| match Plan::parse(&edit(plan.clone(), edits), false) {
        Ok(_) => String::new(),
        Err(e) => e
            .violations()
            .into_iter()
            .map(|v| format!("{}: {}", v.field, v.message))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let ids = "[s-0000000000000a001, s-0000000000000a002, s-0000000000000a003]";
    let twice = refused(&[(ids, "[s-0000000000000a001, s-0000000000000a001]")]);
    assert!(
        twice.contains("replication.sourceServerIds[1]: 's-0000000000000a001' is listed twice"),
        "{twice}"
    );
    let bad = refused(&[(ids, "[s-0000000000000a001, i-0123]")]);
    assert!(
        bad.contains("replication.sourceServerIds[1]: 'i-0123' is not an MGN source server id"),
        "{bad}"
    );
    let empty = refused(&[(ids, "[]")]);
    assert!(
        empty.contains("replication.sourceServerIds: holds 0 servers"),
        "{empty}"
    );
    let many: Vec<String> = (0..201).map(|i| format!("s-{i:017x}")).collect();
    let over = refused(&[(ids, &format!("[{}]", many.join(", ")))]);
    assert!(
        over.contains("holds 201 servers; one StartCutover launches 1 to 200"),
        "{over}"
    );
    let both = refused(&[(
        "sourceServerIds:",
        "sourceServerId: s-0000000000000a001\n  sourceServerIds:",
    )]);
    assert!(both.contains("not both"), "{both}");
    assert_eq!(refused(&[]), "", "the example is valid");
    // Each server is locked with the run: two applications sharing a server never run at once.
    let p = Plan::parse(&plan, false).unwrap();
    let keys = p.lock_keys();
    for id in [A1, A2, A3] {
        assert!(keys.contains(&format!("mgnserver:{id}")), "{keys:?}");
    }
}

#[test]
fn a_wave_whose_applications_share_an_mgn_server_is_refused_when_read() {
    let dir = std::env::temp_dir().join(format!("cutover-mgn-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = text("mgn-three-tier", "plan.yaml");
    // billing (a single-server plan) names ledger's batch server, on a record of its own.
    let billing = edit(
        text("mgn-happy-path", "plan.yaml"),
        &[(
            "sourceServerId: s-0123456789abcdef0",
            &format!("sourceServerId: {A3}"),
        )],
    );
    std::fs::write(dir.join("ledger.yaml"), &ledger).unwrap();
    std::fs::write(dir.join("billing.yaml"), &billing).unwrap();
    let wave = dir.join("wave.yaml");
    std::fs::write(
        &wave,
        "wave: shared\nmaxConcurrency: 2\napplications:\n  - {plan: ledger.yaml}\n  - {plan: billing.yaml}\n",
    )
    .unwrap();
    let e = cutover_cli::wave::load_wave(&wave)
        .expect_err("shared server")
        .to_string();
    assert!(
        e.contains("applications[1].plan: replication.sourceServerId")
            && e.contains(&format!("MGN server {A3}"))
            && e.contains("ledger and billing"),
        "{e}"
    );
    std::fs::write(
        dir.join("billing.yaml"),
        text("mgn-happy-path", "plan.yaml"),
    )
    .unwrap();
    assert!(cutover_cli::wave::load_wave(&wave).is_ok());
}
