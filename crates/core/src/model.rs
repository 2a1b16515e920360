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

/// One Route 53 record set. A weighted one carries `setIdentifier` and `weight`.
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
    pub ttl: u64,
    pub values: Vec<String>,
}

impl RecordSet {
    pub fn is_weighted(&self) -> bool {
        self.set_identifier.is_some()
    }
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
    /// Results of side-effecting steps by idempotency key, so a redelivered step repeats nothing.
    #[serde(default)]
    pub steps: BTreeMap<String, Value>,
    /// Bumped by the store on every write; a write carrying a stale version is refused.
    pub version: u64,
}

impl RunRecord {
    pub fn new(run_id: &str, application: &str, started_at: DateTime<Utc>) -> Self {
        RunRecord {
            run_id: run_id.to_string(),
            application: application.to_string(),
            phase: "validated".into(),
            started_at,
            snapshot: vec![],
            weights: None,
            last_lag_seconds: None,
            outcome: None,
            error: None,
            abort_requested: None,
            steps: BTreeMap::new(),
            version: 0,
        }
    }

    /// True once any traffic shift was submitted for this run.
    pub fn traffic_moved(&self) -> bool {
        self.steps.keys().any(|k| k.starts_with("shift#"))
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

/// A gate's approval item. The task token stays server side: it is skipped by serde, so no
/// report, log line or API answer built from this type can carry it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    pub run_id: String,
    pub gate: String,
    #[serde(skip)]
    pub task_token: String,
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
            .field("task_token", &"<redacted>")
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

impl TableStatus {
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
}
