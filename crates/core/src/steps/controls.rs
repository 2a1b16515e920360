//! Mid-run controls (docs/controls.md): `hold`, `resume`, `extend-bake`, `promote`. Each is a
//! change to the run record that every health round reads; none calls AWS. The approval API
//! authorizes the caller as it does for approvals and aborts, and this records who asked and
//! why in the audit trail. Holds and extensions are bounded together by
//! `controls.maxHoldSeconds`, so a run stays within the history and time its plan was
//! checked for.

use super::{audit, event, update_run, Deps, StepError};
use crate::model::{Hold, RunControls, RunRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlAction {
    /// No bake ends until `resume`: the run stops advancing at its next safe point (the end
    /// of the bake in progress); health rounds, abort and rollback go on.
    Hold,
    Resume,
    /// The bake in progress lasts `seconds` longer.
    ExtendBake,
    /// The bake in progress ends at its next healthy round (never before the first bake's
    /// DNS floor, never past a gate).
    Promote,
}

impl ControlAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlAction::Hold => "hold",
            ControlAction::Resume => "resume",
            ControlAction::ExtendBake => "extend-bake",
            ControlAction::Promote => "promote",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlRequest {
    pub action: ControlAction,
    /// extend-bake: 1..=controls.maxHoldSeconds.
    #[serde(default)]
    pub seconds: Option<u64>,
    /// Why, for the audit trail: 1-1000 characters.
    pub reason: String,
    /// promote: to the last step's weight at once, where the plan allows it
    /// (`controls.allowPromoteFull`) and no later step asks a gate.
    #[serde(default)]
    pub full: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    #[error("run {0} not found")]
    NotFound(String),
    /// The request itself is wrong (the field named).
    #[error("{field}: {message}")]
    BadField {
        field: &'static str,
        message: String,
    },
    /// Not now: the run is closed, not held, already held, or the budget is spent.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
}

/// Applies one control to a run, as `by`; answers what it changed.
pub async fn apply_control(
    run_id: &str,
    request: &ControlRequest,
    by: &str,
    deps: &Deps,
) -> Result<Value, ControlError> {
    let reason = request.reason.trim();
    if reason.is_empty() || reason.len() > 1000 {
        return Err(ControlError::BadField {
            field: "reason",
            message: "1-1000 characters".into(),
        });
    }
    match (request.action, request.seconds) {
        (ControlAction::ExtendBake, None) => {
            return Err(ControlError::BadField {
                field: "seconds",
                message: "extend-bake needs seconds".into(),
            })
        }
        (ControlAction::ExtendBake, Some(0)) => {
            return Err(ControlError::BadField {
                field: "seconds",
                message: "must be at least 1".into(),
            })
        }
        (ControlAction::ExtendBake, Some(_)) | (_, None) => {}
        (a, Some(_)) => {
            return Err(ControlError::BadField {
                field: "seconds",
                message: format!("{} takes no seconds", a.as_str()),
            })
        }
    }
    if request.full && request.action != ControlAction::Promote {
        return Err(ControlError::BadField {
            field: "full",
            message: format!(
                "{} cannot be full; only promote can",
                request.action.as_str()
            ),
        });
    }
    let now = deps.clock.now();
    // Refused on the record as it is, nothing written; else applied under the record's version.
    let Some(mut current) = deps
        .store
        .load_run(run_id)
        .await
        .map_err(|e| ControlError::Unavailable(e.to_string()))?
    else {
        return Err(ControlError::NotFound(run_id.to_string()));
    };
    change(&mut current, request, by, reason, now)?;
    let answer = update_run(deps, run_id, |rec| change(rec, request, by, reason, now))
        .await
        .map_err(|e: StepError| ControlError::Unavailable(e.to_string()))??;
    let mut ev = event(
        run_id,
        format!(
            "control#{}#{}",
            request.action.as_str(),
            now.timestamp_millis()
        ),
        "Control",
        match request.action {
            ControlAction::Hold => "held",
            ControlAction::Resume => "resumed",
            ControlAction::ExtendBake => "bake-extended",
            ControlAction::Promote => "bake-promoted",
        },
        now,
    );
    ev.actor = Some(by.to_string());
    ev.message = answer["message"].as_str().unwrap_or_default().to_string();
    audit(deps, ev)
        .await
        .map_err(|e| ControlError::Unavailable(e.to_string()))?;
    Ok(answer)
}

/// The change itself, on the record as loaded (retried by `update_run` on a conflict).
fn change(
    rec: &mut RunRecord,
    request: &ControlRequest,
    by: &str,
    reason: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Value, ControlError> {
    if let Some(outcome) = &rec.outcome {
        return Err(ControlError::Conflict(format!(
            "run {} is closed ({outcome}): nothing to steer",
            rec.run_id
        )));
    }
    let max = rec.plan.as_ref().map_or(0, |p| p.max_hold_seconds());
    let steps = rec.plan.as_ref().map_or(0, |p| p.traffic.steps.len());
    let used = rec.controls.used_seconds(now);
    let bake = rec.traffic_index.map(|i| {
        (
            i,
            RunControls::bake_key(i, rec.data.switched_to.as_deref() == Some("green")),
        )
    });
    let c = &mut rec.controls;
    let message = match request.action {
        ControlAction::Hold => {
            if let Some(h) = &c.held {
                return Err(ControlError::Conflict(format!(
                    "already held by {} since {} ({})",
                    h.by,
                    h.at.to_rfc3339(),
                    h.reason
                )));
            }
            if used >= max {
                return Err(ControlError::Conflict(format!(
                    "holds and extensions used {used}s of controls.maxHoldSeconds ({max}s): no hold is left"
                )));
            }
            c.held = Some(Hold {
                at: now,
                by: by.to_string(),
                reason: reason.to_string(),
            });
            format!(
                "held: no bake ends until resumed, for at most {}s more (controls.maxHoldSeconds); health checks and rollback go on. {reason}",
                max - used
            )
        }
        ControlAction::Resume => {
            let Some(h) = c.held.take() else {
                return Err(ControlError::Conflict("the run is not held".into()));
            };
            let held = (now - h.at).num_seconds().max(0) as u64;
            c.spent_seconds = c.spent_seconds.saturating_add(held);
            format!("resumed after {held}s held (held by {}). {reason}", h.by)
        }
        ControlAction::ExtendBake => {
            let seconds = request.seconds.unwrap_or(0);
            let Some((i, key)) = bake else {
                return Err(ControlError::Conflict(
                    "no bake has started: traffic has not moved yet".into(),
                ));
            };
            if used.saturating_add(seconds) > max {
                return Err(ControlError::BadField {
                    field: "seconds",
                    message: format!(
                        "{seconds}s is more than the {}s left of controls.maxHoldSeconds ({max}s)",
                        max.saturating_sub(used)
                    ),
                });
            }
            *c.extensions.entry(key).or_insert(0) += seconds;
            c.spent_seconds = c.spent_seconds.saturating_add(seconds);
            format!(
                "the bake of step {} of {steps} lasts {seconds}s longer. {reason}",
                i + 1
            )
        }
        ControlAction::Promote => {
            let Some((i, key)) = bake else {
                return Err(ControlError::Conflict(
                    "no bake has started: traffic has not moved yet".into(),
                ));
            };
            if c.is_promoted(&key) {
                return Err(ControlError::Conflict(format!(
                    "the bake of step {} is promoted already",
                    i + 1
                )));
            }
            if request.full {
                let plan = rec.plan.as_ref();
                if !plan.is_some_and(|p| p.controls.allow_promote_full) {
                    return Err(ControlError::Conflict(
                        "the plan does not allow promote --full (controls.allowPromoteFull)".into(),
                    ));
                }
                let gated = plan.and_then(|p| {
                    p.traffic
                        .steps
                        .iter()
                        .enumerate()
                        .skip(i + 1)
                        .find_map(|(k, s)| s.approval.as_ref().map(|g| (k, g.clone())))
                });
                if let Some((k, gate)) = gated {
                    return Err(ControlError::Conflict(format!(
                        "step {} asks gate {gate}: promote --full never skips a gate",
                        k + 1
                    )));
                }
                c.full_from = Some(i);
            }
            c.promoted.push(key);
            if request.full {
                format!(
                    "the bake of step {} of {steps} ends at its next healthy round, then traffic goes to the last step's weight at once and bakes there (not before the first bake's DNS floor). {reason}",
                    i + 1
                )
            } else {
                format!(
                    "the bake of step {} of {steps} ends at its next healthy round (not before the first bake's DNS floor; gates still ask). {reason}",
                    i + 1
                )
            }
        }
    };
    Ok(json!({
        "runId": rec.run_id,
        "action": request.action.as_str(),
        "by": by,
        "held": rec.controls.held.is_some(),
        "holdSecondsLeft": max.saturating_sub(rec.controls.used_seconds(now)),
        "message": message,
    }))
}
