//! Helpers the scenario tests share: the examples as text, edits that must apply, one local run,
//! and what a finished run shows.
#![allow(dead_code)] // each test binary uses its own share

use cutover_cli::local::LocalRun;
use cutover_cli::{run_local, RunOptions};
use cutover_core::plan::Plan;
use cutover_sim::WorldSpec;
use std::path::Path;

/// A file of an example, as text.
pub fn text(example: &str, file: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(example)
        .join(file);
    std::fs::read_to_string(p).unwrap()
}

/// The text with each `(from, to)` replaced once; an edit that finds nothing fails the test.
pub fn edit(mut s: String, edits: &[(&str, &str)]) -> String {
    for (from, to) in edits {
        assert!(s.contains(from), "{from:?} is not in the text");
        s = s.replacen(from, to, 1);
    }
    s
}

/// One local run of a plan and world given as text.
pub fn run(plan: &str, world: &str, duplicate_delivery: bool) -> LocalRun {
    let plan = Plan::parse(plan, false).expect("plan");
    let world = WorldSpec::parse(world, false).expect("world");
    let opts = RunOptions {
        duplicate_delivery,
        ..RunOptions::default()
    };
    run_local(&plan, &world, &opts).expect("simulated run")
}

/// Simulated seconds of the first `event` of the run's timeline (the test fails without one).
pub fn first(r: &LocalRun, event: &str) -> f64 {
    r.report
        .timeline
        .iter()
        .find(|e| e.event == event)
        .unwrap_or_else(|| panic!("no {event} in {:?}", r.report.timeline))
        .t
}

pub fn happened(r: &LocalRun, event: &str) -> bool {
    r.report.timeline.iter().any(|e| e.event == event)
}

/// The weight of the green record(s) at the end.
pub fn green_weight(r: &LocalRun) -> u32 {
    r.report
        .dns
        .iter()
        .filter(|d| d.set_identifier.as_deref() == Some("green"))
        .filter_map(|d| d.weight)
        .sum()
}

/// DNS is the examples' snapshot: one simple record to blue.
pub fn served_by_blue_only(r: &LocalRun) -> bool {
    r.report.dns.len() == 1 && r.report.dns[0].values == vec!["blue-lb.example.com".to_string()]
}
