//! `cutover bench`: wall time of local runs of one plan and world.

use super::{fmt_secs, load_inputs};
use cutover_cli::{run_local, RunOptions};
use std::path::Path;
use std::process::ExitCode;

pub fn run(plan: &Path, world: &Path, iterations: u32) -> ExitCode {
    let Some((plan_v, world_v)) = load_inputs(plan, world) else {
        return ExitCode::from(2);
    };
    bench(&plan_v, &world_v, iterations.max(1));
    ExitCode::SUCCESS
}

/// Runs the plan `iterations` times after a warm-up and prints wall-time statistics.
fn bench(plan: &cutover_core::Plan, world: &cutover_sim::WorldSpec, iterations: u32) {
    let opts = RunOptions::default();
    let warm = run_local(plan, world, &opts).expect("a simulated run needs no endpoint");
    let mut walls = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations {
        let t = std::time::Instant::now();
        let run = run_local(plan, world, &opts).expect("a simulated run needs no endpoint");
        walls.push(t.elapsed().as_secs_f64());
        assert_eq!(
            run.report.outcome, warm.report.outcome,
            "runs of one plan and world must agree"
        );
    }
    walls.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let mean = walls.iter().sum::<f64>() / walls.len() as f64;
    let median = walls[walls.len() / 2];
    let r = &warm.report;
    println!("outcome: {}", r.outcome);
    println!(
        "simulated: {:.0} s ({})",
        r.simulated_seconds,
        fmt_secs(r.simulated_seconds)
    );
    println!("state transitions: {}", r.state_transitions);
    println!(
        "wall per run over {iterations} runs: median {:.2} ms, mean {:.2} ms, min {:.2} ms, max {:.2} ms",
        median * 1e3,
        mean * 1e3,
        walls[0] * 1e3,
        walls[walls.len() - 1] * 1e3
    );
    println!(
        "simulated hours per wall second (median): {:.0}",
        r.simulated_seconds / 3600.0 / median
    );
}
