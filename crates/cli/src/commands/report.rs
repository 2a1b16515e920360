//! `cutover report REPORT.json --html FILE`.

use std::path::Path;
use std::process::ExitCode;

pub fn run(report: &Path, html: &Path) -> ExitCode {
    let parsed = std::fs::read_to_string(report)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()))
        .and_then(|v| {
            if v.get("timeline").is_some_and(|t| t.is_array()) {
                Ok(v)
            } else {
                Err("timeline: missing; not a run report".into())
            }
        });
    match parsed {
        Ok(v) => match std::fs::write(html, cutover_cli::html::render(&v)) {
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
