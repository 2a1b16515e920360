//! `cutover waves plan|schedule|queue|list|skip`: waves from a portfolio, one-time wave
//! schedules, and the wave calendar of a deployed stack (through its approval API).

use clap::Subcommand;
use cutover_cli::load_plan;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum WavesCommand {
    /// Propose waves from a portfolio: dependencies in earlier waves, a size cap, one application
    /// per team per wave. Cycles are reported (exit 2), never broken.
    Plan {
        /// The portfolio file (YAML or JSON): applications, plans, dependencies (docs/waves.md).
        portfolio: PathBuf,
        /// Write one wave file per wave here (wave-1.yaml, …); without it, print them.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create a one-time EventBridge Scheduler schedule that starts the wave machine at a time
    /// inside the wave's window. Exit 0 created, 1 AWS refused or cannot be reached, 2 invalid
    /// input. The wave machine and the role come from `--stack` (its WaveStateMachineArn and
    /// WaveSchedulerRoleArn outputs) or from their flags.
    Schedule {
        /// The wave file (YAML or JSON): docs/waves.md.
        #[arg(long)]
        wave: PathBuf,
        /// When to start (RFC 3339, e.g. 2026-12-05T02:00:00Z).
        #[arg(long)]
        at: String,
        /// Schedule name; defaults to the wave's name.
        #[arg(long)]
        name: Option<String>,
        /// The role the schedule runs as (the stack's WaveSchedulerRoleArn output).
        #[arg(long, env = "CUTOVER_WAVE_SCHEDULER_ROLE_ARN")]
        role_arn: Option<String>,
        #[command(flatten)]
        stack: super::stack::StackArgs,
    },
    /// Queue a wave on the stack's calendar (POST /calendar): its recurring schedule's firings
    /// take the queued wave of the lowest order whose window contains them. Exit 0 queued,
    /// 1 the API refused (403 outside ApiOperators, 409 queued or running already), 2 invalid.
    Queue {
        /// The wave file: docs/waves.md.
        #[arg(long)]
        wave: PathBuf,
        /// Its place on the calendar (lower first); default: after every wave on it.
        #[arg(long)]
        order: Option<u64>,
        #[command(flatten)]
        stack: super::stack::StackArgs,
    },
    /// The stack's calendar (GET /calendar): each wave's order, window, state and note.
    List {
        /// Print the calendar as JSON instead of lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: super::stack::StackArgs,
    },
    /// Take a queued wave off the calendar (POST /calendar/{wave}/skip); the reason is recorded.
    Skip {
        /// The queued wave's name.
        wave: String,
        /// Why, recorded on the calendar entry.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        stack: super::stack::StackArgs,
    },
}

#[cfg(feature = "aws")]
fn answered(r: Result<(u16, serde_json::Value), String>) -> Result<serde_json::Value, ExitCode> {
    match r {
        Ok((s, body)) if (200..300).contains(&s) => Ok(body),
        Ok((s, body)) => {
            let why = body["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string());
            eprintln!("error: the approval API answered {s}: {why}");
            Err(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(1))
        }
    }
}

#[cfg(feature = "aws")]
fn calendar_command(command: WavesCommand) -> ExitCode {
    use cutover_cli::deployed::{api_call, Context};
    let connect = |s: &super::stack::StackArgs| s.connect();
    let result = match command {
        WavesCommand::Queue { wave, order, stack } => {
            let spec = match cutover_cli::wave::load_wave(&wave) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let body = serde_json::json!({"wave": spec, "order": order});
            connect(&stack)
                .and_then(|cx: Context| api_call(&cx, "POST", "calendar", Some(&body)))
                .map(|r| (r, false))
        }
        WavesCommand::List { json, stack } => connect(&stack)
            .and_then(|cx: Context| api_call(&cx, "GET", "calendar", None))
            .map(|r| (r, !json)),
        WavesCommand::Skip {
            wave,
            reason,
            stack,
        } => connect(&stack)
            .and_then(|cx: Context| {
                api_call(
                    &cx,
                    "POST",
                    &format!("calendar/{wave}/skip"),
                    Some(&serde_json::json!({ "reason": reason })),
                )
            })
            .map(|r| (r, false)),
        _ => unreachable!("only calendar commands"),
    };
    let (r, table) = match result {
        Ok((r, t)) => (Ok(r), t),
        Err(e) => (Err(e), false),
    };
    match answered(r) {
        Ok(body) if table => {
            for w in body["waves"].as_array().into_iter().flatten() {
                println!(
                    "{:>4}  {:<24} {:<10} {} {}",
                    w["order"],
                    w["wave"].as_str().unwrap_or_default(),
                    w["state"].as_str().unwrap_or_default(),
                    w["waveRunId"].as_str().unwrap_or_default(),
                    w["note"].as_str().unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Ok(body) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

#[cfg(not(feature = "aws"))]
fn calendar_command(_: WavesCommand) -> ExitCode {
    super::stack::unavailable()
}

pub fn run(command: WavesCommand) -> ExitCode {
    match command {
        c
        @ (WavesCommand::Queue { .. } | WavesCommand::List { .. } | WavesCommand::Skip { .. }) => {
            calendar_command(c)
        }
        WavesCommand::Plan { portfolio, out } => {
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
        WavesCommand::Schedule {
            wave,
            at,
            name,
            role_arn,
            stack,
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
            schedule_wave(spec, at, name, role_arn, &stack)
        }
    }
}

/// Creates the one-time schedule of a wave (EventBridge Scheduler).
#[cfg(feature = "aws")]
fn schedule_wave(
    spec: cutover_core::steps::WaveSpec,
    at: chrono::DateTime<chrono::Utc>,
    name: Option<String>,
    role_arn: Option<String>,
    stack: &super::stack::StackArgs,
) -> ExitCode {
    let mut target = stack.stack();
    target.wave_scheduler_role_arn = role_arn;
    let cx = match cutover_cli::deployed::Context::connect(&target) {
        Ok(cx) => cx,
        Err(e) => return super::stack::fail(e),
    };
    let (state_machine_arn, role_arn) = match cx.wave_schedule_target() {
        Ok(t) => t,
        Err(e) => return super::stack::fail(e),
    };
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
    match cx.create_schedule(&schedule) {
        Ok(arn) => {
            println!("{arn}: starts {} at {}", spec.wave, schedule.expression());
            ExitCode::SUCCESS
        }
        // As every command that talks to AWS: 1 when AWS refuses or cannot be reached.
        Err(e) => super::stack::fail(e),
    }
}

#[cfg(not(feature = "aws"))]
fn schedule_wave(
    _: cutover_core::steps::WaveSpec,
    _: chrono::DateTime<chrono::Utc>,
    _: Option<String>,
    _: Option<String>,
    _: &super::stack::StackArgs,
) -> ExitCode {
    super::stack::unavailable()
}
