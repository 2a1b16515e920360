//! CheckLaunch (MGN): waits for the launch job to complete and the launched instance's first
//! boot, then for green to answer its health checks, before any traffic moves.

use super::validate::preflight_health;
use super::{audit, check_run_id, event, load_run, Deps};
use crate::error::StepError;
use crate::plan::{Plan, ReplicationKind};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The `WaitForLaunch` interval in `cutover.asl.json`.
pub const LAUNCH_POLL_SECONDS: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckLaunchInput {
    pub run_id: String,
    pub plan: Plan,
    pub job_id: String,
    pub launched_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchStatus {
    /// The launch job has completed, the instance has booted and green answered its checks.
    pub ready: bool,
    pub job_status: String,
    pub first_boot: Option<String>,
    pub ec2_instance_id: Option<String>,
    pub reasons: Vec<String>,
}

pub async fn check_launch(input: CheckLaunchInput, deps: &Deps) -> Result<LaunchStatus, StepError> {
    check_run_id(&input.run_id)?;
    let plan = &input.plan;
    if plan.replication.kind != ReplicationKind::Mgn {
        return Err(StepError::invalid(
            "CheckLaunch applies to MGN replication only",
        ));
    }
    let run = load_run(deps, &input.run_id).await?;
    if let Some(reason) = &run.abort_requested {
        return Err(StepError::Aborted(format!("abort requested: {reason}")));
    }
    let id = plan
        .replication
        .source_server_id
        .as_deref()
        .unwrap_or_default();
    let repl_err = |e| StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()));
    let job = deps
        .replication
        .mgn_job(&input.job_id, id)
        .await
        .map_err(repl_err)?;
    if matches!(job.launch_status.as_deref(), Some("FAILED" | "TERMINATED")) {
        return Err(StepError::ReplicationFailed(format!(
            "MGN launch job {} ended with the server's launch {}",
            job.id,
            job.launch_status.unwrap_or_default()
        )));
    }
    let server = deps.replication.mgn_server(id).await.map_err(repl_err)?;
    let instance = server.launched_instance.clone();
    let first_boot = instance.as_ref().map(|l| l.first_boot.clone());
    if first_boot.as_deref() == Some("STOPPED") {
        return Err(StepError::ReplicationFailed(format!(
            "the cutover instance of {id} stopped during its first boot"
        )));
    }
    let mut reasons = Vec::new();
    if job.status != "COMPLETED" || job.launch_status.as_deref() != Some("LAUNCHED") {
        reasons.push(format!(
            "launch job {} is {} (launch {})",
            job.id,
            job.status,
            job.launch_status.as_deref().unwrap_or("unknown")
        ));
    }
    if first_boot.as_deref() != Some("SUCCEEDED") {
        reasons.push(format!(
            "first boot is {}",
            first_boot.as_deref().unwrap_or("not started")
        ));
    }
    if reasons.is_empty() {
        preflight_health(plan, deps, &mut reasons).await?;
    }
    let now = deps.clock.now();
    let ready = reasons.is_empty();
    let deadline = input.launched_at
        + Duration::seconds(
            i64::try_from(plan.replication.launch_deadline_seconds).unwrap_or(i64::MAX / 1000),
        );
    if !ready && now >= deadline {
        return Err(StepError::ReplicationFailed(format!(
            "green was not launched and healthy within replication.launchDeadlineSeconds ({}s): {}",
            plan.replication.launch_deadline_seconds,
            reasons.join("; ")
        )));
    }
    if ready {
        let mut ev = event(
            &input.run_id,
            "launched",
            "CheckLaunch",
            "green-launched",
            now,
        );
        ev.healthy = Some(true);
        ev.message = format!(
            "cutover instance {} booted and healthy (job {})",
            instance
                .and_then(|l| l.ec2_instance_id)
                .unwrap_or_else(|| "?".into()),
            job.id
        );
        audit(deps, ev).await?;
    }
    Ok(LaunchStatus {
        ready,
        job_status: job.status,
        first_boot,
        ec2_instance_id: server.launched_instance.and_then(|l| l.ec2_instance_id),
        reasons,
    })
}
