//! ShiftTrafficWeight, CheckDnsSync and RollbackCutover over Route 53 weighted records.

use super::{audit, check_run_id, event, load_run, remember, stored_result, update_run, Deps};
use crate::error::{ErrorInfo, StepError};
use crate::model::{Change, ChangeAction, ChangeStatus, RecordSet, Routing, Weights};
use crate::plan::{DnsPlan, Plan, Router};
use crate::ports::PortErrorKind;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long a change may stay PENDING before the run gives up on it (Route 53 says changes
/// "generally propagate within 60 seconds"; this leaves room for its occasional delays).
pub const SYNC_DEADLINE_SECONDS: i64 = 900;
/// The `WaitForDnsSync` / `WaitForRollbackSync` interval in `cutover.asl.json`.
pub const SYNC_POLL_SECONDS: u64 = 10;
/// `RollbackCutover`'s Retryable `MaxAttempts` in `cutover.asl.json`: only a backstop for the
/// execution's history; the plan's `rollback.budgetSeconds` is what ends a rollback's attempts.
pub const ROLLBACK_MAX_ATTEMPTS: u64 = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShiftInput {
    pub run_id: String,
    pub plan: Plan,
    pub index: usize,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShiftOutput {
    /// The Route 53 change to wait for; None when the router applied it at once (ALB).
    pub change_id: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub weights: Weights,
}

/// The weighted pair for `green` percent: Route 53 weights green = w, blue = 100 - w. Value
/// records get `dns.ttl`; alias records carry no TTL (ResourceRecordSet: "If you're creating or
/// updating an alias resource record set, omit TTL",
/// https://docs.aws.amazon.com/Route53/latest/APIReference/API_ResourceRecordSet.html). Blue
/// keeps the health check its record already has (`current`: the records as Route 53 serves them
/// now); green gets the plan's, or none.
pub fn weighted_pair(d: &DnsPlan, green: u32, name: &str, current: &[RecordSet]) -> Vec<RecordSet> {
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
async fn change_waiting(
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

fn route53_err(e: crate::ports::PortError) -> StepError {
    StepError::from_port(e, |e| StepError::TrafficShiftFailed(e.to_string()))
}

/// The Route 53 batch that turns what DNS serves now into the weighted pair at `weight`: every
/// record not in the pair deleted (a simple record cannot live beside weighted ones), both sides
/// UPSERT even when already in place (the change id it returns is what the run waits on).
async fn dns_shift_batch(d: &DnsPlan, deps: &Deps, weight: u32) -> Result<Vec<Change>, StepError> {
    let current = deps
        .router
        .records(&d.hosted_zone_id, &d.record_name, d.record_type)
        .await
        .map_err(route53_err)?;
    // Keep the name exactly as Route 53 spells it.
    let name = current
        .first()
        .map(|r| r.name.clone())
        .unwrap_or_else(|| d.record_name.clone());
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

pub async fn shift_traffic(input: ShiftInput, deps: &Deps) -> Result<ShiftOutput, StepError> {
    check_run_id(&input.run_id)?;
    let plan = &input.plan;
    let step = plan.traffic.steps.get(input.index).ok_or_else(|| {
        StepError::invalid(format!("index {} names no traffic step", input.index))
    })?;
    if step.weight != input.weight {
        return Err(StepError::invalid(format!(
            "weight {} differs from traffic.steps[{}].weight {}",
            input.weight, input.index, step.weight
        )));
    }
    let key = format!("shift#{}", input.index);
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = stored_result(&run, &key) {
        return done;
    }
    if let Some(reason) = &run.abort_requested {
        return Err(StepError::Aborted(format!("abort requested: {reason}")));
    }
    // After `promote --full` (docs/controls.md) every later step goes to the last weight.
    let weight = match (run.controls.full_from, plan.traffic.steps.last()) {
        (Some(f), Some(last)) if input.index > f => last.weight,
        _ => input.weight,
    };
    let router = super::router(plan)?;
    // Route 53: the batch that turns what DNS serves into the weighted pair. ALB: green must
    // have enough healthy targets before any more traffic goes to it; nothing moves otherwise.
    let batch = match router {
        Router::Dns(d) => dns_shift_batch(d, deps, weight).await?,
        Router::Alb(a) => {
            if let Some(why) = super::alb::green_short(a, deps).await? {
                return Err(StepError::HealthCheckFailed(vec![format!(
                    "not shifting to green {weight}%: {why}"
                )]));
            }
            vec![]
        }
    };
    let comment = format!(
        "cutover {} step {} -> green {}%",
        input.run_id, input.index, weight
    );
    // The intent first: if the result cannot be stored, the run still knows traffic may have
    // moved (outcome, rollback and the audit trail rely on it).
    update_run(deps, &input.run_id, |rec| {
        rec.steps.insert(
            format!("shift-intent#{}", input.index),
            serde_json::json!({"weight": weight}),
        );
    })
    .await?;
    let mut intent = event(
        &input.run_id,
        format!("{key}#requested"),
        "ShiftTrafficWeight",
        "weights-change-requested",
        deps.clock.now(),
    );
    intent.weights = Some(Plan::weights_for(weight));
    audit(deps, intent).await?;
    let (change_id, submitted_at) = match router {
        Router::Dns(d) => {
            let info = change_waiting(deps, &d.hosted_zone_id, &batch, &comment)
                .await
                .map_err(route53_err)?;
            (Some(info.id), info.submitted_at)
        }
        Router::Alb(a) => {
            let snapshot = run.alb_snapshot.as_deref().unwrap_or_default();
            super::alb::apply(a, deps, snapshot, weight).await?;
            (None, deps.clock.now())
        }
    };
    let out = ShiftOutput {
        change_id,
        submitted_at,
        weights: Plan::weights_for(weight),
    };
    let weights = out.weights;
    let out = remember(deps, &input.run_id, &key, &out, |rec| {
        rec.weights = Some(weights);
        rec.phase = format!("shifting:{}", weight);
        rec.traffic_index = Some(input.index);
    })
    .await?;
    let mut ev = event(
        &input.run_id,
        &key,
        "ShiftTrafficWeight",
        "weights-changed",
        deps.clock.now(),
    );
    ev.weights = Some(out.weights);
    ev.message = match &out.change_id {
        Some(id) => format!("change {id} submitted"),
        None => "applied".into(),
    };
    audit(deps, ev).await?;
    Ok(out)
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
    if !input.collapse {
        return Err(StepError::invalid("collapse must be true"));
    }
    let plan = &input.plan;
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = stored_result(&run, COLLAPSE_KEY) {
        return done;
    }
    if run.steps.contains_key(ROLLBACK_KEY) {
        return Err(StepError::invalid(
            "a rolled-back run is never collapsed to green",
        ));
    }
    let Router::Dns(d) = super::router(plan)? else {
        return Err(StepError::invalid(
            "only a dns plan collapses to a simple record (dns.finalForm)",
        ));
    };
    let current = deps
        .router
        .records(&d.hosted_zone_id, &d.record_name, d.record_type)
        .await
        .map_err(route53_err)?;
    let name = current
        .first()
        .map(|r| r.name.clone())
        .unwrap_or_else(|| d.record_name.clone());
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackInput {
    pub run_id: String,
    pub plan: Plan,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackOutput {
    pub traffic_moved: bool,
    pub change_id: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
}

const ROLLBACK_KEY: &str = "rollback";

/// What a rollback must change to be back at the snapshot.
enum Restore<'a> {
    Dns(&'a DnsPlan, Vec<Change>),
    Alb(&'a crate::alb::AlbPlan, &'a [crate::alb::Action]),
}

/// Restores exactly the snapshot in one batch: DELETE what is not in it, UPSERT what is missing
/// (UPSERT rather than CREATE, so a retried restore cannot trip over its own records).
/// Never touches replication.
pub async fn rollback_cutover(
    input: RollbackInput,
    deps: &Deps,
) -> Result<RollbackOutput, StepError> {
    check_run_id(&input.run_id)?;
    let run = load_run(deps, &input.run_id).await?;
    if let Some(done) = stored_result(&run, ROLLBACK_KEY) {
        return done;
    }
    let now = deps.clock.now();
    // The budget counts from the first attempt; every attempt re-reads DNS and restores the
    // snapshot from whatever it finds, so a half-applied earlier attempt or a concurrent change
    // is corrected too.
    let started = match run.rollback_started_at {
        Some(t) => t,
        None => {
            update_run(deps, &input.run_id, |rec| {
                *rec.rollback_started_at.get_or_insert(now)
            })
            .await?
        }
    };
    let budget = input.plan.rollback.budget_seconds;
    let spent = (now - started).num_seconds().max(0);
    let rb_err = |e: crate::ports::PortError| {
        match e.kind {
        // Retrying cannot help: the zone is gone or the role may not change it.
        PortErrorKind::NotFound | PortErrorKind::Denied => {
            StepError::RollbackFailed(e.to_string())
        }
        _ if spent >= i64::try_from(budget).unwrap_or(i64::MAX) => StepError::RollbackFailed(format!(
            "rollback.budgetSeconds ({budget}s) spent after {spent}s of attempts; DNS is not restored; last error: {e}"
        )),
        // Throttling, a busy zone, a refused batch (DNS changed under us: re-read next time) or
        // any other error: try again, with back-off, within the budget.
        _ => StepError::Retryable(format!("rollback attempt after {spent}s: {e}")),
    }
    };
    // What it takes to be back at the snapshot: a Route 53 batch, or the rule's actions.
    let router = super::router(&input.plan)?;
    let restore: Option<Restore> = match router {
        Router::Dns(d) => {
            let current = deps
                .router
                .records(&d.hosted_zone_id, &d.record_name, d.record_type)
                .await
                .map_err(rb_err)?;
            let snapshot = &run.snapshot;
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
            (!changes.is_empty()).then_some(Restore::Dns(d, changes))
        }
        Router::Alb(a) => {
            let Some(snapshot) = run.alb_snapshot.as_deref() else {
                return Err(StepError::RollbackFailed(
                    "the run holds no snapshot of the rule's actions to restore".into(),
                ));
            };
            let now_actions = super::alb::read(a, deps).await.map_err(rb_err)?;
            (now_actions != snapshot).then_some(Restore::Alb(a, snapshot))
        }
    };
    let reason = input
        .error
        .as_ref()
        .map(|e| e.error.clone())
        .unwrap_or_else(|| "requested".into());
    let confirmed = run.steps.keys().any(|k| k.starts_with("shift#"));
    if restore.is_none() && !confirmed && run.traffic_moved() {
        // A shift was about to be sent but the router holds the snapshot and no shift was confirmed: the
        // DNS found says nothing moved, so the outcome must not claim a rollback.
        update_run(deps, &input.run_id, |rec| {
            rec.steps.retain(|k, _| !k.starts_with("shift-intent#"));
        })
        .await?;
    }
    let comment = format!("cutover {} rollback ({reason})", input.run_id);
    let out = match &restore {
        None => RollbackOutput {
            traffic_moved: confirmed,
            change_id: None,
            submitted_at: None,
        },
        Some(Restore::Dns(d, changes)) => {
            let info = change_waiting(deps, &d.hosted_zone_id, changes, &comment)
                .await
                .map_err(rb_err)?;
            RollbackOutput {
                traffic_moved: true,
                change_id: Some(info.id),
                submitted_at: Some(info.submitted_at),
            }
        }
        Some(Restore::Alb(a, snapshot)) => {
            super::alb::write(a, deps, snapshot).await.map_err(rb_err)?;
            RollbackOutput {
                traffic_moved: true,
                change_id: None,
                submitted_at: Some(now),
            }
        }
    };
    let traffic_moved = out.traffic_moved;
    let out = remember(deps, &input.run_id, ROLLBACK_KEY, &out, |rec| {
        rec.phase = "rolling-back".into();
        if traffic_moved {
            rec.weights = Some(Weights {
                blue: 100,
                green: 0,
            });
        }
    })
    .await?;
    let mut ev = event(
        &input.run_id,
        ROLLBACK_KEY,
        "RollbackCutover",
        "rollback-submitted",
        now,
    );
    ev.message = match (&restore, &out.change_id) {
        (Some(Restore::Dns(..)), Some(id)) => format!(
            "restoring {} snapshot record set(s) after {reason}; change {id}",
            run.snapshot.len()
        ),
        (Some(Restore::Alb(a, snapshot)), _) => format!(
            "restored the {} snapshot action(s) of {} after {reason}",
            snapshot.len(),
            a.rule_arn.as_deref().unwrap_or(&a.listener_arn)
        ),
        _ => format!("the router already holds the snapshot after {reason}"),
    };
    audit(deps, ev).await?;
    Ok(out)
}
