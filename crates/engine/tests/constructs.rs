//! One test per construct the cutover machines rely on, on the virtual clock.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cutover_engine::{
    load, load_value, Engine, Execution, Options, Status, TaskError, TaskHandler, TokenBroker,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A scripted Lambda: fails the first `fail_times` calls with `error`, optionally sleeps, echoes its payload.
#[derive(Default)]
struct Scripted {
    fail_times: Mutex<HashMap<String, u32>>,
    error: String,
    sleep: Duration,
    calls: Mutex<Vec<(String, Value)>>,
}

#[async_trait]
impl TaskHandler for Scripted {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, TaskError> {
        self.calls
            .lock()
            .unwrap()
            .push((function.to_string(), payload.clone()));
        if !self.sleep.is_zero() {
            tokio::time::sleep(self.sleep).await;
        }
        let mut left = self.fail_times.lock().unwrap();
        let n = left.entry(function.to_string()).or_insert(0);
        if *n > 0 {
            *n -= 1;
            return Err(TaskError {
                error: self.error.clone(),
                cause: "scripted failure".into(),
            });
        }
        Ok(json!({"echo": payload}))
    }
}

const EPOCH: &str = "2026-01-01T00:00:00Z";

fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(EPOCH).unwrap().into()
}

fn engine(handler: Arc<dyn TaskHandler>, broker: Arc<TokenBroker>, options: Options) -> Engine {
    let base = tokio::time::Instant::now();
    let clock = Arc::new(move || {
        epoch() + chrono::Duration::from_std(tokio::time::Instant::now() - base).unwrap()
    });
    Engine::new(handler, broker, clock, options)
}

async fn run(def: Value, input: Value, handler: Arc<dyn TaskHandler>) -> Execution {
    let sm = load_value(&def).expect("loads");
    engine(handler, Arc::new(TokenBroker::new()), Options::default())
        .execute(&sm, "sm", "exec", input)
        .await
}

fn seconds_of(exec: &Execution, kind: &str) -> Vec<f64> {
    exec.history
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| (e.timestamp - epoch()).num_milliseconds() as f64 / 1000.0)
        .collect()
}

const FN: &str = "arn:aws:lambda:us-east-1:123456789012:function:step";

#[tokio::test(start_paused = true)]
async fn retry_backs_off_on_the_virtual_clock() {
    let h = Arc::new(Scripted {
        error: "Retryable".into(),
        ..Default::default()
    });
    h.fail_times.lock().unwrap().insert(FN.into(), 3);
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": FN, "End": true,
        "Retry": [{"ErrorEquals": ["Retryable"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 3}]}}});
    let exec = run(def, json!({}), h.clone()).await;
    assert_eq!(exec.status, Status::Succeeded);
    // Attempts at 0, +2, +6, +18.
    assert_eq!(
        seconds_of(&exec, "LambdaFunctionScheduled"),
        vec![0.0, 2.0, 8.0, 26.0]
    );
    assert_eq!(exec.state_transitions, 4, "one entry plus three retries");
}

#[tokio::test(start_paused = true)]
async fn retry_caps_delays_and_gives_up_after_max_attempts() {
    let h = Arc::new(Scripted {
        error: "Retryable".into(),
        ..Default::default()
    });
    h.fail_times.lock().unwrap().insert(FN.into(), 10);
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": FN, "End": true,
        "Retry": [{"ErrorEquals": ["Retryable"], "IntervalSeconds": 10, "BackoffRate": 4, "MaxAttempts": 3, "MaxDelaySeconds": 30}]}}});
    let exec = run(def, json!({}), h).await;
    assert_eq!(exec.status, Status::Failed);
    assert_eq!(exec.error.as_deref(), Some("Retryable"));
    assert_eq!(
        seconds_of(&exec, "LambdaFunctionScheduled"),
        vec![0.0, 10.0, 40.0, 70.0]
    );
}

#[tokio::test(start_paused = true)]
async fn full_jitter_stays_under_the_computed_delay_and_is_seeded() {
    let mut times = Vec::new();
    for _ in 0..2 {
        let h = Arc::new(Scripted {
            error: "Retryable".into(),
            ..Default::default()
        });
        h.fail_times.lock().unwrap().insert(FN.into(), 3);
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": FN, "End": true,
            "Retry": [{"ErrorEquals": ["Retryable"], "IntervalSeconds": 10, "BackoffRate": 2, "MaxAttempts": 3, "JitterStrategy": "FULL"}]}}});
        let sm = load_value(&def).unwrap();
        let exec = engine(
            h,
            Arc::new(TokenBroker::new()),
            Options {
                seed: 42,
                ..Default::default()
            },
        )
        .execute(&sm, "sm", "e", json!({}))
        .await;
        let t = seconds_of(&exec, "LambdaFunctionScheduled");
        let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        for (gap, max) in gaps.iter().zip([10.0, 20.0, 40.0]) {
            assert!(*gap <= max, "jittered gap {gap} above {max}");
        }
        times.push(t);
    }
    assert_eq!(times[0], times[1], "the same seed replays the same delays");
}

#[tokio::test(start_paused = true)]
async fn catch_routes_by_error_name_and_keeps_the_input() {
    let h = Arc::new(Scripted {
        error: "HealthCheckFailed".into(),
        ..Default::default()
    });
    h.fail_times.lock().unwrap().insert(FN.into(), 1);
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": FN, "ResultPath": "$.out", "Next": "Done",
              "Catch": [{"ErrorEquals": ["LagNotConverged"], "Next": "Wrong"},
                        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Rollback"}]},
        "Wrong": {"Type": "Fail", "Error": "Wrong"},
        "Rollback": {"Type": "Pass", "End": true},
        "Done": {"Type": "Succeed"}}});
    let exec = run(def, json!({"keep": 1}), h).await;
    assert_eq!(exec.status, Status::Succeeded);
    let out = exec.output.unwrap();
    assert_eq!(out["keep"], 1);
    assert_eq!(out["error"]["Error"], "HealthCheckFailed");
    assert_eq!(out["error"]["Cause"], "scripted failure");
}

#[tokio::test(start_paused = true)]
async fn states_all_does_not_catch_runtime_errors() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": FN, "InputPath": "$.missing", "End": true,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Caught": {"Type": "Succeed"}}});
    let exec = run(def, json!({}), Arc::new(Scripted::default())).await;
    assert_eq!(exec.error.as_deref(), Some("States.Runtime"));
}

#[tokio::test(start_paused = true)]
async fn map_never_exceeds_max_concurrency() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2, "End": true,
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 10, "End": true}}}}}});
    let exec = run(
        def,
        json!({"items": [1, 2, 3, 4, 5]}),
        Arc::new(Scripted::default()),
    )
    .await;
    assert_eq!(exec.status, Status::Succeeded);
    assert_eq!(exec.output, Some(json!([1, 2, 3, 4, 5])));
    assert_eq!(
        (exec.stopped - exec.started).num_seconds(),
        30,
        "5 items of 10 s, 2 at a time"
    );
    let mut running: i32 = 0;
    let mut peak = 0;
    for e in &exec.history {
        match e.kind.as_str() {
            "MapIterationStarted" => running += 1,
            "MapIterationSucceeded" | "MapIterationFailed" => running -= 1,
            _ => {}
        }
        peak = peak.max(running);
    }
    assert_eq!(peak, 2);
}

#[tokio::test(start_paused = true)]
async fn map_item_selector_reads_the_context_item() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items", "End": true,
        "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "c.$": "$.constant"},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}});
    let exec = run(
        def,
        json!({"items": ["a", "b"], "constant": 7}),
        Arc::new(Scripted::default()),
    )
    .await;
    assert_eq!(
        exec.output,
        Some(json!([{"v": "a", "i": 0, "c": 7}, {"v": "b", "i": 1, "c": 7}]))
    );
}

#[tokio::test(start_paused = true)]
async fn parallel_branches_share_virtual_time() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 30, "End": true}}},
        {"StartAt": "B", "States": {"B": {"Type": "Wait", "Seconds": 50, "End": true}}}]}}});
    let exec = run(def, json!({"x": 1}), Arc::new(Scripted::default())).await;
    assert_eq!(exec.output, Some(json!([{"x": 1}, {"x": 1}])));
    assert_eq!((exec.stopped - exec.started).num_seconds(), 50);
}

#[tokio::test(start_paused = true)]
async fn timestamp_waits_until_the_instant() {
    let def = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Timestamp": "2026-01-01T01:00:00Z", "Next": "W2"},
        "W2": {"Type": "Wait", "TimestampPath": "$.at", "End": true}}});
    let exec = run(
        def,
        json!({"at": "2026-01-01T01:30:00+00:00"}),
        Arc::new(Scripted::default()),
    )
    .await;
    assert_eq!(exec.status, Status::Succeeded);
    assert_eq!(seconds_of(&exec, "WaitStateExited"), vec![3600.0, 5400.0]);
}

#[tokio::test(start_paused = true)]
async fn seconds_path_waits_and_rejects_negative_values() {
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": true}}});
    let exec = run(def.clone(), json!({"s": 90}), Arc::new(Scripted::default())).await;
    assert_eq!((exec.stopped - exec.started).num_seconds(), 90);
    let exec = run(def, json!({"s": -1}), Arc::new(Scripted::default())).await;
    assert_eq!(exec.error.as_deref(), Some("States.Runtime"));
}

#[tokio::test(start_paused = true)]
async fn task_timeout_fails_with_states_timeout() {
    let h = Arc::new(Scripted {
        sleep: Duration::from_secs(120),
        ..Default::default()
    });
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": FN, "TimeoutSeconds": 60, "End": true}}});
    let exec = run(def, json!({}), h).await;
    assert_eq!(exec.error.as_deref(), Some("States.Timeout"));
    assert_eq!((exec.stopped - exec.started).num_seconds(), 60);
}

const CALLBACK: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";

fn callback_machine(extra: Value) -> Value {
    let mut task = json!({"Type": "Task", "Resource": CALLBACK, "End": true,
        "Parameters": {"FunctionName": FN, "Payload": {"token.$": "$$.Task.Token", "gate": "g"}}});
    for (k, v) in extra.as_object().unwrap() {
        task[k] = v.clone();
    }
    json!({"StartAt": "Ask", "States": {"Ask": task}})
}

#[tokio::test(start_paused = true)]
async fn wait_for_task_token_resumes_on_success() {
    let h = Arc::new(Scripted::default());
    let broker = Arc::new(TokenBroker::new());
    let sm = load_value(&callback_machine(json!({"TimeoutSeconds": 3600}))).unwrap();
    let e = engine(h.clone(), broker.clone(), Options::default());
    let answer = {
        let (h, broker) = (h.clone(), broker.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(100)).await;
            let token = h.calls.lock().unwrap()[0].1["token"]
                .as_str()
                .unwrap()
                .to_string();
            broker
                .send_success(&token, json!({"decision": "approve"}))
                .unwrap();
            assert!(
                broker.send_success(&token, json!({})).is_err(),
                "a token answers once"
            );
        }
    };
    let (exec, ()) = tokio::join!(e.execute(&sm, "sm", "e", json!({})), answer);
    assert_eq!(exec.status, Status::Succeeded);
    assert_eq!(exec.output, Some(json!({"decision": "approve"})));
    assert_eq!((exec.stopped - exec.started).num_seconds(), 100);
    let kinds: Vec<&str> = exec.history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(broker.pending_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn wait_for_task_token_failure_and_timeout() {
    let h = Arc::new(Scripted::default());
    let broker = Arc::new(TokenBroker::new());
    let sm = load_value(&callback_machine(
        json!({"TimeoutSecondsPath": "$.expires"}),
    ))
    .unwrap();
    let e = engine(h.clone(), broker.clone(), Options::default());
    let reject = {
        let (h, broker) = (h.clone(), broker.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let token = h.calls.lock().unwrap()[0].1["token"]
                .as_str()
                .unwrap()
                .to_string();
            broker
                .send_failure(&token, "ApprovalRejected", "no")
                .unwrap();
        }
    };
    let (exec, ()) = tokio::join!(e.execute(&sm, "sm", "e", json!({"expires": 600})), reject);
    assert_eq!(exec.error.as_deref(), Some("ApprovalRejected"));

    let exec = e.execute(&sm, "sm", "e2", json!({"expires": 600})).await;
    assert_eq!(exec.error.as_deref(), Some("States.Timeout"));
    assert_eq!((exec.stopped - exec.started).num_seconds(), 600);
    assert_eq!(broker.pending_count(), 0, "an expired token is forgotten");
}

#[tokio::test(start_paused = true)]
async fn heartbeat_timeout_without_heartbeats() {
    let sm = load_value(&callback_machine(json!({"HeartbeatSeconds": 30}))).unwrap();
    let exec = engine(
        Arc::new(Scripted::default()),
        Arc::new(TokenBroker::new()),
        Options::default(),
    )
    .execute(&sm, "sm", "e", json!({}))
    .await;
    assert_eq!(exec.error.as_deref(), Some("States.HeartbeatTimeout"));
    assert_eq!((exec.stopped - exec.started).num_seconds(), 30);
}

#[tokio::test(start_paused = true)]
async fn duplicate_delivery_invokes_twice() {
    let h = Arc::new(Scripted::default());
    let def =
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": FN, "End": true}}});
    let sm = load_value(&def).unwrap();
    let exec = engine(
        h.clone(),
        Arc::new(TokenBroker::new()),
        Options {
            duplicate_delivery: true,
            ..Default::default()
        },
    )
    .execute(&sm, "sm", "e", json!({"a": 1}))
    .await;
    assert_eq!(exec.status, Status::Succeeded);
    assert_eq!(h.calls.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn lambda_invoke_wraps_the_payload() {
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": FN, "Payload": {"x.$": "$.x"}}, "ResultSelector": {"out.$": "$.Payload.echo"}, "End": true}}});
    let exec = run(def, json!({"x": 3}), Arc::new(Scripted::default())).await;
    assert_eq!(exec.output, Some(json!({"out": {"x": 3}})));
}

#[test]
fn unsupported_constructs_are_refused_at_load() {
    let cases = [
        (
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Assign": {"x": 1}, "End": true}}}),
            "Assign",
        ),
        (
            json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
            "JSONata",
        ),
        (
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Output": 1, "End": true}}}),
            "Output",
        ),
        (
            json!({"StartAt": "P", "States": {"P": {"Type": "Banana", "End": true}}}),
            "Banana",
        ),
        (
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": true}}}),
            "sqs",
        ),
        (
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemReader": {}, "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}}),
            "ItemReader",
        ),
        (
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}}),
            "DISTRIBUTED",
        ),
        (
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"x.$": "States.Nope()"}, "End": true}}}),
            "States.Nope",
        ),
        (
            json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "Nowhere"}}}),
            "Nowhere",
        ),
        (
            json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": FN, "End": true, "Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "SOME"}]}}}),
            "JitterStrategy",
        ),
        (
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": "1", "Next": "C"}]}}}),
            "wrong type",
        ),
    ];
    for (def, word) in cases {
        let e = load_value(&def).expect_err(word);
        assert!(e.to_string().contains(word), "{word}: {e}");
    }
}

#[test]
fn substitutions_must_all_be_defined() {
    let text = r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${StepArn}", "End": true}}}"#;
    assert!(load(text, &HashMap::new())
        .unwrap_err()
        .to_string()
        .contains("StepArn"));
    let subs = HashMap::from([("StepArn".to_string(), FN.to_string())]);
    assert!(load(text, &subs).is_ok());
}

#[tokio::test(start_paused = true)]
async fn child_executions_run_to_their_end_and_a_name_starts_once() {
    let child = load_value(&json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 100, "Next": "F"},
        "F": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": true, "Next": "Boom"}], "Default": "Ok"},
        "Boom": {"Type": "Fail", "Error": "ChildFailed", "Cause": "asked to"}, "Ok": {"Type": "Succeed"}}}))
    .unwrap();
    let mut e = engine(
        Arc::new(Scripted::default()),
        Arc::new(TokenBroker::new()),
        Options::default(),
    );
    let arn = e.register("child", child);
    let parent = load_value(&json!({"StartAt": "Run", "States": {"Run": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": arn, "Name.$": "$.name", "Input": {"fail.$": "$.fail"}}, "ResultSelector": {"out.$": "$.Output", "status.$": "$.Status"}, "End": true}}}))
    .unwrap();
    let ok = e
        .execute(
            &parent,
            "parent",
            "p1",
            json!({"name": "c1", "fail": false}),
        )
        .await;
    assert_eq!(
        ok.output,
        Some(json!({"out": {"fail": false}, "status": "SUCCEEDED"}))
    );
    assert_eq!(
        (ok.stopped - ok.started).num_seconds(),
        100,
        "the parent waited for the child"
    );
    let failed = e
        .execute(&parent, "parent", "p2", json!({"name": "c2", "fail": true}))
        .await;
    assert_eq!(failed.error.as_deref(), Some("States.TaskFailed"));
    assert!(failed.cause.unwrap().contains("ChildFailed"));
    let again = e
        .execute(
            &parent,
            "parent",
            "p3",
            json!({"name": "c1", "fail": false}),
        )
        .await;
    assert_eq!(
        again.error.as_deref(),
        Some("StepFunctions.ExecutionAlreadyExistsException")
    );
    assert_eq!(e.children().len(), 2, "c1 ran once");
}

/// A loop that never ends fails once its history would pass 25,000 events, as on AWS, and a
/// Catch on States.ALL does not turn that failure into a compensation path.
#[tokio::test(start_paused = true)]
async fn history_limit_fails_the_execution_uncatchably() {
    let def = json!({
        "StartAt": "Loop",
        "States": {
            "Loop": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Tick",
                    "States": {
                        "Tick": {"Type": "Wait", "Seconds": 1, "Next": "Again"},
                        "Again": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "Done"}], "Default": "Tick"},
                        "Done": {"Type": "Succeed"}
                    }
                },
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Compensate"}],
                "End": true
            },
            "Compensate": {"Type": "Pass", "End": true}
        }
    });
    let exec = run(def, json!({"items": [{}]}), Arc::new(Scripted::default())).await;
    assert_eq!(exec.status, Status::Failed);
    assert_eq!(exec.error.as_deref(), Some("States.Runtime"));
    assert!(
        exec.cause.as_deref().unwrap_or_default().contains("25000"),
        "{:?}",
        exec.cause
    );
    let n = exec.history.len();
    assert!(
        n <= cutover_engine::MAX_HISTORY_EVENTS && n > cutover_engine::MAX_HISTORY_EVENTS - 10,
        "{n} events"
    );
    assert!(
        !exec
            .history
            .iter()
            .any(|e| e.state.as_deref() == Some("Compensate")),
        "no catch runs after the history limit"
    );
}

/// A rehearsal on the real clock shortens waits and retry delays by `wait_scale`, and nothing
/// else: the states run in the same order.
#[tokio::test(start_paused = true)]
async fn wait_scale_shortens_waits_and_retry_delays() {
    let def = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 100, "Next": "T"},
        "T": {"Type": "Task", "Resource": FN, "End": true,
              "Retry": [{"ErrorEquals": ["Retryable"], "IntervalSeconds": 10, "BackoffRate": 1, "MaxAttempts": 2}]}}});
    let sm = load_value(&def).unwrap();
    let h = Arc::new(Scripted {
        error: "Retryable".into(),
        ..Default::default()
    });
    h.fail_times.lock().unwrap().insert(FN.into(), 2);
    let exec = engine(
        h,
        Arc::new(TokenBroker::new()),
        Options {
            wait_scale: 0.01,
            ..Default::default()
        },
    )
    .execute(&sm, "sm", "e", json!({}))
    .await;
    assert_eq!(exec.status, Status::Succeeded);
    // 100 s of Wait and two 10 s retry delays, at a hundredth: 1.2 s.
    let took = (exec.stopped - exec.started).num_milliseconds();
    assert_eq!(took, 1200, "{took} ms");
}
