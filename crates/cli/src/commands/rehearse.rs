//! `cutover rehearse`: the built functions, the template's environment and roles, and the real
//! state machines, run offline against an AWS-compatible endpoint (see `cutover_cli::rehearse`).

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct RehearseArgs {
    /// The `sam build` output: one directory per function's logical id with its `bootstrap`.
    #[arg(long, default_value = ".aws-sam/build")]
    pub build_dir: PathBuf,
    /// The SAM template whose environment, roles and state machines are rehearsed.
    #[arg(long, default_value = "template.yaml")]
    pub template: PathBuf,
    /// The AWS-compatible endpoint for DynamoDB, Route 53, DMS, SNS and Scheduler (a local moto
    /// server: `moto_server -p 5000`, then `--aws-endpoint-url http://127.0.0.1:5000`).
    #[arg(long, env = "CUTOVER_MOTO_ENDPOINT")]
    pub aws_endpoint_url: String,
    /// Where the functions' logs and the recorded calls (calls.json) are written.
    #[arg(long, default_value = "rehearsal")]
    pub out: PathBuf,
    /// Run only these scenarios (repeatable): dms-approved-iam, dms-rejected-jwt,
    /// alarm-rollback, mgn, data-cutover, credentials, safety-net, wave-scheduled, calendar, init-error.
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Stack parameters over the template's defaults, as NAME=VALUE (repeatable).
    #[arg(long = "parameter")]
    pub parameters: Vec<String>,
    /// The fraction of their time Wait states and retry delays last (the plans' own waits are
    /// already at their minimum of one second).
    #[arg(long, default_value_t = 0.02)]
    pub wait_scale: f64,
    /// The whole report (scenarios, findings, unused grants, every recorded call) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "aws")]
pub fn run(a: RehearseArgs) -> ExitCode {
    use cutover_cli::rehearse::{rehearse, RehearseOptions, SCENARIOS};
    let mut parameters = std::collections::HashMap::new();
    for p in &a.parameters {
        let Some((k, v)) = p.split_once('=') else {
            eprintln!("error: --parameter {p}: expected NAME=VALUE");
            return ExitCode::from(2);
        };
        parameters.insert(k.to_string(), v.to_string());
    }
    if let Some(s) = a
        .scenarios
        .iter()
        .find(|s| !SCENARIOS.contains(&s.as_str()))
    {
        eprintln!("error: --scenario {s}: not one of {}", SCENARIOS.join(", "));
        return ExitCode::from(2);
    }
    if !(a.wait_scale > 0.0 && a.wait_scale <= 1.0) {
        eprintln!("error: --wait-scale {}: must be in (0, 1]", a.wait_scale);
        return ExitCode::from(2);
    }
    let opts = RehearseOptions {
        build_dir: a.build_dir,
        template: a.template,
        endpoint: a.aws_endpoint_url,
        out: a.out,
        only: a.scenarios,
        wait_scale: a.wait_scale,
        parameters,
        progress: !a.json,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let report = match rt.block_on(rehearse(opts)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    let passed = report.scenarios.iter().filter(|s| s.passed).count();
    eprintln!(
        "rehearse: {passed} of {} scenarios passed, {} AWS calls recorded, {} granted actions unused ({} justified), {:.1} s",
        report.scenarios.len(),
        report.calls.len(),
        report.unused_grants.len(),
        report.unused_grants.iter().filter(|u| u.justification.is_some()).count(),
        report.seconds
    );
    for f in &report.findings {
        eprintln!("finding: {f}");
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(not(feature = "aws"))]
pub fn run(_: RehearseArgs) -> ExitCode {
    super::stack::unavailable()
}
