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
    /// The execution's input as EventBridge delivers it (a JSON string): a wave's names the run
    /// ids of its applications.
    #[serde(default)]
    pub input: Option<String>,
    /// When the execution ended, in epoch milliseconds, as EventBridge sends it.
    #[serde(default)]
    pub stop_date: Option<i64>,
}

/// How long after an execution ended a step it had started may still be running: Step
/// Functions' StopExecution does not stop a Lambda invocation in flight, and the step functions
/// run for at most their 30 s timeout (template.yaml, Globals). Until then a run without a record
/// may still get one, so the safety net asks to be retried (an asynchronous invocation is retried
/// after one minute, then two: AWS Lambda, "Error handling and automatic retries",
/// https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
pub const IN_FLIGHT_GRACE_SECONDS: i64 = 60;

/// The run ids a wave execution's input names, or None when the input is not a wave's. A later
/// execution of a wave's chain carries the wave's outline in its hand-over.
fn wave_children(input: Option<&str>) -> Option<(String, Vec<String>)> {
    let v: serde_json::Value = serde_json::from_str(input?).ok()?;
    let wave = v
        .get("wave")
        .or_else(|| v.get("handover").and_then(|h| h.get("outline")))?;
    let runs = wave
        .get("applications")?
        .as_array()?
        .iter()
        .filter_map(|a| a.get("runId").and_then(|r| r.as_str()).map(str::to_string))
        .collect();
    Some((wave.get("wave")?.as_str()?.to_string(), runs))
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
        input: execution_input,
        stop_date,
    } = input.detail;
    check_run_id(&run_id)?;
    // A wave's execution: its applications run as their own executions and outlive it. An
    // operator who stopped the wave stopped them too: stop each one still running (each then
    // ends ABORTED and is reconciled like any stopped run: DNS restored, lock released).
    let mut children = wave_children(execution_input.as_deref());
    // A calendar firing's input names no applications: the calendar entry it took does. A
    // later execution of a firing's chain names the firing (its wave run id) in its hand-over.
    let parsed = execution_input
        .as_deref()
        .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok());
    let handed_over_firing = parsed.as_ref().and_then(|v| {
        let h = v.get("handover")?;
        h.pointer("/outline/calendar")?.as_str()?;
        h.get("waveRunId")?.as_str().map(str::to_string)
    });
    let calendar_firing = parsed.as_ref().is_some_and(|v| v.get("calendar").is_some());
    if calendar_firing || handed_over_firing.is_some() {
        let firing = handed_over_firing.unwrap_or_else(|| run_id.clone());
        let entries = deps.store.calendar().await.map_err(super::store_err)?;
        let Some(e) = entries
            .into_iter()
            .find(|e| e.wave_run_id.as_deref() == Some(firing.as_str()))
        else {
            return Ok(ReconcileOutput {
                action: "wave-ended".into(),
                outcome: None,
            });
        };
        let state = if status == "ABORTED" {
            crate::model::CalendarState::Stopped
        } else {
            crate::model::CalendarState::Failed
        };
        let note = format!("its wave execution ended {status}");
        super::wave::settle_calendar(&e.wave, &firing, state, Some(note), deps).await?;
        let runs = e
            .applications
            .iter()
            .map(|a| super::wave::calendar_run_id(&e, &a.application))
            .collect();
        children = Some((e.wave.clone(), runs));
    }
    if let Some((wave, runs)) = children {
        if status != "ABORTED" {
            return Ok(ReconcileOutput {
                action: "wave-ended".into(),
                outcome: None,
            });
        }
        let cause = format!("the wave {wave} ({run_id}) was stopped");
        for child in runs {
            check_run_id(&child)?;
            if deps
                .executions
                .is_running(&child)
                .await
                .map_err(|e| StepError::from_port(e, |e| StepError::Retryable(e.to_string())))?
                == Some(true)
            {
                deps.executions
                    .stop(&child, "WaveStopped", &cause)
                    .await
                    .map_err(|e| {
                        StepError::from_port(e, |e| StepError::Retryable(e.to_string()))
                    })?;
            }
        }
        return Ok(ReconcileOutput {
            action: "wave-children-stopped".into(),
            outcome: None,
        });
    }
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
        // A validation still in flight may yet store the run and take the lock: look again.
        if let Some(stopped) = stop_date {
            let since = deps.clock.now().timestamp_millis() - stopped;
            if since < IN_FLIGHT_GRACE_SECONDS * 1000 {
                return Err(StepError::Retryable(format!(
                    "run {run_id} has no record {}s after its execution ended: a step may still be storing it",
                    since / 1000
                )));
            }
        }
        // Stopped before validation stored anything: nothing moved, no lock was taken.
        return Ok(ReconcileOutput {
            action: "nothing-started".into(),
            outcome: None,
        });
    };
    let succeeded = matches!(
        run.outcome.as_deref(),
        Some(super::close::COMPLETED | super::close::COMPLETED_WITH_ERRORS)
    );
    if succeeded {
        // The close recorded the outcome and then kept failing: the execution ended instead
        // of succeeding. The run is kept as recorded; a human hears the machine did not close.
        page_close_failed(deps, &run, &status, cause.as_deref()).await?;
    }
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
    // The last bake passed and the execution ended before it could close the run (a close
    // that kept failing): the run is completed. Nothing is rolled back; the people on call hear
    // that the machine could not close it.
    if run.succeeded() {
        page_close_failed(deps, &run, &status, cause.as_deref()).await?;
        let why = cause.unwrap_or_else(|| format!("the execution ended {status}"));
        let closed = close_run(
            CloseRunInput {
                run_id,
                plan,
                outcome: Some(super::close::COMPLETED.into()),
                error: None,
                warning: Some(format!(
                    "closed by the safety net after the execution ended {status}: {why}"
                )),
            },
            deps,
        )
        .await?;
        return Ok(ReconcileOutput {
            action: "closed".into(),
            outcome: Some(closed.outcome),
        });
    }
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

/// Pages once that a run which reached success ended its execution without closing cleanly.
async fn page_close_failed(
    deps: &Deps,
    run: &crate::model::RunRecord,
    status: &str,
    cause: Option<&str>,
) -> Result<(), StepError> {
    let why = cause.map_or_else(|| format!("the execution ended {status}"), str::to_string);
    super::page_once(
        deps,
        &run.run_id,
        &run.application,
        "page.close_failed_after_success",
        "close_failed_after_success",
        format!(
            "Run {} of {} passed its last bake (traffic on green) but its execution ended {status} before it was closed ({why}). The run is completed; nothing was rolled back. Check it with `cutover run status {}`.",
            run.run_id, run.application, run.run_id
        ),
    )
    .await
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

/// The run sweep's input, from an EventBridge schedule every few minutes: `{"sweep": {}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepInput {
    pub sweep: SweepOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepOptions {
    /// How long past its plan's worst case (`Plan::worst_case_seconds`) an active run may go
    /// before it is called stuck.
    #[serde(default = "default_stuck_margin")]
    pub stuck_margin_seconds: u64,
    /// How long before its expiry an undecided gate is announced as expiring.
    #[serde(default = "default_warn_before")]
    pub warn_before_seconds: u64,
}

fn default_stuck_margin() -> u64 {
    900
}

fn default_warn_before() -> u64 {
    900
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepOutput {
    /// Active runs (no outcome recorded) looked at.
    pub runs_checked: usize,
    /// Active runs past their plan's worst-case duration plus the margin.
    pub stuck: Vec<String>,
    /// Active runs whose execution has ended: their lock is held by a finished execution.
    pub abandoned: Vec<String>,
    /// `run/gate` of undecided gates that expire within `warnBeforeSeconds`.
    pub expiring: Vec<String>,
}

/// The run sweep: finds what the machine's own paths and the safety net cannot see, and pages
/// once per run and finding. A run is *stuck* when it is still active past the longest its plan
/// allows; it is *abandoned* when its execution ended but no outcome was recorded (the lock stays
/// held until `reconcile-run` or a human closes it, see docs/runbook.md); a gate nobody has
/// answered is announced before it expires. The step publishes one metric per finding, which the
/// template's alarms page on.
pub async fn sweep_runs(input: SweepInput, deps: &Deps) -> Result<SweepOutput, StepError> {
    let SweepOptions {
        stuck_margin_seconds,
        warn_before_seconds,
    } = input.sweep;
    let retryable = |e| StepError::from_port(e, |e| StepError::Retryable(e.to_string()));
    let now = deps.clock.now();
    let active: Vec<_> = deps
        .store
        .list_runs(None)
        .await
        .map_err(retryable)?
        .into_iter()
        .filter(|r| r.outcome.is_none())
        .collect();
    let mut out = SweepOutput {
        runs_checked: active.len(),
        stuck: Vec::new(),
        abandoned: Vec::new(),
        expiring: Vec::new(),
    };
    for run in &active {
        let (id, app) = (run.run_id.as_str(), run.application.as_str());
        if let Some(plan) = &run.plan {
            // Stuck in its phase: no audit event for longer than the plan's longest single
            // wait; or stuck as a run: older than every wait at its bound put together.
            let phase_bound = plan
                .longest_phase_seconds()
                .saturating_add(stuck_margin_seconds);
            let run_bound = plan
                .worst_case_seconds()
                .saturating_add(stuck_margin_seconds);
            let events = deps.store.events(id).await.map_err(retryable)?;
            let since = events.iter().map(|e| e.at).max().unwrap_or(run.started_at);
            let silent = (now - since).num_seconds().max(0) as u64;
            let age = (now - run.started_at).num_seconds().max(0) as u64;
            let why = if silent > phase_bound {
                Some(format!(
                    "has recorded nothing in phase '{}' for {silent} s, past the {phase_bound} s its longest wait can take",
                    run.phase
                ))
            } else if age > run_bound {
                Some(format!(
                    "is still active (phase '{}') after {age} s, past the {run_bound} s its plan can take at most",
                    run.phase
                ))
            } else {
                None
            };
            if let Some(why) = why {
                out.stuck.push(id.to_string());
                let message = format!(
                    "Run {id} of {app} {why}. Look at it with `cutover run status {id}`; abort it with `cutover run abort {id} --reason …` (docs/runbook.md, \"Run stuck\")."
                );
                super::page_once(deps, id, app, "sweep:stuck", "run_stuck", message).await?;
            }
        }
        if deps.executions.is_running(id).await.map_err(retryable)? == Some(false) {
            out.abandoned.push(id.to_string());
            let message = format!(
                "Run {id} of {app} has no outcome but its execution has ended: its lock on {app} is held by a finished execution and DNS may not be restored. The safety net (reconcile-run) should have closed it. Follow docs/runbook.md, \"Lock held by a finished execution\"."
            );
            super::page_once(
                deps,
                id,
                app,
                "sweep:abandoned",
                "lock_held_by_finished_execution",
                message,
            )
            .await?;
        }
        for a in deps.store.approvals(id).await.map_err(retryable)? {
            let left = (a.expires_at - now).num_seconds();
            if a.decision.is_some() || left <= 0 || left as u64 > warn_before_seconds {
                continue;
            }
            let gate = a.gate.as_str();
            out.expiring.push(format!("{id}/{gate}"));
            let message = format!(
                "The approval gate '{gate}' of run {id} ({app}) expires in {} min without a decision ({}). Approve: cutover run approve {id} {gate} --reason \"…\"; reject: cutover run reject {id} {gate} --reason \"…\". Without a decision the run is stopped (or rolled back) at the expiry.",
                left / 60,
                a.expires_at.to_rfc3339()
            );
            let key = format!("sweep:expiring:{gate}");
            super::page_once(deps, id, app, &key, "approval_expiring", message).await?;
        }
    }
    Ok(out)
}
