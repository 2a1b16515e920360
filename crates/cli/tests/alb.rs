//! ALB weighted target groups as the router (examples/alb-weighted): the rule's forward action
//! shifted by weight with its stickiness kept, green's healthy targets gating every shift and
//! every bake round, the exact original actions restored on a rollback, the listener's default
//! action changed through ModifyListener, faults retried, and rules that cannot be shifted
//! refused at pre-flight with nothing changed.

mod common;
use common::{edit, happened, run, text};
use cutover_core::alb::{weights, Action};

const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
const BLUE: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/catalog-blue/73e2d6bc24d8a067";
const GREEN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/catalog-green/83e2d6bc24d8a067";

fn alb(plan_edits: &[(&str, &str)], world_edits: &[(&str, &str)]) -> cutover_cli::local::LocalRun {
    let plan = edit(text("alb-weighted", "plan.yaml"), plan_edits);
    let world = edit(text("alb-weighted", "world.yaml"), world_edits);
    run(&plan, &world, false)
}

/// The rule's actions as the world file gives them: what every rollback must restore exactly.
fn original() -> Vec<Action> {
    let world = cutover_sim::WorldSpec::parse(&text("alb-weighted", "world.yaml"), false).unwrap();
    world.elbv2.listeners[0].rules[0].actions.clone()
}

fn final_actions(r: &cutover_cli::local::LocalRun) -> Vec<Action> {
    r.report
        .alb
        .as_ref()
        .expect("an alb plan reports alb")
        .actions
        .clone()
}

fn calls(r: &cutover_cli::local::LocalRun, op: &str) -> u64 {
    r.report.world.calls.get(op).copied().unwrap_or(0)
}

#[test]
fn the_rule_moves_to_green_by_weight_keeping_its_stickiness() {
    let r = alb(&[], &[]);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.error);
    let a = final_actions(&r);
    assert_eq!(
        weights(&a),
        vec![(BLUE.to_string(), 0), (GREEN.to_string(), 100)]
    );
    let fc = a[0].forward_config.as_ref().unwrap();
    let sticky = fc.target_group_stickiness_config.as_ref().unwrap();
    assert!(sticky.enabled && sticky.duration_seconds == Some(300));
    assert_eq!(a[0].order, Some(1), "the action's order is kept");
    assert_eq!(
        r.report.alb.as_ref().unwrap().rule_arn.as_deref(),
        Some(RULE)
    );
    // One ModifyRule per step, never ModifyListener; the default action (fixed-response) untouched.
    assert_eq!(calls(&r, "elbv2.ModifyRule"), 3);
    assert_eq!(calls(&r, "elbv2.ModifyListener"), 0);
    let listener = &r.world.spec().elbv2.listeners[0].arn;
    assert_eq!(
        r.world.alb_actions(listener, None)[0].kind,
        "fixed-response"
    );
    // The timeline carries each step's weights.
    let weights_seen: Vec<u32> = r
        .report
        .timeline
        .iter()
        .filter(|e| e.event == "weights-changed")
        .filter_map(|e| e.weights.map(|w| w.green))
        .collect();
    assert_eq!(weights_seen, vec![10, 50, 100]);
}

#[test]
fn green_losing_healthy_targets_in_a_bake_rolls_back_to_the_exact_original_actions() {
    // Green falls to one healthy target (below minHealthyTargets 2) in the 50% bake.
    let r = alb(
        &[],
        &[("healthy: [[0, 3]]", "healthy: [[0, 3], [1300, 1]]")],
    );
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", r.report.error);
    assert_eq!(final_actions(&r), original(), "the snapshot, exactly");
    let reasons: Vec<&str> = r
        .report
        .timeline
        .iter()
        .filter(|e| e.healthy == Some(false))
        .map(|e| e.message.as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|m| m.contains("1 healthy target(s), below alb.minHealthyTargets 2")),
        "{reasons:?}"
    );
}

#[test]
fn no_shift_while_green_has_too_few_healthy_targets() {
    // Green is healthy at pre-flight, then has one target when the lag gate opens (t = 840 s):
    // the first shift is refused and nothing ever reached green.
    let r = alb(&[], &[("healthy: [[0, 3]]", "healthy: [[0, 3], [800, 1]]")]);
    assert_eq!(r.report.outcome, "failed", "{:?}", r.report.error);
    assert_eq!(r.report.error.as_deref(), Some("HealthCheckFailed"));
    assert_eq!(calls(&r, "elbv2.ModifyRule"), 0, "nothing moved");
    assert_eq!(final_actions(&r), original());
    assert!(!happened(&r, "weights-changed"));
}

#[test]
fn the_default_action_is_shifted_through_modify_listener() {
    // The listener's default action is the blue forward; the plan names no rule.
    let r = alb(
        &[(
            "  ruleArn: \"arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee\"\n",
            "",
        )],
        &[(
            "{type: fixed-response, order: 1}",
            "{type: forward, targetGroupArn: \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/catalog-blue/73e2d6bc24d8a067\"}",
        )],
    );
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.error);
    assert_eq!(calls(&r, "elbv2.ModifyListener"), 3);
    assert_eq!(calls(&r, "elbv2.ModifyRule"), 0);
    let a = final_actions(&r);
    assert_eq!(
        weights(&a),
        vec![(BLUE.to_string(), 0), (GREEN.to_string(), 100)]
    );
    // The rule forwarding to blue with stickiness was never touched.
    let listener = &r.world.spec().elbv2.listeners[0].arn;
    assert_eq!(r.world.alb_actions(listener, Some(RULE)), original());
}

#[test]
fn throttled_and_refused_changes_are_retried_and_a_rollback_restores_through_them() {
    let faults = "faults:\n  - {operation: elbv2.ModifyRule, error: Throttling, times: 2, afterSeconds: 0}\n  - {operation: elbv2.DescribeTargetHealth, error: ServiceUnavailable, times: 1, afterSeconds: 0}\n";
    let r = alb(&[], &[("alarms: {", &format!("{faults}alarms: {{"))]);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.error);
    assert_eq!(r.report.world.faults_injected, 3);
    // A rollback whose first two restores are refused: retried within rollback.budgetSeconds.
    let faults = "faults:\n  - {operation: elbv2.ModifyRule, error: InvalidLoadBalancerAction, times: 2, afterSeconds: 1300}\n";
    let r = alb(
        &[],
        &[
            ("healthy: [[0, 3]]", "healthy: [[0, 3], [1300, 0]]"),
            ("alarms: {", &format!("{faults}alarms: {{")),
        ],
    );
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", r.report.error);
    assert_eq!(final_actions(&r), original());
}

#[test]
fn rules_that_cannot_be_shifted_are_refused_at_preflight_untouched() {
    // An authenticate action before the forward: rewriting it would drop the authentication.
    let r = alb(
        &[],
        &[(
            "          actions:\n            - type: forward",
            "          actions:\n            - {type: authenticate-oidc, order: 0}\n            - type: forward",
        )],
    );
    assert_eq!(r.report.outcome, "failed");
    assert_eq!(r.report.error.as_deref(), Some("ValidationFailed"));
    let cause = r.report.cause.clone().unwrap_or_default();
    assert!(cause.contains("alb.ruleArn"), "{cause}");
    assert!(cause.contains("[authenticate-oidc, forward]"), "{cause}");
    assert_eq!(calls(&r, "elbv2.ModifyRule"), 0);
    // A rule already sending traffic to green, and a green target group that does not exist.
    let r = alb(
        &[],
        &[
            (
                "              targetGroupArn: \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/catalog-blue/73e2d6bc24d8a067\"\n",
                "",
            ),
            (
                "- {targetGroupArn: \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/catalog-blue/73e2d6bc24d8a067\", weight: 1}",
                "- {targetGroupArn: \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/catalog-blue/73e2d6bc24d8a067\", weight: 1}\n                  - {targetGroupArn: \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/catalog-green/83e2d6bc24d8a067\", weight: 1}",
            ),
        ],
    );
    assert_eq!(r.report.outcome, "failed", "green already takes traffic");
    let cause = r.report.cause.clone().unwrap_or_default();
    assert!(cause.contains("not to the plan's blue alone"), "{cause}");
    let r = alb(
        &[(
            "catalog-green/83e2d6bc24d8a067",
            "catalog-green/93e2d6bc24d8a067",
        )],
        &[],
    );
    assert_eq!(r.report.outcome, "failed");
    let cause = r.report.cause.clone().unwrap_or_default();
    assert!(cause.contains("alb.green.targetGroupArn"), "{cause}");
    assert_eq!(calls(&r, "elbv2.ModifyRule"), 0);
}

#[test]
fn a_plan_names_one_router() {
    let plan = text("alb-weighted", "plan.yaml");
    let both = format!(
        "{plan}dns:\n  hostedZoneId: Z0123456789\n  recordName: a.example.com\n  recordType: CNAME\n  blue: {{setIdentifier: b, value: b.example.com}}\n  green: {{setIdentifier: g, value: g.example.com}}\n"
    );
    let e = cutover_core::plan::Plan::parse(&both, false).unwrap_err();
    assert!(
        e.to_string()
            .contains("alb: a plan routes by dns or by alb, not both"),
        "{e}"
    );
    let neither = edit(plan, &[("alb:\n", "unused:\n")]);
    assert!(cutover_core::plan::Plan::parse(&neither, false).is_err());
}
