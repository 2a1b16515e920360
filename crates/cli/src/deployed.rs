//! `cutover run …`, `runs list` and `wave …` against a deployed stack: start a run (StartExecution
//! of the cutover machine, named by the run id, with the plan as input), read its status (the run
//! table and DescribeExecution), decide gates or abort through the approval API — SigV4-signed
//! with the caller's own credentials, never around the API, so its authorization and audit apply
//! — and start or follow a wave.
//!
//! Every command works on one [`Context`]: the SDK configuration (profile, region or an
//! AWS-compatible endpoint) and where the stack's pieces are. With `--stack NAME` those come from
//! the stack's outputs (CloudFormation DescribeStacks); a flag or its environment variable given
//! as well wins over the output.

use cutover_aws::{DynamoStore, HttpHooks, SfnExecutions};
use cutover_core::plan::Plan;
use cutover_core::ports::{Executions, RunStore};
use serde_json::{json, Value};

/// Where the deployed stack's pieces are, and how to reach them, as the command line gives them.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// A CloudFormation stack whose outputs fill in what the flags leave out.
    pub stack_name: Option<String>,
    pub state_machine_arn: Option<String>,
    pub wave_state_machine_arn: Option<String>,
    pub wave_scheduler_role_arn: Option<String>,
    pub table: Option<String>,
    pub api_url: Option<String>,
    /// A named profile of the shared AWS config files (as the AWS CLI's `--profile`).
    pub profile: Option<String>,
    pub region: Option<String>,
    /// An AWS-compatible endpoint (tests against moto); default: the environment's account.
    pub endpoint: Option<String>,
    /// A bearer token for an approval API behind the JWT authorizer; without it, requests are
    /// SigV4-signed with the caller's credentials.
    pub api_token: Option<String>,
}

/// The outputs of the template that the commands read, by output key.
pub const OUTPUT_KEYS: [(&str, &str); 5] = [
    ("CutoverStateMachineArn", "--state-machine-arn"),
    ("WaveStateMachineArn", "--wave-state-machine-arn"),
    ("WaveSchedulerRoleArn", "--role-arn"),
    ("RunTableName", "--table"),
    ("ApprovalApiUrl", "--api-url"),
];

/// One connection to a deployed stack, shared by every call a command makes.
pub struct Context {
    pub sdk: aws_config::SdkConfig,
    pub stack: Stack,
    /// The stack's parameters by key (with `--stack`): the bounds the deployer set.
    pub parameters: std::collections::BTreeMap<String, String>,
    rt: tokio::runtime::Runtime,
}

impl Context {
    /// Loads the SDK configuration and, with `--stack`, reads the stack's outputs.
    pub fn connect(stack: &Stack) -> Result<Context, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let sdk = rt.block_on(crate::aws_mode::sdk_with(
            stack.endpoint.as_deref(),
            stack.profile.as_deref(),
            stack.region.as_deref(),
        ));
        let mut stack = stack.clone();
        let mut parameters = std::collections::BTreeMap::new();
        if let Some(name) = stack.stack_name.clone().filter(|n| !n.is_empty()) {
            let (outputs, params) = rt.block_on(describe_stack(&sdk, &name))?;
            parameters = params;
            let fill = |field: &mut Option<String>, key: &str| {
                if field.as_deref().is_none_or(str::is_empty) {
                    *field = outputs.get(key).cloned();
                }
            };
            fill(&mut stack.state_machine_arn, "CutoverStateMachineArn");
            fill(&mut stack.wave_state_machine_arn, "WaveStateMachineArn");
            fill(&mut stack.wave_scheduler_role_arn, "WaveSchedulerRoleArn");
            fill(&mut stack.table, "RunTableName");
            fill(&mut stack.api_url, "ApprovalApiUrl");
        }
        Ok(Context {
            sdk,
            stack,
            parameters,
            rt,
        })
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The wave machine a schedule starts and the role it starts it as.
    pub fn wave_schedule_target(&self) -> Result<(String, String), String> {
        let machine = self.need(&self.stack.wave_state_machine_arn, "WaveStateMachineArn")?;
        let role = self.need(&self.stack.wave_scheduler_role_arn, "WaveSchedulerRoleArn")?;
        Ok((machine.to_string(), role.to_string()))
    }

    /// Creates a wave's one-time schedule (EventBridge Scheduler CreateSchedule); its ARN.
    pub fn create_schedule(&self, s: &cutover_aws::OneTimeSchedule) -> Result<String, String> {
        self.block_on(
            cutover_aws::WaveScheduler::new(aws_sdk_scheduler::Client::new(&self.sdk)).create(s),
        )
        .map_err(|e| e.to_string())
    }

    fn need<'a>(&'a self, v: &'a Option<String>, output: &str) -> Result<&'a str, String> {
        let flag = OUTPUT_KEYS
            .iter()
            .find(|(k, _)| *k == output)
            .map_or("", |(_, f)| *f);
        v.as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| match &self.stack.stack_name {
                Some(name) => format!("stack {name} has no {output} output; give {flag}"),
                None => format!("{flag} or --stack NAME is required (the stack's {output} output)"),
            })
    }
}

type ByKey = std::collections::BTreeMap<String, String>;

/// The outputs and the parameters of a CloudFormation stack, by key. A stack that does not exist
/// is one clear line.
async fn describe_stack(sdk: &aws_config::SdkConfig, name: &str) -> Result<(ByKey, ByKey), String> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let out = cfn
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| format!("stack {name}: {}", sdk_err(e)))?;
    let stack = out
        .stacks()
        .first()
        .ok_or_else(|| format!("stack {name} not found"))?;
    let outputs = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect();
    let parameters = stack
        .parameters()
        .iter()
        .filter_map(|p| {
            Some((
                p.parameter_key()?.to_string(),
                p.parameter_value()?.to_string(),
            ))
        })
        .collect();
    Ok((outputs, parameters))
}

/// What `run preflight` found: every problem the pre-flight names (empty: the run would
/// start), the record sets DNS serves now, and which of the stack's bounds were checked.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preflight {
    pub problems: Vec<String>,
    pub records: Vec<cutover_core::model::RecordSet>,
    /// The stack's AllowedRecordNames and AllowedHostedZoneIds, when the stack was read.
    pub allowed_record_names: Option<Vec<String>>,
    pub allowed_hosted_zone_ids: Option<Vec<String>>,
}

/// The pre-flight validate-cutover makes, run from here against the account, changing nothing:
/// the DMS task or MGN servers, the record as Route 53 serves it, green's health URLs and alarms,
/// hook credentials, and the stack's own bounds (its AllowedRecordNames, AllowedHostedZoneIds
/// and AllowedHookFunctionArns parameters, with `--stack`). Every port it could change anything
/// through is left unconfigured: a call to one fails instead of acting.
pub fn preflight(cx: &Context, plan: &Plan) -> Result<Preflight, String> {
    use cutover_aws::{AwsReplication, AwsSecrets, CloudWatchMetrics, HttpProbe, Route53Router};
    use std::sync::Arc;
    let list = |key: &str| -> Option<Vec<String>> {
        cx.parameters.get(key).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    };
    // Where the stack runs, from its cutover machine's ARN (arn:PARTITION:states:REGION:ACCOUNT:…).
    let arn: Vec<String> = cx
        .stack
        .state_machine_arn
        .as_deref()
        .unwrap_or_default()
        .split(':')
        .map(str::to_string)
        .collect();
    let part = |i: usize| arn.get(i).filter(|s| !s.is_empty()).cloned();
    let stack = cutover_core::steps::StackContext {
        partition: part(1),
        region: part(3),
        account: part(4),
        allowed_hook_arns: list("AllowedHookFunctionArns").unwrap_or_default(),
        allowed_record_names: list("AllowedRecordNames"),
        allowed_zone_ids: list("AllowedHostedZoneIds"),
    };
    let none = Arc::new(cutover_lambda::Unconfigured("run preflight".into()));
    let moto = cx.stack.endpoint.is_some();
    // Against an AWS-compatible endpoint (moto, in the tests): its DMS answers carry ISO
    // timestamps the SDK refuses, and it has no DescribeTableStatistics.
    let dms_of = move |conf: &aws_config::SdkConfig| match moto {
        true => cutover_aws::moto_compat::dms_client(conf),
        false => aws_sdk_databasemigration::Client::new(conf),
    };
    // The reading ports over one account's credentials: the stack's own, or a role's that a plan
    // section names (`roleArn`). Route 53 reads only (`records`): one request a second leaves
    // the account's budget to the runs.
    let reading = move |conf: &aws_config::SdkConfig| {
        let dms = dms_of(conf);
        let replication = AwsReplication::new(dms.clone(), aws_sdk_mgn::Client::new(conf));
        let replication = match moto {
            true => replication.without_table_statistics(),
            false => replication,
        };
        cutover_core::accounts::Reached {
            router: Arc::new(Route53Router::new(aws_sdk_route53::Client::new(conf), 1.0)),
            load_balancer: Arc::new(cutover_aws::AlbRouter::new(
                aws_sdk_elasticloadbalancingv2::Client::new(conf),
            )),
            replication: Arc::new(replication.clone()),
            metrics: Arc::new(CloudWatchMetrics::new(
                aws_sdk_cloudwatch::Client::new(conf),
                replication,
                dms,
            )),
            expires: None,
        }
    };
    let home = reading(&cx.sdk);
    // The tag checks below read with the stack's own clients.
    let dms = dms_of(&cx.sdk);
    let mgn = aws_sdk_mgn::Client::new(&cx.sdk);
    let elbv2 = aws_sdk_elasticloadbalancingv2::Client::new(&cx.sdk);
    let probe = HttpProbe::new(std::time::Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let secrets = AwsSecrets::new(&cx.sdk).map_err(|e| e.to_string())?;
    let deps = cutover_core::steps::Deps {
        stack: stack.clone(),
        clock: Arc::new(cutover_aws::SystemClock),
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&cx.sdk),
            cx.stack
                .table
                .as_deref()
                .unwrap_or("run-preflight-reads-no-table"),
        )),
        router: home.router,
        load_balancer: home.load_balancer,
        replication: home.replication,
        metrics: home.metrics,
        probe: Arc::new(probe),
        secrets: Arc::new(secrets),
        notifier: none.clone(),
        callbacks: none.clone(),
        hooks: none.clone(),
        executions: none.clone(),
        vault: none,
        // Sections naming a roleArn are read through it, with the caller's own credentials
        // assuming it (the member roles' trust must name them: docs/deploy.md).
        accounts: Arc::new(cutover_aws::StsAccounts::new(&cx.sdk, Arc::new(reading))),
        bus: Arc::new(cutover_core::events::NoBus),
        sent: Default::default(),
    };
    let (mut problems, found) = cx
        .block_on(cutover_core::steps::preflight(
            plan,
            &format!("preflight-{}", plan.application),
            &deps,
        ))
        .map_err(|e| e.to_string())?;
    let records = found.records;
    // What the stack's roles may touch carries the tag cutover=<CutoverTagValue>: their DMS and
    // MGN actions are conditioned on it (template.yaml), so an untagged task or server would be
    // refused at its first start, stop or finalize.
    if let Some(value) = cx.parameters.get("CutoverTagValue") {
        problems.extend(cx.block_on(untagged(plan, value, &dms, &mgn))?);
        problems.extend(cx.block_on(untagged_alb(plan, value, &elbv2))?);
    }
    problems.extend(cx.block_on(missing_hooks(cx, plan))?);
    // Who may decide the plan's gates: the stack's ApiApprovers and the plan's own list, both.
    if let Some(approvers) = list("ApiApprovers") {
        problems.extend(cutover_core::api::unreachable_approvers(plan, &approvers));
        // Each named IAM principal of the stack's account must exist: a deleted role or a typo
        // admits nobody.
        let named = approvers
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("ApiApprovers[{i}] (stack parameter)"), a.clone()))
            .chain(
                plan.approvals
                    .approvers
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (format!("approvals.approvers[{i}]"), a.clone())),
            )
            .collect::<Vec<_>>();
        let iam = aws_sdk_iam::Client::new(&cx.sdk);
        problems.extend(cx.block_on(unknown_principals(&iam, stack.account.as_deref(), &named))?);
    }
    Ok(Preflight {
        problems,
        records,
        allowed_record_names: stack.allowed_record_names,
        allowed_hosted_zone_ids: stack.allowed_zone_ids,
    })
}

/// The plan's Lambda data hooks that the stack could not call: a function Lambda does not know
/// (GetFunction 404), or one whose state is `Failed` (invocations fail until it is fixed:
/// https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html). Each named by its
/// field. Read with the caller's credentials.
async fn missing_hooks(cx: &Context, plan: &Plan) -> Result<Vec<String>, String> {
    let d = &plan.data;
    let hooks = [
        ("data.freeze.lambdaArn", &d.freeze),
        ("data.switch.lambdaArn", &d.switch),
        ("data.unfreeze.lambdaArn", &d.unfreeze),
    ];
    let client = HttpHooks::new(&cx.sdk).map_err(|e| e.to_string())?;
    let client = match cx.stack.endpoint {
        Some(_) => client.allowing_local_targets().map_err(|e| e.to_string())?,
        None => client,
    };
    let mut problems = Vec::new();
    for (field, hook) in hooks {
        let Some(arn) = hook.as_ref().and_then(|h| h.lambda_arn.as_deref()) else {
            continue;
        };
        match client
            .lambda_function_state(arn)
            .await
            .map_err(|e| format!("{field}: {e}"))?
        {
            None => problems.push(format!(
                "{field}: Lambda has no function {arn} (GetFunction answered ResourceNotFoundException): the data cutover would fail at its first call"
            )),
            Some(state) if state == "Failed" => problems.push(format!(
                "{field}: function {arn} is in state Failed: every invocation fails until it is fixed"
            )),
            Some(_) => {}
        }
    }
    Ok(problems)
}

/// The plan's DMS tasks and MGN servers that do not carry the tag `cutover=<value>`, each named
/// by its field (DMS ListTagsForResource; MGN DescribeSourceServers, whose servers carry their
/// tags).
async fn untagged(
    plan: &Plan,
    value: &str,
    dms: &aws_sdk_databasemigration::Client,
    mgn: &aws_sdk_mgn::Client,
) -> Result<Vec<String>, String> {
    let mut tasks: Vec<(&str, &str)> = Vec::new();
    if let Some(arn) = plan.replication.task_arn.as_deref() {
        tasks.push(("replication.taskArn", arn));
    }
    if let Some(r) = &plan.data.reverse_replication {
        tasks.push(("data.reverseReplication.taskArn", r.task_arn.as_str()));
    }
    let why = |what: &str| {
        format!("{what} does not carry the tag cutover={value} (the stack's CutoverTagValue): the stack's roles may not start, stop or finalize it")
    };
    let mut problems = Vec::new();
    for (field, arn) in tasks {
        let tags = dms
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| format!("{field}: {}", sdk_err(e)))?;
        if !tags
            .tag_list()
            .iter()
            .any(|t| t.key() == Some("cutover") && t.value() == Some(value))
        {
            problems.push(format!("{field}: {}", why(&format!("the DMS task {arn}"))));
        }
    }
    let servers = plan.replication.mgn_servers();
    if !servers.is_empty() {
        let out = mgn
            .describe_source_servers()
            .filters(
                aws_sdk_mgn::types::DescribeSourceServersRequestFilters::builder()
                    .set_source_server_ids(Some(servers.iter().map(|s| s.to_string()).collect()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| format!("replication.sourceServerIds: {}", sdk_err(e)))?;
        for (i, id) in servers.iter().enumerate() {
            let tagged = out.items().iter().any(|s| {
                s.source_server_id() == Some(id)
                    && s.tags().and_then(|t| t.get("cutover")).map(String::as_str) == Some(value)
            });
            if !tagged {
                problems.push(format!(
                    "{}: {}",
                    plan.replication.mgn_server_field(i),
                    why(&format!("the MGN source server {id}"))
                ));
            }
        }
    }
    Ok(problems)
}

/// The ALB rule (or, for the default action, the listener) an alb plan shifts, when it does not
/// carry the tag `cutover=<value>`: the roles may ModifyRule / ModifyListener only where it does
/// (template.yaml). Read with ELBv2 DescribeTags.
async fn untagged_alb(
    plan: &Plan,
    value: &str,
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
) -> Result<Vec<String>, String> {
    let Some(a) = &plan.alb else {
        return Ok(vec![]);
    };
    let (field, arn, what) = match &a.rule_arn {
        Some(r) => ("alb.ruleArn", r.as_str(), "the rule"),
        None => ("alb.listenerArn", a.listener_arn.as_str(), "the listener"),
    };
    let out = elbv2
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .map_err(|e| format!("{field}: {}", sdk_err(e)))?;
    let tagged = out.tag_descriptions().iter().any(|d| {
        d.resource_arn() == Some(arn)
            && d.tags()
                .iter()
                .any(|t| t.key() == Some("cutover") && t.value() == Some(value))
    });
    Ok(if tagged {
        vec![]
    } else {
        vec![format!(
            "{field}: {what} {arn} does not carry the tag cutover={value} (the stack's CutoverTagValue): the stack's roles may not change its actions"
        )]
    })
}

/// Approver entries naming one IAM user or role of the stack's account (no wildcard) that IAM
/// does not know (GetUser / GetRole: NoSuchEntity): nobody can present that identity, so the
/// entry admits nobody. An assumed-role session is checked by its role. Groups, wildcards and
/// other accounts' principals cannot be read from here and are left out.
async fn unknown_principals(
    iam: &aws_sdk_iam::Client,
    account: Option<&str>,
    named: &[(String, String)],
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for (field, entry) in named {
        // arn:PARTITION:iam::ACCOUNT:user/NAME | role/NAME; arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION
        let parts: Vec<&str> = entry.splitn(6, ':').collect();
        let [_, _, service, _, acct, resource] = parts[..] else {
            continue;
        };
        if entry.contains('*') || Some(acct) != account {
            continue;
        }
        let mut path = resource.split('/');
        let (kind, name) = match (service, path.next(), path.next()) {
            ("iam", Some("user"), Some(n)) => ("user", resource.rsplit('/').next().unwrap_or(n)),
            ("iam", Some("role"), Some(n)) => ("role", resource.rsplit('/').next().unwrap_or(n)),
            ("sts", Some("assumed-role"), Some(n)) => ("role", n),
            _ => continue,
        };
        // Ok(()) found; Err((no such entity, message)) otherwise.
        let found = if kind == "user" {
            let r = iam.get_user().user_name(name).send().await;
            r.map(|_| ()).map_err(|e| {
                let gone = e
                    .as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception());
                (gone, sdk_err(e))
            })
        } else {
            let r = iam.get_role().role_name(name).send().await;
            r.map(|_| ()).map_err(|e| {
                let gone = e
                    .as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception());
                (gone, sdk_err(e))
            })
        };
        let missing = match found {
            Ok(()) => false,
            Err((true, _)) => true,
            Err((false, message)) => return Err(format!("{field}: {message}")),
        };
        if missing {
            problems.push(format!(
                "{field}: {entry} names IAM {kind} {name}, which account {acct} does not have (NoSuchEntity): the entry admits nobody"
            ));
        }
    }
    Ok(problems)
}

/// One line for an SDK error: its code and message, never a debug structure.
fn sdk_err<E: std::error::Error>(e: E) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// Starts a run: the execution is named by the run id. Returns the execution ARN.
pub fn start(cx: &Context, plan: &Plan, run_id: &str) -> Result<String, String> {
    let machine = cx.need(&cx.stack.state_machine_arn, "CutoverStateMachineArn")?;
    start_execution(cx, machine, run_id, json!({ "plan": plan }))
}

/// StartExecution of `machine` named `name`: the execution's ARN. One name is one execution.
fn start_execution(
    cx: &Context,
    machine: &str,
    name: &str,
    input: Value,
) -> Result<String, String> {
    cx.block_on(async {
        let out = aws_sdk_sfn::Client::new(&cx.sdk)
            .start_execution()
            .state_machine_arn(machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(out.execution_arn().to_string())
    })
}

type RunRead = (
    cutover_core::model::RunRecord,
    Vec<cutover_core::model::AuditEvent>,
    Vec<cutover_core::model::ApprovalRecord>,
);

/// A run's record, audit trail and gates from the run table.
async fn read_run(
    sdk: &aws_config::SdkConfig,
    table: &str,
    run_id: &str,
) -> Result<RunRead, String> {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table);
    let rec = store
        .load_run(run_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("run {run_id} not found in table {table}"))?;
    let events = store.events(run_id).await.map_err(|e| e.to_string())?;
    let approvals = store.approvals(run_id).await.map_err(|e| e.to_string())?;
    Ok((rec, events, approvals))
}

/// What an operator needs at a glance: phase, weights, lag, health, pending gates, outcome, and
/// whether the execution still runs.
pub fn status(cx: &Context, run_id: &str) -> Result<Value, String> {
    let table = cx.need(&cx.stack.table, "RunTableName")?;
    cx.block_on(async {
        let sdk = &cx.sdk;
        let (rec, events, approvals) = read_run(sdk, table, run_id).await?;
        let execution = match &cx.stack.state_machine_arn {
            Some(m) => match SfnExecutions::new(aws_sdk_sfn::Client::new(sdk), m)
                .is_running(run_id)
                .await
            {
                Ok(Some(true)) => "RUNNING",
                Ok(Some(false)) => "ENDED",
                Ok(None) => "NOT_FOUND",
                Err(_) => "UNKNOWN",
            },
            None => "UNKNOWN",
        };
        let last_health = events.iter().rev().find_map(|e| e.healthy);
        // Time in the current phase: since the first of the latest events of the same step.
        let phase_since = events.last().map(|last| {
            events
                .iter()
                .rev()
                .take_while(|e| e.step == last.step)
                .last()
                .map_or(last.at, |e| e.at)
        });
        let now = chrono::Utc::now();
        let in_phase = match (&rec.outcome, phase_since) {
            (None, Some(t)) => Some((now - t).num_seconds().max(0)),
            _ => None,
        };
        let since = events
            .iter()
            .rev()
            .find(|e| e.weights.is_some() || e.event == "validated")
            .map(|e| e.at);
        let progress = crate::report::run_progress(&rec, &events, &approvals, now);
        Ok(json!({
            "runId": rec.run_id,
            "application": rec.application,
            "phase": rec.phase,
            "outcome": rec.outcome,
            "error": rec.error,
            "weights": rec.weights,
            "lagSeconds": rec.last_lag_seconds,
            "lastHealthy": last_health,
            "lastChangeAt": since,
            "timeInPhaseSeconds": in_phase,
            "pendingGates": approvals.iter().filter(|a| a.decision.is_none()).map(|a| json!({"gate": a.gate, "expiresAt": a.expires_at})).collect::<Vec<_>>(),
            "abortRequested": rec.abort_requested,
            "execution": execution,
            "data": rec.data,
            "step": progress.step,
            "steps": progress.steps,
            "bakeEndsAt": progress.bake_ends_at,
            "bakeRemainingSeconds": progress.bake_remaining_seconds,
            "nextAction": progress.next_action,
        }))
    })
}

/// A deployed run's report in the shape `local run --json` prints (so `cutover report` and
/// `--html` render both alike): outcome, timeline from the audit trail, approvals, data.
pub fn report(cx: &Context, run_id: &str) -> Result<Value, String> {
    let table = cx.need(&cx.stack.table, "RunTableName")?;
    cx.block_on(async {
        let (rec, events, approvals) = read_run(&cx.sdk, table, run_id).await?;
        let start = rec.started_at;
        let secs = |t: chrono::DateTime<chrono::Utc>| (t - start).num_milliseconds() as f64 / 1000.0;
        let end = events.iter().map(|e| e.at).max().unwrap_or(start);
        Ok(json!({
            "runId": rec.run_id,
            "application": rec.application,
            "outcome": rec.outcome.clone().unwrap_or_else(|| "running".into()),
            "error": rec.error,
            "cause": null,
            "startedAt": rec.started_at,
            "snapshot": rec.snapshot,
            "links": console_links(cx.stack.state_machine_arn.as_deref(), &rec.run_id),
            "simulatedSeconds": secs(end),
            "stateTransitions": null,
            "lagThresholdSeconds": rec.plan.as_ref().map(|p| p.replication.max_lag_seconds),
            "timeline": events.iter().map(|e| json!({
                "t": secs(e.at), "state": e.step, "event": e.event, "weights": e.weights,
                "lagSeconds": e.lag_seconds, "healthy": e.healthy, "actor": e.actor, "message": e.message,
            })).collect::<Vec<_>>(),
            "approvals": approvals.iter().map(|a| json!({
                "gate": a.gate, "decision": a.decision, "by": a.decided_by,
                "at": a.decided_at.map(secs), "reason": a.reason,
            })).collect::<Vec<_>>(),
            "data": {
                "mode": rec.plan.as_ref().map(|p| p.data.writes.as_str()),
                "freezeSeconds": rec.data.frozen_seconds(end),
                "switchedTo": rec.data.switched_to,
                "pointOfNoReturn": rec.data.point_of_no_return.is_some(),
            },
        }))
    })
}

/// Links to the run's execution, the stack's dashboard and its functions' log groups in the AWS
/// console, from the cutover machine's ARN (`arn:PARTITION:states:REGION:ACCOUNT:stateMachine:NAME`;
/// the template names the dashboard as the machine, `cutover-<Environment>`, and each function's
/// log group `/cutover/<Environment>/<function>`). The console reads the part after `#` with its
/// own escaping: `$` for `%`, and a value escaped twice (`/` is `$252F`). Empty without the ARN.
pub fn console_links(machine_arn: Option<&str>, run_id: &str) -> Value {
    let Some(arn) = machine_arn else {
        return json!({});
    };
    let parts: Vec<&str> = arn.split(':').collect();
    let (Some(region), Some(name)) = (parts.get(3), parts.get(6)) else {
        return json!({});
    };
    if parts.get(5) != Some(&"stateMachine") || region.is_empty() {
        return json!({});
    }
    let execution = format!("{}:execution:{name}:{run_id}", parts[..5].join(":"));
    json!({
        "execution": format!("https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}"),
        "dashboard": format!("https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards/dashboard/{name}"),
        "logs": name.strip_prefix("cutover-").map(|env| format!(
            "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups$3FlogGroupNameFilter$3D$252Fcutover$252F{env}$252F"
        )),
    })
}

/// Runs in the table, newest first: (run id, application, phase, outcome, started at).
pub fn list(cx: &Context, application: Option<&str>, active: bool) -> Result<Vec<Value>, String> {
    let table = cx.need(&cx.stack.table, "RunTableName")?;
    cx.block_on(async {
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&cx.sdk), table);
        Ok(store
            .list_runs(application)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|r| !active || r.outcome.is_none())
            .map(|r| {
                json!({"runId": r.run_id, "application": r.application, "phase": r.phase, "outcome": r.outcome, "startedAt": r.started_at, "weights": r.weights})
            })
            .collect())
    })
}

/// One request to the approval API with the caller's credentials (`GET calendar`, …).
/// Ok((status, answer)) for any answer; the caller decides what a 4xx means.
pub fn api_call(
    cx: &Context,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let base = cx.need(&cx.stack.api_url, "ApprovalApiUrl")?;
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    cx.block_on(async {
        let client = HttpHooks::new(&cx.sdk).map_err(|e| e.to_string())?;
        client
            .call_api_as(method, &url, body, cx.stack.api_token.as_deref())
            .await
            .map_err(|e| e.to_string())
    })
}

/// POSTs to the approval API with the caller's credentials: `approvals/{gate}` or `abort`.
/// Ok((status, answer)) for any answer; the caller decides what a 4xx means.
pub fn api_post(cx: &Context, path: &str, body: &Value) -> Result<(u16, Value), String> {
    let base = cx.need(&cx.stack.api_url, "ApprovalApiUrl")?;
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    cx.block_on(async {
        let client = HttpHooks::new(&cx.sdk).map_err(|e| e.to_string())?;
        client
            .call_api_as("POST", &url, Some(body), cx.stack.api_token.as_deref())
            .await
            .map_err(|e| e.to_string())
    })
}

/// A one-screen summary of `status`.
pub fn describe(s: &Value) -> String {
    let w = &s["weights"];
    let weights = if w.is_null() {
        "blue 100 / green 0".to_string()
    } else {
        format!("blue {} / green {}", w["blue"], w["green"])
    };
    let gates: Vec<String> = s["pendingGates"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| {
                    format!(
                        "{} (until {})",
                        g["gate"].as_str().unwrap_or(""),
                        g["expiresAt"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let in_phase = s["timeInPhaseSeconds"]
        .as_i64()
        .map(|t| format!(" for {}m{:02}s", t / 60, t % 60))
        .unwrap_or_default();
    let step = match (s["step"].as_u64(), s["steps"].as_u64()) {
        (Some(i), Some(n)) if n > 0 => format!("step {i} of {n}; "),
        _ => String::new(),
    };
    let bake = s["bakeRemainingSeconds"]
        .as_i64()
        .map(|t| format!("; bake ends in {}m{:02}s", t / 60, t % 60))
        .unwrap_or_default();
    format!(
        "{} {}: phase {}{in_phase}, outcome {}, execution {}\n  {step}weights {weights}{bake}; lag {}; last health round {}\n  pending gates: {}\n  next: {}",
        s["application"].as_str().unwrap_or(""),
        s["runId"].as_str().unwrap_or(""),
        s["phase"].as_str().unwrap_or(""),
        s["outcome"].as_str().unwrap_or("(running)"),
        s["execution"].as_str().unwrap_or(""),
        s["lagSeconds"].as_f64().map(|l| format!("{l:.1}s")).unwrap_or_else(|| "-".into()),
        match s["lastHealthy"].as_bool() {
            Some(true) => "healthy",
            Some(false) => "UNHEALTHY",
            None => "-",
        },
        if gates.is_empty() { "none".into() } else { gates.join(", ") },
        s["nextAction"].as_str().unwrap_or("-")
    )
}

/// Starts a wave: one execution of the wave machine, named `name`, with the wave as input.
/// Returns the execution ARN. A repeated start of the same name is the same execution.
pub fn wave_start(
    cx: &Context,
    spec: &cutover_core::steps::WaveSpec,
    name: &str,
) -> Result<String, String> {
    let machine = cx.need(&cx.stack.wave_state_machine_arn, "WaveStateMachineArn")?;
    start_execution(cx, machine, name, json!({ "wave": spec }))
}

/// A wave's execution state and, for each of its applications, its run as the run table has it
/// (not started yet, or phase, weights and outcome).
pub fn wave_status(cx: &Context, name: &str) -> Result<Value, String> {
    let machine = cx.need(&cx.stack.wave_state_machine_arn, "WaveStateMachineArn")?;
    let table = cx.need(&cx.stack.table, "RunTableName")?;
    cx.block_on(async {
        let sfn = aws_sdk_sfn::Client::new(&cx.sdk);
        let arn = SfnExecutions::new(sfn.clone(), machine).execution_arn(name);
        let out = sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .map_err(|e| format!("wave execution {name}: {}", sdk_err(e)))?;
        let input: Value = out
            .input()
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or(Value::Null);
        let spec: cutover_core::steps::WaveSpec = serde_json::from_value(input["wave"].clone())
            .map_err(|e| format!("wave execution {name}: its input is not a wave: {e}"))?;
        // A wave that handed over goes on in the execution its output names (`handedOverTo`):
        // follow the chain to the one that runs now, or that closed the wave.
        let (mut status, mut current, mut handovers) =
            (out.status().as_str().to_string(), name.to_string(), 0usize);
        let mut output = out.output().map(str::to_string);
        while let Some(next) = output
            .as_deref()
            .and_then(|o| serde_json::from_str::<Value>(o).ok())
            .and_then(|o| o["handedOverTo"].as_str().map(str::to_string))
        {
            if handovers >= 10_000 {
                break;
            }
            let n = sfn
                .describe_execution()
                .execution_arn(&next)
                .send()
                .await
                .map_err(|e| format!("wave execution {next}: {}", sdk_err(e)))?;
            status = n.status().as_str().to_string();
            current = n.name().unwrap_or_default().to_string();
            output = n.output().map(str::to_string);
            handovers += 1;
        }
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&cx.sdk), table);
        let mut apps = Vec::new();
        for a in &spec.applications {
            let rec = store.load_run(&a.run_id).await.map_err(|e| e.to_string())?;
            apps.push(match rec {
                None => json!({"application": a.application, "runId": a.run_id, "phase": "not started", "outcome": null, "weights": null, "dependsOn": a.depends_on}),
                Some(r) => json!({"application": a.application, "runId": a.run_id, "phase": r.phase, "outcome": r.outcome, "error": r.error, "weights": r.weights, "dependsOn": a.depends_on}),
            });
        }
        Ok(json!({
            "wave": spec.wave,
            "execution": name,
            "status": status,
            "currentExecution": current,
            "handovers": handovers,
            "startedAt": out.start_date().to_string(),
            "applications": apps,
        }))
    })
}

/// A one-screen summary of `wave_status`: one line per application.
pub fn describe_wave(s: &Value) -> String {
    let mut lines = vec![format!(
        "wave {} ({}): {}",
        s["wave"].as_str().unwrap_or(""),
        s["execution"].as_str().unwrap_or(""),
        s["status"].as_str().unwrap_or("")
    )];
    for a in s["applications"].as_array().into_iter().flatten() {
        let w = &a["weights"];
        let weights = if w.is_null() {
            "-".to_string()
        } else {
            format!("blue {} / green {}", w["blue"], w["green"])
        };
        lines.push(format!(
            "  {:<24} {:<22} {:<14} {}",
            a["application"].as_str().unwrap_or(""),
            a["phase"].as_str().unwrap_or(""),
            a["outcome"].as_str().unwrap_or("(running)"),
            weights
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_how_long_the_run_has_been_in_its_phase() {
        let s = json!({"application": "orders", "runId": "r1", "phase": "shifting", "timeInPhaseSeconds": 754,
            "outcome": null, "execution": "RUNNING", "weights": {"blue": 90, "green": 10}, "lagSeconds": 2.5,
            "lastHealthy": true, "pendingGates": [{"gate": "before-50", "expiresAt": "2026-12-05T03:00:00Z"}]});
        let text = describe(&s);
        assert!(text.contains("phase shifting for 12m34s"), "{text}");
        assert!(
            text.contains("blue 90 / green 10")
                && text.contains("before-50 (until 2026-12-05T03:00:00Z)"),
            "{text}"
        );
        let ended = describe(
            &json!({"phase": "closed", "outcome": "completed", "timeInPhaseSeconds": null}),
        );
        assert!(ended.contains("phase closed, outcome completed"), "{ended}");
    }
}

/// One line of a run's logs: when, which function wrote it, and the line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub at: chrono::DateTime<chrono::Utc>,
    pub function: String,
    pub message: String,
}

/// The deployment's name that the log groups carry: `--environment`, else the stack's
/// `Environment` parameter (with `--stack`).
pub fn log_environment(cx: &Context, flag: Option<&str>) -> Result<String, String> {
    flag.map(str::to_string)
        .or_else(|| cx.parameters.get("Environment").cloned())
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            "--stack NAME (whose Environment parameter names the log groups) or --environment is required".into()
        })
}

/// The run's lines written at or after `after_ms` (epoch milliseconds), oldest first, from every
/// function's log group, `/cutover/<environment>/<function>` (template.yaml): CloudWatch Logs
/// FilterLogEvents with the run id as a quoted term (filter pattern syntax:
/// https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html), every
/// page read. A group a function has not written yet is skipped.
pub fn run_logs(
    cx: &Context,
    environment: &str,
    run_id: &str,
    after_ms: i64,
) -> Result<Vec<LogLine>, String> {
    cx.block_on(async {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&cx.sdk);
        let mut lines = Vec::new();
        for f in cutover_core::steps::registry::REGISTRY {
            let group = format!("/cutover/{environment}/{}", f.name);
            let mut token: Option<String> = None;
            loop {
                let page = logs
                    .filter_log_events()
                    .log_group_name(&group)
                    .filter_pattern(format!("\"{run_id}\""))
                    .start_time(after_ms)
                    .set_next_token(token.clone())
                    .send()
                    .await;
                let page = match page {
                    Ok(p) => p,
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        break
                    }
                    Err(e) => return Err(format!("{group}: {}", sdk_err(e))),
                };
                for e in page.events() {
                    let message = e.message().unwrap_or_default();
                    // The run id as a whole word of the line, not a longer id it begins.
                    if !contains_word(message, run_id) {
                        continue;
                    }
                    let at = chrono::DateTime::from_timestamp_millis(e.timestamp().unwrap_or(0))
                        .unwrap_or_default();
                    lines.push(LogLine {
                        at,
                        function: f.name.to_string(),
                        message: message.trim_end().to_string(),
                    });
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        lines.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.function.cmp(&b.function)));
        Ok(lines)
    })
}

/// Whether `word` occurs in `text` with no letter, digit, `-` or `_` right before or after it.
fn contains_word(text: &str, word: &str) -> bool {
    let part =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    text.match_indices(word).any(|(i, _)| {
        !part(text[..i].chars().next_back()) && !part(text[i + word.len()..].chars().next())
    })
}

/// Whether the run has recorded an outcome (`run logs --follow` stops then).
pub fn run_ended(cx: &Context, run_id: &str) -> Result<bool, String> {
    let table = cx.need(&cx.stack.table, "RunTableName")?;
    cx.block_on(async {
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&cx.sdk), table);
        Ok(store
            .load_run(run_id)
            .await
            .map_err(|e| e.to_string())?
            .is_some_and(|r| r.outcome.is_some()))
    })
}

#[cfg(test)]
mod console_link_tests {
    use super::console_links;

    #[test]
    fn a_deployed_run_links_to_its_execution_dashboard_and_log_groups() {
        let l = console_links(
            Some("arn:aws:states:eu-west-1:123456789012:stateMachine:cutover-prod"),
            "orders-1",
        );
        assert_eq!(
            l["execution"],
            "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states:eu-west-1:123456789012:execution:cutover-prod:orders-1"
        );
        assert_eq!(
            l["dashboard"],
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/cutover-prod"
        );
        // The log groups /cutover/prod/…, in the console's own escaping.
        assert_eq!(
            l["logs"],
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups$3FlogGroupNameFilter$3D$252Fcutover$252Fprod$252F"
        );
        assert_eq!(console_links(None, "orders-1"), serde_json::json!({}));
        assert_eq!(
            console_links(Some("arn:aws:lambda:eu-west-1:1:function:x"), "r"),
            serde_json::json!({})
        );
    }
}
