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

/// The element with this id, up to the end of the page (enough for counting inside it).
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id}"));
    let rest = &html[at..];
    // Up to the next element with an id of its own.
    let end = rest[4..].find(" id=\"").map_or(rest.len(), |e| e + 4);
    &rest[..end]
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
        let audit = &html[html.find("id=\"audit\"").expect("audit")..];
        assert_eq!(
            audit.matches("<tr><td>").count(),
            report.timeline.len(),
            "{example}: one audit row per event"
        );
        // Times in UTC from the run's start: the first row is the start itself.
        let first = report.started_at.format("%H:%M:%S").to_string();
        assert!(
            audit.contains(&format!("<tr><td>{first}</td>")),
            "{example}"
        );
        // Axes with ticks and units, and a legend.
        assert_eq!(
            section(&html, "weight-ticks").matches("%</text>").count(),
            5,
            "{example}"
        );
        assert!(
            section(&html, "time-ticks")
                .matches("<text class=\"tick\"")
                .count()
                >= 2,
            "{example}"
        );
        assert!(
            section(&html, "lag-ticks").contains(" s</text>"),
            "{example}"
        );
        assert!(html.contains("id=\"legend\""), "{example}");
        // Every event line is labelled.
        let lines = [
            "class=\"approval\"",
            "class=\"rollback\"",
            "class=\"switch\"",
        ]
        .iter()
        .map(|c| html.matches(c).count())
        .sum::<usize>();
        assert_eq!(
            section(&html, "mark-labels")
                .matches("class=\"mark-label\"")
                .count(),
            lines,
            "{example}"
        );
        // The DNS before and after, side by side.
        assert_eq!(
            section(&html, "dns-snapshot").matches("<li>").count(),
            report.snapshot.len(),
            "{example}"
        );
        assert_eq!(
            section(&html, "dns-final").matches("<li>").count(),
            report.dns.len(),
            "{example}"
        );
        assert!(
            !report.snapshot.is_empty(),
            "{example}: a snapshot was taken"
        );
        // The approvals table where there were gates; the data section only where a mode ran.
        assert_eq!(
            html.contains("id=\"approvals\""),
            !report.approvals.is_empty(),
            "{example}"
        );
        assert_eq!(
            html.contains("id=\"data\""),
            report.data.mode != "unmanaged",
            "{example}"
        );
        // What went wrong sits above the audit trail.
        let failed_events = report.timeline.iter().any(|e| e.healthy == Some(false));
        if failed_events {
            let at = html.find("id=\"failures\"").expect("failures listed");
            assert!(at < html.find("id=\"audit\"").unwrap(), "{example}");
        }
        // The plain cause first, the error's name after it.
        if let (Some(error), Some(_)) = (&report.error, &report.cause) {
            let cause = section(&html, "cause");
            let name = cause.find(error.as_str()).expect("error named");
            assert!(
                cause.find("<b>").unwrap() < name,
                "{example}: cause first: {cause}"
            );
        }
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

/// A lag far above its threshold does not flatten the threshold onto the baseline: the axis is
/// clipped at a few thresholds and says so; each outcome has its own colour.
#[test]
fn a_lag_far_above_its_threshold_keeps_the_threshold_visible() {
    let (_, report) = render("dms-happy-path");
    let mut json = serde_json::to_value(&report).unwrap();
    json["lagThresholdSeconds"] = serde_json::json!(30.0);
    let timeline = json["timeline"].as_array_mut().unwrap();
    let mut spike = timeline[1].clone();
    spike["lagSeconds"] = serde_json::json!(814.0);
    timeline.insert(2, spike);
    let html = cutover_cli::html::render(&json);
    let clipped = section(&html, "lag-clipped");
    assert!(
        clipped.contains("clipped at 120 s") && clipped.contains("peak 814 s"),
        "{clipped}"
    );
    // The threshold's line sits a quarter of the way up the lag axis, not on its baseline.
    let th = section(&html, "lag-threshold");
    let y1: f64 = th
        .split("y1=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((y1 - (200.0 + 110.0 * 0.75)).abs() < 0.2, "{th}");
    // Lag within four thresholds: the axis ends at the peak, not clipped.
    let mut calm = json.clone();
    for e in calm["timeline"].as_array_mut().unwrap() {
        if e.get("lagSeconds").is_some_and(|l| !l.is_null()) {
            e["lagSeconds"] = serde_json::json!(50.0);
        }
    }
    let plain = cutover_cli::html::render(&calm);
    assert!(!plain.contains("id=\"lag-clipped\""));
    let th = section(&plain, "lag-threshold");
    let y1: f64 = th
        .split("y1=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (y1 - (200.0 + 110.0 * (1.0 - 30.0 / 50.0))).abs() < 0.2,
        "{th}"
    );

    let colour = |outcome: &str| {
        let mut j = json.clone();
        j["outcome"] = serde_json::json!(outcome);
        let html = cutover_cli::html::render(&j);
        let at = html.find("class=\"badge\" style=\"background:").unwrap() + 31;
        html[at..at + 7].to_string()
    };
    let outcomes = [
        "completed",
        "completed_with_errors",
        "rolled_back",
        "aborted",
        "failed",
        "rollback_failed",
    ];
    let colours: std::collections::BTreeSet<String> = outcomes.iter().map(|o| colour(o)).collect();
    assert_eq!(colours.len(), outcomes.len(), "{colours:?}");
}

/// Links reach only the AWS console, whatever a crafted report carries.
#[test]
fn a_report_links_only_to_the_aws_console() {
    let (_, report) = render("dms-happy-path");
    let mut json = serde_json::to_value(&report).unwrap();
    json["links"] = serde_json::json!({
        "execution": "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/x",
        "evil": "https://evil.example.com/?.console.aws.amazon.com/",
        "userinfo": "https://us-east-1.console.aws.amazon.com@evil.example.com/",
        "script": "javascript:alert(1)",
    });
    let html = cutover_cli::html::render(&json);
    let links = section(&html, "links");
    assert_eq!(links.matches("<a ").count(), 1, "{links}");
    assert!(links.contains(">execution</a>"));
    assert!(!html.contains("evil.example.com") && !html.contains("javascript:"));
}

/// A wave's report as a page: one bar per application that started, coloured by its outcome;
/// every application in the table, those that did not complete first; `cutover report` tells a
/// wave's report from a run's.
#[test]
fn a_wave_report_renders_its_applications() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wave-12");
    let spec = cutover_cli::wave::load_wave(&root.join("wave.yaml")).unwrap();
    let world = load_world(&root.join("world.yaml")).unwrap();
    let run = cutover_cli::wave::run_wave_local(&spec, &world, &RunOptions::default());
    let report = serde_json::to_value(&run.report).unwrap();
    let html = cutover_cli::html::render_wave(&report);
    assert!(html.to_ascii_lowercase().starts_with("<!doctype html>"));
    assert!(!html.contains("<script"));
    let apps = &run.report.applications;
    let started = apps.iter().filter(|a| a.started_at.is_some()).count();
    assert_eq!(
        section(&html, "bars")
            .matches("<rect class=\"bar\"")
            .count(),
        started
    );
    let table = section(&html, "applications");
    assert_eq!(
        table.matches("<tr").count(),
        apps.len() + 1,
        "a row each and the header"
    );
    // Those that did not complete come first.
    let not_completed = apps.iter().filter(|a| a.outcome != "completed").count();
    assert!(not_completed > 0 && not_completed < apps.len());
    let rows: Vec<&str> = table.split("<tr").skip(2).collect();
    assert!(rows[..not_completed]
        .iter()
        .all(|r| r.contains("failed-row")));
    assert!(rows[not_completed..]
        .iter()
        .all(|r| !r.contains("failed-row")));
    let counts = section(&html, "counts");
    assert!(
        counts.contains(&format!("{} applications", apps.len())),
        "{counts}"
    );

    let dir = std::env::temp_dir().join(format!("cutover-wave-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("wave.json");
    std::fs::write(&json, serde_json::to_string(&report).unwrap()).unwrap();
    let out = dir.join("wave.html");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args([
            "report",
            json.to_str().unwrap(),
            "--html",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), html);
}

#[test]
fn an_alb_run_shows_the_rules_final_weights_instead_of_dns() {
    let (html, report) = render("alb-weighted");
    let alb = report.alb.as_ref().expect("an alb plan reports alb");
    assert!(
        !html.contains("id=\"dns\""),
        "no DNS section for an alb plan"
    );
    assert!(section(&html, "alb-rule").contains(alb.rule_arn.as_deref().unwrap()));
    let final_actions = section(&html, "alb-final");
    assert_eq!(final_actions.matches("<li>").count(), alb.actions.len());
    assert!(
        final_actions.contains("targetgroup/catalog-blue/73e2d6bc24d8a067 = 0")
            && final_actions.contains("targetgroup/catalog-green/83e2d6bc24d8a067 = 100")
            && final_actions.contains("sticky 300 s"),
        "{final_actions}"
    );
}
