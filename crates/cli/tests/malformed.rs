//! The malformed-input corpus (`tests/malformed/cases`, listed in `cases.tsv`, written by
//! `tests/malformed/generate.py`): every plan, world and wave file in it is refused by the
//! `cutover` binary with exit 2, naming the file and the field — no panic, no hang, nothing run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the binary, killing it after `limit`: (exit code or None when killed, stderr).
fn run(args: &[&str], limit: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return (None, String::new());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (code, err)
}

#[test]
fn every_malformed_input_is_refused_with_exit_2_naming_file_and_field() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let list = std::fs::read_to_string(dir.join("cases.tsv")).expect("cases.tsv");
    let mut failures = Vec::new();
    let mut count = 0;
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut cols = line.splitn(3, '\t');
        let (kind, file, expected) = (
            cols.next().unwrap(),
            cols.next().unwrap(),
            cols.next().unwrap_or_default(),
        );
        let path = dir.join("cases").join(file);
        assert!(path.is_file(), "{file} is listed but missing");
        let p = path.to_str().unwrap();
        let args: Vec<&str> = match kind {
            "plan" => vec!["plan", "check", p],
            "world" => vec![
                "local",
                "run",
                "--plan",
                "examples/dms-happy-path/plan.yaml",
                "--world",
                p,
            ],
            "wave" => vec![
                "local",
                "wave",
                "--wave",
                p,
                "--world",
                "examples/wave-12/world.yaml",
            ],
            other => panic!("unknown kind {other}"),
        };
        count += 1;
        let (code, err) = run(&args, Duration::from_secs(20));
        let problem = match code {
            None => Some("hung (killed after 20 s)".to_string()),
            Some(2) if !err.contains(file) => Some(format!("does not name the file: {err}")),
            Some(2) if !err.contains(expected) => {
                Some(format!("does not name '{expected}': {err}"))
            }
            Some(2) => None,
            Some(c) => Some(format!("exit {c}: {err}")),
        };
        if let Some(p) = problem {
            failures.push(format!("{kind} {file}: {p}"));
        }
    }
    assert!(count >= 150, "the corpus has {count} cases");
    assert!(
        failures.is_empty(),
        "{} of {count} malformed inputs were not refused properly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
