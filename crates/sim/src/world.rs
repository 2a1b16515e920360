//! The simulated services. Each behaves like AWS where the cutover depends on it: Route 53
//! validates change batches, throttles per account and propagates PENDING -> INSYNC; DMS refuses
//! start types the task's state does not allow; MGN follows its lifecycle.

use crate::clock::SimClock;
use crate::spec::{interpolate, step_value, WorldSpec};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cutover_core::model::*;
use cutover_core::plan::HttpCheck;
use cutover_core::ports::*;
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
    pub mgn_cutovers: u64,
    pub mgn_finalizes: u64,
    pub throttled: u64,
    pub faults_injected: u64,
}

struct Zone {
    name: String,
    records: Vec<RecordSet>,
}

struct DmsState {
    status: String,
    started_at: Option<f64>,
}

struct MgnState {
    lifecycle: String,
    replication_state: String,
    /// When StartCutover launched the cutover instance, and its job.
    launched_at: Option<f64>,
    job_id: Option<String>,
}

struct State {
    zones: BTreeMap<String, Zone>,
    changes: HashMap<String, (DateTime<Utc>, String)>,
    next_change: u64,
    r53_window: (i64, u32),
    dms: BTreeMap<String, DmsState>,
    mgn: BTreeMap<String, MgnState>,
    counters: Counters,
    notices: Vec<ApprovalNotice>,
}

pub struct World {
    clock: SimClock,
    /// The world's fault schedule, applied by wrapping ports in `Faulty`, never inside the world.
    faults: std::sync::Arc<Faults>,
    spec: WorldSpec,
    state: Mutex<State>,
    notices_tx: Mutex<Option<UnboundedSender<ApprovalNotice>>>,
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
                    },
                )
            })
            .collect();
        let faults = std::sync::Arc::new(Faults::new(&spec.faults, clock));
        World {
            clock,
            faults,
            spec,
            state: Mutex::new(State {
                zones,
                changes: HashMap::new(),
                next_change: 0,
                r53_window: (i64::MIN, 0),
                dms,
                mgn,
                counters: Counters::default(),
                notices: Vec::new(),
            }),
            notices_tx: Mutex::new(None),
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

    pub fn counters(&self) -> Counters {
        let mut c = self.st().counters.clone();
        c.faults_injected = self.faults.injected();
        c
    }

    /// The fault schedule, for wrapping ports in `Faulty`.
    pub fn faults(&self) -> std::sync::Arc<Faults> {
        self.faults.clone()
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

    /// Route 53's account-wide rate limit, counted per virtual second.
    fn route53_enter(&self, st: &mut State, op: &str) -> Result<(), PortError> {
        self.enter(st, "route53", op)?;
        let second = self.t().floor() as i64;
        if st.r53_window.0 != second {
            st.r53_window = (second, 0);
        }
        st.r53_window.1 += 1;
        if st.r53_window.1 > self.spec.route53.requests_per_second {
            st.counters.throttled += 1;
            return Err(err("route53", "Throttling", "Rate exceeded"));
        }
        Ok(())
    }

    fn change_status_at(&self, submitted: DateTime<Utc>) -> ChangeStatus {
        let age = (self.clock.now() - submitted).num_milliseconds() as f64 / 1000.0;
        if age >= self.spec.route53.propagation_seconds as f64 {
            ChangeStatus::Insync
        } else {
            ChangeStatus::Pending
        }
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

fn mgn_server_mut<'a>(st: &'a mut State, server_id: &str) -> Result<&'a mut MgnState, PortError> {
    st.mgn.get_mut(server_id).ok_or_else(|| {
        err(
            "mgn",
            "ResourceNotFoundException",
            format!("Source server {server_id} not found"),
        )
    })
}

fn key(r: &RecordSet) -> (String, RecordType, Option<String>) {
    (r.name.clone(), r.record_type, r.set_identifier.clone())
}

/// Why Route 53 refuses a batch: InvalidInput for a malformed record, InvalidChangeBatch for a
/// batch that does not fit the zone (ChangeResourceRecordSets errors,
/// https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html).
struct BatchError {
    code: &'static str,
    message: String,
}

impl BatchError {
    fn input(message: String) -> Self {
        BatchError {
            code: "InvalidInput",
            message,
        }
    }
    fn batch(message: String) -> Self {
        BatchError {
            code: "InvalidChangeBatch",
            message,
        }
    }
}

/// Applies a batch to a copy of the zone's records as Route 53 would, or says why it refuses.
/// The batch is transactional: all of it or none. A DELETE must name the record exactly as it is,
/// health check and alias target included ("To delete a resource record set, you must specify all
/// the same values that you specified when you created it").
fn apply_batch(zone: &Zone, changes: &[Change]) -> Result<Vec<RecordSet>, BatchError> {
    if changes.is_empty() {
        return Err(BatchError::input("the change batch is empty".into()));
    }
    let mut records = zone.records.clone();
    for c in changes {
        let r = canonical_record(c.record.clone());
        let zone_name = &zone.name;
        if r.name != *zone_name && !r.name.ends_with(&format!(".{zone_name}")) {
            return Err(BatchError::batch(format!(
                "RRSet with DNS name {} is not permitted in zone {zone_name}",
                r.name
            )));
        }
        if let Some(m) = record_shape_error(&r) {
            return Err(BatchError::input(m));
        }
        if r.weight.is_some() != r.set_identifier.is_some() {
            return Err(BatchError::input(format!(
                "Invalid request: weight and SetIdentifier must be given together for {}",
                r.name
            )));
        }
        if r.weight.is_some_and(|w| w > 255) {
            return Err(BatchError::input(format!(
                "Invalid weight {} for {}: weights are 0..=255",
                r.weight.unwrap_or(0),
                r.name
            )));
        }
        if r.alias_target.is_none() && r.record_type == RecordType::CNAME && r.values.len() != 1 {
            return Err(BatchError::batch(format!(
                "Invalid number of values for {} {}",
                r.name, r.record_type
            )));
        }
        let pos = records.iter().position(|x| key(x) == key(&r));
        match c.action {
            ChangeAction::Create => {
                if pos.is_some() {
                    return Err(BatchError::batch(format!("Tried to create resource record set [name='{}', type='{}'] but it already exists", r.name, r.record_type)));
                }
                records.push(r);
            }
            ChangeAction::Delete => match pos {
                Some(i) if records[i] == r => {
                    records.remove(i);
                }
                Some(_) => {
                    return Err(BatchError::batch(format!(
                        "Tried to delete resource record set [name='{}', type='{}'] but the values provided do not match the current values",
                        r.name, r.record_type
                    )))
                }
                None => {
                    return Err(BatchError::batch(format!("Tried to delete resource record set [name='{}', type='{}'] but it was not found", r.name, r.record_type)))
                }
            },
            ChangeAction::Upsert => match pos {
                Some(i) => records[i] = r,
                None => records.push(r),
            },
        }
    }
    // Whole-batch rules, checked on the result.
    let mut groups: BTreeMap<(String, RecordType), Vec<&RecordSet>> = BTreeMap::new();
    for r in &records {
        groups
            .entry((r.name.clone(), r.record_type))
            .or_default()
            .push(r);
    }
    for ((name, ty), group) in groups {
        let simple = group.iter().filter(|r| !r.is_weighted()).count();
        if simple > 0 && group.len() > 1 {
            return Err(BatchError::batch(format!(
                "RRSet of type {ty} with DNS name {name} is not permitted because a conflicting RRSet of type {ty} with the same DNS name already exists"
            )));
        }
        // The TTL rule binds the value records of a weighted set; alias records have no TTL.
        let ttls: Vec<u64> = group.iter().filter_map(|r| r.ttl).collect();
        if ttls.windows(2).any(|w| w[0] != w[1]) {
            return Err(BatchError::batch(format!("All resource record sets in the weighted set {name} {ty} must have the same TTL, got {ttls:?}")));
        }
    }
    Ok(records)
}

#[async_trait]
impl TrafficRouter for World {
    async fn records(
        &self,
        zone_id: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RecordSet>, PortError> {
        {
            let mut st = self.st();
            self.route53_enter(&mut st, "ListResourceRecordSets")?;
            if !st.zones.contains_key(zone_id) {
                return Err(err(
                    "route53",
                    "NoSuchHostedZone",
                    format!("No hosted zone found with ID: {zone_id}"),
                ));
            }
        }
        Ok(self.dns(zone_id, name, record_type))
    }

    async fn change(
        &self,
        zone_id: &str,
        changes: &[Change],
        _comment: &str,
    ) -> Result<ChangeInfo, PortError> {
        let mut st = self.st();
        self.route53_enter(&mut st, "ChangeResourceRecordSets")?;
        let now = self.clock.now();
        let busy_for = chrono::Duration::seconds(self.spec.route53.busy_seconds as i64);
        let busy = st
            .changes
            .values()
            .any(|(at, z)| z == zone_id && now - *at < busy_for);
        if busy {
            return Err(err(
                "route53",
                "PriorRequestNotComplete",
                "The request was rejected because Route 53 was still processing a prior request.",
            ));
        }
        let zone = st.zones.get(zone_id).ok_or_else(|| {
            err(
                "route53",
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {zone_id}"),
            )
        })?;
        let records = apply_batch(zone, changes).map_err(|e| err("route53", e.code, e.message))?;
        let mut before = zone.records.clone();
        let mut after = records.clone();
        before.sort();
        after.sort();
        if before != after {
            st.counters.dns_changes_applied += 1;
        }
        if let Some(z) = st.zones.get_mut(zone_id) {
            z.records = records;
        }
        st.next_change += 1;
        let id = format!("C{:012}", st.next_change);
        let now = self.clock.now();
        st.changes.insert(id.clone(), (now, zone_id.to_string()));
        Ok(ChangeInfo {
            id,
            status: ChangeStatus::Pending,
            submitted_at: now,
        })
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, PortError> {
        let mut st = self.st();
        self.route53_enter(&mut st, "GetChange")?;
        let (at, _) = st.changes.get(change_id).cloned().ok_or_else(|| {
            err(
                "route53",
                "NoSuchChange",
                format!("No change with ID {change_id}"),
            )
        })?;
        Ok(ChangeInfo {
            id: change_id.to_string(),
            status: self.change_status_at(at),
            submitted_at: at,
        })
    }
}

#[async_trait]
impl Replication for World {
    async fn dms_task(&self, task_arn: &str) -> Result<DmsTask, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "dms", "DescribeReplicationTasks")?;
        let spec = self.spec.dms.tasks.iter().find(|t| t.arn == task_arn);
        let (Some(spec), Some(s)) = (spec, st.dms.get(task_arn)) else {
            return Err(err(
                "dms",
                "ResourceNotFoundFault",
                format!("Replication task {task_arn} not found"),
            ));
        };
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
        let spec = self.spec.dms.tasks.iter().find(|t| t.arn == task_arn);
        let (Some(spec), Some(s)) = (spec, st.dms.get(task_arn)) else {
            return Err(err(
                "dms",
                "ResourceNotFoundFault",
                format!("Replication task {task_arn} not found"),
            ));
        };
        let status = self.dms_status(s, spec);
        let full_load = spec.migration_type != "cdc";
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
        if let Some(s) = st.dms.get_mut(task_arn) {
            s.status = "running".into();
            s.started_at = Some(t);
        }
        st.counters.dms_starts += 1;
        Ok(())
    }

    async fn stop_dms_task(&self, task_arn: &str) -> Result<(), PortError> {
        let mut st = self.st();
        self.enter(&mut st, "dms", "StopReplicationTask")?;
        let spec = self.spec.dms.tasks.iter().find(|t| t.arn == task_arn);
        let (Some(spec), Some(s)) = (spec, st.dms.get(task_arn)) else {
            return Err(err(
                "dms",
                "ResourceNotFoundFault",
                format!("Replication task {task_arn} not found"),
            ));
        };
        let status = self.dms_status(s, spec);
        if status != "running" {
            return Err(err(
                "dms",
                "InvalidResourceStateFault",
                format!("Replication task is in state {status}, not running"),
            ));
        }
        if let Some(s) = st.dms.get_mut(task_arn) {
            s.status = "stopped".into();
        }
        st.counters.dms_stops += 1;
        Ok(())
    }

    async fn mgn_server(&self, server_id: &str) -> Result<MgnServer, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "mgn", "DescribeSourceServers")?;
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
                    .then(|| format!("i-{:017x}", st.counters.mgn_cutovers)),
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

    async fn start_mgn_cutover(&self, server_id: &str) -> Result<String, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "mgn", "StartCutover")?;
        let s = mgn_server_mut(&mut st, server_id)?;
        if s.lifecycle != "READY_FOR_CUTOVER" {
            return Err(err(
                "mgn",
                "ConflictException",
                format!("Source server is {}, not READY_FOR_CUTOVER", s.lifecycle),
            ));
        }
        s.lifecycle = "CUTTING_OVER".into();
        let t = self.t();
        st.counters.mgn_cutovers += 1;
        let job = format!("mgnjob-{:017x}", st.counters.mgn_cutovers);
        let s = mgn_server_mut(&mut st, server_id)?;
        s.launched_at = Some(t);
        s.job_id = Some(job.clone());
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

#[async_trait]
impl Metrics for World {
    /// CloudWatch holds one datapoint per period, published once the period has ended and stamped
    /// with its start; DMS publishes only while the task replicates. The value is the latency at
    /// the period's end: `lag` for CDCLatencyTarget, `sourceLag` for CDCLatencySource.
    async fn dms_cdc_latency(&self, task_arn: &str) -> Result<Option<DmsLatency>, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "cloudwatch", "GetMetricData")?;
        let Some(spec) = self.spec.dms.tasks.iter().find(|t| t.arn == task_arn) else {
            return Ok(None);
        };
        let Some(s) = st.dms.get(task_arn) else {
            return Ok(None);
        };
        if self.dms_status(s, spec) != "running" {
            return Ok(None);
        }
        let start = s.started_at.unwrap_or(0.0);
        let period = self.spec.dms.metric_period_seconds as f64;
        let t = self.t();
        let period_start = ((t / period).floor() - 1.0) * period;
        // Nothing published until a period in which the task ran has ended.
        if period_start + period <= start {
            return Ok(None);
        }
        let since = period_start + period - start;
        let target = interpolate(&spec.lag, since);
        let source = if spec.source_lag.is_empty() {
            0.0
        } else {
            interpolate(&spec.source_lag, since).min(target)
        };
        let at =
            self.clock.epoch() + chrono::Duration::milliseconds((period_start * 1000.0) as i64);
        Ok(Some(DmsLatency {
            source_seconds: source,
            target_seconds: target,
            at,
        }))
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<(String, AlarmState)>, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "cloudwatch", "DescribeAlarms")?;
        let t = self.t();
        let mut out = Vec::new();
        for n in names {
            let curve = self.spec.alarms.get(n).ok_or_else(|| {
                err(
                    "cloudwatch",
                    "ResourceNotFound",
                    format!("alarm {n} does not exist"),
                )
            })?;
            let state = match step_value(curve, t).as_deref() {
                Some("ALARM") => AlarmState::Alarm,
                Some("OK") => AlarmState::Ok,
                _ => AlarmState::InsufficientData,
            };
            out.push((n.clone(), state));
        }
        Ok(out)
    }
}

#[async_trait]
impl HealthProbe for World {
    async fn probe(&self, check: &HttpCheck) -> ProbeResult {
        let mut st = self.st();
        if let Err(e) = self.enter(&mut st, "http", "Probe") {
            return ProbeResult {
                ok: false,
                status: None,
                detail: e.to_string(),
            };
        }
        // A URL the launched cutover instance serves does not answer before its first boot.
        let t = self.t();
        let not_booted = self.spec.mgn.servers.iter().any(|s| {
            s.launched_urls.contains(&check.url)
                && st
                    .mgn
                    .get(&s.id)
                    .and_then(|m| m.launched_at)
                    .is_none_or(|at| s.launch_fails || t < at + s.launch_seconds)
        });
        if not_booted {
            return ProbeResult {
                ok: false,
                status: None,
                detail: "connection refused (the MGN cutover instance is not launched or has not finished its first boot)".into(),
            };
        }
        match self
            .spec
            .http
            .get(&check.url)
            .and_then(|c| step_value(c, self.t()))
        {
            None => ProbeResult {
                ok: false,
                status: None,
                detail: "connection refused (no such endpoint in the world)".into(),
            },
            Some(s) if s == check.expect_status => ProbeResult {
                ok: true,
                status: Some(s),
                detail: format!("HTTP {s}"),
            },
            Some(s) => ProbeResult {
                ok: false,
                status: Some(s),
                detail: format!("HTTP {s}, expected {}", check.expect_status),
            },
        }
    }
}

#[async_trait]
impl Notifier for World {
    async fn approval_requested(&self, notice: &ApprovalNotice) -> Result<(), PortError> {
        {
            let mut st = self.st();
            self.enter(&mut st, "sns", "Publish")?;
            st.notices.push(notice.clone());
        }
        if let Some(tx) = self
            .notices_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = tx.send(notice.clone());
        }
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
            w.start_mgn_cutover(id).await.unwrap_err().code,
            "ConflictException"
        );
        assert_eq!(
            w.finalize_mgn_cutover(id).await.unwrap_err().code,
            "ConflictException"
        );
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
