//! ValidateCutover: plan, live pre-flight, run lock and the DNS snapshot rollback restores.

use super::{audit, check_plan, check_run_id, event, store_err, Deps};
use crate::alb::Action;
use crate::error::StepError;
use crate::model::{AlarmState, RecordSet, RunRecord};
use crate::plan::{Plan, Router};
use crate::ports::{LockOutcome, PortErrorKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateInput {
    pub run_id: String,
    pub plan: Plan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateOutput {
    /// The plan as validated, every default filled: the machine reads this one from here on.
    pub plan: Plan,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub snapshot: Vec<RecordSet>,
    /// The ALB router's snapshot: the rule's actions as found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb_snapshot: Option<Vec<Action>>,
    pub finalize: bool,
}

/// What the router serves before the run: the record sets (dns) or the rule's actions (alb).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub records: Vec<RecordSet>,
    pub alb_actions: Option<Vec<Action>>,
}

pub async fn validate_cutover(
    input: ValidateInput,
    deps: &Deps,
) -> Result<ValidateOutput, StepError> {
    let ValidateInput { run_id, plan } = input;
    check_run_id(&run_id)?;
    check_plan(&plan)?;

    // A redelivery after the snapshot was taken must return that snapshot, never a new one:
    // by then DNS may already carry weights.
    if let Some(rec) = deps.store.load_run(&run_id).await.map_err(store_err)? {
        if rec.application != plan.application {
            return Err(StepError::invalid(format!(
                "run {run_id} belongs to application {}",
                rec.application
            )));
        }
        return Ok(ValidateOutput {
            plan: plan.clone(),
            run_id,
            started_at: rec.started_at,
            snapshot: rec.snapshot,
            alb_snapshot: rec.alb_snapshot,
            finalize: plan.finalize.enabled,
        });
    }

    let (problems, current) = preflight(&plan, &run_id, deps).await?;
    if !problems.is_empty() {
        return Err(StepError::ValidationFailed(problems));
    }

    let now = deps.clock.now();
    // One run at a time per application, and per record set and DMS task too: two plans naming
    // one record set (or one task) would undo each other's changes. Taken in order; a refusal
    // releases what this attempt took, so a refused run holds nothing.
    let keys = plan.lock_keys();
    for (i, key) in keys.iter().enumerate() {
        if let Err(e) = take_lock(&plan, key, &run_id, now, deps).await {
            for taken in &keys[..i] {
                let _ = deps.store.release_lock(taken, &run_id).await;
            }
            return Err(e);
        }
    }
    let mut rec = RunRecord::new(&run_id, &plan.application, now);
    rec.snapshot = current.records.clone();
    rec.alb_snapshot = current.alb_actions.clone();
    rec.plan = Some(plan.clone());
    match deps.store.save_run(&rec).await {
        Ok(()) => {}
        // Another delivery of this step won the race; use what it stored.
        Err(e) if e.kind == PortErrorKind::Conflict => {
            let stored = super::load_run(deps, &run_id).await?;
            notice_started(deps, &run_id, &plan).await?;
            return Ok(ValidateOutput {
                plan: plan.clone(),
                run_id,
                started_at: stored.started_at,
                snapshot: stored.snapshot,
                alb_snapshot: stored.alb_snapshot,
                finalize: plan.finalize.enabled,
            });
        }
        Err(e) => return Err(store_err(e)),
    }
    let mut ev = event(&run_id, "validate", "ValidateCutover", "validated", now);
    ev.message = match &current.alb_actions {
        Some(actions) => format!(
            "snapshot of {} action(s) of {}",
            actions.len(),
            plan.route_name()
        ),
        None => format!(
            "snapshot of {} record set(s) for {}",
            current.records.len(),
            plan.route_name()
        ),
    };
    audit(deps, ev).await?;
    notice_started(deps, &run_id, &plan).await?;
    Ok(ValidateOutput {
        plan: plan.clone(),
        run_id,
        started_at: now,
        snapshot: current.records,
        alb_snapshot: current.alb_actions,
        finalize: plan.finalize.enabled,
    })
}

/// Every check of the pre-flight, changing nothing: the problems found, each naming its field,
/// and the record sets DNS serves now. `cutover run preflight` runs exactly this against an
/// account before any run starts.
pub async fn preflight(
    plan: &Plan,
    run_id: &str,
    deps: &Deps,
) -> Result<(Vec<String>, Found), StepError> {
    let mut problems = Vec::new();
    // Each role a section names must be assumable before anything else is asked of its
    // account: a role that does not trust the stack's account (or wants another external ID)
    // answers AccessDenied, and every check behind it would only repeat that.
    let session = crate::accounts::session_name(run_id);
    for (section, role) in plan.roles() {
        match deps.accounts.assume(&role, &session).await {
            Ok(_) => {}
            Err(e) if matches!(e.kind, PortErrorKind::Throttled | PortErrorKind::Transient) => {
                return Err(StepError::Retryable(format!("{section}.roleArn: {e}")))
            }
            Err(e) => problems.push(format!(
                "{section}.roleArn: {} cannot be assumed: {} (its trust policy must name the stack's account{}{})",
                role.arn,
                e.message,
                deps.stack
                    .account
                    .as_deref()
                    .map(|a| format!(" {a}"))
                    .unwrap_or_default(),
                if role.external_id.is_some() {
                    format!(" and ask for {section}.externalId")
                } else {
                    String::new()
                }
            )),
        }
    }
    if !problems.is_empty() {
        return Ok((problems, Found::default()));
    }
    let deps = &deps.reach(plan, run_id);
    for (name, hook) in [
        ("freeze", &plan.data.freeze),
        ("switch", &plan.data.switch),
        ("unfreeze", &plan.data.unfreeze),
    ] {
        if let Some(why) = hook
            .as_ref()
            .and_then(|h| h.lambda_arn.as_deref())
            .and_then(|arn| deps.stack.foreign_hook(arn))
        {
            problems.push(format!("data.{name}.lambdaArn: {why}"));
        }
        // A credential the hook needs must be readable now, not first at the freeze.
        if let Some(h) = hook {
            if let Err(e) = super::resolve_headers(deps, &h.headers).await {
                problems.push(format!("data.{name}.headers: {}", e.message));
            }
        }
    }
    preflight_replication(plan, deps, &mut problems).await?;
    // An MGN green is the cutover instance, launched only after the lag gate: there is nothing
    // to probe yet. Its health is checked once it has booted, before any traffic moves.
    let green_exists = super::replication::strategy(plan).green_exists_before_launch();
    let current = match super::router(plan)? {
        Router::Dns(d) => Found {
            records: super::dns::preflight(d, deps, &mut problems).await?,
            alb_actions: None,
        },
        Router::Alb(a) => Found {
            records: vec![],
            alb_actions: Some(super::alb::preflight(a, deps, green_exists, &mut problems).await?),
        },
    };
    if green_exists {
        preflight_health(plan, deps, &mut problems).await?;
    }
    Ok((problems, current))
}

/// Tells the notice topic that a run has started (once per run, however often this is delivered).
async fn notice_started(deps: &Deps, run_id: &str, plan: &Plan) -> Result<(), StepError> {
    let steps: Vec<String> = plan
        .traffic
        .steps
        .iter()
        .map(|s| format!("{}%", s.weight))
        .collect();
    let message = format!(
        "Cutover of {} started (run {run_id}): {} moves to green in steps {}. Follow it with `cutover run status {run_id} --watch`; stop it with `cutover run abort {run_id} --reason …`.",
        plan.application,
        plan.route_name(),
        steps.join(" → ")
    );
    super::notify_once(
        deps,
        run_id,
        &plan.application,
        "notice.started",
        "run_started",
        message,
    )
    .await
}

async fn preflight_replication(
    plan: &Plan,
    deps: &Deps,
    problems: &mut Vec<String>,
) -> Result<(), StepError> {
    super::replication::strategy(plan)
        .preflight(deps, problems)
        .await?;
    // Reverse replication is a CDC task green -> blue that the switch starts: it must exist and
    // be startable with start-replication, which for a `cdc` task means ready or stopped
    // (API_StartReplicationTask, StartReplicationTaskType).
    if let Some(r) = &plan.data.reverse_replication {
        match deps.replication.dms_task(&r.task_arn).await {
            Ok(t) => {
                if t.migration_type != "cdc" {
                    problems.push(format!(
                        "data.reverseReplication.taskArn: task is {}, not cdc: a reverse task carries only the writes green takes after the switch",
                        t.migration_type
                    ));
                }
                if !matches!(t.status.as_str(), "ready" | "stopped") {
                    problems.push(format!(
                        "data.reverseReplication.taskArn: task is {}; it must be ready or stopped so the switch can start it",
                        t.status
                    ));
                }
            }
            Err(e) if e.kind == PortErrorKind::NotFound => {
                problems.push(format!("data.reverseReplication.taskArn: {}", e.message))
            }
            Err(e) => return Err(super::replication::repl_err(e)),
        }
    }
    Ok(())
}

pub(crate) async fn preflight_health(
    plan: &Plan,
    deps: &Deps,
    problems: &mut Vec<String>,
) -> Result<(), StepError> {
    for (i, c) in plan.health.http.iter().enumerate() {
        let headers = match super::resolve_headers(deps, &c.headers).await {
            Ok(h) => h,
            Err(e) => {
                problems.push(format!("health.http[{i}].headers: {}", e.message));
                continue;
            }
        };
        let r = deps.probe.probe(c, &headers).await;
        if !r.ok {
            problems.push(format!(
                "health.http[{i}]: green is not healthy before the cutover: {}",
                r.detail
            ));
        }
    }
    if !plan.health.alarms.is_empty() {
        match deps.metrics.alarm_states(&plan.health.alarms).await {
            Ok(states) => {
                for (name, s) in states {
                    if s == AlarmState::Alarm {
                        problems.push(format!(
                            "health.alarms: alarm {name} is in ALARM before the cutover"
                        ));
                    }
                }
            }
            Err(e) if e.kind == PortErrorKind::NotFound => problems.push(format!(
                "health.alarms: {}{}",
                e.message,
                crate::accounts::looked_in(
                    "health",
                    &plan.health.role_arn,
                    deps.stack.account.as_deref()
                )
            )),
            Err(e) => {
                return Err(StepError::from_port(e, |e| {
                    StepError::invalid(format!("health.alarms: {e}"))
                }))
            }
        }
    }
    Ok(())
}

/// Takes one lock for `run_id`: free, already ours, or held by a run whose execution no longer
/// runs (a lease on the holder's execution).
async fn take_lock(
    plan: &Plan,
    key: &str,
    run_id: &str,
    now: chrono::DateTime<chrono::Utc>,
    deps: &Deps,
) -> Result<(), StepError> {
    match deps
        .store
        .acquire_lock(key, run_id, now)
        .await
        .map_err(store_err)?
    {
        LockOutcome::Acquired | LockOutcome::AlreadyHeld => {}
        LockOutcome::HeldBy(holder) => {
            // The lock is a lease on the holder's execution: one that no longer runs (it ended
            // without closing, or never existed) cannot keep it; one that runs always does.
            let running = deps.executions.is_running(&holder).await.map_err(|e| {
                StepError::from_port(e, |e| {
                    StepError::Retryable(format!("cannot tell whether run {holder} runs: {e}"))
                })
            })?;
            let taken = running != Some(true)
                && deps
                    .store
                    .take_over_lock(key, &holder, run_id, now)
                    .await
                    .map_err(store_err)?;
            if !taken {
                return Err(StepError::RunInProgress {
                    application: if key == plan.application {
                        plan.application.clone()
                    } else {
                        format!("{} ({key})", plan.application)
                    },
                    holder,
                });
            }
            let mut ev = event(
                run_id,
                format!("lock-taken-over:{key}"),
                "ValidateCutover",
                "lock-taken-over",
                now,
            );
            ev.message = format!(
                "the lock of {key} was held by run {holder}, whose execution {}; check that run's DNS and data before relying on its record",
                if running.is_some() { "has ended" } else { "does not exist" }
            );
            audit(deps, ev).await?;
        }
    }
    Ok(())
}
