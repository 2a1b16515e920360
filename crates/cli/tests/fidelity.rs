//! The setups real migrations have, run through the real `cutover.asl.json` over a simulated
//! world that behaves as AWS documents: alias records with health checks, DMS lag as the
//! end-to-end CDCLatencyTarget, tables in full load, stale datapoints, MGN's launch order,
//! flapping alarms, long original TTLs, a console start with a minimal plan, operators.

use cutover_cli::local::LocalRun;
use cutover_cli::{run_local, RunOptions};
use cutover_core::model::{AliasTarget, RecordSet, RecordType};
use cutover_core::plan::Plan;
use cutover_sim::WorldSpec;
use serde_json::json;
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

fn text(name: &str, file: &str) -> String {
    std::fs::read_to_string(example(name).join(file)).unwrap()
}

fn run_texts(plan: &str, world: &str) -> LocalRun {
    let plan = Plan::parse(plan, false).expect("plan");
    let world = WorldSpec::parse(world, false).expect("world");
    run_local(&plan, &world, &RunOptions::default()).expect("simulated run")
}

fn events(r: &LocalRun) -> Vec<(f64, String, String)> {
    r.report
        .timeline
        .iter()
        .map(|e| (e.t, e.event.clone(), e.message.clone()))
        .collect()
}

fn first(r: &LocalRun, event: &str) -> Option<f64> {
    r.report
        .timeline
        .iter()
        .find(|e| e.event == event)
        .map(|e| e.t)
}

fn alias(id: Option<&str>, w: Option<u32>, lb: &str, check: Option<&str>) -> RecordSet {
    RecordSet {
        name: "shop.example.com.".into(),
        record_type: RecordType::A,
        set_identifier: id.map(str::to_string),
        weight: w,
        ttl: None,
        values: vec![],
        alias_target: Some(AliasTarget {
            hosted_zone_id: "Z35SXDOTRQ7X7K".into(),
            dns_name: lb.into(),
            evaluate_target_health: true,
        }),
        health_check_id: check.map(str::to_string),
        failover: None,
        region: None,
        geo_location: None,
        multi_value_answer: None,
        cidr_routing_config: None,
    }
}

/// The simple orders CNAME the DMS world starts with (and a collapse ends with), TTL 60.
fn simple_cname(value: &str) -> RecordSet {
    RecordSet {
        name: "orders.example.com.".into(),
        record_type: RecordType::CNAME,
        set_identifier: None,
        weight: None,
        ttl: Some(60),
        values: vec![value.into()],
        alias_target: None,
        health_check_id: None,
        failover: None,
        region: None,
        geo_location: None,
        multi_value_answer: None,
        cidr_routing_config: None,
    }
}

const BLUE_LB: &str = "dualstack.blue-alb-1234.us-east-1.elb.amazonaws.com.";
const GREEN_LB: &str = "dualstack.green-alb-5678.us-east-1.elb.amazonaws.com.";
const BLUE_CHECK: &str = "0f9e8d7c-6b5a-4a3b-8c2d-1e0f9a8b7c6d";
const GREEN_CHECK: &str = "5b2d6c3e-7f10-4a2b-9c8d-0e1f2a3b4c5d";

#[test]
fn alias_record_becomes_a_weighted_alias_pair_with_its_health_checks() {
    let r = run_texts(
        &text("alias-record", "plan.yaml"),
        &text("alias-record", "world.yaml"),
    );
    assert_eq!(r.report.outcome, "completed", "{:?}", events(&r));
    assert_eq!(
        r.report.dns,
        vec![
            alias(Some("blue"), Some(0), BLUE_LB, Some(BLUE_CHECK)),
            alias(Some("green"), Some(100), GREEN_LB, Some(GREEN_CHECK)),
        ],
        "blue keeps its own health check, green carries the plan's, neither has a TTL"
    );
    let report = serde_json::to_value(&r.report).unwrap();
    assert_eq!(
        report["dns"][0]["aliasTarget"]["hostedZoneId"],
        "Z35SXDOTRQ7X7K"
    );
    assert_eq!(report["dns"][1]["healthCheckId"], GREEN_CHECK);
    // Both tables were in full load for the first ten minutes: nothing may shift before that.
    let shifted = first(&r, "weights-changed").unwrap();
    assert!(shifted >= 600.0, "first shift at t={shifted}");
}

#[test]
fn alias_rollback_restores_the_exact_alias_and_its_health_check() {
    let world = text("alias-record", "world.yaml").replace(
        r#"http:   {"https://green-shop.example.com/health": [[0, 200]]}"#,
        r#"http:   {"https://green-shop.example.com/health": [[0, 200], [1500, 503]]}"#,
    );
    let r = run_texts(&text("alias-record", "plan.yaml"), &world);
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", events(&r));
    assert_eq!(r.report.exit_code(), 3);
    assert_eq!(
        r.report.dns,
        vec![alias(None, None, BLUE_LB, Some(BLUE_CHECK))],
        "the original simple alias, health check included"
    );
}

const DMS_PLAN: &str = r#"
application: orders
replication: {kind: dms, taskArn: "arn:aws:dms:us-east-1:123456789012:task:ORDERS", maxLagSeconds: 30, stableSamples: 3, sampleIntervalSeconds: 60, deadlineSeconds: 3600}
dns:
  hostedZoneId: Z0123456789
  recordName: orders.example.com
  recordType: CNAME
  blue:  {setIdentifier: blue,  value: blue-lb.example.com}
  green: {setIdentifier: green, value: green-lb.example.com}
traffic:
  steps:
    - {weight: 10, bakeSeconds: 300}
    - {weight: 100, bakeSeconds: 300}
health:
  intervalSeconds: 30
  failureThreshold: 2
  http:   [{url: "https://green.example.com/health"}]
  alarms: [orders-green-5xx]
"#;

const DMS_WORLD: &str = r#"
route53:
  zones: [{id: Z0123456789, name: example.com., records: [{name: orders.example.com., type: CNAME, ttl: 60, values: [blue-lb.example.com]}]}]
dms:
  tasks:
    - arn: "arn:aws:dms:us-east-1:123456789012:task:ORDERS"
      status: ready
      lag: [[0, 25]]
      sourceLag: [[0, 20]]
      tables: [{name: orders.orders}]
http:   {"https://green.example.com/health": [[0, 200]]}
alarms: {orders-green-5xx: [[0, OK]]}
"#;

#[test]
fn dms_lag_is_the_end_to_end_target_latency_never_the_sum() {
    // CDCLatencyTarget 25 s already includes CDCLatencySource 20 s: the lag is 25 s, under 30.
    let r = run_texts(DMS_PLAN, DMS_WORLD);
    assert_eq!(r.report.outcome, "completed", "{:?}", events(&r));
    let lags: Vec<f64> = r
        .report
        .timeline
        .iter()
        .filter(|e| e.event == "lag-sampled")
        .filter_map(|e| e.lag_seconds)
        .collect();
    assert!(lags.iter().all(|l| (*l - 25.0).abs() < 1e-9), "{lags:?}");
}

/// A capture stall: CDCLatencySource grows while CDCLatencyTarget reads 0 (nothing waits to commit
/// on the target), as AWS's latency troubleshooting page describes. The lag is the larger of the
/// two, so the gate never opens on a target latency of 0.
#[test]
fn a_capture_stall_holds_the_gate_though_target_latency_reads_zero() {
    let world = DMS_WORLD.replace(
        "      lag: [[0, 25]]\n      sourceLag: [[0, 20]]",
        "      lag: [[0, 0]]\n      sourceLag: [[0, 600]]",
    );
    assert_ne!(world, DMS_WORLD);
    let r = run_texts(DMS_PLAN, &world);
    assert_ne!(r.report.outcome, "completed", "{:?}", events(&r));
    let lags: Vec<f64> = r
        .report
        .timeline
        .iter()
        .filter(|e| e.event == "lag-sampled")
        .filter_map(|e| e.lag_seconds)
        .collect();
    assert!(
        !lags.is_empty() && lags.iter().all(|l| *l >= 599.0),
        "{lags:?}"
    );
    assert!(
        r.report.dns.iter().all(|d| d.set_identifier.is_none()),
        "DNS untouched: {:?}",
        r.report.dns
    );
}

/// A probe waits `timeoutSeconds` (5 when absent) for the whole answer: an endpoint answering 200
/// in 6 s fails pre-flight by default, and passes where the plan allows 8 s.
#[test]
fn a_probe_slower_than_its_timeout_fails_and_a_longer_timeout_passes() {
    let world = format!(
        "{DMS_WORLD}httpLatencyMs: {{\"https://green.example.com/health\": [[0, 6000]]}}\n"
    );
    let slow = run_texts(DMS_PLAN, &world);
    assert_eq!(slow.report.outcome, "failed", "{:?}", events(&slow));
    let why = format!("{:?}", slow.report.cause);
    assert!(why.contains("timed out after 5s"), "{why}");
    assert!(slow.report.dns.iter().all(|d| d.set_identifier.is_none()));
    let patient_plan = DMS_PLAN.replace(
        "http:   [{url: \"https://green.example.com/health\"}]",
        "http:   [{url: \"https://green.example.com/health\", timeoutSeconds: 8}]",
    );
    assert_ne!(patient_plan, DMS_PLAN);
    let patient = run_texts(&patient_plan, &world);
    assert_eq!(
        patient.report.outcome,
        "completed",
        "{:?}",
        events(&patient)
    );
}

#[test]
fn probe_timeouts_are_bounded_one_by_one_and_per_round() {
    let refused = |http: &str| {
        let plan = DMS_PLAN.replace(
            "http:   [{url: \"https://green.example.com/health\"}]",
            &format!("http:   {http}"),
        );
        match Plan::parse(&plan, false) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let one =
        |t: u64| format!("{{url: \"https://green.example.com/health\", timeoutSeconds: {t}}}");
    assert_eq!(refused(&format!("[{}]", one(20))), "");
    let e = refused(&format!("[{}]", one(21)));
    assert!(
        e.contains("health.http[0].timeoutSeconds") && e.contains("outside 1..=20"),
        "{e}"
    );
    let e = refused(&format!("[{}]", one(0)));
    assert!(e.contains("health.http[0].timeoutSeconds"), "{e}");
    // Five probes at the default 5 s wait 25 s together: over the round's 24 s.
    let five = ["{url: \"https://green.example.com/health\"}"; 5].join(", ");
    let e = refused(&format!("[{five}]"));
    assert!(
        e.contains("health.http: the probes of one round may wait 25s together"),
        "{e}"
    );
    let four = ["{url: \"https://green.example.com/health\"}"; 4].join(", ");
    assert_eq!(refused(&format!("[{four}]")), "");
}

#[test]
fn a_full_load_only_task_is_refused_at_pre_flight() {
    let world = DMS_WORLD.replace(
        "status: ready",
        "status: ready\n      migrationType: full-load",
    );
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.report.outcome, "failed");
    assert_eq!(r.report.exit_code(), 4);
    assert!(
        r.report
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("full-load only"),
        "{:?}",
        r.report.cause
    );
    assert_eq!(r.report.world.dms_starts, 0, "nothing was started");
}

#[test]
fn stale_datapoints_count_as_unknown_and_never_open_the_gate() {
    // Datapoints published every 10 minutes are 10-20 minutes old when read: unknown lag.
    let world = DMS_WORLD.replace("dms:\n", "dms:\n  metricPeriodSeconds: 600\n");
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.report.outcome, "aborted", "{:?}", events(&r));
    assert_eq!(r.report.error.as_deref(), Some("LagNotConverged"));
    assert_eq!(r.report.world.dns_changes_applied, 0);
    assert!(
        events(&r).iter().any(|(_, _, m)| m.contains("s old")),
        "the reason names the datapoint's age"
    );
}

#[test]
fn table_errors_and_failing_validation_during_a_bake_roll_back() {
    for (field, from, to) in [
        ("state", "Table completed", "Table error"),
        ("validationState", "Validated", "Mismatched records"),
    ] {
        // The gate opens at about t=240; the first bake runs until about t=600.
        let world = DMS_WORLD.replace(
            "tables: [{name: orders.orders}]",
            &format!(
                "tables: [{{name: orders.orders, {field}: [[0, \"{from}\"], [400, \"{to}\"]]}}]"
            ),
        );
        let r = run_texts(DMS_PLAN, &world);
        assert_eq!(r.report.outcome, "rolled_back", "{field}: {:?}", events(&r));
        assert!(
            events(&r)
                .iter()
                .any(|(_, e, m)| e == "unhealthy" && m.contains(to)),
            "{field}: the bake names the table"
        );
        assert_eq!(r.report.dns.len(), 1, "back to the simple record");
    }
}

#[test]
fn a_task_stopped_during_a_bake_rolls_back() {
    let world = DMS_WORLD.replace(
        "status: ready",
        "status: ready\n      stopAfterSeconds: 400",
    );
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", events(&r));
    assert!(events(&r)
        .iter()
        .any(|(_, e, m)| e == "unhealthy" && m.contains("DMS task is 'stopped'")));
}

#[test]
fn a_flapping_alarm_fails_the_bake_on_its_total() {
    // ALARM every other round: never two in a row, but 5 failed rounds within one bake.
    let mut flaps = String::from("[[0, OK]");
    for i in 0..40 {
        let t = 300 + i * 30;
        flaps.push_str(&format!(
            ", [{t}, {}]",
            if i % 2 == 0 { "ALARM" } else { "OK" }
        ));
    }
    flaps.push(']');
    let world = DMS_WORLD.replace("[[0, OK]]", &flaps);
    let plan = DMS_PLAN.replace(
        "bakeSeconds: 300}\n    - {weight: 100",
        "bakeSeconds: 900}\n    - {weight: 100",
    );
    let r = run_texts(&plan, &world);
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", events(&r));
    assert!(
        events(&r)
            .iter()
            .any(|(_, _, m)| m.contains("5/5 in this bake (health.failureLimit reached)")),
        "{:?}",
        events(&r)
    );
}

#[test]
fn an_original_ttl_above_the_maximum_is_refused_with_the_fix() {
    let world = DMS_WORLD.replace("ttl: 60", "ttl: 86400");
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.report.outcome, "failed");
    let cause = r.report.cause.clone().unwrap_or_default();
    assert!(cause.contains("dns.maxOriginalTtlSeconds"), "{cause}");
    assert!(cause.contains("Lower the record's TTL"), "{cause}");
    assert_eq!(r.report.world.dns_changes_applied, 0);
}

#[test]
fn the_first_bake_lasts_at_least_the_original_ttl() {
    let world = DMS_WORLD.replace("ttl: 60", "ttl: 300");
    let plan = DMS_PLAN.replace(
        "{weight: 10, bakeSeconds: 300}",
        "{weight: 10, bakeSeconds: 60}",
    );
    let r = run_texts(&plan, &world);
    assert_eq!(r.report.outcome, "completed");
    let synced: Vec<f64> = r
        .report
        .timeline
        .iter()
        .filter(|e| e.event == "dns-in-sync")
        .map(|e| e.t)
        .collect();
    let shifts: Vec<f64> = r
        .report
        .timeline
        .iter()
        .filter(|e| e.event == "weights-changed")
        .map(|e| e.t)
        .collect();
    assert!(
        shifts[1] - synced[0] >= 300.0,
        "second shift {} only {}s after the first synced",
        shifts[1],
        shifts[1] - synced[0]
    );
}

#[test]
fn a_console_start_with_a_minimal_raw_plan_runs() {
    // What a console user pastes: required fields only, every default left out.
    let raw = json!({"plan": {
        "application": "orders",
        "replication": {"kind": "dms", "taskArn": "arn:aws:dms:us-east-1:123456789012:task:ORDERS", "maxLagSeconds": 30},
        "dns": {"hostedZoneId": "Z0123456789", "recordName": "orders.example.com", "recordType": "CNAME",
                "blue": {"setIdentifier": "blue", "value": "blue-lb.example.com"},
                "green": {"setIdentifier": "green", "value": "green-lb.example.com"}},
        "traffic": {"steps": [{"weight": 50, "bakeSeconds": 120}, {"weight": 100, "bakeSeconds": 120}]},
        "health": {"http": [{"url": "https://green.example.com/health"}]}
    }});
    let plan: Plan = serde_json::from_value(raw["plan"].clone()).unwrap();
    let world = WorldSpec::parse(DMS_WORLD, false).unwrap();
    let r = run_local(
        &plan,
        &world,
        &RunOptions {
            raw_input: Some(raw),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        r.report.outcome, "completed",
        "{:?} {:?}",
        r.report.error, r.report.cause
    );
}

#[test]
fn a_plan_whose_worst_case_exceeds_the_history_limit_is_refused() {
    let plan = DMS_PLAN.replace(
        "sampleIntervalSeconds: 60, deadlineSeconds: 3600",
        "sampleIntervalSeconds: 1, deadlineSeconds: 36000",
    );
    let e = Plan::parse(&plan, false).unwrap_err();
    let v = e.violations();
    assert_eq!(v[0].field, "replication.deadlineSeconds", "{v:?}");
    assert!(v[0].message.contains("25000"), "{v:?}");
    let plan = DMS_PLAN
        .replace("intervalSeconds: 30", "intervalSeconds: 1")
        .replace(
            "bakeSeconds: 300}\n    - {weight: 100",
            "bakeSeconds: 86400}\n    - {weight: 100",
        );
    let v = Plan::parse(&plan, false).unwrap_err().violations();
    assert_eq!(v[0].field, "health.intervalSeconds", "{v:?}");
}

#[test]
fn mgn_launches_after_the_gate_and_shifts_only_after_first_boot() {
    let r = run_texts(
        &text("mgn-happy-path", "plan.yaml"),
        &text("mgn-happy-path", "world.yaml"),
    );
    assert_eq!(r.report.outcome, "completed", "{:?}", events(&r));
    let last_lag = r
        .report
        .timeline
        .iter()
        .filter(|e| e.event == "lag-sampled")
        .map(|e| e.t)
        .fold(0.0, f64::max);
    let launched = first(&r, "cutover-instance-launched").expect("launched");
    let up = first(&r, "green-launched").expect("green up");
    let shifted = first(&r, "weights-changed").expect("shifted");
    assert!(
        last_lag <= launched,
        "launch {launched} after the gate {last_lag}"
    );
    assert!(up - launched >= 120.0, "first boot takes launchSeconds");
    assert!(shifted >= up);
    assert_eq!(r.report.world.mgn_cutovers, 1);
}

#[test]
fn two_person_gates_complete_locally() {
    let plan = text("dms-happy-path", "plan.yaml").replace(
        "approvals: {expiresSeconds: 3600}",
        "approvals: {expiresSeconds: 3600, twoPersonGates: [before-50]}",
    );
    let world = text("dms-happy-path", "world.yaml").replace(
        "approvals: [{gate: before-50, decision: approve, by: alice@example.com, afterSeconds: 120}]",
        "approvals: [{gate: before-50, decision: approve, by: alice@example.com, afterSeconds: 120}, {gate: before-50, decision: approve, by: bob@example.com, afterSeconds: 300}]",
    );
    let r = run_texts(&plan, &world);
    assert_eq!(r.report.outcome, "completed", "{:?}", events(&r));
    let gate = &r.report.approvals[0];
    assert_eq!(gate.decision, "approve");
    assert!(gate
        .by
        .as_deref()
        .unwrap_or_default()
        .contains("bob@example.com"));
}

#[test]
fn a_throttled_notice_is_retried_and_the_gate_still_opens() {
    let world = format!(
        "{}\nfaults: [{{operation: sns.Publish, error: Throttling, times: 1}}]\n",
        text("dms-happy-path", "world.yaml")
    );
    let r = run_texts(&text("dms-happy-path", "plan.yaml"), &world);
    assert_eq!(r.report.outcome, "completed", "{:?}", events(&r));
    assert_eq!(r.report.world.faults_injected, 1);
}

#[test]
fn a_restore_applied_but_slow_to_sync_is_rolled_back_with_a_warning() {
    // Route 53 takes longer than the sync deadline: the first shift is given up on, the restore
    // batch is applied, its INSYNC never confirmed in time.
    let world = DMS_WORLD.replace("route53:\n", "route53:\n  propagationSeconds: 1200\n");
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", events(&r));
    assert_eq!(r.report.exit_code(), 3);
    assert_eq!(r.report.dns.len(), 1, "DNS holds the snapshot");
    assert!(
        events(&r)
            .iter()
            .any(|(_, e, m)| e == "run-closed" && m.contains("warning")),
        "{:?}",
        events(&r)
    );
}

#[test]
fn an_operator_abort_during_the_lag_wait_ends_cleanly() {
    let world = format!(
        "{}\noperator: [{{afterSeconds: 90, action: abort, by: carol@example.com, reason: change freeze}}]\n",
        DMS_WORLD.replace("lag: [[0, 25]]", "lag: [[0, 900]]")
    );
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.report.outcome, "aborted", "{:?}", events(&r));
    assert_eq!(r.report.error.as_deref(), Some("Aborted"));
    assert_eq!(r.report.world.dns_changes_applied, 0);
    assert!(events(&r)
        .iter()
        .any(|(_, e, m)| e == "abort-requested" && m == "change freeze"));
    assert!(
        r.report.simulated_seconds < 300.0,
        "not held until the deadline"
    );
}

#[test]
fn an_operator_stop_is_recorded_and_ends_the_execution() {
    let world = format!(
        "{DMS_WORLD}\noperator: [{{afterSeconds: 500, action: stop, by: dave@example.com, reason: wrong window}}]\n"
    );
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.execution.status, cutover_engine::Status::Aborted);
    let stop = r
        .report
        .timeline
        .iter()
        .find(|e| e.event == "execution-stopped")
        .expect("recorded");
    assert_eq!(stop.actor.as_deref(), Some("dave@example.com"));
    assert_eq!(stop.t, 500.0);
    assert!(r
        .execution
        .history
        .iter()
        .any(|h| h.kind == "ExecutionAborted"));
}

#[test]
fn final_form_simple_collapses_the_pair_to_green() {
    // A value record: green's value with dns.ttl.
    let plan = DMS_PLAN.replace(
        "  green: {setIdentifier: green, value: green-lb.example.com}",
        "  green: {setIdentifier: green, value: green-lb.example.com}\n  finalForm: simple",
    );
    let r = run_texts(&plan, DMS_WORLD);
    assert_eq!(r.report.outcome, "completed", "{:?}", events(&r));
    assert_eq!(r.report.dns, vec![simple_cname("green-lb.example.com")]);
    // An alias record: green's alias, with green's health check.
    let plan = text("alias-record", "plan.yaml").replace(
        "    healthCheckId: 5b2d6c3e-7f10-4a2b-9c8d-0e1f2a3b4c5d",
        "    healthCheckId: 5b2d6c3e-7f10-4a2b-9c8d-0e1f2a3b4c5d\n  finalForm: simple",
    );
    let r = run_texts(&plan, &text("alias-record", "world.yaml"));
    assert_eq!(r.report.outcome, "completed", "{:?}", events(&r));
    assert_eq!(
        r.report.dns,
        vec![alias(None, None, GREEN_LB, Some(GREEN_CHECK))]
    );
    assert!(events(&r)
        .iter()
        .any(|(_, e, _)| e == "collapsed-to-simple"));
}

/// Faults are a decorator in front of any port: here the run store (DynamoDB) throttles twice
/// and refuses a GetItem once, and the run still completes, each fault retried.
#[test]
fn faults_reach_the_run_store_too() {
    let world = format!(
        "{DMS_WORLD}\nfaults:\n  - {{operation: dynamodb.PutItem, error: ThrottlingException, times: 2, afterSeconds: 100}}\n  - {{operation: dynamodb.GetItem, error: InternalServerError, times: 1, afterSeconds: 100}}\n"
    );
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.report.outcome, "completed", "{:?}", events(&r));
    assert_eq!(r.report.world.faults_injected, 3);
}

/// The world of the rollback tests: green starts failing during the first bake (about t=420),
/// and Route 53 refuses change batches from t=400 on.
fn failing_green_world(fault: &str) -> String {
    format!(
        "{}\nfaults: [{fault}]\n",
        DMS_WORLD.replace(
            r#"http:   {"https://green.example.com/health": [[0, 200]]}"#,
            r#"http:   {"https://green.example.com/health": [[0, 200], [400, 503]]}"#,
        )
    )
}

/// A rollback re-reads and re-applies the snapshot until it succeeds: forty throttled batches in
/// a row (more than any fixed count of retries allowed before) are waited out within the budget.
#[test]
fn a_rollback_waits_out_long_throttling_within_its_budget() {
    let world = failing_green_world(
        "{operation: route53.ChangeResourceRecordSets, error: Throttling, times: 40, afterSeconds: 400}",
    );
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", events(&r));
    assert_eq!(r.report.world.faults_injected, 40);
    assert_eq!(r.report.dns.len(), 1, "the snapshot is back");
    assert_eq!(r.store.lock_holder("orders"), None);
}

/// A rollback that cannot restore DNS within rollback.budgetSeconds ends rollback_failed (exit 6),
/// pages once, and keeps the application's lock.
#[test]
fn a_rollback_that_never_succeeds_pages_and_keeps_the_lock() {
    let world = failing_green_world(
        "{operation: route53.ChangeResourceRecordSets, error: InvalidChangeBatch, times: 100000, afterSeconds: 400}",
    );
    let plan = format!("{DMS_PLAN}rollback: {{budgetSeconds: 600}}\n");
    let r = run_texts(&plan, &world);
    assert_eq!(r.report.outcome, "rollback_failed", "{:?}", events(&r));
    assert_eq!(r.report.exit_code(), 6);
    assert_eq!(r.report.world.pages_sent, 1);
    let pages: Vec<_> = r
        .world
        .pages()
        .into_iter()
        .filter(|p| p.is_page())
        .collect();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].kind, "rollback_failed");
    assert_eq!(
        r.store.lock_holder("orders").as_deref(),
        Some(r.report.run_id.as_str())
    );
    let started = first(&r, "unhealthy").unwrap();
    assert!(
        r.report.simulated_seconds - started >= 600.0,
        "attempts went on for the whole budget: {}s",
        r.report.simulated_seconds - started
    );
    assert!(events(&r)
        .iter()
        .any(|(_, e, m)| e == "run-closed" && m.contains("lock is kept")));
}

/// A long but ordinary plan — a hundred one-point steps — is not refused by the history limit.
#[test]
fn a_plan_of_many_small_steps_is_within_the_history_limit() {
    let steps: String = (1..=100)
        .map(|w| format!("    - {{weight: {w}, bakeSeconds: 60}}\n"))
        .collect();
    let plan = DMS_PLAN.replace(
        "    - {weight: 10, bakeSeconds: 300}\n    - {weight: 100, bakeSeconds: 300}\n",
        &steps,
    );
    let p = Plan::parse(&plan, false).expect("valid");
    assert!(p.worst_case_history_events().total() < 25_000);
}

/// The safety net: a console stop after traffic moved ends with DNS restored to the snapshot,
/// the run rolled back (exit 3) and the lock released; a stop before anything moved ends
/// aborted (exit 4), DNS untouched.
#[test]
fn a_stopped_run_is_reconciled() {
    // The first shift is at about t=180; the stop comes during its bake.
    let world = format!(
        "{DMS_WORLD}\noperator: [{{afterSeconds: 400, action: stop, by: dave@example.com, reason: wrong window}}]\n"
    );
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.execution.status, cutover_engine::Status::Aborted);
    assert_eq!(r.report.outcome, "rolled_back", "{:?}", events(&r));
    assert_eq!(r.report.exit_code(), 3);
    assert_eq!(
        r.report.dns,
        vec![simple_cname("blue-lb.example.com")],
        "the snapshot, exactly"
    );
    assert_eq!(r.store.lock_holder("orders"), None);
    assert!(
        events(&r)
            .iter()
            .any(|(_, e, m)| e == "run-closed" && m.contains("ExecutionAborted")),
        "{:?}",
        events(&r)
    );

    // Stopped while waiting for lag: nothing had moved.
    let world = format!(
        "{}\noperator: [{{afterSeconds: 90, action: stop, by: dave@example.com}}]\n",
        DMS_WORLD.replace("lag: [[0, 25]]", "lag: [[0, 900]]")
    );
    let r = run_texts(DMS_PLAN, &world);
    assert_eq!(r.report.outcome, "aborted", "{:?}", events(&r));
    assert_eq!(r.report.exit_code(), 4);
    assert_eq!(r.report.world.dns_changes_applied, 0);
    assert_eq!(r.store.lock_holder("orders"), None);
}

#[test]
fn a_cutover_completes_at_an_account_limit_of_one_route53_request_a_second() {
    // Each shift reads the record set and then changes it: at 1 request/s the change shares the
    // read's second and is throttled, so the step waits it out instead of failing forward.
    let world = text("dms-happy-path", "world.yaml")
        .replace("requestsPerSecond: 5", "requestsPerSecond: 1");
    let r = run_texts(&text("dms-happy-path", "plan.yaml"), &world);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    assert!(
        r.report.world.throttled > 0,
        "the limit was hit and waited out"
    );
    assert_eq!(r.report.world.dns_changes_applied, 3);
}

#[test]
fn a_safety_net_whose_lock_release_failed_once_still_releases_it() {
    // Found by the chaos suite (seed 1117): the console stop's reconcile recorded the outcome,
    // its lock release was throttled, and the retry saw an outcome and stopped there.
    let world = text("dms-happy-path", "world.yaml")
        + "operator: [{afterSeconds: 300, action: stop, by: dave@example.com}]\n"
        + "faults: [{operation: dynamodb.DeleteItem, error: ProvisionedThroughputExceededException, times: 1, afterSeconds: 200}]\n";
    let r = run_texts(&text("dms-happy-path", "plan.yaml"), &world);
    assert_eq!(r.report.outcome, "aborted");
    assert_eq!(r.store.lock_holder("orders"), None);
    assert!(r.report.timeline.iter().any(|e| e.event == "run-closed"));
    assert_eq!(r.report.world.faults_injected, 1);
}

#[test]
fn a_lock_left_by_an_ended_execution_is_taken_over_and_a_running_ones_is_not() {
    // The lock is a lease on its holder's execution (DescribeExecution).
    let stale = text("dms-happy-path", "world.yaml")
        + "locks: [{application: orders, heldBy: orders-crashed-run, running: false}]\n";
    let r = run_texts(&text("dms-happy-path", "plan.yaml"), &stale);
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    let taken = r
        .report
        .timeline
        .iter()
        .find(|e| e.event == "lock-taken-over")
        .expect("audited");
    assert!(
        taken.message.contains("orders-crashed-run"),
        "{}",
        taken.message
    );
    assert_eq!(r.store.lock_holder("orders"), None, "released at the end");

    let live = text("dms-happy-path", "world.yaml")
        + "locks: [{application: orders, heldBy: orders-other-run, running: true}]\n";
    let r = run_texts(&text("dms-happy-path", "plan.yaml"), &live);
    assert_eq!(r.report.exit_code(), 4);
    assert_eq!(r.report.error.as_deref(), Some("RunInProgress"));
    assert_eq!(
        r.store.lock_holder("orders").as_deref(),
        Some("orders-other-run"),
        "a running holder keeps its lock"
    );
    assert_eq!(r.report.world.dns_changes_applied, 0);
}

#[test]
fn a_failed_finalize_after_all_traffic_moved_is_completed_with_errors_and_pages() {
    // Found by the chaos suite (seed 8323): finalize refused after green took 100 %, and the run
    // said `failed` (exit 4) while DNS was fully on green.
    let plan = text("mgn-happy-path", "plan.yaml") + "finalize: {enabled: true}\n";
    let world = text("mgn-happy-path", "world.yaml")
        + "approvals: [{gate: finalize, decision: approve, by: alice@example.com, afterSeconds: 60}]\n"
        + "faults: [{operation: mgn.FinalizeCutover, error: ConflictException, times: 4}]\n";
    let r = run_texts(&plan, &world);
    assert_eq!(
        r.report.outcome, "completed_with_errors",
        "{:?}",
        r.report.cause
    );
    assert_eq!(r.report.exit_code(), 7);
    assert_eq!(r.report.error.as_deref(), Some("FinalizeFailed"));
    assert!(r.world.pages().iter().any(|p| p.kind == "finalize_failed"));
    assert_eq!(r.store.lock_holder("orders"), None);
}
