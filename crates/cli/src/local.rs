//! Wires the engine, the step handlers and the simulated world for one local cutover.

use crate::report::{build_report, Report};
use async_trait::async_trait;
use cutover_core::api::{handle_api, ApiRequest};
use cutover_core::budget::{BudgetedRouter, Coordination, DEFAULT_ROUTE53_RATE};
use cutover_core::model::{ApprovalNotice, AuditEvent, Decision};
use cutover_core::plan::{Plan, PlanError};
use cutover_core::ports::{
    Executions, HealthProbe, Hooks, Metrics, Notifier, PortError, PortErrorKind, Replication,
    RunStore, TaskCallbacks, TrafficRouter,
};
use cutover_core::steps::{self, DecideApproval, Deps};
use cutover_engine::{
    lambda_error, Engine, Options, TaskError, TaskHandler, TokenBroker, TokenError,
};
use cutover_sim::spec::OperatorAction;
use cutover_sim::{Faulty, MemoryStore, SimClock, World, WorldSpec};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The definition SAM deploys, compiled in so a local run always uses the real file.
pub const CUTOVER_ASL: &str = include_str!("../../../statemachines/cutover.asl.json");
/// The wave machine, likewise.
pub const WAVE_ASL: &str = include_str!("../../../statemachines/wave.asl.json");

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// An `--aws-endpoint-url` run could not set up its endpoint.
#[derive(Debug, thiserror::Error)]
#[error("seeding {endpoint}: {message}")]
pub struct SeedError {
    pub endpoint: String,
    pub message: String,
}

/// Bad input: the file and every problem, each named by its field.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}", .problems.join("\n  "))]
pub struct InputError {
    pub file: String,
    pub problems: Vec<String>,
}

fn read(path: &Path) -> Result<(String, bool), InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError {
        file: path.display().to_string(),
        problems: vec![e.to_string()],
    })?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    Ok((text, json))
}

fn problems(path: &Path, e: PlanError) -> InputError {
    InputError {
        file: path.display().to_string(),
        problems: e.violations().iter().map(|v| v.to_string()).collect(),
    }
}

pub fn load_plan(path: &Path) -> Result<Plan, InputError> {
    let (text, json) = read(path)?;
    Plan::parse(&text, json).map_err(|e| problems(path, e))
}

pub fn load_world(path: &Path) -> Result<WorldSpec, InputError> {
    let (text, json) = read(path)?;
    WorldSpec::parse(&text, json).map_err(|e| problems(path, e))
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Deliver every Task twice (at-least-once delivery), to prove idempotency.
    pub duplicate_delivery: bool,
    /// With `duplicate_delivery`, the two deliveries race instead of following each other.
    pub concurrent_duplicates: bool,
    /// Seed for retry jitter.
    pub seed: u64,
    /// Progress lines on stderr as the run goes.
    pub progress: bool,
    /// Defaults to `<application>-<world start time>`.
    pub run_id: Option<String>,
    /// Run store, Route 53 and DMS through the SDK adapters at this endpoint (e.g. moto);
    /// lag, health, alarms, approvals and MGN stay simulated.
    pub aws_endpoint_url: Option<String>,
    /// Progress lines name each run by this label (run id -> application, in a wave).
    pub progress_labels: HashMap<String, String>,
    /// The execution input exactly as given (as a console user would start it), instead of
    /// `{"plan": <the parsed plan, every default filled>}`.
    pub raw_input: Option<Value>,
    /// How the run's Route 53 requests share the account's budget with other runs.
    pub route53: Coordination,
    /// Executions keep their history without each event's data (inputs, outputs): a wave's
    /// hundreds of executions then fit in a fraction of the memory. Reports never read it.
    pub lean_history: bool,
    /// A progress line for every healthy health round too (otherwise only the rounds that say
    /// something: a bake's completion, a note, a failure).
    pub verbose: bool,
    /// `local serve`: told the run's ports once they exist, so its page can read and steer it.
    pub live: Option<crate::serve::Live>,
}

/// Dispatches Lambda ARNs to the step functions, as the deployed functions would run them.
struct LocalHandler {
    deps: Deps,
}

#[async_trait]
impl TaskHandler for LocalHandler {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, TaskError> {
        let name = function.rsplit(':').next().unwrap_or(function);
        steps::dispatch(name, payload, &self.deps)
            .await
            .map_err(|e| lambda_error(e.name(), &cutover_core::redact::redact_text(&e.to_string())))
    }
}

/// SendTaskSuccess / SendTaskFailure into the engine's token broker.
struct BrokerCallbacks(Arc<TokenBroker>);

fn token_err(e: TokenError) -> PortError {
    match e {
        TokenError::InvalidToken => PortError::new(
            "states",
            PortErrorKind::NotFound,
            "InvalidToken",
            "the task token is not known",
        ),
        TokenError::TaskTimedOut => PortError::new(
            "states",
            PortErrorKind::Invalid,
            "TaskTimedOut",
            "the task is no longer waiting",
        ),
    }
}

#[async_trait]
impl TaskCallbacks for BrokerCallbacks {
    async fn send_success(&self, task_token: &str, output: Value) -> Result<(), PortError> {
        self.0.send_success(task_token, output).map_err(token_err)
    }
    async fn send_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), PortError> {
        self.0
            .send_failure(task_token, error, cause)
            .map_err(token_err)
    }
}

/// A run store that also prints each new audit event as a progress line and, on a terminal, keeps
/// a progress bar under them.
struct ProgressStore {
    inner: Arc<dyn RunStore>,
    clock: SimClock,
    /// Run id -> what a line names it by (a wave's applications); empty for a single run.
    labels: HashMap<String, String>,
    colour: bool,
    verbose: bool,
    /// Some on a terminal: the percentage drawn, and the runs closed so far (a wave).
    bar: Option<std::sync::Mutex<(f64, usize)>>,
}

impl ProgressStore {
    /// How far along: a single run by its milestones and green's weight (it goes back down
    /// during a rollback); a wave by its applications that have ended.
    fn advance(&self, e: &AuditEvent, state: &mut (f64, usize)) {
        if e.event == "run-closed" {
            state.1 += 1;
        }
        state.0 = if !self.labels.is_empty() {
            100.0 * state.1 as f64 / self.labels.len() as f64
        } else if e.event == "run-closed" {
            100.0
        } else if let Some(w) = e.weights {
            20.0 + 0.7 * f64::from(w.green)
        } else if e.event == "replication-started" {
            state.0.max(20.0)
        } else if e.event == "validated" {
            state.0.max(10.0)
        } else {
            state.0
        };
    }
}

fn hms(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[async_trait]
impl RunStore for ProgressStore {
    async fn book_slot(
        &self,
        budget: &str,
        now: chrono::DateTime<chrono::Utc>,
        interval: chrono::Duration,
        latest: chrono::DateTime<chrono::Utc>,
    ) -> Result<cutover_core::ports::Booking, PortError> {
        self.inner.book_slot(budget, now, interval, latest).await
    }
    async fn acquire_lock(
        &self,
        a: &str,
        r: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<cutover_core::ports::LockOutcome, PortError> {
        self.inner.acquire_lock(a, r, at).await
    }
    async fn release_lock(&self, a: &str, r: &str) -> Result<(), PortError> {
        self.inner.release_lock(a, r).await
    }
    async fn list_runs(
        &self,
        a: Option<&str>,
    ) -> Result<Vec<cutover_core::model::RunRecord>, PortError> {
        self.inner.list_runs(a).await
    }
    async fn take_over_lock(
        &self,
        a: &str,
        f: &str,
        t: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, PortError> {
        self.inner.take_over_lock(a, f, t, at).await
    }
    async fn load_run(&self, r: &str) -> Result<Option<cutover_core::model::RunRecord>, PortError> {
        self.inner.load_run(r).await
    }
    async fn save_run(&self, rec: &cutover_core::model::RunRecord) -> Result<(), PortError> {
        self.inner.save_run(rec).await
    }
    async fn append_event(&self, e: &AuditEvent) -> Result<bool, PortError> {
        let new = self.inner.append_event(e).await?;
        // A healthy round that says nothing more is a line only with --verbose: one line per
        // bake (its completion) on a healthy run.
        let quiet_round = e.healthy == Some(true) && e.message.is_empty() && !self.verbose;
        if new && !quiet_round {
            let who = self
                .labels
                .get(&e.run_id)
                .map(|l| format!("{l:<14} "))
                .unwrap_or_default();
            let mut line = format!(
                "[t+{}] {who}{:<20} {:<18}",
                hms(self.clock.elapsed_seconds()),
                e.step,
                e.event
            );
            if let Some(w) = e.weights {
                line.push_str(&format!(" blue={} green={}", w.blue, w.green));
            }
            if let Some(l) = e.lag_seconds {
                line.push_str(&format!(" lag={l:.1}s"));
            }
            if let Some(h) = e.healthy {
                if h {
                    line.push_str(" healthy");
                } else {
                    line.push(' ');
                    line.push_str(&crate::style::paint(
                        "UNHEALTHY",
                        crate::style::Tone::Bad,
                        self.colour,
                    ));
                }
            }
            if let Some(a) = &e.actor {
                line.push_str(&format!(" by={a}"));
            }
            if !e.message.is_empty() {
                line.push_str(&format!("  {}", e.message));
            }
            match &self.bar {
                None => eprintln!("{line}"),
                Some(state) => {
                    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                    self.advance(e, &mut state);
                    // Replace the bar with the line, then draw the bar again below it; once
                    // everything has ended, leave the line clear for the summary.
                    eprintln!("\r\x1b[K{line}");
                    if state.0 < 100.0 {
                        eprint!(
                            "{} t+{}",
                            crate::style::bar(state.0, 30),
                            hms(self.clock.elapsed_seconds())
                        );
                    }
                }
            }
        }
        Ok(new)
    }
    async fn events(&self, r: &str) -> Result<Vec<AuditEvent>, PortError> {
        self.inner.events(r).await
    }
    async fn save_approval(
        &self,
        a: &cutover_core::model::ApprovalRecord,
        u: bool,
    ) -> Result<(), PortError> {
        self.inner.save_approval(a, u).await
    }
    async fn load_approval(
        &self,
        r: &str,
        g: &str,
    ) -> Result<Option<cutover_core::model::ApprovalRecord>, PortError> {
        self.inner.load_approval(r, g).await
    }
    async fn approvals(
        &self,
        r: &str,
    ) -> Result<Vec<cutover_core::model::ApprovalRecord>, PortError> {
        self.inner.approvals(r).await
    }
    async fn wave_frozen(&self, w: &str) -> Result<Option<String>, PortError> {
        self.inner.wave_frozen(w).await
    }
    async fn set_wave_frozen(&self, w: &str, r: Option<&str>) -> Result<(), PortError> {
        self.inner.set_wave_frozen(w, r).await
    }
    async fn save_calendar_entry(
        &self,
        e: &cutover_core::model::CalendarEntry,
    ) -> Result<(), PortError> {
        self.inner.save_calendar_entry(e).await
    }
    async fn calendar(&self) -> Result<Vec<cutover_core::model::CalendarEntry>, PortError> {
        self.inner.calendar().await
    }
    async fn save_wave_plan(&self, k: &str, i: usize, p: &Plan) -> Result<(), PortError> {
        self.inner.save_wave_plan(k, i, p).await
    }
    async fn load_wave_plan(&self, k: &str, i: usize) -> Result<Option<Plan>, PortError> {
        self.inner.load_wave_plan(k, i).await
    }
}

/// `DefinitionSubstitutions` for both machines: each step's function ARN, and the cutover
/// machine's ARN for the wave machine's child executions.
pub fn substitutions() -> HashMap<String, String> {
    use steps::registry::{substitutions_of, Machine};
    let mut subs: HashMap<String, String> = substitutions_of(Machine::Cutover)
        .chain(substitutions_of(Machine::Wave))
        .map(|(f, k)| {
            (
                k.to_string(),
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{f}"),
            )
        })
        .collect();
    subs.insert(
        "CutoverStateMachineArn".into(),
        format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:cutover"),
    );
    subs
}

/// The plan as run and the ports that differ between simulated and `--aws-endpoint-url` runs.
type Wiring = (
    Plan,
    Arc<dyn RunStore>,
    Arc<dyn TrafficRouter>,
    Arc<dyn Replication>,
);

/// Everything a finished local run leaves behind, for the report and for tests.
pub struct LocalRun {
    pub report: Report,
    pub world: Arc<World>,
    pub store: Arc<MemoryStore>,
    pub execution: cutover_engine::Execution,
    /// Task tokens the engine issued (for tests proving none leaked).
    pub tokens: Vec<String>,
}

/// Runs one cutover to its end on a fresh paused runtime: hours of simulated time in milliseconds.
pub fn run_local(
    plan: &Plan,
    world: &WorldSpec,
    options: &RunOptions,
) -> Result<LocalRun, SeedError> {
    paused_runtime().block_on(run_local_async(plan, world, options))
}

pub(crate) fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("tokio runtime")
}

/// The engine with both machines, the step handlers over one world, and the simulated approvers.
pub(crate) struct Setup {
    pub engine: Engine,
    /// The loaded machines, registered with the engine too (the wave starts cutovers by ARN).
    pub cutover: cutover_engine::StateMachine,
    pub wave: cutover_engine::StateMachine,
    pub world: Arc<World>,
    pub memory: Arc<MemoryStore>,
    pub broker: Arc<TokenBroker>,
    pub approver: tokio::task::JoinHandle<()>,
    /// The ports the step handlers run with (the simulated operators act through them too).
    pub deps: Deps,
}

pub(crate) fn setup(
    world: Arc<World>,
    world_spec: &WorldSpec,
    memory: Arc<MemoryStore>,
    wiring: &Wiring,
    options: &RunOptions,
) -> Setup {
    let clock = world.clock();
    let (_, base_store, router, replication) = wiring;
    let store: Arc<dyn RunStore> = if options.progress {
        use std::io::IsTerminal;
        Arc::new(ProgressStore {
            inner: base_store.clone(),
            clock,
            labels: options.progress_labels.clone(),
            colour: crate::style::stderr_colour(),
            verbose: options.verbose,
            bar: std::io::stderr()
                .is_terminal()
                .then(|| std::sync::Mutex::new((0.0, 0))),
        })
    } else {
        base_store.clone()
    };
    let broker = Arc::new(TokenBroker::new());
    // What the run table's stream would carry to EventBridge (cutover_core::events).
    memory.publish_events(Arc::new(clock));
    // The world's faults sit in front of every port, simulated or SDK adapter alike; the report
    // and the final DNS are read around them.
    let faults = world.faults();
    let metrics: Arc<dyn Metrics> = world.home();
    let probe: Arc<dyn HealthProbe> = world.clone();
    let notifier: Arc<dyn Notifier> = world.clone();
    let callbacks: Arc<dyn TaskCallbacks> = Arc::new(BrokerCallbacks(broker.clone()));
    let hooks: Arc<dyn Hooks> = world.clone();
    let executions: Arc<dyn Executions> = world.clone();
    let secrets: Arc<dyn cutover_core::ports::Secrets> = world.clone();
    let vault: Arc<dyn cutover_core::ports::TokenVault> = world.clone();
    let load_balancer: Arc<dyn cutover_core::alb::LoadBalancer> = world.home();
    let store = Faulty::new(faults.clone(), store);
    // Every Route 53 request books its slot of the account's budget in the run table, as the
    // functions do (cutover_core::budget); the world watches how long callers waited.
    let router = world.observe_route53(BudgetedRouter::wrap(
        Faulty::new(faults.clone(), router.clone()),
        store.clone(),
        Arc::new(clock),
        DEFAULT_ROUTE53_RATE,
        options.route53,
    ));
    // Another account's Route 53 (dns.roleArn) has its own budget; faults reach it too.
    let sts: Arc<dyn cutover_core::accounts::Accounts> = world.sts();
    let (budget_store, observer, coordination) = (store.clone(), world.clone(), options.route53);
    let accounts = cutover_core::accounts::Cached::new(
        Faulty::new(faults.clone(), sts),
        Arc::new(clock),
        Some(Arc::new(move |reached, account: &str| {
            observer.observe_route53_in(
                BudgetedRouter::wrap_in(
                    reached,
                    budget_store.clone(),
                    Arc::new(clock),
                    DEFAULT_ROUTE53_RATE,
                    coordination,
                    Some(account),
                ),
                account,
            )
        })),
    );
    let deps = Deps {
        stack: cutover_core::steps::StackContext {
            partition: Some("aws".into()),
            account: Some(world_spec.account.clone()),
            region: Some(REGION.into()),
            allowed_hook_arns: vec![],
            ..Default::default()
        },
        clock: Arc::new(clock),
        store,
        router,
        load_balancer: Faulty::new(faults.clone(), load_balancer),
        replication: Faulty::new(faults.clone(), replication.clone()),
        metrics: Faulty::new(faults.clone(), metrics),
        probe: Faulty::new(faults.clone(), probe),
        notifier: Faulty::new(faults.clone(), notifier),
        callbacks: Faulty::new(faults.clone(), callbacks),
        hooks: Faulty::new(faults.clone(), hooks),
        secrets: Faulty::new(faults.clone(), secrets),
        vault: Faulty::new(faults.clone(), vault),
        executions: Faulty::new(faults, executions),
        accounts,
        // The memory store publishes the events of a simulated run (MemoryStore::publish_events).
        bus: Arc::new(cutover_core::events::NoBus),
        sent: Default::default(),
    };

    // The simulated humans: each gate's scripted answers are all played, in order, each at its
    // own delay after the gate opened (so both approvers of a two-person gate answer). A gate that
    // is asked again (a retried request) is not answered twice.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ApprovalNotice>();
    world.subscribe_notices(tx);
    let approver_deps = deps.clone();
    let script = world_spec.approvals.clone();
    let approver = tokio::spawn(async move {
        let mut played = std::collections::HashSet::new();
        while let Some(notice) = rx.recv().await {
            if !played.insert((notice.run_id.clone(), notice.gate.clone())) {
                continue;
            }
            for answer in script.iter().filter(|a| a.gate == notice.gate).cloned() {
                let deps = approver_deps.clone();
                let notice = notice.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs_f64(answer.after_seconds)).await;
                    let decision = if answer.decision == "approve" {
                        Decision::Approve
                    } else {
                        Decision::Reject
                    };
                    let d = DecideApproval {
                        decision,
                        reason: answer.reason.clone(),
                    };
                    if let Err(e) =
                        steps::decide_approval(&notice.run_id, &notice.gate, d, &answer.by, &deps)
                            .await
                    {
                        eprintln!(
                            "simulated approver {}: gate {} of {}: {e}",
                            answer.by, notice.gate, notice.run_id
                        );
                    }
                });
            }
        }
    });

    let subs = substitutions();
    let cutover =
        cutover_engine::load(CUTOVER_ASL, &subs).expect("statemachines/cutover.asl.json loads");
    let wave = cutover_engine::load(WAVE_ASL, &subs).expect("statemachines/wave.asl.json loads");
    let handler = Arc::new(LocalHandler { deps: deps.clone() });
    let clock_fn: cutover_engine::Clock = Arc::new(move || cutover_core::ports::Clock::now(&clock));
    let mut engine = Engine::new(
        handler,
        broker.clone(),
        clock_fn,
        Options {
            duplicate_delivery: options.duplicate_delivery,
            concurrent_duplicates: options.concurrent_duplicates,
            seed: options.seed,
            account: ACCOUNT.into(),
            region: REGION.into(),
            history_details: !options.lean_history,
            ..Default::default()
        },
    );
    engine.register("cutover", cutover.clone());
    engine.register("wave", wave.clone());
    // The safety net's EventBridge rule: a wave's application whose execution ended FAILED,
    // TIMED_OUT or ABORTED is reconciled as it ends, as reconcile-run would be invoked.
    let net = deps.clone();
    engine.on_child_ended(Arc::new(move |exec: cutover_engine::Execution| {
        let deps = net.clone();
        Box::pin(async move { reconcile_after(&exec, &exec.name, &deps).await })
    }));
    Setup {
        engine,
        cutover,
        wave,
        world,
        memory,
        broker,
        approver,
        deps,
    }
}

/// The world's operators who abort or steer: each sends the approval API's abort, or one of its
/// mid-run controls, at its time (an abort also fails any gate waiting for a human).
fn spawn_operator_aborts(
    world: &WorldSpec,
    run_id: &str,
    deps: &Deps,
) -> Vec<tokio::task::JoinHandle<()>> {
    world
        .operator
        .iter()
        .filter(|o| o.action != OperatorAction::Stop)
        .cloned()
        .map(|o| {
            let deps = deps.clone();
            let run_id = run_id.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(o.after_seconds)).await;
                let (path, body) = match o.action.control() {
                    Some(action) => (
                        format!("/runs/{run_id}/controls"),
                        json!({
                            "action": action,
                            "seconds": o.seconds,
                            "full": o.full,
                            "reason": o.reason.clone().unwrap_or_else(|| format!("operator {action}")),
                        }),
                    ),
                    None => (
                        format!("/runs/{run_id}/abort"),
                        json!({"reason": o.reason.clone().unwrap_or_else(|| "operator abort".into())}),
                    ),
                };
                let request = ApiRequest {
                    method: "POST".into(),
                    path,
                    body: Some(body.to_string()),
                    identity: Some(o.by.clone()),
                    groups: vec![],
                };
                let answer = handle_api(&request, &deps).await;
                if answer.status >= 300 {
                    eprintln!(
                        "simulated operator {}: {} answered {}: {}",
                        o.by,
                        o.action.control().unwrap_or("abort"),
                        answer.status,
                        answer.body
                    );
                }
            })
        })
        .collect()
}

/// The first `stop` of the world's operators, as a console StopExecution: it records who stopped
/// the run and why, then resolves with the error and cause the execution ends with.
pub(crate) async fn operator_stop(world: &WorldSpec, run_id: &str, deps: Deps) -> (String, String) {
    let Some((i, o)) = world
        .operator
        .iter()
        .enumerate()
        .filter(|(_, o)| o.action == OperatorAction::Stop)
        .min_by(|a, b| a.1.after_seconds.total_cmp(&b.1.after_seconds))
    else {
        return std::future::pending().await;
    };
    tokio::time::sleep(Duration::from_secs_f64(o.after_seconds)).await;
    let reason = o
        .reason
        .clone()
        .unwrap_or_else(|| "stopped from the console".into());
    let mut ev = AuditEvent {
        run_id: run_id.to_string(),
        key: format!("operator#{i}#stop"),
        at: deps.clock.now(),
        step: "Operator".into(),
        event: "execution-stopped".into(),
        weights: None,
        lag_seconds: None,
        healthy: None,
        actor: Some(o.by.clone()),
        message: reason.clone(),
    };
    if let Ok(Some(rec)) = deps.store.load_run(run_id).await {
        ev.weights = rec.weights;
    }
    if let Err(e) = deps.store.append_event(&ev).await {
        eprintln!(
            "simulated operator {}: the stop was not recorded: {e}",
            o.by
        );
    }
    ("Operator.Stopped".into(), format!("{}: {reason}", o.by))
}

/// The safety net, as the deployed EventBridge rule runs it: an execution that ended ABORTED,
/// TIMED_OUT or FAILED goes to the reconcile function, retried (as Lambda retries an
/// asynchronous invocation) while it answers Retryable, 30 s apart, for at most an hour.
pub(crate) async fn reconcile_after(
    execution: &cutover_engine::Execution,
    run_id: &str,
    deps: &Deps,
) {
    let status = match execution.status {
        cutover_engine::Status::Succeeded => return,
        cutover_engine::Status::Failed => "FAILED",
        cutover_engine::Status::TimedOut => "TIMED_OUT",
        cutover_engine::Status::Aborted => "ABORTED",
    };
    reconcile_status(
        run_id,
        status,
        execution.cause.clone(),
        Some(execution.stopped.timestamp_millis()),
        deps,
    )
    .await;
}

/// Sends the safety net's event for one run, as the EventBridge rule would, retrying while the
/// store or Route 53 ask for it.
pub(crate) async fn reconcile_status(
    run_id: &str,
    status: &str,
    cause: Option<String>,
    stop_date: Option<i64>,
    deps: &Deps,
) {
    let event = json!({"detail": {"name": run_id, "status": status, "cause": cause, "stopDate": stop_date}});
    for _ in 0..120 {
        match steps::dispatch("reconcile-run", event.clone(), deps).await {
            Ok(_) => return,
            Err(e) if matches!(e.name(), "Retryable" | "Throttled") => {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            Err(e) => {
                eprintln!("safety net: run {run_id} could not be reconciled: {e}");
                return;
            }
        }
    }
    eprintln!("safety net: run {run_id} still not reconciled after an hour of retries");
}

/// The same, inside a runtime whose clock is already paused.
pub async fn run_local_async(
    plan: &Plan,
    world_spec: &WorldSpec,
    options: &RunOptions,
) -> Result<LocalRun, SeedError> {
    let clock = SimClock::start(world_spec.start_time);
    let world = Arc::new(World::new(world_spec.clone(), clock));
    world.configure_app_for(plan);
    let memory = Arc::new(MemoryStore::new());
    let run_id = options.run_id.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            plan.application,
            world_spec.start_time.format("%Y%m%dT%H%M%SZ")
        )
    });
    let wiring: Wiring = match &options.aws_endpoint_url {
        None => (plan.clone(), memory.clone(), world.home(), world.home()),
        #[cfg(not(feature = "aws"))]
        Some(endpoint) => {
            return Err(SeedError {
                endpoint: endpoint.clone(),
                message: "this cutover was built without AWS support: build it with `--features aws` (cargo run --features aws --bin cutover -- …)".into(),
            })
        }
        #[cfg(feature = "aws")]
        Some(endpoint) => {
            let ports =
                crate::aws_mode::seed(endpoint, world_spec, world.clone(), plan, &run_id).await?;
            if options.progress {
                eprintln!(
                    "AWS endpoint {endpoint}: run table {}, {}",
                    ports.table,
                    ports.plan.route_name()
                );
            }
            (ports.plan, ports.store, ports.router, ports.replication)
        }
    };
    // Locks earlier runs left behind, as the world describes them.
    for l in &world_spec.locks {
        let _ = wiring
            .1
            .acquire_lock(&l.application, &l.held_by, world_spec.start_time)
            .await;
    }
    world.set_execution(&run_id, true);
    let s = setup(world, world_spec, memory, &wiring, options);
    let (plan, base_store, router, _) = &wiring;
    if let Some(live) = &options.live {
        live.started(&s.deps, &run_id);
    }
    let operators = spawn_operator_aborts(world_spec, &run_id, &s.deps);
    let stop = operator_stop(world_spec, &run_id, s.deps.clone());
    let execution = s
        .engine
        .execute_until(
            &s.cutover,
            "cutover",
            &run_id,
            json!({ "plan": plan }),
            stop,
        )
        .await;
    for o in operators {
        o.abort();
    }
    s.world.set_execution(&run_id, false);
    reconcile_after(&execution, &run_id, &s.deps).await;
    s.approver.abort();
    // The final DNS is read from the world itself, never through its rate limit or its faults;
    // against an endpoint, through the adapter, waiting out throttling.
    let dns = if let Some(d) = &plan.dns {
        final_dns(d, options, &s.world, router.as_ref()).await
    } else {
        vec![]
    };
    let mut report = build_report(
        plan,
        &run_id,
        &execution,
        &s.world,
        base_store.as_ref(),
        dns,
    )
    .await;
    report.events = s
        .memory
        .published()
        .into_iter()
        .filter(|e| e.detail.run_id == run_id)
        .collect();
    Ok(LocalRun {
        report,
        world: s.world,
        store: s.memory,
        execution,
        tokens: s.broker.issued(),
    })
}

/// The record sets at the end, read from the world itself, never through its rate limit or its
/// faults; against an endpoint, through the adapter, waiting out throttling.
async fn final_dns(
    d: &cutover_core::plan::DnsPlan,
    options: &RunOptions,
    world: &World,
    router: &dyn TrafficRouter,
) -> Vec<cutover_core::model::RecordSet> {
    if options.aws_endpoint_url.is_none() {
        world.dns(&d.hosted_zone_id, &d.record_name, d.record_type)
    } else {
        let mut read = router
            .records(&d.hosted_zone_id, &d.record_name, d.record_type)
            .await;
        for _ in 0..10 {
            match &read {
                Err(e) if e.kind != PortErrorKind::NotFound => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    read = router
                        .records(&d.hosted_zone_id, &d.record_name, d.record_type)
                        .await;
                }
                _ => break,
            }
        }
        read.unwrap_or_else(|e| {
            eprintln!("warning: final DNS unreadable: {e}");
            vec![]
        })
    }
}
