//! StartReplication and CheckReplicationLag (DMS: the end-to-end CDCLatencyTarget, every table out
//! of full load, no failing validation, a fresh datapoint; MGN: lagDuration with state
//! CONTINUOUS), with a gate that opens after N consecutive good samples.

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
    /// MGN only, after the lag gate opened: launch the cutover instance (StartCutover).
    #[serde(default)]
    pub launch: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartReplicationOutput {
    /// start-replication | resume-processing | start-cutover | none
    pub action: String,
    pub status: String,
    /// The MGN launch job, once launched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<DateTime<Utc>>,
}

const START_KEY: &str = "start-replication";
const LAUNCH_KEY: &str = "launch";

pub async fn start_replication(
    input: StartReplicationInput,
    deps: &Deps,
) -> Result<StartReplicationOutput, StepError> {
    check_run_id(&input.run_id)?;
    if input.launch {
        return launch_cutover_instance(input, deps).await;
    }
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
                    job_id: None,
                    launched_at: None,
                },
                Some(t) => match deps.replication.start_dms_task(arn, t).await {
                    Ok(()) => StartReplicationOutput {
                        action: serde_json::to_value(t)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        status: "starting".into(),
                        job_id: None,
                        launched_at: None,
                    },
                    // Another delivery started it between our read and our call.
                    Err(e) if e.kind == PortErrorKind::Invalid => {
                        let now = deps.replication.dms_task(arn).await.map_err(repl_err)?;
                        if now.status == "running" || now.status == "starting" {
                            StartReplicationOutput {
                                action: "none".into(),
                                status: now.status,
                                job_id: None,
                                launched_at: None,
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
            // MGN replicates continuously already; the cutover instance is launched only after
            // the lag gate opens, so that it holds data no older than the threshold.
            let id = r.source_server_id.as_deref().unwrap_or_default();
            let repl_err =
                |e| StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()));
            let server = deps.replication.mgn_server(id).await.map_err(repl_err)?;
            if server.lifecycle != "READY_FOR_CUTOVER" {
                return Err(StepError::ReplicationFailed(format!(
                    "MGN server {id} is '{}', not READY_FOR_CUTOVER",
                    server.lifecycle
                )));
            }
            StartReplicationOutput {
                action: "none".into(),
                status: format!(
                    "{} (replication {})",
                    server.lifecycle, server.replication_state
                ),
                job_id: None,
                launched_at: None,
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

/// StartCutover, once per run: launches the point-in-time cutover instance (MGN API reference,
/// StartCutover, https://docs.aws.amazon.com/mgn/latest/APIReference/API_StartCutover.html).
async fn launch_cutover_instance(
    input: StartReplicationInput,
    deps: &Deps,
) -> Result<StartReplicationOutput, StepError> {
    let r = &input.plan.replication;
    if r.kind != ReplicationKind::Mgn {
        return Err(StepError::invalid("launch applies to MGN replication only"));
    }
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = run.steps.get(LAUNCH_KEY) {
        return serde_json::from_value(done.clone())
            .map_err(|e| StepError::invalid(format!("stored launch result: {e}")));
    }
    if let Some(reason) = &run.abort_requested {
        return Err(StepError::Aborted(format!("abort requested: {reason}")));
    }
    let id = r.source_server_id.as_deref().unwrap_or_default();
    let repl_err = |e| StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()));
    let server = deps.replication.mgn_server(id).await.map_err(repl_err)?;
    let job_id = match server.lifecycle.as_str() {
        "READY_FOR_CUTOVER" => deps
            .replication
            .start_mgn_cutover(id)
            .await
            .map_err(repl_err)?,
        // Pre-flight refused a server already CUTTING_OVER and this run holds the application's
        // lock, so this is our own launch, redelivered before its result was stored.
        "CUTTING_OVER" => server
            .launched_instance
            .and_then(|l| l.job_id)
            .ok_or_else(|| {
                StepError::ReplicationFailed(format!(
                    "MGN server {id} is CUTTING_OVER but reports no launch job"
                ))
            })?,
        other => {
            return Err(StepError::ReplicationFailed(format!(
                "MGN server {id} is '{other}', not READY_FOR_CUTOVER"
            )))
        }
    };
    let now = deps.clock.now();
    let out = StartReplicationOutput {
        action: "start-cutover".into(),
        status: "CUTTING_OVER".into(),
        job_id: Some(job_id),
        launched_at: Some(now),
    };
    let stored = serde_json::to_value(&out).map_err(|e| StepError::invalid(e.to_string()))?;
    let kept = update_run(deps, &input.run_id, |rec| {
        rec.phase = "launching".into();
        rec.steps
            .entry(LAUNCH_KEY.into())
            .or_insert_with(|| stored.clone())
            .clone()
    })
    .await?;
    let out: StartReplicationOutput =
        serde_json::from_value(kept).map_err(|e| StepError::invalid(e.to_string()))?;
    let mut ev = event(
        &input.run_id,
        LAUNCH_KEY,
        "LaunchCutoverInstance",
        "cutover-instance-launched",
        now,
    );
    ev.message = format!(
        "StartCutover for {id}: launch job {}",
        out.job_id.as_deref().unwrap_or("?")
    );
    audit(deps, ev).await?;
    Ok(out)
}

/// One reading of the replication: the lag, and why it cannot count.
#[derive(Debug, Clone, Default)]
pub(crate) struct LagReading {
    pub lag: Option<f64>,
    /// Something is wrong (a table in error, failing validation, the task not running): the gate
    /// stays shut, and a bake counts the round as failed.
    pub unhealthy: Vec<String>,
    /// Not ready yet (full load, no or a stale datapoint): the gate stays shut, a bake is unaffected.
    pub pending: Vec<String>,
}

/// How old a DMS datapoint may be and still count: two sample intervals or two metric periods,
/// the larger. CloudWatch publishes a period's datapoint after the period ends, so a fresh one
/// is up to one period old; older means DMS stopped publishing.
pub fn dms_staleness_seconds(plan: &Plan) -> u64 {
    plan.replication
        .sample_interval_seconds
        .saturating_mul(2)
        .max(2 * crate::model::DMS_METRIC_PERIOD_SECONDS)
}

pub(crate) async fn read_lag(plan: &Plan, deps: &Deps) -> Result<LagReading, StepError> {
    let r = &plan.replication;
    let repl_err = |e| StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()));
    let mut out = LagReading::default();
    match r.kind {
        ReplicationKind::Dms => {
            let arn = r.task_arn.as_deref().unwrap_or_default();
            let task = deps.replication.dms_task(arn).await.map_err(repl_err)?;
            if task.status == "failed" {
                return Err(StepError::ReplicationFailed(format!(
                    "DMS task {arn} failed"
                )));
            }
            match task.status.as_str() {
                "running" => {}
                "starting" => out.pending.push("DMS task is 'starting'".into()),
                other => out
                    .unhealthy
                    .push(format!("DMS task is '{other}', not running")),
            }
            out.pending
                .extend(task.tables.iter().filter_map(|t| t.loading_reason()));
            out.unhealthy
                .extend(task.tables.iter().filter_map(|t| t.blocking_reason()));
            let sample = deps.metrics.dms_cdc_latency(arn).await.map_err(|e| {
                StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()))
            })?;
            match sample {
                None => out.pending.push("no CDCLatencyTarget datapoint yet".into()),
                Some(s) => {
                    let age = (deps.clock.now() - s.at).num_seconds();
                    let limit = dms_staleness_seconds(plan);
                    if age > limit as i64 {
                        out.pending.push(format!(
                            "the newest CDCLatencyTarget datapoint is {age}s old (older than {limit}s counts as unknown)"
                        ));
                    } else {
                        out.lag = Some(s.end_to_end());
                    }
                }
            }
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
            match s.replication_state.as_str() {
                "CONTINUOUS" => {}
                "STALLED" | "PAUSED" => out.unhealthy.push(format!(
                    "MGN replication is '{}', not CONTINUOUS",
                    s.replication_state
                )),
                other => out
                    .pending
                    .push(format!("MGN replication is '{other}', not CONTINUOUS")),
            }
            out.lag = s.lag_duration.as_deref().and_then(iso8601_seconds);
            if out.lag.is_none() {
                out.pending
                    .push(format!("MGN lagDuration is {:?}", s.lag_duration));
            }
        }
    }
    Ok(out)
}

pub async fn check_replication_lag(
    input: CheckLagInput,
    deps: &Deps,
) -> Result<LagGate, StepError> {
    check_run_id(&input.run_id)?;
    let plan = &input.plan;
    let now = deps.clock.now();
    // An abort is honoured while waiting for lag too: nothing has moved yet, so it ends cleanly.
    if let Some(reason) = load_run(deps, &input.run_id).await?.abort_requested {
        return Err(StepError::Aborted(format!("abort requested: {reason}")));
    }
    let reading = read_lag(plan, deps).await?;
    let lag = reading.lag;
    let mut reasons = reading.unhealthy;
    reasons.extend(reading.pending);
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
