//! What every step function shares: a typed config read once, SDK clients built once per sandbox
//! (only those the step uses), the first connection warmed during init, and one handler that runs
//! the step and turns its error into the name the state machine matches.

mod config;
mod unconfigured;

pub use config::{Config, ConfigError};
pub use unconfigured::Unconfigured;

use cutover_aws::*;
use cutover_core::steps::{dispatch, Deps};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

/// The ports a step touches; the rest are `Unconfigured` (and absent from its IAM role).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Needs {
    pub router: bool,
    pub replication: bool,
    pub metrics: bool,
    pub probe: bool,
    pub notifier: bool,
    pub callbacks: bool,
}

pub fn needs(step: &str) -> Needs {
    let n = Needs::default();
    match step {
        "validate-cutover" => Needs {
            router: true,
            replication: true,
            metrics: true,
            probe: true,
            ..n
        },
        "start-replication" | "finalize-cutover" => Needs {
            replication: true,
            ..n
        },
        "check-replication-lag" => Needs {
            replication: true,
            metrics: true,
            ..n
        },
        "run-health-check" => Needs {
            replication: true,
            metrics: true,
            probe: true,
            ..n
        },
        "shift-traffic" | "check-dns-sync" | "rollback-cutover" => Needs { router: true, ..n },
        "request-approval" => Needs {
            notifier: true,
            ..n
        },
        _ => n,
    }
}

/// Builds the ports for `step` from one SDK config.
pub async fn build_deps(
    step: &str,
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<Deps, ConfigError> {
    let n = needs(step);
    let none = Arc::new(Unconfigured(step.to_string()));
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table_name);
    store.warm_up().await;
    let replication = AwsReplication::new(
        aws_sdk_databasemigration::Client::new(sdk),
        aws_sdk_mgn::Client::new(sdk),
    );
    let replication = if config.dms_table_statistics {
        replication
    } else {
        replication.without_table_statistics()
    };
    Ok(Deps {
        clock: Arc::new(SystemClock),
        store: Arc::new(store),
        router: if n.router {
            Arc::new(Route53Router::new(
                aws_sdk_route53::Client::new(sdk),
                config.route53_requests_per_second,
            ))
        } else {
            none.clone()
        },
        replication: if n.replication {
            Arc::new(replication.clone())
        } else {
            none.clone()
        },
        metrics: if n.metrics {
            Arc::new(CloudWatchMetrics::new(
                aws_sdk_cloudwatch::Client::new(sdk),
                replication,
                aws_sdk_databasemigration::Client::new(sdk),
            ))
        } else {
            none.clone()
        },
        probe: if n.probe {
            Arc::new(
                HttpProbe::new(config.http_timeout).map_err(|e| ConfigError::Invalid {
                    name: "HTTP_TIMEOUT_SECONDS",
                    message: e.to_string(),
                })?,
            )
        } else {
            none.clone()
        },
        notifier: match (&config.topic_arn, n.notifier) {
            (Some(t), true) => Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(sdk), t)),
            (None, true) => return Err(ConfigError::Missing("TOPIC_ARN")),
            _ => none.clone(),
        },
        callbacks: if n.callbacks {
            Arc::new(SfnCallbacks::new(aws_sdk_sfn::Client::new(sdk)))
        } else {
            none
        },
    })
}

/// Runs the step on one event. The payload is never logged: it may carry a task token.
pub async fn handle(step: &str, payload: Value, deps: &Deps) -> Result<Value, Diagnostic> {
    match dispatch(step, payload, deps).await {
        Ok(v) => {
            tracing::info!(step, "step succeeded");
            Ok(v)
        }
        Err(e) => {
            tracing::warn!(step, error = e.name(), "step failed");
            Err(Diagnostic {
                error_type: e.name().to_string(),
                error_message: e.to_string(),
            })
        }
    }
}

/// The whole life of a step function's sandbox.
pub async fn serve(step: &'static str) -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .with_current_span(false)
        .without_time()
        .init();
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let deps = build_deps(step, &sdk, &config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let deps = &deps;
        async move { handle(step, event.payload, deps).await }
    }))
    .await
}
