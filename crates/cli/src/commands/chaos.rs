//! `cutover chaos`: generated cases, each run checked against every promise.

use std::process::ExitCode;

/// `cutover chaos`: runs the cases, prints progress every 500 and a summary, saves failures.
pub fn run(runs: u64, seed: u64, waves: bool, jobs: usize, out: &std::path::Path) -> ExitCode {
    use cutover_cli::chaos;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    let started = std::time::Instant::now();
    let outcomes: Mutex<std::collections::BTreeMap<String, u64>> = Default::default();
    let failed: Mutex<Vec<u64>> = Default::default();
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    // Cases are independent (each its own world, store and paused runtime): `jobs` threads take
    // the next seed until all are run.
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= runs {
                    break;
                }
                let case = if waves {
                    cutover_cli::chaos_wave::generate(seed + i)
                } else {
                    chaos::generate(seed + i)
                };
                let mut failed_here = false;
                let checked = if waves {
                    cutover_cli::chaos_wave::check(&case)
                } else {
                    chaos::check(&case)
                };
                match checked {
                    Ok(v) => {
                        *outcomes
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(v.outcome.clone())
                            .or_default() += 1;
                        if !v.violations.is_empty() {
                            let saved = chaos::save(&case, &v, out)
                                .map(|p| p.display().to_string())
                                .unwrap_or_else(|e| format!("(not saved: {e})"));
                            eprintln!("seed {}: {} -> {saved}", case.seed, v.violations.join("; "));
                            failed_here = true;
                        }
                    }
                    Err(e) => {
                        // A case that could not run is kept like a broken promise.
                        let verdict = chaos::Verdict {
                            seed: case.seed,
                            outcome: "not run".into(),
                            violations: vec![e.to_string()],
                        };
                        let saved = chaos::save(&case, &verdict, out)
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|e| format!("(not saved: {e})"));
                        eprintln!("{e} -> {saved}");
                        failed_here = true;
                    }
                }
                if failed_here {
                    failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(case.seed);
                }
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if n.is_multiple_of(500) {
                    eprintln!(
                        "chaos: {n}/{runs} runs, {} failing, {:.0}s",
                        failed.lock().unwrap_or_else(|p| p.into_inner()).len(),
                        started.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    failed.sort_unstable();
    let summary: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "chaos: {runs} runs (seeds {seed}..{}), {} with violations, {:.1}s wall; outcomes: {}",
        seed + runs.saturating_sub(1),
        failed.len(),
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    );
    match failed.first() {
        None => ExitCode::SUCCESS,
        Some(first) => {
            println!(
                "first failing seed: {first} (replay: cutover chaos --runs 1 --seed {first}; inputs in {})",
                out.display()
            );
            ExitCode::from(1)
        }
    }
}
