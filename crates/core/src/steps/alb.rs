//! The ALB router's side of the steps (crate::alb holds its plan section and port): pre-flight
//! and the snapshot, the healthy-target gate before each shift and in every bake round, the
//! shift and the exact restore. ModifyRule and ModifyListener apply when they answer, so there
//! is no change to wait for (unlike a Route 53 change batch).

use super::Deps;
use crate::alb::{Action, AlbPlan};
use crate::error::StepError;
use crate::ports::{PortError, PortErrorKind};

/// One ELBv2 call, waiting out throttling in-step: Elastic Load Balancing throttles API requests
/// per account and Region, and the caller is to retry with exponential back-off ("Request
/// throttling", Elastic Load Balancing API reference,
/// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/Welcome.html). Up to six
/// attempts over about 31 s; a throttle past them goes to the state machine's retry, like any
/// other error. Only throttling: every other error is the caller's to judge.
async fn patiently<T, F, Fut>(deps: &Deps, mut call: F) -> Result<T, PortError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PortError>>,
{
    let mut wait = std::time::Duration::from_secs(1);
    for _ in 0..5 {
        match call().await {
            Err(e) if e.kind == PortErrorKind::Throttled => {
                deps.clock.sleep(wait).await;
                wait *= 2;
            }
            other => return other,
        }
    }
    call().await
}

/// The rule's actions now (or the listener's default action's).
pub(super) async fn read(a: &AlbPlan, deps: &Deps) -> Result<Vec<Action>, PortError> {
    patiently(deps, || {
        deps.load_balancer
            .actions(&a.listener_arn, a.rule_arn.as_deref())
    })
    .await
}

/// Replaces the rule's actions (ModifyRule, or ModifyListener for the default action).
pub(super) async fn write(a: &AlbPlan, deps: &Deps, actions: &[Action]) -> Result<(), PortError> {
    patiently(deps, || {
        deps.load_balancer
            .set_actions(&a.listener_arn, a.rule_arn.as_deref(), actions)
    })
    .await
}

async fn healthy(deps: &Deps, target_group_arn: &str) -> Result<u32, PortError> {
    patiently(deps, || {
        deps.load_balancer.healthy_targets(target_group_arn)
    })
    .await
}

fn alb_err(e: PortError) -> StepError {
    StepError::from_port(e, |e| StepError::TrafficShiftFailed(e.to_string()))
}

/// Where the rule lives, for messages: the rule's ARN or "the default action of LISTENER".
fn rule_name(a: &AlbPlan) -> String {
    match &a.rule_arn {
        Some(r) => r.clone(),
        None => format!("the default action of {}", a.listener_arn),
    }
}

/// The actions the rule has now, checked to be the plan's blue; each problem names its field.
/// `green_probed`: green exists already, so its healthy targets are counted now (an MGN green
/// is launched later and counted before the first shift).
pub(super) async fn preflight(
    a: &AlbPlan,
    deps: &Deps,
    green_probed: bool,
    problems: &mut Vec<String>,
) -> Result<Vec<Action>, StepError> {
    let field = if a.rule_arn.is_some() {
        "alb.ruleArn"
    } else {
        "alb.listenerArn"
    };
    let actions = match read(a, deps).await {
        Ok(actions) => actions,
        Err(e) if e.kind == PortErrorKind::NotFound => {
            problems.push(format!("{field}: {}{}", e.message, looked_in(a, deps)));
            return Ok(vec![]);
        }
        Err(e) => {
            return Err(StepError::from_port(e, |e| {
                StepError::invalid(format!("alb: {e}"))
            }))
        }
    };
    if let Some(why) = a.unshiftable(&actions) {
        problems.push(format!("{field}: {}: {why}", rule_name(a)));
    }
    for (side, tg, counted) in [("blue", &a.blue, false), ("green", &a.green, green_probed)] {
        match healthy(deps, &tg.target_group_arn).await {
            Ok(n) if counted && n < a.min_healthy_targets => problems.push(format!(
                "alb.green.targetGroupArn: {n} healthy target(s), below alb.minHealthyTargets {}: no traffic may go to it yet",
                a.min_healthy_targets
            )),
            Ok(_) => {}
            Err(e) if e.kind == PortErrorKind::NotFound => {
                problems.push(format!(
                    "alb.{side}.targetGroupArn: {}{}",
                    e.message,
                    looked_in(a, deps)
                ))
            }
            Err(e) => {
                return Err(StepError::from_port(e, |e| {
                    StepError::invalid(format!("alb: {e}"))
                }))
            }
        }
    }
    Ok(actions)
}

/// Why green may not take traffic now (fewer healthy targets than `alb.minHealthyTargets`), or
/// `None`. An unreadable target group is a reason too: its health is unknown.
pub(super) async fn green_short(a: &AlbPlan, deps: &Deps) -> Result<Option<String>, StepError> {
    match healthy(deps, &a.green.target_group_arn).await {
        Ok(n) if n >= a.min_healthy_targets => Ok(None),
        Ok(n) => Ok(Some(format!(
            "green target group has {n} healthy target(s), below alb.minHealthyTargets {}",
            a.min_healthy_targets
        ))),
        Err(e) if matches!(e.kind, PortErrorKind::Throttled | PortErrorKind::Transient) => {
            Err(StepError::from_port(e, |e| {
                StepError::TrafficShiftFailed(e.to_string())
            }))
        }
        Err(e) => Ok(Some(format!("green target health unreadable: {e}"))),
    }
}

/// Green at `weight` percent: the snapshot's forward action with the new weights (the caller
/// checked `green_short` first).
pub(super) async fn apply(
    a: &AlbPlan,
    deps: &Deps,
    snapshot: &[Action],
    weight: u32,
) -> Result<(), StepError> {
    write(a, deps, &a.weighted(snapshot, weight))
        .await
        .map_err(alb_err)
}

/// Where a missing listener, rule or target group was looked for (crate::accounts::looked_in).
fn looked_in(a: &AlbPlan, deps: &Deps) -> String {
    crate::accounts::looked_in("alb", &a.role_arn, deps.stack.account.as_deref())
}
