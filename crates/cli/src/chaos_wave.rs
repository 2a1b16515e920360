//! Chaos for waves (`cutover chaos --waves`): generated waves of two to five applications with
//! random dependencies, caps, failing greens, faults at every operation and operators stopping
//! the wave, each run on the real wave and cutover machines and checked against the wave's
//! promises (docs/waves.md):
//!
//! - every application is reported once; the outcome is `completed` exactly when all completed,
//!   `stopped` only when an operator stopped the wave, `partial` or `failed` otherwise, and the
//!   exit code follows (0, 8, 5);
//! - no application started before each of its dependencies completed, and none whose
//!   dependency did not complete started at all;
//! - never more applications at once than the cap, and no application's execution twice;
//! - each application's DNS ends exactly at its snapshot or fully on green, as its outcome says,
//!   and every lock is released (a failed rollback keeps its own);
//! - a stopped wave leaves no application running.

use crate::chaos::{Case, Verdict};
use crate::local::RunOptions;
use crate::wave::{run_wave_local, WaveRun};
use cutover_core::model::{normalize_name, RecordSet};
use cutover_core::steps::WaveSpec;
use cutover_sim::WorldSpec;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

const ZONE: &str = "Z0123456789";

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Generates the wave case of `seed`.
pub fn generate(seed: u64) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = rng.random_range(2..6);
    let names: Vec<String> = (0..n).map(|i| format!("app-{i}")).collect();
    let mut applications = vec![];
    let mut records = vec![];
    let mut tasks = vec![];
    let mut http = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        let depends_on: Vec<&String> = names[..i].iter().filter(|_| rng.random_bool(0.4)).collect();
        let task = format!("arn:aws:dms:us-east-1:123456789012:task:APP{i}");
        let health = format!("https://green-{name}.example.com/health");
        let steps: Vec<Value> = match rng.random_range(0..2) {
            0 => vec![json!({"weight": 100, "bakeSeconds": rng.random_range(60..600)})],
            _ => vec![
                json!({"weight": rng.random_range(1..100), "bakeSeconds": rng.random_range(60..600)}),
                json!({"weight": 100, "bakeSeconds": rng.random_range(60..600)}),
            ],
        };
        let plan = json!({
            "application": name,
            "replication": {"kind": "dms", "taskArn": task, "maxLagSeconds": 30, "stableSamples": 1, "sampleIntervalSeconds": 60, "deadlineSeconds": 3600},
            "dns": {"hostedZoneId": ZONE, "recordName": format!("{name}.example.com"), "recordType": "CNAME", "ttl": 60,
                    "blue": {"setIdentifier": "blue", "value": format!("blue-{name}.example.com")},
                    "green": {"setIdentifier": "green", "value": format!("green-{name}.example.com")}},
            "traffic": {"steps": steps},
            "health": {"intervalSeconds": 30, "failureThreshold": 2, "http": [{"url": health, "expectStatus": 200}]},
            "rollback": {"budgetSeconds": 3600},
        });
        applications.push(json!({
            "application": name,
            "runId": crate::wave::run_id_for(&format!("chaos-{seed}"), name),
            "dependsOn": depends_on,
            "plan": plan,
        }));
        records.push(json!({"name": format!("{name}.example.com."), "type": "CNAME", "ttl": 300, "values": [format!("blue-{name}.example.com")]}));
        let settle = rng.random_range(120..900);
        let lag = if rng.random_bool(0.9) {
            json!([[0, 600], [settle, 3]])
        } else {
            json!([[0, 600], [settle, 200]])
        };
        tasks.push(json!({"arn": task, "migrationType": "full-load-and-cdc", "status": "ready", "lag": lag}));
        let curve = if rng.random_bool(0.3) {
            json!([[0, 200], [rng.random_range(1..12000), 503]])
        } else {
            json!([[0, 200]])
        };
        http.insert(health, curve);
    }
    let wave = json!({
        "wave": format!("chaos-{seed}"),
        "maxConcurrency": rng.random_range(1..4),
        "schedulingIntervalSeconds": *pick(&mut rng, &[30, 60]),
        "applications": applications,
    });
    let mut faults = vec![];
    let operations = crate::chaos::dns_case_operations();
    for _ in 0..rng.random_range(0..4) {
        let (op, errors) = pick(&mut rng, &operations);
        let times = if rng.random_bool(0.1) {
            rng.random_range(8..30)
        } else {
            rng.random_range(1..7)
        };
        faults.push(
            json!({"operation": op, "error": pick(&mut rng, errors), "times": times,
                           "afterSeconds": rng.random_range(0..12000)}),
        );
    }
    let mut operator = vec![];
    if rng.random_bool(0.15) {
        operator.push(json!({"afterSeconds": rng.random_range(0..10000), "action": "stop", "by": "dave@example.com"}));
    }
    let world = json!({
        "route53": {"requestsPerSecond": rng.random_range(1..6), "propagationSeconds": rng.random_range(5..60),
                    "zones": [{"id": ZONE, "name": "example.com.", "records": records}]},
        "dms": {"tasks": tasks},
        "http": http,
        "faults": faults,
        "operator": operator,
    });
    Case {
        seed,
        plan: Value::Null,
        world,
        duplicate_delivery: false,
        concurrent: false,
        wave: Some(wave),
    }
}

/// Runs one wave case and checks every promise.
pub fn check(case: &Case) -> Result<Verdict, String> {
    let wave: WaveSpec = serde_json::from_value(case.wave.clone().unwrap_or_default())
        .map_err(|e| format!("seed {}: generated wave refused: {e}", case.seed))?;
    let world = WorldSpec::parse(&case.world.to_string(), true)
        .map_err(|e| format!("seed {}: generated world refused: {e}", case.seed))?;
    let opts = RunOptions {
        seed: case.seed,
        ..RunOptions::default()
    };
    let run = run_wave_local(&wave, &world, &opts);
    Ok(Verdict {
        seed: case.seed,
        outcome: format!("wave {}", run.report.outcome),
        violations: violations(&wave, &world, &run),
    })
}

/// Outcomes of an application that took no traffic or gave it all back.
const AT_BLUE: &[&str] = &["rolled_back", "aborted", "failed", "blocked", "not_started"];

fn violations(wave: &WaveSpec, world: &WorldSpec, run: &WaveRun) -> Vec<String> {
    let mut v = vec![];
    let r = &run.report;
    let apps: BTreeMap<&str, &crate::wave::AppEntry> = r
        .applications
        .iter()
        .map(|a| (a.application.as_str(), a))
        .collect();
    if apps.len() != wave.applications.len() || r.applications.len() != wave.applications.len() {
        v.push(format!(
            "{} applications reported for {} in the wave",
            r.applications.len(),
            wave.applications.len()
        ));
    }
    let stopped_by_operator = world
        .operator
        .iter()
        .any(|o| o.action == cutover_sim::spec::OperatorAction::Stop);
    let completed = r
        .applications
        .iter()
        .filter(|a| a.outcome == "completed")
        .count();
    // The wave execution itself failed (its steps' retries spent): reported as failed, every
    // application still listed as its run ended.
    let wave_failed = r.outcome == "failed" && r.error.is_some();
    let expected = if wave_failed {
        "failed"
    } else if r.outcome == crate::wave::STOPPED {
        if !stopped_by_operator {
            v.push("the wave ended stopped though nobody stopped it".into());
        }
        crate::wave::STOPPED
    } else if completed == wave.applications.len() {
        "completed"
    } else if completed > 0 {
        "partial"
    } else {
        "failed"
    };
    if r.outcome != expected {
        v.push(format!(
            "wave outcome {} with {completed} of {} completed",
            r.outcome,
            wave.applications.len()
        ));
    }
    let exit = match r.outcome.as_str() {
        "completed" => 0,
        "stopped" => 8,
        _ => 5,
    };
    if r.exit_code() != exit {
        v.push(format!("exit {} for outcome {}", r.exit_code(), r.outcome));
    }
    // The cap holds an application from its start until its outcome is recorded (the last
    // audit event before `run-closed`: the close may still be releasing its lock after).
    let busy = busy(wave, run);
    let peak = busy_peak(&busy);
    if peak > r.max_concurrency as usize {
        v.push(format!(
            "{peak} applications ran at once under a cap of {}",
            r.max_concurrency
        ));
    }
    let mut executions: HashMap<&str, usize> = HashMap::new();
    for c in &run.children {
        *executions.entry(c.name.as_str()).or_default() += 1;
    }
    for (name, n) in &executions {
        if *n > 1 {
            v.push(format!("{name} ran {n} times"));
        }
    }
    for a in &wave.applications {
        let Some(entry) = apps.get(a.application.as_str()) else {
            continue;
        };
        let started = entry.started_at.is_some();
        for d in &a.depends_on {
            let dep = apps.get(d.as_str());
            let dep_done = dep.is_some_and(|x| x.outcome == "completed");
            if started && !dep_done {
                v.push(format!(
                    "{} started though its dependency {d} ended {}",
                    a.application,
                    dep.map(|x| x.outcome.as_str()).unwrap_or("unreported")
                ));
            }
            if let (Some((s, _)), Some((_, e))) = (busy.get(&a.application), busy.get(d)) {
                if s < e {
                    v.push(format!(
                        "{} started at {s} s, before its dependency {d} recorded its outcome at {e} s",
                        a.application
                    ));
                }
            }
        }
        if entry.outcome == "running" {
            v.push(format!("{} still runs after the wave ended", a.application));
        }
        // DNS: the snapshot, or fully green, as the outcome says.
        // The generator draws dns plans only.
        let Some(d) = a.plan.dns.as_ref() else {
            v.push(format!("{} was drawn without dns", a.application));
            continue;
        };
        let dns = run.world.dns(ZONE, &d.record_name, d.record_type);
        let blue = dns.len() == 1
            && dns[0].weight.is_none()
            && dns[0]
                .values
                .iter()
                .map(|x| normalize_name(x))
                .collect::<Vec<_>>()
                == vec![format!("blue-{}.example.com", a.application)];
        let green_name = format!("green-{}.example.com", a.application);
        let serving: Vec<&RecordSet> = dns.iter().filter(|x| x.weight != Some(0)).collect();
        let green = !serving.is_empty()
            && serving
                .iter()
                .all(|x| x.values.iter().all(|y| normalize_name(y) == green_name));
        let outcome = entry.outcome.as_str();
        if outcome.starts_with("completed") && !green {
            v.push(format!(
                "{} {outcome} but its DNS is not on green: {dns:?}",
                a.application
            ));
        }
        if AT_BLUE.contains(&outcome) && !blue {
            v.push(format!(
                "{} {outcome} but its DNS is not its snapshot: {dns:?}",
                a.application
            ));
        }
        if !blue && !green && outcome != "rollback_failed" {
            v.push(format!(
                "{} left half-shifted ({outcome}): {dns:?}",
                a.application
            ));
        }
        if outcome != "rollback_failed" {
            if let Some(holder) = run.store.lock_holder(&a.application) {
                v.push(format!(
                    "{} ({outcome}) left its lock held by {holder}",
                    a.application
                ));
            }
        }
    }
    v
}

/// Each started application's busy interval, in seconds from the wave's start: from its run's
/// start to its last audit event before `run-closed` (its outcome recorded; the close may still
/// be releasing its lock after).
fn busy(wave: &WaveSpec, run: &WaveRun) -> HashMap<String, (f64, f64)> {
    let mut out = HashMap::new();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return out;
    };
    let origin = run.execution.started;
    let secs = |t: chrono::DateTime<chrono::Utc>| (t - origin).num_milliseconds() as f64 / 1000.0;
    for a in &wave.applications {
        let store = &*run.store;
        let (rec, events) = rt.block_on(async {
            use cutover_core::ports::RunStore;
            (
                store.load_run(&a.run_id).await.ok().flatten(),
                store.events(&a.run_id).await.unwrap_or_default(),
            )
        });
        let Some(rec) = rec else { continue };
        let end = events
            .iter()
            .filter(|e| e.event != "run-closed")
            .map(|e| e.at)
            .max()
            .unwrap_or(rec.started_at);
        out.insert(a.application.clone(), (secs(rec.started_at), secs(end)));
    }
    out
}

/// The most applications busy at once.
fn busy_peak(busy: &HashMap<String, (f64, f64)>) -> usize {
    let mut edges: Vec<(f64, i32)> = busy
        .values()
        .flat_map(|(s, e)| [(*s, 1), (*e, -1)])
        .collect();
    // An end and a start at the same instant do not overlap.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    peak as usize
}
