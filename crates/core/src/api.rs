//! The approval HTTP API, over the same ports as the steps:
//! `GET /runs/{runId}`, `POST /runs/{runId}/approvals/{gate}`, `POST /runs/{runId}/abort`.
//! The caller's identity comes from the authorizer (IAM caller ARN or JWT subject); without one,
//! every route answers 403. No response ever carries a task token.

use crate::model::Decision;
use crate::ports::WaveSchedules;
use crate::steps::{
    decide_approval, request_abort, ApprovalError, DecideApproval, DecisionOutcome, Deps,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

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

/// 403 unless the plan's `approvals.approvers` admit the caller.
fn authorize(
    rec: &crate::model::RunRecord,
    identity: &str,
    groups: &[String],
) -> Result<(), ApiResponse> {
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

pub async fn handle_api(req: &ApiRequest, deps: &Deps) -> ApiResponse {
    handle_api_with(req, deps, None).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScheduleBody {
    at: chrono::DateTime<chrono::Utc>,
    wave: crate::steps::WaveSpec,
}

/// All routes, with `POST /waves/{wave}/schedule` served when a scheduler is configured.
pub async fn handle_api_with(
    req: &ApiRequest,
    deps: &Deps,
    schedules: Option<&dyn WaveSchedules>,
) -> ApiResponse {
    let Some(identity) = req.identity.as_deref().filter(|i| !i.trim().is_empty()) else {
        return error(403, "no caller identity reached the API");
    };
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["runs", run]) if valid_segment(run) => get_run(run, deps).await,
        ("POST", ["runs", run, "approvals", gate]) if valid_segment(run) && valid_segment(gate) => {
            let body: DecisionBody = match parse(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            if body.reason.as_ref().is_some_and(|r| r.len() > 1000) {
                return bad_field("reason", "at most 1000 characters");
            }
            match deps.store.load_run(run).await {
                Ok(None) => return error(404, format!("run {run} not found")),
                Err(e) => return error(503, e.to_string()),
                Ok(Some(rec)) => {
                    if let Err(r) = authorize(&rec, identity, &req.groups) {
                        return r;
                    }
                }
            }
            match decide_approval(
                run,
                gate,
                DecideApproval {
                    decision: body.decision,
                    reason: body.reason,
                },
                identity,
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
        ("POST", ["runs", run, "abort"]) if valid_segment(run) => {
            let body: AbortBody = match parse(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            if body.reason.trim().is_empty() || body.reason.len() > 1000 {
                return bad_field("reason", "1-1000 characters");
            }
            match deps.store.load_run(run).await {
                Ok(None) => return error(404, format!("run {run} not found")),
                Err(e) => return error(503, e.to_string()),
                Ok(Some(rec)) => {
                    if let Err(r) = authorize(&rec, identity, &req.groups) {
                        return r;
                    }
                }
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
                            Ok(Some(full)) => deps
                                .callbacks
                                .send_failure(&full.task_token, "Aborted", &reason)
                                .await
                                .map_err(|e| e.to_string()),
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
            let Some(schedules) = schedules else {
                return error(404, "scheduling is not configured for this API");
            };
            let body: ScheduleBody = match parse(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            if body.wave.wave != *wave {
                return bad_field(
                    "wave.wave",
                    format!("'{}' differs from the path's '{wave}'", body.wave.wave),
                );
            }
            let now = deps.clock.now();
            if body.at <= now {
                return bad_field("at", "must be in the future");
            }
            if let Some(w) = &body.wave.window {
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
            // Scheduling starts every application of the wave: the caller must be allowed to
            // run each of them.
            if let Some(app) = body
                .wave
                .applications
                .iter()
                .find(|a| !a.plan.approvals.allows(identity, &req.groups))
            {
                return error(
                    403,
                    format!(
                        "{identity} is not among the approvers of application {} (approvals.approvers)",
                        app.plan.application
                    ),
                );
            }
            // The same checks the wave's first step makes, before anything is scheduled.
            let check = crate::steps::StartWaveInput {
                wave_run_id: "schedule-check".into(),
                wave: crate::steps::WaveSpec {
                    window: None,
                    ..body.wave.clone()
                },
            };
            if let Err(e) = crate::steps::start_wave(check, deps).await {
                return bad_field("wave", e.to_string());
            }
            let input = json!({ "wave": body.wave }).to_string();
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
            "pendingGates": approvals.iter().filter(|a| a.decision.is_none()).map(|a| json!({"gate": a.gate, "expiresAt": a.expires_at, "approvedBy": a.approvals})).collect::<Vec<_>>(),
            "approvals": approvals,
            "recentEvents": recent,
        }),
    }
}
