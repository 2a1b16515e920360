//! Runs every case of the AWS-recorded ASL corpus (`conformance/aws-recorded`) and compares the
//! status, output, error, cause and history event types with what AWS recorded.
//! A case the engine refuses at load must use a construct it does not support (JSONata, variables);
//! any other mismatch fails the test unless it is listed, with its reason, in `known-differences.txt`.

use cutover_engine::{load_value, Engine, Options, Status, TaskError, TaskHandler, TokenBroker};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct NoTasks;

#[async_trait::async_trait]
impl TaskHandler for NoTasks {
    async fn invoke(&self, function: &str, _payload: Value) -> Result<Value, TaskError> {
        Err(TaskError {
            error: "NoHandler".into(),
            cause: format!("no handler for {function}"),
        })
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/aws-recorded")
}

/// A placeholder string matches any value; a string containing placeholders matches with each one as `.*?`.
fn matches(expected: &Value, actual: &Value, redactions: &[String]) -> bool {
    match (expected, actual) {
        (Value::String(e), _) if redactions.iter().any(|r| r == e) => true,
        (Value::String(e), Value::String(a))
            if redactions.iter().any(|r| e.contains(r.as_str())) =>
        {
            wildcard(e, a, redactions)
        }
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| matches(x, y, redactions))
        }
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|w| matches(v, w, redactions)))
        }
        _ => expected == actual,
    }
}

fn wildcard(pattern: &str, text: &str, redactions: &[String]) -> bool {
    // Split the pattern into literal pieces around placeholders, then match greedily left to right.
    let mut pieces: Vec<String> = vec![pattern.to_string()];
    for r in redactions {
        pieces = pieces
            .iter()
            .flat_map(|p| p.split(r.as_str()).map(str::to_string).collect::<Vec<_>>())
            .collect();
    }
    let mut pos = 0;
    for (i, piece) in pieces.iter().enumerate() {
        if i == 0 {
            if !text.starts_with(piece.as_str()) {
                return false;
            }
            pos = piece.len();
        } else if i == pieces.len() - 1 {
            return text.len() >= pos + piece.len() && text.ends_with(piece.as_str());
        } else {
            match text[pos..].find(piece.as_str()) {
                Some(at) => pos += at + piece.len(),
                None => return false,
            }
        }
    }
    pieces.len() == 1 && text == pattern || pieces.len() > 1
}

fn opt_str(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

enum Verdict {
    Pass,
    Refused(String),
    Mismatch(String),
}

fn run_case(case: &Value) -> Verdict {
    let machine = match load_value(&case["definition"]) {
        Ok(m) => m,
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let epoch = chrono::Utc::now();
    let exec = rt.block_on(async {
        let base = tokio::time::Instant::now();
        let clock = Arc::new(move || {
            epoch
                + chrono::Duration::from_std(tokio::time::Instant::now() - base).unwrap_or_default()
        });
        let engine = Engine::new(
            Arc::new(NoTasks),
            Arc::new(TokenBroker::new()),
            clock,
            Options::default(),
        );
        engine
            .execute(&machine, "sm-name", "exec-name", case["input"].clone())
            .await
    });
    let expected = &case["expected"];
    let redactions: Vec<String> = case["redactions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let status = match exec.status {
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED_OUT",
        Status::Aborted => "ABORTED",
    };
    if expected["status"] != status {
        return Verdict::Mismatch(format!(
            "status {status}, expected {} (error {:?}, cause {:?})",
            expected["status"], exec.error, exec.cause
        ));
    }
    if status == "SUCCEEDED" {
        let out = exec.output.clone().unwrap_or(Value::Null);
        if !matches(&expected["output"], &out, &redactions) {
            return Verdict::Mismatch(format!("output {out}, expected {}", expected["output"]));
        }
    } else {
        for (field, actual) in [("error", &exec.error), ("cause", &exec.cause)] {
            let want = opt_str(expected.get(field));
            let got = actual.clone().filter(|s| !s.is_empty());
            let ok = match (&want, &got) {
                (None, None) => true,
                (Some(w), Some(g)) => matches(
                    &Value::String(w.clone()),
                    &Value::String(g.clone()),
                    &redactions,
                ),
                _ => false,
            };
            if !ok {
                return Verdict::Mismatch(format!("{field} {got:?}, expected {want:?}"));
            }
        }
    }
    if let Some(types) = case["historyTypes"].as_array() {
        let want: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
        let got: Vec<&str> = exec.history.iter().map(|e| e.kind.as_str()).collect();
        let same = if case["historyOrder"] == "concurrent" {
            let (mut a, mut b) = (want.clone(), got.clone());
            a.sort();
            b.sort();
            a == b
        } else {
            want == got
        };
        if !same {
            return Verdict::Mismatch(format!("history {got:?}, expected {want:?}"));
        }
    }
    Verdict::Pass
}

fn known_differences() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/known-differences.txt"),
    )
    .unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

#[test]
fn engine_matches_aws_recordings() {
    let dir = corpus_dir();
    let known = known_differences();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .flat_map(|d| {
            std::fs::read_dir(d.expect("entry").path())
                .into_iter()
                .flatten()
        })
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() > 800,
        "expected the full corpus, found {} files",
        files.len()
    );
    let (mut passed, mut refused, mut known_seen) = (0, 0, 0);
    let mut failures = Vec::new();
    for f in &files {
        let folder = f
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let id = format!(
            "{folder}/{}",
            f.file_name().and_then(|s| s.to_str()).unwrap_or_default()
        );
        let case: Value = serde_json::from_str(&std::fs::read_to_string(f).expect("read case"))
            .expect("case JSON");
        match run_case(&case) {
            Verdict::Pass => {
                passed += 1;
                assert!(
                    !known.contains_key(&id),
                    "{id} passes now: remove it from known-differences.txt"
                );
            }
            Verdict::Refused(why) => {
                let unsupported = folder == "jsonata" || folder == "variables";
                if unsupported {
                    refused += 1;
                } else if known.contains_key(&id) {
                    known_seen += 1;
                } else {
                    failures.push(format!("{id}: refused at load: {why}"));
                }
            }
            Verdict::Mismatch(why) => {
                if known.contains_key(&id) {
                    known_seen += 1;
                } else {
                    failures.push(format!("{id}: {why}"));
                }
            }
        }
    }
    eprintln!(
        "conformance: {} cases, {passed} match AWS, {refused} refused at load (JSONata/variables), {known_seen} known differences",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} cases differ from AWS:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
