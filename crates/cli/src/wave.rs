//! `cutover local wave`: a wave file's applications, each a child execution of the cutover
//! machine, run by the real wave machine in the local engine over one simulated world.

use crate::local::{
    load_plan, operator_stop, paused_runtime, reconcile_status, setup, InputError, RunOptions,
};
use chrono::{DateTime, Utc};
use cutover_core::steps::{WaveApp, WaveReport, WaveSpec};
use cutover_core::waves::{check_graph, WaveFile};
use cutover_sim::{MemoryStore, SimClock, World, WorldSpec};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The wave report (contract): `wave`, `outcome`, `applications` with simulated seconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveRunReport {
    pub wave: String,
    /// completed | partial | failed
    pub outcome: String,
    pub applications: Vec<AppEntry>,
    /// The most child executions that ran at once (their start and stop times).
    pub max_concurrent_applications: usize,
    pub max_concurrency: u32,
    pub state_transitions: u64,
    pub simulated_seconds: f64,
    /// The longest chain of dependencies, each application taking as long as it took here: no
    /// schedule under any cap can finish the wave sooner.
    pub critical_path_seconds: f64,
    /// The longest an application waited to start after its last dependency ended (after the
    /// wave started, for one without dependencies): the scheduling interval, or a full cap.
    pub longest_start_delay_seconds: f64,
    /// The account's Route 53 as every application's requests found it.
    pub route53: cutover_sim::Route53Use,
    /// Each other account's Route 53 (plans reaching it through `dns.roleArn`): each account
    /// has its own quota and budget. Absent when every zone is the stack's own.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub route53_by_account: std::collections::BTreeMap<String, cutover_sim::Route53Use>,
    /// The applications' own executions: Step Functions and Lambda cost per cutover
    /// (`CostEstimate`, as in a run's report), retries while queueing for Route 53 included.
    pub cutovers: CutoverCosts,
    /// The largest state output of the wave's and its applications' executions, in bytes of
    /// JSON (Step Functions' limit is 262,144).
    pub max_state_bytes: usize,
    /// The longest history of any one of those executions, in events (the limit is 25,000).
    pub max_history_events: usize,
    /// How many times the wave's execution handed over to a fresh one before its history
    /// filled (`handoverAfterEvents`, docs/waves.md): the wave ran as this many plus one.
    pub handovers: usize,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CutoverCosts {
    pub executions: usize,
    pub state_transitions: u64,
    pub mean_state_transitions: f64,
    pub mean_estimated_cost_usd: f64,
    pub max_estimated_cost_usd: f64,
}

impl CutoverCosts {
    pub fn of(children: &[cutover_engine::Execution]) -> CutoverCosts {
        let costs: Vec<crate::report::CostEstimate> = children
            .iter()
            .map(crate::report::CostEstimate::of)
            .collect();
        let n = costs.len().max(1) as f64;
        let transitions: u64 = costs.iter().map(|c| c.state_transitions).sum();
        CutoverCosts {
            executions: costs.len(),
            state_transitions: transitions,
            mean_state_transitions: transitions as f64 / n,
            mean_estimated_cost_usd: costs.iter().map(|c| c.total()).sum::<f64>() / n,
            max_estimated_cost_usd: costs.iter().map(|c| c.total()).fold(0.0, f64::max),
        }
    }
}

/// `(critical path, longest start delay)` of a wave's applications as they ran.
pub fn schedule_figures(spec: &WaveSpec, apps: &[AppEntry]) -> (f64, f64) {
    let by_name: BTreeMap<&str, &AppEntry> =
        apps.iter().map(|a| (a.application.as_str(), a)).collect();
    let mut finish: BTreeMap<&str, f64> = BTreeMap::new();
    let (mut critical, mut delay) = (0.0f64, 0.0f64);
    // The wave file lists dependencies before their dependants (a checked graph has no cycle,
    // and load_wave keeps the file's order); an unknown order falls back to 0 for a dependency.
    let mut pending: Vec<&cutover_core::steps::WaveApp> = spec.applications.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|a| {
            if !a.depends_on.iter().all(|d| finish.contains_key(d.as_str())) {
                return true;
            }
            let ready = a
                .depends_on
                .iter()
                .map(|d| finish[d.as_str()])
                .fold(0.0, f64::max);
            let duration = match by_name.get(a.application.as_str()) {
                Some(AppEntry {
                    started_at: Some(s),
                    ended_at: Some(e),
                    ..
                }) => {
                    let dep_end = a
                        .depends_on
                        .iter()
                        .filter_map(|d| by_name.get(d.as_str()).and_then(|x| x.ended_at))
                        .fold(0.0, f64::max);
                    delay = delay.max(s - dep_end);
                    e - s
                }
                _ => 0.0,
            };
            finish.insert(a.application.as_str(), ready + duration);
            critical = critical.max(ready + duration);
            false
        });
        if pending.len() == before {
            break;
        }
    }
    (critical, delay)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppEntry {
    pub application: String,
    /// completed | rolled_back | failed | aborted | blocked
    pub outcome: String,
    pub run_id: String,
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
    pub error: Option<String>,
}

impl WaveRunReport {
    /// 0 every application completed, 5 some did not, 8 the wave was stopped (docs/waves.md).
    pub fn exit_code(&self) -> i32 {
        match self.outcome.as_str() {
            "completed" => 0,
            STOPPED => 8,
            _ => 5,
        }
    }
}

/// The outcome of a wave an operator stopped: every application's state is listed.
pub const STOPPED: &str = "stopped";

pub use cutover_core::waves::run_id_for;

/// Reads a wave file and every plan it names; unknown dependencies and cycles are errors.
pub fn load_wave(path: &Path) -> Result<WaveSpec, InputError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| InputError {
        file: file.clone(),
        problems: vec![e.to_string()],
    })?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let w = WaveFile::parse(&text, json).map_err(|e| InputError {
        file: file.clone(),
        problems: e.violations().iter().map(|v| v.to_string()).collect(),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    let mut apps = Vec::new();
    for (i, a) in w.applications.iter().enumerate() {
        match load_plan(&dir.join(&a.plan)) {
            Ok(plan) => apps.push(WaveApp {
                application: plan.application.clone(),
                run_id: run_id_for(&w.wave, &plan.application),
                depends_on: a.depends_on.clone(),
                plan,
            }),
            Err(e) => problems.push(format!("applications[{i}].plan: {e}")),
        }
    }
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, a) in apps.iter().enumerate() {
        if let Some(j) = ids.insert(a.run_id.as_str(), i) {
            if apps[j].application != a.application {
                problems.push(format!(
                    "applications[{i}]: application {} would run as {}, the run id of applications[{j}] ({}): rename one",
                    a.application, a.run_id, apps[j].application
                ));
            }
        }
    }
    // Two applications changing one record set, or replicating through one DMS task or MGN
    // server, would undo each other's changes: refused here, before anything runs.
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    for (i, a) in apps.iter().enumerate() {
        let mut shared = match a.plan.router() {
            Some(cutover_core::plan::Router::Dns(d)) => vec![(
                format!(
                    "record set {} {} in zone {}",
                    cutover_core::model::normalize_name(&d.record_name),
                    d.record_type,
                    d.hosted_zone_id
                ),
                "dns.recordName".to_string(),
            )],
            Some(cutover_core::plan::Router::Alb(_)) => vec![(
                a.plan.route_name(),
                if a.plan.alb.as_ref().is_some_and(|x| x.rule_arn.is_some()) {
                    "alb.ruleArn".to_string()
                } else {
                    "alb.listenerArn".to_string()
                },
            )],
            None => vec![],
        };
        if let Some(t) = &a.plan.replication.task_arn {
            shared.push((format!("DMS task {t}"), "replication.taskArn".into()));
        }
        let r = &a.plan.replication;
        for (k, id) in r.mgn_servers().into_iter().enumerate() {
            shared.push((format!("MGN server {id}"), r.mgn_server_field(k)));
        }
        for (what, field) in shared {
            if let Some(j) = owners.insert(what.clone(), i) {
                problems.push(format!(
                    "applications[{i}].plan: {field}: {} and {} both use {what}; one cutover would undo the other's",
                    apps[j].application, a.application
                ));
            }
        }
    }
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, a) in apps.iter().enumerate() {
        if graph
            .insert(a.application.clone(), a.depends_on.clone())
            .is_some()
        {
            problems.push(format!(
                "applications[{i}]: application {} appears twice",
                a.application
            ));
        }
    }
    if problems.is_empty() {
        let index: BTreeMap<&str, usize> = apps
            .iter()
            .enumerate()
            .map(|(i, a)| (a.application.as_str(), i))
            .collect();
        problems.extend(
            check_graph(&graph, &|n| {
                format!(
                    "applications[{}].dependsOn",
                    index.get(n).copied().unwrap_or(0)
                )
            })
            .iter()
            .map(|v| v.to_string()),
        );
    }
    if !problems.is_empty() {
        return Err(InputError { file, problems });
    }
    let spec = WaveSpec {
        wave: w.wave,
        max_concurrency: w.max_concurrency,
        window: w.window,
        scheduling_interval_seconds: w
            .scheduling_interval_seconds
            .unwrap_or(cutover_core::steps::DEFAULT_SCHEDULING_INTERVAL),
        handover_after_events: w
            .handover_after_events
            .unwrap_or(cutover_core::steps::DEFAULT_HANDOVER_AFTER_EVENTS),
        applications: apps,
    };
    if let Some(p) = cutover_core::steps::outline_too_large(&spec) {
        return Err(InputError {
            file,
            problems: vec![p],
        });
    }
    Ok(spec)
}

/// Each application (name, run id) as its run record left it: its outcome, `running`, or
/// `not_started` without a record. For a wave execution that ended without its report; read
/// from the store itself, past the world's injected faults (the report is not part of the run).
pub(crate) async fn apps_from_records(
    store: &dyn cutover_core::ports::RunStore,
    apps: &[(String, String)],
    secs: &dyn Fn(DateTime<Utc>) -> f64,
) -> Vec<AppEntry> {
    let mut out = Vec::new();
    for (application, run_id) in apps {
        let rec = store.load_run(run_id).await.ok().flatten();
        let events = store.events(run_id).await.unwrap_or_default();
        let ended = events
            .iter()
            .rev()
            .find(|e| e.event == "run-closed")
            .map(|e| secs(e.at));
        out.push(AppEntry {
            application: application.clone(),
            outcome: rec
                .as_ref()
                .map(|r| r.outcome.clone().unwrap_or_else(|| "running".into()))
                .unwrap_or_else(|| "not_started".into()),
            run_id: run_id.clone(),
            started_at: rec.as_ref().map(|r| secs(r.started_at)),
            ended_at: ended,
            error: rec.and_then(|r| r.error),
        });
    }
    out
}

/// A wave read to be started whole, its plans in the execution input (`local wave`,
/// `wave start`): refused, naming the cap, when that input exceeds what StartExecution accepts
/// (262,144 bytes: Step Functions quotas, "Maximum input or output size for a task, state, or
/// execution", https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html). A
/// larger wave goes by reference: queued on the calendar, whose firing reads the plans from
/// the run table.
pub fn load_wave_whole(path: &Path) -> Result<WaveSpec, InputError> {
    let spec = load_wave(path)?;
    let bytes = serde_json::to_string(&serde_json::json!({ "wave": &spec }))
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if bytes > cutover_engine::MAX_PAYLOAD_BYTES {
        return Err(InputError {
            file: path.display().to_string(),
            problems: vec![format!(
                "applications: the wave's {} applications with their plans make an execution input of {bytes} bytes; Step Functions accepts at most {} (256 KB). Queue it on the calendar (`cutover waves queue`, or `cutover local calendar` offline) so its firing reads the plans from the run table, or split it into smaller waves",
                spec.applications.len(),
                cutover_engine::MAX_PAYLOAD_BYTES
            )],
        });
    }
    Ok(spec)
}

pub struct WaveRun {
    pub report: WaveRunReport,
    /// The wave's last execution (the one that closed it), with the first one's start and the
    /// state transitions of all of them.
    pub execution: cutover_engine::Execution,
    /// Every execution of the wave machine this run made: the first, then each it handed over to.
    pub generations: Vec<cutover_engine::Execution>,
    /// The applications' own executions.
    pub children: Vec<cutover_engine::Execution>,
    pub world: Arc<World>,
    pub store: Arc<MemoryStore>,
    pub tokens: Vec<String>,
}

/// The most `RunApplicationCutover` tasks in flight at once in a wave's history.
/// The most applications that ran at once: the peak overlap of the child executions, from
/// their start and stop times.
pub fn max_concurrent(children: &[cutover_engine::Execution]) -> usize {
    let mut edges: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for c in children {
        edges.push((c.started, 1));
        edges.push((c.stopped, -1));
    }
    // An end and a start at the same instant do not overlap.
    edges.sort_by_key(|&(t, d)| (t, d));
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    peak as usize
}

/// The wave's chain of executions that begins with `first`, in order: each execution that
/// handed over names the next in its output (`handedOverTo`, the execution's ARN), among
/// `generations` (the wave machine's other executions).
pub fn chain(
    first: &cutover_engine::Execution,
    generations: &[cutover_engine::Execution],
) -> Vec<cutover_engine::Execution> {
    let mut chain = vec![first.clone()];
    while let Some(next) = chain
        .last()
        .and_then(|e| e.output.as_ref())
        .and_then(|o| o.get("handedOverTo"))
        .and_then(|a| a.as_str())
        .and_then(|arn| {
            generations
                .iter()
                .find(|g| arn.rsplit(':').next() == Some(g.name.as_str()))
        })
    {
        if chain.len() > generations.len() {
            break;
        }
        chain.push(next.clone());
    }
    chain
}

/// The last execution of the wave's chain that begins with `first`, and the number of
/// hand-overs before it.
pub fn end_of_chain(
    first: &cutover_engine::Execution,
    generations: &[cutover_engine::Execution],
) -> (cutover_engine::Execution, usize) {
    let mut c = chain(first, generations);
    let handovers = c.len() - 1;
    (c.pop().unwrap_or_else(|| first.clone()), handovers)
}

pub fn run_wave_local(spec: &WaveSpec, world_spec: &WorldSpec, options: &RunOptions) -> WaveRun {
    paused_runtime().block_on(run_wave_local_async(spec, world_spec, options))
}

/// [`run_wave_local`] inside a runtime whose clock is paused (`local serve` paces it).
pub async fn run_wave_local_async(
    spec: &WaveSpec,
    world_spec: &WorldSpec,
    options: &RunOptions,
) -> WaveRun {
    {
        let clock = SimClock::start(world_spec.start_time);
        let world = Arc::new(World::new(world_spec.clone(), clock));
        let memory = Arc::new(MemoryStore::new());
        let plan = spec
            .applications
            .first()
            .map(|a| a.plan.clone())
            .expect("a wave has applications");
        let wiring = (
            plan,
            memory.clone() as Arc<dyn cutover_core::ports::RunStore>,
            world.home() as _,
            world.home() as _,
        );
        // Progress lines of a wave name the application each line is about.
        let options = &RunOptions {
            progress_labels: spec
                .applications
                .iter()
                .map(|a| (a.run_id.clone(), a.application.clone()))
                .collect(),
            // The wave report reads the run records and each execution's times and counts,
            // never a state's data: histories stay lean (docs/performance.md).
            lean_history: true,
            ..options.clone()
        };
        let s = setup(world, world_spec, memory, &wiring, options);
        let wave_run_id = run_id_for(
            &spec.wave,
            &world_spec.start_time.format("%Y%m%dT%H%M%SZ").to_string(),
        );
        if let Some(live) = &options.live {
            live.started_wave(&s.deps, &wave_run_id, spec);
        }
        // An operator's console stop of the wave: the safety net stops the applications' own
        // executions it had started (they end ABORTED, docs/waves.md) and its rule reconciles
        // each of them, so no application is left half-shifted.
        let operator = operator_stop(world_spec, &wave_run_id, s.deps.clone());
        let engine = &s.engine;
        let stop = async move {
            let (error, cause) = operator.await;
            engine.stop_children(&error, &cause);
            (error, cause)
        };
        let first = s
            .engine
            .execute_until(&s.wave, "wave", &wave_run_id, json!({ "wave": spec }), stop)
            .await;
        // The wave's chain of executions: each that handed over names the next; the last one
        // closed the wave (or was stopped). The others are the applications' own.
        let wave_arn = s.engine.machine_arn("wave");
        let (generations, children): (Vec<_>, Vec<_>) = s
            .engine
            .children()
            .into_iter()
            .partition(|(arn, _)| *arn == wave_arn);
        let generations: Vec<cutover_engine::Execution> =
            generations.into_iter().map(|(_, e)| e).collect();
        let children: Vec<cutover_engine::Execution> =
            children.into_iter().map(|(_, e)| e).collect();
        let (execution, handovers) = end_of_chain(&first, &generations);
        let transitions: u64 = std::iter::once(&first)
            .chain(&generations)
            .map(|e| e.state_transitions)
            .sum();
        let execution = cutover_engine::Execution {
            started: first.started,
            state_transitions: transitions,
            ..execution
        };
        if execution.status == cutover_engine::Status::Aborted {
            for app in &spec.applications {
                reconcile_status(
                    &app.run_id,
                    "ABORTED",
                    Some(format!("the wave {} was stopped", spec.wave)),
                    Some(execution.stopped.timestamp_millis()),
                    &s.deps,
                )
                .await;
            }
        }
        s.approver.abort();
        let start = execution.started;
        let secs = |t: DateTime<Utc>| (t - start).num_milliseconds() as f64 / 1000.0;
        let parsed: Option<WaveReport> = execution
            .output
            .clone()
            .and_then(|o| serde_json::from_value(o).ok());
        let (outcome, applications) = match &parsed {
            Some(r) => (
                r.outcome.clone(),
                r.applications
                    .iter()
                    .map(|a| AppEntry {
                        application: a.application.clone(),
                        outcome: a.outcome.clone(),
                        run_id: a.run_id.clone(),
                        started_at: a.started_at.map(secs),
                        ended_at: a.ended_at.map(secs),
                        error: a.error.clone(),
                    })
                    .collect(),
            ),
            None => {
                // Stopped mid-flight, or the wave execution failed on its own (its applications
                // ran on to their end): each application as its run record left it, or never
                // started.
                let named: Vec<(String, String)> = spec
                    .applications
                    .iter()
                    .map(|a| (a.application.clone(), a.run_id.clone()))
                    .collect();
                let apps = apps_from_records(s.memory.as_ref(), &named, &secs).await;
                let outcome = if execution.status == cutover_engine::Status::Aborted {
                    STOPPED
                } else {
                    "failed"
                };
                (outcome.to_string(), apps)
            }
        };
        let report = WaveRunReport {
            wave: spec.wave.clone(),
            outcome,
            applications,
            max_concurrent_applications: max_concurrent(&children),
            max_concurrency: spec.max_concurrency,
            state_transitions: execution.state_transitions,
            simulated_seconds: secs(execution.stopped),
            critical_path_seconds: 0.0,
            longest_start_delay_seconds: 0.0,
            route53: s.world.route53_use(),
            route53_by_account: {
                let mut by = s.world.route53_use_by_account();
                by.remove(&s.world.spec().account);
                by
            },
            cutovers: CutoverCosts::of(&children),
            max_state_bytes: s.engine.max_state_bytes(),
            max_history_events: children
                .iter()
                .chain(&generations)
                .map(|c| c.history.len())
                .chain([first.history.len()])
                .max()
                .unwrap_or(0),
            handovers,
            error: execution.error.clone(),
        };
        let (critical, delay) = schedule_figures(spec, &report.applications);
        let report = WaveRunReport {
            critical_path_seconds: critical,
            longest_start_delay_seconds: delay,
            ..report
        };
        WaveRun {
            report,
            execution,
            generations: chain(&first, &generations),
            children,
            world: s.world,
            store: s.memory,
            tokens: s.broker.issued(),
        }
    }
}

/// `path` as seen from the directory `dir`: relative when both resolve under one root (so the
/// written files can move together), absolute otherwise.
pub fn relative_to(path: &Path, dir: &Path) -> String {
    let abs = |p: &Path| -> Vec<std::ffi::OsString> {
        std::path::absolute(p)
            .map(|p| p.components().map(|c| c.as_os_str().to_owned()).collect())
            .unwrap_or_default()
    };
    let (to, from) = (abs(path), abs(dir));
    let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return path.display().to_string();
    }
    let mut rel = std::path::PathBuf::new();
    for _ in &from[common..] {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c);
    }
    rel.display().to_string()
}
