//! The world file: parsed strictly and validated as a whole, every problem named by its field.

use cutover_core::model::{normalize_name, RecordSet, DMS_TABLE_STATES, DMS_VALIDATION_STATES};
use cutover_core::plan::{from_value, parse_document, PlanError, Violation};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorldSpec {
    /// Wall-clock time at t = 0 (RFC 3339); a fixed default keeps runs reproducible.
    #[serde(default = "default_start")]
    pub start_time: chrono::DateTime<chrono::Utc>,
    /// The stack's own account: what its credentials reach without a role.
    #[serde(default = "default_account")]
    pub account: String,
    /// The other accounts of the landing zone and the roles in them (world/accounts.rs).
    #[serde(default)]
    pub accounts: Vec<crate::world::accounts::AccountSpec>,
    #[serde(default)]
    pub route53: Route53Spec,
    #[serde(default)]
    pub dms: DmsSpec,
    #[serde(default)]
    pub mgn: MgnSpec,
    /// Application Load Balancer listeners, rules and target groups (world/elbv2.rs).
    #[serde(default)]
    pub elbv2: crate::world::elbv2::Elbv2Spec,
    /// URL -> [[from second, status]]; a status holds until the next entry.
    #[serde(default)]
    pub http: BTreeMap<String, Vec<(f64, u16)>>,
    /// URL -> [[from second, milliseconds]]: how long the endpoint takes to answer from then on
    /// (a step, like `http`); absent, it answers at once. Slower than the probe's
    /// timeoutSeconds, and the probe times out.
    #[serde(default)]
    pub http_latency_ms: BTreeMap<String, Vec<(f64, f64)>>,
    /// Alarm name -> [[from second, OK | ALARM | INSUFFICIENT_DATA]], or
    /// `{account, states: [[..]]}` for an alarm of another account.
    #[serde(default)]
    pub alarms: BTreeMap<String, AlarmSpec>,
    #[serde(default)]
    pub approvals: Vec<ApprovalSpec>,
    /// What operators do during the run, at seconds from its start.
    #[serde(default)]
    pub operator: Vec<OperatorSpec>,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// The application's writes, counted so a run's lost writes are computed, never assumed.
    #[serde(default)]
    pub app: AppSpec,
    /// Data hook (Lambda ARN or URL) -> [[from second, verdict]], a verdict of HOOK_VERDICTS;
    /// an unlisted hook answers ok.
    #[serde(default)]
    pub hooks: BTreeMap<String, Vec<(f64, String)>>,
    /// Application locks held at t = 0 by earlier runs, and whether their executions still run.
    #[serde(default)]
    pub locks: Vec<LockSpec>,
    /// Secrets Manager secret and SSM parameter ARN -> the value it holds. A reference to an
    /// ARN not listed is not found (ResourceNotFoundException, ParameterNotFound).
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// URL -> header -> value: the endpoint (a health URL or a url hook) answers 401 unless the
    /// request carries each header with that value.
    #[serde(default)]
    pub require_headers: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockSpec {
    pub application: String,
    /// The run id (execution name) holding it.
    pub held_by: String,
    /// Whether that execution is still running (false: it ended without releasing the lock).
    pub running: bool,
}

/// Which database a tier of the application writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Db {
    Blue,
    Green,
}

/// The application's write traffic: `writesPerSecond` split between blue's and green's tiers by
/// the DNS weights in effect, each tier writing to its current database until a switch hook
/// moves both.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSpec {
    #[serde(default)]
    pub writes_per_second: f64,
    /// The record clients resolve; defaults to the only record name in the world's zones.
    #[serde(default)]
    pub record: Option<String>,
    /// Where green's tier writes before any switch. Default: blue when the plan's data.writes
    /// is blue-until-switch (that is what the mode asks of the application), green otherwise.
    #[serde(default)]
    pub green_writes_to: Option<Db>,
}

/// `abort` is the approval API's abort (the run stops at its next check and rolls back if traffic
/// moved); `stop` is a console StopExecution (the execution ends ABORTED where it is); `hold`,
/// `resume`, `extend` and `promote` are the approval API's mid-run controls
/// (`POST /runs/{runId}/controls`, docs/controls.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorAction {
    Abort,
    Stop,
    Hold,
    Resume,
    Extend,
    Promote,
}

impl OperatorAction {
    /// The control's name in the API, for the actions that are controls.
    pub fn control(self) -> Option<&'static str> {
        match self {
            OperatorAction::Hold => Some("hold"),
            OperatorAction::Resume => Some("resume"),
            OperatorAction::Extend => Some("extend-bake"),
            OperatorAction::Promote => Some("promote"),
            OperatorAction::Abort | OperatorAction::Stop => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorSpec {
    pub after_seconds: f64,
    pub action: OperatorAction,
    pub by: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// `extend`: the seconds the bake in progress lasts longer.
    #[serde(default)]
    pub seconds: Option<u64>,
    /// `promote`: to the last step's weight at once (`promote --full`).
    #[serde(default)]
    pub full: bool,
}

/// The simulated stack's account (docs/world.md).
pub const DEFAULT_ACCOUNT: &str = "123456789012";

fn default_account() -> String {
    DEFAULT_ACCOUNT.into()
}

/// An alarm's states: the curve alone (an alarm of the stack's account), or with its account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AlarmSpec {
    States(Vec<(f64, String)>),
    #[serde(rename_all = "camelCase")]
    InAccount {
        account: String,
        states: Vec<(f64, String)>,
    },
}

impl AlarmSpec {
    pub fn states(&self) -> &[(f64, String)] {
        match self {
            AlarmSpec::States(s) | AlarmSpec::InAccount { states: s, .. } => s,
        }
    }
    /// The alarm's account, when it names one (else the world's).
    pub fn account(&self) -> Option<&str> {
        match self {
            AlarmSpec::States(_) => None,
            AlarmSpec::InAccount { account, .. } => Some(account),
        }
    }
}

fn default_start() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-12-05T02:00:00Z")
        .expect("constant")
        .into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route53Spec {
    #[serde(default = "default_rps")]
    pub requests_per_second: u32,
    #[serde(default = "default_propagation")]
    pub propagation_seconds: u64,
    /// How long a change keeps its zone busy: further changes to the zone meanwhile get
    /// PriorRequestNotComplete.
    #[serde(default = "default_busy")]
    pub busy_seconds: u64,
    #[serde(default)]
    pub zones: Vec<ZoneSpec>,
}

impl Default for Route53Spec {
    fn default() -> Self {
        Route53Spec {
            requests_per_second: default_rps(),
            propagation_seconds: default_propagation(),
            busy_seconds: default_busy(),
            zones: vec![],
        }
    }
}

fn default_rps() -> u32 {
    5
}
fn default_propagation() -> u64 {
    30
}
fn default_busy() -> u64 {
    2
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneSpec {
    pub id: String,
    pub name: String,
    /// The account that owns the zone; absent, the world's `account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default)]
    pub records: Vec<RecordSet>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DmsSpec {
    /// How often DMS latency datapoints are published, in seconds. A period's datapoint appears
    /// once the period has ended, stamped with the period's start.
    #[serde(default = "default_metric_period")]
    pub metric_period_seconds: u64,
    #[serde(default)]
    pub tasks: Vec<DmsTaskSpec>,
}

impl Default for DmsSpec {
    fn default() -> Self {
        DmsSpec {
            metric_period_seconds: default_metric_period(),
            tasks: vec![],
        }
    }
}

fn default_metric_period() -> u64 {
    60
}

/// A value that is either fixed or scripted over time: `"Table completed"` or
/// `[[0, "Full load"], [600, "Table completed"]]` (seconds since the task started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scripted {
    Fixed(String),
    Curve(Vec<(f64, String)>),
}

impl Scripted {
    pub fn at(&self, t: f64) -> String {
        match self {
            Scripted::Fixed(s) => s.clone(),
            Scripted::Curve(c) => step_value(c, t)
                .or_else(|| c.first().map(|p| p.1.clone()))
                .unwrap_or_default(),
        }
    }

    fn values(&self) -> Vec<&str> {
        match self {
            Scripted::Fixed(s) => vec![s.as_str()],
            Scripted::Curve(c) => c.iter().map(|p| p.1.as_str()).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DmsTaskSpec {
    pub arn: String,
    /// The task's account: its ARN's (given, it must agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default = "default_migration_type")]
    pub migration_type: String,
    pub status: String,
    /// [[seconds since the task started, lag seconds]], linear in between: the end-to-end lag the
    /// application sees, which is what CDCLatencyTarget reports.
    pub lag: Vec<(f64, f64)>,
    /// Optional CDCLatencySource curve (the capture delay alone, never above `lag`); absent = 0.
    #[serde(default)]
    pub source_lag: Vec<(f64, f64)>,
    /// Replaced by `lag` (end to end) and `sourceLag`; refused with a message saying so.
    #[serde(default, skip_serializing)]
    pub target_lag: Option<serde_json::Value>,
    /// The task fails this many seconds after it starts.
    #[serde(default)]
    pub fail_after_seconds: Option<f64>,
    /// The task is stopped (by someone else) this many seconds after it starts.
    #[serde(default)]
    pub stop_after_seconds: Option<f64>,
    #[serde(default)]
    pub tables: Vec<TableSpec>,
    /// Which way the task replicates: blue-to-green (default) or green-to-blue (reverse).
    #[serde(default)]
    pub carries: Carries,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Carries {
    #[default]
    BlueToGreen,
    GreenToBlue,
}

fn default_migration_type() -> String {
    "full-load-and-cdc".into()
}

/// A table as DescribeTableStatistics reports it; times count from the task's start. Before the
/// task starts every table is "Before load".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableSpec {
    pub name: String,
    #[serde(default = "default_table_state")]
    pub state: Scripted,
    #[serde(default = "default_validation")]
    pub validation_state: Scripted,
}

fn default_table_state() -> Scripted {
    Scripted::Fixed("Table completed".into())
}
fn default_validation() -> Scripted {
    Scripted::Fixed("Not enabled".into())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MgnSpec {
    #[serde(default)]
    pub servers: Vec<MgnServerSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MgnServerSpec {
    pub id: String,
    /// The account the server replicates into; absent, the world's `account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub lifecycle: String,
    pub replication_state: String,
    /// [[seconds since t = 0, lag seconds]], linear in between.
    pub lag: Vec<(f64, f64)>,
    /// Seconds from StartCutover until the launch job has completed and the launched instance
    /// has finished its first boot.
    #[serde(default = "default_launch")]
    pub launch_seconds: f64,
    /// The launch fails: the job completes with this server's launch FAILED and no instance boots.
    #[serde(default)]
    pub launch_fails: bool,
    /// Health URLs the launched instance serves: they refuse connections until its first boot.
    #[serde(default)]
    pub launched_urls: Vec<String>,
}

fn default_launch() -> f64 {
    120.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalSpec {
    pub gate: String,
    pub decision: String,
    pub by: String,
    /// Seconds after the gate opens that the human answers.
    #[serde(default)]
    pub after_seconds: f64,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    pub operation: String,
    pub error: String,
    pub times: u32,
    /// Faults start at this t (seconds); before it calls succeed.
    #[serde(default)]
    pub after_seconds: f64,
}

/// Operations a fault can target, with the error codes each may raise.
/// What a scripted data hook does from a time on (docs/world.md, "hooks").
pub const HOOK_VERDICTS: &[&str] = &["ok", "fail", "throttle", "timeout", "acted-timeout"];

pub const FAULT_OPERATIONS: &[(&str, &[&str])] = &[
    (
        "route53.ChangeResourceRecordSets",
        &[
            "Throttling",
            "PriorRequestNotComplete",
            "ServiceUnavailable",
            "InvalidChangeBatch",
        ],
    ),
    ("route53.GetChange", &["Throttling", "ServiceUnavailable"]),
    (
        "sts.AssumeRole",
        &["AccessDenied", "Throttling", "ServiceUnavailable"],
    ),
    ("elbv2.DescribeRules", &["Throttling", "ServiceUnavailable"]),
    (
        "elbv2.ModifyRule",
        &[
            "Throttling",
            "ServiceUnavailable",
            "InvalidLoadBalancerAction",
        ],
    ),
    (
        "elbv2.ModifyListener",
        &[
            "Throttling",
            "ServiceUnavailable",
            "InvalidLoadBalancerAction",
        ],
    ),
    (
        "elbv2.DescribeTargetHealth",
        &["Throttling", "ServiceUnavailable"],
    ),
    (
        "route53.ListResourceRecordSets",
        &["Throttling", "ServiceUnavailable"],
    ),
    (
        "dms.DescribeReplicationTasks",
        &["ThrottlingException", "ServiceUnavailable"],
    ),
    (
        "dms.StartReplicationTask",
        &[
            "ThrottlingException",
            "InvalidResourceStateFault",
            "ServiceUnavailable",
        ],
    ),
    (
        "cloudwatch.GetMetricData",
        &["Throttling", "ServiceUnavailable"],
    ),
    (
        "cloudwatch.DescribeAlarms",
        &["Throttling", "ServiceUnavailable"],
    ),
    (
        "mgn.DescribeSourceServers",
        &["ThrottlingException", "ServiceUnavailable"],
    ),
    (
        "mgn.StartCutover",
        &[
            "ThrottlingException",
            "ConflictException",
            "ServiceUnavailable",
        ],
    ),
    (
        "mgn.DescribeJobs",
        &["ThrottlingException", "ServiceUnavailable"],
    ),
    (
        "dms.StopReplicationTask",
        &[
            "ThrottlingException",
            "InvalidResourceStateFault",
            "ServiceUnavailable",
        ],
    ),
    (
        "mgn.FinalizeCutover",
        &[
            "ThrottlingException",
            "ConflictException",
            "ServiceUnavailable",
        ],
    ),
    (
        "states.SendTaskSuccess",
        &["ThrottlingException", "ServiceUnavailable"],
    ),
    (
        "states.SendTaskFailure",
        &["ThrottlingException", "ServiceUnavailable"],
    ),
    (
        "states.DescribeExecution",
        &["ThrottlingException", "ServiceUnavailable"],
    ),
    (
        "dynamodb.GetItem",
        &[
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "InternalServerError",
        ],
    ),
    (
        "dynamodb.PutItem",
        &[
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "InternalServerError",
        ],
    ),
    (
        "dynamodb.DeleteItem",
        &[
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "InternalServerError",
        ],
    ),
    (
        "dynamodb.Query",
        &[
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "InternalServerError",
        ],
    ),
    ("sns.Publish", &["Throttling", "ServiceUnavailable"]),
    ("http.Probe", &["ConnectionRefused", "Timeout"]),
    (
        "kms.Encrypt",
        &["ThrottlingException", "KMSInternalException"],
    ),
    (
        "kms.Decrypt",
        &["ThrottlingException", "KMSInternalException"],
    ),
    (
        "secrets.Read",
        &[
            "ThrottlingException",
            "InternalServiceError",
            "AccessDeniedException",
        ],
    ),
    // The transport to a data hook (Lambda Invoke or HTTPS), before the hook itself runs.
    (
        "hooks.Call",
        &["TooManyRequestsException", "ServiceException"],
    ),
];

pub type WorldError = PlanError;

const DMS_STATUSES: &[&str] = &[
    "ready",
    "stopped",
    "running",
    "failed",
    "starting",
    "stopping",
    "creating",
    "modifying",
];
const MGN_LIFECYCLES: &[&str] = &[
    "STOPPED",
    "NOT_READY",
    "READY_FOR_TEST",
    "TESTING",
    "READY_FOR_CUTOVER",
    "CUTTING_OVER",
    "CUTOVER",
    "DISCONNECTED",
    "DISCOVERED",
    "PENDING_INSTALLATION",
];
const MGN_REPLICATION: &[&str] = &[
    "STOPPED",
    "INITIATING",
    "INITIAL_SYNC",
    "BACKLOG",
    "CREATING_SNAPSHOT",
    "CONTINUOUS",
    "PAUSED",
    "RESCAN",
    "STALLED",
    "DISCONNECTED",
    "PENDING_SNAPSHOT_SHIPPING",
    "SHIPPING_SNAPSHOT",
];

impl WorldSpec {
    pub fn parse(text: &str, json: bool) -> Result<WorldSpec, WorldError> {
        let spec: WorldSpec = from_value(parse_document(text, json)?)?;
        let v = spec.violations();
        if v.is_empty() {
            Ok(spec)
        } else {
            Err(PlanError::Invalid(v))
        }
    }

    pub fn violations(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut bad = |field: String, message: String| out.push(Violation { field, message });
        self.elbv2.violations(&mut bad);
        crate::world::accounts::violations(self, &mut bad);
        if !(1..=86_400).contains(&self.dms.metric_period_seconds) {
            bad("dms.metricPeriodSeconds".into(), "must be 1..=86400".into());
        }
        if self.route53.requests_per_second == 0 {
            bad(
                "route53.requestsPerSecond".into(),
                "must be at least 1".into(),
            );
        }
        if !in_world_time(self.route53.propagation_seconds as f64) {
            bad("route53.propagationSeconds".into(), WORLD_TIME.into());
        }
        for (zi, z) in self.route53.zones.iter().enumerate() {
            if !z.id.starts_with('Z') {
                bad(
                    format!("route53.zones[{zi}].id"),
                    format!("'{}' is not a hosted zone id", z.id),
                );
            }
            let zone = normalize_name(&z.name);
            for (ri, r) in z.records.iter().enumerate() {
                let name = normalize_name(&r.name);
                if name != zone && !name.ends_with(&format!(".{zone}")) {
                    bad(
                        format!("route53.zones[{zi}].records[{ri}].name"),
                        format!("'{}' is not in zone {}", r.name, z.name),
                    );
                }
                if r.alias_target.is_some() && (r.ttl.is_some() || !r.values.is_empty()) {
                    bad(
                        format!("route53.zones[{zi}].records[{ri}].aliasTarget"),
                        "an alias record has no ttl and no values (Route 53 answers with the target's)".into(),
                    );
                } else if r.alias_target.is_none() && r.values.is_empty() {
                    bad(
                        format!("route53.zones[{zi}].records[{ri}].values"),
                        "needs at least one value, or an aliasTarget".into(),
                    );
                } else if r.alias_target.is_none() && r.ttl.is_none() {
                    bad(
                        format!("route53.zones[{zi}].records[{ri}].ttl"),
                        "a value record needs a ttl".into(),
                    );
                }
                // A set identifier goes with exactly one routing policy besides simple
                // (ResourceRecordSet: SetIdentifier is required for weighted, latency,
                // geolocation, failover, multivalue answer and IP-based records).
                let policies = [
                    r.weight.is_some(),
                    r.failover.is_some(),
                    r.region.is_some(),
                    r.geo_location.is_some(),
                    r.multi_value_answer.is_some(),
                    r.cidr_routing_config.is_some(),
                ]
                .iter()
                .filter(|p| **p)
                .count();
                if r.set_identifier.is_some() != (policies == 1) || policies > 1 {
                    bad(
                        format!("route53.zones[{zi}].records[{ri}]"),
                        "setIdentifier goes with exactly one of weight, failover, region, geoLocation, multiValueAnswer or cidrRoutingConfig".into(),
                    );
                }
                if let Some(f) = &r.failover {
                    if f != "PRIMARY" && f != "SECONDARY" {
                        bad(
                            format!("route53.zones[{zi}].records[{ri}].failover"),
                            format!("'{f}' is not PRIMARY or SECONDARY"),
                        );
                    }
                }
                if r.weight.is_some_and(|w| w > 255) {
                    bad(
                        format!("route53.zones[{zi}].records[{ri}].weight"),
                        "must be 0..=255".into(),
                    );
                }
            }
        }
        for (i, t) in self.dms.tasks.iter().enumerate() {
            if !DMS_STATUSES.contains(&t.status.as_str()) {
                bad(
                    format!("dms.tasks[{i}].status"),
                    format!("'{}' is not one of {}", t.status, DMS_STATUSES.join(", ")),
                );
            }
            if !["full-load", "cdc", "full-load-and-cdc"].contains(&t.migration_type.as_str()) {
                bad(
                    format!("dms.tasks[{i}].migrationType"),
                    format!(
                        "'{}' is not full-load, cdc or full-load-and-cdc",
                        t.migration_type
                    ),
                );
            }
            curve(&t.lag, &format!("dms.tasks[{i}].lag"), true, &mut bad);
            for (name, v) in [
                ("failAfterSeconds", t.fail_after_seconds),
                ("stopAfterSeconds", t.stop_after_seconds),
            ] {
                if v.is_some_and(|v| !in_world_time(v)) {
                    bad(format!("dms.tasks[{i}].{name}"), WORLD_TIME.into());
                }
            }
            if t.target_lag.is_some() {
                bad(
                    format!("dms.tasks[{i}].targetLag"),
                    "is no longer read: `lag` is now the end-to-end lag (what CDCLatencyTarget reports) and `sourceLag` the capture delay (CDCLatencySource, at most `lag`); move the curve".into(),
                );
            }
            if !t.source_lag.is_empty() {
                curve(
                    &t.source_lag,
                    &format!("dms.tasks[{i}].sourceLag"),
                    false,
                    &mut bad,
                );
            }
            for (ti, table) in t.tables.iter().enumerate() {
                for (field, value, allowed) in [
                    ("state", &table.state, DMS_TABLE_STATES),
                    (
                        "validationState",
                        &table.validation_state,
                        DMS_VALIDATION_STATES,
                    ),
                ] {
                    if let Scripted::Curve(c) = value {
                        steps(
                            c.iter().map(|p| p.0),
                            &format!("dms.tasks[{i}].tables[{ti}].{field}"),
                            &mut bad,
                        );
                    }
                    for v in value.values() {
                        if !allowed.contains(&v) {
                            bad(
                                format!("dms.tasks[{i}].tables[{ti}].{field}"),
                                format!(
                                    "'{v}' is not spelled as DMS reports it: one of {}",
                                    allowed.join(", ")
                                ),
                            );
                        }
                    }
                }
            }
        }
        for (i, s) in self.mgn.servers.iter().enumerate() {
            if !MGN_LIFECYCLES.contains(&s.lifecycle.as_str()) {
                bad(
                    format!("mgn.servers[{i}].lifecycle"),
                    format!("'{}' is not an MGN lifecycle state", s.lifecycle),
                );
            }
            if !MGN_REPLICATION.contains(&s.replication_state.as_str()) {
                bad(
                    format!("mgn.servers[{i}].replicationState"),
                    format!("'{}' is not an MGN replication state", s.replication_state),
                );
            }
            curve(&s.lag, &format!("mgn.servers[{i}].lag"), true, &mut bad);
            if !(s.launch_seconds.is_finite() && (1.0..=86_400.0).contains(&s.launch_seconds)) {
                bad(
                    format!("mgn.servers[{i}].launchSeconds"),
                    format!("{} is outside 1..=86400", s.launch_seconds),
                );
            }
            for (u, url) in s.launched_urls.iter().enumerate() {
                if url::Url::parse(url).is_err() {
                    bad(
                        format!("mgn.servers[{i}].launchedUrls[{u}]"),
                        format!("'{url}' is not a URL"),
                    );
                }
            }
        }
        for (url, points) in &self.http {
            if url::Url::parse(url).is_err() {
                bad(format!("http.{url}"), "is not a URL".into());
            }
            steps(points.iter().map(|p| p.0), &format!("http.{url}"), &mut bad);
            for (t, s) in points {
                if !(100..=599).contains(s) {
                    bad(
                        format!("http.{url}"),
                        format!("status {s} at t={t} is not an HTTP status"),
                    );
                }
            }
        }
        for (url, points) in &self.http_latency_ms {
            if url::Url::parse(url).is_err() {
                bad(format!("httpLatencyMs.{url}"), "is not a URL".into());
            }
            steps(
                points.iter().map(|p| p.0),
                &format!("httpLatencyMs.{url}"),
                &mut bad,
            );
            for (t, ms) in points {
                // An hour is far beyond any probe's wait; larger numbers only hide mistakes.
                if !(ms.is_finite() && (0.0..=3_600_000.0).contains(ms)) {
                    bad(
                        format!("httpLatencyMs.{url}"),
                        format!("{ms} ms at t={t} is outside 0..=3600000"),
                    );
                }
            }
        }
        for (arn, value) in &self.secrets {
            if !cutover_core::secret::secret_arn(arn) && !cutover_core::secret::parameter_arn(arn) {
                bad(
                    format!("secrets.{arn}"),
                    "is not a Secrets Manager secret ARN or an SSM parameter ARN".into(),
                );
            }
            // SecretString holds at most 65,536 bytes (Secrets Manager quotas:
            // https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html).
            if value.len() > 65_536 {
                bad(
                    format!("secrets.{arn}"),
                    format!("holds {} bytes; a secret holds at most 65,536", value.len()),
                );
            }
        }
        for (url, headers) in &self.require_headers {
            if url::Url::parse(url).is_err() {
                bad(format!("requireHeaders.{url}"), "is not a URL".into());
            }
            if headers.is_empty() {
                bad(format!("requireHeaders.{url}"), "names no header".into());
            }
        }
        for (name, alarm) in &self.alarms {
            let points = alarm.states();
            steps(
                points.iter().map(|p| p.0),
                &format!("alarms.{name}"),
                &mut bad,
            );
            for (t, s) in points {
                if !["OK", "ALARM", "INSUFFICIENT_DATA"].contains(&s.as_str()) {
                    bad(
                        format!("alarms.{name}"),
                        format!("state '{s}' at t={t} is not OK, ALARM or INSUFFICIENT_DATA"),
                    );
                }
            }
        }
        for (i, l) in self.locks.iter().enumerate() {
            let ok = !l.held_by.is_empty()
                && l.held_by.len() <= 80
                && l.held_by
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                bad(
                    format!("locks[{i}].heldBy"),
                    "must be a run id: 1-80 letters, digits, '-' or '_'".into(),
                );
            }
        }
        let a = &self.app;
        if !(a.writes_per_second.is_finite() && (0.0..=1_000_000.0).contains(&a.writes_per_second))
        {
            bad(
                "app.writesPerSecond".into(),
                format!("{} is outside 0..=1000000", a.writes_per_second),
            );
        }
        let names: std::collections::BTreeSet<String> = self
            .route53
            .zones
            .iter()
            .flat_map(|z| z.records.iter().map(|r| normalize_name(&r.name)))
            .collect();
        match &a.record {
            Some(r) if !names.contains(&normalize_name(r)) => bad(
                "app.record".into(),
                format!("'{r}' is not a record of the world's zones"),
            ),
            None if a.writes_per_second > 0.0 && names.len() > 1 => bad(
                "app.record".into(),
                "names which record clients resolve (the zones hold more than one)".into(),
            ),
            _ => {}
        }
        for (i, c) in [Carries::BlueToGreen, Carries::GreenToBlue]
            .iter()
            .enumerate()
        {
            if self.dms.tasks.iter().filter(|t| t.carries == *c).count() > 1
                && a.writes_per_second > 0.0
            {
                bad(
                    "dms.tasks".into(),
                    format!(
                        "more than one task {} while app writes are modelled: which one carries them is ambiguous",
                        ["carries blue-to-green", "carries green-to-blue"][i]
                    ),
                );
            }
        }
        for (hook, points) in &self.hooks {
            steps(
                points.iter().map(|p| p.0),
                &format!("hooks.{hook}"),
                &mut bad,
            );
            for (t, v) in points {
                if !HOOK_VERDICTS.contains(&v.as_str()) {
                    bad(
                        format!("hooks.{hook}"),
                        format!("'{v}' at t={t} is not one of {}", HOOK_VERDICTS.join(", ")),
                    );
                }
            }
        }
        for (i, a) in self.approvals.iter().enumerate() {
            if a.decision != "approve" && a.decision != "reject" {
                bad(
                    format!("approvals[{i}].decision"),
                    format!("'{}' is not approve or reject", a.decision),
                );
            }
            if a.by.trim().is_empty() {
                bad(format!("approvals[{i}].by"), "names who decides".into());
            }
            if !in_world_time(a.after_seconds) {
                bad(format!("approvals[{i}].afterSeconds"), WORLD_TIME.into());
            }
        }
        for (i, o) in self.operator.iter().enumerate() {
            if !in_world_time(o.after_seconds) {
                bad(format!("operator[{i}].afterSeconds"), WORLD_TIME.into());
            }
            if o.by.trim().is_empty() {
                bad(format!("operator[{i}].by"), "names who acts".into());
            }
            match (o.action, o.seconds) {
                (OperatorAction::Extend, Some(s))
                    if (1..=cutover_core::plan::MAX_HOLD_SECONDS).contains(&s) => {}
                (OperatorAction::Extend, _) => bad(
                    format!("operator[{i}].seconds"),
                    format!(
                        "extend needs seconds, 1..={}",
                        cutover_core::plan::MAX_HOLD_SECONDS
                    ),
                ),
                (_, Some(_)) => bad(
                    format!("operator[{i}].seconds"),
                    "only extend takes seconds".into(),
                ),
                _ => {}
            }
            if o.full && o.action != OperatorAction::Promote {
                bad(
                    format!("operator[{i}].full"),
                    "only promote can be full".into(),
                );
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            match FAULT_OPERATIONS.iter().find(|(op, _)| *op == f.operation) {
                None => bad(
                    format!("faults[{i}].operation"),
                    format!(
                        "'{}' is not one of {}",
                        f.operation,
                        FAULT_OPERATIONS
                            .iter()
                            .map(|(o, _)| *o)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                Some((_, errors)) if !errors.contains(&f.error.as_str()) => bad(
                    format!("faults[{i}].error"),
                    format!(
                        "'{}' is not one of {} for {}",
                        f.error,
                        errors.join(", "),
                        f.operation
                    ),
                ),
                _ => {}
            }
            if f.times == 0 {
                bad(format!("faults[{i}].times"), "must be at least 1".into());
            }
            if !in_world_time(f.after_seconds) {
                bad(format!("faults[{i}].afterSeconds"), WORLD_TIME.into());
            }
        }
        out
    }
}

/// The longest a run can last: a Standard execution's one year (Step Functions service quotas,
/// "Maximum execution time"). A world time beyond it could never be reached.
pub const MAX_WORLD_SECONDS: f64 = 31_536_000.0;
const WORLD_TIME: &str = "must be between 0 and 31536000 seconds (a Standard execution's one year)";

fn in_world_time(t: f64) -> bool {
    (0.0..=MAX_WORLD_SECONDS).contains(&t)
}

fn curve(points: &[(f64, f64)], field: &str, required: bool, bad: &mut impl FnMut(String, String)) {
    if points.is_empty() && required {
        bad(
            field.to_string(),
            "needs at least one [seconds, lag] point".into(),
        );
    }
    steps(points.iter().map(|p| p.0), field, bad);
    if points.iter().any(|p| !(p.1 >= 0.0 && p.1.is_finite())) {
        bad(field.to_string(), "lag values must be zero or more".into());
    }
}

fn steps(times: impl Iterator<Item = f64>, field: &str, bad: &mut impl FnMut(String, String)) {
    let mut prev = f64::NEG_INFINITY;
    for t in times {
        if !in_world_time(t) || t <= prev {
            bad(
                field.to_string(),
                format!("times must be strictly increasing; each {WORLD_TIME}"),
            );
            return;
        }
        prev = t;
    }
}

/// Linear interpolation through the points; flat before the first and after the last.
pub fn interpolate(points: &[(f64, f64)], t: f64) -> f64 {
    match points {
        [] => 0.0,
        [only] => only.1,
        _ => {
            if t <= points[0].0 {
                return points[0].1;
            }
            for w in points.windows(2) {
                let ((t0, v0), (t1, v1)) = (w[0], w[1]);
                if t <= t1 {
                    return v0 + (v1 - v0) * (t - t0) / (t1 - t0);
                }
            }
            points[points.len() - 1].1
        }
    }
}

/// The value in force at t: the last entry whose time is at or before t.
pub fn step_value<T: Clone>(points: &[(f64, T)], t: f64) -> Option<T> {
    points
        .iter()
        .rev()
        .find(|(from, _)| *from <= t)
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_and_steps() {
        let pts = [(0.0, 900.0), (600.0, 40.0), (900.0, 3.0)];
        assert_eq!(interpolate(&pts, 0.0), 900.0);
        assert_eq!(interpolate(&pts, 300.0), 470.0);
        assert_eq!(interpolate(&pts, 5000.0), 3.0);
        assert_eq!(step_value(&[(0.0, 200), (1800.0, 503)], 1799.0), Some(200));
        assert_eq!(step_value(&[(0.0, 200), (1800.0, 503)], 1800.0), Some(503));
    }

    #[test]
    fn names_every_bad_field() {
        let text = r#"
route53: {zones: [{id: Z1, name: example.com., records: [{name: x.other.com., type: CNAME, ttl: 60, values: [a.example.com]}]}]}
dms: {tasks: [{arn: "arn:aws:dms:us-east-1:123456789012:task:A", status: sleeping, lag: [[10, 1], [5, 2]]}]}
alarms: {a: [[0, RED]]}
faults: [{operation: route53.Nope, error: Throttling, times: 0}]
"#;
        let fields: Vec<String> = WorldSpec::parse(text, false)
            .unwrap_err()
            .violations()
            .into_iter()
            .map(|v| v.field)
            .collect();
        for f in [
            "route53.zones[0].records[0].name",
            "dms.tasks[0].status",
            "dms.tasks[0].lag",
            "alarms.a",
            "faults[0].operation",
            "faults[0].times",
        ] {
            assert!(fields.iter().any(|x| x == f), "missing {f} in {fields:?}");
        }
    }

    #[test]
    fn unknown_world_field_is_named() {
        let e = WorldSpec::parse("route53: {requestPerSecond: 5}", false).unwrap_err();
        assert_eq!(e.violations()[0].field, "route53.requestPerSecond");
        assert!(e.to_string().contains("requestPerSecond"));
    }
}
