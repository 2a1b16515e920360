//! FinalizeCutover (the point of no return, only after the finalize gate) and CloseRun, which
//! records the outcome and releases the application lock on every path.

use super::{
    audit, check_run_id, event, load_run, page_once, remember, store_err, stored_result,
    update_run, Deps,
};
use crate::error::{ErrorInfo, StepError, ABORT_ERRORS};
use crate::model::RunRecord;
use crate::plan::{Plan, WritesMode};
use crate::ports::PortErrorKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinalizeInput {
    pub run_id: String,
    pub plan: Plan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizeOutput {
    /// stop-dms-task | finalize-mgn-cutover
    pub action: String,
}

const FINALIZE_KEY: &str = "finalize";
const PAGE_KEY: &str = "page";
/// The outcome of a rollback that could not restore DNS within its budget.
pub const ROLLBACK_FAILED: &str = "rollback_failed";
/// Every bake passed and traffic is on green.
pub const COMPLETED: &str = "completed";
/// The run ended on green with an error (UnhealthyAfterSwitch, FinalizeFailed, …): exit 7, and
/// a wave starts none of the application's dependants.
pub const COMPLETED_WITH_ERRORS: &str = "completed_with_errors";

pub async fn finalize_cutover(
    input: FinalizeInput,
    deps: &Deps,
) -> Result<FinalizeOutput, StepError> {
    check_run_id(&input.run_id)?;
    let deps = &deps.reach(&input.plan, &input.run_id);
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = stored_result(&run, FINALIZE_KEY) {
        return done;
    }
    if run.steps.contains_key("rollback") {
        return Err(StepError::invalid("a rolled-back run is never finalized"));
    }
    let action = super::replication::strategy(&input.plan)
        .finalize(deps)
        .await?;
    // Reverse replication (started at the data switch) ends with the rollback window.
    if let (Some(r), true) = (
        &input.plan.data.reverse_replication,
        run.data.reverse_started,
    ) {
        match deps.replication.stop_dms_task(&r.task_arn).await {
            Ok(()) => {}
            Err(e) if e.kind == PortErrorKind::Invalid => {}
            Err(e) => return Err(super::replication::repl_err(e)),
        }
    }
    let out = FinalizeOutput {
        action: action.into(),
    };
    let out = remember(deps, &input.run_id, FINALIZE_KEY, &out, |rec| {
        rec.phase = "finalized".into()
    })
    .await?;
    let mut ev = event(
        &input.run_id,
        FINALIZE_KEY,
        "FinalizeCutover",
        "finalized",
        deps.clock.now(),
    );
    ev.message = action.into();
    audit(deps, ev).await?;
    Ok(out)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseRunInput {
    pub run_id: String,
    pub plan: Plan,
    /// "completed" on the success path; otherwise derived from the error and whether traffic moved.
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    /// Something the outcome does not say (a restore applied but never confirmed INSYNC).
    #[serde(default)]
    pub warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseRunOutput {
    pub outcome: String,
    pub error: Option<String>,
    /// How long the run spent in each phase, from its audit trail (the dashboard draws them).
    #[serde(default)]
    pub phase_seconds: PhaseSeconds,
}

/// Phase durations of a run: replication (from its start to the first weight change, or to the
/// close when traffic never moved), traffic (first weight change to the close) and the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseSeconds {
    pub replication: Option<f64>,
    pub traffic: Option<f64>,
    pub total: f64,
}

impl PhaseSeconds {
    pub fn of(
        started: DateTime<Utc>,
        events: &[crate::model::AuditEvent],
        end: DateTime<Utc>,
    ) -> Self {
        let secs =
            |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_milliseconds().max(0) as f64 / 1000.0;
        let at = |name: &str| {
            events
                .iter()
                .filter(|e| e.event == name)
                .map(|e| e.at)
                .min()
        };
        let replicating = at("replication-started");
        let first_shift = at("weights-change-requested");
        PhaseSeconds {
            replication: replicating.map(|r| secs(r, first_shift.unwrap_or(end))),
            traffic: first_shift.map(|f| secs(f, end)),
            total: secs(started, end),
        }
    }
}

pub async fn close_run(input: CloseRunInput, deps: &Deps) -> Result<CloseRunOutput, StepError> {
    check_run_id(&input.run_id)?;
    let now = deps.clock.now();
    let error = input.error.as_ref().map(|e| e.error.clone());
    let existing = deps
        .store
        .load_run(&input.run_id)
        .await
        .map_err(store_err)?;
    let traffic_moved = existing.as_ref().is_some_and(|r| r.traffic_moved());
    let outcome = match input.outcome.as_deref() {
        Some("completed") if error.is_none() => COMPLETED.to_string(),
        // Ended on green, with an error that says what did not happen (green unhealthy after
        // the data switch and nobody chose to lose writes, finalize failed, …).
        Some(COMPLETED | COMPLETED_WITH_ERRORS) => COMPLETED_WITH_ERRORS.to_string(),
        Some(other @ ("failed" | "aborted" | "rolled_back" | "rollback_failed")) => {
            other.to_string()
        }
        Some(other) => {
            return Err(StepError::invalid(format!(
                "outcome '{other}' is not completed, completed_with_errors, failed, aborted, rolled_back or rollback_failed"
            )))
        }
        None if traffic_moved => {
            if error.as_deref() == Some("RollbackFailed") {
                ROLLBACK_FAILED.into()
            } else {
                "rolled_back".into()
            }
        }
        None if error
            .as_deref()
            .is_some_and(|e| ABORT_ERRORS.contains(&e) || e == "States.Timeout") =>
        {
            "aborted".into()
        }
        None => "failed".into(),
    };
    match existing {
        Some(_) => {
            update_run(deps, &input.run_id, |rec| {
                if rec.outcome.is_none() {
                    rec.outcome = Some(outcome.clone());
                    rec.error = error.clone();
                    rec.phase = "closed".into();
                }
            })
            .await?;
        }
        None => {
            // Failed before validation stored anything (bad plan, lock held): record the outcome.
            let mut rec = RunRecord::new(&input.run_id, &input.plan.application, now);
            rec.phase = "closed".into();
            rec.outcome = Some(outcome.clone());
            rec.error = error.clone();
            match deps.store.save_run(&rec).await {
                Ok(()) => {}
                Err(e) if e.kind == PortErrorKind::Conflict => {}
                Err(e) => return Err(store_err(e)),
            }
        }
    }
    let stored = load_run(deps, &input.run_id).await?;
    // Whatever path led here, a run does not end with the application refusing writes unless a
    // human was paged about it: a freeze still standing (the abandon that should have lifted it
    // ran out of retries while the run table failed) pages. The close calls no hook itself: its
    // role may invoke none (least privilege); the page says which hook to call.
    let frozen = stored.data.frozen_at.or(stored.data.freeze_requested_at);
    if frozen.is_some()
        && input.plan.data.writes != WritesMode::Unmanaged
        && !stored.steps.contains_key("page.unfreeze_failed")
    {
        let unfreeze = input
            .plan
            .data
            .unfreeze
            .as_ref()
            .map(|h| h.target().to_string())
            .unwrap_or_else(|| "data.unfreeze".into());
        page_once(
            deps,
            &input.run_id,
            &input.plan.application,
            "page.data_abandon_incomplete",
            "data_abandon_incomplete",
            format!(
                "Run {} of {} is closing while its writes may still be frozen (a freeze was asked for and no unfreeze confirmed). Call the unfreeze hook by hand: {unfreeze}.",
                input.run_id, input.plan.application
            ),
        )
        .await?;
    }
    let cause = input
        .error
        .as_ref()
        .map(|e| e.message())
        .unwrap_or_else(|| "no cause".into());
    // Traffic is on green but the point of no return failed: a human finalizes by hand.
    if stored.error.as_deref() == Some("FinalizeFailed") {
        page_once(
            deps,
            &input.run_id,
            &input.plan.application,
            "page.finalize_failed",
            "finalize_failed",
            format!(
                "{} completed (all traffic on green) but finalize failed: {cause}. Finalize by hand (stop the DMS task / MGN FinalizeCutover) once the cause is fixed.",
                input.plan.application
            ),
        )
        .await?;
    }
    let rollback_failed = stored.outcome.as_deref() == Some(ROLLBACK_FAILED);
    if rollback_failed {
        // DNS may be anywhere: a human must look now, and no other run may start on this
        // application until one has (the lock stays, the run record says why).
        page_once(
            deps,
            &input.run_id,
            &input.plan.application,
            PAGE_KEY,
            ROLLBACK_FAILED,
            format!(
                "The rollback of {} could not restore it to its snapshot within rollback.budgetSeconds ({}s): {cause}. The application's lock is kept until someone has restored it and released the lock.",
                input.plan.route_name(),
                input.plan.rollback.budget_seconds
            ),
        )
        .await?;
    } else {
        for key in input.plan.lock_keys() {
            deps.store
                .release_lock(&key, &input.run_id)
                .await
                .map_err(store_err)?;
        }
        let outcome = stored.outcome.clone().unwrap_or_default();
        let weights = stored
            .weights
            .map(|w| format!("blue {} / green {}", w.blue, w.green))
            .unwrap_or_else(|| "unchanged".into());
        let message = match &error {
            None => format!(
                "Cutover of {} {outcome} (run {}); weights {weights}. Report: `cutover run report {} --html report.html`.",
                input.plan.application, input.run_id, input.run_id
            ),
            Some(e) => format!(
                "Cutover of {} {outcome} (run {}): {e}: {cause}; weights {weights}. Report: `cutover run report {} --html report.html`.",
                input.plan.application, input.run_id, input.run_id
            ),
        };
        super::notify_once(
            deps,
            &input.run_id,
            &input.plan.application,
            "notice.closed",
            &format!("run_{outcome}"),
            message,
        )
        .await?;
    }
    let mut ev = event(&input.run_id, "close", "CloseRun", "run-closed", now);
    ev.weights = stored.weights;
    ev.message = match &error {
        Some(e) => format!("{} ({e})", stored.outcome.clone().unwrap_or_default()),
        None => stored.outcome.clone().unwrap_or_default(),
    };
    if let Some(w) = &input.warning {
        ev.message.push_str(&format!("; warning: {w}"));
    }
    if rollback_failed {
        ev.message
            .push_str("; paged; the application lock is kept until DNS is restored by hand");
    }
    audit(deps, ev).await?;
    let events = deps.store.events(&input.run_id).await.map_err(store_err)?;
    Ok(CloseRunOutput {
        phase_seconds: PhaseSeconds::of(stored.started_at, &events, now),
        outcome: stored.outcome.unwrap_or(outcome),
        error: stored.error,
    })
}

/// Plan-level helper: an abort request from the API or the CLI (the health check honours it).
pub async fn request_abort(run_id: &str, reason: &str, deps: &Deps) -> Result<(), StepError> {
    update_run(deps, run_id, |rec| {
        if rec.abort_requested.is_none() {
            rec.abort_requested = Some(reason.to_string());
        }
    })
    .await
}
