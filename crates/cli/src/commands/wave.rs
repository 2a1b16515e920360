//! `cutover wave start|status`: one wave of a deployed stack (the wave machine's execution and
//! its applications' runs).

#[cfg(feature = "aws")]
use super::stack::fail;
use super::stack::StackArgs;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum WaveCommand {
    /// Start a wave now: one execution of the wave machine with the wave file as input, named
    /// by --name (default: <wave>-<UTC time>). Exit 0 started, 2 invalid wave, 1 AWS refused.
    Start {
        /// The wave file (applications, dependencies, cap): docs/waves.md.
        #[arg(long)]
        wave: PathBuf,
        /// The execution's name; starting the same name again is the same execution.
        #[arg(long)]
        name: Option<String>,
        /// Print {"name", "executionArn"} instead of sentences.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// The wave execution's state and each application's run (phase, outcome, weights).
    Status {
        /// The wave execution's name (as `wave start` printed it).
        name: String,
        /// Print the status as JSON instead of lines.
        #[arg(long)]
        json: bool,
        /// Keep reading until the wave execution has ended: redraw on a terminal, print each
        /// change otherwise.
        #[arg(long)]
        watch: bool,
        /// Seconds between reads with --watch.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        #[command(flatten)]
        stack: StackArgs,
    },
}

#[cfg(not(feature = "aws"))]
pub fn wave_command(_: WaveCommand) -> ExitCode {
    super::stack::unavailable()
}

#[cfg(feature = "aws")]
pub fn wave_command(command: WaveCommand) -> ExitCode {
    use cutover_cli::deployed;
    match command {
        WaveCommand::Start {
            wave,
            name,
            json,
            stack,
        } => {
            let spec = match cutover_cli::wave::load_wave_whole(&wave) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let name = name.unwrap_or_else(|| {
                format!(
                    "{}-{}",
                    spec.wave,
                    chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
                )
            });
            match stack
                .connect()
                .and_then(|cx| deployed::wave_start(&cx, &spec, &name))
            {
                Ok(arn) if json => {
                    println!("{}", serde_json::json!({"name": name, "executionArn": arn}));
                    ExitCode::SUCCESS
                }
                Ok(arn) => {
                    println!("{name} started: {arn}");
                    println!("follow it: cutover wave status {name} --watch");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        WaveCommand::Status {
            name,
            json,
            watch,
            interval,
            stack,
        } => {
            use std::io::IsTerminal;
            let cx = match stack.connect() {
                Ok(cx) => cx,
                Err(e) => return fail(e),
            };
            let tty = std::io::stdout().is_terminal();
            let mut last = String::new();
            loop {
                let s = match deployed::wave_status(&cx, &name) {
                    Ok(s) => s,
                    Err(e) => return fail(e),
                };
                let shown = if json {
                    s.to_string()
                } else {
                    deployed::describe_wave(&s)
                };
                if watch && tty {
                    println!("\x1b[2J\x1b[H{shown}");
                } else if shown != last {
                    println!("{shown}");
                }
                last = shown;
                if !watch || s["status"].as_str() != Some("RUNNING") {
                    return ExitCode::SUCCESS;
                }
                std::thread::sleep(std::time::Duration::from_secs(interval.max(1)));
            }
        }
    }
}
