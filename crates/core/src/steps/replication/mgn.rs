//! MGN: replication is continuous already; the cutover instance (green) is launched only after
//! the lag gate opens, so it holds data no older than the threshold, and FinalizeCutover is the
//! point of no return.

use super::{
    repl_err, Drain, LagReading, Launch, StartReplicationInput, StartReplicationOutput, Strategy,
};
use crate::duration::iso8601_seconds;
use crate::error::StepError;
use crate::plan::{Plan, ReplicationKind, WritesMode};
use crate::ports::PortErrorKind;
use crate::steps::{audit, event, load_run, remember, stored_result, Deps};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

const LAUNCH_KEY: &str = "launch";

/// The resolution of MGN's lagDuration (ISO 8601 whole seconds).
const LAG_RESOLUTION_SECONDS: f64 = 1.0;

/// The application's source servers with the plan field naming each.
pub(super) struct Mgn<'a> {
    pub plan: &'a crate::plan::ReplicationPlan,
}

impl Mgn<'_> {
    fn servers(&self) -> impl Iterator<Item = (String, &str)> {
        let plan = self.plan;
        plan.mgn_servers()
            .into_iter()
            .enumerate()
            .map(move |(i, id)| (plan.mgn_server_field(i), id))
    }

    /// "server s-… " before a message when the application has several servers.
    fn of(&self, id: &str) -> String {
        if self.plan.source_server_ids.is_some() {
            format!("{id}: ")
        } else {
            String::new()
        }
    }
}

#[async_trait]
impl Strategy for Mgn<'_> {
    async fn preflight(&self, deps: &Deps, problems: &mut Vec<String>) -> Result<(), StepError> {
        for (field, id) in self.servers() {
            match deps.replication.mgn_server(id).await {
                Ok(s) => {
                    if s.lifecycle == "CUTTING_OVER" {
                        // Its launched instance holds the data of that earlier launch, not of
                        // now: shifting traffic to it would serve stale data. Relaunching
                        // silently would terminate an instance someone may still be looking at,
                        // so refuse.
                        problems.push(format!(
                            "{field}: MGN server {id} is already CUTTING_OVER from an earlier launch{}: its instance holds that launch's data. Revert it first (MGN console: 'Revert to ready for cutover', which terminates the launched instance; API: ChangeServerLifeCycleState to READY_FOR_CUTOVER), then start the cutover again",
                            s.launched_instance
                                .as_ref()
                                .and_then(|l| l.job_id.as_deref())
                                .map(|j| format!(" (job {j})"))
                                .unwrap_or_default()
                        ));
                    } else if s.lifecycle != "READY_FOR_CUTOVER" {
                        problems.push(format!(
                            "{field}: MGN server {id} is '{}', not READY_FOR_CUTOVER",
                            s.lifecycle
                        ));
                    }
                    if ["DISCONNECTED", "STOPPED", "STALLED"]
                        .contains(&s.replication_state.as_str())
                    {
                        problems.push(format!(
                            "{field}: MGN replication of {id} is '{}'",
                            s.replication_state
                        ));
                    }
                }
                Err(e) if e.kind == PortErrorKind::NotFound => {
                    problems.push(format!(
                        "{field}: no MGN source server {id}{}",
                        crate::accounts::looked_in(
                            "replication",
                            &self.plan.role_arn,
                            deps.stack.account.as_deref()
                        )
                    ));
                }
                Err(e) => {
                    return Err(StepError::from_port(e, |e| {
                        StepError::invalid(format!("{field}: {e}"))
                    }))
                }
            }
        }
        Ok(())
    }

    /// Nothing starts: MGN replicates continuously. Every server must still be ready, or none
    /// of the run goes on.
    async fn start(&self, deps: &Deps) -> Result<StartReplicationOutput, StepError> {
        let mut statuses = Vec::new();
        let mut not_ready = Vec::new();
        for (_, id) in self.servers() {
            let server = deps.replication.mgn_server(id).await.map_err(repl_err)?;
            if server.lifecycle != "READY_FOR_CUTOVER" {
                not_ready.push(format!("MGN server {id} is '{}'", server.lifecycle));
            }
            statuses.push(format!(
                "{}{} (replication {})",
                self.of(id),
                server.lifecycle,
                server.replication_state
            ));
        }
        if !not_ready.is_empty() {
            return Err(StepError::ReplicationFailed(format!(
                "{}, not READY_FOR_CUTOVER",
                not_ready.join("; ")
            )));
        }
        Ok(StartReplicationOutput {
            action: "none".into(),
            status: statuses.join("; "),
            job_id: None,
            launched_at: None,
            launch: None,
        })
    }

    /// The lag of the application is its slowest server's; one server not yet continuous holds
    /// the gate for all.
    async fn sample_lag(&self, _plan: &Plan, deps: &Deps) -> Result<LagReading, StepError> {
        let mut out = LagReading::default();
        let mut worst: Option<(f64, &str)> = None;
        let mut unknown = false;
        for (_, id) in self.servers() {
            let (s, lag) = replicating(deps, id, "").await?;
            let of = self.of(id);
            match s.replication_state.as_str() {
                "CONTINUOUS" => {}
                "STALLED" | "PAUSED" => out.unhealthy.push(format!(
                    "{of}MGN replication is '{}', not CONTINUOUS",
                    s.replication_state
                )),
                other => out
                    .pending
                    .push(format!("{of}MGN replication is '{other}', not CONTINUOUS")),
            }
            match lag {
                Some(l) if worst.is_none_or(|(w, _)| l > w) => worst = Some((l, id)),
                Some(_) => {}
                None => {
                    unknown = true;
                    out.pending
                        .push(format!("{of}MGN lagDuration is {:?}", s.lag_duration));
                }
            }
        }
        // A server whose lag is unknown is no evidence of a small lag: no reading at all then.
        if !unknown {
            out.lag = worst.map(|(l, _)| l);
            out.lag_of = worst
                .filter(|_| self.plan.source_server_ids.is_some())
                .map(|(_, id)| id.to_string());
        }
        Ok(out)
    }

    /// FinalizeCutover for each server not finalized yet (the API takes one server a call), so
    /// a redelivery finalizes only what is left.
    async fn finalize(&self, deps: &Deps) -> Result<&'static str, StepError> {
        for (_, id) in self.servers() {
            let s = deps.replication.mgn_server(id).await.map_err(repl_err)?;
            if s.lifecycle != "CUTOVER" {
                deps.replication
                    .finalize_mgn_cutover(id)
                    .await
                    .map_err(repl_err)?;
            }
        }
        Ok("finalize-mgn-cutover")
    }

    fn green_exists_before_launch(&self) -> bool {
        false
    }

    fn lag_matters_in_bakes(&self) -> bool {
        false
    }

    /// After the lag gate, unless writes freeze first: a cutover instance is a copy of its
    /// server as replicated at the launch (MGN user guide, "Launching Cutover instances": stop
    /// the source's services before the launch; https://docs.aws.amazon.com/mgn/latest/ug/launch-cutover.html).
    fn launch(&self, plan: &Plan) -> Option<Launch> {
        Some(if plan.data.writes == WritesMode::FreezeAndSwitch {
            Launch::WhileFrozen
        } else {
            Launch::AfterLagGate
        })
    }

    /// Every server's replication has passed the freeze: CONTINUOUS, and read now its
    /// lagDuration (how far the replicated copy is behind the source, DataReplicationInfo:
    /// https://docs.aws.amazon.com/mgn/latest/APIReference/API_DataReplicationInfo.html) puts
    /// the copy at or after the moment writes stopped, so a launch now copies every write.
    async fn drained_since(
        &self,
        frozen_at: DateTime<Utc>,
        deps: &Deps,
    ) -> Result<Drain, StepError> {
        let now = deps.clock.now();
        let frozen_for = (now - frozen_at).num_milliseconds() as f64 / 1000.0;
        let mut behind = Vec::new();
        let mut worst: Option<f64> = None;
        for (_, id) in self.servers() {
            let (s, lag) = replicating(
                deps,
                id,
                ": the writes made before the freeze cannot reach green",
            )
            .await?;
            if let Some(l) = lag {
                worst = Some(worst.map_or(l, |w: f64| w.max(l)));
            }
            // lagDuration comes in whole seconds (PT30S): a copy 30.4 s behind reads 30 s. One
            // second more than it says is the most it can be behind.
            match (s.replication_state.as_str(), lag) {
                ("CONTINUOUS", Some(l)) if l + LAG_RESOLUTION_SECONDS <= frozen_for => {}
                ("CONTINUOUS", Some(l)) => behind.push(format!(
                    "{id} is {l:.0}s behind, {:.0}s short of the freeze",
                    l + LAG_RESOLUTION_SECONDS - frozen_for
                )),
                ("CONTINUOUS", None) => {
                    behind.push(format!("{id}: lagDuration is {:?}", s.lag_duration))
                }
                (state, _) => behind.push(format!("{id} replication is '{state}'")),
            }
        }
        let ids: Vec<&str> = self.servers().map(|(_, id)| id).collect();
        Ok(Drain {
            drained: behind.is_empty(),
            of: format!("MGN {}", ids.join(", ")),
            why: behind.join("; "),
            lag: worst,
        })
    }
}

/// A server as DescribeSourceServers shows it, with its lag in seconds. Replication that ended
/// (DISCONNECTED, STOPPED) fails the run, `consequence` saying what it costs: waiting cannot
/// bring it back.
async fn replicating(
    deps: &Deps,
    id: &str,
    consequence: &str,
) -> Result<(crate::model::MgnServer, Option<f64>), StepError> {
    let s = deps.replication.mgn_server(id).await.map_err(repl_err)?;
    if ["DISCONNECTED", "STOPPED"].contains(&s.replication_state.as_str()) {
        return Err(StepError::ReplicationFailed(format!(
            "MGN replication of {id} is {}{consequence}",
            s.replication_state
        )));
    }
    let lag = s.lag_duration.as_deref().and_then(iso8601_seconds);
    Ok((s, lag))
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
    let ids: Vec<String> = r.mgn_servers().into_iter().map(str::to_string).collect();
    let mut ready = Vec::new();
    let mut ours = Vec::new();
    let mut other = Vec::new();
    for id in &ids {
        let server = deps.replication.mgn_server(id).await.map_err(repl_err)?;
        match server.lifecycle.as_str() {
            "READY_FOR_CUTOVER" => ready.push(id.clone()),
            // Pre-flight refused a server already CUTTING_OVER and this run holds each server's
            // lock, so this is our own launch, redelivered before its result was stored.
            "CUTTING_OVER" => {
                ours.push((id.clone(), server.launched_instance.and_then(|l| l.job_id)))
            }
            state => other.push(format!("MGN server {id} is '{state}'")),
        }
    }
    if !other.is_empty() {
        return Err(StepError::ReplicationFailed(format!(
            "{}, not READY_FOR_CUTOVER",
            other.join("; ")
        )));
    }
    let job_id = if ours.is_empty() {
        // One LAUNCH job for every server (StartCutover takes up to 200), so they launch from
        // the same moment's data.
        deps.replication
            .start_mgn_cutover(&ids)
            .await
            .map_err(repl_err)?
    } else {
        let jobs: std::collections::BTreeSet<_> = ours.iter().map(|(_, j)| j.clone()).collect();
        match (ready.is_empty(), jobs.len(), jobs.into_iter().next().flatten()) {
            (true, 1, Some(job)) => job,
            _ => {
                return Err(StepError::ReplicationFailed(format!(
                    "the servers were not launched together: {} CUTTING_OVER ({}), {} READY_FOR_CUTOVER; revert the launched ones to READY_FOR_CUTOVER and start the cutover again",
                    ours.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>().join(", "),
                    ours.iter()
                        .map(|(_, j)| j.as_deref().unwrap_or("no job"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if ready.is_empty() { "none".to_string() } else { ready.join(", ") }
                )))
            }
        }
    };
    let now = deps.clock.now();
    let out = StartReplicationOutput {
        action: "start-cutover".into(),
        status: "CUTTING_OVER".into(),
        job_id: Some(job_id),
        launched_at: Some(now),
        launch: None,
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
        "StartCutover for {}: launch job {}",
        ids.join(", "),
        out.job_id.as_deref().unwrap_or("?")
    );
    audit(deps, ev).await?;
    Ok(out)
}
