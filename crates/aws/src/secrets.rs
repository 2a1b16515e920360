//! Credentials for probes and hooks: Secrets Manager's `GetSecretValue` and Parameter Store's
//! `GetParameter` (with `WithDecryption`), each called by the ARN the plan names, over the JSON
//! protocol (awsJson1_1) with SigV4.
//!
//! Two operations are called directly rather than through `aws-sdk-secretsmanager` and
//! `aws-sdk-ssm`: those crates would be compiled in every build of the workspace (the tests, the
//! functions' build, the size check) for one operation each, past the clean build budget of
//! docs/performance.md. The protocol is small: a POST of JSON with `X-Amz-Target`
//! (`secretsmanager.GetSecretValue`, `AmazonSSM.GetParameter`) and content type
//! `application/x-amz-json-1.1`; an error answers 4xx/5xx with `__type` naming it
//! (https://docs.aws.amazon.com/secretsmanager/latest/apireference/CommonErrors.html).
//!
//! Values are kept for five minutes per function instance, as AWS's caching clients do, so a
//! bake's probes do not read the secret every round
//! (https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieving-secrets.html).

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
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
    client: reqwest::Client,
    credentials: Option<SharedCredentialsProvider>,
    /// Overrides `https://{service}.{region}.amazonaws.com` (`AWS_ENDPOINT_URL`: tests, private
    /// endpoints).
    endpoint: Option<String>,
    cache: Mutex<HashMap<String, (Instant, Secret)>>,
}

impl AwsSecrets {
    pub fn new(sdk: &aws_config::SdkConfig) -> Result<Self, reqwest::Error> {
        Ok(AwsSecrets {
            client: crate::tls::reqwest_builder("cutover-secrets")
                .timeout(Duration::from_secs(10))
                .build()?,
            credentials: sdk.credentials_provider(),
            endpoint: sdk
                .endpoint_url()
                .map(|e| e.trim_end_matches('/').to_string()),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// One JSON-protocol request to `service` (its endpoint prefix and signing name) in
    /// `region`; the answer's JSON.
    async fn call(
        &self,
        service: &str,
        region: &str,
        target: &str,
        body: &Value,
    ) -> Result<Value, PortError> {
        let url = match &self.endpoint {
            Some(e) => format!("{e}/"),
            None => format!("https://{service}.{region}.amazonaws.com/"),
        };
        let host = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| u.port().map_or(h.to_string(), |p| format!("{h}:{p}")))
            })
            .unwrap_or_default();
        let bytes = body.to_string().into_bytes();
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target),
            ("host", host.as_str()),
        ];
        let signed = crate::sigv4::signed_headers(
            PORT,
            self.credentials.as_ref(),
            "POST",
            &url,
            &headers,
            &bytes,
            service,
            region,
        )
        .await?;
        let mut req = self.client.post(&url).body(bytes);
        for (k, v) in headers.iter().filter(|(k, _)| *k != "host") {
            req = req.header(*k, *v);
        }
        for (k, v) in &signed {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(|e| {
            PortError::new(
                PORT,
                PortErrorKind::Transient,
                "DispatchFailure",
                format!("{service}: {e}"),
            )
        })?;
        let status = resp.status().as_u16();
        let header_type = resp
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let answer: Value =
            serde_json::from_slice(&resp.bytes().await.unwrap_or_default()).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        let code = error_code(header_type.as_deref(), &answer, status);
        let message = answer
            .get("message")
            .or_else(|| answer.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Err(PortError::new(PORT, kind_of(&code, status), &code, message))
    }
}

/// The error's name: `x-amzn-errortype` or `__type`, without a namespace (`…#Name`) or a
/// trailing `:url`.
fn error_code(header: Option<&str>, body: &Value, status: u16) -> String {
    let raw = header
        .or_else(|| body.get("__type").and_then(Value::as_str))
        .unwrap_or_default();
    let name = raw.rsplit('#').next().unwrap_or(raw);
    let name = name.split(':').next().unwrap_or(name);
    if name.is_empty() {
        format!("HTTP{status}")
    } else {
        name.to_string()
    }
}

fn kind_of(code: &str, status: u16) -> PortErrorKind {
    match code {
        "ThrottlingException" | "Throttling" | "TooManyUpdates" => PortErrorKind::Throttled,
        "ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound" => {
            PortErrorKind::NotFound
        }
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "DecryptionFailure"
        | "KMSAccessDeniedException" => PortErrorKind::Denied,
        "InvalidRequestException" | "InvalidParameterException" | "ValidationException" => {
            PortErrorKind::Invalid
        }
        _ if status >= 500 => PortErrorKind::Transient,
        _ => PortErrorKind::Other,
    }
}

/// The region an ARN names (`arn:partition:service:REGION:…`).
fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_read_as_the_json_protocol_sends_them() {
        let body = json!({"__type": "com.amazonaws.secretsmanager#ResourceNotFoundException", "message": "no"});
        assert_eq!(error_code(None, &body, 400), "ResourceNotFoundException");
        assert_eq!(
            error_code(
                Some("ThrottlingException:http://internal.amazon.com/"),
                &Value::Null,
                400
            ),
            "ThrottlingException"
        );
        assert_eq!(error_code(None, &Value::Null, 503), "HTTP503");
        assert_eq!(kind_of("ParameterNotFound", 400), PortErrorKind::NotFound);
        assert_eq!(kind_of("AccessDeniedException", 400), PortErrorKind::Denied);
        assert_eq!(kind_of("HTTP503", 503), PortErrorKind::Transient);
    }
}
