//! The run store on one DynamoDB table (pk, sk):
//! `RUN#<id>`/`STATE` (versioned), `RUN#<id>`/`EVENT#<key>` (append-only, one per key),
//! `RUN#<id>`/`APPROVAL#<gate>` (with the task token, server side only), `APP#<app>`/`LOCK`,
//! `BUDGET#<name>`/`NEXT` (a shared request budget's first free slot).

use crate::errors::{build_err, Codes};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use cutover_core::model::{ApprovalRecord, AuditEvent, CalendarEntry, RunRecord};
use cutover_core::plan::Plan;
use cutover_core::ports::{Booking, LockOutcome, PortError, PortErrorKind, RunStore};
use std::collections::HashMap;

const SERVICE: &str = "dynamodb";
const CONDITION_FAILED: &[&str] = &[
    "ConditionalCheckFailedException",
    "TransactionConflictException",
];
const NOT_FOUND: &[&str] = &["ResourceNotFoundException"];
const INVALID: &[&str] = &["ValidationException"];
const CODES: Codes = Codes {
    service: SERVICE,
    invalid: INVALID,
    not_found: NOT_FOUND,
    conflict: CONDITION_FAILED,
};

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn to_item<T: serde::Serialize>(v: &T, pk: &str, sk: &str) -> Result<Item, PortError> {
    let mut item: Item = serde_dynamo::to_item(v).map_err(|e| build_err(SERVICE, e))?;
    item.insert("pk".into(), s(pk));
    item.insert("sk".into(), s(sk));
    Ok(item)
}

fn from_item<T: serde::de::DeserializeOwned>(mut item: Item) -> Result<T, PortError> {
    item.remove("pk");
    item.remove("sk");
    item.remove("sealedTaskToken");
    serde_dynamo::from_item(item)
        .map_err(|e| PortError::new(SERVICE, PortErrorKind::Other, "Decode", e.to_string()))
}

fn run_pk(run_id: &str) -> String {
    format!("RUN#{run_id}")
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// All items of one partition, every page.
    async fn partition(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, PortError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":p", s(sk_prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| CODES.map(e))?;
            out.extend(resp.items.unwrap_or_default());
            match resp.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// A cheap read to open the connection during init, so the first real call skips the TLS handshake.
    pub async fn warm_up(&self) {
        let _ = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s("WARMUP"))
            .key("sk", s("WARMUP"))
            .send()
            .await;
    }
}

/// How often a booking re-reads the budget after losing a conditional write to another caller.
const BOOKING_ATTEMPTS: u32 = 8;

#[async_trait]
impl RunStore for DynamoStore {
    /// A consistent read of the first free slot, then a put conditional on it being unchanged
    /// (optimistic locking with a condition expression:
    /// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).
    /// Losing the race means another caller booked first: read again. A put, not an update, so
    /// the functions need no permission beyond GetItem and PutItem.
    async fn book_slot(
        &self,
        budget: &str,
        now: DateTime<Utc>,
        interval: chrono::Duration,
        latest: DateTime<Utc>,
    ) -> Result<Booking, PortError> {
        let pk = format!("BUDGET#{budget}");
        for _ in 0..BOOKING_ATTEMPTS {
            let item = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s("NEXT"))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| CODES.map(e))?
                .item;
            let stored = match item.as_ref().and_then(|i| i.get("nextFreeMicros")) {
                None => None,
                Some(AttributeValue::N(n)) => Some(n.parse::<i64>().map_err(|_| {
                    PortError::new(
                        SERVICE,
                        PortErrorKind::Other,
                        "Decode",
                        format!("{pk}: nextFreeMicros '{n}' is not a number"),
                    )
                })?),
                Some(_) => {
                    return Err(PortError::new(
                        SERVICE,
                        PortErrorKind::Other,
                        "Decode",
                        format!("{pk}: nextFreeMicros is not a number"),
                    ))
                }
            };
            let slot = stored
                .and_then(DateTime::<Utc>::from_timestamp_micros)
                .filter(|t| *t > now)
                .unwrap_or(now);
            if slot > latest {
                return Ok(Booking::Full(slot));
            }
            let next = (slot + interval).timestamp_micros();
            let req = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("sk", s("NEXT"))
                .item("nextFreeMicros", AttributeValue::N(next.to_string()));
            let req = match stored {
                None => req.condition_expression("attribute_not_exists(pk)"),
                Some(v) => req
                    .condition_expression("nextFreeMicros = :seen")
                    .expression_attribute_values(":seen", AttributeValue::N(v.to_string())),
            };
            match req.send().await.map_err(|e| CODES.map(e)) {
                Ok(_) => return Ok(Booking::Booked(slot)),
                Err(e) if e.kind == PortErrorKind::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        Err(PortError::new(
            SERVICE,
            PortErrorKind::Conflict,
            "ConditionalCheckFailedException",
            format!("{pk}: lost {BOOKING_ATTEMPTS} bookings in a row to other callers"),
        ))
    }

    /// A paginated Scan of the STATE items.
    async fn list_runs(&self, application: Option<&str>) -> Result<Vec<RunRecord>, PortError> {
        let mut out = Vec::new();
        let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
        loop {
            let mut req = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start.take())
                .expression_attribute_values(":state", s("STATE"));
            req = match application {
                Some(a) => req
                    .filter_expression("sk = :state AND application = :app")
                    .expression_attribute_values(":app", s(a)),
                None => req.filter_expression("sk = :state"),
            };
            let page = req.send().await.map_err(|e| CODES.map(e))?;
            for item in page.items().iter().cloned() {
                out.push(from_item::<RunRecord>(item)?);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        Ok(out)
    }

    /// A conditional put: only while `from` holds the lock (ConditionExpression on runId).
    async fn take_over_lock(
        &self,
        application: &str,
        from: &str,
        to: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&format!("APP#{application}")))
            .item("sk", s("LOCK"))
            .item("runId", s(to))
            .item("acquiredAt", s(&at.to_rfc3339()))
            .item("takenOverFrom", s(from))
            .condition_expression("runId = :from")
            .expression_attribute_values(":from", s(from))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = CODES.map(e);
                if e.kind == PortErrorKind::Conflict {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn acquire_lock(
        &self,
        application: &str,
        run_id: &str,
        at: DateTime<Utc>,
    ) -> Result<LockOutcome, PortError> {
        let pk = format!("APP#{application}");
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s("LOCK"))
            .item("runId", s(run_id))
            .item("acquiredAt", s(&at.to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(LockOutcome::Acquired),
            Err(e) => {
                let e = CODES.map(e);
                if e.kind != PortErrorKind::Conflict {
                    return Err(e);
                }
                let held = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(&pk))
                    .key("sk", s("LOCK"))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| CODES.map(e))?;
                let holder = held
                    .item
                    .and_then(|i| i.get("runId").and_then(|v| v.as_s().ok().cloned()))
                    .unwrap_or_default();
                Ok(if holder == run_id {
                    LockOutcome::AlreadyHeld
                } else {
                    LockOutcome::HeldBy(holder)
                })
            }
        }
    }

    async fn release_lock(&self, application: &str, run_id: &str) -> Result<(), PortError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(&format!("APP#{application}")))
            .key("sk", s("LOCK"))
            .condition_expression("runId = :run")
            .expression_attribute_values(":run", s(run_id))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // Not ours (or gone already): leave it alone.
            Err(e) => match CODES.map(e) {
                e if e.kind == PortErrorKind::Conflict => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn load_run(&self, run_id: &str) -> Result<Option<RunRecord>, PortError> {
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&run_pk(run_id)))
            .key("sk", s("STATE"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| CODES.map(e))?;
        resp.item.map(from_item).transpose()
    }

    async fn save_run(&self, record: &RunRecord) -> Result<(), PortError> {
        let mut next = record.clone();
        next.version = record.version + 1;
        let item = to_item(&next, &run_pk(&record.run_id), "STATE")?;
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let req = if record.version == 0 {
            req.condition_expression("attribute_not_exists(pk)")
        } else {
            req.condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(record.version.to_string()))
        };
        req.send().await.map_err(|e| CODES.map(e))?;
        Ok(())
    }

    async fn append_event(&self, event: &AuditEvent) -> Result<bool, PortError> {
        let mut item = to_item(
            event,
            &run_pk(&event.run_id),
            &format!("EVENT#{}", event.key),
        )?;
        // Append order breaks ties between events of the same instant.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        item.insert("appendedNanos".into(), AttributeValue::N(nanos.to_string()));
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) => match CODES.map(e) {
                e if e.kind == PortErrorKind::Conflict => Ok(false),
                e => Err(e),
            },
        }
    }

    async fn events(&self, run_id: &str) -> Result<Vec<AuditEvent>, PortError> {
        let mut events: Vec<(AuditEvent, u128)> = self
            .partition(&run_pk(run_id), "EVENT#")
            .await?
            .into_iter()
            .map(|item| {
                let seq = item
                    .get("appendedNanos")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<u128>().ok())
                    .unwrap_or(0);
                from_item(item).map(|e| (e, seq))
            })
            .collect::<Result<_, _>>()?;
        // Items come back in key order; the trail reads in time order, then append order.
        events.sort_by_key(|e| (e.0.at, e.1));
        let events: Vec<AuditEvent> = events.into_iter().map(|(e, _)| e).collect();
        Ok(events)
    }

    async fn save_approval(
        &self,
        approval: &ApprovalRecord,
        expect_undecided: bool,
    ) -> Result<(), PortError> {
        let mut item = to_item(
            approval,
            &run_pk(&approval.run_id),
            &format!("APPROVAL#{}", approval.gate),
        )?;
        // The sealed token is not part of the serialized record; it is stored beside it and read
        // only here.
        item.insert("sealedTaskToken".into(), s(&approval.sealed_token));
        item.insert(
            "version".into(),
            aws_sdk_dynamodb::types::AttributeValue::N((approval.version + 1).to_string()),
        );
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let req = if expect_undecided {
            req.condition_expression(
                "(attribute_not_exists(decision) OR attribute_type(decision, :null)) AND (attribute_not_exists(version) OR version = :v)",
            )
            .expression_attribute_values(":null", s("NULL"))
            .expression_attribute_values(
                ":v",
                aws_sdk_dynamodb::types::AttributeValue::N(approval.version.to_string()),
            )
        } else {
            req
        };
        req.send().await.map_err(|e| CODES.map(e))?;
        Ok(())
    }

    async fn load_approval(
        &self,
        run_id: &str,
        gate: &str,
    ) -> Result<Option<ApprovalRecord>, PortError> {
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&run_pk(run_id)))
            .key("sk", s(&format!("APPROVAL#{gate}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| CODES.map(e))?;
        let Some(item) = resp.item else {
            return Ok(None);
        };
        let token = item
            .get("sealedTaskToken")
            .and_then(|v| v.as_s().ok().cloned())
            .unwrap_or_default();
        let mut rec: ApprovalRecord = from_item(item)?;
        rec.sealed_token = token;
        Ok(Some(rec))
    }

    async fn wave_frozen(&self, wave: &str) -> Result<Option<String>, PortError> {
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&format!("WAVE#{wave}")))
            .key("sk", s("FREEZE"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| CODES.map(e))?;
        Ok(resp
            .item
            .and_then(|i| i.get("reason").and_then(|v| v.as_s().ok().cloned())))
    }

    async fn set_wave_frozen(&self, wave: &str, reason: Option<&str>) -> Result<(), PortError> {
        let pk = format!("WAVE#{wave}");
        match reason {
            Some(r) => {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", s(&pk))
                    .item("sk", s("FREEZE"))
                    .item("reason", s(r))
                    .send()
                    .await
                    .map_err(|e| CODES.map(e))?;
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(&pk))
                    .key("sk", s("FREEZE"))
                    .send()
                    .await
                    .map_err(|e| CODES.map(e))?;
            }
        }
        Ok(())
    }

    async fn save_calendar_entry(&self, entry: &CalendarEntry) -> Result<(), PortError> {
        let mut next = entry.clone();
        next.version = entry.version + 1;
        let item = to_item(&next, "CALENDAR", &format!("WAVE#{}", entry.wave))?;
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let req = if entry.version == 0 {
            req.condition_expression("attribute_not_exists(pk)")
        } else {
            req.condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(entry.version.to_string()))
        };
        req.send().await.map_err(|e| CODES.map(e))?;
        Ok(())
    }

    async fn calendar(&self) -> Result<Vec<CalendarEntry>, PortError> {
        self.partition("CALENDAR", "WAVE#")
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn save_wave_plan(&self, key: &str, index: usize, plan: &Plan) -> Result<(), PortError> {
        // The plan as compact JSON in one attribute: read back exactly as written.
        let json = serde_json::to_string(plan)
            .map_err(|e| PortError::new(SERVICE, PortErrorKind::Other, "Encode", e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&format!("PLANS#{key}")))
            .item("sk", s(&format!("PLAN#{index:06}")))
            .item("plan", s(&json))
            .send()
            .await
            .map_err(|e| CODES.map(e))?;
        Ok(())
    }

    async fn load_wave_plan(&self, key: &str, index: usize) -> Result<Option<Plan>, PortError> {
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(&format!("PLANS#{key}")))
            .key("sk", s(&format!("PLAN#{index:06}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| CODES.map(e))?;
        let Some(text) = resp
            .item
            .and_then(|i| i.get("plan").and_then(|v| v.as_s().ok().cloned()))
        else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| PortError::new(SERVICE, PortErrorKind::Other, "Decode", e.to_string()))
    }

    async fn approvals(&self, run_id: &str) -> Result<Vec<ApprovalRecord>, PortError> {
        // Listed for reports and the API: tokens stay in the table.
        self.partition(&run_pk(run_id), "APPROVAL#")
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }
}
