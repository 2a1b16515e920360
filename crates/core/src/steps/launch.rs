//! CheckLaunch (MGN): waits for the launch job to complete and every launched instance's first
//! boot, then for green to answer its health checks, before any traffic moves (and, in a
//! stateful rehost, before the database switch).

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
    /// Each source server's launch, in the plan's order (the first gives the fields above).
    pub servers: Vec<ServerLaunch>,
    pub reasons: Vec<String>,
}

/// One server's part of the launch job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerLaunch {
    pub source_server_id: String,
    /// PENDING | IN_PROGRESS | LAUNCHED | FAILED | TERMINATED, as DescribeJobs reports it.
    pub launch_status: Option<String>,
    pub first_boot: Option<String>,
    pub ec2_instance_id: Option<String>,
}

pub async fn check_launch(input: CheckLaunchInput, deps: &Deps) -> Result<LaunchStatus, StepError> {
    check_run_id(&input.run_id)?;
    let deps = &deps.reach(&input.plan, &input.run_id);
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
    let repl_err = |e| StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()));
    let several = plan.replication.source_server_ids.is_some();
    let mut reasons = Vec::new();
    let mut servers = Vec::new();
    let mut job_status = String::new();
    for id in plan.replication.mgn_servers() {
        let of = if several {
            format!("{id}: ")
        } else {
            String::new()
        };
        let job = deps
            .replication
            .mgn_job(&input.job_id, id)
            .await
            .map_err(repl_err)?;
        // One failed launch stops the run before any traffic moves; the instances that did
        // launch stay for the operator (the run terminates nothing).
        if matches!(job.launch_status.as_deref(), Some("FAILED" | "TERMINATED")) {
            return Err(StepError::ReplicationFailed(format!(
                "MGN launch job {} ended with the launch of server {id} {}",
                job.id,
                job.launch_status.unwrap_or_default()
            )));
        }
        let server = deps.replication.mgn_server(id).await.map_err(repl_err)?;
        let instance = server.launched_instance;
        let first_boot = instance.as_ref().map(|l| l.first_boot.clone());
        if first_boot.as_deref() == Some("STOPPED") {
            return Err(StepError::ReplicationFailed(format!(
                "the cutover instance of {id} stopped during its first boot"
            )));
        }
        if job.status != "COMPLETED" || job.launch_status.as_deref() != Some("LAUNCHED") {
            reasons.push(format!(
                "{of}launch job {} is {} (launch {})",
                job.id,
                job.status,
                job.launch_status.as_deref().unwrap_or("unknown")
            ));
        }
        if first_boot.as_deref() != Some("SUCCEEDED") {
            reasons.push(format!(
                "{of}first boot is {}",
                first_boot.as_deref().unwrap_or("not started")
            ));
        }
        job_status = job.status;
        servers.push(ServerLaunch {
            source_server_id: id.to_string(),
            launch_status: job.launch_status,
            first_boot,
            ec2_instance_id: instance.and_then(|l| l.ec2_instance_id),
        });
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
    // A stateful rehost launches while writes are frozen: the freeze's bound holds through the
    // launch too (the catch unfreezes the source; nothing was written to green yet).
    if let (false, Some(frozen_at)) = (ready, run.data.frozen_at) {
        let frozen_for = (now - frozen_at).num_milliseconds() as f64 / 1000.0;
        let max = plan.data.max_freeze_seconds as f64;
        if frozen_for >= max {
            return Err(StepError::FreezeTooLong(format!(
                "writes frozen {frozen_for:.0}s, the most data.maxFreezeSeconds allows ({max:.0}s), and green is not up yet: {}",
                reasons.join("; ")
            )));
        }
    }
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
            "cutover instance{} {} booted and healthy (job {})",
            if servers.len() > 1 { "s" } else { "" },
            servers
                .iter()
                .map(|s| s.ec2_instance_id.as_deref().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(", "),
            input.job_id
        );
        audit(deps, ev).await?;
    }
    Ok(LaunchStatus {
        ready,
        job_status,
        first_boot: servers.first().and_then(|s| s.first_boot.clone()),
        ec2_instance_id: servers.first().and_then(|s| s.ec2_instance_id.clone()),
        servers,
        reasons,
    })
}
