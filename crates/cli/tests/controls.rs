//! Mid-run controls (docs/controls.md) played from the world's `operator` entries through the
//! approval API: a hold keeps a bake from ending (health rounds go on) until resumed or until
//! controls.maxHoldSeconds, an extension lengthens the bake in progress, a promote ends it at
//! the next healthy round but never before the first bake's DNS floor and never past a gate.

mod common;

use common::{edit, green_weight, happened, served_by_blue_only, text};
use cutover_cli::local::LocalRun;

/// The DMS example with operator lines added to its world.
fn with_operator(lines: &str) -> LocalRun {
    let world = text("dms-happy-path", "world.yaml") + "operator:\n" + lines;
    common::run(&text("dms-happy-path", "plan.yaml"), &world, false)
}

fn baseline() -> LocalRun {
    common::run(
        &text("dms-happy-path", "plan.yaml"),
        &text("dms-happy-path", "world.yaml"),
        false,
    )
}

/// When each traffic step's shift was submitted, in order.
fn shifts(r: &LocalRun) -> Vec<f64> {
    r.report
        .timeline
        .iter()
        .filter(|e| e.event == "weights-changed")
        .map(|e| e.t)
        .collect()
}

/// Green's weight after each shift, in order.
fn greens(r: &LocalRun) -> Vec<u32> {
    r.report
        .timeline
        .iter()
        .filter(|e| e.event == "weights-changed")
        .filter_map(|e| e.weights.map(|w| w.green))
        .collect()
}

fn first(r: &LocalRun, event: &str) -> f64 {
    r.report
        .timeline
        .iter()
        .find(|e| e.event == event)
        .map(|e| e.t)
        .unwrap_or_else(|| panic!("no {event}"))
}

#[test]
fn a_hold_keeps_the_bake_from_ending_until_resumed_and_health_goes_on() {
    let base = baseline();
    assert_eq!(base.report.outcome, "completed");
    let s0 = shifts(&base)[0];
    let asked = first(&base, "approval-requested");
    // Held 100 s into the first bake, resumed 1,500 s into it: the gate before 50 % opens
    // only after the resume, and rounds kept running meanwhile.
    let r = with_operator(&format!(
        "  - {{afterSeconds: {}, action: hold, by: alice@example.com, reason: DBA checks the replica}}\n  - {{afterSeconds: {}, action: resume, by: alice@example.com}}\n",
        s0 + 100.0,
        s0 + 1500.0
    ));
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    assert!(happened(&r, "held") && happened(&r, "resumed"));
    let resumed = first(&r, "resumed");
    let asked_now = first(&r, "approval-requested");
    assert!(
        asked_now >= resumed,
        "asked at {asked_now}, resumed at {resumed}"
    );
    assert!(asked_now > asked + 800.0, "{asked_now} vs {asked}");
    let rounds_while_held = r
        .report
        .timeline
        .iter()
        .filter(|e| e.event == "healthy" && e.t > s0 + 100.0 && e.t < resumed)
        .count();
    assert!(
        rounds_while_held >= 40,
        "{rounds_while_held} rounds while held"
    );
    // Nothing moved while held: the second shift waited for the resume.
    assert!(shifts(&r)[1] > resumed);
    let held = r
        .report
        .timeline
        .iter()
        .find(|e| e.event == "held")
        .unwrap();
    assert!(
        held.message.contains("DBA checks the replica"),
        "{}",
        held.message
    );
}

#[test]
fn a_hold_never_resumed_rolls_back_at_max_hold_seconds() {
    let s0 = shifts(&baseline())[0];
    let r = common::run(
        &edit(
            text("dms-happy-path", "plan.yaml"),
            &[(
                "approvals: {expiresSeconds: 3600}",
                "approvals: {expiresSeconds: 3600}\ncontrols: {maxHoldSeconds: 1200}",
            )],
        ),
        &(text("dms-happy-path", "world.yaml")
            + &format!(
                "operator:\n  - {{afterSeconds: {}, action: hold, by: alice@example.com}}\n",
                s0 + 100.0
            )),
        false,
    );
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", r.report.cause);
    assert_eq!(r.report.error.as_deref(), Some("HoldExpired"));
    assert_eq!(r.report.exit_code(), 3);
    assert!(served_by_blue_only(&r) || green_weight(&r) == 0);
    let closed = first(&r, "run-closed");
    assert!(
        closed > s0 + 1300.0 && closed < s0 + 1500.0,
        "closed at {closed}"
    );
}

#[test]
fn an_extension_lengthens_the_bake_in_progress() {
    let base = baseline();
    let s0 = shifts(&base)[0];
    let asked = first(&base, "approval-requested");
    let r = with_operator(&format!(
        "  - {{afterSeconds: {}, action: extend, seconds: 600, by: alice@example.com}}\n",
        s0 + 100.0
    ));
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    let later = first(&r, "approval-requested") - asked;
    assert!((599.0..=631.0).contains(&later), "{later}");
    assert!(happened(&r, "bake-extended"));
}

#[test]
fn a_promote_ends_the_bake_at_the_next_healthy_round_but_not_before_the_dns_floor() {
    let base = baseline();
    let s0 = shifts(&base)[0];
    // 10 s into the first bake: the original record's TTL is 300 s, so resolvers may still
    // answer blue until then; the bake ends at the first healthy round after it.
    let r = with_operator(&format!(
        "  - {{afterSeconds: {}, action: promote, by: alice@example.com}}\n",
        s0 + 10.0
    ));
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    let asked = first(&r, "approval-requested") - s0;
    assert!((300.0..=340.0).contains(&asked), "{asked}");
    // The gate still asks: promote never skips an approval.
    assert!(happened(&r, "approved"));
    // The last bake promoted: the run ends earlier than the baseline, still completed.
    let s2 = shifts(&base)[2];
    let r = with_operator(&format!(
        "  - {{afterSeconds: {}, action: promote, by: alice@example.com}}\n",
        s2 + 60.0
    ));
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    let saved = first(&base, "run-closed") - first(&r, "run-closed");
    assert!(saved > 700.0, "saved {saved}s");
}

#[test]
fn an_operator_line_with_seconds_where_none_belong_is_refused_naming_the_field() {
    let world = text("dms-happy-path", "world.yaml")
        + "operator:\n  - {afterSeconds: 10, action: hold, seconds: 60, by: alice@example.com}\n  - {afterSeconds: 10, action: extend, by: alice@example.com}\n";
    let e = cutover_sim::WorldSpec::parse(&world, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("operator[0].seconds"), "{e}");
    assert!(e.contains("operator[1].seconds"), "{e}");
}

#[test]
fn the_hold_budget_fits_the_plans_history_and_an_explicit_one_that_does_not_is_refused() {
    // Health rounds every second: an hour of holding would add 3,600 rounds of 9 events on top
    // of the ~2,100 rounds the bakes already take. By default
    // the budget shrinks to what the history limit leaves; said explicitly, it is refused naming
    // the field and what fits.
    let fast = edit(
        text("dms-happy-path", "plan.yaml"),
        &[("intervalSeconds: 30", "intervalSeconds: 1")],
    );
    let plan = cutover_core::plan::Plan::parse(&fast, false).expect("a default budget fits");
    let hold = plan.max_hold_seconds();
    assert!(hold > 0 && hold < 3600, "{hold}");
    assert!(plan.worst_case_history_events().total() <= 25_000);
    let slow =
        cutover_core::plan::Plan::parse(&text("dms-happy-path", "plan.yaml"), false).unwrap();
    assert_eq!(slow.max_hold_seconds(), 3600);
    let explicit = fast + "controls: {maxHoldSeconds: 86400}\n";
    let e = cutover_core::plan::Plan::parse(&explicit, false).unwrap_err();
    let fields: Vec<String> = e.violations().iter().map(|v| v.field.clone()).collect();
    assert_eq!(fields, ["controls.maxHoldSeconds"], "{e}");
    assert!(e.to_string().contains("at most"), "{e}");
    let too_long = text("dms-happy-path", "plan.yaml") + "controls: {maxHoldSeconds: 86401}\n";
    let e = cutover_core::plan::Plan::parse(&too_long, false).unwrap_err();
    assert!(e.to_string().contains("controls.maxHoldSeconds"), "{e}");
}

#[test]
fn promote_full_goes_to_the_last_weight_at_once_where_the_plan_allows_and_no_gate_is_skipped() {
    // No gate before 50 %, and the plan allows promote --full: 100 s into the first bake the
    // operator promotes to the end. The first bake ends at the DNS floor, the next shift goes
    // straight to 100 %, and the last bake still runs in full.
    let plan = edit(
        text("dms-happy-path", "plan.yaml"),
        &[
            (", approval: before-50}", "}"),
            (
                "approvals: {expiresSeconds: 3600}",
                "approvals: {expiresSeconds: 3600}\ncontrols: {allowPromoteFull: true}",
            ),
        ],
    );
    let world = |operator: &str| {
        text("dms-happy-path", "world.yaml")
            .lines()
            .filter(|l| !l.starts_with("approvals:"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
            + operator
    };
    let base = common::run(&plan, &world(""), false);
    assert_eq!(base.report.outcome, "completed", "{:?}", base.report.cause);
    let s0 = shifts(&base)[0];
    let r = common::run(
        &plan,
        &world(&format!(
            "operator: [{{afterSeconds: {}, action: promote, full: true, by: alice@example.com}}]\n",
            s0 + 100.0
        )),
        false,
    );
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    assert_eq!(greens(&r), [10, 100, 100], "the second shift went to 100 %");
    let closed = first(&r, "run-closed");
    let saved = first(&base, "run-closed") - closed;
    // The first bake's remaining ~200 s past its floor and the 600 s second bake are skipped;
    // the last 900 s bake is not.
    assert!(saved > 700.0, "saved {saved}s");
    let last_shift = *shifts(&r).last().unwrap();
    assert!(
        closed - last_shift >= 900.0,
        "the last bake ran: {}",
        closed - last_shift
    );
    // With a gate on a later step it is refused, and the run goes on step by step.
    let gated = edit(
        text("dms-happy-path", "plan.yaml"),
        &[(
            "approvals: {expiresSeconds: 3600}",
            "approvals: {expiresSeconds: 3600}\ncontrols: {allowPromoteFull: true}",
        )],
    );
    let r = common::run(
        &gated,
        &(text("dms-happy-path", "world.yaml")
            + &format!(
                "operator: [{{afterSeconds: {}, action: promote, full: true, by: alice@example.com}}]\n",
                s0 + 100.0
            )),
        false,
    );
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    assert_eq!(greens(&r), [10, 50, 100]);
    assert!(!happened(&r, "bake-promoted"), "refused: nothing promoted");
}
