//! The approval HTTP API, over the same ports as the steps:
//! `GET /runs/{runId}`, `POST /runs/{runId}/approvals/{gate}`, `POST /runs/{runId}/abort`,
//! `POST /runs/{runId}/controls` (hold, resume, extend-bake, promote).
//! The caller's identity comes from the authorizer (IAM caller ARN or JWT subject); without one,
//! every route answers 403. No response ever carries a task token.

use crate::model::Decision;
use crate::ports::WaveSchedules;
use crate::steps::{
    apply_control, decide_approval_as, request_abort, ApprovalError, ControlError, ControlRequest,
    DecideApproval, DecisionOutcome, Deps, IdentityRule,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Every route this API serves, as API Gateway's route keys: the template declares each one,
/// authenticated (a template test holds it to this list).
pub const ROUTES: [&str; 8] = [
    "GET /runs/{runId}",
    "POST /runs/{runId}/approvals/{gate}",
    "POST /runs/{runId}/abort",
    "POST /runs/{runId}/controls",
    "POST /waves/{wave}/schedule",
    "GET /calendar",
    "POST /calendar",
    "POST /calendar/{wave}/skip",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    /// Who is calling, from the authorizer; None when no identity reached the function.
    pub identity: Option<String>,
    /// The caller's groups (a JWT's `cognito:groups` or `groups` claim); empty for IAM callers.
    pub groups: Vec<String>,
}

/// What the deployer allows through the API, from the stack's parameters: never from a request.
/// Every list is default deny: empty admits nobody. A plan's `approvals.approvers` narrows who
/// may decide and abort its runs, never widens it (docs/security.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bounds {
    /// May start and schedule runs and waves, and read runs (`ApiOperators`).
    pub operators: Vec<String>,
    /// May read runs, decide gates and abort runs (`ApiApprovers`).
    pub approvers: Vec<String>,
    /// Who counts as a person for the two-person rule (`SessionPinnedRoles`).
    pub identity: IdentityRule,
    /// Record names a scheduled plan may change (`AllowedRecordNames`, lower case without the
    /// trailing dot); None: not checked here (local runs).
    pub allowed_records: Option<Vec<String>>,
    /// Hosted zones a scheduled plan may change (`AllowedHostedZoneIds`).
    pub allowed_zones: Option<Vec<String>>,
}

impl Bounds {
    /// Everyone may do everything: the local engine's simulated stack, and tests of what lies
    /// behind the bounds.
    pub fn open() -> Bounds {
        Bounds {
            operators: vec!["*".into()],
            approvers: vec!["*".into()],
            ..Bounds::default()
        }
    }
}

/// Whether one of `patterns` (IAM principal ARN patterns with `*`, or `group:NAME`, matched
/// whole against the caller's groups) admits the caller. No pattern admits nobody.
/// A role's ARN (`arn:…:iam::A:role/R`) admits every session of that role
/// (`arn:…:sts::A:assumed-role/R/SESSION`), as a role principal does in a resource policy.
pub fn admits(patterns: &[String], identity: &str, groups: &[String]) -> bool {
    let role = role_of_session(identity);
    patterns.iter().any(|p| match p.strip_prefix("group:") {
        Some(g) => groups.iter().any(|x| x == g),
        None => {
            crate::plan::glob(p, identity)
                || role.as_deref().is_some_and(|r| crate::plan::glob(p, r))
        }
    })
}

/// Why the plan's gates could not be decided through the API under the stack's approvers
/// (`ApiApprovers`), each named by its field: the API admits a caller only when the stack's
/// list and the plan's `approvals.approvers` both do, so an empty stack list, or a plan entry
/// no stack entry covers, leaves gates that only expire. For `cutover run preflight`.
pub fn unreachable_approvers(plan: &crate::plan::Plan, stack: &[String]) -> Vec<String> {
    let named = &plan.approvals.approvers;
    if stack.is_empty() {
        if plan.gate_count() == 0 {
            return vec![];
        }
        return vec!["approvals: the stack's ApiApprovers is empty, so nobody may decide this plan's gates through the API: each would expire and the run roll back. Name the approvers in ApiApprovers".into()];
    }
    let mut out: Vec<String> = named
        .iter()
        .enumerate()
        .filter(|(_, p)| !stack.iter().any(|s| covers(s, p)))
        .map(|(i, p)| {
            format!(
                "approvals.approvers[{i}]: '{p}' is admitted by no entry of the stack's ApiApprovers ({}): it can never decide a gate (a plan's list only narrows the stack's)",
                stack.join(", ")
            )
        })
        .collect();
    if !named.is_empty() && out.len() == named.len() && plan.gate_count() > 0 {
        out.push("approvals.approvers: none of them is among the stack's approvers: nobody may decide this plan's gates".into());
    }
    out
}

/// Whether every caller the plan's entry `plan` admits, the stack's entry `stack` admits too, by
/// the API's own rule ([`admits`]) applied to the entry's text: a group by its name; an ARN
/// pattern when the stack's pattern matches it (its `*` then falls under one of the stack's), or,
/// for assumed-role sessions, their role's ARN.
fn covers(stack: &str, plan: &str) -> bool {
    let groups: Vec<String> = plan
        .strip_prefix("group:")
        .map(str::to_string)
        .into_iter()
        .collect();
    admits(std::slice::from_ref(&stack.to_string()), plan, &groups)
}

/// `arn:P:iam::A:role/R` for an assumed-role session of R; None for any other identity.
fn role_of_session(identity: &str) -> Option<String> {
    let parts: Vec<&str> = identity.splitn(6, ':').collect();
    if let ["arn", partition, "sts", _, account, resource] = parts.as_slice() {
        let rest = resource.strip_prefix("assumed-role/")?;
        let role = rest.split('/').next()?;
        return Some(format!("arn:{partition}:iam::{account}:role/{role}"));
    }
    None
}

/// 403 unless the stack's approvers admit the caller and the plan's `approvals.approvers`
/// (when it names any) do too.
fn authorize(
    rec: &crate::model::RunRecord,
    bounds: &Bounds,
    identity: &str,
    groups: &[String],
) -> Result<(), ApiResponse> {
    if !admits(&bounds.approvers, identity, groups) {
        return Err(error(
            403,
            format!("{identity} is not among the stack's approvers (ApiApprovers)"),
        ));
    }
    match &rec.plan {
        Some(plan) if !plan.approvals.allows(identity, groups) => Err(error(
            403,
            format!(
                "{identity} is not among the approvers of application {} (approvals.approvers)",
                rec.application
            ),
        )),
        _ => Ok(()),
    }
}

/// The run, read and checked with [`authorize`]: 404 unknown, 503 unreadable, 403 refused.
async fn authorize_run(
    run: &str,
    deps: &Deps,
    bounds: &Bounds,
    identity: &str,
    groups: &[String],
) -> Result<(), ApiResponse> {
    match deps.store.load_run(run).await {
        Ok(None) => Err(error(404, format!("run {run} not found"))),
        Err(e) => Err(error(503, e.to_string())),
        Ok(Some(rec)) => authorize(&rec, bounds, identity, groups),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

fn error(status: u16, message: impl Into<String>) -> ApiResponse {
    ApiResponse {
        status,
        body: json!({ "error": message.into() }),
    }
}

fn bad_field(field: &str, message: impl Into<String>) -> ApiResponse {
    ApiResponse {
        status: 400,
        body: json!({ "error": message.into(), "field": field }),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Decision,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AbortBody {
    reason: String,
}

fn parse<T: serde::de::DeserializeOwned>(body: &Option<String>) -> Result<T, ApiResponse> {
    let text = body.as_deref().unwrap_or("");
    let v: Value =
        serde_json::from_str(text).map_err(|e| bad_field("(body)", format!("not JSON: {e}")))?;
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // A missing field is reported at its parent; name the field itself.
        let field = if path == "." {
            inner.split('`').nth(1).unwrap_or("(body)").to_string()
        } else {
            path
        };
        bad_field(&field, inner)
    })
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 80
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The API over open bounds (the local engine's simulated stack; tests).
pub async fn handle_api(req: &ApiRequest, deps: &Deps) -> ApiResponse {
    handle_api_with(req, deps, None, &Bounds::open()).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScheduleBody {
    at: chrono::DateTime<chrono::Utc>,
    /// The wave itself; without it, the schedule starts the calendar's queued wave of the
    /// path's name (its input names the wave; the plans stay in the run table).
    #[serde(default)]
    wave: Option<crate::steps::WaveSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct QueueBody {
    wave: crate::steps::WaveSpec,
    /// Firings take the queued wave of the lowest order first; default: after every wave on
    /// the calendar.
    #[serde(default)]
    order: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipBody {
    #[serde(default)]
    reason: Option<String>,
}

/// 400 naming the field unless every plan of `w` changes only what the stack's allow-lists
/// admit (`field` prefixes the names: `wave`).
fn within_allow_lists(w: &crate::steps::WaveSpec, bounds: &Bounds) -> Result<(), ApiResponse> {
    for (i, a) in w.applications.iter().enumerate() {
        let Some(dns) = &a.plan.dns else { continue };
        if let Some((field, why)) = crate::steps::dns_outside_allow_lists(
            dns,
            bounds.allowed_records.as_deref(),
            bounds.allowed_zones.as_deref(),
        ) {
            return Err(bad_field(
                &format!("wave.applications[{i}].plan.dns.{field}"),
                why,
            ));
        }
    }
    let problems = crate::steps::wave_problems(w);
    if !problems.is_empty() {
        return Err(bad_field("wave", problems.join("; ")));
    }
    Ok(())
}

/// `POST /calendar`: the wave queued on the calendar, its plans first (a firing never finds an
/// entry without them). A wave of the same name that is queued or running is a conflict; one
/// that ended is queued again.
async fn queue_wave(body: QueueBody, identity: &str, deps: &Deps) -> ApiResponse {
    use crate::model::{CalendarApp, CalendarEntry, CalendarState};
    let w = &body.wave;
    let now = deps.clock.now();
    if let Some(win) = &w.window {
        if win.not_after <= now {
            return bad_field(
                "wave.window.notAfter",
                "has passed: no firing could take the wave",
            );
        }
    }
    let entries = match deps.store.calendar().await {
        Ok(e) => e,
        Err(e) => return error(503, e.to_string()),
    };
    let existing = entries.iter().find(|e| e.wave == w.wave);
    if let Some(e) = existing {
        if matches!(e.state, CalendarState::Queued | CalendarState::Running) {
            return error(
                409,
                format!("wave {} is {} on the calendar", e.wave, e.state.as_str()),
            );
        }
    }
    let order = body
        .order
        .unwrap_or_else(|| entries.iter().map(|e| e.order + 1).max().unwrap_or(1));
    let key = crate::steps::calendar_plans_key(&w.wave);
    for (i, a) in w.applications.iter().enumerate() {
        if let Err(e) = deps.store.save_wave_plan(&key, i, &a.plan).await {
            return error(503, e.to_string());
        }
    }
    let entry = CalendarEntry {
        wave: w.wave.clone(),
        order,
        window: w.window,
        max_concurrency: w.max_concurrency,
        scheduling_interval_seconds: w.scheduling_interval_seconds,
        handover_after_events: w.handover_after_events,
        applications: w
            .applications
            .iter()
            .map(|a| CalendarApp {
                application: a.application.clone(),
                depends_on: a.depends_on.clone(),
            })
            .collect(),
        state: CalendarState::Queued,
        queued_at: now,
        queued_by: identity.to_string(),
        wave_run_id: None,
        taken_at: None,
        note: None,
        version: existing.map(|e| e.version).unwrap_or(0),
    };
    match deps.store.save_calendar_entry(&entry).await {
        Ok(()) => ApiResponse {
            status: 201,
            body: json!({"wave": entry.wave, "order": entry.order, "state": "queued", "applications": entry.applications.len(), "queuedBy": identity}),
        },
        Err(e) if e.kind == crate::ports::PortErrorKind::Conflict => error(409, e.to_string()),
        Err(e) => error(503, e.to_string()),
    }
}

/// All routes, with `POST /waves/{wave}/schedule` served when a scheduler is configured.
pub async fn handle_api_with(
    req: &ApiRequest,
    deps: &Deps,
    schedules: Option<&dyn WaveSchedules>,
    bounds: &Bounds,
) -> ApiResponse {
    let Some(identity) = req.identity.as_deref().filter(|i| !i.trim().is_empty()) else {
        return error(403, "no caller identity reached the API");
    };
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["runs", run]) if valid_segment(run) => {
            let stack_allows = admits(&bounds.operators, identity, &req.groups)
                || admits(&bounds.approvers, identity, &req.groups);
            if !stack_allows {
                return error(
                    403,
                    format!("{identity} is neither an operator nor an approver of this stack (ApiOperators, ApiApprovers)"),
                );
            }
            get_run(run, deps).await
        }
        ("POST", ["runs", run, "approvals", gate]) if valid_segment(run) && valid_segment(gate) => {
            let body: DecisionBody = match parse(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            if body.reason.as_ref().is_some_and(|r| r.len() > 1000) {
                return bad_field("reason", "at most 1000 characters");
            }
            if let Err(r) = authorize_run(run, deps, bounds, identity, &req.groups).await {
                return r;
            }
            match decide_approval_as(
                run,
                gate,
                DecideApproval {
                    decision: body.decision,
                    reason: body.reason,
                },
                identity,
                &bounds.identity,
                deps,
            )
            .await
            {
                Ok(DecisionOutcome::Decided(a)) => ApiResponse {
                    status: 200,
                    body: json!({ "runId": run, "gate": gate, "decision": a.decision, "by": a.decided_by, "at": a.decided_at }),
                },
                Ok(DecisionOutcome::WaitingForSecondApprover(a)) => ApiResponse {
                    status: 202,
                    body: json!({ "runId": run, "gate": gate, "approvedBy": a.approvals, "waitingFor": "a second, different approver" }),
                },
                Err(ApprovalError::NotFound { .. }) => {
                    error(404, format!("run {run} has no gate {gate}"))
                }
                Err(e @ (ApprovalError::AlreadyDecided(_) | ApprovalError::SameApprover(_))) => {
                    error(409, e.to_string())
                }
                Err(e @ ApprovalError::Expired(_)) => error(410, e.to_string()),
                Err(ApprovalError::Invalid(m)) => bad_field("(identity)", m),
                Err(ApprovalError::Unavailable(m)) => error(503, m),
                Err(e @ ApprovalError::Raced) => error(503, e.to_string()),
            }
        }
        ("POST", ["runs", run, "controls"]) if valid_segment(run) => {
            let body: ControlRequest = match parse(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            // Steering is an approver's, as deciding a gate is: the stack's approvers and the
            // plan's, checked before anything in the body counts.
            if let Err(r) = authorize_run(run, deps, bounds, identity, &req.groups).await {
                return r;
            }
            match apply_control(run, &body, identity, deps).await {
                Ok(answer) => ApiResponse {
                    status: 200,
                    body: answer,
                },
                Err(ControlError::NotFound(_)) => error(404, format!("run {run} not found")),
                Err(ControlError::BadField { field, message }) => bad_field(field, message),
                Err(e @ ControlError::Conflict(_)) => error(409, e.to_string()),
                Err(ControlError::Unavailable(m)) => error(503, m),
            }
        }
        ("POST", ["runs", run, "abort"]) if valid_segment(run) => {
            let body: AbortBody = match parse(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            if body.reason.trim().is_empty() || body.reason.len() > 1000 {
                return bad_field("reason", "1-1000 characters");
            }
            if let Err(r) = authorize_run(run, deps, bounds, identity, &req.groups).await {
                return r;
            }
            let reason = format!("{identity}: {}", body.reason);
            if let Err(e) = request_abort(run, &reason, deps).await {
                return error(503, e.to_string());
            }
            let mut ev = crate::model::AuditEvent {
                run_id: run.to_string(),
                key: "abort#requested".into(),
                at: deps.clock.now(),
                step: "AbortRun".into(),
                event: "abort-requested".into(),
                weights: None,
                lag_seconds: None,
                healthy: None,
                actor: Some(identity.to_string()),
                message: body.reason.clone(),
            };
            ev.message.truncate(1000);
            if let Err(e) = deps.store.append_event(&ev).await {
                return error(503, e.to_string());
            }
            // A pending gate fails at once, so an abort never waits for a human. A gate whose
            // callback could not be sent is named, so the caller can try again.
            let mut failed = vec![];
            let mut not_failed = vec![];
            match deps.store.approvals(run).await {
                Ok(approvals) => {
                    for a in approvals.into_iter().filter(|a| a.decision.is_none()) {
                        let sent = match deps.store.load_approval(run, &a.gate).await {
                            Ok(Some(full)) => {
                                match deps.vault.open(&full.sealed_token, run, &a.gate).await {
                                    Ok(token) => deps
                                        .callbacks
                                        .send_failure(&token, "Aborted", &reason)
                                        .await
                                        .map_err(|e| e.to_string()),
                                    Err(e) => Err(e.to_string()),
                                }
                            }
                            Ok(None) => Err("the gate disappeared".into()),
                            Err(e) => Err(e.to_string()),
                        };
                        match sent {
                            Ok(()) => failed.push(a.gate),
                            Err(e) => not_failed.push(json!({"gate": a.gate, "error": e})),
                        }
                    }
                }
                Err(e) => not_failed.push(json!({"gate": "*", "error": e.to_string()})),
            }
            ApiResponse {
                status: 202,
                body: json!({
                    "runId": run,
                    "abortRequested": reason,
                    "gatesFailed": failed,
                    "gatesNotFailed": not_failed,
                }),
            }
        }
        ("POST", ["waves", wave, "schedule"]) if valid_segment(wave) => {
            // Who may start cutovers is the deployer's to say: the caller is checked against
            // the stack's operators before anything in the body counts.
            if !admits(&bounds.operators, identity, &req.groups) {
                return error(
                    403,
                    format!("{identity} may not schedule waves on this stack (ApiOperators)"),
                );
            }
            let Some(schedules) = schedules else {
                return error(404, "scheduling is not configured for this API");
            };
            let body: ScheduleBody = match parse(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let now = deps.clock.now();
            if body.at <= now {
                return bad_field("at", "must be in the future");
            }
            let (window, input) = match &body.wave {
                Some(w) => {
                    if w.wave != *wave {
                        return bad_field(
                            "wave.wave",
                            format!("'{}' differs from the path's '{wave}'", w.wave),
                        );
                    }
                    if let Err(r) = within_allow_lists(w, bounds) {
                        return r;
                    }
                    (w.window, json!({ "wave": w }).to_string())
                }
                // The queued wave by reference: any size schedules.
                None => {
                    let entries = match deps.store.calendar().await {
                        Ok(e) => e,
                        Err(e) => return error(503, e.to_string()),
                    };
                    let Some(e) = entries.iter().find(|e| e.wave == *wave) else {
                        return error(404, format!("wave {wave} is not on the calendar: queue it (POST /calendar) or send it whole"));
                    };
                    if e.state != crate::model::CalendarState::Queued {
                        return error(
                            409,
                            format!("wave {wave} is {} on the calendar", e.state.as_str()),
                        );
                    }
                    (
                        e.window,
                        json!({ "calendar": { "wave": wave } }).to_string(),
                    )
                }
            };
            if let Some(w) = &window {
                if !w.contains(body.at) {
                    return bad_field(
                        "at",
                        format!(
                            "outside the wave's window ({} to {})",
                            w.not_before, w.not_after
                        ),
                    );
                }
            }
            match schedules.schedule_wave(wave, body.at, &input).await {
                Ok(arn) => ApiResponse {
                    status: 201,
                    body: json!({ "wave": wave, "scheduleArn": arn, "at": body.at, "requestedBy": identity }),
                },
                Err(e) if e.kind == crate::ports::PortErrorKind::Invalid => {
                    bad_field("(schedule)", e.to_string())
                }
                Err(e) if e.kind == crate::ports::PortErrorKind::Conflict => {
                    error(409, e.to_string())
                }
                Err(e) => error(503, e.to_string()),
            }
        }
        ("GET", ["calendar"]) => {
            if !admits(&bounds.operators, identity, &req.groups) {
                return error(
                    403,
                    format!("{identity} may not read the calendar (ApiOperators)"),
                );
            }
            match deps.store.calendar().await {
                Ok(mut entries) => {
                    entries.sort_by_key(|e| (e.order, e.queued_at));
                    ApiResponse {
                        status: 200,
                        body: json!({ "waves": entries }),
                    }
                }
                Err(e) => error(503, e.to_string()),
            }
        }
        ("POST", ["calendar"]) => {
            if !admits(&bounds.operators, identity, &req.groups) {
                return error(
                    403,
                    format!("{identity} may not queue waves on this stack (ApiOperators)"),
                );
            }
            let body: QueueBody = match parse(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            if let Err(r) = within_allow_lists(&body.wave, bounds) {
                return r;
            }
            queue_wave(body, identity, deps).await
        }
        ("POST", ["calendar", wave, "skip"]) if valid_segment(wave) => {
            if !admits(&bounds.operators, identity, &req.groups) {
                return error(
                    403,
                    format!("{identity} may not change the calendar (ApiOperators)"),
                );
            }
            let body: SkipBody = match parse(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let entries = match deps.store.calendar().await {
                Ok(e) => e,
                Err(e) => return error(503, e.to_string()),
            };
            let Some(e) = entries.into_iter().find(|e| e.wave == *wave) else {
                return error(404, format!("wave {wave} is not on the calendar"));
            };
            if e.state != crate::model::CalendarState::Queued {
                return error(
                    409,
                    format!(
                        "wave {wave} is {}: only a queued wave is skipped",
                        e.state.as_str()
                    ),
                );
            }
            let mut reason = body.reason.unwrap_or_else(|| "no reason given".into());
            reason.truncate(500);
            let next = crate::model::CalendarEntry {
                state: crate::model::CalendarState::Skipped,
                note: Some(format!("skipped by {identity}: {reason}")),
                ..e
            };
            match deps.store.save_calendar_entry(&next).await {
                Ok(()) => ApiResponse {
                    status: 200,
                    body: json!({"wave": wave, "state": "skipped", "by": identity}),
                },
                Err(e) if e.kind == crate::ports::PortErrorKind::Conflict => {
                    error(409, e.to_string())
                }
                Err(e) => error(503, e.to_string()),
            }
        }
        (_, ["runs", ..]) => error(404, format!("no route {} {}", req.method, req.path)),
        _ => error(404, format!("no route {} {}", req.method, req.path)),
    }
}

async fn get_run(run: &str, deps: &Deps) -> ApiResponse {
    let rec = match deps.store.load_run(run).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(404, format!("run {run} not found")),
        Err(e) => return error(503, e.to_string()),
    };
    let approvals = deps.store.approvals(run).await.unwrap_or_default();
    let events = deps.store.events(run).await.unwrap_or_default();
    let recent: Vec<&crate::model::AuditEvent> = events
        .iter()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let last_health = events.iter().rev().find_map(|e| e.healthy);
    ApiResponse {
        status: 200,
        body: json!({
            "runId": rec.run_id,
            "application": rec.application,
            "phase": rec.phase,
            "outcome": rec.outcome,
            "error": rec.error,
            "weights": rec.weights,
            "lagSeconds": rec.last_lag_seconds,
            "healthy": last_health,
            "abortRequested": rec.abort_requested,
            "controls": rec.controls,
            "pendingGates": approvals.iter().filter(|a| a.decision.is_none()).map(|a| json!({"gate": a.gate, "expiresAt": a.expires_at, "approvedBy": a.approvals})).collect::<Vec<_>>(),
            "approvals": approvals,
            "recentEvents": recent,
        }),
    }
}

#[cfg(test)]
mod approver_tests {
    use super::unreachable_approvers;
    use crate::plan::Plan;

    const PLAN: &str = r#"
application: orders
replication: {kind: dms, taskArn: "arn:aws:dms:us-east-1:123456789012:task:ORDERS", maxLagSeconds: 30, stableSamples: 3, sampleIntervalSeconds: 60, deadlineSeconds: 7200}
dns:
  hostedZoneId: Z0123456789
  recordName: orders.example.com
  recordType: CNAME
  blue:  {setIdentifier: blue,  value: blue-lb.example.com}
  green: {setIdentifier: green, value: green-lb.example.com}
traffic:
  steps:
    - {weight: 50, bakeSeconds: 600}
    - {weight: 100, bakeSeconds: 900}
health:
  http: [{url: "https://green.example.com/health", expectStatus: 200}]
"#;

    fn plan(approvers: &[&str], gate: bool) -> Plan {
        let mut p = Plan::parse(PLAN, false).expect("plan");
        p.approvals.approvers = approvers.iter().map(|s| s.to_string()).collect();
        for s in &mut p.traffic.steps {
            s.approval = None;
        }
        p.finalize.enabled = false;
        if gate {
            p.traffic.steps[0].approval = Some("go".into());
        }
        p
    }

    fn list(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn an_empty_stack_list_leaves_gates_undecidable_and_matters_only_with_gates() {
        assert_eq!(unreachable_approvers(&plan(&[], true), &[]).len(), 1);
        assert!(unreachable_approvers(&plan(&[], false), &[]).is_empty());
    }

    #[test]
    fn a_plan_entry_is_reachable_only_where_a_stack_entry_covers_it() {
        let stack = list(&["arn:aws:iam::123456789012:role/Ops*", "group:release"]);
        for ok in [
            "arn:aws:iam::123456789012:role/OpsLead",
            "arn:aws:iam::123456789012:role/Ops*",
            "arn:aws:sts::123456789012:assumed-role/OpsOnCall/alice",
            "group:release",
        ] {
            assert!(
                unreachable_approvers(&plan(&[ok], true), &stack).is_empty(),
                "{ok}"
            );
        }
        for bad in [
            "arn:aws:iam::123456789012:role/*",
            "arn:aws:iam::123456789012:role/Dev",
            "arn:aws:iam::999999999999:role/Ops",
            "group:dev",
        ] {
            let v = unreachable_approvers(&plan(&[bad], true), &stack);
            assert!(
                v[0].starts_with("approvals.approvers[0]:") && v[0].contains(bad),
                "{bad}: {v:?}"
            );
            assert!(v.last().unwrap().contains("nobody may decide"), "{v:?}");
        }
        // One reachable entry of two: the other is named, the gates can still be decided.
        let v = unreachable_approvers(&plan(&["group:dev", "group:release"], true), &stack);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("approvals.approvers[0]:"), "{v:?}");
    }
}
