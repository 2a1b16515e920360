//! The events a run publishes to EventBridge: one for every phase change, every gate opened and
//! decided, and the outcome. They are derived from the run table's changes — the run item's
//! `phase` and `outcome`, a gate's approval item — so every step that changes them publishes
//! without knowing it: on AWS the table's stream feeds the publish-events function, locally the
//! memory store feeds the simulated bus. docs/events.md is the schema; `detail.version` changes
//! only with a change a consumer would notice (a field removed or its meaning changed).

use crate::model::{ApprovalRecord, Decision, RunRecord};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// EventBridge `Source` of every event.
pub const SOURCE: &str = "cutover";
/// `detail.version` of this schema.
pub const DETAIL_VERSION: &str = "1";

/// The four kinds, as EventBridge `DetailType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DetailType {
    #[serde(rename = "Cutover Phase Changed")]
    PhaseChanged,
    #[serde(rename = "Cutover Gate Opened")]
    GateOpened,
    #[serde(rename = "Cutover Gate Decided")]
    GateDecided,
    #[serde(rename = "Cutover Run Closed")]
    RunClosed,
}

impl DetailType {
    pub fn as_str(self) -> &'static str {
        match self {
            DetailType::PhaseChanged => "Cutover Phase Changed",
            DetailType::GateOpened => "Cutover Gate Opened",
            DetailType::GateDecided => "Cutover Gate Decided",
            DetailType::RunClosed => "Cutover Run Closed",
        }
    }
}

/// One event: what PutEvents sends as `DetailType` and `Detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CutoverEvent {
    pub detail_type: DetailType,
    pub detail: Detail,
}

/// `detail` of every event; fields that do not apply to a kind are absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    pub version: String,
    /// The same for every delivery of one change (EventBridge and the stream deliver at least
    /// once): a consumer drops an id it has seen.
    pub id: String,
    pub run_id: String,
    pub application: String,
    /// When the change was seen.
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_phase: Option<String>,
    /// Green's weight, where the run has shifted traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green_weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// `approve` or `reject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn detail(id: String, run_id: &str, application: &str, at: DateTime<Utc>) -> Detail {
    Detail {
        version: DETAIL_VERSION.into(),
        id,
        run_id: run_id.into(),
        application: application.into(),
        at,
        phase: None,
        previous_phase: None,
        green_weight: None,
        gate: None,
        expires_at: None,
        decision: None,
        decided_by: None,
        outcome: None,
        error: None,
    }
}

/// The events of one write of a run item (`old` absent: the item is new).
pub fn run_changed(
    old: Option<&RunRecord>,
    new: &RunRecord,
    at: DateTime<Utc>,
) -> Vec<CutoverEvent> {
    let mut out = Vec::new();
    let old_phase = old.map(|o| o.phase.as_str());
    if old_phase != Some(new.phase.as_str()) {
        let id = format!("{}/v{}/phase", new.run_id, new.version);
        let mut d = detail(id, &new.run_id, &new.application, at);
        d.phase = Some(new.phase.clone());
        d.previous_phase = old_phase.map(str::to_string);
        d.green_weight = new.weights.map(|w| w.green);
        out.push(CutoverEvent {
            detail_type: DetailType::PhaseChanged,
            detail: d,
        });
    }
    let was_closed = old.is_some_and(|o| o.outcome.is_some());
    if let (false, Some(outcome)) = (was_closed, &new.outcome) {
        let id = format!("{}/closed", new.run_id);
        let mut d = detail(id, &new.run_id, &new.application, at);
        d.outcome = Some(outcome.clone());
        d.error = new.error.clone();
        d.green_weight = new.weights.map(|w| w.green);
        out.push(CutoverEvent {
            detail_type: DetailType::RunClosed,
            detail: d,
        });
    }
    out
}

/// The events of one write of a gate's approval item.
pub fn gate_changed(
    old: Option<&ApprovalRecord>,
    new: &ApprovalRecord,
    application: &str,
    at: DateTime<Utc>,
) -> Vec<CutoverEvent> {
    let mut out = Vec::new();
    // A gate asked again (a new token after an expiry) opens again.
    let opened = old.is_none_or(|o| o.requested_at != new.requested_at);
    if opened {
        let id = format!(
            "{}/{}/{}/opened",
            new.run_id,
            new.gate,
            new.requested_at.timestamp_millis()
        );
        let mut d = detail(id, &new.run_id, application, at);
        d.gate = Some(new.gate.clone());
        d.expires_at = Some(new.expires_at);
        out.push(CutoverEvent {
            detail_type: DetailType::GateOpened,
            detail: d,
        });
    }
    let decided_before = old.is_some_and(|o| o.decision.is_some()) && !opened;
    if let (false, Some(decision)) = (decided_before, new.decision) {
        let id = format!(
            "{}/{}/{}/decided",
            new.run_id,
            new.gate,
            new.requested_at.timestamp_millis()
        );
        let mut d = detail(id, &new.run_id, application, at);
        d.gate = Some(new.gate.clone());
        d.decision = Some(
            match decision {
                Decision::Approve => "approve",
                Decision::Reject => "reject",
            }
            .into(),
        );
        d.decided_by = new.decided_by.clone();
        out.push(CutoverEvent {
            detail_type: DetailType::GateDecided,
            detail: d,
        });
    }
    out
}

/// What a consumer may rely on in one run's events, in the order published (docs/events.md):
/// each names the run; each phase change names the phase before it; a gate is decided only
/// after it opened, once per opening; the run closes at most once, with `outcome`, and nothing
/// follows. Each broken rule, in words (the chaos oracle checks every run with it).
pub fn broken_promises(run_id: &str, events: &[CutoverEvent], outcome: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut phase: Option<&str> = None;
    let mut open: std::collections::BTreeMap<&str, bool> = Default::default();
    let mut closed = false;
    for (i, e) in events.iter().enumerate() {
        let d = &e.detail;
        if d.run_id != run_id {
            out.push(format!("event {i} names run {}, not {run_id}", d.run_id));
        }
        if closed {
            out.push(format!(
                "event {i} ({:?}) follows the run's close",
                e.detail_type
            ));
        }
        match e.detail_type {
            DetailType::PhaseChanged => {
                if d.previous_phase.as_deref() != phase {
                    out.push(format!(
                        "event {i}: phase {:?} says it followed {:?}, but the last phase published was {phase:?}",
                        d.phase, d.previous_phase
                    ));
                }
                phase = d.phase.as_deref();
            }
            DetailType::GateOpened => {
                open.insert(d.gate.as_deref().unwrap_or_default(), true);
            }
            DetailType::GateDecided => {
                let gate = d.gate.as_deref().unwrap_or_default();
                if open.insert(gate, false) != Some(true) {
                    out.push(format!("event {i}: gate {gate} decided without being open"));
                }
            }
            DetailType::RunClosed => {
                closed = true;
                if d.outcome.as_deref() != Some(outcome) {
                    out.push(format!(
                        "event {i}: the run closed {:?}, but its outcome is {outcome}",
                        d.outcome
                    ));
                }
            }
        }
    }
    out
}

/// EventBridge: where the publish-events function sends what the table's stream carries.
#[async_trait::async_trait]
pub trait Bus: Send + Sync {
    /// PutEvents of all of them (in batches the API takes); an event the bus refused is an
    /// error, so the stream delivers the batch again (consumers drop ids they have seen).
    async fn publish(&self, events: &[CutoverEvent]) -> Result<(), crate::ports::PortError>;
}

/// A bus for processes that publish nothing themselves (the local engine publishes through its
/// store): a call is refused, naming why.
pub struct NoBus;

#[async_trait::async_trait]
impl Bus for NoBus {
    async fn publish(&self, _: &[CutoverEvent]) -> Result<(), crate::ports::PortError> {
        Err(crate::ports::PortError::new(
            "events",
            crate::ports::PortErrorKind::Denied,
            "NoBus",
            "this process publishes no events",
        ))
    }
}

/// One change the run table's stream carries, as far as events go.
#[derive(Debug, Clone, PartialEq)]
pub enum TableChange {
    Run {
        old: Option<Box<RunRecord>>,
        new: Box<RunRecord>,
    },
    Gate {
        old: Option<Box<ApprovalRecord>>,
        new: Box<ApprovalRecord>,
    },
}

/// The run and gate changes of a DynamoDB stream event (`Records[].dynamodb.{OldImage,NewImage}`
/// in DynamoDB's attribute-value JSON); other items (audit events, locks, budgets) and removals
/// carry no event. A record that cannot be read is an error naming it: the stream then delivers
/// the batch again, and the function's errors alarm.
pub fn stream_changes(payload: &serde_json::Value) -> Result<Vec<TableChange>, String> {
    let records = payload
        .get("Records")
        .and_then(|r| r.as_array())
        .ok_or("the event has no Records array: not a DynamoDB stream event")?;
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let images = &r["dynamodb"];
        let Some(new) = images.get("NewImage") else {
            continue; // REMOVE
        };
        let new = plain(new).map_err(|e| format!("Records[{i}].dynamodb.NewImage: {e}"))?;
        let old = match images.get("OldImage") {
            Some(o) => Some(plain(o).map_err(|e| format!("Records[{i}].dynamodb.OldImage: {e}"))?),
            None => None,
        };
        let sk = new.get("sk").and_then(|v| v.as_str()).unwrap_or_default();
        if sk == "STATE" {
            out.push(TableChange::Run {
                old: old
                    .map(|o| read(i, o, "OldImage"))
                    .transpose()?
                    .map(Box::new),
                new: Box::new(read(i, new, "NewImage")?),
            });
        } else if sk.starts_with("APPROVAL#") {
            out.push(TableChange::Gate {
                old: old
                    .map(|o| read(i, o, "OldImage"))
                    .transpose()?
                    .map(Box::new),
                new: Box::new(read(i, new, "NewImage")?),
            });
        }
    }
    Ok(out)
}

fn read<T: serde::de::DeserializeOwned>(
    i: usize,
    v: serde_json::Value,
    which: &str,
) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("Records[{i}].dynamodb.{which}: {e}"))
}

/// An item in DynamoDB's attribute-value JSON (`{"S": "x"}`, `{"N": "1"}`, `{"M": {…}}`, …) as
/// plain JSON.
fn plain(v: &serde_json::Value) -> Result<serde_json::Value, String> {
    let map = v.as_object().ok_or("an item must be an object")?;
    let mut out = serde_json::Map::new();
    for (k, a) in map {
        out.insert(k.clone(), attribute(a).map_err(|e| format!("{k}: {e}"))?);
    }
    Ok(serde_json::Value::Object(out))
}

fn attribute(v: &serde_json::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    let (kind, inner) = v
        .as_object()
        .and_then(|m| m.iter().next().filter(|_| m.len() == 1))
        .ok_or_else(|| format!("{v} is not one attribute value"))?;
    let number = |s: &Value| -> Result<Value, String> {
        let s = s.as_str().ok_or("N must be a string")?;
        if let Ok(n) = s.parse::<u64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = s.parse::<i64>() {
            return Ok(Value::from(n));
        }
        s.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("'{s}' is not a number"))
    };
    Ok(match kind.as_str() {
        "S" | "BOOL" => inner.clone(),
        "NULL" => Value::Null,
        "N" => number(inner)?,
        "M" => {
            let m = inner.as_object().ok_or("M must be an object")?;
            let mut out = serde_json::Map::new();
            for (k, a) in m {
                out.insert(k.clone(), attribute(a)?);
            }
            Value::Object(out)
        }
        "L" => Value::Array(
            inner
                .as_array()
                .ok_or("L must be an array")?
                .iter()
                .map(attribute)
                .collect::<Result<_, _>>()?,
        ),
        "SS" => inner.clone(),
        "NS" => Value::Array(
            inner
                .as_array()
                .ok_or("NS must be an array")?
                .iter()
                .map(number)
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(format!("attribute type {other} is not read")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_read_as_plain_json() {
        let v = serde_json::json!({"a": {"S": "x"}, "n": {"N": "3"}, "f": {"N": "1.5"},
            "m": {"M": {"b": {"BOOL": true}, "z": {"NULL": true}}}, "l": {"L": [{"N": "-2"}]}});
        assert_eq!(
            plain(&v).unwrap(),
            serde_json::json!({"a": "x", "n": 3, "f": 1.5, "m": {"b": true, "z": null}, "l": [-2]})
        );
        assert!(plain(&serde_json::json!({"a": {"B": "AA=="}})).is_err());
    }

    fn ev(kind: DetailType, f: impl FnOnce(&mut Detail)) -> CutoverEvent {
        let mut d = detail("x".into(), "r1", "orders", Utc::now());
        f(&mut d);
        CutoverEvent {
            detail_type: kind,
            detail: d,
        }
    }

    #[test]
    fn each_broken_promise_of_a_run_s_events_is_named() {
        use DetailType::*;
        let phase = |p: &str, prev: Option<&str>| {
            let (p, prev) = (p.to_string(), prev.map(str::to_string));
            ev(PhaseChanged, move |d| {
                d.phase = Some(p);
                d.previous_phase = prev;
            })
        };
        let gate = |k, g: &str| {
            let g = g.to_string();
            ev(k, move |d| d.gate = Some(g))
        };
        let closed = |o: &str| {
            let o = o.to_string();
            ev(RunClosed, move |d| d.outcome = Some(o))
        };
        let good = vec![
            phase("validated", None),
            gate(GateOpened, "g"),
            gate(GateDecided, "g"),
            phase("shifting:10", Some("validated")),
            closed("completed"),
        ];
        assert!(broken_promises("r1", &good, "completed").is_empty());
        let cases: Vec<(Vec<CutoverEvent>, &str)> = vec![
            (
                vec![phase("a", None), phase("b", Some("z"))],
                "last phase published",
            ),
            (vec![gate(GateDecided, "g")], "without being open"),
            (
                vec![
                    gate(GateOpened, "g"),
                    gate(GateDecided, "g"),
                    gate(GateDecided, "g"),
                ],
                "without being open",
            ),
            (
                vec![closed("completed"), phase("a", None)],
                "follows the run's close",
            ),
            (vec![closed("rolled_back")], "its outcome is completed"),
        ];
        for (events, want) in cases {
            let broken = broken_promises("r1", &events, "completed");
            assert!(
                broken.iter().any(|m| m.contains(want)),
                "{want}: {broken:?}"
            );
        }
        let mut other = good.clone();
        other[0].detail.run_id = "r2".into();
        assert!(!broken_promises("r1", &other, "completed").is_empty());
    }
}
