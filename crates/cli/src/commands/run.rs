//! `cutover run …` and `cutover runs list`: one run of a deployed stack, and its list of runs.

#[cfg(feature = "aws")]
use super::stack::fail;
use super::stack::StackArgs;
use clap::{Args, Subcommand};
#[cfg(feature = "aws")]
use cutover_cli::load_plan;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum RunsCommand {
    /// Run id, application, phase, outcome and start of every run in the table.
    List {
        /// Only the runs of this application.
        #[arg(long)]
        application: Option<String>,
        /// Only runs without an outcome yet.
        #[arg(long)]
        active: bool,
        /// Print the runs as a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: StackArgs,
    },
}

#[derive(Subcommand)]
pub enum RunCommand {
    /// Start a run of a checked plan: one execution of the cutover machine named by the run id.
    /// Exit 0 started, 2 invalid plan, 1 AWS refused.
    Start {
        /// The plan file (YAML or JSON): docs/plan.md.
        #[arg(long)]
        plan: PathBuf,
        /// Default: <application>-<UTC time>.
        #[arg(long)]
        run_id: Option<String>,
        /// Print {"runId", "executionArn"} instead of a sentence.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// The pre-flight a run would make, against the account, changing nothing: the DMS task or
    /// MGN servers, the record as Route 53 serves it, green's health URLs and alarms, hook
    /// credentials, and with --stack the stack's own bounds (AllowedRecordNames,
    /// AllowedHostedZoneIds, AllowedHookFunctionArns). Exit 0 ready, 2 the run would be
    /// refused (each problem named), 1 AWS could not be read.
    Preflight {
        /// The plan file (YAML or JSON): docs/plan.md.
        #[arg(long)]
        plan: PathBuf,
        /// Print {"problems", "records", "allowedRecordNames", "allowedHostedZoneIds"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// The run's lines from every function's log group (/cutover/<Environment>/<function>),
    /// oldest first, each with its time and function. Exit 0, 1 AWS could not be read.
    Logs {
        /// The run id (its execution's name).
        run: String,
        /// Keep reading new lines every --interval seconds until the run has an outcome.
        #[arg(long)]
        follow: bool,
        /// Seconds between reads with --follow.
        #[arg(long, default_value_t = 5)]
        interval: u64,
        /// The deployment's name the log groups carry (the stack's Environment parameter, read
        /// with --stack otherwise).
        #[arg(long)]
        environment: Option<String>,
        /// One JSON object per line: {"at", "function", "message"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Phase, weights, lag, last health round, pending gates, outcome, execution state.
    Status {
        /// The run id (its execution's name).
        run: String,
        /// Print the status as JSON instead of lines.
        #[arg(long)]
        json: bool,
        /// Keep watching until the run has an outcome: redraw on a terminal, print each change
        /// otherwise.
        #[arg(long)]
        watch: bool,
        /// Seconds between reads with --watch.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Approve a gate (through the approval API, as you).
    Approve {
        /// The run id (its execution's name).
        run: String,
        /// The gate, as the plan names it (e.g. before-50, finalize).
        gate: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        /// Print the API's answer as JSON instead of a sentence.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Reject a gate (through the approval API, as you).
    Reject {
        /// The run id (its execution's name).
        run: String,
        /// The gate, as the plan names it (e.g. before-50, finalize).
        gate: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        /// Print the API's answer as JSON instead of a sentence.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// The run's report (as `local run --json` prints it) from its audit trail; `--html FILE`
    /// also writes the page with its timeline.
    Report {
        /// The run id (its execution's name).
        run: String,
        /// Also write the report as an HTML page here.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Hold a run: no bake ends until `run resume` (health checks, abort and rollback go on),
    /// for at most the plan's controls.maxHoldSeconds; past it the run rolls back.
    Hold(Steer),
    /// Resume a held run: the bake in progress ends at its next healthy round once due.
    Resume(Steer),
    /// Make the bake in progress last SECONDS longer (counted against controls.maxHoldSeconds).
    ExtendBake {
        #[command(flatten)]
        steer: Steer,
        /// How much longer, in seconds.
        seconds: u64,
    },
    /// End the bake in progress at its next healthy round (never a gate: the next step's
    /// approval still asks; never before the first bake's DNS floor).
    Promote {
        #[command(flatten)]
        steer: Steer,
        /// Then go to the last step's weight at once (the plan's controls.allowPromoteFull, and
        /// no later step may ask a gate); the last step's bake still runs.
        #[arg(long)]
        full: bool,
    },
    /// Abort a run: it stops at its next check and rolls back if traffic moved.
    Abort {
        /// The run id (its execution's name).
        run: String,
        /// Why, for the audit trail and the page.
        #[arg(long)]
        reason: String,
        /// Print the API's answer as JSON instead of a sentence.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        stack: StackArgs,
    },
}

/// What every mid-run control takes: the run, why, how to answer, and where the stack is.
#[derive(Args)]
pub struct Steer {
    /// The run id (its execution's name).
    pub run: String,
    /// Why, for the audit trail.
    #[arg(long)]
    pub reason: String,
    /// Print the API's answer as JSON instead of a sentence.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub stack: StackArgs,
}

/// `cutover run …`: exit 0 done, 1 AWS or the API refused (one line says why), 2 invalid input.
#[cfg(feature = "aws")]
pub fn run_command(command: RunCommand) -> ExitCode {
    use cutover_cli::deployed;
    // Success in words (or the answer as JSON with --json); a refusal is one line on stderr.
    let answered = |r: Result<(u16, serde_json::Value), String>,
                    json: bool,
                    words: &dyn Fn(&serde_json::Value) -> String| match r {
        Ok((s, body)) if (200..300).contains(&s) => {
            if json {
                println!("{body}");
            } else {
                println!("{}", words(&body));
            }
            ExitCode::SUCCESS
        }
        Ok((s, body)) => {
            let why = body["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string());
            eprintln!("error: the approval API answered {s}: {why}");
            ExitCode::from(1)
        }
        Err(e) => fail(e),
    };
    // One request to the approval API as the caller, answered in words (or JSON).
    let post = |stack: &StackArgs,
                path: &str,
                body: &serde_json::Value,
                json: bool,
                words: &dyn Fn(&serde_json::Value) -> String| {
        match stack.connect() {
            Ok(cx) => answered(deployed::api_post(&cx, path, body), json, words),
            Err(e) => fail(e),
        }
    };
    let decision =
        |run: &str, gate: &str, d: &str, reason: Option<String>, json: bool, stack: &StackArgs| {
            let mut body = serde_json::json!({ "decision": d });
            if let Some(r) = reason {
                body["reason"] = serde_json::json!(r);
            }
            post(
                stack,
                &format!("runs/{run}/approvals/{gate}"),
                &body,
                json,
                &|b| decision_words(run, gate, d, b),
            )
        };
    // `extra`: `seconds` for extend-bake, `full` for promote --full.
    let control = |steer: &Steer, action: &str, extra: Option<(&str, serde_json::Value)>| {
        let mut body = serde_json::json!({ "action": action, "reason": steer.reason });
        if let Some((k, v)) = extra {
            body[k] = v;
        }
        let run = &steer.run;
        post(
            &steer.stack,
            &format!("runs/{run}/controls"),
            &body,
            steer.json,
            &|b| control_words(run, b),
        )
    };
    match command {
        RunCommand::Logs {
            run,
            follow,
            interval,
            environment,
            json,
            stack,
        } => {
            let cx = match stack.connect() {
                Ok(cx) => cx,
                Err(e) => return fail(e),
            };
            let env = match deployed::log_environment(&cx, environment.as_deref()) {
                Ok(e) => e,
                Err(e) => return fail(e),
            };
            let mut after = 0i64;
            let mut printed = std::collections::HashSet::new();
            loop {
                // Read whether the run ended before its lines, so none written before the end
                // is missed by the last read.
                let ended = !follow || deployed::run_ended(&cx, &run).unwrap_or(false);
                let lines = match deployed::run_logs(&cx, &env, &run, after) {
                    Ok(l) => l,
                    Err(e) => return fail(e),
                };
                for l in &lines {
                    // A line of the last millisecond read is read again: print it once.
                    if !printed.insert((l.at, l.function.clone(), l.message.clone())) {
                        continue;
                    }
                    if json {
                        println!("{}", serde_json::to_string(l).unwrap_or_default());
                    } else {
                        println!(
                            "{} {:<22} {}",
                            l.at.format("%H:%M:%S%.3f"),
                            l.function,
                            l.message
                        );
                    }
                    after = after.max(l.at.timestamp_millis());
                }
                if ended {
                    return ExitCode::SUCCESS;
                }
                std::thread::sleep(std::time::Duration::from_secs(interval.max(1)));
            }
        }
        RunCommand::Preflight { plan, json, stack } => {
            let p = match load_plan(&plan) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let cx = match stack.connect() {
                Ok(cx) => cx,
                Err(e) => return fail(e),
            };
            let found = match deployed::preflight(&cx, &p) {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
            if json {
                println!("{}", serde_json::to_string(&found).unwrap_or_default());
            } else {
                print!("{}", preflight_words(&p, &found));
            }
            if found.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        RunCommand::Start {
            plan,
            run_id,
            json,
            stack,
        } => {
            let p = match load_plan(&plan) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let run_id = run_id.unwrap_or_else(|| {
                format!(
                    "{}-{}",
                    p.application,
                    chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
                )
            });
            let cx = match stack.connect() {
                Ok(cx) => cx,
                Err(e) => return fail(e),
            };
            match deployed::start(&cx, &p, &run_id) {
                Ok(arn) if json => {
                    println!(
                        "{}",
                        serde_json::json!({"runId": run_id, "executionArn": arn})
                    );
                    ExitCode::SUCCESS
                }
                Ok(arn) => {
                    println!("{run_id} started: {arn}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        RunCommand::Status {
            run,
            json,
            watch: true,
            interval,
            stack,
        } => {
            use std::io::IsTerminal;
            let tty = std::io::stdout().is_terminal();
            let mut last = String::new();
            let cx = match stack.connect() {
                Ok(cx) => cx,
                Err(e) => return fail(e),
            };
            loop {
                let s = match deployed::status(&cx, &run) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                };
                let shown = if json {
                    s.to_string()
                } else {
                    deployed::describe(&s)
                };
                if tty {
                    println!("\x1b[2J\x1b[H{shown}");
                } else if shown != last {
                    println!("{shown}");
                }
                last = shown;
                if let Some(outcome) = s["outcome"].as_str() {
                    // The run's outcome code, as `local run` ends with it.
                    let code = cutover_cli::report::outcome_exit_code(outcome);
                    return ExitCode::from(u8::try_from(code).unwrap_or(1));
                }
                std::thread::sleep(std::time::Duration::from_secs(interval.max(1)));
            }
        }
        RunCommand::Status {
            run, json, stack, ..
        } => match stack.connect().and_then(|cx| deployed::status(&cx, &run)) {
            Ok(s) if json => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Ok(s) => {
                println!("{}", deployed::describe(&s));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        RunCommand::Approve {
            run,
            gate,
            reason,
            json,
            stack,
        } => decision(&run, &gate, "approve", reason, json, &stack),
        RunCommand::Reject {
            run,
            gate,
            reason,
            json,
            stack,
        } => decision(&run, &gate, "reject", reason, json, &stack),
        RunCommand::Report { run, html, stack } => {
            match stack.connect().and_then(|cx| deployed::report(&cx, &run)) {
                Ok(r) => {
                    if let Some(path) = html {
                        if let Err(e) = std::fs::write(&path, cutover_cli::html::render(&r)) {
                            eprintln!("error: {}: {e}", path.display());
                            return ExitCode::from(1);
                        }
                    }
                    println!("{r}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        RunCommand::Hold(steer) => control(&steer, "hold", None),
        RunCommand::Resume(steer) => control(&steer, "resume", None),
        RunCommand::ExtendBake { steer, seconds } => control(
            &steer,
            "extend-bake",
            Some(("seconds", serde_json::json!(seconds))),
        ),
        RunCommand::Promote { steer, full } => control(
            &steer,
            "promote",
            full.then(|| ("full", serde_json::json!(true))),
        ),
        RunCommand::Abort {
            run,
            reason,
            json,
            stack,
        } => post(
            &stack,
            &format!("runs/{run}/abort"),
            &serde_json::json!({ "reason": reason }),
            json,
            &|b| abort_words(&run, &reason, b),
        ),
    }
}

/// What the pre-flight found, in lines: each problem, or that the run would start; what DNS
/// serves now; which of the stack's bounds were checked; that nothing was changed.
#[cfg(feature = "aws")]
fn preflight_words(
    plan: &cutover_core::plan::Plan,
    f: &cutover_cli::deployed::Preflight,
) -> String {
    let mut out = String::new();
    if f.problems.is_empty() {
        out.push_str(&format!(
            "{}: pre-flight passed; a run would start\n",
            plan.application
        ));
    } else {
        out.push_str(&format!(
            "{}: a run would be refused at pre-flight ({} problem(s)):\n",
            plan.application,
            f.problems.len()
        ));
        for p in &f.problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    if plan.dns.is_some() {
        out.push_str(&format!(
            "DNS serves {} record set(s) for {}\n",
            f.records.len(),
            plan.route_name()
        ));
    }
    match (&f.allowed_record_names, &f.allowed_hosted_zone_ids) {
        (Some(r), Some(z)) => out.push_str(&format!(
            "checked against the stack's AllowedRecordNames ({}) and AllowedHostedZoneIds ({})\n",
            r.join(", "),
            z.join(", ")
        )),
        _ => out.push_str("the stack's bounds were not checked: give --stack to read them\n"),
    }
    out.push_str("nothing was changed\n");
    out
}

/// What a decision did, in a sentence: the API's answer where it says more than the request.
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
pub fn decision_words(run: &str, gate: &str, decision: &str, answer: &serde_json::Value) -> String {
    let done = if decision == "approve" {
        "approved"
    } else {
        "rejected"
    };
    if let Some(waiting) = answer["waitingFor"].as_str() {
        let by: Vec<&str> = answer["approvedBy"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        return format!(
            "{run}: gate {gate} approved by {}; it still waits for {waiting}",
            by.join(", ")
        );
    }
    let by = answer["by"]
        .as_str()
        .map(|b| format!(" by {b}"))
        .unwrap_or_default();
    format!("{run}: gate {gate} {done}{by}")
}

/// What an abort request did, in a sentence.
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
pub fn abort_words(run: &str, reason: &str, answer: &serde_json::Value) -> String {
    let failed = answer["gatesFailed"].as_array().map_or(0, Vec::len);
    let gates = match failed {
        0 => String::new(),
        1 => "; its open gate was failed".into(),
        n => format!("; its {n} open gates were failed"),
    };
    format!(
        "{run}: abort requested ({reason}){gates}. The run stops at its next check and rolls back if traffic moved; follow it with `cutover run status {run} --watch`"
    )
}

/// A control's answer in words: what it changed, then how to follow the run.
#[cfg(feature = "aws")]
pub fn control_words(run: &str, answer: &serde_json::Value) -> String {
    format!(
        "{run}: {} Hold budget left: {}s. Follow it with `cutover run status {run} --watch`",
        answer["message"].as_str().unwrap_or("done."),
        answer["holdSecondsLeft"].as_u64().unwrap_or(0)
    )
}

#[cfg(not(feature = "aws"))]
pub fn run_command(_: RunCommand) -> ExitCode {
    super::stack::unavailable()
}

#[cfg(feature = "aws")]
pub fn runs_list(
    application: Option<String>,
    active: bool,
    json: bool,
    stack: StackArgs,
) -> ExitCode {
    match stack
        .connect()
        .and_then(|cx| cutover_cli::deployed::list(&cx, application.as_deref(), active))
    {
        Ok(runs) if json => {
            println!("{}", serde_json::Value::Array(runs));
            ExitCode::SUCCESS
        }
        Ok(runs) => {
            for r in runs {
                println!(
                    "{:<40} {:<20} {:<22} {:<16} {}",
                    r["runId"].as_str().unwrap_or(""),
                    r["application"].as_str().unwrap_or(""),
                    r["phase"].as_str().unwrap_or(""),
                    r["outcome"].as_str().unwrap_or("(running)"),
                    r["startedAt"].as_str().unwrap_or("")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(not(feature = "aws"))]
pub fn runs_list(_: Option<String>, _: bool, _: bool, _: StackArgs) -> ExitCode {
    super::stack::unavailable()
}

#[cfg(test)]
mod tests {
    use super::{abort_words, decision_words};
    use serde_json::json;

    #[test]
    fn decisions_and_aborts_read_as_sentences() {
        assert_eq!(
            decision_words(
                "orders-1",
                "before-50",
                "approve",
                &json!({"decision": "approve", "by": "arn:aws:iam::123456789012:user/alice"})
            ),
            "orders-1: gate before-50 approved by arn:aws:iam::123456789012:user/alice"
        );
        assert_eq!(
            decision_words(
                "orders-1",
                "finalize",
                "approve",
                &json!({"approvedBy": ["alice"], "waitingFor": "a second, different approver"})
            ),
            "orders-1: gate finalize approved by alice; it still waits for a second, different approver"
        );
        let abort = abort_words(
            "orders-1",
            "change freeze",
            &json!({"gatesFailed": ["before-50"], "gatesNotFailed": []}),
        );
        assert!(
            abort.starts_with(
                "orders-1: abort requested (change freeze); its open gate was failed."
            ),
            "{abort}"
        );
    }
}
