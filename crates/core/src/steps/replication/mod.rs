//! StartReplication and CheckReplicationLag (DMS: the end-to-end CDCLatencyTarget, every table out
//! of full load, no failing validation, a fresh datapoint; MGN: lagDuration with state
//! CONTINUOUS), with a gate that opens after N consecutive good samples.

mod dms;
mod mgn;

use super::{audit, check_run_id, event, load_run, remember, stored_result, update_run, Deps};
use crate::error::StepError;
use crate::plan::{Plan, ReplicationKind};
use crate::ports::PortError;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// One replication kind: how to check it before the run, start it, read its lag and finalize
/// it. A new kind (Aurora blue/green, say) is a new file implementing this, plus its plan fields.
#[async_trait]
pub(crate) trait Strategy: Send + Sync {
    /// Problems that keep the run from starting, each naming its plan field.
    async fn preflight(&self, deps: &Deps, problems: &mut Vec<String>) -> Result<(), StepError>;
    /// Starts (or resumes) replication; idempotency is the caller's.
    async fn start(&self, deps: &Deps) -> Result<StartReplicationOutput, StepError>;
    /// One lag reading for the gate and for bakes.
    async fn sample_lag(&self, plan: &Plan, deps: &Deps) -> Result<LagReading, StepError>;
    /// The point of no return after the finalize gate; returns what was done.
    async fn finalize(&self, deps: &Deps) -> Result<&'static str, StepError>;
    /// Whether green exists before the lag gate (so pre-flight can probe it).
    fn green_exists_before_launch(&self) -> bool;
    /// Whether replication lag speaks for green during bakes (not for a point-in-time copy).
    fn lag_matters_in_bakes(&self) -> bool;
    /// When green is launched from the replicated data, if it is launched at all.
    fn launch(&self, plan: &Plan) -> Option<Launch>;
    /// While writes are frozen since `frozen_at`: has replication carried every write made
    /// before it to green?
    async fn drained_since(
        &self,
        frozen_at: DateTime<Utc>,
        deps: &Deps,
    ) -> Result<Drain, StepError>;
}

/// When a launched green (an MGN cutover instance) is launched: the state machine branches on
/// this, never on the replication kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Launch {
    /// Once the lag gate opens, while the source still takes writes.
    AfterLagGate,
    /// After writes froze and replication caught up past the freeze, so the copy holds every
    /// write (`data.writes: freeze-and-switch`).
    WhileFrozen,
}

/// One drain reading while writes are frozen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Drain {
    pub drained: bool,
    /// What was read (the task, the servers), for messages.
    pub of: String,
    /// Why not drained yet.
    pub why: String,
    pub lag: Option<f64>,
}

/// The strategy of a validated plan's replication kind.
pub(crate) fn strategy(plan: &Plan) -> Box<dyn Strategy + '_> {
    let r = &plan.replication;
    match r.kind {
        ReplicationKind::Dms => Box::new(dms::Dms {
            task_arn: r.task_arn.as_deref().unwrap_or_default(),
            role_arn: &r.role_arn,
        }),
        ReplicationKind::Mgn => Box::new(mgn::Mgn { plan: r }),
    }
}

/// A replication call that failed: transient errors are retried, the rest fail the run.
pub(crate) fn repl_err(e: PortError) -> StepError {
    StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()))
}

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
    /// When green is launched (MGN), for the state machine's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
}

const START_KEY: &str = "start-replication";

pub async fn start_replication(
    input: StartReplicationInput,
    deps: &Deps,
) -> Result<StartReplicationOutput, StepError> {
    check_run_id(&input.run_id)?;
    let deps = &deps.reach(&input.plan, &input.run_id);
    if input.launch {
        return mgn::launch_cutover_instance(input, deps).await;
    }
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = stored_result(&run, START_KEY) {
        return done;
    }
    let kind = strategy(&input.plan);
    let mut out = kind.start(deps).await?;
    out.launch = kind.launch(&input.plan);
    let out = remember(deps, &input.run_id, START_KEY, &out, |rec| {
        rec.phase = "replicating".into()
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

/// One reading of the replication: the lag, and why it cannot count.
#[derive(Debug, Clone, Default)]
pub(crate) struct LagReading {
    pub lag: Option<f64>,
    /// Which of several sources the lag is (the slowest), for messages.
    pub lag_of: Option<String>,
    /// Something is wrong (a table in error, failing validation, the task not running): the gate
    /// stays shut, and a bake counts the round as failed.
    pub unhealthy: Vec<String>,
    /// Not ready yet (full load, no or a stale datapoint): the gate stays shut, a bake is unaffected.
    pub pending: Vec<String>,
    /// The task was stopped after the run started it: waiting cannot help, the lag gate fails.
    pub stopped: Option<String>,
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

/// The drain of the DMS task that carries writes toward where the application switches back
/// (the reverse task), or of the plan's replication toward green.
pub(crate) async fn drained_since(
    plan: &Plan,
    reverse_task: Option<&str>,
    frozen_at: DateTime<Utc>,
    deps: &Deps,
) -> Result<Drain, StepError> {
    match reverse_task {
        Some(task) => {
            dms::Dms {
                task_arn: task,
                role_arn: &plan.replication.role_arn,
            }
            .drained_since(frozen_at, deps)
            .await
        }
        None => strategy(plan).drained_since(frozen_at, deps).await,
    }
}

pub(crate) async fn read_lag(plan: &Plan, deps: &Deps) -> Result<LagReading, StepError> {
    strategy(plan).sample_lag(plan, deps).await
}

pub async fn check_replication_lag(
    input: CheckLagInput,
    deps: &Deps,
) -> Result<LagGate, StepError> {
    check_run_id(&input.run_id)?;
    let deps = &deps.reach(&input.plan, &input.run_id);
    let plan = &input.plan;
    let now = deps.clock.now();
    // An abort is honoured while waiting for lag too: nothing has moved yet, so it ends cleanly.
    if let Some(reason) = load_run(deps, &input.run_id).await?.abort_requested {
        return Err(StepError::Aborted(format!("abort requested: {reason}")));
    }
    let reading = read_lag(plan, deps).await?;
    if let Some(why) = reading.stopped {
        return Err(StepError::ReplicationFailed(why));
    }
    let lag = reading.lag;
    let mut reasons = reading.unhealthy;
    reasons.extend(reading.pending);
    let max = plan.replication.max_lag_seconds;
    if let Some(l) = lag {
        if l > max {
            let of = reading
                .lag_of
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            reasons.push(format!("lag {l:.1}s{of} is above {max}s"));
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
