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
    happy_path(&ep);
    rollback_restores_the_exact_record(&ep);
}

fn happy_path(ep: &str) {
    let r = run("dms-happy-path", &unique("happy"), ep);
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
    let r = run("health-failure-rollback", &unique("rollback"), ep);
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
        }]
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
                "--state-machine-arn",
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
}
