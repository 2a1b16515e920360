//! The wave calendar on a virtual clock: a recurring schedule takes the next queued wave, never
//! the same one twice, with run ids of its own and outcomes read from the runs themselves
//! (docs/waves.md, "The wave calendar").

use chrono::{DateTime, Duration, Utc};
use cutover_cli::calendar::{firing_times, load_waves, parse_every, run_calendar_local};
use cutover_cli::{load_world, RunOptions};
use cutover_core::model::CalendarState;
use cutover_core::steps::WaveSpec;
use std::collections::BTreeSet;
use std::path::Path;

fn example(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(p)
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn saturdays(n: i64) -> Vec<DateTime<Utc>> {
    let from = at("2026-12-05T02:00:00Z");
    firing_times(
        from,
        from + Duration::days(7 * (n - 1)),
        parse_every("7d").unwrap(),
    )
    .unwrap()
}

fn quiet() -> RunOptions {
    RunOptions::default()
}

#[test]
fn three_saturdays_run_wave_one_then_wave_two_then_record_nothing_queued() {
    let waves = load_waves(&example("calendar/waves")).unwrap();
    let world = load_world(&example("wave-12/world.yaml")).unwrap();
    let r = run_calendar_local(&waves, &world, &saturdays(3), &quiet()).unwrap();
    let taken: Vec<(Option<&str>, &str)> = r
        .firings
        .iter()
        .map(|f| (f.wave.as_deref(), f.outcome.as_str()))
        .collect();
    // inventory's green fails its health check from t = 1500 s of the world on: its pre-flight
    // refuses it a week later, which blocks what depends on it.
    assert_eq!(
        taken,
        [
            (Some("core"), "completed"),
            (Some("commerce"), "partial"),
            (None, "nothing_queued")
        ]
    );
    // Every firing's runs are its own: no run id twice, none an earlier firing's.
    let ids: Vec<&str> = r
        .firings
        .iter()
        .flat_map(|f| f.applications.iter().map(|a| a.run_id.as_str()))
        .collect();
    assert_eq!(ids.len(), 12);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 12);
    // Outcomes are the runs' own, and each started in its firing's week.
    let commerce = &r.firings[1];
    let outcome = |name: &str| {
        commerce
            .applications
            .iter()
            .find(|a| a.application == name)
            .map(|a| a.outcome.as_str())
    };
    assert_eq!(outcome("search"), Some("completed"));
    assert_eq!(outcome("inventory"), Some("failed"));
    assert_eq!(outcome("orders"), Some("blocked"));
    let week = 7.0 * 86_400.0;
    assert!(commerce
        .applications
        .iter()
        .filter_map(|a| a.started_at)
        .all(|s| (week..week + 6.0 * 3600.0).contains(&s)));
    let states: Vec<(&str, CalendarState)> = r
        .calendar
        .iter()
        .map(|e| (e.wave.as_str(), e.state))
        .collect();
    assert_eq!(
        states,
        [
            ("core", CalendarState::Completed),
            ("commerce", CalendarState::Partial)
        ]
    );
    assert_eq!(r.exit_code(), 5, "a wave did not complete");
    // The empty firing is told once, naming itself.
    assert_eq!(r.notices.len(), 1, "{:?}", r.notices);
    assert_eq!(r.notices[0].run_id, r.firings[2].wave_run_id);
    assert!(r.notices[0].message.contains("nothing was started"));
}

/// One wave of `examples/wave-12`'s first applications, with `window`.
fn small_wave(name: &str, window: Option<(&str, &str)>) -> WaveSpec {
    let mut w = cutover_cli::wave::load_wave(&example("calendar/waves/1-core.yaml")).unwrap();
    w.wave = name.into();
    w.applications.truncate(2);
    w.window = window.map(|(a, b)| cutover_core::waves::Window {
        not_before: at(a),
        not_after: at(b),
    });
    w
}

#[test]
fn a_recurring_schedule_never_runs_the_same_wave_twice() {
    let world = load_world(&example("wave-12/world.yaml")).unwrap();
    let r =
        run_calendar_local(&[small_wave("only", None)], &world, &saturdays(3), &quiet()).unwrap();
    let outcomes: Vec<&str> = r.firings.iter().map(|f| f.outcome.as_str()).collect();
    assert_eq!(outcomes, ["completed", "nothing_queued", "nothing_queued"]);
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn a_wave_whose_window_ended_is_skipped_and_a_later_one_waits_for_its_own() {
    let world = load_world(&example("wave-12/world.yaml")).unwrap();
    let waves = [
        // Its window closes before the first firing: skipped, with the reason.
        small_wave(
            "missed",
            Some(("2026-12-05T03:00:00Z", "2026-12-05T04:00:00Z")),
        ),
        // Its window is the third firing's: the first two pass it by.
        small_wave(
            "later",
            Some(("2026-12-26T01:00:00Z", "2026-12-26T06:00:00Z")),
        ),
    ];
    let from = at("2026-12-12T02:00:00Z");
    let firings = firing_times(from, from + Duration::days(14), Duration::days(7)).unwrap();
    let r = run_calendar_local(&waves, &world, &firings, &quiet()).unwrap();
    let taken: Vec<Option<&str>> = r.firings.iter().map(|f| f.wave.as_deref()).collect();
    assert_eq!(taken, [None, None, Some("later")]);
    let missed = r.calendar.iter().find(|e| e.wave == "missed").unwrap();
    assert_eq!(missed.state, CalendarState::Skipped);
    assert!(
        missed.note.as_deref().unwrap().contains("window ended"),
        "{missed:?}"
    );
}

#[test]
fn calendar_options_are_checked() {
    assert!(parse_every("0d").is_err());
    assert!(parse_every("7 weeks").is_err());
    assert_eq!(parse_every("12h").unwrap(), Duration::hours(12));
    let from = at("2026-12-05T02:00:00Z");
    assert!(firing_times(from, from - Duration::days(1), Duration::days(7)).is_err());
    assert!(firing_times(from, from + Duration::days(3650), Duration::hours(1)).is_err());
    let world = load_world(&example("wave-12/world.yaml")).unwrap();
    let early = vec![at("2026-12-01T00:00:00Z")];
    let e = run_calendar_local(&[small_wave("w", None)], &world, &early, &quiet()).unwrap_err();
    assert!(e.contains("startTime"), "{e}");
}

/// Step Functions callbacks nobody sends here; schedules recorded as created.
struct NoCallbacks;
#[async_trait::async_trait]
impl cutover_core::ports::TaskCallbacks for NoCallbacks {
    async fn send_success(
        &self,
        _: &str,
        _: serde_json::Value,
    ) -> Result<(), cutover_core::ports::PortError> {
        unreachable!()
    }
    async fn send_failure(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<(), cutover_core::ports::PortError> {
        unreachable!()
    }
}

#[derive(Default)]
struct Schedules(std::sync::Mutex<Vec<String>>);
#[async_trait::async_trait]
impl cutover_core::ports::WaveSchedules for Schedules {
    async fn schedule_wave(
        &self,
        name: &str,
        _: DateTime<Utc>,
        input: &str,
    ) -> Result<String, cutover_core::ports::PortError> {
        self.0.lock().unwrap().push(input.to_string());
        Ok(format!(
            "arn:aws:scheduler:us-east-1:123456789012:schedule/default/{name}"
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn the_example_waves_are_queued_and_scheduled_through_the_api_whatever_their_size() {
    use cutover_core::api::{handle_api_with, ApiRequest, Bounds};
    let world = load_world(&example("wave-12/world.yaml")).unwrap();
    let clock = cutover_sim::SimClock::start(world.start_time);
    let deps = cutover_sim::world_deps(
        std::sync::Arc::new(cutover_sim::World::new(world, clock)),
        std::sync::Arc::new(cutover_sim::MemoryStore::new()),
        std::sync::Arc::new(NoCallbacks),
    );
    let schedules = Schedules::default();
    let call = |method: &str, path: &str, body: serde_json::Value| ApiRequest {
        method: method.into(),
        path: path.into(),
        body: Some(body.to_string()),
        identity: Some("arn:aws:sts::123456789012:assumed-role/ReleaseOperator/ci".into()),
        groups: vec![],
    };
    for file in ["wave-12/wave.yaml", "wave-200/wave.yaml"] {
        let w = cutover_cli::wave::load_wave(&example(file)).unwrap();
        let body = serde_json::json!({ "wave": w });
        let size = body.to_string().len();
        let r = handle_api_with(
            &call("POST", "/calendar", body),
            &deps,
            Some(&schedules),
            &Bounds::open(),
        )
        .await;
        assert_eq!(r.status, 201, "{file}: {}", r.body);
        let r = handle_api_with(
            &call(
                "POST",
                &format!("/waves/{}/schedule", w.wave),
                serde_json::json!({"at": "2026-12-05T03:00:00Z"}),
            ),
            &deps,
            Some(&schedules),
            &Bounds::open(),
        )
        .await;
        assert_eq!(r.status, 201, "{file}: {}", r.body);
        // The schedule's input names the wave: far under EventBridge Scheduler's 8,192
        // characters, whatever the wave's own size.
        let input = schedules.0.lock().unwrap().last().cloned().unwrap();
        assert!(
            input.len() < 100 && size > 8192,
            "{file}: {size} -> {input}"
        );
    }
}

/// The wave execution of a firing fails on its own (the run table's Query failing past its
/// steps' retries): the firing still lists every application of the wave it took, as its run
/// record ended, and the report is read past the world's faults.
#[test]
fn a_firing_whose_wave_execution_failed_lists_every_application() {
    let waves = load_waves(&example("calendar/waves")).unwrap();
    let text = std::fs::read_to_string(example("wave-12/world.yaml")).unwrap();
    let text = format!(
        "{text}\nfaults:\n  - {{operation: dynamodb.Query, error: InternalServerError, times: 300, afterSeconds: 2000}}\n"
    );
    let world = cutover_sim::WorldSpec::parse(&text, false).unwrap();
    let r = run_calendar_local(&waves, &world, &saturdays(1), &quiet()).unwrap();
    let f = &r.firings[0];
    assert_eq!(
        (f.wave.as_deref(), f.outcome.as_str()),
        (Some("core"), "failed")
    );
    assert!(
        f.error
            .as_deref()
            .is_some_and(|e| e.contains("injected fault")),
        "{:?}",
        f.error
    );
    let listed: BTreeSet<&str> = f
        .applications
        .iter()
        .map(|a| a.application.as_str())
        .collect();
    let core: BTreeSet<&str> = waves[0]
        .applications
        .iter()
        .map(|a| a.application.as_str())
        .collect();
    assert_eq!(listed, core);
    for a in &f.applications {
        assert_eq!(
            a.run_id,
            cutover_core::waves::run_id_for(&f.wave_run_id, &a.application)
        );
        assert_ne!(a.outcome, "not_started", "{a:?}");
    }
}
