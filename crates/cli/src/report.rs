//! The run report (a contract): outcome, final DNS, transitions, simulated time, timeline, approvals.

use cutover_core::model::{Decision, RecordSet, Weights};
use cutover_core::plan::Plan;
use cutover_core::ports::RunStore;
use cutover_engine::{Execution, Status};
use cutover_sim::{Counters, World};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub run_id: String,
    pub application: String,
    /// completed | rolled_back | failed | aborted
    pub outcome: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub dns: Vec<RecordSet>,
    pub state_transitions: u64,
    pub simulated_seconds: f64,
    pub timeline: Vec<TimelineEntry>,
    pub approvals: Vec<ApprovalEntry>,
    /// Calls and side effects in the simulated world.
    pub world: Counters,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// Simulated seconds since the run started.
    pub t: f64,
    pub state: String,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalEntry {
    pub gate: String,
    /// approve | reject | expired | pending
    pub decision: String,
    pub by: Option<String>,
    /// Simulated seconds since the run started.
    pub at: Option<f64>,
    pub reason: Option<String>,
}

impl Report {
    /// 0 completed, 3 rolled back, 4 failed or aborted.
    pub fn exit_code(&self) -> i32 {
        match self.outcome.as_str() {
            "completed" => 0,
            "rolled_back" => 3,
            _ => 4,
        }
    }
}

pub async fn build_report(
    plan: &Plan,
    run_id: &str,
    exec: &Execution,
    world: &World,
    store: &dyn RunStore,
    dns: Vec<RecordSet>,
) -> Report {
    let start = exec.started;
    let secs = |t: chrono::DateTime<chrono::Utc>| (t - start).num_milliseconds() as f64 / 1000.0;
    let record = store.load_run(run_id).await.ok().flatten();
    let outcome = record
        .as_ref()
        .and_then(|r| r.outcome.clone())
        .unwrap_or_else(|| match exec.status {
            Status::Succeeded => "completed".into(),
            Status::Aborted => "aborted".into(),
            _ => "failed".into(),
        });
    let timeline = store
        .events(run_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| TimelineEntry {
            t: secs(e.at),
            state: e.step,
            event: e.event,
            weights: e.weights,
            lag_seconds: e.lag_seconds,
            healthy: e.healthy,
            actor: e.actor,
            message: e.message,
        })
        .collect();
    let approvals = store
        .approvals(run_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|a| ApprovalEntry {
            decision: match a.decision {
                Some(Decision::Approve) => "approve".into(),
                Some(Decision::Reject) => "reject".into(),
                None if exec.stopped >= a.expires_at => "expired".into(),
                None => "pending".into(),
            },
            gate: a.gate,
            by: a.decided_by,
            at: a.decided_at.map(secs),
            reason: a.reason,
        })
        .collect();
    Report {
        run_id: run_id.to_string(),
        application: plan.application.clone(),
        outcome,
        error: exec.error.clone(),
        cause: exec.cause.clone(),
        dns,
        state_transitions: exec.state_transitions,
        simulated_seconds: secs(exec.stopped),
        timeline,
        approvals,
        world: world.counters(),
    }
}
