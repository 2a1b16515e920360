//! Every sample event in `events/` (the ones `cargo lambda invoke --data-file` uses) goes through
//! the deployed handler, in the order a run would send them, over the simulated world.

use cutover_core::steps::Deps;
use cutover_lambda::{handle, needs, Unconfigured};
use cutover_sim::{MemoryStore, SimClock, World, WorldSpec};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn event(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(format!("{name}.json"));
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .expect("event JSON")
}

fn deps() -> (Deps, Arc<World>) {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dms-happy-path/world.yaml");
    let spec = WorldSpec::parse(&std::fs::read_to_string(root).unwrap(), false).unwrap();
    let clock = SimClock::start(spec.start_time);
    let world = Arc::new(World::new(spec, clock));
    let deps = cutover_sim::world_deps(
        world.clone(),
        Arc::new(MemoryStore::new()),
        Arc::new(Unconfigured("tests".into())),
    );
    (deps, world)
}

#[tokio::test(start_paused = true)]
async fn every_sample_event_runs_through_its_handler() {
    let (deps, world) = deps();
    let ok = |name: &str, out: &Result<Value, lambda_runtime::Diagnostic>| {
        assert!(
            out.is_ok(),
            "{name}: {:?}",
            out.as_ref()
                .err()
                .map(|d| (&d.error_type, &d.error_message))
        );
    };
    let out = handle("validate-cutover", event("validate-cutover"), &deps).await;
    ok("validate-cutover", &out);
    assert_eq!(out.unwrap()["snapshot"].as_array().unwrap().len(), 1);

    let out = handle("start-replication", event("start-replication"), &deps).await;
    ok("start-replication", &out);
    assert_eq!(out.unwrap()["action"], "start-replication");

    tokio::time::sleep(Duration::from_secs(13 * 60)).await;
    let out = handle(
        "check-replication-lag",
        event("check-replication-lag"),
        &deps,
    )
    .await;
    ok("check-replication-lag", &out);
    assert_eq!(
        out.unwrap()["converged"],
        true,
        "the event carried 2 good samples; the third opens the gate"
    );

    let out = handle("shift-traffic", event("shift-traffic"), &deps).await;
    ok("shift-traffic", &out);
    assert_eq!(
        out.unwrap()["changeId"],
        event("check-dns-sync")["changeId"]
    );

    tokio::time::sleep(Duration::from_secs(30)).await;
    let out = handle("check-dns-sync", event("check-dns-sync"), &deps).await;
    ok("check-dns-sync", &out);
    assert_eq!(out.unwrap()["inSync"], true);

    let out = handle("run-health-check", event("run-health-check"), &deps).await;
    ok("run-health-check", &out);
    assert_eq!(out.unwrap()["healthy"], true);

    let out = handle("request-approval", event("request-approval"), &deps).await;
    ok("request-approval", &out);
    assert_eq!(world.notices().len(), 1);
    assert!(!serde_json::to_string(&world.notices())
        .unwrap()
        .contains("EXAMPLE-TASK-TOKEN"));

    let out = handle("finalize-cutover", event("finalize-cutover"), &deps).await;
    ok("finalize-cutover", &out);
    assert_eq!(world.counters().dms_stops, 1);

    let out = handle("rollback-cutover", event("rollback-cutover"), &deps).await;
    ok("rollback-cutover", &out);
    assert_eq!(out.unwrap()["trafficMoved"], true);

    let out = handle("close-run", event("close-run"), &deps).await;
    ok("close-run", &out);

    // The EventBridge status-change event of that (already closed) run changes nothing.
    let out = handle("reconcile-run", event("reconcile-run"), &deps).await;
    ok("reconcile-run", &out);
    assert_eq!(out.unwrap()["action"], "already-closed");
}

#[tokio::test(start_paused = true)]
async fn a_bad_event_fails_with_the_stable_error_name() {
    let (deps, _) = deps();
    let mut e = event("shift-traffic");
    e["weight"] = Value::from("ten");
    let d = handle("shift-traffic", e, &deps).await.unwrap_err();
    assert_eq!(d.error_type, "ValidationFailed");
    assert!(d.error_message.contains("weight"), "{}", d.error_message);
}

#[test]
fn each_function_declares_only_the_ports_it_uses() {
    let n = needs("close-wave");
    assert!(!(n.router || n.replication || n.metrics || n.probe || n.notifier || n.callbacks));
    assert!(needs("shift-traffic").router && !needs("shift-traffic").replication);
    assert!(needs("request-approval").notifier && !needs("request-approval").router);
}

#[tokio::test(start_paused = true)]
async fn wave_and_api_sample_events_run_through_their_handlers() {
    let (deps, _) = deps();
    let out = handle("start-wave", event("start-wave"), &deps).await;
    assert!(out.is_ok(), "{:?}", out.err().map(|d| d.error_message));
    let out = handle("next-wave-round", event("next-wave-round"), &deps)
        .await
        .expect("next-wave-round");
    // db-core has no outcome in this store yet: it still runs, catalog waits for it.
    assert_eq!(out["finished"], false);
    assert_eq!(out["ready"], serde_json::json!([]));
    assert_eq!(out["waitSeconds"], 60);
    // Once db-core ended without completing, catalog is blocked and the wave is done.
    let mut rec =
        cutover_core::model::RunRecord::new("wave-12-db-core", "db-core", chrono::Utc::now());
    rec.outcome = Some("rolled_back".into());
    deps.store.save_run(&rec).await.unwrap();
    let out = handle("next-wave-round", event("next-wave-round"), &deps)
        .await
        .expect("next-wave-round");
    assert_eq!(out["finished"], true);
    assert!(out["progress"]["blocked"]["catalog"].is_string());
    let out = handle("close-wave", event("close-wave"), &deps)
        .await
        .expect("close-wave");
    assert_eq!(out["outcome"], "completed");

    let req: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
        serde_json::from_value(event("approval-api")).expect("API Gateway v2 event");
    let api = cutover_lambda::api_request(req);
    assert_eq!(
        api.identity.as_deref(),
        Some("arn:aws:iam::123456789012:user/alice")
    );
    assert_eq!(
        (api.method.as_str(), api.path.as_str()),
        ("POST", "/runs/orders-20261205T020000Z/approvals/before-50")
    );
    let resp = cutover_lambda::api_response(cutover_core::api::handle_api(&api, &deps).await);
    assert_eq!(resp.status_code, 404, "no such run in this store");
}

/// A failed rollback leaves one RollbackFailed datapoint in embedded metric format, which the
/// template's alarm pages on.
#[test]
fn a_failed_rollback_emits_the_metric_the_alarm_watches() {
    let line = cutover_lambda::rollback_failed_metric(
        &serde_json::json!({"outcome": "rollback_failed", "error": "RollbackFailed"}),
    );
    let m = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(m["Namespace"], "Cutover");
    assert_eq!(m["Metrics"][0]["Name"], "RollbackFailed");
    assert_eq!(m["Dimensions"][0][0], "Environment");
    assert_eq!(line["RollbackFailed"], 1);
    assert!(line["Environment"].is_string());
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"))
            .unwrap();
    assert!(
        template.contains("Namespace: Cutover") && template.contains("MetricName: RollbackFailed"),
        "the alarm watches the metric close-run writes"
    );
}
