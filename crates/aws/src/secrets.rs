//! Credentials for probes and hooks: Secrets Manager's `GetSecretValue` and Parameter Store's
//! `GetParameter` (with `WithDecryption`), each called by the ARN the plan names, over the JSON
//! protocol (`crate::json_api`).
//!
//! Values are kept for five minutes per function instance, as AWS's caching clients do, so a
//! bake's probes do not read the secret every round
//! (https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieving-secrets.html).

use crate::json_api::{region_of, JsonApi};
use async_trait::async_trait;
use cutover_core::ports::{PortError, PortErrorKind, Secrets};
use cutover_core::secret::Secret;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PORT: &str = "secrets";
/// How long a value read is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(300);

pub struct AwsSecrets {
    api: JsonApi,
    cache: Mutex<HashMap<String, (Instant, Secret)>>,
}

impl AwsSecrets {
    pub fn new(sdk: &aws_config::SdkConfig) -> Result<Self, reqwest::Error> {
        Ok(AwsSecrets {
            api: JsonApi::new(PORT, sdk)?,
            cache: Mutex::new(HashMap::new()),
        })
    }
}

#[async_trait]
impl Secrets for AwsSecrets {
    async fn read(&self, arn: &str) -> Result<Secret, PortError> {
        if let Some((at, v)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(arn)
        {
            if at.elapsed() < CACHE_FOR {
                return Ok(v.clone());
            }
        }
        let invalid = || {
            PortError::new(
                PORT,
                PortErrorKind::Invalid,
                "InvalidReference",
                format!("{arn} is not a Secrets Manager secret or an SSM parameter ARN"),
            )
        };
        let region = region_of(arn).ok_or_else(invalid)?;
        let value = if cutover_core::secret::secret_arn(arn) {
            let answer = self
                .api
                .call(
                    "secretsmanager",
                    region,
                    "secretsmanager.GetSecretValue",
                    &json!({"SecretId": arn}),
                )
                .await?;
            answer
                .get("SecretString")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    PortError::new(
                        PORT,
                        PortErrorKind::Invalid,
                        "NoSecretString",
                        format!("{arn} holds binary data, not a string"),
                    )
                })?
        } else if cutover_core::secret::parameter_arn(arn) {
            let answer = self
                .api
                .call(
                    "ssm",
                    region,
                    "AmazonSSM.GetParameter",
                    &json!({"Name": arn, "WithDecryption": true}),
                )
                .await?;
            answer
                .pointer("/Parameter/Value")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    PortError::new(
                        PORT,
                        PortErrorKind::Other,
                        "NoValue",
                        format!("{arn}: no value in the answer"),
                    )
                })?
        } else {
            return Err(invalid());
        };
        let secret = Secret::new(value);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(arn.to_string(), (Instant::now(), secret.clone()));
        Ok(secret)
    }
}
