//! The data cutover in each mode, over the simulated application that counts every write:
//! happy paths, health failures before and after the switch (the point of no return), failing
//! and hanging hooks, and a drain that never completes. `writesLost` is what the world counts
//! missing from the surviving database at the end, never a number the steps report.

mod common;

use common::{edit, green_weight, happened, run, served_by_blue_only, text};
use cutover_cli::local::LocalRun;
use cutover_core::plan::Plan;

const FREEZE: &str = "arn:aws:lambda:us-east-1:123456789012:function:orders-maintenance-on";
const SWITCH: &str = "arn:aws:lambda:us-east-1:123456789012:function:orders-use-green-db";

/// The blue-until-switch example with its world edited.
fn blue_until_switch(plan_edits: &[(&str, &str)], world: impl Fn(String) -> String) -> LocalRun {
    let plan = edit(text("data-blue-until-switch", "plan.yaml"), plan_edits);
    run(
        &plan,
        &world(text("data-blue-until-switch", "world.yaml")),
        false,
    )
}

fn freeze_and_switch(plan_edits: &[(&str, &str)], world: impl Fn(String) -> String) -> LocalRun {
    let plan = edit(text("data-freeze-and-switch", "plan.yaml"), plan_edits);
    run(
        &plan,
        &world(text("data-freeze-and-switch", "world.yaml")),
        false,
    )
}

fn same(w: String) -> String {
    w
}

/// The world with green's health endpoint failing from `t` on.
fn green_fails_from(t: u32) -> impl Fn(String) -> String {
    move |w| edit(w, &[("[[0, 200]]", &format!("[[0, 200], [{t}, 503]]"))])
}

#[test]
fn blue_until_switch_moves_the_data_after_the_last_bake_and_loses_nothing() {
    let r = blue_until_switch(&[], same);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    let d = &r.report.data;
    assert_eq!(d.mode, "blue-until-switch");
    assert!(d.writes_accepted > 50_000, "{d:?}");
    assert_eq!(d.writes_lost, 0, "{d:?}");
    assert_eq!(d.surviving_database, "green");
    assert!(d.point_of_no_return && d.switched_to.as_deref() == Some("green"));
    // Writes froze only for the drain: above 0, within maxFreezeSeconds, refused meanwhile.
    assert!(d.freeze_seconds > 0.0 && d.freeze_seconds <= 300.0, "{d:?}");
    assert_eq!(d.writes_refused, (d.freeze_seconds * 20.0).round() as u64);
    // The order the mode promises: all traffic on green, the go/no-go, freeze, drained, switch.
    let order: Vec<&str> = r
        .report
        .timeline
        .iter()
        .map(|e| e.event.as_str())
        .filter(|e| {
            [
                "approval-requested",
                "writes-frozen",
                "drained",
                "database-switched",
                "writes-unfrozen",
            ]
            .contains(e)
        })
        .collect();
    assert_eq!(
        order,
        [
            "approval-requested",
            "writes-frozen",
            "drained",
            "database-switched",
            "writes-unfrozen"
        ]
    );
    let switched = d.switched_at.unwrap();
    let last_shift = r
        .report
        .timeline
        .iter()
        .filter(|e| e.event == "weights-changed")
        .map(|e| e.t)
        .fold(0.0, f64::max);
    assert!(
        last_shift < switched,
        "the switch comes after all traffic moved"
    );
    assert_eq!(
        r.world.counters().dms_stops,
        0,
        "replication stops only at finalize"
    );
}

#[test]
fn duplicate_deliveries_call_no_hook_twice() {
    let plan = text("data-blue-until-switch", "plan.yaml");
    let world = text("data-blue-until-switch", "world.yaml");
    let once = run(&plan, &world, false);
    let twice = run(&plan, &world, true);
    assert_eq!(twice.report.outcome, "completed");
    assert_eq!(twice.report.data.writes_lost, 0);
    assert_eq!(
        once.world.counters().hook_calls,
        twice.world.counters().hook_calls
    );
    assert_eq!(
        once.world.counters().hook_calls,
        3,
        "freeze, switch, unfreeze"
    );
}

#[test]
fn unhealthy_during_the_shift_rolls_back_dns_only_and_loses_nothing() {
    let r = blue_until_switch(&[], green_fails_from(1000));
    assert_eq!(r.report.outcome, "rolled_back");
    assert!(served_by_blue_only(&r) || green_weight(&r) == 0);
    assert_eq!(r.report.data.writes_lost, 0, "{:?}", r.report.data);
    assert!(r.report.data.writes_accepted > 0);
    assert!(!r.report.data.point_of_no_return);
    assert_eq!(
        r.world.counters().hook_calls,
        0,
        "no data moved, no hook ran"
    );
}

#[test]
fn unmanaged_loses_greens_writes_on_rollback_and_the_plan_says_so() {
    let plan = edit(
        text("data-blue-until-switch", "plan.yaml"),
        &[(
            "data:\n  writes: blue-until-switch",
            "x-data:\n  writes: blue-until-switch",
        )],
    );
    // Drop the data section entirely: absent means unmanaged.
    let plan: String = plan.split("x-data:").next().unwrap().to_string();
    let parsed = Plan::parse(&plan, false).unwrap();
    let warnings = parsed.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.field == "data.writes" && w.message.contains("lost on a rollback")),
        "{warnings:?}"
    );
    let world = green_fails_from(1000)(text("data-blue-until-switch", "world.yaml"));
    let r = run(&plan, &world, false);
    assert_eq!(r.report.outcome, "rolled_back");
    assert_eq!(r.report.data.mode, "unmanaged");
    // Green's tier took 10% of the writes during the first bake, into green's database.
    assert!(r.report.data.writes_lost > 100, "{:?}", r.report.data);
}

#[test]
fn unhealthy_after_the_switch_pages_and_keeps_green_when_nobody_approves_the_loss() {
    let r = blue_until_switch(&[], green_fails_from(3300));
    assert_eq!(
        r.report.outcome, "completed_with_errors",
        "{:?}",
        r.report.cause
    );
    assert_eq!(r.report.exit_code(), 7);
    assert_eq!(r.report.error.as_deref(), Some("UnhealthyAfterSwitch"));
    assert_eq!(r.report.data.writes_lost, 0);
    assert_eq!(green_weight(&r), 100, "green keeps the traffic");
    let pages = r.world.pages();
    assert!(
        pages.iter().any(|p| p.kind == "unhealthy_after_switch"),
        "{pages:?}"
    );
    let gate = r
        .report
        .approvals
        .iter()
        .find(|a| a.gate == "rollback-after-switch")
        .expect("the gate was opened");
    assert_eq!(gate.decision, "expired");
}

#[test]
fn an_approved_rollback_after_the_switch_restores_dns_and_counts_the_writes_lost() {
    let r = blue_until_switch(&[], |w| {
        edit(
            green_fails_from(3300)(w),
            &[(
                "afterSeconds: 60}]",
                "afterSeconds: 60}, {gate: rollback-after-switch, decision: approve, by: bob@example.com, afterSeconds: 300}]",
            )],
        )
    });
    assert_eq!(r.report.outcome, "rolled_back");
    assert!(served_by_blue_only(&r) || green_weight(&r) == 0);
    let d = &r.report.data;
    assert_eq!(d.switched_to.as_deref(), Some("blue"));
    assert_eq!(d.surviving_database, "blue");
    // Green's database took every write from the switch until the approved switch back.
    assert!(d.writes_lost > 1000, "{d:?}");
}

#[test]
fn with_reverse_replication_a_rollback_after_the_switch_is_automatic_and_lossless() {
    let reverse = (
        "  approval: before-switch",
        "  approval: before-switch\n  reverseReplication: {taskArn: \"arn:aws:dms:us-east-1:123456789012:task:ORDERS-REVERSE\"}",
    );
    // Without the reverse task in the world, pre-flight refuses the plan and nothing moves.
    let r = blue_until_switch(&[reverse], same);
    assert_eq!(r.report.outcome, "failed");
    assert!(
        r.report
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("data.reverseReplication.taskArn"),
        "{:?}",
        r.report.cause
    );
    assert!(served_by_blue_only(&r));
    let plan = edit(
        text("data-blue-until-switch", "plan.yaml"),
        &[(
            "  approval: before-switch",
            "  approval: before-switch\n  reverseReplication: {taskArn: \"arn:aws:dms:us-east-1:123456789012:task:ORDERS-REVERSE\"}",
        )],
    );
    let world = edit(
        text("data-blue-until-switch", "world.yaml"),
        &[(
            "app: {writesPerSecond: 20}",
            "    - {arn: \"arn:aws:dms:us-east-1:123456789012:task:ORDERS-REVERSE\", migrationType: cdc, status: ready, carries: green-to-blue, lag: [[0, 5]]}\napp: {writesPerSecond: 20}",
        )],
    );
    let world = green_fails_from(3300)(world);
    let r = run(&plan, &world, false);
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", r.report.cause);
    let d = &r.report.data;
    assert_eq!(d.writes_lost, 0, "{d:?}");
    assert_eq!(d.surviving_database, "blue");
    assert!(r
        .report
        .approvals
        .iter()
        .all(|a| a.gate != "rollback-after-switch"));
    assert!(happened(&r, "unhealthy-after-switch"));
    assert_eq!(
        r.world.counters().dms_starts,
        2,
        "forward, then reverse at the switch"
    );
}

#[test]
fn freeze_and_switch_moves_the_data_first_and_shifts_on_greens_database() {
    let r = freeze_and_switch(&[], same);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    let d = &r.report.data;
    assert_eq!(d.writes_lost, 0, "{d:?}");
    let first_shift = r
        .report
        .timeline
        .iter()
        .find(|e| e.event == "weights-changed")
        .unwrap()
        .t;
    assert!(d.switched_at.unwrap() <= first_shift);
    // Finalize is not asked for: the reverse task keeps the rollback window open.
    assert_eq!(
        r.world.counters().dms_stops,
        1,
        "the forward task, at the switch"
    );
}

#[test]
fn freeze_and_switch_unhealthy_during_the_shift_rolls_back_through_reverse_replication() {
    let r = freeze_and_switch(&[], green_fails_from(1200));
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", r.report.cause);
    assert_eq!(r.report.data.writes_lost, 0, "{:?}", r.report.data);
    assert_eq!(r.report.data.switched_to.as_deref(), Some("blue"));
    assert!(served_by_blue_only(&r) || green_weight(&r) == 0);
}

#[test]
fn freeze_and_switch_without_reverse_keeps_green_when_nobody_approves_the_loss() {
    let r = freeze_and_switch(
        &[(
            "  reverseReplication: {taskArn: \"arn:aws:dms:us-east-1:123456789012:task:ORDERS-REVERSE\"}\n",
            "",
        )],
        green_fails_from(1200),
    );
    assert_eq!(
        r.report.outcome, "completed_with_errors",
        "{:?}",
        r.report.cause
    );
    assert_eq!(r.report.error.as_deref(), Some("UnhealthyAfterSwitch"));
    assert_eq!(r.report.data.writes_lost, 0, "{:?}", r.report.data);
}

#[test]
fn a_failing_freeze_after_traffic_moved_unfreezes_and_rolls_back() {
    let r = blue_until_switch(&[], |w| {
        w + &format!("hooks: {{\"{FREEZE}\": [[0, fail]]}}\n")
    });
    assert_eq!(r.report.outcome, "rolled_back");
    assert_eq!(r.report.exit_code(), 3);
    assert!(served_by_blue_only(&r) || green_weight(&r) == 0);
    assert_eq!(r.report.data.writes_lost, 0);
    assert!(happened(&r, "data-cutover-abandoned"));
    assert!(!r.report.data.point_of_no_return);
}

#[test]
fn a_timed_out_freeze_before_any_traffic_aborts_with_exit_4_and_unfreezes() {
    let freeze = "https://ops.example.com/orders/maintenance";
    let r = freeze_and_switch(&[], |w| {
        w + &format!("hooks: {{\"{freeze}\": [[0, timeout]]}}\n")
    });
    assert_eq!(r.report.exit_code(), 4, "{}", r.report.outcome);
    assert!(served_by_blue_only(&r), "{:?}", r.report.dns);
    assert_eq!(r.report.data.writes_lost, 0);
    // The freeze may have acted: the unfreeze hook was called anyway.
    assert!(happened(&r, "writes-unfrozen") || happened(&r, "data-cutover-abandoned"));
    assert_eq!(
        r.report.data.writes_refused, 0,
        "the simulated hook never acted"
    );
}

#[test]
fn a_failing_switch_is_undone_before_the_rollback() {
    let r = blue_until_switch(&[], |w| {
        w + &format!("hooks: {{\"{SWITCH}\": [[0, fail]]}}\n")
    });
    assert_eq!(r.report.outcome, "rolled_back");
    assert_eq!(r.report.data.writes_lost, 0);
    assert!(happened(&r, "writes-unfrozen"));
    assert!(!r.report.data.point_of_no_return);
}

/// blue-until-switch with maxLagSeconds 60 and maxFreezeSeconds 120, its lag climbing 1 s a
/// second from `t` (DMS applies nothing new from then on).
fn lag_climbing_from(t: u32) -> LocalRun {
    blue_until_switch(
        &[
            ("maxLagSeconds: 30", "maxLagSeconds: 60"),
            ("maxFreezeSeconds: 300", "maxFreezeSeconds: 120"),
        ],
        move |w| {
            edit(
                w,
                &[(
                    "lag: [[0, 900], [600, 40], [900, 3]]",
                    &format!(
                        "lag: [[0, 900], [600, 40], [900, 3], [{t}, 3], [{}, 3003]]",
                        t + 3000
                    ),
                )],
            )
        },
    )
}

#[test]
fn a_drain_that_never_completes_aborts_at_max_freeze_unfreezes_and_restores_dns() {
    // From t=2965, just before the freeze (t≈2971, lag 9 s), DMS applies nothing new: the
    // changes made after it never drain.
    let r = blue_until_switch(
        &[
            ("maxLagSeconds: 30", "maxLagSeconds: 60"),
            ("maxFreezeSeconds: 300", "maxFreezeSeconds: 120"),
        ],
        same,
    );
    assert_eq!(r.report.outcome, "completed", "the unedited world drains");
    let r = lag_climbing_from(2965);
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", r.report.cause);
    assert!(served_by_blue_only(&r) || green_weight(&r) == 0);
    let abandoned = r
        .report
        .timeline
        .iter()
        .find(|e| e.event == "data-cutover-abandoned")
        .expect("abandoned");
    assert!(
        abandoned.message.contains("FreezeTooLong"),
        "{}",
        abandoned.message
    );
    assert!(happened(&r, "writes-unfrozen"));
    let d = &r.report.data;
    assert!(
        d.freeze_seconds >= 120.0 && d.freeze_seconds < 160.0,
        "{d:?}"
    );
    assert_eq!(d.writes_lost, 0, "blue's database still has every write");
}

#[test]
fn no_freeze_while_replication_lag_is_known_above_the_threshold() {
    // From t=2880 the lag climbs 1 s a second: at the freeze (t≈2971) it is 94 s, above
    // maxLagSeconds 60. Writes must not stop for a lag known to be too high: the freeze waits,
    // and when the lag never comes back it fails at replication.deadlineSeconds, writes never
    // refused, and the run rolls back losing nothing.
    let r = lag_climbing_from(2880);
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", r.report.cause);
    assert!(happened(&r, "freeze-held"), "the freeze waited for the lag");
    assert!(!happened(&r, "writes-frozen"));
    assert_eq!(r.report.data.writes_refused, 0, "{:?}", r.report.data);
    assert_eq!(r.report.data.writes_lost, 0, "{:?}", r.report.data);
    assert!(served_by_blue_only(&r) || green_weight(&r) == 0);
}

#[test]
fn the_data_gate_opens_only_once_the_lag_is_back_and_shows_the_lag_read_then() {
    // The lag is 400 s from t≈2960 to t≈3300, as the last bake should end (t≈3030): its rounds
    // fail (health.failureThreshold 30 keeps the run going), the bake ends only on a healthy
    // round, and the gate opens after the lag is back. The approver reads the lag of that
    // round, not the one the lag gate read an hour before.
    let r = blue_until_switch(
        &[
            ("failureThreshold: 2", "failureThreshold: 30"),
            (
                "intervalSeconds: 30",
                "intervalSeconds: 30\n  failureLimit: 30",
            ),
        ],
        |w| {
            edit(
                w,
                &[(
                    "lag: [[0, 900], [600, 40], [900, 3]]",
                    "lag: [[0, 900], [600, 40], [900, 3], [2955, 3], [2960, 400], [3300, 400], [3360, 12]]",
                )],
            )
        },
    );
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    let asked = r
        .report
        .timeline
        .iter()
        .find(|e| e.event == "approval-requested")
        .map(|e| e.t)
        .expect("asked");
    assert!(asked > 3300.0, "asked at {asked}");
    let last_round = r
        .report
        .timeline
        .iter()
        .rfind(|e| e.event == "healthy" && e.t <= asked)
        .and_then(|e| e.lag_seconds)
        .expect("the last round read the lag");
    assert!(last_round <= 30.0, "{last_round}");
    let notice = r
        .world
        .notices()
        .into_iter()
        .find(|n| n.gate == "before-switch")
        .expect("a notice");
    let lag = notice.evidence["lagSeconds"]
        .as_f64()
        .expect("lag in the notice");
    assert_eq!(lag, last_round, "{}", notice.summary);
    assert!(
        notice.summary.contains(&format!("{lag:.1} s")),
        "{}",
        notice.summary
    );
    assert_eq!(r.report.data.writes_lost, 0, "{:?}", r.report.data);
}

#[test]
fn plans_refuse_data_modes_they_cannot_honour() {
    let base = text("data-blue-until-switch", "plan.yaml");
    let bad = |edits: &[(&str, &str)]| {
        let e = Plan::parse(&edit(base.clone(), edits), false).unwrap_err();
        e.violations()
            .iter()
            .map(|v| v.field.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        bad(&[("  switch:   {lambdaArn: \"arn:aws:lambda:us-east-1:123456789012:function:orders-use-green-db\"}\n", "")]),
        ["data.switch"]
    );
    assert_eq!(
        bad(&[(
            "{lambdaArn: \"arn:aws:lambda:us-east-1:123456789012:function:orders-maintenance-on\"}",
            "{url: \"http://ops.example.com/freeze\"}"
        )]),
        ["data.freeze.url"]
    );
    assert_eq!(
        bad(&[("maxFreezeSeconds: 300", "maxFreezeSeconds: 5")]),
        ["data.maxFreezeSeconds"]
    );
    assert_eq!(
        bad(&[("approval: before-switch", "approval: rollback-after-switch")]),
        ["data.approval"]
    );
    assert_eq!(
        bad(&[("writes: blue-until-switch", "writes: sometimes")])
            .first()
            .map(String::as_str),
        Some("data.writes")
    );
}

#[test]
fn a_console_stop_while_frozen_is_unfrozen_by_the_safety_net() {
    // Writes freeze at 51:30 (3090 s) after the go/no-go; the execution is stopped 10 s later.
    let r = blue_until_switch(&[], |w| {
        w + "operator: [{afterSeconds: 3100, action: stop, by: ops@example.com}]\n"
    });
    assert!(happened(&r, "writes-frozen"));
    assert!(happened(&r, "writes-unfrozen"), "the safety net unfroze");
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", r.report.cause);
    assert!(served_by_blue_only(&r) || green_weight(&r) == 0);
    let d = &r.report.data;
    assert_eq!(d.writes_lost, 0, "{d:?}");
    assert!(d.writes_refused > 0 && d.writes_refused < 1000, "{d:?}");
}

#[test]
fn freeze_and_switch_with_a_drain_that_never_completes_aborts_before_any_traffic() {
    // From 720 s DMS applies nothing new; the lag gate, reading a period behind, still opens at
    // 780 s and writes freeze then.
    let r = freeze_and_switch(&[], |w| {
        edit(
            w,
            &[(
                "lag: [[0, 900], [600, 40], [900, 3]]",
                "lag: [[0, 900], [600, 30], [720, 25], [1720, 1025]]",
            )],
        )
    });
    assert_eq!(
        r.report.exit_code(),
        4,
        "{} {:?}",
        r.report.outcome,
        r.report.cause
    );
    assert!(
        served_by_blue_only(&r),
        "no traffic ever moved: {:?}",
        r.report.dns
    );
    assert!(happened(&r, "writes-frozen") && happened(&r, "writes-unfrozen"));
    assert!(!r.report.data.point_of_no_return);
    assert_eq!(r.report.data.writes_lost, 0, "{:?}", r.report.data);
    assert!(r.report.data.freeze_seconds >= 300.0, "{:?}", r.report.data);
}

#[test]
fn freeze_and_switch_with_a_failing_freeze_changes_nothing() {
    let freeze = "https://ops.example.com/orders/maintenance";
    let r = freeze_and_switch(&[], |w| {
        w + &format!("hooks: {{\"{freeze}\": [[0, fail]]}}\n")
    });
    assert_eq!(r.report.exit_code(), 4);
    assert!(served_by_blue_only(&r));
    assert_eq!(r.report.data.writes_lost, 0);
    assert_eq!(r.report.data.writes_refused, 0);
    assert_eq!(
        r.world.counters().dms_starts,
        1,
        "the reverse task never started"
    );
}

#[test]
fn unmanaged_happy_path_loses_nothing_when_green_keeps_the_traffic() {
    let plan = text("dms-happy-path", "plan.yaml");
    let world = text("dms-happy-path", "world.yaml") + "app: {writesPerSecond: 20}\n";
    let r = run(&plan, &world, false);
    assert_eq!(r.report.outcome, "completed");
    assert_eq!(r.report.data.mode, "unmanaged");
    assert_eq!(r.report.data.surviving_database, "green");
    assert_eq!(r.report.data.writes_lost, 0, "{:?}", r.report.data);
    assert_eq!(r.world.counters().hook_calls, 0);
}

#[test]
fn an_abort_while_frozen_unfreezes_and_rolls_back() {
    // Writes freeze at 3090 s; the drain needs until 3180 s; the abort arrives at 3100 s.
    let r = blue_until_switch(&[], |w| {
        w + "operator: [{afterSeconds: 3100, action: abort, by: carol@example.com, reason: freeze window}]\n"
    });
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", r.report.cause);
    assert!(happened(&r, "writes-unfrozen"));
    assert!(!r.report.data.point_of_no_return);
    assert_eq!(r.report.data.writes_lost, 0);
    assert!(r.report.data.freeze_seconds < 60.0, "{:?}", r.report.data);
}

/// A hook in another region, account or partition than the stack's is refused at pre-flight,
/// naming the field, before anything moves: its roles may invoke no function there, so it would
/// fail only at the freeze, after traffic moved.
#[test]
fn a_hook_outside_the_stacks_account_or_region_is_refused_before_anything_moves() {
    for foreign in [
        "arn:aws:lambda:eu-west-1:123456789012:function:orders-maintenance-on",
        "arn:aws:lambda:us-east-1:999999999999:function:orders-maintenance-on",
        "arn:aws-cn:lambda:us-east-1:123456789012:function:orders-maintenance-on",
    ] {
        let r = blue_until_switch(
            &[(
                "arn:aws:lambda:us-east-1:123456789012:function:orders-maintenance-on",
                foreign,
            )],
            same,
        );
        assert_eq!(
            r.report.outcome, "failed",
            "{foreign}: {:?}",
            r.report.cause
        );
        assert_eq!(
            r.report.error.as_deref(),
            Some("ValidationFailed"),
            "{foreign}"
        );
        let cause = r.report.cause.clone().unwrap_or_default();
        assert!(cause.contains("data.freeze.lambdaArn"), "{cause}");
        assert_eq!(green_weight(&r), 0, "{foreign}: nothing moved");
    }
}
