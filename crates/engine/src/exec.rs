//! Runs a loaded state machine: state by state, with retries, catches, timeouts and history,
//! on tokio's clock (paused by the caller for virtual time).

use crate::asl::{
    Catcher, Kind, NumberOrPath, PathField, ResultPath, Retrier, State, StateMachine, StringOrPath,
    Template, Transition, WaitFor,
};
use crate::choice;
use crate::intrinsics::{self, Scope};
use crate::jsonpath::{set_path, JsonPath};
use crate::tokens::{TokenBroker, TokenMessage};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most a state may pass on, as on AWS (256 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 262_144;
/// A Standard execution's history holds at most 25,000 events; an execution that needs more
/// fails (Step Functions quotas, "Quotas related to state machine executions",
/// https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html). The failure is a
/// runtime error no Catch on `States.ALL` intercepts, so no rollback runs after it.
pub const MAX_HISTORY_EVENTS: usize = 25_000;
const HISTORY_RESERVE: usize = 8;

/// An error raised by a task, as Step Functions sees it: a name and a cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

/// Dispatches a Task's Lambda function to in-process code.
#[async_trait]
pub trait TaskHandler: Send + Sync {
    /// `function` is the Lambda function ARN after substitution.
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, TaskError>;
}

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;
pub type Observer = Arc<dyn Fn(&HistoryEvent) + Send + Sync>;

#[derive(Clone)]
pub struct Options {
    /// Deliver every Lambda invocation twice with the same payload (at-least-once delivery).
    pub duplicate_delivery: bool,
    /// With `duplicate_delivery`: the two deliveries run at the same time instead of one after
    /// the other (two Lambda instances racing on one payload).
    pub concurrent_duplicates: bool,
    /// Seed for retry jitter, so a run can be replayed exactly.
    pub seed: u64,
    pub account: String,
    pub region: String,
    /// Wait states and retry delays last this fraction of their time (1.0: as written). For a
    /// run on the real clock whose steps are real processes (`cutover rehearse`), where the
    /// paused clock cannot be used and the plans' waits are already at their minimum.
    pub wait_scale: f64,
    /// Keep each history event's details (state inputs and outputs, task parameters). Off, the
    /// history keeps every event's kind, state and time (enough to count transitions and
    /// invocations and to place events in time) in a fraction of the memory: a wave of hundreds
    /// of executions need not hold every state's data of every one.
    pub history_details: bool,
}

impl Options {
    fn scaled(&self, d: Duration) -> Duration {
        if self.wait_scale == 1.0 {
            d
        } else {
            d.mul_f64(self.wait_scale.clamp(0.0, 1.0))
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            duplicate_delivery: false,
            concurrent_duplicates: false,
            seed: 7,
            account: "123456789012".into(),
            region: "us-east-1".into(),
            wait_scale: 1.0,
            history_details: true,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
    /// Stopped from outside (StopExecution): whatever was running is abandoned where it was.
    Aborted,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub name: String,
    pub status: Status,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub history: Vec<HistoryEvent>,
    pub state_transitions: u64,
    pub started: DateTime<Utc>,
    pub stopped: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
struct Failure {
    error: Option<String>,
    cause: Option<String>,
}

impl Failure {
    fn new(error: &str, cause: impl Into<String>) -> Self {
        Failure {
            error: Some(error.to_string()),
            cause: Some(cause.into()),
        }
    }
    fn runtime(cause: String) -> Self {
        Failure::new("States.Runtime", cause)
    }
}

pub struct Engine {
    handler: Arc<dyn TaskHandler>,
    broker: Arc<TokenBroker>,
    clock: Clock,
    options: Options,
    observer: Option<Observer>,
    /// State machines a `states:startExecution.sync:2` task may start, by ARN.
    machines: HashMap<String, (String, Arc<StateMachine>)>,
    /// Executions started by tasks, by (state machine ARN, name): a name starts once.
    children: Mutex<Vec<(String, Execution)>>,
    started_names: Mutex<HashSet<(String, String)>>,
    /// Set by `stop_children`: every execution started with `states:startExecution` that still
    /// runs is stopped, as StopExecution of each would.
    child_stop: tokio::sync::watch::Sender<Option<(String, String)>>,
    /// Told of every execution started without waiting that ended other than SUCCEEDED, as
    /// Step Functions' "Execution Status Change" event reaches an EventBridge rule.
    child_ended: Option<ChildListener>,
    /// The largest state output (bytes of its JSON) any execution of this engine produced.
    max_state_bytes: std::sync::atomic::AtomicUsize,
}

/// What hears of a started execution that ended FAILED, TIMED_OUT or ABORTED.
pub type ChildListener = Arc<dyn Fn(Execution) -> BoxFuture<'static, ()> + Send + Sync>;

struct Exec<'e> {
    engine: &'e Engine,
    /// Child executions started without waiting (`states:startExecution`): they run beside this
    /// one, and its `execute` returns once they have ended too.
    background: tokio::sync::mpsc::UnboundedSender<BoxFuture<'e, ()>>,
    history: Mutex<Vec<HistoryEvent>>,
    transitions: AtomicU64,
    rng: Mutex<rand::rngs::StdRng>,
    base_context: Value,
}

impl Engine {
    pub fn new(
        handler: Arc<dyn TaskHandler>,
        broker: Arc<TokenBroker>,
        clock: Clock,
        options: Options,
    ) -> Self {
        Engine {
            handler,
            broker,
            clock,
            options,
            observer: None,
            machines: HashMap::new(),
            children: Mutex::new(Vec::new()),
            started_names: Mutex::new(HashSet::new()),
            child_stop: tokio::sync::watch::channel(None).0,
            child_ended: None,
            max_state_bytes: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Tells `listener` of every execution started without waiting that ends other than
    /// SUCCEEDED, when it ends (the safety net's EventBridge rule, locally).
    pub fn on_child_ended(&mut self, listener: ChildListener) {
        self.child_ended = Some(listener);
    }

    /// The largest state output, in bytes of JSON, of any execution so far: how close a run
    /// came to the 256 KB a state may carry (`MAX_PAYLOAD_BYTES`).
    pub fn max_state_bytes(&self) -> usize {
        self.max_state_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The ARN a machine registered under `name` gets.
    pub fn machine_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.options.region, self.options.account
        )
    }

    /// Makes `machine` startable by `states:startExecution.sync:2` tasks; returns its ARN.
    pub fn register(&mut self, name: &str, machine: StateMachine) -> String {
        let arn = self.machine_arn(name);
        self.machines
            .insert(arn.clone(), (name.to_string(), Arc::new(machine)));
        arn
    }

    /// Stops every execution started without waiting (`states:startExecution`) that still runs:
    /// each ends ABORTED with this error and cause (what StopExecution of each does; a stopped
    /// parent does not stop them by itself).
    pub fn stop_children(&self, error: &str, cause: &str) {
        self.child_stop
            .send_replace(Some((error.to_string(), cause.to_string())));
    }

    /// Child executions started by tasks so far, with the ARN of their machine.
    pub fn children(&self) -> Vec<(String, Execution)> {
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn broker(&self) -> &Arc<TokenBroker> {
        &self.broker
    }

    /// Runs one execution to its end. `machine_name` and `name` feed the context object.
    pub async fn execute(
        &self,
        machine: &StateMachine,
        machine_name: &str,
        name: &str,
        input: Value,
    ) -> Execution {
        self.execute_until(machine, machine_name, name, input, std::future::pending())
            .await
    }

    /// Runs one execution until it ends or `stop` resolves, whichever comes first. A stop is a
    /// console StopExecution: the running state is abandoned where it is, no Catch runs, and the
    /// execution ends ABORTED with the error and cause `stop` gives (StopExecution,
    /// https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html).
    pub async fn execute_until(
        &self,
        machine: &StateMachine,
        machine_name: &str,
        name: &str,
        input: Value,
        stop: impl std::future::Future<Output = (String, String)>,
    ) -> Execution {
        let started = (self.clock)();
        let sm_arn = format!(
            "arn:aws:states:{}:{}:stateMachine:{machine_name}",
            self.options.region, self.options.account
        );
        let exec_arn = format!(
            "arn:aws:states:{}:{}:execution:{machine_name}:{name}",
            self.options.region, self.options.account
        );
        let base_context = json!({
            "Execution": {
                "Id": exec_arn,
                "Input": input,
                "Name": name,
                "RoleArn": format!("arn:aws:iam::{}:role/{machine_name}-role", self.options.account),
                "StartTime": started.to_rfc3339_opts(SecondsFormat::Millis, true),
                "RedriveCount": 0,
            },
            "StateMachine": {"Id": sm_arn, "Name": machine_name},
        });
        let (background, started_children) = tokio::sync::mpsc::unbounded_channel();
        let exec = Exec {
            engine: self,
            background,
            history: Mutex::new(Vec::new()),
            transitions: AtomicU64::new(0),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(self.options.seed)),
            base_context,
        };
        exec.event("ExecutionStarted", None, json!({"input": input}));
        let run = exec.run_machine(machine, input);
        let bounded = async {
            match machine.timeout_seconds {
                Some(t) => match tokio::time::timeout(Duration::from_secs(t), run).await {
                    Ok(r) => r.map_err(|f| (f, Status::Failed)),
                    Err(_) => Err((
                        Failure::new("States.Timeout", "The execution timed out"),
                        Status::TimedOut,
                    )),
                },
                None => run.await.map_err(|f| (f, Status::Failed)),
            }
        };
        let (root_ended, ended) = tokio::sync::oneshot::channel::<()>();
        let root = async {
            let r = tokio::select! {
                r = bounded => r,
                (error, cause) = stop => Err((Failure::new(&error, cause), Status::Aborted)),
            };
            let _ = root_ended.send(());
            r
        };
        let (result, ()) = tokio::join!(root, drive_children(started_children, ended));
        let (status, output, error, cause) = match result {
            Ok(out) => {
                exec.event("ExecutionSucceeded", None, json!({"output": out}));
                (Status::Succeeded, Some(out), None, None)
            }
            Err((f, status)) => {
                let kind = match status {
                    Status::TimedOut => "ExecutionTimedOut",
                    Status::Aborted => "ExecutionAborted",
                    _ => "ExecutionFailed",
                };
                exec.event(kind, None, json!({"error": f.error, "cause": f.cause}));
                (status, None, f.error, f.cause)
            }
        };
        Execution {
            name: name.to_string(),
            status,
            output,
            error,
            cause,
            history: exec.history.into_inner().unwrap_or_else(|p| p.into_inner()),
            state_transitions: exec.transitions.load(Ordering::Relaxed),
            started,
            stopped: (self.clock)(),
        }
    }
}

/// Runs the executions a machine started without waiting, beside it, until the machine has
/// ended and they have too (on AWS they outlive their parent; locally the run waits for them so
/// that the world it reports is where they left it).
async fn drive_children<'e>(
    mut started: tokio::sync::mpsc::UnboundedReceiver<BoxFuture<'e, ()>>,
    mut root_ended: tokio::sync::oneshot::Receiver<()>,
) {
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut running = FuturesUnordered::new();
    let mut root_done = false;
    loop {
        if root_done {
            while let Ok(f) = started.try_recv() {
                running.push(f);
            }
            if running.is_empty() {
                return;
            }
        }
        tokio::select! {
            Some(f) = started.recv() => running.push(f),
            Some(()) = running.next(), if !running.is_empty() => {}
            _ = &mut root_ended, if !root_done => root_done = true,
        }
    }
}

/// A child execution a StartExecution task may start.
struct StartedChild {
    arn: String,
    exec_name: String,
    input: Value,
    machine_name: String,
    machine: Arc<StateMachine>,
}

enum Step {
    Next(String, Value),
    End(Value),
}

impl<'e> Exec<'e> {
    fn event(&self, kind: &str, state: Option<&str>, details: Value) -> u64 {
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let id = h.len() as u64 + 1;
        let mut ev = HistoryEvent {
            id,
            kind: kind.to_string(),
            timestamp: (self.engine.clock)(),
            state: state.map(str::to_string),
            details,
        };
        if let Some(obs) = &self.engine.observer {
            obs(&ev);
        }
        if !self.engine.options.history_details {
            ev.details = Value::Null;
        }
        h.push(ev);
        id
    }

    fn run_machine<'a>(
        &'a self,
        sm: &'a StateMachine,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        async move {
            let mut current = sm.start_at.clone();
            let mut input = input;
            loop {
                let state = &sm.states[&current];
                match self.run_state(state, input).await? {
                    Step::Next(n, out) => {
                        current = n;
                        input = out;
                    }
                    Step::End(out) => return Ok(out),
                }
            }
        }
        .boxed()
    }

    fn context(&self, state: &str, entered: DateTime<Utc>) -> Value {
        let mut c = self.base_context.clone();
        c["State"] = json!({
            "EnteredTime": entered.to_rfc3339_opts(SecondsFormat::Millis, true),
            "Name": state,
        });
        c
    }

    async fn run_state(&self, st: &State, raw_input: Value) -> Result<Step, Failure> {
        let type_name = match &st.kind {
            Kind::Pass { .. } => "Pass",
            Kind::Task { .. } => "Task",
            Kind::Choice { .. } => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel { .. } => "Parallel",
            Kind::Map { .. } => "Map",
        };
        // Room is kept for the failure events that close the history (the enclosing Map or
        // Parallel iterations' and ExecutionFailed).
        let used = self.history.lock().unwrap_or_else(|p| p.into_inner()).len();
        if used + HISTORY_RESERVE >= MAX_HISTORY_EVENTS {
            return Err(Failure::runtime(format!(
                "The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS}) before state '{}'.",
                st.name
            )));
        }
        self.transitions.fetch_add(1, Ordering::Relaxed);
        let entered = (self.engine.clock)();
        let entered_id = self.event(
            &format!("{type_name}StateEntered"),
            Some(&st.name),
            json!({"input": raw_input}),
        );
        let prefix = format!("An error occurred while executing the state '{}' (entered at the event id #{entered_id}). ", st.name);
        let rt = |m: String| Failure::runtime(format!("{prefix}{m}"));

        let mut attempt_counts = vec![0u32; st.retry.len()];
        loop {
            // Most states (Wait, Choice, Pass, and Tasks without `$$`) never read the context
            // object: building it means cloning the execution input.
            let ctx = if st.uses_context {
                self.context(&st.name, entered)
            } else {
                Value::Null
            };
            let outcome = self.attempt(st, &raw_input, &ctx, &rt).await;
            match outcome {
                Ok(step) => {
                    let out = match &step {
                        Step::Next(_, v) | Step::End(v) => v,
                    };
                    let bytes = serde_json::to_string(out).map(|s| s.len()).unwrap_or(0);
                    self.engine
                        .max_state_bytes
                        .fetch_max(bytes, std::sync::atomic::Ordering::Relaxed);
                    if bytes > MAX_PAYLOAD_BYTES {
                        return Err(Failure::new(
                            "States.DataLimitExceeded",
                            format!(
                                "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                                st.name
                            ),
                        ));
                    }
                    if !matches!(st.kind, Kind::Fail { .. }) {
                        self.event(
                            &format!("{type_name}StateExited"),
                            Some(&st.name),
                            json!({"output": out}),
                        );
                    }
                    return Ok(step);
                }
                Err(f) => {
                    let name = f.error.as_deref();
                    if let Some((i, r)) = st
                        .retry
                        .iter()
                        .enumerate()
                        .find(|(_, r)| matches_error(&r.error_equals, name))
                    {
                        if attempt_counts[i] < r.max_attempts {
                            let delay = self.retry_delay(r, attempt_counts[i]);
                            attempt_counts[i] += 1;
                            self.transitions.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(self.engine.options.scaled(delay)).await;
                            continue;
                        }
                    }
                    if matches!(st.kind, Kind::Map { .. } | Kind::Parallel { .. })
                        && f.error.as_deref() != Some("States.Runtime")
                    {
                        // AWS records the failure of a Map or Parallel once, after its last attempt.
                        self.event(
                            &format!("{type_name}StateFailed"),
                            Some(&st.name),
                            json!({"error": f.error, "cause": f.cause}),
                        );
                    }
                    if let Some(c) = st
                        .catch
                        .iter()
                        .find(|c| matches_error(&c.error_equals, name))
                    {
                        return self.caught(st, type_name, c, &raw_input, f, &rt);
                    }
                    return Err(f);
                }
            }
        }
    }

    fn caught(
        &self,
        st: &State,
        type_name: &str,
        c: &Catcher,
        raw: &Value,
        f: Failure,
        rt: &(dyn Fn(String) -> Failure + Sync),
    ) -> Result<Step, Failure> {
        let err_obj = json!({"Error": f.error.clone().unwrap_or_default(), "Cause": f.cause.clone().unwrap_or_default()});
        let out = apply_result_path(&c.result_path, raw, err_obj).map_err(rt)?;
        self.event(
            &format!("{type_name}StateExited"),
            Some(&st.name),
            json!({"output": out}),
        );
        Ok(Step::Next(c.next.clone(), out))
    }

    fn retry_delay(&self, r: &Retrier, attempt: u32) -> Duration {
        let mut d = r.interval_seconds * r.backoff_rate.powi(attempt as i32);
        if let Some(max) = r.max_delay_seconds {
            d = d.min(max);
        }
        if r.jitter_full {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            d = rng.random_range(0.0..=d);
        }
        Duration::from_secs_f64(d.max(0.0))
    }

    async fn attempt(
        &self,
        st: &State,
        raw: &Value,
        ctx: &Value,
        rt: &(dyn Fn(String) -> Failure + Sync),
    ) -> Result<Step, Failure> {
        let effective = apply_path_field(&st.input_path, raw, ctx).map_err(rt)?;
        let next = |out: Value| -> Result<Step, Failure> {
            let out = apply_path_field(&st.output_path, &out, ctx).map_err(rt)?;
            Ok(match &st.transition {
                Transition::Next(n) => Step::Next(n.clone(), out),
                _ => Step::End(out),
            })
        };
        match &st.kind {
            Kind::Choice { choices, default } => {
                for (rule, target) in choices {
                    if choice::eval(rule, &effective, ctx).map_err(rt)? {
                        let out = apply_path_field(&st.output_path, &effective, ctx).map_err(rt)?;
                        return Ok(Step::Next(target.clone(), out));
                    }
                }
                match default {
                    Some(d) => {
                        let out = apply_path_field(&st.output_path, &effective, ctx).map_err(rt)?;
                        Ok(Step::Next(d.clone(), out))
                    }
                    None => Err(Failure::new(
                        "States.NoChoiceMatched",
                        format!(
                            "No Choice matched and no Default is specified in state '{}'",
                            st.name
                        ),
                    )),
                }
            }
            Kind::Succeed => Ok(Step::End(
                apply_path_field(&st.output_path, &effective, ctx).map_err(rt)?,
            )),
            Kind::Fail { error, cause } => {
                let resolve = |f: &Option<StringOrPath>,
                               field: &str|
                 -> Result<Option<String>, Failure> {
                    match f {
                        None => Ok(None),
                        Some(StringOrPath::Literal(s)) => Ok(Some(s.clone())),
                        Some(StringOrPath::Path(p)) => {
                            let root = if p.context { ctx } else { raw };
                            let v = p.select(root).ok_or_else(|| {
                                rt(format!(
                                    "The JSONPath '{}' specified for the field '{field}' could not be found in the input '{}'",
                                    p.text,
                                    compact(raw)
                                ))
                            })?;
                            Ok(Some(
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string()),
                            ))
                        }
                        Some(StringOrPath::Intrinsic(c)) => {
                            let v = intrinsics::eval(
                                c,
                                &Scope {
                                    input: raw,
                                    context: ctx,
                                },
                            )
                            .map_err(rt)?;
                            Ok(Some(
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string()),
                            ))
                        }
                    }
                };
                let error = resolve(error, "ErrorPath")?;
                let cause = resolve(cause, "CausePath")?;
                Err(Failure { error, cause })
            }
            Kind::Wait(w) => {
                let field_err = |msg: &str, p: &JsonPath, v: &Value| {
                    rt(format!(
                        "The {msg}: {} == {}",
                        p.text,
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    ))
                };
                let dur = match w {
                    WaitFor::Seconds(s) => Duration::from_secs(*s),
                    WaitFor::SecondsPath(p) => {
                        let root = if p.context { ctx } else { &effective };
                        let v = p.select(root).ok_or_else(|| {
                            rt(format!(
                                "The SecondsPath parameter does not reference an input value: {}",
                                p.text
                            ))
                        })?;
                        let n = v
                            .as_i64()
                            .or_else(|| v.as_u64().map(|u| u as i64))
                            .ok_or_else(|| {
                                field_err(
                                    "SecondsPath parameter cannot be parsed as a long value",
                                    p,
                                    &v,
                                )
                            })?;
                        if n < 0 {
                            return Err(field_err(
                                "SecondsPath parameter references a negative value",
                                p,
                                &v,
                            ));
                        }
                        Duration::from_secs(n as u64)
                    }
                    WaitFor::Timestamp(t) => until(&(self.engine.clock)(), &t.with_timezone(&Utc)),
                    WaitFor::TimestampPath(p) => {
                        let root = if p.context { ctx } else { &effective };
                        let v = p.select(root).ok_or_else(|| {
                            rt(format!(
                                "The TimestampPath parameter does not reference an input value: {}",
                                p.text
                            ))
                        })?;
                        let t = v.as_str().and_then(choice::parse_timestamp).ok_or_else(|| {
                            field_err("TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string", p, &v)
                        })?;
                        until(&(self.engine.clock)(), &t.with_timezone(&Utc))
                    }
                };
                tokio::time::sleep(self.engine.options.scaled(dur)).await;
                next(effective)
            }
            Kind::Pass { result } => {
                let value = match (result, &st.parameters) {
                    (Some(r), _) => r.clone(),
                    (None, Some(t)) => render(t, &effective, ctx).map_err(rt)?,
                    (None, None) => effective.clone(),
                };
                let out = apply_result_path(&st.result_path, raw, value).map_err(rt)?;
                next(out)
            }
            Kind::Task {
                resource,
                timeout,
                heartbeat,
            } => {
                let mut ctx = ctx.clone();
                let callback = if resource.ends_with(".waitForTaskToken") {
                    let (token, rx) = self.engine.broker.register();
                    ctx["Task"] = json!({"Token": token});
                    Some((token, rx))
                } else {
                    None
                };
                let ctx = &ctx;
                let params = match &st.parameters {
                    Some(t) => render(t, &effective, ctx).map_err(rt)?,
                    None => effective.clone(),
                };
                let timeout =
                    resolve_seconds(timeout, &effective, "TimeoutSecondsPath").map_err(rt)?;
                let heartbeat =
                    resolve_seconds(heartbeat, &effective, "HeartbeatSecondsPath").map_err(rt)?;
                let token = callback.as_ref().map(|(t, _)| t.clone());
                let result = self
                    .run_task(st, resource, params, callback, timeout, heartbeat)
                    .await;
                if let Some(t) = token {
                    self.engine.broker.forget(&t);
                }
                let result = result?;
                let result = match &st.result_selector {
                    Some(t) => render(t, &result, ctx).map_err(rt)?,
                    None => result,
                };
                let out = apply_result_path(&st.result_path, raw, result).map_err(rt)?;
                next(out)
            }
            Kind::Parallel { branches } => {
                let input = match &st.parameters {
                    Some(t) => render(t, &effective, ctx).map_err(rt)?,
                    None => effective.clone(),
                };
                self.event("ParallelStateStarted", Some(&st.name), Value::Null);
                let runs = branches.iter().map(|b| self.run_machine(b, input.clone()));
                let results = futures::future::try_join_all(runs).await?;
                self.event("ParallelStateSucceeded", Some(&st.name), Value::Null);
                let mut result = Value::Array(results);
                if let Some(t) = &st.result_selector {
                    result = render(t, &result, ctx).map_err(rt)?;
                }
                let out = apply_result_path(&st.result_path, raw, result).map_err(rt)?;
                next(out)
            }
            Kind::Map {
                items_path,
                item_selector,
                processor,
                max_concurrency,
            } => {
                let items_v = match items_path {
                    None => effective.clone(),
                    Some(p) => {
                        let root = if p.context { ctx } else { &effective };
                        p.select(root).ok_or_else(|| {
                            rt(format!(
                                "Invalid path '{}' : No results for path: {}",
                                p.text,
                                p.normalized()
                            ))
                        })?
                    }
                };
                let items = items_v.as_array().cloned().ok_or_else(|| {
                    rt(format!(
                        "The ItemsPath field refers to value \"{}\" which is not a valid array",
                        compact(&items_v)
                    ))
                })?;
                let cap = match max_concurrency {
                    NumberOrPath::Number(n) => *n,
                    NumberOrPath::Path(p) => {
                        let v = p.select(&effective).unwrap_or(Value::Null);
                        v.as_u64().ok_or_else(|| {
                            rt(format!(
                                "The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: {}",
                                v.as_str().map(str::to_string).unwrap_or_else(|| compact(&v)),
                                p.text
                            ))
                        })?
                    }
                };
                let cap = if cap == 0 {
                    items.len().max(1)
                } else {
                    cap as usize
                };
                self.event(
                    "MapStateStarted",
                    Some(&st.name),
                    json!({"length": items.len()}),
                );
                let iterations = futures::stream::iter(items.into_iter().enumerate())
                    .map(|(i, item)| {
                        let ctx = ctx.clone();
                        let effective = &effective;
                        async move {
                            let input = match item_selector {
                                Some(t) => {
                                    let mut c = ctx.clone();
                                    c["Map"] = json!({"Item": {"Index": i, "Value": item}});
                                    render(t, effective, &c).map_err(Failure::runtime)?
                                }
                                None => item,
                            };
                            self.event("MapIterationStarted", Some(&st.name), json!({"index": i}));
                            match self.run_machine(processor, input).await {
                                Ok(v) => {
                                    self.event(
                                        "MapIterationSucceeded",
                                        Some(&st.name),
                                        json!({"index": i}),
                                    );
                                    Ok((i, v))
                                }
                                Err(f) => {
                                    self.event(
                                        "MapIterationFailed",
                                        Some(&st.name),
                                        json!({"index": i}),
                                    );
                                    Err(f)
                                }
                            }
                        }
                    })
                    .buffer_unordered(cap);
                // A slot frees as soon as any iteration ends, as on AWS; results keep the items' order.
                let mut results: Vec<(usize, Value)> = iterations.try_collect().await?;
                results.sort_by_key(|(i, _)| *i);
                let results: Vec<Value> = results.into_iter().map(|(_, v)| v).collect();
                self.event("MapStateSucceeded", Some(&st.name), Value::Null);
                let mut result = Value::Array(results);
                if let Some(t) = &st.result_selector {
                    result = render(t, &result, ctx).map_err(rt)?;
                }
                let out = apply_result_path(&st.result_path, raw, result).map_err(rt)?;
                next(out)
            }
        }
    }

    async fn run_task(
        &self,
        st: &State,
        resource: &str,
        params: Value,
        callback_token: Option<(String, tokio::sync::mpsc::UnboundedReceiver<TokenMessage>)>,
        timeout: Option<u64>,
        heartbeat: Option<u64>,
    ) -> Result<Value, Failure> {
        let name = Some(st.name.as_str());
        let work = async {
            if resource == "arn:aws:states:::states:startExecution.sync:2" {
                return self.start_child(st, params).await;
            }
            if resource == "arn:aws:states:::states:startExecution" {
                return self.start_child_async(st, params);
            }
            if let Some(callback) = resource.strip_prefix("arn:aws:states:::lambda:invoke") {
                let function = params
                    .get("FunctionName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Failure::runtime(format!(
                            "The state '{}' calls lambda:invoke without a FunctionName",
                            st.name
                        ))
                    })?;
                let payload = params.get("Payload").cloned().unwrap_or_else(|| json!({}));
                self.event(
                    "TaskScheduled",
                    name,
                    json!({"resource": resource, "function": function}),
                );
                self.event("TaskStarted", name, Value::Null);
                if let Some((_, mut rx)) = callback_token {
                    // The token is bound to this attempt; the payload carries it from $$.Task.Token.
                    if let Err(e) = self.invoke_lambda(function, payload).await {
                        self.event(
                            "TaskFailed",
                            name,
                            json!({"error": e.error, "cause": e.cause}),
                        );
                        return Err(Failure::new(&e.error, e.cause));
                    }
                    self.event("TaskSubmitted", name, Value::Null);
                    let outcome = wait_for_token(&mut rx, heartbeat).await;
                    return match outcome {
                        Ok(v) => {
                            self.event("TaskSucceeded", name, json!({"output": v}));
                            Ok(v)
                        }
                        Err(f) => {
                            let kind = if f.error.as_deref() == Some("States.HeartbeatTimeout") {
                                "TaskTimedOut"
                            } else {
                                "TaskFailed"
                            };
                            self.event(kind, name, json!({"error": f.error, "cause": f.cause}));
                            Err(f)
                        }
                    };
                }
                if !callback.is_empty() && callback != ".waitForTaskToken" {
                    return Err(Failure::runtime(format!(
                        "unsupported integration pattern '{callback}'"
                    )));
                }
                match self.invoke_lambda(function, payload).await {
                    Ok(v) => {
                        let out =
                            json!({"ExecutedVersion": "$LATEST", "Payload": v, "StatusCode": 200});
                        self.event("TaskSucceeded", name, json!({"output": out}));
                        Ok(out)
                    }
                    Err(e) => {
                        self.event(
                            "TaskFailed",
                            name,
                            json!({"error": e.error, "cause": e.cause}),
                        );
                        Err(Failure::new(&e.error, e.cause))
                    }
                }
            } else {
                self.event(
                    "LambdaFunctionScheduled",
                    name,
                    json!({"resource": resource}),
                );
                self.event("LambdaFunctionStarted", name, Value::Null);
                match self.invoke_lambda(resource, params).await {
                    Ok(v) => {
                        self.event("LambdaFunctionSucceeded", name, json!({"output": v}));
                        Ok(v)
                    }
                    Err(e) => {
                        self.event(
                            "LambdaFunctionFailed",
                            name,
                            json!({"error": e.error, "cause": e.cause}),
                        );
                        Err(Failure::new(&e.error, e.cause))
                    }
                }
            }
        };
        match timeout {
            None => work.await,
            Some(t) => match tokio::time::timeout(Duration::from_secs(t), work).await {
                Ok(r) => r,
                Err(_) => {
                    self.event("TaskTimedOut", name, Value::Null);
                    Err(Failure::new(
                        "States.Timeout",
                        format!("The state '{}' did not finish within {t} seconds", st.name),
                    ))
                }
            },
        }
    }

    /// What both StartExecution integrations do first: read the request, record TaskScheduled,
    /// and refuse an unknown machine or a name that already started (for 90 days on AWS: a
    /// restarted parent never reruns a child), recording TaskStartFailed.
    fn begin_child(
        &self,
        st: &State,
        params: &Value,
        resource: &str,
    ) -> Result<StartedChild, Failure> {
        let name = Some(st.name.as_str());
        let arn = params
            .get("StateMachineArn")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let exec_name = params
            .get("Name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let input = params.get("Input").cloned().unwrap_or_else(|| json!({}));
        self.event(
            "TaskScheduled",
            name,
            json!({"resource": resource, "stateMachineArn": arn, "name": exec_name}),
        );
        let refused = |f: Failure| {
            self.event(
                "TaskStartFailed",
                name,
                json!({"error": f.error, "cause": f.cause}),
            );
            Err(f)
        };
        let Some((machine_name, machine)) = self.engine.machines.get(&arn).cloned() else {
            return refused(Failure::new(
                "StepFunctions.StateMachineDoesNotExistException",
                format!("State Machine Does Not Exist: '{arn}'"),
            ));
        };
        let fresh = self
            .engine
            .started_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((arn.clone(), exec_name.clone()));
        if !fresh {
            return refused(Failure::new(
                "StepFunctions.ExecutionAlreadyExistsException",
                format!("Execution Already Exists: '{exec_name}'"),
            ));
        }
        Ok(StartedChild {
            arn,
            exec_name,
            input,
            machine_name,
            machine,
        })
    }

    /// `states:startExecution` (request-response): starts the child and answers at once with its
    /// ARN and start date, as StartExecution does
    /// (https://docs.aws.amazon.com/step-functions/latest/dg/connect-stepfunctions.html); the
    /// child runs on beside this execution. A name that already started is
    /// `StepFunctions.ExecutionAlreadyExistsException`.
    fn start_child_async(&self, st: &State, params: Value) -> Result<Value, Failure> {
        let name = Some(st.name.as_str());
        let StartedChild {
            arn,
            exec_name,
            input,
            machine_name,
            machine,
        } = self.begin_child(st, &params, "states:startExecution")?;
        self.event("TaskStarted", name, json!({"name": exec_name}));
        let exec_arn = format!(
            "arn:aws:states:{}:{}:execution:{machine_name}:{exec_name}",
            self.engine.options.region, self.engine.options.account
        );
        let started = (self.engine.clock)().timestamp_millis();
        let engine = self.engine;
        let mut stop = engine.child_stop.subscribe();
        let child: BoxFuture<'e, ()> = Box::pin(async move {
            let stopped = async move {
                loop {
                    if let Some(why) = stop.borrow_and_update().clone() {
                        return why;
                    }
                    if stop.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
            };
            let ended =
                Box::pin(engine.execute_until(&machine, &machine_name, &exec_name, input, stopped))
                    .await;
            if ended.status != Status::Succeeded {
                if let Some(listen) = &engine.child_ended {
                    listen(ended.clone()).await;
                }
            }
            engine
                .children
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((arn, ended));
        });
        if self.background.send(child).is_err() {
            return Err(Failure::runtime("the execution has ended".into()));
        }
        let out = json!({"ExecutionArn": exec_arn, "StartDate": started});
        self.event("TaskSucceeded", name, json!({"output": out}));
        Ok(out)
    }

    /// `states:startExecution.sync:2`: runs the child to its end; the output is parsed JSON.
    async fn start_child(&self, st: &State, params: Value) -> Result<Value, Failure> {
        let name = Some(st.name.as_str());
        let StartedChild {
            arn,
            exec_name,
            input,
            machine_name,
            machine,
        } = self.begin_child(st, &params, "states:startExecution.sync:2")?;
        self.event("TaskStarted", name, json!({"name": exec_name}));
        self.event("TaskSubmitted", name, Value::Null);
        let child = Box::pin(
            self.engine
                .execute(&machine, &machine_name, &exec_name, input),
        )
        .await;
        let exec_arn = format!(
            "arn:aws:states:{}:{}:execution:{machine_name}:{exec_name}",
            self.engine.options.region, self.engine.options.account
        );
        self.engine
            .children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((arn.clone(), child.clone()));
        let ms = |t: DateTime<Utc>| t.timestamp_millis();
        match child.status {
            Status::Succeeded => {
                let out = json!({
                    "ExecutionArn": exec_arn, "StateMachineArn": arn, "Name": exec_name, "Status": "SUCCEEDED",
                    "StartDate": ms(child.started), "StopDate": ms(child.stopped), "Output": child.output,
                });
                self.event("TaskSucceeded", name, json!({"output": out}));
                Ok(out)
            }
            status => {
                let cause = json!({
                    "ExecutionArn": exec_arn, "StateMachineArn": arn, "Name": exec_name,
                    "Status": if status == Status::TimedOut { "TIMED_OUT" } else { "FAILED" },
                    "StartDate": ms(child.started), "StopDate": ms(child.stopped), "Error": child.error, "Cause": child.cause,
                });
                let f = Failure::new("States.TaskFailed", cause.to_string());
                self.event(
                    "TaskFailed",
                    name,
                    json!({"error": f.error, "cause": f.cause}),
                );
                Err(f)
            }
        }
    }

    async fn invoke_lambda(&self, function: &str, payload: Value) -> Result<Value, TaskError> {
        if self.engine.options.duplicate_delivery && self.engine.options.concurrent_duplicates {
            let handler = &self.engine.handler;
            let (_, second) = tokio::join!(
                handler.invoke(function, payload.clone()),
                handler.invoke(function, payload)
            );
            return second;
        }
        let first = self.engine.handler.invoke(function, payload.clone()).await;
        if self.engine.options.duplicate_delivery {
            // The second delivery's answer is the one Step Functions would see last.
            return self.engine.handler.invoke(function, payload).await;
        }
        first
    }
}

/// Lambda errors reach Step Functions with the error type as name and a JSON cause.
pub fn lambda_error(error_type: &str, message: &str) -> TaskError {
    TaskError {
        error: error_type.to_string(),
        cause: json!({"errorType": error_type, "errorMessage": message}).to_string(),
    }
}

async fn wait_for_token(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<TokenMessage>,
    heartbeat: Option<u64>,
) -> Result<Value, Failure> {
    loop {
        let msg = match heartbeat {
            None => rx.recv().await,
            Some(h) => match tokio::time::timeout(Duration::from_secs(h), rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    return Err(Failure::new(
                        "States.HeartbeatTimeout",
                        "no heartbeat within HeartbeatSeconds",
                    ))
                }
            },
        };
        match msg {
            Some(TokenMessage::Success(v)) => return Ok(v),
            Some(TokenMessage::Failure { error, cause }) => {
                return Err(Failure {
                    error: Some(error),
                    cause: Some(cause),
                })
            }
            Some(TokenMessage::Heartbeat) => continue,
            None => {
                return Err(Failure::new(
                    "States.TaskFailed",
                    "the task token was dropped",
                ))
            }
        }
    }
}

fn until(now: &DateTime<Utc>, t: &DateTime<Utc>) -> Duration {
    (*t - *now).to_std().unwrap_or(Duration::ZERO)
}

fn resolve_seconds(
    f: &Option<NumberOrPath>,
    input: &Value,
    field: &str,
) -> Result<Option<u64>, String> {
    match f {
        None => Ok(None),
        Some(NumberOrPath::Number(n)) => Ok(Some(*n)),
        Some(NumberOrPath::Path(p)) => {
            let v = p.select(input).ok_or_else(|| {
                format!(
                    "The {field} parameter does not reference an input value: {}",
                    p.text
                )
            })?;
            v.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                format!(
                    "The {field} parameter is not a positive integer: {} == {v}",
                    p.text
                )
            })
        }
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn matches_error(list: &[String], name: Option<&str>) -> bool {
    list.iter().any(|e| match e.as_str() {
        // States.ALL does not catch the terminal runtime errors.
        "States.ALL" => !matches!(
            name,
            Some("States.Runtime") | Some("States.DataLimitExceeded")
        ),
        "States.TaskFailed" => !matches!(
            name,
            Some("States.Timeout")
                | Some("States.Runtime")
                | Some("States.DataLimitExceeded")
                | None
        ),
        other => Some(other) == name,
    })
}

fn apply_path_field(f: &PathField, v: &Value, ctx: &Value) -> Result<Value, String> {
    match f {
        PathField::Whole => Ok(v.clone()),
        PathField::Empty => Ok(json!({})),
        PathField::Path(p) => p.select(if p.context { ctx } else { v }).ok_or_else(|| {
            format!(
                "Invalid path '{}' : No results for path: {}",
                p.text,
                p.normalized()
            )
        }),
    }
}

fn apply_result_path(rp: &ResultPath, raw: &Value, result: Value) -> Result<Value, String> {
    match rp {
        ResultPath::Replace => Ok(result),
        ResultPath::Discard => Ok(raw.clone()),
        ResultPath::At(steps) => {
            set_path(raw, steps, result).map_err(|m| format!("Unable to apply ResultPath: {m}"))
        }
    }
}

/// Fills a payload template from the input and the context object.
pub fn render(t: &Template, input: &Value, ctx: &Value) -> Result<Value, String> {
    Ok(match t {
        Template::Literal(v) => v.clone(),
        Template::Path(p) => {
            let root = if p.context { ctx } else { input };
            p.select(root).ok_or_else(|| {
                format!(
                    "The JSONPath '{}' could not be found in the input '{}'",
                    p.text,
                    compact(input)
                )
            })?
        }
        Template::Intrinsic(c) => intrinsics::eval(
            c,
            &Scope {
                input,
                context: ctx,
            },
        )?,
        Template::Object(fields) => {
            let mut out = serde_json::Map::new();
            for (k, v) in fields {
                let value = match v {
                    Template::Path(p) => {
                        let root = if p.context { ctx } else { input };
                        p.select(root).ok_or_else(|| {
                            format!(
                                "The JSONPath '{}' specified for the field '{k}.$' could not be found in the input '{}'",
                                p.text,
                                compact(root)
                            )
                        })?
                    }
                    other => render(other, input, ctx)?,
                };
                out.insert(k.clone(), value);
            }
            Value::Object(out)
        }
        Template::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render(i, input, ctx))
                .collect::<Result<_, _>>()?,
        ),
    })
}
