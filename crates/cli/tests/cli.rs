//! The `cutover` binary: exit codes, errors that name file and field, and nothing run on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cutover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("runs")
}

fn temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cutover-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn happy(file: &str) -> String {
    std::fs::read_to_string(root().join("examples/dms-happy-path").join(file)).unwrap()
}

#[test]
fn plan_check_accepts_every_example() {
    let mut plans = vec![];
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let dir = e.unwrap().path();
        plans.extend([dir.join("plan.yaml")].into_iter().filter(|p| p.is_file()));
        if let Ok(more) = std::fs::read_dir(dir.join("plans")) {
            plans.extend(more.map(|m| m.unwrap().path()));
        }
    }
    assert!(
        plans.len() >= 18,
        "six single-run examples and twelve wave plans, found {}",
        plans.len()
    );
    for plan in plans {
        let out = cutover(&["plan", "check", plan.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}",
            plan.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // A plan that does not move its data is warned that green's writes die with a rollback
        // (with MGN: that the source's writes after the launch never reach green).
        let stderr = String::from_utf8_lossy(&out.stderr);
        let warned = stderr
            .contains("warning: data.writes: unmanaged: writes that reach green's database")
            || stderr.contains("warning: data.writes: unmanaged with MGN: each cutover instance is a point-in-time copy");
        let managed = std::fs::read_to_string(&plan)
            .unwrap()
            .contains("writes: blue-until-switch")
            || std::fs::read_to_string(&plan)
                .unwrap()
                .contains("writes: freeze-and-switch");
        assert_eq!(warned, !managed, "{}", plan.display());
    }
}

#[test]
fn plan_check_lists_every_problem_and_exits_2() {
    let bad = happy("plan.yaml")
        .replace("weight: 100", "weight: 90")
        .replace("maxLagSeconds: 30", "maxLagSeconds: -1");
    let p = temp("bad-plan.yaml", &bad);
    let out = cutover(&["plan", "check", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad-plan.yaml"), "{err}");
    assert!(err.contains("traffic.steps[2].weight"), "{err}");
    assert!(err.contains("replication.maxLagSeconds"), "{err}");
}

#[test]
fn local_run_with_a_bad_plan_names_the_field_and_runs_nothing() {
    let p = temp(
        "typo-plan.yaml",
        &happy("plan.yaml").replace("recordType: CNAME", "recordTyp: CNAME"),
    );
    let out = cutover(&[
        "local",
        "run",
        "--plan",
        p.to_str().unwrap(),
        "--world",
        "examples/dms-happy-path/world.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo-plan.yaml") && err.contains("dns.recordTyp"),
        "{err}"
    );
    assert!(!err.contains("[t+"), "nothing ran: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn local_run_with_a_bad_world_names_the_field_and_runs_nothing() {
    let p = temp(
        "bad-world.yaml",
        &happy("world.yaml").replace("status: ready", "status: snoozing"),
    );
    let out = cutover(&[
        "local",
        "run",
        "--plan",
        "examples/dms-happy-path/plan.yaml",
        "--world",
        p.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad-world.yaml") && err.contains("dms.tasks[0].status"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "no report for a run that never started"
    );
}

#[test]
fn missing_file_is_an_input_error() {
    let out = cutover(&[
        "local",
        "run",
        "--plan",
        "nope.yaml",
        "--world",
        "examples/dms-happy-path/world.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.yaml"));
}

#[test]
fn local_run_reports_json_and_exit_codes() {
    for (example, code, outcome) in [
        ("dms-happy-path", 0, "completed"),
        ("health-failure-rollback", 3, "rolled_back"),
        ("lag-never-converges", 4, "aborted"),
    ] {
        let dir = format!("examples/{example}");
        let out = cutover(&[
            "local",
            "run",
            "--plan",
            &format!("{dir}/plan.yaml"),
            "--world",
            &format!("{dir}/world.yaml"),
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(code), "{example}");
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("JSON report on stdout");
        assert_eq!(report["outcome"], outcome);
        for field in [
            "runId",
            "error",
            "dns",
            "stateTransitions",
            "simulatedSeconds",
            "timeline",
            "approvals",
        ] {
            assert!(
                report.get(field).is_some(),
                "{example}: report lacks {field}"
            );
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("[t+00:00:00] ValidateCutover"),
            "progress on stderr: {err}"
        );
    }
}

#[test]
fn plan_in_json_is_accepted() {
    let plan: serde_json::Value = serde_norway::from_str(&happy("plan.yaml")).unwrap();
    let p = temp("plan.json", &serde_json::to_string(&plan).unwrap());
    let out = cutover(&["plan", "check", p.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A failed pre-flight names each reason without --json, one a line.
#[test]
fn a_failed_preflight_prints_each_reason() {
    let world = happy("world.yaml")
        .replace("ttl: 300", "ttl: 86400")
        .replace(
            "migrationType: full-load-and-cdc",
            "migrationType: full-load",
        );
    let w = temp("preflight-world.yaml", &world);
    let out = cutover(&[
        "local",
        "run",
        "--plan",
        "examples/dms-happy-path/plan.yaml",
        "--world",
        w.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\n  why: replication.taskArn: DMS task"),
        "{err}"
    );
    assert!(err.contains("\n  why: dns.maxOriginalTtlSeconds:"), "{err}");
    assert!(
        !err.contains("errorType"),
        "the reasons, not the raw error object: {err}"
    );
}

/// Colour and the progress bar only on a terminal (util-linux's `script` gives the run one);
/// `NO_COLOR` turns colour off but keeps the bar; piped output has neither.
#[test]
fn colour_and_the_progress_bar_only_on_a_terminal() {
    let bin = env!("CARGO_BIN_EXE_cutover");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let args = "local run --plan examples/health-failure-rollback/plan.yaml --world examples/health-failure-rollback/world.yaml";
    let piped = std::process::Command::new(bin)
        .current_dir(&root)
        .args(args.split(' '))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(!err.contains('\x1b') && !err.contains("[=="), "{err}");
    assert!(err.contains("rolled_back"));
    let on_terminal = |no_color: Option<&str>| {
        let mut c = std::process::Command::new("script");
        c.current_dir(&root)
            .args(["-qec", &format!("{bin} {args}"), "/dev/null"]);
        match no_color {
            Some(v) => c.env("NO_COLOR", v),
            None => c.env_remove("NO_COLOR"),
        };
        let out = c.output().expect("util-linux script");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let tty = on_terminal(None);
    assert!(tty.contains("\x1b[33mrolled_back\x1b[0m"), "{tty}");
    assert!(tty.contains("\x1b[31mUNHEALTHY\x1b[0m"), "{tty}");
    assert!(tty.contains("%") && tty.contains("[=="), "a bar: {tty}");
    let plain = on_terminal(Some("1"));
    assert!(!plain.contains("\x1b[3"), "{plain}");
    assert!(plain.contains("[=="), "the bar stays: {plain}");
}

/// `cutover … | head` closes the pipe early: the command ends quietly with exit 0, with no panic
/// and no backtrace on stderr.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .args([
            "local",
            "run",
            "--plan",
            "examples/dms-happy-path/plan.yaml",
            "--world",
            "examples/dms-happy-path/world.yaml",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the report is written, as `head` does once it has its lines.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// A healthy run prints one line per bake (its completion), not one per health round; `-v`
/// prints every round; a failed round is always a line.
#[test]
fn a_healthy_bake_is_one_progress_line_unless_verbose() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "local",
            "run",
            "--plan",
            "examples/dms-happy-path/plan.yaml",
            "--world",
            "examples/dms-happy-path/world.yaml",
        ];
        args.extend_from_slice(extra);
        let out = cutover(&args);
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let rounds = |text: &str| {
        text.lines()
            .filter(|l| l.contains("RunHealthCheck"))
            .count()
    };
    let quiet = run(&[]);
    let verbose = run(&["-v"]);
    let bakes = quiet.lines().filter(|l| l.contains("bake of step")).count();
    assert_eq!(bakes, 3, "{quiet}");
    assert_eq!(rounds(&quiet), bakes, "{quiet}");
    assert!(rounds(&verbose) > 10 * bakes, "{verbose}");
    // The failed rounds of a failing run are lines without -v.
    let out = cutover(&[
        "local",
        "run",
        "--plan",
        "examples/health-failure-rollback/plan.yaml",
        "--world",
        "examples/health-failure-rollback/world.yaml",
    ]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.lines().filter(|l| l.contains("UNHEALTHY")).count() >= 2,
        "{text}"
    );
}

/// `cutover bench --wave`: the wave's figures, measured over its runs (the numbers themselves
/// are benchmarks, docs/performance.md; here only that each is reported).
#[test]
fn bench_reports_a_waves_figures() {
    let out = cutover(&[
        "bench",
        "--wave",
        "examples/wave-12/wave.yaml",
        "--world",
        "examples/wave-12/world.yaml",
        "--iterations",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "outcome: partial (12 applications)",
        "applications per wall second (median): ",
        "peak resident memory of ",
        "largest state: ",
        "hand-overs: 0",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
}

/// `--output json` is the command's `--json`, wherever it is given; `--output text` its default;
/// a command that prints no JSON refuses it, naming the command.
#[test]
fn output_json_is_the_commands_json() {
    let args = [
        "local",
        "run",
        "--plan",
        "examples/dms-happy-path/plan.yaml",
        "--world",
        "examples/dms-happy-path/world.yaml",
        "--quiet",
    ];
    let with = |extra: &[&str], before: bool| {
        let mut all: Vec<&str> = Vec::new();
        if before {
            all.extend_from_slice(extra);
        }
        all.extend_from_slice(&args);
        if !before {
            all.extend_from_slice(extra);
        }
        cutover(&all)
    };
    let json = with(&["--json"], false);
    let output = with(&["--output", "json"], false);
    let first = with(&["--output", "json"], true);
    assert_eq!(output.status.code(), Some(0));
    let report = |o: &Output| serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
    assert_eq!(report(&output)["outcome"], report(&json)["outcome"]);
    assert_eq!(report(&first)["runId"], report(&json)["runId"]);
    let text = with(&["--output", "text"], false);
    assert!(serde_json::from_slice::<serde_json::Value>(&text.stdout).is_err());
    let refused = cutover(&[
        "plan",
        "check",
        "examples/dms-happy-path/plan.yaml",
        "--output",
        "json",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("`cutover plan check` prints no JSON"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// `local calendar` ends with each account's Route 53 as the cutovers found it.
#[test]
fn local_calendar_prints_each_accounts_route53_use() {
    let out = cutover(&[
        "local",
        "calendar",
        "--waves",
        "examples/calendar/waves",
        "--world",
        "examples/wave-12/world.yaml",
        "--from",
        "2026-12-05T02:00:00Z",
        "--to",
        "2026-12-05T02:00:00Z",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("route53 123456789012:"))
        .unwrap_or_else(|| panic!("no Route 53 line in {err}"));
    assert!(
        line.contains("0 throttled") && line.contains("answered"),
        "{line}"
    );
    assert_eq!(out.status.code(), Some(0), "{err}");
}
