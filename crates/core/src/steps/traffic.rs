//! ShiftTrafficWeight and RollbackCutover, for either router: the step's own bookkeeping (the
//! intent before the change, the stored result, the rollback budget, the audit) here; what the
//! change is, Route 53's (steps/dns.rs) or an ALB rule's (steps/alb.rs), there.

use super::{audit, check_run_id, event, load_run, remember, stored_result, update_run, Deps};
use crate::error::{ErrorInfo, StepError};
use crate::model::{Change, Weights};
use crate::plan::{DnsPlan, Plan, Router};
use crate::ports::PortErrorKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `RollbackCutover`'s Retryable `MaxAttempts` in `cutover.asl.json`: only a backstop for the
/// execution's history; the plan's `rollback.budgetSeconds` is what ends a rollback's attempts.
pub const ROLLBACK_MAX_ATTEMPTS: u64 = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShiftInput {
    pub run_id: String,
    pub plan: Plan,
    pub index: usize,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShiftOutput {
    /// The Route 53 change to wait for; None when the router applied it at once (ALB).
    pub change_id: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub weights: Weights,
}

pub async fn shift_traffic(input: ShiftInput, deps: &Deps) -> Result<ShiftOutput, StepError> {
    check_run_id(&input.run_id)?;
    let deps = &deps.reach(&input.plan, &input.run_id);
    let plan = &input.plan;
    let step = plan.traffic.steps.get(input.index).ok_or_else(|| {
        StepError::invalid(format!("index {} names no traffic step", input.index))
    })?;
    if step.weight != input.weight {
        return Err(StepError::invalid(format!(
            "weight {} differs from traffic.steps[{}].weight {}",
            input.weight, input.index, step.weight
        )));
    }
    let key = format!("shift#{}", input.index);
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = stored_result(&run, &key) {
        return done;
    }
    if let Some(reason) = &run.abort_requested {
        return Err(StepError::Aborted(format!("abort requested: {reason}")));
    }
    // After `promote --full` (docs/controls.md) every later step goes to the last weight.
    let weight = match (run.controls.full_from, plan.traffic.steps.last()) {
        (Some(f), Some(last)) if input.index > f => last.weight,
        _ => input.weight,
    };
    let router = super::router(plan)?;
    // Route 53: the batch that turns what DNS serves into the weighted pair. ALB: green must
    // have enough healthy targets before any more traffic goes to it; nothing moves otherwise.
    let batch = match router {
        Router::Dns(d) => super::dns::shift_batch(d, deps, weight).await?,
        Router::Alb(a) => {
            if let Some(why) = super::alb::green_short(a, deps).await? {
                return Err(StepError::HealthCheckFailed(vec![format!(
                    "not shifting to green {weight}%: {why}"
                )]));
            }
            vec![]
        }
    };
    let comment = format!(
        "cutover {} step {} -> green {}%",
        input.run_id, input.index, weight
    );
    // The intent first: if the result cannot be stored, the run still knows traffic may have
    // moved (outcome, rollback and the audit trail rely on it).
    update_run(deps, &input.run_id, |rec| {
        rec.steps.insert(
            format!("shift-intent#{}", input.index),
            serde_json::json!({"weight": weight}),
        );
    })
    .await?;
    let mut intent = event(
        &input.run_id,
        format!("{key}#requested"),
        "ShiftTrafficWeight",
        "weights-change-requested",
        deps.clock.now(),
    );
    intent.weights = Some(Plan::weights_for(weight));
    audit(deps, intent).await?;
    let (change_id, submitted_at) = match router {
        Router::Dns(d) => {
            let info = super::dns::change_waiting(deps, &d.hosted_zone_id, &batch, &comment)
                .await
                .map_err(super::dns::route53_err)?;
            (Some(info.id), info.submitted_at)
        }
        Router::Alb(a) => {
            let snapshot = run.alb_snapshot.as_deref().unwrap_or_default();
            super::alb::apply(a, deps, snapshot, weight).await?;
            (None, deps.clock.now())
        }
    };
    let out = ShiftOutput {
        change_id,
        submitted_at,
        weights: Plan::weights_for(weight),
    };
    let weights = out.weights;
    let out = remember(deps, &input.run_id, &key, &out, |rec| {
        rec.weights = Some(weights);
        rec.phase = format!("shifting:{}", weight);
        rec.traffic_index = Some(input.index);
    })
    .await?;
    let mut ev = event(
        &input.run_id,
        &key,
        "ShiftTrafficWeight",
        "weights-changed",
        deps.clock.now(),
    );
    ev.weights = Some(out.weights);
    ev.message = match &out.change_id {
        Some(id) => format!("change {id} submitted"),
        None => "applied".into(),
    };
    audit(deps, ev).await?;
    Ok(out)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackInput {
    pub run_id: String,
    pub plan: Plan,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackOutput {
    pub traffic_moved: bool,
    pub change_id: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
}

pub(super) const ROLLBACK_KEY: &str = "rollback";

/// What a rollback must change to be back at the snapshot.
enum Restore<'a> {
    Dns(&'a DnsPlan, Vec<Change>),
    Alb(&'a crate::alb::AlbPlan, &'a [crate::alb::Action]),
}

/// Restores exactly the snapshot in one batch: DELETE what is not in it, UPSERT what is missing
/// (UPSERT rather than CREATE, so a retried restore cannot trip over its own records).
/// Never touches replication.
pub async fn rollback_cutover(
    input: RollbackInput,
    deps: &Deps,
) -> Result<RollbackOutput, StepError> {
    check_run_id(&input.run_id)?;
    let deps = &deps.reach(&input.plan, &input.run_id);
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = stored_result(&run, ROLLBACK_KEY) {
        return done;
    }
    let now = deps.clock.now();
    // The budget counts from the first attempt; every attempt re-reads DNS and restores the
    // snapshot from whatever it finds, so a half-applied earlier attempt or a concurrent change
    // is corrected too.
    let started = match run.rollback_started_at {
        Some(t) => t,
        None => {
            update_run(deps, &input.run_id, |rec| {
                *rec.rollback_started_at.get_or_insert(now)
            })
            .await?
        }
    };
    let budget = input.plan.rollback.budget_seconds;
    let spent = (now - started).num_seconds().max(0);
    let rb_err = |e: crate::ports::PortError| {
        match e.kind {
        // Retrying cannot help: the zone is gone or the role may not change it. (A role of
        // another account that cannot be assumed now is retried within the budget: its trust
        // may be put back, and it worked when the run began.)
        PortErrorKind::NotFound | PortErrorKind::Denied if e.service != "sts" => {
            StepError::RollbackFailed(e.to_string())
        }
        _ if spent >= i64::try_from(budget).unwrap_or(i64::MAX) => StepError::RollbackFailed(format!(
            "rollback.budgetSeconds ({budget}s) spent after {spent}s of attempts; DNS is not restored; last error: {e}"
        )),
        // Throttling, a busy zone, a refused batch (DNS changed under us: re-read next time) or
        // any other error: try again, with back-off, within the budget.
        _ => StepError::Retryable(format!("rollback attempt after {spent}s: {e}")),
    }
    };
    // What it takes to be back at the snapshot: a Route 53 batch, or the rule's actions.
    let router = super::router(&input.plan)?;
    let restore: Option<Restore> = match router {
        Router::Dns(d) => {
            let changes = super::dns::restore_batch(d, deps, &run.snapshot)
                .await
                .map_err(rb_err)?;
            (!changes.is_empty()).then_some(Restore::Dns(d, changes))
        }
        Router::Alb(a) => {
            let Some(snapshot) = run.alb_snapshot.as_deref() else {
                return Err(StepError::RollbackFailed(
                    "the run holds no snapshot of the rule's actions to restore".into(),
                ));
            };
            let now_actions = super::alb::read(a, deps).await.map_err(rb_err)?;
            (now_actions != snapshot).then_some(Restore::Alb(a, snapshot))
        }
    };
    let reason = input
        .error
        .as_ref()
        .map(|e| e.error.clone())
        .unwrap_or_else(|| "requested".into());
    let confirmed = run.steps.keys().any(|k| k.starts_with("shift#"));
    if restore.is_none() && !confirmed && run.traffic_moved() {
        // A shift was about to be sent but the router holds the snapshot and no shift was confirmed: the
        // DNS found says nothing moved, so the outcome must not claim a rollback.
        update_run(deps, &input.run_id, |rec| {
            rec.steps.retain(|k, _| !k.starts_with("shift-intent#"));
        })
        .await?;
    }
    let comment = format!("cutover {} rollback ({reason})", input.run_id);
    let out = match &restore {
        None => RollbackOutput {
            traffic_moved: confirmed,
            change_id: None,
            submitted_at: None,
        },
        Some(Restore::Dns(d, changes)) => {
            let info = super::dns::change_waiting(deps, &d.hosted_zone_id, changes, &comment)
                .await
                .map_err(rb_err)?;
            RollbackOutput {
                traffic_moved: true,
                change_id: Some(info.id),
                submitted_at: Some(info.submitted_at),
            }
        }
        Some(Restore::Alb(a, snapshot)) => {
            super::alb::write(a, deps, snapshot).await.map_err(rb_err)?;
            RollbackOutput {
                traffic_moved: true,
                change_id: None,
                submitted_at: Some(now),
            }
        }
    };
    let traffic_moved = out.traffic_moved;
    let out = remember(deps, &input.run_id, ROLLBACK_KEY, &out, |rec| {
        rec.phase = "rolling-back".into();
        if traffic_moved {
            rec.weights = Some(Weights {
                blue: 100,
                green: 0,
            });
        }
    })
    .await?;
    let mut ev = event(
        &input.run_id,
        ROLLBACK_KEY,
        "RollbackCutover",
        "rollback-submitted",
        now,
    );
    ev.message = match (&restore, &out.change_id) {
        (Some(Restore::Dns(..)), Some(id)) => format!(
            "restoring {} snapshot record set(s) after {reason}; change {id}",
            run.snapshot.len()
        ),
        (Some(Restore::Alb(a, snapshot)), _) => format!(
            "restored the {} snapshot action(s) of {} after {reason}",
            snapshot.len(),
            a.rule_arn.as_deref().unwrap_or(&a.listener_arn)
        ),
        _ => format!("the router already holds the snapshot after {reason}"),
    };
    audit(deps, ev).await?;
    Ok(out)
}
