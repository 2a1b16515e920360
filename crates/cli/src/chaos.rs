//! The chaos suite: generated plans, worlds and fault schedules — faults at every operation
//! (rollback included), throttling down to 1 request a second, failing and hanging data hooks,
//! duplicate deliveries, operators stopping and aborting, humans approving and rejecting — each
//! run through the real state machine and checked against the promises:
//!
//! - DNS (or, in a quarter of the cases, an ALB rule's actions) ends exactly as it started or
//!   exactly fully on green (or, only when green was unhealthy after the data switch and nobody
//!   chose to lose writes, wherever green kept it);
//! - the outcome matches the DNS found; `rollback_failed` never happens within the budget;
//! - the run is closed (by the machine or the safety net) within a bounded simulated time;
//! - the application lock is released, unless a failed rollback keeps it;
//! - no side effect happens twice (DMS starts, MGN launches and finalizations);
//! - with a managed data mode (a stateful MGN rehost included), no write is lost unless a human
//!   approved losing them;
//! - no task token appears in the report, nor unsealed in the run table.
//!
//! `cutover chaos --runs N --seed S` runs seeds S..S+N; run `i` is fully determined by its seed,
//! so `--runs 1 --seed <failing seed>` replays it, and the failing inputs are written out.

use crate::local::{run_local, LocalRun, RunOptions};
use cutover_core::model::{normalize_name, RecordSet};
use cutover_core::plan::{Plan, Router};
use cutover_sim::spec::FAULT_OPERATIONS;
use cutover_sim::WorldSpec;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};

const ZONE: &str = "Z0123456789";
const TASK: &str = "arn:aws:dms:us-east-1:123456789012:task:ORDERS";
const REVERSE: &str = "arn:aws:dms:us-east-1:123456789012:task:ORDERS-REVERSE";
const SERVER: &str = "s-0123456789abcdef0";
const HEALTH: &str = "https://green.example.com/health";
const FREEZE: &str = "arn:aws:lambda:us-east-1:123456789012:function:orders-maintenance-on";
const SWITCH: &str = "arn:aws:lambda:us-east-1:123456789012:function:orders-use-green-db";
const UNFREEZE: &str = "https://ops.example.com/orders/maintenance/off";
const BLUE_LB: &str = "dualstack.blue-alb-1234.us-east-1.elb.amazonaws.com";
const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";
const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
const BLUE_TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/73e2d6bc24d8a067";
const GREEN_TG: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/83e2d6bc24d8a067";
/// The share of cases routed by an ALB rule instead of DNS.
const ALB_SHARE: f64 = 0.25;
const GREEN_LB: &str = "dualstack.green-alb-5678.us-east-1.elb.amazonaws.com";

/// The outcome of a run that ended on green with an error (exit 7).
const COMPLETED_WITH_ERRORS: &str = "completed_with_errors";
/// Pages that tell a human the application may still refuse writes.
const FROZEN_PAGES: &[&str] = &["unfreeze_failed", "data_abandon_incomplete"];

/// One generated case: its inputs and how it is delivered.
#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    pub plan: Value,
    pub world: Value,
    pub duplicate_delivery: bool,
    /// The two deliveries race instead of following each other.
    pub concurrent: bool,
    /// A wave case (`chaos_wave`): the wave, whose plans are inside it (`plan` is null).
    pub wave: Option<Value>,
}

/// What one case broke, if anything.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub seed: u64,
    pub outcome: String,
    pub violations: Vec<String>,
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Generates the case of `seed`.
pub fn generate(seed: u64) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let mgn = rng.random_bool(0.2);
    let alias = rng.random_bool(0.3);
    let (record_type, record_name) = if alias {
        ("A", "shop.example.com")
    } else {
        ("CNAME", "orders.example.com")
    };
    let (blue, green) = if alias {
        (
            json!({"setIdentifier": "blue", "alias": {"hostedZoneId": "Z35SXDOTRQ7X7K", "dnsName": BLUE_LB, "evaluateTargetHealth": true}}),
            json!({"setIdentifier": "green", "alias": {"hostedZoneId": "Z35SXDOTRQ7X7K", "dnsName": GREEN_LB, "evaluateTargetHealth": true}}),
        )
    } else {
        (
            json!({"setIdentifier": "blue", "value": "blue-lb.example.com"}),
            json!({"setIdentifier": "green", "value": "green-lb.example.com"}),
        )
    };
    // 1-3 strictly increasing steps ending at 100.
    let mut weights: Vec<u32> = match rng.random_range(0..3) {
        0 => vec![100],
        1 => vec![rng.random_range(1..100), 100],
        _ => {
            let a = rng.random_range(1..50);
            vec![a, rng.random_range(a + 1..100), 100]
        }
    };
    weights.dedup();
    let gate_at = rng
        .random_bool(0.3)
        .then(|| rng.random_range(0..weights.len()));
    let steps: Vec<Value> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut s = json!({"weight": w, "bakeSeconds": rng.random_range(60..900)});
            if gate_at == Some(i) {
                s["approval"] = json!(format!("gate-{i}"));
            }
            s
        })
        .collect();
    // Servers beyond the first come from a generator of their own, so every other draw of a
    // seed stays what it was before applications of several servers existed.
    let mut servers_rng = StdRng::seed_from_u64(seed ^ 0x6d67_6e73_7276);
    let extra_servers = if mgn && servers_rng.random_bool(0.4) {
        servers_rng.random_range(1..3usize)
    } else {
        0
    };
    let replication = if mgn && extra_servers > 0 {
        let ids: Vec<String> = std::iter::once(SERVER.to_string())
            .chain((1..=extra_servers).map(|i| format!("s-{i:017x}")))
            .collect();
        json!({"kind": "mgn", "sourceServerIds": ids, "maxLagSeconds": 60, "stableSamples": 2, "sampleIntervalSeconds": 60, "deadlineSeconds": 3600, "launchDeadlineSeconds": 1800})
    } else if mgn {
        json!({"kind": "mgn", "sourceServerId": SERVER, "maxLagSeconds": 60, "stableSamples": 2, "sampleIntervalSeconds": 60, "deadlineSeconds": 3600, "launchDeadlineSeconds": 1800})
    } else {
        json!({"kind": "dms", "taskArn": TASK, "maxLagSeconds": 30, "stableSamples": rng.random_range(1..4), "sampleIntervalSeconds": 60, "deadlineSeconds": 3600})
    };
    // A stateful rehost (MGN with freeze-and-switch) draws from a generator of its own, so every
    // other draw of a seed stays what it was before MGN plans could move data.
    let mut rehost_rng = StdRng::seed_from_u64(seed ^ 0x7265_686f_7374);
    let mode = if mgn {
        *pick(&mut rehost_rng, &["unmanaged", "freeze-and-switch"])
    } else {
        *pick(
            &mut rng,
            &["unmanaged", "blue-until-switch", "freeze-and-switch"],
        )
    };
    let reverse = !mgn && mode != "unmanaged" && rng.random_bool(0.5);
    let mut plan = json!({
        "application": "orders",
        "replication": replication,
        "dns": {"hostedZoneId": ZONE, "recordName": record_name, "recordType": record_type, "ttl": 60, "blue": blue, "green": green,
                "finalForm": if rng.random_bool(0.2) { "simple" } else { "weighted" }},
        "traffic": {"steps": steps},
        "health": {"intervalSeconds": 30, "failureThreshold": 2, "http": [{"url": HEALTH, "expectStatus": 200}]},
        "approvals": {"expiresSeconds": rng.random_range(600..3600)},
        "finalize": {"enabled": rng.random_bool(0.2)},
        "rollback": {"budgetSeconds": rng.random_range(1800..3600)},
    });
    if mode != "unmanaged" {
        // With MGN writes stay frozen through the launch and the first boot, so a stateful
        // rehost draws longer bounds (and some too short), from its own generator.
        let (draw, freeze_bound) = if mgn {
            (&mut rehost_rng, 120..900)
        } else {
            (&mut rng, 120..600)
        };
        let mut data = json!({
            "writes": mode,
            "freeze": {"lambdaArn": FREEZE},
            "switch": {"lambdaArn": SWITCH},
            "unfreeze": {"url": UNFREEZE, "method": "POST"},
            "maxFreezeSeconds": draw.random_range(freeze_bound),
            "drainPollSeconds": 15,
        });
        if reverse {
            data["reverseReplication"] = json!({"taskArn": REVERSE});
        }
        if draw.random_bool(0.2) {
            data["approval"] = json!("before-switch");
        }
        plan["data"] = data;
    }

    // The world.
    let record = if alias {
        json!({"name": "shop.example.com.", "type": "A", "aliasTarget": {"hostedZoneId": "Z35SXDOTRQ7X7K", "dnsName": format!("{BLUE_LB}."), "evaluateTargetHealth": true}})
    } else {
        json!({"name": "orders.example.com.", "type": "CNAME", "ttl": 300, "values": ["blue-lb.example.com"]})
    };
    let converges = rng.random_bool(0.9);
    let settle = rng.random_range(300..1500) as f64;
    let lag = if converges {
        json!([[0, 900], [settle, 3]])
    } else {
        json!([[0, 900], [settle, 200]])
    };
    let mut tasks = vec![
        json!({"arn": TASK, "migrationType": "full-load-and-cdc", "status": *pick(&mut rng, &["ready", "ready", "stopped", "running"]), "lag": lag}),
    ];
    if reverse && rng.random_bool(0.9) {
        tasks.push(json!({"arn": REVERSE, "migrationType": "cdc", "status": "ready", "carries": "green-to-blue", "lag": [[0, rng.random_range(1..20)]]}));
    }
    let fail_at = rng.random_bool(0.4).then(|| rng.random_range(1..6000));
    let health = match fail_at {
        Some(t) => json!([[0, 200], [t, 503]]),
        None => json!([[0, 200]]),
    };
    let mut world = json!({
        "route53": {
            "requestsPerSecond": if rng.random_bool(0.25) { 1 } else { rng.random_range(2..6) },
            "propagationSeconds": if rng.random_bool(0.1) { rng.random_range(300..1200) } else { rng.random_range(5..60) },
            "zones": [{"id": ZONE, "name": "example.com.", "records": [record]}],
        },
        "dms": {"tasks": tasks},
        "http": {HEALTH: health},
        "app": {"writesPerSecond": rng.random_range(0..50)},
    });
    if mgn {
        world["mgn"] = json!({"servers": [{
            "id": SERVER, "lifecycle": "READY_FOR_CUTOVER", "replicationState": "CONTINUOUS",
            "lag": [[0, 120], [300, 5]], "launchSeconds": rng.random_range(30..400),
            "launchFails": rng.random_bool(0.1), "launchedUrls": [HEALTH],
        }]});
        for i in 1..=extra_servers {
            // Another server: its own lag curve, launch time and failure, serving nothing.
            let peak = servers_rng.random_range(10..600) as f64;
            world["mgn"]["servers"]
                .as_array_mut()
                .expect("servers")
                .push(json!({
                    "id": format!("s-{i:017x}"), "lifecycle": "READY_FOR_CUTOVER",
                    "replicationState": "CONTINUOUS",
                    "lag": [[0, peak], [servers_rng.random_range(60..900), 5]],
                    "launchSeconds": servers_rng.random_range(30..400),
                    "launchFails": servers_rng.random_bool(0.05),
                }));
        }
        world["dms"] = json!({"tasks": []});
    }
    let mut hooks = serde_json::Map::new();
    for h in [FREEZE, SWITCH, UNFREEZE] {
        let roll: f64 = rng.random();
        // A hook turns bad from a moment on, and may come back: transient throttling, a
        // failure, a timeout that did not act or one that did.
        let bad = if roll < 0.08 {
            "fail"
        } else if roll < 0.12 {
            "timeout"
        } else if roll < 0.16 {
            "acted-timeout"
        } else if roll < 0.22 {
            "throttle"
        } else {
            continue;
        };
        let from = rng.random_range(1..6000);
        let mut script = vec![json!([0, "ok"]), json!([from, bad])];
        if rng.random_bool(0.5) {
            script.push(json!([from + rng.random_range(5..600), "ok"]));
        }
        hooks.insert(h.into(), Value::Array(script));
    }
    if !hooks.is_empty() {
        world["hooks"] = Value::Object(hooks);
    }
    let mut approvals = Vec::new();
    let gates: Vec<String> = gate_at
        .map(|i| format!("gate-{i}"))
        .into_iter()
        .chain([
            "before-switch".into(),
            "finalize".into(),
            "rollback-after-switch".into(),
        ])
        .collect();
    for g in gates {
        let roll: f64 = rng.random();
        let decision = if roll < 0.7 {
            "approve"
        } else if roll < 0.9 {
            "reject"
        } else {
            continue;
        };
        approvals.push(json!({"gate": g, "decision": decision, "by": "alice@example.com", "afterSeconds": rng.random_range(0..900)}));
    }
    world["approvals"] = Value::Array(approvals);
    let mut operator = Vec::new();
    if rng.random_bool(0.1) {
        operator.push(json!({"afterSeconds": rng.random_range(0..6000), "action": "abort", "by": "carol@example.com"}));
    }
    if rng.random_bool(0.1) {
        operator.push(json!({"afterSeconds": rng.random_range(0..6000), "action": "stop", "by": "dave@example.com"}));
    }
    // Mid-run controls, from their own stream so that the cases every other seed draws stay
    // the ones earlier checks were written against.
    let mut steer = StdRng::seed_from_u64(seed ^ 0x5EED_C0DE);
    if steer.random_bool(0.1) {
        let at = steer.random_range(0..6000);
        operator.push(json!({"afterSeconds": at, "action": "hold", "by": "erin@example.com"}));
        if steer.random_bool(0.6) {
            let until = at + steer.random_range(1..4000);
            operator
                .push(json!({"afterSeconds": until, "action": "resume", "by": "erin@example.com"}));
        }
    }
    if steer.random_bool(0.05) {
        operator.push(json!({"afterSeconds": steer.random_range(0..6000), "action": "extend", "seconds": steer.random_range(1..1200), "by": "erin@example.com"}));
    }
    if steer.random_bool(0.05) {
        let full = steer.random_bool(0.5);
        operator.push(json!({"afterSeconds": steer.random_range(0..6000), "action": "promote", "full": full, "by": "erin@example.com"}));
    }
    world["operator"] = Value::Array(operator);
    let mut faults = Vec::new();
    // An alb case draws its ELBv2 faults from its own generator (route_by_alb).
    let operations = dns_case_operations();
    for _ in 0..rng.random_range(0..5) {
        let (op, errors) = pick(&mut rng, &operations);
        // Mostly a few failures a retry absorbs; sometimes more than a step's retries can.
        let times = if rng.random_bool(0.15) {
            rng.random_range(8..40)
        } else {
            rng.random_range(1..7)
        };
        faults.push(json!({
            "operation": op,
            "error": pick(&mut rng, errors),
            "times": times,
            "afterSeconds": rng.random_range(0..6000),
        }));
    }
    // The store failing late: around the close, in the drain, in the switch-back.
    if rng.random_bool(0.15) {
        let op = *pick(
            &mut rng,
            &["dynamodb.PutItem", "dynamodb.GetItem", "dynamodb.Query"],
        );
        faults.push(json!({
            "operation": op,
            "error": "InternalServerError",
            "times": rng.random_range(3..30),
            "afterSeconds": rng.random_range(1000..12000),
        }));
    }
    world["faults"] = Value::Array(faults);
    let duplicate_delivery = rng.random_bool(0.2);
    let concurrent = rng.random_bool(0.5);
    // Drawn last, so the draws above replay as before: an alarm that may lack data, and a
    // forward task someone stops.
    if rng.random_bool(0.2) {
        let states = ["OK", "INSUFFICIENT_DATA", "ALARM"];
        let mut curve = vec![json!([0, *pick(&mut rng, &states[..2])])];
        if rng.random_bool(0.5) {
            curve.push(json!([rng.random_range(1..6000), *pick(&mut rng, &states)]));
        }
        plan["health"]["alarms"] = json!(["orders-green-5xx"]);
        plan["health"]["missingAlarmData"] =
            json!(*pick(&mut rng, &["breaching", "notBreaching", "ignore"]));
        world["alarms"] = json!({"orders-green-5xx": curve});
    }
    if !mgn && rng.random_bool(0.05) {
        world["dms"]["tasks"][0]["stopAfterSeconds"] = json!(rng.random_range(60..4000));
    }
    // Whether the plan allows promote --full, from the controls' own stream.
    if StdRng::seed_from_u64(seed ^ 0xF011_C0DE).random_bool(0.5) {
        plan["controls"] = json!({"allowPromoteFull": true});
    }
    // An ALB router instead of DNS, from its own stream: every other draw stays what it was.
    let mut alb_rng = StdRng::seed_from_u64(seed ^ 0x616c_625f_7267);
    if alb_rng.random_bool(ALB_SHARE) {
        route_by_alb(&mut alb_rng, &mut plan, &mut world);
    } else {
        // The zone in another account, reached through a role, from a stream of its own.
        let mut lz_rng = StdRng::seed_from_u64(seed ^ 0x6c7a_5f61_6363);
        if lz_rng.random_bool(LANDING_ZONE_SHARE) {
            zone_in_another_account(&mut lz_rng, &mut plan, &mut world);
        }
    }
    Case {
        seed,
        plan,
        world,
        duplicate_delivery,
        concurrent,
        wave: None,
    }
}

/// The fault operations of every service but ELBv2, in their order: the draws of dns cases (and
/// of waves, whose applications route by DNS) stay what they were before the ALB router existed.
pub(crate) fn dns_case_operations() -> Vec<(&'static str, &'static [&'static str])> {
    FAULT_OPERATIONS
        .iter()
        .filter(|(op, _)| !op.starts_with("elbv2.") && !op.starts_with("sts."))
        .copied()
        .collect()
}

/// Turns a dns case into an alb case: the rule (or the listener's default action) forwards to
/// blue, sticky or not; green's healthy targets may fall below the plan's minimum from a moment
/// on (and may come back); ELBv2 calls may fail. The record leaves Route 53, so the
/// application's clients follow the rule.
/// The share of dns cases whose hosted zone lives in another account (docs/plan.md, "Several
/// accounts"): reached through `dns.roleArn`, its AssumeRole throttled, unavailable or denied
/// now and then.
const LANDING_ZONE_SHARE: f64 = 0.2;

fn zone_in_another_account(rng: &mut StdRng, plan: &mut Value, world: &mut Value) {
    const NETWORKING: &str = "111111111111";
    let role = format!("arn:aws:iam::{NETWORKING}:role/cutover-member-dns");
    plan["dns"]["roleArn"] = json!(role);
    world["route53"]["zones"][0]["account"] = json!(NETWORKING);
    world["accounts"] =
        json!([{"id": NETWORKING, "roles": [{"arn": role, "trustsAccount": "123456789012"}]}]);
    for _ in 0..rng.random_range(0..3) {
        let error = if rng.random_bool(0.1) {
            "AccessDenied"
        } else {
            ["Throttling", "ServiceUnavailable"][rng.random_range(0..2)]
        };
        let fault = json!({
            "operation": "sts.AssumeRole",
            "error": error,
            "times": rng.random_range(1..4),
            "afterSeconds": rng.random_range(0..6000),
        });
        match world["faults"].as_array_mut() {
            Some(f) => f.push(fault),
            None => world["faults"] = json!([fault]),
        }
    }
}

fn route_by_alb(rng: &mut StdRng, plan: &mut Value, world: &mut Value) {
    let on_rule = rng.random_bool(0.6);
    let min = rng.random_range(1..4u32);
    let mut alb = json!({"listenerArn": LISTENER, "blue": {"targetGroupArn": BLUE_TG},
        "green": {"targetGroupArn": GREEN_TG}, "minHealthyTargets": min});
    if on_rule {
        alb["ruleArn"] = json!(RULE);
    }
    if let Some(p) = plan.as_object_mut() {
        p.remove("dns");
    }
    plan["alb"] = alb;
    let forward = if rng.random_bool(0.5) {
        json!({"type": "forward", "order": 1, "targetGroupArn": BLUE_TG})
    } else {
        json!({"type": "forward", "order": 1, "targetGroupArn": BLUE_TG, "forwardConfig": {
            "targetGroups": [{"targetGroupArn": BLUE_TG, "weight": 1}],
            "targetGroupStickinessConfig": {"enabled": true, "durationSeconds": rng.random_range(1..3600)}}})
    };
    let other = json!({"type": "fixed-response", "order": 1});
    let (default, rules) = if on_rule {
        (
            other,
            json!([{"arn": RULE, "priority": 10, "actions": [forward]}]),
        )
    } else {
        (forward, json!([]))
    };
    let mut green = vec![json!([0, rng.random_range(min..min + 3)])];
    if rng.random_bool(0.3) {
        let at = rng.random_range(1..6000);
        green.push(json!([at, rng.random_range(0..min)]));
        if rng.random_bool(0.5) {
            green.push(json!([at + rng.random_range(5..900), min]));
        }
    }
    world["elbv2"] = json!({
        "listeners": [{"arn": LISTENER, "defaultActions": [default], "rules": rules}],
        "targetGroups": [{"arn": BLUE_TG, "healthy": [[0, 3]]}, {"arn": GREEN_TG, "healthy": green}],
    });
    world["route53"]["zones"][0]["records"] = json!([]);
    let elbv2: Vec<&(&str, &[&str])> = FAULT_OPERATIONS
        .iter()
        .filter(|(op, _)| op.starts_with("elbv2."))
        .collect();
    for _ in 0..rng.random_range(0..4) {
        let (op, errors) = **pick(rng, &elbv2);
        let times = if rng.random_bool(0.15) {
            rng.random_range(8..40)
        } else {
            rng.random_range(1..7)
        };
        if let Some(f) = world["faults"].as_array_mut() {
            f.push(
                json!({"operation": op, "error": pick(rng, errors), "times": times,
                "afterSeconds": rng.random_range(0..6000)}),
            );
        }
    }
}

/// The record as compared: names without case and trailing dot.
fn norm(r: &RecordSet) -> RecordSet {
    let mut r = r.clone();
    r.name = normalize_name(&r.name);
    r.values = r.values.iter().map(|v| normalize_name(v)).collect();
    if let Some(a) = r.alias_target.as_mut() {
        a.dns_name = normalize_name(&a.dns_name);
    }
    r
}

fn same_set(a: &[RecordSet], b: &[RecordSet]) -> bool {
    let mut a: Vec<RecordSet> = a.iter().map(norm).collect();
    let mut b: Vec<RecordSet> = b.iter().map(norm).collect();
    a.sort();
    b.sort();
    a == b
}

/// Every answer goes to green: the weighted records with weight go to green only, or one
/// simple record points at green.
fn fully_green(dns: &[RecordSet], d: &cutover_core::plan::DnsPlan) -> bool {
    let green = d.green.routing();
    let serving: Vec<&RecordSet> = dns.iter().filter(|r| r.weight != Some(0)).collect();
    !serving.is_empty() && serving.iter().all(|r| r.routes_to(&green))
}

/// Runs one case and checks every promise.
pub fn check(case: &Case) -> Result<Verdict, String> {
    let plan = Plan::parse(&case.plan.to_string(), true)
        .map_err(|e| format!("seed {}: generated plan refused: {e}", case.seed))?;
    let world = WorldSpec::parse(&case.world.to_string(), true)
        .map_err(|e| format!("seed {}: generated world refused: {e}", case.seed))?;
    let opts = RunOptions {
        duplicate_delivery: case.duplicate_delivery,
        concurrent_duplicates: case.concurrent,
        seed: case.seed,
        ..RunOptions::default()
    };
    let run = run_local(&plan, &world, &opts).map_err(|e| e.to_string())?;
    Ok(Verdict {
        seed: case.seed,
        outcome: run.report.outcome.clone(),
        violations: violations(&plan, &world, &run),
    })
}

fn violations(plan: &Plan, world: &WorldSpec, run: &LocalRun) -> Vec<String> {
    let mut v = Vec::new();
    let r = &run.report;
    // What the run published to EventBridge tells the same story as the run (docs/events.md).
    v.extend(
        cutover_core::events::broken_promises(&r.run_id, &r.events, &r.outcome)
            .into_iter()
            .map(|m| format!("events: {m}")),
    );
    // Where traffic goes at the end, against where it went at the start: the record sets, or
    // the ALB rule's actions.
    let (at_start, on_green, routed) = match plan.router() {
        Some(Router::Dns(d)) => {
            let snapshot: Vec<RecordSet> = world
                .route53
                .zones
                .iter()
                .flat_map(|z| z.records.iter())
                .filter(|rec| {
                    normalize_name(&rec.name) == normalize_name(&d.record_name)
                        && rec.record_type == d.record_type
                })
                .cloned()
                .collect();
            (
                same_set(&r.dns, &snapshot),
                fully_green(&r.dns, d),
                format!("DNS {:?}", r.dns),
            )
        }
        Some(Router::Alb(a)) => {
            let listener = world
                .elbv2
                .listeners
                .iter()
                .find(|l| l.arn == a.listener_arn);
            let original = match (&a.rule_arn, listener) {
                (Some(rule), Some(l)) => l
                    .rules
                    .iter()
                    .find(|x| &x.arn == rule)
                    .map(|x| x.actions.clone()),
                (None, Some(l)) => Some(l.default_actions.clone()),
                _ => None,
            };
            let now = r
                .alb
                .as_ref()
                .map(|x| x.actions.clone())
                .unwrap_or_default();
            let weights = cutover_core::alb::weights(&now);
            let green_only = weights
                .iter()
                .all(|(tg, w)| *w == 0 || *tg == a.green.target_group_arn)
                && weights
                    .iter()
                    .any(|(tg, w)| *tg == a.green.target_group_arn && *w > 0);
            (
                original.as_ref() == Some(&now),
                green_only,
                format!("the ALB rule {now:?}"),
            )
        }
        None => return vec!["the plan names no router".into()],
    };
    let pages = run.world.pages();
    let paged = |kinds: &[&str]| pages.iter().any(|p| kinds.contains(&p.kind.as_str()));
    // Green kept after an unhealthy switch nobody chose to undo: DNS stays where green had it.
    let kept_green =
        r.outcome == COMPLETED_WITH_ERRORS && r.error.as_deref() == Some("UnhealthyAfterSwitch");
    // An unfreeze that kept failing stops the run where it is, paged.
    let stopped_frozen =
        r.error.as_deref() == Some("UnfreezeFailed") && paged(&["unfreeze_failed"]);
    match r.outcome.as_str() {
        "completed" | COMPLETED_WITH_ERRORS if !(on_green || kept_green || stopped_frozen) => v
            .push(format!(
                "{} but traffic is not fully on green: {routed}",
                r.outcome
            )),
        "rolled_back" | "aborted" | "failed" if !(at_start || stopped_frozen) => v.push(format!(
            "{} but traffic is not routed as at the start: {routed}",
            r.outcome
        )),
        "rollback_failed" => v.push(format!(
            "rollback_failed within a budget of {}s (faults are finite)",
            plan.rollback.budget_seconds
        )),
        "completed" | COMPLETED_WITH_ERRORS | "rolled_back" | "aborted" | "failed" => {}
        other => v.push(format!("unknown outcome {other}")),
    }
    if !(at_start || on_green || kept_green || stopped_frozen) {
        v.push(format!("half-shifted: {routed}"));
    }
    // A plain `completed` carries no error; one that ended on green with an error says so.
    if r.outcome == "completed" && r.error.is_some() {
        v.push(format!(
            "completed with error {:?}: the outcome must be {COMPLETED_WITH_ERRORS}",
            r.error
        ));
    }
    // The exit code the CLI gives is the one docs/cli.md documents for the outcome.
    let documented = match r.outcome.as_str() {
        "completed" => 0,
        "rolled_back" => 3,
        "failed" | "aborted" => 4,
        "rollback_failed" => 6,
        COMPLETED_WITH_ERRORS => 7,
        _ => -1,
    };
    if r.exit_code() != documented {
        v.push(format!(
            "exit code {} for outcome {} (documented: {documented})",
            r.exit_code(),
            r.outcome
        ));
    }
    // Success reached (every bake passed, traffic all on green) is never undone.
    let succeeded =
        run.execution.history.iter().any(|e| {
            e.kind == "ChoiceStateEntered" && e.state.as_deref() == Some("IsFinalFormSimple")
        });
    if succeeded && !matches!(r.outcome.as_str(), "completed" | COMPLETED_WITH_ERRORS) {
        v.push(format!(
            "the run reached success (all bakes passed) but ended {}",
            r.outcome
        ));
    }
    // No write is left refused at the end unless someone was paged about it.
    if run.world.writes_frozen() && !paged(FROZEN_PAGES) {
        v.push("the application still refuses writes at the end and nobody was paged".into());
    }
    let c = &r.world;
    if c.both_directions > 0 {
        v.push(format!(
            "a DMS task started while the other direction was running ({} times)",
            c.both_directions
        ));
    }
    for (task, n) in &c.dms_starts_by_task {
        if *n > 1 {
            v.push(format!("DMS task {task} started {n} times"));
        }
    }
    for (hook, n) in &c.hooks_repeated {
        v.push(format!(
            "the {hook} hook acted again {n} time(s) right after it had acted and answered"
        ));
    }
    let mut kinds = std::collections::BTreeMap::<&str, u32>::new();
    for p in &pages {
        *kinds.entry(p.kind.as_str()).or_default() += 1;
    }
    for (kind, n) in kinds {
        if n > 1 {
            v.push(format!("the {kind} page or notice was sent {n} times"));
        }
    }
    // Every run is closed by the machine or the safety net: an outcome recorded, never stuck.
    // (An execution stopped before validation stored anything has nothing to close.)
    if run.store.has_run(&r.run_id) && !r.timeline.iter().any(|e| e.event == "run-closed") {
        v.push(format!(
            "the run was never closed (execution {:?})",
            run.execution.status
        ));
    }
    if r.simulated_seconds > 40.0 * 86_400.0 {
        v.push(format!("ran {}s of simulated time", r.simulated_seconds));
    }
    for key in plan.lock_keys() {
        let held = run.store.lock_holder(&key);
        if r.outcome != "rollback_failed" && held.is_some() {
            v.push(format!(
                "lock {key} still held by {held:?} after {}",
                r.outcome
            ));
        }
    }
    let servers = plan.replication.mgn_servers().len() as u64;
    if c.mgn_cutovers > 1 || c.mgn_finalizes > servers || c.mgn_instances > servers {
        v.push(format!(
            "a side effect happened twice: mgnCutovers {}, mgnInstances {}, mgnFinalizes {} for {servers} servers",
            c.mgn_cutovers, c.mgn_instances, c.mgn_finalizes
        ));
    }
    // Every server of a run that launched was launched in that one job, and a finalized run
    // finalized every server.
    if c.mgn_cutovers == 1 && c.mgn_instances != servers {
        v.push(format!("{} of {servers} servers launched", c.mgn_instances));
    }
    if c.mgn_finalizes > 0 && c.mgn_finalizes != servers && r.outcome == "completed" {
        v.push(format!(
            "{} of {servers} servers finalized in a run that ended {}",
            c.mgn_finalizes, r.outcome
        ));
    }
    let loss_approved = r.approvals.iter().any(|a| {
        a.gate == cutover_core::plan::ROLLBACK_AFTER_SWITCH_GATE && a.decision == "approve"
    });
    if r.data.mode != "unmanaged" && !loss_approved && r.data.writes_lost > 0 {
        v.push(format!(
            "{} writes lost in mode {} without anyone approving it",
            r.data.writes_lost, r.data.mode
        ));
    }
    // No bake ends while a hold stands (docs/controls.md).
    let mut held_since: Option<f64> = None;
    for e in &r.timeline {
        match e.event.as_str() {
            "held" => held_since = Some(e.t),
            "resumed" => held_since = None,
            "healthy" if e.message.starts_with("bake of step") => {
                if let Some(h) = held_since.filter(|h| e.t > *h) {
                    v.push(format!(
                        "a bake ended at {:.1}s while held since {h:.1}s: {}",
                        e.t, e.message
                    ));
                }
            }
            _ => {}
        }
    }
    let text = serde_json::to_string(r).unwrap_or_default();
    if run.tokens.iter().any(|t| text.contains(t.as_str())) {
        v.push("a task token is in the report".into());
    }
    // The run table holds tokens sealed, never as Step Functions issued them.
    if !run.tokens.is_empty() {
        let table = run.store.dump();
        if run.tokens.iter().any(|t| table.contains(t.as_str())) {
            v.push("a task token is in the run table unsealed".into());
        }
    }
    v
}

/// Writes a failing case's inputs for replay and inspection.
pub fn save(
    case: &Case,
    verdict: &Verdict,
    dir: &std::path::Path,
) -> std::io::Result<std::path::PathBuf> {
    let d = dir.join(format!("seed-{}", case.seed));
    std::fs::create_dir_all(&d)?;
    match &case.wave {
        Some(w) => std::fs::write(d.join("wave.json"), serde_json::to_string_pretty(w)?)?,
        None => std::fs::write(
            d.join("plan.json"),
            serde_json::to_string_pretty(&case.plan)?,
        )?,
    }
    std::fs::write(
        d.join("world.json"),
        serde_json::to_string_pretty(&case.world)?,
    )?;
    std::fs::write(
        d.join("violations.txt"),
        format!(
            "seed {}\nduplicateDelivery {} (concurrent {})\noutcome {}\n{}\n\nreplay: cutover chaos --runs 1 --seed {}{}\n",
            case.seed,
            case.duplicate_delivery,
            case.concurrent,
            verdict.outcome,
            verdict.violations.join("\n"),
            case.seed,
            if case.wave.is_some() { " --waves" } else { "" }
        ),
    )?;
    Ok(d)
}
