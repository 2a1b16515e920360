//! DMS replication tasks (start types by state, statuses, table statistics) and MGN source servers
//! (lifecycle, lag, cutover launch jobs and first boot, finalize). One file while the port joins
//! them.

use super::*;
use async_trait::async_trait;

fn mgn_server_mut<'a>(st: &'a mut State, server_id: &str) -> Result<&'a mut MgnState, PortError> {
    st.mgn.get_mut(server_id).ok_or_else(|| {
        err(
            "mgn",
            "ResourceNotFoundException",
            format!("Source server {server_id} not found"),
        )
    })
}

impl World {
    /// A task's spec and state, or DescribeReplicationTasks' ResourceNotFoundFault.
    fn dms_task_of<'a>(
        &'a self,
        st: &'a State,
        task_arn: &str,
    ) -> Result<(&'a crate::spec::DmsTaskSpec, &'a DmsState), PortError> {
        let spec = self.spec.dms.tasks.iter().find(|t| t.arn == task_arn);
        match (spec, st.dms.get(task_arn)) {
            (Some(spec), Some(s)) => Ok((spec, s)),
            _ => Err(err(
                "dms",
                "ResourceNotFoundFault",
                format!("Replication task {task_arn} not found"),
            )),
        }
    }
}

#[async_trait]
impl Replication for World {
    async fn dms_task(&self, task_arn: &str) -> Result<DmsTask, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "dms", "DescribeReplicationTasks")?;
        let (spec, s) = self.dms_task_of(&st, task_arn)?;
        Ok(DmsTask {
            arn: task_arn.into(),
            status: self.dms_status(s, spec),
            migration_type: spec.migration_type.clone(),
            tables: spec
                .tables
                .iter()
                .map(|t| match s.started_at {
                    Some(start) => TableStatus {
                        name: t.name.clone(),
                        state: t.state.at(self.t() - start),
                        validation_state: t.validation_state.at(self.t() - start),
                    },
                    None => TableStatus {
                        name: t.name.clone(),
                        state: "Before load".into(),
                        validation_state: "Not enabled".into(),
                    },
                })
                .collect(),
        })
    }

    async fn start_dms_task(
        &self,
        task_arn: &str,
        start_type: DmsStartType,
    ) -> Result<(), PortError> {
        let mut st = self.st();
        self.enter(&mut st, "dms", "StartReplicationTask")?;
        let (spec, s) = self.dms_task_of(&st, task_arn)?;
        let status = self.dms_status(s, spec);
        let full_load = spec.migration_type != "cdc";
        let carries = spec.carries;
        let allowed = match (status.as_str(), start_type) {
            ("ready", DmsStartType::StartReplication) => true,
            ("stopped", DmsStartType::ResumeProcessing) => spec.migration_type != "full-load",
            ("stopped", DmsStartType::StartReplication) => !full_load,
            ("stopped" | "failed", DmsStartType::ReloadTarget) => full_load,
            _ => false,
        };
        if !allowed {
            return Err(err(
                "dms",
                "InvalidResourceStateFault",
                format!("Replication task is in state {status}; {start_type:?} is not allowed"),
            ));
        }
        let t = self.t();
        self.settle(&mut st);
        let other_running = self.spec.dms.tasks.iter().any(|o| {
            o.arn != task_arn
                && o.carries != carries
                && st.dms.get(&o.arn).is_some_and(|os| {
                    matches!(self.dms_status(os, o).as_str(), "running" | "starting")
                })
        });
        if other_running {
            st.counters.both_directions += 1;
        }
        if let Some(s) = st.dms.get_mut(task_arn) {
            s.status = "running".into();
            s.started_at = Some(t);
            s.stopped_at = None;
        }
        st.counters.dms_starts += 1;
        *st.counters
            .dms_starts_by_task
            .entry(task_arn.to_string())
            .or_default() += 1;
        Ok(())
    }

    async fn stop_dms_task(&self, task_arn: &str) -> Result<(), PortError> {
        let mut st = self.st();
        self.enter(&mut st, "dms", "StopReplicationTask")?;
        let (spec, s) = self.dms_task_of(&st, task_arn)?;
        let status = self.dms_status(s, spec);
        if status != "running" {
            return Err(err(
                "dms",
                "InvalidResourceStateFault",
                format!("Replication task is in state {status}, not running"),
            ));
        }
        self.settle(&mut st);
        let t = self.t();
        if let Some(s) = st.dms.get_mut(task_arn) {
            s.status = "stopped".into();
            s.stopped_at = Some(t);
        }
        st.counters.dms_stops += 1;
        Ok(())
    }

    async fn mgn_server(&self, server_id: &str) -> Result<MgnServer, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "mgn", "DescribeSourceServers")?;
        self.describe_mgn(&st, server_id)
    }

    /// One LAUNCH job for every server named (StartCutover's `sourceServerIDs`, 1 to 200):
    /// refused whole, changing nothing, when a server is unknown or not READY_FOR_CUTOVER.
    async fn start_mgn_cutover(&self, server_ids: &[String]) -> Result<String, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "mgn", "StartCutover")?;
        if server_ids.is_empty() || server_ids.len() > 200 {
            return Err(err(
                "mgn",
                "ValidationException",
                format!(
                    "sourceServerIDs holds {} items, not 1 to 200",
                    server_ids.len()
                ),
            ));
        }
        for id in server_ids {
            let s = mgn_server_mut(&mut st, id)?;
            if s.lifecycle != "READY_FOR_CUTOVER" {
                return Err(err(
                    "mgn",
                    "ConflictException",
                    format!(
                        "Source server {id} is {}, not READY_FOR_CUTOVER",
                        s.lifecycle
                    ),
                ));
            }
        }
        let t = self.t();
        // The instances are copies of what replication had carried at the launch: each server
        // `lagDuration` behind its source (MGN user guide, "Launching Cutover instances":
        // https://docs.aws.amazon.com/mgn/latest/ug/launch-cutover.html). The application's
        // data is consistent only up to the slowest server's point.
        let copy = server_ids
            .iter()
            .filter_map(|id| self.spec.mgn.servers.iter().find(|s| &s.id == id))
            .map(|s| t - interpolate(&s.lag, t).max(0.0))
            .fold(t, f64::min);
        if st.app.copied_at.is_none() {
            st.app.copied_at = Some(copy);
        }
        st.counters.mgn_cutovers += 1;
        let job = format!("mgnjob-{:017x}", st.counters.mgn_cutovers);
        for id in server_ids {
            st.counters.mgn_instances += 1;
            let instance = st.counters.mgn_instances;
            let s = mgn_server_mut(&mut st, id)?;
            s.lifecycle = "CUTTING_OVER".into();
            s.launched_at = Some(t);
            s.job_id = Some(job.clone());
            s.instance = instance;
        }
        Ok(job)
    }

    /// A launch job is PENDING for its first seconds, STARTED while the instance is created and
    /// boots, COMPLETED after `launchSeconds` (MGN API reference, Job:
    /// https://docs.aws.amazon.com/mgn/latest/APIReference/API_Job.html).
    async fn mgn_job(&self, job_id: &str, server_id: &str) -> Result<MgnJob, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "mgn", "DescribeJobs")?;
        let spec = self.spec.mgn.servers.iter().find(|s| s.id == server_id);
        let found = st
            .mgn
            .get(server_id)
            .filter(|s| s.job_id.as_deref() == Some(job_id))
            .and_then(|s| s.launched_at);
        let (Some(spec), Some(at)) = (spec, found) else {
            return Err(err(
                "mgn",
                "ResourceNotFoundException",
                format!("Job {job_id} not found"),
            ));
        };
        let age = self.t() - at;
        let (status, launch) = if age >= spec.launch_seconds {
            (
                "COMPLETED",
                if spec.launch_fails {
                    "FAILED"
                } else {
                    "LAUNCHED"
                },
            )
        } else if age >= spec.launch_seconds.min(5.0) {
            ("STARTED", "IN_PROGRESS")
        } else {
            ("PENDING", "PENDING")
        };
        Ok(MgnJob {
            id: job_id.into(),
            status: status.into(),
            launch_status: Some(launch.into()),
        })
    }

    async fn finalize_mgn_cutover(&self, server_id: &str) -> Result<(), PortError> {
        let mut st = self.st();
        self.enter(&mut st, "mgn", "FinalizeCutover")?;
        let s = mgn_server_mut(&mut st, server_id)?;
        if s.lifecycle != "CUTTING_OVER" {
            return Err(err(
                "mgn",
                "ConflictException",
                format!("Source server is {}, not CUTTING_OVER", s.lifecycle),
            ));
        }
        // FinalizeCutover: lifecycle CUTOVER, replication disconnected, no lag any more.
        s.lifecycle = "CUTOVER".into();
        s.replication_state = "DISCONNECTED".into();
        st.counters.mgn_finalizes += 1;
        Ok(())
    }
}

impl World {
    /// Every source server of the world as DescribeSourceServers would show it now, without
    /// counting calls (for the report's end state).
    pub fn mgn_servers_now(&self) -> Vec<MgnServer> {
        let st = self.st();
        self.spec
            .mgn
            .servers
            .iter()
            .filter_map(|s| self.describe_mgn(&st, &s.id).ok())
            .collect()
    }

    /// A source server as DescribeSourceServers shows it.
    fn describe_mgn(&self, st: &State, server_id: &str) -> Result<MgnServer, PortError> {
        let spec = self.spec.mgn.servers.iter().find(|s| s.id == server_id);
        let (Some(spec), Some(s)) = (spec, st.mgn.get(server_id)) else {
            return Err(err(
                "mgn",
                "ResourceNotFoundException",
                format!("Source server {server_id} not found"),
            ));
        };
        let lag = (s.replication_state == "CONTINUOUS")
            .then(|| format!("PT{}S", interpolate(&spec.lag, self.t()).round() as u64));
        let launched_instance = s.launched_at.map(|at| {
            let booted = self.t() >= at + spec.launch_seconds;
            LaunchedInstance {
                ec2_instance_id: (booted && !spec.launch_fails)
                    .then(|| format!("i-{:017x}", s.instance)),
                job_id: s.job_id.clone(),
                first_boot: match (booted, spec.launch_fails) {
                    (_, true) => "UNKNOWN".into(),
                    (true, false) => "SUCCEEDED".into(),
                    (false, false) => "WAITING".into(),
                },
            }
        });
        Ok(MgnServer {
            id: server_id.into(),
            lifecycle: s.lifecycle.clone(),
            replication_state: s.replication_state.clone(),
            lag_duration: lag,
            launched_instance,
        })
    }
}
