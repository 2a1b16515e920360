//! DMS: the task's start type by its state, the end-to-end lag (CDCLatencyTarget, never summed
//! with CDCLatencySource) from a fresh datapoint once every table is out of full load, and stopping
//! the task at finalize.

use super::{repl_err, Drain, LagReading, Launch, StartReplicationOutput, Strategy};
use crate::error::StepError;
use crate::model::DmsStartType;
use crate::plan::Plan;
use crate::ports::PortErrorKind;
use crate::steps::Deps;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub(super) struct Dms<'a> {
    pub task_arn: &'a str,
    /// The section's role, for pre-flight's messages (`replication.roleArn`).
    pub role_arn: &'a Option<String>,
}

fn started(action: &str, status: String) -> StartReplicationOutput {
    StartReplicationOutput {
        action: action.into(),
        status,
        job_id: None,
        launched_at: None,
        launch: None,
    }
}

#[async_trait]
impl Strategy for Dms<'_> {
    async fn preflight(&self, deps: &Deps, problems: &mut Vec<String>) -> Result<(), StepError> {
        let arn = self.task_arn;
        match deps.replication.dms_task(arn).await {
            Ok(t) => {
                let startable = ["ready", "stopped", "running", "starting"];
                if !startable.contains(&t.status.as_str()) {
                    problems.push(format!(
                        "replication.taskArn: DMS task is '{}', not ready, stopped or running",
                        t.status
                    ));
                }
                // A full-load task stops after the load and never replicates ongoing changes
                // (MigrationType, https://docs.aws.amazon.com/dms/latest/APIReference/API_ReplicationTask.html):
                // no lag to wait for, and green would miss every write made after the load.
                if t.migration_type == "full-load" {
                    problems.push(format!(
                        "replication.taskArn: DMS task {arn} is full-load only: it never replicates ongoing changes, so the lag gate could not open. Use a full-load-and-cdc or cdc task"
                    ));
                }
                Ok(())
            }
            Err(e) if e.kind == PortErrorKind::NotFound => {
                problems.push(format!(
                    "replication.taskArn: no DMS task {arn}{}",
                    crate::accounts::looked_in(
                        "replication",
                        self.role_arn,
                        deps.stack.account.as_deref()
                    )
                ));
                Ok(())
            }
            Err(e) => Err(StepError::from_port(e, |e| {
                StepError::invalid(format!("replication.taskArn: {e}"))
            })),
        }
    }

    async fn start(&self, deps: &Deps) -> Result<StartReplicationOutput, StepError> {
        let arn = self.task_arn;
        let task = deps.replication.dms_task(arn).await.map_err(repl_err)?;
        // The first run of a full-load(-and-cdc) task must be start-replication; a stopped task
        // resumes (API_StartReplicationTask, StartReplicationTaskType).
        let start = match task.status.as_str() {
            "ready" => DmsStartType::StartReplication,
            "stopped" => DmsStartType::ResumeProcessing,
            "running" | "starting" => return Ok(started("none", task.status)),
            other => {
                return Err(StepError::ReplicationFailed(format!(
                    "DMS task {arn} is '{other}' and cannot be started"
                )))
            }
        };
        match deps.replication.start_dms_task(arn, start).await {
            Ok(()) => {
                let action = serde_json::to_value(start)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                Ok(started(&action, "starting".into()))
            }
            // Another delivery started it between our read and our call.
            Err(e) if e.kind == PortErrorKind::Invalid => {
                let now = deps.replication.dms_task(arn).await.map_err(repl_err)?;
                if now.status == "running" || now.status == "starting" {
                    Ok(started("none", now.status))
                } else {
                    Err(StepError::ReplicationFailed(e.to_string()))
                }
            }
            Err(e) => Err(repl_err(e)),
        }
    }

    async fn sample_lag(&self, plan: &Plan, deps: &Deps) -> Result<LagReading, StepError> {
        let arn = self.task_arn;
        let mut out = LagReading::default();
        let task = deps.replication.dms_task(arn).await.map_err(repl_err)?;
        if task.status == "failed" {
            return Err(StepError::ReplicationFailed(format!(
                "DMS task {arn} failed"
            )));
        }
        match task.status.as_str() {
            "running" => {}
            "starting" => out.pending.push("DMS task is 'starting'".into()),
            // Started by this run and now stopped: someone (or something) stopped it, and it
            // does not restart by itself (DMS task status, "stopped":
            // https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Tasks.Status.html).
            "stopped" if task.migration_type != "full-load" => {
                let why = format!(
                    "DMS task is 'stopped' ({arn}): it was stopped after this run started it (by a person, a script or DMS); start it again and run the cutover anew"
                );
                out.stopped = Some(why.clone());
                out.unhealthy.push(why);
            }
            other => out
                .unhealthy
                .push(format!("DMS task is '{other}', not running")),
        }
        out.pending
            .extend(task.tables.iter().filter_map(|t| t.loading_reason()));
        out.unhealthy
            .extend(task.tables.iter().filter_map(|t| t.blocking_reason()));
        let sample = deps.metrics.dms_cdc_latency(arn).await.map_err(repl_err)?;
        match sample {
            None => out.pending.push("no CDCLatencyTarget datapoint yet".into()),
            Some(s) => {
                let age = (deps.clock.now() - s.at).num_seconds();
                let limit = super::dms_staleness_seconds(plan);
                if age > limit as i64 {
                    out.pending.push(format!(
                        "the newest CDCLatencyTarget datapoint is {age}s old (older than {limit}s counts as unknown)"
                    ));
                } else {
                    out.lag = Some(s.end_to_end());
                }
            }
        }
        Ok(out)
    }

    async fn finalize(&self, deps: &Deps) -> Result<&'static str, StepError> {
        let arn = self.task_arn;
        let task = deps.replication.dms_task(arn).await.map_err(repl_err)?;
        if task.status != "stopped" {
            match deps.replication.stop_dms_task(arn).await {
                Ok(()) => {}
                // Stopped meanwhile (a redelivery, or someone else): the goal is reached.
                Err(e) if e.kind == PortErrorKind::Invalid => {}
                Err(e) => return Err(repl_err(e)),
            }
        }
        Ok("stop-dms-task")
    }

    fn green_exists_before_launch(&self) -> bool {
        true
    }

    fn lag_matters_in_bakes(&self) -> bool {
        true
    }

    fn launch(&self, _plan: &Plan) -> Option<Launch> {
        None
    }

    /// Drained: the task runs, and a datapoint whose whole period lies after the freeze (no write
    /// can be in flight unseen) shows nothing waiting to be applied (CDCIncomingChanges) and no
    /// latency left (CDCLatencyTarget; DMS reports latency from the oldest change not yet
    /// applied). AWS DMS user guide, "Replication task metrics":
    /// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Monitoring.html
    async fn drained_since(
        &self,
        frozen_at: DateTime<Utc>,
        deps: &Deps,
    ) -> Result<Drain, StepError> {
        let task = self.task_arn;
        let status = deps
            .replication
            .dms_task(task)
            .await
            .map_err(repl_err)?
            .status;
        if status != "running" {
            return Err(StepError::ReplicationFailed(format!(
                "replication task {task} is {status}: the changes made before the freeze cannot drain"
            )));
        }
        let reading = deps.metrics.dms_cdc_latency(task).await.map_err(|e| {
            StepError::from_port(e, |e| StepError::ReplicationFailed(e.to_string()))
        })?;
        let (drained, why) = match reading {
            None => (false, "no CDC datapoint yet".to_string()),
            Some(r) if r.at < frozen_at => (
                false,
                "newest datapoint is from before the freeze".to_string(),
            ),
            Some(r) => match r.incoming_changes {
                None => (false, "no CDCIncomingChanges datapoint".to_string()),
                Some(n) if n > 0.0 || r.end_to_end() >= 1.0 => (
                    false,
                    format!("{n:.0} change(s) waiting, latency {:.1}s", r.end_to_end()),
                ),
                Some(_) => (true, String::new()),
            },
        };
        Ok(Drain {
            drained,
            of: task.to_string(),
            why,
            lag: reading.map(|r| r.end_to_end()),
        })
    }
}
