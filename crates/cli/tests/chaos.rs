//! CI's share of the chaos suite: generated plans, worlds and fault schedules, each run checked
//! against every promise (see `cutover_cli::chaos`). `cutover chaos --runs N --seed S` runs more.

use cutover_cli::chaos::{check, generate};

#[test]
fn generated_cases_keep_every_promise() {
    let mut failing = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for seed in 1..=150 {
        let v = check(&generate(seed)).unwrap_or_else(|e| panic!("{e}"));
        *outcomes.entry(v.outcome.clone()).or_default() += 1;
        if !v.violations.is_empty() {
            failing.push((seed, v.violations));
        }
    }
    assert!(failing.is_empty(), "{failing:#?}");
    // The generator reaches every ending, so the checks above were exercised on each.
    for o in ["completed", "rolled_back", "aborted", "failed"] {
        assert!(outcomes.get(o).copied().unwrap_or(0) > 0, "{outcomes:?}");
    }
}

#[test]
fn a_case_is_determined_by_its_seed() {
    let (a, b) = (generate(42), generate(42));
    assert_eq!(a.plan, b.plan);
    assert_eq!(a.world, b.world);
    assert_eq!(a.duplicate_delivery, b.duplicate_delivery);
    assert_ne!(generate(43).world, a.world);
    assert_eq!(check(&a).unwrap().outcome, check(&b).unwrap().outcome);
}

/// The replay promise across versions: `cutover chaos --runs 1 --seed S`, printed with every
/// failure, must rebuild the case that failed, also after a dependency update. The generator
/// draws from `rand`'s StdRng, whose stream its authors may change between releases; these
/// values were drawn with rand 0.10, so a change of the stream fails here instead of silently
/// replaying another case.
#[test]
fn a_seed_replays_the_same_case_across_versions() {
    let c = generate(2026);
    assert_eq!(
        c.plan["traffic"],
        serde_json::json!({"steps": [
            {"weight": 34, "bakeSeconds": 596},
            {"weight": 57, "bakeSeconds": 809},
            {"weight": 100, "bakeSeconds": 425}
        ]}),
        "seed 2026 no longer draws the case it drew with rand 0.10"
    );
    // The last draws, re-pinned whenever the generator itself draws more (it did when it
    // learned hook throttling, long faults and racing deliveries).
    assert!(c.duplicate_delivery);
}

/// Every generated case is a valid input: a refused world or plan is the generator's bug, not a
/// finding (seed 5167 once drew a hook timeline with two entries at t = 0).
#[test]
fn generated_inputs_are_always_accepted() {
    for seed in 1..=12_000 {
        let c = generate(seed);
        cutover_sim::WorldSpec::parse(&c.world.to_string(), true)
            .unwrap_or_else(|e| panic!("seed {seed}: world refused: {e}"));
        cutover_core::plan::Plan::parse(&c.plan.to_string(), true)
            .unwrap_or_else(|e| panic!("seed {seed}: plan refused: {e}"));
    }
}
