//! The wave machine's steps: StartWave (window, graph, nothing started outside the window),
//! NextWaveRound (records the last round's outcomes from the run store, blocks the transitive
//! dependants of failures, honours the freeze flag, picks what may start now) and CloseWave.

use super::{check_run_id, store_err, Deps};
use crate::error::{ErrorInfo, StepError};
use crate::model::{CalendarEntry, CalendarState};
use crate::plan::Plan;
use crate::ports::PortErrorKind;
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
    /// The wave execution hands over to a fresh execution of itself once the history events it
    /// has written (as `next_wave_round` counts them) pass this.
    #[serde(default = "default_handover_after_events")]
    pub handover_after_events: u32,
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

/// Step Functions ends a Standard execution whose history reaches 25,000 events
/// (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html, "Maximum execution
/// history size"). A wave hands over well before: the default leaves room for the largest pass
/// (one Map of starts, at most `READY_PLAN_BYTES` of plans) and the handover itself.
pub const DEFAULT_HANDOVER_AFTER_EVENTS: u32 = 20_000;
/// The bounds of `handoverAfterEvents`: low enough to leave that room, high enough that a pass
/// always fits.
pub const HANDOVER_AFTER_EVENTS_RANGE: std::ops::RangeInclusive<u32> = 100..=20_000;

pub fn default_handover_after_events() -> u32 {
    DEFAULT_HANDOVER_AFTER_EVENTS
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

/// A wave without its plans: what the scheduler loop carries from pass to pass. The plans are
/// items of the run table under `plans_key`, where each pass reads those of the applications it
/// starts; carrying them through every pass would put the whole wave in each state's input and
/// history event (Step Functions limits each to 256 KB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaveOutline {
    pub wave: String,
    pub max_concurrency: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    #[serde(default = "default_scheduling_interval")]
    pub scheduling_interval_seconds: u64,
    #[serde(default = "default_handover_after_events")]
    pub handover_after_events: u32,
    pub applications: Vec<OutlineApp>,
    /// Where the plans are (`RunStore::load_wave_plan`): the wave run's own copy, or the queued
    /// wave's on the calendar.
    pub plans_key: String,
    /// The calendar's wave this run took, if a calendar firing started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
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
    pub fn outline(&self, plans_key: &str, calendar: Option<&str>) -> WaveOutline {
        WaveOutline {
            plans_key: plans_key.to_string(),
            calendar: calendar.map(str::to_string),
            wave: self.wave.clone(),
            max_concurrency: self.max_concurrency,
            window: self.window,
            scheduling_interval_seconds: self.scheduling_interval_seconds,
            handover_after_events: self.handover_after_events,
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
    /// A calendar firing found no queued wave whose window contains it: recorded, told, and
    /// the execution ends.
    #[serde(default)]
    pub nothing_queued: bool,
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
    /// A wave given whole (the console, the CLI, a one-time schedule of a small wave)…
    #[serde(default)]
    pub wave: Option<WaveSpec>,
    /// …or a firing of the calendar: the wave is taken from the run table.
    #[serde(default)]
    pub calendar: Option<CalendarFiring>,
}

/// What a schedule's input says when it starts the calendar's next wave (`{"calendar": {}}`),
/// or one queued wave by name (`{"calendar": {"wave": "wave-7"}}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarFiring {
    #[serde(default)]
    pub wave: Option<String>,
}

/// The key of a queued wave's plans on the calendar.
pub fn calendar_plans_key(wave: &str) -> String {
    format!("CALENDAR#{wave}")
}

/// The run id of an application of a calendar wave: the firing's execution name (the wave run
/// that took the wave) and the application, so every firing's runs are its own and none is ever
/// an earlier one's.
pub fn calendar_run_id(entry: &CalendarEntry, application: &str) -> String {
    let firing = entry.wave_run_id.as_deref().unwrap_or(&entry.wave);
    crate::waves::run_id_for(firing, application)
}

/// The wave a calendar entry holds, with its plans from the table and its run ids.
async fn calendar_spec(entry: &CalendarEntry, deps: &Deps) -> Result<WaveSpec, StepError> {
    let key = calendar_plans_key(&entry.wave);
    let mut applications = Vec::with_capacity(entry.applications.len());
    for (i, a) in entry.applications.iter().enumerate() {
        let plan = deps
            .store
            .load_wave_plan(&key, i)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                StepError::invalid(format!(
                    "calendar wave {}: the plan of {} is not in the run table",
                    entry.wave, a.application
                ))
            })?;
        applications.push(WaveApp {
            application: a.application.clone(),
            run_id: calendar_run_id(entry, &a.application),
            depends_on: a.depends_on.clone(),
            plan,
        });
    }
    Ok(WaveSpec {
        wave: entry.wave.clone(),
        max_concurrency: entry.max_concurrency,
        window: entry.window,
        scheduling_interval_seconds: entry.scheduling_interval_seconds,
        handover_after_events: entry.handover_after_events,
        applications,
    })
}

/// Takes the calendar's wave for this firing: the one it took already (a retried step), else
/// the queued wave of the lowest order (the named one, if the firing names one) whose window
/// contains now, marked running under a conditional write so two firings never take one wave.
/// Queued waves whose window has ended are skipped on the way, with the reason.
async fn take_from_calendar(
    wave_run_id: &str,
    firing: &CalendarFiring,
    deps: &Deps,
) -> Result<Option<CalendarEntry>, StepError> {
    let now = deps.clock.now();
    for _ in 0..8 {
        let mut entries = deps.store.calendar().await.map_err(store_err)?;
        if let Some(e) = entries
            .iter()
            .find(|e| e.wave_run_id.as_deref() == Some(wave_run_id))
        {
            return Ok(Some(e.clone()));
        }
        entries.sort_by_key(|e| (e.order, e.queued_at));
        for e in entries.iter_mut().filter(|e| {
            e.state == CalendarState::Queued && e.window.is_some_and(|w| now >= w.not_after)
        }) {
            let ended = e
                .window
                .map(|w| w.not_after.to_rfc3339())
                .unwrap_or_default();
            e.state = CalendarState::Skipped;
            e.note = Some(format!(
                "its window ended at {ended} before a firing took it"
            ));
            match deps.store.save_calendar_entry(e).await {
                Ok(()) => e.version += 1,
                Err(err) if err.kind == PortErrorKind::Conflict => {}
                Err(err) => return Err(store_err(err)),
            }
        }
        let Some(pick) = entries.iter().find(|e| {
            e.state == CalendarState::Queued
                && firing.wave.as_ref().is_none_or(|w| *w == e.wave)
                && e.window.is_none_or(|w| w.contains(now))
        }) else {
            return Ok(None);
        };
        let mut taken = pick.clone();
        taken.state = CalendarState::Running;
        taken.wave_run_id = Some(wave_run_id.to_string());
        taken.taken_at = Some(now);
        match deps.store.save_calendar_entry(&taken).await {
            Ok(()) => {
                taken.version += 1;
                return Ok(Some(taken));
            }
            // Another firing changed the calendar meanwhile: look again.
            Err(e) if e.kind == PortErrorKind::Conflict => continue,
            Err(e) => return Err(store_err(e)),
        }
    }
    Err(StepError::Retryable(
        "the calendar changed under every attempt to take a wave".into(),
    ))
}

/// Sets the state of the calendar wave a wave run took (a close, a stop), re-reading on a lost
/// race; an entry another run took since is left alone.
pub(crate) async fn settle_calendar(
    wave: &str,
    wave_run_id: &str,
    state: CalendarState,
    note: Option<String>,
    deps: &Deps,
) -> Result<(), StepError> {
    for _ in 0..8 {
        let entries = deps.store.calendar().await.map_err(store_err)?;
        let Some(e) = entries.into_iter().find(|e| {
            e.wave == wave
                && e.wave_run_id.as_deref() == Some(wave_run_id)
                && e.state == CalendarState::Running
        }) else {
            return Ok(());
        };
        let next = CalendarEntry {
            state,
            note: note.clone(),
            ..e
        };
        match deps.store.save_calendar_entry(&next).await {
            Ok(()) => return Ok(()),
            Err(e) if e.kind == PortErrorKind::Conflict => continue,
            Err(e) => return Err(store_err(e)),
        }
    }
    Err(StepError::Retryable(
        "the calendar changed under every attempt to record the wave's end".into(),
    ))
}

/// A calendar firing that found nothing to take: recorded in the firing's audit trail and told
/// to the topic once.
async fn nothing_queued(
    wave_run_id: &str,
    firing: &CalendarFiring,
    deps: &Deps,
) -> Result<(), StepError> {
    let now = deps.clock.now();
    let key = "calendar-nothing-queued";
    let known = deps.store.events(wave_run_id).await.map_err(store_err)?;
    if known.iter().any(|e| e.key == key) {
        return Ok(());
    }
    let message = match &firing.wave {
        Some(w) => format!("calendar firing {wave_run_id} at {now}: wave {w} is not queued, or its window does not contain {now}; nothing was started"),
        None => format!("calendar firing {wave_run_id} at {now}: no queued wave's window contains {now}; nothing was started"),
    };
    deps.notifier
        .page(&crate::model::RunNotice {
            run_id: wave_run_id.to_string(),
            application: "calendar".into(),
            kind: "calendar_nothing_queued".into(),
            message: message.clone(),
            at: now,
            dedupe_key: format!("{wave_run_id}/{key}"),
        })
        .await
        .map_err(|e| StepError::from_port(e, |e| StepError::Retryable(e.to_string())))?;
    let mut ev = super::event(wave_run_id, key, "StartWave", "nothing-queued", now);
    ev.message = message;
    deps.store.append_event(&ev).await.map_err(store_err)?;
    Ok(())
}

/// What is wrong with a wave as a whole: its graph, its run ids, its plans, its cap and interval
/// (the window is checked against the time it starts). Empty when nothing is.
/// Why the wave is too large to run, if it is: its outline would take more than
/// `MAX_OUTLINE_BYTES` of every pass's state.
pub fn outline_too_large(w: &WaveSpec) -> Option<String> {
    let outline = serde_json::to_string(&w.outline("", None)).map_or(0, |t| t.len());
    (outline > MAX_OUTLINE_BYTES).then(|| {
        let fits = w.applications.len() * MAX_OUTLINE_BYTES / outline.max(1);
        format!(
            "applications: the wave's outline ({} applications: names, run ids, dependencies) takes {outline} bytes of every pass's state, above the {MAX_OUTLINE_BYTES} a wave's state leaves it (Step Functions allows 262,144 bytes a state): split it into waves of at most about {fits} applications",
            w.applications.len()
        )
    })
}

pub fn wave_problems(w: &WaveSpec) -> Vec<String> {
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
        if let Err(e) = check_run_id(&a.run_id) {
            problems.push(format!("applications[{i}].runId: {e}"));
        }
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
    problems.extend(outline_too_large(w));
    if !HANDOVER_AFTER_EVENTS_RANGE.contains(&w.handover_after_events) {
        problems.push(format!(
            "handoverAfterEvents: {} is outside {}..={}",
            w.handover_after_events,
            HANDOVER_AFTER_EVENTS_RANGE.start(),
            HANDOVER_AFTER_EVENTS_RANGE.end()
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
    problems
}

pub async fn start_wave(input: StartWaveInput, deps: &Deps) -> Result<WaveStarted, StepError> {
    check_run_id(&input.wave_run_id)?;
    let (spec, plans_key, calendar) = match (input.wave, &input.calendar) {
        (Some(w), None) => (w, format!("WAVERUN#{}", input.wave_run_id), None),
        (None, Some(firing)) => match take_from_calendar(&input.wave_run_id, firing, deps).await? {
            Some(entry) => {
                let spec = match calendar_spec(&entry, deps).await {
                    Ok(s) => s,
                    Err(e) => {
                        settle_calendar(
                            &entry.wave,
                            &input.wave_run_id,
                            CalendarState::Failed,
                            Some(e.to_string()),
                            deps,
                        )
                        .await?;
                        return Err(e);
                    }
                };
                (
                    spec,
                    calendar_plans_key(&entry.wave),
                    Some(entry.wave.clone()),
                )
            }
            None => {
                nothing_queued(&input.wave_run_id, firing, deps).await?;
                return Ok(WaveStarted {
                    progress: WaveProgress::default(),
                    outline: WaveOutline {
                        wave: "none".into(),
                        max_concurrency: 1,
                        window: None,
                        scheduling_interval_seconds: DEFAULT_SCHEDULING_INTERVAL,
                        handover_after_events: DEFAULT_HANDOVER_AFTER_EVENTS,
                        applications: vec![],
                        plans_key: String::new(),
                        calendar: None,
                    },
                    nothing_queued: true,
                });
            }
        },
        _ => {
            return Err(StepError::invalid(
                "the input names either a wave or a calendar firing, not both and not neither",
            ))
        }
    };
    let w = &spec;
    let problems = wave_problems(w);
    let now = deps.clock.now();
    let refused = if !problems.is_empty() {
        Some(StepError::ValidationFailed(problems))
    } else {
        w.window.filter(|win| !win.contains(now)).map(|win| {
            StepError::invalid(format!(
                "wave {} may run from {} to {}; it is {now}: nothing was started",
                w.wave, win.not_before, win.not_after
            ))
        })
    };
    if let Some(e) = refused {
        if let Some(c) = &calendar {
            settle_calendar(
                c,
                &input.wave_run_id,
                CalendarState::Failed,
                Some(e.to_string()),
                deps,
            )
            .await?;
        }
        return Err(e);
    }
    // A wave given whole keeps its plans in the run table for its passes (a calendar wave's
    // are there already); written again by a retried step, unchanged.
    if calendar.is_none() {
        for (i, a) in w.applications.iter().enumerate() {
            deps.store
                .save_wave_plan(&plans_key, i, &a.plan)
                .await
                .map_err(store_err)?;
        }
    }
    Ok(WaveStarted {
        progress: WaveProgress::default(),
        outline: w.outline(&plans_key, calendar.as_deref()),
        nothing_queued: false,
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
    /// This execution's place in the wave's chain of executions and the history it has written.
    #[serde(default)]
    pub generation: Generation,
}

/// One execution of a wave's chain: each hands over to the next before its history fills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Generation {
    /// 0 for the execution the wave started as, then 1, 2, …
    pub number: u32,
    /// History events this execution has written so far, as counted by `next_wave_round`
    /// (never fewer than Step Functions records: `EVENTS_PER_PASS` and its peers).
    pub events: u32,
}

/// The hand-over a pass asks for: start `name` with the wave's state, then end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handover {
    /// The next execution's name: derived from the wave run id and its number, so a
    /// redelivered hand-over starts the same execution (StartExecution is idempotent for a
    /// name and input it has seen).
    pub name: String,
    pub generation: Generation,
}

/// History events of one idle pass, counted from the wave machine's states as the local
/// engine records them (held to it by `a_wave_hands_over_before_its_history_fills`):
/// NextWaveRound's TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded and
/// TaskStateExited; IsWaveFinished's two; WaitForApplications' two; and a retry's three.
pub const EVENTS_PER_PASS: u32 = 12;
/// Events of one application started by the Map: its iteration's start and end, the task's
/// five and the Pass after it, with room for a retried start.
pub const EVENTS_PER_START: u32 = 14;
/// Events of the Map state itself and of MoreToStart.
pub const EVENTS_PER_MAP: u32 = 8;

/// The name of a wave execution's successor: `<wave run id>-h<number>`. Step Functions takes 80
/// characters: a longer one keeps the wave run id's beginning and 16 hex digits of a digest of
/// the whole, so two long wave run ids that share a beginning still name different executions.
pub fn handover_name(wave_run_id: &str, number: u32) -> String {
    let suffix = format!("-h{number}");
    if wave_run_id.len() + suffix.len() <= 80 {
        return format!("{wave_run_id}{suffix}");
    }
    // FNV-1a, 64 bits: stable across builds and platforms.
    let digest = wave_run_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let keep = 80 - 1 - 16 - suffix.len();
    let base: String = wave_run_id.chars().take(keep).collect();
    format!("{base}-{digest:016x}{suffix}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyApp {
    pub application: String,
    pub run_id: String,
    /// Its place in the wave.
    pub index: usize,
    /// Its plan, read from the run table for this start only.
    pub plan: Plan,
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
    /// More may start now than this pass's plans could carry (`READY_PLAN_BYTES`): the next
    /// pass follows at once.
    #[serde(default)]
    pub more: bool,
    /// This execution's count after this pass.
    #[serde(default)]
    pub generation: Generation,
    /// The history is near its bound: start the next execution of the wave instead of going
    /// on (nothing is started by this pass then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<Handover>,
}

/// The most plan bytes one pass hands the starts: its output stays far inside the 256 KB Step
/// Functions allows a state's input or output (quotas:
/// https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
pub const READY_PLAN_BYTES: usize = 160_000;

/// The most bytes of JSON a wave's state may carry between passes, its outline, progress and a
/// pass's plans together: inside the 262,144 Step Functions allows a state's input or output
/// (quotas: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html), with room
/// for the rest of the state.
pub const MAX_WAVE_STATE_BYTES: usize = 250_000;

/// The most bytes a wave's outline may take (its applications' names, run ids and
/// dependencies; every pass carries it): what is left of `MAX_WAVE_STATE_BYTES` carries the
/// progress and at least one plan. A larger wave is refused when it is checked, naming this.
pub const MAX_OUTLINE_BYTES: usize = 150_000;

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
    // This pass's own events; the starts it hands the Map are counted with them below.
    let mut generation = input.generation;
    generation.events = generation.events.saturating_add(EVENTS_PER_PASS);
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
    // Near the history's bound, with something still to wait for or to start: hand over to the
    // next execution before starting anything (the next one's first pass starts it).
    if generation.events >= w.handover_after_events && (running > 0 || !candidates.is_empty()) {
        p.passes += 1;
        let next = Generation {
            number: generation.number + 1,
            events: 0,
        };
        return Ok(NextRoundOutput {
            finished: false,
            progress: p,
            ready: vec![],
            // Waited only when the hand-over could not start (the machine goes on).
            wait_seconds: w.scheduling_interval_seconds,
            more: false,
            generation,
            handover: Some(Handover {
                name: handover_name(&input.wave_run_id, next.number),
                generation: next,
            }),
        });
    }
    // The plans this pass hands the starts share the state with the outline and the progress.
    let carried = serde_json::to_string(w).map_or(0, |t| t.len())
        + serde_json::to_string(&p).map_or(0, |t| t.len());
    let plan_budget = READY_PLAN_BYTES.min(MAX_WAVE_STATE_BYTES.saturating_sub(carried));
    let chains = chain_lengths(&graph);
    // Stable: among equal chains, the wave file's order.
    candidates.sort_by_key(|a| std::cmp::Reverse(chains.get(&a.application).copied().unwrap_or(0)));
    let free = (w.max_concurrency as usize).saturating_sub(running);
    let mut ready: Vec<ReadyApp> = Vec::new();
    let (mut bytes, mut more) = (0usize, false);
    for a in candidates.into_iter().take(free) {
        let Some(plan) = deps
            .store
            .load_wave_plan(&w.plans_key, a.index)
            .await
            .map_err(store_err)?
        else {
            p.failed.insert(
                a.application.clone(),
                AppResult {
                    outcome: "failed".into(),
                    error: Some("its plan is not in the run table".into()),
                },
            );
            p.started.push(a.application.clone());
            continue;
        };
        let entry = ReadyApp {
            application: a.application.clone(),
            run_id: a.run_id.clone(),
            index: a.index,
            plan,
        };
        // The whole entry counts (its names and run id beside the plan): with a thousand
        // applications in the outline, the plans alone left the state over Step Functions'
        // limit (States.DataLimitExceeded, found by examples/landing-zone-1000).
        let size = serde_json::to_string(&entry)
            .map(|s| s.len() + 1)
            .unwrap_or(0);
        if !ready.is_empty() && bytes + size > plan_budget {
            more = true;
            break;
        }
        bytes += size;
        ready.push(entry);
    }
    for r in &ready {
        p.started.push(r.application.clone());
    }
    if !ready.is_empty() {
        p.rounds += 1;
        generation.events = generation
            .events
            .saturating_add(EVENTS_PER_MAP + EVENTS_PER_START * ready.len() as u32);
    }
    p.passes += 1;
    // An idle pass adds ten events to the wave's history (the Task, the Choice, the Wait;
    // Step Functions fails an execution at 25,000): every 500 passes the wait grows by one
    // interval, so at the default interval a wave may last about five days (docs/waves.md).
    let wait_seconds = w.scheduling_interval_seconds * (1 + u64::from(p.passes) / 500);
    Ok(NextRoundOutput {
        finished: running == 0 && ready.is_empty() && !more,
        progress: p,
        ready,
        wait_seconds,
        more,
        generation,
        handover: None,
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
    if let Some(c) = &input.wave.calendar {
        let state = match outcome {
            "completed" => CalendarState::Completed,
            "partial" => CalendarState::Partial,
            _ => CalendarState::Failed,
        };
        let note = format!("{completed} of {} applications completed", apps.len());
        settle_calendar(c, &input.wave_run_id, state, Some(note), deps).await?;
    }
    Ok(WaveReport {
        wave: input.wave.wave.clone(),
        outcome: outcome.into(),
        applications: apps,
    })
}
