//! MGN: replication is continuous already; the cutover instance (green) is launched only after
//! the lag gate opens, so it holds data no older than the threshold, and FinalizeCutover is the
//! point of no return.

use super::{repl_err, LagReading, StartReplicationInput, StartReplicationOutput, Strategy};
use crate::duration::iso8601_seconds;
use crate::error::StepError;
use crate::plan::{Plan, ReplicationKind};
use crate::ports::PortErrorKind;
use crate::steps::{audit, event, load_run, remember, stored_result, Deps};
use async_trait::async_trait;

const LAUNCH_KEY: &str = "launch";

pub(super) struct Mgn<'a> {
    pub server_id: &'a str,
}

#[async_trait]
impl Strategy for Mgn<'_> {
    async fn preflight(&self, deps: &Deps, problems: &mut Vec<String>) -> Result<(), StepError> {
        let id = self.server_id;
        match deps.replication.mgn_server(id).await {
            Ok(s) => {
                if s.lifecycle == "CUTTING_OVER" {
                    // Its launched instance holds the data of that earlier launch, not of now:
                    // shifting traffic to it would serve stale data. Relaunching silently would
                    // terminate an instance someone may still be looking at, so refuse.
                    problems.push(format!(
                        "replication.sourceServerId: MGN server {id} is already CUTTING_OVER from an earlier launch{}: its instance holds that launch's data. Revert it first (MGN console: 'Revert to ready for cutover', which terminates the launched instance; API: ChangeServerLifeCycleState to READY_FOR_CUTOVER), then start the cutover again",
                        s.launched_instance
                            .as_ref()
                            .and_then(|l| l.job_id.as_deref())
                            .map(|j| format!(" (job {j})"))
                            .unwrap_or_default()
                    ));
                } else if s.lifecycle != "READY_FOR_CUTOVER" {
                    problems.push(format!(
                        "replication.sourceServerId: MGN server is '{}', not READY_FOR_CUTOVER",
                        s.lifecycle
                    ));
                }
                if ["DISCONNECTED", "STOPPED", "STALLED"].contains(&s.replication_state.as_str()) {
                    problems.push(format!(
                        "replication.sourceServerId: MGN replication is '{}'",
                        s.replication_state
                    ));
                }
                Ok(())
            }
            Err(e) if e.kind == PortErrorKind::NotFound => {
                problems.push(format!(
                    "replication.sourceServerId: no MGN source server {id}"
                ));
                Ok(())
            }
            Err(e) => Err(StepError::from_port(e, |e| {
                StepError::invalid(format!("replication.sourceServerId: {e}"))
            })),
        }
    }

    async fn start(&self, deps: &Deps) -> Result<StartReplicationOutput, StepError> {
        let id = self.server_id;
        let server = deps.replication.mgn_server(id).await.map_err(repl_err)?;
        if server.lifecycle != "READY_FOR_CUTOVER" {
            return Err(StepError::ReplicationFailed(format!(
                "MGN server {id} is '{}', not READY_FOR_CUTOVER",
                server.lifecycle
            )));
        }
        Ok(StartReplicationOutput {
            action: "none".into(),
            status: format!(
                "{} (replication {})",
                server.lifecycle, server.replication_state
            ),
            job_id: None,
            launched_at: None,
        })
    }

    async fn sample_lag(&self, _plan: &Plan, deps: &Deps) -> Result<LagReading, StepError> {
        let id = self.server_id;
        let mut out = LagReading::default();
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
        Ok(out)
    }

    async fn finalize(&self, deps: &Deps) -> Result<&'static str, StepError> {
        let id = self.server_id;
        let s = deps.replication.mgn_server(id).await.map_err(repl_err)?;
        if s.lifecycle != "CUTOVER" {
            deps.replication
                .finalize_mgn_cutover(id)
                .await
                .map_err(repl_err)?;
        }
        Ok("finalize-mgn-cutover")
    }

    fn green_exists_before_launch(&self) -> bool {
        false
    }

    fn lag_matters_in_bakes(&self) -> bool {
        false
    }
}

/// StartCutover, once per run: launches the point-in-time cutover instance (MGN API reference,
/// StartCutover, https://docs.aws.amazon.com/mgn/latest/APIReference/API_StartCutover.html).
pub(super) async fn launch_cutover_instance(
    input: StartReplicationInput,
    deps: &Deps,
) -> Result<StartReplicationOutput, StepError> {
    let r = &input.plan.replication;
    if r.kind != ReplicationKind::Mgn {
        return Err(StepError::invalid("launch applies to MGN replication only"));
    }
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = stored_result(&run, LAUNCH_KEY) {
        return done;
    }
    if let Some(reason) = &run.abort_requested {
        return Err(StepError::Aborted(format!("abort requested: {reason}")));
    }
    let id = r.source_server_id.as_deref().unwrap_or_default();
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
    let out = remember(deps, &input.run_id, LAUNCH_KEY, &out, |rec| {
        rec.phase = "launching".into()
    })
    .await?;
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
