//! The simulated services, one module each (route53, replication for DMS and MGN, cloudwatch,
//! http, sns) over one shared state on the virtual clock. Each behaves as AWS documents where the
//! cutover depends on it (docs/world.md cites the page behind each behaviour). Faults are not
//! here: `crate::faults::Faulty` injects them in front of any port.

use crate::clock::SimClock;
use crate::spec::{interpolate, step_value, WorldSpec};
use chrono::{DateTime, Utc};
use cutover_core::model::*;
use cutover_core::plan::HttpCheck;
use cutover_core::ports::*;
use cutover_core::secret::{ResolvedHeaders, Secret};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;

/// Seconds a started DMS task reports `starting` before `running`.
pub const DMS_STARTING_SECONDS: f64 = 10.0;

/// What happened in the world, for tests that assert no side effect happened twice.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    pub calls: BTreeMap<String, u64>,
    /// Change batches that altered the records (a no-op UPSERT is not counted).
    pub dns_changes_applied: u64,
    pub dms_starts: u64,
    pub dms_stops: u64,
    /// StartCutover calls that launched (one job, whatever the number of servers).
    pub mgn_cutovers: u64,
    /// Cutover instances launched, one per server of each StartCutover.
    pub mgn_instances: u64,
    /// FinalizeCutover calls that finalized a server (one call per server).
    pub mgn_finalizes: u64,
    pub throttled: u64,
    pub faults_injected: u64,
    /// Pages sent to the people on call (a rollback that could not restore DNS).
    pub pages_sent: u64,
    /// Notices that a run started or ended (SNS, nobody paged).
    pub notices_sent: u64,
    /// Data hook calls that reached the application (freeze, switch, unfreeze).
    pub hook_calls: u64,
    /// Hook calls that acted on the application, by `freeze`, `unfreeze`, `switch:green`,
    /// `switch:blue`: the chaos oracle bounds each.
    pub hooks_acted: BTreeMap<String, u64>,
    /// Hook calls that acted again right after the same action had acted and answered, no other
    /// hook call in between (a retry after a timeout is not counted: its first call's result was
    /// unknown). Each is a side effect repeated under one idempotency key.
    pub hooks_repeated: BTreeMap<String, u64>,
    /// StartReplicationTask calls that started a task, by task ARN.
    pub dms_starts_by_task: BTreeMap<String, u64>,
    /// Times a DMS task started while a task carrying the other direction was running (each
    /// change would come back: DMS loopback).
    pub both_directions: u64,
}

struct Zone {
    name: String,
    records: Vec<RecordSet>,
}

struct DmsState {
    status: String,
    started_at: Option<f64>,
    /// When StopReplicationTask stopped it (replication carries nothing after).
    stopped_at: Option<f64>,
}

struct MgnState {
    lifecycle: String,
    replication_state: String,
    /// When StartCutover launched the cutover instance, and its job.
    launched_at: Option<f64>,
    job_id: Option<String>,
    /// The number in the launched instance's id (one per server launched in the world).
    instance: u64,
}

struct State {
    zones: BTreeMap<String, Zone>,
    /// ELBv2 actions by rule ARN (or listener ARN, for its default rule).
    alb: BTreeMap<String, Vec<cutover_core::alb::Action>>,
    changes: HashMap<String, (DateTime<Utc>, String)>,
    next_change: u64,
    /// Route 53 requests in the current second, by the caller's account.
    r53_window: BTreeMap<String, (i64, u32)>,
    /// Route 53 demand and answers, by account.
    r53: BTreeMap<String, route53::Demand>,
    dms: BTreeMap<String, DmsState>,
    mgn: BTreeMap<String, MgnState>,
    counters: Counters,
    notices: Vec<ApprovalNotice>,
    pages: Vec<RunNotice>,
    app: app::AppState,
    /// The last data hook action that acted, and whether it answered.
    last_hook: Option<(String, bool)>,
    /// Executions of the cutover machine by run id: running or ended.
    executions: HashMap<String, bool>,
    /// Run ids whose executions were stopped (StopExecution), in order.
    stopped_executions: Vec<String>,
    /// The token key's ciphertexts: (token, run, gate) each was sealed with, by index.
    sealed: Vec<(String, String, String)>,
}

pub struct World {
    clock: SimClock,
    /// The world's fault schedule, applied by wrapping ports in `Faulty`, never inside the world.
    faults: std::sync::Arc<Faults>,
    spec: WorldSpec,
    state: Mutex<State>,
    notices_tx: Mutex<Option<UnboundedSender<ApprovalNotice>>>,
    /// The record the application's clients resolve (canonical), and what it routed to at t = 0:
    /// any other target is green.
    app_record: Option<String>,
    blue_targets: std::collections::HashSet<String>,
}

fn canonical(name: &str) -> String {
    format!("{}.", normalize_name(name))
}

/// A record as Route 53 stores it: names lower-case with a trailing dot, the alias target's too.
fn canonical_record(mut r: RecordSet) -> RecordSet {
    r.name = canonical(&r.name);
    if let Some(a) = r.alias_target.as_mut() {
        a.dns_name = canonical(&a.dns_name);
    }
    r
}

/// Route 53's own wording when a record is neither a value record nor an alias record
/// (ResourceRecordSet: an alias record omits TTL and ResourceRecords).
pub fn record_shape_error(r: &RecordSet) -> Option<String> {
    let alias = r.alias_target.is_some();
    let value = r.ttl.is_some() || !r.values.is_empty();
    if alias == value || (!alias && (r.ttl.is_none() || r.values.is_empty())) {
        let found = match (alias, r.ttl.is_some(), r.values.is_empty()) {
            (true, _, _) => "more than one",
            (false, false, false) => "ResourceRecords without TTL",
            (false, true, true) => "TTL without ResourceRecords",
            _ => "none",
        };
        return Some(format!(
            "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords]], but found {found} in Change with [Name={}, Type={}, SetIdentifier={}]",
            r.name,
            r.record_type,
            r.set_identifier.as_deref().unwrap_or("null")
        ));
    }
    None
}

use crate::faults::{aws_error as err, Faults};
pub use app::WriteTally;
pub use route53::Route53Use;

impl World {
    /// Builds the world at t = 0 of `clock`. The spec must have been validated.
    pub fn new(spec: WorldSpec, clock: SimClock) -> Self {
        let zones = spec
            .route53
            .zones
            .iter()
            .map(|z| {
                let records = z.records.iter().cloned().map(canonical_record);
                (
                    z.id.clone(),
                    Zone {
                        name: canonical(&z.name),
                        records: records.collect(),
                    },
                )
            })
            .collect();
        let dms = spec
            .dms
            .tasks
            .iter()
            .map(|t| {
                let started_at = (t.status == "running").then_some(0.0);
                (
                    t.arn.clone(),
                    DmsState {
                        status: t.status.clone(),
                        started_at,
                        stopped_at: None,
                    },
                )
            })
            .collect();
        let mgn = spec
            .mgn
            .servers
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    MgnState {
                        lifecycle: s.lifecycle.clone(),
                        replication_state: s.replication_state.clone(),
                        launched_at: None,
                        job_id: None,
                        instance: 0,
                    },
                )
            })
            .collect();
        let faults = std::sync::Arc::new(Faults::new(&spec.faults, clock));
        let alb = elbv2::initial_actions(&spec.elbv2);
        let names: std::collections::BTreeSet<String> = spec
            .route53
            .zones
            .iter()
            .flat_map(|z| z.records.iter().map(|r| canonical(&r.name)))
            .collect();
        let app_record = match &spec.app.record {
            Some(r) => Some(canonical(r)),
            None if names.len() == 1 => names.into_iter().next(),
            None => None,
        };
        let blue_targets = spec
            .route53
            .zones
            .iter()
            .flat_map(|z| z.records.iter())
            .filter(|r| Some(canonical(&r.name)) == app_record)
            .map(|r| app::target_of(&canonical_record(r.clone())))
            .collect();
        let green_tier = spec.app.green_writes_to.unwrap_or(crate::spec::Db::Green);
        let executions = spec
            .locks
            .iter()
            .map(|l| (l.held_by.clone(), l.running))
            .collect();
        World {
            clock,
            faults,
            spec,
            state: Mutex::new(State {
                zones,
                alb,
                changes: HashMap::new(),
                next_change: 0,
                r53_window: BTreeMap::new(),
                r53: BTreeMap::new(),
                dms,
                mgn,
                counters: Counters::default(),
                notices: Vec::new(),
                pages: Vec::new(),
                app: app::AppState::new(green_tier),
                executions,
                stopped_executions: Vec::new(),
                sealed: Vec::new(),
                last_hook: None,
            }),
            notices_tx: Mutex::new(None),
            app_record,
            blue_targets,
        }
    }

    pub fn spec(&self) -> &WorldSpec {
        &self.spec
    }

    pub fn clock(&self) -> SimClock {
        self.clock
    }

    /// Approval notices are also sent here as they happen (the simulated approver listens).
    pub fn subscribe_notices(&self, tx: UnboundedSender<ApprovalNotice>) {
        *self.notices_tx.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn t(&self) -> f64 {
        self.clock.elapsed_seconds()
    }

    /// Starts a DMS task's lag curve now, for runs where the task itself lives elsewhere
    /// (`--aws-endpoint-url`): its lag stays simulated.
    pub fn assume_dms_started(&self, task_arn: &str) {
        let t = self.t();
        if let Some(s) = self.st().dms.get_mut(task_arn) {
            s.status = "running".into();
            s.started_at = Some(t);
        }
    }

    /// Records an execution of the cutover machine as running or ended (the local runner does,
    /// as Step Functions would).
    pub fn set_execution(&self, run_id: &str, running: bool) {
        self.st().executions.insert(run_id.to_string(), running);
    }

    pub fn counters(&self) -> Counters {
        let mut c = self.st().counters.clone();
        c.faults_injected = self.faults.injected();
        c
    }

    /// The fault schedule, for wrapping ports in `Faulty`.
    pub fn faults(&self) -> std::sync::Arc<Faults> {
        self.faults.clone()
    }

    /// Executions stopped through the Executions port, in order.
    pub fn stopped_executions(&self) -> Vec<String> {
        self.st().stopped_executions.clone()
    }

    /// True while the application refuses writes (a freeze hook acted and no unfreeze since).
    pub fn writes_frozen(&self) -> bool {
        self.st().app.frozen
    }

    pub fn pages(&self) -> Vec<RunNotice> {
        self.st().pages.clone()
    }

    pub fn notices(&self) -> Vec<ApprovalNotice> {
        self.st().notices.clone()
    }

    /// Every record set of a name and type, as Route 53 holds it now.
    pub fn dns(&self, zone_id: &str, name: &str, record_type: RecordType) -> Vec<RecordSet> {
        let st = self.st();
        let want = canonical(name);
        let mut out: Vec<RecordSet> = st
            .zones
            .get(zone_id)
            .map(|z| {
                z.records
                    .iter()
                    .filter(|r| r.name == want && r.record_type == record_type)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.set_identifier.cmp(&b.set_identifier));
        out
    }

    /// Counts a call that reached the service (an injected fault stops a call before it).
    fn enter(&self, st: &mut State, service: &'static str, op: &str) -> Result<(), PortError> {
        *st.counters
            .calls
            .entry(format!("{service}.{op}"))
            .or_default() += 1;
        Ok(())
    }

    fn dms_status(&self, s: &DmsState, spec: &crate::spec::DmsTaskSpec) -> String {
        let t = self.t();
        match (s.status.as_str(), s.started_at) {
            ("running", Some(start)) => {
                if spec.fail_after_seconds.is_some_and(|f| t >= start + f) {
                    "failed".into()
                } else if spec.stop_after_seconds.is_some_and(|f| t >= start + f) {
                    "stopped".into()
                } else if t < start + DMS_STARTING_SECONDS {
                    "starting".into()
                } else {
                    "running".into()
                }
            }
            (other, _) => other.into(),
        }
    }
}

pub mod accounts;
mod app;
mod cloudwatch;
pub mod elbv2;
mod http;
mod replication;
mod route53;
mod sns;

/// DescribeExecution of the cutover machine: RUNNING until the execution ends
/// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
#[async_trait::async_trait]
impl Executions for World {
    async fn is_running(&self, run_id: &str) -> Result<Option<bool>, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "states", "DescribeExecution")?;
        Ok(st.executions.get(run_id).copied())
    }

    async fn stop(&self, run_id: &str, _: &str, _: &str) -> Result<(), PortError> {
        let mut st = self.st();
        self.enter(&mut st, "states", "StopExecution")?;
        if let Some(running) = st.executions.get_mut(run_id) {
            *running = false;
        }
        st.stopped_executions.push(run_id.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(yaml: &str) -> World {
        World::new(
            WorldSpec::parse(yaml, false).expect("world"),
            SimClock::start(Utc::now()),
        )
    }

    const ZONE: &str = r#"
route53:
  propagationSeconds: 30
  zones: [{id: Z1, name: example.com., records: [{name: orders.example.com., type: CNAME, ttl: 300, values: [blue.example.com]}]}]
"#;

    fn weighted(id: &str, w: u32, ttl: u64, v: &str) -> RecordSet {
        RecordSet {
            name: "orders.example.com.".into(),
            record_type: RecordType::CNAME,
            set_identifier: Some(id.into()),
            weight: Some(w),
            ttl: Some(ttl),
            values: vec![v.into()],
            alias_target: None,
            health_check_id: None,
            failover: None,
            region: None,
            geo_location: None,
            multi_value_answer: None,
            cidr_routing_config: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn route53_refuses_mixing_simple_and_weighted() {
        let w = world(ZONE);
        let e = w
            .change(
                "Z1",
                &[Change {
                    action: ChangeAction::Create,
                    record: weighted("green", 10, 300, "green.example.com"),
                }],
                "",
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "InvalidChangeBatch");
        assert!(e.message.contains("conflicting RRSet"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn route53_refuses_inexact_delete_bad_weight_and_mixed_ttls() {
        let w = world(ZONE);
        let mut simple = w.dns("Z1", "orders.example.com", RecordType::CNAME)[0].clone();
        simple.ttl = Some(60);
        let e = w
            .change(
                "Z1",
                &[Change {
                    action: ChangeAction::Delete,
                    record: simple.clone(),
                }],
                "",
            )
            .await
            .unwrap_err();
        assert!(e.message.contains("do not match"), "{e}");
        simple.ttl = Some(300);
        let e = w
            .change(
                "Z1",
                &[
                    Change {
                        action: ChangeAction::Delete,
                        record: simple.clone(),
                    },
                    Change {
                        action: ChangeAction::Create,
                        record: weighted("blue", 256, 60, "blue.example.com"),
                    },
                ],
                "",
            )
            .await
            .unwrap_err();
        assert!(e.message.contains("0..=255"), "{e}");
        let e = w
            .change(
                "Z1",
                &[
                    Change {
                        action: ChangeAction::Delete,
                        record: simple.clone(),
                    },
                    Change {
                        action: ChangeAction::Create,
                        record: weighted("blue", 90, 60, "blue.example.com"),
                    },
                    Change {
                        action: ChangeAction::Create,
                        record: weighted("green", 10, 120, "green.example.com"),
                    },
                ],
                "",
            )
            .await
            .unwrap_err();
        assert!(e.message.contains("same TTL"), "{e}");
        assert_eq!(
            w.counters().dns_changes_applied,
            0,
            "a refused batch changes nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn route53_propagates_throttles_and_reports_busy() {
        let w = world(ZONE);
        let simple = w.dns("Z1", "orders.example.com", RecordType::CNAME)[0].clone();
        let info = w
            .change(
                "Z1",
                &[
                    Change {
                        action: ChangeAction::Delete,
                        record: simple,
                    },
                    Change {
                        action: ChangeAction::Create,
                        record: weighted("blue", 90, 60, "blue.example.com"),
                    },
                    Change {
                        action: ChangeAction::Create,
                        record: weighted("green", 10, 60, "green.example.com"),
                    },
                ],
                "",
            )
            .await
            .unwrap();
        assert_eq!(
            w.change_status(&info.id).await.unwrap().status,
            ChangeStatus::Pending
        );
        let e = w
            .change(
                "Z1",
                &[Change {
                    action: ChangeAction::Upsert,
                    record: weighted("green", 20, 60, "green.example.com"),
                }],
                "",
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "PriorRequestNotComplete");
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        assert_eq!(
            w.change_status(&info.id).await.unwrap().status,
            ChangeStatus::Insync
        );
        let mut throttled = 0;
        for _ in 0..8 {
            if w.records("Z1", "orders.example.com", RecordType::CNAME)
                .await
                .is_err()
            {
                throttled += 1;
            }
        }
        assert_eq!(
            throttled, 4,
            "5 requests per second pass (the GetChange above was one), the rest are throttled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dms_enforces_start_types_and_publishes_lag_while_running() {
        let w = world(
            r#"
dms: {tasks: [{arn: "arn:aws:dms:us-east-1:123456789012:task:T", status: ready, lag: [[0, 100], [100, 0]]}]}
"#,
        );
        let arn = "arn:aws:dms:us-east-1:123456789012:task:T";
        assert_eq!(w.dms_cdc_latency(arn).await.unwrap(), None);
        assert_eq!(
            w.start_dms_task(arn, DmsStartType::ResumeProcessing)
                .await
                .unwrap_err()
                .code,
            "InvalidResourceStateFault"
        );
        w.start_dms_task(arn, DmsStartType::StartReplication)
            .await
            .unwrap();
        assert_eq!(w.dms_task(arn).await.unwrap().status, "starting");
        assert_eq!(
            w.start_dms_task(arn, DmsStartType::StartReplication)
                .await
                .unwrap_err()
                .code,
            "InvalidResourceStateFault"
        );
        tokio::time::sleep(std::time::Duration::from_secs(50)).await;
        assert_eq!(w.dms_task(arn).await.unwrap().status, "running");
        assert_eq!(
            w.dms_cdc_latency(arn).await.unwrap(),
            None,
            "no datapoint before the first period ends"
        );
        tokio::time::sleep(std::time::Duration::from_secs(20)).await;
        let p = w.dms_cdc_latency(arn).await.unwrap().expect("a datapoint");
        assert_eq!(
            (p.source_seconds, p.target_seconds, p.at),
            (0.0, 40.0, w.clock().epoch()),
            "the period [0, 60) is published at its end with its start as timestamp"
        );
        w.stop_dms_task(arn).await.unwrap();
        w.start_dms_task(arn, DmsStartType::ResumeProcessing)
            .await
            .unwrap();
        assert_eq!(w.counters().dms_starts, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn mgn_follows_its_lifecycle() {
        let w = world(
            r#"mgn: {servers: [{id: s-0123456789abcdef0, lifecycle: READY_FOR_TEST, replicationState: CONTINUOUS, lag: [[0, 90]]}]}"#,
        );
        let id = "s-0123456789abcdef0";
        assert_eq!(
            w.mgn_server(id).await.unwrap().lag_duration.as_deref(),
            Some("PT90S")
        );
        assert_eq!(
            w.start_mgn_cutover(&[id.to_string()])
                .await
                .unwrap_err()
                .code,
            "ConflictException"
        );
        assert_eq!(
            w.finalize_mgn_cutover(id).await.unwrap_err().code,
            "ConflictException"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_start_cutover_launches_several_servers_or_none() {
        let w = world(
            r#"mgn: {servers: [
              {id: s-000000000000000a1, lifecycle: READY_FOR_CUTOVER, replicationState: CONTINUOUS, lag: [[0, 5]], launchSeconds: 60},
              {id: s-000000000000000a2, lifecycle: READY_FOR_CUTOVER, replicationState: CONTINUOUS, lag: [[0, 5]], launchSeconds: 60},
              {id: s-000000000000000a3, lifecycle: READY_FOR_TEST, replicationState: CONTINUOUS, lag: [[0, 5]]}]}"#,
        );
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // One server not ready: the whole call is refused and no server changes.
        let refused = w
            .start_mgn_cutover(&ids(&["s-000000000000000a1", "s-000000000000000a3"]))
            .await
            .unwrap_err();
        assert_eq!(refused.code, "ConflictException");
        assert!(
            refused.message.contains("s-000000000000000a3"),
            "{refused:?}"
        );
        let a1 = w.mgn_server("s-000000000000000a1").await.unwrap();
        assert_eq!(a1.lifecycle, "READY_FOR_CUTOVER");
        assert_eq!(w.counters().mgn_cutovers, 0);

        let job = w
            .start_mgn_cutover(&ids(&["s-000000000000000a1", "s-000000000000000a2"]))
            .await
            .unwrap();
        assert_eq!(w.counters().mgn_cutovers, 1);
        assert_eq!(w.counters().mgn_instances, 2);
        tokio::time::advance(std::time::Duration::from_secs(61)).await;
        let mut instances = Vec::new();
        for id in ["s-000000000000000a1", "s-000000000000000a2"] {
            let s = w.mgn_server(id).await.unwrap();
            assert_eq!(s.lifecycle, "CUTTING_OVER");
            let l = s.launched_instance.unwrap();
            assert_eq!(l.job_id.as_deref(), Some(job.as_str()));
            instances.push(l.ec2_instance_id.unwrap());
            assert_eq!(
                w.mgn_job(&job, id).await.unwrap().launch_status.as_deref(),
                Some("LAUNCHED")
            );
        }
        assert_ne!(instances[0], instances[1], "each server its own instance");
    }

    #[tokio::test(start_paused = true)]
    async fn injected_faults_fire_the_given_number_of_times() {
        let w = std::sync::Arc::new(world(&format!("{ZONE}\nfaults: [{{operation: route53.GetChange, error: ServiceUnavailable, times: 2}}]")));
        let inner: std::sync::Arc<dyn TrafficRouter> = w.clone();
        let r = crate::faults::Faulty::new(w.faults(), inner);
        assert_eq!(
            r.change_status("C1").await.unwrap_err().kind,
            PortErrorKind::Transient
        );
        assert_eq!(
            r.change_status("C1").await.unwrap_err().kind,
            PortErrorKind::Transient
        );
        assert_eq!(
            r.change_status("C1").await.unwrap_err().code,
            "NoSuchChange"
        );
        assert_eq!(w.counters().faults_injected, 2);
        assert_eq!(
            w.counters().calls["route53.GetChange"],
            1,
            "faulted calls never reached the service"
        );
    }
}
