//! `cutover local run|wave`: the real state machines over a simulated world.

use super::{fmt_secs, load_inputs};
use clap::Subcommand;
use cutover_cli::{load_world, run_local, RunOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum LocalCommand {
    /// Run the wave calendar locally: every wave file of --waves is queued (in file-name order),
    /// then a recurring schedule fires at --from, --from + --every, … up to --to; each firing
    /// takes the next queued wave whose window contains it and runs it on the real machines over
    /// one simulated world, or records that nothing was queued. Exit 0 every wave a firing took
    /// completed, 2 invalid input, 5 one did not.
    Calendar {
        /// A directory of wave files: docs/waves.md.
        #[arg(long)]
        waves: PathBuf,
        /// The simulated AWS world every application runs against: docs/world.md.
        #[arg(long)]
        world: PathBuf,
        /// The first firing (RFC 3339), not before the world's startTime.
        #[arg(long)]
        from: chrono::DateTime<chrono::Utc>,
        /// No firing after this time (RFC 3339).
        #[arg(long)]
        to: chrono::DateTime<chrono::Utc>,
        /// Time between firings, as `7d`, `12h`, `30m` (a recurring schedule's `rate(…)`).
        #[arg(long, default_value = "7d")]
        every: String,
        /// Print the calendar report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// No progress lines on stderr.
        #[arg(long)]
        quiet: bool,
        /// A progress line for every healthy health round (by default only the rounds that say
        /// something: a bake's completion, a note, a failure).
        #[arg(short, long)]
        verbose: bool,
    },
    /// Run a wave locally: its applications in dependency order under its concurrency cap, on
    /// the real wave and cutover machines over one simulated world. Exit 0 all completed,
    /// 2 invalid input, 5 some application did not complete, 8 the wave was stopped.
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
        /// A progress line for every healthy health round (by default only the rounds that say
        /// something: a bake's completion, a note, a failure).
        #[arg(short, long)]
        verbose: bool,
        /// Seed for retry jitter.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// How Route 53 requests share the account's budget: `shared` books each request's slot
        /// in the run table (as deployed); `backoff` sends at once and backs off when throttled
        /// (for comparison, docs/performance.md).
        #[arg(long, value_name = "shared|backoff", default_value = "shared")]
        route53: String,
    },
    /// Watch one cutover (or a wave) live: it runs as `local run` (`local wave`) does, but in
    /// accelerated real time
    /// (--speed simulated seconds per second), with a live page and the approval API's routes
    /// on 127.0.0.1:--port. The page shows the phase, the weights, the lag, the last health
    /// round, the events, and approves, rejects, holds, resumes, promotes and aborts through
    /// the same API the stack serves. Exit: the run's code (as `local run`) once it ended and
    /// --exit-after passed; 2 invalid input.
    Serve {
        /// The cutover plan (YAML, or JSON by extension): docs/plan.md.
        #[arg(long, required_unless_present = "wave", conflicts_with = "wave")]
        plan: Option<PathBuf>,
        /// A wave file instead (applications, dependencies, cap: docs/waves.md): the page shows
        /// every application at a glance and each one's run.
        #[arg(long)]
        wave: Option<PathBuf>,
        /// The simulated AWS world the plan runs against (YAML or JSON): docs/world.md.
        #[arg(long)]
        world: PathBuf,
        /// Simulated seconds per real second, 1..=10000.
        #[arg(long, default_value_t = 60)]
        speed: u32,
        /// The port on 127.0.0.1 (0: any free port; the address is printed).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Stop serving this many real seconds after the run ended (default: until Ctrl-C).
        #[arg(long, value_name = "SECONDS")]
        exit_after: Option<u64>,
        /// Seed for retry jitter.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Run id (the execution name); defaults to <application>-<world start time>.
        #[arg(long)]
        run_id: Option<String>,
    },
    /// Run one cutover locally: the real statemachines/cutover.asl.json in the embedded engine,
    /// the real step handlers, over a simulated AWS world on a virtual clock (hours of simulated
    /// time in a second). Progress lines and the closing summary go to stderr; with --json the
    /// report goes to stdout (and nothing else does).
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
        /// A progress line for every healthy health round (by default only the rounds that say
        /// something: a bake's completion, a note, a failure).
        #[arg(short, long)]
        verbose: bool,
        /// Deliver every Task twice, as at-least-once delivery may.
        #[arg(long)]
        duplicate_delivery: bool,
        /// With --duplicate-delivery, the two deliveries run at the same time (two Lambda
        /// instances racing on one payload) instead of one after the other.
        #[arg(long, requires = "duplicate_delivery")]
        concurrent: bool,
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
        /// How Route 53 requests share the account's budget: `shared` books each request's slot
        /// in the run table (as deployed); `backoff` sends at once and backs off when throttled
        /// (for comparison, docs/performance.md).
        #[arg(long, value_name = "shared|backoff", default_value = "shared")]
        route53: String,
    },
}

/// `--route53`, or the message naming the flag.
fn coordination(v: &str) -> Option<cutover_core::budget::Coordination> {
    v.parse()
        .map_err(|e| eprintln!("error: --route53: {e}"))
        .ok()
}

pub fn run(command: LocalCommand) -> ExitCode {
    match command {
        LocalCommand::Serve {
            plan,
            wave,
            world,
            speed,
            port,
            exit_after,
            seed,
            run_id,
        } => {
            let (target, world_v) = match (plan, wave) {
                (Some(plan), _) => {
                    let Some((plan_v, world_v)) = load_inputs(&plan, &world) else {
                        return ExitCode::from(2);
                    };
                    (cutover_cli::serve::Target::Run(Box::new(plan_v)), world_v)
                }
                (None, Some(wave)) => match (
                    cutover_cli::wave::load_wave_whole(&wave),
                    load_world(&world),
                ) {
                    (Ok(s), Ok(w)) => (cutover_cli::serve::Target::Wave(Box::new(s)), w),
                    (s, w) => {
                        for e in [s.err(), w.err()].into_iter().flatten() {
                            eprintln!("error: {e}");
                        }
                        return ExitCode::from(2);
                    }
                },
                (None, None) => {
                    eprintln!("error: --plan or --wave is needed");
                    return ExitCode::from(2);
                }
            };
            let options = cutover_cli::serve::ServeOptions {
                speed,
                port,
                linger: exit_after,
                run: RunOptions {
                    seed,
                    run_id,
                    progress: true,
                    ..Default::default()
                },
            };
            match cutover_cli::serve::serve(target, &world_v, options) {
                Ok(code) => ExitCode::from(code as u8),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        LocalCommand::Run {
            plan,
            world,
            json,
            quiet,
            verbose,
            duplicate_delivery,
            concurrent,
            seed,
            run_id,
            html,
            aws_endpoint_url,
            route53,
        } => {
            let Some(route53) = coordination(&route53) else {
                return ExitCode::from(2);
            };
            let Some((plan_v, world_v)) = load_inputs(&plan, &world) else {
                return ExitCode::from(2);
            };
            let opts = RunOptions {
                duplicate_delivery,
                concurrent_duplicates: concurrent,
                seed,
                progress: !quiet,
                verbose,
                run_id,
                aws_endpoint_url,
                route53,
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
                let routed = match &r.alb {
                    // The ALB rule: each target group's weight in its forward action.
                    Some(a) => format!(
                        "ALB forwards to {}",
                        cutover_core::alb::weights(&a.actions)
                            .iter()
                            .map(|(tg, w)| format!("{}={w}", tg.rsplit(':').next().unwrap_or(tg)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => format!(
                        "DNS now: {}",
                        r.dns
                            .iter()
                            .map(|d| match (&d.set_identifier, d.weight) {
                                (Some(id), Some(w)) => format!("{id}={w} {}", d.describe()),
                                _ => format!("simple {}", d.describe()),
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                };
                let colour = cutover_cli::style::stderr_colour();
                eprintln!(
                    "{}: {}{} after {} simulated, {} state transitions; {}",
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
                    routed
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
        LocalCommand::Calendar {
            waves,
            world,
            from,
            to,
            every,
            json,
            quiet,
            verbose,
        } => {
            let every = match cutover_cli::calendar::parse_every(&every) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: --every: {e}");
                    return ExitCode::from(2);
                }
            };
            let firings = match cutover_cli::calendar::firing_times(from, to, every) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let (specs, world_v) = match (
                cutover_cli::calendar::load_waves(&waves),
                load_world(&world),
            ) {
                (Ok(s), Ok(w)) => (s, w),
                (s, w) => {
                    for e in [s.err(), w.err()].into_iter().flatten() {
                        eprintln!("error: {e}");
                    }
                    return ExitCode::from(2);
                }
            };
            let opts = RunOptions {
                progress: !quiet,
                verbose,
                ..Default::default()
            };
            let r = match cutover_cli::calendar::run_calendar_local(
                &specs, &world_v, &firings, &opts,
            ) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if json {
                match serde_json::to_string_pretty(&r) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("error: report: {e}"),
                }
            }
            if !quiet {
                for f in &r.firings {
                    let done = f
                        .applications
                        .iter()
                        .filter(|a| a.outcome == "completed")
                        .count();
                    eprintln!(
                        "{}  {:<28} {:<16} {:<15} {}",
                        f.at.format("%Y-%m-%d %H:%M"),
                        f.wave_run_id,
                        f.wave.as_deref().unwrap_or("-"),
                        f.outcome,
                        if f.applications.is_empty() {
                            f.error.clone().unwrap_or_default()
                        } else {
                            format!("{done} of {} applications completed", f.applications.len())
                        }
                    );
                }
                for e in &r.calendar {
                    eprintln!(
                        "calendar: {:<16} {:<10} {}",
                        e.wave,
                        e.state.as_str(),
                        e.note.clone().unwrap_or_default()
                    );
                }
                // Each account's Route 53 as the cutovers found it (docs/performance.md).
                for (account, u) in &r.route53_by_account {
                    eprintln!(
                        "route53 {account}: {} answered, {} throttled, budget used {} while waiting ({} s), longest wait {:.1} s",
                        u.requests_answered,
                        u.throttled,
                        u.budget_used_while_waiting
                            .map_or("-".into(), |b| format!("{:.0} %", b * 100.0)),
                        u.waiting_seconds,
                        u.longest_wait_seconds
                    );
                }
            }
            ExitCode::from(r.exit_code() as u8)
        }
        LocalCommand::Wave {
            wave,
            world,
            json,
            quiet,
            verbose,
            seed,
            route53,
        } => {
            let Some(route53) = coordination(&route53) else {
                return ExitCode::from(2);
            };
            let (spec, world_v) = match (
                cutover_cli::wave::load_wave_whole(&wave),
                load_world(&world),
            ) {
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
                verbose,
                route53,
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
                let q = &r.route53;
                eprintln!(
                    "route 53: {} requests answered, {} throttled; callers waited in {} s, when the budget was {} used; longest wait {}",
                    q.requests_answered,
                    q.throttled,
                    q.waiting_seconds,
                    q.budget_used_while_waiting
                        .map(|u| format!("{:.1} %", u * 100.0))
                        .unwrap_or_else(|| "not".into()),
                    fmt_secs(q.longest_wait_seconds)
                );
            }
            if r.error.is_some()
                && r.applications.is_empty()
                && r.outcome != cutover_cli::wave::STOPPED
            {
                // The wave refused to start (window, graph): nothing ran.
                return ExitCode::from(2);
            }
            ExitCode::from(r.exit_code() as u8)
        }
    }
}
