//! A stateful rehost (examples/mgn-stateful): MGN's cutover instances are point-in-time copies
//! taken at the launch, so writes the source takes after it are lost unless they stop first.
//! With `data.writes: freeze-and-switch` writes freeze, every server's replication catches up
//! past the freeze, one StartCutover launches all servers, the switch follows their first boot,
//! and nothing is lost; a failure before the switch unfreezes the source and loses nothing.

mod common;
use common::{edit, first, happened, run, text};
use cutover_cli::local::LocalRun;
use cutover_core::plan::Plan;

fn stateful(plan_edits: &[(&str, &str)], world_edits: &[(&str, &str)]) -> LocalRun {
    let plan = edit(text("mgn-stateful", "plan.yaml"), plan_edits);
    let world = edit(text("mgn-stateful", "world.yaml"), world_edits);
    run(&plan, &world, false)
}

/// The plan as an unmanaged one (no data section).
fn unmanaged() -> Vec<(&'static str, &'static str)> {
    let plan = text("mgn-stateful", "plan.yaml");
    let data = &plan[plan.find("data:\n").unwrap()..];
    vec![(Box::leak(data.to_string().into_boxed_str()), "")]
}

#[test]
fn writes_freeze_replication_catches_up_then_the_launch_and_the_switch_lose_nothing() {
    let r = stateful(&[], &[]);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    let d = &r.report.data;
    assert_eq!(d.mode, "freeze-and-switch");
    assert_eq!(d.writes_lost, 0, "{d:?}");
    assert!(d.writes_accepted > 10_000, "{d:?}");
    assert!(
        d.writes_refused > 0,
        "writes were refused while frozen: {d:?}"
    );
    assert_eq!(d.surviving_database, "green");
    let frozen = first(&r, "writes-frozen");
    let drained = first(&r, "drained");
    let launched = first(&r, "cutover-instance-launched");
    let booted = first(&r, "green-launched");
    let switched = first(&r, "database-switched");
    let shifted = first(&r, "weights-changed");
    // The database server lags 40 s: its replication passes the freeze 40 s after it.
    assert!(
        drained >= frozen + 40.0,
        "drained {drained}, frozen {frozen}"
    );
    assert!(
        launched >= drained,
        "launched {launched} before the drain {drained}"
    );
    assert!(
        booted >= launched + 240.0,
        "booted {booted}, launched {launched}"
    );
    assert!(
        switched >= booted && shifted >= switched,
        "{switched} {shifted}"
    );
    // The switch is the point of no return: green's database takes its first write after it.
    assert_eq!(d.point_of_no_return_at, d.switched_at);
    assert_eq!(r.world.counters().mgn_cutovers, 1);
    assert!(r.world.counters().hooks_acted.contains_key("unfreeze"));
}

#[test]
fn without_a_freeze_the_writes_after_the_launch_are_lost_and_counted_and_the_plan_warns() {
    let r = stateful(&unmanaged(), &[]);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    let d = &r.report.data;
    let launched = first(&r, "cutover-instance-launched");
    let shifts: Vec<f64> = r
        .report
        .timeline
        .iter()
        .filter(|e| e.event == "weights-changed")
        .map(|e| e.t)
        .collect();
    // The copy is 40 s behind at the launch (the database server's lag). Blue's tier takes
    // every write from then until the first shift (25 % to green), then 75 % of them until the
    // last (100 %). Those writes are lost; the ones before the copy's point are on green's disks.
    let copy = launched - 40.0;
    let expected = 15.0 * (shifts[0] - copy) + 15.0 * 0.75 * (shifts[1] - shifts[0]);
    assert!(
        (d.writes_lost as f64 - expected).abs() <= 0.02 * expected,
        "{d:?}: expected about {expected:.0} lost (launch {launched}, shifts {shifts:?})"
    );
    let plan = Plan::parse(
        &edit(text("mgn-stateful", "plan.yaml"), &unmanaged()),
        false,
    )
    .unwrap();
    let warnings = plan.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.field == "data.writes" && w.message.contains("point-in-time")),
        "{warnings:?}"
    );
}

#[test]
fn a_failed_boot_before_the_switch_unfreezes_the_source_and_loses_nothing() {
    let r = stateful(
        &[],
        &[(
            "launchSeconds: 240,",
            "launchSeconds: 240, launchFails: true,",
        )],
    );
    // Nothing had moved: the run failed (exit 1) with DNS untouched.
    assert_eq!(r.report.outcome, "failed", "{:?}", r.report.cause);
    assert_eq!(r.report.error.as_deref(), Some("ReplicationFailed"));
    let d = &r.report.data;
    assert_eq!(d.writes_lost, 0, "{d:?}");
    assert!(!d.point_of_no_return, "{d:?}");
    assert_eq!(d.surviving_database, "blue");
    assert!(!happened(&r, "database-switched"));
    assert!(!happened(&r, "weights-changed"), "traffic never moved");
    assert!(
        happened(&r, "writes-unfrozen"),
        "the source takes writes again"
    );
    assert!(!r.world.writes_frozen());
}

#[test]
fn a_launch_slower_than_the_freeze_allows_unfreezes_and_ends_the_run() {
    let r = stateful(&[("maxFreezeSeconds: 1200", "maxFreezeSeconds: 120")], &[]);
    // The freeze's bound fails the run before any traffic moved, as a DMS drain's does.
    assert_eq!(r.report.outcome, "failed", "{:?}", r.report.cause);
    assert!(!happened(&r, "weights-changed"));
    assert_eq!(r.report.error.as_deref(), Some("FreezeTooLong"));
    assert_eq!(r.report.data.writes_lost, 0, "{:?}", r.report.data);
    assert!(!r.world.writes_frozen());
    // Frozen at most the bound and the launch check's interval past it.
    assert!(
        r.report.data.freeze_seconds <= 120.0 + 31.0,
        "{:?}",
        r.report.data
    );
}

#[test]
fn blue_until_switch_and_reverse_replication_are_refused_for_mgn_naming_the_field() {
    let plan = text("mgn-stateful", "plan.yaml");
    let bus = edit(
        plan.clone(),
        &[("writes: freeze-and-switch", "writes: blue-until-switch")],
    );
    let e = Plan::parse(&bus, false).unwrap_err().to_string();
    assert!(e.contains("data.writes") && e.contains("MGN"), "{e}");
    let rev = edit(
        plan,
        &[(
            "  drainPollSeconds: 15\n",
            "  drainPollSeconds: 15\n  reverseReplication: {taskArn: \"arn:aws:dms:us-east-1:123456789012:task:R\"}\n",
        )],
    );
    let e = Plan::parse(&rev, false).unwrap_err().to_string();
    assert!(e.contains("data.reverseReplication"), "{e}");
}
