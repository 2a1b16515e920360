//! RunHealthCheck: one probe round during a bake window (HTTP, alarms, lag regression, abort flag).
//! The verdict turns unhealthy after `failureThreshold` consecutive failed rounds, or once the
//! failed rounds of one bake reach `failureLimit` (a flapping green never passes).

use super::replication::read_lag;
use super::{audit, check_run_id, event, load_run, Deps};
use crate::error::StepError;
use crate::model::AlarmState;
use crate::plan::{MissingAlarmData, Plan, WritesMode};
use crate::ports::PortErrorKind;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BakeState {
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub samples: u32,
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Failed rounds in this bake, consecutive or not: a flapping green fails on these.
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub healthy: Option<bool>,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthInput {
    pub run_id: String,
    pub plan: Plan,
    pub index: usize,
    pub bake: BakeState,
}

pub async fn run_health_check(input: HealthInput, deps: &Deps) -> Result<BakeState, StepError> {
    check_run_id(&input.run_id)?;
    let deps = &deps.reach(&input.plan, &input.run_id);
    let plan = &input.plan;
    let step = plan.traffic.steps.get(input.index).ok_or_else(|| {
        StepError::invalid(format!("index {} names no traffic step", input.index))
    })?;
    let run = load_run(deps, &input.run_id).await?;
    let now = deps.clock.now();
    let mut bake = input.bake.clone();
    bake.samples += 1;
    // After the data switch green's database is the primary: the forward replication no longer
    // speaks for green, and the bake's rounds are its own (the last step's index again).
    let switched = run.data.switched_to.as_deref() == Some("green");
    let key = if switched {
        format!("health#switched#{}#{}", input.index, bake.samples)
    } else {
        format!("health#{}#{}", input.index, bake.samples)
    };

    if let Some(reason) = &run.abort_requested {
        let mut ev = event(&input.run_id, &key, "RunHealthCheck", "abort-honoured", now);
        ev.healthy = Some(false);
        ev.message = reason.clone();
        audit(deps, ev).await?;
        return Err(StepError::Aborted(format!("abort requested: {reason}")));
    }

    let mut reasons = Vec::new();
    // What a healthy round still says (an alarm left out by health.missingAlarmData).
    let mut notes: Vec<String> = Vec::new();
    for c in &plan.health.http {
        // A credential that cannot be read fails the round: the probe could not be asked.
        let r = match super::resolve_headers(deps, &c.headers).await {
            Ok(headers) => deps.probe.probe(c, &headers).await,
            Err(e) => crate::model::ProbeResult {
                ok: false,
                status: None,
                detail: e.message,
            },
        };
        if !r.ok {
            reasons.push(crate::redact::redact_text(&format!(
                "{}: {}",
                c.url, r.detail
            )));
        }
    }
    if !plan.health.alarms.is_empty() {
        match deps.metrics.alarm_states(&plan.health.alarms).await {
            Ok(states) => {
                for (n, s) in states {
                    match (s, plan.health.missing_alarm_data) {
                        (AlarmState::Alarm, _) => reasons.push(format!("alarm {n} is in ALARM")),
                        (AlarmState::InsufficientData, MissingAlarmData::Breaching) => reasons
                            .push(format!(
                                "alarm {n} is in INSUFFICIENT_DATA (health.missingAlarmData: breaching)"
                            )),
                        (AlarmState::InsufficientData, m) => notes.push(format!(
                            "alarm {n} is in INSUFFICIENT_DATA (health.missingAlarmData: {})",
                            if m == MissingAlarmData::Ignore { "ignore" } else { "notBreaching" }
                        )),
                        (AlarmState::Ok, _) => {}
                    }
                }
            }
            Err(e) if e.kind == PortErrorKind::NotFound => reasons.push(e.message.clone()),
            // A probe we cannot read counts as a failed round, not as a crash of the bake.
            Err(e) => reasons.push(format!("alarms unreadable: {e}")),
        }
    }
    // An ALB green must keep `alb.minHealthyTargets` healthy targets through every bake.
    if let Some(crate::plan::Router::Alb(a)) = plan.router() {
        match super::alb::green_short(a, deps).await {
            Ok(None) => {}
            Ok(Some(why)) => reasons.push(why),
            Err(e) => reasons.push(format!("green target health unreadable: {e}")),
        }
    }
    // An MGN green is a point-in-time instance: once launched, the source's replication lag says
    // nothing about it, so only DMS lag is watched during bakes.
    let reading = if super::replication::strategy(plan).lag_matters_in_bakes() && !switched {
        read_lag(plan, deps).await?
    } else {
        Default::default()
    };
    // Table errors, failing validation and a stopped task are failures during a bake; a missing
    // or stale datapoint is not (it says nothing about green).
    reasons.extend(
        reading
            .unhealthy
            .iter()
            .map(|r| format!("replication: {r}")),
    );
    let lag = reading.lag;
    match lag {
        Some(l) if l > plan.replication.max_lag_seconds => reasons.push(format!(
            "replication lag regressed to {l:.1}s (max {}s)",
            plan.replication.max_lag_seconds
        )),
        _ => {}
    }

    let healthy = reasons.is_empty();
    bake.consecutive_failures = if healthy {
        0
    } else {
        bake.consecutive_failures.saturating_add(1)
    };
    if !healthy {
        bake.failures = bake.failures.saturating_add(1);
    }
    let limit = plan.health.failure_limit();
    bake.healthy = Some(healthy);
    bake.reasons = reasons.clone();
    // Resolvers that cached the original answer follow the first shift only after its TTL ran
    // out, so the first bake lasts at least that long, whatever the plan says (or a promote).
    let floor = if input.index == 0 {
        run.snapshot.iter().filter_map(|r| r.ttl).max().unwrap_or(0)
    } else {
        0
    };
    // Mid-run controls (docs/controls.md): an extension lengthens this bake, a promote ends it
    // at this healthy round, a hold keeps it from ending.
    let controls = &run.controls;
    let this_bake = crate::model::RunControls::bake_key(input.index, switched);
    let bake_seconds = if controls.bake_skipped(input.index, switched, plan.traffic.steps.len()) {
        floor
    } else {
        (step.bake_seconds + controls.extension(&this_bake)).max(floor)
    };
    let due = now >= bake.started_at + Duration::seconds(bake_seconds as i64);
    bake.complete = healthy && due && controls.held.is_none();
    if healthy && due {
        if let Some(h) = &controls.held {
            notes.push(format!(
                "held by {} since {} ({}): the bake ends once resumed",
                h.by,
                h.at.to_rfc3339(),
                h.reason
            ));
        }
    }

    let mut ev = event(
        &input.run_id,
        &key,
        "RunHealthCheck",
        if healthy { "healthy" } else { "unhealthy" },
        now,
    );
    ev.healthy = Some(healthy);
    ev.weights = run.weights;
    ev.lag_seconds = lag;
    ev.message = if healthy {
        let mut m = if bake.complete {
            format!("bake of step {} complete", input.index)
        } else {
            String::new()
        };
        if !notes.is_empty() {
            if !m.is_empty() {
                m.push_str("; ");
            }
            m.push_str(&notes.join("; "));
        }
        m
    } else {
        let verdict = if bake.consecutive_failures >= plan.health.failure_threshold {
            " (health.failureThreshold reached)"
        } else if bake.failures >= limit {
            " (health.failureLimit reached)"
        } else {
            ""
        };
        format!(
            "{}/{} consecutive, {}/{limit} in this bake{verdict}: {}",
            bake.consecutive_failures,
            plan.health.failure_threshold,
            bake.failures,
            reasons.join("; ")
        )
    };
    audit(deps, ev).await?;
    // The run's last bake passed: every promise of the cutover is kept from here, and nothing
    // that fails later (a close, a finalize) may undo it. The safety net reads this mark.
    let last = input.index + 1 == plan.traffic.steps.len();
    let succeeded =
        bake.complete && last && (plan.data.writes == WritesMode::Unmanaged || switched);
    // The lag the last bake ended on is what the data go/no-go shows its approver: read seconds
    // before the gate opens, not at the lag gate hours before. (A bake ends only on a healthy
    // round, and a DMS round above replication.maxLagSeconds is not healthy, so the gate never
    // opens on a lag known too high; the freeze reads it again after the decision.)
    let lag_for_gate = bake.complete && last && lag.is_some() && !switched;
    if succeeded || lag_for_gate {
        super::update_run(deps, &input.run_id, |rec| {
            if succeeded {
                rec.steps
                    .entry(crate::model::SUCCEEDED_KEY.to_string())
                    .or_insert_with(|| serde_json::json!({"at": now}));
            }
            if lag_for_gate {
                rec.last_lag_seconds = lag;
            }
        })
        .await?;
    }

    if bake.consecutive_failures >= plan.health.failure_threshold {
        return Err(StepError::HealthCheckFailed(reasons));
    }
    if bake.failures >= limit {
        let mut why = vec![format!(
            "{} failed rounds in this bake reached health.failureLimit {limit}",
            bake.failures
        )];
        why.extend(reasons);
        return Err(StepError::HealthCheckFailed(why));
    }
    if let Some(h) = &controls.held {
        let used = controls.used_seconds(now);
        if used > plan.max_hold_seconds() {
            return Err(StepError::HoldExpired(format!(
                "held by {} since {} ({}): holds and bake extensions reached {used}s, above controls.maxHoldSeconds ({}s)",
                h.by,
                h.at.to_rfc3339(),
                h.reason,
                plan.max_hold_seconds()
            )));
        }
    }
    Ok(bake)
}
