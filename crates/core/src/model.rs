//! Records, changes, runs and audit events: the project's own types at every port.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordType {
    A,
    AAAA,
    CNAME,
}

impl std::fmt::Display for RecordType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordType::A => "A",
            RecordType::AAAA => "AAAA",
            RecordType::CNAME => "CNAME",
        })
    }
}

/// Where an alias record points (a load balancer, a CloudFront distribution, another record).
/// Route 53 API reference, AliasTarget:
/// https://docs.aws.amazon.com/Route53/latest/APIReference/API_AliasTarget.html
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AliasTarget {
    /// The hosted zone id of the target (for a load balancer: its canonical hosted zone id).
    pub hosted_zone_id: String,
    pub dns_name: String,
    #[serde(default)]
    pub evaluate_target_health: bool,
}

impl AliasTarget {
    /// Route 53 compares DNS names without case and trailing dot.
    pub fn same_as(&self, other: &AliasTarget) -> bool {
        self.hosted_zone_id == other.hosted_zone_id
            && normalize_name(&self.dns_name) == normalize_name(&other.dns_name)
            && self.evaluate_target_health == other.evaluate_target_health
    }
}

/// One Route 53 record set. A weighted one carries `setIdentifier` and `weight`. A value record
/// has a TTL and values; an alias record has an alias target and no TTL (Route 53 answers with the
/// target's TTL). Route 53 API reference, ResourceRecordSet:
/// https://docs.aws.amazon.com/Route53/latest/APIReference/API_ResourceRecordSet.html
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordSet {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    #[serde(default)]
    pub set_identifier: Option<String>,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub ttl: Option<u64>,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub alias_target: Option<AliasTarget>,
    #[serde(default)]
    pub health_check_id: Option<String>,
    /// The routing policies besides simple and weighted, read so that a record set using one is
    /// refused before anything changes (ResourceRecordSet's Failover, Region, GeoLocation,
    /// MultiValueAnswer and CidrRoutingConfig).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_location: Option<GeoLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_value_answer: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_routing_config: Option<CidrRoutingConfig>,
}

/// ResourceRecordSet.GeoLocation (https://docs.aws.amazon.com/Route53/latest/APIReference/API_GeoLocation.html).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeoLocation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continent_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdivision_code: Option<String>,
}

/// ResourceRecordSet.CidrRoutingConfig (IP-based routing,
/// https://docs.aws.amazon.com/Route53/latest/APIReference/API_CidrRoutingConfig.html).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CidrRoutingConfig {
    pub collection_id: String,
    pub location_name: String,
}

impl RecordSet {
    /// A record of the plan's shape: simple, or weighted when it has a set identifier and weight.
    pub fn new(name: &str, record_type: RecordType) -> Self {
        RecordSet {
            name: name.to_string(),
            record_type,
            set_identifier: None,
            weight: None,
            ttl: None,
            values: vec![],
            alias_target: None,
            health_check_id: None,
            failover: None,
            region: None,
            geo_location: None,
            multi_value_answer: None,
            cidr_routing_config: None,
        }
    }

    /// The routing policy other than simple or weighted this record uses, as Route 53's console
    /// names it; None for simple and weighted records.
    pub fn other_routing_policy(&self) -> Option<&'static str> {
        if self.failover.is_some() {
            Some("failover")
        } else if self.region.is_some() {
            Some("latency")
        } else if self.geo_location.is_some() {
            Some("geolocation")
        } else if self.multi_value_answer.is_some() {
            Some("multivalue answer")
        } else if self.cidr_routing_config.is_some() {
            Some("IP-based")
        } else {
            None
        }
    }

    pub fn is_weighted(&self) -> bool {
        self.set_identifier.is_some()
    }

    /// Whether this record routes to `to` (the same values, or the same alias target). Route 53
    /// keeps a record's values as a set: their order does not matter, nor a name's case.
    pub fn routes_to(&self, to: &Routing) -> bool {
        match (to, &self.alias_target) {
            (Routing::Value(v), None) => same_values(&self.values, v),
            (Routing::Alias(a), Some(mine)) => self.values.is_empty() && mine.same_as(a),
            _ => false,
        }
    }

    /// What a human reads: the values, or `ALIAS dns-name`.
    pub fn describe(&self) -> String {
        match &self.alias_target {
            Some(a) => format!("ALIAS {}", a.dns_name),
            None => self.values.join(","),
        }
    }
}

/// Where one side of the cutover points: literal values (one or several) or an alias target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    Value(Vec<String>),
    Alias(AliasTarget),
}

/// Whether two lists of record values hold the same values, as Route 53 compares them: in any
/// order, names without case or trailing dot.
pub fn same_values(a: &[String], b: &[String]) -> bool {
    let set = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|x| normalize_name(x)).collect();
        v.sort();
        v
    };
    a.len() == b.len() && set(a) == set(b)
}

/// Lower-case, no trailing dot: how names compare.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeAction {
    Create,
    Delete,
    Upsert,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub action: ChangeAction,
    pub record: RecordSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeStatus {
    Pending,
    Insync,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeInfo {
    pub id: String,
    pub status: ChangeStatus,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Weights {
    pub blue: u32,
    pub green: u32,
}

/// The run's state item: one per run, updated under optimistic concurrency (`version`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    pub application: String,
    pub phase: String,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub snapshot: Vec<RecordSet>,
    /// The ALB router's snapshot: the rule's actions before the run (crate::alb).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb_snapshot: Option<Vec<crate::alb::Action>>,
    #[serde(default)]
    pub weights: Option<Weights>,
    #[serde(default)]
    pub last_lag_seconds: Option<f64>,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub abort_requested: Option<String>,
    /// When the first rollback attempt began: the rollback's time budget counts from here.
    #[serde(default)]
    pub rollback_started_at: Option<DateTime<Utc>>,
    /// Where the application's writes stand (freeze, drain, switch).
    #[serde(default)]
    pub data: DataRecord,
    /// The traffic step last shifted to (its bake is the one in progress or next).
    #[serde(default)]
    pub traffic_index: Option<usize>,
    /// What operators asked mid-run: a hold, longer or shorter bakes (docs/controls.md).
    #[serde(default)]
    pub controls: RunControls,
    /// The plan as validated: what the safety net needs to restore DNS after a stopped run.
    #[serde(default)]
    pub plan: Option<crate::plan::Plan>,
    /// Results of side-effecting steps by idempotency key, so a redelivered step repeats nothing.
    #[serde(default)]
    pub steps: BTreeMap<String, Value>,
    /// Bumped by the store on every write; a write carrying a stale version is refused.
    pub version: u64,
}

/// Mid-run controls (docs/controls.md): each was authorized and audited by the API that set it,
/// and is read by every health round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunControls {
    /// A hold: no bake ends while it stands (health rounds and rollback go on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Hold>,
    /// Seconds of holds that ended and of bake extensions, counted against
    /// `controls.maxHoldSeconds` with the standing hold's.
    #[serde(default)]
    pub spent_seconds: u64,
    /// Extra bake seconds by bake ([`RunControls::bake_key`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: BTreeMap<String, u64>,
    /// Bakes ([`RunControls::bake_key`]) that end at their next healthy round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promoted: Vec<String>,
    /// `promote --full` during the bake of this traffic step: every later step shifts straight
    /// to the last step's weight, and every later bake but the last ends at its next healthy
    /// round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_from: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub at: DateTime<Utc>,
    pub by: String,
    pub reason: String,
}

impl RunControls {
    /// Seconds of the hold budget used at `now`: ended holds, extensions and the standing hold.
    pub fn used_seconds(&self, now: DateTime<Utc>) -> u64 {
        let standing = self
            .held
            .as_ref()
            .map_or(0, |h| (now - h.at).num_seconds().max(0) as u64);
        self.spent_seconds.saturating_add(standing)
    }

    /// One bake: traffic step `index`'s, or the last step's again after the data switch.
    pub fn bake_key(index: usize, after_switch: bool) -> String {
        if after_switch {
            format!("switched-{index}")
        } else {
            index.to_string()
        }
    }

    /// The extra seconds asked for a bake.
    pub fn extension(&self, bake: &str) -> u64 {
        self.extensions.get(bake).copied().unwrap_or(0)
    }

    pub fn is_promoted(&self, bake: &str) -> bool {
        self.promoted.iter().any(|p| p == bake)
    }

    /// Whether traffic step `index`'s bake (before any data switch) ends at its next healthy
    /// round: promoted, or skipped by `promote --full` (the last step's bake always runs).
    pub fn bake_skipped(&self, index: usize, after_switch: bool, steps: usize) -> bool {
        self.is_promoted(&Self::bake_key(index, after_switch))
            || (!after_switch
                && self
                    .full_from
                    .is_some_and(|f| index > f && index + 1 < steps))
    }
}

/// The run record's mark that the last bake passed (`RunRecord::succeeded`).
pub const SUCCEEDED_KEY: &str = "succeeded";

impl RunRecord {
    pub fn new(run_id: &str, application: &str, started_at: DateTime<Utc>) -> Self {
        RunRecord {
            run_id: run_id.to_string(),
            application: application.to_string(),
            phase: "validated".into(),
            started_at,
            snapshot: vec![],
            alb_snapshot: None,
            weights: None,
            last_lag_seconds: None,
            outcome: None,
            error: None,
            abort_requested: None,
            rollback_started_at: None,
            data: DataRecord::default(),
            traffic_index: None,
            controls: RunControls::default(),
            plan: None,
            steps: BTreeMap::new(),
            version: 0,
        }
    }

    /// True once the run's last bake passed (or it was finalized): from here it ends on green,
    /// whatever fails after.
    pub fn succeeded(&self) -> bool {
        self.steps.contains_key(SUCCEEDED_KEY) || self.steps.contains_key("finalize")
    }

    /// True once any traffic shift was submitted for this run (or was about to be: the intent is
    /// stored before the call, so a result that could not be stored still counts).
    pub fn traffic_moved(&self) -> bool {
        self.steps
            .keys()
            .any(|k| k.starts_with("shift#") || k.starts_with("shift-intent#"))
    }
}

/// The data cutover of a run: freezes, the switch and the point of no return.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataRecord {
    /// When the current freeze began; None while writes flow.
    #[serde(default)]
    pub frozen_at: Option<DateTime<Utc>>,
    /// When a freeze hook was last called and no unfreeze has been confirmed since: the hook
    /// may have acted even if it timed out or its result was never stored, so every path after
    /// this unfreezes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_requested_at: Option<DateTime<Utc>>,
    /// Seconds writes were frozen, over every freeze of the run that has ended.
    #[serde(default)]
    pub freeze_seconds: f64,
    /// The database the application was last switched to (green | blue), and when.
    #[serde(default)]
    pub switched_to: Option<String>,
    #[serde(default)]
    pub switched_at: Option<DateTime<Utc>>,
    /// When the application first wrote to green's database: from here a rollback may lose
    /// writes, so it is no longer automatic.
    #[serde(default)]
    pub point_of_no_return: Option<DateTime<Utc>>,
    /// Reverse replication (green -> blue) was started at the switch.
    #[serde(default)]
    pub reverse_started: bool,
}

impl DataRecord {
    /// Seconds frozen so far, the current freeze included.
    pub fn frozen_seconds(&self, now: DateTime<Utc>) -> f64 {
        self.freeze_seconds
            + self
                .frozen_at
                .map_or(0.0, |f| (now - f).num_milliseconds() as f64 / 1000.0)
    }
}

/// One append-only audit entry. `key` makes appends idempotent: the same key is stored once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub run_id: String,
    pub key: String,
    pub at: DateTime<Utc>,
    pub step: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Reject,
}

/// A gate's approval item. The task token is stored sealed (`ports::TokenVault`) and skipped by
/// serde, so no report, log line or API answer built from this type can carry it, and whoever
/// reads the run table reads only the sealed form.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    pub run_id: String,
    pub gate: String,
    /// The task token sealed by the stack's token key: opened only to send the gate's callback.
    #[serde(skip)]
    pub sealed_token: String,
    /// SHA-256 of the task token, hex: tells a redelivered request (the same token) from a new
    /// one without opening the seal.
    #[serde(default)]
    pub token_digest: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub decision: Option<Decision>,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub evidence: Value,
    /// 2 under the two-person rule.
    #[serde(default = "one")]
    pub required_approvals: u8,
    /// Approvals given so far (the first of two, under the two-person rule).
    #[serde(default)]
    pub approvals: Vec<Approver>,
    /// The decision reached the waiting execution (SendTaskSuccess / SendTaskFailure answered).
    /// A decision stored without it is sent again when the decision is repeated.
    #[serde(default)]
    pub callback_sent: bool,
    /// The humans were told (the notice was published); a redelivered request whose notice
    /// failed publishes it then, one that was told does not again.
    #[serde(default)]
    pub notified: bool,
    /// Bumped by the store on every write; a conditional write carrying a stale version is
    /// refused, so two first approvals of a two-person gate cannot overwrite each other.
    #[serde(default)]
    pub version: u64,
}

fn one() -> u8 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approver {
    pub by: String,
    pub at: DateTime<Utc>,
}

impl std::fmt::Debug for ApprovalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalRecord")
            .field("run_id", &self.run_id)
            .field("gate", &self.gate)
            .field("sealed_token", &"<redacted>")
            .field("decision", &self.decision)
            .field("decided_by", &self.decided_by)
            .finish()
    }
}

/// What DMS says of a replication task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DmsTask {
    pub arn: String,
    pub status: String,
    pub migration_type: String,
    pub tables: Vec<TableStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableStatus {
    pub name: String,
    pub state: String,
    pub validation_state: String,
}

/// DMS table states (DescribeTableStatistics, TableStatistics.TableState,
/// https://docs.aws.amazon.com/dms/latest/APIReference/API_TableStatistics.html).
pub const DMS_TABLE_STATES: &[&str] = &[
    "Table does not exist",
    "Before load",
    "Full load",
    "Table completed",
    "Table cancelled",
    "Table error",
    "Table is being reloaded",
];

/// DMS validation states (same page, TableStatistics.ValidationState; AWS DMS user guide,
/// "AWS DMS data validation", https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Validating.html).
pub const DMS_VALIDATION_STATES: &[&str] = &[
    "Not enabled",
    "Pending records",
    "Mismatched records",
    "Suspended records",
    "No primary key",
    "Table error",
    "Validated",
    "Error",
    "Pending validation",
    "Pending revalidation",
];

impl TableStatus {
    /// A table still loading: users of green would see a half-loaded table.
    pub fn loading_reason(&self) -> Option<String> {
        ["Before load", "Full load", "Table is being reloaded"]
            .iter()
            .any(|s| self.state.eq_ignore_ascii_case(s))
            .then(|| {
                format!(
                    "table {} is in '{}', not out of full load yet",
                    self.name, self.state
                )
            })
    }

    /// A table keeps the lag gate shut while it is in error or its validation found problems.
    pub fn blocking_reason(&self) -> Option<String> {
        const BAD_VALIDATION: &[&str] = &[
            "Mismatched records",
            "Suspended records",
            "Error",
            "Table error",
        ];
        if self.state.eq_ignore_ascii_case("Table error")
            || self.state.eq_ignore_ascii_case("Error")
        {
            return Some(format!("table {} is in state '{}'", self.name, self.state));
        }
        if BAD_VALIDATION.contains(&self.validation_state.as_str()) {
            return Some(format!(
                "table {} validation is '{}'",
                self.name, self.validation_state
            ));
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DmsStartType {
    StartReplication,
    ResumeProcessing,
    ReloadTarget,
}

/// What MGN says of a source server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MgnServer {
    pub id: String,
    pub lifecycle: String,
    pub replication_state: String,
    /// ISO 8601 as MGN sends it; None when MGN has no value.
    pub lag_duration: Option<String>,
    /// The instance the last cutover (or test) launch created, once there is one.
    #[serde(default)]
    pub launched_instance: Option<LaunchedInstance>,
}

/// SourceServer.launchedInstance (MGN API reference, LaunchedInstance,
/// https://docs.aws.amazon.com/mgn/latest/APIReference/API_LaunchedInstance.html).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchedInstance {
    pub ec2_instance_id: Option<String>,
    pub job_id: Option<String>,
    /// WAITING | SUCCEEDED | UNKNOWN | STOPPED
    pub first_boot: String,
}

/// A launch job as DescribeJobs reports it, for one of its servers (MGN API reference, Job and
/// ParticipatingServer, https://docs.aws.amazon.com/mgn/latest/APIReference/API_Job.html).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MgnJob {
    pub id: String,
    /// PENDING | STARTED | COMPLETED
    pub status: String,
    /// The server's launch in this job: PENDING | IN_PROGRESS | LAUNCHED | FAILED | TERMINATED.
    pub launch_status: Option<String>,
}

/// The period of the DMS latency datapoints the adapter asks CloudWatch for.
pub const DMS_METRIC_PERIOD_SECONDS: u64 = 60;

/// The newest CDCLatencySource / CDCLatencyTarget datapoints of a DMS task. CDCLatencyTarget is
/// the end-to-end lag: it is measured from the source commit time, so it already includes the
/// source's capture delay (AWS DMS user guide, "Replication task metrics",
/// https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Monitoring.html).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DmsLatency {
    pub source_seconds: f64,
    pub target_seconds: f64,
    /// The timestamp of the older of the two datapoints.
    pub at: DateTime<Utc>,
    /// CDCIncomingChanges of the same period (its Maximum): change events waiting to be applied
    /// to the target (same page). None when DMS published no datapoint for it.
    #[serde(default)]
    pub incoming_changes: Option<f64>,
}

impl DmsLatency {
    /// The lag the application sees: the larger of the two, never their sum.
    pub fn end_to_end(&self) -> f64 {
        self.source_seconds.max(self.target_seconds)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeResult {
    pub ok: bool,
    pub status: Option<u16>,
    pub detail: String,
}

/// A page about a run that needs a human now (a rollback that could not restore DNS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunNotice {
    pub run_id: String,
    pub application: String,
    /// A page (rollback_failed, finalize_failed, run_stuck, …) or, for the kinds in
    /// [`RunNotice::INFO_KINDS`], a notice that needs nobody to act.
    pub kind: String,
    pub message: String,
    pub at: DateTime<Utc>,
    /// `<runId>/<key>`, the same on every publish of one notice. A publish is remembered in the
    /// run table and in the Lambda execution environment that sent it; a retry that reaches
    /// another environment while the table still fails may publish again, and a standard topic
    /// does not deduplicate (Publish's `MessageDeduplicationId` applies only to FIFO topics:
    /// https://docs.aws.amazon.com/sns/latest/api/API_Publish.html). A pager keyed on it
    /// (PagerDuty's `dedup_key`, Opsgenie's `alias`) opens one incident per page.
    #[serde(default)]
    pub dedupe_key: String,
}

impl RunNotice {
    /// Notices that a run started or ended as planned: told to the topic, never paged.
    pub const INFO_KINDS: [&'static str; 6] = [
        "run_started",
        "run_completed",
        "run_rolled_back",
        "run_aborted",
        "run_failed",
        "calendar_nothing_queued",
    ];

    /// Whether somebody must act on it.
    pub fn is_page(&self) -> bool {
        !Self::INFO_KINDS.contains(&self.kind.as_str())
    }
}

/// What a human is told when a gate opens: never the task token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalNotice {
    pub run_id: String,
    pub application: String,
    pub gate: String,
    pub expires_at: DateTime<Utc>,
    pub evidence: Value,
    pub how_to_answer: String,
    /// The notice in plain words: where the run stands, what approving does, until when.
    #[serde(default)]
    pub summary: String,
}

/// Where a wave of the calendar is (docs/waves.md, "The wave calendar").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarState {
    /// Waiting for a firing whose time is inside its window.
    Queued,
    /// Taken by a firing: its wave execution runs.
    Running,
    Completed,
    /// Some applications completed, some did not.
    Partial,
    /// No application completed.
    Failed,
    /// Its wave execution was stopped.
    Stopped,
    /// Taken off the calendar by an operator, or its window ended before a firing took it.
    Skipped,
}

impl CalendarState {
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarState::Queued => "queued",
            CalendarState::Running => "running",
            CalendarState::Completed => "completed",
            CalendarState::Partial => "partial",
            CalendarState::Failed => "failed",
            CalendarState::Stopped => "stopped",
            CalendarState::Skipped => "skipped",
        }
    }
}

/// One application of a queued wave: its plan is an item of its own (`RunStore::save_wave_plan`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarApp {
    pub application: String,
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// A wave on the calendar: queued with its order and window, taken by one firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarEntry {
    pub wave: String,
    /// Firings take the queued wave of the lowest order whose window contains them.
    pub order: u64,
    #[serde(default)]
    pub window: Option<crate::waves::Window>,
    pub max_concurrency: u32,
    pub scheduling_interval_seconds: u64,
    #[serde(default = "crate::steps::default_handover_after_events")]
    pub handover_after_events: u32,
    pub applications: Vec<CalendarApp>,
    pub state: CalendarState,
    pub queued_at: DateTime<Utc>,
    pub queued_by: String,
    /// The wave execution (firing) that took it.
    #[serde(default)]
    pub wave_run_id: Option<String>,
    #[serde(default)]
    pub taken_at: Option<DateTime<Utc>>,
    /// Why it was skipped, or how it ended.
    #[serde(default)]
    pub note: Option<String>,
    /// Bumped by the store on every write (0: not stored yet).
    #[serde(default)]
    pub version: u64,
}
