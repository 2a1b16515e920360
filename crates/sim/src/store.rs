//! In-memory run store with the same conditional-write rules as the DynamoDB table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cutover_core::events::CutoverEvent;
use cutover_core::model::{ApprovalRecord, AuditEvent, CalendarEntry, RunRecord};
use cutover_core::plan::Plan;
use cutover_core::ports::{Booking, LockOutcome, PortError, PortErrorKind, RunStore};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct Tables {
    locks: HashMap<String, (String, DateTime<Utc>)>,
    runs: HashMap<String, RunRecord>,
    events: HashMap<String, Vec<AuditEvent>>,
    approvals: BTreeMap<(String, String), ApprovalRecord>,
    frozen: HashMap<String, String>,
    calendar: BTreeMap<String, CalendarEntry>,
    wave_plans: HashMap<(String, usize), Plan>,
    /// Each shared budget's first free slot.
    budgets: HashMap<String, DateTime<Utc>>,
    writes: u64,
    /// What the table's stream would carry to EventBridge, in order (cutover_core::events).
    published: Vec<CutoverEvent>,
}

#[derive(Default)]
pub struct MemoryStore {
    t: Mutex<Tables>,
    /// Stamps the published events; absent, nothing is published.
    clock: Mutex<Option<std::sync::Arc<dyn cutover_core::ports::Clock>>>,
}

fn conflict(msg: impl Into<String>) -> PortError {
    PortError::new(
        "dynamodb",
        PortErrorKind::Conflict,
        "ConditionalCheckFailedException",
        msg,
    )
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.t.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Who holds the application now, if anyone.
    pub fn lock_holder(&self, application: &str) -> Option<String> {
        self.lock().locks.get(application).map(|(r, _)| r.clone())
    }

    /// Whether a run record exists (validation stored it).
    pub fn has_run(&self, run_id: &str) -> bool {
        self.lock().runs.contains_key(run_id)
    }

    /// Everything the table holds (runs, audit events, approval items with the token attribute
    /// as stored), as JSON text: for tests that check what the table would hold on AWS.
    pub fn dump(&self) -> String {
        let t = self.lock();
        let approvals: Vec<serde_json::Value> = t
            .approvals
            .values()
            .map(|a| {
                let mut v = serde_json::to_value(a).unwrap_or_default();
                v["sealedTaskToken"] = serde_json::Value::String(a.sealed_token.clone());
                v
            })
            .collect();
        let mut runs: Vec<&RunRecord> = t.runs.values().collect();
        runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
        let mut events: Vec<(&String, &Vec<AuditEvent>)> = t.events.iter().collect();
        events.sort_by(|a, b| a.0.cmp(b.0));
        serde_json::json!({"runs": runs, "events": events, "approvals": approvals}).to_string()
    }

    /// Publishes an event for every phase change, gate and outcome written from now on, as the
    /// table's stream does on AWS, stamped with `clock`.
    pub fn publish_events(&self, clock: std::sync::Arc<dyn cutover_core::ports::Clock>) {
        *self.clock.lock().unwrap_or_else(|p| p.into_inner()) = Some(clock);
    }

    /// The events published so far, in order.
    pub fn published(&self) -> Vec<CutoverEvent> {
        self.lock().published.clone()
    }

    fn now(&self) -> Option<DateTime<Utc>> {
        self.clock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| c.now())
    }

    /// Successful writes, for tests that count side effects.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }
}

#[async_trait]
impl RunStore for MemoryStore {
    /// The table's conditional update, in one step: the first free slot at or after `now`.
    /// (Not counted in `writes`: those are the run's own side effects.)
    async fn book_slot(
        &self,
        budget: &str,
        now: DateTime<Utc>,
        interval: chrono::Duration,
        latest: DateTime<Utc>,
    ) -> Result<Booking, PortError> {
        let mut t = self.lock();
        let slot = t
            .budgets
            .get(budget)
            .copied()
            .filter(|n| *n > now)
            .unwrap_or(now);
        if slot > latest {
            return Ok(Booking::Full(slot));
        }
        t.budgets.insert(budget.to_string(), slot + interval);
        Ok(Booking::Booked(slot))
    }

    async fn wave_frozen(&self, wave: &str) -> Result<Option<String>, PortError> {
        Ok(self.lock().frozen.get(wave).cloned())
    }

    async fn set_wave_frozen(&self, wave: &str, reason: Option<&str>) -> Result<(), PortError> {
        let mut t = self.lock();
        match reason {
            Some(r) => t.frozen.insert(wave.to_string(), r.to_string()),
            None => t.frozen.remove(wave),
        };
        t.writes += 1;
        Ok(())
    }

    async fn acquire_lock(
        &self,
        application: &str,
        run_id: &str,
        at: DateTime<Utc>,
    ) -> Result<LockOutcome, PortError> {
        let mut t = self.lock();
        match t.locks.get(application) {
            Some((holder, _)) if holder == run_id => Ok(LockOutcome::AlreadyHeld),
            Some((holder, _)) => Ok(LockOutcome::HeldBy(holder.clone())),
            None => {
                t.locks
                    .insert(application.to_string(), (run_id.to_string(), at));
                t.writes += 1;
                Ok(LockOutcome::Acquired)
            }
        }
    }

    async fn take_over_lock(
        &self,
        application: &str,
        from: &str,
        to: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let mut t = self.lock();
        if t.locks.get(application).is_some_and(|(h, _)| h == from) {
            t.locks
                .insert(application.to_string(), (to.to_string(), at));
            t.writes += 1;
            return Ok(true);
        }
        Ok(false)
    }

    async fn release_lock(&self, application: &str, run_id: &str) -> Result<(), PortError> {
        let mut t = self.lock();
        if t.locks.get(application).is_some_and(|(h, _)| h == run_id) {
            t.locks.remove(application);
            t.writes += 1;
        }
        Ok(())
    }

    async fn load_run(&self, run_id: &str) -> Result<Option<RunRecord>, PortError> {
        Ok(self.lock().runs.get(run_id).cloned())
    }

    async fn list_runs(&self, application: Option<&str>) -> Result<Vec<RunRecord>, PortError> {
        let mut runs: Vec<RunRecord> = (self.lock().runs.values())
            .filter(|r| application.is_none_or(|a| r.application == a))
            .cloned()
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        Ok(runs)
    }

    async fn save_run(&self, record: &RunRecord) -> Result<(), PortError> {
        let mut t = self.lock();
        let stored = t.runs.get(&record.run_id).map(|r| r.version).unwrap_or(0);
        let exists = t.runs.contains_key(&record.run_id);
        if (record.version == 0 && exists) || (record.version != 0 && stored != record.version) {
            return Err(conflict(format!(
                "run {} is at version {stored}, not {}",
                record.run_id, record.version
            )));
        }
        let mut r = record.clone();
        r.version = stored + 1;
        if let Some(at) = self.now() {
            let events = cutover_core::events::run_changed(t.runs.get(&r.run_id), &r, at);
            t.published.extend(events);
        }
        t.runs.insert(r.run_id.clone(), r);
        t.writes += 1;
        Ok(())
    }

    async fn append_event(&self, event: &AuditEvent) -> Result<bool, PortError> {
        let mut t = self.lock();
        let list = t.events.entry(event.run_id.clone()).or_default();
        if list.iter().any(|e| e.key == event.key) {
            return Ok(false);
        }
        list.push(event.clone());
        t.writes += 1;
        Ok(true)
    }

    async fn events(&self, run_id: &str) -> Result<Vec<AuditEvent>, PortError> {
        Ok(self.lock().events.get(run_id).cloned().unwrap_or_default())
    }

    async fn save_approval(
        &self,
        approval: &ApprovalRecord,
        expect_undecided: bool,
    ) -> Result<(), PortError> {
        let mut t = self.lock();
        let key = (approval.run_id.clone(), approval.gate.clone());
        if expect_undecided && t.approvals.get(&key).is_some_and(|a| a.decision.is_some()) {
            return Err(conflict(format!(
                "gate {} was decided already",
                approval.gate
            )));
        }
        let stored = t.approvals.get(&key).map_or(0, |a| a.version);
        if expect_undecided && stored != approval.version {
            return Err(conflict(format!(
                "gate {} changed meanwhile (version {stored}, not {})",
                approval.gate, approval.version
            )));
        }
        let mut next = approval.clone();
        next.version = approval.version + 1;
        if let Some(at) = self.now() {
            let application = t
                .runs
                .get(&next.run_id)
                .map_or(next.run_id.clone(), |r| r.application.clone());
            let events =
                cutover_core::events::gate_changed(t.approvals.get(&key), &next, &application, at);
            t.published.extend(events);
        }
        t.approvals.insert(key, next);
        t.writes += 1;
        Ok(())
    }

    async fn load_approval(
        &self,
        run_id: &str,
        gate: &str,
    ) -> Result<Option<ApprovalRecord>, PortError> {
        Ok(self
            .lock()
            .approvals
            .get(&(run_id.to_string(), gate.to_string()))
            .cloned())
    }

    async fn approvals(&self, run_id: &str) -> Result<Vec<ApprovalRecord>, PortError> {
        Ok(self
            .lock()
            .approvals
            .values()
            .filter(|a| a.run_id == run_id)
            .cloned()
            .collect())
    }

    async fn save_calendar_entry(&self, entry: &CalendarEntry) -> Result<(), PortError> {
        let mut t = self.lock();
        let stored = t.calendar.get(&entry.wave).map(|e| e.version).unwrap_or(0);
        if stored != entry.version {
            return Err(conflict(format!(
                "calendar entry {} is at version {stored}, not {}",
                entry.wave, entry.version
            )));
        }
        let mut next = entry.clone();
        next.version += 1;
        t.calendar.insert(entry.wave.clone(), next);
        t.writes += 1;
        Ok(())
    }

    async fn calendar(&self) -> Result<Vec<CalendarEntry>, PortError> {
        Ok(self.lock().calendar.values().cloned().collect())
    }

    async fn save_wave_plan(&self, key: &str, index: usize, plan: &Plan) -> Result<(), PortError> {
        let mut t = self.lock();
        t.wave_plans.insert((key.to_string(), index), plan.clone());
        t.writes += 1;
        Ok(())
    }

    async fn load_wave_plan(&self, key: &str, index: usize) -> Result<Option<Plan>, PortError> {
        Ok(self
            .lock()
            .wave_plans
            .get(&(key.to_string(), index))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lock_and_versions_are_conditional() {
        let s = MemoryStore::new();
        let now = Utc::now();
        assert_eq!(
            s.acquire_lock("orders", "r1", now).await.unwrap(),
            LockOutcome::Acquired
        );
        assert_eq!(
            s.acquire_lock("orders", "r1", now).await.unwrap(),
            LockOutcome::AlreadyHeld
        );
        assert_eq!(
            s.acquire_lock("orders", "r2", now).await.unwrap(),
            LockOutcome::HeldBy("r1".into())
        );
        s.release_lock("orders", "r2").await.unwrap();
        assert_eq!(s.lock_holder("orders").as_deref(), Some("r1"));

        let rec = RunRecord::new("r1", "orders", now);
        s.save_run(&rec).await.unwrap();
        assert_eq!(
            s.save_run(&rec).await.unwrap_err().kind,
            PortErrorKind::Conflict
        );
        let mut loaded = s.load_run("r1").await.unwrap().unwrap();
        loaded.phase = "x".into();
        s.save_run(&loaded).await.unwrap();
        assert_eq!(
            s.save_run(&loaded).await.unwrap_err().kind,
            PortErrorKind::Conflict,
            "stale version refused"
        );
    }
}
