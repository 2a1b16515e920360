//! `cutover local serve`: one cutover, or a wave, on the embedded engine, played in accelerated
//! real time (`--speed` simulated seconds per second), with a live page and the approval API's
//! routes on 127.0.0.1. The page reads each run as the deployed API shows it
//! (`GET /api/runs/{runId}`), a wave's applications at a glance (`GET /api/wave`), and its
//! buttons go through the same routes (approvals, abort, controls), as the local operator;
//! nothing external is loaded.
//!
//! The simulated clock is tokio's paused clock: left alone it jumps to the next timer whenever
//! every task waits. A pacer task blocks the runtime for a short real interval, then sleeps
//! `speed` times as long in simulated time, so no jump goes past its own timer: simulated time
//! advances at about `speed` times real time.

use crate::local::{run_local_async, RunOptions};
use cutover_core::api::{handle_api, ApiRequest};
use cutover_core::plan::Plan;
use cutover_core::steps::{Deps, WaveSpec};
use cutover_sim::WorldSpec;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The page: one self-contained document (its script and style inline).
const PAGE: &str = include_str!("serve_page.html");
/// Who the local page acts as: the local API admits everyone (`Bounds::open`).
pub const LOCAL_OPERATOR: &str = "local-operator@localhost";
/// Real milliseconds between the pacer's steps.
const PACE_MS: u64 = 50;
/// The largest request this server reads (a decision or control body is a few hundred bytes).
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// What the running cutover shares with the server: its ports once set up, its report once done.
#[derive(Clone, Default)]
pub struct Live(Arc<Mutex<LiveState>>);

#[derive(Default)]
struct LiveState {
    deps: Option<Deps>,
    run_id: Option<String>,
    /// A wave: its name, execution name and applications (name, run id, dependencies).
    wave: Option<Value>,
    report: Option<Value>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live")
    }
}

impl Live {
    fn state(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Called by the local run once its ports exist.
    pub(crate) fn started(&self, deps: &Deps, run_id: &str) {
        let mut s = self.state();
        s.deps = Some(deps.clone());
        s.run_id = Some(run_id.to_string());
    }
    /// Called by the local wave once its ports exist.
    pub(crate) fn started_wave(&self, deps: &Deps, wave_run_id: &str, spec: &WaveSpec) {
        let mut s = self.state();
        s.deps = Some(deps.clone());
        s.wave = Some(json!({
            "wave": spec.wave,
            "waveRunId": wave_run_id,
            "maxConcurrency": spec.max_concurrency,
            "applications": spec.applications.iter().map(|a| json!({
                "application": a.application,
                "runId": a.run_id,
                "dependsOn": a.depends_on,
            })).collect::<Vec<_>>(),
        }));
    }
}

/// What `local serve` plays: one cutover, or a wave.
pub enum Target {
    Run(Box<Plan>),
    Wave(Box<WaveSpec>),
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Simulated seconds per real second (1..=10000).
    pub speed: u32,
    /// 0: any free port.
    pub port: u16,
    /// Stop serving this long (real seconds) after the run ended; None: serve until killed.
    pub linger: Option<u64>,
    pub run: RunOptions,
}

/// Runs the cutover at `speed` and serves it; prints the address on stdout once listening.
/// Answers the run's exit code once it ended and `linger` passed.
pub fn serve(target: Target, world: &WorldSpec, options: ServeOptions) -> Result<i32, String> {
    if !(1..=10_000).contains(&options.speed) {
        return Err(format!(
            "--speed {} is outside 1..=10000 (simulated seconds per second)",
            options.speed
        ));
    }
    crate::local::paused_runtime().block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|e| format!("127.0.0.1:{}: {e}", options.port))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let live = Live::default();
        let speed = options.speed;
        tokio::spawn(async move {
            loop {
                std::thread::sleep(Duration::from_millis(PACE_MS));
                tokio::time::sleep(Duration::from_millis(PACE_MS * u64::from(speed))).await;
            }
        });
        let server_live = live.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let live = server_live.clone();
                tokio::spawn(async move {
                    let _ = answer(stream, &live, speed).await;
                });
            }
        });
        println!("serving http://{addr}/ (speed {speed}x); Ctrl-C stops");
        let run_options = RunOptions {
            live: Some(live.clone()),
            ..options.run
        };
        let (outcome, error, code, name) = match &target {
            Target::Run(plan) => {
                let run = run_local_async(plan, world, &run_options)
                    .await
                    .map_err(|e| e.to_string())?;
                let r = run.report;
                (
                    r.outcome.clone(),
                    r.error.clone(),
                    r.exit_code(),
                    r.run_id.clone(),
                )
            }
            Target::Wave(spec) => {
                let run = crate::wave::run_wave_local_async(spec, world, &run_options).await;
                let r = run.report;
                (
                    r.outcome.clone(),
                    r.error.clone(),
                    r.exit_code(),
                    r.wave.clone(),
                )
            }
        };
        live.state().report = Some(json!({
            "outcome": outcome,
            "error": error,
            "exitCode": code,
        }));
        eprintln!("{name} ended {outcome}; still serving its page");
        match options.linger {
            Some(s) => {
                // Real seconds: the pacer turns each into `speed` simulated ones.
                tokio::time::sleep(Duration::from_secs(s.saturating_mul(u64::from(speed)))).await
            }
            None => std::future::pending::<()>().await,
        }
        Ok(code)
    })
}

/// One HTTP/1.1 exchange (the connection is closed after it).
async fn answer(mut stream: tokio::net::TcpStream, live: &Live, speed: u32) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let too_large = br#"{"error":"request too large"}"#;
    let (head_end, head, content_length) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST_BYTES {
            return respond(&mut stream, 413, "application/json", too_large).await;
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, head, length);
        }
    };
    if content_length > MAX_REQUEST_BYTES {
        return respond(&mut stream, 413, "application/json", too_large).await;
    }
    while buf.len() < head_end + content_length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    let body = String::from_utf8_lossy(&buf[head_end..(head_end + content_length).min(buf.len())])
        .to_string();
    let (status, content_type, out) = route(&method, &path, body, live, speed).await;
    respond(&mut stream, status, content_type, &out).await
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    };
    // The page loads nothing from elsewhere, and says so to the browser.
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-store\r\ncontent-security-policy: default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

/// `GET /` the page; `GET /api/live` what is running; `/api/runs/…` the approval API's routes.
async fn route(
    method: &str,
    path: &str,
    body: String,
    live: &Live,
    speed: u32,
) -> (u16, &'static str, Vec<u8>) {
    let json_answer =
        |status: u16, v: Value| (status, "application/json", v.to_string().into_bytes());
    if method == "GET" && (path == "/" || path == "/index.html") {
        return (200, "text/html; charset=utf-8", PAGE.as_bytes().to_vec());
    }
    let (deps, run_id, wave, report) = {
        let s = live.state();
        (
            s.deps.clone(),
            s.run_id.clone(),
            s.wave.clone(),
            s.report.clone(),
        )
    };
    let Some(deps) = deps else {
        return json_answer(503, json!({"error": "the run is starting"}));
    };
    if method == "GET" && path == "/api/wave" {
        let Some(wave) = wave else {
            return json_answer(
                404,
                json!({"error": "this server plays one run, not a wave"}),
            );
        };
        return json_answer(200, wave_view(&wave, &deps).await);
    }
    if method == "GET" && path == "/api/live" && wave.is_some() {
        return json_answer(
            200,
            json!({
                "kind": "wave",
                "wave": wave.as_ref().map(|w| w["wave"].clone()),
                "now": deps.clock.now(),
                "speed": speed,
                "done": report.is_some(),
                "outcome": report.as_ref().map(|r| r["outcome"].clone()),
                "exitCode": report.as_ref().map(|r| r["exitCode"].clone()),
            }),
        );
    }
    if method == "GET" && path == "/api/live" {
        let plan = match &run_id {
            Some(id) => deps
                .store
                .load_run(id)
                .await
                .ok()
                .flatten()
                .and_then(|r| r.plan),
            None => None,
        };
        return json_answer(
            200,
            json!({
                "kind": "run",
                "runId": run_id,
                "now": deps.clock.now(),
                "speed": speed,
                "application": plan.as_ref().map(|p| p.application.clone()),
                "steps": plan.as_ref().map(|p| p.traffic.steps.iter().map(|s| json!({"weight": s.weight, "bakeSeconds": s.bake_seconds, "approval": s.approval})).collect::<Vec<_>>()),
                "done": report.is_some(),
                "outcome": report.as_ref().map(|r| r["outcome"].clone()),
                "exitCode": report.as_ref().map(|r| r["exitCode"].clone()),
            }),
        );
    }
    let Some(api_path) = path.strip_prefix("/api") else {
        return json_answer(404, json!({"error": format!("no route {method} {path}")}));
    };
    let request = ApiRequest {
        method: method.to_string(),
        path: api_path.to_string(),
        body: (!body.is_empty()).then_some(body),
        identity: Some(LOCAL_OPERATOR.into()),
        groups: vec![],
    };
    let r = handle_api(&request, &deps).await;
    json_answer(r.status, r.body)
}

/// Every application of a wave as its run record and trail show it now: not started, or its
/// phase, weights, lag, last health round, open gates and outcome.
async fn wave_view(wave: &Value, deps: &Deps) -> Value {
    let mut rows = Vec::new();
    for a in wave["applications"].as_array().into_iter().flatten() {
        let run_id = a["runId"].as_str().unwrap_or_default();
        let rec = deps.store.load_run(run_id).await.ok().flatten();
        let mut row = json!({
            "application": a["application"],
            "runId": run_id,
            "dependsOn": a["dependsOn"],
            "state": "not-started",
        });
        if let Some(rec) = rec {
            let gates: Vec<String> = deps
                .store
                .approvals(run_id)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|g| g.decision.is_none())
                .map(|g| g.gate)
                .collect();
            let healthy = deps
                .store
                .events(run_id)
                .await
                .unwrap_or_default()
                .iter()
                .rev()
                .find_map(|e| e.healthy);
            let state = match (&rec.outcome, gates.is_empty()) {
                (Some(o), _) => o.clone(),
                (None, false) => "waiting".into(),
                (None, true) => "running".into(),
            };
            row["state"] = json!(state);
            row["phase"] = json!(rec.phase);
            row["weights"] = json!(rec.weights);
            row["lagSeconds"] = json!(rec.last_lag_seconds);
            row["healthy"] = json!(healthy);
            row["pendingGates"] = json!(gates);
            row["outcome"] = json!(rec.outcome);
            row["error"] = json!(rec.error);
            row["held"] = json!(rec.controls.held.is_some());
        }
        rows.push(row);
    }
    // A wave never starts the dependants of an application that did not end plainly
    // completed (docs/waves.md): those are blocked, not waiting to start.
    const BLOCKING: [&str; 6] = [
        "rolled_back",
        "aborted",
        "failed",
        "rollback_failed",
        "completed_with_errors",
        "blocked",
    ];
    loop {
        let states: std::collections::HashMap<String, String> = rows
            .iter()
            .map(|r| {
                (
                    r["application"].as_str().unwrap_or_default().to_string(),
                    r["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let mut changed = false;
        for r in rows.iter_mut().filter(|r| r["state"] == "not-started") {
            let blocked = r["dependsOn"].as_array().into_iter().flatten().any(|d| {
                d.as_str()
                    .and_then(|d| states.get(d))
                    .is_some_and(|s| BLOCKING.contains(&s.as_str()))
            });
            if blocked {
                r["state"] = json!("blocked");
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    json!({
        "wave": wave["wave"],
        "waveRunId": wave["waveRunId"],
        "maxConcurrency": wave["maxConcurrency"],
        "applications": rows,
    })
}
