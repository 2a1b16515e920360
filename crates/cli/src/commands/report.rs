//! `cutover report REPORT.json --html FILE`: a run's report or a wave's.

use std::path::Path;
use std::process::ExitCode;

pub fn run(report: &Path, html: &Path) -> ExitCode {
    let parsed = std::fs::read_to_string(report)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()))
        .and_then(|v| {
            if v.get("timeline").is_some_and(|t| t.is_array()) {
                Ok(cutover_cli::html::render(&v))
            } else if v.get("wave").is_some_and(|w| w.is_string())
                && v.get("applications").is_some_and(|a| a.is_array())
            {
                Ok(cutover_cli::html::render_wave(&v))
            } else {
                Err("neither a run report (timeline: missing) nor a wave report (wave, applications: missing)".into())
            }
        });
    match parsed {
        Ok(page) => match std::fs::write(html, page) {
            Ok(()) => {
                println!("{} written", html.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e}", html.display());
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("error: {}: {e}", report.display());
            ExitCode::from(2)
        }
    }
}
