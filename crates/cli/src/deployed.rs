//! `cutover run …` against a deployed stack: start a run (StartExecution of the cutover machine,
//! named by the run id, with the plan as input), read its status (the run table and
//! DescribeExecution), and decide gates or abort through the approval API — SigV4-signed with the
//! caller's own credentials, never around the API, so its authorization and audit apply.
//! Where things are comes from the stack's outputs (`CutoverStateMachineArn`, `RunTableName`,
//! `ApprovalApiUrl`), given as flags.

use cutover_aws::{DynamoStore, HttpHooks, SfnExecutions};
use cutover_core::plan::Plan;
use cutover_core::ports::{Executions, RunStore};
use serde_json::{json, Value};

/// Where the deployed stack's pieces are, and how to reach them.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub state_machine_arn: Option<String>,
    pub table: Option<String>,
    pub api_url: Option<String>,
    /// An AWS-compatible endpoint (tests against moto); default: the environment's account.
    pub endpoint: Option<String>,
}

fn need<'a>(v: &'a Option<String>, flag: &str, output: &str) -> Result<&'a str, String> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{flag} is required (the stack's {output} output)"))
}

async fn sdk(stack: &Stack) -> aws_config::SdkConfig {
    crate::aws_mode::sdk_for(stack.endpoint.as_deref()).await
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// One line for an SDK error: its code and message, never a debug structure.
fn sdk_err<E: std::error::Error>(e: E) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// Starts a run: the execution is named by the run id. Returns the execution ARN.
pub fn start(stack: &Stack, plan: &Plan, run_id: &str) -> Result<String, String> {
    let machine = need(
        &stack.state_machine_arn,
        "--state-machine-arn",
        "CutoverStateMachineArn",
    )?;
    runtime()?.block_on(async {
        let sfn = aws_sdk_sfn::Client::new(&sdk(stack).await);
        let out = sfn
            .start_execution()
            .state_machine_arn(machine)
            .name(run_id)
            .input(json!({ "plan": plan }).to_string())
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(out.execution_arn().to_string())
    })
}

type RunRead = (
    cutover_core::model::RunRecord,
    Vec<cutover_core::model::AuditEvent>,
    Vec<cutover_core::model::ApprovalRecord>,
);

/// A run's record, audit trail and gates from the run table.
async fn read_run(
    sdk: &aws_config::SdkConfig,
    table: &str,
    run_id: &str,
) -> Result<RunRead, String> {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table);
    let rec = store
        .load_run(run_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("run {run_id} not found in table {table}"))?;
    let events = store.events(run_id).await.map_err(|e| e.to_string())?;
    let approvals = store.approvals(run_id).await.map_err(|e| e.to_string())?;
    Ok((rec, events, approvals))
}

/// What an operator needs at a glance: phase, weights, lag, health, pending gates, outcome, and
/// whether the execution still runs.
pub fn status(stack: &Stack, run_id: &str) -> Result<Value, String> {
    let table = need(&stack.table, "--table", "RunTableName")?;
    runtime()?.block_on(async {
        let sdk = sdk(stack).await;
        let (rec, events, approvals) = read_run(&sdk, table, run_id).await?;
        let execution = match &stack.state_machine_arn {
            Some(m) => match SfnExecutions::new(aws_sdk_sfn::Client::new(&sdk), m)
                .is_running(run_id)
                .await
            {
                Ok(Some(true)) => "RUNNING",
                Ok(Some(false)) => "ENDED",
                Ok(None) => "NOT_FOUND",
                Err(_) => "UNKNOWN",
            },
            None => "UNKNOWN",
        };
        let last_health = events.iter().rev().find_map(|e| e.healthy);
        let since = events
            .iter()
            .rev()
            .find(|e| e.weights.is_some() || e.event == "validated")
            .map(|e| e.at);
        Ok(json!({
            "runId": rec.run_id,
            "application": rec.application,
            "phase": rec.phase,
            "outcome": rec.outcome,
            "error": rec.error,
            "weights": rec.weights,
            "lagSeconds": rec.last_lag_seconds,
            "lastHealthy": last_health,
            "lastChangeAt": since,
            "pendingGates": approvals.iter().filter(|a| a.decision.is_none()).map(|a| json!({"gate": a.gate, "expiresAt": a.expires_at})).collect::<Vec<_>>(),
            "abortRequested": rec.abort_requested,
            "execution": execution,
            "data": rec.data,
        }))
    })
}

/// A deployed run's report in the shape `local run --json` prints (so `cutover report` and
/// `--html` render both alike): outcome, timeline from the audit trail, approvals, data.
pub fn report(stack: &Stack, run_id: &str) -> Result<Value, String> {
    let table = need(&stack.table, "--table", "RunTableName")?;
    runtime()?.block_on(async {
        let (rec, events, approvals) = read_run(&sdk(stack).await, table, run_id).await?;
        let start = rec.started_at;
        let secs = |t: chrono::DateTime<chrono::Utc>| (t - start).num_milliseconds() as f64 / 1000.0;
        let end = events.iter().map(|e| e.at).max().unwrap_or(start);
        Ok(json!({
            "runId": rec.run_id,
            "application": rec.application,
            "outcome": rec.outcome.clone().unwrap_or_else(|| "running".into()),
            "error": rec.error,
            "cause": null,
            "simulatedSeconds": secs(end),
            "stateTransitions": null,
            "lagThresholdSeconds": rec.plan.as_ref().map(|p| p.replication.max_lag_seconds),
            "timeline": events.iter().map(|e| json!({
                "t": secs(e.at), "state": e.step, "event": e.event, "weights": e.weights,
                "lagSeconds": e.lag_seconds, "healthy": e.healthy, "actor": e.actor, "message": e.message,
            })).collect::<Vec<_>>(),
            "approvals": approvals.iter().map(|a| json!({
                "gate": a.gate, "decision": a.decision, "by": a.decided_by,
                "at": a.decided_at.map(secs), "reason": a.reason,
            })).collect::<Vec<_>>(),
            "data": {
                "mode": rec.plan.as_ref().map(|p| p.data.writes.as_str()),
                "freezeSeconds": rec.data.frozen_seconds(end),
                "switchedTo": rec.data.switched_to,
                "pointOfNoReturn": rec.data.point_of_no_return.is_some(),
            },
        }))
    })
}

/// Runs in the table, newest first: (run id, application, phase, outcome, started at).
pub fn list(stack: &Stack, application: Option<&str>, active: bool) -> Result<Vec<Value>, String> {
    let table = need(&stack.table, "--table", "RunTableName")?;
    runtime()?.block_on(async {
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk(stack).await), table);
        Ok(store
            .list_runs(application)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|r| !active || r.outcome.is_none())
            .map(|r| {
                json!({"runId": r.run_id, "application": r.application, "phase": r.phase, "outcome": r.outcome, "startedAt": r.started_at, "weights": r.weights})
            })
            .collect())
    })
}

/// POSTs to the approval API with the caller's credentials: `approvals/{gate}` or `abort`.
/// Ok((status, answer)) for any answer; the caller decides what a 4xx means.
pub fn api_post(stack: &Stack, path: &str, body: &Value) -> Result<(u16, Value), String> {
    let base = need(&stack.api_url, "--api-url", "ApprovalApiUrl")?;
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    runtime()?.block_on(async {
        let sdk = sdk(stack).await;
        let client = HttpHooks::new(&sdk).map_err(|e| e.to_string())?;
        client
            .call_api("POST", &url, Some(body))
            .await
            .map_err(|e| e.to_string())
    })
}

/// A one-screen summary of `status`.
pub fn describe(s: &Value) -> String {
    let w = &s["weights"];
    let weights = if w.is_null() {
        "blue 100 / green 0".to_string()
    } else {
        format!("blue {} / green {}", w["blue"], w["green"])
    };
    let gates: Vec<String> = s["pendingGates"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| {
                    format!(
                        "{} (until {})",
                        g["gate"].as_str().unwrap_or(""),
                        g["expiresAt"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{} {}: phase {}, outcome {}, execution {}\n  weights {weights}; lag {}; last health round {}\n  pending gates: {}",
        s["application"].as_str().unwrap_or(""),
        s["runId"].as_str().unwrap_or(""),
        s["phase"].as_str().unwrap_or(""),
        s["outcome"].as_str().unwrap_or("(running)"),
        s["execution"].as_str().unwrap_or(""),
        s["lagSeconds"].as_f64().map(|l| format!("{l:.1}s")).unwrap_or_else(|| "-".into()),
        match s["lastHealthy"].as_bool() {
            Some(true) => "healthy",
            Some(false) => "UNHEALTHY",
            None => "-",
        },
        if gates.is_empty() { "none".into() } else { gates.join(", ") }
    )
}
