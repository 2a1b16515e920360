//! The account's shared Route 53 budget (cutover_core::budget) over the simulated Route 53 and the
//! in-memory run table: requests spaced at the rate, first come first served, a booked-out budget
//! refused without a call, throttling by other callers waited out.

use chrono::{Duration, Utc};
use cutover_core::budget::{BudgetedRouter, Coordination, ROUTE53_BUDGET};
use cutover_core::model::RecordType;
use cutover_core::ports::{Booking, PortErrorKind, RunStore, TrafficRouter};
use cutover_core::StepError;
use cutover_sim::{MemoryStore, SimClock, World, WorldSpec};
use std::sync::Arc;

fn world(requests_per_second: u32) -> Arc<World> {
    let spec = format!(
        "route53:\n  requestsPerSecond: {requests_per_second}\n  zones: [{{id: Z1, name: example.com., records: [{{name: a.example.com., type: CNAME, ttl: 60, values: [blue.example.com]}}]}}]\n"
    );
    Arc::new(World::new(
        WorldSpec::parse(&spec, false).expect("world"),
        SimClock::start(Utc::now()),
    ))
}

fn budgeted(
    world: &Arc<World>,
    store: &Arc<MemoryStore>,
    coordination: Coordination,
) -> Arc<dyn TrafficRouter> {
    BudgetedRouter::wrap(
        world.clone(),
        store.clone(),
        Arc::new(world.clock()),
        5.0,
        coordination,
    )
}

/// `n` callers reading the record at the same instant; each answer, or its error.
async fn reads_at_once(router: &Arc<dyn TrafficRouter>, n: usize) -> Vec<Result<(), String>> {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let router = router.clone();
            tokio::spawn(async move {
                router
                    .records("Z1", "a.example.com", RecordType::CNAME)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.unwrap());
    }
    out
}

/// Callers at the same instant: each answered in its own slot, 0.2 s apart, in the order they
/// asked, and Route 53 never throttles.
#[tokio::test(start_paused = true)]
async fn callers_at_once_are_spaced_at_the_rate_and_never_throttled() {
    let w = world(5);
    let store = Arc::new(MemoryStore::new());
    let router = budgeted(&w, &store, Coordination::Shared);
    let clock = w.clock();
    let calls = (0..30).map(|_| {
        let router = router.clone();
        tokio::spawn(async move {
            router
                .records("Z1", "a.example.com", RecordType::CNAME)
                .await
                .map(|_| clock.elapsed_seconds())
        })
    });
    let mut times = Vec::new();
    for c in calls {
        times.push(c.await.unwrap().expect("answered"));
    }
    times.sort_by(f64::total_cmp);
    for (i, t) in times.iter().enumerate() {
        let slot = i as f64 * 0.2;
        assert!((t - slot).abs() < 0.01, "call {i} at {t}, slot {slot}");
    }
    assert_eq!(w.counters().throttled, 0);
    let used = w.route53_use();
    assert_eq!(used.requests_answered, 30);
}

/// A budget booked further ahead than a step may wait is refused at once, without a call to
/// Route 53; the step sees Throttled, which the state machine retries patiently.
#[tokio::test(start_paused = true)]
async fn a_budget_booked_past_the_wait_is_refused_without_a_call() {
    let w = world(5);
    let store = Arc::new(MemoryStore::new());
    let now = w.clock().epoch();
    let book = || {
        store.book_slot(
            ROUTE53_BUDGET,
            now,
            Duration::milliseconds(200),
            now + Duration::seconds(60),
        )
    };
    // Other cutovers booked the next 30 seconds.
    for _ in 0..150 {
        assert!(matches!(book().await.unwrap(), Booking::Booked(_)));
    }
    let router = budgeted(&w, &store, Coordination::Shared);
    let e = router
        .records("Z1", "a.example.com", RecordType::CNAME)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (PortErrorKind::Throttled, "BudgetBooked")
    );
    assert!(e.message.contains("next 30.0s"), "{e}");
    assert_eq!(
        w.counters().calls.get("route53.ListResourceRecordSets"),
        None
    );
    assert_eq!(
        StepError::from_port(e, |e| StepError::TrafficShiftFailed(e.to_string())).name(),
        "Throttled"
    );
    // Nothing was booked for the refused request.
    match book().await.unwrap() {
        Booking::Booked(at) => assert_eq!(at, now + Duration::seconds(30)),
        other => panic!("{other:?}"),
    }
}

/// Another tool in the account spends most of the rate (Route 53 here answers one request a
/// second): throttled answers are booked again and the callers are all answered in time.
#[tokio::test(start_paused = true)]
async fn throttling_by_other_callers_is_waited_out() {
    let w = world(1);
    let store = Arc::new(MemoryStore::new());
    let router = budgeted(&w, &store, Coordination::Shared);
    for r in reads_at_once(&router, 4).await {
        r.expect("answered within the in-step wait");
    }
    assert!(w.counters().throttled > 0, "the world did throttle");
    assert!(w.clock().elapsed_seconds() < 20.0);
}

/// The comparison mode books nothing: it sends at once and backs off when throttled.
#[tokio::test(start_paused = true)]
async fn backoff_sends_at_once_and_books_nothing() {
    let w = world(5);
    let store = Arc::new(MemoryStore::new());
    let router = budgeted(&w, &store, Coordination::Backoff);
    for r in reads_at_once(&router, 10).await {
        r.expect("answered after backing off");
    }
    assert!(w.counters().throttled >= 5, "{:?}", w.counters());
    let now = w.clock().epoch();
    let first = store
        .book_slot(ROUTE53_BUDGET, now, Duration::milliseconds(200), now)
        .await
        .unwrap();
    assert_eq!(first, Booking::Booked(now), "the budget was never booked");
}
