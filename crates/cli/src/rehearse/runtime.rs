//! The functions as Lambda runs them: each built bootstrap a process of its own, started on its
//! first invocation with exactly the environment the template gives it plus what Lambda sets
//! (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
//! polling a local Lambda Runtime API
//! (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) for its events. An
//! invocation's answer, error or the init error it reported is what a Task state sees.

use super::stack::{Function, REGION};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

type Body = Full<Bytes>;

/// How one invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Ok(Value),
    /// The function's error: its type and the error document it posted (errorType,
    /// errorMessage), which Step Functions passes on as the Task's cause.
    Error {
        error_type: String,
        body: Value,
    },
    /// The sandbox could not start: the init error it reported, or how its process ended.
    InitFailed {
        message: String,
    },
    /// No answer within the function's timeout.
    TimedOut,
}

struct Pending {
    id: String,
    payload: Value,
    deadline_ms: u64,
    done: oneshot::Sender<Outcome>,
}

struct Shared {
    function: Function,
    next_tx: mpsc::UnboundedSender<Pending>,
    next_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<String>>,
}

/// One function's sandbox: its Runtime API endpoint and, once started, its process.
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    bootstrap: PathBuf,
    log: PathBuf,
    extra_env: Vec<(String, String)>,
    process: tokio::sync::Mutex<Option<tokio::process::Child>>,
    seq: std::sync::atomic::AtomicU64,
}

/// Serves one HTTP/1.1 connection at a time per task with `handle`, until the listener drops.
pub async fn serve<F, Fut>(listener: tokio::net::TcpListener, handle: F)
where
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |req| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

pub fn respond(status: StatusCode, headers: &[(&str, String)], body: Vec<u8>) -> Response<Body> {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v.as_str());
    }
    r.body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

pub async fn body_bytes(req: Request<hyper::body::Incoming>) -> (http::request::Parts, Vec<u8>) {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes().to_vec())
        .unwrap_or_default();
    (parts, bytes)
}

impl Sandbox {
    pub async fn start(
        function: Function,
        build_dir: &Path,
        logs: &Path,
        extra_env: Vec<(String, String)>,
    ) -> std::io::Result<Arc<Sandbox>> {
        let bootstrap = build_dir.join(&function.logical_id).join("bootstrap");
        if !bootstrap.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{}: no bootstrap (run `sam build` first, or give --build-dir)",
                    bootstrap.display()
                ),
            ));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (next_tx, next_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function: function.clone(),
            next_tx,
            next_rx: tokio::sync::Mutex::new(next_rx),
            in_flight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
        });
        let s = shared.clone();
        tokio::spawn(serve(listener, move |req| runtime_api(s.clone(), req)));
        Ok(Arc::new(Sandbox {
            shared,
            addr,
            bootstrap,
            log: logs.join(format!("{}.log", function.name)),
            extra_env,
            process: tokio::sync::Mutex::new(None),
            seq: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    pub fn function(&self) -> &Function {
        &self.shared.function
    }

    /// The environment the process gets: the template's variables, then Lambda's own.
    fn environment(&self) -> Vec<(String, String)> {
        let f = &self.shared.function;
        let mut env: Vec<(String, String)> = f
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let lambda = [
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", f.function_name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_LEVEL", f.log_level.clone()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", f.log_group.clone()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
            ("_HANDLER", "bootstrap".into()),
            (
                "LAMBDA_TASK_ROOT",
                self.bootstrap
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("TZ", ":UTC".into()),
            ("PATH", "/usr/local/bin:/usr/bin:/bin".into()),
        ];
        env.extend(lambda.into_iter().map(|(k, v)| (k.to_string(), v)));
        env.extend(self.extra_env.iter().cloned());
        env
    }

    async fn ensure_started(&self) -> Result<(), String> {
        let mut p = self.process.lock().await;
        if let Some(child) = p.as_mut() {
            match child.try_wait() {
                Ok(None) => return Ok(()),
                Ok(Some(status)) => {
                    let reported = self
                        .shared
                        .init_error
                        .lock()
                        .map(|e| e.clone())
                        .unwrap_or(None);
                    return Err(
                        reported.unwrap_or_else(|| format!("the process exited ({status})"))
                    );
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = tokio::process::Command::new(&self.bootstrap)
            .env_clear()
            .envs(self.environment())
            .current_dir(self.bootstrap.parent().unwrap_or(Path::new(".")))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bootstrap.display()))?;
        *p = Some(child);
        Ok(())
    }

    /// One invocation, as a synchronous Lambda Invoke: the event to the next `/next` poll, the
    /// answer from `/response` or `/error`, bounded by the function's timeout.
    pub async fn invoke(&self, payload: Value) -> Outcome {
        if let Err(message) = self.ensure_started().await {
            return Outcome::InitFailed { message };
        }
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{n:06}", self.shared.function.name);
        let (tx, mut rx) = oneshot::channel();
        let timeout = Duration::from_secs(self.shared.function.timeout_seconds.max(1));
        let deadline_ms = (chrono::Utc::now()
            + chrono::Duration::from_std(timeout).unwrap_or_default())
        .timestamp_millis() as u64;
        let _ = self.shared.next_tx.send(Pending {
            id,
            payload,
            deadline_ms,
            done: tx,
        });
        let started = tokio::time::Instant::now();
        loop {
            tokio::select! {
                r = &mut rx => return r.unwrap_or(Outcome::TimedOut),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    // A process that dies while the event waits: its init error, or its exit.
                    let mut p = self.process.lock().await;
                    if let Some(Ok(Some(status))) = p.as_mut().map(|c| c.try_wait()) {
                        let reported = self.shared.init_error.lock().map(|e| e.clone()).unwrap_or(None);
                        return Outcome::InitFailed {
                            message: reported.unwrap_or_else(|| format!("the process exited ({status})")),
                        };
                    }
                    if started.elapsed() > timeout {
                        // Lambda ends a sandbox that overran; the next invocation starts a new one.
                        if let Some(mut c) = p.take() {
                            let _ = c.kill().await;
                        }
                        return Outcome::TimedOut;
                    }
                }
            }
        }
    }

    pub async fn stop(&self) {
        if let Some(mut c) = self.process.lock().await.take() {
            let _ = c.kill().await;
        }
    }
}

async fn runtime_api(s: Arc<Shared>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let error_type = req
        .headers()
        .get("Lambda-Runtime-Function-Error-Type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (_, body) = body_bytes(req).await;
    let accepted = || respond(StatusCode::ACCEPTED, &[], b"{\"status\":\"OK\"}".to_vec());
    let rest = path
        .strip_prefix("/2018-06-01/runtime/")
        .unwrap_or_default();
    if rest == "invocation/next" {
        let mut rx = s.next_rx.lock().await;
        let Some(p) = rx.recv().await else {
            return respond(StatusCode::GONE, &[], vec![]);
        };
        drop(rx);
        if let Ok(mut m) = s.in_flight.lock() {
            m.insert(p.id.clone(), p.done);
        }
        return respond(
            StatusCode::OK,
            &[
                ("Lambda-Runtime-Aws-Request-Id", p.id),
                ("Lambda-Runtime-Deadline-Ms", p.deadline_ms.to_string()),
                (
                    "Lambda-Runtime-Invoked-Function-Arn",
                    s.function.arn.clone(),
                ),
                (
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
                ),
                ("content-type", "application/json".into()),
            ],
            serde_json::to_vec(&p.payload).unwrap_or_default(),
        );
    }
    if rest == "init/error" {
        let doc: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!({"errorMessage": String::from_utf8_lossy(&body)}));
        let message = doc
            .get("errorMessage")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| doc.to_string());
        if let Ok(mut e) = s.init_error.lock() {
            *e = Some(message);
        }
        return accepted();
    }
    if let Some(tail) = rest.strip_prefix("invocation/") {
        let (id, what) = tail.split_once('/').unwrap_or((tail, ""));
        let sender = s.in_flight.lock().ok().and_then(|mut m| m.remove(id));
        let Some(sender) = sender else {
            return respond(
                StatusCode::BAD_REQUEST,
                &[],
                b"{\"errorType\":\"InvalidRequestID\"}".to_vec(),
            );
        };
        let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let outcome = match what {
            "response" => Outcome::Ok(doc),
            "error" => Outcome::Error {
                error_type: doc
                    .get("errorType")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(error_type)
                    .unwrap_or_else(|| "Unhandled".into()),
                body: doc,
            },
            _ => return respond(StatusCode::NOT_FOUND, &[], vec![]),
        };
        let _ = sender.send(outcome);
        return accepted();
    }
    respond(StatusCode::NOT_FOUND, &[], vec![])
}
