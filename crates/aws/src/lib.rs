//! Cutover's ports over the AWS SDK for Rust: DynamoDB run store, Route 53 and ALB routers, DMS and MGN
//! replication, CloudWatch metrics and alarms, Step Functions callbacks, SNS notices, HTTP probes, data hooks (Lambda Invoke or SigV4-signed HTTPS), the
//! credentials probes and hooks send (Secrets Manager, Parameter Store), task tokens sealed with
//! KMS.
//! Each adapter maps the service's errors to `PortError` keeping the service's own error code.

pub mod accounts;
pub mod bus;
pub mod callbacks;
pub mod clock;
pub mod elbv2;
pub mod errors;
pub mod hooks;
pub mod json_api;
pub mod lazy;
pub mod metrics;
pub mod moto_compat;
pub mod moto_seed;
pub mod notifier;
pub mod probe;
pub mod replication;
pub mod route53;
pub mod schedules;
pub mod secrets;
pub mod sigv4;
pub mod store;
pub mod tls;
pub mod vault;

pub use accounts::StsAccounts;
pub use bus::EventBridgeBus;
pub use callbacks::{SfnCallbacks, SfnExecutions};
pub use clock::SystemClock;
pub use elbv2::AlbRouter;
pub use hooks::HttpHooks;
pub use lazy::Lazy;
pub use metrics::CloudWatchMetrics;
pub use notifier::SnsNotifier;
pub use probe::HttpProbe;
pub use replication::AwsReplication;
pub use route53::{RateLimiter, Route53Router};
pub use schedules::{ConfiguredWaveSchedules, OneTimeSchedule, WaveScheduler};
pub use secrets::AwsSecrets;
pub use store::DynamoStore;
pub use tls::{https_client, sdk_loader};
pub use vault::KmsVault;
