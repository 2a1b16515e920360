//! The run report (a contract): outcome, final DNS, transitions, simulated time, timeline, approvals.

use cutover_core::model::{Decision, RecordSet, Weights};
use cutover_core::plan::Plan;
use cutover_core::ports::RunStore;
use cutover_engine::{Execution, Status};
use cutover_sim::{Counters, World};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub run_id: String,
    pub application: String,
    /// completed | rolled_back | failed | aborted
    pub outcome: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// When the run started (UTC); every `t` counts from here.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The record sets as validate-cutover saved them before anything changed: what a rollback
    /// restores.
    pub snapshot: Vec<RecordSet>,
    /// The record sets at the end.
    pub dns: Vec<RecordSet>,
    pub state_transitions: u64,
    /// What the run would cost on AWS: Step Functions transitions and Lambda requests and GB-s
    /// at the documented prices (see `cost`).
    pub estimated_cost_usd: f64,
    pub cost: CostEstimate,
    pub simulated_seconds: f64,
    pub timeline: Vec<TimelineEntry>,
    pub approvals: Vec<ApprovalEntry>,
    /// Calls and side effects in the simulated world.
    pub world: Counters,
    /// The data cutover and what became of the application's writes (docs/data.md).
    pub data: DataReport,
    /// The plan's replication.maxLagSeconds, for drawing lag against it.
    pub lag_threshold_seconds: f64,
    /// MGN: each of the application's source servers at the end, in the plan's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mgn: Vec<MgnServerReport>,
    /// An alb plan: the rule's actions at the end, as the world holds them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbReport>,
    /// What the stack would publish to EventBridge for this run, in order: every phase change,
    /// gate and the outcome (docs/events.md). Simulated runs only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<cutover_core::events::CutoverEvent>,
}

/// The ALB rule (or the listener's default action) at the end of the run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlbReport {
    pub listener_arn: String,
    /// None: the listener's default action.
    pub rule_arn: Option<String>,
    pub actions: Vec<cutover_core::alb::Action>,
}

/// One MGN source server at the end of the run, as DescribeSourceServers shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MgnServerReport {
    pub source_server_id: String,
    /// READY_FOR_CUTOVER, CUTTING_OVER (launched), CUTOVER (finalized), …
    pub lifecycle: String,
    pub replication_state: String,
    /// The cutover instance, once launched and booted.
    pub ec2_instance_id: Option<String>,
    pub launch_job_id: Option<String>,
    /// WAITING | SUCCEEDED | UNKNOWN | STOPPED, once launched.
    pub first_boot: Option<String>,
}

/// The data cutover of a run. The write counts come from the simulated application, which counts
/// every write: `writesLost` is computed from where the writes are at the end, never assumed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataReport {
    /// blue-until-switch | freeze-and-switch | unmanaged
    pub mode: String,
    pub writes_accepted: u64,
    /// Accepted writes absent from the database that survives the run.
    pub writes_lost: u64,
    /// Writes turned away while frozen.
    pub writes_refused: u64,
    /// blue | green: where the serving tier writes at the end.
    pub surviving_database: String,
    /// Seconds writes were frozen, every freeze of the run together.
    pub freeze_seconds: f64,
    /// Simulated seconds since the start of the last database switch, and its direction.
    pub switched_at: Option<f64>,
    pub switched_to: Option<String>,
    /// Whether the application wrote to green's database (the point of no return), and when.
    pub point_of_no_return: bool,
    pub point_of_no_return_at: Option<f64>,
}

/// The cost model, with its inputs, so a reader can redo the sum.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostEstimate {
    pub state_transitions: u64,
    pub lambda_invocations: u64,
    /// Step Functions Standard: $0.025 per 1,000 state transitions
    /// (https://aws.amazon.com/step-functions/pricing/, us-east-1).
    pub step_functions_usd: f64,
    /// Lambda: $0.20 per million requests and $0.0000133334 per GB-second on arm64
    /// (https://aws.amazon.com/lambda/pricing/, us-east-1), at the template's 256 MB and an assumed
    /// 100 ms billed per invocation (the simulation does not measure Lambda durations).
    pub lambda_usd: f64,
    pub assumptions: &'static str,
}

impl CostEstimate {
    const PER_TRANSITION: f64 = 0.025 / 1000.0;
    const PER_REQUEST: f64 = 0.20 / 1_000_000.0;
    const PER_GB_SECOND: f64 = 0.000_013_333_4;
    const MEMORY_GB: f64 = 0.25;
    const SECONDS_PER_INVOCATION: f64 = 0.1;

    pub fn of(exec: &Execution) -> CostEstimate {
        let invocations = exec
            .history
            .iter()
            .filter(|e| e.kind == "LambdaFunctionScheduled" || e.kind == "TaskScheduled")
            .count() as u64;
        let sfn = exec.state_transitions as f64 * Self::PER_TRANSITION;
        let lambda = invocations as f64
            * (Self::PER_REQUEST
                + Self::MEMORY_GB * Self::SECONDS_PER_INVOCATION * Self::PER_GB_SECOND);
        CostEstimate {
            state_transitions: exec.state_transitions,
            lambda_invocations: invocations,
            step_functions_usd: sfn,
            lambda_usd: lambda,
            assumptions: "us-east-1 prices; Step Functions Standard; Lambda arm64, 256 MB, 100 ms billed per invocation; no free tier; DMS, MGN, Route 53 and CloudWatch charges not included",
        }
    }

    pub fn total(&self) -> f64 {
        self.step_functions_usd + self.lambda_usd
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// Simulated seconds since the run started.
    pub t: f64,
    pub state: String,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalEntry {
    pub gate: String,
    /// approve | reject | expired | pending
    pub decision: String,
    pub by: Option<String>,
    /// Simulated seconds since the run started.
    pub at: Option<f64>,
    pub reason: Option<String>,
}

impl Report {
    /// 0 completed, 3 rolled back, 4 failed or aborted, 6 rollback failed (DNS not restored),
    /// 7 completed with errors (on green, but something did not happen: docs/cli.md).
    pub fn exit_code(&self) -> i32 {
        outcome_exit_code(&self.outcome)
    }
}

/// The exit code of a run that ended with `outcome` (docs/cli.md): the same for `local run`
/// and `run status --watch`.
pub fn outcome_exit_code(outcome: &str) -> i32 {
    match outcome {
        "completed" => 0,
        "rolled_back" => 3,
        "rollback_failed" => 6,
        "completed_with_errors" => 7,
        _ => 4,
    }
}

pub async fn build_report(
    plan: &Plan,
    run_id: &str,
    exec: &Execution,
    world: &World,
    store: &dyn RunStore,
    dns: Vec<RecordSet>,
) -> Report {
    let start = exec.started;
    let secs = |t: chrono::DateTime<chrono::Utc>| (t - start).num_milliseconds() as f64 / 1000.0;
    let record = store.load_run(run_id).await.ok().flatten();
    let outcome = record
        .as_ref()
        .and_then(|r| r.outcome.clone())
        .unwrap_or_else(|| match exec.status {
            Status::Succeeded => "completed".into(),
            Status::Aborted => "aborted".into(),
            _ => "failed".into(),
        });
    let timeline = store
        .events(run_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| TimelineEntry {
            t: secs(e.at),
            state: e.step,
            event: e.event,
            weights: e.weights,
            lag_seconds: e.lag_seconds,
            healthy: e.healthy,
            actor: e.actor,
            message: e.message,
        })
        .collect();
    let approvals = store
        .approvals(run_id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|a| ApprovalEntry {
            decision: match a.decision {
                Some(Decision::Approve) => "approve".into(),
                Some(Decision::Reject) => "reject".into(),
                None if exec.stopped >= a.expires_at => "expired".into(),
                None => "pending".into(),
            },
            gate: a.gate,
            by: a.decided_by,
            at: a.decided_at.map(secs),
            reason: a.reason,
        })
        .collect();
    let cost = CostEstimate::of(exec);
    let d = record.as_ref().map(|r| r.data.clone()).unwrap_or_default();
    let writes = world.writes();
    let data = DataReport {
        mode: plan.data.writes.as_str().into(),
        writes_accepted: writes.writes_accepted,
        writes_lost: writes.writes_lost,
        writes_refused: writes.writes_refused,
        surviving_database: writes.surviving_database.into(),
        freeze_seconds: (d.frozen_seconds(exec.stopped) * 10.0).round() / 10.0,
        switched_at: d.switched_at.map(secs),
        switched_to: d.switched_to.clone(),
        point_of_no_return: d.point_of_no_return.is_some(),
        point_of_no_return_at: d.point_of_no_return.map(secs),
    };
    // The run's own error once it recorded an outcome (a run the safety net closed as completed
    // after its execution failed to close it has none); else the execution's.
    let error = match record.as_ref() {
        Some(r) if r.outcome.is_some() => r.error.clone(),
        _ => exec.error.clone(),
    };
    Report {
        run_id: run_id.to_string(),
        application: plan.application.clone(),
        outcome,
        error,
        cause: exec.cause.clone(),
        started_at: start,
        snapshot: record
            .as_ref()
            .map(|r| r.snapshot.clone())
            .unwrap_or_default(),
        dns,
        state_transitions: exec.state_transitions,
        estimated_cost_usd: cost.total(),
        cost,
        simulated_seconds: secs(exec.stopped),
        timeline,
        approvals,
        world: world.counters(),
        data,
        lag_threshold_seconds: plan.replication.max_lag_seconds,
        mgn: mgn_servers(plan, world),
        alb: plan.alb.as_ref().map(|a| AlbReport {
            listener_arn: a.listener_arn.clone(),
            rule_arn: a.rule_arn.clone(),
            actions: world.alb_actions(&a.listener_arn, a.rule_arn.as_deref()),
        }),
        events: vec![],
    }
}

fn mgn_servers(plan: &Plan, world: &World) -> Vec<MgnServerReport> {
    let now = world.mgn_servers_now();
    plan.replication
        .mgn_servers()
        .into_iter()
        .filter_map(|id| now.iter().find(|s| s.id == id))
        .map(|s| {
            let l = s.launched_instance.as_ref();
            MgnServerReport {
                source_server_id: s.id.clone(),
                lifecycle: s.lifecycle.clone(),
                replication_state: s.replication_state.clone(),
                ec2_instance_id: l.and_then(|l| l.ec2_instance_id.clone()),
                launch_job_id: l.and_then(|l| l.job_id.clone()),
                first_boot: l.map(|l| l.first_boot.clone()),
            }
        })
        .collect()
}

/// Where a running run stands, for `run status`: the traffic step it is on, when its bake ends,
/// and what happens next, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProgress {
    /// 1-based: the traffic step whose weight green holds now; 0 before the first shift.
    pub step: usize,
    pub steps: usize,
    /// When the current step's bake ends (its shift is in sync and it bakes), if it does.
    pub bake_ends_at: Option<chrono::DateTime<chrono::Utc>>,
    pub bake_remaining_seconds: Option<i64>,
    pub next_action: String,
}

/// Reads the run's progress from its record, its audit trail and its gates at `now`.
pub fn run_progress(
    rec: &cutover_core::model::RunRecord,
    events: &[cutover_core::model::AuditEvent],
    approvals: &[cutover_core::model::ApprovalRecord],
    now: chrono::DateTime<chrono::Utc>,
) -> RunProgress {
    let steps: Vec<&cutover_core::plan::TrafficStep> = rec
        .plan
        .as_ref()
        .map(|p| p.traffic.steps.iter().collect())
        .unwrap_or_default();
    let green = rec.weights.map_or(0, |w| w.green);
    let step = if green == 0 {
        0
    } else {
        steps
            .iter()
            .rposition(|s| s.weight == green)
            .map_or(0, |i| i + 1)
    };
    // The bake of this step began when its change was in sync (after the shift that set it).
    let shifted = events
        .iter()
        .rposition(|e| e.event == "weights-changed" && e.weights.is_some_and(|w| w.green == green));
    let synced = shifted.and_then(|i| {
        events[i..]
            .iter()
            .find(|e| e.event == "dns-in-sync")
            .map(|e| e.at)
    });
    let bake_ends_at = match (step, synced, rec.phase.starts_with("shifting:")) {
        (s, Some(t), true) if s > 0 => {
            // As RunHealthCheck reads it: the plan's bake plus extensions, or the floor alone
            // once promoted; the first bake lasts at least the record's original TTL.
            let floor = if s == 1 {
                rec.snapshot.iter().filter_map(|r| r.ttl).max().unwrap_or(0)
            } else {
                0
            };
            let key = cutover_core::model::RunControls::bake_key(
                s - 1,
                rec.data.switched_to.as_deref() == Some("green"),
            );
            let skipped = rec.controls.is_promoted(&key)
                || rec.controls.bake_skipped(
                    s - 1,
                    rec.data.switched_to.as_deref() == Some("green"),
                    steps.len(),
                );
            let bake = if skipped {
                floor
            } else {
                (steps[s - 1].bake_seconds + rec.controls.extension(&key)).max(floor)
            };
            Some(t + chrono::Duration::seconds(bake as i64))
        }
        _ => None,
    };
    let bake_remaining_seconds = bake_ends_at.map(|e| (e - now).num_seconds().max(0));
    let pending = approvals.iter().find(|a| a.decision.is_none());
    let next_action = if let Some(o) = &rec.outcome {
        format!("nothing: the run ended {o}")
    } else if let Some(a) = pending {
        format!(
            "gate {} waits for approval until {} (cutover run approve {} {})",
            a.gate,
            a.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
            rec.run_id,
            a.gate
        )
    } else if rec.abort_requested.is_some() {
        "abort requested: the run rolls back at its next step".into()
    } else if let Some(h) = &rec.controls.held {
        let left = rec.plan.as_ref().map_or(0, |p| {
            p.max_hold_seconds()
                .saturating_sub(rec.controls.used_seconds(now))
        });
        format!(
            "held by {} since {} ({}): no bake ends until `cutover run resume {}`; rolls back in {left} s if not resumed",
            h.by,
            h.at.format("%Y-%m-%d %H:%M:%S UTC"),
            h.reason,
            rec.run_id
        )
    } else {
        match rec.phase.as_str() {
            "validated" | "replicating" => match rec.plan.as_ref() {
                Some(p) => format!(
                    "wait until replication lag stays at or under {} s (last {})",
                    p.replication.max_lag_seconds,
                    rec.last_lag_seconds
                        .map_or("not sampled yet".into(), |l| format!("{l:.0} s"))
                ),
                None => "wait for replication".into(),
            },
            "launching" => "wait for the cutover instances to launch and boot".into(),
            "writes-frozen" => {
                "writes are frozen: wait for the drain, then switch the database".into()
            }
            "rolling-back" => "restore DNS to the snapshot".into(),
            p if p.starts_with("switched-to-") => {
                "unfreeze writes, then go on on the switched database".into()
            }
            p if p.starts_with("shifting:") => match (bake_ends_at, steps.get(step)) {
                (None, _) => format!("wait for Route 53 to apply the change to {green}%"),
                (Some(end), Some(next)) => format!(
                    "bake at {green}% until {}, then shift to {}% (step {} of {})",
                    end.format("%H:%M:%S UTC"),
                    next.weight,
                    step + 1,
                    steps.len()
                ),
                (Some(end), None) => format!(
                    "bake at {green}% until {}, then close the run",
                    end.format("%H:%M:%S UTC")
                ),
            },
            other => format!("phase {other}"),
        }
    };
    RunProgress {
        step,
        steps: steps.len(),
        bake_ends_at,
        bake_remaining_seconds,
        next_action,
    }
}

#[cfg(test)]
mod progress_tests {
    use super::*;
    use chrono::TimeZone;
    use cutover_core::model::{AuditEvent, RunRecord};

    fn at(s: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.timestamp_opt(1_796_436_000 + s, 0).unwrap()
    }

    fn event(s: i64, name: &str, green: Option<u32>) -> AuditEvent {
        AuditEvent {
            run_id: "r".into(),
            key: format!("{name}#{s}"),
            at: at(s),
            step: String::new(),
            event: name.into(),
            weights: green.map(Plan::weights_for),
            lag_seconds: None,
            healthy: None,
            actor: None,
            message: String::new(),
        }
    }

    fn record() -> RunRecord {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/dms-happy-path/plan.yaml"
        ))
        .unwrap();
        let plan = Plan::parse(&text, false).unwrap();
        let mut rec = RunRecord::new("r", &plan.application, at(0));
        rec.plan = Some(plan);
        rec
    }

    #[test]
    fn the_step_its_bake_and_what_comes_next() {
        let mut rec = record();
        rec.phase = "replicating".into();
        rec.last_lag_seconds = Some(120.0);
        let p = run_progress(&rec, &[], &[], at(10));
        assert_eq!((p.step, p.steps), (0, 3));
        assert!(
            p.next_action.contains("at or under 30 s (last 120 s)"),
            "{}",
            p.next_action
        );

        // Shifted to 10 %, not yet in sync: no bake yet.
        rec.phase = "shifting:10".into();
        rec.weights = Some(Plan::weights_for(10));
        let mut events = vec![event(100, "weights-changed", Some(10))];
        let p = run_progress(&rec, &events, &[], at(110));
        assert_eq!(p.step, 1);
        assert_eq!(p.bake_ends_at, None);
        assert!(p.next_action.contains("Route 53"), "{}", p.next_action);

        // In sync at 130: the 600 s bake ends at 730, then 50 % (step 2 of 3).
        events.push(event(130, "dns-in-sync", None));
        let p = run_progress(&rec, &events, &[], at(330));
        assert_eq!(p.bake_ends_at, Some(at(730)));
        assert_eq!(p.bake_remaining_seconds, Some(400));
        assert!(
            p.next_action.contains("then shift to 50% (step 2 of 3)"),
            "{}",
            p.next_action
        );

        // The last step: then the run closes.
        rec.phase = "shifting:100".into();
        rec.weights = Some(Plan::weights_for(100));
        events.push(event(900, "weights-changed", Some(100)));
        events.push(event(910, "dns-in-sync", None));
        let p = run_progress(&rec, &events, &[], at(920));
        assert_eq!((p.step, p.bake_ends_at), (3, Some(at(1810))));
        assert!(
            p.next_action.ends_with("then close the run"),
            "{}",
            p.next_action
        );

        rec.outcome = Some("completed".into());
        assert_eq!(
            run_progress(&rec, &events, &[], at(2000)).next_action,
            "nothing: the run ended completed"
        );
    }
}
