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
    pub applications: Vec<WaveApp>,
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
    #[serde(default)]
    pub rounds: u32,
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

pub async fn start_wave(input: StartWaveInput, deps: &Deps) -> Result<WaveProgress, StepError> {
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
    if w.max_concurrency == 0 || w.max_concurrency > 40 {
        problems.push(format!(
            "maxConcurrency: {} is outside 1..=40",
            w.max_concurrency
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
    Ok(WaveProgress::default())
}

/// What one Map iteration of a round reports.
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
    pub wave: WaveSpec,
    pub progress: WaveProgress,
    #[serde(default)]
    pub last_round: Vec<RoundResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyApp {
    pub application: String,
    pub run_id: String,
    pub plan: Plan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NextRoundOutput {
    pub progress: WaveProgress,
    pub ready: Vec<ReadyApp>,
    pub finished: bool,
}

/// The error name inside a `.sync` child failure's cause, or the error itself.
fn child_error(e: &ErrorInfo) -> String {
    serde_json::from_str::<serde_json::Value>(&e.cause)
        .ok()
        .and_then(|c| c.get("Error").and_then(|x| x.as_str()).map(str::to_string))
        .unwrap_or_else(|| e.error.clone())
}

pub async fn next_wave_round(
    input: NextRoundInput,
    deps: &Deps,
) -> Result<NextRoundOutput, StepError> {
    check_run_id(&input.wave_run_id)?;
    let mut p = input.progress.clone();
    // Outcomes come from the run records the cutovers wrote; the Map result only fills gaps.
    for r in &input.last_round {
        let rec = deps.store.load_run(&r.run_id).await.map_err(store_err)?;
        let outcome = rec.as_ref().and_then(|x| x.outcome.clone());
        match (outcome.as_deref(), &r.error) {
            (Some("completed"), None) => {
                if !p.completed.contains(&r.application) {
                    p.completed.push(r.application.clone());
                }
            }
            (o, err) => {
                let error = rec
                    .as_ref()
                    .and_then(|x| x.error.clone())
                    .or_else(|| err.as_ref().map(child_error));
                p.failed.insert(
                    r.application.clone(),
                    AppResult {
                        outcome: o.unwrap_or("failed").to_string(),
                        error,
                    },
                );
            }
        }
    }
    let graph: BTreeMap<String, Vec<String>> = input
        .wave
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
    let frozen = deps
        .store
        .wave_frozen(&input.wave.wave)
        .await
        .map_err(store_err)?;
    let done: BTreeSet<&String> = p.completed.iter().collect();
    let mut ready = Vec::new();
    for a in &input.wave.applications {
        let name = &a.application;
        if p.started.contains(name) || p.blocked.contains_key(name) {
            continue;
        }
        if let Some(reason) = &frozen {
            p.blocked
                .insert(name.clone(), format!("wave frozen: {reason}"));
            continue;
        }
        if a.depends_on.iter().all(|d| done.contains(d)) {
            ready.push(ReadyApp {
                application: name.clone(),
                run_id: a.run_id.clone(),
                plan: a.plan.clone(),
            });
        }
    }
    for r in &ready {
        p.started.push(r.application.clone());
    }
    if !ready.is_empty() {
        p.rounds += 1;
    }
    let finished = ready.is_empty();
    Ok(NextRoundOutput {
        progress: p,
        ready,
        finished,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseWaveInput {
    pub wave_run_id: String,
    pub wave: WaveSpec,
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
