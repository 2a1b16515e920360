//! Step handlers over the simulated world: GIVEN a world, WHEN a step runs, THEN what changed.

use chrono::Utc;
use cutover_core::model::{Decision, RecordType};
use cutover_core::plan::Plan;
use cutover_core::ports::{PortError, RunStore, TaskCallbacks};
use cutover_core::steps::*;
use cutover_core::StepError;
use cutover_sim::{MemoryStore, SimClock, World, WorldSpec};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PLAN: &str = r#"
application: orders
replication: {kind: dms, taskArn: "arn:aws:dms:us-east-1:123456789012:task:ORDERS", maxLagSeconds: 30, stableSamples: 2, sampleIntervalSeconds: 60, deadlineSeconds: 600}
dns:
  hostedZoneId: Z0123456789
  recordName: orders.example.com
  recordType: CNAME
  ttl: 60
  blue:  {setIdentifier: blue,  value: blue-lb.example.com}
  green: {setIdentifier: green, value: green-lb.example.com}
traffic: {steps: [{weight: 10, bakeSeconds: 60}, {weight: 100, bakeSeconds: 60}]}
health: {intervalSeconds: 30, failureThreshold: 2, http: [{url: "https://green.example.com/health"}], alarms: [green-5xx]}
approvals: {expiresSeconds: 600}
"#;

const WORLD: &str = r#"
route53:
  zones: [{id: Z0123456789, name: example.com., records: [{name: orders.example.com., type: CNAME, ttl: 300, values: [blue-lb.example.com]}]}]
dms: {tasks: [{arn: "arn:aws:dms:us-east-1:123456789012:task:ORDERS", status: ready, lag: [[0, 100], [100, 0]]}]}
http: {"https://green.example.com/health": [[0, 200], [300, 500]]}
alarms: {green-5xx: [[0, OK]]}
"#;

#[derive(Default)]
struct RecordedCallbacks(Mutex<Vec<(String, Value)>>);

#[async_trait::async_trait]
impl TaskCallbacks for RecordedCallbacks {
    async fn send_success(&self, token: &str, output: Value) -> Result<(), PortError> {
        self.0.lock().unwrap().push((token.into(), output));
        Ok(())
    }
    async fn send_failure(&self, token: &str, error: &str, cause: &str) -> Result<(), PortError> {
        self.0
            .lock()
            .unwrap()
            .push((token.into(), json!({"error": error, "cause": cause})));
        Ok(())
    }
}

struct Given {
    deps: Deps,
    world: Arc<World>,
    store: Arc<MemoryStore>,
    callbacks: Arc<RecordedCallbacks>,
    plan: Plan,
}

fn given(world: &str) -> Given {
    let clock = SimClock::start(Utc::now());
    let world = Arc::new(World::new(
        WorldSpec::parse(world, false).expect("world"),
        clock,
    ));
    let store = Arc::new(MemoryStore::new());
    let callbacks = Arc::new(RecordedCallbacks::default());
    let deps = cutover_sim::world_deps(world.clone(), store.clone(), callbacks.clone());
    Given {
        deps,
        world,
        store,
        callbacks,
        plan: Plan::parse(PLAN, false).expect("plan"),
    }
}

async fn validated(g: &Given, run: &str) -> ValidateOutput {
    validate_cutover(
        ValidateInput {
            run_id: run.into(),
            plan: g.plan.clone(),
        },
        &g.deps,
    )
    .await
    .expect("validates")
}

#[tokio::test(start_paused = true)]
async fn validate_refuses_a_blue_that_dns_does_not_serve_and_changes_nothing() {
    let g = given(&WORLD.replace(
        "values: [blue-lb.example.com]",
        "values: [other-lb.example.com]",
    ));
    let e = validate_cutover(
        ValidateInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
        },
        &g.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ValidationFailed");
    assert!(e.to_string().contains("dns.blue.value"), "{e}");
    assert_eq!(g.store.lock_holder("orders"), None);
    assert_eq!(g.store.writes(), 0, "nothing written");
}

/// A plan for a record or zone outside the stack's allow-lists is refused at pre-flight, naming
/// the field and the stack parameter, before anything changes: the roles could not change it,
/// and the first shift would fail with AccessDenied hours in.
#[tokio::test(start_paused = true)]
async fn validate_refuses_a_record_outside_the_stacks_allow_lists_and_changes_nothing() {
    for (records, zones, field) in [
        (
            vec!["billing.example.com".to_string()],
            None,
            "dns.recordName",
        ),
        (
            vec!["ORDERS.example.com.".to_string()],
            Some(vec!["Z999".to_string()]),
            "dns.hostedZoneId",
        ),
    ] {
        let mut g = given(WORLD);
        g.deps.stack.allowed_record_names = Some(records.clone());
        g.deps.stack.allowed_zone_ids = zones;
        let e = validate_cutover(
            ValidateInput {
                run_id: "r1".into(),
                plan: g.plan.clone(),
            },
            &g.deps,
        )
        .await
        .unwrap_err();
        assert_eq!(e.name(), "ValidationFailed");
        let text = e.to_string();
        assert!(text.contains(field), "{text}");
        assert!(
            text.contains("AllowedRecordNames") || text.contains("AllowedHostedZoneIds"),
            "{text}"
        );
        assert_eq!(g.store.lock_holder("orders"), None);
        assert_eq!(g.store.writes(), 0, "nothing written");
    }
    // Within the lists (compared as the condition key does: lower case, no trailing dot).
    let mut g = given(WORLD);
    g.deps.stack.allowed_record_names = Some(vec!["Orders.Example.com.".into()]);
    g.deps.stack.allowed_zone_ids = Some(vec![g.plan.dns.as_ref().unwrap().hosted_zone_id.clone()]);
    validate_cutover(
        ValidateInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
        },
        &g.deps,
    )
    .await
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn validate_lists_every_preflight_problem() {
    let g = given(
        &WORLD
            .replace("status: ready", "status: failed")
            .replace("[[0, OK]]", "[[0, ALARM]]")
            .replace("[[0, 200], [300, 500]]", "[[0, 503]]"),
    );
    let StepError::ValidationFailed(problems) = validate_cutover(
        ValidateInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
        },
        &g.deps,
    )
    .await
    .unwrap_err() else {
        panic!("not a validation failure")
    };
    assert_eq!(problems.len(), 3, "{problems:?}");
}

#[tokio::test(start_paused = true)]
async fn a_second_run_of_the_same_application_is_refused() {
    let g = given(WORLD);
    g.world.set_execution("r1", true);
    validated(&g, "r1").await;
    let e = validate_cutover(
        ValidateInput {
            run_id: "r2".into(),
            plan: g.plan.clone(),
        },
        &g.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(
        e,
        StepError::RunInProgress {
            application: "orders".into(),
            holder: "r1".into()
        }
    );
    // r2's close must not free r1's lock.
    close_run(
        CloseRunInput {
            run_id: "r2".into(),
            plan: g.plan.clone(),
            outcome: None,
            error: None,
            warning: None,
        },
        &g.deps,
    )
    .await
    .unwrap();
    assert_eq!(g.store.lock_holder("orders").as_deref(), Some("r1"));
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_validate_returns_the_first_snapshot() {
    let g = given(WORLD);
    let first = validated(&g, "r1").await;
    start_replication(
        StartReplicationInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            launch: false,
        },
        &g.deps,
    )
    .await
    .unwrap();
    shift_traffic(
        ShiftInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            index: 0,
            weight: 10,
        },
        &g.deps,
    )
    .await
    .unwrap();
    let again = validated(&g, "r1").await;
    assert_eq!(
        again, first,
        "the snapshot is the pre-cutover DNS, not the weighted records now served"
    );
}

#[tokio::test(start_paused = true)]
async fn start_replication_picks_the_start_type_and_runs_once() {
    let g = given(WORLD);
    validated(&g, "r1").await;
    let input = StartReplicationInput {
        run_id: "r1".into(),
        plan: g.plan.clone(),
        launch: false,
    };
    let out = start_replication(input.clone(), &g.deps).await.unwrap();
    assert_eq!(out.action, "start-replication");
    assert_eq!(start_replication(input, &g.deps).await.unwrap(), out);
    assert_eq!(g.world.counters().dms_starts, 1);

    let g = given(&WORLD.replace("status: ready", "status: stopped"));
    validated(&g, "r1").await;
    let out = start_replication(
        StartReplicationInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            launch: false,
        },
        &g.deps,
    )
    .await
    .unwrap();
    assert_eq!(out.action, "resume-processing");
}

#[tokio::test(start_paused = true)]
async fn lag_gate_needs_consecutive_samples_and_stops_at_the_deadline() {
    let g = given(WORLD);
    let v = validated(&g, "r1").await;
    start_replication(
        StartReplicationInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            launch: false,
        },
        &g.deps,
    )
    .await
    .unwrap();
    let mut gate = LagGate::default();
    let mut seen = vec![];
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(60)).await;
        gate = check_replication_lag(
            CheckLagInput {
                run_id: "r1".into(),
                plan: g.plan.clone(),
                gate,
                started_at: v.started_at,
            },
            &g.deps,
        )
        .await
        .unwrap();
        seen.push((gate.lag_seconds, gate.consecutive, gate.converged));
    }
    // Lag 100 -> 0 over 100 s from the task's start: 40 s at t = 60, 0 after.
    assert_eq!(
        seen,
        vec![
            (Some(40.0), 0, false),
            (Some(0.0), 1, false),
            (Some(0.0), 2, true)
        ]
    );

    let g = given(&WORLD.replace("lag: [[0, 100], [100, 0]]", "lag: [[0, 100]]"));
    let v = validated(&g, "r1").await;
    start_replication(
        StartReplicationInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            launch: false,
        },
        &g.deps,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    let e = check_replication_lag(
        CheckLagInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            gate: LagGate::default(),
            started_at: v.started_at,
        },
        &g.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "LagNotConverged");
}

#[tokio::test(start_paused = true)]
async fn table_errors_keep_the_lag_gate_shut() {
    let g = given(&WORLD.replace(
        "lag: [[0, 100], [100, 0]]",
        "lag: [[0, 0]], tables: [{name: s.t, validationState: Mismatched records}]",
    ));
    let v = validated(&g, "r1").await;
    start_replication(
        StartReplicationInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            launch: false,
        },
        &g.deps,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let gate = check_replication_lag(
        CheckLagInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            gate: LagGate::default(),
            started_at: v.started_at,
        },
        &g.deps,
    )
    .await
    .unwrap();
    assert_eq!((gate.lag_seconds, gate.consecutive), (Some(0.0), 0));
    assert!(
        gate.reasons[0].contains("Mismatched records"),
        "{:?}",
        gate.reasons
    );
}

#[tokio::test(start_paused = true)]
async fn shift_converts_a_simple_record_in_one_batch_and_is_idempotent() {
    let g = given(WORLD);
    validated(&g, "r1").await;
    let input = ShiftInput {
        run_id: "r1".into(),
        plan: g.plan.clone(),
        index: 0,
        weight: 10,
    };
    let out = shift_traffic(input.clone(), &g.deps).await.unwrap();
    assert_eq!(shift_traffic(input, &g.deps).await.unwrap(), out);
    assert_eq!(
        g.world.counters().calls["route53.ChangeResourceRecordSets"],
        1
    );
    let dns = g
        .world
        .dns("Z0123456789", "orders.example.com", RecordType::CNAME);
    let weights: Vec<(Option<String>, Option<u32>, Option<u64>)> = dns
        .iter()
        .map(|r| (r.set_identifier.clone(), r.weight, r.ttl))
        .collect();
    assert_eq!(
        weights,
        vec![
            (Some("blue".into()), Some(90), Some(60)),
            (Some("green".into()), Some(10), Some(60))
        ]
    );
    let e = shift_traffic(
        ShiftInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            index: 1,
            weight: 50,
        },
        &g.deps,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("differs"),
        "the weight must be the plan's: {e}"
    );
}

#[tokio::test(start_paused = true)]
async fn rollback_restores_the_snapshot_and_is_idempotent() {
    let g = given(WORLD);
    let v = validated(&g, "r1").await;
    shift_traffic(
        ShiftInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            index: 0,
            weight: 10,
        },
        &g.deps,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let input = RollbackInput {
        run_id: "r1".into(),
        plan: g.plan.clone(),
        error: None,
    };
    let out = rollback_cutover(input.clone(), &g.deps).await.unwrap();
    assert!(out.traffic_moved && out.change_id.is_some());
    assert_eq!(rollback_cutover(input, &g.deps).await.unwrap(), out);
    assert_eq!(
        g.world
            .dns("Z0123456789", "orders.example.com", RecordType::CNAME),
        v.snapshot
    );
    assert_eq!(g.world.counters().dns_changes_applied, 2);
}

#[tokio::test(start_paused = true)]
async fn rollback_before_any_shift_changes_nothing() {
    let g = given(WORLD);
    validated(&g, "r1").await;
    let out = rollback_cutover(
        RollbackInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            error: None,
        },
        &g.deps,
    )
    .await
    .unwrap();
    assert_eq!((out.traffic_moved, out.change_id), (false, None));
    assert_eq!(
        g.world
            .counters()
            .calls
            .get("route53.ChangeResourceRecordSets"),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn health_turns_unhealthy_after_the_threshold_and_honours_abort() {
    let g = given(WORLD);
    validated(&g, "r1").await;
    let mut bake = BakeState {
        started_at: Utc::now(),
        samples: 0,
        consecutive_failures: 0,
        failures: 0,
        healthy: None,
        reasons: vec![],
        complete: false,
    };
    tokio::time::sleep(Duration::from_secs(300)).await;
    bake = run_health_check(
        HealthInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            index: 0,
            bake,
        },
        &g.deps,
    )
    .await
    .unwrap();
    assert_eq!((bake.healthy, bake.consecutive_failures), (Some(false), 1));
    let e = run_health_check(
        HealthInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            index: 0,
            bake: bake.clone(),
        },
        &g.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "HealthCheckFailed");
    assert!(e.to_string().contains("HTTP 500"), "{e}");

    let g = given(WORLD);
    validated(&g, "r1").await;
    request_abort("r1", "operator saw errors", &g.deps)
        .await
        .unwrap();
    let e = run_health_check(
        HealthInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            index: 0,
            bake,
        },
        &g.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "Aborted");
}

#[tokio::test(start_paused = true)]
async fn approvals_decide_once_and_expire() {
    let g = given(WORLD);
    validated(&g, "r1").await;
    let req = RequestApprovalInput {
        run_id: "r1".into(),
        plan: g.plan.clone(),
        gate: "g1".into(),
        task_token: "secret-token".into(),
        weight: Some(50),
    };
    request_approval(req.clone(), &g.deps).await.unwrap();
    request_approval(req, &g.deps).await.unwrap();
    assert_eq!(
        g.world.notices().len(),
        1,
        "a redelivered request notifies once"
    );
    assert!(!serde_json::to_string(&g.world.notices())
        .unwrap()
        .contains("secret-token"));

    let approve = || DecideApproval {
        decision: Decision::Approve,
        reason: None,
    };
    let e = decide_approval("r1", "nope", approve(), "alice", &g.deps)
        .await
        .unwrap_err();
    assert!(matches!(e, ApprovalError::NotFound { .. }));
    assert!(matches!(
        decide_approval("r1", "g1", approve(), " ", &g.deps)
            .await
            .unwrap_err(),
        ApprovalError::Invalid(_)
    ));
    decide_approval("r1", "g1", approve(), "alice", &g.deps)
        .await
        .unwrap();
    assert_eq!(g.callbacks.0.lock().unwrap()[0].0, "secret-token");
    assert_eq!(
        decide_approval("r1", "g1", approve(), "bob", &g.deps)
            .await
            .unwrap_err(),
        ApprovalError::AlreadyDecided("g1".into())
    );

    let req = RequestApprovalInput {
        run_id: "r1".into(),
        plan: g.plan.clone(),
        gate: "g2".into(),
        task_token: "t2".into(),
        weight: None,
    };
    request_approval(req, &g.deps).await.unwrap();
    tokio::time::sleep(Duration::from_secs(601)).await;
    assert_eq!(
        decide_approval("r1", "g2", approve(), "alice", &g.deps)
            .await
            .unwrap_err(),
        ApprovalError::Expired("g2".into())
    );
    assert_eq!(g.callbacks.0.lock().unwrap().len(), 1);
    let stored = g.store.load_approval("r1", "g1").await.unwrap().unwrap();
    assert!(
        !serde_json::to_string(&stored)
            .unwrap()
            .contains("secret-token"),
        "the token never serializes"
    );
}

#[tokio::test(start_paused = true)]
async fn events_are_checked_at_the_boundary() {
    let g = given(WORLD);
    let e = dispatch(
        "shift-traffic",
        json!({"runId": "r1", "plan": {}, "index": 0, "weight": 10}),
        &g.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ValidationFailed");
    assert!(e.to_string().contains("plan"), "{e}");
    let e = dispatch(
        "check-dns-sync",
        json!({"runId": "r1", "changeId": "C1", "submittedAt": "2026-01-01T00:00:00Z", "extra": 1}),
        &g.deps,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("extra"), "{e}");
    let e = dispatch(
        "check-dns-sync",
        json!({"runId": "bad id!", "changeId": "C1", "submittedAt": "2026-01-01T00:00:00Z"}),
        &g.deps,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("runId"), "{e}");
    assert!(dispatch("no-such-step", json!({}), &g.deps).await.is_err());
}

const MGN_WORLD: &str = r#"
route53:
  zones: [{id: Z0123456789, name: example.com., records: [{name: orders.example.com., type: CNAME, ttl: 60, values: [blue-lb.example.com]}]}]
mgn: {servers: [{id: s-0123456789abcdef0, lifecycle: READY_FOR_CUTOVER, replicationState: CONTINUOUS, lag: [[0, 95]], launchSeconds: 300, launchedUrls: ["https://green.example.com/health"]}]}
http: {"https://green.example.com/health": [[0, 200]]}
alarms: {green-5xx: [[0, OK]]}
"#;

fn mgn_given(world: &str) -> Given {
    let mut g = given(world);
    g.plan.replication.kind = cutover_core::plan::ReplicationKind::Mgn;
    g.plan.replication.task_arn = None;
    g.plan.replication.source_server_id = Some("s-0123456789abcdef0".into());
    g
}

/// MGN: nothing launches at the start; the lag comes from lagDuration; the cutover instance is
/// launched once, after the gate, and green counts as ready only after the launch job completed,
/// the first boot succeeded and its health URL answers.
#[tokio::test(start_paused = true)]
async fn mgn_launches_after_the_lag_gate_and_waits_for_first_boot() {
    let g = mgn_given(MGN_WORLD);
    let v = validated(&g, "r1").await;
    assert_eq!(
        g.world.counters().calls.get("http.Probe"),
        None,
        "green does not exist before the launch: pre-flight does not probe it"
    );
    let start = StartReplicationInput {
        run_id: "r1".into(),
        plan: g.plan.clone(),
        launch: false,
    };
    assert_eq!(
        start_replication(start, &g.deps).await.unwrap().action,
        "none"
    );
    assert_eq!(
        g.world.counters().mgn_cutovers,
        0,
        "no launch before the lag gate"
    );
    let gate = check_replication_lag(
        CheckLagInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            gate: LagGate::default(),
            started_at: v.started_at,
        },
        &g.deps,
    )
    .await
    .unwrap();
    assert_eq!(gate.lag_seconds, Some(95.0));

    let launch = StartReplicationInput {
        run_id: "r1".into(),
        plan: g.plan.clone(),
        launch: true,
    };
    let launched = start_replication(launch.clone(), &g.deps).await.unwrap();
    assert_eq!(launched.action, "start-cutover");
    assert_eq!(start_replication(launch, &g.deps).await.unwrap(), launched);
    assert_eq!(g.world.counters().mgn_cutovers, 1, "StartCutover once");

    let check = CheckLaunchInput {
        run_id: "r1".into(),
        plan: g.plan.clone(),
        job_id: launched.job_id.clone().unwrap(),
        launched_at: launched.launched_at.unwrap(),
    };
    let early = check_launch(check.clone(), &g.deps).await.unwrap();
    assert!(!early.ready);
    assert!(
        early
            .reasons
            .iter()
            .any(|r| r.contains("first boot is WAITING")),
        "{:?}",
        early.reasons
    );
    tokio::time::sleep(Duration::from_secs(300)).await;
    let ready = check_launch(check, &g.deps).await.unwrap();
    assert!(ready.ready, "{:?}", ready.reasons);
    assert_eq!(ready.first_boot.as_deref(), Some("SUCCEEDED"));
}

#[tokio::test(start_paused = true)]
async fn mgn_server_left_cutting_over_is_refused_with_the_fix() {
    let g =
        mgn_given(&MGN_WORLD.replace("lifecycle: READY_FOR_CUTOVER", "lifecycle: CUTTING_OVER"));
    let e = validate_cutover(
        ValidateInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
        },
        &g.deps,
    )
    .await
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("already CUTTING_OVER"), "{msg}");
    assert!(msg.contains("Revert to ready for cutover"), "{msg}");
    assert_eq!(g.world.counters().mgn_cutovers, 0);
}

#[tokio::test(start_paused = true)]
async fn mgn_failed_launch_fails_the_run_before_traffic() {
    let g = mgn_given(&MGN_WORLD.replace(
        "launchSeconds: 300",
        "launchSeconds: 300, launchFails: true",
    ));
    validated(&g, "r1").await;
    let launched = start_replication(
        StartReplicationInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            launch: true,
        },
        &g.deps,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(300)).await;
    let e = check_launch(
        CheckLaunchInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            job_id: launched.job_id.unwrap(),
            launched_at: launched.launched_at.unwrap(),
        },
        &g.deps,
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "ReplicationFailed");
    assert!(e.to_string().contains("FAILED"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_frozen_wave_starts_nothing_new() {
    let g = given(WORLD);
    let app = |name: &str, deps: &[&str]| {
        let mut plan = g.plan.clone();
        plan.application = name.into();
        WaveApp {
            application: name.into(),
            run_id: format!("w-{name}"),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            plan,
        }
    };
    let wave = WaveSpec {
        wave: "w".into(),
        max_concurrency: 2,
        window: None,
        scheduling_interval_seconds: 30,
        handover_after_events: cutover_core::steps::DEFAULT_HANDOVER_AFTER_EVENTS,
        applications: vec![app("a", &[]), app("b", &["a"]), app("c", &[])],
    };
    for (i, a) in wave.applications.iter().enumerate() {
        g.deps
            .store
            .save_wave_plan("WAVERUN#w1", i, &a.plan)
            .await
            .unwrap();
    }
    let first = next_wave_round(
        NextRoundInput {
            wave_run_id: "w1".into(),
            wave: wave.outline("WAVERUN#w1", None),
            progress: Default::default(),
            last_round: vec![],
            generation: Default::default(),
        },
        &g.deps,
    )
    .await
    .unwrap();
    assert_eq!(
        first
            .ready
            .iter()
            .map(|r| r.application.as_str())
            .collect::<Vec<_>>(),
        ["a", "c"]
    );
    for (run, app) in [("w-a", "a"), ("w-c", "c")] {
        let mut rec = cutover_core::model::RunRecord::new(run, app, Utc::now());
        rec.outcome = Some("completed".into());
        g.deps.store.save_run(&rec).await.unwrap();
    }
    g.deps
        .store
        .set_wave_frozen("w", Some("change freeze"))
        .await
        .unwrap();
    let results = vec![
        RoundResult {
            application: "a".into(),
            run_id: "w-a".into(),
            error: None,
        },
        RoundResult {
            application: "c".into(),
            run_id: "w-c".into(),
            error: None,
        },
    ];
    let next = next_wave_round(
        NextRoundInput {
            wave_run_id: "w1".into(),
            wave: wave.outline("WAVERUN#w1", None),
            progress: first.progress,
            last_round: results,
            generation: Default::default(),
        },
        &g.deps,
    )
    .await
    .unwrap();
    assert!(next.finished && next.ready.is_empty());
    assert_eq!(
        next.progress.blocked.get("b").map(String::as_str),
        Some("wave frozen: change freeze")
    );
    assert_eq!(
        next.progress.completed,
        ["a", "c"],
        "outcomes come from the run records"
    );
}

/// No rounds: an application starts at the first pass after its dependencies completed, while
/// others still run; the cap counts what runs; the longest chain of dependants goes first.
#[tokio::test(start_paused = true)]
async fn the_wave_starts_an_application_as_soon_as_its_dependencies_end() {
    let g = given(WORLD);
    let app = |name: &str, deps: &[&str]| {
        let mut plan = g.plan.clone();
        plan.application = name.into();
        WaveApp {
            application: name.into(),
            run_id: format!("w-{name}"),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            plan,
        }
    };
    // e is independent and listed first, but c leads a chain (c -> d -> f): c goes first.
    let wave = WaveSpec {
        wave: "w".into(),
        max_concurrency: 2,
        window: None,
        scheduling_interval_seconds: 45,
        handover_after_events: cutover_core::steps::DEFAULT_HANDOVER_AFTER_EVENTS,
        applications: vec![
            app("e", &[]),
            app("a", &[]),
            app("c", &[]),
            app("d", &["c"]),
            app("f", &["d"]),
        ],
    };
    for (i, a) in wave.applications.iter().enumerate() {
        g.deps
            .store
            .save_wave_plan("WAVERUN#w1", i, &a.plan)
            .await
            .unwrap();
    }
    let pass = |progress: WaveProgress| {
        next_wave_round(
            NextRoundInput {
                wave_run_id: "w1".into(),
                wave: wave.outline("WAVERUN#w1", None),
                progress,
                last_round: vec![],
                generation: Default::default(),
            },
            &g.deps,
        )
    };
    let names = |o: &NextRoundOutput| {
        o.ready
            .iter()
            .map(|r| r.application.clone())
            .collect::<Vec<_>>()
    };
    let first = pass(Default::default()).await.unwrap();
    assert_eq!(
        names(&first),
        ["c", "e"],
        "longest chain first, then the file's order; cap 2"
    );
    assert_eq!(first.wait_seconds, 45);
    // Nothing ended: nothing starts, the cap is full.
    let idle = pass(first.progress.clone()).await.unwrap();
    assert!(idle.ready.is_empty() && !idle.finished);
    // c completed while e still runs: d starts now, beside e; a waits for a free slot.
    let mut rec = cutover_core::model::RunRecord::new("w-c", "c", Utc::now());
    rec.outcome = Some("completed".into());
    g.deps.store.save_run(&rec).await.unwrap();
    let second = pass(idle.progress).await.unwrap();
    assert_eq!(names(&second), ["d"]);
    assert_eq!(second.progress.completed, ["c"]);
    // e rolled back: a takes its slot; d's chain is not affected.
    let mut rec = cutover_core::model::RunRecord::new("w-e", "e", Utc::now());
    rec.outcome = Some("rolled_back".into());
    g.deps.store.save_run(&rec).await.unwrap();
    let third = pass(second.progress).await.unwrap();
    assert_eq!(names(&third), ["a"]);
    assert_eq!(third.progress.failed["e"].outcome, "rolled_back");
}

#[tokio::test(start_paused = true)]
async fn an_approval_notice_that_failed_is_sent_on_redelivery_and_only_once() {
    let mut g = given(&format!(
        "{WORLD}\nfaults: [{{operation: sns.Publish, error: ServiceUnavailable, times: 2}}]\n"
    ));
    let notifier: Arc<dyn cutover_core::ports::Notifier> = g.world.clone();
    g.deps.notifier = cutover_sim::Faulty::new(g.world.faults(), notifier);
    // The first failure meets the "run started" notice, which never fails the step: the audit
    // trail says it was not sent.
    validated(&g, "r1").await;
    let trail = g.store.events("r1").await.unwrap();
    assert!(
        trail.iter().any(|e| e.event == "notice-failed"),
        "{trail:?}"
    );
    let ask = || RequestApprovalInput {
        run_id: "r1".into(),
        plan: g.plan.clone(),
        gate: "g1".into(),
        task_token: "TOKEN-1".into(),
        weight: None,
    };
    let first = request_approval(ask(), &g.deps).await.unwrap_err();
    assert_eq!(first.name(), "Retryable", "{first}");
    assert!(g.world.notices().is_empty());
    let opened = request_approval(ask(), &g.deps).await.unwrap();
    assert_eq!(g.world.notices().len(), 1, "the redelivery told the humans");
    let again = request_approval(ask(), &g.deps).await.unwrap();
    assert_eq!(g.world.notices().len(), 1, "and nobody twice");
    assert_eq!(opened.expires_at, again.expires_at);
}

#[tokio::test(start_paused = true)]
async fn two_first_approvals_at_once_both_count() {
    // Two approvers of a two-person gate read the gate at the same moment: the store refuses
    // the second write (stale version) instead of losing the first approval.
    let g = given(WORLD);
    validated(&g, "r1").await;
    let mut plan = g.plan.clone();
    plan.approvals.two_person_gates = vec!["g1".into()];
    request_approval(
        RequestApprovalInput {
            run_id: "r1".into(),
            plan,
            gate: "g1".into(),
            task_token: "TOKEN-1".into(),
            weight: None,
        },
        &g.deps,
    )
    .await
    .unwrap();
    let read_by_alice = g.store.load_approval("r1", "g1").await.unwrap().unwrap();
    let read_by_bob = read_by_alice.clone();
    let mut a = read_by_alice;
    a.approvals.push(cutover_core::model::Approver {
        by: "alice".into(),
        at: Utc::now(),
    });
    g.store.save_approval(&a, true).await.unwrap();
    let mut b = read_by_bob;
    b.approvals.push(cutover_core::model::Approver {
        by: "bob".into(),
        at: Utc::now(),
    });
    let lost = g.store.save_approval(&b, true).await.unwrap_err();
    assert_eq!(lost.kind, cutover_core::ports::PortErrorKind::Conflict);
    // Through the step, bob's approval is decided again on what is stored: it is the second.
    let out = decide_approval(
        "r1",
        "g1",
        DecideApproval {
            decision: Decision::Approve,
            reason: None,
        },
        "bob",
        &g.deps,
    )
    .await
    .unwrap();
    let DecisionOutcome::Decided(rec) = out else {
        panic!("bob's approval was the second: {out:?}")
    };
    assert_eq!(rec.decided_by.as_deref(), Some("alice, bob"));
}

#[tokio::test(start_paused = true)]
async fn an_approval_notice_says_in_plain_words_where_the_run_is_and_how_to_answer() {
    let g = given(WORLD);
    validated(&g, "r1").await;
    request_approval(
        RequestApprovalInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            gate: "g1".into(),
            task_token: "TOKEN-1".into(),
            weight: Some(50),
        },
        &g.deps,
    )
    .await
    .unwrap();
    let n = &g.world.notices()[0];
    assert!(
        n.summary.contains("orders, run r1: gate g1"),
        "{}",
        n.summary
    );
    assert!(
        n.summary.contains("Traffic now: blue 100 / green 0"),
        "{}",
        n.summary
    );
    assert!(
        n.summary.contains("Approving shifts green to 50%"),
        "{}",
        n.summary
    );
    assert!(n.summary.contains(&n.expires_at.to_rfc3339()));
    assert!(n.how_to_answer.starts_with("cutover run approve r1 g1"));
    assert!(!n.summary.contains("TOKEN-1") && !n.how_to_answer.contains("TOKEN-1"));
}

fn sweep() -> SweepInput {
    serde_json::from_value(json!({"sweep": {}})).expect("sweep input")
}

#[tokio::test(start_paused = true)]
async fn the_sweep_finds_stuck_and_abandoned_runs_and_expiring_gates_and_pages_each_once() {
    let g = given(WORLD);
    validated(&g, "r1").await;
    g.world.set_execution("r1", true);
    let started = g.world.pages().len();
    assert!(
        g.world.pages().iter().any(|p| p.kind == "run_started"),
        "a started run is announced"
    );

    // Nothing to say about a young run with no gate.
    let out = sweep_runs(sweep(), &g.deps).await.unwrap();
    assert_eq!(
        (
            out.runs_checked,
            out.stuck.len(),
            out.abandoned.len(),
            out.expiring.len()
        ),
        (1, 0, 0, 0)
    );

    // A gate 600 s from expiry is not announced at once; 5 minutes before its expiry it is.
    request_approval(
        RequestApprovalInput {
            run_id: "r1".into(),
            plan: g.plan.clone(),
            gate: "g1".into(),
            task_token: "t1".into(),
            weight: Some(10),
        },
        &g.deps,
    )
    .await
    .unwrap();
    let sw = |warn: u64| SweepInput {
        sweep: SweepOptions {
            stuck_margin_seconds: 900,
            warn_before_seconds: warn,
        },
    };
    assert!(sweep_runs(sw(300), &g.deps)
        .await
        .unwrap()
        .expiring
        .is_empty());
    tokio::time::sleep(Duration::from_secs(400)).await;
    let out = sweep_runs(sw(300), &g.deps).await.unwrap();
    assert_eq!(out.expiring, vec!["r1/g1".to_string()]);
    sweep_runs(sw(300), &g.deps).await.unwrap();
    let expiring: Vec<_> = g
        .world
        .pages()
        .into_iter()
        .filter(|p| p.kind == "approval_expiring")
        .collect();
    assert_eq!(
        expiring.len(),
        1,
        "announced once, however often the sweep runs"
    );
    assert!(
        expiring[0].message.contains("cutover run approve r1 g1"),
        "{}",
        expiring[0].message
    );

    // Past the plan's worst case plus the margin, the run is stuck.
    let bound = g.plan.worst_case_seconds() + 900;
    tokio::time::sleep(Duration::from_secs(bound)).await;
    let out = sweep_runs(sweep(), &g.deps).await.unwrap();
    assert_eq!(out.stuck, vec!["r1".to_string()]);
    assert!(
        out.expiring.is_empty(),
        "an expired gate is not announced as expiring"
    );
    // Its execution ended without an outcome: the lock is held by a finished execution.
    g.world.set_execution("r1", false);
    let out = sweep_runs(sweep(), &g.deps).await.unwrap();
    assert_eq!(
        (out.stuck.clone(), out.abandoned.clone()),
        (vec!["r1".to_string()], vec!["r1".to_string()])
    );
    let kinds: Vec<String> = g.world.pages()[started..]
        .iter()
        .map(|p| p.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "approval_expiring",
            "run_stuck",
            "lock_held_by_finished_execution"
        ]
    );

    // A closed run is not swept.
    close_run(
        serde_json::from_value(json!({"runId": "r1", "plan": g.plan, "outcome": "aborted"}))
            .unwrap(),
        &g.deps,
    )
    .await
    .unwrap();
    let out = sweep_runs(sweep(), &g.deps).await.unwrap();
    assert_eq!(out.runs_checked, 0);
    assert!(
        g.world.pages().iter().any(|p| p.kind == "run_aborted"),
        "the close is announced"
    );
}

#[tokio::test(start_paused = true)]
async fn the_sweep_input_is_checked_at_the_boundary() {
    let g = given(WORLD);
    let e = dispatch(
        "reconcile-run",
        json!({"sweep": {"warnBefore": 5}}),
        &g.deps,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("warnBefore"), "{e}");
    let out = dispatch("reconcile-run", json!({"sweep": {}}), &g.deps)
        .await
        .unwrap();
    assert_eq!(out["runsChecked"], 0);
}

/// A stopped wave: the safety net stops the applications' executions that still run (they then
/// end ABORTED and are reconciled one by one); a wave that ended otherwise leaves them alone.
#[tokio::test(start_paused = true)]
async fn a_stopped_wave_stops_its_running_applications_through_the_safety_net() {
    let g = given(WORLD);
    g.world.set_execution("w-a", true);
    g.world.set_execution("w-b", false);
    let input = json!({"wave": {"wave": "w", "maxConcurrency": 2, "applications": [
        {"application": "a", "runId": "w-a"}, {"application": "b", "runId": "w-b"}, {"application": "c", "runId": "w-c"}
    ]}})
    .to_string();
    let event = |status: &str| json!({"detail": {"name": "w-20261205", "status": status, "input": input, "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:cutover-dev-wave"}});
    let out = dispatch("reconcile-run", event("FAILED"), &g.deps)
        .await
        .unwrap();
    assert_eq!(out["action"], "wave-ended");
    assert!(g.world.stopped_executions().is_empty());
    let out = dispatch("reconcile-run", event("ABORTED"), &g.deps)
        .await
        .unwrap();
    assert_eq!(out["action"], "wave-children-stopped");
    assert_eq!(
        g.world.stopped_executions(),
        ["w-a"],
        "only the one still running"
    );
}

/// A later execution of a wave's chain (it took over from the one before, with the wave's
/// outline in its input) stopped: the safety net knows it as the wave and stops the
/// applications still running, as for the wave's first execution.
#[tokio::test(start_paused = true)]
async fn a_stopped_wave_after_a_hand_over_stops_its_running_applications() {
    let g = given(WORLD);
    g.world.set_execution("w-a", false);
    g.world.set_execution("w-b", true);
    let input = json!({"handover": {
        "waveRunId": "w-20261205",
        "outline": {"wave": "w", "maxConcurrency": 2, "plansKey": "w-20261205", "applications": [
            {"application": "a", "runId": "w-a", "dependsOn": [], "index": 0},
            {"application": "b", "runId": "w-b", "dependsOn": ["a"], "index": 1}
        ]},
        "progress": {},
        "generation": {"number": 1, "events": 0}
    }})
    .to_string();
    let event = json!({"detail": {"name": "w-20261205-h1", "status": "ABORTED", "input": input, "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:cutover-dev-wave"}});
    let out = dispatch("reconcile-run", event, &g.deps).await.unwrap();
    assert_eq!(out["action"], "wave-children-stopped");
    assert_eq!(g.world.stopped_executions(), ["w-b"]);
}

/// Stuck in a phase: a run whose trail stays silent past its plan's longest single wait is
/// called stuck long before its whole plan's bound; a run that keeps recording is not.
#[tokio::test(start_paused = true)]
async fn the_sweep_calls_a_silent_phase_stuck_before_the_runs_bound() {
    let g = given(WORLD);
    validated(&g, "quiet").await;
    g.world.set_execution("quiet", true);
    let phase = g.plan.longest_phase_seconds() + 900;
    assert!(
        phase < g.plan.worst_case_seconds(),
        "a phase bound is tighter than the run's"
    );
    tokio::time::sleep(Duration::from_secs(phase - 60)).await;
    assert!(sweep_runs(sweep(), &g.deps).await.unwrap().stuck.is_empty());
    tokio::time::sleep(Duration::from_secs(120)).await;
    let out = sweep_runs(sweep(), &g.deps).await.unwrap();
    assert_eq!(out.stuck, ["quiet"]);
    let page = g
        .world
        .pages()
        .into_iter()
        .find(|p| p.kind == "run_stuck")
        .unwrap();
    assert!(
        page.message
            .contains("recorded nothing in phase 'validated'")
            || page.message.contains("recorded nothing in phase"),
        "{}",
        page.message
    );
}
