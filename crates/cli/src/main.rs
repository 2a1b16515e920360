//! `cutover`: local cutover runs on the embedded engine, plan checks and benchmarks.

mod commands;

use clap::{Parser, Subcommand};
use commands::run::{run_command, runs_list, RunCommand, RunsCommand};
use commands::wave::{wave_command, WaveCommand};
use cutover_cli::{load_plan, load_world, run_local, RunOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cutover",
    version,
    about = "Move an application and its database from blue to green without betting on one DNS change"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Plans: check one.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// Run a cutover locally: the real state machine, the real steps, a simulated AWS world.
    Local {
        #[command(subcommand)]
        command: LocalCommand,
    },
    /// Waves: plan them from a portfolio.
    Waves {
        #[command(subcommand)]
        command: WavesCommand,
    },
    /// Run generated plans, worlds and fault schedules and check every promise after each run
    /// (DNS never half-shifted, outcome matching DNS, lock released, no side effect twice, no
    /// write lost in a managed data mode). Exit 0 none broken, 1 some (their inputs are written
    /// to --out).
    Chaos {
        /// How many cases: seeds seed..seed+runs.
        #[arg(long, default_value_t = 200)]
        runs: u64,
        /// The first seed; a case is fully determined by its seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where failing cases' plan, world and violations are written.
        #[arg(long, default_value = "chaos-failures")]
        out: PathBuf,
        /// Cases run at once (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Runs of a deployed stack: start one, read its status, decide its gates, abort it (through
    /// the approval API, signed with your credentials). Needs the CLI built with `--features aws`.
    Run {
        #[command(subcommand)]
        command: RunCommand,
    },
    /// List a deployed stack's runs, newest first. Needs `--features aws`.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// A wave of a deployed stack: start it, follow it. Needs `--features aws`.
    Wave {
        #[command(subcommand)]
        command: WaveCommand,
    },
    /// Render a run report (the JSON of `local run --json`) as one self-contained HTML page with
    /// an SVG timeline (weights, lag against its threshold, health rounds, approvals, freeze,
    /// switch, rollback) and the audit table. Exit 0, or 2 when the report cannot be read.
    Report {
        /// The report JSON file.
        report: PathBuf,
        /// Where to write the HTML page.
        #[arg(long)]
        html: PathBuf,
    },
    /// Time local runs of a plan and world (wall time per run, transitions, simulated time).
    Bench {
        #[arg(long, default_value = "examples/dms-happy-path/plan.yaml")]
        plan: PathBuf,
        #[arg(long, default_value = "examples/dms-happy-path/world.yaml")]
        world: PathBuf,
        /// Measured runs (after one warm-up run).
        #[arg(long, default_value_t = 20)]
        iterations: u32,
    },
}

#[derive(Subcommand)]
enum WavesCommand {
    /// Propose waves from a portfolio: dependencies in earlier waves, a size cap, one application
    /// per team per wave. Cycles are reported (exit 2), never broken.
    Plan {
        portfolio: PathBuf,
        /// Write one wave file per wave here (wave-1.yaml, …); without it, print them.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create a one-time EventBridge Scheduler schedule that starts the wave machine at a time
    /// inside the wave's window. Exit 0 created, 2 invalid input, 4 the service refused.
    Schedule {
        #[arg(long)]
        wave: PathBuf,
        /// When to start (RFC 3339, e.g. 2026-12-05T02:00:00Z).
        #[arg(long)]
        at: String,
        /// The wave state machine (the stack's WaveStateMachineArn output).
        #[arg(long)]
        state_machine_arn: String,
        /// The role the schedule runs as (the stack's WaveSchedulerRoleArn output).
        #[arg(long)]
        role_arn: String,
        /// Schedule name; defaults to the wave's name.
        #[arg(long)]
        name: Option<String>,
        /// An AWS-compatible endpoint (e.g. moto); default: the AWS account of the environment.
        #[arg(long, value_name = "URL")]
        aws_endpoint_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum PlanCommand {
    /// Validate a plan: exit 0, or 2 with every problem named by its field.
    Check { plan: PathBuf },
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Run a wave locally: its applications in dependency order under its concurrency cap, on
    /// the real wave and cutover machines over one simulated world. Exit 0 all completed,
    /// 2 invalid input, 5 some application did not complete.
    Wave {
        /// The wave file (applications, dependencies, cap): docs/waves.md.
        #[arg(long)]
        wave: PathBuf,
        /// The simulated AWS world every application runs against: docs/world.md.
        #[arg(long)]
        world: PathBuf,
        /// Print the wave report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// No progress lines on stderr.
        #[arg(long)]
        quiet: bool,
        /// Seed for retry jitter.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Run one cutover locally: the real statemachines/cutover.asl.json in the embedded engine,
    /// the real step handlers, over a simulated AWS world on a virtual clock (hours of simulated
    /// time in a second). Progress lines go to stderr, a summary (or --json, the report) to
    /// stdout.
    ///
    /// Exit 0 completed, 2 invalid input (file and field named, nothing run), 3 rolled back,
    /// 4 failed or aborted, 6 rollback failed (DNS not restored: paged, lock kept).
    Run {
        /// The cutover plan (YAML, or JSON by extension): docs/plan.md.
        #[arg(long)]
        plan: PathBuf,
        /// The simulated AWS world the plan runs against (YAML or JSON): docs/world.md.
        #[arg(long)]
        world: PathBuf,
        /// Print the final report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// No progress lines on stderr.
        #[arg(long)]
        quiet: bool,
        /// Deliver every Task twice, as at-least-once delivery may.
        #[arg(long)]
        duplicate_delivery: bool,
        /// Seed for retry jitter.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Run id (the execution name); defaults to <application>-<world start time>.
        #[arg(long)]
        run_id: Option<String>,
        /// Also write the report as an HTML page with its timeline (see `cutover report`).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Send the run store, Route 53 and DMS calls through the SDK adapters to this endpoint
        /// (e.g. a moto server); lag, health, alarms, approvals and MGN stay simulated.
        #[arg(long, value_name = "URL")]
        aws_endpoint_url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan {
            command: PlanCommand::Check { plan },
        } => match load_plan(&plan) {
            Ok(p) => {
                println!(
                    "{}: ok: {} via {:?}, {} {} in {}, {} traffic step(s) to 100%",
                    plan.display(),
                    p.application,
                    p.replication.kind,
                    p.dns.record_type,
                    p.dns.record_name,
                    p.dns.hosted_zone_id,
                    p.traffic.steps.len()
                );
                for w in p.warnings() {
                    eprintln!("warning: {w}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Local {
            command:
                LocalCommand::Run {
                    plan,
                    world,
                    json,
                    quiet,
                    duplicate_delivery,
                    seed,
                    run_id,
                    html,
                    aws_endpoint_url,
                },
        } => {
            let Some((plan_v, world_v)) = load_inputs(&plan, &world) else {
                return ExitCode::from(2);
            };
            let opts = RunOptions {
                duplicate_delivery,
                seed,
                progress: !quiet,
                run_id,
                aws_endpoint_url,
                ..Default::default()
            };
            let run = match run_local(&plan_v, &world_v, &opts) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(4);
                }
            };
            let r = &run.report;
            if let Some(path) = &html {
                let page = serde_json::to_value(r)
                    .map(|v| cutover_cli::html::render(&v))
                    .map_err(|e| e.to_string());
                if let Err(e) =
                    page.and_then(|p| std::fs::write(path, p).map_err(|e| e.to_string()))
                {
                    eprintln!("error: {}: {e}", path.display());
                    return ExitCode::from(1);
                }
            }
            if json {
                match serde_json::to_string_pretty(r) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("error: report: {e}"),
                }
            }
            if !quiet {
                let dns: Vec<String> = r
                    .dns
                    .iter()
                    .map(|d| match (&d.set_identifier, d.weight) {
                        (Some(id), Some(w)) => format!("{id}={w} {}", d.describe()),
                        _ => format!("simple {}", d.describe()),
                    })
                    .collect();
                let colour = cutover_cli::style::stderr_colour();
                eprintln!(
                    "{}: {}{} after {} simulated, {} state transitions; DNS now: {}",
                    r.run_id,
                    cutover_cli::style::paint(
                        &r.outcome,
                        cutover_cli::style::outcome_tone(&r.outcome),
                        colour
                    ),
                    r.error
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default(),
                    fmt_secs(r.simulated_seconds),
                    r.state_transitions,
                    dns.join("; ")
                );
                // Why a run did not complete, one reason a line (a failed pre-flight lists each).
                if r.outcome != "completed" {
                    // A Lambda error's cause is its JSON error object, as Step Functions records it.
                    let cause = r.cause.as_deref().map(|c| {
                        serde_json::from_str::<serde_json::Value>(c)
                            .ok()
                            .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
                            .unwrap_or_else(|| c.to_string())
                    });
                    for reason in cause.iter().flat_map(|c| c.split("; ")) {
                        eprintln!("  why: {reason}");
                    }
                }
            }
            ExitCode::from(r.exit_code() as u8)
        }
        Command::Local {
            command:
                LocalCommand::Wave {
                    wave,
                    world,
                    json,
                    quiet,
                    seed,
                },
        } => {
            let (spec, world_v) = match (cutover_cli::wave::load_wave(&wave), load_world(&world)) {
                (Ok(s), Ok(w)) => (s, w),
                (s, w) => {
                    for e in [s.err(), w.err()].into_iter().flatten() {
                        eprintln!("error: {e}");
                    }
                    return ExitCode::from(2);
                }
            };
            let opts = RunOptions {
                seed,
                progress: !quiet,
                ..Default::default()
            };
            let run = cutover_cli::wave::run_wave_local(&spec, &world_v, &opts);
            let r = &run.report;
            if json {
                match serde_json::to_string_pretty(r) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("error: report: {e}"),
                }
            }
            if !quiet {
                for a in &r.applications {
                    eprintln!(
                        "  {:<20} {:<12} {}",
                        a.application,
                        a.outcome,
                        a.error.clone().unwrap_or_default()
                    );
                }
                eprintln!(
                    "{}: {} after {} simulated; at most {} of {} applications at once; {} state transitions{}",
                    r.wave,
                    r.outcome,
                    fmt_secs(r.simulated_seconds),
                    r.max_concurrent_applications,
                    r.max_concurrency,
                    r.state_transitions,
                    r.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
                );
            }
            if r.error.is_some() && r.applications.is_empty() {
                // The wave refused to start (window, graph): nothing ran.
                return ExitCode::from(2);
            }
            ExitCode::from(r.exit_code() as u8)
        }
        Command::Waves {
            command: WavesCommand::Plan { portfolio, out },
        } => {
            let text = match std::fs::read_to_string(&portfolio) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {}: {e}", portfolio.display());
                    return ExitCode::from(2);
                }
            };
            let json = portfolio.extension().is_some_and(|e| e == "json");
            let p = match cutover_core::waves::Portfolio::parse(&text, json) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {}:", portfolio.display());
                    for v in e.violations() {
                        eprintln!("  {v}");
                    }
                    return ExitCode::from(2);
                }
            };
            let planned = p.plan();
            for e in &planned.excluded {
                eprintln!("not planned: {}: {}", e.name, e.reason);
            }
            let base = portfolio.parent().unwrap_or(std::path::Path::new("."));
            for mut w in planned.waves {
                if let Some(dir) = &out {
                    // A wave file names its plans relative to itself (docs/waves.md), the
                    // portfolio relative to the portfolio: re-anchor them in DIR, and say which
                    // plan `local wave` would not find.
                    for a in &mut w.wave.applications {
                        let plan = base.join(&a.plan);
                        a.plan = cutover_cli::wave::relative_to(&plan, dir);
                        if let Err(e) = load_plan(&plan) {
                            eprintln!("warning: {} needs {}: {e}", w.wave.wave, plan.display());
                        }
                    }
                }
                let yaml = match serde_norway::to_string(&w.wave) {
                    Ok(y) => y,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                };
                match &out {
                    Some(dir) => {
                        let path = dir.join(format!("{}.yaml", w.wave.wave));
                        if let Err(e) =
                            std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, &yaml))
                        {
                            eprintln!("error: {}: {e}", path.display());
                            return ExitCode::from(2);
                        }
                        println!("{}: {}", path.display(), w.names.join(", "));
                    }
                    None => println!("---\n{yaml}"),
                }
            }
            ExitCode::SUCCESS
        }
        Command::Waves {
            command:
                WavesCommand::Schedule {
                    wave,
                    at,
                    state_machine_arn,
                    role_arn,
                    name,
                    aws_endpoint_url,
                },
        } => {
            let spec = match cutover_cli::wave::load_wave(&wave) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let at = match chrono::DateTime::parse_from_rfc3339(&at) {
                Ok(t) => t.with_timezone(&chrono::Utc),
                Err(e) => {
                    eprintln!("error: at: '{at}' is not an RFC 3339 time: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(w) = &spec.window {
                if !w.contains(at) {
                    eprintln!(
                        "error: at: {at} is outside the wave's window ({} to {})",
                        w.not_before, w.not_after
                    );
                    return ExitCode::from(2);
                }
            }
            schedule_wave(
                spec,
                at,
                state_machine_arn,
                role_arn,
                name,
                aws_endpoint_url,
            )
        }
        Command::Chaos {
            runs,
            seed,
            out,
            jobs,
        } => chaos(
            runs,
            seed,
            jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            &out,
        ),
        Command::Run { command } => run_command(command),
        Command::Wave { command } => wave_command(command),
        Command::Runs {
            command:
                RunsCommand::List {
                    application,
                    active,
                    json,
                    stack,
                },
        } => runs_list(application, active, json, stack),
        Command::Report { report, html } => {
            let parsed = std::fs::read_to_string(&report)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string())
                })
                .and_then(|v| {
                    if v.get("timeline").is_some_and(|t| t.is_array()) {
                        Ok(v)
                    } else {
                        Err("timeline: missing; not a run report".into())
                    }
                });
            match parsed {
                Ok(v) => match std::fs::write(&html, cutover_cli::html::render(&v)) {
                    Ok(()) => {
                        println!("{} written", html.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {}: {e}", html.display());
                        ExitCode::from(1)
                    }
                },
                Err(e) => {
                    eprintln!("error: {}: {e}", report.display());
                    ExitCode::from(2)
                }
            }
        }
        Command::Bench {
            plan,
            world,
            iterations,
        } => {
            let Some((plan_v, world_v)) = load_inputs(&plan, &world) else {
                return ExitCode::from(2);
            };
            bench(&plan_v, &world_v, iterations.max(1));
            ExitCode::SUCCESS
        }
    }
}

/// Both input files, or every error of both printed (the caller exits 2 and runs nothing).
fn load_inputs(
    plan: &std::path::Path,
    world: &std::path::Path,
) -> Option<(cutover_core::Plan, cutover_sim::WorldSpec)> {
    match (load_plan(plan), load_world(world)) {
        (Ok(p), Ok(w)) => Some((p, w)),
        (p, w) => {
            for e in [p.err(), w.err()].into_iter().flatten() {
                eprintln!("error: {e}");
            }
            None
        }
    }
}

fn fmt_secs(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60)
}

/// Runs the plan `iterations` times after a warm-up and prints wall-time statistics.
fn bench(plan: &cutover_core::Plan, world: &cutover_sim::WorldSpec, iterations: u32) {
    let opts = RunOptions::default();
    let warm = run_local(plan, world, &opts).expect("a simulated run needs no endpoint");
    let mut walls = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations {
        let t = std::time::Instant::now();
        let run = run_local(plan, world, &opts).expect("a simulated run needs no endpoint");
        walls.push(t.elapsed().as_secs_f64());
        assert_eq!(
            run.report.outcome, warm.report.outcome,
            "runs of one plan and world must agree"
        );
    }
    walls.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let mean = walls.iter().sum::<f64>() / walls.len() as f64;
    let median = walls[walls.len() / 2];
    let r = &warm.report;
    println!("outcome: {}", r.outcome);
    println!(
        "simulated: {:.0} s ({})",
        r.simulated_seconds,
        fmt_secs(r.simulated_seconds)
    );
    println!("state transitions: {}", r.state_transitions);
    println!(
        "wall per run over {iterations} runs: median {:.2} ms, mean {:.2} ms, min {:.2} ms, max {:.2} ms",
        median * 1e3,
        mean * 1e3,
        walls[0] * 1e3,
        walls[walls.len() - 1] * 1e3
    );
    println!(
        "simulated hours per wall second (median): {:.0}",
        r.simulated_seconds / 3600.0 / median
    );
}

/// Creates the one-time schedule of a wave (EventBridge Scheduler).
#[cfg(feature = "aws")]
fn schedule_wave(
    spec: cutover_core::steps::WaveSpec,
    at: chrono::DateTime<chrono::Utc>,
    state_machine_arn: String,
    role_arn: String,
    name: Option<String>,
    aws_endpoint_url: Option<String>,
) -> ExitCode {
    let schedule = cutover_aws::OneTimeSchedule {
        name: name.unwrap_or_else(|| spec.wave.clone()),
        at,
        state_machine_arn,
        role_arn,
        input: serde_json::json!({ "wave": spec }).to_string(),
    };
    let problems = schedule.problems(chrono::Utc::now());
    if !problems.is_empty() {
        for p in problems {
            eprintln!("error: {p}");
        }
        return ExitCode::from(2);
    }
    match cutover_cli::aws_mode::create_schedule(&schedule, aws_endpoint_url.as_deref()) {
        Ok(arn) => {
            println!("{arn}: starts {} at {}", spec.wave, schedule.expression());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(4)
        }
    }
}

#[cfg(not(feature = "aws"))]
fn schedule_wave(
    _: cutover_core::steps::WaveSpec,
    _: chrono::DateTime<chrono::Utc>,
    _: String,
    _: String,
    _: Option<String>,
    _: Option<String>,
) -> ExitCode {
    eprintln!("error: this cutover was built without AWS support: build it with `--features aws` to create schedules");
    ExitCode::from(1)
}

/// `cutover chaos`: runs the cases, prints progress every 500 and a summary, saves failures.
fn chaos(runs: u64, seed: u64, jobs: usize, out: &std::path::Path) -> ExitCode {
    use cutover_cli::chaos;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    let started = std::time::Instant::now();
    let outcomes: Mutex<std::collections::BTreeMap<String, u64>> = Default::default();
    let failed: Mutex<Vec<u64>> = Default::default();
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    // Cases are independent (each its own world, store and paused runtime): `jobs` threads take
    // the next seed until all are run.
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= runs {
                    break;
                }
                let case = chaos::generate(seed + i);
                let mut failed_here = false;
                match chaos::check(&case) {
                    Ok(v) => {
                        *outcomes
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(v.outcome.clone())
                            .or_default() += 1;
                        if !v.violations.is_empty() {
                            let saved = chaos::save(&case, &v, out)
                                .map(|p| p.display().to_string())
                                .unwrap_or_else(|e| format!("(not saved: {e})"));
                            eprintln!("seed {}: {} -> {saved}", case.seed, v.violations.join("; "));
                            failed_here = true;
                        }
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        failed_here = true;
                    }
                }
                if failed_here {
                    failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(case.seed);
                }
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if n.is_multiple_of(500) {
                    eprintln!(
                        "chaos: {n}/{runs} runs, {} failing, {:.0}s",
                        failed.lock().unwrap_or_else(|p| p.into_inner()).len(),
                        started.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    failed.sort_unstable();
    let summary: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "chaos: {runs} runs (seeds {seed}..{}), {} with violations, {:.1}s wall; outcomes: {}",
        seed + runs.saturating_sub(1),
        failed.len(),
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    );
    match failed.first() {
        None => ExitCode::SUCCESS,
        Some(first) => {
            println!(
                "first failing seed: {first} (replay: cutover chaos --runs 1 --seed {first}; inputs in {})",
                out.display()
            );
            ExitCode::from(1)
        }
    }
}
