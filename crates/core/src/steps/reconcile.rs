//! ReconcileRun, the safety net: an execution that ended outside the machine's own paths (a
//! console stop, a timeout, the history limit, a stopped wave stopping its children) is found by
//! an EventBridge rule on the machine's status changes. If the run recorded no outcome, this
//! restores DNS to the snapshot when traffic had moved, records the outcome and releases the
//! lock, exactly as the machine's own rollback and close would have.
//! (Step Functions execution status change events:
//! https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html)

use super::{
    check_run_id, close_run, data_cutover, rollback_cutover, CloseRunInput, DataAction, DataInput,
    Deps, RollbackInput,
};
use crate::error::{ErrorInfo, StepError};
use crate::plan::WritesMode;
use serde::{Deserialize, Serialize};

/// The EventBridge event, of which only `detail.name` and `detail.status` are read; EventBridge
/// adds fields of its own, so the rest is not refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileInput {
    pub detail: ExecutionStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatus {
    /// The execution name, which is the run id.
    pub name: String,
    /// ABORTED | TIMED_OUT | FAILED (RUNNING and SUCCEEDED are not reconciled)
    pub status: String,
    #[serde(default)]
    pub cause: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileOutput {
    /// nothing-started | already-closed | closed
    pub action: String,
    pub outcome: Option<String>,
}

pub async fn reconcile_run(
    input: ReconcileInput,
    deps: &Deps,
) -> Result<ReconcileOutput, StepError> {
    let ExecutionStatus {
        name: run_id,
        status,
        cause,
    } = input.detail;
    check_run_id(&run_id)?;
    if !["ABORTED", "TIMED_OUT", "FAILED"].contains(&status.as_str()) {
        return Err(StepError::invalid(format!(
            "detail.status '{status}' is not ABORTED, TIMED_OUT or FAILED"
        )));
    }
    let run = deps
        .store
        .load_run(&run_id)
        .await
        .map_err(|e| StepError::from_port(e, |e| StepError::Retryable(e.to_string())))?;
    let Some(run) = run else {
        // Stopped before validation stored anything: nothing moved, no lock was taken.
        return Ok(ReconcileOutput {
            action: "nothing-started".into(),
            outcome: None,
        });
    };
    if run.outcome.is_some() {
        // The outcome is recorded (the machine's own failure paths end FAILED too, and an earlier
        // attempt of this function may have got that far). Closing again is idempotent and
        // finishes what a failed attempt left: the lock released, the closing audit event.
        if let Some(plan) = run.plan.clone() {
            close_run(
                CloseRunInput {
                    run_id: run_id.clone(),
                    plan,
                    outcome: run.outcome.clone(),
                    error: run.error.clone().map(|e| ErrorInfo {
                        error: e,
                        cause: String::new(),
                    }),
                    warning: None,
                },
                deps,
            )
            .await?;
        }
        return Ok(ReconcileOutput {
            action: "already-closed".into(),
            outcome: run.outcome,
        });
    }
    let Some(plan) = run.plan.clone() else {
        return Err(StepError::invalid(format!(
            "run {run_id} has no stored plan: it cannot be reconciled"
        )));
    };
    let error = ErrorInfo {
        error: format!("Execution{}", pascal(&status)),
        cause: cause.unwrap_or_else(|| format!("the execution ended {status}")),
    };
    // Writes frozen, or a database switch asked for and never confirmed: undo that first, as the
    // machine's own abandon path would (it pages when a hook cannot be undone). A switch that
    // completed stays: both tiers write to that database, so restoring DNS loses nothing.
    let mut warnings = Vec::new();
    if plan.data.writes != WritesMode::Unmanaged {
        let out = data_cutover(
            DataInput {
                run_id: run_id.clone(),
                plan: plan.clone(),
                action: DataAction::Abandon,
                to: None,
                accept_loss: false,
                error: Some(error.clone()),
            },
            deps,
        )
        .await?;
        warnings.extend(out.warning);
    }
    // Restore whatever DNS holds to the snapshot (a no-op when nothing moved). A rollback that
    // cannot finish is retried by the caller; one that gives up ends rollback_failed.
    let (outcome, warning) = match rollback_cutover(
        RollbackInput {
            run_id: run_id.clone(),
            plan: plan.clone(),
            error: Some(error.clone()),
        },
        deps,
    )
    .await
    {
        Ok(out) if out.traffic_moved => (
            "rolled_back",
            out.change_id.map(|id| {
                format!("restored by the safety net after the execution ended {status}; change {id} not yet confirmed INSYNC")
            }),
        ),
        Ok(_) => ("aborted", None),
        Err(StepError::RollbackFailed(m)) => ("rollback_failed", Some(m)),
        Err(e) => return Err(e),
    };
    warnings.extend(warning);
    let closed = close_run(
        CloseRunInput {
            run_id,
            plan,
            outcome: Some(outcome.into()),
            error: Some(error),
            warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
        },
        deps,
    )
    .await?;
    Ok(ReconcileOutput {
        action: "closed".into(),
        outcome: Some(closed.outcome),
    })
}

/// TIMED_OUT -> TimedOut, ABORTED -> Aborted.
fn pascal(status: &str) -> String {
    status
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}
