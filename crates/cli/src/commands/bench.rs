//! `cutover bench`: wall time of local runs of one plan and world, or of one wave.

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

/// The wave's benchmark: the wave and world run once to warm up, then `iterations` times, each in
/// a fresh runtime and world; prints the outcome, applications per wall second, the peak
/// resident memory of a run, and the wave's largest state and longest history.
pub fn run_wave(wave: &Path, world: &Path, iterations: u32) -> ExitCode {
    let (spec, world_v) = match (
        cutover_cli::wave::load_wave_whole(wave),
        cutover_cli::load_world(world),
    ) {
        (Ok(s), Ok(w)) => (s, w),
        (s, w) => {
            for e in [s.err(), w.err()].into_iter().flatten() {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let opts = RunOptions::default();
    let warm = cutover_cli::wave::run_wave_local(&spec, &world_v, &opts);
    drop(warm.world);
    let iterations = iterations.max(1);
    let mut walls = Vec::with_capacity(iterations as usize);
    let mut peaks = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations {
        let reset = reset_peak_memory();
        let t = std::time::Instant::now();
        let run = cutover_cli::wave::run_wave_local(&spec, &world_v, &opts);
        walls.push(t.elapsed().as_secs_f64());
        if reset {
            peaks.extend(peak_memory_kb());
        }
        assert_eq!(
            run.report.outcome, warm.report.outcome,
            "runs of one wave and world must agree"
        );
    }
    walls.sort_by(|a, b| a.total_cmp(b));
    let median = walls[walls.len() / 2];
    let r = &warm.report;
    let apps = r.applications.len();
    println!("outcome: {} ({apps} applications)", r.outcome);
    println!(
        "simulated: {:.0} s ({})",
        r.simulated_seconds,
        fmt_secs(r.simulated_seconds)
    );
    println!(
        "wall per wave over {iterations} runs: median {:.2} s, min {:.2} s, max {:.2} s",
        median,
        walls[0],
        walls[walls.len() - 1]
    );
    println!(
        "applications per wall second (median): {:.1}",
        apps as f64 / median
    );
    match peaks.iter().max() {
        Some(kb) => println!(
            "peak resident memory of one wave: {:.0} MB",
            *kb as f64 / 1024.0
        ),
        None => println!(
            "peak resident memory of the whole bench: {}",
            peak_memory_kb().map_or("unknown".into(), |kb| format!(
                "{:.0} MB",
                kb as f64 / 1024.0
            ))
        ),
    }
    println!(
        "largest state: {} bytes (limit 262,144); longest history: {} events (limit 25,000); hand-overs: {}",
        r.max_state_bytes, r.max_history_events, r.handovers
    );
    ExitCode::SUCCESS
}

/// The process's peak resident set size so far, in kB (Linux: `VmHWM` in /proc/self/status).
fn peak_memory_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets the peak resident set size to the current one, so the next reading is one run's peak
/// (Linux: writing 5 to /proc/self/clear_refs, proc(5)). False where it cannot.
fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
