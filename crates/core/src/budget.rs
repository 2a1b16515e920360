//! One account's Route 53 request budget, shared by every cutover running in it.
//!
//! Route 53 answers at most five API requests a second per account, for all callers together,
//! and throttles the rest (`Throttling`, "Rate exceeded"; "Route 53 API requests",
//! https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DNSLimitations.html#limits-api-requests).
//! Cutovers that each pace themselves still exceed it together, so every Route 53 request of
//! every step goes through [`BudgetedRouter`]: it first books a slot in the run table
//! ([`RunStore::book_slot`]). Slots are `1 / rate` apart and served in the order they were
//! booked, so while requests wait the budget is spent in full, and cutover never exceeds it
//! itself. A request whose slot would be further away than a step may wait is not booked: the
//! step ends `Retryable` and the state machine's retry (with back-off) asks again later.
//!
//! The other way, kept for comparison (`Coordination::Backoff`): send at once and, when
//! throttled, wait a jittered, growing delay within the same time budget. docs/performance.md
//! ("Route 53 shared by every cutover") has both measured on 200 cutovers at once.

use crate::model::{Change, ChangeInfo, RecordSet, RecordType};
use crate::ports::{Booking, Clock, PortError, PortErrorKind, RunStore, TrafficRouter};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The run table's name for the budget.
pub const ROUTE53_BUDGET: &str = "route53";
/// Requests a second for all cutovers of an account together: Route 53's documented quota.
pub const DEFAULT_ROUTE53_RATE: f64 = 5.0;
/// How long one request may wait in-step for its slot (or, backing off, for an answer that is
/// not throttled). The functions time out after 30 s (`Globals.Function.Timeout` in
/// template.yaml); the rest is for the call itself.
pub const MAX_WAIT_SECONDS: i64 = 20;

/// How cutovers in one account share Route 53.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coordination {
    /// Book a slot of the shared budget in the run table before each request.
    #[default]
    Shared,
    /// Send at once; when throttled, back off (full jitter, doubling from 200 ms up to 5 s)
    /// within the same time budget.
    Backoff,
}

impl std::str::FromStr for Coordination {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shared" => Ok(Coordination::Shared),
            "backoff" => Ok(Coordination::Backoff),
            other => Err(format!("'{other}' is not shared or backoff")),
        }
    }
}

/// A [`TrafficRouter`] whose every request first waits for its share of the account's budget.
pub struct BudgetedRouter {
    inner: Arc<dyn TrafficRouter>,
    /// The run table's name for this account's budget.
    budget: String,
    store: Arc<dyn RunStore>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    coordination: Coordination,
}

impl BudgetedRouter {
    /// `inner` behind the budget. `rate`: requests a second for every cutover of the account
    /// together (finite, > 0).
    pub fn wrap(
        inner: Arc<dyn TrafficRouter>,
        store: Arc<dyn RunStore>,
        clock: Arc<dyn Clock>,
        rate: f64,
        coordination: Coordination,
    ) -> Arc<dyn TrafficRouter> {
        Self::wrap_in(inner, store, clock, rate, coordination, None)
    }

    /// [`BudgetedRouter::wrap`] for the Route 53 of another account (`dns.roleArn`): each
    /// account has its own quota, so its own budget (`route53#<account>` in the run table).
    pub fn wrap_in(
        inner: Arc<dyn TrafficRouter>,
        store: Arc<dyn RunStore>,
        clock: Arc<dyn Clock>,
        rate: f64,
        coordination: Coordination,
        account: Option<&str>,
    ) -> Arc<dyn TrafficRouter> {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            DEFAULT_ROUTE53_RATE
        };
        Arc::new(BudgetedRouter {
            inner,
            budget: match account {
                Some(a) => format!("{ROUTE53_BUDGET}#{a}"),
                None => ROUTE53_BUDGET.into(),
            },
            store,
            clock,
            interval: Duration::microseconds((1_000_000.0 / rate).round() as i64),
            coordination,
        })
    }

    async fn sleep_until(&self, at: DateTime<Utc>) {
        if let Ok(d) = (at - self.clock.now()).to_std() {
            if !d.is_zero() {
                self.clock.sleep(d).await;
            }
        }
    }

    /// Runs `call` within the budget, retrying throttled answers until `MAX_WAIT_SECONDS` are
    /// spent. `key` only spreads the back-off's jitter between callers.
    async fn within_budget<T, F, Fut>(&self, key: &str, call: F) -> Result<T, PortError>
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, PortError>> + Send,
        T: Send,
    {
        let deadline = self.clock.now() + Duration::seconds(MAX_WAIT_SECONDS);
        let mut attempt = 0u32;
        loop {
            if self.coordination == Coordination::Shared {
                let now = self.clock.now();
                match self
                    .store
                    .book_slot(&self.budget, now, self.interval, deadline)
                    .await
                    .map_err(store_error)?
                {
                    Booking::Booked(at) => self.sleep_until(at).await,
                    Booking::Full(next) => return Err(full(now, next)),
                }
            }
            match call().await {
                Err(e) if e.kind == PortErrorKind::Throttled => {
                    // Another caller in the account spent the budget. Shared: book the next
                    // slot. Backoff: wait, longer each time.
                    let now = self.clock.now();
                    if now >= deadline {
                        return Err(e);
                    }
                    if self.coordination == Coordination::Backoff {
                        let wait = backoff(attempt, key, now);
                        if now + wait > deadline {
                            return Err(e);
                        }
                        self.sleep_until(now + wait).await;
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// What a change batch is about, for telling callers apart: its first record's name (the zone
/// for an empty batch).
pub fn change_key<'a>(zone_id: &'a str, changes: &'a [Change]) -> &'a str {
    changes.first().map_or(zone_id, |c| c.record.name.as_str())
}

/// A full budget is throttling by another name: the step ends Retryable.
fn full(now: DateTime<Utc>, next: DateTime<Utc>) -> PortError {
    PortError::new(
        "route53",
        PortErrorKind::Throttled,
        "BudgetBooked",
        format!(
            "the account's Route 53 budget is booked for the next {:.1}s by other cutovers",
            (next - now).num_milliseconds() as f64 / 1000.0
        ),
    )
}

/// The run table's errors while booking: a lost race after the store's own retries is Busy
/// (retried); a missing table or permission stays what it is.
fn store_error(e: PortError) -> PortError {
    let kind = match e.kind {
        PortErrorKind::Conflict => PortErrorKind::Busy,
        k => k,
    };
    PortError { kind, ..e }
}

/// Full jitter over 200 ms doubling up to 5 s; deterministic for one (key, attempt, time), so
/// simulated runs replay.
fn backoff(attempt: u32, key: &str, now: DateTime<Utc>) -> Duration {
    let cap_ms = (200u64 << attempt.min(5)).min(5_000);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (key, attempt, now.timestamp_micros()).hash(&mut h);
    Duration::milliseconds((h.finish() % (cap_ms + 1)) as i64)
}

#[async_trait]
impl TrafficRouter for BudgetedRouter {
    async fn records(
        &self,
        zone_id: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RecordSet>, PortError> {
        self.within_budget(name, || self.inner.records(zone_id, name, record_type))
            .await
    }

    async fn change(
        &self,
        zone_id: &str,
        changes: &[Change],
        comment: &str,
    ) -> Result<ChangeInfo, PortError> {
        self.within_budget(change_key(zone_id, changes), || {
            self.inner.change(zone_id, changes, comment)
        })
        .await
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, PortError> {
        self.within_budget(change_id, || self.inner.change_status(change_id))
            .await
    }
}
