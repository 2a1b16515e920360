//! Route 53's side of the steps (the `dns` router): pre-flight and the snapshot, the weighted pair
//! each shift writes, the restore batch, CheckDnsSync and the collapse to a simple record. The
//! steps that serve both routers (traffic.rs, validate.rs) match on `plan::Router` and call here;
//! steps/alb.rs is the other router's side.

use super::{audit, check_run_id, event, load_run, remember, stored_result, Deps};
use crate::error::StepError;
use crate::model::{Change, ChangeAction, ChangeStatus, RecordSet, Routing};
use crate::plan::{DnsPlan, Plan, Router};
use crate::ports::{PortError, PortErrorKind};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long a change may stay PENDING before the run gives up on it (Route 53 says changes
/// "generally propagate within 60 seconds"; this leaves room for its occasional delays).
pub const SYNC_DEADLINE_SECONDS: i64 = 900;
/// The `WaitForDnsSync` / `WaitForRollbackSync` interval in `cutover.asl.json`.
pub const SYNC_POLL_SECONDS: u64 = 10;
/// The weighted pair for `green` percent: Route 53 weights green = w, blue = 100 - w. Value
/// records get `dns.ttl`; alias records carry no TTL (ResourceRecordSet: "If you're creating or
/// updating an alias resource record set, omit TTL",
/// https://docs.aws.amazon.com/Route53/latest/APIReference/API_ResourceRecordSet.html). Blue
/// keeps the health check its record already has (`current`: the records as Route 53 serves them
/// now); green gets the plan's, or none.
fn weighted_pair(d: &DnsPlan, green: u32, name: &str, current: &[RecordSet]) -> Vec<RecordSet> {
    let w = Plan::weights_for(green);
    let blue_check = current
        .iter()
        .find(|r| {
            r.set_identifier.as_deref() == Some(d.blue.set_identifier.as_str())
                || (!r.is_weighted() && r.routes_to(&d.blue.routing()))
        })
        .and_then(|r| r.health_check_id.clone())
        .or_else(|| d.blue.health_check_id.clone());
    vec![
        side_record(d, name, &d.blue, w.blue, blue_check),
        side_record(d, name, &d.green, w.green, d.green.health_check_id.clone()),
    ]
}

fn side_record(
    d: &DnsPlan,
    name: &str,
    target: &crate::plan::Target,
    weight: u32,
    health_check_id: Option<String>,
) -> RecordSet {
    let (ttl, values, alias_target) = match target.routing() {
        Routing::Value(v) => (Some(d.ttl), v, None),
        Routing::Alias(a) => (None, vec![], Some(a)),
    };
    RecordSet {
        name: name.to_string(),
        record_type: d.record_type,
        set_identifier: Some(target.set_identifier.clone()),
        weight: Some(weight),
        ttl,
        values,
        alias_target,
        health_check_id,
        failover: None,
        region: None,
        geo_location: None,
        multi_value_answer: None,
        cidr_routing_config: None,
    }
}

/// One change batch, waiting out a busy zone in-step before giving the error to the state
/// machine's retry: a change to a zone that is still applying another gets
/// PriorRequestNotComplete ("wait, in intervals of increasing duration, before you try the
/// request again", ChangeResourceRecordSets errors,
/// https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html).
/// Throttling is not retried here: `deps.router` books every request in the account's shared
/// budget and waits out throttling itself (cutover_core::budget).
pub(super) async fn change_waiting(
    deps: &Deps,
    zone: &str,
    changes: &[Change],
    comment: &str,
) -> Result<crate::model::ChangeInfo, crate::ports::PortError> {
    let mut wait = std::time::Duration::from_millis(1100);
    for _ in 0..3 {
        match deps.router.change(zone, changes, comment).await {
            Err(e) if e.kind == crate::ports::PortErrorKind::Busy => {
                deps.clock.sleep(wait).await;
                wait *= 2;
            }
            other => return other,
        }
    }
    deps.router.change(zone, changes, comment).await
}

pub(super) fn route53_err(e: crate::ports::PortError) -> StepError {
    StepError::from_port(e, |e| StepError::TrafficShiftFailed(e.to_string()))
}

/// The Route 53 batch that turns what DNS serves now into the weighted pair at `weight`: every
/// record not in the pair deleted (a simple record cannot live beside weighted ones), both sides
/// UPSERT even when already in place (the change id it returns is what the run waits on).
/// The record sets of the plan's name and type as Route 53 serves them, and the name exactly as
/// Route 53 spells it (the plan's when none exists).
async fn served(d: &DnsPlan, deps: &Deps) -> Result<(Vec<RecordSet>, String), StepError> {
    let current = deps
        .router
        .records(&d.hosted_zone_id, &d.record_name, d.record_type)
        .await
        .map_err(route53_err)?;
    let name = current
        .first()
        .map(|r| r.name.clone())
        .unwrap_or_else(|| d.record_name.clone());
    Ok((current, name))
}

pub(super) async fn shift_batch(
    d: &DnsPlan,
    deps: &Deps,
    weight: u32,
) -> Result<Vec<Change>, StepError> {
    let (current, name) = served(d, deps).await?;
    let desired = weighted_pair(d, weight, &name, &current);
    let mut changes = Vec::new();
    for r in &current {
        let wanted = desired.iter().any(|w| w.set_identifier == r.set_identifier);
        if !r.is_weighted() || !wanted {
            changes.push(Change {
                action: ChangeAction::Delete,
                record: r.clone(),
            });
        }
    }
    changes.extend(desired.into_iter().map(|w| Change {
        action: ChangeAction::Upsert,
        record: w,
    }));
    Ok(changes)
}

/// The batch that puts the snapshot back exactly: DELETE what is not in it, UPSERT what is
/// missing (UPSERT rather than CREATE, so a retried restore cannot trip over its own records).
/// Empty when DNS already is the snapshot.
pub(super) async fn restore_batch(
    d: &DnsPlan,
    deps: &Deps,
    snapshot: &[RecordSet],
) -> Result<Vec<Change>, PortError> {
    let current = deps
        .router
        .records(&d.hosted_zone_id, &d.record_name, d.record_type)
        .await?;
    let mut changes: Vec<Change> = current
        .iter()
        .filter(|r| !snapshot.contains(r))
        .map(|r| Change {
            action: ChangeAction::Delete,
            record: r.clone(),
        })
        .collect();
    changes.extend(
        snapshot
            .iter()
            .filter(|r| !current.contains(r))
            .map(|r| Change {
                action: ChangeAction::Upsert,
                record: r.clone(),
            }),
    );
    Ok(changes)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollapseInput {
    pub run_id: String,
    pub plan: Plan,
    /// Always true: what tells the shift-traffic function this is the collapse.
    pub collapse: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollapseOutput {
    /// None when DNS already was the simple record.
    pub change_id: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
}

const COLLAPSE_KEY: &str = "collapse";

/// `dns.finalForm: simple`, after the last step baked healthy: the weighted pair (green 100,
/// blue 0) becomes one simple record in green's form (its alias, or its value with `dns.ttl`),
/// keeping green's health check, in one batch. Route 53 applies a batch all or nothing
/// (ChangeResourceRecordSets), so DNS is never without the name in between.
pub async fn collapse_to_simple(
    input: CollapseInput,
    deps: &Deps,
) -> Result<CollapseOutput, StepError> {
    check_run_id(&input.run_id)?;
    let deps = &deps.reach(&input.plan, &input.run_id);
    if !input.collapse {
        return Err(StepError::invalid("collapse must be true"));
    }
    let plan = &input.plan;
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = stored_result(&run, COLLAPSE_KEY) {
        return done;
    }
    if run.steps.contains_key(super::traffic::ROLLBACK_KEY) {
        return Err(StepError::invalid(
            "a rolled-back run is never collapsed to green",
        ));
    }
    let Router::Dns(d) = super::router(plan)? else {
        return Err(StepError::invalid(
            "only a dns plan collapses to a simple record (dns.finalForm)",
        ));
    };
    let (current, name) = served(d, deps).await?;
    let green_now = current
        .iter()
        .find(|r| r.set_identifier.as_deref() == Some(d.green.set_identifier.as_str()));
    let mut simple = side_record(
        d,
        &name,
        &d.green,
        0,
        green_now
            .and_then(|g| g.health_check_id.clone())
            .or_else(|| d.green.health_check_id.clone()),
    );
    simple.set_identifier = None;
    simple.weight = None;
    let out = if current.len() == 1
        && !current[0].is_weighted()
        && current[0].routes_to(&d.green.routing())
    {
        CollapseOutput {
            change_id: None,
            submitted_at: None,
        }
    } else {
        let at_green = current.iter().all(|r| {
            let is_green = r.set_identifier.as_deref() == Some(d.green.set_identifier.as_str());
            r.is_weighted()
                && (if is_green {
                    r.weight == Some(100)
                } else {
                    r.weight == Some(0)
                })
        });
        if !at_green || green_now.is_none() {
            return Err(StepError::TrafficShiftFailed(format!(
                "{} is not the weighted pair at green 100: not collapsing",
                d.record_name
            )));
        }
        let mut changes: Vec<Change> = current
            .iter()
            .map(|r| Change {
                action: ChangeAction::Delete,
                record: r.clone(),
            })
            .collect();
        changes.push(Change {
            action: ChangeAction::Upsert,
            record: simple.clone(),
        });
        let info = change_waiting(
            deps,
            &d.hosted_zone_id,
            &changes,
            &format!("cutover {} final form: simple", input.run_id),
        )
        .await
        .map_err(route53_err)?;
        CollapseOutput {
            change_id: Some(info.id),
            submitted_at: Some(info.submitted_at),
        }
    };
    let out = remember(deps, &input.run_id, COLLAPSE_KEY, &out, |_| {}).await?;
    let mut ev = event(
        &input.run_id,
        COLLAPSE_KEY,
        "CollapseToSimpleRecord",
        "collapsed-to-simple",
        deps.clock.now(),
    );
    ev.message = match &out.change_id {
        Some(id) => format!(
            "{} is now one simple record: {}; change {id}",
            d.record_name,
            simple.describe()
        ),
        None => format!("{} already is one simple record", d.record_name),
    };
    audit(deps, ev).await?;
    Ok(out)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckSyncInput {
    pub run_id: String,
    /// The run's plan: whose account the change was made in (`dns.roleArn`). Absent (an
    /// execution started before the field existed), the stack's own account.
    #[serde(default)]
    pub plan: Option<Plan>,
    pub change_id: String,
    pub submitted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOutput {
    pub in_sync: bool,
    pub synced_at: Option<DateTime<Utc>>,
}

pub async fn check_dns_sync(input: CheckSyncInput, deps: &Deps) -> Result<SyncOutput, StepError> {
    check_run_id(&input.run_id)?;
    let reached;
    let deps = match &input.plan {
        Some(plan) => {
            reached = deps.reach(plan, &input.run_id);
            &reached
        }
        None => deps,
    };
    let info = deps
        .router
        .change_status(&input.change_id)
        .await
        .map_err(route53_err)?;
    let now = deps.clock.now();
    match info.status {
        ChangeStatus::Insync => {
            let mut ev = event(
                &input.run_id,
                format!("sync#{}", input.change_id),
                "CheckDnsSync",
                "dns-in-sync",
                now,
            );
            ev.message = format!("change {} is INSYNC", input.change_id);
            audit(deps, ev).await?;
            Ok(SyncOutput {
                in_sync: true,
                synced_at: Some(now),
            })
        }
        ChangeStatus::Pending
            if now - input.submitted_at > Duration::seconds(SYNC_DEADLINE_SECONDS) =>
        {
            Err(StepError::TrafficShiftFailed(format!(
                "change {} still PENDING after {SYNC_DEADLINE_SECONDS}s",
                input.change_id
            )))
        }
        ChangeStatus::Pending => Ok(SyncOutput {
            in_sync: false,
            synced_at: None,
        }),
    }
}

/// Reads what DNS serves now and checks it is the plan's blue: a simple record with the blue
/// value, or a weighted pair at blue 100 / green 0 left by an earlier, rolled-back run.
pub(super) async fn preflight(
    d: &DnsPlan,
    deps: &Deps,
    problems: &mut Vec<String>,
) -> Result<Vec<RecordSet>, StepError> {
    if let Some((field, why)) = dns_outside_allow_lists(
        d,
        deps.stack.allowed_record_names.as_deref(),
        deps.stack.allowed_zone_ids.as_deref(),
    ) {
        problems.push(format!("dns.{field}: {why}"));
        if field == "hostedZoneId" {
            // The roles may not even read a zone outside the list.
            return Ok(vec![]);
        }
    }
    let records = match deps
        .router
        .records(&d.hosted_zone_id, &d.record_name, d.record_type)
        .await
    {
        Ok(r) => r,
        Err(e) if e.kind == PortErrorKind::NotFound => {
            problems.push(format!(
                "dns.hostedZoneId: no hosted zone {}{}",
                d.hosted_zone_id,
                crate::accounts::looked_in("dns", &d.role_arn, deps.stack.account.as_deref())
            ));
            return Ok(vec![]);
        }
        Err(e) => {
            return Err(StepError::from_port(e, |e| {
                StepError::invalid(format!("dns: {e}"))
            }))
        }
    };
    // Only simple and weighted records can be shifted by weight. A record set of another routing
    // policy (failover, latency, geolocation, multivalue answer, IP-based) is refused, naming it,
    // before anything changes: rewriting it as weighted records would drop its policy.
    if let Some(policy) = records.iter().find_map(RecordSet::other_routing_policy) {
        problems.push(format!(
            "dns.recordName: {} {} uses {policy} routing ({} record(s)); the cutover shifts simple or weighted records only, so DNS is left as it is. Move the name to a simple or weighted record first, or cut over a name of its own",
            d.record_name,
            d.record_type,
            records.len()
        ));
        return Ok(records);
    }
    let blue_to = d.blue.routing();
    let green_to = d.green.routing();
    match records.as_slice() {
        [] => problems.push(format!(
            "dns.recordName: no {} record {} in zone {}",
            d.record_type, d.record_name, d.hosted_zone_id
        )),
        [only] if !only.is_weighted() => {
            if !only.routes_to(&blue_to) {
                let field = format!("dns.blue.{}", d.blue.routing_field());
                problems.push(format!(
                    "{field}: DNS serves {}, not the plan's blue {}",
                    only.describe(),
                    d.blue.describe()
                ));
            }
        }
        many => {
            let find = |id: &str| {
                many.iter()
                    .find(|r| r.set_identifier.as_deref() == Some(id))
            };
            let blue = find(&d.blue.set_identifier);
            let green = find(&d.green.set_identifier);
            let ok = many.len() == 2
                && blue.is_some_and(|b| b.routes_to(&blue_to) && b.weight.unwrap_or(0) > 0)
                && green.is_some_and(|g| g.routes_to(&green_to) && g.weight == Some(0));
            if !ok {
                problems.push(format!(
                    "dns.recordName: {} serves {} weighted record(s) that are not the plan's blue (weight > 0) and green (weight 0)",
                    d.record_name,
                    many.len()
                ));
            }
        }
    }
    // Resolvers keep an answer for its TTL: with a day-long TTL no shift, and no rollback, takes
    // effect for a day. Alias records have no TTL of their own (Route 53 uses the target's).
    if let Some(ttl) = records.iter().filter_map(|r| r.ttl).max() {
        if ttl > d.max_original_ttl_seconds {
            problems.push(format!(
                "dns.maxOriginalTtlSeconds: {} serves a TTL of {ttl}s, above {}s: resolvers would keep the old answer that long after every shift and rollback. Lower the record's TTL to {}s or less, wait {ttl}s for caches to expire, then start the cutover",
                d.record_name, d.max_original_ttl_seconds, d.ttl.min(d.max_original_ttl_seconds)
            ));
        }
    }
    Ok(records)
}

/// Whether the plan's record lies outside the stack's allow-lists: the field and why. The roles
/// may change only these names (`route53:ChangeResourceRecordSetsNormalizedRecordNames`, lower
/// case without the trailing dot) in these zones, so a plan outside them would fail with
/// AccessDenied at its first shift, hours in.
pub fn dns_outside_allow_lists(
    dns: &crate::plan::DnsPlan,
    allowed_records: Option<&[String]>,
    allowed_zones: Option<&[String]>,
) -> Option<(&'static str, String)> {
    let name = crate::model::normalize_name(&dns.record_name);
    if let Some(allowed) = allowed_records {
        if !allowed
            .iter()
            .any(|r| crate::model::normalize_name(r) == name)
        {
            return Some((
                "recordName",
                format!("'{name}' is not among the stack's AllowedRecordNames ({}): the stack may not change it", allowed.join(", ")),
            ));
        }
    }
    if let Some(zones) = allowed_zones {
        if !zones.iter().any(|z| z == &dns.hosted_zone_id) {
            return Some((
                "hostedZoneId",
                format!(
                    "'{}' is not among the stack's AllowedHostedZoneIds ({}): the stack may not change it",
                    dns.hosted_zone_id,
                    zones.join(", ")
                ),
            ));
        }
    }
    None
}
