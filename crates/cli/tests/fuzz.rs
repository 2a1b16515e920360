//! Property tests over arbitrary input for every parser at the boundary: plan, world, wave and
//! portfolio files (random bytes and random mutations of valid files), every step's Lambda event
//! and the approval API's requests (random JSON). Each input must be answered — accepted or
//! refused with an error — without a panic. Seeded, so a failure names the seed that replays it.

use cutover_core::api::{handle_api, ApiRequest};
use cutover_core::plan::Plan;
use cutover_core::steps::{dispatch, registry::REGISTRY, Deps};
use cutover_core::waves::{Portfolio, WaveFile};
use cutover_sim::{MemoryStore, SimClock, World, WorldSpec};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

fn example(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path),
    )
    .unwrap()
}

const ALPHABET: &[u8] = b"{}[]:,\"'-_ .0123456789aAzZ#&*!|>\n\t\\/eE+";

/// A valid text with a few random edits: bytes replaced, inserted, deleted, lines swapped.
fn mutate(rng: &mut StdRng, text: &str) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..6) {
        if b.is_empty() {
            break;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..4) {
            0 => b[i] = ALPHABET[rng.random_range(0..ALPHABET.len())],
            1 => b.insert(i, ALPHABET[rng.random_range(0..ALPHABET.len())]),
            2 => {
                b.remove(i);
            }
            _ => {
                let j = rng.random_range(0..b.len());
                let (lo, hi) = (i.min(j), i.max(j));
                b[lo..hi].reverse();
            }
        }
    }
    b
}

fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
    (0..rng.random_range(0..200))
        .map(|_| rng.random())
        .collect()
}

fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 3 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random_range(-1e12..1e12)),
        3 => json!(rng.random::<i64>()),
        4 => json!(
            [
                "r1",
                "orders",
                "",
                "green",
                "approve",
                "9999999999999",
                "-1"
            ][rng.random_range(0..7)]
        ),
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "runId",
                "plan",
                "action",
                "index",
                "weight",
                "bake",
                "gate",
                "taskToken",
                "changeId",
                "submittedAt",
                "decision",
                "reason",
                "detail",
                "error",
                "outcome",
                "to",
                "launch",
                "collapse",
                "jobId",
            ];
            Value::Object(
                (0..rng.random_range(0..5))
                    .map(|_| {
                        (
                            keys[rng.random_range(0..keys.len())].to_string(),
                            random_json(rng, depth + 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

fn answered<T>(what: &str, seed: u64, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{what}: panicked on seed {seed}"))
}

#[test]
fn document_parsers_answer_every_input_without_panicking() {
    let plan = example("examples/data-blue-until-switch/plan.yaml");
    let world = example("examples/data-freeze-and-switch/world.yaml");
    let wave = example("examples/wave-12/wave.yaml");
    for seed in 0..3000u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let json = rng.random_bool(0.3);
        let inputs = [
            mutate(&mut rng, &plan),
            mutate(&mut rng, &world),
            mutate(&mut rng, &wave),
            random_bytes(&mut rng),
        ];
        for (i, bytes) in inputs.iter().enumerate() {
            let text = String::from_utf8_lossy(bytes);
            answered("Plan::parse", seed, || {
                let _ = Plan::parse(&text, json);
            });
            answered("WorldSpec::parse", seed, || {
                let _ = WorldSpec::parse(&text, json);
            });
            if i >= 2 {
                answered("WaveFile::parse", seed, || {
                    let _ = WaveFile::parse(&text, json);
                });
                answered("Portfolio::parse", seed, || {
                    let _ = Portfolio::parse(&text, json);
                });
            }
        }
    }
}

fn deps() -> Deps {
    let spec = WorldSpec::parse(
        &example("examples/data-freeze-and-switch/world.yaml"),
        false,
    )
    .unwrap();
    let clock = SimClock::start(spec.start_time);
    let world = Arc::new(World::new(spec, clock));
    cutover_sim::world_deps(world, Arc::new(MemoryStore::new()), Arc::new(NoCallbacks))
}

struct NoCallbacks;

#[async_trait::async_trait]
impl cutover_core::ports::TaskCallbacks for NoCallbacks {
    async fn send_success(&self, _: &str, _: Value) -> Result<(), cutover_core::ports::PortError> {
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

#[tokio::test(start_paused = true)]
async fn step_events_and_api_requests_are_answered_without_panicking() {
    let deps = deps();
    let plan: Value = serde_json::to_value(
        Plan::parse(&example("examples/data-freeze-and-switch/plan.yaml"), false).unwrap(),
    )
    .unwrap();
    for seed in 0..1500u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let f = &REGISTRY[rng.random_range(0..REGISTRY.len())];
        let mut event = random_json(&mut rng, 0);
        // Half the events carry a valid plan and run id, so the handlers get past the shape.
        if rng.random_bool(0.5) {
            if let Value::Object(m) = &mut event {
                m.insert("plan".into(), plan.clone());
                m.insert("runId".into(), json!("r1"));
            }
        }
        // A spawned task's panic comes back as a JoinError.
        let (d, name) = (deps.clone(), f.name);
        if tokio::spawn(async move { dispatch(name, event, &d).await.is_ok() })
            .await
            .is_err()
        {
            panic!("{name} panicked on seed {seed}");
        }
        let paths = [
            "/runs/r1",
            "/runs/r1/approvals/g1",
            "/runs/r1/abort",
            "/waves/w/schedule",
            "/",
            "/runs/../x",
            "/runs/r1/approvals/%00",
        ];
        let req = ApiRequest {
            method: ["GET", "POST", "PUT", "DELETE"][rng.random_range(0..4)].into(),
            path: paths[rng.random_range(0..paths.len())].into(),
            body: rng.random_bool(0.8).then(|| {
                if rng.random_bool(0.5) {
                    random_json(&mut rng, 0).to_string()
                } else {
                    String::from_utf8_lossy(&random_bytes(&mut rng)).into_owned()
                }
            }),
            identity: rng
                .random_bool(0.9)
                .then(|| "arn:aws:iam::123456789012:user/fuzz".into()),
            groups: vec![],
        };
        let (d, q) = (deps.clone(), req.clone());
        let r = tokio::spawn(async move { handle_api(&q, &d).await }).await;
        match r {
            Ok(resp) => assert!(
                (200..600).contains(&resp.status),
                "seed {seed}: {}",
                resp.status
            ),
            Err(_) => panic!("the API panicked on seed {seed}: {req:?}"),
        }
    }
}
