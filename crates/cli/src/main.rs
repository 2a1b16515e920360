//! `cutover`: local cutover runs on the embedded engine, plan checks and benchmarks, and the
//! commands that drive a deployed stack. The command line is declared here; each command family
//! is a module of `commands`.

mod commands;

/// The local engine allocates and frees JSON values at every state: mimalloc runs the chaos suite
/// 1.8 times as fast as the system allocator (docs/performance.md, "Simulation speed").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use commands::local::LocalCommand;
use commands::plan::PlanCommand;
use commands::run::{run_command, runs_list, RunCommand, RunsCommand};
use commands::wave::{wave_command, WaveCommand};
use commands::waves::WavesCommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cutover",
    version,
    about = "Move an application and its database from blue to green without betting on one DNS change"
)]
struct Cli {
    /// How to print the result: `json` is `--json` of the command (refused by a command that
    /// prints no JSON), `text` its default.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    output: Option<Output>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Json,
    Text,
}

/// The command line, with `--output json` read as the command's own `--json`. A command that
/// prints no JSON refuses it (exit 2, naming the command).
fn parse() -> Result<Cli, String> {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let root = Cli::command();
    let matches = root.clone().get_matches_from(&args);
    // The command that runs, and its matches (where the global --output lands).
    let (mut cmd, mut m) = (root, &matches);
    let mut path = vec!["cutover".to_string()];
    while let Some((name, sub)) = m.subcommand() {
        let Some(next) = cmd.find_subcommand(name).cloned() else {
            break;
        };
        path.push(name.to_string());
        cmd = next;
        m = sub;
    }
    let wants_json = m.get_one::<Output>("output") == Some(&Output::Json)
        || matches.get_one::<Output>("output") == Some(&Output::Json);
    if !wants_json {
        return Cli::from_arg_matches(&matches).map_err(|e| e.to_string());
    }
    if !cmd.get_arguments().any(|a| a.get_id() == "json") {
        return Err(format!(
            "--output json: `{}` prints no JSON",
            path.join(" ")
        ));
    }
    let mut with_json = args;
    with_json.push("--json".into());
    Ok(Cli::parse_from(with_json))
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
        /// Generate waves (two to five applications, dependencies, a cap, failing greens,
        /// faults, operators stopping the wave) and check the wave's promises instead.
        #[arg(long)]
        waves: bool,
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
    /// Rehearse the stack as deployed: the functions `sam build` built, each with the environment
    /// template.yaml gives it, driven by the template's state machines in the local engine, every
    /// AWS call checked against the calling function's role and answered by an AWS-compatible
    /// endpoint (moto) or a documented shim. Exit 0 when every scenario ends as it should and no
    /// call is refused, 1 otherwise (each finding names the function and the variable or action).
    /// Needs `--features aws`.
    Rehearse(commands::rehearse::RehearseArgs),
    /// Time local runs of a plan and world (wall time per run, transitions, simulated time).
    Bench {
        /// The plan to run (YAML or JSON).
        #[arg(long, default_value = "examples/dms-happy-path/plan.yaml")]
        plan: PathBuf,
        /// The simulated world it runs against (with --wave: the wave's world).
        #[arg(long, default_value = "examples/dms-happy-path/world.yaml")]
        world: PathBuf,
        /// Benchmark this wave (with --world) instead of one plan: applications per second,
        /// peak memory, largest state and longest history.
        #[arg(long)]
        wave: Option<PathBuf>,
        /// Measured runs (after one warm-up run).
        #[arg(long, default_value_t = 20)]
        iterations: u32,
    },
}

/// A reader that went away (`cutover … | head`) ends the command quietly with exit 0, as it ends
/// `cat`: Rust ignores SIGPIPE, so `println!` meets the closed pipe as an error and panics with
/// "failed printing to stdout"; any other panic keeps its message and backtrace.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info)
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Plan { command } => commands::plan::run(command),
        Command::Local { command } => commands::local::run(command),
        Command::Waves { command } => commands::waves::run(command),
        Command::Chaos {
            runs,
            seed,
            out,
            jobs,
            waves,
        } => commands::chaos::run(
            runs,
            seed,
            waves,
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
        Command::Report { report, html } => commands::report::run(&report, &html),
        Command::Rehearse(args) => commands::rehearse::run(args),
        Command::Bench {
            world,
            wave: Some(wave),
            iterations,
            ..
        } => commands::bench::run_wave(&wave, &world, iterations),
        Command::Bench {
            plan,
            world,
            wave: None,
            iterations,
        } => commands::bench::run(&plan, &world, iterations),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every command and every argument says what it is for in `--help`.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let here = format!("{path} {}", cmd.get_name());
            if !path.is_empty() && cmd.get_about().is_none() {
                missing.push(format!("{here}: no description"));
            }
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{here} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &here, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "{} without help:\n{}",
            missing.len(),
            missing.join("\n")
        );
    }
}
