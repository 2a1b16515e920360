//! The `cutover` commands, one module each. Those that talk to a deployed stack share one AWS
//! context (`cutover_cli::deployed::Context`, built from [`stack::StackArgs`]).

pub mod bench;
pub mod chaos;
pub mod local;
pub mod plan;
pub mod rehearse;
pub mod report;
pub mod run;
pub mod stack;
pub mod wave;
pub mod waves;

use cutover_cli::load_plan;
use cutover_cli::load_world;

/// Both input files, or every error of both printed (the caller exits 2 and runs nothing).
pub fn load_inputs(
    plan: &std::path::Path,
    world: &std::path::Path,
) -> Option<(cutover_core::Plan, cutover_sim::WorldSpec)> {
    match (load_plan(plan), load_world(world)) {
        (Ok(p), Ok(w)) => Some((p, w)),
        (p, w) => {
            for e in [p.err(), w.err()].into_iter().flatten() {
                eprintln!("error: {e}");
            }
            None
        }
    }
}

pub fn fmt_secs(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60)
}
