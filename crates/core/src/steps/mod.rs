//! The step logic: one plain async function per Lambda, taking its payload and the ports.
//! The local engine and the deployed functions call exactly these.

mod alb;
mod approval;
mod close;
mod controls;
mod data;
mod dns;
mod health;
mod launch;
mod publish;
mod reconcile;
pub mod registry;
mod replication;
mod traffic;
mod validate;
mod wave;

pub use approval::{
    decide_approval, decide_approval_as, person, request_approval, ApprovalError, DecideApproval,
    DecisionOutcome, IdentityRule, RequestApprovalInput, RequestApprovalOutput,
};
pub use close::{
    close_run, finalize_cutover, request_abort, CloseRunInput, CloseRunOutput, FinalizeInput,
    FinalizeOutput,
};
pub use controls::{apply_control, ControlAction, ControlError, ControlRequest};
pub use data::{data_cutover, DataAction, DataInput, DataOutput};
pub use dns::{
    check_dns_sync, collapse_to_simple, dns_outside_allow_lists, CheckSyncInput, CollapseInput,
    CollapseOutput, SyncOutput, SYNC_DEADLINE_SECONDS, SYNC_POLL_SECONDS,
};
pub use health::{run_health_check, BakeState, HealthInput};
pub use launch::{check_launch, CheckLaunchInput, LaunchStatus, ServerLaunch, LAUNCH_POLL_SECONDS};
pub use publish::{publish_events, PublishOutput};
pub use reconcile::{
    reconcile_run, sweep_runs, ExecutionStatus, ReconcileInput, ReconcileOutput, SweepInput,
    SweepOptions, SweepOutput,
};
pub use replication::{
    check_replication_lag, start_replication, CheckLagInput, LagGate, StartReplicationInput,
    StartReplicationOutput,
};
pub use traffic::{
    rollback_cutover, shift_traffic, RollbackInput, RollbackOutput, ShiftInput, ShiftOutput,
    ROLLBACK_MAX_ATTEMPTS,
};
pub use validate::{preflight, validate_cutover, Found, ValidateInput, ValidateOutput};
pub use wave::{
    calendar_plans_key, calendar_run_id, close_wave, default_handover_after_events, handover_name,
    next_wave_round, outline_too_large, start_wave, wave_problems, CalendarFiring, CloseWaveInput,
    Generation, Handover, NextRoundInput, NextRoundOutput, OutlineApp, ReadyApp, RoundResult,
    StartWaveInput, WaveApp, WaveAppReport, WaveOutline, WaveProgress, WaveReport, WaveSpec,
    WaveStarted, DEFAULT_HANDOVER_AFTER_EVENTS, DEFAULT_SCHEDULING_INTERVAL, EVENTS_PER_MAP,
    EVENTS_PER_PASS, EVENTS_PER_START, HANDOVER_AFTER_EVENTS_RANGE, MAX_OUTLINE_BYTES,
    MAX_WAVE_STATE_BYTES, READY_PLAN_BYTES, SCHEDULING_INTERVAL_RANGE,
};

use crate::error::StepError;
use crate::model::{AuditEvent, RunRecord};
use crate::ports::*;
use serde_json::Value;
use std::sync::Arc;

/// Every port a step may use. Deployed functions fill the ones they need.
#[derive(Clone)]
pub struct Deps {
    /// Where the stack runs: what a plan cannot know alone.
    pub stack: StackContext,
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn RunStore>,
    pub router: Arc<dyn TrafficRouter>,
    /// The ALB router's port (crate::alb).
    pub load_balancer: Arc<dyn crate::alb::LoadBalancer>,
    pub replication: Arc<dyn Replication>,
    pub metrics: Arc<dyn Metrics>,
    pub probe: Arc<dyn HealthProbe>,
    pub notifier: Arc<dyn Notifier>,
    pub callbacks: Arc<dyn TaskCallbacks>,
    pub hooks: Arc<dyn Hooks>,
    pub executions: Arc<dyn Executions>,
    /// Credentials probes and hooks send, read by reference (`crate::secret`).
    pub secrets: Arc<dyn Secrets>,
    /// Seals task tokens for the run table and opens them for a callback.
    pub vault: Arc<dyn TokenVault>,
    /// STS: the ports of another account, for plan sections that name a role
    /// ([`Deps::reach`]).
    pub accounts: Arc<dyn crate::accounts::Accounts>,
    /// EventBridge, for the publish-events function (crate::events).
    pub bus: Arc<dyn crate::events::Bus>,
    /// Pages and notices this process sent whose record in the run table is not yet written:
    /// a retry after the table failed sends none of them again.
    pub sent: Arc<SentNotices>,
}

impl Deps {
    /// The ports one run of `plan` uses: each section that names a role (`dns.roleArn`,
    /// `alb.roleArn`, `replication.roleArn`, `health.roleArn`) calls its services through it,
    /// assumed with the run id as session name (crate::accounts); the rest stay the stack's own.
    /// Reaching twice gives the same ports.
    pub fn reach(&self, plan: &crate::plan::Plan, run_id: &str) -> Deps {
        use crate::accounts::{session_name, MetricsBy, Through, ThroughMetrics};
        let mut d = self.clone();
        if plan.roles().is_empty() {
            return d;
        }
        let through = |role| Through {
            accounts: self.accounts.clone(),
            role,
            session: session_name(run_id),
        };
        if let Some(role) = plan.role_of("dns") {
            d.router = Arc::new(through(role));
        }
        if let Some(role) = plan.role_of("alb") {
            d.load_balancer = Arc::new(through(role));
        }
        let lag: Arc<dyn Metrics> = match plan.role_of("replication") {
            Some(role) => {
                d.replication = Arc::new(through(role.clone()));
                Arc::new(ThroughMetrics(through(role)))
            }
            None => self.metrics.clone(),
        };
        let alarms: Arc<dyn Metrics> = match plan.role_of("health") {
            Some(role) => Arc::new(ThroughMetrics(through(role))),
            None => self.metrics.clone(),
        };
        d.metrics = Arc::new(MetricsBy { lag, alarms });
        d
    }
}

/// Reads the values of `headers` (`crate::secret`) for one request. The error keeps the
/// store's kind (a throttled read is retried) and names the header and its reference, never a
/// value.
pub(crate) async fn resolve_headers(
    deps: &Deps,
    headers: &crate::secret::Headers,
) -> Result<crate::secret::ResolvedHeaders, PortError> {
    use crate::secret::HeaderValue;
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let HeaderValue::Ref(r) = value else {
            return Err(PortError::new(
                "secrets",
                PortErrorKind::Invalid,
                "InlineHeader",
                format!("header {name}: inline values are refused"),
            ));
        };
        let stored = deps.secrets.read(r.arn()).await.map_err(|e| PortError {
            message: format!("header {name} from {}: {} {}", r.arn(), e.code, e.message),
            ..e
        })?;
        let value = crate::secret::header_value(r, &stored).map_err(|m| {
            PortError::new(
                "secrets",
                PortErrorKind::Invalid,
                "UnusableSecret",
                format!("header {name}: {m}"),
            )
        })?;
        out.push((name.clone(), value));
    }
    Ok(out)
}

/// The `run/key` of notices sent by this process (one Lambda execution environment, reused for
/// the retries Step Functions sends it: AWS Lambda, "Lambda execution environment lifecycle",
/// https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html). A retry that
/// reaches another environment while the run table is still failing may send a notice again.
#[derive(Debug, Default)]
pub struct SentNotices(std::sync::Mutex<std::collections::HashSet<String>>);

impl SentNotices {
    fn contains(&self, key: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }
    fn insert(&self, key: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
    }
}

/// Where the stack runs, for the pre-flight checks a plan cannot make alone: data hooks must be
/// Lambda functions of the stack's partition, account and region (the roles may invoke no
/// other), unless the deployer lists them. None: not known (the check is skipped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StackContext {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    /// Hook function ARN patterns (`*` wildcard) allowed elsewhere (`AllowedHookFunctionArns`).
    pub allowed_hook_arns: Vec<String>,
    /// The record names the stack's roles may change (`AllowedRecordNames`); None: not known.
    pub allowed_record_names: Option<Vec<String>>,
    /// The hosted zones the stack's roles may change (`AllowedHostedZoneIds`); None: not known.
    pub allowed_zone_ids: Option<Vec<String>>,
}

impl StackContext {
    /// Why a hook's Lambda ARN is outside the stack, or None.
    pub fn foreign_hook(&self, arn: &str) -> Option<String> {
        let parts: Vec<&str> = arn.split(':').collect();
        let (partition, region, account) = (parts.get(1)?, parts.get(3)?, parts.get(4)?);
        let differs =
            |ours: &Option<String>, theirs: &str| ours.as_deref().is_some_and(|o| o != theirs);
        let outside = differs(&self.partition, partition)
            || differs(&self.region, region)
            || differs(&self.account, account);
        if !outside
            || self
                .allowed_hook_arns
                .iter()
                .any(|p| crate::plan::glob(p, arn))
        {
            return None;
        }
        Some(format!(
            "{arn} is outside the stack's partition, region and account ({}:{}:{}), whose roles may invoke no other function; list it in the stack's AllowedHookFunctionArns to allow it",
            self.partition.as_deref().unwrap_or("?"),
            self.region.as_deref().unwrap_or("?"),
            self.account.as_deref().unwrap_or("?"),
        ))
    }
}

/// A step as a Lambda runs it: its JSON payload and the ports in, its JSON output out.
pub type StepFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, StepError>> + Send + 'a>>;
pub type Runner = for<'a> fn(Value, &'a Deps) -> StepFuture<'a>;

/// One runner per function. A function's binary names its own runner
/// (`cutover_lambda::serve("validate-cutover", run::validate_cutover)`), so it links that
/// step's code alone; `dispatch` finds any of them by name for the local engine.
/// Payloads are checked strictly at this boundary.
pub mod run {
    use super::*;

    fn input<T: serde::de::DeserializeOwned>(function: &str, v: Value) -> Result<T, StepError> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            StepError::invalid(format!("{function} event: {}: {}", e.path(), e.inner()))
        })
    }

    fn output<T: serde::Serialize>(v: T) -> Result<Value, StepError> {
        serde_json::to_value(v)
            .map_err(|e| StepError::invalid(format!("output not serializable: {e}")))
    }

    /// `pub fn $runner`: decodes the payload for `$function`, runs `$step`, encodes its output.
    macro_rules! runner {
        ($(#[$doc:meta])* $runner:ident, $function:literal, $step:path) => {
            $(#[$doc])*
            pub fn $runner(payload: Value, deps: &Deps) -> StepFuture<'_> {
                Box::pin(async move { output($step(input($function, payload)?, deps).await?) })
            }
        };
    }

    runner!(
        validate_cutover,
        "validate-cutover",
        super::validate_cutover
    );
    runner!(
        start_replication,
        "start-replication",
        super::start_replication
    );
    runner!(
        check_replication_lag,
        "check-replication-lag",
        super::check_replication_lag
    );
    runner!(check_launch, "check-launch", super::check_launch);
    runner!(check_dns_sync, "check-dns-sync", super::check_dns_sync);
    runner!(
        run_health_check,
        "run-health-check",
        super::run_health_check
    );
    runner!(
        rollback_cutover,
        "rollback-cutover",
        super::rollback_cutover
    );
    runner!(
        request_approval,
        "request-approval",
        super::request_approval
    );
    runner!(
        finalize_cutover,
        "finalize-cutover",
        super::finalize_cutover
    );
    runner!(data_cutover, "data-cutover", super::data_cutover);
    runner!(close_run, "close-run", super::close_run);
    runner!(start_wave, "start-wave", super::start_wave);
    runner!(next_wave_round, "next-wave-round", super::next_wave_round);
    runner!(close_wave, "close-wave", super::close_wave);
    runner!(shift_weight, "shift-traffic", super::shift_traffic);
    runner!(collapse, "shift-traffic", super::collapse_to_simple);
    runner!(reconcile, "reconcile-run", super::reconcile_run);
    runner!(
        /// The run table's stream to EventBridge (docs/events.md).
        publish_events,
        "publish-events",
        super::publish_events
    );
    runner!(sweep, "reconcile-run", super::sweep_runs);

    /// The shift-traffic function; it also collapses the pair to one record
    /// (`dns.finalForm: simple`).
    pub fn shift_traffic(payload: Value, deps: &Deps) -> StepFuture<'_> {
        if payload.get("collapse").is_some() {
            collapse(payload, deps)
        } else {
            shift_weight(payload, deps)
        }
    }

    /// The reconcile-run function; it also sweeps active runs on a schedule (stuck, abandoned,
    /// expiring gates).
    pub fn reconcile_run(payload: Value, deps: &Deps) -> StepFuture<'_> {
        if payload.get("sweep").is_some() {
            sweep(payload, deps)
        } else {
            reconcile(payload, deps)
        }
    }
}

/// The runner of the named function, if there is one.
pub fn runner(function: &str) -> Option<Runner> {
    Some(match function {
        "validate-cutover" => run::validate_cutover,
        "start-replication" => run::start_replication,
        "check-replication-lag" => run::check_replication_lag,
        "check-launch" => run::check_launch,
        "shift-traffic" => run::shift_traffic,
        "check-dns-sync" => run::check_dns_sync,
        "run-health-check" => run::run_health_check,
        "rollback-cutover" => run::rollback_cutover,
        "request-approval" => run::request_approval,
        "finalize-cutover" => run::finalize_cutover,
        "data-cutover" => run::data_cutover,
        "close-run" => run::close_run,
        "reconcile-run" => run::reconcile_run,
        "start-wave" => run::start_wave,
        "next-wave-round" => run::next_wave_round,
        "close-wave" => run::close_wave,
        "publish-events" => run::publish_events,
        _ => return None,
    })
}

/// Runs the named step on a JSON payload (the local engine, which runs every step).
pub async fn dispatch(function: &str, payload: Value, deps: &Deps) -> Result<Value, StepError> {
    match runner(function) {
        Some(run) => run(payload, deps).await,
        None => Err(StepError::invalid(format!("no step named '{function}'"))),
    }
}

fn store_err(e: PortError) -> StepError {
    StepError::from_port(e, |e| StepError::Retryable(format!("run store: {e}")))
}

pub(crate) async fn load_run(deps: &Deps, run_id: &str) -> Result<RunRecord, StepError> {
    deps.store
        .load_run(run_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| StepError::invalid(format!("run {run_id} has no state: was it validated?")))
}

/// Read-modify-write of the run record under optimistic concurrency, retried on conflict.
pub(crate) async fn update_run<T>(
    deps: &Deps,
    run_id: &str,
    mut f: impl FnMut(&mut RunRecord) -> T,
) -> Result<T, StepError> {
    for _ in 0..5 {
        let mut rec = load_run(deps, run_id).await?;
        let out = f(&mut rec);
        match deps.store.save_run(&rec).await {
            Ok(()) => return Ok(out),
            Err(e) if e.kind == PortErrorKind::Conflict => continue,
            Err(e) => return Err(store_err(e)),
        }
    }
    Err(StepError::Retryable(format!(
        "run {run_id} is being updated concurrently"
    )))
}

/// The result a side-effecting step stored under `key`, if an earlier delivery finished it.
pub(crate) fn stored_result<T: serde::de::DeserializeOwned>(
    run: &RunRecord,
    key: &str,
) -> Option<Result<T, StepError>> {
    run.steps.get(key).map(|v| {
        serde_json::from_value(v.clone())
            .map_err(|e| StepError::invalid(format!("stored {key} result: {e}")))
    })
}

/// Stores a side effect's result under `key` — keeping whatever a concurrent delivery stored
/// first — with `also` applied to the run record in the same write; returns the result kept.
pub(crate) async fn remember<T: serde::Serialize + serde::de::DeserializeOwned>(
    deps: &Deps,
    run_id: &str,
    key: &str,
    out: &T,
    mut also: impl FnMut(&mut RunRecord),
) -> Result<T, StepError> {
    let stored = serde_json::to_value(out).map_err(|e| StepError::invalid(e.to_string()))?;
    let kept = update_run(deps, run_id, |rec| {
        also(rec);
        rec.steps
            .entry(key.to_string())
            .or_insert_with(|| stored.clone())
            .clone()
    })
    .await?;
    serde_json::from_value(kept).map_err(|e| StepError::invalid(e.to_string()))
}

/// Pages the people on call about a run once: a redelivered step finds `key` stored and sends
/// nothing again.
pub(crate) async fn page_once(
    deps: &Deps,
    run_id: &str,
    application: &str,
    key: &str,
    kind: &str,
    message: String,
) -> Result<(), StepError> {
    let run = load_run(deps, run_id).await?;
    if stored_result::<Value>(&run, key).is_some() {
        return Ok(());
    }
    let now = deps.clock.now();
    let sent_key = format!("{run_id}/{key}");
    if deps.sent.contains(&sent_key) {
        // Sent by an earlier attempt whose record could not be written: record it only.
        remember(deps, run_id, key, &serde_json::json!({"at": now}), |_| {}).await?;
        return Ok(());
    }
    let notice = crate::model::RunNotice {
        run_id: run_id.to_string(),
        application: application.to_string(),
        kind: kind.to_string(),
        message,
        at: now,
        dedupe_key: sent_key.clone(),
    };
    deps.notifier
        .page(&notice)
        .await
        .map_err(|e| StepError::from_port(e, |e| StepError::Retryable(e.to_string())))?;
    deps.sent.insert(sent_key);
    remember(deps, run_id, key, &serde_json::json!({"at": now}), |_| {}).await?;
    Ok(())
}

/// Tells the topic about a run once, best effort: a notice nobody must act on never fails or
/// delays the step. When it cannot be sent, the audit trail says so (and a redelivery tries again).
pub(crate) async fn notify_once(
    deps: &Deps,
    run_id: &str,
    application: &str,
    key: &str,
    kind: &str,
    message: String,
) -> Result<(), StepError> {
    match page_once(deps, run_id, application, key, kind, message).await {
        Err(StepError::Retryable(why)) => {
            let now = deps.clock.now();
            let mut ev = event(
                run_id,
                format!("{key}.failed"),
                "Notice",
                "notice-failed",
                now,
            );
            ev.message = format!("the {kind} notice was not sent: {why}");
            audit(deps, ev).await
        }
        other => other,
    }
}

/// Appends an audit event; a redelivered step finds its key taken and adds nothing. A URL's
/// credentials never reach the trail.
pub(crate) async fn audit(deps: &Deps, mut event: AuditEvent) -> Result<(), StepError> {
    event.message = crate::redact::redact_text(&event.message);
    deps.store.append_event(&event).await.map_err(store_err)?;
    Ok(())
}

pub(crate) fn event(
    run_id: &str,
    key: impl Into<String>,
    step: &str,
    kind: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> AuditEvent {
    AuditEvent {
        run_id: run_id.to_string(),
        key: key.into(),
        at,
        step: step.to_string(),
        event: kind.to_string(),
        weights: None,
        lag_seconds: None,
        healthy: None,
        actor: None,
        message: String::new(),
    }
}

/// A run id is also the execution name: 1-80 characters of letters, digits, '-' and '_'.
fn check_run_id(run_id: &str) -> Result<(), StepError> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 80
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StepError::invalid(format!(
            "runId '{run_id}' must be 1-80 letters, digits, '-' or '_'"
        )))
    }
}

/// The plan's router, or the error a plan naming neither (or both) gets.
fn router(plan: &crate::plan::Plan) -> Result<crate::plan::Router<'_>, StepError> {
    plan.router()
        .ok_or_else(|| StepError::invalid("the plan names no router: dns or alb (exactly one)"))
}

fn check_plan(plan: &crate::plan::Plan) -> Result<(), StepError> {
    plan.validate().map_err(|e| {
        StepError::ValidationFailed(e.violations().iter().map(|v| v.to_string()).collect())
    })
}

#[cfg(test)]
mod stack_tests {
    use super::StackContext;

    #[test]
    fn hooks_outside_the_stack_are_named_unless_listed() {
        let stack = StackContext {
            partition: Some("aws".into()),
            account: Some("123456789012".into()),
            region: Some("us-east-1".into()),
            allowed_hook_arns: vec![
                "arn:aws:lambda:eu-west-1:123456789012:function:shared-*".into()
            ],
            ..StackContext::default()
        };
        let ours = "arn:aws:lambda:us-east-1:123456789012:function:freeze";
        assert_eq!(stack.foreign_hook(ours), None);
        assert!(stack
            .foreign_hook("arn:aws:lambda:eu-west-1:123456789012:function:freeze")
            .is_some());
        assert_eq!(
            stack.foreign_hook("arn:aws:lambda:eu-west-1:123456789012:function:shared-freeze"),
            None,
            "listed"
        );
        assert_eq!(
            StackContext::default().foreign_hook(ours),
            None,
            "unknown: not checked"
        );
    }
}
