//! StartReplication and CheckReplicationLag (DMS: CDCLatencySource + CDCLatencyTarget; MGN:
//! lagDuration with state CONTINUOUS), with a gate that opens after N consecutive good samples.

use super::{audit, check_run_id, event, load_run, update_run, Deps};
use crate::duration::iso8601_seconds;
use crate::error::StepError;
use crate::model::DmsStartType;
use crate::plan::{Plan, ReplicationKind};
use crate::ports::PortErrorKind;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartReplicationInput {
    pub run_id: String,
    pub plan: Plan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartReplicationOutput {
    /// start-replication | resume-processing | start-cutover | none
    pub action: String,
    pub status: String,
}

const START_KEY: &str = "start-replication";

pub async fn start_replication(
    input: StartReplicationInput,
    deps: &Deps,
) -> Result<StartReplicationOutput, StepError> {
    check_run_id(&input.run_id)?;
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = run.steps.get(START_KEY) {
        return serde_json::from_value(done.clone())
            .map_err(|e| StepError::invalid(format!("stored start result: {e}")));
    }
    let r = &input.plan.replication;
    let out = match r.kind {
        ReplicationKind::Dms => {
            let arn = r.task_arn.as_deref().unwrap_or_default();
            let repl_err =
                |e| StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()));
            let task = deps.replication.dms_task(arn).await.map_err(repl_err)?;
            // The first run of a full-load(-and-cdc) task must be start-replication; a stopped task
            // resumes (API_StartReplicationTask, StartReplicationTaskType).
            let start = match task.status.as_str() {
                "ready" => Some(DmsStartType::StartReplication),
                "stopped" => Some(DmsStartType::ResumeProcessing),
                "running" | "starting" => None,
                other => {
                    return Err(StepError::ReplicationFailed(format!(
                        "DMS task {arn} is '{other}' and cannot be started"
                    )))
                }
            };
            match start {
                None => StartReplicationOutput {
                    action: "none".into(),
                    status: task.status,
                },
                Some(t) => match deps.replication.start_dms_task(arn, t).await {
                    Ok(()) => StartReplicationOutput {
                        action: serde_json::to_value(t)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        status: "starting".into(),
                    },
                    // Another delivery started it between our read and our call.
                    Err(e) if e.kind == PortErrorKind::Invalid => {
                        let now = deps.replication.dms_task(arn).await.map_err(repl_err)?;
                        if now.status == "running" || now.status == "starting" {
                            StartReplicationOutput {
                                action: "none".into(),
                                status: now.status,
                            }
                        } else {
                            return Err(StepError::ReplicationFailed(e.to_string()));
                        }
                    }
                    Err(e) => return Err(repl_err(e)),
                },
            }
        }
        ReplicationKind::Mgn => {
            let id = r.source_server_id.as_deref().unwrap_or_default();
            let repl_err =
                |e| StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()));
            let server = deps.replication.mgn_server(id).await.map_err(repl_err)?;
            match server.lifecycle.as_str() {
                "READY_FOR_CUTOVER" => {
                    let job = deps
                        .replication
                        .start_mgn_cutover(id)
                        .await
                        .map_err(repl_err)?;
                    StartReplicationOutput {
                        action: "start-cutover".into(),
                        status: format!("CUTTING_OVER (job {job})"),
                    }
                }
                "CUTTING_OVER" => StartReplicationOutput {
                    action: "none".into(),
                    status: server.lifecycle,
                },
                other => {
                    return Err(StepError::ReplicationFailed(format!(
                        "MGN server {id} is '{other}', not READY_FOR_CUTOVER"
                    )))
                }
            }
        }
    };
    let stored = serde_json::to_value(&out).map_err(|e| StepError::invalid(e.to_string()))?;
    update_run(deps, &input.run_id, |rec| {
        rec.steps
            .entry(START_KEY.into())
            .or_insert_with(|| stored.clone());
        rec.phase = "replicating".into();
    })
    .await?;
    let mut ev = event(
        &input.run_id,
        START_KEY,
        "StartReplication",
        "replication-started",
        deps.clock.now(),
    );
    ev.message = format!("action {} ({})", out.action, out.status);
    audit(deps, ev).await?;
    Ok(out)
}

/// The lag gate carried from sample to sample in the execution state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LagGate {
    #[serde(default)]
    pub consecutive: u32,
    #[serde(default)]
    pub samples: u32,
    #[serde(default)]
    pub lag_seconds: Option<f64>,
    #[serde(default)]
    pub converged: bool,
    #[serde(default)]
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckLagInput {
    pub run_id: String,
    pub plan: Plan,
    #[serde(default)]
    pub gate: LagGate,
    pub started_at: DateTime<Utc>,
}

/// Current lag in seconds and why it cannot count (None lag or reasons = a bad sample).
pub(crate) async fn read_lag(
    plan: &Plan,
    deps: &Deps,
) -> Result<(Option<f64>, Vec<String>), StepError> {
    let r = &plan.replication;
    let repl_err = |e| StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()));
    let mut reasons = Vec::new();
    match r.kind {
        ReplicationKind::Dms => {
            let arn = r.task_arn.as_deref().unwrap_or_default();
            let task = deps.replication.dms_task(arn).await.map_err(repl_err)?;
            if task.status == "failed" {
                return Err(StepError::ReplicationFailed(format!(
                    "DMS task {arn} failed"
                )));
            }
            if task.status != "running" {
                reasons.push(format!("DMS task is '{}'", task.status));
            }
            reasons.extend(task.tables.iter().filter_map(|t| t.blocking_reason()));
            let lag = deps
                .metrics
                .dms_cdc_latency(arn)
                .await
                .map_err(|e| {
                    StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()))
                })?
                .map(|(s, t)| s + t);
            if lag.is_none() {
                reasons.push("no CDCLatencySource/CDCLatencyTarget datapoint yet".into());
            }
            Ok((lag, reasons))
        }
        ReplicationKind::Mgn => {
            let id = r.source_server_id.as_deref().unwrap_or_default();
            let s = deps.replication.mgn_server(id).await.map_err(repl_err)?;
            if ["DISCONNECTED", "STOPPED"].contains(&s.replication_state.as_str()) {
                return Err(StepError::ReplicationFailed(format!(
                    "MGN replication of {id} is {}",
                    s.replication_state
                )));
            }
            if s.replication_state != "CONTINUOUS" {
                reasons.push(format!(
                    "MGN replication is '{}', not CONTINUOUS",
                    s.replication_state
                ));
            }
            let lag = s.lag_duration.as_deref().and_then(iso8601_seconds);
            if lag.is_none() {
                reasons.push(format!("MGN lagDuration is {:?}", s.lag_duration));
            }
            Ok((lag, reasons))
        }
    }
}

pub async fn check_replication_lag(
    input: CheckLagInput,
    deps: &Deps,
) -> Result<LagGate, StepError> {
    check_run_id(&input.run_id)?;
    let plan = &input.plan;
    let now = deps.clock.now();
    let (lag, mut reasons) = read_lag(plan, deps).await?;
    let max = plan.replication.max_lag_seconds;
    if let Some(l) = lag {
        if l > max {
            reasons.push(format!("lag {l:.1}s is above {max}s"));
        }
    }
    let good = reasons.is_empty();
    let mut gate = input.gate.clone();
    gate.samples += 1;
    gate.consecutive = if good { gate.consecutive + 1 } else { 0 };
    gate.lag_seconds = lag;
    gate.converged = gate.consecutive >= plan.replication.stable_samples;
    gate.reasons = reasons;

    let mut ev = event(
        &input.run_id,
        format!("lag#{}", gate.samples),
        "CheckReplicationLag",
        "lag-sampled",
        now,
    );
    ev.lag_seconds = lag;
    ev.message = if good {
        format!(
            "{}/{} consecutive samples under {max}s",
            gate.consecutive, plan.replication.stable_samples
        )
    } else {
        gate.reasons.join("; ")
    };
    audit(deps, ev).await?;
    update_run(deps, &input.run_id, |rec| rec.last_lag_seconds = lag).await?;

    let deadline = input.started_at + Duration::seconds(plan.replication.deadline_seconds as i64);
    if !gate.converged && now >= deadline {
        return Err(StepError::LagNotConverged(format!(
            "lag did not stay under {max}s for {} samples within {}s (last: {})",
            plan.replication.stable_samples,
            plan.replication.deadline_seconds,
            lag.map(|l| format!("{l:.1}s"))
                .unwrap_or_else(|| "unknown".into())
        )));
    }
    Ok(gate)
}
