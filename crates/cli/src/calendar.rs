//! `cutover local calendar`: the wave calendar on a virtual clock. The waves of a directory are
//! queued through the approval API's own route (`POST /calendar`), then a recurring schedule
//! fires at `from`, `from + every`, … up to `to`; each firing is an execution of the real wave
//! machine with the input the template's schedule gives it (`{"calendar": {}}`), over one
//! simulated world. Firings overlap as EventBridge Scheduler's would: one does not wait for the
//! wave an earlier one started.

use crate::local::{paused_runtime, setup, InputError, RunOptions};
use crate::wave::{load_wave, AppEntry};
use chrono::{DateTime, Duration, Utc};
use cutover_core::api::{handle_api_with, ApiRequest, Bounds};
use cutover_core::model::CalendarEntry;
use cutover_core::steps::{WaveReport, WaveSpec};
use cutover_sim::{MemoryStore, SimClock, World, WorldSpec};
use serde::Serialize;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// The most firings one local calendar simulates.
pub const MAX_FIRINGS: usize = 1000;

/// Who queues the waves of a local calendar.
pub const LOCAL_OPERATOR: &str = "arn:aws:iam::123456789012:user/local-operator";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CalendarReport {
    pub firings: Vec<Firing>,
    /// Every wave of the calendar as the run table holds it at the end.
    pub calendar: Vec<CalendarEntry>,
    /// What the calendar told the topic (a firing that found nothing queued).
    pub notices: Vec<cutover_core::model::RunNotice>,
    /// Every account's Route 53 as all the firings' cutovers found it, by account (the stack's
    /// own and those reached through `dns.roleArn`).
    pub route53_by_account: std::collections::BTreeMap<String, cutover_sim::Route53Use>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Firing {
    pub at: DateTime<Utc>,
    /// The wave execution's name.
    pub wave_run_id: String,
    /// The wave it took; None when nothing was queued for it.
    pub wave: Option<String>,
    /// completed | partial | failed | nothing_queued
    pub outcome: String,
    /// Each application of the wave it took, with simulated seconds from the world's start.
    pub applications: Vec<AppEntry>,
    /// How many times its wave handed over to a fresh execution (docs/waves.md).
    pub handovers: usize,
    /// The longest history of its wave's executions, in events (Step Functions' limit: 25,000).
    pub max_history_events: usize,
    pub error: Option<String>,
}

impl CalendarReport {
    /// 0 every wave a firing took completed, 5 one did not (docs/waves.md).
    pub fn exit_code(&self) -> i32 {
        if self
            .firings
            .iter()
            .all(|f| matches!(f.outcome.as_str(), "completed" | "nothing_queued"))
        {
            0
        } else {
            5
        }
    }
}

/// Reads every wave file (`*.yaml`, `*.yml`, `*.json`) of `dir`, in file-name order: that order
/// is their order on the calendar.
pub fn load_waves(dir: &Path) -> Result<Vec<WaveSpec>, InputError> {
    let file = dir.display().to_string();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| InputError {
            file: file.clone(),
            problems: vec![e.to_string()],
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| ["yaml", "yml", "json"].contains(&e))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(InputError {
            file,
            problems: vec!["holds no wave file (*.yaml, *.yml, *.json)".into()],
        });
    }
    paths.iter().map(|p| load_wave(p)).collect()
}

/// `7d`, `12h`, `30m`, `90s`: a whole number and its unit, as `rate(…)` counts them.
pub fn parse_every(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let unit = s.chars().last().ok_or("is empty")?;
    let n: i64 = s[..s.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number and a unit (d, h, m, s)"))?;
    let secs = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(format!("'{s}': the unit is d, h, m or s")),
    };
    if n <= 0 || n > 366 * 86_400 / secs {
        return Err(format!("'{s}' is outside 1 s..=366 d"));
    }
    Ok(Duration::seconds(n * secs))
}

/// The firing times `from`, `from + every`, … not after `to`; an error names the bad option.
pub fn firing_times(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    every: Duration,
) -> Result<Vec<DateTime<Utc>>, String> {
    if every <= Duration::zero() {
        return Err("--every: must be longer than zero".into());
    }
    if to < from {
        return Err(format!("--to: {to} is before --from {from}"));
    }
    let mut out = vec![];
    let mut t = from;
    while t <= to {
        if out.len() == MAX_FIRINGS {
            return Err(format!(
                "--every: more than {MAX_FIRINGS} firings between --from and --to"
            ));
        }
        out.push(t);
        t += every;
    }
    Ok(out)
}

/// Queues `waves` in order, then fires at each of `firings` (none before the world's start).
pub fn run_calendar_local(
    waves: &[WaveSpec],
    world_spec: &WorldSpec,
    firings: &[DateTime<Utc>],
    options: &RunOptions,
) -> Result<CalendarReport, String> {
    if let Some(t) = firings.iter().find(|t| **t < world_spec.start_time) {
        return Err(format!(
            "--from: {t} is before the world's startTime {}",
            world_spec.start_time
        ));
    }
    let plan = waves
        .iter()
        .flat_map(|w| w.applications.first())
        .map(|a| a.plan.clone())
        .next()
        .ok_or("the waves hold no application")?;
    paused_runtime().block_on(async {
        let clock = SimClock::start(world_spec.start_time);
        let world = Arc::new(World::new(world_spec.clone(), clock));
        let memory = Arc::new(MemoryStore::new());
        let wiring = (
            plan,
            memory.clone() as Arc<dyn cutover_core::ports::RunStore>,
            world.home() as _,
            world.home() as _,
        );
        // The reports read run records and execution times, never a state's data.
        let options = &RunOptions {
            lean_history: true,
            ..options.clone()
        };
        let s = setup(world, world_spec, memory, &wiring, options);
        // Queued as an operator queues them: through the API's own route and checks.
        for (i, w) in waves.iter().enumerate() {
            let req = ApiRequest {
                method: "POST".into(),
                path: "/calendar".into(),
                body: Some(json!({"wave": w, "order": i as u64 + 1}).to_string()),
                identity: Some(LOCAL_OPERATOR.into()),
                groups: vec![],
            };
            let r = handle_api_with(&req, &s.deps, None, &Bounds::open()).await;
            if r.status != 201 {
                return Err(format!("queueing wave {}: {}", w.wave, r.body));
            }
        }
        let start = world_spec.start_time;
        let runs = firings.iter().map(|at| {
            let name = format!("calendar-{}", at.format("%Y%m%dT%H%M%SZ"));
            let engine = &s.engine;
            let machine = &s.wave;
            async move {
                let wait = (*at - start).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                let exec = engine
                    .execute_until(
                        machine,
                        "wave",
                        &name,
                        json!({"calendar": {}}),
                        std::future::pending::<(String, String)>(),
                    )
                    .await;
                (*at, name, exec)
            }
        });
        let done = futures::future::join_all(runs).await;
        s.approver.abort();
        // A firing whose wave handed over to a later execution ended in that one.
        let wave_arn = s.engine.machine_arn("wave");
        let generations: Vec<cutover_engine::Execution> = s
            .engine
            .children()
            .into_iter()
            .filter(|(arn, _)| *arn == wave_arn)
            .map(|(_, e)| e)
            .collect();
        let done: Vec<_> = done
            .into_iter()
            .map(|(at, name, first)| {
                let chain = crate::wave::chain(&first, &generations);
                let longest = chain.iter().map(|e| e.history.len()).max().unwrap_or(0);
                let handovers = chain.len() - 1;
                let exec = chain.into_iter().last().unwrap_or(first);
                (at, name, exec, handovers, longest)
            })
            .collect();
        let secs = |t: DateTime<Utc>| (t - start).num_milliseconds() as f64 / 1000.0;
        let mut out = vec![];
        for (at, name, exec, handovers, max_history_events) in done {
            let output = exec.output.clone().unwrap_or_default();
            let report: Option<WaveReport> = serde_json::from_value(output.clone()).ok();
            let firing = match report {
                Some(r) => Firing {
                    at,
                    wave_run_id: name,
                    wave: Some(r.wave.clone()),
                    outcome: r.outcome.clone(),
                    applications: r
                        .applications
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
                    handovers,
                    max_history_events,
                    error: None,
                },
                None if output.pointer("/started/nothingQueued") == Some(&json!(true)) => Firing {
                    at,
                    wave_run_id: name,
                    wave: None,
                    outcome: "nothing_queued".into(),
                    applications: vec![],
                    handovers,
                    max_history_events,
                    error: None,
                },
                None => Firing {
                    at,
                    wave_run_id: name,
                    wave: None,
                    outcome: "failed".into(),
                    applications: vec![],
                    handovers,
                    max_history_events,
                    error: Some(format!(
                        "{}: {}",
                        exec.error.clone().unwrap_or_default(),
                        exec.cause.clone().unwrap_or_default()
                    )),
                },
            };
            out.push(firing);
        }
        // Read past the world's injected faults: the report is not part of the run.
        let mut calendar = cutover_core::ports::RunStore::calendar(s.memory.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        calendar.sort_by_key(|e| (e.order, e.queued_at));
        // A firing whose wave failed to start still names the wave it took.
        for f in out.iter_mut().filter(|f| f.wave.is_none()) {
            f.wave = calendar
                .iter()
                .find(|e| e.wave_run_id.as_deref() == Some(f.wave_run_id.as_str()))
                .map(|e| e.wave.clone());
        }
        // A firing whose wave execution failed on its own (its applications ran on to their
        // end) lists each application of the wave it took as its run record left it.
        for f in out
            .iter_mut()
            .filter(|f| f.outcome == "failed" && f.applications.is_empty())
        {
            let Some(entry) = calendar
                .iter()
                .find(|e| e.wave_run_id.as_deref() == Some(f.wave_run_id.as_str()))
            else {
                continue;
            };
            let named: Vec<(String, String)> = entry
                .applications
                .iter()
                .map(|a| {
                    (
                        a.application.clone(),
                        cutover_core::waves::run_id_for(&f.wave_run_id, &a.application),
                    )
                })
                .collect();
            f.applications = crate::wave::apps_from_records(s.memory.as_ref(), &named, &secs).await;
        }
        let notices = s
            .world
            .pages()
            .into_iter()
            .filter(|n| n.kind.starts_with("calendar_"))
            .collect();
        Ok(CalendarReport {
            firings: out,
            calendar,
            notices,
            route53_by_account: s.world.route53_use_by_account(),
        })
    })
}
