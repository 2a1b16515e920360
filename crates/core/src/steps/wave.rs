//! The wave machine's steps: StartWave (window, graph, nothing started outside the window),
//! NextWaveRound (records the last round's outcomes from the run store, blocks the transitive
//! dependants of failures, honours the freeze flag, picks what may start now) and CloseWave.

use super::{check_run_id, store_err, Deps};
use crate::error::{ErrorInfo, StepError};
use crate::plan::Plan;
use crate::waves::{check_graph, dependants, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A wave as the wave machine receives it: each application with its plan and run id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaveSpec {
    pub wave: String,
    pub max_concurrency: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// How often the wave looks for applications that ended and starts what may start.
    #[serde(default = "default_scheduling_interval")]
    pub scheduling_interval_seconds: u64,
    pub applications: Vec<WaveApp>,
}

/// The scheduling interval of a wave that names none.
pub const DEFAULT_SCHEDULING_INTERVAL: u64 = 60;
/// Its bounds: often enough to start the next application promptly, seldom enough that a long
/// wave stays far inside the execution's history limit.
pub const SCHEDULING_INTERVAL_RANGE: std::ops::RangeInclusive<u64> = 5..=900;

fn default_scheduling_interval() -> u64 {
    DEFAULT_SCHEDULING_INTERVAL
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaveApp {
    pub application: String,
    /// The child execution's name: a restarted wave never starts one application twice.
    pub run_id: String,
    #[serde(default)]
    pub depends_on: Vec<String>,
    pub plan: Plan,
}

/// A wave without its plans: what the scheduler loop carries from pass to pass. The plans stay in
/// the execution's input, where a start looks its application's up by `index`; carrying them
/// through every pass would put the whole wave in each state's input and history event
/// (Step Functions limits each to 256 KB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaveOutline {
    pub wave: String,
    pub max_concurrency: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    #[serde(default = "default_scheduling_interval")]
    pub scheduling_interval_seconds: u64,
    pub applications: Vec<OutlineApp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlineApp {
    pub application: String,
    pub run_id: String,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Its place in the wave's `applications`.
    pub index: usize,
}

impl WaveSpec {
    pub fn outline(&self) -> WaveOutline {
        WaveOutline {
            wave: self.wave.clone(),
            max_concurrency: self.max_concurrency,
            window: self.window,
            scheduling_interval_seconds: self.scheduling_interval_seconds,
            applications: self
                .applications
                .iter()
                .enumerate()
                .map(|(index, a)| OutlineApp {
                    application: a.application.clone(),
                    run_id: a.run_id.clone(),
                    depends_on: a.depends_on.clone(),
                    index,
                })
                .collect(),
        }
    }
}

/// What StartWave answers: the empty progress and the outline the loop carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveStarted {
    pub progress: WaveProgress,
    pub outline: WaveOutline,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaveProgress {
    #[serde(default)]
    pub started: Vec<String>,
    #[serde(default)]
    pub completed: Vec<String>,
    /// Application -> its outcome and error, for those that did not complete.
    #[serde(default)]
    pub failed: BTreeMap<String, AppResult>,
    /// Application -> why it never started.
    #[serde(default)]
    pub blocked: BTreeMap<String, String>,
    /// Scheduler passes that started at least one application.
    #[serde(default)]
    pub rounds: u32,
    /// Scheduler passes in all.
    #[serde(default)]
    pub passes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppResult {
    pub outcome: String,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartWaveInput {
    pub wave_run_id: String,
    pub wave: WaveSpec,
}

pub async fn start_wave(input: StartWaveInput, deps: &Deps) -> Result<WaveStarted, StepError> {
    check_run_id(&input.wave_run_id)?;
    let w = &input.wave;
    let mut problems: Vec<String> = Vec::new();
    let graph: BTreeMap<String, Vec<String>> = w
        .applications
        .iter()
        .map(|a| (a.application.clone(), a.depends_on.clone()))
        .collect();
    if graph.len() != w.applications.len() {
        problems.push("applications: an application appears twice".into());
    }
    problems.extend(
        check_graph(&graph, &|n| format!("applications.{n}.dependsOn"))
            .iter()
            .map(|v| v.to_string()),
    );
    for (i, a) in w.applications.iter().enumerate() {
        check_run_id(&a.run_id)
            .map_err(|e| StepError::invalid(format!("applications[{i}].runId: {e}")))?;
        if a.plan.application != a.application {
            problems.push(format!(
                "applications[{i}]: plan is for '{}', not '{}'",
                a.plan.application, a.application
            ));
        }
        if let Err(e) = a.plan.validate() {
            problems.extend(
                e.violations()
                    .iter()
                    .map(|v| format!("applications[{i}].plan.{v}")),
            );
        }
    }
    if w.max_concurrency == 0 || w.max_concurrency > crate::waves::MAX_CONCURRENCY {
        problems.push(format!(
            "maxConcurrency: {} is outside 1..={}",
            w.max_concurrency,
            crate::waves::MAX_CONCURRENCY
        ));
    }
    if !SCHEDULING_INTERVAL_RANGE.contains(&w.scheduling_interval_seconds) {
        problems.push(format!(
            "schedulingIntervalSeconds: {} is outside {}..={}",
            w.scheduling_interval_seconds,
            SCHEDULING_INTERVAL_RANGE.start(),
            SCHEDULING_INTERVAL_RANGE.end()
        ));
    }
    if !problems.is_empty() {
        return Err(StepError::ValidationFailed(problems));
    }
    let now = deps.clock.now();
    if let Some(win) = &w.window {
        if !win.contains(now) {
            return Err(StepError::invalid(format!(
                "wave {} may run from {} to {}; it is {now}: nothing was started",
                w.wave, win.not_before, win.not_after
            )));
        }
    }
    Ok(WaveStarted {
        progress: WaveProgress::default(),
        outline: w.outline(),
    })
}

/// What one start of the last pass reports (the Map over `ready`): an error when Step Functions
/// refused to start the application's execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoundResult {
    pub application: String,
    pub run_id: String,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NextRoundInput {
    pub wave_run_id: String,
    pub wave: WaveOutline,
    pub progress: WaveProgress,
    /// The starts of the last pass.
    #[serde(default)]
    pub last_round: Vec<RoundResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyApp {
    pub application: String,
    pub run_id: String,
    /// Where its plan is in the execution input's `wave.applications`.
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NextRoundOutput {
    pub progress: WaveProgress,
    /// Start these now (their dependencies completed, within the free slots of the cap).
    pub ready: Vec<ReadyApp>,
    /// Nothing runs and nothing more may start: close the wave.
    pub finished: bool,
    /// Seconds until the next pass (the wave's scheduling interval).
    pub wait_seconds: u64,
}

/// The error name inside a child start's failure cause, or the error itself.
fn child_error(e: &ErrorInfo) -> String {
    serde_json::from_str::<serde_json::Value>(&e.cause)
        .ok()
        .and_then(|c| c.get("Error").and_then(|x| x.as_str()).map(str::to_string))
        .unwrap_or_else(|| e.error.clone())
}

/// How many applications wait on `name`, through the longest chain of dependants: the wave
/// starts the ready application with the longest chain first, so the critical path never waits
/// for a free slot behind applications nothing depends on.
fn chain_lengths(graph: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, usize> {
    fn length(
        n: &str,
        dependants: &BTreeMap<&str, Vec<&str>>,
        memo: &mut BTreeMap<String, usize>,
    ) -> usize {
        if let Some(l) = memo.get(n) {
            return *l;
        }
        let l = dependants
            .get(n)
            .map(|ds| {
                ds.iter()
                    .map(|d| 1 + length(d, dependants, memo))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        memo.insert(n.to_string(), l);
        l
    }
    let mut dependants: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, ds) in graph {
        for d in ds {
            dependants.entry(d.as_str()).or_default().push(n.as_str());
        }
    }
    let mut memo = BTreeMap::new();
    for n in graph.keys() {
        length(n, &dependants, &mut memo);
    }
    memo
}

/// One pass of the wave's scheduler. Applications run as their own executions; each pass reads
/// the run records of the running ones (an outcome means the application ended), blocks the
/// dependants of any that did not complete, and picks what may start now: every application
/// whose dependencies all completed, longest chain of dependants first, as many as the cap
/// leaves free. There are no rounds: an application starts at the first pass after its last
/// dependency ended, whatever else is still running. Past the window's end, or with the wave
/// frozen, nothing new starts.
pub async fn next_wave_round(
    input: NextRoundInput,
    deps: &Deps,
) -> Result<NextRoundOutput, StepError> {
    check_run_id(&input.wave_run_id)?;
    let w = &input.wave;
    let mut p = input.progress.clone();
    // A start Step Functions refused (other than a name that already started: a restarted wave
    // finds its earlier children) is an application that did not run.
    for r in &input.last_round {
        let Some(e) = &r.error else { continue };
        let error = child_error(e);
        if error != "StepFunctions.ExecutionAlreadyExistsException" {
            p.failed.insert(
                r.application.clone(),
                AppResult {
                    outcome: "failed".into(),
                    error: Some(error),
                },
            );
        }
    }
    let run_ids: BTreeMap<&str, &str> = w
        .applications
        .iter()
        .map(|a| (a.application.as_str(), a.run_id.as_str()))
        .collect();
    for name in p.started.clone() {
        if p.completed.contains(&name) || p.failed.contains_key(&name) {
            continue;
        }
        let Some(run_id) = run_ids.get(name.as_str()) else {
            continue;
        };
        let rec = deps.store.load_run(run_id).await.map_err(store_err)?;
        match rec.as_ref().and_then(|r| r.outcome.clone()) {
            Some(o) if o == "completed" => p.completed.push(name),
            Some(o) => {
                p.failed.insert(
                    name,
                    AppResult {
                        outcome: o,
                        error: rec.and_then(|r| r.error),
                    },
                );
            }
            None => {}
        }
    }
    let graph: BTreeMap<String, Vec<String>> = w
        .applications
        .iter()
        .map(|a| (a.application.clone(), a.depends_on.clone()))
        .collect();
    for f in p.failed.keys().cloned().collect::<Vec<_>>() {
        for d in dependants(&graph, &f) {
            if !p.started.contains(&d) {
                p.blocked
                    .entry(d)
                    .or_insert_with(|| format!("depends on {f}, which did not complete"));
            }
        }
    }
    let frozen = deps.store.wave_frozen(&w.wave).await.map_err(store_err)?;
    let now = deps.clock.now();
    let closed = w.window.filter(|win| now >= win.not_after);
    let done: BTreeSet<&String> = p.completed.iter().collect();
    let running = p
        .started
        .iter()
        .filter(|n| !p.completed.contains(n) && !p.failed.contains_key(*n))
        .count();
    let mut candidates: Vec<&OutlineApp> = Vec::new();
    for a in &w.applications {
        let name = &a.application;
        if p.started.contains(name) || p.blocked.contains_key(name) {
            continue;
        }
        if let Some(reason) = &frozen {
            p.blocked
                .insert(name.clone(), format!("wave frozen: {reason}"));
            continue;
        }
        if let Some(win) = &closed {
            p.blocked.insert(
                name.clone(),
                format!("the wave's window closed at {}", win.not_after),
            );
            continue;
        }
        if a.depends_on.iter().all(|d| done.contains(d)) {
            candidates.push(a);
        }
    }
    let chains = chain_lengths(&graph);
    // Stable: among equal chains, the wave file's order.
    candidates.sort_by_key(|a| std::cmp::Reverse(chains.get(&a.application).copied().unwrap_or(0)));
    let free = (w.max_concurrency as usize).saturating_sub(running);
    let ready: Vec<ReadyApp> = candidates
        .into_iter()
        .take(free)
        .map(|a| ReadyApp {
            application: a.application.clone(),
            run_id: a.run_id.clone(),
            index: a.index,
        })
        .collect();
    for r in &ready {
        p.started.push(r.application.clone());
    }
    if !ready.is_empty() {
        p.rounds += 1;
    }
    p.passes += 1;
    // An idle pass adds ten events to the wave's history (the Task, the Choice, the Wait;
    // Step Functions fails an execution at 25,000): every 500 passes the wait grows by one
    // interval, so at the default interval a wave may last about five days (docs/waves.md).
    let wait_seconds = w.scheduling_interval_seconds * (1 + u64::from(p.passes) / 500);
    Ok(NextRoundOutput {
        finished: running == 0 && ready.is_empty(),
        progress: p,
        ready,
        wait_seconds,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseWaveInput {
    pub wave_run_id: String,
    pub wave: WaveOutline,
    pub progress: WaveProgress,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveAppReport {
    pub application: String,
    pub run_id: String,
    /// completed | rolled_back | failed | aborted | blocked
    pub outcome: String,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveReport {
    pub wave: String,
    /// completed (all) | partial (some) | failed (none)
    pub outcome: String,
    pub applications: Vec<WaveAppReport>,
}

pub async fn close_wave(input: CloseWaveInput, deps: &Deps) -> Result<WaveReport, StepError> {
    check_run_id(&input.wave_run_id)?;
    let p = &input.progress;
    let mut apps = Vec::new();
    for a in &input.wave.applications {
        let name = &a.application;
        let rec = deps.store.load_run(&a.run_id).await.map_err(store_err)?;
        let ended_at = if rec.is_some() {
            deps.store
                .events(&a.run_id)
                .await
                .map_err(store_err)?
                .iter()
                .rev()
                .find(|e| e.event == "run-closed")
                .map(|e| e.at)
        } else {
            None
        };
        let (outcome, error) = if p.completed.contains(name) {
            ("completed".to_string(), None)
        } else if let Some(f) = p.failed.get(name) {
            (f.outcome.clone(), f.error.clone())
        } else if let Some(why) = p.blocked.get(name) {
            ("blocked".to_string(), Some(why.clone()))
        } else {
            ("blocked".to_string(), Some("never started".to_string()))
        };
        apps.push(WaveAppReport {
            application: name.clone(),
            run_id: a.run_id.clone(),
            outcome,
            started_at: rec.as_ref().map(|r| r.started_at),
            ended_at,
            error,
        });
    }
    let completed = apps.iter().filter(|a| a.outcome == "completed").count();
    let outcome = if completed == apps.len() {
        "completed"
    } else if completed > 0 {
        "partial"
    } else {
        "failed"
    };
    Ok(WaveReport {
        wave: input.wave.wave.clone(),
        outcome: outcome.into(),
        applications: apps,
    })
}
