//! The few AWS calls made without an SDK client: Secrets Manager's `GetSecretValue`, Parameter
//! Store's `GetParameter` and KMS's `Encrypt`/`Decrypt`, over the JSON protocol (awsJson1_1)
//! with SigV4.
//!
//! Their SDK crates (`aws-sdk-secretsmanager`, `aws-sdk-ssm`, `aws-sdk-kms`) would be compiled in
//! every build of the workspace (the tests, the functions' build, the size check) for one or two
//! operations each, past the clean build budget of docs/performance.md. The protocol is small: a
//! POST of JSON with `X-Amz-Target` (`secretsmanager.GetSecretValue`, `AmazonSSM.GetParameter`,
//! `TrentService.Encrypt`) and content type `application/x-amz-json-1.1`; an error answers
//! 4xx/5xx with `__type` (or `x-amzn-errortype`) naming it
//! (https://docs.aws.amazon.com/secretsmanager/latest/apireference/CommonErrors.html,
//! https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html).

use aws_credential_types::provider::SharedCredentialsProvider;
use cutover_core::ports::{PortError, PortErrorKind};
use serde_json::Value;
use std::time::Duration;

pub struct JsonApi {
    /// The port named in errors.
    port: &'static str,
    client: reqwest::Client,
    credentials: Option<SharedCredentialsProvider>,
    /// Overrides `https://{service}.{region}.amazonaws.com` (`AWS_ENDPOINT_URL`: tests, private
    /// endpoints).
    endpoint: Option<String>,
}

impl JsonApi {
    pub fn new(port: &'static str, sdk: &aws_config::SdkConfig) -> Result<Self, reqwest::Error> {
        Ok(JsonApi {
            port,
            client: crate::tls::reqwest_builder(&format!("cutover-{port}"))
                .timeout(Duration::from_secs(10))
                .build()?,
            credentials: sdk.credentials_provider(),
            endpoint: sdk
                .endpoint_url()
                .map(|e| e.trim_end_matches('/').to_string()),
        })
    }

    /// One request to `service` (its endpoint prefix and signing name) in `region`: the answer's
    /// JSON, or the service's error with its own code.
    pub async fn call(
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
            self.port,
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
                self.port,
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
        Err(PortError::new(
            self.port,
            kind_of(&code, status),
            &code,
            message,
        ))
    }
}

/// The region an ARN names (`arn:partition:service:REGION:…`).
pub fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
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
        "ResourceNotFoundException"
        | "ParameterNotFound"
        | "ParameterVersionNotFound"
        | "NotFoundException" => PortErrorKind::NotFound,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "DecryptionFailure"
        | "KMSAccessDeniedException" => PortErrorKind::Denied,
        "InvalidRequestException"
        | "InvalidParameterException"
        | "ValidationException"
        | "InvalidCiphertextException" => PortErrorKind::Invalid,
        _ if status >= 500 => PortErrorKind::Transient,
        _ => PortErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
