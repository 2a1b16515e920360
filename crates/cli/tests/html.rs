//! The HTML run report of every single-run example: one self-contained page whose SVG timeline
//! has the weight series, lag against its threshold where replication lag was sampled, every
//! health round (failed ones marked), the rollback where there was one, and the audit table.

use cutover_cli::{load_plan, load_world, run_local, RunOptions};
use std::path::Path;

fn render(example: &str) -> (String, cutover_cli::Report) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(example);
    let plan = load_plan(&dir.join("plan.yaml")).unwrap();
    let world = load_world(&dir.join("world.yaml")).unwrap();
    let run = run_local(&plan, &world, &RunOptions::default()).unwrap();
    let json = serde_json::to_value(&run.report).unwrap();
    (cutover_cli::html::render(&json), run.report)
}

fn points(html: &str, id: &str) -> usize {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id}"));
    let rest = &html[at..];
    let start = rest.find("points=\"").expect("points") + 8;
    rest[start..start + rest[start..].find('"').unwrap()]
        .split_whitespace()
        .count()
}

#[test]
fn every_example_renders_its_timeline() {
    for example in [
        "dms-happy-path",
        "mgn-happy-path",
        "alias-record",
        "health-failure-rollback",
        "lag-never-converges",
        "approval-rejected",
        "route53-throttling",
        "data-blue-until-switch",
        "data-freeze-and-switch",
    ] {
        let (html, report) = render(example);
        assert!(
            html.to_ascii_lowercase().starts_with("<!doctype html>"),
            "{example}"
        );
        assert!(!html.contains("<script"), "{example}: no script");
        assert!(!html.contains("src=\"http"), "{example}: no external asset");
        let shifts = report
            .timeline
            .iter()
            .filter(|e| e.weights.is_some())
            .count();
        assert_eq!(points(&html, "series-weight"), 2 + 2 * shifts, "{example}");
        let lags = report
            .timeline
            .iter()
            .filter(|e| e.lag_seconds.is_some())
            .count();
        assert_eq!(points(&html, "series-lag"), lags, "{example}");
        assert!(html.contains("id=\"lag-threshold\""), "{example}");
        let rounds = report
            .timeline
            .iter()
            .filter(|e| e.healthy.is_some())
            .count();
        assert_eq!(html.matches("class=\"round ").count(), rounds, "{example}");
        let failed = report
            .timeline
            .iter()
            .filter(|e| e.healthy == Some(false))
            .count();
        assert_eq!(
            html.matches("class=\"round failed\"").count(),
            failed,
            "{example}"
        );
        assert_eq!(
            html.matches("<tr><td>").count(),
            report.timeline.len(),
            "{example}: one audit row per event"
        );
        if report.outcome == "rolled_back" {
            assert!(html.contains("class=\"rollback\""), "{example}");
            assert!(failed > 0 || example == "approval-rejected", "{example}");
        }
        if example.starts_with("data-") {
            assert!(html.contains("class=\"freeze\""), "{example}");
            assert!(html.contains("class=\"switch\""), "{example}");
        }
    }
}

#[test]
fn the_cli_writes_the_page_and_refuses_what_is_not_a_report() {
    let dir = std::env::temp_dir().join(format!("cutover-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_, report) = render("health-failure-rollback");
    let json = dir.join("report.json");
    std::fs::write(&json, serde_json::to_string(&report).unwrap()).unwrap();
    let out = dir.join("report.html");
    let render_page = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args([
                "report",
                json.to_str().unwrap(),
                "--html",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let run = render_page();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("id=\"series-weight\"") && html.contains("rolled_back"));
    std::fs::write(&json, "{\"not\": \"a report\"}").unwrap();
    let bad = render_page();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("timeline"));
}

#[test]
fn local_run_writes_the_page_beside_its_report() {
    let out = std::env::temp_dir().join(format!("cutover-run-{}.html", std::process::id()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(&root)
        .args([
            "local",
            "run",
            "--plan",
            "examples/approval-rejected/plan.yaml",
            "--world",
            "examples/approval-rejected/world.yaml",
            "--quiet",
            "--html",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("id=\"outcome\">rolled_back<"));
    assert!(html.contains("class=\"approval\""));
}
