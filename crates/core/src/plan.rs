//! The cutover plan: parsed strictly (unknown fields are errors) and validated as a whole, so an
//! operator sees every problem at once, each named by its field path.

use crate::model::{AliasTarget, RecordType, Routing};
use crate::shape;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    pub application: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<String>,
    pub replication: ReplicationPlan,
    /// Route 53 weighted records: one of the two routers (`dns` or `alb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsPlan>,
    /// ALB weighted target groups: the other router (crate::alb).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb: Option<crate::alb::AlbPlan>,
    pub traffic: TrafficPlan,
    pub health: HealthPlan,
    #[serde(default)]
    pub approvals: ApprovalsPlan,
    #[serde(default)]
    pub finalize: FinalizePlan,
    #[serde(default)]
    pub rollback: RollbackPlan,
    /// What operators may do mid-run: hold, extend a bake, promote (docs/controls.md).
    #[serde(default)]
    pub controls: ControlsPlan,
    /// How the application's writes move with it (docs/data.md).
    #[serde(default)]
    pub data: DataPlan,
}

/// Where the application writes while traffic moves, and how the database is switched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WritesMode {
    /// Green writes to the blue database while traffic shifts; after the last bake writes are
    /// frozen, replication drains, the application is switched to the green database.
    BlueUntilSwitch,
    /// Freeze, drain and switch before the first traffic step; the shift runs on green's data.
    FreezeAndSwitch,
    /// The cutover does not move data: green's writes are lost on a rollback.
    #[default]
    Unmanaged,
}

impl WritesMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WritesMode::BlueUntilSwitch => "blue-until-switch",
            WritesMode::FreezeAndSwitch => "freeze-and-switch",
            WritesMode::Unmanaged => "unmanaged",
        }
    }
}

/// A hook the application owner provides: a Lambda function, or an HTTPS endpoint called with a
/// SigV4-signed request (`auth: iam`, for API Gateway IAM authorization) or unsigned (`none`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// POST (default) or PUT, for `url` hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// iam (default) or none, for `url` hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// How long one call may take before it counts as timed out.
    #[serde(default = "default_hook_timeout")]
    pub timeout_seconds: u64,
    /// Headers a `url` hook sends, each read from a Secrets Manager secret or an SSM
    /// SecureString when the hook is called (`crate::secret`); never inline.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: crate::secret::Headers,
}

fn default_hook_timeout() -> u64 {
    30
}

impl Hook {
    /// The name the hook is known by: its function ARN or its URL.
    pub fn target(&self) -> &str {
        self.lambda_arn
            .as_deref()
            .or(self.url.as_deref())
            .unwrap_or_default()
    }
}

/// A DMS task replicating green's database back to blue's, started at the switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReverseReplication {
    pub task_arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataPlan {
    #[serde(default)]
    pub writes: WritesMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<Hook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<Hook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfreeze: Option<Hook>,
    /// The longest writes may stay frozen; past it the run aborts and unfreezes.
    #[serde(default = "default_max_freeze")]
    pub max_freeze_seconds: u64,
    /// How often the drain is checked while writes are frozen.
    #[serde(default = "default_drain_poll")]
    pub drain_poll_seconds: u64,
    /// A gate asked before writes are frozen for the switch (the point of no return).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_replication: Option<ReverseReplication>,
}

impl Default for DataPlan {
    fn default() -> Self {
        DataPlan {
            writes: WritesMode::Unmanaged,
            freeze: None,
            switch: None,
            unfreeze: None,
            max_freeze_seconds: default_max_freeze(),
            drain_poll_seconds: default_drain_poll(),
            approval: None,
            reverse_replication: None,
        }
    }
}

fn default_max_freeze() -> u64 {
    300
}
fn default_drain_poll() -> u64 {
    15
}

/// The gate asked when green is unhealthy after the switch and no reverse replication can carry
/// its writes back: approving rolls back and loses them.
pub const ROLLBACK_AFTER_SWITCH_GATE: &str = "rollback-after-switch";

/// How long a rollback keeps trying to restore DNS (re-reading and re-applying the snapshot,
/// waiting out throttling and busy zones) before it gives up, pages and keeps the lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackPlan {
    #[serde(default = "default_rollback_budget")]
    pub budget_seconds: u64,
}

impl Default for RollbackPlan {
    fn default() -> Self {
        RollbackPlan {
            budget_seconds: default_rollback_budget(),
        }
    }
}

fn default_rollback_budget() -> u64 {
    3600
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplicationKind {
    Dms,
    Mgn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicationPlan {
    pub kind: ReplicationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_server_id: Option<String>,
    /// MGN: an application of several servers, launched by one StartCutover (1 to 200 ids, as
    /// the API takes: https://docs.aws.amazon.com/mgn/latest/APIReference/API_StartCutover.html).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_server_ids: Option<Vec<String>>,
    pub max_lag_seconds: f64,
    #[serde(default = "default_stable_samples")]
    pub stable_samples: u32,
    #[serde(default = "default_sample_interval")]
    pub sample_interval_seconds: u64,
    #[serde(default = "default_deadline")]
    pub deadline_seconds: u64,
    /// MGN: how long the cutover instance may take to launch, boot and answer its health checks.
    #[serde(default = "default_launch_deadline")]
    pub launch_deadline_seconds: u64,
    /// The role that reaches this section's resources in another account (docs/plan.md,
    /// "Several accounts"); absent, the stack's own credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The external ID the role's trust policy asks for (`sts:ExternalId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

fn default_launch_deadline() -> u64 {
    1800
}

/// The most values one side's record may hold (see `dns.<side>.values`).
pub const MAX_RECORD_VALUES: usize = 100;

/// The most servers one StartCutover launches (its `sourceServerIDs`: 1 to 200 items).
pub const MAX_MGN_SERVERS: usize = 200;

impl ReplicationPlan {
    /// The MGN source servers of the application, in the plan's order: `sourceServerIds`, or the
    /// one `sourceServerId`; none for DMS.
    pub fn mgn_servers(&self) -> Vec<&str> {
        match (&self.source_server_ids, &self.source_server_id) {
            (Some(ids), _) => ids.iter().map(String::as_str).collect(),
            (None, Some(id)) => vec![id.as_str()],
            (None, None) => Vec::new(),
        }
    }

    /// The plan field that names MGN server `i`, for messages.
    pub fn mgn_server_field(&self, i: usize) -> String {
        if self.source_server_ids.is_some() {
            format!("replication.sourceServerIds[{i}]")
        } else {
            "replication.sourceServerId".into()
        }
    }
}

fn default_stable_samples() -> u32 {
    3
}
fn default_sample_interval() -> u64 {
    60
}
fn default_deadline() -> u64 {
    7200
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsPlan {
    pub hosted_zone_id: String,
    pub record_name: String,
    pub record_type: RecordType,
    /// TTL of the weighted value records the cutover writes (alias records have none).
    #[serde(default = "default_ttl")]
    pub ttl: u64,
    /// Pre-flight refuses a record whose current TTL is longer: resolvers keep the old answer
    /// that long, so no shift or rollback would take effect before it runs out.
    #[serde(default = "default_max_original_ttl")]
    pub max_original_ttl_seconds: u64,
    pub blue: Target,
    pub green: Target,
    /// What DNS looks like after a completed cutover: the weighted pair at green 100 / blue 0
    /// (default), or collapsed to one simple record in green's form.
    #[serde(default)]
    pub final_form: FinalForm,
    /// The role that reaches this section's resources in another account (docs/plan.md,
    /// "Several accounts"); absent, the stack's own credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The external ID the role's trust policy asks for (`sts:ExternalId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalForm {
    #[default]
    Weighted,
    Simple,
}

fn default_ttl() -> u64 {
    60
}
fn default_max_original_ttl() -> u64 {
    300
}

impl DnsPlan {
    /// Plan check of the section, each problem named by its field.
    fn violations(&self, bad: &mut impl FnMut(&str, String)) {
        let d = self;
        if !shape::hosted_zone_id(&d.hosted_zone_id) {
            bad(
            "dns.hostedZoneId",
            format!(
                "'{}' is not a hosted zone id (2-32 upper-case letters or digits, without /hostedzone/)",
                d.hosted_zone_id
            ),
        );
        }
        if !is_hostname(&d.record_name) {
            bad(
                "dns.recordName",
                format!("'{}' is not a valid DNS name", d.record_name),
            );
        }
        if d.ttl > 172_800 {
            bad(
                "dns.ttl",
                format!(
                    "{} is above Route 53's recommended maximum of 172800",
                    d.ttl
                ),
            );
        }
        if !(60..=604_800).contains(&d.max_original_ttl_seconds) {
            bad(
                "dns.maxOriginalTtlSeconds",
                format!("{} is outside 60..=604800", d.max_original_ttl_seconds),
            );
        }
        for (side, t) in [("blue", &d.blue), ("green", &d.green)] {
            // Route 53 counts SetIdentifier in characters (1-128).
            let len = t.set_identifier.chars().count();
            if len == 0 || len > 128 {
                bad(
                    &format!("dns.{side}.setIdentifier"),
                    "must be 1-128 characters".into(),
                );
            }
            let valid = |v: &str| match d.record_type {
                RecordType::CNAME => is_hostname(v),
                RecordType::A => v.parse::<std::net::Ipv4Addr>().is_ok(),
                RecordType::AAAA => v.parse::<std::net::Ipv6Addr>().is_ok(),
            };
            let named = [t.value.is_some(), t.values.is_some(), t.alias.is_some()]
                .iter()
                .filter(|x| **x)
                .count();
            match (&t.value, &t.values, &t.alias) {
            _ if named > 1 => bad(
                &format!("dns.{side}"),
                "takes one of value, values or alias".into(),
            ),
            (None, None, None) => bad(
                &format!("dns.{side}"),
                "needs value (a literal record value), values (several) or alias {hostedZoneId, dnsName, evaluateTargetHealth}".into(),
            ),
            (Some(v), _, _) => {
                if !valid(v) {
                    bad(
                        &format!("dns.{side}.value"),
                        format!("'{v}' is not a valid {} value", d.record_type),
                    );
                }
            }
            (None, Some(vs), _) => {
                let field = format!("dns.{side}.values");
                if d.record_type == RecordType::CNAME && vs.len() != 1 {
                    // A CNAME is the only record at its name (RFC 1034 section 3.6.2): one
                    // value; Route 53 refuses more.
                    bad(&field, "a CNAME record holds exactly one value; use value".into());
                } else if vs.is_empty() || vs.len() > MAX_RECORD_VALUES {
                    // Each shift deletes and creates both sides in one request, which holds
                    // at most 1,000 ResourceRecord elements (ChangeResourceRecordSets:
                    // https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html).
                    bad(
                        &field,
                        format!("holds {} values; 1 to {MAX_RECORD_VALUES}", vs.len()),
                    );
                }
                let mut seen = std::collections::HashSet::new();
                for (k, v) in vs.iter().enumerate() {
                    if !valid(v) {
                        bad(
                            &format!("{field}[{k}]"),
                            format!("'{v}' is not a valid {} value", d.record_type),
                        );
                    } else if !seen.insert(crate::model::normalize_name(v)) {
                        bad(&format!("{field}[{k}]"), format!("'{v}' is listed twice"));
                    }
                }
            }
            (None, None, Some(a)) => {
                if !shape::hosted_zone_id(&a.hosted_zone_id) {
                    bad(
                        &format!("dns.{side}.alias.hostedZoneId"),
                        format!(
                            "'{}' is not a hosted zone id (the target's, e.g. a load balancer's canonical hosted zone id)",
                            a.hosted_zone_id
                        ),
                    );
                }
                if !is_hostname(&a.dns_name) {
                    bad(
                        &format!("dns.{side}.alias.dnsName"),
                        format!("'{}' is not a valid DNS name", a.dns_name),
                    );
                }
                // Route 53 refuses it: "You can't set EvaluateTargetHealth to true when the
                // alias target is a CloudFront distribution" (API_AliasTarget).
                let cloudfront = a.hosted_zone_id == CLOUDFRONT_HOSTED_ZONE_ID
                    || a.dns_name
                        .trim_end_matches('.')
                        .to_ascii_lowercase()
                        .ends_with(".cloudfront.net");
                if cloudfront && a.evaluate_target_health {
                    bad(
                        &format!("dns.{side}.alias.evaluateTargetHealth"),
                        "must be false for an alias to a CloudFront distribution: Route 53 refuses EvaluateTargetHealth true there (https://docs.aws.amazon.com/Route53/latest/APIReference/API_AliasTarget.html)".into(),
                    );
                }
            }
        }
            if let Some(h) = &t.health_check_id {
                // Route 53 health check ids are UUIDs (HealthCheckId: at most 64 characters).
                if !shape::uuid(h) {
                    bad(
                        &format!("dns.{side}.healthCheckId"),
                        format!("'{h}' is not a Route 53 health check id (a UUID)"),
                    );
                }
            }
        }
        if d.blue.set_identifier == d.green.set_identifier {
            bad(
                "dns.green.setIdentifier",
                format!(
                    "must differ from dns.blue.setIdentifier ('{}')",
                    d.blue.set_identifier
                ),
            );
        }
        let same_target = match (d.blue.routing(), d.green.routing()) {
            (Routing::Value(b), Routing::Value(g)) => crate::model::same_values(&b, &g),
            (Routing::Alias(b), Routing::Alias(g)) => b.same_as(&g),
            _ => false,
        };
        if same_target {
            bad(
                &format!("dns.green.{}", d.green.routing_field()),
                format!("must differ from dns.blue.{}", d.blue.routing_field()),
            );
        }
    }
}

/// One side of the cutover: a literal `value` or an `alias` target, never both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    pub set_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Several values in one record (A or AAAA: a record answering with several addresses),
    /// kept exactly as a set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<AliasTarget>,
    /// The Route 53 health check the weighted record carries. Blue keeps the one its record
    /// already has; this applies where the record has none (and always to green).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
}

impl Target {
    /// Where this side points. Only meaningful on a validated plan (exactly one is set).
    pub fn routing(&self) -> Routing {
        match (&self.alias, &self.values, &self.value) {
            (Some(a), _, _) => Routing::Alias(a.clone()),
            (None, Some(vs), _) => Routing::Value(vs.clone()),
            (None, None, v) => Routing::Value(v.iter().cloned().collect()),
        }
    }

    /// The plan field that says where this side points, for messages.
    pub fn routing_field(&self) -> &'static str {
        if self.alias.is_some() {
            "alias"
        } else if self.values.is_some() {
            "values"
        } else {
            "value"
        }
    }

    pub fn describe(&self) -> String {
        match self.routing() {
            Routing::Value(v) => v.join(","),
            Routing::Alias(a) => format!("ALIAS {}", a.dns_name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPlan {
    pub steps: Vec<TrafficStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficStep {
    pub weight: u32,
    pub bake_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthPlan {
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    #[serde(default = "default_threshold")]
    pub failure_threshold: u32,
    /// Failed rounds in one bake, consecutive or not, that make the verdict unhealthy once
    /// reached. Default: the larger of 5 and `failureThreshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<u32>,
    #[serde(default)]
    pub http: Vec<HttpCheck>,
    #[serde(default)]
    pub alarms: Vec<String>,
    /// What an alarm in INSUFFICIENT_DATA means for a round.
    #[serde(default)]
    pub missing_alarm_data: MissingAlarmData,
    /// The role that reaches this section's resources in another account (docs/plan.md,
    /// "Several accounts"); absent, the stack's own credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The external ID the role's trust policy asks for (`sts:ExternalId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// How a health round reads an alarm in `INSUFFICIENT_DATA`, named as CloudWatch's own
/// `TreatMissingData` names its choices (Using Amazon CloudWatch alarms, "Configuring how
/// CloudWatch alarms treat missing data":
/// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MissingAlarmData {
    /// The round fails: nothing proves green healthy (the default).
    #[default]
    Breaching,
    /// The round counts the alarm as OK.
    NotBreaching,
    /// The round leaves the alarm out (its message still names it).
    Ignore,
}

fn default_interval() -> u64 {
    30
}

impl HealthPlan {
    pub fn failure_limit(&self) -> u32 {
        self.failure_limit
            .unwrap_or_else(|| self.failure_threshold.max(5))
    }
}
fn default_threshold() -> u32 {
    2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCheck {
    pub url: String,
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// Headers the probe sends, each read from a Secrets Manager secret or an SSM SecureString
    /// at probe time (`crate::secret`); never inline.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: crate::secret::Headers,
    /// The longest the probe waits for the whole answer (connect included), 1 to 20 s; absent,
    /// the function's HTTP_TIMEOUT_SECONDS (5 by default). A slower answer fails the round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// A probe's wait when the plan names none: HTTP_TIMEOUT_SECONDS' default (docs/deploy.md).
pub const DEFAULT_PROBE_TIMEOUT_SECONDS: u64 = 5;
/// The most one probe may wait.
pub const MAX_PROBE_TIMEOUT_SECONDS: u64 = 20;
/// Probes of a round run one after another inside a health function that times out at 30 s
/// (template.yaml's Globals); their waits together stay under this, leaving room for the alarms
/// and the run table.
pub const MAX_PROBE_SECONDS_PER_ROUND: u64 = 24;

impl HttpCheck {
    /// How long this probe may wait, in seconds.
    pub fn timeout(&self) -> u64 {
        self.timeout_seconds
            .unwrap_or(DEFAULT_PROBE_TIMEOUT_SECONDS)
    }
}

fn default_status() -> u16 {
    200
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalsPlan {
    #[serde(default = "default_expiry")]
    pub expires_seconds: u64,
    /// Gates that need two distinct approvers (a rejection by anyone still ends the gate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub two_person_gates: Vec<String>,
    /// Who may decide this application's gates and abort its runs through the API: IAM principal
    /// ARN patterns (`*` matches any run of characters) or `group:NAME` for a JWT group claim.
    /// It narrows the stack's approvers (`ApiApprovers`), never widens them: a caller must be
    /// admitted by both. Empty: no narrowing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
}

impl ApprovalsPlan {
    /// Whether a caller (identity, JWT groups) may decide gates and abort runs of this plan.
    pub fn allows(&self, identity: &str, groups: &[String]) -> bool {
        self.approvers.is_empty()
            || self
                .approvers
                .iter()
                .any(|p| match p.strip_prefix("group:") {
                    Some(g) => groups.iter().any(|x| x == g),
                    None => glob(p, identity),
                })
    }
}

/// Why a URL that carries a credential is refused, and what to do instead.
fn credential_in_url(what: &str) -> String {
    format!("carries a credential ({what}); a plan is stored in the run table and the execution input, so send it as a header read from Secrets Manager or Parameter Store (`headers: {{Authorization: {{secretArn: …}}}}`)")
}

/// The AWS partitions (ARN reference, "Partition":
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html).
pub const AWS_PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// `*` matches any run of characters (IAM's own wildcard); everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Default for ApprovalsPlan {
    fn default() -> Self {
        ApprovalsPlan {
            expires_seconds: default_expiry(),
            two_person_gates: vec![],
            approvers: vec![],
        }
    }
}

fn default_expiry() -> u64 {
    3600
}

/// Finalize is the point of no return (stop DMS, MGN FinalizeCutover), behind its own gate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FinalizePlan {
    #[serde(default)]
    pub enabled: bool,
}

/// Mid-run controls: how long holds and bake extensions may last in total, so that every run
/// stays bounded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlsPlan {
    /// The most seconds, over the whole run, that holds and bake extensions may add. A hold
    /// standing longer fails the bake (`HoldExpired`) and the run rolls back. 0: no holds or
    /// extensions (promote still works). None: [`Plan::max_hold_seconds`] chooses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hold_seconds: Option<u64>,
    /// Whether `promote --full` may take a run straight to the last step's weight (skipping the
    /// steps between, never a gate). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_promote_full: bool,
}

/// `controls.maxHoldSeconds` when the plan does not say: an hour, or less where the plan's
/// history budget leaves less.
pub const DEFAULT_MAX_HOLD_SECONDS: u64 = 3600;

/// History events of one health round (a Wait, a Lambda Task and a Choice).
const HOLD_ROUND_EVENTS: u64 = 9;

/// The longest `controls.maxHoldSeconds`: one day.
pub const MAX_HOLD_SECONDS: u64 = 86_400;

/// A plan's worst-case history, by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEstimate {
    pub lag: u64,
    pub launch: u64,
    pub traffic: u64,
    pub fixed: u64,
}

impl HistoryEstimate {
    pub fn total(&self) -> u64 {
        self.lag
            .saturating_add(self.launch)
            .saturating_add(self.traffic)
            .saturating_add(self.fixed)
    }
}

/// The longest any single wait of a plan may last (deadline, bake): seven days.
pub const MAX_WAIT_SECONDS: u64 = 604_800;
/// The loosest lag threshold a plan may set: a day. A looser one would let traffic shift onto a
/// database that far behind.
pub const MAX_LAG_LIMIT: f64 = 86_400.0;

/// Step Functions' history limit per Standard execution.
pub const MAX_HISTORY_EVENTS: u64 = 25_000;
/// The hosted zone id of every CloudFront distribution's alias target (API_AliasTarget).
pub const CLOUDFRONT_HOSTED_ZONE_ID: &str = "Z2FDTNDATAQYW2";
/// A Standard execution runs at most one year (Step Functions service quotas, "Maximum
/// execution time": https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
pub const MAX_EXECUTION_SECONDS: u64 = 31_536_000;

/// The gate name finalize asks under; traffic steps may not use it.
pub const FINALIZE_GATE: &str = "finalize";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("not valid {format}: {message}")]
    Syntax {
        format: &'static str,
        message: String,
    },
    #[error("{field}: {message}")]
    Shape { field: String, message: String },
    #[error("{} problem(s): {}", .0.len(), .0.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Violation>),
}

impl PlanError {
    /// Every problem as `field: message`, one per entry.
    pub fn violations(&self) -> Vec<Violation> {
        match self {
            PlanError::Syntax { message, format } => vec![Violation {
                field: "(file)".into(),
                message: format!("not valid {format}: {message}"),
            }],
            PlanError::Shape { field, message } => vec![Violation {
                field: field.clone(),
                message: message.clone(),
            }],
            PlanError::Invalid(v) => v.clone(),
        }
    }
}

/// Reads JSON or YAML text into a serde_json value (YAML is a superset, but JSON errors read
/// better). A leading byte-order mark is allowed. A key given twice in one object is refused with
/// its path: "last one wins" would let a reviewed value be silently replaced.
pub fn parse_document(text: &str, json: bool) -> Result<serde_json::Value, PlanError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (format, result) = if json {
        let mut d = serde_json::Deserializer::from_str(text);
        let r = serde_path_to_error::deserialize::<_, Strict>(&mut d)
            .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
            // Trailing characters after the document are an error, as serde_json::from_str says.
            .and_then(|v| d.end().map(|()| v).map_err(|e| (".".into(), e.to_string())));
        ("JSON", r)
    } else {
        let r = serde_path_to_error::deserialize::<_, Strict>(
            serde_norway::Deserializer::from_str(text),
        );
        (
            "YAML",
            r.map_err(|e| (e.path().to_string(), e.into_inner().to_string())),
        )
    };
    match result {
        Ok(Strict(v)) => Ok(v),
        Err((path, message)) if message.contains(DUPLICATE) => Err(PlanError::Shape {
            field: if path == "." { "(root)".into() } else { path },
            message,
        }),
        Err((_, message)) => Err(PlanError::Syntax { format, message }),
    }
}

const DUPLICATE: &str = "duplicate key";

/// A JSON value read without letting a repeated key overwrite the first.
struct Strict(serde_json::Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON or YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Strict::deserialize(d).map(|s| s.0)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(serde_json::Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "{DUPLICATE} '{key}': it is given twice, and the second value would silently replace the first"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// Deserializes strictly, naming the field path of the first shape error.
pub fn from_value<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, PlanError> {
    // Every document is a mapping of fields. serde would read a list as the fields in order (so
    // `[]` would be a document of defaults): refuse anything but a mapping here.
    let found = match &v {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Null => Some("nothing (an empty document)"),
        serde_json::Value::Array(_) => Some("a list"),
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::Bool(_) => Some("a boolean"),
    };
    if let Some(found) = found {
        return Err(PlanError::Shape {
            field: "(root)".into(),
            message: format!("expected a mapping of fields (key: value), found {found}"),
        });
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        PlanError::Shape {
            field: if path == "." { "(root)".into() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

/// The plan's router: Route 53 weighted records or ALB weighted target groups.
#[derive(Debug, Clone, Copy)]
pub enum Router<'a> {
    Dns(&'a DnsPlan),
    Alb(&'a crate::alb::AlbPlan),
}

impl Plan {
    /// The router the plan names; `None` only on a plan that fails validation (neither or both).
    pub fn router(&self) -> Option<Router<'_>> {
        match (&self.dns, &self.alb) {
            (Some(d), None) => Some(Router::Dns(d)),
            (None, Some(a)) => Some(Router::Alb(a)),
            _ => None,
        }
    }

    /// What the cutover moves, for messages: "NAME TYPE" of a dns plan, the rule (or the
    /// listener's default action) of an alb plan.
    pub fn route_name(&self) -> String {
        match self.router() {
            Some(Router::Dns(d)) => format!("{} {}", d.record_name, d.record_type),
            Some(Router::Alb(a)) => match &a.rule_arn {
                Some(r) => format!("ALB rule {r}"),
                None => format!("the default action of ALB listener {}", a.listener_arn),
            },
            None => "(no router)".into(),
        }
    }

    /// Each section that may name a role, with its `roleArn` and `externalId`.
    #[allow(clippy::type_complexity)]
    fn role_fields(&self) -> Vec<(&'static str, &Option<String>, &Option<String>)> {
        let mut out = vec![
            (
                "replication",
                &self.replication.role_arn,
                &self.replication.external_id,
            ),
            ("health", &self.health.role_arn, &self.health.external_id),
        ];
        if let Some(d) = &self.dns {
            out.push(("dns", &d.role_arn, &d.external_id));
        }
        if let Some(a) = &self.alb {
            out.push(("alb", &a.role_arn, &a.external_id));
        }
        out
    }

    /// The roles the plan's sections name, each with its section (`dns`, `alb`, `replication`,
    /// `health`): what the run assumes.
    pub fn roles(&self) -> Vec<(&'static str, crate::accounts::Role)> {
        self.role_fields()
            .into_iter()
            .filter_map(|(s, arn, ext)| crate::accounts::Role::of(arn, ext).map(|r| (s, r)))
            .collect()
    }

    /// The role of one section, if it names one.
    pub fn role_of(&self, section: &str) -> Option<crate::accounts::Role> {
        self.roles()
            .into_iter()
            .find(|(s, _)| *s == section)
            .map(|(_, r)| r)
    }

    /// Parses and validates; `json` picks the syntax (from the file extension at the CLI).
    pub fn parse(text: &str, json: bool) -> Result<Plan, PlanError> {
        let plan: Plan = from_value(parse_document(text, json)?)?;
        plan.validate()?;
        Ok(plan)
    }

    pub fn validate(&self) -> Result<(), PlanError> {
        let v = self.violations();
        if v.is_empty() {
            Ok(())
        } else {
            Err(PlanError::Invalid(v))
        }
    }

    pub fn violations(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut bad = |field: &str, message: String| {
            out.push(Violation {
                field: field.into(),
                message,
            })
        };

        for (section, arn, external_id) in self.role_fields() {
            crate::accounts::role_violations(section, arn, external_id, &mut |f, m| bad(&f, m));
        }
        if !shape::application_name(&self.application) {
            bad("application", format!("'{}' must be 1-48 lower-case letters, digits or '-', starting with a letter or digit", self.application));
        }
        if let Some(w) = &self.wave {
            if !shape::wave_name(w) {
                bad(
                    "wave",
                    format!("'{w}' must be 1-64 letters, digits, '.', '_' or '-'"),
                );
            }
        }

        let r = &self.replication;
        match r.kind {
            ReplicationKind::Dms => {
                match &r.task_arn {
                    None => bad("replication.taskArn", "is required when kind is dms".into()),
                    Some(a) if !shape::dms_task_arn(a) => bad(
                        "replication.taskArn",
                        format!("'{a}' is not a DMS task ARN (arn:aws:dms:REGION:ACCOUNT:task:ID)"),
                    ),
                    _ => {}
                }
                if r.source_server_id.is_some() {
                    bad(
                        "replication.sourceServerId",
                        "belongs to kind mgn, not dms".into(),
                    );
                }
                if r.source_server_ids.is_some() {
                    bad(
                        "replication.sourceServerIds",
                        "belongs to kind mgn, not dms".into(),
                    );
                }
            }
            ReplicationKind::Mgn => {
                let not_an_id = |s: &str| {
                    format!("'{s}' is not an MGN source server id (s- and 17 hex digits)")
                };
                match (&r.source_server_id, &r.source_server_ids) {
                    (None, None) => bad(
                        "replication.sourceServerId",
                        "is required when kind is mgn (or sourceServerIds, for several servers)"
                            .into(),
                    ),
                    (Some(_), Some(_)) => bad(
                        "replication.sourceServerIds",
                        "name the servers either in sourceServerId (one) or in sourceServerIds (several), not both".into(),
                    ),
                    (Some(s), None) if !shape::mgn_source_server_id(s) => {
                        bad("replication.sourceServerId", not_an_id(s))
                    }
                    (None, Some(ids)) => {
                        if ids.is_empty() || ids.len() > MAX_MGN_SERVERS {
                            bad(
                                "replication.sourceServerIds",
                                format!(
                                    "holds {} servers; one StartCutover launches 1 to {MAX_MGN_SERVERS}",
                                    ids.len()
                                ),
                            );
                        }
                        let mut seen = std::collections::HashSet::new();
                        for (i, s) in ids.iter().enumerate() {
                            let field = format!("replication.sourceServerIds[{i}]");
                            if !shape::mgn_source_server_id(s) {
                                bad(&field, not_an_id(s));
                            } else if !seen.insert(s.as_str()) {
                                bad(&field, format!("'{s}' is listed twice"));
                            }
                        }
                    }
                    _ => {}
                }
                if r.task_arn.is_some() {
                    bad("replication.taskArn", "belongs to kind dms, not mgn".into());
                }
            }
        }
        // Every number has a range, so no duration can overflow the time arithmetic of a step
        // and no limit is so loose that it stops meaning anything.
        if !(r.max_lag_seconds.is_finite()
            && r.max_lag_seconds > 0.0
            && r.max_lag_seconds <= MAX_LAG_LIMIT)
        {
            bad(
                "replication.maxLagSeconds",
                format!(
                    "must be more than 0 and at most {MAX_LAG_LIMIT} seconds, got {}",
                    r.max_lag_seconds
                ),
            );
        }
        if r.stable_samples > 1000 {
            bad(
                "replication.stableSamples",
                format!("{} is above 1000", r.stable_samples),
            );
        }
        if r.sample_interval_seconds > 3600 {
            bad(
                "replication.sampleIntervalSeconds",
                format!("{} is above 3600 (one hour)", r.sample_interval_seconds),
            );
        }
        if r.deadline_seconds > MAX_WAIT_SECONDS {
            bad(
                "replication.deadlineSeconds",
                format!(
                    "{} is above {MAX_WAIT_SECONDS} (seven days)",
                    r.deadline_seconds
                ),
            );
        }
        if !(60..=86_400).contains(&r.launch_deadline_seconds) {
            bad(
                "replication.launchDeadlineSeconds",
                format!("{} is outside 60..=86400", r.launch_deadline_seconds),
            );
        }
        if r.stable_samples == 0 {
            bad("replication.stableSamples", "must be at least 1".into());
        }
        if r.sample_interval_seconds == 0 {
            bad(
                "replication.sampleIntervalSeconds",
                "must be at least 1".into(),
            );
        }
        let needed = r
            .sample_interval_seconds
            .saturating_mul(u64::from(r.stable_samples));
        if r.deadline_seconds < needed {
            bad(
                "replication.deadlineSeconds",
                format!(
                    "{} is shorter than stableSamples x sampleIntervalSeconds ({needed})",
                    r.deadline_seconds
                ),
            );
        }

        match (&self.dns, &self.alb) {
            (Some(d), None) => d.violations(&mut bad),
            (None, Some(a)) => a.violations(&mut bad),
            (Some(_), Some(_)) => bad("alb", "a plan routes by dns or by alb, not both".into()),
            (None, None) => bad(
                "dns",
                "is required (Route 53 weighted records), or alb (ALB weighted target groups)"
                    .into(),
            ),
        }

        let steps = &self.traffic.steps;
        if steps.is_empty() {
            bad("traffic.steps", "needs at least one step".into());
        }
        let mut gates: Vec<&str> = Vec::new();
        let mut prev = 0;
        for (i, s) in steps.iter().enumerate() {
            if s.weight == 0 || s.weight > 100 {
                bad(
                    &format!("traffic.steps[{i}].weight"),
                    format!("{} is outside 1..=100", s.weight),
                );
            } else if s.weight <= prev {
                bad(
                    &format!("traffic.steps[{i}].weight"),
                    format!(
                        "{} must be greater than the previous step's {prev}",
                        s.weight
                    ),
                );
            }
            prev = prev.max(s.weight);
            if s.bake_seconds == 0 || s.bake_seconds > MAX_WAIT_SECONDS {
                bad(
                    &format!("traffic.steps[{i}].bakeSeconds"),
                    format!(
                        "{} is outside 1..={MAX_WAIT_SECONDS} (seven days)",
                        s.bake_seconds
                    ),
                );
            }
            if let Some(g) = &s.approval {
                if !shape::gate_name(g) {
                    bad(
                        &format!("traffic.steps[{i}].approval"),
                        format!("'{g}' must be 1-63 lower-case letters, digits or '-'"),
                    );
                } else if g == FINALIZE_GATE || g == ROLLBACK_AFTER_SWITCH_GATE {
                    bad(
                        &format!("traffic.steps[{i}].approval"),
                        format!("'{g}' is reserved for the run's own gate of that name"),
                    );
                } else if gates.contains(&g.as_str()) {
                    bad(
                        &format!("traffic.steps[{i}].approval"),
                        format!("gate '{g}' is used by an earlier step"),
                    );
                }
                gates.push(g);
            }
        }
        if let Some(last) = steps.last() {
            if last.weight != 100 {
                bad(
                    &format!("traffic.steps[{}].weight", steps.len() - 1),
                    format!("the last step must be 100, got {}", last.weight),
                );
            }
        }

        let h = &self.health;
        if h.interval_seconds == 0 || h.interval_seconds > 3600 {
            bad(
                "health.intervalSeconds",
                format!("{} is outside 1..=3600", h.interval_seconds),
            );
        }
        if h.failure_threshold == 0 || h.failure_threshold > 100 {
            bad(
                "health.failureThreshold",
                format!("{} is outside 1..=100", h.failure_threshold),
            );
        }
        if h.failure_limit.is_some_and(|l| l > 1000) {
            bad("health.failureLimit", "is above 1000".into());
        }
        if let Some(l) = h.failure_limit {
            if l == 0 {
                bad("health.failureLimit", "must be at least 1".into());
            } else if l < h.failure_threshold {
                bad(
                    "health.failureLimit",
                    format!(
                        "{l} is below health.failureThreshold ({}): the total can never be reached before the consecutive count",
                        h.failure_threshold
                    ),
                );
            }
        }
        if h.http.is_empty() && h.alarms.is_empty() {
            bad(
                "health",
                "needs at least one signal: an http probe or an alarm".into(),
            );
        }
        for (i, c) in h.http.iter().enumerate() {
            match url::Url::parse(&c.url) {
                Ok(u)
                    if (u.scheme() == "https" || u.scheme() == "http")
                        && u.host_str().is_some() =>
                {
                    if let Some(why) = crate::netguard::forbidden_url(&u) {
                        bad(&format!("health.http[{i}].url"), why);
                    }
                    if let Some(what) = crate::redact::url_credential(&u) {
                        bad(&format!("health.http[{i}].url"), credential_in_url(&what));
                    }
                }
                _ => bad(
                    &format!("health.http[{i}].url"),
                    format!(
                        "'{}' is not an http(s) URL",
                        crate::redact::redact_url(&c.url)
                    ),
                ),
            }
            for (f, m) in crate::secret::header_violations(
                &format!("health.http[{i}].headers"),
                &c.headers,
                false,
            ) {
                bad(&f, m);
            }
            if !(100..=599).contains(&c.expect_status) {
                bad(
                    &format!("health.http[{i}].expectStatus"),
                    format!("{} is not an HTTP status", c.expect_status),
                );
            }
            if let Some(t) = c.timeout_seconds {
                if !(1..=MAX_PROBE_TIMEOUT_SECONDS).contains(&t) {
                    bad(
                        &format!("health.http[{i}].timeoutSeconds"),
                        format!("{t} is outside 1..={MAX_PROBE_TIMEOUT_SECONDS}"),
                    );
                }
            }
        }
        let waits: u64 = h.http.iter().map(HttpCheck::timeout).sum();
        if waits > MAX_PROBE_SECONDS_PER_ROUND {
            bad(
                "health.http",
                format!(
                    "the probes of one round may wait {waits}s together (timeoutSeconds, {DEFAULT_PROBE_TIMEOUT_SECONDS}s where absent); they run one after another in a health function that times out at 30s, so at most {MAX_PROBE_SECONDS_PER_ROUND}s: lower timeoutSeconds or probe fewer URLs"
                ),
            );
        }
        for (i, a) in h.alarms.iter().enumerate() {
            if a.trim().is_empty() || a.len() > 255 {
                bad(
                    &format!("health.alarms[{i}]"),
                    "must be an alarm name of 1-255 characters".into(),
                );
            }
        }
        for (i, g) in self.approvals.two_person_gates.iter().enumerate() {
            let known = g == FINALIZE_GATE
                || g == ROLLBACK_AFTER_SWITCH_GATE
                || self.data.approval.as_deref() == Some(g.as_str())
                || self
                    .traffic
                    .steps
                    .iter()
                    .any(|s| s.approval.as_deref() == Some(g.as_str()));
            if !known {
                bad(
                    &format!("approvals.twoPersonGates[{i}]"),
                    format!("'{g}' is not a gate of this plan"),
                );
            }
        }
        if !(60..=21_600).contains(&self.rollback.budget_seconds) {
            bad(
                "rollback.budgetSeconds",
                format!(
                    "{} is outside 60..=21600 (one minute to six hours)",
                    self.rollback.budget_seconds
                ),
            );
        }
        for (i, a) in self.approvals.approvers.iter().enumerate() {
            let ok = match a.strip_prefix("group:") {
                Some(g) => !g.is_empty() && g.len() <= 128,
                None => a.starts_with("arn:") && a.len() <= 2048 && a.split(':').count() >= 6,
            };
            if !ok {
                bad(
                    &format!("approvals.approvers[{i}]"),
                    format!("'{a}' is not an IAM principal ARN pattern (arn:aws:iam::ACCOUNT:role/NAME, arn:aws:sts::ACCOUNT:assumed-role/NAME/*, ...) or group:NAME"),
                );
            }
        }
        self.data_violations(&mut bad);
        if let Some(max) = self
            .controls
            .max_hold_seconds
            .filter(|m| *m > MAX_HOLD_SECONDS)
        {
            bad(
                "controls.maxHoldSeconds",
                format!("{max} is above {MAX_HOLD_SECONDS} (one day)"),
            );
        }
        if !(60..=31_536_000).contains(&self.approvals.expires_seconds) {
            bad(
                "approvals.expiresSeconds",
                format!(
                    "{} is outside 60..=31536000 (one minute to one year)",
                    self.approvals.expires_seconds
                ),
            );
        }
        // Only a plan that is otherwise valid has a meaningful worst case.
        if out.is_empty() {
            let h = self.worst_case_history_events();
            if h.total() > MAX_HISTORY_EVENTS {
                let without_holds = self.history_events_with_holds(0).total();
                let (field, why) = if without_holds <= MAX_HISTORY_EVENTS {
                    (
                        "controls.maxHoldSeconds",
                        format!(
                            "holds of {}s add {} events (a held bake probes every health.intervalSeconds, {}s): at most {}s fit",
                            self.max_hold_seconds(),
                            h.total() - without_holds,
                            self.health.interval_seconds,
                            ((MAX_HISTORY_EVENTS - without_holds) / HOLD_ROUND_EVENTS)
                                * self.health.interval_seconds.max(1)
                        ),
                    )
                } else if h.lag >= h.traffic.max(h.launch) {
                    (
                        "replication.deadlineSeconds",
                        format!(
                            "the lag wait alone can take {} events (deadlineSeconds / sampleIntervalSeconds polls of 9 events): shorten the deadline or sample less often",
                            h.lag
                        ),
                    )
                } else if h.launch >= h.traffic {
                    (
                        "replication.launchDeadlineSeconds",
                        format!("the launch wait can take {} events", h.launch),
                    )
                } else {
                    (
                        "health.intervalSeconds",
                        format!(
                            "the traffic steps can take {} events (bakeSeconds / intervalSeconds health rounds of 9 events each): probe less often or bake shorter",
                            h.traffic
                        ),
                    )
                };
                out.push(Violation {
                    field: field.into(),
                    message: format!(
                        "in the worst case one execution records {} history events, above Step Functions' limit of {MAX_HISTORY_EVENTS}: {why}",
                        h.total()
                    ),
                });
            }
            let worst = self.worst_case_seconds();
            if worst > MAX_EXECUTION_SECONDS {
                let gates = self.gate_count();
                let parts = [
                    (
                        "approvals.expiresSeconds",
                        self.approvals.expires_seconds.saturating_mul(gates),
                        format!("{gates} gate(s) × {}s", self.approvals.expires_seconds),
                    ),
                    (
                        "replication.deadlineSeconds",
                        self.replication.deadline_seconds,
                        format!("{}s", self.replication.deadline_seconds),
                    ),
                    (
                        "traffic.steps[].bakeSeconds",
                        self.traffic.steps.iter().map(|s| s.bake_seconds).sum(),
                        format!(
                            "{}s over {} step(s)",
                            self.traffic
                                .steps
                                .iter()
                                .map(|s| s.bake_seconds)
                                .sum::<u64>(),
                            self.traffic.steps.len()
                        ),
                    ),
                    (
                        "rollback.budgetSeconds",
                        self.rollback.budget_seconds,
                        format!("{}s", self.rollback.budget_seconds),
                    ),
                ];
                let field = parts
                    .iter()
                    .max_by_key(|p| p.1)
                    .map_or("approvals.expiresSeconds", |p| p.0);
                let list: Vec<String> = parts
                    .iter()
                    .filter(|p| p.1 > 0)
                    .map(|p| format!("{} {}", p.0, p.2))
                    .collect();
                out.push(Violation {
                    field: field.into(),
                    message: format!(
                        "in the worst case one execution runs {worst}s, above a Standard execution's limit of one year ({MAX_EXECUTION_SECONDS}s): {}",
                        list.join(" + ")
                    ),
                });
            }
        }
        out
    }

    /// The locks a run of this plan holds: the application, its record set (zone, name without
    /// case or trailing dot, type) and its DMS task. The application's comes first and keeps its
    /// bare name.
    pub fn lock_keys(&self) -> Vec<String> {
        let mut keys = vec![self.application.clone()];
        match self.router() {
            Some(Router::Dns(d)) => keys.push(format!(
                "recordset:{}:{}:{}",
                d.hosted_zone_id,
                crate::model::normalize_name(&d.record_name),
                d.record_type
            )),
            // One rule (or one listener's default action) is shifted by one run at a time.
            Some(Router::Alb(a)) => keys.push(match &a.rule_arn {
                Some(r) => format!("albrule:{r}"),
                None => format!("albdefault:{}", a.listener_arn),
            }),
            None => {}
        }
        if let Some(t) = &self.replication.task_arn {
            keys.push(format!("dmstask:{t}"));
        }
        for id in self.replication.mgn_servers() {
            keys.push(format!("mgnserver:{id}"));
        }
        keys
    }

    /// Gates one execution may wait on when each waits to its expiry: the traffic steps', the
    /// data go/no-go and the rollback-after-switch gate, and finalize's.
    pub(crate) fn gate_count(&self) -> u64 {
        let steps = self
            .traffic
            .steps
            .iter()
            .filter(|s| s.approval.is_some())
            .count() as u64;
        let data = if self.data.writes == WritesMode::Unmanaged {
            0
        } else {
            2
        };
        steps + data + u64::from(self.finalize.enabled)
    }

    fn data_violations(&self, bad: &mut impl FnMut(&str, String)) {
        let d = &self.data;
        let hooks = [
            ("data.freeze", &d.freeze),
            ("data.switch", &d.switch),
            ("data.unfreeze", &d.unfreeze),
        ];
        if d.writes == WritesMode::Unmanaged {
            for (field, h) in hooks {
                if h.is_some() {
                    bad(
                        field,
                        "is only used when data.writes is blue-until-switch or freeze-and-switch"
                            .into(),
                    );
                }
            }
            if d.reverse_replication.is_some() {
                bad(
                    "data.reverseReplication",
                    "is only used when data.writes is blue-until-switch or freeze-and-switch"
                        .into(),
                );
            }
            if d.approval.is_some() {
                bad(
                    "data.approval",
                    "is only used when data.writes is blue-until-switch or freeze-and-switch"
                        .into(),
                );
            }
            return;
        }
        // With MGN the database moves with the servers' disks: the cutover instances are copies
        // taken at the launch (MGN user guide, "Launching Cutover instances": stop the source's
        // services first; https://docs.aws.amazon.com/mgn/latest/ug/launch-cutover.html). Green's
        // tier cannot write to blue's database and have it carried over later, and no DMS task
        // carries writes back.
        if self.replication.kind == ReplicationKind::Mgn {
            if d.writes == WritesMode::BlueUntilSwitch {
                bad(
                    "data.writes",
                    "'blue-until-switch' needs replication that keeps carrying blue's writes after green runs; MGN's cutover instances are copies taken at the launch. Use freeze-and-switch: writes freeze, replication catches up, the launch copies every write".into(),
                );
            }
            if d.reverse_replication.is_some() {
                bad(
                    "data.reverseReplication",
                    "is a DMS task; with MGN nothing carries green's writes back to the source servers, so a rollback after the switch asks a human (docs/data.md)".into(),
                );
            }
        }
        for (field, h) in hooks {
            let Some(h) = h else {
                bad(
                    field,
                    format!("is required when data.writes is {}", d.writes.as_str()),
                );
                continue;
            };
            match (&h.lambda_arn, &h.url) {
                (Some(_), Some(_)) => bad(field, "takes lambdaArn or url, not both".into()),
                (None, None) => bad(field, "needs lambdaArn or url".into()),
                (Some(a), None) => {
                    if !shape::lambda_function_arn(a) {
                        bad(
                            &format!("{field}.lambdaArn"),
                            format!("'{a}' is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"),
                        );
                    } else if let Some(p) =
                        a.split(':').nth(1).filter(|p| !AWS_PARTITIONS.contains(p))
                    {
                        bad(
                            &format!("{field}.lambdaArn"),
                            format!(
                                "'{p}' is not an AWS partition ({})",
                                AWS_PARTITIONS.join(", ")
                            ),
                        );
                    }
                    for (k, present) in [
                        ("method", h.method.is_some()),
                        ("auth", h.auth.is_some()),
                        ("headers", !h.headers.is_empty()),
                    ] {
                        if present {
                            bad(&format!("{field}.{k}"), "applies to url hooks only".into());
                        }
                    }
                }
                (None, Some(u)) => {
                    match url::Url::parse(u) {
                        Ok(p) if p.scheme() == "https" && p.host_str().is_some() => {
                            if let Some(why) = crate::netguard::forbidden_url(&p) {
                                bad(&format!("{field}.url"), why);
                            }
                            if let Some(what) = crate::redact::url_credential(&p) {
                                bad(&format!("{field}.url"), credential_in_url(&what));
                            }
                        }
                        _ => bad(
                            &format!("{field}.url"),
                            format!("'{}' is not an https URL (hooks carry the run's control, never over plain http)", crate::redact::redact_url(u)),
                        ),
                    }
                    if let Some(m) = &h.method {
                        if m != "POST" && m != "PUT" {
                            bad(
                                &format!("{field}.method"),
                                format!("'{m}' is not POST or PUT"),
                            );
                        }
                    }
                    for (f, m) in crate::secret::header_violations(
                        &format!("{field}.headers"),
                        &h.headers,
                        h.auth.as_deref() != Some("none"),
                    ) {
                        bad(&f, m);
                    }
                    if let Some(a) = &h.auth {
                        if a != "iam" && a != "none" {
                            bad(
                                &format!("{field}.auth"),
                                format!("'{a}' is not iam or none"),
                            );
                        }
                    }
                }
            }
            if !(1..=600).contains(&h.timeout_seconds) {
                bad(
                    &format!("{field}.timeoutSeconds"),
                    format!("{} is outside 1..=600", h.timeout_seconds),
                );
            }
        }
        if !(10..=3600).contains(&d.max_freeze_seconds) {
            bad(
                "data.maxFreezeSeconds",
                format!(
                    "{} is outside 10..=3600 (writes stopped for an hour at most)",
                    d.max_freeze_seconds
                ),
            );
        }
        if !(1..=300).contains(&d.drain_poll_seconds) {
            bad(
                "data.drainPollSeconds",
                format!("{} is outside 1..=300", d.drain_poll_seconds),
            );
        } else if (10..=3600).contains(&d.max_freeze_seconds)
            && d.drain_poll_seconds > d.max_freeze_seconds
        {
            bad(
                "data.drainPollSeconds",
                format!(
                    "{} is longer than data.maxFreezeSeconds ({})",
                    d.drain_poll_seconds, d.max_freeze_seconds
                ),
            );
        }
        if let Some(g) = &d.approval {
            if !shape::gate_name(g) {
                bad(
                    "data.approval",
                    format!("'{g}' must be 1-63 lower-case letters, digits or '-'"),
                );
            } else if g == FINALIZE_GATE || g == ROLLBACK_AFTER_SWITCH_GATE {
                bad(
                    "data.approval",
                    format!("'{g}' is reserved for the run's own gate of that name"),
                );
            } else if self
                .traffic
                .steps
                .iter()
                .any(|s| s.approval.as_deref() == Some(g.as_str()))
            {
                bad(
                    "data.approval",
                    format!("gate '{g}' is already a traffic step's gate"),
                );
            }
        }
        if let Some(r) = &d.reverse_replication {
            if !shape::dms_task_arn(&r.task_arn) {
                bad(
                    "data.reverseReplication.taskArn",
                    format!(
                        "'{}' is not a DMS task ARN (arn:aws:dms:REGION:ACCOUNT:task:ID)",
                        r.task_arn
                    ),
                );
            } else if self.replication.task_arn.as_deref() == Some(r.task_arn.as_str()) {
                bad(
                    "data.reverseReplication.taskArn",
                    "must differ from replication.taskArn: it carries green's writes back to blue"
                        .into(),
                );
            }
        }
    }

    /// What a valid plan should still make its operator think twice about.
    pub fn warnings(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        let mgn = self.replication.kind == ReplicationKind::Mgn;
        if self.data.writes == WritesMode::Unmanaged && mgn {
            out.push(Violation {
                field: "data.writes".into(),
                message: "unmanaged with MGN: each cutover instance is a point-in-time copy of its server taken at the launch, so every write the source takes after it (through the launch's lag, the first boot and the shift) is lost if the application writes; set freeze-and-switch to freeze writes before the launch (docs/data.md)".into(),
            });
        } else if self.data.writes == WritesMode::Unmanaged {
            out.push(Violation {
                field: "data.writes".into(),
                message: "unmanaged: writes that reach green's database while traffic shifts are lost on a rollback; set blue-until-switch or freeze-and-switch to move the data with the application (docs/data.md)".into(),
            });
        }
        if mgn
            && self.data.writes == WritesMode::FreezeAndSwitch
            && self.data.max_freeze_seconds < self.replication.launch_deadline_seconds
        {
            out.push(Violation {
                field: "data.maxFreezeSeconds".into(),
                message: format!(
                    "{}s is less than replication.launchDeadlineSeconds ({}s): with MGN writes stay frozen through the launch and first boot, so a launch slower than {}s ends the run (FreezeTooLong: writes unfreeze on the source, nothing lost)",
                    self.data.max_freeze_seconds,
                    self.replication.launch_deadline_seconds,
                    self.data.max_freeze_seconds
                ),
            });
        }
        out
    }

    /// The most history events one execution of `cutover.asl.json` can record for this plan,
    /// without retries: every poll loop the plan bounds (a Wait, a Lambda Task and a Choice:
    /// 2 + 5 + 2 events) run to its bound. Step Functions fails a Standard execution at 25,000
    /// events.
    pub fn worst_case_history_events(&self) -> HistoryEstimate {
        self.history_events_with_holds(self.max_hold_seconds())
    }

    /// `controls.maxHoldSeconds` as the run applies it: the plan's, or by default an hour, less
    /// where the plan's worst case without holds leaves fewer history events (a held bake goes
    /// on probing every `health.intervalSeconds`) or less time within the one-year limit.
    pub fn max_hold_seconds(&self) -> u64 {
        if let Some(m) = self.controls.max_hold_seconds {
            return m;
        }
        let events_left =
            MAX_HISTORY_EVENTS.saturating_sub(self.history_events_with_holds(0).total());
        let by_events =
            (events_left / HOLD_ROUND_EVENTS).saturating_mul(self.health.interval_seconds.max(1));
        let by_time = MAX_EXECUTION_SECONDS.saturating_sub(self.worst_case_seconds_with_holds(0));
        DEFAULT_MAX_HOLD_SECONDS.min(by_events).min(by_time)
    }

    fn history_events_with_holds(&self, max_hold_seconds: u64) -> HistoryEstimate {
        const POLL: u64 = HOLD_ROUND_EVENTS;
        const TASK: u64 = 5;
        let r = &self.replication;
        let per = |total: u64, every: u64| total / every.max(1) + 1;
        let lag = POLL * per(r.deadline_seconds, r.sample_interval_seconds);
        let launch = if r.kind == ReplicationKind::Mgn {
            POLL * per(r.launch_deadline_seconds, crate::steps::LAUNCH_POLL_SECONDS)
        } else {
            0
        };
        // DNS sync polls are counted over the 60 s in which Route 53 says changes "generally
        // propagate" (API_ChangeResourceRecordSets), not over the 900 s after which a change is
        // given up on: the limit is about the plan's own loops (deadline / sample interval,
        // bakes / interval), which the plan controls.
        let sync = POLL * per(60, crate::steps::SYNC_POLL_SECONDS);
        let h = &self.health;
        // Only DNS has cached answers to outlast; an ALB rule applies at once.
        let original_ttl_bound = self.dns.as_ref().map_or(0, |d| d.max_original_ttl_seconds);
        let mut traffic = 0u64;
        for (i, s) in self.traffic.steps.iter().enumerate() {
            let bake = if i == 0 {
                s.bake_seconds.max(original_ttl_bound)
            } else {
                s.bake_seconds
            };
            let rounds = per(bake, h.interval_seconds) + u64::from(h.failure_limit());
            // Iteration start/end, the approval question and gate, the shift, its sync, the bake.
            traffic = traffic
                .saturating_add(2 + 2 + TASK + 2 + TASK + sync + 2)
                .saturating_add(POLL.saturating_mul(rounds));
        }
        // Holds and bake extensions add health rounds, up to controls.maxHoldSeconds in all.
        traffic = traffic
            .saturating_add(POLL.saturating_mul(max_hold_seconds / h.interval_seconds.max(1)));
        // Validate, start, the collapse and its sync, the finalize gate and finalize, rollback
        // (each retried attempt adds 3 events, up to the attempt backstop) and its sync, close.
        let rollback = TASK + 3 * crate::steps::ROLLBACK_MAX_ATTEMPTS + sync;
        let mut fixed = 3 * TASK + 2 + (TASK + 4 + sync) + 3 * TASK + rollback + 2 * TASK + 8;
        if self.data.writes != WritesMode::Unmanaged {
            // The gate, freeze, drain polls, switch, unfreeze and a bake after the switch; the
            // same again for a rollback after the switch (freeze, reverse drain, switch back).
            let drain = POLL * per(self.data.max_freeze_seconds, self.data.drain_poll_seconds);
            let last_bake = self.traffic.steps.last().map_or(0, |s| s.bake_seconds);
            let bake = POLL * (per(last_bake, h.interval_seconds) + u64::from(h.failure_limit()));
            fixed = fixed
                .saturating_add(2 * (4 * TASK + 2 + drain))
                .saturating_add(bake)
                .saturating_add(TASK + 8);
        }
        HistoryEstimate {
            lag,
            launch,
            traffic,
            fixed,
        }
    }

    /// The longest one execution can take for this plan when every bounded wait runs to its
    /// bound: the lag deadline (and MGN's launch deadline), each traffic step's bake with its
    /// failed-round allowance and a DNS sync given up after 900 s, every gate left to expire,
    /// the data cutover's freezes with their hooks, and the rollback budget. A run still active
    /// past this (plus a margin) is stuck, not slow; the run sweep alarms on it.
    pub fn worst_case_seconds(&self) -> u64 {
        self.worst_case_seconds_with_holds(self.max_hold_seconds())
    }

    fn worst_case_seconds_with_holds(&self, max_hold_seconds: u64) -> u64 {
        const SYNC: u64 = 900;
        let r = &self.replication;
        let mut total = r.deadline_seconds;
        if r.kind == ReplicationKind::Mgn {
            total = total.saturating_add(r.launch_deadline_seconds);
        }
        let h = &self.health;
        let failed_rounds = u64::from(h.failure_limit()).saturating_mul(h.interval_seconds);
        let gate = self.approvals.expires_seconds;
        for (i, s) in self.traffic.steps.iter().enumerate() {
            let bake = if i == 0 {
                s.bake_seconds
                    .max(self.dns.as_ref().map_or(0, |d| d.max_original_ttl_seconds))
            } else {
                s.bake_seconds
            };
            total = total
                .saturating_add(bake)
                .saturating_add(failed_rounds)
                .saturating_add(SYNC)
                .saturating_add(if s.approval.is_some() { gate } else { 0 });
        }
        if self.data.writes != WritesMode::Unmanaged {
            let hooks: u64 = [&self.data.freeze, &self.data.switch, &self.data.unfreeze]
                .iter()
                .filter_map(|h| h.as_ref().map(|h| h.timeout_seconds))
                .sum();
            let last_bake = self.traffic.steps.last().map_or(0, |s| s.bake_seconds);
            // Forward and, after the switch, back again; the go/no-go and after-switch gates.
            total = total
                .saturating_add(2 * (self.data.max_freeze_seconds + hooks))
                .saturating_add(last_bake + failed_rounds)
                .saturating_add(2 * gate);
        }
        if self.finalize.enabled {
            total = total.saturating_add(gate);
        }
        total
            .saturating_add(max_hold_seconds)
            .saturating_add(self.rollback.budget_seconds)
            .saturating_add(SYNC)
    }

    /// The longest one phase of this plan may go without an audit event: its longest single
    /// bounded wait (the lag deadline, MGN's launch, a bake with its failed rounds and a DNS
    /// sync given up after 900 s, a gate left to expire, a freeze with its hooks, the rollback
    /// budget). A run whose trail is silent longer than this is stuck in its phase.
    pub fn longest_phase_seconds(&self) -> u64 {
        const SYNC: u64 = 900;
        let r = &self.replication;
        let h = &self.health;
        let failed_rounds = u64::from(h.failure_limit()).saturating_mul(h.interval_seconds);
        let holds = self.max_hold_seconds();
        let bakes = self.traffic.steps.iter().enumerate().map(|(i, s)| {
            let bake = if i == 0 {
                s.bake_seconds
                    .max(self.dns.as_ref().map_or(0, |d| d.max_original_ttl_seconds))
            } else {
                s.bake_seconds
            };
            bake.saturating_add(failed_rounds)
                .saturating_add(SYNC)
                .saturating_add(holds)
        });
        let hooks: u64 = [&self.data.freeze, &self.data.switch, &self.data.unfreeze]
            .iter()
            .filter_map(|h| h.as_ref().map(|h| h.timeout_seconds))
            .sum();
        [
            r.deadline_seconds,
            r.launch_deadline_seconds,
            self.approvals.expires_seconds,
            self.data.max_freeze_seconds.saturating_add(hooks),
            self.rollback.budget_seconds,
        ]
        .into_iter()
        .chain(bakes)
        .max()
        .unwrap_or(0)
    }

    /// Blue and green weights after shifting to `green` percent.
    pub fn weights_for(green: u32) -> crate::model::Weights {
        crate::model::Weights {
            blue: 100 - green,
            green,
        }
    }
}

pub fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    s.len() <= 253 && s.contains('.') && s.split('.').all(shape::host_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
application: orders
wave: wave-1
replication: {kind: dms, taskArn: "arn:aws:dms:us-east-1:123456789012:task:ORDERS", maxLagSeconds: 30, stableSamples: 3, sampleIntervalSeconds: 60, deadlineSeconds: 7200}
dns:
  hostedZoneId: Z0123456789
  recordName: orders.example.com
  recordType: CNAME
  ttl: 60
  blue:  {setIdentifier: blue,  value: blue-lb.example.com}
  green: {setIdentifier: green, value: green-lb.example.com}
traffic:
  steps:
    - {weight: 10, bakeSeconds: 600}
    - {weight: 50, bakeSeconds: 600, approval: before-50}
    - {weight: 100, bakeSeconds: 900}
health:
  intervalSeconds: 30
  failureThreshold: 2
  http: [{url: "https://green.example.com/health", expectStatus: 200}]
  alarms: [orders-green-5xx]
approvals: {expiresSeconds: 3600}
"#;

    /// The fields named by the violations of a plan that must be refused.
    fn fields_of(text: &str) -> Vec<String> {
        Plan::parse(text, false)
            .unwrap_err()
            .violations()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn accepts_the_contract_example() {
        let p = Plan::parse(GOOD, false).expect("valid");
        assert_eq!(p.traffic.steps[1].approval.as_deref(), Some("before-50"));
        assert_eq!(p.dns.as_ref().unwrap().record_type, RecordType::CNAME);
    }

    #[test]
    fn unknown_field_is_named() {
        let text = GOOD.replace("maxLagSeconds: 30", "maxLagSecs: 30");
        let e = Plan::parse(&text, false).unwrap_err();
        let v = e.violations();
        assert_eq!(v[0].field, "replication.maxLagSecs");
        assert!(v[0].message.contains("unknown field"), "{v:?}");
    }

    #[test]
    fn lists_every_violation_with_its_path() {
        let text = GOOD
            .replace("weight: 50", "weight: 5")
            .replace("weight: 100", "weight: 90")
            .replace("maxLagSeconds: 30", "maxLagSeconds: 0")
            .replace("setIdentifier: green", "setIdentifier: blue")
            .replace("https://green.example.com/health", "not a url")
            .replace(
                "taskArn: \"arn:aws:dms:us-east-1:123456789012:task:ORDERS\"",
                "taskArn: nope",
            );
        let fields = fields_of(&text);
        for f in [
            "traffic.steps[1].weight",
            "traffic.steps[2].weight",
            "replication.maxLagSeconds",
            "dns.green.setIdentifier",
            "health.http[0].url",
            "replication.taskArn",
        ] {
            assert!(fields.iter().any(|x| x == f), "missing {f} in {fields:?}");
        }
    }

    #[test]
    fn needs_a_health_signal_and_kind_specific_ids() {
        let text = GOOD
            .replace(
                "  http: [{url: \"https://green.example.com/health\", expectStatus: 200}]\n",
                "",
            )
            .replace("  alarms: [orders-green-5xx]\n", "")
            .replace("kind: dms", "kind: mgn");
        let fields = fields_of(&text);
        assert!(fields.contains(&"health".to_string()), "{fields:?}");
        assert!(
            fields.contains(&"replication.sourceServerId".to_string()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"replication.taskArn".to_string()),
            "{fields:?}"
        );
    }

    #[test]
    fn values_must_fit_the_record_type() {
        let text = GOOD.replace("recordType: CNAME", "recordType: A");
        let fields = fields_of(&text);
        assert_eq!(fields, vec!["dns.blue.value", "dns.green.value"]);
    }

    #[test]
    fn a_key_given_twice_is_refused_with_its_path() {
        // A reviewed 10/50/100 plan must not turn into something else by a repeated key.
        let yaml = GOOD.replace(
            "    - {weight: 50, bakeSeconds: 600, approval: before-50}",
            "    - {weight: 50, bakeSeconds: 600, approval: before-50, bakeSeconds: 1}",
        );
        let v = Plan::parse(&yaml, false).unwrap_err().violations();
        assert_eq!(v[0].field, "traffic.steps[1]", "{v:?}");
        assert!(
            v[0].message.contains("duplicate key 'bakeSeconds'"),
            "{v:?}"
        );

        let json = serde_json::to_string(&Plan::parse(GOOD, false).unwrap()).unwrap();
        let twice = json.replacen("\"ttl\":60", "\"ttl\":60,\"ttl\":1", 1);
        assert_ne!(twice, json);
        let v = Plan::parse(&twice, true).unwrap_err().violations();
        assert_eq!(v[0].field, "dns", "{v:?}");
        assert!(v[0].message.contains("duplicate key 'ttl'"), "{v:?}");
    }

    #[test]
    fn every_number_has_a_range() {
        let text = GOOD
            .replace("maxLagSeconds: 30", "maxLagSeconds: 1e300")
            .replace(
                "deadlineSeconds: 7200",
                "deadlineSeconds: 18446744073709551615",
            )
            .replace(
                "{weight: 10, bakeSeconds: 600}",
                "{weight: 10, bakeSeconds: 18446744073709551615}",
            )
            .replace("intervalSeconds: 30", "intervalSeconds: 86400")
            .replace("failureThreshold: 2", "failureThreshold: 4000000000");
        let fields = fields_of(&text);
        for f in [
            "replication.maxLagSeconds",
            "replication.deadlineSeconds",
            "traffic.steps[0].bakeSeconds",
            "health.intervalSeconds",
            "health.failureThreshold",
        ] {
            assert!(fields.iter().any(|x| x == f), "missing {f} in {fields:?}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        assert!(Plan::parse(&format!("\u{feff}{GOOD}"), false).is_ok());
        let json = serde_json::to_string(&Plan::parse(GOOD, false).unwrap()).unwrap();
        assert!(Plan::parse(&format!("\u{feff}{json}"), true).is_ok());
        assert!(
            Plan::parse(&format!("{json} trailing"), true).is_err(),
            "trailing text after the document is still an error"
        );
    }

    #[test]
    fn alias_targets_and_health_checks_are_checked() {
        let text = GOOD
            .replace("recordType: CNAME", "recordType: A")
            .replace(
                "blue:  {setIdentifier: blue,  value: blue-lb.example.com}",
                "blue:  {setIdentifier: blue,  alias: {hostedZoneId: Z35SXDOTRQ7X7K, dnsName: blue-123.us-east-1.elb.amazonaws.com, evaluateTargetHealth: true}}",
            )
            .replace(
                "green: {setIdentifier: green, value: green-lb.example.com}",
                "green: {setIdentifier: green, alias: {hostedZoneId: Z35SXDOTRQ7X7K, dnsName: green-456.us-east-1.elb.amazonaws.com, evaluateTargetHealth: true}, healthCheckId: 0c9a8b9e-1b2c-4d3e-8f00-aabbccddeeff}",
            );
        let p = Plan::parse(&text, false).expect("alias plan is valid");
        assert!(matches!(
            p.dns.as_ref().unwrap().blue.routing(),
            Routing::Alias(_)
        ));
        assert_eq!(p.dns.as_ref().unwrap().max_original_ttl_seconds, 300);

        let both = text.replace(
            "alias: {hostedZoneId: Z35SXDOTRQ7X7K, dnsName: blue-123",
            "value: 192.0.2.1, alias: {hostedZoneId: Z35SXDOTRQ7X7K, dnsName: blue-123",
        );
        let fields = fields_of(&both);
        assert_eq!(fields, vec!["dns.blue"]);

        let bad = text
            .replace(
                "healthCheckId: 0c9a8b9e-1b2c-4d3e-8f00-aabbccddeeff",
                "healthCheckId: nope",
            )
            .replace(
                "dnsName: blue-123.us-east-1.elb.amazonaws.com",
                "dnsName: 'not a name'",
            )
            .replace(
                "hostedZoneId: Z35SXDOTRQ7X7K, dnsName: green",
                "hostedZoneId: z-lower, dnsName: green",
            );
        let fields = fields_of(&bad);
        assert_eq!(
            fields,
            vec![
                "dns.blue.alias.dnsName",
                "dns.green.alias.hostedZoneId",
                "dns.green.healthCheckId"
            ]
        );
    }
}
