//! Every route and error code of the approval API, over the simulated world.

use chrono::Utc;
use cutover_core::api::{handle_api, ApiRequest, ApiResponse};
use cutover_core::plan::Plan;
use cutover_core::ports::{PortError, TaskCallbacks};
use cutover_core::steps::*;
use cutover_sim::{MemoryStore, SimClock, World, WorldSpec};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WORLD: &str = r#"
route53:
  zones: [{id: Z0123456789, name: example.com., records: [{name: orders.example.com., type: CNAME, ttl: 300, values: [blue-lb.example.com]}]}]
dms: {tasks: [{arn: "arn:aws:dms:us-east-1:123456789012:task:ORDERS", status: ready, lag: [[0, 1]]}]}
http: {"https://green.example.com/health": [[0, 200]]}
"#;

const PLAN: &str = r#"
application: orders
replication: {kind: dms, taskArn: "arn:aws:dms:us-east-1:123456789012:task:ORDERS", maxLagSeconds: 30}
dns: {hostedZoneId: Z0123456789, recordName: orders.example.com, recordType: CNAME, blue: {setIdentifier: blue, value: blue-lb.example.com}, green: {setIdentifier: green, value: green-lb.example.com}}
traffic: {steps: [{weight: 10, bakeSeconds: 60, approval: g1}, {weight: 50, bakeSeconds: 60, approval: g2}, {weight: 100, bakeSeconds: 60, approval: g3}]}
health: {http: [{url: "https://green.example.com/health"}]}
approvals: {expiresSeconds: 600, twoPersonGates: [g2]}
"#;

#[derive(Default)]
/// Records every callback; `.1` makes that many next calls fail as Step Functions being down.
struct Callbacks(Mutex<Vec<(String, String)>>, Mutex<u32>);

impl Callbacks {
    fn outage(&self) -> Result<(), PortError> {
        let mut left = self.1.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return Err(PortError::new(
                "states",
                cutover_core::ports::PortErrorKind::Transient,
                "ServiceUnavailable",
                "Step Functions is unavailable",
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl TaskCallbacks for Callbacks {
    async fn send_success(&self, token: &str, _: Value) -> Result<(), PortError> {
        self.outage()?;
        self.0
            .lock()
            .unwrap()
            .push((token.into(), "success".into()));
        Ok(())
    }
    async fn send_failure(&self, token: &str, error: &str, _: &str) -> Result<(), PortError> {
        self.outage()?;
        self.0.lock().unwrap().push((token.into(), error.into()));
        Ok(())
    }
}

struct Given {
    deps: Deps,
    callbacks: Arc<Callbacks>,
    responses: Mutex<Vec<String>>,
}

impl Given {
    /// A mid-run control of run r1 (POST /runs/r1/controls).
    async fn control(&self, body: Value, who: Option<&str>) -> ApiResponse {
        self.call("POST", "/runs/r1/controls", Some(body), who)
            .await
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        who: Option<&str>,
    ) -> ApiResponse {
        let req = ApiRequest {
            method: method.into(),
            path: path.into(),
            body: body.map(|b| b.to_string()),
            identity: who.map(str::to_string),
            groups: vec![],
        };
        let r = handle_api(&req, &self.deps).await;
        self.responses.lock().unwrap().push(r.body.to_string());
        r
    }
}

async fn given() -> Given {
    given_plan(PLAN).await
}

async fn given_plan(plan_text: &str) -> Given {
    let clock = SimClock::start(Utc::now());
    let world = Arc::new(World::new(WorldSpec::parse(WORLD, false).unwrap(), clock));
    let callbacks = Arc::new(Callbacks::default());
    let deps = cutover_sim::world_deps(
        world.clone(),
        Arc::new(MemoryStore::new()),
        callbacks.clone(),
    );
    let plan = Plan::parse(plan_text, false).unwrap();
    validate_cutover(
        ValidateInput {
            run_id: "r1".into(),
            plan: plan.clone(),
        },
        &deps,
    )
    .await
    .unwrap();
    for (gate, token) in [
        ("g1", "TOKEN-ONE"),
        ("g2", "TOKEN-TWO"),
        ("g3", "TOKEN-THREE"),
    ] {
        request_approval(
            RequestApprovalInput {
                run_id: "r1".into(),
                plan: plan.clone(),
                gate: gate.into(),
                task_token: token.into(),
                weight: None,
            },
            &deps,
        )
        .await
        .unwrap();
    }
    Given {
        deps,
        callbacks,
        responses: Mutex::new(vec![]),
    }
}

const ALICE: Option<&str> = Some("arn:aws:iam::123456789012:user/alice");
const BOB: Option<&str> = Some("arn:aws:iam::123456789012:user/bob");

#[tokio::test(start_paused = true)]
async fn get_run_shows_phase_gates_and_events() {
    let g = given().await;
    let r = g.call("GET", "/runs/r1", None, ALICE).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["application"], "orders");
    assert_eq!(r.body["pendingGates"].as_array().unwrap().len(), 3);
    assert!(r.body["recentEvents"].as_array().unwrap().len() >= 4);
    assert_eq!(g.call("GET", "/runs/nope", None, ALICE).await.status, 404);
    assert_eq!(
        g.call("GET", "/runs/r1", None, None).await.status,
        403,
        "no identity"
    );
    assert_eq!(g.call("DELETE", "/runs/r1", None, ALICE).await.status, 404);
}

/// The decision is stored, then Step Functions refuses the callback: the answer is 503, and the
/// same decision sent again delivers the callback (not a 409), once.
#[tokio::test(start_paused = true)]
async fn a_decision_whose_callback_failed_is_resent_when_repeated() {
    let g = given().await;
    *g.callbacks.1.lock().unwrap() = 1;
    let approve = json!({"decision": "approve"});
    let first = g
        .call(
            "POST",
            "/runs/r1/approvals/g1",
            Some(approve.clone()),
            ALICE,
        )
        .await;
    assert_eq!(first.status, 503, "{}", first.body);
    assert!(first
        .body
        .to_string()
        .contains("send the same decision again"));
    assert!(g.callbacks.0.lock().unwrap().is_empty());
    let again = g
        .call(
            "POST",
            "/runs/r1/approvals/g1",
            Some(approve.clone()),
            ALICE,
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        g.callbacks.0.lock().unwrap().as_slice(),
        [("TOKEN-ONE".to_string(), "success".to_string())]
    );
    let third = g
        .call("POST", "/runs/r1/approvals/g1", Some(approve), ALICE)
        .await;
    assert_eq!(third.status, 409, "delivered now: a replay is refused");
    let reject = g
        .call(
            "POST",
            "/runs/r1/approvals/g1",
            Some(json!({"decision": "reject"})),
            BOB,
        )
        .await;
    assert_eq!(reject.status, 409, "a different decision never overrides");
    assert_eq!(g.callbacks.0.lock().unwrap().len(), 1);
}

/// Abort fails every gate waiting for a human, and says which it could not fail.
#[tokio::test(start_paused = true)]
async fn abort_fails_pending_gates_and_names_the_ones_it_could_not() {
    let g = given().await;
    *g.callbacks.1.lock().unwrap() = 1;
    let r = g
        .call(
            "POST",
            "/runs/r1/abort",
            Some(json!({"reason": "freeze"})),
            ALICE,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["gatesFailed"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["gatesNotFailed"].as_array().unwrap().len(), 1);
    let events = g.deps.store.events("r1").await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.event == "abort-requested" && e.actor.as_deref() == ALICE));
}

#[tokio::test(start_paused = true)]
async fn a_decision_is_recorded_once_with_its_approver() {
    let g = given().await;
    let approve = json!({"decision": "approve", "reason": "lag 3s, no 5xx"});
    assert_eq!(
        g.call("POST", "/runs/r1/approvals/g1", Some(approve.clone()), None)
            .await
            .status,
        403
    );
    let r = g
        .call(
            "POST",
            "/runs/r1/approvals/g1",
            Some(approve.clone()),
            ALICE,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["by"], ALICE.unwrap());
    assert_eq!(
        g.callbacks.0.lock().unwrap().as_slice(),
        [("TOKEN-ONE".to_string(), "success".to_string())]
    );
    let replay = g
        .call("POST", "/runs/r1/approvals/g1", Some(approve.clone()), BOB)
        .await;
    assert_eq!(replay.status, 409, "a replayed decision");
    assert_eq!(
        g.callbacks.0.lock().unwrap().len(),
        1,
        "the task was answered once"
    );
    let events = g.deps.store.events("r1").await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event == "approved" && e.actor.as_deref() == ALICE),
        "the approver is in the audit trail"
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_runs_and_gates_are_404_and_bad_bodies_name_the_field() {
    let g = given().await;
    let approve = json!({"decision": "approve"});
    assert_eq!(
        g.call(
            "POST",
            "/runs/nope/approvals/g1",
            Some(approve.clone()),
            ALICE
        )
        .await
        .status,
        404,
        "wrong run"
    );
    assert_eq!(
        g.call("POST", "/runs/r1/approvals/nope", Some(approve), ALICE)
            .await
            .status,
        404,
        "unknown gate"
    );
    for (body, field) in [
        (json!({"decision": "maybe"}), "decision"),
        (json!({"reason": "x"}), "decision"),
        (json!({"decision": "approve", "extra": 1}), "extra"),
    ] {
        let r = g
            .call("POST", "/runs/r1/approvals/g1", Some(body.clone()), ALICE)
            .await;
        assert_eq!(r.status, 400, "{body}");
        assert!(
            r.body["field"].as_str().unwrap().contains(field)
                || r.body["error"].as_str().unwrap().contains(field),
            "{body} -> {}",
            r.body
        );
    }
    let r = handle_api(
        &ApiRequest {
            method: "POST".into(),
            path: "/runs/r1/approvals/g1".into(),
            body: Some("{not json".into()),
            identity: ALICE.map(str::to_string),
            groups: vec![],
        },
        &g.deps,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        g.callbacks.0.lock().unwrap().is_empty(),
        "nothing was decided by bad requests"
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_gate_is_410() {
    let g = given().await;
    tokio::time::sleep(Duration::from_secs(601)).await;
    let r = g
        .call(
            "POST",
            "/runs/r1/approvals/g1",
            Some(json!({"decision": "approve"})),
            ALICE,
        )
        .await;
    assert_eq!(r.status, 410);
    assert!(g.callbacks.0.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_two_person_rule_needs_two_distinct_approvers() {
    let g = given().await;
    let approve = json!({"decision": "approve"});
    let first = g
        .call(
            "POST",
            "/runs/r1/approvals/g2",
            Some(approve.clone()),
            ALICE,
        )
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert!(
        g.callbacks.0.lock().unwrap().is_empty(),
        "one approval does not open a two-person gate"
    );
    assert_eq!(
        g.call(
            "POST",
            "/runs/r1/approvals/g2",
            Some(approve.clone()),
            ALICE
        )
        .await
        .status,
        409,
        "the same person twice"
    );
    let second = g
        .call("POST", "/runs/r1/approvals/g2", Some(approve), BOB)
        .await;
    assert_eq!(second.status, 200);
    assert_eq!(
        second.body["by"],
        format!("{}, {}", ALICE.unwrap(), BOB.unwrap())
    );
    assert_eq!(
        g.callbacks.0.lock().unwrap().as_slice(),
        [("TOKEN-TWO".to_string(), "success".to_string())]
    );
}

#[tokio::test(start_paused = true)]
async fn abort_sets_the_flag_and_fails_pending_gates() {
    let g = given().await;
    assert_eq!(
        g.call("POST", "/runs/r1/abort", Some(json!({})), ALICE)
            .await
            .status,
        400
    );
    assert_eq!(
        g.call(
            "POST",
            "/runs/nope/abort",
            Some(json!({"reason": "x"})),
            ALICE
        )
        .await
        .status,
        404
    );
    let r = g
        .call(
            "POST",
            "/runs/r1/abort",
            Some(json!({"reason": "5xx on green"})),
            ALICE,
        )
        .await;
    assert_eq!(r.status, 202);
    let rec = g.deps.store.load_run("r1").await.unwrap().unwrap();
    assert!(rec.abort_requested.unwrap().contains("5xx on green"));
    let calls = g.callbacks.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "every pending gate failed");
    assert!(calls.iter().all(|(_, e)| e == "Aborted"));
}

#[tokio::test(start_paused = true)]
async fn no_response_carries_a_task_token() {
    let g = given().await;
    g.call("GET", "/runs/r1", None, ALICE).await;
    g.call(
        "POST",
        "/runs/r1/approvals/g1",
        Some(json!({"decision": "reject", "reason": "no"})),
        ALICE,
    )
    .await;
    g.call(
        "POST",
        "/runs/r1/approvals/g2",
        Some(json!({"decision": "approve"})),
        ALICE,
    )
    .await;
    g.call("GET", "/runs/r1", None, ALICE).await;
    g.call(
        "POST",
        "/runs/r1/abort",
        Some(json!({"reason": "done"})),
        ALICE,
    )
    .await;
    let all = g.responses.lock().unwrap().join("\n");
    assert!(all.contains("pendingGates"), "the responses were captured");
    for t in ["TOKEN-ONE", "TOKEN-TWO", "TOKEN-THREE"] {
        assert!(!all.contains(t), "{t} leaked");
    }
}

#[derive(Default)]
struct Schedules(Mutex<Vec<(String, chrono::DateTime<Utc>, String)>>);

#[async_trait::async_trait]
impl cutover_core::ports::WaveSchedules for Schedules {
    async fn schedule_wave(
        &self,
        name: &str,
        at: chrono::DateTime<Utc>,
        input: &str,
    ) -> Result<String, PortError> {
        self.0.lock().unwrap().push((name.into(), at, input.into()));
        Ok(format!(
            "arn:aws:scheduler:us-east-1:123456789012:schedule/default/{name}"
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_wave_is_scheduled_through_the_api_inside_its_window() {
    let g = given().await;
    let plan: Value = serde_json::to_value(Plan::parse(PLAN, false).unwrap()).unwrap();
    let wave = |name: &str, deps: Value| {
        json!({"wave": name, "maxConcurrency": 2, "window": {"notBefore": "2030-01-05T02:00:00Z", "notAfter": "2030-01-05T06:00:00Z"},
               "applications": [{"application": "orders", "runId": "w7-orders", "dependsOn": deps, "plan": plan}]})
    };
    let s = Schedules::default();
    let call = |path: &str, body: Value| {
        let req = ApiRequest {
            method: "POST".into(),
            path: path.into(),
            body: Some(body.to_string()),
            identity: ALICE.map(str::to_string),
            groups: vec![],
        };
        let (deps, s) = (&g.deps, &s);
        async move {
            cutover_core::api::handle_api_with(
                &req,
                deps,
                Some(s),
                &cutover_core::api::Bounds::open(),
            )
            .await
        }
    };
    let ok = call(
        "/waves/w7/schedule",
        json!({"at": "2030-01-05T02:30:00Z", "wave": wave("w7", json!([]))}),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert!(ok.body["scheduleArn"].as_str().unwrap().ends_with("/w7"));
    for (path, body, field) in [
        (
            "/waves/w7/schedule",
            json!({"at": "2030-01-05T07:00:00Z", "wave": wave("w7", json!([]))}),
            "at",
        ),
        (
            "/waves/w7/schedule",
            json!({"at": "2020-01-05T02:30:00Z", "wave": wave("w7", json!([]))}),
            "at",
        ),
        (
            "/waves/w8/schedule",
            json!({"at": "2030-01-05T02:30:00Z", "wave": wave("w7", json!([]))}),
            "wave.wave",
        ),
        (
            "/waves/w7/schedule",
            json!({"at": "2030-01-05T02:30:00Z", "wave": wave("w7", json!(["ghost"]))}),
            "wave",
        ),
    ] {
        let r = call(path, body).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (400, Some(field)),
            "{}",
            r.body
        );
    }
    assert_eq!(
        s.0.lock().unwrap().len(),
        1,
        "only the valid request scheduled anything"
    );
    let not_configured = handle_api(
        &ApiRequest {
            method: "POST".into(),
            path: "/waves/w7/schedule".into(),
            body: Some("{}".into()),
            identity: ALICE.map(str::to_string),
            groups: vec![],
        },
        &g.deps,
    )
    .await;
    assert_eq!(not_configured.status, 404);
}

const APPROVER_ROLE: &str = "arn:aws:sts::123456789012:assumed-role/CutoverApprover";

#[tokio::test(start_paused = true)]
async fn only_the_plans_approvers_decide_gates_and_abort() {
    let g = given_plan(&PLAN.replace(
        "twoPersonGates: [g2]}",
        "twoPersonGates: [g2], approvers: [\"arn:aws:sts::123456789012:assumed-role/CutoverApprover/*\", \"group:release-managers\"]}",
    ))
    .await;
    let outsider = "arn:aws:sts::123456789012:assumed-role/Developer/mallory";
    let r = g
        .call(
            "POST",
            "/runs/r1/approvals/g1",
            Some(json!({"decision": "approve"})),
            Some(outsider),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("approvals.approvers"));
    let r = g
        .call(
            "POST",
            "/runs/r1/abort",
            Some(json!({"reason": "because"})),
            Some(outsider),
        )
        .await;
    assert_eq!(r.status, 403);
    let rec = g.deps.store.load_run("r1").await.unwrap().unwrap();
    assert_eq!(
        rec.abort_requested, None,
        "a refused caller changed nothing"
    );
    assert!(g.callbacks.0.lock().unwrap().is_empty());
    // A JWT caller in the group, and a session of the approver role, are let in.
    let req = ApiRequest {
        method: "POST".into(),
        path: "/runs/r1/approvals/g1".into(),
        body: Some(json!({"decision": "approve"}).to_string()),
        identity: Some("4b1c-user-sub".into()),
        groups: vec!["release-managers".into()],
    };
    assert_eq!(handle_api(&req, &g.deps).await.status, 200);
    let r = g
        .call(
            "POST",
            "/runs/r1/approvals/g3",
            Some(json!({"decision": "approve"})),
            Some(&format!("{APPROVER_ROLE}/alice")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(start_paused = true)]
async fn one_person_cannot_be_both_approvers_through_two_sessions_of_one_role() {
    let g = given().await;
    let first = g
        .call(
            "POST",
            "/runs/r1/approvals/g2",
            Some(json!({"decision": "approve"})),
            Some(&format!("{APPROVER_ROLE}/alice")),
        )
        .await;
    assert_eq!(first.status, 202);
    let again = g
        .call(
            "POST",
            "/runs/r1/approvals/g2",
            Some(json!({"decision": "approve"})),
            Some(&format!("{APPROVER_ROLE}/alice-second-session")),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    let other = g
        .call(
            "POST",
            "/runs/r1/approvals/g2",
            Some(json!({"decision": "approve"})),
            Some("arn:aws:iam::123456789012:user/bob"),
        )
        .await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(
        person(
            "arn:aws:sts::123456789012:assumed-role/CutoverApprover/x",
            &cutover_core::steps::IdentityRule::default()
        ),
        "arn:aws:iam::123456789012:role/CutoverApprover"
    );
}

/// The deployer's bounds of a stack: operators may start and schedule, approvers decide.
fn stack_bounds() -> cutover_core::api::Bounds {
    cutover_core::api::Bounds {
        operators: vec!["arn:aws:iam::123456789012:role/ReleaseOperator".into()],
        approvers: vec![
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Release_*/*".into(),
            "arn:aws:iam::123456789012:user/*".into(),
            "arn:aws:sts::123456789012:federated-user/*".into(),
            "group:Approvers".into(),
        ],
        identity: IdentityRule::default(),
        allowed_records: Some(vec!["orders.example.com".into()]),
        allowed_zones: Some(vec!["Z0123456789".into()]),
    }
}

// One request as the deployed API gets it: the stack's bounds, the route, the caller.
#[allow(clippy::too_many_arguments)]
async fn call_bounded(
    g: &Given,
    bounds: &cutover_core::api::Bounds,
    schedules: Option<&Schedules>,
    method: &str,
    path: &str,
    body: Option<Value>,
    who: &str,
    groups: &[&str],
) -> ApiResponse {
    let req = ApiRequest {
        method: method.into(),
        path: path.into(),
        body: body.map(|b| b.to_string()),
        identity: Some(who.to_string()),
        groups: groups.iter().map(|s| s.to_string()).collect(),
    };
    cutover_core::api::handle_api_with(
        &req,
        &g.deps,
        schedules.map(|s| s as &dyn cutover_core::ports::WaveSchedules),
        bounds,
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_schedule_request_cannot_grant_itself_the_right_to_start_cutovers() {
    let g = given().await;
    let s = Schedules::default();
    let bounds = stack_bounds();
    // The body says anyone may approve and points green elsewhere: it counts for nothing.
    let mut plan: Value = serde_json::to_value(Plan::parse(PLAN, false).unwrap()).unwrap();
    plan["approvals"]["approvers"] = json!([]);
    plan["dns"]["green"]["value"] = json!("attacker.example.net");
    let body = json!({"at": "2030-01-05T02:30:00Z", "wave": {"wave": "w9", "maxConcurrency": 1,
        "applications": [{"application": "orders", "runId": "w9-orders", "dependsOn": [], "plan": plan}]}});
    for who in [
        "arn:aws:iam::123456789012:user/mallory",
        "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Release_0123/alice",
    ] {
        let r = call_bounded(
            &g,
            &bounds,
            Some(&s),
            "POST",
            "/waves/w9/schedule",
            Some(body.clone()),
            who,
            &[],
        )
        .await;
        assert_eq!(r.status, 403, "{who}: {}", r.body);
        assert!(
            r.body["error"].as_str().unwrap().contains("ApiOperators"),
            "{}",
            r.body
        );
    }
    assert!(s.0.lock().unwrap().is_empty(), "nothing was scheduled");
    // The operator may schedule, but only records within the stack's allow-list.
    let op = "arn:aws:sts::123456789012:assumed-role/ReleaseOperator/ci";
    let mut outside = body.clone();
    outside["wave"]["applications"][0]["plan"]["dns"]["recordName"] = json!("payments.example.com");
    let r = call_bounded(
        &g,
        &bounds,
        Some(&s),
        "POST",
        "/waves/w9/schedule",
        Some(outside),
        op,
        &[],
    )
    .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("wave.applications[0].plan.dns.recordName")),
        "{}",
        r.body
    );
    assert!(s.0.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn empty_stack_lists_deny_every_route() {
    let g = given().await;
    let nobody = cutover_core::api::Bounds::default();
    let who = "arn:aws:iam::123456789012:user/alice";
    for (method, path, body) in [
        ("GET", "/runs/r1", None),
        (
            "POST",
            "/runs/r1/approvals/g1",
            Some(json!({"decision": "approve"})),
        ),
        ("POST", "/runs/r1/abort", Some(json!({"reason": "x"}))),
        ("POST", "/waves/w1/schedule", Some(json!({}))),
    ] {
        let r = call_bounded(&g, &nobody, None, method, path, body, who, &[]).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
    }
    // An approver of the stack reads the run; a plan that names approvers narrows who decides.
    let r = call_bounded(&g, &stack_bounds(), None, "GET", "/runs/r1", None, who, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(start_paused = true)]
async fn identity_center_users_are_people_and_minted_names_are_not() {
    let bounds = stack_bounds();
    let sso = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Release_0123456789abcdef";
    // Two Identity Center users of one permission set: two people.
    let g = given().await;
    let first = call_bounded(
        &g,
        &bounds,
        None,
        "POST",
        "/runs/r1/approvals/g2",
        Some(json!({"decision": "approve"})),
        &format!("{sso}/alice@example.com"),
        &[],
    )
    .await;
    assert_eq!(first.status, 202, "{}", first.body);
    let second = call_bounded(
        &g,
        &bounds,
        None,
        "POST",
        "/runs/r1/approvals/g2",
        Some(json!({"decision": "approve"})),
        &format!("{sso}/bob@example.com"),
        &[],
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    // Two federated-user names minted by one IAM user: one person.
    let g = given().await;
    let fed = "arn:aws:sts::123456789012:federated-user";
    let first = call_bounded(
        &g,
        &bounds,
        None,
        "POST",
        "/runs/r1/approvals/g2",
        Some(json!({"decision": "approve"})),
        &format!("{fed}/alice"),
        &[],
    )
    .await;
    assert_eq!(first.status, 202, "{}", first.body);
    let again = call_bounded(
        &g,
        &bounds,
        None,
        "POST",
        "/runs/r1/approvals/g2",
        Some(json!({"decision": "approve"})),
        &format!("{fed}/not-alice"),
        &[],
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);
    // A role whose trust policy pins the session name (listed by the deployer): role + session.
    let pinned = cutover_core::api::Bounds {
        approvers: vec!["arn:aws:sts::123456789012:assumed-role/SamlApprover/*".into()],
        identity: IdentityRule {
            pinned_roles: vec!["SamlApprover".into()],
        },
        ..stack_bounds()
    };
    let g = given().await;
    let saml = "arn:aws:sts::123456789012:assumed-role/SamlApprover";
    let first = call_bounded(
        &g,
        &pinned,
        None,
        "POST",
        "/runs/r1/approvals/g2",
        Some(json!({"decision": "approve"})),
        &format!("{saml}/carol"),
        &[],
    )
    .await;
    assert_eq!(first.status, 202, "{}", first.body);
    let second = call_bounded(
        &g,
        &pinned,
        None,
        "POST",
        "/runs/r1/approvals/g2",
        Some(json!({"decision": "approve"})),
        &format!("{saml}/dave"),
        &[],
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    // The same role unlisted: every session is one person.
    assert_eq!(
        person(&format!("{saml}/carol"), &IdentityRule::default()),
        person(&format!("{saml}/dave"), &IdentityRule::default())
    );
}

#[tokio::test(start_paused = true)]
async fn groups_match_whole() {
    let g = given().await;
    let who = "sub-123";
    let r = call_bounded(
        &g,
        &stack_bounds(),
        None,
        "POST",
        "/runs/r1/approvals/g1",
        Some(json!({"decision": "approve"})),
        who,
        &["Not Approvers"],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = call_bounded(
        &g,
        &stack_bounds(),
        None,
        "POST",
        "/runs/r1/approvals/g1",
        Some(json!({"decision": "approve"})),
        who,
        &["Approvers"],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(start_paused = true)]
async fn waves_are_queued_listed_skipped_and_scheduled_by_reference_within_the_bounds() {
    let g = given().await;
    let s = Schedules::default();
    let bounds = stack_bounds();
    let op = "arn:aws:sts::123456789012:assumed-role/ReleaseOperator/ci";
    let plan: Value = serde_json::to_value(Plan::parse(PLAN, false).unwrap()).unwrap();
    let wave = |name: &str| {
        json!({"wave": {"wave": name, "maxConcurrency": 1,
            "window": {"notBefore": "2030-01-05T02:00:00Z", "notAfter": "2030-01-05T06:00:00Z"},
            "applications": [{"application": "orders", "runId": format!("{name}-orders"), "dependsOn": [], "plan": plan}]}})
    };
    // Outside ApiOperators: 403 on every calendar route, nothing queued.
    let mallory = "arn:aws:iam::123456789012:user/mallory";
    for (method, path, body) in [
        ("POST", "/calendar", Some(wave("w1"))),
        ("GET", "/calendar", None),
        ("POST", "/calendar/w1/skip", Some(json!({}))),
    ] {
        let r = call_bounded(&g, &bounds, Some(&s), method, path, body, mallory, &[]).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
    }
    assert!(g.deps.store.calendar().await.unwrap().is_empty());
    // A plan outside the allow-lists is refused naming the field.
    let mut outside = wave("w1");
    outside["wave"]["applications"][0]["plan"]["dns"]["recordName"] = json!("payments.example.com");
    let r = call_bounded(
        &g,
        &bounds,
        Some(&s),
        "POST",
        "/calendar",
        Some(outside),
        op,
        &[],
    )
    .await;
    assert_eq!(
        r.body["field"], "wave.applications[0].plan.dns.recordName",
        "{}",
        r.body
    );
    // Queued twice: the second is a conflict while the first is queued.
    for (name, status) in [("w1", 201), ("w2", 201), ("w1", 409)] {
        let r = call_bounded(
            &g,
            &bounds,
            Some(&s),
            "POST",
            "/calendar",
            Some(wave(name)),
            op,
            &[],
        )
        .await;
        assert_eq!(r.status, status, "{name}: {}", r.body);
    }
    let r = call_bounded(&g, &bounds, Some(&s), "GET", "/calendar", None, op, &[]).await;
    let listed: Vec<(String, String, u64)> = r.body["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["wave"].as_str().unwrap().into(),
                w["state"].as_str().unwrap().into(),
                w["order"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("w1".into(), "queued".into(), 1),
            ("w2".into(), "queued".into(), 2)
        ]
    );
    // Scheduled by reference: the schedule's input names the queued wave, never its plans.
    let r = call_bounded(
        &g,
        &bounds,
        Some(&s),
        "POST",
        "/waves/w1/schedule",
        Some(json!({"at": "2030-01-05T02:30:00Z"})),
        op,
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let scheduled = s.0.lock().unwrap().clone();
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0].2, r#"{"calendar":{"wave":"w1"}}"#);
    // Outside its window, or a wave not on the calendar: refused, nothing scheduled.
    let r = call_bounded(
        &g,
        &bounds,
        Some(&s),
        "POST",
        "/waves/w1/schedule",
        Some(json!({"at": "2030-01-06T02:30:00Z"})),
        op,
        &[],
    )
    .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("at")),
        "{}",
        r.body
    );
    let r = call_bounded(
        &g,
        &bounds,
        Some(&s),
        "POST",
        "/waves/w9/schedule",
        Some(json!({"at": "2030-01-05T02:30:00Z"})),
        op,
        &[],
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(s.0.lock().unwrap().len(), 1);
    // Skipped: recorded with who and why; a skipped wave is not skipped again.
    let r = call_bounded(
        &g,
        &bounds,
        Some(&s),
        "POST",
        "/calendar/w2/skip",
        Some(json!({"reason": "payments freeze"})),
        op,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let w2 = g
        .deps
        .store
        .calendar()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.wave == "w2")
        .unwrap();
    assert_eq!(w2.state, cutover_core::model::CalendarState::Skipped);
    assert!(w2.note.unwrap().contains("payments freeze"));
    let r = call_bounded(
        &g,
        &bounds,
        Some(&s),
        "POST",
        "/calendar/w2/skip",
        Some(json!({})),
        op,
        &[],
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

/// Mid-run controls: authorized like decisions, each refusal names why and changes nothing,
/// each change is audited with its actor.
#[tokio::test(start_paused = true)]
async fn controls_are_authorized_bounded_and_audited() {
    let g = given_plan(&PLAN.replace(
        "twoPersonGates: [g2]}",
        "twoPersonGates: [g2], approvers: [\"arn:aws:iam::123456789012:user/alice\"]}\ncontrols: {maxHoldSeconds: 900}",
    ))
    .await;
    let hold = json!({"action": "hold", "reason": "DBA checks the replica"});
    let before = g.deps.store.load_run("r1").await.unwrap().unwrap();
    // Not the plan's approver, or no identity: refused, nothing changed.
    assert_eq!(g.control(hold.clone(), BOB).await.status, 403);
    assert_eq!(g.control(hold.clone(), None).await.status, 403);
    // Bad bodies name the field.
    for (body, field) in [
        (json!({"action": "pause", "reason": "x"}), "action"),
        (json!({"action": "hold"}), "reason"),
        (json!({"action": "hold", "reason": " "}), "reason"),
        (json!({"action": "extend-bake", "reason": "x"}), "seconds"),
        (
            json!({"action": "extend-bake", "seconds": 0, "reason": "x"}),
            "seconds",
        ),
        (
            json!({"action": "hold", "seconds": 60, "reason": "x"}),
            "seconds",
        ),
        (json!({"action": "hold", "reason": "x", "by": "root"}), "by"),
    ] {
        let r = g.control(body.clone(), ALICE).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["field"], field, "{body}: {}", r.body);
    }
    assert_eq!(
        g.call("POST", "/runs/nope/controls", Some(hold.clone()), ALICE)
            .await
            .status,
        404
    );
    // Nothing has shifted yet: there is no bake to extend or promote.
    let r = g
        .control(json!({"action": "promote", "reason": "x"}), ALICE)
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let after = g.deps.store.load_run("r1").await.unwrap().unwrap();
    assert_eq!(before, after, "refusals changed nothing");
    // A hold, once; resume only while held.
    let r = g.control(hold.clone(), ALICE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["held"], true);
    assert_eq!(r.body["holdSecondsLeft"], 900);
    assert_eq!(g.control(hold.clone(), ALICE).await.status, 409);
    tokio::time::sleep(Duration::from_secs(100)).await;
    let resume = json!({"action": "resume", "reason": "replica fine"});
    let r = g.control(resume.clone(), ALICE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let left = r.body["holdSecondsLeft"].as_u64().unwrap();
    assert!((795..=800).contains(&left), "{}", r.body);
    assert_eq!(g.control(resume, ALICE).await.status, 409);
    // Extensions draw on the same budget.
    let mut rec = g.deps.store.load_run("r1").await.unwrap().unwrap();
    rec.traffic_index = Some(0);
    g.deps.store.save_run(&rec).await.unwrap();
    let r = g
        .control(
            json!({"action": "extend-bake", "seconds": 801, "reason": "x"}),
            ALICE,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["field"], "seconds");
    let r = g
        .control(
            json!({"action": "extend-bake", "seconds": 300, "reason": "x"}),
            ALICE,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rec = g.deps.store.load_run("r1").await.unwrap().unwrap();
    assert_eq!(rec.controls.extension("0"), 300);
    // promote --full only where the plan allows it; full belongs to promote alone.
    let r = g
        .control(
            json!({"action": "promote", "full": true, "reason": "x"}),
            ALICE,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("controls.allowPromoteFull"),
        "{}",
        r.body
    );
    let r = g
        .control(
            json!({"action": "hold", "full": true, "reason": "x"}),
            ALICE,
        )
        .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (400, Some("full")),
        "{}",
        r.body
    );
    assert_eq!(
        g.deps
            .store
            .load_run("r1")
            .await
            .unwrap()
            .unwrap()
            .controls
            .full_from,
        None
    );
    // Every change is in the audit trail with who asked.
    let events = g.deps.store.events("r1").await.unwrap();
    let controls: Vec<(String, Option<String>)> = events
        .iter()
        .filter(|e| e.step == "Control")
        .map(|e| (e.event.clone(), e.actor.clone()))
        .collect();
    let alice = ALICE.map(str::to_string);
    assert_eq!(
        controls,
        vec![
            ("held".to_string(), alice.clone()),
            ("resumed".to_string(), alice.clone()),
            ("bake-extended".to_string(), alice)
        ]
    );
    // GET shows them.
    let r = g.call("GET", "/runs/r1", None, ALICE).await;
    assert_eq!(r.body["controls"]["extensions"]["0"], 300, "{}", r.body);
}
