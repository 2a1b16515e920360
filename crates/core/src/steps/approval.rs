//! RequestApproval (stores the task token server side, notifies without it) and the decision
//! path shared by the simulated approver and the approval API.

use super::{audit, check_run_id, event, store_err, Deps};
use crate::error::StepError;
use crate::model::{ApprovalNotice, ApprovalRecord, Approver, Decision};
use crate::plan::Plan;
use crate::ports::PortErrorKind;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestApprovalInput {
    pub run_id: String,
    pub plan: Plan,
    pub gate: String,
    pub task_token: String,
    #[serde(default)]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestApprovalOutput {
    pub gate: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn request_approval(
    input: RequestApprovalInput,
    deps: &Deps,
) -> Result<RequestApprovalOutput, StepError> {
    check_run_id(&input.run_id)?;
    if input.task_token.is_empty() || input.task_token.len() > 2048 {
        return Err(StepError::invalid("taskToken must be 1-2048 characters"));
    }
    let now = deps.clock.now();
    let digest = token_digest(&input.task_token);
    let run = deps
        .store
        .load_run(&input.run_id)
        .await
        .map_err(store_err)?;
    let existing = deps
        .store
        .load_approval(&input.run_id, &input.gate)
        .await
        .map_err(store_err)?;
    if let Some(a) = &existing {
        if a.decision.is_some() {
            return Err(StepError::invalid(format!(
                "gate {} of run {} was decided already",
                input.gate, input.run_id
            )));
        }
        if a.token_digest == digest && a.notified {
            // Redelivered: the gate is open and the humans were told once already.
            return Ok(RequestApprovalOutput {
                gate: input.gate,
                expires_at: a.expires_at,
            });
        }
    }
    // What approving does, in words, for the gates whose effect is not a traffic step.
    let approving = if input.gate == crate::plan::ROLLBACK_AFTER_SWITCH_GATE {
        Some("rolls back DNS and switches the application back to blue's database: every write green's database took since the switch is lost. Reject, or let the gate expire, to keep green")
    } else if input.plan.data.approval.as_deref() == Some(input.gate.as_str()) {
        Some("freezes writes, waits for replication to drain and switches the application to green's database: the point of no return")
    } else if input.gate == crate::plan::FINALIZE_GATE {
        Some("stops replication (DMS) or finalizes the MGN cutover: the rollback window closes")
    } else {
        None
    };
    let evidence = json!({
        "weights": run.as_ref().and_then(|r| r.weights),
        "lagSeconds": run.as_ref().and_then(|r| r.last_lag_seconds),
        "nextWeight": input.weight,
        "approving": approving,
        "database": run.as_ref().and_then(|r| r.data.switched_to.clone()).unwrap_or_else(|| "blue".into()),
    });
    let expires_at = now + Duration::seconds(input.plan.approvals.expires_seconds as i64);
    // A redelivery of the same request keeps the gate as it is (its seal included).
    let same_request = existing.as_ref().filter(|a| a.token_digest == digest);
    let sealed_token = match same_request {
        Some(a) => a.sealed_token.clone(),
        None => deps
            .vault
            .seal(&input.task_token, &input.run_id, &input.gate)
            .await
            .map_err(|e| StepError::Retryable(format!("sealing the task token: {e}")))?,
    };
    let record = ApprovalRecord {
        run_id: input.run_id.clone(),
        gate: input.gate.clone(),
        sealed_token,
        token_digest: digest.clone(),
        requested_at: now,
        expires_at,
        decision: None,
        decided_by: None,
        decided_at: None,
        reason: None,
        evidence: evidence.clone(),
        required_approvals: if input.plan.approvals.two_person_gates.contains(&input.gate) {
            2
        } else {
            1
        },
        approvals: vec![],
        callback_sent: false,
        notified: false,
        version: 0,
    };
    // A redelivery whose notice failed keeps the gate's first request time and expiry.
    let mut record = match (same_request, &existing) {
        (Some(a), _) => a.clone(),
        (None, Some(a)) => ApprovalRecord {
            version: a.version,
            ..record
        },
        (None, None) => record,
    };
    deps.store
        .save_approval(&record, true)
        .await
        .map_err(store_err)?;
    record.version += 1;
    let ev = &record.evidence;
    let weights = match (ev.pointer("/weights/blue"), ev.pointer("/weights/green")) {
        (Some(b), Some(g)) => format!("blue {b} / green {g}"),
        _ => "blue 100 / green 0".into(),
    };
    let lag = ev["lagSeconds"]
        .as_f64()
        .map(|l| format!("{l:.1} s"))
        .unwrap_or_else(|| "not sampled yet".into());
    let approving = match (ev["approving"].as_str(), ev["nextWeight"].as_u64()) {
        (Some(a), _) => a.to_string(),
        (None, Some(w)) => format!("shifts green to {w}% of the traffic"),
        (None, None) => "lets the run continue".into(),
    };
    let summary = format!(
        "{app}, run {run}: gate {gate} waits for a decision. Traffic now: {weights}; replication lag: {lag}. Approving {approving}. Rejecting stops the run (rolled back if traffic moved). No decision by {exp} counts as expired.",
        app = input.plan.application,
        run = input.run_id,
        gate = input.gate,
        exp = record.expires_at.to_rfc3339(),
    );
    let notice = ApprovalNotice {
        run_id: input.run_id.clone(),
        application: input.plan.application.clone(),
        gate: input.gate.clone(),
        expires_at: record.expires_at,
        evidence: record.evidence.clone(),
        how_to_answer: format!(
            "cutover run approve {run} {gate} --reason \"…\" (or: cutover run reject {run} {gate} --reason \"…\"); or POST /runs/{run}/approvals/{gate} with {{\"decision\": \"approve\"|\"reject\", \"reason\": \"…\"}} to the approval API, SigV4-signed",
            run = input.run_id,
            gate = input.gate
        ),
        summary,
    };
    deps.notifier
        .approval_requested(&notice)
        .await
        .map_err(|e| StepError::from_port(e, |e| StepError::Retryable(e.to_string())))?;
    record.notified = true;
    // Told: a redelivery from here on notifies nobody again. (A decision that raced in keeps its
    // own write; the conditional save then refuses this one, which is fine.)
    match deps.store.save_approval(&record, true).await {
        Ok(()) => {}
        Err(e) if e.kind == crate::ports::PortErrorKind::Conflict => {}
        Err(e) => return Err(store_err(e)),
    }
    let mut ev = event(
        &input.run_id,
        format!("approval#{}#requested", input.gate),
        "RequestApproval",
        "approval-requested",
        now,
    );
    ev.message = format!(
        "gate {} open until {}",
        input.gate,
        record.expires_at.to_rfc3339()
    );
    audit(deps, ev).await?;
    Ok(RequestApprovalOutput {
        gate: input.gate,
        expires_at: record.expires_at,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecideApproval {
    pub decision: Decision,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApprovalError {
    #[error("no pending gate {gate} for run {run_id}")]
    NotFound { run_id: String, gate: String },
    #[error("gate {0} was decided already")]
    AlreadyDecided(String),
    #[error("gate {0} expired")]
    Expired(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0} approved this gate already; the two-person rule needs someone else")]
    SameApprover(String),
    /// The stored gate changed between reading and writing it (internal: decided again).
    #[error("the gate changed while being decided")]
    Raced,
}

/// What a decision did: ended the gate, or (two-person rule) recorded the first of two approvals.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionOutcome {
    Decided(ApprovalRecord),
    WaitingForSecondApprover(ApprovalRecord),
}

/// Which assumed-role sessions name a person: the deployer lists the roles whose trust policy
/// pins `sts:RoleSessionName` to the caller's identity (stack parameter `SessionPinnedRoles`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentityRule {
    /// Role names (not ARNs), `*` wildcards allowed.
    pub pinned_roles: Vec<String>,
}

/// The person behind a caller identity, for the two-person rule (docs/security.md, "Who counts
/// as a person"). IAM identifiers:
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns
///
/// - An IAM Identity Center session (`assumed-role/AWSReservedSSO_<set>_<id>/<session>`) is its
///   user: Identity Center sets the session name to the user's name, the user cannot choose it
///   (https://docs.aws.amazon.com/singlesignon/latest/userguide/using-service-linked-roles.html,
///   and the `sts:RoleSessionName` trust condition it sets).
/// - A session of a role the deployer lists as pinned (its trust policy pins
///   `sts:RoleSessionName`, e.g. to `${saml:sub}` for AssumeRoleWithSAML) is role plus session.
/// - Any other assumed-role session names itself freely: every session of the role is one
///   person (`arn:…:iam::ACCOUNT:role/ROLE`).
/// - A federated user (`sts:…:federated-user/NAME`, from GetFederationToken) names itself
///   freely too, and its ARN does not say which IAM user minted it: every federated user of an
///   account is one person.
/// - IAM users, the root user and JWT subjects are taken as they are.
pub fn person(identity: &str, rule: &IdentityRule) -> String {
    let parts: Vec<&str> = identity.splitn(6, ':').collect();
    if let ["arn", partition, "sts", _, account, resource] = parts.as_slice() {
        if let Some(rest) = resource.strip_prefix("assumed-role/") {
            let role = rest.split('/').next().unwrap_or(rest);
            let pinned = role.starts_with("AWSReservedSSO_")
                || rule.pinned_roles.iter().any(|p| crate::plan::glob(p, role));
            if pinned && rest.contains('/') {
                return format!("arn:{partition}:sts::{account}:assumed-role/{rest}");
            }
            return format!("arn:{partition}:iam::{account}:role/{role}");
        }
        if resource.starts_with("federated-user/") {
            return format!("arn:{partition}:sts::{account}:federated-user/*");
        }
    }
    identity.to_string()
}

/// Records a human decision and answers the waiting task. A second decision is refused; under
/// the two-person rule the second approval must come from someone else.
pub async fn decide_approval(
    run_id: &str,
    gate: &str,
    decision: DecideApproval,
    actor: &str,
    deps: &Deps,
) -> Result<DecisionOutcome, ApprovalError> {
    decide_approval_as(
        run_id,
        gate,
        decision,
        actor,
        &IdentityRule::default(),
        deps,
    )
    .await
}

/// [`decide_approval`] with the deployer's identity rule (who counts as a person).
pub async fn decide_approval_as(
    run_id: &str,
    gate: &str,
    decision: DecideApproval,
    actor: &str,
    rule: &IdentityRule,
    deps: &Deps,
) -> Result<DecisionOutcome, ApprovalError> {
    // A write that lost a race (another approval landed between our read and write) is decided
    // again on what is stored now: two first approvals both count, one of them as the second.
    for _ in 0..3 {
        match decide_once(run_id, gate, decision.clone(), actor, rule, deps).await {
            Err(ApprovalError::Raced) => continue,
            other => return other,
        }
    }
    Err(ApprovalError::Unavailable(format!(
        "gate {gate} kept changing while being decided; try again"
    )))
}

async fn decide_once(
    run_id: &str,
    gate: &str,
    decision: DecideApproval,
    actor: &str,
    rule: &IdentityRule,
    deps: &Deps,
) -> Result<DecisionOutcome, ApprovalError> {
    if actor.trim().is_empty() {
        return Err(ApprovalError::Invalid(
            "an approver identity is required".into(),
        ));
    }
    let unavailable = |e: crate::ports::PortError| ApprovalError::Unavailable(e.to_string());
    let mut rec = deps
        .store
        .load_approval(run_id, gate)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApprovalError::NotFound {
            run_id: run_id.into(),
            gate: gate.into(),
        })?;
    let now = deps.clock.now();
    if let Some(stored) = rec.decision {
        // The decision was stored but its callback never got through (Step Functions was
        // unavailable): the same decision, repeated, sends it again instead of a 409.
        if stored == decision.decision && !rec.callback_sent {
            deliver(&mut rec, gate, deps, now, true).await?;
            return Ok(DecisionOutcome::Decided(rec));
        }
        return Err(ApprovalError::AlreadyDecided(gate.into()));
    }
    if now >= rec.expires_at {
        return Err(ApprovalError::Expired(gate.into()));
    }
    if decision.decision == Decision::Approve
        && (rec.approvals.len() + 1) < usize::from(rec.required_approvals)
    {
        if rec
            .approvals
            .iter()
            .any(|a| person(&a.by, rule) == person(actor, rule))
        {
            return Err(ApprovalError::SameApprover(actor.into()));
        }
        rec.approvals.push(Approver {
            by: actor.into(),
            at: now,
        });
        deps.store
            .save_approval(&rec, true)
            .await
            .map_err(|e| match e.kind {
                PortErrorKind::Conflict => ApprovalError::Raced,
                _ => unavailable(e),
            })?;
        rec.version += 1;
        let mut ev = event(
            run_id,
            format!("approval#{gate}#first"),
            "ApprovalDecision",
            "first-approval",
            now,
        );
        ev.actor = Some(actor.to_string());
        deps.store.append_event(&ev).await.map_err(unavailable)?;
        return Ok(DecisionOutcome::WaitingForSecondApprover(rec));
    }
    if decision.decision == Decision::Approve
        && rec
            .approvals
            .iter()
            .any(|a| person(&a.by, rule) == person(actor, rule))
    {
        return Err(ApprovalError::SameApprover(actor.into()));
    }
    rec.approvals.push(Approver {
        by: actor.into(),
        at: now,
    });
    let deciders: Vec<String> = rec.approvals.iter().map(|a| a.by.clone()).collect();
    let actor_all = if decision.decision == Decision::Approve {
        deciders.join(", ")
    } else {
        actor.to_string()
    };
    rec.decision = Some(decision.decision);
    rec.decided_by = Some(actor_all);
    rec.decided_at = Some(now);
    rec.reason = decision.reason.clone();
    match deps.store.save_approval(&rec, true).await {
        Ok(()) => rec.version += 1,
        // Decided meanwhile, or another approval landed: look again.
        Err(e) if e.kind == PortErrorKind::Conflict => return Err(ApprovalError::Raced),
        Err(e) => return Err(unavailable(e)),
    }
    deliver(&mut rec, gate, deps, now, false).await?;
    Ok(DecisionOutcome::Decided(rec))
}

/// Sends a stored decision to the waiting execution, then records that it was sent and audits
/// it. On a resend, a token Step Functions no longer knows before the gate's expiry means the
/// first send did get through (the task moved on), so it counts as sent.
async fn deliver(
    rec: &mut ApprovalRecord,
    gate: &str,
    deps: &Deps,
    now: DateTime<Utc>,
    resend: bool,
) -> Result<(), ApprovalError> {
    let unavailable = |e: crate::ports::PortError| ApprovalError::Unavailable(e.to_string());
    let by = rec.decided_by.clone().unwrap_or_default();
    let at = rec.decided_at.unwrap_or(now);
    // Opened only here, to be sent at once; never stored or logged.
    let token = match rec.decision {
        Some(_) => deps
            .vault
            .open(&rec.sealed_token, &rec.run_id, gate)
            .await
            .map_err(unavailable)?,
        None => String::new(),
    };
    let sent = match rec.decision {
        Some(Decision::Approve) => {
            deps.callbacks
                .send_success(
                    &token,
                    json!({"gate": gate, "decision": "approve", "by": by, "at": at}),
                )
                .await
        }
        Some(Decision::Reject) => {
            let cause = format!(
                "{by} rejected gate {gate}: {}",
                rec.reason.as_deref().unwrap_or("no reason given")
            );
            deps.callbacks
                .send_failure(&token, "ApprovalRejected", &cause)
                .await
        }
        None => {
            return Err(ApprovalError::Invalid(
                "the gate has no decision to send".into(),
            ))
        }
    };
    match sent {
        Ok(()) => {}
        Err(e) if matches!(e.kind, PortErrorKind::NotFound | PortErrorKind::Invalid) => {
            if !(resend && now < rec.expires_at) {
                return Err(ApprovalError::Expired(gate.into()));
            }
        }
        Err(e) => {
            return Err(ApprovalError::Unavailable(format!(
                "the decision is recorded but could not be sent to the run ({e}); send the same decision again"
            )))
        }
    }
    rec.callback_sent = true;
    deps.store
        .save_approval(rec, false)
        .await
        .map_err(unavailable)?;
    let kind = match rec.decision {
        Some(Decision::Approve) => "approved",
        _ => "rejected",
    };
    let mut ev = event(
        &rec.run_id,
        format!("approval#{gate}#decided"),
        "ApprovalDecision",
        kind,
        at,
    );
    ev.actor = Some(by);
    ev.message = rec.reason.clone().unwrap_or_default();
    deps.store.append_event(&ev).await.map_err(unavailable)?;
    Ok(())
}

/// SHA-256 of a task token, hex.
pub(crate) fn token_digest(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
