//! What every step function shares: a typed config read once, SDK clients built once per sandbox
//! (only those the step uses), the first connection warmed during init, and one handler that runs
//! the step and turns its error into the name the state machine matches.

mod config;
mod unconfigured;

pub use config::{Config, ConfigError};
/// Each function's runner, for its binary to name (`serve("validate-cutover",
/// steps::validate_cutover)`).
pub use cutover_core::steps::run as steps;
pub use unconfigured::Unconfigured;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use cutover_aws::*;
use cutover_core::api::{handle_api_with, ApiRequest, ApiResponse};
use cutover_core::steps::registry::{self, Port};
use cutover_core::steps::Deps;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

/// The ports a function touches, from the registry; the rest are `Unconfigured` (and absent
/// from its IAM role and its cargo features, which a test checks against the same registry).
pub fn needs(function: &str) -> Needs {
    let f = registry::function(function);
    let uses = |p: Port| f.is_some_and(|f| f.uses(p));
    Needs {
        router: uses(Port::Router),
        load_balancer: uses(Port::LoadBalancer),
        replication: uses(Port::Replication),
        metrics: uses(Port::Metrics),
        probe: uses(Port::Probe),
        notifier: uses(Port::Notifier),
        callbacks: uses(Port::Callbacks),
        hooks: uses(Port::Hooks),
        executions: uses(Port::Executions),
        secrets: uses(Port::Secrets),
        vault: uses(Port::Vault),
        accounts: uses(Port::Accounts),
        bus: uses(Port::Bus),
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Needs {
    pub router: bool,
    pub load_balancer: bool,
    pub replication: bool,
    pub metrics: bool,
    pub probe: bool,
    pub notifier: bool,
    pub callbacks: bool,
    pub hooks: bool,
    pub executions: bool,
    pub secrets: bool,
    pub vault: bool,
    pub accounts: bool,
    pub bus: bool,
}

/// Builds the ports for `step` from one SDK config. A port the function was built without
/// (see the crate's features) is `Unconfigured`, so its SDK client is not linked in at all.
pub async fn build_deps(
    step: &str,
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<Deps, ConfigError> {
    let n = needs(step);
    let none = Arc::new(Unconfigured(step.to_string()));
    // Missing settings fail the init before anything is called: every variable the registry
    // derives from the function's ports (the template declares the same list, tested).
    if let Some(spec) = registry::function(step) {
        if let Some(missing) = spec
            .required_env()
            .into_iter()
            .find(|name| config.value(name).is_none())
        {
            return Err(ConfigError::Missing(missing));
        }
    }
    let topic = config.topic_arn.as_deref().filter(|_| n.notifier);
    let machine = config
        .cutover_state_machine_arn
        .as_deref()
        .filter(|_| n.executions);

    // The warm-up, first and timed on its own: what the first invocation would otherwise pay.
    // The first SDK client loads the SDK's trust store (the system's certificates), one
    // DynamoDB read opens the connection, and the HTTPS client of the probe or the hooks loads
    // its own trust store.
    let started = std::time::Instant::now();
    let dynamo = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        &config.table_name,
    ));
    dynamo.warm_up().await;
    let probe = if n.probe {
        ports::probe(config)?.unwrap_or(none.clone())
    } else {
        none.clone()
    };
    let hooks = if n.hooks {
        ports::hooks(sdk)?.unwrap_or(none.clone())
    } else {
        none.clone()
    };
    tracing::info!(
        warm_up_micros = started.elapsed().as_micros() as u64,
        "init: warm-up done"
    );

    // The other ports: their SDK clients are built on first use.
    let store: Arc<dyn cutover_core::ports::RunStore> = dynamo;
    let clock: Arc<dyn cutover_core::ports::Clock> = Arc::new(SystemClock);
    let router = match n.router.then(|| ports::router(sdk, config)).flatten() {
        // Every Route 53 request of every execution books its slot of the account's budget in
        // the run table first (cutover_core::budget).
        Some(r) => cutover_core::budget::BudgetedRouter::wrap(
            r,
            store.clone(),
            clock.clone(),
            config.route53_requests_per_second,
            config.route53_coordination,
        ),
        None => none.clone(),
    };
    let load_balancer = if n.load_balancer {
        ports::load_balancer(sdk).unwrap_or(none.clone())
    } else {
        none.clone()
    };
    let notifier = match topic {
        Some(topic) => {
            ports::notifier(sdk, topic, config.approval_api_url.clone()).unwrap_or(none.clone())
        }
        None => none.clone(),
    };
    let executions = match machine {
        Some(machine) => ports::executions(sdk, machine).unwrap_or(none.clone()),
        None => none.clone(),
    };
    let mut shared = ports::Shared::default();
    let replication = if n.replication {
        ports::replication(&mut shared, sdk, config).unwrap_or(none.clone())
    } else {
        none.clone()
    };
    let metrics = if n.metrics {
        ports::metrics(&mut shared, sdk, config).unwrap_or(none.clone())
    } else {
        none.clone()
    };
    let secrets = if n.secrets {
        ports::secrets(sdk)?.unwrap_or(none.clone())
    } else {
        none.clone()
    };
    let vault = match config.token_key_arn.as_deref().filter(|_| n.vault) {
        Some(key) => ports::vault(sdk, key)?.unwrap_or(none.clone()),
        None => none.clone(),
    };
    let callbacks = if n.callbacks {
        ports::callbacks(sdk).unwrap_or(none.clone())
    } else {
        none.clone()
    };

    // Other accounts' resources (plan sections naming a roleArn): the same ports over the
    // credentials of the assumed role, cached until shortly before they expire, and another
    // account's Route 53 behind its own budget.
    let accounts: Arc<dyn cutover_core::accounts::Accounts> = if n.accounts {
        match ports::accounts(sdk, config, n) {
            Some(sts) => {
                let (store, clock_b, rate, coordination) = (
                    store.clone(),
                    clock.clone(),
                    config.route53_requests_per_second,
                    config.route53_coordination,
                );
                cutover_core::accounts::Cached::new(
                    sts,
                    clock.clone(),
                    Some(Arc::new(move |router, account: &str| {
                        cutover_core::budget::BudgetedRouter::wrap_in(
                            router,
                            store.clone(),
                            clock_b.clone(),
                            rate,
                            coordination,
                            Some(account),
                        )
                    })),
                )
            }
            None => Arc::new(cutover_core::accounts::NoAccounts),
        }
    } else {
        Arc::new(cutover_core::accounts::NoAccounts)
    };

    let bus: Arc<dyn cutover_core::events::Bus> = if n.bus {
        ports::bus(sdk).unwrap_or(Arc::new(cutover_core::events::NoBus))
    } else {
        Arc::new(cutover_core::events::NoBus)
    };

    Ok(Deps {
        stack: config.stack.clone(),
        clock,
        store,
        router,
        load_balancer,
        replication,
        metrics,
        probe,
        notifier,
        callbacks,
        hooks,
        executions,
        secrets,
        vault,
        accounts,
        bus,
        sent: Default::default(),
    })
}

/// One constructor per port, each compiled only with its feature.
mod ports {
    use super::*;
    use cutover_core::ports::*;

    /// A client of the function's SDK configuration, built on its first call: the init builds
    /// no client but the warm-up's, and an invocation only those it calls.
    #[cfg(any(
        feature = "bus",
        feature = "route53",
        feature = "elbv2",
        feature = "replication",
        feature = "metrics",
        feature = "notifier",
        feature = "callbacks",
        feature = "executions"
    ))]
    fn lazy<C: 'static>(
        sdk: &aws_config::SdkConfig,
        new: fn(&aws_config::SdkConfig) -> C,
    ) -> Lazy<C> {
        let sdk = sdk.clone();
        Lazy::new(move || new(&sdk))
    }

    #[cfg(feature = "route53")]
    pub fn router(sdk: &aws_config::SdkConfig, c: &Config) -> Option<Arc<dyn TrafficRouter>> {
        Some(Arc::new(Route53Router::new(
            lazy(sdk, aws_sdk_route53::Client::new),
            c.route53_requests_per_second,
        )))
    }
    #[cfg(not(feature = "route53"))]
    pub fn router(_: &aws_config::SdkConfig, _: &Config) -> Option<Arc<dyn TrafficRouter>> {
        None
    }

    #[cfg(feature = "elbv2")]
    pub fn load_balancer(
        sdk: &aws_config::SdkConfig,
    ) -> Option<Arc<dyn cutover_core::alb::LoadBalancer>> {
        Some(Arc::new(AlbRouter::new(lazy(
            sdk,
            aws_sdk_elasticloadbalancingv2::Client::new,
        ))))
    }
    #[cfg(not(feature = "elbv2"))]
    pub fn load_balancer(
        _: &aws_config::SdkConfig,
    ) -> Option<Arc<dyn cutover_core::alb::LoadBalancer>> {
        None
    }

    /// Clients two ports share, each built once.
    #[derive(Default)]
    pub struct Shared {
        #[cfg_attr(
            not(any(feature = "replication", feature = "metrics")),
            allow(dead_code)
        )]
        replication: Option<AwsReplication>,
    }

    #[cfg(any(feature = "replication", feature = "metrics"))]
    fn aws_replication(
        shared: &mut Shared,
        sdk: &aws_config::SdkConfig,
        c: &Config,
    ) -> AwsReplication {
        shared
            .replication
            .get_or_insert_with(|| {
                let r = AwsReplication::new(
                    lazy(sdk, aws_sdk_databasemigration::Client::new),
                    lazy(sdk, aws_sdk_mgn::Client::new),
                );
                if c.dms_table_statistics {
                    r
                } else {
                    r.without_table_statistics()
                }
            })
            .clone()
    }

    #[cfg(feature = "replication")]
    pub fn replication(
        shared: &mut Shared,
        sdk: &aws_config::SdkConfig,
        c: &Config,
    ) -> Option<Arc<dyn Replication>> {
        Some(Arc::new(aws_replication(shared, sdk, c)))
    }
    #[cfg(not(feature = "replication"))]
    pub fn replication(
        _: &mut Shared,
        _: &aws_config::SdkConfig,
        _: &Config,
    ) -> Option<Arc<dyn Replication>> {
        None
    }

    #[cfg(feature = "metrics")]
    pub fn metrics(
        shared: &mut Shared,
        sdk: &aws_config::SdkConfig,
        c: &Config,
    ) -> Option<Arc<dyn Metrics>> {
        let replication = aws_replication(shared, sdk, c);
        let dms = replication.dms_client();
        Some(Arc::new(CloudWatchMetrics::new(
            lazy(sdk, aws_sdk_cloudwatch::Client::new),
            replication,
            dms,
        )))
    }
    #[cfg(not(feature = "metrics"))]
    pub fn metrics(
        _: &mut Shared,
        _: &aws_config::SdkConfig,
        _: &Config,
    ) -> Option<Arc<dyn Metrics>> {
        None
    }

    /// STS over the function's own credentials; the reached account's ports are built as the
    /// function's own are, each only where the function has that port.
    #[cfg(feature = "accounts")]
    pub fn accounts(
        sdk: &aws_config::SdkConfig,
        c: &Config,
        n: Needs,
    ) -> Option<Arc<dyn cutover_core::accounts::Accounts>> {
        let c = c.clone();
        let build = move |conf: &aws_config::SdkConfig| {
            let none = Arc::new(Unconfigured("another account".into()));
            let mut shared = Shared::default();
            cutover_core::accounts::Reached {
                router: n
                    .router
                    .then(|| router(conf, &c))
                    .flatten()
                    .unwrap_or(none.clone()),
                load_balancer: n
                    .load_balancer
                    .then(|| load_balancer(conf))
                    .flatten()
                    .unwrap_or(none.clone()),
                replication: n
                    .replication
                    .then(|| replication(&mut shared, conf, &c))
                    .flatten()
                    .unwrap_or(none.clone()),
                metrics: n
                    .metrics
                    .then(|| metrics(&mut shared, conf, &c))
                    .flatten()
                    .unwrap_or(none),
                expires: None,
            }
        };
        Some(Arc::new(StsAccounts::new(sdk, Arc::new(build))))
    }
    #[cfg(not(feature = "accounts"))]
    pub fn accounts(
        _: &aws_config::SdkConfig,
        _: &Config,
        _: Needs,
    ) -> Option<Arc<dyn cutover_core::accounts::Accounts>> {
        None
    }

    #[cfg(feature = "bus")]
    pub fn bus(sdk: &aws_config::SdkConfig) -> Option<Arc<dyn cutover_core::events::Bus>> {
        Some(Arc::new(EventBridgeBus::new(lazy(
            sdk,
            aws_sdk_eventbridge::Client::new,
        ))))
    }
    #[cfg(not(feature = "bus"))]
    pub fn bus(_: &aws_config::SdkConfig) -> Option<Arc<dyn cutover_core::events::Bus>> {
        None
    }

    #[cfg(feature = "probe")]
    pub fn probe(c: &Config) -> Result<Option<Arc<dyn HealthProbe>>, ConfigError> {
        let p = HttpProbe::new(c.http_timeout).map_err(|e| ConfigError::Invalid {
            name: "HTTP_TIMEOUT_SECONDS",
            message: e.to_string(),
        })?;
        Ok(Some(Arc::new(p)))
    }
    #[cfg(not(feature = "probe"))]
    pub fn probe(_: &Config) -> Result<Option<Arc<dyn HealthProbe>>, ConfigError> {
        Ok(None)
    }

    #[cfg(feature = "notifier")]
    pub fn notifier(
        sdk: &aws_config::SdkConfig,
        topic: &str,
        api_url: Option<String>,
    ) -> Option<Arc<dyn Notifier>> {
        Some(Arc::new(
            SnsNotifier::new(lazy(sdk, aws_sdk_sns::Client::new), topic).with_api_url(api_url),
        ))
    }
    #[cfg(not(feature = "notifier"))]
    pub fn notifier(
        _: &aws_config::SdkConfig,
        _: &str,
        _: Option<String>,
    ) -> Option<Arc<dyn Notifier>> {
        None
    }

    #[cfg(feature = "hooks")]
    pub fn hooks(sdk: &aws_config::SdkConfig) -> Result<Option<Arc<dyn Hooks>>, ConfigError> {
        let h = HttpHooks::new(sdk).map_err(|e| ConfigError::Invalid {
            name: "hooks",
            message: e.to_string(),
        })?;
        Ok(Some(Arc::new(h)))
    }
    #[cfg(not(feature = "hooks"))]
    pub fn hooks(_: &aws_config::SdkConfig) -> Result<Option<Arc<dyn Hooks>>, ConfigError> {
        Ok(None)
    }

    #[cfg(feature = "vault")]
    pub fn vault(
        sdk: &aws_config::SdkConfig,
        key: &str,
    ) -> Result<Option<Arc<dyn TokenVault>>, ConfigError> {
        let v = KmsVault::new(sdk, key).map_err(|e| ConfigError::Invalid {
            name: "TOKEN_KEY_ARN",
            message: e.to_string(),
        })?;
        Ok(Some(Arc::new(v)))
    }
    #[cfg(not(feature = "vault"))]
    pub fn vault(
        _: &aws_config::SdkConfig,
        _: &str,
    ) -> Result<Option<Arc<dyn TokenVault>>, ConfigError> {
        Ok(None)
    }

    #[cfg(feature = "secrets")]
    pub fn secrets(sdk: &aws_config::SdkConfig) -> Result<Option<Arc<dyn Secrets>>, ConfigError> {
        let s = AwsSecrets::new(sdk).map_err(|e| ConfigError::Invalid {
            name: "secrets",
            message: e.to_string(),
        })?;
        Ok(Some(Arc::new(s)))
    }
    #[cfg(not(feature = "secrets"))]
    pub fn secrets(_: &aws_config::SdkConfig) -> Result<Option<Arc<dyn Secrets>>, ConfigError> {
        Ok(None)
    }

    #[cfg(feature = "executions")]
    pub fn executions(sdk: &aws_config::SdkConfig, machine: &str) -> Option<Arc<dyn Executions>> {
        Some(Arc::new(SfnExecutions::new(
            lazy(sdk, aws_sdk_sfn::Client::new),
            machine,
        )))
    }
    #[cfg(not(feature = "executions"))]
    pub fn executions(_: &aws_config::SdkConfig, _: &str) -> Option<Arc<dyn Executions>> {
        None
    }

    #[cfg(feature = "callbacks")]
    pub fn callbacks(sdk: &aws_config::SdkConfig) -> Option<Arc<dyn TaskCallbacks>> {
        Some(Arc::new(SfnCallbacks::new(lazy(
            sdk,
            aws_sdk_sfn::Client::new,
        ))))
    }
    #[cfg(not(feature = "callbacks"))]
    pub fn callbacks(_: &aws_config::SdkConfig) -> Option<Arc<dyn TaskCallbacks>> {
        None
    }
}

/// Runs the step on one event. The payload is never logged: it may carry a task token.
pub async fn handle(step: &str, payload: Value, deps: &Deps) -> Result<Value, Diagnostic> {
    match cutover_core::steps::runner(step) {
        Some(run) => handle_with(step, run, payload, deps).await,
        None => {
            let e = cutover_core::error::StepError::invalid(format!("no step named '{step}'"));
            Err(Diagnostic {
                error_type: e.name().to_string(),
                error_message: e.to_string(),
            })
        }
    }
}

/// As `handle`, with the step's runner given (a function's binary links its own step only).
pub async fn handle_with(
    step: &str,
    run: cutover_core::steps::Runner,
    payload: Value,
    deps: &Deps,
) -> Result<Value, Diagnostic> {
    use tracing::Instrument;
    let (run_id, application) = log_fields(&payload);
    let span = tracing::info_span!("invocation", runId = %run_id, application = %application, step);
    handle_in_span(step, run, payload, deps)
        .instrument(span)
        .await
}

async fn handle_in_span(
    step: &str,
    run: cutover_core::steps::Runner,
    payload: Value,
    deps: &Deps,
) -> Result<Value, Diagnostic> {
    // What the metrics need of the input (the application), kept before the step consumes it.
    let payload_for_metrics = serde_json::json!({"plan": {"application": payload.pointer("/plan/application").cloned().unwrap_or(Value::Null)}});
    match run(payload, deps).await {
        Ok(v) => {
            tracing::info!(step, "step succeeded");
            if let Some(m) = step_metrics(step, &payload_for_metrics, &v) {
                println!("{m}");
            }
            if v.get("outcome").and_then(Value::as_str) == Some("rollback_failed") {
                println!("{}", rollback_failed_metric(&v));
            }
            Ok(v)
        }
        Err(e) => {
            tracing::warn!(step, error = e.name(), "step failed");
            Err(Diagnostic {
                error_type: e.name().to_string(),
                // The cause lands in the execution history: no URL credential goes there.
                error_message: cutover_core::redact::redact_text(&e.to_string()),
            })
        }
    }
}

/// One `RollbackFailed` datapoint in CloudWatch's embedded metric format: a log line Lambda's
/// log delivery turns into a metric, which the template's alarm pages on
/// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
pub fn rollback_failed_metric(close_output: &Value) -> Value {
    let environment =
        std::env::var("METRICS_ENVIRONMENT").unwrap_or_else(|_| "default".to_string());
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    serde_json::json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": "Cutover",
                "Dimensions": [["Environment"]],
                "Metrics": [{"Name": "RollbackFailed", "Unit": "Count"}]
            }]
        },
        "Environment": environment,
        "RollbackFailed": 1,
        "error": close_output.get("error").cloned().unwrap_or(Value::Null),
    })
}

/// The metric names the steps publish, for the dashboard and the alarms (a test checks the
/// template draws every one).
pub const STEP_METRICS: &[&str] = &[
    "GreenWeight",
    "ReplicationLagSeconds",
    "HealthRoundFailed",
    "RunCompleted",
    "RunRolledBack",
    "RunAborted",
    "RunFailed",
    "ApprovalExpired",
    "ReplicationPhaseSeconds",
    "TrafficPhaseSeconds",
    "RunSeconds",
    "RunStuck",
    "LockHeldByFinishedExecution",
    "ApprovalExpiring",
];

/// One embedded-metric-format document for a step's result, or None when the step has nothing
/// to measure. Each metric is published per environment and per environment and application
/// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
pub fn step_metrics(step: &str, payload: &Value, output: &Value) -> Option<Value> {
    let mut values: Vec<(&str, f64, &str)> = Vec::new();
    match step {
        "shift-traffic" => {
            if let Some(g) = output.pointer("/weights/green").and_then(Value::as_f64) {
                values.push(("GreenWeight", g, "Percent"));
            }
        }
        "check-replication-lag" => {
            if let Some(l) = output.get("lagSeconds").and_then(Value::as_f64) {
                values.push(("ReplicationLagSeconds", l, "Seconds"));
            }
        }
        "run-health-check" => {
            if let Some(h) = output.get("healthy").and_then(Value::as_bool) {
                values.push(("HealthRoundFailed", if h { 0.0 } else { 1.0 }, "Count"));
            }
        }
        "close-run" => {
            let name = match output.get("outcome").and_then(Value::as_str) {
                Some("completed") => "RunCompleted",
                Some("completed_with_errors") => "RunCompletedWithErrors",
                Some("rolled_back") => "RunRolledBack",
                Some("aborted") => "RunAborted",
                Some("failed") => "RunFailed",
                _ => "",
            };
            if !name.is_empty() {
                values.push((name, 1.0, "Count"));
            }
            if output.get("error").and_then(Value::as_str) == Some("ApprovalExpired") {
                values.push(("ApprovalExpired", 1.0, "Count"));
            }
            for (name, key) in [
                ("ReplicationPhaseSeconds", "replication"),
                ("TrafficPhaseSeconds", "traffic"),
                ("RunSeconds", "total"),
            ] {
                if let Some(s) = output
                    .pointer(&format!("/phaseSeconds/{key}"))
                    .and_then(Value::as_f64)
                {
                    values.push((name, s, "Seconds"));
                }
            }
        }
        // The run sweep: one count per kind of finding, only when there is one (a custom metric
        // is billed for every hour it is published in; the alarms treat no data as OK).
        "reconcile-run" if output.get("runsChecked").is_some() => {
            let count = |k: &str| output.get(k).and_then(Value::as_array).map_or(0, Vec::len);
            for (name, key) in [
                ("RunStuck", "stuck"),
                ("LockHeldByFinishedExecution", "abandoned"),
                ("ApprovalExpiring", "expiring"),
            ] {
                if count(key) > 0 {
                    values.push((name, count(key) as f64, "Count"));
                }
            }
        }
        _ => {}
    }
    if values.is_empty() {
        return None;
    }
    let environment =
        std::env::var("METRICS_ENVIRONMENT").unwrap_or_else(|_| "default".to_string());
    let application = payload
        .pointer("/plan/application")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": "Cutover",
                "Dimensions": [["Environment"], ["Environment", "Application"]],
                "Metrics": values.iter().map(|(n, _, u)| serde_json::json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
            }]
        },
        "Environment": environment,
        "Application": application,
    });
    for (n, v, _) in values {
        doc[n] = serde_json::json!(v);
    }
    Some(doc)
}

/// Sandbox start-up shared by every function: JSON logs, the config, the SDK config.
/// The log filter: Lambda's advanced logging controls pass the function's ApplicationLogLevel as
/// AWS_LAMBDA_LOG_LEVEL (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html);
/// RUST_LOG, when set, wins (local runs). FATAL has no tracing level: it keeps errors only.
pub fn log_filter(
    aws_level: Option<&str>,
    rust_log: Option<&str>,
) -> tracing_subscriber::filter::Targets {
    let level = match (rust_log, aws_level.map(str::to_ascii_lowercase).as_deref()) {
        (Some(r), _) if !r.is_empty() => r.to_string(),
        (_, Some("fatal")) => "error".into(),
        (_, Some(l)) if ["trace", "debug", "info", "warn", "error"].contains(&l) => l.into(),
        _ => "info".into(),
    };
    // `RUST_LOG` takes a level and `target=level` pairs (`info,cutover_core=debug`); anything
    // else (span or field filters) is not understood, and INFO applies.
    level.parse().unwrap_or_else(|_| {
        tracing_subscriber::filter::Targets::new()
            .with_default(tracing_subscriber::filter::LevelFilter::INFO)
    })
}

/// The run id of an approval API path (`/runs/{runId}/…`), or empty.
pub fn api_run_id(path: &str) -> String {
    let mut parts = path.trim_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some("runs"), Some(id)) => id.to_string(),
        _ => String::new(),
    }
}

/// The fields every log line of one invocation carries: the run, its application, the step.
pub fn log_fields(payload: &Value) -> (String, String) {
    let s = |p: &str| {
        payload
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let run_id = [s("/runId"), s("/detail/name"), s("/waveRunId")]
        .into_iter()
        .find(|v| !v.is_empty())
        .unwrap_or_default();
    (run_id, s("/plan/application"))
}

async fn init() -> Result<(Config, aws_config::SdkConfig), ConfigError> {
    let filter = log_filter(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    );
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .finish()
        .with(filter)
        .init();
    let config = Config::from_env()?;
    // Lambda gives the execution role's credentials in the environment (AWS_ACCESS_KEY_ID,
    // AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN:
    // https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
    // Reading them directly skips building the default chain (web identity with its STS
    // client, ECS, IMDS), which took half of the init without the warm-up.
    let sdk = cutover_aws::sdk_loader()
        .credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        )
        .load()
        .await;
    Ok((config, sdk))
}

/// An init that failed is reported to the Runtime API's init-error endpoint as JSON naming what
/// is wrong (`POST /2018-06-01/runtime/init/error`,
/// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-initerror), so the
/// invocation's error and the function's log say which variable is missing; then the process
/// exits with it.
async fn init_failed(step: &str, e: ConfigError) -> lambda_runtime::Error {
    let message = e.to_string();
    tracing::error!(step, error = %message, "init failed");
    let body = init_error_body(&e);
    match lambda_runtime_api_client::Client::builder().build() {
        Ok(client) => {
            let request = lambda_runtime_api_client::build_request()
                .method("POST")
                .uri("/2018-06-01/runtime/init/error")
                .header("Lambda-Runtime-Function-Error-Type", "Runtime.ConfigError")
                .header("content-type", "application/json")
                .body(lambda_runtime_api_client::body::Body::from(
                    body.to_string(),
                ));
            if let Ok(request) = request {
                if let Err(post) = client.call(request).await {
                    tracing::error!(error = %post, "the init error could not be reported");
                }
            }
        }
        Err(build) => tracing::error!(error = %build, "no Runtime API to report the init error to"),
    }
    Box::new(e)
}

/// The init error's JSON, as the Runtime API takes it (errorType, errorMessage, stackTrace).
pub fn init_error_body(e: &ConfigError) -> Value {
    let variable = match e {
        ConfigError::Missing(name) | ConfigError::Invalid { name, .. } => *name,
    };
    serde_json::json!({
        "errorType": "ConfigError",
        "errorMessage": e.to_string(),
        "variable": variable,
        "stackTrace": [],
    })
}

async fn init_all(
    step: &'static str,
) -> Result<(Config, aws_config::SdkConfig, Deps), lambda_runtime::Error> {
    let (config, sdk) = match init().await {
        Ok(v) => v,
        Err(e) => return Err(init_failed(step, e).await),
    };
    match build_deps(step, &sdk, &config).await {
        Ok(deps) => Ok((config, sdk, deps)),
        Err(e) => Err(init_failed(step, e).await),
    }
}

/// The whole life of a step function's sandbox.
pub async fn serve(
    step: &'static str,
    run: cutover_core::steps::Runner,
) -> Result<(), lambda_runtime::Error> {
    let (_, _, deps) = init_all(step).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let deps = &deps;
        async move { handle_with(step, run, event.payload, deps).await }
    }))
    .await
}

/// The approval API's sandbox: API Gateway HTTP API (payload 2.0) events to `handle_api`.
pub async fn serve_api() -> Result<(), lambda_runtime::Error> {
    let (config, sdk, deps) = init_all("approval-api").await?;
    let schedules = wave_schedules(&sdk, &config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayV2httpRequest>| {
        let (deps, schedules, config) = (&deps, schedules.as_deref(), &config);
        async move {
            use tracing::Instrument;
            let request = api_request_with(event.payload, &config.jwt_groups_claim);
            // The run the request is about, on every line it logs (never the body or a token).
            let span = tracing::info_span!(
                "invocation",
                runId = %api_run_id(&request.path),
                application = "",
                step = "approval-api"
            );
            let response = handle_api_with(&request, deps, schedules, &config.api_bounds)
                .instrument(span.clone())
                .await;
            span.in_scope(|| {
                tracing::info!(
                    method = %request.method,
                    path = %request.path,
                    status = response.status,
                    "api request"
                )
            });
            Ok::<_, lambda_runtime::Error>(api_response(response))
        }
    }))
    .await
}

#[cfg(feature = "scheduler")]
fn wave_schedules(
    sdk: &aws_config::SdkConfig,
    c: &Config,
) -> Option<Box<dyn cutover_core::ports::WaveSchedules>> {
    let (machine, role) = c.wave_schedule.clone()?;
    Some(Box::new(ConfiguredWaveSchedules {
        scheduler: WaveScheduler::new(aws_sdk_scheduler::Client::new(sdk)),
        state_machine_arn: machine,
        role_arn: role,
    }))
}

#[cfg(not(feature = "scheduler"))]
fn wave_schedules(
    _: &aws_config::SdkConfig,
    _: &Config,
) -> Option<Box<dyn cutover_core::ports::WaveSchedules>> {
    None
}

/// The claims of the bearer token in the request's Authorization header. API Gateway's JWT
/// authorizer validated that very header (signature, issuer, audience, expiry) before invoking
/// the function (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html),
/// so its payload is read as JSON with each claim's own type: the authorizer context flattens an
/// array claim into one string ("[a b]"), where a group named "Not Approvers" could not be told
/// from two groups.
fn token_claims(e: &ApiGatewayV2httpRequest) -> Option<serde_json::Map<String, Value>> {
    use base64::Engine;
    let header = e.headers.get("authorization")?.to_str().ok()?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .unwrap_or(header)
        .trim();
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// A claim's values: a JSON array's strings, or a space-delimited string's words (OAuth's
/// `scope`, RFC 8693 section 4.2; Okta's and Microsoft Entra ID's `scp` may be either).
fn claim_values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::String(s) => s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
        _ => vec![],
    }
}

/// The caller: the IAM caller ARN (SigV4), or the JWT subject when the token carries the
/// required scope (`cutover/approve`) in API Gateway's `scopes`, or in its `scope` or `scp`
/// claim. Groups come from the configured claim (`JWT_GROUPS_CLAIM`) of the validated token, as
/// a JSON array or a space-delimited string, each group matched whole. Anything else is no
/// identity (403).
pub fn api_request(e: ApiGatewayV2httpRequest) -> ApiRequest {
    api_request_with(e, "cognito:groups")
}

pub fn api_request_with(e: ApiGatewayV2httpRequest, groups_claim: &str) -> ApiRequest {
    let auth = e.request_context.authorizer.as_ref();
    let iam = auth
        .and_then(|a| a.iam.as_ref())
        .and_then(|i| i.user_arn.clone());
    let jwt_context = auth.and_then(|a| a.jwt.as_ref());
    let claims = jwt_context.and_then(|_| token_claims(&e));
    let claim = |name: &str| -> Option<Value> {
        match &claims {
            Some(c) => c.get(name).cloned(),
            // No readable token: the authorizer context's flattened strings.
            None => jwt_context
                .and_then(|j| j.claims.get(name))
                .map(|s| Value::String(s.clone())),
        }
    };
    let jwt = jwt_context.and_then(|j| {
        let mut scopes: Vec<String> = j.scopes.clone().unwrap_or_default();
        for name in ["scope", "scp"] {
            if let Some(v) = claim(name) {
                scopes.extend(claim_values(&v));
            }
        }
        if scopes.iter().any(|x| x == REQUIRED_SCOPE) {
            claim("sub").and_then(|s| s.as_str().map(str::to_string))
        } else {
            None
        }
    });
    let groups: Vec<String> = match claim(groups_claim) {
        // From the token: the claim's own type.
        Some(v) if claims.is_some() => claim_values(&v),
        // From the flattened context: only a string without brackets is unambiguous.
        Some(Value::String(s)) if !s.starts_with('[') => claim_values(&Value::String(s)),
        _ => vec![],
    };
    let identity = iam.or(jwt);
    ApiRequest {
        method: e.request_context.http.method.to_string(),
        path: e.raw_path.unwrap_or_default(),
        body: e.body,
        groups: if identity.is_some() { groups } else { vec![] },
        identity,
    }
}

pub const REQUIRED_SCOPE: &str = "cutover/approve";

pub fn api_response(r: ApiResponse) -> ApiGatewayV2httpResponse {
    let mut headers = aws_lambda_events::http::HeaderMap::new();
    headers.insert(
        "content-type",
        aws_lambda_events::http::HeaderValue::from_static("application/json"),
    );
    // The event types are non-exhaustive: start from the default and set what is answered.
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(r.status);
    response.headers = headers;
    response.body = Some(aws_lambda_events::encodings::Body::Text(r.body.to_string()));
    response
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn an_init_error_names_the_variable_as_json() {
        let body = init_error_body(&ConfigError::Missing("CUTOVER_STATE_MACHINE_ARN"));
        assert_eq!(body["errorType"], "ConfigError");
        assert_eq!(body["variable"], "CUTOVER_STATE_MACHINE_ARN");
        assert_eq!(
            body["errorMessage"],
            "environment variable CUTOVER_STATE_MACHINE_ARN is required"
        );
    }

    #[tokio::test]
    async fn a_function_without_a_variable_its_ports_need_fails_its_init_naming_it() {
        // reconcile-run uses the Executions port: without CUTOVER_STATE_MACHINE_ARN its init
        // must fail on that name, before any client is built.
        let config = Config::from_lookup(|k| {
            (k == "TABLE_NAME" || k == "TOPIC_ARN").then(|| "x".to_string())
        })
        .unwrap();
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let e = build_deps("reconcile-run", &sdk, &config).await.err();
        assert_eq!(e, Some(ConfigError::Missing("CUTOVER_STATE_MACHINE_ARN")));
    }

    #[test]
    fn the_level_comes_from_lambda_unless_rust_log_says_otherwise() {
        assert_eq!(log_filter(Some("DEBUG"), None).to_string(), "debug");
        assert_eq!(log_filter(Some("FATAL"), None).to_string(), "error");
        assert_eq!(log_filter(Some("nonsense"), None).to_string(), "info");
        assert_eq!(log_filter(None, None).to_string(), "info");
        assert_eq!(log_filter(Some("INFO"), Some("warn")).to_string(), "warn");
        let targets = log_filter(None, Some("warn,cutover_core=debug"));
        assert!(targets.would_enable("cutover_core::steps", &tracing::Level::DEBUG));
        assert!(!targets.would_enable("aws_smithy_runtime", &tracing::Level::INFO));
        // A span filter is not understood: INFO, not silence.
        assert_eq!(
            log_filter(None, Some("[span{a=1}]=debug")).to_string(),
            "info"
        );
    }

    #[test]
    fn api_lines_name_the_run_of_the_path() {
        assert_eq!(api_run_id("/runs/orders-1/approvals/g1"), "orders-1");
        assert_eq!(api_run_id("/runs/orders-1"), "orders-1");
        assert_eq!(api_run_id("/waves/w/schedule"), "");
    }

    #[test]
    fn every_line_names_the_run_and_application_of_the_event() {
        let step_event =
            serde_json::json!({"runId": "orders-1", "plan": {"application": "orders"}});
        assert_eq!(
            log_fields(&step_event),
            ("orders-1".into(), "orders".into())
        );
        let rule_event = serde_json::json!({"detail": {"name": "orders-2", "status": "ABORTED"}});
        assert_eq!(log_fields(&rule_event), ("orders-2".into(), String::new()));
    }
}

#[cfg(test)]
mod jwt_tests {
    use super::*;
    use base64::Engine;

    /// An HTTP API event from a JWT caller whose validated token carries `claims`; the
    /// authorizer context flattens them as API Gateway does (arrays as "[a b]").
    fn event(claims: Value, context_scopes: Option<Vec<&str>>) -> ApiGatewayV2httpRequest {
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let token = format!("{}.{}.sig", b64(&json_header()), b64(&claims));
        let flat: serde_json::Map<String, Value> = claims
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::Array(a) => format!(
                        "[{}]",
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), Value::String(s))
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "version": "2.0", "routeKey": "POST /runs/{runId}/approvals/{gate}",
            "rawPath": "/runs/r1/approvals/g1", "rawQueryString": "",
            "headers": {"authorization": format!("Bearer {token}")},
            "requestContext": {"accountId": "123456789012", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                "http": {"method": "POST", "path": "/runs/r1/approvals/g1", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.5", "userAgent": "t"},
                "requestId": "r", "routeKey": "POST /runs/{runId}/approvals/{gate}", "stage": "$default",
                "time": "04/Dec/2026:10:00:00 +0000", "timeEpoch": 0,
                "authorizer": {"jwt": {"claims": flat, "scopes": context_scopes}}},
            "body": "{}", "isBase64Encoded": false
        }))
        .unwrap()
    }

    fn json_header() -> Value {
        serde_json::json!({"alg": "RS256", "typ": "JWT"})
    }

    #[test]
    fn groups_are_read_whole_from_the_validated_token() {
        let e = event(
            serde_json::json!({"sub": "u1", "scope": "cutover/approve", "cognito:groups": ["Not Approvers", "ops"]}),
            None,
        );
        let r = api_request(e);
        assert_eq!(r.identity.as_deref(), Some("u1"));
        assert_eq!(r.groups, ["Not Approvers", "ops"]);
        assert!(!r.groups.iter().any(|g| g == "Approvers"));
        // A space-delimited string claim (the issuer's format) is split.
        let r = api_request_with(
            event(
                serde_json::json!({"sub": "u1", "scope": "cutover/approve", "roles": "Approvers ops"}),
                None,
            ),
            "roles",
        );
        assert_eq!(r.groups, ["Approvers", "ops"]);
    }

    #[test]
    fn scopes_come_from_scopes_scope_or_scp() {
        for (claims, scopes) in [
            (
                serde_json::json!({"sub": "u1", "scp": ["openid", "cutover/approve"]}),
                None,
            ),
            (
                serde_json::json!({"sub": "u1", "scp": "openid cutover/approve"}),
                None,
            ),
            (
                serde_json::json!({"sub": "u1", "scope": "cutover/approve"}),
                None,
            ),
            (
                serde_json::json!({"sub": "u1"}),
                Some(vec!["cutover/approve"]),
            ),
        ] {
            let r = api_request(event(claims.clone(), scopes.clone()));
            assert_eq!(r.identity.as_deref(), Some("u1"), "{claims} {scopes:?}");
        }
        let r = api_request(event(
            serde_json::json!({"sub": "u1", "scp": ["openid"]}),
            None,
        ));
        assert_eq!(r.identity, None, "without the scope, no identity");
    }
}

#[cfg(test)]
mod metric_tests {
    use super::*;

    #[test]
    fn steps_publish_their_measure_per_environment_and_application() {
        let payload = serde_json::json!({"plan": {"application": "orders"}});
        let m = step_metrics(
            "shift-traffic",
            &payload,
            &serde_json::json!({"weights": {"blue": 50, "green": 50}, "changeId": "C1"}),
        )
        .unwrap();
        assert_eq!(m["GreenWeight"], 50.0);
        assert_eq!(m["Application"], "orders");
        assert_eq!(
            m["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1][1],
            "Application"
        );
        let m = step_metrics(
            "close-run",
            &payload,
            &serde_json::json!({"outcome": "aborted", "error": "ApprovalExpired", "phaseSeconds": {"replication": 600.0, "traffic": null, "total": 660.0}}),
        )
        .unwrap();
        assert_eq!(
            (m["RunAborted"].as_f64(), m["ApprovalExpired"].as_f64()),
            (Some(1.0), Some(1.0))
        );
        assert_eq!(
            (
                m["ReplicationPhaseSeconds"].as_f64(),
                m["RunSeconds"].as_f64()
            ),
            (Some(600.0), Some(660.0))
        );
        assert!(
            m.get("TrafficPhaseSeconds").is_none(),
            "traffic never moved"
        );
        let m = step_metrics(
            "run-health-check",
            &payload,
            &serde_json::json!({"healthy": false}),
        )
        .unwrap();
        assert_eq!(m["HealthRoundFailed"], 1.0);
        // The sweep publishes only what it found.
        let sweep = |stuck: usize, expiring: usize| {
            step_metrics(
                "reconcile-run",
                &serde_json::json!({"sweep": {}}),
                &serde_json::json!({"runsChecked": 3, "stuck": vec!["r"; stuck], "abandoned": [], "expiring": vec!["r/g"; expiring]}),
            )
        };
        assert!(sweep(0, 0).is_none());
        let m = sweep(1, 2).unwrap();
        assert_eq!(
            (m["RunStuck"].as_f64(), m["ApprovalExpiring"].as_f64()),
            (Some(1.0), Some(2.0))
        );
        assert!(m.get("LockHeldByFinishedExecution").is_none());
        assert!(step_metrics(
            "check-dns-sync",
            &payload,
            &serde_json::json!({"inSync": true})
        )
        .is_none());
        for n in [
            "GreenWeight",
            "RunAborted",
            "ApprovalExpired",
            "HealthRoundFailed",
        ] {
            assert!(STEP_METRICS.contains(&n));
        }
    }
}
