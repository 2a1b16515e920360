//! Route 53 traffic router: exact record reads (paginated), atomic change batches, GetChange,
//! a client-side rate limit and retries with back-off and full jitter on Throttling and
//! PriorRequestNotComplete.

use crate::errors::{build_err, to_chrono, Codes};
use async_trait::async_trait;
use aws_sdk_route53::types::{
    AliasTarget as SdkAliasTarget, Change as R53Change, ChangeAction as R53Action, ChangeBatch,
    ChangeStatus as R53Status, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;
use cutover_core::model::{
    normalize_name, AliasTarget, Change, ChangeAction, ChangeInfo, ChangeStatus, RecordSet,
    RecordType,
};
use cutover_core::ports::{PortError, PortErrorKind, TrafficRouter};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

const SERVICE: &str = "route53";
const INVALID: &[&str] = &["InvalidChangeBatch", "InvalidInput"];
const NOT_FOUND: &[&str] = &["NoSuchHostedZone", "NoSuchChange"];
const CODES: Codes = Codes {
    service: SERVICE,
    invalid: INVALID,
    not_found: NOT_FOUND,
    conflict: &[],
};

/// Spaces calls evenly: at most `per_second` starts per second. Route 53's quota is five requests
/// per second per account, so the default of 4 leaves room for other callers.
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            4.0
        };
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(None),
        }
    }

    pub async fn acquire(&self) {
        let wait_until = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = match *next {
                Some(t) if t > now => t,
                _ => now,
            };
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(wait_until).await;
    }
}

/// Back-off for retried calls: attempt n waits a random time in [0, min(cap, base * 2^n)].
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            max_attempts: 6,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.min(16)));
        exp.min(self.cap).mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// A cheap source of jitter without pulling in an RNG crate: the low bits of the clock.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[derive(Clone)]
pub struct Route53Router {
    client: crate::Lazy<Client>,
    limiter: Arc<RateLimiter>,
    backoff: Backoff,
}

fn rr_type(t: RecordType) -> RrType {
    match t {
        RecordType::A => RrType::A,
        RecordType::AAAA => RrType::Aaaa,
        RecordType::CNAME => RrType::Cname,
    }
}

/// Reads a record exactly, alias target and health check included: a DELETE built from it must
/// match what Route 53 holds, and a rollback must restore both.
fn to_record(r: &ResourceRecordSet) -> Option<RecordSet> {
    let record_type = match r.r#type() {
        RrType::A => RecordType::A,
        RrType::Aaaa => RecordType::AAAA,
        RrType::Cname => RecordType::CNAME,
        _ => return None,
    };
    Some(RecordSet {
        name: r.name().to_string(),
        record_type,
        set_identifier: r.set_identifier().map(str::to_string),
        weight: r.weight().and_then(|w| u32::try_from(w).ok()),
        ttl: r.ttl().and_then(|t| u64::try_from(t).ok()),
        values: r
            .resource_records()
            .iter()
            .map(|v| v.value().to_string())
            .collect(),
        alias_target: r.alias_target().map(|a| AliasTarget {
            hosted_zone_id: a.hosted_zone_id().to_string(),
            dns_name: a.dns_name().to_string(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
        health_check_id: r.health_check_id().map(str::to_string),
        failover: r.failover().map(|f| f.as_str().to_string()),
        region: r.region().map(|x| x.as_str().to_string()),
        geo_location: r.geo_location().map(|g| cutover_core::model::GeoLocation {
            continent_code: g.continent_code().map(str::to_string),
            country_code: g.country_code().map(str::to_string),
            subdivision_code: g.subdivision_code().map(str::to_string),
        }),
        multi_value_answer: r.multi_value_answer(),
        cidr_routing_config: r.cidr_routing_config().map(|c| {
            cutover_core::model::CidrRoutingConfig {
                collection_id: c.collection_id().to_string(),
                location_name: c.location_name().to_string(),
            }
        }),
    })
}

/// An alias record is written without TTL and resource records (ResourceRecordSet,
/// https://docs.aws.amazon.com/Route53/latest/APIReference/API_ResourceRecordSet.html).
fn to_sdk_record(r: &RecordSet) -> Result<ResourceRecordSet, PortError> {
    let mut b = ResourceRecordSet::builder()
        .name(&r.name)
        .r#type(rr_type(r.record_type))
        .set_health_check_id(r.health_check_id.clone());
    if let (Some(id), Some(w)) = (&r.set_identifier, r.weight) {
        b = b.set_identifier(id).weight(i64::from(w));
    }
    // A record of another routing policy is written back exactly as it was read (the cutover
    // refuses such record sets at pre-flight, so only a restore of one could write it).
    if r.other_routing_policy().is_some() {
        use aws_sdk_route53::types::{
            CidrRoutingConfig as SdkCidr, GeoLocation as SdkGeo, ResourceRecordSetFailover,
            ResourceRecordSetRegion,
        };
        b = b
            .set_set_identifier(r.set_identifier.clone())
            .set_failover(r.failover.as_deref().map(ResourceRecordSetFailover::from))
            .set_region(r.region.as_deref().map(ResourceRecordSetRegion::from))
            .set_multi_value_answer(r.multi_value_answer)
            .set_geo_location(r.geo_location.as_ref().map(|g| {
                SdkGeo::builder()
                    .set_continent_code(g.continent_code.clone())
                    .set_country_code(g.country_code.clone())
                    .set_subdivision_code(g.subdivision_code.clone())
                    .build()
            }));
        if let Some(c) = &r.cidr_routing_config {
            b = b.cidr_routing_config(
                SdkCidr::builder()
                    .collection_id(&c.collection_id)
                    .location_name(&c.location_name)
                    .build()
                    .map_err(|e| build_err(SERVICE, e))?,
            );
        }
    }
    match &r.alias_target {
        Some(a) => {
            b = b.alias_target(
                SdkAliasTarget::builder()
                    .hosted_zone_id(&a.hosted_zone_id)
                    .dns_name(&a.dns_name)
                    .evaluate_target_health(a.evaluate_target_health)
                    .build()
                    .map_err(|e| build_err(SERVICE, e))?,
            );
        }
        None => {
            b = b.set_ttl(r.ttl.map(|t| t as i64));
            for v in &r.values {
                b = b.resource_records(
                    ResourceRecord::builder()
                        .value(v)
                        .build()
                        .map_err(|e| build_err(SERVICE, e))?,
                );
            }
        }
    }
    b.build().map_err(|e| build_err(SERVICE, e))
}

fn change_info(c: &aws_sdk_route53::types::ChangeInfo) -> ChangeInfo {
    ChangeInfo {
        // GetChange wants the bare id; the API returns "/change/ID".
        id: c.id().trim_start_matches("/change/").to_string(),
        status: if *c.status() == R53Status::Insync {
            ChangeStatus::Insync
        } else {
            ChangeStatus::Pending
        },
        submitted_at: to_chrono(c.submitted_at()),
    }
}

impl Route53Router {
    pub fn new(client: impl Into<crate::Lazy<Client>>, requests_per_second: f64) -> Self {
        Route53Router {
            client: client.into(),
            limiter: Arc::new(RateLimiter::new(requests_per_second)),
            backoff: Backoff::default(),
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Runs `call` under the rate limit, retrying throttling and busy-zone answers.
    async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, PortError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, PortError>>,
    {
        let mut attempt = 0;
        loop {
            self.limiter.acquire().await;
            match call().await {
                Err(e)
                    if matches!(e.kind, PortErrorKind::Throttled | PortErrorKind::Busy)
                        && attempt + 1 < self.backoff.max_attempts =>
                {
                    tracing::warn!(code = %e.code, attempt, "route53 call retried");
                    tokio::time::sleep(self.backoff.delay(attempt, jitter())).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl TrafficRouter for Route53Router {
    async fn records(
        &self,
        zone_id: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RecordSet>, PortError> {
        let want = normalize_name(name);
        let mut out = Vec::new();
        let (mut next_name, mut next_type, mut next_id) = (
            Some(format!("{want}.")),
            Some(rr_type(record_type)),
            None::<String>,
        );
        loop {
            let (nn, nt, ni) = (next_name.clone(), next_type.clone(), next_id.clone());
            let page = self
                .call(|| {
                    let req = self
                        .client
                        .list_resource_record_sets()
                        .hosted_zone_id(zone_id)
                        .set_start_record_name(nn.clone())
                        .set_start_record_type(nt.clone())
                        .set_start_record_identifier(ni.clone());
                    async move { req.send().await.map_err(|e| CODES.map(e)) }
                })
                .await?;
            let mut past = false;
            for r in page.resource_record_sets() {
                if normalize_name(r.name()) != want {
                    past = true;
                    break;
                }
                if *r.r#type() == rr_type(record_type) {
                    out.extend(to_record(r));
                }
            }
            if past || !page.is_truncated() {
                break;
            }
            next_name = page.next_record_name().map(str::to_string);
            next_type = page.next_record_type().cloned();
            next_id = page.next_record_identifier().map(str::to_string);
        }
        out.sort_by(|a, b| a.set_identifier.cmp(&b.set_identifier));
        Ok(out)
    }

    async fn change(
        &self,
        zone_id: &str,
        changes: &[Change],
        comment: &str,
    ) -> Result<ChangeInfo, PortError> {
        let mut sdk = Vec::with_capacity(changes.len());
        for c in changes {
            let action = match c.action {
                ChangeAction::Create => R53Action::Create,
                ChangeAction::Delete => R53Action::Delete,
                ChangeAction::Upsert => R53Action::Upsert,
            };
            sdk.push(
                R53Change::builder()
                    .action(action)
                    .resource_record_set(to_sdk_record(&c.record)?)
                    .build()
                    .map_err(|e| build_err(SERVICE, e))?,
            );
        }
        let batch = ChangeBatch::builder()
            .comment(comment)
            .set_changes(Some(sdk))
            .build()
            .map_err(|e| build_err(SERVICE, e))?;
        let resp = self
            .call(|| async {
                self.client
                    .change_resource_record_sets()
                    .hosted_zone_id(zone_id)
                    .change_batch(batch.clone())
                    .send()
                    .await
                    .map_err(|e| CODES.map(e))
            })
            .await?;
        resp.change_info().map(change_info).ok_or_else(|| {
            PortError::new(
                SERVICE,
                PortErrorKind::Other,
                "NoChangeInfo",
                "ChangeResourceRecordSets returned no ChangeInfo",
            )
        })
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, PortError> {
        let resp = self
            .call(|| async {
                self.client
                    .get_change()
                    .id(change_id)
                    .send()
                    .await
                    .map_err(|e| CODES.map(e))
            })
            .await?;
        resp.change_info().map(change_info).ok_or_else(|| {
            PortError::new(
                SERVICE,
                PortErrorKind::Other,
                "NoChangeInfo",
                "GetChange returned no ChangeInfo",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_calls() {
        let l = RateLimiter::new(4.0);
        let start = Instant::now();
        for _ in 0..9 {
            l.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(2),
            "9 calls at 4/s: the 9th starts at 2 s"
        );
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(200));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(1600));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(5));
        assert_eq!(b.delay(10, 0.0), Duration::ZERO);
    }
}
