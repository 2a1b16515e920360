//! The data cutover (docs/data.md): freeze the application's writes, wait until replication has
//! drained, switch the application to the other database, unfreeze. The switch to green is the
//! point of no return: from then on green's database takes writes that blue's does not have, so
//! a rollback is automatic only with reverse replication (green -> blue) that has drained.
//!
//! Every action is idempotent: a redelivered action finds its result in the run record and calls
//! no hook twice; each is audited. Hooks themselves must be idempotent too (a Lambda that timed out
//! may have acted, and is called again by the abandon path).

use super::{audit, check_run_id, event, load_run, remember, stored_result, update_run};
use super::{Deps, StepError};
use crate::error::ErrorInfo;
use crate::model::{DataRecord, DmsStartType};
use crate::plan::{Hook, Plan, WritesMode, ROLLBACK_AFTER_SWITCH_GATE};
use crate::ports::{PortError, PortErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataAction {
    /// Calls the freeze hook: writes stop (a maintenance page, read-only mode).
    Freeze,
    /// One drain check while frozen: CDCIncomingChanges 0 and no latency, from a datapoint whose
    /// whole period lies after the freeze. Fails with FreezeTooLong past data.maxFreezeSeconds.
    CheckDrain,
    /// Calls the switch hook with `to` (green | blue).
    Switch,
    /// Calls the unfreeze hook.
    Unfreeze,
    /// After a failure: undoes a switch that may have half happened and unfreezes. Never fails on
    /// a hook: it pages instead, so the rollback that follows still runs.
    Abandon,
    /// Green was unhealthy after the switch: records it and pages.
    UnhealthyAfterSwitch,
    /// The unfreeze hook kept failing after its retries: pages.
    UnfreezeFailed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataInput {
    pub run_id: String,
    pub plan: Plan,
    pub action: DataAction,
    /// For `switch`: the database the application moves to.
    #[serde(default)]
    pub to: Option<String>,
    /// For `switch` to blue without a drained reverse replication: a human approved losing the
    /// writes green's database took since the switch.
    #[serde(default)]
    pub accept_loss: bool,
    /// The error that led here (abandon, unhealthy-after-switch, unfreeze-failed).
    #[serde(default)]
    pub error: Option<ErrorInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataOutput {
    pub mode: String,
    pub frozen: bool,
    pub switched_to: Option<String>,
    /// True once the application has written to green's database.
    pub point_of_no_return: bool,
    /// Reverse replication runs: a rollback after the switch can be automatic.
    pub reverse: bool,
    /// check-drain: the replication has applied every change made before the freeze.
    #[serde(default)]
    pub drained: bool,
    /// The traffic step whose bake is repeated after the switch (the last one).
    pub bake_index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// freeze: the lag that held it back (frozen is false then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
}

fn output(plan: &Plan, d: &DataRecord) -> DataOutput {
    DataOutput {
        mode: plan.data.writes.as_str().into(),
        frozen: d.frozen_at.is_some(),
        switched_to: d.switched_to.clone(),
        point_of_no_return: d.point_of_no_return.is_some(),
        reverse: d.reverse_started,
        drained: false,
        bake_index: plan.traffic.steps.len().saturating_sub(1),
        warning: None,
        lag_seconds: None,
    }
}

/// Before the freeze toward green: the forward replication's lag, read now. Above
/// `replication.maxLagSeconds` the freeze waits (the output says frozen: false and the machine
/// reads again after `replication.sampleIntervalSeconds`); past `replication.deadlineSeconds` of
/// waiting it fails with LagNotConverged, before any write was refused. A lag that cannot
/// be read does not hold the freeze: the drain check after it waits for every change anyway.
async fn lag_before_freeze(
    input: &DataInput,
    deps: &Deps,
    run: &crate::model::RunRecord,
) -> Result<Option<DataOutput>, StepError> {
    let plan = &input.plan;
    let lag = super::replication::read_lag(plan, deps).await?.lag;
    let max = plan.replication.max_lag_seconds;
    let Some(lag) = lag.filter(|l| *l > max) else {
        return Ok(None);
    };
    let now = deps.clock.now();
    let since = stored_result::<chrono::DateTime<chrono::Utc>>(run, FREEZE_WAIT_KEY)
        .and_then(Result::ok)
        .unwrap_or(now);
    let waited = (now - since).num_seconds().max(0) as u64;
    if waited > plan.replication.deadline_seconds {
        return Err(StepError::LagNotConverged(format!(
            "replication lag is {lag:.1}s, above replication.maxLagSeconds ({max}s), and has been for {waited}s before the freeze (replication.deadlineSeconds {}): writes were never frozen",
            plan.replication.deadline_seconds
        )));
    }
    remember(deps, &input.run_id, FREEZE_WAIT_KEY, &since, |_| {}).await?;
    let mut ev = event(
        &input.run_id,
        format!("data.freeze-held@{}", now.timestamp_millis()),
        "FreezeWrites",
        "freeze-held",
        now,
    );
    ev.lag_seconds = Some(lag);
    ev.message = format!(
        "replication lag {lag:.1}s is above replication.maxLagSeconds ({max}s): writes are not frozen yet"
    );
    audit(deps, ev).await?;
    let mut out = output(plan, &run.data);
    out.lag_seconds = Some(lag);
    Ok(Some(out))
}

const FREEZE_WAIT_KEY: &str = "data.freeze-waiting-since";

fn hook<'a>(plan: &'a Plan, name: &str) -> Result<&'a Hook, StepError> {
    let d = &plan.data;
    let h = match name {
        "freeze" => &d.freeze,
        "switch" => &d.switch,
        _ => &d.unfreeze,
    };
    h.as_ref()
        .ok_or_else(|| StepError::invalid(format!("data.{name} is not set")))
}

fn hook_err(name: &str, h: &Hook, e: PortError) -> StepError {
    let what = crate::redact::redact_text(&format!("{name} hook {}: {}", h.target(), e.message));
    match (e.code.as_str(), e.kind) {
        ("HookTimedOut", _) => StepError::HookTimedOut(format!(
            "{what} (no answer within {}s; it may have acted)",
            h.timeout_seconds
        )),
        // Throttled: Lambda did not run the function (Invoke, TooManyRequestsException:
        // https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), so it did not act.
        (_, PortErrorKind::Throttled) => StepError::Throttled(what),
        (_, PortErrorKind::Transient) => StepError::Retryable(what),
        _ => StepError::HookFailed(what),
    }
}

/// Why a hook was not called: another delivery of the step holds it (retried, never paged).
const CLAIMED: &str = "the hook is being called by another delivery of this step";

fn claimed_elsewhere(e: &StepError) -> bool {
    matches!(e, StepError::Retryable(m) if m.ends_with(CLAIMED))
}

/// Calls one hook with the run's context; hooks see the action, the run and the application.
async fn call_hook(
    deps: &Deps,
    input: &DataInput,
    name: &str,
    extra: Value,
) -> Result<(), StepError> {
    let h = hook(&input.plan, name)?;
    let mut payload = json!({
        "action": name,
        "runId": input.run_id,
        "application": input.plan.application,
    });
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    // Two deliveries of one step racing (at-least-once delivery) must not both call the hook:
    // the first claims it in the run record for as long as the hook may take; the other is
    // retried and then finds the hook's result recorded. A claim whose holder died expires.
    // Its credentials first: a hook whose credentials cannot be read is not called, so it
    // did not act.
    let headers = super::resolve_headers(deps, &h.headers)
        .await
        .map_err(|e| hook_err(name, h, e))?;
    let claim = format!("data.hook-claim.{name}");
    let now = deps.clock.now();
    let until = now + chrono::Duration::seconds(h.timeout_seconds as i64 + 5);
    let claimed = update_run(deps, &input.run_id, |rec| {
        let held = rec
            .steps
            .get(&claim)
            .and_then(|c| c.get("until"))
            .and_then(|u| serde_json::from_value::<chrono::DateTime<chrono::Utc>>(u.clone()).ok())
            .is_some_and(|u| u > now);
        if !held {
            rec.steps.insert(claim.clone(), json!({"until": until}));
        }
        !held
    })
    .await?;
    if !claimed {
        return Err(StepError::Retryable(format!("{name}: {CLAIMED}")));
    }
    let result = deps
        .hooks
        .call(h, &headers, &payload)
        .await
        .map(|_| ())
        .map_err(|e| hook_err(name, h, e));
    // Released at once; if the run table fails here the claim simply expires.
    let _ = update_run(deps, &input.run_id, |rec| {
        rec.steps.remove(&claim);
    })
    .await;
    result
}

/// Switching back to blue: the reverse DMS task carries green's writes; toward green, the plan's
/// replication does (None).
fn drain_reverse_task<'a>(plan: &'a Plan, d: &DataRecord) -> Result<Option<&'a str>, StepError> {
    if d.switched_to.as_deref() != Some("green") {
        return Ok(None);
    }
    plan.data
        .reverse_replication
        .as_ref()
        .map(|r| Some(r.task_arn.as_str()))
        .ok_or_else(|| {
            StepError::invalid("no data.reverseReplication: green's writes cannot drain to blue")
        })
}

async fn page(
    deps: &Deps,
    input: &DataInput,
    kind: &str,
    message: String,
) -> Result<(), StepError> {
    super::page_once(
        deps,
        &input.run_id,
        &input.plan.application,
        &format!("page.{kind}"),
        kind,
        message,
    )
    .await
}

fn cause(input: &DataInput) -> String {
    input
        .error
        .as_ref()
        .map(|e| format!("{}: {}", e.error, e.message()))
        .unwrap_or_else(|| "no cause given".into())
}

pub async fn data_cutover(input: DataInput, deps: &Deps) -> Result<DataOutput, StepError> {
    check_run_id(&input.run_id)?;
    let deps = &deps.reach(&input.plan, &input.run_id);
    if input.plan.data.writes == WritesMode::Unmanaged {
        return Err(StepError::invalid(
            "data.writes is unmanaged: the run has no data cutover",
        ));
    }
    match input.action {
        DataAction::Freeze => freeze(&input, deps).await,
        DataAction::CheckDrain => check_drain(&input, deps).await,
        DataAction::Switch => switch(&input, deps).await,
        DataAction::Unfreeze => unfreeze(&input, deps).await,
        DataAction::Abandon => abandon(&input, deps).await,
        DataAction::UnhealthyAfterSwitch => unhealthy_after_switch(&input, deps).await,
        DataAction::UnfreezeFailed => {
            let message = format!(
                "The unfreeze hook of {} kept failing ({}): the application may still refuse writes. Call the unfreeze hook by hand.",
                input.plan.application,
                cause(&input)
            );
            page(deps, &input, "unfreeze_failed", message).await?;
            let run = load_run(deps, &input.run_id).await?;
            let mut out = output(&input.plan, &run.data);
            out.warning = Some("writes may still be frozen: the unfreeze hook failed".into());
            Ok(out)
        }
    }
}

/// The database a freeze prepares the switch to: green first, blue when rolling back after it.
fn switch_target(d: &DataRecord) -> &'static str {
    if d.switched_to.as_deref() == Some("green") {
        "blue"
    } else {
        "green"
    }
}

async fn freeze(input: &DataInput, deps: &Deps) -> Result<DataOutput, StepError> {
    let run = load_run(deps, &input.run_id).await?;
    let target = switch_target(&run.data);
    let key = format!("data.freeze.{target}");
    if stored_result::<DataOutput>(&run, &key).is_some() || run.data.frozen_at.is_some() {
        return Ok(output(&input.plan, &run.data));
    }
    // An abort before the point of no return ends the run before writes ever stop.
    if target == "green" {
        if let Some(reason) = &run.abort_requested {
            return Err(StepError::Aborted(format!("abort requested: {reason}")));
        }
    }
    // No freeze while replication is known to lag: writes would stay refused for the whole lag.
    if target == "green" {
        if let Some(waiting) = lag_before_freeze(input, deps, &run).await? {
            return Ok(waiting);
        }
    }
    let reason = format!(
        "switching {} to the {target} database",
        input.plan.application
    );
    // The intent first: a hook that times out may have acted, and every path after this one
    // unfreezes (`abandon`, the safety net).
    let asked = deps.clock.now();
    update_run(deps, &input.run_id, |rec| {
        if rec.data.freeze_requested_at.is_none() {
            rec.data.freeze_requested_at = Some(asked);
        }
    })
    .await?;
    if let Err(e) = call_hook(deps, input, "freeze", json!({"reason": reason})).await {
        // Never ran (throttled), or answered that it did not act (a hook must answer with an
        // error only when its action did not happen, docs/data.md): nothing to undo. Only a
        // call whose answer never came (a timeout, a transient error) may have acted.
        if matches!(e, StepError::Throttled(_) | StepError::HookFailed(_)) {
            update_run(deps, &input.run_id, |rec| {
                if rec.data.frozen_at.is_none() && rec.data.freeze_requested_at == Some(asked) {
                    rec.data.freeze_requested_at = None;
                }
            })
            .await?;
        }
        return Err(e);
    }
    let now = deps.clock.now();
    let rec = update_run(deps, &input.run_id, |rec| {
        if rec.data.frozen_at.is_none() {
            rec.data.frozen_at = Some(now);
        }
        rec.phase = "writes-frozen".into();
        rec.data.clone()
    })
    .await?;
    let out = output(&input.plan, &rec);
    let out = remember(deps, &input.run_id, &key, &out, |_| {}).await?;
    let mut ev = event(&input.run_id, key, "FreezeWrites", "writes-frozen", now);
    ev.message = format!(
        "{} before switching to {target}; at most {}s",
        hook(&input.plan, "freeze")?.target(),
        input.plan.data.max_freeze_seconds
    );
    audit(deps, ev).await?;
    Ok(out)
}

async fn check_drain(input: &DataInput, deps: &Deps) -> Result<DataOutput, StepError> {
    let run = load_run(deps, &input.run_id).await?;
    let Some(frozen_at) = run.data.frozen_at else {
        return Err(StepError::invalid(
            "writes are not frozen: nothing to drain",
        ));
    };
    // An abort is honoured while frozen toward green too: the catch abandons (unfreezes) and
    // rolls back. A switch back to blue is how an abort after the switch is honoured: it runs on.
    if let (Some(reason), "green") = (&run.abort_requested, switch_target(&run.data)) {
        return Err(StepError::Aborted(format!("abort requested: {reason}")));
    }
    let reverse = drain_reverse_task(&input.plan, &run.data)?;
    let now = deps.clock.now();
    let frozen_for = (now - frozen_at).num_milliseconds() as f64 / 1000.0;
    let max = input.plan.data.max_freeze_seconds as f64;
    let drain = super::replication::drained_since(&input.plan, reverse, frozen_at, deps).await?;
    let (drained, why, task) = (drain.drained, drain.why.as_str(), drain.of.as_str());
    let samples = run.steps.keys().filter(|k| k.starts_with("drain#")).count() + 1;
    let mut ev = event(
        &input.run_id,
        format!("drain#{samples}"),
        "CheckDrain",
        if drained { "drained" } else { "draining" },
        now,
    );
    ev.lag_seconds = drain.lag;
    ev.message = if drained {
        format!("{task}: every change made before the freeze is applied, {frozen_for:.0}s after it")
    } else {
        format!("{task}: {why}; frozen {frozen_for:.0}s of at most {max:.0}s")
    };
    audit(deps, ev).await?;
    // Counts samples for the audit key without keeping anything else.
    update_run(deps, &input.run_id, |rec| {
        rec.steps
            .insert(format!("drain#{samples}"), json!({"drained": drained}));
    })
    .await?;
    if !drained && frozen_for >= max {
        return Err(StepError::FreezeTooLong(format!(
            "writes frozen {frozen_for:.0}s, the most data.maxFreezeSeconds allows ({max:.0}s), and {task} has not drained: {why}"
        )));
    }
    let mut out = output(&input.plan, &run.data);
    out.drained = drained;
    Ok(out)
}

async fn switch(input: &DataInput, deps: &Deps) -> Result<DataOutput, StepError> {
    let to = match input.to.as_deref() {
        Some(t @ ("green" | "blue")) => t,
        other => {
            return Err(StepError::invalid(format!(
                "switch needs to: green | blue, got {other:?}"
            )))
        }
    };
    let run = load_run(deps, &input.run_id).await?;
    let key = format!("data.switch.{to}");
    if let Some(done) = stored_result(&run, &key) {
        return done;
    }
    let now = deps.clock.now();
    match run.data.frozen_at {
        Some(f) => {
            let frozen_for = (now - f).num_milliseconds() as f64 / 1000.0;
            if frozen_for > input.plan.data.max_freeze_seconds as f64 {
                return Err(StepError::FreezeTooLong(format!(
                    "writes frozen {frozen_for:.0}s before the switch, more than data.maxFreezeSeconds ({})",
                    input.plan.data.max_freeze_seconds
                )));
            }
        }
        None if input.accept_loss && to == "blue" => {}
        None => {
            return Err(StepError::invalid(
                "writes are not frozen: the database is switched only while frozen and drained",
            ))
        }
    }
    // The intent first, so a failure at any point below is undone by `abandon`.
    update_run(deps, &input.run_id, |rec| {
        rec.steps
            .insert(format!("data.switch-requested.{to}"), json!({"at": now}));
    })
    .await?;
    let reverse = input.plan.data.reverse_replication.as_ref();
    let forward = input
        .plan
        .replication
        .task_arn
        .as_deref()
        .unwrap_or_default();
    // Once the hook has answered, a retry of what follows (DMS throttled) calls it no more.
    let hooked = format!("data.switch-hooked.{to}");
    if !run.steps.contains_key(&hooked) {
        call_hook(deps, input, "switch", json!({"to": to})).await?;
        update_run(deps, &input.run_id, |rec| {
            rec.steps.insert(hooked.clone(), json!({"at": now}));
        })
        .await?;
    }
    // The switch is confirmed. With both directions running each change would come back (DMS
    // loopback: https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Task.CDC.html#CHAP_Task.CDC.Bidirectional),
    // so the direction that no longer carries writes stops before the other starts. Writes
    // are still frozen: the reverse task, started now, sees green's first write.
    let mut reverse_started = run.data.reverse_started;
    match (to, reverse) {
        ("green", Some(r)) => {
            stop_if_running(deps, forward).await?;
            // A CDC-only task starts with start-replication (API_StartReplicationTask,
            // StartReplicationTaskType).
            let task = deps
                .replication
                .dms_task(&r.task_arn)
                .await
                .map_err(super::replication::repl_err)?;
            if !matches!(task.status.as_str(), "running" | "starting") {
                deps.replication
                    .start_dms_task(&r.task_arn, DmsStartType::StartReplication)
                    .await
                    .map_err(super::replication::repl_err)?;
            }
            reverse_started = true;
        }
        ("blue", Some(r)) if run.data.reverse_started => {
            stop_if_running(deps, &r.task_arn).await?;
            reverse_started = false;
        }
        _ => {}
    }
    let rec = update_run(deps, &input.run_id, |rec| {
        rec.data.switched_to = Some(to.to_string());
        rec.data.switched_at = Some(now);
        rec.data.reverse_started = reverse_started;
        if to == "green" && rec.data.point_of_no_return.is_none() {
            rec.data.point_of_no_return = Some(now);
        }
        rec.phase = format!("switched-to-{to}");
        rec.data.clone()
    })
    .await?;
    let out = output(&input.plan, &rec);
    let out = remember(deps, &input.run_id, &key, &out, |_| {}).await?;
    let mut ev = event(
        &input.run_id,
        key,
        "SwitchDatabase",
        "database-switched",
        now,
    );
    ev.message = match (to, input.accept_loss) {
        ("green", _) if reverse.is_some() => {
            "to green: point of no return; reverse replication started".into()
        }
        ("green", _) => "to green: point of no return".into(),
        (_, true) => {
            "back to blue, approved: writes green's database took since the switch are lost".into()
        }
        _ => "back to blue after reverse replication drained".into(),
    };
    audit(deps, ev).await?;
    Ok(out)
}

/// Stops a DMS task unless it is not running (a stopped task needs nothing).
async fn stop_if_running(deps: &Deps, task: &str) -> Result<(), StepError> {
    let status = deps
        .replication
        .dms_task(task)
        .await
        .map_err(super::replication::repl_err)?
        .status;
    if !matches!(status.as_str(), "running" | "starting") {
        return Ok(());
    }
    match deps.replication.stop_dms_task(task).await {
        Ok(()) => Ok(()),
        // Not running any more, says DMS: confirmed by reading the task again, for the other
        // direction starts only once this one is stopped.
        Err(e) if e.kind == PortErrorKind::Invalid => {
            let now = deps
                .replication
                .dms_task(task)
                .await
                .map_err(super::replication::repl_err)?
                .status;
            if matches!(now.as_str(), "running" | "starting") {
                return Err(StepError::Retryable(format!(
                    "{task} refused StopReplicationTask ({}) but is still {now}",
                    e.message
                )));
            }
            Ok(())
        }
        Err(e) => Err(super::replication::repl_err(e)),
    }
}

async fn unfreeze(input: &DataInput, deps: &Deps) -> Result<DataOutput, StepError> {
    let run = load_run(deps, &input.run_id).await?;
    let Some(frozen_at) = run.data.frozen_at.or(run.data.freeze_requested_at) else {
        return Ok(output(&input.plan, &run.data));
    };
    call_hook(deps, input, "unfreeze", json!({})).await?;
    let now = deps.clock.now();
    let rec = update_run(deps, &input.run_id, |rec| {
        if rec.data.frozen_at == Some(frozen_at) {
            rec.data.freeze_seconds = rec.data.frozen_seconds(now);
            rec.data.frozen_at = None;
        }
        if rec.data.frozen_at.is_none() {
            rec.data.freeze_requested_at = None;
        }
        rec.data.clone()
    })
    .await?;
    let mut ev = event(
        &input.run_id,
        format!("data.unfreeze@{}", frozen_at.timestamp_millis()),
        "UnfreezeWrites",
        "writes-unfrozen",
        now,
    );
    ev.message = format!(
        "frozen {:.0}s",
        (now - frozen_at).num_milliseconds() as f64 / 1000.0
    );
    audit(deps, ev).await?;
    Ok(output(&input.plan, &rec))
}

async fn abandon(input: &DataInput, deps: &Deps) -> Result<DataOutput, StepError> {
    let run = load_run(deps, &input.run_id).await?;
    let current = run.data.switched_to.clone();
    let mut problems = Vec::new();
    // A switch that was asked for but never confirmed may have half happened: point the
    // application back where it was (writes are still frozen, so nothing is written meanwhile).
    let undo = match current.as_deref() {
        Some("green") => "blue",
        _ => "green",
    };
    let back = if undo == "green" { "blue" } else { "green" };
    if run
        .steps
        .contains_key(&format!("data.switch-requested.{undo}"))
        && !run.steps.contains_key(&format!("data.switch.{undo}"))
    {
        let undone = format!("data.switch-undone.{undo}");
        if !run.steps.contains_key(&undone) {
            match call_hook(deps, input, "switch", json!({"to": back})).await {
                Ok(()) => {
                    update_run(deps, &input.run_id, |rec| {
                        rec.steps
                            .insert(undone.clone(), json!({"at": deps.clock.now()}));
                    })
                    .await?;
                }
                Err(e) if claimed_elsewhere(&e) => return Err(e),
                Err(e) => problems.push(format!("switching back to {back}: {e}")),
            }
        }
    }
    // A reverse task runs only behind a confirmed switch to green.
    if let (Some(r), false) = (
        &input.plan.data.reverse_replication,
        current.as_deref() == Some("green"),
    ) {
        if let Err(e) = stop_if_running(deps, &r.task_arn).await {
            problems.push(format!("stopping reverse replication {}: {e}", r.task_arn));
        }
    }
    if run.data.frozen_at.is_some() || run.data.freeze_requested_at.is_some() {
        match unfreeze(input, deps).await {
            Ok(_) => {}
            Err(e) if claimed_elsewhere(&e) => return Err(e),
            Err(e) => problems.push(format!("unfreezing: {e}")),
        }
    }
    let now = deps.clock.now();
    let mut ev = event(
        &input.run_id,
        format!("data.abandon@{}", now.timestamp_millis()),
        "AbandonDataCutover",
        "data-cutover-abandoned",
        now,
    );
    ev.message = format!("after {}", cause(input));
    if !problems.is_empty() {
        ev.message
            .push_str(&format!("; needs a human: {}", problems.join("; ")));
    }
    audit(deps, ev).await?;
    let rec = load_run(deps, &input.run_id).await?;
    let mut out = output(&input.plan, &rec.data);
    if !problems.is_empty() {
        let message = format!(
            "The data cutover of {} was abandoned after {}, and undoing it needs a human: {}",
            input.plan.application,
            cause(input),
            problems.join("; ")
        );
        page(deps, input, "data_abandon_incomplete", message).await?;
        out.warning = Some(problems.join("; "));
    }
    Ok(out)
}

async fn unhealthy_after_switch(input: &DataInput, deps: &Deps) -> Result<DataOutput, StepError> {
    let run = load_run(deps, &input.run_id).await?;
    let reverse = run.data.reverse_started;
    let what = if reverse {
        "rolling back automatically: writes freeze, reverse replication drains to blue, the application switches back, then DNS is restored".to_string()
    } else {
        format!(
            "no reverse replication: gate '{ROLLBACK_AFTER_SWITCH_GATE}' is open. Approve to roll back (DNS and the database; writes green's database took since the switch are lost), reject or let it expire to keep green"
        )
    };
    let message = format!(
        "{} is unhealthy after its database switched to green ({}): {what}.",
        input.plan.application,
        cause(input)
    );
    page(deps, input, "unhealthy_after_switch", message.clone()).await?;
    let now = deps.clock.now();
    let mut ev = event(
        &input.run_id,
        "data.unhealthy-after-switch",
        "UnhealthyAfterSwitch",
        "unhealthy-after-switch",
        now,
    );
    ev.healthy = Some(false);
    ev.message = message;
    audit(deps, ev).await?;
    Ok(output(&input.plan, &run.data))
}
