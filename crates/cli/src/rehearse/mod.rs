//! `cutover rehearse`: the stack as deployed, run offline. The functions `sam build` built run as
//! processes under a local Lambda Runtime API, each with exactly the environment `template.yaml`
//! gives it; the state machines from the template (substitutions resolved) run in the local
//! engine, whose Task states invoke those processes; every AWS call they make goes through a
//! recording endpoint that checks it against the calling function's role and answers it from
//! moto or a documented shim (see `proxy`). Scenarios drive the paths a deployment takes: DMS and
//! MGN cutovers, an approval and a rejection through the approval-api function with API Gateway's
//! IAM and JWT events, a rollback, the safety net from EventBridge's execution events, the sweep,
//! a data cutover and a wave started by its schedule's input. Findings (a call a role refuses, a
//! function that cannot start, a scenario that ends wrong, a granted action no path uses) are
//! listed; any but the justified unused grants fail the rehearsal.

mod iam;
mod proxy;
mod runtime;
mod stack;

pub use iam::{allowing_statement, glob, Request as IamRequest};
pub use proxy::Call;
pub use stack::{Stack, Statement};

use async_trait::async_trait;
use cutover_engine::{Engine, Options, Status, TaskError, TaskHandler, TokenBroker};
use proxy::{MgnServer, Proxy, OPERATOR_KEY};
use runtime::{Outcome, Sandbox};
use serde_json::{json, Value};
use stack::{ACCOUNT, PARTITION, REGION};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Granted actions no rehearsed path calls, each kept for a reason a reviewer can check. Any
/// other unused grant is a finding: remove it from the role, or justify it here.
pub const JUSTIFIED_UNUSED: &[(&str, &str, &str)] = &[
    ("reconcile-run", "lambda:InvokeFunction", "unfreezes writes through Lambda hooks when a stopped run had frozen them; the rehearsed stops happen before a freeze"),
    ("reconcile-run", "states:StopExecution", "stops the applications' executions of a stopped wave"),
    ("data-cutover", "dms:StartReplicationTask", "starts the reverse replication task (data.reverseReplication), not rehearsed"),
    ("data-cutover", "sns:Publish", "pages when the database is unhealthy after the switch or a hook cannot be undone"),
    ("finalize-cutover", "dms:StopReplicationTask", "stops the DMS task when a DMS plan sets finalize.enabled; the rehearsal finalizes its MGN plan"),
    ("finalize-cutover", "dms:DescribeReplicationTasks", "reads the DMS task before stopping it (finalize of a DMS plan)"),
    ("data-cutover", "dms:StopReplicationTask", "stops the forward DMS task when the reverse task takes over (data.reverseReplication), not rehearsed"),
    ("approval-api", "scheduler:CreateSchedule", "POST /waves/{wave}/schedule"),
    ("approval-api", "iam:PassRole", "hands the wave schedule its role (POST /waves/{wave}/schedule)"),
    ("validate-cutover", "states:DescribeExecution", "asks whether the run holding the application lock is still running (the lock is a lease)"),
    ("data-cutover", "secretsmanager:GetSecretValue", "reads a url hook's credential; url hooks are https only and the rehearsal serves no TLS endpoint (the header on the wire: crates/aws/tests/hooks.rs)"),
    ("data-cutover", "ssm:GetParameter", "reads a url hook's credential (as above)"),
    ("reconcile-run", "secretsmanager:GetSecretValue", "reads a url unfreeze hook's credential when a stopped run had frozen writes; the rehearsed stops happen before a freeze"),
    ("reconcile-run", "ssm:GetParameter", "reads a url unfreeze hook's credential (as above)"),
    ("check-launch", "secretsmanager:GetSecretValue", "reads the credential of a probe of the launched MGN instance; the rehearsed MGN plan's health is an alarm"),
    ("check-launch", "ssm:GetParameter", "reads the credential of a probe of the launched MGN instance (as above)"),
    ("rollback-cutover", "elasticloadbalancing:ModifyListener", "restores a listener's default action when an alb plan without ruleArn rolls back; the rehearsed ALB rollback restores a rule"),
    ("reconcile-run", "elasticloadbalancing:DescribeRules", "reads the ALB rule when a stopped alb run had shifted it; the rehearsed stops are dns plans"),
    ("reconcile-run", "elasticloadbalancing:ModifyRule", "restores the ALB rule of a stopped alb run (as above)"),
    ("reconcile-run", "elasticloadbalancing:ModifyListener", "restores the listener's default action of a stopped alb run (as above)"),    ("validate-cutover", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("start-replication", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("check-replication-lag", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("check-launch", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("shift-traffic", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("check-dns-sync", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("run-health-check", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("rollback-cutover", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("finalize-cutover", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("data-cutover", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("reconcile-run", "sts:AssumeRole", "reaches another account through a plan section's roleArn; the rehearsed plans are single-account (the adapter over moto: crates/aws/tests/moto.rs, sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see)"),
    ("publish-events", "dynamodb:DescribeStream", "the event source mapping reads the run table's stream with this role; the rehearsal has no stream (the step over a recorded stream batch: crates/cli/tests/events.rs)"),
    ("publish-events", "dynamodb:GetRecords", "reads the run table's stream (as above)"),
    ("publish-events", "dynamodb:GetShardIterator", "reads the run table's stream (as above)"),
    ("publish-events", "dynamodb:ListStreams", "reads the run table's stream (as above)"),
    ("publish-events", "dynamodb:GetItem", "reads a gate's run for its application (as above)"),
    ("publish-events", "events:PutEvents", "publishes on the default bus (the adapter over moto: crates/aws/tests/moto.rs)"),
];

/// Refusals a scenario provokes on purpose, and checks itself: (function, action, resource
/// containing, why). Any other refusal is a finding.
pub const EXPECTED_REFUSALS: &[(&str, &str, &str, &str)] = &[(
    "validate-cutover",
    "secretsmanager:GetSecretValue",
    ":secret:rh-cred/untagged-",
    "credentials: a secret without the stack's tag is not the stack's to read",
)];

fn expected_refusal(c: &proxy::Call) -> bool {
    EXPECTED_REFUSALS.iter().any(|(f, a, r, _)| {
        c.function == *f && c.request.action == *a && c.request.resource.contains(r)
    })
}

#[derive(Debug, Clone)]
pub struct RehearseOptions {
    /// Where `sam build` put the functions (`<LogicalId>/bootstrap`).
    pub build_dir: PathBuf,
    pub template: PathBuf,
    /// An AWS-compatible endpoint (moto) for DynamoDB, Route 53, DMS, SNS and Scheduler.
    pub endpoint: String,
    /// The functions' logs and the recorded calls go here.
    pub out: PathBuf,
    /// Scenarios to run (all when empty).
    pub only: Vec<String>,
    /// The fraction of their time Wait states and retry delays last.
    pub wait_scale: f64,
    /// Stack parameters over the template's defaults (the rehearsal sets the allowed zone and
    /// records itself).
    pub parameters: HashMap<String, String>,
    pub progress: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioResult {
    pub name: String,
    pub passed: bool,
    pub seconds: f64,
    pub detail: String,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnusedGrant {
    pub function: String,
    pub action: String,
    pub justification: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RehearsalReport {
    pub scenarios: Vec<ScenarioResult>,
    /// Every problem found: each names the function and the variable, action or path.
    pub findings: Vec<String>,
    pub unused_grants: Vec<UnusedGrant>,
    pub calls: Vec<Call>,
    pub seconds: f64,
}

impl RehearsalReport {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    #[error(transparent)]
    Stack(#[from] stack::StackError),
    #[error("{0}")]
    Setup(String),
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> RehearseError + '_ {
    move |e| RehearseError::Setup(format!("{what}: {e}"))
}

/// One application's world in moto: its record, its DMS task or MGN server.
struct App {
    application: String,
    record: String,
    task_arn: String,
}

impl App {
    fn new(application: &str) -> App {
        App {
            application: application.to_string(),
            record: format!("{application}.rehearsal.example.com"),
            task_arn: format!(
                "arn:aws:dms:{REGION}:{ACCOUNT}:task:{}",
                application.to_ascii_uppercase().replace('-', "")
            ),
        }
    }
}

pub const SCENARIOS: &[&str] = &[
    "dms-approved-iam",
    "outside-bounds",
    "dms-rejected-jwt",
    "alarm-rollback",
    "mgn",
    "mgn-stateful",
    "alb",
    "data-cutover",
    "credentials",
    "safety-net",
    "wave-scheduled",
    "calendar",
    "init-error",
];

struct Rehearsal {
    stack: Arc<Stack>,
    proxy: Arc<Proxy>,
    sandboxes: HashMap<String, Arc<Sandbox>>,
    sdk: aws_config::SdkConfig,
    zone_id: String,
    opts: RehearseOptions,
    /// lambda:InvokeFunction and states:StartExecution by the machines' roles.
    machine_calls: Arc<Mutex<Vec<Call>>>,
    init_failures: Arc<Mutex<Vec<String>>>,
}

/// Runs the rehearsal. Setup problems (no build, no endpoint) are errors; everything the
/// rehearsal finds is in the report.
pub async fn rehearse(opts: RehearseOptions) -> Result<RehearsalReport, RehearseError> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&opts.out).map_err(setup("the output directory"))?;
    let sdk = operator_sdk(&opts.endpoint).await;
    let apps: Vec<App> = app_names().iter().map(|a| App::new(a)).collect();
    // The zone first: its id (moto's) is a stack parameter.
    let zone_id = create_zone(&sdk).await?;
    let mut params = opts.parameters.clone();
    // Every application's record is the stack's to change but one, whose scenario checks that
    // the pre-flight refuses it (`outside-bounds`).
    params.extend(stack::rehearsal_parameters(
        &zone_id,
        &apps
            .iter()
            .filter(|a| a.application != OUTSIDE_BOUNDS_APP)
            .map(|a| a.record.as_str())
            .collect::<Vec<_>>(),
    ));
    let stack = Arc::new(Stack::load(&opts.template, "cutover-rehearsal", &params)?);
    seed(&sdk, &stack, &zone_id, &apps, &opts.endpoint).await?;
    let proxy = Proxy::new(stack.clone(), &opts.endpoint);
    let proxy_url = proxy
        .listen()
        .await
        .map_err(setup("the recording endpoint"))?;
    proxy.world.lock().unwrap_or_else(|p| p.into_inner()).tags = apps
        .iter()
        .map(|a| (a.task_arn.clone(), tagged()))
        .chain(hook_functions().into_iter().map(|h| (h, tagged())))
        .collect();
    let logs = opts.out.join("logs");
    std::fs::create_dir_all(&logs).map_err(setup("the log directory"))?;
    let mut sandboxes = HashMap::new();
    for f in &stack.functions {
        let env = vec![
            ("AWS_ACCESS_KEY_ID".to_string(), f.name.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "rehearsal".to_string()),
            ("AWS_SESSION_TOKEN".to_string(), "rehearsal".to_string()),
            // The one addition to what Lambda sets: every SDK client's endpoint
            // (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html).
            ("AWS_ENDPOINT_URL".to_string(), proxy_url.clone()),
        ];
        let sb = Sandbox::start(f.clone(), &opts.build_dir, &logs, env)
            .await
            .map_err(setup("a function"))?;
        sandboxes.insert(f.arn.clone(), sb);
    }
    let r = Rehearsal {
        stack,
        proxy,
        sandboxes,
        sdk,
        zone_id,
        opts: opts.clone(),
        machine_calls: Arc::new(Mutex::new(Vec::new())),
        init_failures: Arc::new(Mutex::new(Vec::new())),
    };
    let mut scenarios = Vec::new();
    for name in SCENARIOS {
        if !opts.only.is_empty() && !opts.only.iter().any(|o| o == name) {
            continue;
        }
        *r.proxy.scenario.lock().unwrap_or_else(|p| p.into_inner()) = name.to_string();
        let t = std::time::Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(300), r.scenario(name)).await;
        let (passed, detail) = match result {
            Ok(Ok(d)) => (true, d),
            Ok(Err(d)) => (false, d),
            Err(_) => (false, "did not end within 300 s".to_string()),
        };
        if opts.progress {
            eprintln!(
                "rehearse: {name:<18} {} ({:.1} s) {detail}",
                if passed { "ok    " } else { "FAILED" },
                t.elapsed().as_secs_f64()
            );
        }
        scenarios.push(ScenarioResult {
            name: name.to_string(),
            passed,
            seconds: t.elapsed().as_secs_f64(),
            detail,
        });
    }
    for sb in r.sandboxes.values() {
        sb.stop().await;
    }
    let mut calls = r
        .proxy
        .calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    calls.extend(
        r.machine_calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned(),
    );
    let mut findings: Vec<String> = Vec::new();
    for f in r
        .init_failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        if !findings.contains(f) {
            findings.push(f.clone());
        }
    }
    // One finding per refused (function, action, resource), with the scenarios it broke.
    let mut denied: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for c in calls.iter().filter(|c| !c.allowed && !expected_refusal(c)) {
        denied
            .entry((
                c.function.clone(),
                c.request.action.clone(),
                c.request.resource.clone(),
            ))
            .or_default()
            .insert(c.scenario.clone());
    }
    let denied = denied.into_iter().map(|((f, a, r), scenarios)| {
        format!(
            "{f}: its role does not allow {a} on {r} (scenarios: {})",
            scenarios.into_iter().collect::<Vec<_>>().join(", ")
        )
    });
    findings.extend(denied);
    for s in scenarios.iter().filter(|s| !s.passed) {
        findings.push(format!("scenario {}: {}", s.name, s.detail));
    }
    let unused_grants = if opts.only.is_empty() {
        unused_grants(&r.stack, &calls)
    } else {
        vec![]
    };
    if opts.only.is_empty() {
        findings.extend(stale_justifications(&r.stack, &calls));
    }
    for u in unused_grants.iter().filter(|u| u.justification.is_none()) {
        findings.push(format!(
            "{}: its role allows {}, which no rehearsed path calls: remove it, or justify it in rehearse::JUSTIFIED_UNUSED",
            u.function, u.action
        ));
    }
    let report = RehearsalReport {
        scenarios,
        findings,
        unused_grants,
        calls,
        seconds: started.elapsed().as_secs_f64(),
    };
    let _ = std::fs::write(
        opts.out.join("calls.json"),
        serde_json::to_vec_pretty(&report.calls).unwrap_or_default(),
    );
    Ok(report)
}

/// Each function's granted actions (no wildcard expansion: a granted pattern counts as used when
/// any recorded call of the function matches it) that no recorded call used.
pub fn unused_grants(stack: &Stack, calls: &[Call]) -> Vec<UnusedGrant> {
    let mut out = Vec::new();
    for f in &stack.functions {
        let granted: BTreeSet<&String> = f
            .statements
            .iter()
            .filter(|s| s.effect == "Allow")
            .flat_map(|s| s.actions.iter())
            .collect();
        for action in granted {
            let used = calls
                .iter()
                .any(|c| c.function == f.name && glob(action, &c.request.action, true));
            // Network interfaces for VPC probing and similar are attached by SAM, not here.
            if !used {
                out.push(UnusedGrant {
                    function: f.name.clone(),
                    action: action.clone(),
                    justification: JUSTIFIED_UNUSED
                        .iter()
                        .find(|(fname, a, _)| *fname == f.name && a.eq_ignore_ascii_case(action))
                        .map(|(_, _, why)| why.to_string()),
                });
            }
        }
    }
    out
}

/// A justification that no longer applies: its action is not granted to the function, or a
/// rehearsed path now calls it. The list stays the list of what is granted and unrehearsed.
pub fn stale_justifications(stack: &Stack, calls: &[Call]) -> Vec<String> {
    let mut out = Vec::new();
    for (function, action, _) in JUSTIFIED_UNUSED {
        let granted = stack.function(function).is_some_and(|f| {
            f.statements.iter().any(|s| {
                s.effect == "Allow" && s.actions.iter().any(|a| a.eq_ignore_ascii_case(action))
            })
        });
        if !granted {
            out.push(format!("rehearse::JUSTIFIED_UNUSED names {function} {action}, which its role does not grant: remove the entry"));
        } else if calls
            .iter()
            .any(|c| c.function == *function && glob(action, &c.request.action, true))
        {
            out.push(format!("rehearse::JUSTIFIED_UNUSED names {function} {action}, which a rehearsed path now calls: remove the entry"));
        }
    }
    out
}

fn app_names() -> Vec<&'static str> {
    vec![
        "rh-dms",
        "rh-reject",
        "rh-alarm",
        "rh-mgn",
        "rh-rehost",
        "rh-alb",
        "rh-alb-default",
        "rh-data",
        "rh-stop-aborted",
        "rh-stop-failed",
        "rh-stop-timedout",
        "rh-wave-a",
        "rh-wave-b",
        "rh-cred",
        "rh-cred-denied",
        "rh-cal",
        OUTSIDE_BOUNDS_APP,
    ]
}

/// The application whose record lies outside the stack's AllowedRecordNames.
const OUTSIDE_BOUNDS_APP: &str = "rh-outside";

fn tagged() -> BTreeMap<String, String> {
    [("cutover".to_string(), "allowed".to_string())].into()
}

fn hook_functions() -> Vec<String> {
    ["rh-maintenance-on", "rh-use-green-db", "rh-maintenance-off"]
        .iter()
        .map(|n| format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{n}"))
        .collect()
}

async fn operator_sdk(endpoint: &str) -> aws_config::SdkConfig {
    cutover_aws::sdk_loader()
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            OPERATOR_KEY,
            "rehearsal",
            None,
            None,
            "rehearsal",
        ))
        .load()
        .await
}

async fn create_zone(sdk: &aws_config::SdkConfig) -> Result<String, RehearseError> {
    let r53 = aws_sdk_route53::Client::new(sdk);
    let reference = format!("rehearsal-{}", uuid_like());
    let z = r53
        .create_hosted_zone()
        .name("rehearsal.example.com")
        .caller_reference(reference)
        .send()
        .await
        .map_err(|e| {
            RehearseError::Setup(format!(
                "create the hosted zone: {}",
                aws_sdk_route53::error::DisplayErrorContext(e)
            ))
        })?;
    Ok(z.hosted_zone()
        .map(|h| h.id().trim_start_matches("/hostedzone/").to_string())
        .unwrap_or_default())
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

async fn seed(
    sdk: &aws_config::SdkConfig,
    stack: &Stack,
    zone_id: &str,
    apps: &[App],
    endpoint: &str,
) -> Result<(), RehearseError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let _ = ddb
        .delete_table()
        .table_name(&stack.table_name)
        .send()
        .await;
    crate::aws_mode::create_run_table(&ddb, &stack.table_name)
        .await
        .map_err(RehearseError::Setup)?;
    // The topic, by moto's query API (the CLI links no SNS client).
    let topic = stack.topic_arn.rsplit(':').next().unwrap_or_default();
    cutover_aws::tls::reqwest_builder("cutover-rehearse")
        .build()
        .map_err(setup("an HTTP client"))?
        .post(endpoint)
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={OPERATOR_KEY}/20261204/{REGION}/sns/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("Action=CreateTopic&Name={topic}&Version=2010-03-31"))
        .send()
        .await
        .map_err(setup("create the topic"))?;
    // One simple CNAME per application, and its DMS task (running, as after a full load).
    let router = cutover_aws::Route53Router::new(aws_sdk_route53::Client::new(sdk), 4.0);
    use cutover_core::model::{Change, ChangeAction};
    use cutover_core::ports::TrafficRouter;
    let changes: Vec<Change> = apps
        .iter()
        .map(|a| Change {
            action: ChangeAction::Create,
            record: serde_json::from_value(json!({
                "name": a.record, "type": "CNAME", "ttl": 1,
                "values": [format!("blue-{}.example.com", a.application)]
            }))
            .expect("a record set"),
        })
        .collect();
    router
        .change(zone_id, &changes, "rehearsal seed")
        .await
        .map_err(setup("seed the records"))?;
    let dms = cutover_aws::moto_compat::dms_client(sdk);
    let instance = dms
        .create_replication_instance()
        .replication_instance_identifier(format!("rehearsal-{}", uuid_like()))
        .replication_instance_class("dms.t3.micro")
        .send()
        .await
        .map_err(|e| {
            RehearseError::Setup(format!(
                "create the DMS instance: {}",
                aws_sdk_databasemigration::error::DisplayErrorContext(e)
            ))
        })?
        .replication_instance()
        .and_then(|i| i.replication_instance_arn())
        .unwrap_or_default()
        .to_string();
    for a in apps {
        let id = a.task_arn.rsplit(':').next().unwrap_or_default();
        let _ = dms
            .delete_replication_task()
            .replication_task_arn(&a.task_arn)
            .send()
            .await;
        dms.create_replication_task()
            .replication_task_identifier(id)
            .source_endpoint_arn(format!("arn:aws:dms:{REGION}:{ACCOUNT}:endpoint:SOURCE"))
            .target_endpoint_arn(format!("arn:aws:dms:{REGION}:{ACCOUNT}:endpoint:TARGET"))
            .replication_instance_arn(&instance)
            .migration_type(aws_sdk_databasemigration::types::MigrationTypeValue::FullLoadAndCdc)
            .table_mappings(r#"{"rules": []}"#)
            .send()
            .await
            .map_err(|e| {
                RehearseError::Setup(format!(
                    "create DMS task {id}: {}",
                    aws_sdk_databasemigration::error::DisplayErrorContext(e)
                ))
            })?;
        // moto keeps a new task `creating`; a start and a stop make it `stopped`, as a task whose
        // full load is done and whose CDC a cutover resumes.
        for start in [true, false] {
            if start {
                let _ = dms
                    .start_replication_task()
                    .replication_task_arn(&a.task_arn)
                    .start_replication_task_type(aws_sdk_databasemigration::types::StartReplicationTaskTypeValue::StartReplication)
                    .send()
                    .await;
            } else {
                let _ = dms
                    .stop_replication_task()
                    .replication_task_arn(&a.task_arn)
                    .send()
                    .await;
            }
        }
    }
    Ok(())
}

/// Task states invoke the built functions; the machines' own roles are checked for the invoke.
struct BinaryHandler {
    stack: Arc<Stack>,
    sandboxes: HashMap<String, Arc<Sandbox>>,
    machine_calls: Arc<Mutex<Vec<Call>>>,
    init_failures: Arc<Mutex<Vec<String>>>,
    scenario: String,
}

#[async_trait]
impl TaskHandler for BinaryHandler {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, TaskError> {
        let Some(sb) = self.sandboxes.get(function) else {
            return Err(TaskError {
                error: "Lambda.ResourceNotFoundException".into(),
                cause: format!("Function not found: {function}"),
            });
        };
        // Which machine invokes it: the one whose definition names it.
        let machine = self
            .stack
            .machines
            .iter()
            .find(|m| m.definition.contains(function));
        if let Some(m) = machine {
            if !machine_call(
                m,
                "lambda:InvokeFunction",
                function,
                &self.scenario,
                &self.machine_calls,
            ) {
                return Err(TaskError {
                    error: "Lambda.AWSLambdaException".into(),
                    cause: format!("{} may not invoke {function}", m.logical_id),
                });
            }
        }
        invoke_outcome(sb, payload, &self.init_failures).await
    }
}

/// Checks and records one call a state machine's role makes (the engine makes it on the
/// machine's behalf); true when the role allows it.
fn machine_call(
    m: &stack::Machine,
    action: &str,
    resource: &str,
    scenario: &str,
    calls: &Mutex<Vec<Call>>,
) -> bool {
    let request = IamRequest {
        action: action.into(),
        resource: resource.into(),
        context: BTreeMap::new(),
    };
    let allowed = allowing_statement(&m.statements, &request).is_some();
    calls.lock().unwrap_or_else(|p| p.into_inner()).push(Call {
        function: m.logical_id.clone(),
        request,
        allowed,
        answered_by: "engine".into(),
        status: if allowed { 200 } else { 403 },
        scenario: scenario.into(),
    });
    allowed
}

async fn invoke_outcome(
    sb: &Sandbox,
    payload: Value,
    init_failures: &Mutex<Vec<String>>,
) -> Result<Value, TaskError> {
    match sb.invoke(payload).await {
        Outcome::Ok(v) => Ok(v),
        // Step Functions' error is the errorType, its cause the whole error document.
        Outcome::Error { error_type, body } => Err(TaskError {
            error: error_type,
            cause: body.to_string(),
        }),
        Outcome::InitFailed { message } => {
            init_failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!(
                    "{}: the function cannot start: {message}",
                    sb.function().name
                ));
            Err(TaskError {
                error: "Lambda.Unknown".into(),
                cause: format!("init failed: {message}"),
            })
        }
        Outcome::TimedOut => Err(TaskError {
            error: "Sandbox.Timedout".into(),
            cause: format!("{} timed out", sb.function().name),
        }),
    }
}

/// A run that ended on green must end its execution SUCCEEDED: a step that fails after success
/// (a close without its permissions) fails the execution and wakes the safety net.
fn succeeded(exec: &cutover_engine::Execution) -> Result<(), String> {
    if exec.status == Status::Succeeded {
        return Ok(());
    }
    Err(format!(
        "execution {} ended {:?}: {} {}",
        exec.name,
        exec.status,
        exec.error.clone().unwrap_or_default(),
        exec.cause.clone().unwrap_or_default()
    ))
}

/// What a scenario's plan looks like: the smallest waits a plan accepts.
fn dms_plan(app: &App, zone: &str, steps: Value, approvers: &[&str]) -> Value {
    json!({
        "application": app.application,
        "replication": {"kind": "dms", "taskArn": app.task_arn, "maxLagSeconds": 30,
                        "stableSamples": 1, "sampleIntervalSeconds": 1, "deadlineSeconds": 600},
        "dns": {"hostedZoneId": zone, "recordName": app.record, "recordType": "CNAME", "ttl": 60,
                "blue": {"setIdentifier": "blue", "value": format!("blue-{}.example.com", app.application)},
                "green": {"setIdentifier": "green", "value": format!("green-{}.example.com", app.application)}},
        "traffic": {"steps": steps},
        "health": {"intervalSeconds": 1, "failureThreshold": 1, "alarms": [format!("{}-5xx", app.application)]},
        "approvals": {"expiresSeconds": 600, "approvers": approvers},
    })
}

impl Rehearsal {
    fn engine(&self, scenario: &str) -> (Engine, Arc<TokenBroker>) {
        let broker = Arc::new(TokenBroker::new());
        *self.proxy.broker.lock().unwrap_or_else(|p| p.into_inner()) = Some(broker.clone());
        let handler = Arc::new(BinaryHandler {
            stack: self.stack.clone(),
            sandboxes: self.sandboxes.clone(),
            machine_calls: self.machine_calls.clone(),
            init_failures: self.init_failures.clone(),
            scenario: scenario.to_string(),
        });
        let mut engine = Engine::new(
            handler,
            broker.clone(),
            Arc::new(chrono::Utc::now),
            Options {
                account: ACCOUNT.into(),
                region: REGION.into(),
                wait_scale: self.opts.wait_scale,
                ..Default::default()
            },
        );
        for m in &self.stack.machines {
            if let Ok(sm) = cutover_engine::load(&m.definition, &HashMap::new()) {
                engine.register(&m.name, sm);
            }
        }
        (engine, broker)
    }

    /// The ARN of the cutover machine's execution `run_id`, and its status as DescribeExecution
    /// answers it from now on.
    fn set_execution(&self, run_id: &str, status: &str) -> String {
        let machine = self
            .stack
            .machine("CutoverStateMachine")
            .map(|m| m.arn.replacen(":stateMachine:", ":execution:", 1))
            .unwrap_or_default();
        let arn = format!("{machine}:{run_id}");
        self.proxy
            .world
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .executions
            .insert(arn.clone(), status.into());
        arn
    }

    fn machine(&self, id: &str) -> Result<(stack::Machine, cutover_engine::StateMachine), String> {
        let m = self
            .stack
            .machine(id)
            .ok_or(format!("no {id} in the template"))?
            .clone();
        let sm = cutover_engine::load(&m.definition, &HashMap::new()).map_err(|e| e.to_string())?;
        Ok((m, sm))
    }

    fn function(&self, name: &str) -> Result<Arc<Sandbox>, String> {
        let f = self
            .stack
            .function(name)
            .ok_or(format!("no function {name}"))?;
        self.sandboxes
            .get(&f.arn)
            .cloned()
            .ok_or(format!("no sandbox for {name}"))
    }

    fn store(&self) -> cutover_aws::DynamoStore {
        cutover_aws::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.stack.table_name,
        )
    }

    async fn run_record(&self, run_id: &str) -> Result<cutover_core::model::RunRecord, String> {
        use cutover_core::ports::RunStore;
        self.store()
            .load_run(run_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or(format!("no run record {run_id}"))
    }

    /// The record set(s) of `name` in moto, as (set identifier, weight, value).
    async fn dns(&self, name: &str) -> Result<Vec<(String, Option<i64>, String)>, String> {
        let r53 = aws_sdk_route53::Client::new(&self.sdk);
        let out = r53
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .send()
            .await
            .map_err(|e| aws_sdk_route53::error::DisplayErrorContext(e).to_string())?;
        Ok(out
            .resource_record_sets()
            .iter()
            .filter(|r| r.name().trim_end_matches('.') == name)
            .map(|r| {
                (
                    r.set_identifier().unwrap_or_default().to_string(),
                    r.weight(),
                    r.resource_records()
                        .iter()
                        .map(|v| v.value().to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                )
            })
            .collect())
    }

    async fn lock_held(&self, application: &str) -> Result<bool, String> {
        let ddb = aws_sdk_dynamodb::Client::new(&self.sdk);
        let item = ddb
            .get_item()
            .table_name(&self.stack.table_name)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("APP#{application}")),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("LOCK".into()),
            )
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        Ok(item.item().is_some())
    }

    /// The run ended with `outcome`, its lock released, its record as `dns_ok` says.
    async fn expect_end(
        &self,
        app: &App,
        run_id: &str,
        outcome: &str,
        dns_ok: impl Fn(&[(String, Option<i64>, String)]) -> bool,
    ) -> Result<String, String> {
        let rec = self.run_record(run_id).await?;
        let got = rec.outcome.clone().unwrap_or_else(|| "none".into());
        let dns = self.dns(&app.record).await?;
        let mut problems = Vec::new();
        if got != outcome {
            problems.push(format!(
                "outcome {got} (error {}), expected {outcome}",
                rec.error.clone().unwrap_or_default()
            ));
        }
        if !dns_ok(&dns) {
            problems.push(format!("DNS of {} is {dns:?}", app.record));
        }
        if self.lock_held(&app.application).await? {
            problems.push(format!("the lock of {} is still held", app.application));
        }
        if problems.is_empty() {
            Ok(format!("{run_id}: {got}, DNS {dns:?}"))
        } else {
            Err(format!("{run_id}: {}", problems.join("; ")))
        }
    }

    async fn scenario(&self, name: &str) -> Result<String, String> {
        match name {
            "dms-approved-iam" => self.gate(&App::new("rh-dms"), true, Identity::Iam).await,
            "dms-rejected-jwt" => {
                self.gate(&App::new("rh-reject"), false, Identity::Jwt)
                    .await
            }
            "alarm-rollback" => self.alarm_rollback().await,
            "mgn" => self.mgn().await,
            "mgn-stateful" => self.mgn_stateful().await,
            "alb" => self.alb().await,
            "data-cutover" => self.data_cutover().await,
            "credentials" => self.credentials().await,
            "safety-net" => self.safety_net().await,
            "wave-scheduled" => self.wave().await,
            "calendar" => self.calendar().await,
            "init-error" => self.init_error().await,
            "outside-bounds" => self.outside_bounds().await,
            other => Err(format!("no scenario {other}")),
        }
    }

    /// Runs one cutover execution while `driver` acts on it (approvals, alarms, stops).
    async fn run_cutover<F, Fut>(
        &self,
        scenario: &str,
        run_id: &str,
        plan: Value,
        driver: F,
    ) -> Result<cutover_engine::Execution, String>
    where
        F: FnOnce(Arc<TokenBroker>) -> Fut,
        Fut: std::future::Future<Output = Option<(String, String)>>,
    {
        let (engine, broker) = self.engine(scenario);
        let (m, sm) = self.machine("CutoverStateMachine")?;
        self.set_execution(run_id, "RUNNING");
        let stop = driver(broker);
        let stop = async move {
            match stop.await {
                Some(why) => why,
                None => std::future::pending().await,
            }
        };
        let exec = engine
            .execute_until(&sm, &m.name, run_id, json!({"plan": plan}), stop)
            .await;
        let status = match exec.status {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        };
        self.set_execution(run_id, status);
        Ok(exec)
    }

    async fn wait_for_token(&self, broker: &TokenBroker) -> bool {
        for _ in 0..600 {
            if broker.pending_count() > 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Waits until request-approval has stored the gate (what a person sees before deciding):
    /// the engine issues the task token before the function runs, so the token alone is not
    /// enough.
    async fn wait_for_gate(&self, broker: &TokenBroker, run_id: &str, gate: &str) -> bool {
        use cutover_core::ports::RunStore;
        if !self.wait_for_token(broker).await {
            return false;
        }
        let store = self.store();
        for _ in 0..600 {
            if let Ok(Some(_)) = store.load_approval(run_id, gate).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Decides a gate through the approval-api function; a refused decision stops the run, so
    /// that the scenario ends at once with the API's answer.
    async fn decide(
        &self,
        broker: Arc<TokenBroker>,
        run_id: &str,
        gate: &str,
        approve: bool,
        who: Identity,
        answered: Arc<Mutex<Option<Value>>>,
    ) -> Option<(String, String)> {
        if !self.wait_for_gate(&broker, run_id, gate).await {
            *answered.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(json!({"error": format!("gate {gate} was never requested")}));
            return Some((
                "States.Aborted".into(),
                "the gate was never requested".into(),
            ));
        }
        // While the gate waits, the approver holds the run and resumes it through the same
        // function (docs/controls.md): the real binary, API Gateway's event, the run table.
        if approve {
            if let Err(e) = self.steer(run_id, who).await {
                *answered.lock().unwrap_or_else(|p| p.into_inner()) = Some(json!({"error": e}));
                return Some(("States.Aborted".into(), "a mid-run control failed".into()));
            }
        }
        let decision = if approve { "approve" } else { "reject" };
        let event = api_event(
            "POST",
            &format!("/runs/{run_id}/approvals/{gate}"),
            json!({"decision": decision, "reason": "rehearsal"}),
            who,
        );
        let r = match self.function("approval-api") {
            Ok(api) => invoke_outcome(&api, event, &self.init_failures)
                .await
                .unwrap_or_else(|e| json!({"error": e.error, "cause": e.cause})),
            Err(e) => json!({"error": e}),
        };
        let ok = r.get("statusCode").and_then(Value::as_i64) == Some(200);
        *answered.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        (!ok).then(|| {
            (
                "States.Aborted".into(),
                "the approval API refused the decision".into(),
            )
        })
    }

    /// A hold and its resume through the approval-api function, each seen in the run table and
    /// in `GET /runs/{runId}`.
    async fn steer(&self, run_id: &str, who: Identity) -> Result<(), String> {
        let path = format!("/runs/{run_id}/controls");
        let (status, body) = self
            .api(
                "POST",
                &path,
                json!({"action": "hold", "reason": "rehearsal: a DBA checks the replica"}),
                who,
            )
            .await?;
        if status != 200 || body["held"] != json!(true) {
            return Err(format!("hold answered {status}: {body}"));
        }
        let (status, view) = self
            .api("GET", &format!("/runs/{run_id}"), Value::Null, who)
            .await?;
        if status != 200 || view["controls"]["held"]["reason"].as_str().is_none() {
            return Err(format!(
                "GET {run_id} after the hold answered {status}: {view}"
            ));
        }
        let rec = self.run_record(run_id).await?;
        if rec.controls.held.is_none() {
            return Err("the hold is not in the run table".into());
        }
        let (status, body) = self
            .api(
                "POST",
                &path,
                json!({"action": "resume", "reason": "rehearsal: replica fine"}),
                who,
            )
            .await?;
        if status != 200 || body["held"] != json!(false) {
            return Err(format!("resume answered {status}: {body}"));
        }
        Ok(())
    }

    /// Once the run has moved traffic, the application's alarm (`<application>-5xx`) fires: the
    /// bake in progress fails and the run rolls back. Stops nothing itself.
    async fn alarm_once_traffic_moved(&self, run_id: &str, app: &App) -> Option<(String, String)> {
        if self.wait_for_traffic(run_id).await {
            self.proxy
                .world
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .alarms
                .insert(format!("{}-5xx", app.application), "ALARM".into());
        }
        None
    }

    async fn wait_for_traffic(&self, run_id: &str) -> bool {
        for _ in 0..1200 {
            if let Ok(r) = self.run_record(run_id).await {
                if r.weights.is_some_and(|w| w.green > 0) {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// A gate decided through the approval-api function, as API Gateway invokes it.
    async fn gate(&self, app: &App, approve: bool, who: Identity) -> Result<String, String> {
        let run_id = format!("{}-1", app.application);
        let approver = match who {
            Identity::Iam => "arn:aws:iam::123456789012:user/alice",
            Identity::Jwt | Identity::Operator => "group:release-managers",
        };
        let plan = dms_plan(
            app,
            &self.zone_id,
            json!([{"weight": 10, "bakeSeconds": 1}, {"weight": 100, "bakeSeconds": 1, "approval": "before-100"}]),
            &[approver],
        );
        let answered = Arc::new(Mutex::new(None::<Value>));
        let answered2 = answered.clone();
        let rid = run_id.clone();
        let exec = self
            .run_cutover(
                if approve {
                    "dms-approved-iam"
                } else {
                    "dms-rejected-jwt"
                },
                &run_id,
                plan,
                |broker| async move {
                    self.decide(broker, &rid, "before-100", approve, who, answered2)
                        .await
                },
            )
            .await?;
        let response = answered.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let status = response
            .as_ref()
            .and_then(|r| r.get("statusCode"))
            .and_then(Value::as_i64);
        if status != Some(200) {
            return Err(match response {
                Some(r) => format!("the approval API answered {r}"),
                None => "the gate was never decided: the run ended before it was requested".into(),
            });
        }
        // The run as the API shows it to the same caller.
        let view = invoke_outcome(
            self.function("approval-api")?.as_ref(),
            api_event("GET", &format!("/runs/{run_id}"), Value::Null, who),
            &self.init_failures,
        )
        .await
        .map_err(|e| format!("GET /runs/{run_id}: {}: {}", e.error, e.cause))?;
        if view.get("statusCode").and_then(Value::as_i64) != Some(200) {
            return Err(format!("GET /runs/{run_id} answered {view}"));
        }
        let (outcome, green_only) = if approve {
            ("completed", true)
        } else {
            ("rolled_back", false)
        };
        let blue = format!("blue-{}.example.com", app.application);
        let green = format!("green-{}.example.com", app.application);
        let d = self
            .expect_end(app, &run_id, outcome, |dns| {
                if green_only {
                    // All traffic on green: a simple record, or green weighted with blue at 0.
                    dns.iter()
                        .any(|(_, w, v)| *v == green && w.is_none_or(|w| w > 0))
                        && dns.iter().all(|(_, w, v)| *v != blue || *w == Some(0))
                } else {
                    dns.len() == 1 && dns[0].1.is_none() && dns[0].2 == blue
                }
            })
            .await?;
        if approve {
            succeeded(&exec)?;
        }
        Ok(format!("{d}; execution {:?}", exec.status))
    }

    async fn alarm_rollback(&self) -> Result<String, String> {
        let app = App::new("rh-alarm");
        let run_id = "rh-alarm-1".to_string();
        let plan = dms_plan(
            &app,
            &self.zone_id,
            json!([{"weight": 10, "bakeSeconds": 30}, {"weight": 100, "bakeSeconds": 1}]),
            &[],
        );
        self.run_cutover("alarm-rollback", &run_id, plan, |_| {
            self.alarm_once_traffic_moved(&run_id, &app)
        })
        .await?;
        let blue = format!("blue-{}.example.com", app.application);
        self.expect_end(&app, &run_id, "rolled_back", |dns| {
            dns.len() == 1 && dns[0].1.is_none() && dns[0].2 == blue
        })
        .await
    }

    /// ALB weighted target groups (an alb plan) on a load balancer seeded in moto, its listener
    /// and rule tagged for the stack: the rule shifts and an alarm rolls it back to its exact
    /// original actions (validate, shift, health and rollback under their roles); then the
    /// listener's default action moves to green through ModifyListener.
    async fn alb(&self) -> Result<String, String> {
        use cutover_core::alb::LoadBalancer;
        // Names are unique in an endpoint that may have served earlier rehearsals.
        let name = format!("rh-alb-{}", uuid_like());
        let seeded = cutover_aws::moto_seed::seed_alb(
            &self.sdk,
            &self.opts.endpoint,
            &name[..name.len().min(26)],
            77,
        )
        .await?;
        {
            let mut w = self.proxy.world.lock().unwrap_or_else(|p| p.into_inner());
            w.tags.insert(seeded.rule_arn.clone(), tagged());
            w.tags.insert(seeded.listener_arn.clone(), tagged());
        }
        let reader =
            cutover_aws::AlbRouter::new(aws_sdk_elasticloadbalancingv2::Client::new(&self.sdk));
        let read = |rule: Option<String>| {
            let (reader, listener) = (&reader, seeded.listener_arn.clone());
            async move {
                reader
                    .actions(&listener, rule.as_deref())
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        let original = read(Some(seeded.rule_arn.clone())).await?;
        let alb_plan = |app: &App, rule: Option<&str>| {
            let mut plan = dms_plan(app, &self.zone_id, json!([]), &[]);
            if let Some(o) = plan.as_object_mut() {
                o.remove("dns");
            }
            plan["alb"] = json!({"listenerArn": seeded.listener_arn, "ruleArn": rule,
                "blue": {"targetGroupArn": seeded.blue}, "green": {"targetGroupArn": seeded.green}});
            if rule.is_none() {
                plan["alb"].as_object_mut().map(|a| a.remove("ruleArn"));
            }
            plan
        };
        let mut problems = Vec::new();
        // The rule: 10 %, then an alarm in the bake rolls it back.
        let app = App::new("rh-alb");
        let run_id = "rh-alb-1".to_string();
        let mut plan = alb_plan(&app, Some(&seeded.rule_arn));
        plan["traffic"] = json!({"steps": [{"weight": 10, "bakeSeconds": 30}, {"weight": 100, "bakeSeconds": 1}]});
        self.run_cutover("alb", &run_id, plan, |_| {
            self.alarm_once_traffic_moved(&run_id, &app)
        })
        .await?;
        let rec = self.run_record(&run_id).await?;
        if rec.outcome.as_deref() != Some("rolled_back") {
            problems.push(format!(
                "{run_id}: outcome {:?} ({:?}), expected rolled_back",
                rec.outcome, rec.error
            ));
        }
        let after = read(Some(seeded.rule_arn.clone())).await?;
        if after != original {
            problems.push(format!(
                "{run_id}: the rule holds {after:?}, not its original {original:?}"
            ));
        }
        // The listener's default action: all the way to green.
        let app = App::new("rh-alb-default");
        let run_id = "rh-alb-default-1".to_string();
        let mut plan = alb_plan(&app, None);
        plan["traffic"] =
            json!({"steps": [{"weight": 50, "bakeSeconds": 1}, {"weight": 100, "bakeSeconds": 1}]});
        self.run_cutover("alb", &run_id, plan, |_| async { None })
            .await?;
        let rec = self.run_record(&run_id).await?;
        if rec.outcome.as_deref() != Some("completed") {
            problems.push(format!(
                "{run_id}: outcome {:?} ({:?}), expected completed",
                rec.outcome, rec.error
            ));
        }
        let default = read(None).await?;
        let weights = cutover_core::alb::weights(&default);
        if weights != vec![(seeded.blue.clone(), 0), (seeded.green.clone(), 100)] {
            problems.push(format!("{run_id}: the default action forwards {weights:?}"));
        }
        if read(Some(seeded.rule_arn.clone())).await? != original {
            problems.push(format!(
                "{run_id}: the rule changed with the default action"
            ));
        }
        if problems.is_empty() {
            Ok(format!("rh-alb-1: rolled_back, rule restored exactly; rh-alb-default-1: completed, default action {weights:?}"))
        } else {
            Err(problems.join("; "))
        }
    }

    /// A plan for a record outside the stack's AllowedRecordNames: the deployed validate-cutover,
    /// with the environment the template gives it, refuses it at pre-flight naming the field and
    /// the parameter; the run fails before anything changes and no role is asked to change the
    /// record.
    async fn outside_bounds(&self) -> Result<String, String> {
        let app = App::new(OUTSIDE_BOUNDS_APP);
        let run_id = "rh-outside-1";
        let plan = dms_plan(
            &app,
            &self.zone_id,
            json!([{"weight": 100, "bakeSeconds": 1}]),
            &[],
        );
        let exec = self
            .run_cutover("outside-bounds", run_id, plan, |_| async { None })
            .await?;
        let cause = exec.cause.clone().unwrap_or_default();
        let mut problems = Vec::new();
        if exec.status != Status::Failed || exec.error.as_deref() != Some("ValidationFailed") {
            problems.push(format!(
                "ended {:?} with {:?}, expected a ValidationFailed failure",
                exec.status, exec.error
            ));
        }
        if !(cause.contains("dns.recordName") && cause.contains("AllowedRecordNames")) {
            problems.push(format!(
                "the cause does not name the field and the parameter: {cause}"
            ));
        }
        let blue = format!("blue-{}.example.com", app.application);
        let dns = self.dns(&app.record).await?;
        if !(dns.len() == 1 && dns[0].1.is_none() && dns[0].2 == blue) {
            problems.push(format!("DNS of {} is {dns:?}", app.record));
        }
        if self.lock_held(&app.application).await? {
            problems.push(format!("the lock of {} is held", app.application));
        }
        if problems.is_empty() {
            Ok(format!("{run_id}: refused at pre-flight, DNS {dns:?}"))
        } else {
            Err(format!("{run_id}: {}", problems.join("; ")))
        }
    }

    /// MGN source servers ready for cutover, tagged for the stack, in the shimmed world.
    fn add_mgn_servers(&self, servers: &[&str]) {
        let mut world = self.proxy.world.lock().unwrap_or_else(|p| p.into_inner());
        for server in servers {
            world.mgn.push(MgnServer {
                id: server.to_string(),
                lifecycle: "READY_FOR_CUTOVER".into(),
                job: None,
                tags: tagged(),
            });
        }
    }

    /// Each server's lifecycle and launch job, provided one job launched them all.
    fn mgn_launches(&self, servers: &[&str]) -> Result<Vec<(String, Option<String>)>, String> {
        let world = self.proxy.world.lock().unwrap_or_else(|p| p.into_inner());
        let launched: Vec<(String, Option<String>)> = servers
            .iter()
            .map(|id| {
                let m = world.mgn.iter().find(|m| m.id == *id);
                (
                    m.map(|m| m.lifecycle.clone()).unwrap_or_default(),
                    m.and_then(|m| m.job.clone()),
                )
            })
            .collect();
        let first = &launched[0].1;
        if first.is_none() || launched.iter().any(|(_, j)| j != first) {
            return Err(format!(
                "the servers were not launched in one job: {launched:?}"
            ));
        }
        Ok(launched)
    }

    /// Data hook calls the shimmed Lambda has answered so far.
    fn hook_calls(&self) -> usize {
        self.proxy
            .world
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .hook_calls
            .len()
    }

    /// MGN with two servers, then the point of no return: one StartCutover for both, the
    /// finalize gate approved through the approval API, FinalizeCutover of each, and green
    /// collapsed to a simple record.
    async fn mgn(&self) -> Result<String, String> {
        let app = App::new("rh-mgn");
        let run_id = "rh-mgn-1".to_string();
        let servers = ["s-0123456789abcdef0", "s-0123456789abcdef1"];
        self.add_mgn_servers(&servers);
        let mut plan = dms_plan(
            &app,
            &self.zone_id,
            json!([{"weight": 50, "bakeSeconds": 1}, {"weight": 100, "bakeSeconds": 1}]),
            &["arn:aws:iam::123456789012:user/alice"],
        );
        plan["replication"] = json!({"kind": "mgn", "sourceServerIds": servers, "maxLagSeconds": 60,
            "stableSamples": 1, "sampleIntervalSeconds": 1, "deadlineSeconds": 600, "launchDeadlineSeconds": 600});
        plan["finalize"] = json!({"enabled": true});
        plan["dns"]["finalForm"] = json!("simple");
        let rid = run_id.clone();
        let answered = Arc::new(Mutex::new(None::<Value>));
        let answered2 = answered.clone();
        let exec = self
            .run_cutover("mgn", &run_id, plan, |broker| async move {
                self.decide(broker, &rid, "finalize", true, Identity::Iam, answered2)
                    .await
            })
            .await?;
        succeeded(&exec)?;
        let response = answered.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if response
            .as_ref()
            .and_then(|r| r.get("statusCode"))
            .and_then(Value::as_i64)
            != Some(200)
        {
            return Err(format!(
                "the approval API answered the finalize gate with {response:?}"
            ));
        }
        for (server, (lifecycle, _)) in servers.iter().zip(self.mgn_launches(&servers)?) {
            if lifecycle != "CUTOVER" {
                return Err(format!(
                    "{server} is {lifecycle} after finalize, expected CUTOVER"
                ));
            }
        }
        let green = format!("green-{}.example.com", app.application);
        let d = self
            .expect_end(&app, &run_id, "completed", |dns| {
                dns.len() == 1 && dns[0].1.is_none() && dns[0].2 == green
            })
            .await?;
        Ok(format!(
            "{d}; {} launched in one job and finalized",
            servers.join(", ")
        ))
    }

    /// A stateful rehost: writes freeze, data-cutover reads both servers' replication under its
    /// role until it has passed the freeze, start-replication launches them while frozen, and
    /// the switch and unfreeze follow the first boot.
    async fn mgn_stateful(&self) -> Result<String, String> {
        let app = App::new("rh-rehost");
        let run_id = "rh-rehost-1".to_string();
        let servers = ["s-0123456789abcdef2", "s-0123456789abcdef3"];
        self.add_mgn_servers(&servers);
        let before = self.hook_calls();
        let mut plan = dms_plan(
            &app,
            &self.zone_id,
            json!([{"weight": 50, "bakeSeconds": 1}, {"weight": 100, "bakeSeconds": 1}]),
            &[],
        );
        plan["replication"] = json!({"kind": "mgn", "sourceServerIds": servers, "maxLagSeconds": 60,
            "stableSamples": 1, "sampleIntervalSeconds": 1, "deadlineSeconds": 600, "launchDeadlineSeconds": 120});
        let hooks = hook_functions();
        plan["data"] = json!({
            "writes": "freeze-and-switch",
            "freeze": {"lambdaArn": hooks[0]}, "switch": {"lambdaArn": hooks[1]}, "unfreeze": {"lambdaArn": hooks[2]},
            "maxFreezeSeconds": 120, "drainPollSeconds": 1,
        });
        let exec = self
            .run_cutover("mgn-stateful", &run_id, plan, |_| async { None })
            .await?;
        succeeded(&exec)?;
        let hooks_called = self.hook_calls() - before;
        if hooks_called < 3 {
            return Err(format!(
                "{hooks_called} hook calls, expected freeze, switch and unfreeze"
            ));
        }
        self.mgn_launches(&servers)?;
        let green = format!("green-{}.example.com", app.application);
        let d = self
            .expect_end(&app, &run_id, "completed", |dns| {
                dns.iter()
                    .any(|(_, w, v)| *v == green && w.is_none_or(|w| w > 0))
            })
            .await?;
        Ok(format!(
            "{d}; {hooks_called} hook calls; {} launched while frozen",
            servers.join(", ")
        ))
    }

    async fn data_cutover(&self) -> Result<String, String> {
        let app = App::new("rh-data");
        let run_id = "rh-data-1".to_string();
        let mut plan = dms_plan(
            &app,
            &self.zone_id,
            json!([{"weight": 50, "bakeSeconds": 1}, {"weight": 100, "bakeSeconds": 1}]),
            &[],
        );
        let hooks = hook_functions();
        plan["data"] = json!({
            "writes": "blue-until-switch",
            "freeze": {"lambdaArn": hooks[0]}, "switch": {"lambdaArn": hooks[1]}, "unfreeze": {"lambdaArn": hooks[2]},
            "maxFreezeSeconds": 300, "drainPollSeconds": 1,
        });
        let before = self.hook_calls();
        let exec = self
            .run_cutover("data-cutover", &run_id, plan, |_| async { None })
            .await?;
        succeeded(&exec)?;
        let hooks_called = self.hook_calls() - before;
        if hooks_called < 3 {
            return Err(format!(
                "{hooks_called} hook calls, expected freeze, switch and unfreeze"
            ));
        }
        let green = format!("green-{}.example.com", app.application);
        let d = self
            .expect_end(&app, &run_id, "completed", |dns| {
                dns.iter()
                    .any(|(_, w, v)| *v == green && w.is_none_or(|w| w > 0))
            })
            .await?;
        Ok(format!("{d}; {hooks_called} hook calls"))
    }

    /// A probe whose credentials come from a tagged Secrets Manager secret and a tagged SSM
    /// SecureString: the built validate-cutover and run-health-check read them under their roles'
    /// tag condition and send them to green, served on this machine's own private address (the
    /// guarded probes never reach loopback). A credential that is not tagged is refused by IAM at
    /// the pre-flight, naming the header, before anything moves.
    async fn credentials(&self) -> Result<String, String> {
        let ip = private_address().ok_or(
            "no private IPv4 address on this machine: a guarded probe cannot reach a local server",
        )?;
        let token = "rehearsal-probe-t0ken";
        // Names of their own, so a rehearsal against a moto that ran one before still seeds.
        let suffix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let key = "rehearsal-api-k3y";
        let seed = |service: &'static str, target: &'static str, body: Value| {
            let endpoint = self.opts.endpoint.clone();
            async move { seed_json(&endpoint, service, target, body).await }
        };
        let secret = seed(
            "secretsmanager",
            "secretsmanager.CreateSecret",
            json!({"Name": format!("rh-cred/probe-{suffix}"), "SecretString": json!({"token": token}).to_string()}),
        )
        .await?["ARN"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let untagged = seed(
            "secretsmanager",
            "secretsmanager.CreateSecret",
            json!({"Name": format!("rh-cred/untagged-{suffix}"), "SecretString": "x"}),
        )
        .await?["ARN"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        seed(
            "ssm",
            "AmazonSSM.PutParameter",
            json!({"Name": "/rh-cred/api-key", "Value": key, "Type": "SecureString", "Overwrite": true}),
        )
        .await?;
        let parameter = format!("arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:parameter/rh-cred/api-key");
        {
            let mut w = self.proxy.world.lock().unwrap_or_else(|p| p.into_inner());
            w.tags.insert(secret.clone(), tagged());
            w.tags.insert(parameter.clone(), tagged());
        }
        let (url, served) = serve_green(
            &ip,
            &[
                ("authorization", format!("Bearer {token}")),
                ("x-api-key", key.to_string()),
            ],
        )
        .await
        .map_err(|e| format!("green's health endpoint: {e}"))?;
        let headers = |authorization: &str| {
            json!({
                "Authorization": {"secretArn": authorization, "jsonKey": "token", "prefix": "Bearer "},
                "X-Api-Key": {"parameterArn": parameter},
            })
        };
        // Untagged: the pre-flight's read is refused, the run never starts.
        let denied = App::new("rh-cred-denied");
        let mut plan = dms_plan(
            &denied,
            &self.zone_id,
            json!([{"weight": 100, "bakeSeconds": 1}]),
            &[],
        );
        plan["health"]["http"] = json!([{"url": url, "headers": headers(&untagged)}]);
        let exec = self
            .run_cutover("credentials", "rh-cred-denied-1", plan, |_| async { None })
            .await?;
        let cause = exec.cause.clone().unwrap_or_default();
        if exec.error.as_deref() != Some("ValidationFailed")
            || !cause.contains("health.http[0].headers")
            || !cause.contains("AccessDenied")
        {
            return Err(format!(
                "an untagged secret was not refused at the pre-flight: {:?} {cause}",
                exec.error
            ));
        }
        // Tagged: read by the pre-flight and every health round, and accepted by green.
        let app = App::new("rh-cred");
        let mut plan = dms_plan(
            &app,
            &self.zone_id,
            json!([{"weight": 50, "bakeSeconds": 2}, {"weight": 100, "bakeSeconds": 1}]),
            &[],
        );
        plan["health"]["http"] = json!([{"url": url, "headers": headers(&secret)}]);
        let exec = self
            .run_cutover("credentials", "rh-cred-1", plan, |_| async { None })
            .await?;
        succeeded(&exec)?;
        let green = format!("green-{}.example.com", app.application);
        let d = self
            .expect_end(&app, "rh-cred-1", "completed", |dns| {
                dns.iter()
                    .any(|(_, w, v)| *v == green && w.is_none_or(|w| w > 0))
            })
            .await?;
        let (ok, refused) = *served.lock().unwrap_or_else(|p| p.into_inner());
        if ok < 2 || refused > 0 {
            return Err(format!(
                "green saw {ok} authorized and {refused} refused probes; expected the pre-flight's and the bakes', none refused"
            ));
        }
        Ok(format!(
            "{d}; {ok} authorized probes; untagged secret refused"
        ))
    }

    /// A run stopped after traffic moved, reconciled by reconcile-run from the execution's
    /// status-change event (what the template's EventBridge rule delivers), once per status.
    async fn safety_net(&self) -> Result<String, String> {
        let reconcile = self.function("reconcile-run")?;
        let mut done = Vec::new();
        for (application, status) in [
            ("rh-stop-aborted", "ABORTED"),
            ("rh-stop-failed", "FAILED"),
            ("rh-stop-timedout", "TIMED_OUT"),
        ] {
            let app = App::new(application);
            let run_id = format!("{application}-1");
            let plan = dms_plan(
                &app,
                &self.zone_id,
                json!([{"weight": 10, "bakeSeconds": 600}, {"weight": 100, "bakeSeconds": 1}]),
                &[],
            );
            let rid = run_id.clone();
            let (m, _) = self.machine("CutoverStateMachine")?;
            let moved = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let moved2 = moved.clone();
            self.run_cutover("safety-net", &run_id, plan, |_| async move {
                moved2.store(
                    self.wait_for_traffic(&rid).await,
                    std::sync::atomic::Ordering::SeqCst,
                );
                Some((
                    "States.Aborted".to_string(),
                    "stopped by the rehearsal".to_string(),
                ))
            })
            .await?;
            if !moved.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(format!(
                    "{run_id}: traffic never moved, so the stop tested nothing"
                ));
            }
            let exec_arn = self.set_execution(&run_id, status);
            // The sweep (the template's schedule input) sees the run whose execution ended
            // without an outcome, before its status-change event reconciles it.
            if status == "ABORTED" {
                let sweep = invoke_outcome(
                    &reconcile,
                    json!({"sweep": {"warnBeforeSeconds": 900}}),
                    &self.init_failures,
                )
                .await
                .map_err(|e| format!("the sweep: {}: {}", e.error, e.cause))?;
                let found = sweep
                    .get("abandoned")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|r| r.as_str() == Some(run_id.as_str())));
                if !found {
                    return Err(format!(
                        "the sweep did not find {run_id} abandoned: {sweep}"
                    ));
                }
                done.push(format!("the sweep found {run_id} abandoned"));
            }
            let event = json!({
                "version": "0", "id": format!("rehearsal-{application}"),
                "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
                "account": ACCOUNT, "time": chrono::Utc::now().to_rfc3339(), "region": REGION,
                "resources": [exec_arn],
                "detail": {"executionArn": exec_arn, "stateMachineArn": m.arn, "name": run_id, "status": status,
                           "startDate": chrono::Utc::now().timestamp_millis() - 60_000,
                           "stopDate": chrono::Utc::now().timestamp_millis(), "input": null, "output": null},
            });
            invoke_outcome(&reconcile, event, &self.init_failures)
                .await
                .map_err(|e| format!("reconcile-run on {status}: {}: {}", e.error, e.cause))?;
            let blue = format!("blue-{application}.example.com");
            let rec = self.run_record(&run_id).await?;
            let outcome = rec.outcome.clone().unwrap_or_default();
            if outcome.is_empty() {
                return Err(format!("{run_id}: no outcome after reconcile on {status}"));
            }
            done.push(
                self.expect_end(&app, &run_id, &outcome, |dns| {
                    dns.len() == 1 && dns[0].1.is_none() && dns[0].2 == blue
                })
                .await?,
            );
        }
        Ok(done.join(" | "))
    }

    /// The init-error path of a built function: close-run started without `TOPIC_ARN` (its
    /// Notifier port needs it) must report, through the Runtime API's init-error endpoint, an
    /// error that names the variable; the invocation then fails without running.
    async fn init_error(&self) -> Result<String, String> {
        let real = self.function("close-run")?;
        let mut f = real.function().clone();
        f.name = "close-run-without-topic".into();
        f.environment.remove("TOPIC_ARN");
        let logs = self.opts.out.join("logs");
        let sb = Sandbox::start(f, &self.opts.build_dir, &logs, vec![])
            .await
            .map_err(|e| e.to_string())?;
        let outcome = sb.invoke(json!({})).await;
        sb.stop().await;
        match outcome {
            Outcome::InitFailed { message }
                if message == "environment variable TOPIC_ARN is required" =>
            {
                Ok(format!("close-run without TOPIC_ARN reported: {message}"))
            }
            other => Err(format!(
                "close-run without TOPIC_ARN: expected an init error naming it, got {other:?}"
            )),
        }
    }

    /// A wave of two applications (b depends on a), started with the input a schedule gives the
    /// wave machine (`WaveScheduleInput`: an object with the wave).
    async fn wave(&self) -> Result<String, String> {
        let (a, b) = (App::new("rh-wave-a"), App::new("rh-wave-b"));
        let steps = json!([{"weight": 50, "bakeSeconds": 1}, {"weight": 100, "bakeSeconds": 1}]);
        // A hand-over bound this low makes the wave hand over to a fresh execution of itself
        // at least once, as a long wave does near its history's bound.
        let wave = json!({"wave": {
            "wave": "rh-wave", "maxConcurrency": 2, "handoverAfterEvents": 100,
            "applications": [
                {"application": a.application, "runId": "rh-wave-a-1", "dependsOn": [], "plan": dms_plan(&a, &self.zone_id, steps.clone(), &[])},
                {"application": b.application, "runId": "rh-wave-b-1", "dependsOn": [a.application], "plan": dms_plan(&b, &self.zone_id, steps, &[])},
            ]
        }});
        let (engine, _) = self.engine("wave-scheduled");
        let (m, sm) = self.machine("WaveStateMachine")?;
        // Each cutover execution the wave starts is known to DescribeExecution while it runs.
        for r in ["rh-wave-a-1", "rh-wave-b-1"] {
            self.set_execution(r, "RUNNING");
        }
        let cutover_arn = self.machine("CutoverStateMachine")?.0.arn;
        machine_call(
            &m,
            "states:StartExecution",
            &cutover_arn,
            "wave-scheduled",
            &self.machine_calls,
        );
        let exec = engine
            .execute(&sm, &m.name, "rh-wave-scheduled-1", wave)
            .await;
        let mut handovers = 0;
        for (arn, child) in engine.children() {
            succeeded(&child)?;
            if arn == m.arn {
                // A later execution of the wave's chain: the wave machine's role started it.
                handovers += 1;
                machine_call(
                    &m,
                    "states:StartExecution",
                    &m.arn,
                    "wave-scheduled",
                    &self.machine_calls,
                );
            }
        }
        if exec.status != Status::Succeeded {
            return Err(format!(
                "the wave execution ended {:?}: {:?} {:?}",
                exec.status, exec.error, exec.cause
            ));
        }
        if handovers == 0 {
            return Err("the wave never handed over to a fresh execution".into());
        }
        let mut d = Vec::new();
        for (app, run) in [(&a, "rh-wave-a-1"), (&b, "rh-wave-b-1")] {
            let green = format!("green-{}.example.com", app.application);
            d.push(
                self.expect_end(app, run, "completed", |dns| {
                    dns.iter()
                        .any(|(_, w, v)| *v == green && w.is_none_or(|w| w > 0))
                })
                .await?,
            );
        }
        d.push(format!("{handovers} hand-over(s)"));
        Ok(d.join(" | "))
    }
}

impl Rehearsal {
    /// One request to the approval-api function as API Gateway invokes it: status and body.
    async fn api(
        &self,
        method: &str,
        path: &str,
        body: Value,
        who: Identity,
    ) -> Result<(i64, Value), String> {
        let api = self.function("approval-api")?;
        let r = invoke_outcome(
            &api,
            api_event(method, path, body, who),
            &self.init_failures,
        )
        .await
        .map_err(|e| format!("{}: {}", e.error, e.cause))?;
        let status = r.get("statusCode").and_then(Value::as_i64).unwrap_or(0);
        let body = r
            .get("body")
            .and_then(Value::as_str)
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// The wave calendar as deployed: a wave queued through the approval API by the operator
    /// role, then two firings of the wave machine with the recurring schedule's input: the first
    /// takes the wave and runs it, the second finds nothing queued and tells the topic.
    async fn calendar(&self) -> Result<String, String> {
        let app = App::new("rh-cal");
        let steps = json!([{"weight": 50, "bakeSeconds": 1}, {"weight": 100, "bakeSeconds": 1}]);
        let wave = json!({"wave": {
            "wave": "rh-cal", "maxConcurrency": 1,
            "applications": [{"application": app.application, "runId": "unused", "dependsOn": [],
                              "plan": dms_plan(&app, &self.zone_id, steps, &[])}]
        }});
        let (status, body) = self
            .api("POST", "/calendar", wave, Identity::Operator)
            .await?;
        if status != 201 {
            return Err(format!("POST /calendar answered {status}: {body}"));
        }
        let (m, sm) = self.machine("WaveStateMachine")?;
        let cutover_arn = self.machine("CutoverStateMachine")?.0.arn;
        machine_call(
            &m,
            "states:StartExecution",
            &cutover_arn,
            "calendar",
            &self.machine_calls,
        );
        let mut ended = vec![];
        for firing in ["rh-cal-firing-1", "rh-cal-firing-2"] {
            let (engine, _) = self.engine("calendar");
            let exec = engine
                .execute(&sm, &m.name, firing, json!({"calendar": {}}))
                .await;
            for (_, child) in engine.children() {
                succeeded(&child)?;
            }
            if exec.status != Status::Succeeded {
                return Err(format!(
                    "{firing} ended {:?}: {:?} {:?}",
                    exec.status, exec.error, exec.cause
                ));
            }
            ended.push(engine.children().len());
        }
        if ended != [1, 0] {
            return Err(format!(
                "the firings started {ended:?} cutovers; expected [1, 0]"
            ));
        }
        let (status, body) = self
            .api("GET", "/calendar", Value::Null, Identity::Operator)
            .await?;
        let state = body.pointer("/waves/0/state").and_then(Value::as_str);
        if status != 200 || state != Some("completed") {
            return Err(format!("GET /calendar answered {status}: {body}"));
        }
        Ok(
            "rh-cal taken by rh-cal-firing-1 and completed; rh-cal-firing-2 found nothing queued"
                .to_string(),
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum Identity {
    Iam,
    Jwt,
    /// A session of the stack's operator role (`ApiOperators`), through the IAM authorizer.
    Operator,
}

/// An API Gateway HTTP API (payload 2.0) event, with the authorizer context API Gateway adds
/// for IAM (SigV4) or JWT callers
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
fn api_event(method: &str, path: &str, body: Value, who: Identity) -> Value {
    let authorizer = match who {
        Identity::Iam => json!({"iam": {
            "accessKey": "AKIAREHEARSAL", "accountId": ACCOUNT, "callerId": "AIDAREHEARSAL",
            "principalOrgId": null, "userArn": "arn:aws:iam::123456789012:user/alice", "userId": "AIDAREHEARSAL"}}),
        Identity::Operator => json!({"iam": {
            "accessKey": "ASIAREHEARSAL", "accountId": ACCOUNT, "callerId": "AROAREHEARSAL:ci",
            "principalOrgId": null, "userArn": "arn:aws:sts::123456789012:assumed-role/ReleaseOperator/ci", "userId": "AROAREHEARSAL:ci"}}),
        Identity::Jwt => json!({"jwt": {
            "claims": {"sub": "bob", "iss": "https://issuer.example.com", "scope": "cutover/approve",
                       "cognito:groups": "[release-managers]"},
            "scopes": ["cutover/approve"]}}),
    };
    // The bearer token API Gateway validated (the function reads its claims with their types).
    let token = {
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.rehearsal",
            b64(json!({"alg": "RS256", "typ": "JWT"})),
            b64(
                json!({"sub": "bob", "iss": "https://issuer.example.com", "scope": "cutover/approve",
                       "cognito:groups": ["release-managers"]})
            )
        )
    };
    let headers = match who {
        Identity::Iam | Identity::Operator => json!({"content-type": "application/json"}),
        Identity::Jwt => {
            json!({"content-type": "application/json", "authorization": format!("Bearer {token}")})
        }
    };
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {}", if path.contains("/approvals/") { "/runs/{runId}/approvals/{gate}" } else { path }),
        "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": "rehearsalapi",
            "domainName": "rehearsalapi.execute-api.us-east-1.amazonaws.com", "domainPrefix": "rehearsalapi",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.5", "userAgent": "cutover-rehearse"},
            "requestId": "rehearsal", "routeKey": format!("{method} {path}"), "stage": "$default",
            "time": "04/Dec/2026:10:00:00 +0000", "timeEpoch": chrono::Utc::now().timestamp_millis(),
            "authorizer": authorizer,
        },
        "body": body.to_string(), "isBase64Encoded": false,
    })
}

/// This machine's own IPv4 address on its default route (no packet is sent: a UDP socket only
/// chooses its source address), if it is not loopback.
fn private_address() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.254:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

/// One unsigned JSON-protocol request to moto as the rehearsal's operator (seeding only).
async fn seed_json(
    endpoint: &str,
    service: &str,
    target: &str,
    body: Value,
) -> Result<Value, String> {
    let resp = cutover_aws::tls::reqwest_builder("cutover-rehearse")
        .build()
        .map_err(|e| e.to_string())?
        .post(format!("{}/", endpoint.trim_end_matches('/')))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential={OPERATOR_KEY}/20261204/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("{target}: {e}"))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "{target}: HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("{target}: {e}"))
}

/// Green's health endpoint on `ip`: 200 to a request carrying every `required` header with its
/// value, 401 otherwise. Its URL, and the (authorized, refused) counts.
async fn serve_green(
    ip: &str,
    required: &[(&'static str, String)],
) -> std::io::Result<(String, Arc<Mutex<(u32, u32)>>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
    let url = format!("http://{}/health", listener.local_addr()?);
    let counts = Arc::new(Mutex::new((0u32, 0u32)));
    let (c, required) = (counts.clone(), required.to_vec());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (c, required) = (c.clone(), required.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                while n < buf.len() {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => n += k,
                    }
                    if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let has = |name: &str, value: &str| {
                    head.lines().any(|l| {
                        l.split_once(':').is_some_and(|(k, v)| {
                            k.trim().eq_ignore_ascii_case(name) && v.trim() == value
                        })
                    })
                };
                let ok = required.iter().all(|(k, v)| has(k, v));
                {
                    let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
                    if ok {
                        c.0 += 1
                    } else {
                        c.1 += 1
                    }
                }
                let status = if ok { "200 OK" } else { "401 Unauthorized" };
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    Ok((url, counts))
}
