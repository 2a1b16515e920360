//! STS: the ports of another account of a landing zone, through a role the plan names
//! (cutover_core::accounts). One AssumeRole per (role, session) gives credentials for its
//! `DurationSeconds` (3600 by default); the clients of the reached account use them as they are,
//! and `cutover_core::accounts::Cached` assumes again shortly before they expire
//! (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).

use crate::errors::{map_sdk_error, to_chrono};
use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use cutover_core::accounts::{Accounts, Reached, Role};
use cutover_core::ports::{PortError, PortErrorKind};
use std::sync::Arc;

/// Builds the router, load balancer, replication and metrics ports over one SDK configuration
/// (the reached account's credentials); `expires` is filled in by [`StsAccounts`].
pub type BuildPorts = Arc<dyn Fn(&aws_config::SdkConfig) -> Reached + Send + Sync>;

pub struct StsAccounts {
    sdk: aws_config::SdkConfig,
    sts: aws_sdk_sts::Client,
    build: BuildPorts,
}

impl StsAccounts {
    /// `sdk`: the function's own configuration (its role's credentials assume the others).
    pub fn new(sdk: &aws_config::SdkConfig, build: BuildPorts) -> Self {
        StsAccounts {
            sdk: sdk.clone(),
            sts: aws_sdk_sts::Client::new(sdk),
            build,
        }
    }
}

#[async_trait]
impl Accounts for StsAccounts {
    async fn assume(&self, role: &Role, session: &str) -> Result<Reached, PortError> {
        let out = self
            .sts
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(session)
            .set_external_id(role.external_id.clone())
            .send()
            .await
            .map_err(|e| map_sdk_error("sts", e, &["MalformedPolicyDocument"], &[], &[]))?;
        let c = out.credentials.ok_or_else(|| {
            PortError::new(
                "sts",
                PortErrorKind::Other,
                "NoCredentials",
                format!("AssumeRole of {} answered without credentials", role.arn),
            )
        })?;
        let expires = to_chrono(&c.expiration);
        let expiry = std::time::SystemTime::try_from(c.expiration).ok();
        let credentials = Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            expiry,
            "cutover-assume-role",
        );
        let conf = self
            .sdk
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build();
        let mut reached = (self.build)(&conf);
        reached.expires = Some(expires);
        Ok(reached)
    }
}
