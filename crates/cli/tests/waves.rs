//! Waves end to end on the real wave and cutover machines: dependency order, the concurrency cap
//! read back from the execution history, blocked dependants, the window, bad wave files.

use cutover_cli::wave::{load_wave, run_wave_local};
use cutover_cli::{load_world, RunOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wave-12")
}

#[test]
fn a_failure_blocks_exactly_its_transitive_dependants() {
    let spec = load_wave(&example().join("wave.yaml")).expect("wave");
    assert_eq!(spec.applications.len(), 12);
    let world = load_world(&example().join("world.yaml")).expect("world");
    let run = run_wave_local(&spec, &world, &RunOptions::default());
    let r = &run.report;
    let outcomes: BTreeMap<&str, &str> = r
        .applications
        .iter()
        .map(|a| (a.application.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(outcomes["inventory"], "rolled_back");
    for blocked in ["orders", "shipping", "reporting"] {
        assert_eq!(
            outcomes[blocked], "blocked",
            "{blocked} depends on inventory"
        );
    }
    let completed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, o)| **o == "completed")
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(
        completed,
        [
            "catalog",
            "db-core",
            "identity",
            "notifications",
            "payments",
            "pricing",
            "search",
            "support"
        ]
    );
    assert_eq!(r.outcome, "partial");
    assert_eq!(r.exit_code(), 5);

    // The cap held, and was used.
    assert_eq!(r.max_concurrency, 3);
    assert_eq!(
        r.max_concurrent_applications, 3,
        "read from the wave's execution history"
    );

    // Dependencies ran first: each application started after all it depends on ended.
    let by_name: BTreeMap<&str, _> = r
        .applications
        .iter()
        .map(|a| (a.application.as_str(), a))
        .collect();
    for app in &spec.applications {
        let Some(start) = by_name[app.application.as_str()].started_at else {
            continue;
        };
        for d in &app.depends_on {
            let end = by_name[d.as_str()]
                .ended_at
                .expect("a dependency of a started application ended");
            assert!(
                end <= start,
                "{} started at {start} before {d} ended at {end}",
                app.application
            );
        }
    }
    // Blocked applications never started: one child execution per started application.
    assert_eq!(run.children.len(), 9);
    assert!(r
        .applications
        .iter()
        .filter(|a| a.outcome == "blocked")
        .all(|a| a.started_at.is_none()));
    // Each child ended with its run closed and its lock released.
    for a in &spec.applications {
        assert_eq!(run.store.lock_holder(&a.application), None);
    }
}

#[test]
fn outside_its_window_a_wave_starts_nothing() {
    let mut spec = load_wave(&example().join("wave.yaml")).unwrap();
    let world = load_world(&example().join("world.yaml")).unwrap();
    spec.window = Some(cutover_core::waves::Window {
        not_before: "2026-12-06T02:00:00Z".parse().unwrap(),
        not_after: "2026-12-06T06:00:00Z".parse().unwrap(),
    });
    let run = run_wave_local(&spec, &world, &RunOptions::default());
    assert_eq!(run.report.error.as_deref(), Some("ValidationFailed"));
    assert!(run.children.is_empty(), "no application started");
    assert_eq!(run.world.counters().dns_changes_applied, 0);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn unknown_dependencies_and_cycles_are_named_and_nothing_starts() {
    let dir = std::env::temp_dir().join(format!("cutover-waves-{}", std::process::id()));
    let plans = example().join("plans");
    let p = |n: &str| plans.join(format!("{n}.yaml")).display().to_string();
    let unknown = write(
        &dir,
        "unknown.yaml",
        &format!(
            "wave: w\napplications:\n  - {{plan: {}, dependsOn: [ghost]}}\n",
            p("db-core")
        ),
    );
    let e = load_wave(&unknown).unwrap_err().to_string();
    assert!(
        e.contains("applications[0].dependsOn") && e.contains("ghost"),
        "{e}"
    );
    let cycle = write(
        &dir,
        "cycle.yaml",
        &format!("wave: w\napplications:\n  - {{plan: {}, dependsOn: [identity]}}\n  - {{plan: {}, dependsOn: [db-core]}}\n", p("db-core"), p("identity")),
    );
    let e = load_wave(&cycle).unwrap_err().to_string();
    assert!(e.contains("db-core -> identity -> db-core"), "{e}");
    let bad_cap = write(
        &dir,
        "cap.yaml",
        &format!(
            "wave: w\nmaxConcurrency: 0\napplications:\n  - {{plan: {}}}\n",
            p("db-core")
        ),
    );
    assert!(load_wave(&bad_cap)
        .unwrap_err()
        .to_string()
        .contains("maxConcurrency"));
}

#[test]
fn the_cli_plans_waves_from_a_portfolio() {
    let dir = std::env::temp_dir().join(format!("cutover-portfolio-{}", std::process::id()));
    let portfolio = write(
        &dir,
        "portfolio.yaml",
        "maxWaveSize: 2\napplications:\n  - {name: db, team: data, criticality: high, strategy: replatform}\n  - {name: api, team: core, criticality: high, strategy: rehost, dependsOn: [db]}\n  - {name: web, team: web, criticality: low, strategy: rehost, dependsOn: [api]}\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args([
            "waves",
            "plan",
            portfolio.to_str().unwrap(),
            "--out",
            dir.join("waves").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (n, app) in [(1, "db"), (2, "api"), (3, "web")] {
        let w = std::fs::read_to_string(dir.join("waves").join(format!("wave-{n}.yaml"))).unwrap();
        assert!(w.contains(&format!("plans/{app}.yaml")), "wave-{n}: {w}");
    }
    let cyclic = write(&dir, "cyclic.yaml", "applications:\n  - {name: a, team: t, criticality: low, strategy: rehost, dependsOn: [b]}\n  - {name: b, team: u, criticality: low, strategy: rehost, dependsOn: [a]}\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["waves", "plan", cyclic.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a -> b -> a"));
}

/// The example wave, stopped from the console at t = 1300 s.
fn wave_stopped_at_1300() -> (cutover_core::steps::WaveSpec, cutover_cli::wave::WaveRun) {
    let spec = load_wave(&example().join("wave.yaml")).expect("wave");
    let mut world = load_world(&example().join("world.yaml")).expect("world");
    world.operator = vec![cutover_sim::spec::OperatorSpec {
        after_seconds: 1300.0,
        action: cutover_sim::spec::OperatorAction::Stop,
        by: "ops@example.com".into(),
        reason: Some("change freeze".into()),
        seconds: None,
        full: false,
    }];
    let run = run_wave_local(&spec, &world, &RunOptions::default());
    (spec, run)
}

#[test]
fn a_stopped_wave_leaves_no_application_half_shifted_and_no_lock_held() {
    // Stopped from the console while the first applications are shifting traffic.
    let (spec, run) = wave_stopped_at_1300();
    assert_eq!(run.report.outcome, "stopped");
    let mut moved = 0;
    for app in &spec.applications {
        let d = app.plan.dns.as_ref().unwrap();
        let now = run
            .world
            .dns(&d.hosted_zone_id, &d.record_name, d.record_type);
        let green = d.green.routing();
        let at_start = now.len() == 1 && now[0].set_identifier.is_none();
        let all_green = now
            .iter()
            .filter(|r| r.weight != Some(0))
            .all(|r| r.routes_to(&green));
        assert!(
            at_start || all_green,
            "{} is half-shifted: {now:?}",
            app.application
        );
        moved += usize::from(!at_start);
        assert_eq!(
            run.store.lock_holder(&app.application),
            None,
            "{} still locked",
            app.application
        );
    }
    // Some applications had started: the stop really interrupted traffic that was moving.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let closed: Vec<String> = spec
        .applications
        .iter()
        .filter_map(|a| {
            rt.block_on(cutover_core::ports::RunStore::load_run(
                run.store.as_ref(),
                &a.run_id,
            ))
            .unwrap()
            .map(|r| {
                r.outcome
                    .unwrap_or_else(|| format!("{} unclosed", a.application))
            })
        })
        .collect();
    assert!(!closed.is_empty(), "some applications had started");
    assert!(
        closed.iter().all(|o| !o.ends_with("unclosed")),
        "{closed:?}"
    );
    assert!(
        closed.iter().any(|o| o == "rolled_back"),
        "{closed:?} (moved: {moved})"
    );
}

#[test]
fn a_stopped_wave_ends_stopped_and_lists_every_application() {
    // Before: a stopped wave reported no application at all and exited 2 ("invalid input").
    let (spec, run) = wave_stopped_at_1300();
    let r = &run.report;
    assert_eq!(r.outcome, "stopped");
    assert_eq!(r.exit_code(), 8);
    assert_eq!(r.applications.len(), spec.applications.len(), "{r:?}");
    for a in &r.applications {
        assert!(
            [
                "rolled_back",
                "aborted",
                "completed",
                "not_started",
                "failed"
            ]
            .contains(&a.outcome.as_str()),
            "{}: {}",
            a.application,
            a.outcome
        );
    }
    assert!(r.applications.iter().any(|a| a.outcome == "not_started"));
    assert!(r.applications.iter().any(|a| a.outcome != "not_started"));
}

/// `waves plan --out DIR` writes wave files whose plan paths resolve from DIR (the portfolio names
/// them relative to itself), so `local wave` runs what it wrote; a plan that is not there is
/// named as a warning.
#[test]
fn waves_written_elsewhere_run_as_written() {
    let dir = std::env::temp_dir().join(format!("cutover-portfolio-run-{}", std::process::id()));
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wave-12");
    for app in ["db-core", "catalog", "identity"] {
        write(
            &dir.join("plans"),
            &format!("{app}.yaml"),
            &std::fs::read_to_string(examples.join(format!("plans/{app}.yaml"))).unwrap(),
        );
    }
    let portfolio = write(
        &dir,
        "portfolio.yaml",
        "applications:\n  - {name: db-core, team: data, criticality: high, strategy: replatform}\n  - {name: catalog, team: shop, criticality: low, strategy: rehost, dependsOn: [db-core]}\n  - {name: identity, team: iam, criticality: low, strategy: rehost}\n  - {name: ghost, team: spooky, criticality: low, strategy: rehost}\n",
    );
    let out_dir = dir.join("elsewhere/waves");
    let cutover = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(args)
            .output()
            .unwrap()
    };
    let planned = cutover(&[
        "waves",
        "plan",
        portfolio.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        planned.status.success(),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let warnings = String::from_utf8_lossy(&planned.stderr);
    assert!(
        warnings.contains("ghost.yaml"),
        "the missing plan is named: {warnings}"
    );
    assert!(!warnings.contains("catalog.yaml"), "{warnings}");
    let wave1 = std::fs::read_to_string(out_dir.join("wave-1.yaml")).unwrap();
    assert!(wave1.contains("../../plans/db-core.yaml"), "{wave1}");
    let world = examples.join("world.yaml");
    for wave in ["wave-1.yaml", "wave-2.yaml"] {
        let text = std::fs::read_to_string(out_dir.join(wave)).unwrap();
        if text.contains("ghost") {
            continue;
        }
        let ran = cutover(&[
            "local",
            "wave",
            "--wave",
            out_dir.join(wave).to_str().unwrap(),
            "--world",
            world.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(
            ran.status.success(),
            "{wave}: {}{}",
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        );
    }
}

/// No rounds: with the cap out of the way, every application starts within one scheduling
/// interval of its last dependency's end (or of the wave's start), and the wave ends within one
/// interval per level of its dependency graph after its critical path.
#[test]
fn applications_start_as_soon_as_their_dependencies_end() {
    let mut spec = load_wave(&example().join("wave.yaml")).expect("wave");
    spec.max_concurrency = 12;
    let world = load_world(&example().join("world.yaml")).expect("world");
    let run = run_wave_local(&spec, &world, &RunOptions::default());
    let r = &run.report;
    let interval = spec.scheduling_interval_seconds as f64;
    assert!(r.critical_path_seconds > 0.0);
    assert!(
        r.longest_start_delay_seconds <= interval,
        "an application waited {} s after its dependencies",
        r.longest_start_delay_seconds
    );
    // wave-12's longest chain has four levels (db-core, catalog, pricing, orders …).
    assert!(
        r.simulated_seconds <= r.critical_path_seconds + 5.0 * interval,
        "{} s against a critical path of {} s",
        r.simulated_seconds,
        r.critical_path_seconds
    );
    assert!(r.max_concurrent_applications <= 12);
    // With the example's cap of 3 the cap binds, and an application may wait for a slot.
    let capped = run_wave_local(
        &load_wave(&example().join("wave.yaml")).unwrap(),
        &world,
        &RunOptions::default(),
    );
    assert!(capped.report.max_concurrent_applications <= 3);
    assert!(capped.report.simulated_seconds >= r.simulated_seconds);
}

/// Sixty of `examples/route53-200`'s independent applications at once, in one account whose
/// Route 53 answers five requests a second: they shift together, queue for the shared budget,
/// and none fails for it.
#[test]
fn cutovers_sharing_one_account_queue_for_route53_and_none_fails() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/route53-200");
    let mut spec = load_wave(&dir.join("wave.yaml")).expect("wave");
    spec.applications.truncate(60);
    spec.max_concurrency = 60;
    let world = load_world(&dir.join("world.yaml")).expect("world");
    assert_eq!(world.route53.requests_per_second, 5);

    let shared = run_wave_local(&spec, &world, &RunOptions::default()).report;
    assert_eq!(shared.outcome, "completed", "{:?}", shared.applications);
    assert_eq!(shared.max_concurrent_applications, 60);
    let q = &shared.route53;
    assert_eq!(
        q.throttled, 0,
        "the budget never lets cutover exceed the account's rate"
    );
    assert!(q.waiting_seconds > 20, "the shifts queued: {q:?}");
    let used = q.budget_used_while_waiting.expect("callers waited");
    assert!(used >= 0.9, "budget used at {used} while callers waited");
    assert_eq!(shared.cutovers.executions, 60);
    assert!(
        shared.cutovers.max_estimated_cost_usd < 0.01,
        "{:?}",
        shared.cutovers
    );

    // The other way, for comparison: everyone sends at once and backs off when throttled.
    let options = RunOptions {
        route53: cutover_core::budget::Coordination::Backoff,
        ..RunOptions::default()
    };
    let backoff = run_wave_local(&spec, &world, &options).report;
    assert!(backoff.route53.throttled > 100, "{:?}", backoff.route53);
}

#[test]
fn applications_sharing_a_record_set_or_a_dms_task_are_refused_at_check() {
    let dir = std::env::temp_dir().join(format!("cutover-shared-{}", std::process::id()));
    let catalog = std::fs::read_to_string(example().join("plans/catalog.yaml")).unwrap();
    let identity = std::fs::read_to_string(example().join("plans/identity.yaml")).unwrap();
    // identity moved onto catalog's record (the case of the name does not matter to Route 53).
    write(
        &dir,
        "identity.yaml",
        &identity.replace(
            "recordName: identity.example.com",
            "recordName: Catalog.example.com.",
        ),
    );
    write(&dir, "catalog.yaml", &catalog);
    let wave = write(
        &dir,
        "wave.yaml",
        "wave: shared\nmaxConcurrency: 2\napplications:\n  - {plan: catalog.yaml}\n  - {plan: identity.yaml}\n",
    );
    let e = load_wave(&wave).expect_err("shared record set").to_string();
    assert!(
        e.contains("applications[1].plan: dns.recordName") && e.contains("catalog and identity"),
        "{e}"
    );
    // Distinct records pass.
    write(&dir, "identity.yaml", &identity);
    assert!(load_wave(&wave).is_ok());
}

#[test]
fn run_ids_of_long_names_never_collide() {
    use cutover_cli::wave::run_id_for;
    let wave = "w".repeat(60);
    let (a, b) = (
        run_id_for(&wave, &format!("{}-alpha", "x".repeat(30))),
        run_id_for(&wave, &format!("{}-bravo", "x".repeat(30))),
    );
    assert_ne!(a, b, "both truncate to the same 80 characters");
    for id in [&a, &b] {
        assert!(id.len() <= 80, "{id}");
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
    assert_eq!(
        run_id_for("wave-1", "orders"),
        "wave-1-orders",
        "short ids unchanged"
    );
    assert_eq!(
        a,
        run_id_for(&wave, &format!("{}-alpha", "x".repeat(30))),
        "stable"
    );
}

#[test]
fn an_application_completed_with_errors_blocks_its_dependants() {
    // orders ends on green but unhealthy after its data switch (nobody approves losing writes):
    // completed_with_errors. Before, that was `completed` and shipping started on it.
    let dir = std::env::temp_dir().join(format!("cutover-cwe-{}", std::process::id()));
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let orders =
        std::fs::read_to_string(examples.join("data-blue-until-switch/plan.yaml")).unwrap();
    let shipping = std::fs::read_to_string(examples.join("dms-happy-path/plan.yaml"))
        .unwrap()
        .replace("application: orders", "application: shipping")
        .replace("orders.example.com", "shipping.example.com")
        .replace("task:ORDERS", "task:SHIPPING");
    write(&dir, "orders.yaml", &orders);
    write(&dir, "shipping.yaml", &shipping);
    let wave = write(
        &dir,
        "wave.yaml",
        "wave: cwe\nmaxConcurrency: 2\napplications:\n  - {plan: orders.yaml}\n  - {plan: shipping.yaml, dependsOn: [orders]}\n",
    );
    let world = std::fs::read_to_string(examples.join("data-blue-until-switch/world.yaml"))
        .unwrap()
        .replace("[[0, 200]]", "[[0, 200], [3300, 503]]");
    let world = write(&dir, "world.yaml", &world);
    let spec = load_wave(&wave).expect("wave");
    let run = run_wave_local(
        &spec,
        &load_world(&world).expect("world"),
        &RunOptions::default(),
    );
    let outcome = |app: &str| {
        run.report
            .applications
            .iter()
            .find(|a| a.application == app)
            .map(|a| a.outcome.clone())
            .unwrap()
    };
    assert_eq!(
        outcome("orders"),
        "completed_with_errors",
        "{:?}",
        run.report
    );
    assert_eq!(outcome("shipping"), "blocked", "{:?}", run.report);
    assert_eq!(run.report.exit_code(), 5);
}

#[test]
fn wave_chaos_seeds_that_broke_the_promises_keep_them() {
    // 87: the wave execution failed on its own (the run table failing past its steps' retries)
    // and the report listed no application; 10 and 246: an application's close still releasing
    // its lock when the next started (the cap and the dependencies count the outcome); 320: a
    // close whose lock release failed past its retries, left to the safety net.
    for seed in [10, 87, 246, 320, 48] {
        let case = cutover_cli::chaos_wave::generate(seed);
        let v = cutover_cli::chaos_wave::check(&case).unwrap();
        assert!(v.violations.is_empty(), "seed {seed}: {:?}", v.violations);
    }
    // A wave whose own execution fails still reports every application it started.
    let v = cutover_cli::chaos_wave::check(&cutover_cli::chaos_wave::generate(48)).unwrap();
    assert_eq!(v.outcome, "wave failed");
}

/// A wave given whole carries its plans in the execution input, which StartExecution caps at
/// 262,144 bytes: a wave over it is refused when read to be started whole, naming the cap and
/// the way by reference (the calendar); the same wave still reads for the calendar.
#[test]
fn a_wave_too_large_to_start_whole_is_refused_naming_the_cap() {
    let dir = std::env::temp_dir().join(format!("cutover-large-{}", std::process::id()));
    let catalog = std::fs::read_to_string(example().join("plans/catalog.yaml")).unwrap();
    let mut list = String::new();
    for i in 0..300 {
        let name = format!("app-{i:03}");
        let task = format!("APP{i:03}");
        let plan = catalog
            .replace("application: catalog", &format!("application: {name}"))
            .replace("task:CATALOG", &format!("task:{task}"))
            .replace("catalog.example.com", &format!("{name}.example.com"))
            .replace("blue-catalog", &format!("blue-{name}"))
            .replace("green-catalog", &format!("green-{name}"));
        write(&dir, &format!("{name}.yaml"), &plan);
        list.push_str(&format!("  - {{plan: {name}.yaml}}\n"));
    }
    let wave = write(
        &dir,
        "wave.yaml",
        &format!("wave: large\nmaxConcurrency: 10\napplications:\n{list}"),
    );
    let e = cutover_cli::wave::load_wave_whole(&wave)
        .expect_err("over 256 KB")
        .to_string();
    assert!(
        e.contains("300 applications") && e.contains("at most 262144") && e.contains("waves queue"),
        "{e}"
    );
    assert_eq!(
        load_wave(&wave).unwrap().applications.len(),
        300,
        "the calendar reads it"
    );
    // The example of 200 applications fits.
    let w200 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wave-200/wave.yaml");
    assert!(cutover_cli::wave::load_wave_whole(&w200).is_ok());
}

/// Lean histories (a wave's executions keep no state data) change nothing a report says: one
/// run reported both ways is the same report.
#[test]
fn lean_histories_leave_every_report_unchanged() {
    let plan = cutover_cli::load_plan(&example().join("plans/catalog.yaml")).unwrap();
    let world = load_world(&example().join("world.yaml")).unwrap();
    let full = cutover_cli::run_local(&plan, &world, &RunOptions::default()).unwrap();
    let lean = cutover_cli::run_local(
        &plan,
        &world,
        &RunOptions {
            lean_history: true,
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&full.report).unwrap(),
        serde_json::to_value(&lean.report).unwrap()
    );
    assert!(full.execution.history.iter().any(|e| !e.details.is_null()));
    assert!(lean.execution.history.iter().all(|e| e.details.is_null()));
    assert_eq!(full.execution.history.len(), lean.execution.history.len());
}

#[test]
fn the_wave_report_gives_its_largest_state_and_longest_history() {
    let spec = load_wave(&example().join("wave.yaml")).unwrap();
    let world = load_world(&example().join("world.yaml")).unwrap();
    let run = run_wave_local(&spec, &world, &RunOptions::default());
    let r = &run.report;
    let input = serde_json::to_string(&serde_json::json!({ "wave": &spec }))
        .unwrap()
        .len();
    // The first state's output holds the input with the plans: at least its size, under 256 KB.
    assert!(
        r.max_state_bytes >= input && r.max_state_bytes < 262_144,
        "{} for an input of {input}",
        r.max_state_bytes
    );
    let longest = run
        .children
        .iter()
        .map(|c| c.history.len())
        .chain([run.execution.history.len()])
        .max()
        .unwrap();
    assert_eq!(r.max_history_events, longest);
    assert!(longest > 100 && longest < 25_000, "{longest}");
}

/// A wave whose execution would outgrow its history hands over to a fresh execution of itself
/// (`handoverAfterEvents`): the applications run exactly as without hand-overs, and no execution
/// of the chain writes more history than the bound plus one pass, so the count
/// `next_wave_round` keeps never falls short of what Step Functions records.
#[test]
fn a_wave_hands_over_before_its_history_fills() {
    let world = load_world(&example().join("world.yaml")).unwrap();
    let whole = run_wave_local(
        &load_wave(&example().join("wave.yaml")).unwrap(),
        &world,
        &RunOptions::default(),
    );
    assert_eq!(whole.report.handovers, 0);
    assert_eq!(whole.generations.len(), 1);
    for bound in [100u32, 250] {
        let mut spec = load_wave(&example().join("wave.yaml")).unwrap();
        spec.handover_after_events = bound;
        let run = run_wave_local(&spec, &world, &RunOptions::default());
        let r = &run.report;
        assert!(r.handovers >= 2, "{bound}: {} hand-overs", r.handovers);
        assert_eq!(run.generations.len(), r.handovers + 1);
        // The largest pass of this wave: a Map of three starts, the hand-over's own states.
        let slack = (cutover_core::steps::EVENTS_PER_PASS
            + cutover_core::steps::EVENTS_PER_MAP
            + 3 * cutover_core::steps::EVENTS_PER_START
            + 20) as usize;
        for g in &run.generations {
            assert!(
                g.history.len() <= bound as usize + slack,
                "{bound}: {} wrote {} events",
                g.name,
                g.history.len()
            );
        }
        // Every execution but the last handed over; the last closed the wave.
        for g in &run.generations[..r.handovers] {
            assert!(
                g.output
                    .as_ref()
                    .is_some_and(|o| o["handedOverTo"].is_string()),
                "{}",
                g.name
            );
        }
        assert_eq!(run.execution.name, run.generations.last().unwrap().name);
        assert_eq!(r.outcome, whole.report.outcome);
        let apps = |r: &cutover_cli::wave::WaveRunReport| {
            r.applications
                .iter()
                .map(|a| {
                    (
                        a.application.clone(),
                        a.outcome.clone(),
                        a.started_at,
                        a.ended_at,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(apps(r), apps(&whole.report), "{bound}");
        assert_eq!(r.simulated_seconds, whole.report.simulated_seconds);
    }
}

/// A hand-over's name is the wave run id and the execution's number, within Step Functions' 80
/// characters; two long wave run ids that share a beginning still name different executions.
#[test]
fn hand_over_names_fit_and_never_collide() {
    use cutover_core::steps::handover_name;
    assert_eq!(
        handover_name("wave-12-20261205T020000Z", 3),
        "wave-12-20261205T020000Z-h3"
    );
    let long_a = format!("{}a", "w".repeat(79));
    let long_b = format!("{}b", "w".repeat(79));
    let (a, b) = (handover_name(&long_a, 12), handover_name(&long_b, 12));
    assert!(a.len() <= 80 && b.len() <= 80, "{a} {b}");
    assert_ne!(a, b);
    assert!(a.ends_with("-h12"));
    assert!(a
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
}

/// A wave whose outline would not leave a pass's state room under Step Functions' 262,144
/// bytes is refused when it is checked, naming the cap and the size that fits, instead of
/// failing at its first pass with States.DataLimitExceeded.
#[test]
fn a_wave_too_large_for_its_state_is_refused_naming_the_cap() {
    let mut spec = load_wave(&example().join("wave.yaml")).unwrap();
    let template = spec.applications[0].clone();
    spec.applications = (0..2000)
        .map(|i| {
            let mut a = template.clone();
            a.application = format!("app-{i:04}");
            a.run_id = format!("wave-2000-app-{i:04}");
            a.plan.application = a.application.clone();
            a.depends_on = if i > 0 {
                vec![format!("app-{:04}", i - 1)]
            } else {
                vec![]
            };
            a
        })
        .collect();
    let problems = cutover_core::steps::wave_problems(&spec);
    let too_large = problems
        .iter()
        .find(|p| p.contains("outline"))
        .unwrap_or_else(|| panic!("{problems:?}"));
    assert!(
        too_large.contains(&cutover_core::steps::MAX_OUTLINE_BYTES.to_string())
            && too_large.contains("at most about"),
        "{too_large}"
    );
    spec.applications.truncate(1000);
    assert!(
        cutover_core::steps::outline_too_large(&spec).is_none(),
        "a thousand fit"
    );
}
