//! The application and its two databases. Writes arrive at `app.writesPerSecond`, split between
//! blue's and green's tiers by the DNS weights in effect; each tier writes to the database it
//! points at; a freeze refuses writes; the data hooks (freeze, switch, unfreeze) act on this
//! model. An MGN launch copies blue's database as replicated then (each server its lagDuration
//! behind); writes blue takes after that point never reach green. DMS carries one database's
//! writes to the other with the task's scripted lag: a write
//! committed at `w` is applied once `w <= t - lag(t)` (CDCLatencyTarget is measured from the source
//! commit time, AWS DMS user guide, "Replication task metrics":
//! https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Monitoring.html). Nothing about the
//! outcome is assumed: a run's lost writes are those accepted but absent, at the end, from the
//! database the serving tier points at.

use super::*;
use crate::spec::{Carries, Db};
use async_trait::async_trait;
use cutover_core::plan::{Hook, Plan, WritesMode};
use serde_json::{json, Value};

/// Cumulative writes into one database as a piecewise-linear curve of (t, total).
#[derive(Debug, Clone, Default)]
pub(super) struct Ledger(Vec<(f64, f64)>);

impl Ledger {
    fn total(&self) -> f64 {
        self.0.last().map_or(0.0, |p| p.1)
    }

    /// Writes committed up to `t`.
    fn at(&self, t: f64) -> f64 {
        if self.0.is_empty() || t <= self.0[0].0 {
            return 0.0;
        }
        interpolate(&self.0, t)
    }

    fn push(&mut self, t: f64, added: f64) {
        let total = self.total() + added;
        if self.0.is_empty() {
            self.0.push((t, 0.0));
        }
        if let Some(last) = self.0.last_mut() {
            if (last.0 - t).abs() < 1e-9 {
                last.1 = total;
                return;
            }
        }
        self.0.push((t, total));
    }
}

#[derive(Debug, Clone)]
pub(super) struct AppState {
    last_t: f64,
    pub(super) frozen: bool,
    blue_tier: Db,
    green_tier: Db,
    accepted: f64,
    refused: f64,
    blue_db: Ledger,
    green_db: Ledger,
    /// MGN: the point in time up to which the launched instances hold blue's database.
    pub(super) copied_at: Option<f64>,
}

impl AppState {
    pub(super) fn new(green_tier: Db) -> Self {
        AppState {
            last_t: 0.0,
            frozen: false,
            blue_tier: Db::Blue,
            green_tier,
            accepted: 0.0,
            refused: 0.0,
            blue_db: Ledger(vec![(0.0, 0.0)]),
            green_db: Ledger(vec![(0.0, 0.0)]),
            copied_at: None,
        }
    }

    fn ledger(&mut self, db: Db) -> &mut Ledger {
        match db {
            Db::Blue => &mut self.blue_db,
            Db::Green => &mut self.green_db,
        }
    }
}

/// A replicating task: started at, stopped at (or infinity), its lag curve.
type Carrier<'a> = (f64, f64, &'a [(f64, f64)]);

/// What the application's writes came to, for the run report.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteTally {
    pub writes_accepted: u64,
    /// Accepted writes missing from the database the serving tier points at.
    pub writes_lost: u64,
    /// Writes turned away while frozen (clients saw the maintenance answer).
    pub writes_refused: u64,
    /// blue | green: the database that survives the run.
    pub surviving_database: &'static str,
}

impl World {
    /// Green's tier writes where the plan's mode says, unless the world says otherwise.
    pub fn configure_app_for(&self, plan: &Plan) {
        if self.spec.app.green_writes_to.is_some() {
            return;
        }
        let db = if plan.data.writes == WritesMode::BlueUntilSwitch {
            Db::Blue
        } else {
            Db::Green
        };
        self.st().app.green_tier = db;
    }

    /// Share of clients resolving to green now: the weights of records whose target was not
    /// among the record's targets at t = 0, over all weights (all zero: an equal split, as Route
    /// 53 does for weighted records that all weigh 0).
    fn green_share(&self, st: &State) -> f64 {
        let Some(name) = &self.app_record else {
            // No record: the clients reach the application through its load balancer.
            return self.alb_green_share(st).unwrap_or(0.0);
        };
        let records: Vec<&RecordSet> = st
            .zones
            .values()
            .flat_map(|z| z.records.iter())
            .filter(|r| &r.name == name)
            .collect();
        if records.is_empty() {
            return 0.0;
        }
        let is_green = |r: &RecordSet| !self.blue_targets.contains(&target_of(r));
        let total: f64 = records
            .iter()
            .map(|r| f64::from(r.weight.unwrap_or(1)))
            .sum();
        if total <= 0.0 {
            return records.iter().filter(|r| is_green(r)).count() as f64 / records.len() as f64;
        }
        records
            .iter()
            .filter(|r| is_green(r))
            .map(|r| f64::from(r.weight.unwrap_or(1)))
            .sum::<f64>()
            / total
    }

    /// Accounts the writes from the last settle up to now with the state that held meanwhile.
    /// Called before anything that changes who writes where.
    pub(super) fn settle(&self, st: &mut State) {
        let t = self.t();
        let dt = t - st.app.last_t;
        if dt <= 0.0 {
            return;
        }
        let writes = self.spec.app.writes_per_second * dt;
        let green = self.green_share(st);
        let app = &mut st.app;
        if app.frozen {
            app.refused += writes;
            let (b, g) = (app.blue_tier, app.green_tier);
            app.ledger(b).push(t, 0.0);
            app.ledger(g).push(t, 0.0);
        } else {
            app.accepted += writes;
            let (b, g) = (app.blue_tier, app.green_tier);
            app.ledger(b).push(t, writes * (1.0 - green));
            app.ledger(g).push(t, writes * green);
        }
        for db in [Db::Blue, Db::Green] {
            app.ledger(db).push(t, 0.0);
        }
        app.last_t = t;
    }

    /// The task carrying `carries`, with its running window [start, end) and lag curve.
    fn carrier(&self, st: &State, carries: Carries) -> Option<Carrier<'_>> {
        let spec = self.spec.dms.tasks.iter().find(|t| t.carries == carries)?;
        let s = st.dms.get(&spec.arn)?;
        let start = s.started_at?;
        let mut end = s.stopped_at.unwrap_or(f64::INFINITY);
        for limit in [spec.fail_after_seconds, spec.stop_after_seconds]
            .into_iter()
            .flatten()
        {
            end = end.min(start + limit);
        }
        Some((start, end, &spec.lag))
    }

    /// Writes of the source database that the task carrying `carries` has applied by `t`.
    fn replicated(&self, st: &State, carries: Carries, t: f64) -> f64 {
        let Some((start, end, lag)) = self.carrier(st, carries) else {
            return 0.0;
        };
        let source = match carries {
            Carries::BlueToGreen => &st.app.blue_db,
            Carries::GreenToBlue => &st.app.green_db,
        };
        let e = t.min(end);
        if e < start {
            return 0.0;
        }
        let upto = e - interpolate(lag, e - start);
        // The forward task's full load copied what blue held when it started; a reverse (CDC)
        // task carries only what green took after it started.
        let base = match carries {
            Carries::BlueToGreen => 0.0,
            Carries::GreenToBlue => source.at(start),
        };
        (source.at(upto.min(e)) - base).max(0.0)
    }

    /// Changes of the task's source waiting to be applied at `t` (CDCIncomingChanges), and
    /// whether DMS is idle then (nothing waiting while writes are modelled or frozen), when the
    /// task carries the application's writes.
    pub(super) fn backlog(&self, st: &State, task_arn: &str, t: f64) -> Option<(f64, bool)> {
        let spec = self.spec.dms.tasks.iter().find(|s| s.arn == task_arn)?;
        let source = match spec.carries {
            Carries::BlueToGreen => &st.app.blue_db,
            Carries::GreenToBlue => &st.app.green_db,
        };
        let base = match spec.carries {
            Carries::BlueToGreen => 0.0,
            Carries::GreenToBlue => st
                .dms
                .get(task_arn)
                .and_then(|s| s.started_at)
                .map_or(0.0, |s| source.at(s)),
        };
        let waiting = (source.at(t) - base - self.replicated(st, spec.carries, t)).max(0.0);
        let modelled = self.spec.app.writes_per_second > 0.0 || st.app.frozen;
        Some((waiting, modelled && waiting < 0.5))
    }

    /// The writes of the run so far.
    pub fn writes(&self) -> WriteTally {
        let mut st = self.st();
        self.settle(&mut st);
        let t = self.t();
        let serving = if self.green_share(&st) >= 0.5 {
            st.app.green_tier
        } else {
            st.app.blue_tier
        };
        let present = match serving {
            Db::Blue => st.app.blue_db.total() + self.replicated(&st, Carries::GreenToBlue, t),
            Db::Green => {
                let carried = self.replicated(&st, Carries::BlueToGreen, t);
                let copied = st.app.copied_at.map_or(0.0, |c| st.app.blue_db.at(c));
                st.app.green_db.total() + carried.max(copied)
            }
        };
        let accepted = st.app.accepted;
        WriteTally {
            writes_accepted: accepted.round() as u64,
            writes_lost: (accepted - present).max(0.0).round() as u64,
            writes_refused: st.app.refused.round() as u64,
            surviving_database: match serving {
                Db::Blue => "blue",
                Db::Green => "green",
            },
        }
    }
}

/// What a record routes to, as the app model compares targets.
pub(super) fn target_of(r: &RecordSet) -> String {
    match &r.alias_target {
        Some(a) => format!("alias:{}", normalize_name(&a.dns_name)),
        None => r
            .values
            .iter()
            .map(|v| normalize_name(v))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The data hooks as the application runs them: a scripted `fail` answers with an error, a
/// `throttle` with Lambda's TooManyRequestsException (retryable), and a `timeout` never answers
/// within the hook's timeout (none of them acts); `acted-timeout` acts and then does not answer
/// in time (a Lambda that timed out may have acted: Lambda Invoke, "Error handling"); otherwise
/// the hook acts on the application at once — freeze refuses writes, switch points both tiers
/// at `to`, unfreeze lets writes in.
#[async_trait]
impl Hooks for World {
    async fn call(
        &self,
        hook: &Hook,
        headers: &ResolvedHeaders,
        payload: &Value,
    ) -> Result<Value, PortError> {
        let verdict = {
            let mut st = self.st();
            self.enter(&mut st, "hooks", "Call")?;
            if let Some(missing) = hook
                .url
                .as_deref()
                .and_then(|u| self.unauthorized(u, headers))
            {
                // Refused before the application saw it: the hook did not act.
                st.last_hook = Some((String::new(), false));
                return Err(PortError::new(
                    "hooks",
                    PortErrorKind::Other,
                    "HookFailed",
                    format!("{} answered HTTP 401 ({missing})", hook.target()),
                ));
            }
            st.counters.hook_calls += 1;
            let verdict = self
                .spec
                .hooks
                .get(hook.target())
                .and_then(|c| step_value(c, self.t()))
                .unwrap_or_else(|| "ok".into());
            if !matches!(verdict.as_str(), "ok" | "acted-timeout") {
                // A call that did not act still separates two calls of another action.
                st.last_hook = Some((String::new(), false));
            }
            verdict
        };
        let timed_out = || {
            PortError::new(
                "hooks",
                PortErrorKind::Other,
                "HookTimedOut",
                format!(
                    "{} did not answer within {}s",
                    hook.target(),
                    hook.timeout_seconds
                ),
            )
        };
        match verdict.as_str() {
            "timeout" => {
                tokio::time::sleep(std::time::Duration::from_secs(hook.timeout_seconds)).await;
                Err(timed_out())
            }
            "fail" => Err(PortError::new(
                "hooks",
                PortErrorKind::Other,
                "HookFailed",
                format!("{} answered with an error", hook.target()),
            )),
            "throttle" => Err(PortError::new(
                "hooks",
                PortErrorKind::Throttled,
                "TooManyRequestsException",
                format!("{}: Rate exceeded", hook.target()),
            )),
            _ => {
                self.act(payload, verdict != "acted-timeout")?;
                if verdict == "acted-timeout" {
                    tokio::time::sleep(std::time::Duration::from_secs(hook.timeout_seconds)).await;
                    return Err(timed_out());
                }
                Ok(json!({"ok": true}))
            }
        }
    }
}

impl World {
    /// What a data hook does to the application.
    fn act(&self, payload: &Value, answers: bool) -> Result<(), PortError> {
        let mut st = self.st();
        self.settle(&mut st);
        let action = payload.get("action").and_then(Value::as_str);
        let key = match action {
            Some("freeze") => {
                st.app.frozen = true;
                "freeze".to_string()
            }
            Some("unfreeze") => {
                st.app.frozen = false;
                "unfreeze".to_string()
            }
            Some("switch") => {
                let to = match payload.get("to").and_then(Value::as_str) {
                    Some("green") => Db::Green,
                    Some("blue") => Db::Blue,
                    other => {
                        return Err(PortError::new(
                            "hooks",
                            PortErrorKind::Other,
                            "HookFailed",
                            format!("switch to {other:?}: the hook needs to: green | blue"),
                        ))
                    }
                };
                st.app.blue_tier = to;
                st.app.green_tier = to;
                format!("switch:{}", if to == Db::Green { "green" } else { "blue" })
            }
            other => {
                return Err(PortError::new(
                    "hooks",
                    PortErrorKind::Other,
                    "HookFailed",
                    format!("unknown action {other:?}"),
                ))
            }
        };
        if matches!(&st.last_hook, Some((last, true)) if *last == key) {
            *st.counters.hooks_repeated.entry(key.clone()).or_default() += 1;
        }
        *st.counters.hooks_acted.entry(key.clone()).or_default() += 1;
        st.last_hook = Some((key, answers));
        Ok(())
    }
}
