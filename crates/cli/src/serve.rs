//! `cutover local serve`: one cutover on the embedded engine, played in accelerated real time
//! (`--speed` simulated seconds per second), with a live page and the approval API's routes on
//! 127.0.0.1. The page reads the run as the deployed API shows it (`GET /api/runs/{runId}`)
//! and its buttons go through the same routes (approvals, abort, controls), as the local
//! operator; nothing external is loaded.
//!
//! The simulated clock is tokio's paused clock: left alone it jumps to the next timer whenever
//! every task waits. A pacer task blocks the runtime for a short real interval, then sleeps
//! `speed` times as long in simulated time, so no jump goes past its own timer: simulated time
//! advances at about `speed` times real time.

use crate::local::{run_local_async, RunOptions};
use cutover_core::api::{handle_api, ApiRequest};
use cutover_core::plan::Plan;
use cutover_core::steps::Deps;
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
pub fn serve(plan: &Plan, world: &WorldSpec, options: ServeOptions) -> Result<i32, String> {
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
        let run = run_local_async(plan, world, &run_options)
            .await
            .map_err(|e| e.to_string())?;
        let code = run.report.exit_code();
        live.state().report = Some(json!({
            "outcome": run.report.outcome,
            "error": run.report.error,
            "exitCode": code,
        }));
        eprintln!(
            "run {} ended {}; still serving its page",
            run.report.run_id, run.report.outcome
        );
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
    let (head_end, content_length) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST_BYTES {
            return respond(
                &mut stream,
                413,
                "application/json",
                br#"{"error":"request too large"}"#,
            )
            .await;
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, length);
        }
    };
    if content_length > MAX_REQUEST_BYTES {
        return respond(
            &mut stream,
            413,
            "application/json",
            br#"{"error":"request too large"}"#,
        )
        .await;
    }
    while buf.len() < head_end + content_length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
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
    let (deps, run_id, report) = {
        let s = live.state();
        (s.deps.clone(), s.run_id.clone(), s.report.clone())
    };
    let Some(deps) = deps else {
        return json_answer(503, json!({"error": "the run is starting"}));
    };
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
