//! Static checks of `template.yaml` against the code: substitutions, functions and their crates,
//! sample events, and least privilege (no mutating action on `Resource: "*"` but the documented
//! exceptions; record-level Route 53 conditions; tag conditions on DMS and MGN mutations).

use cutover_core::steps::registry::{substitutions_of, Machine, Port, REGISTRY};
use serde_norway::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn template() -> Value {
    serde_norway::from_str(&std::fs::read_to_string(root().join("template.yaml")).unwrap())
        .expect("template.yaml parses")
}

/// `!GetAtt X.Arn` (a tagged scalar) -> "X".
fn get_att_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "!GetAtt" => t
            .value
            .as_str()
            .and_then(|s| {
                s.strip_suffix(".Arn")
                    .or_else(|| s.strip_suffix(".StreamArn"))
            })
            .map(str::to_string),
        _ => None,
    }
}

fn resources(t: &Value) -> Vec<(String, Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

fn functions(t: &Value) -> Vec<(String, String)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(id, r)| (id, r["Properties"]["CodeUri"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn asl_substitutions_match_the_template_both_ways() {
    let t = template();
    let fns: BTreeSet<String> = functions(&t).into_iter().map(|(id, _)| id).collect();
    let machines: BTreeSet<String> = resources(&t)
        .into_iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::StateMachine")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(machines.len(), 2, "the cutover and the wave machine");
    for (_, sm) in resources(&t)
        .into_iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::StateMachine")
    {
        let uri = sm["Properties"]["DefinitionUri"].as_str().unwrap();
        let asl = std::fs::read_to_string(root().join(uri)).unwrap();
        let used: BTreeSet<String> = asl
            .split("${")
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .map(str::to_string)
            .collect();
        let subs = sm["Properties"]["DefinitionSubstitutions"]
            .as_mapping()
            .unwrap();
        let defined: BTreeSet<String> = subs
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            used, defined,
            "{uri}: ${{…}} used vs DefinitionSubstitutions defined"
        );
        for (k, v) in subs {
            match (get_att_target(v), v) {
                (Some(target), _) => assert!(
                    fns.contains(&target),
                    "{k:?} names {target}, which is not a function of the template"
                ),
                (None, Value::Tagged(t)) if t.tag == "!Ref" => {
                    assert!(
                        machines.contains(t.value.as_str().unwrap()),
                        "{k:?} must reference a state machine of the template"
                    )
                }
                _ => panic!("{k:?} must be !GetAtt <Function>.Arn or !Ref <StateMachine>"),
            }
        }
    }
}

#[test]
fn every_function_has_its_crate_bin_and_sample_event() {
    let t = template();
    let fns = functions(&t);
    let mut names = BTreeSet::new();
    for (id, code_uri) in &fns {
        let dir = root().join(code_uri);
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap_or_else(|_| panic!("{id}: no crate at {code_uri}"));
        let name = code_uri
            .strip_prefix("functions/")
            .unwrap_or_else(|| panic!("{id}: CodeUri must be functions/<name>"));
        assert!(
            cargo.contains(&format!("name = \"{name}\"")),
            "{id}: the bin of {code_uri} must be named {name}"
        );
        assert!(
            root().join("events").join(format!("{name}.json")).is_file(),
            "{id}: events/{name}.json is missing"
        );
        assert!(
            names.insert(name.to_string()),
            "bin names are unique: {name}"
        );
        // Its binary serves its own step with that step's runner, so it links no other step.
        if name != "approval-api" {
            let main: String = std::fs::read_to_string(dir.join("src/main.rs"))
                .unwrap()
                .split_whitespace()
                .collect::<String>()
                .replace(",)", ")");
            let serve = format!(
                "serve(\"{name}\",cutover_lambda::steps::{})",
                name.replace('-', "_")
            );
            assert!(
                main.contains(&serve),
                "{code_uri}/src/main.rs must call {serve}"
            );
            assert!(
                cutover_core::steps::runner(name).is_some(),
                "{name}: no runner"
            );
        }
    }
    let expected: BTreeSet<String> = REGISTRY.iter().map(|f| f.name.to_string()).collect();
    assert_eq!(
        names, expected,
        "template functions vs the registry of functions"
    );
    // The substitution key each step is known by leads to that step's function.
    let subs_of = |machine: &str| {
        resources(&t)
            .into_iter()
            .find(|(id, _)| id == machine)
            .unwrap()
            .1["Properties"]["DefinitionSubstitutions"]
            .clone()
    };
    for (machine, kind) in [
        ("CutoverStateMachine", Machine::Cutover),
        ("WaveStateMachine", Machine::Wave),
    ] {
        let subs = subs_of(machine);
        for (step, key) in substitutions_of(kind) {
            let target =
                get_att_target(&subs[key]).unwrap_or_else(|| panic!("{machine}: {key} missing"));
            let code_uri = &fns.iter().find(|(id, _)| *id == target).unwrap().1;
            assert_eq!(
                code_uri,
                &format!("functions/{step}"),
                "{key} must point at the {step} function"
            );
        }
    }
}

/// The IAM actions that show a role is built for a port: present exactly when the function uses
/// the port. (The HTTP probe needs no IAM; DMS reads also serve the metrics port's dimension
/// lookup, so MGN, a DMS start/stop or the table statistics is what marks the replication port.)
fn port_marker(port: Port) -> &'static [&'static str] {
    match port {
        Port::Router => &["route53:"],
        Port::LoadBalancer => &["elasticloadbalancing:"],
        Port::Replication => &[
            "mgn:",
            "dms:StartReplicationTask",
            "dms:StopReplicationTask",
            "dms:DescribeTableStatistics",
        ],
        Port::Metrics => &["cloudwatch:"],
        Port::Probe => &[],
        Port::Notifier => &["sns:Publish"],
        Port::Callbacks => &["states:SendTask"],
        Port::Schedules => &["scheduler:"],
        Port::Hooks => &["lambda:InvokeFunction"],
        Port::Executions => &["states:DescribeExecution"],
        Port::Secrets => &["secretsmanager:GetSecretValue", "ssm:GetParameter"],
        Port::Vault => &["kms:Encrypt", "kms:Decrypt"],
        Port::Accounts => &["sts:AssumeRole"],
        Port::Bus => &["events:PutEvents"],
    }
}

/// What a function's code calls, what its crate links and what its role allows come from one
/// registry: a function wired without a port it calls (or allowed one it never uses) fails here.
#[test]
fn wiring_features_and_iam_agree_with_the_registry() {
    let t = template();
    let fns = functions(&t);
    let all = statements(&t);
    for f in REGISTRY {
        let cargo =
            std::fs::read_to_string(root().join("functions").join(f.name).join("Cargo.toml"))
                .unwrap();
        let line = cargo
            .lines()
            .find(|l| l.starts_with("cutover-lambda"))
            .unwrap_or_else(|| panic!("{}: no cutover-lambda dependency", f.name));
        let features: BTreeSet<String> = line
            .split("features = [")
            .nth(1)
            .and_then(|s| s.split(']').next())
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let wanted: BTreeSet<String> = f.ports.iter().map(|p| p.feature().to_string()).collect();
        assert_eq!(
            features, wanted,
            "{}: cargo features vs registry ports",
            f.name
        );
        let needs = cutover_lambda::needs(f.name);
        assert_eq!(
            [
                needs.router,
                needs.load_balancer,
                needs.replication,
                needs.metrics,
                needs.probe,
                needs.notifier,
                needs.callbacks,
                needs.hooks,
                needs.executions,
                needs.secrets,
                needs.vault,
                needs.accounts,
                needs.bus
            ],
            [
                Port::Router,
                Port::LoadBalancer,
                Port::Replication,
                Port::Metrics,
                Port::Probe,
                Port::Notifier,
                Port::Callbacks,
                Port::Hooks,
                Port::Executions,
                Port::Secrets,
                Port::Vault,
                Port::Accounts,
                Port::Bus
            ]
            .map(|p| f.uses(p)),
            "{}: wiring vs registry",
            f.name
        );
        let id = &fns
            .iter()
            .find(|(_, uri)| *uri == format!("functions/{}", f.name))
            .unwrap_or_else(|| panic!("{}: not in the template", f.name))
            .0;
        let actions: Vec<String> = all
            .iter()
            .filter(|(sid, _)| sid == id)
            .flat_map(|(_, s)| actions(s))
            .collect();
        for port in Port::ALL {
            let markers = port_marker(port);
            if markers.is_empty() {
                continue;
            }
            let marker = markers.join("|");
            let allowed = actions
                .iter()
                .any(|a| markers.iter().any(|m| a.starts_with(m)));
            assert_eq!(
                allowed,
                f.uses(port),
                "{}: IAM {marker}* is {} but the registry says the function {} the {port:?} port",
                f.name,
                if allowed { "allowed" } else { "missing" },
                if f.uses(port) { "uses" } else { "does not use" }
            );
        }
    }
}

/// AWS offers no resource-level permissions for these; each is explained where it is granted.
const DOCUMENTED_STAR_EXCEPTIONS: &[&str] = &[
    "dynamodb:ListStreams",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
];

fn is_read_only(action: &str) -> bool {
    let verb = action.split(':').nth(1).unwrap_or_default();
    ["Describe", "Get", "List"]
        .iter()
        .any(|p| verb.starts_with(p))
}

fn statements(t: &Value) -> Vec<(String, Value)> {
    let mut out = vec![];
    for (id, r) in resources(t) {
        for p in r["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for s in p["Statement"].as_sequence().into_iter().flatten() {
                // A conditional statement (`!If [cond, statement, !Ref AWS::NoValue]`) is
                // checked as if its condition held: the stricter reading.
                let s = match s {
                    Value::Tagged(t) if t.tag == "!If" => t.value[1].clone(),
                    other => other.clone(),
                };
                out.push((id.clone(), s));
            }
        }
    }
    out
}

fn actions(s: &Value) -> Vec<String> {
    match &s["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Sequence(v) => v.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
        other => panic!("Action must be a string or a list: {other:?}"),
    }
}

#[test]
fn no_mutating_action_on_every_resource_but_the_documented_exceptions() {
    let t = template();
    let all = statements(&t);
    assert!(all.len() > 20, "the template's policies were found");
    for (id, s) in &all {
        assert_eq!(s["Effect"], "Allow", "{id}: only Allow statements");
        for a in actions(s) {
            assert!(!a.contains('*'), "{id}: wildcard action {a}");
            if s["Resource"] == "*" {
                assert!(
                    is_read_only(&a) || DOCUMENTED_STAR_EXCEPTIONS.contains(&a.as_str()),
                    "{id}: mutating {a} on Resource \"*\""
                );
            }
        }
    }
}

#[test]
fn mutations_are_scoped_by_condition_keys() {
    let t = template();
    for (id, s) in statements(&t) {
        let acts = actions(&s);
        if acts.iter().any(|a| a == "route53:ChangeResourceRecordSets") {
            let c = &s["Condition"]["ForAllValues:StringEquals"];
            for key in [
                "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                "route53:ChangeResourceRecordSetsRecordTypes",
                "route53:ChangeResourceRecordSetsActions",
            ] {
                assert!(
                    !c[key].is_null(),
                    "{id}: ChangeResourceRecordSets without {key}"
                );
            }
            assert!(
                !c["route53:ChangeResourceRecordSetsActions"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|a| a == "CREATE"),
                "{id}: needs only DELETE and UPSERT"
            );
        }
        if acts.iter().any(|a| {
            [
                "dms:StartReplicationTask",
                "dms:StopReplicationTask",
                "mgn:StartCutover",
                "mgn:FinalizeCutover",
            ]
            .contains(&a.as_str())
        }) {
            assert!(
                !s["Condition"]["StringEquals"]["aws:ResourceTag/cutover"].is_null(),
                "{id}: {acts:?} without the cutover tag condition"
            );
        }
        // ListStreams takes no resource scope; every other DynamoDB action is the run table's.
        if acts
            .iter()
            .any(|a| a.starts_with("dynamodb:") && a != "dynamodb:ListStreams")
        {
            assert_eq!(
                get_att_target(&s["Resource"]).as_deref(),
                Some("RunTable"),
                "{id}: DynamoDB only on the run table"
            );
        }
    }
}

#[test]
fn stateful_resources_are_kept_and_logs_hold_no_execution_data() {
    let t = template();
    let r = &t["Resources"];
    assert_eq!(r["RunTable"]["DeletionPolicy"], "Retain");
    assert_eq!(
        r["RunTable"]["Properties"]["BillingMode"],
        "PAY_PER_REQUEST"
    );
    assert_eq!(
        r["RunTable"]["Properties"]["PointInTimeRecoverySpecification"]
            ["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(
        r["RunTable"]["Properties"]["SSESpecification"]["SSEEnabled"],
        true
    );
    assert_eq!(
        r["CutoverStateMachine"]["Properties"]["Logging"]["IncludeExecutionData"], false,
        "task tokens must not reach the logs"
    );
    assert_eq!(
        r["CutoverStateMachine"]["Properties"]["Tracing"]["Enabled"],
        true
    );
    assert_eq!(t["Globals"]["Function"]["Runtime"], "provided.al2023");
    assert_eq!(t["Parameters"]["Architecture"]["Default"], "arm64");
}

#[test]
fn every_api_route_is_authenticated() {
    let t = template();
    let routes: Vec<(String, Value)> = resources(&t)
        .into_iter()
        .filter(|(_, r)| r["Type"] == "AWS::ApiGatewayV2::Route")
        .collect();
    let mut keys: Vec<&str> = routes
        .iter()
        .map(|(_, r)| r["Properties"]["RouteKey"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    let mut served = cutover_core::api::ROUTES.to_vec();
    served.sort_unstable();
    assert_eq!(
        keys, served,
        "the template declares every route the API serves, and no other"
    );
    for (id, r) in routes {
        let auth = &r["Properties"]["AuthorizationType"];
        let Value::Tagged(tag) = auth else {
            panic!("{id}: AuthorizationType must choose between AWS_IAM and JWT")
        };
        assert_eq!(tag.tag, "!If");
        let options: Vec<&str> = tag.value.as_sequence().unwrap()[1..]
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(options, ["JWT", "AWS_IAM"], "{id}: never NONE");
        assert!(
            !r["Properties"]["AuthorizationScopes"].is_null(),
            "{id}: a JWT must carry the scope"
        );
    }
}

/// The dashboard draws every metric the steps publish, and every alarm pages the notice topic.
#[test]
fn the_dashboard_draws_every_step_metric_and_alarms_page() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let t = template();
    let resources = t["Resources"].as_mapping().unwrap();
    let board = resources
        .values()
        .find(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Dashboard"))
        .expect("a dashboard");
    let body = serde_norway::to_string(&board["Properties"]["DashboardBody"]).unwrap();
    for m in cutover_lambda::STEP_METRICS {
        assert!(body.contains(m), "the dashboard does not draw {m}");
    }
    let alarms: Vec<&Value> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .collect();
    assert!(
        alarms.len() >= 3,
        "rollback failed, approval expired, safety net"
    );
    for a in alarms {
        assert!(
            serde_norway::to_string(&a["Properties"]["AlarmActions"])
                .unwrap()
                .contains("ApprovalTopic"),
            "{:?} pages nobody",
            a["Properties"]["AlarmName"]
        );
    }
    assert!(text.contains("METRICS_ENVIRONMENT: !Ref Environment"));
}

/// `sam delete` then `sam deploy` again must work: a resource kept after the stack is deleted
/// must not carry a fixed name, or the second deploy fails on the name already taken. A name
/// made from the stack's id is unique per stack creation.
#[test]
fn nothing_retained_has_a_fixed_name_so_a_redeploy_after_delete_works() {
    const NAME_PROPERTIES: [&str; 8] = [
        "TableName",
        "LogGroupName",
        "TopicName",
        "BucketName",
        "QueueName",
        "FunctionName",
        "StateMachineName",
        "AlarmName",
    ];
    let mut retained = 0;
    for (id, r) in resources(&template()) {
        if r["DeletionPolicy"].as_str() != Some("Retain") {
            continue;
        }
        retained += 1;
        for p in NAME_PROPERTIES {
            let name = &r["Properties"][p];
            if name.is_null() {
                continue;
            }
            let text = serde_norway::to_string(name).unwrap();
            assert!(
                text.contains("AWS::StackId"),
                "{id} is retained and named {text}: a redeploy after sam delete would fail on it"
            );
        }
    }
    assert!(
        retained >= 2,
        "the run table and the state machine's logs are kept"
    );
}

/// The run sweep is scheduled with an input the step accepts, and each of its findings pages.
#[test]
fn the_run_sweep_is_scheduled_and_its_findings_page() {
    let t = template();
    let sweep = &t["Resources"]["ReconcileRunFunction"]["Properties"]["Events"]["Sweep"];
    assert_eq!(sweep["Type"], "Schedule");
    let input = serde_norway::to_string(&sweep["Properties"]["Input"]).unwrap();
    assert!(
        input.contains(r#"{"sweep": {"warnBeforeSeconds": ${ApprovalWarningSeconds}}}"#),
        "{input}"
    );
    let alarms: Vec<String> = resources(&t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .filter_map(|(_, r)| r["Properties"]["MetricName"].as_str().map(str::to_string))
        .collect();
    for m in [
        "RunStuck",
        "LockHeldByFinishedExecution",
        "ApprovalExpiring",
        "RollbackFailed",
        "ApprovalExpired",
    ] {
        assert!(alarms.iter().any(|a| a == m), "no alarm on {m}");
    }
    // The probing functions can be put in the operator's subnets for private green endpoints.
    for f in ["ValidateCutoverFunction", "RunHealthCheckFunction"] {
        let vpc = serde_norway::to_string(&t["Resources"][f]["Properties"]["VpcConfig"]).unwrap();
        assert!(
            vpc.contains("HasProbeVpc") && vpc.contains("ProbeSubnetIds"),
            "{f}: {vpc}"
        );
    }
}

/// SAM's build cache is keyed on each function's own directory (functions/<name>), not on the
/// crates every function shares: with it on, `sam build` after a change to crates/core would
/// package the functions built before the change, and `sam deploy` would ship them. Parallel
/// builds share one cargo target directory and race when cargo lambda moves each binary out.
#[test]
fn samconfig_turns_on_neither_sams_build_cache_nor_parallel_builds() {
    let config = std::fs::read_to_string(root().join("samconfig.toml")).unwrap();
    for (n, line) in config.lines().enumerate() {
        let setting: String = line
            .split('#')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        assert_ne!(
            setting,
            "cached=true",
            "samconfig.toml line {}: SAM's build cache would deploy stale functions",
            n + 1
        );
        assert_ne!(
            setting,
            "parallel=true",
            "samconfig.toml line {}: parallel builds race in the shared target directory",
            n + 1
        );
    }
}

/// The environment variables one function gets from the template: the Globals' and its own.
fn environment_of(t: &Value, logical_id: &str) -> BTreeSet<String> {
    let keys = |v: &Value| -> Vec<String> {
        v.as_mapping()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut names: BTreeSet<String> = keys(&t["Globals"]["Function"]["Environment"]["Variables"])
        .into_iter()
        .collect();
    names.extend(keys(
        &t["Resources"][logical_id]["Properties"]["Environment"]["Variables"],
    ));
    names
}

/// Every variable a function cannot start without (derived from its ports in the registry, the
/// list its init checks) is declared for it in the template: a function whose init would exit
/// with `Missing(..)` on AWS fails here, named with the variable.
#[test]
fn every_function_gets_the_environment_its_ports_require() {
    let t = template();
    let fns = functions(&t);
    let mut missing = Vec::new();
    for f in REGISTRY {
        let id = &fns
            .iter()
            .find(|(_, uri)| *uri == format!("functions/{}", f.name))
            .unwrap_or_else(|| panic!("{}: not in the template", f.name))
            .0;
        let declared = environment_of(&t, id);
        for name in f.required_env() {
            if !declared.contains(name) {
                missing.push(format!(
                    "{} ({id}) reads {name}, which template.yaml does not give it",
                    f.name
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// `!Ref X` (a tagged scalar) -> "X".
fn ref_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str().map(str::to_string),
        _ => None,
    }
}

/// Every function logs to a group of its own that expires after `LogRetentionDays` and is
/// deleted with the stack (docs/deploy.md, "Logs"); Lambda's own /aws/lambda group would never
/// expire and would outlive `sam delete`.
#[test]
fn every_function_logs_to_its_own_group_that_expires_and_goes_with_the_stack() {
    let t = template();
    let r = &t["Resources"];
    let mut groups = BTreeSet::new();
    for (id, _) in functions(&t) {
        let group = ref_target(&r[id.as_str()]["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id} names no log group of the stack"));
        let g = &r[group.as_str()];
        assert_eq!(g["Type"], "AWS::Logs::LogGroup", "{id}: {group}");
        assert_eq!(g["DeletionPolicy"], "Delete", "{group} goes with the stack");
        assert_eq!(
            ref_target(&g["Properties"]["RetentionInDays"]).as_deref(),
            Some("LogRetentionDays"),
            "{group} expires"
        );
        let name = serde_norway::to_string(&g["Properties"]["LogGroupName"]).unwrap();
        assert!(
            name.contains("${Environment}") && !name.contains("/aws/lambda/"),
            "{group} is named per deployment, apart from Lambda's own group: {name}"
        );
        assert!(groups.insert(group.clone()), "{group} is shared");
    }
    assert_eq!(groups.len(), cutover_core::steps::registry::REGISTRY.len());
    // The global logging settings still reach every function (SAM merges Globals' maps with a
    // function's own).
    assert_eq!(
        t["Globals"]["Function"]["LoggingConfig"]["LogFormat"],
        "JSON"
    );
}

/// Two deployments of different `Environment` names share an account and region: every name
/// the template fixes carries the name, and the name is free-form within the shortest limit
/// (Lambda function names, 64 characters, with the longest suffix the template gives).
#[test]
fn every_fixed_name_carries_the_environment_so_stacks_share_an_account() {
    const NAME_PROPERTIES: [&str; 8] = [
        "FunctionName",
        "LogGroupName",
        "TopicName",
        "AlarmName",
        "DashboardName",
        "TableName",
        "QueueName",
        "Name",
    ];
    let t = template();
    let env = &t["Parameters"]["Environment"];
    assert!(
        env["AllowedValues"].is_null(),
        "any deployment name, not a fixed list"
    );
    let pattern = env["AllowedPattern"].as_str().unwrap();
    assert_eq!(pattern, "^[a-z][a-z0-9-]{0,15}$");
    let mut named = 0;
    for (id, r) in resources(&t) {
        if r["Type"] == "AWS::ApiGatewayV2::Authorizer" {
            // An authorizer's name is local to its API.
            continue;
        }
        for p in NAME_PROPERTIES {
            let name = &r["Properties"][p];
            if !name.is_string() && !matches!(name, Value::Tagged(_)) {
                continue;
            }
            let text = serde_norway::to_string(name).unwrap();
            named += 1;
            // `!Ref`: a reference to another resource of the stack (a permission's function).
            assert!(
                text.contains("${Environment}") || text.starts_with("!Ref"),
                "{id}.{p} is fixed without the deployment's name: {text}"
            );
            if p == "FunctionName" && text.contains("${Environment}") {
                let suffix = text
                    .split("${Environment}")
                    .nth(1)
                    .unwrap()
                    .trim_end()
                    .trim_end_matches('"');
                assert!(
                    "cutover-".len() + 16 + suffix.len() <= 64,
                    "{id}: the longest Environment makes its name too long"
                );
            }
        }
    }
    assert!(named >= 30, "{named} names checked");
}
