//! The HTML run report of every single-run example, rendered by a real browser: headless
//! Chromium (Debian's `chromium`, which `scripts/test` installs) parses each page, keeps every
//! series of the SVG timeline, and draws them: the screenshot has the weight line's colour, the
//! lag line's where lag was sampled, and a red mark where a health round failed or a rollback
//! happened (counted on the timeline alone: the page draws its badge and legend in the same
//! colours). The wave report's page is rendered too, one bar per started application.
//!
//! The browser is `CUTOVER_CHROMIUM` or `/usr/bin/chromium`; without one the test fails, unless
//! `CUTOVER_SKIP_BROWSER=1` says to skip it. `CUTOVER_SCREENSHOTS=DIR` also keeps the PNGs there
//! (that is how docs/images/report-*.png are made).

use cutover_cli::{load_plan, load_world, run_local, RunOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

const EXAMPLES: [&str; 9] = [
    "dms-happy-path",
    "mgn-happy-path",
    "alias-record",
    "health-failure-rollback",
    "lag-never-converges",
    "approval-rejected",
    "route53-throttling",
    "data-blue-until-switch",
    "data-freeze-and-switch",
];

/// The stroke and fill colours of the page's style (crates/cli/src/html.rs); no other element is
/// drawn in any of them (healthy rounds are a lighter green, the lag threshold a lighter red).
const WEIGHT: [u8; 3] = [0x22, 0xaa, 0x77];
const LAG: [u8; 3] = [0x33, 0x66, 0xcc];
const RED: [u8; 3] = [0xcc, 0x33, 0x33];

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CUTOVER_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let debian = PathBuf::from("/usr/bin/chromium");
    if debian.exists() {
        return Some(debian);
    }
    if std::env::var("CUTOVER_SKIP_BROWSER").as_deref() == Ok("1") {
        return None;
    }
    panic!("no Chromium: install Debian's chromium (scripts/test does), set CUTOVER_CHROMIUM, or CUTOVER_SKIP_BROWSER=1");
}

/// Headless Chromium with the flags a closed network needs (no background fetches, no updates),
/// a fresh profile each time.
fn browser(bin: &Path, profile: &Path, args: &[String]) -> std::process::Output {
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium starts")
}

/// How many pixels of the screenshot are near each colour, from one decoding of the PNG.
fn pixels_near<const N: usize>(png: &Path, colours: [[u8; 3]; N]) -> [usize; N] {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    assert!(step >= 3, "an RGB screenshot");
    let mut counts = [0; N];
    for p in buf[..info.buffer_size()].chunks(step) {
        for (count, colour) in counts.iter_mut().zip(&colours) {
            if (0..3).all(|i| p[i].abs_diff(colour[i]) <= 6) {
                *count += 1;
            }
        }
    }
    counts
}

#[test]
fn every_example_report_renders_in_headless_chromium_with_its_timeline() {
    let Some(bin) = chromium() else { return };
    let dir = std::env::temp_dir().join(format!("cutover-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keep = std::env::var("CUTOVER_SCREENSHOTS").ok().map(PathBuf::from);
    for example in EXAMPLES {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(example);
        let plan = load_plan(&root.join("plan.yaml")).unwrap();
        let world = load_world(&root.join("world.yaml")).unwrap();
        let run = run_local(&plan, &world, &RunOptions::default()).unwrap();
        let report = serde_json::to_value(&run.report).unwrap();
        let page = dir.join(format!("{example}.html"));
        std::fs::write(&page, cutover_cli::html::render(&report)).unwrap();
        let url = format!("file://{}", page.display());

        // One page load gives both the DOM the browser built and its screenshot.
        let shot = dir.join(format!("report-{example}.png"));
        let out = browser(
            &bin,
            &dir.join("profile"),
            &[
                "--dump-dom".into(),
                format!("--screenshot={}", shot.display()),
                url,
            ],
        );
        assert!(
            out.status.success() && shot.exists(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The DOM keeps every series, with all its points.
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(dom.contains("<svg"), "{example}: no svg in the DOM");
        let shifts = run
            .report
            .timeline
            .iter()
            .filter(|e| e.weights.is_some())
            .count();
        let lags = run
            .report
            .timeline
            .iter()
            .filter(|e| e.lag_seconds.is_some())
            .count();
        let rounds = run
            .report
            .timeline
            .iter()
            .filter(|e| e.healthy.is_some())
            .count();
        let failed = run
            .report
            .timeline
            .iter()
            .filter(|e| e.healthy == Some(false))
            .count();
        assert_eq!(
            series_points(&dom, "series-weight"),
            2 + 2 * shifts,
            "{example}"
        );
        assert_eq!(series_points(&dom, "series-lag"), lags, "{example}");
        assert_eq!(
            dom.matches("<circle class=\"round").count(),
            rounds,
            "{example}"
        );
        assert_eq!(
            dom.matches("<circle class=\"round failed").count(),
            failed,
            "{example}"
        );
        assert!(dom.contains("id=\"outcome\""), "{example}");

        // And the timeline draws them: measured on the SVG alone, so that the badge, the legend's
        // swatches and the failures' text (drawn in the same colours) count for nothing.
        let html = cutover_cli::html::render(&report);
        let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap() + 6];
        let alone = dir.join(format!("{example}-timeline.html"));
        std::fs::write(
            &alone,
            format!("<!DOCTYPE html><html><body style=\"margin:0\">{svg}</body></html>"),
        )
        .unwrap();
        let timeline = dir.join(format!("timeline-{example}.png"));
        let drawn = browser(
            &bin,
            &dir.join("profile"),
            &[
                format!("--screenshot={}", timeline.display()),
                format!("file://{}", alone.display()),
            ],
        );
        assert!(drawn.status.success() && timeline.exists(), "{example}");
        let [weight, lag, red] = pixels_near(&timeline, [WEIGHT, LAG, RED]);
        assert!(weight > 50, "{example}: the weight line is not drawn");
        if lags > 1 {
            assert!(lag > 20, "{example}: the lag line is not drawn");
        }
        let rolled_back = run
            .report
            .timeline
            .iter()
            .any(|e| e.event.contains("rolled-back") || e.event == "restored");
        if failed > 0 || rolled_back {
            assert!(red > 5, "{example}: no red mark for the failure");
        }
        if let Some(keep) = &keep {
            std::fs::create_dir_all(keep).unwrap();
            std::fs::copy(&shot, keep.join(format!("report-{example}.png"))).unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn series_points(dom: &str, id: &str) -> usize {
    let Some(at) = dom.find(&format!("id=\"{id}\"")) else {
        return 0;
    };
    let tag_start = dom[..at].rfind('<').unwrap();
    let tag = &dom[tag_start..tag_start + dom[tag_start..].find('>').unwrap()];
    let start = tag.find("points=\"").expect("points") + 8;
    tag[start..start + tag[start..].find('"').unwrap()]
        .split_whitespace()
        .count()
}

/// Every string a report carries, in every field the page shows, holds markup that would run a
/// script: the page escapes all of it, its Content-Security-Policy forbids scripts anyway, and
/// headless Chromium shows that nothing ran.
#[test]
fn a_crafted_report_runs_no_script_in_the_page() {
    let Some(bin) = chromium() else { return };
    let dir = std::env::temp_dir().join(format!("cutover-xss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let evil = r#"</title></style><script>document.documentElement.setAttribute('data-pwned','1')</script><img src=x onerror="document.documentElement.setAttribute('data-pwned','2')">"#;
    let e = serde_json::Value::String(evil.to_string());
    let entry = serde_json::json!({"t": 5.0, "state": e, "event": e, "actor": e, "message": e,
        "weights": {"blue": e, "green": e}, "lagSeconds": 1.0, "healthy": false});
    let approval = serde_json::json!({"t": 6.0, "event": "approved", "message": e, "state": e});
    let report = serde_json::json!({
        "application": e, "runId": e, "outcome": e, "error": e, "cause": e,
        "simulatedSeconds": 10.0, "lagThresholdSeconds": 30.0, "stateTransitions": 3,
        "timeline": [entry, approval],
        "data": {"mode": e, "writesAccepted": e, "writesLost": e, "writesRefused": e,
                 "freezeSeconds": e, "survivingDatabase": e},
    });
    let html = cutover_cli::html::render(&report);
    assert!(
        !html.contains("<script"),
        "markup from the report reached the page unescaped"
    );
    assert!(
        !html.contains("<img"),
        "markup from the report reached the page unescaped"
    );
    assert!(
        html.contains("Content-Security-Policy"),
        "the page declares a Content-Security-Policy"
    );
    let page = dir.join("crafted.html");
    std::fs::write(&page, &html).unwrap();
    let out = browser(
        &bin,
        &dir.join("profile"),
        &["--dump-dom".into(), format!("file://{}", page.display())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("id=\"outcome\""), "the page rendered");
    assert!(
        !dom.contains("data-pwned=\""),
        "a script from the report ran"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The wave report's page in the browser: one bar per application that started; its
/// screenshot is docs/images/report-wave-12.png.
#[test]
fn the_wave_report_page_renders_in_headless_chromium() {
    let Some(bin) = chromium() else { return };
    let dir = std::env::temp_dir().join(format!("cutover-browser-wave-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wave-12");
    let spec = cutover_cli::wave::load_wave(&root.join("wave.yaml")).unwrap();
    let world = load_world(&root.join("world.yaml")).unwrap();
    let run = cutover_cli::wave::run_wave_local(&spec, &world, &RunOptions::default());
    let page = dir.join("wave-12.html");
    std::fs::write(
        &page,
        cutover_cli::html::render_wave(&serde_json::to_value(&run.report).unwrap()),
    )
    .unwrap();
    let shot = dir.join("report-wave-12.png");
    let out = browser(
        &bin,
        &dir.join("profile"),
        &[
            "--dump-dom".into(),
            format!("--screenshot={}", shot.display()),
            format!("file://{}", page.display()),
        ],
    );
    assert!(out.status.success() && shot.exists());
    let dom = String::from_utf8_lossy(&out.stdout);
    let started = run
        .report
        .applications
        .iter()
        .filter(|a| a.started_at.is_some())
        .count();
    assert_eq!(dom.matches("<rect class=\"bar\"").count(), started);
    if let Ok(keep) = std::env::var("CUTOVER_SCREENSHOTS") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&shot, Path::new(&keep).join("report-wave-12.png")).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
