//! `cutover local run --aws-endpoint-url`: the happy path and the rollback example with the run
//! store, Route 53 and DMS going through the SDK adapters to moto (started by `scripts/test`,
//! endpoint in CUTOVER_MOTO_ENDPOINT; CUTOVER_SKIP_WIRE=1 skips explicitly).

use cutover_cli::{load_plan, load_world, run_local, RunOptions};
use cutover_core::model::{RecordSet, RecordType};
use std::path::Path;

fn endpoint() -> Option<String> {
    match std::env::var("CUTOVER_MOTO_ENDPOINT") {
        Ok(e) => Some(e),
        Err(_) if std::env::var("CUTOVER_SKIP_WIRE").as_deref() == Ok("1") => None,
        Err(_) => panic!("CUTOVER_MOTO_ENDPOINT is not set: run ./scripts/test (it starts moto), or set CUTOVER_SKIP_WIRE=1"),
    }
}

fn run(example: &str, run_id: &str, endpoint: &str) -> cutover_cli::local::LocalRun {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(example);
    let plan = load_plan(&dir.join("plan.yaml")).unwrap();
    let world = load_world(&dir.join("world.yaml")).unwrap();
    let opts = RunOptions {
        aws_endpoint_url: Some(endpoint.into()),
        run_id: Some(run_id.into()),
        ..Default::default()
    };
    run_local(&plan, &world, &opts).expect("seeded")
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{prefix}-{n}-{}", std::process::id())
}

/// One test: both examples seed the same DMS task ARN, so they must not run at once.
#[test]
fn examples_through_the_sdk_adapters() {
    let Some(ep) = endpoint() else { return };
    let happy = unique("happy");
    happy_path(&ep, &happy);
    run_commands_read_and_start_runs(&ep, &happy);
    a_stack_name_finds_the_outputs_and_waves_start_and_report(&ep, &happy);
    rollback_restores_the_exact_record(&ep);
    preflight_reads_the_account_and_the_stacks_bounds(&ep);
}

fn cutover(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args(args)
        .output()
        .unwrap()
}

fn sdk(ep: &str) -> (tokio::runtime::Runtime, aws_config::SdkConfig) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sdk = rt.block_on(
        cutover_aws::sdk_loader()
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(ep)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "t",
            ))
            .load(),
    );
    (rt, sdk)
}

/// A CloudFormation stack on the endpoint from `template`, with `parameters`: its name.
fn create_stack(
    rt: &tokio::runtime::Runtime,
    sdk: &aws_config::SdkConfig,
    prefix: &str,
    template: &serde_json::Value,
    parameters: &[(&str, &str)],
) -> String {
    let name = unique(prefix);
    let parameters = parameters
        .iter()
        .map(|(k, v)| {
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key(*k)
                .parameter_value(*v)
                .build()
        })
        .collect();
    rt.block_on(
        aws_sdk_cloudformation::Client::new(sdk)
            .create_stack()
            .stack_name(&name)
            .template_body(template.to_string())
            .set_parameters(Some(parameters))
            .send(),
    )
    .unwrap();
    name
}

/// `--stack NAME` reads the stack's outputs (CloudFormation DescribeStacks on moto); `wave
/// start` starts the wave machine with the wave file, `wave status` lists its applications' runs.
fn a_stack_name_finds_the_outputs_and_waves_start_and_report(ep: &str, run_id: &str) {
    let table = format!("cutover-local-{}", run_id.to_ascii_lowercase());
    let (rt, sdk) = sdk(ep);
    let machine = |rt: &tokio::runtime::Runtime| {
        rt.block_on(
            aws_sdk_sfn::Client::new(&sdk)
                .create_state_machine()
                .name(unique("waves"))
                .definition(r#"{"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#)
                .role_arn("arn:aws:iam::123456789012:role/cutover")
                .send(),
        )
        .unwrap()
        .state_machine_arn()
        .to_string()
    };
    let wave_machine = machine(&rt);
    let template = serde_json::json!({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "RunTableName": {"Value": table},
            "WaveStateMachineArn": {"Value": wave_machine},
            "WaveSchedulerRoleArn": {"Value": "arn:aws:iam::123456789012:role/cutover-wave-scheduler"},
            "ApprovalApiUrl": {"Value": "https://api.example.com"},
        }
    });
    let stack = create_stack(&rt, &sdk, "cutover-stack", &template, &[]);

    let status = cutover(&[
        "run",
        "status",
        run_id,
        "--json",
        "--stack",
        &stack,
        "--aws-endpoint-url",
        ep,
    ]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["outcome"], "completed", "{s}");
    assert!(
        s["timeInPhaseSeconds"].is_null(),
        "an ended run has no time in phase: {s}"
    );
    // Green holds the last of the plan's three steps; nothing comes next.
    assert_eq!(
        (s["step"].as_u64(), s["steps"].as_u64()),
        (Some(3), Some(3)),
        "{s}"
    );
    assert_eq!(s["nextAction"], "nothing: the run ended completed", "{s}");
    // A flag wins over the output.
    let wrong = cutover(&[
        "runs",
        "list",
        "--stack",
        &stack,
        "--table",
        "no-such-table",
        "--aws-endpoint-url",
        ep,
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    // The stack has no CutoverStateMachineArn output: say so, and name the flag.
    let start = cutover(&[
        "run",
        "start",
        "--plan",
        "examples/dms-happy-path/plan.yaml",
        "--stack",
        &stack,
        "--aws-endpoint-url",
        ep,
    ]);
    let err = String::from_utf8_lossy(&start.stderr);
    assert_eq!(start.status.code(), Some(1));
    assert!(
        err.contains("no CutoverStateMachineArn output") && err.contains("--state-machine-arn"),
        "{err}"
    );
    let missing = cutover(&[
        "runs",
        "list",
        "--stack",
        "no-such-stack",
        "--aws-endpoint-url",
        ep,
    ]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("no-such-stack"), "{err}");

    let name = unique("wave-12");
    let started = cutover(&[
        "wave",
        "start",
        "--wave",
        "examples/wave-12/wave.yaml",
        "--name",
        &name,
        "--json",
        "--stack",
        &stack,
        "--aws-endpoint-url",
        ep,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let started: serde_json::Value = serde_json::from_slice(&started.stdout).unwrap();
    assert_eq!(started["name"], name.as_str());
    assert!(started["executionArn"]
        .as_str()
        .unwrap()
        .contains(":execution:"));
    let status = cutover(&[
        "wave",
        "status",
        &name,
        "--json",
        "--stack",
        &stack,
        "--aws-endpoint-url",
        ep,
    ]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["status"], "RUNNING", "{s}");
    let spec = cutover_cli::wave::load_wave(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/wave-12/wave.yaml"
    )))
    .unwrap();
    let apps = s["applications"].as_array().unwrap();
    assert_eq!(apps.len(), spec.applications.len());
    assert!(apps.iter().all(|a| a["phase"] == "not started"), "{s}");
    let text = cutover(&[
        "wave",
        "status",
        &name,
        "--stack",
        &stack,
        "--aws-endpoint-url",
        ep,
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&spec.applications[0].application), "{text}");
    let bad = cutover(&[
        "wave",
        "start",
        "--wave",
        "examples/wave-12/world.yaml",
        "--stack",
        &stack,
        "--aws-endpoint-url",
        ep,
    ]);
    assert_eq!(bad.status.code(), Some(2));

    // `waves schedule --stack`: the wave machine and the scheduler's role come from the outputs.
    let dir = std::env::temp_dir().join(format!("cutover-stack-schedule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wave_name = unique("w");
    let wave = dir.join("wave.yaml");
    std::fs::write(
        &wave,
        format!(
            "wave: {wave_name}\nwindow: {{notBefore: \"2030-01-05T02:00:00Z\", notAfter: \"2030-01-05T06:00:00Z\"}}\napplications:\n  - {{plan: {}}}\n",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/wave-12/plans/db-core.yaml")
                .display()
        ),
    )
    .unwrap();
    let wave = wave.to_str().unwrap();
    let scheduled = cutover(&[
        "waves",
        "schedule",
        "--wave",
        wave,
        "--at",
        "2030-01-05T02:30:00Z",
        "--stack",
        &stack,
        "--aws-endpoint-url",
        ep,
    ]);
    assert!(
        scheduled.status.success(),
        "{}",
        String::from_utf8_lossy(&scheduled.stderr)
    );
    let created = rt
        .block_on(
            aws_sdk_scheduler::Client::new(&sdk)
                .get_schedule()
                .name(&wave_name)
                .send(),
        )
        .unwrap();
    let target = created.target().unwrap();
    assert_eq!(target.arn(), wave_machine);
    assert_eq!(
        target.role_arn(),
        "arn:aws:iam::123456789012:role/cutover-wave-scheduler"
    );
    // A flag wins over the output; without either, the missing output is named with its flag.
    let no_role = cutover(&[
        "waves",
        "schedule",
        "--wave",
        wave,
        "--at",
        "2030-01-05T02:30:00Z",
        "--wave-state-machine-arn",
        &wave_machine,
        "--aws-endpoint-url",
        ep,
    ]);
    let err = String::from_utf8_lossy(&no_role.stderr);
    assert_eq!(no_role.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--role-arn") && err.contains("WaveSchedulerRoleArn"),
        "{err}"
    );
}

/// `cutover run status` reads the run the happy path left in DynamoDB; `run start` starts an
/// execution of a state machine in Step Functions (moto), once per run id.
fn run_commands_read_and_start_runs(ep: &str, run_id: &str) {
    let table = format!("cutover-local-{}", run_id.to_ascii_lowercase());
    let status = cutover(&[
        "run",
        "status",
        run_id,
        "--json",
        "--table",
        &table,
        "--aws-endpoint-url",
        ep,
    ]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["outcome"], "completed");
    assert_eq!(s["weights"]["green"], 100);
    assert_eq!(s["pendingGates"], serde_json::json!([]));
    let human = cutover(&[
        "run",
        "status",
        run_id,
        "--table",
        &table,
        "--aws-endpoint-url",
        ep,
    ]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("weights blue 0 / green 100"));
    let watched = cutover(&[
        "run",
        "status",
        run_id,
        "--watch",
        "--table",
        &table,
        "--aws-endpoint-url",
        ep,
    ]);
    assert!(
        watched.status.success(),
        "a closed run ends the watch at once"
    );
    assert_eq!(
        String::from_utf8_lossy(&watched.stdout)
            .matches("phase ")
            .count(),
        1
    );
    let listed = cutover(&[
        "runs",
        "list",
        "--json",
        "--table",
        &table,
        "--aws-endpoint-url",
        ep,
    ]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let runs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
    assert_eq!(runs[0]["runId"], run_id);
    let active = cutover(&[
        "runs",
        "list",
        "--active",
        "--json",
        "--table",
        &table,
        "--aws-endpoint-url",
        ep,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&active.stdout).trim(),
        "[]",
        "the run is closed"
    );
    let page = std::env::temp_dir().join(format!("{run_id}.html"));
    let report = cutover(&[
        "run",
        "report",
        run_id,
        "--html",
        page.to_str().unwrap(),
        "--table",
        &table,
        "--aws-endpoint-url",
        ep,
    ]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(r["outcome"], "completed");
    assert_eq!(
        r["timeline"].as_array().unwrap().last().unwrap()["event"],
        "run-closed"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"series-weight\"") && html.contains("id=\"series-lag\""));
    // A deployed run's page: its start in UTC, the snapshot validate-cutover saved, no data
    // section for a run without a data mode, and never a "null".
    assert!(r["startedAt"].is_string(), "{r}");
    assert!(!r["snapshot"].as_array().unwrap().is_empty(), "{r}");
    assert!(html.contains("started ") && html.contains(" UTC"), "{html}");
    assert!(
        html.contains("id=\"dns-snapshot\"><li>"),
        "the snapshot is listed"
    );
    assert!(!html.contains("id=\"data\""), "no data mode ran");
    assert!(!html.contains("null"), "{html}");
    let missing = cutover(&[
        "run",
        "status",
        "no-such-run",
        "--table",
        &table,
        "--aws-endpoint-url",
        ep,
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-run not found"));

    // A state machine to start: any definition will do for StartExecution.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let machine = rt.block_on(async {
        let sdk = cutover_aws::sdk_loader()
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(ep)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "t",
            ))
            .load()
            .await;
        aws_sdk_sfn::Client::new(&sdk)
            .create_state_machine()
            .name(unique("cutover"))
            .definition(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#)
            .role_arn("arn:aws:iam::123456789012:role/cutover")
            .send()
            .await
            .unwrap()
            .state_machine_arn()
            .to_string()
    });
    let id = unique("orders");
    let start = |id: &str| {
        cutover(&[
            "run",
            "start",
            "--plan",
            "examples/dms-happy-path/plan.yaml",
            "--run-id",
            id,
            "--state-machine-arn",
            &machine,
            "--aws-endpoint-url",
            ep,
        ])
    };
    let started = start(&id);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert!(String::from_utf8_lossy(&started.stdout).contains(":execution:"));
    // StartExecution is idempotent on the name for the same input (API_StartExecution): a
    // repeated start of one run id is that same execution, never a second run.
    let again = start(&id);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(again.stdout, started.stdout, "the same execution");
    let bad = cutover(&[
        "run",
        "start",
        "--plan",
        "examples/README-missing.yaml",
        "--state-machine-arn",
        &machine,
        "--aws-endpoint-url",
        ep,
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

fn happy_path(ep: &str, run_id: &str) {
    let r = run("dms-happy-path", run_id, ep);
    assert_eq!(
        r.report.outcome, "completed",
        "{:?} {:?}",
        r.report.error, r.report.cause
    );
    let ids: Vec<(Option<String>, Option<u32>)> = r
        .report
        .dns
        .iter()
        .map(|d| (d.set_identifier.clone(), d.weight))
        .collect();
    assert_eq!(
        ids,
        vec![
            (Some("blue".into()), Some(0)),
            (Some("green".into()), Some(100))
        ],
        "read back from the endpoint"
    );
    // The trail was written to and read back from DynamoDB.
    let events: Vec<&str> = r.report.timeline.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events.first(), Some(&"validated"));
    assert_eq!(events.last(), Some(&"run-closed"));
    assert_eq!(
        events.iter().filter(|e| **e == "weights-changed").count(),
        3
    );
    assert_eq!(
        r.report.approvals.len(),
        1,
        "the approval item round-tripped through DynamoDB"
    );
    assert_eq!(
        r.report.world.dns_changes_applied, 0,
        "no DNS change went to the simulated Route 53"
    );
}

fn rollback_restores_the_exact_record(ep: &str) {
    let run_id = unique("rollback");
    let r = run("health-failure-rollback", &run_id, ep);
    assert_eq!(r.report.outcome, "rolled_back");
    assert_eq!(r.report.error.as_deref(), Some("HealthCheckFailed"));
    assert_eq!(
        r.report.dns,
        vec![RecordSet {
            name: "orders.example.com.".into(),
            record_type: RecordType::CNAME,
            set_identifier: None,
            weight: None,
            ttl: Some(300),
            values: vec!["blue-lb.example.com".into()],
            alias_target: None,
            health_check_id: None,
            failover: None,
            region: None,
            geo_location: None,
            multi_value_answer: None,
            cidr_routing_config: None,
        }]
    );
    // `run status --watch` ends with the run's outcome code, as `local run` does: 3, rolled back.
    let table = format!("cutover-local-{}", run_id.to_ascii_lowercase());
    let watched = cutover(&[
        "run",
        "status",
        &run_id,
        "--watch",
        "--table",
        &table,
        "--aws-endpoint-url",
        ep,
    ]);
    assert_eq!(
        watched.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
}

#[test]
fn a_wave_is_scheduled_inside_its_window() {
    let Some(ep) = endpoint() else { return };
    let dir = std::env::temp_dir().join(format!("cutover-schedule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plan =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wave-12/plans/db-core.yaml");
    let wave = dir.join("wave.yaml");
    std::fs::write(
        &wave,
        format!("wave: {}\nwindow: {{notBefore: \"2030-01-05T02:00:00Z\", notAfter: \"2030-01-05T06:00:00Z\"}}\napplications:\n  - {{plan: {}}}\n", unique("w"), plan.display()),
    )
    .unwrap();
    let run = |at: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args([
                "waves",
                "schedule",
                "--wave",
                wave.to_str().unwrap(),
                "--at",
                at,
            ])
            .args([
                "--wave-state-machine-arn",
                "arn:aws:states:us-east-1:123456789012:stateMachine:cutover-dev-wave",
            ])
            .args([
                "--role-arn",
                "arn:aws:iam::123456789012:role/cutover-wave-scheduler",
                "--aws-endpoint-url",
                &ep,
            ])
            .output()
            .unwrap()
    };
    let ok = run("2030-01-05T02:30:00Z");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("at(2030-01-05T02:30:00)"));
    let outside = run("2030-01-05T07:00:00Z");
    assert_eq!(outside.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&outside.stderr).contains("outside the wave's window"));
    // AWS unreachable: exit 1, as every command that talks to AWS.
    let unreachable = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["waves", "schedule", "--wave", wave.to_str().unwrap()])
        .args(["--at", "2030-01-05T02:30:00Z"])
        .args([
            "--wave-state-machine-arn",
            "arn:aws:states:us-east-1:123456789012:stateMachine:cutover-dev-wave",
            "--role-arn",
            "arn:aws:iam::123456789012:role/cutover-wave-scheduler",
            "--aws-endpoint-url",
            "http://127.0.0.1:1",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(
        unreachable.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&unreachable.stderr)
    );
}

/// `cutover run approve|reject|abort` go through the approval API, SigV4-signed for
/// `execute-api` with the caller's credentials; an API refusal is exit 1 with its message.
#[test]
fn run_decisions_are_signed_requests_to_the_approval_api() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for answer in [
            "HTTP/1.1 200 OK\r\ncontent-length: 22\r\n\r\n{\"decision\":\"approve\"}",
            "HTTP/1.1 403 Forbidden\r\ncontent-length: 24\r\n\r\n{\"error\":\"not approver\"}",
            "HTTP/1.1 200 OK\r\ncontent-length: 21\r\n\r\n{\"decision\":\"reject\"}",
            "HTTP/1.1 200 OK\r\ncontent-length: 45\r\n\r\n{\"message\":\"promoted.\",\"holdSecondsLeft\":600}",
        ] {
            let (mut sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = vec![0u8; 16384];
            let mut got = Vec::new();
            while let Ok(n) = sock.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let t = String::from_utf8_lossy(&got);
                if let Some(h) = t.find("\r\n\r\n") {
                    let len: usize = t[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= h + 4 + len {
                        break;
                    }
                }
            }
            sock.write_all(answer.as_bytes()).unwrap();
            seen.push(String::from_utf8_lossy(&got).to_string());
        }
        seen
    });
    // The CLI with static credentials: its requests are SigV4-signed.
    let signed = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            )
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap()
    };
    let approve = signed(&[
        "run",
        "approve",
        "orders-1",
        "before-50",
        "--reason",
        "looks good",
        "--api-url",
        &url,
    ]);
    assert!(
        approve.status.success(),
        "{}",
        String::from_utf8_lossy(&approve.stderr)
    );
    // Success in words, not the API's JSON.
    assert_eq!(
        String::from_utf8_lossy(&approve.stdout).trim(),
        "orders-1: gate before-50 approved"
    );
    let abort = signed(&[
        "run",
        "abort",
        "orders-1",
        "--reason",
        "change freeze",
        "--api-url",
        &url,
    ]);
    assert_eq!(abort.status.code(), Some(1));
    let why = String::from_utf8_lossy(&abort.stderr);
    assert!(why.contains("403") && why.contains("not approver"), "{why}");
    // An API behind the JWT authorizer: the token from the environment, as a bearer token.
    let reject = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["run", "reject", "orders-1", "before-50", "--api-url", &url])
        .env("CUTOVER_API_TOKEN", "eyJ.token.sig")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(
        reject.status.success(),
        "{}",
        String::from_utf8_lossy(&reject.stderr)
    );
    assert!(!String::from_utf8_lossy(&reject.stdout).contains("eyJ.token.sig"));
    assert_eq!(
        String::from_utf8_lossy(&reject.stdout).trim(),
        "orders-1: gate before-50 rejected"
    );
    assert!(!String::from_utf8_lossy(&reject.stderr).contains("eyJ.token.sig"));
    // A mid-run control: the controls route, its body, the answer in words.
    let promote = signed(&[
        "run",
        "promote",
        "orders-1",
        "--full",
        "--reason",
        "seen enough",
        "--api-url",
        &url,
    ]);
    assert!(
        promote.status.success(),
        "{}",
        String::from_utf8_lossy(&promote.stderr)
    );
    assert!(
        String::from_utf8_lossy(&promote.stdout)
            .starts_with("orders-1: promoted. Hold budget left: 600s."),
        "{}",
        String::from_utf8_lossy(&promote.stdout)
    );
    let seen = server.join().unwrap();
    assert!(
        seen[3].starts_with("POST /runs/orders-1/controls "),
        "{}",
        seen[3]
    );
    for part in [
        r#""action":"promote""#,
        r#""full":true"#,
        r#""reason":"seen enough""#,
    ] {
        assert!(seen[3].contains(part), "{part} in {}", seen[3]);
    }
    let bearer = seen[2].to_ascii_lowercase();
    assert!(
        bearer.contains("authorization: bearer eyj.token.sig\r\n"),
        "{}",
        seen[2]
    );
    assert!(
        !bearer.contains("aws4_request"),
        "not signed as well: {}",
        seen[2]
    );
    assert!(
        seen[0].starts_with("POST /runs/orders-1/approvals/before-50 "),
        "{}",
        seen[0]
    );
    assert!(
        seen[0].contains("/us-east-1/execute-api/aws4_request"),
        "{}",
        seen[0]
    );
    assert!(
        seen[0].ends_with(r#"{"decision":"approve","reason":"looks good"}"#),
        "{}",
        seen[0]
    );
    assert!(
        seen[1].starts_with("POST /runs/orders-1/abort "),
        "{}",
        seen[1]
    );
    assert!(
        !seen.iter().any(|r| r.contains("wJalrXUtnFEMI")),
        "the secret never travels"
    );
}

/// `cutover run preflight`: the pre-flight a run would make, against the account (moto), with the
/// stack's own bounds read from its parameters; nothing changes.
/// The problems a `run preflight --json` printed that start with `prefix`.
fn problems_starting(out: &std::process::Output, prefix: &str) -> Vec<String> {
    let found: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    found["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .filter(|p| p.starts_with(prefix))
        .collect()
}

fn preflight_reads_the_account_and_the_stacks_bounds(ep: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dms-happy-path");
    let plan = load_plan(&dir.join("plan.yaml")).unwrap();
    let spec = load_world(&dir.join("world.yaml")).unwrap();
    let world = std::sync::Arc::new(cutover_sim::World::new(
        spec.clone(),
        cutover_sim::SimClock::start(spec.start_time),
    ));
    let (rt, sdk) = sdk(ep);
    let seeded = rt
        .block_on(cutover_cli::aws_mode::seed(
            ep,
            &spec,
            world,
            &plan,
            &unique("preflight"),
        ))
        .unwrap();
    let zone = seeded.plan.dns.as_ref().unwrap().hosted_zone_id.clone();
    // The plan as the operator wrote it, in the zone moto assigned; no alarms (CloudWatch's
    // protocol is not one moto speaks).
    let text = std::fs::read_to_string(dir.join("plan.yaml"))
        .unwrap()
        .replace("Z0123456789", &zone)
        .replace("  alarms: [orders-green-5xx]\n", "");
    let plan_file = std::env::temp_dir().join(format!("{}.yaml", unique("preflight-plan")));
    std::fs::write(&plan_file, text).unwrap();
    let records = || {
        rt.block_on(
            aws_sdk_route53::Client::new(&sdk)
                .list_resource_record_sets()
                .hosted_zone_id(&zone)
                .send(),
        )
        .unwrap()
        .resource_record_sets()
        .len()
    };
    let before = records();
    let stack_approving = |names: &str, tag: Option<&str>, approvers: Option<&str>| {
        // String, not the template's CommaDelimitedList: moto answers a list parameter's value
        // as a Python list's text ("['a', 'b']"); a String keeps the comma-separated form the
        // stack's parameters are given in (ParameterValue is a string).
        let mut template = serde_json::json!({
            "Parameters": {
                "AllowedRecordNames": {"Type": "String"},
                "AllowedHostedZoneIds": {"Type": "String"},
            },
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        });
        if tag.is_some() {
            template["Parameters"]["CutoverTagValue"] = serde_json::json!({"Type": "String"});
        }
        let mut parameters = vec![
            ("AllowedRecordNames", names),
            ("AllowedHostedZoneIds", &zone),
        ];
        if let Some(t) = tag {
            parameters.push(("CutoverTagValue", t));
        }
        if let Some(a) = approvers {
            template["Parameters"]["ApiApprovers"] = serde_json::json!({"Type": "String"});
            parameters.push(("ApiApprovers", a));
            // The stack's account, read from its cutover machine's ARN as on a deployed stack.
            template["Outputs"] = serde_json::json!({"CutoverStateMachineArn": {
                "Value": "arn:aws:states:us-east-1:123456789012:stateMachine:cutover-bounds"}});
        }
        create_stack(&rt, &sdk, "cutover-bounds", &template, &parameters)
    };
    let stack_with = |names: &str, tag: Option<&str>| stack_approving(names, tag, None);
    let preflight = |stack: &str, json: bool| {
        let mut args = vec![
            "run",
            "preflight",
            "--plan",
            plan_file.to_str().unwrap(),
            "--stack",
            stack,
            "--aws-endpoint-url",
            ep,
        ];
        if json {
            args.push("--json");
        }
        cutover(&args)
    };

    // Within the stack's bounds: DNS serves the plan's blue and the DMS task is ready, so the one
    // problem left is green's health URL, which answers nothing from this machine.
    let inside = stack_with("billing.example.com,orders.example.com", None);
    let out = preflight(&inside, true);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<&str> = found["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("health.http[0]"), "{problems:?}");
    assert_eq!(found["records"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(
        found["allowedRecordNames"],
        serde_json::json!(["billing.example.com", "orders.example.com"])
    );

    // Who decides the plan's gate (before-50): with the stack's ApiApprovers empty nobody can,
    // and a plan entry the stack's list does not cover never can; both named.
    let problems_with = |approvers: &str, plan_approvers: Option<&str>| -> Vec<String> {
        let path = match plan_approvers {
            None => plan_file.clone(),
            Some(a) => {
                let p = std::env::temp_dir().join(format!("{}.yaml", unique("preflight-appr")));
                let text = std::fs::read_to_string(&plan_file).unwrap().replace(
                    "approvals: {expiresSeconds: 3600}",
                    &format!("approvals: {{expiresSeconds: 3600, approvers: [{a}]}}"),
                );
                std::fs::write(&p, text).unwrap();
                p
            }
        };
        let stack = stack_approving("orders.example.com", None, Some(approvers));
        let out = cutover(&[
            "run",
            "preflight",
            "--plan",
            path.to_str().unwrap(),
            "--stack",
            &stack,
            "--aws-endpoint-url",
            ep,
            "--json",
        ]);
        problems_starting(&out, "approvals")
    };
    let nobody = problems_with("", None);
    assert!(
        nobody.len() == 1 && nobody[0].contains("ApiApprovers is empty"),
        "{nobody:?}"
    );
    let ops = "arn:aws:iam::123456789012:role/Ops*";
    assert!(problems_with(ops, None).is_empty());
    // OpsLead exists in the account (made here; an earlier run may have made it already).
    let iam = aws_sdk_iam::Client::new(&sdk);
    let _ = rt.block_on(
        iam.create_role()
            .role_name("OpsLead")
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send(),
    );
    assert!(problems_with(ops, Some("\"arn:aws:iam::123456789012:role/OpsLead\"")).is_empty());
    // Its sessions are checked by the role.
    assert!(problems_with(
        ops,
        Some("\"arn:aws:sts::123456789012:assumed-role/OpsLead/alice\"")
    )
    .is_empty());
    // A role the stack's pattern covers but IAM does not know admits nobody: named.
    let gone = problems_with(ops, Some("\"arn:aws:iam::123456789012:role/OpsGone\""));
    assert!(
        gone.len() == 1
            && gone[0].starts_with("approvals.approvers[0]:")
            && gone[0].contains("NoSuchEntity"),
        "{gone:?}"
    );
    let outside = problems_with(ops, Some("\"arn:aws:iam::123456789012:role/Dev\""));
    assert!(
        outside[0].starts_with("approvals.approvers[0]:") && outside[0].contains("role/Dev"),
        "{outside:?}"
    );

    // Outside them: refused at pre-flight, naming the field and the parameter, in words.
    let outside = stack_with("billing.example.com", None);
    let out = preflight(&outside, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(
            "dns.recordName: 'orders.example.com' is not among the stack's AllowedRecordNames"
        ),
        "{text}"
    );
    assert!(text.contains("nothing was changed"), "{text}");
    assert_eq!(records(), before, "the pre-flight changed no record");

    // A stack whose roles touch only what carries cutover=<CutoverTagValue>: the seeded task
    // carries no tag, so the pre-flight names it; tagged, it passes.
    // A value of this run's own: moto keeps a deleted task's tags under its ARN.
    let tag_value = unique("allowed");
    let tagged = stack_with("orders.example.com", Some(&tag_value));
    let problems_of =
        |stack: &str| -> Vec<String> { problems_starting(&preflight(stack, true), "") };
    let before_tag = problems_of(&tagged);
    assert!(
        before_tag
            .iter()
            .any(|p| p.starts_with("replication.taskArn:")
                && p.contains(&format!("does not carry the tag cutover={tag_value}"))),
        "{before_tag:?}"
    );
    // moto has no AddTagsToResource for DMS: the task is made again, tagged at its creation
    // (moto's DMS answers carry ISO timestamps the SDK reads through the compat interceptor).
    let task = seeded.plan.replication.task_arn.clone().unwrap();
    let dms = cutover_aws::moto_compat::dms_client(&sdk);
    rt.block_on(async {
        dms.delete_replication_task()
            .replication_task_arn(&task)
            .send()
            .await
            .unwrap();
        let created = dms
            .create_replication_task()
            .replication_task_identifier(cutover_aws::metrics::task_resource_id(&task))
            .source_endpoint_arn("arn:aws:dms:us-east-1:123456789012:endpoint:SOURCE")
            .target_endpoint_arn("arn:aws:dms:us-east-1:123456789012:endpoint:TARGET")
            .replication_instance_arn("arn:aws:dms:us-east-1:123456789012:rep:CUTOVER-LOCAL")
            .migration_type(aws_sdk_databasemigration::types::MigrationTypeValue::FullLoadAndCdc)
            .table_mappings(r#"{"rules": []}"#)
            .tags(
                aws_sdk_databasemigration::types::Tag::builder()
                    .key("cutover")
                    .value(&tag_value)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            created
                .replication_task()
                .and_then(|t| t.replication_task_arn()),
            Some(task.as_str())
        );
    });
    let after_tag = problems_of(&tagged);
    assert!(
        after_tag
            .iter()
            .all(|p| !p.contains("does not carry the tag")),
        "{after_tag:?}"
    );

    // An alb plan: the rule its roles would change must carry the tag too (ELBv2 DescribeTags);
    // the rule and its listener are read, and green's healthy targets counted, changing nothing.
    let alb = rt
        .block_on(cutover_aws::moto_seed::seed_alb(
            &sdk,
            ep,
            &unique("pf")[..20],
            93,
        ))
        .unwrap();
    let dns_section = |text: &str| {
        let start = text.find("dns:\n").unwrap();
        let end = text[start..].find("traffic:").unwrap() + start;
        text[..start].to_string() + &text[end..]
    };
    let alb_plan = std::env::temp_dir().join(format!("{}.yaml", unique("preflight-alb")));
    let text = dns_section(&std::fs::read_to_string(&plan_file).unwrap())
        + &format!(
            "alb:\n  listenerArn: \"{}\"\n  ruleArn: \"{}\"\n  blue: {{targetGroupArn: \"{}\"}}\n  green: {{targetGroupArn: \"{}\"}}\n",
            alb.listener_arn, alb.rule_arn, alb.blue, alb.green
        );
    std::fs::write(&alb_plan, text).unwrap();
    let alb_problems = || -> Vec<String> {
        let out = cutover(&[
            "run",
            "preflight",
            "--plan",
            alb_plan.to_str().unwrap(),
            "--stack",
            &tagged,
            "--aws-endpoint-url",
            ep,
            "--json",
        ]);
        problems_starting(&out, "alb.")
    };
    let untagged_rule = alb_problems();
    assert!(
        untagged_rule.len() == 1
            && untagged_rule[0].starts_with("alb.ruleArn:")
            && untagged_rule[0].contains(&format!("does not carry the tag cutover={tag_value}")),
        "{untagged_rule:?}"
    );
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    rt.block_on(
        elbv2
            .add_tags()
            .resource_arns(&alb.rule_arn)
            .tags(
                aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                    .key("cutover")
                    .value(&tag_value)
                    .build(),
            )
            .send(),
    )
    .unwrap();
    assert_eq!(
        alb_problems(),
        Vec::<String>::new(),
        "tagged, the rule may be shifted"
    );

    // Data hooks: Lambda GetFunction finds the one that exists (made by a stack on moto) and
    // names, by field, the one Lambda does not know.
    let hook = unique("freeze-hook");
    let hooks = serde_json::json!({"Resources": {
        "HookRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
        "Hook": {"Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": hook, "Runtime": "python3.12", "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["HookRole", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context):\n    return {}\n"}}},
    }});
    create_stack(&rt, &sdk, "cutover-hooks", &hooks, &[]);
    let fn_arn = |name: &str| format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");
    let missing = unique("no-such-hook");
    let with_hooks = std::fs::read_to_string(&plan_file).unwrap()
        + &format!(
            "data:\n  writes: blue-until-switch\n  freeze: {{lambdaArn: \"{}\"}}\n  switch: {{lambdaArn: \"{}\"}}\n  unfreeze: {{lambdaArn: \"{}\"}}\n",
            fn_arn(&hook),
            fn_arn(&missing),
            fn_arn(&hook)
        );
    std::fs::write(&plan_file, with_hooks).unwrap();
    let with_hooks = problems_of(&tagged);
    let hook_problems: Vec<&String> = with_hooks
        .iter()
        .filter(|p| p.starts_with("data."))
        .collect();
    assert_eq!(hook_problems.len(), 1, "{with_hooks:?}");
    assert!(
        hook_problems[0].starts_with("data.switch.lambdaArn: Lambda has no function")
            && hook_problems[0].contains(&missing),
        "{hook_problems:?}"
    );
}

/// `cutover run logs`: the run's lines from every function's log group
/// (`/cutover/<Environment>/<function>`, CloudWatch Logs on moto), oldest first, with the
/// function that wrote each; another run's lines (even one whose id begins the same) are not
/// among them; the environment comes from `--environment` or the stack's parameter.
#[test]
fn run_logs_gathers_the_runs_lines_from_every_function() {
    let Some(ep) = endpoint() else { return };
    let (rt, sdk) = sdk(&ep);
    let env = unique("logs")
        .replace('-', "")
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let base = 1_796_436_000_000i64;
    let put = |function: &str, lines: &[(i64, &str)]| {
        let group = format!("/cutover/{env}/{function}");
        rt.block_on(async {
            logs.create_log_group()
                .log_group_name(&group)
                .send()
                .await
                .unwrap();
            logs.create_log_stream()
                .log_group_name(&group)
                .log_stream_name("2026/12/05/[$LATEST]0")
                .send()
                .await
                .unwrap();
            let mut req = logs
                .put_log_events()
                .log_group_name(&group)
                .log_stream_name("2026/12/05/[$LATEST]0");
            for (t, m) in lines {
                req = req.log_events(
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(base + t)
                        .message(*m)
                        .build()
                        .unwrap(),
                );
            }
            req.send().await.unwrap();
        });
    };
    put(
        "validate-cutover",
        &[
            (
                0,
                r#"{"level":"INFO","span":{"runId":"orders-1"},"fields":{"message":"step succeeded"}}"#,
            ),
            (
                5,
                r#"{"level":"INFO","span":{"runId":"orders-10"},"fields":{"message":"step succeeded"}}"#,
            ),
        ],
    );
    put(
        "shift-traffic",
        &[(
            2000,
            r#"{"level":"INFO","span":{"runId":"orders-1"},"fields":{"message":"weights 90/10"}}"#,
        )],
    );
    let read = |args: &[&str]| {
        let mut all = vec![
            "run",
            "logs",
            "orders-1",
            "--json",
            "--aws-endpoint-url",
            ep.as_str(),
        ];
        all.extend_from_slice(args);
        let out = cutover(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let lines = read(&["--environment", &env]);
    let seen: Vec<(&str, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["function"].as_str().unwrap(),
                l["message"].as_str().unwrap().contains("\"orders-1\""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("validate-cutover", true), ("shift-traffic", true)],
        "{lines:?}"
    );

    // The environment from the stack's parameter.
    let template = serde_json::json!({
        "Parameters": {"Environment": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    });
    let stack = create_stack(
        &rt,
        &sdk,
        "cutover-logs",
        &template,
        &[("Environment", &env)],
    );
    assert_eq!(read(&["--stack", &stack]), lines);
    // Without either, the missing piece is named.
    let none = cutover(&["run", "logs", "orders-1", "--aws-endpoint-url", &ep]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--environment"));
}
