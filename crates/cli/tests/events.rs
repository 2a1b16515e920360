//! The events a run publishes (docs/events.md): one for every phase change, every gate opened
//! and decided, and the outcome, each with the versioned detail schema, in order, and each
//! change once however often a step is delivered.

mod common;
use common::{run, text};
use cutover_core::events::{CutoverEvent, DetailType, DETAIL_VERSION};

fn run_events(
    example: &str,
    duplicate_delivery: bool,
) -> (cutover_cli::local::LocalRun, Vec<CutoverEvent>) {
    let r = run(
        &text(example, "plan.yaml"),
        &text(example, "world.yaml"),
        duplicate_delivery,
    );
    let e = r.report.events.clone();
    (r, e)
}

fn of(events: &[CutoverEvent], kind: DetailType) -> Vec<&CutoverEvent> {
    events.iter().filter(|e| e.detail_type == kind).collect()
}

#[test]
fn a_completed_run_publishes_each_phase_its_gate_and_its_outcome_in_order() {
    let (r, events) = run_events("dms-happy-path", false);
    assert_eq!(r.report.outcome, "completed");
    for e in &events {
        assert_eq!(e.detail.version, DETAIL_VERSION);
        assert_eq!(e.detail.run_id, r.report.run_id);
        assert_eq!(e.detail.application, "orders");
    }
    // Time never goes back, and every id is distinct.
    assert!(events.windows(2).all(|w| w[0].detail.at <= w[1].detail.at));
    let ids: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e.detail.id.as_str()).collect();
    assert_eq!(ids.len(), events.len());
    // Each phase the run record passed through, each once, chained by previousPhase.
    let phases: Vec<&CutoverEvent> = of(&events, DetailType::PhaseChanged);
    assert!(phases[0].detail.previous_phase.is_none());
    for w in phases.windows(2) {
        assert_eq!(w[1].detail.previous_phase, w[0].detail.phase);
    }
    let names: Vec<&str> = phases
        .iter()
        .filter_map(|e| e.detail.phase.as_deref())
        .collect();
    for want in [
        "replicating",
        "shifting:10",
        "shifting:50",
        "shifting:100",
        "closed",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let shifted_to_50 = phases
        .iter()
        .find(|e| e.detail.phase.as_deref() == Some("shifting:50"))
        .unwrap();
    assert_eq!(shifted_to_50.detail.green_weight, Some(50));
    // The gate: opened, then decided by alice, between the 10 % and the 50 % shift.
    let opened = of(&events, DetailType::GateOpened);
    let decided = of(&events, DetailType::GateDecided);
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].detail.gate.as_deref(), Some("before-50"));
    assert!(opened[0].detail.expires_at.is_some());
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].detail.decision.as_deref(), Some("approve"));
    assert_eq!(
        decided[0].detail.decided_by.as_deref(),
        Some("alice@example.com")
    );
    assert!(opened[0].detail.at <= decided[0].detail.at);
    assert!(decided[0].detail.at <= shifted_to_50.detail.at);
    // The outcome, once, last.
    let closed = of(&events, DetailType::RunClosed);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].detail.outcome.as_deref(), Some("completed"));
    assert_eq!(events.last().unwrap().detail_type, DetailType::RunClosed);
}

#[test]
fn a_rolled_back_run_says_so_and_a_rejected_gate_names_who_rejected() {
    let (r, events) = run_events("health-failure-rollback", false);
    assert_eq!(r.report.outcome, "rolled_back");
    let phases: Vec<&str> = of(&events, DetailType::PhaseChanged)
        .iter()
        .filter_map(|e| e.detail.phase.as_deref())
        .collect();
    assert!(phases.contains(&"rolling-back"), "{phases:?}");
    let closed = of(&events, DetailType::RunClosed);
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].detail.outcome.as_deref(), Some("rolled_back"));
    assert!(closed[0].detail.error.is_some());

    let (r, events) = run_events("approval-rejected", false);
    assert_eq!(r.report.outcome, "rolled_back");
    let decided = of(&events, DetailType::GateDecided);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].detail.decision.as_deref(), Some("reject"));
    assert_eq!(
        decided[0].detail.decided_by.as_deref(),
        Some("bob@example.com")
    );
}

#[test]
fn steps_delivered_twice_publish_each_change_once() {
    let (_, once) = run_events("dms-happy-path", false);
    let (_, twice) = run_events("dms-happy-path", true);
    let kinds = |e: &[CutoverEvent]| -> Vec<(DetailType, Option<String>, Option<String>)> {
        e.iter()
            .map(|e| (e.detail_type, e.detail.phase.clone(), e.detail.gate.clone()))
            .collect()
    };
    assert_eq!(kinds(&once), kinds(&twice));
}

#[test]
fn the_report_carries_the_events_with_the_documented_field_names() {
    let (r, _) = run_events("dms-happy-path", false);
    let json = serde_json::to_value(&r.report).unwrap();
    let first = &json["events"][0];
    assert_eq!(first["detailType"], "Cutover Phase Changed");
    for field in ["version", "id", "runId", "application", "at", "phase"] {
        assert!(first["detail"].get(field).is_some(), "{field} in {first}");
    }
}

/// A bus that keeps what it is given, or refuses it.
#[derive(Default)]
struct Kept {
    events: std::sync::Mutex<Vec<CutoverEvent>>,
    refuse: bool,
}

#[async_trait::async_trait]
impl cutover_core::events::Bus for Kept {
    async fn publish(&self, events: &[CutoverEvent]) -> Result<(), cutover_core::ports::PortError> {
        if self.refuse {
            return Err(cutover_core::ports::PortError::new(
                "events",
                cutover_core::ports::PortErrorKind::Transient,
                "FailedEntries",
                "refused",
            ));
        }
        self.events.lock().unwrap().extend(events.iter().cloned());
        Ok(())
    }
}

fn stream_deps(bus: std::sync::Arc<Kept>) -> (tokio::runtime::Runtime, cutover_core::steps::Deps) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let deps = rt.block_on(async {
        let spec =
            cutover_sim::WorldSpec::parse(&text("dms-happy-path", "world.yaml"), false).unwrap();
        let clock = cutover_sim::SimClock::start(spec.start_time);
        let world = std::sync::Arc::new(cutover_sim::World::new(spec, clock));
        let store = std::sync::Arc::new(cutover_sim::MemoryStore::new());
        let mut deps = cutover_sim::world_deps(world, store, std::sync::Arc::new(NoCallbacks));
        deps.bus = bus;
        deps
    });
    (rt, deps)
}

struct NoCallbacks;

#[async_trait::async_trait]
impl cutover_core::ports::TaskCallbacks for NoCallbacks {
    async fn send_success(
        &self,
        _: &str,
        _: serde_json::Value,
    ) -> Result<(), cutover_core::ports::PortError> {
        Ok(())
    }
    async fn send_failure(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<(), cutover_core::ports::PortError> {
        Ok(())
    }
}

fn sample() -> serde_json::Value {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/publish-events.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn the_publish_events_function_turns_a_stream_batch_into_events() {
    let bus = std::sync::Arc::new(Kept::default());
    let (rt, deps) = stream_deps(bus.clone());
    let out = rt
        .block_on(cutover_core::steps::dispatch(
            "publish-events",
            sample(),
            &deps,
        ))
        .unwrap();
    assert_eq!(out["published"], 1);
    let events = bus.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    let d = &events[0].detail;
    assert_eq!(events[0].detail_type, DetailType::PhaseChanged);
    assert_eq!(d.phase.as_deref(), Some("shifting:10"));
    assert_eq!(d.previous_phase.as_deref(), Some("replicating"));
    assert_eq!(d.green_weight, Some(10));
    assert_eq!(d.id, "orders-20261205T020000Z/v4/phase");
    // The same batch again (the stream delivers at least once): the same id.
    rt.block_on(cutover_core::steps::dispatch(
        "publish-events",
        sample(),
        &deps,
    ))
    .unwrap();
    let again = bus.events.lock().unwrap().clone();
    assert_eq!(again[1].detail.id, again[0].detail.id);
}

#[test]
fn a_batch_that_cannot_be_read_or_published_fails_so_the_stream_delivers_it_again() {
    let bus = std::sync::Arc::new(Kept::default());
    let (rt, deps) = stream_deps(bus.clone());
    let mut bad = sample();
    bad["Records"][0]["dynamodb"]["NewImage"]["version"] = serde_json::json!({"B": "AAAA"});
    let e = rt
        .block_on(cutover_core::steps::dispatch("publish-events", bad, &deps))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Records[0].dynamodb.NewImage: version"),
        "{e}"
    );
    assert!(bus.events.lock().unwrap().is_empty());

    let refusing = std::sync::Arc::new(Kept {
        refuse: true,
        ..Default::default()
    });
    let (rt, deps) = stream_deps(refusing);
    let e = rt
        .block_on(cutover_core::steps::dispatch(
            "publish-events",
            sample(),
            &deps,
        ))
        .unwrap_err();
    assert_eq!(e.name(), "Retryable", "{e}");
    // Items that are neither runs nor gates (audit events, locks, budgets) publish nothing.
    let bus = std::sync::Arc::new(Kept::default());
    let (rt, deps) = stream_deps(bus.clone());
    let mut other = sample();
    other["Records"][0]["dynamodb"]["NewImage"]["sk"] = serde_json::json!({"S": "EVENT#0001"});
    let out = rt
        .block_on(cutover_core::steps::dispatch(
            "publish-events",
            other,
            &deps,
        ))
        .unwrap();
    assert_eq!(out["published"], 0);
}
