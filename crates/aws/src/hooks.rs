//! Data hooks over HTTPS with SigV4: a Lambda hook is the Lambda Invoke API (RequestResponse), a
//! URL hook is a POST/PUT to the application owner's endpoint, signed for API Gateway's IAM
//! authorization (`execute-api`) unless the plan says `auth: none`. One reqwest client serves
//! both, with the function's own credentials.
//!
//! Lambda Invoke: `POST /2015-03-31/functions/{FunctionName}/invocations` with
//! `X-Amz-Invocation-Type: RequestResponse`; a function that threw answers 200 with the
//! `X-Amz-Function-Error` header set (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html).
//! API Gateway IAM authorization: requests are signed with Signature Version 4 for the service
//! `execute-api` (https://docs.aws.amazon.com/apigateway/latest/developerguide/permissions.html).

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use cutover_core::plan::Hook;
use cutover_core::ports::{Hooks, PortError, PortErrorKind};
use cutover_core::secret::ResolvedHeaders;
use serde_json::Value;
use std::time::Duration;

const SERVICE: &str = "hooks";

pub struct HttpHooks {
    client: reqwest::Client,
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    /// Overrides `https://lambda.{region}.amazonaws.com` (tests, private endpoints).
    lambda_endpoint: Option<String>,
    /// URL hooks may not reach this machine or its platform (cutover_core::netguard), by literal
    /// and by resolved address; off only for tests whose hook listens on loopback.
    guarded: bool,
}

fn failed(message: impl Into<String>) -> PortError {
    PortError::new(SERVICE, PortErrorKind::Other, "HookFailed", message)
}

impl HttpHooks {
    pub fn new(sdk: &aws_config::SdkConfig) -> Result<Self, reqwest::Error> {
        let client = crate::tls::reqwest_builder("cutover-data-hook")
            .dns_resolver(std::sync::Arc::new(crate::tls::GuardedResolver))
            .build()?;
        Ok(HttpHooks {
            client,
            credentials: sdk.credentials_provider(),
            region: sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into()),
            // The SDK's endpoint override (`AWS_ENDPOINT_URL`, "every service's endpoint":
            // https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html) reaches
            // Lambda hooks too, as it reaches every SDK client of the function.
            lambda_endpoint: sdk
                .endpoint_url()
                .map(|e| e.trim_end_matches('/').to_string()),
            guarded: true,
        })
    }

    /// Hooks that may reach loopback: for tests against a local server only.
    pub fn allowing_local_targets(mut self) -> Result<Self, reqwest::Error> {
        self.client = crate::tls::reqwest_builder("cutover-data-hook").build()?;
        self.guarded = false;
        Ok(self)
    }

    pub fn with_lambda_endpoint(mut self, endpoint: &str) -> Self {
        self.lambda_endpoint = Some(endpoint.trim_end_matches('/').to_string());
        self
    }

    /// The region of a Lambda ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME), else ours.
    fn lambda_url(&self, arn: &str) -> (String, String) {
        let region = arn
            .split(':')
            .nth(3)
            .filter(|r| !r.is_empty())
            .unwrap_or(&self.region)
            .to_string();
        let base = self
            .lambda_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://lambda.{region}.amazonaws.com"));
        let name: String = arn
            .chars()
            .map(|c| match c {
                ':' => "%3A".to_string(),
                c => c.to_string(),
            })
            .collect();
        (
            format!("{base}/2015-03-31/functions/{name}/invocations"),
            region,
        )
    }

    async fn send(
        &self,
        hook: &Hook,
        method: &str,
        url: &str,
        extra: &[(&str, &str)],
        body: Vec<u8>,
        sign_as: Option<(&str, &str)>,
    ) -> Result<reqwest::Response, PortError> {
        let mut headers: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        headers.push(("content-type".into(), "application/json".into()));
        if let Some((service, region)) = sign_as {
            let host = reqwest::Url::parse(url)
                .ok()
                .and_then(|u| {
                    u.host_str()
                        .map(|h| u.port().map_or(h.to_string(), |p| format!("{h}:{p}")))
                })
                .unwrap_or_default();
            let mut to_sign: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            to_sign.push(("host", host.as_str()));
            let signed = crate::sigv4::signed_headers(
                SERVICE,
                self.credentials.as_ref(),
                method,
                url,
                &to_sign,
                &body,
                service,
                region,
            )
            .await?;
            headers.extend(signed);
        }
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| failed(format!("method: {e}")))?;
        let mut req = self
            .client
            .request(method, url)
            .timeout(Duration::from_secs(hook.timeout_seconds))
            .body(body);
        for (k, v) in &headers {
            // Every value is marked sensitive: never shown by the client's Debug output.
            let mut value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| failed(format!("header {k} holds a character HTTP refuses")))?;
            value.set_sensitive(true);
            req = req.header(k.as_str(), value);
        }
        req.send().await.map_err(|e| {
            if e.is_timeout() {
                PortError::new(
                    SERVICE,
                    PortErrorKind::Other,
                    "HookTimedOut",
                    format!("no answer within {}s", hook.timeout_seconds),
                )
            } else {
                PortError::new(
                    SERVICE,
                    PortErrorKind::Transient,
                    "HookUnreachable",
                    e.to_string(),
                )
            }
        })
    }
}

impl HttpHooks {
    /// Lambda GetFunction (`GET /2015-03-31/functions/{FunctionName}`,
    /// https://docs.aws.amazon.com/lambda/latest/api/API_GetFunction.html), signed: the
    /// function's `Configuration.State` (`Pending`, `Active`, `Inactive` or `Failed`), or None
    /// when Lambda answers 404 (`ResourceNotFoundException`: no such function).
    pub async fn lambda_function_state(&self, arn: &str) -> Result<Option<String>, PortError> {
        let (invoke, region) = self.lambda_url(arn);
        let url = invoke.trim_end_matches("/invocations").to_string();
        let hook: Hook = serde_json::from_value(serde_json::json!({
            "lambdaArn": arn,
            "timeoutSeconds": 10,
        }))
        .map_err(|e| failed(e.to_string()))?;
        let resp = self
            .send(
                &hook,
                "GET",
                &url,
                &[],
                Vec::new(),
                Some(("lambda", &region)),
            )
            .await?;
        let status = resp.status().as_u16();
        let body = answer(resp).await;
        match status {
            200 => Ok(Some(
                body["Configuration"]["State"]
                    .as_str()
                    .unwrap_or("Active")
                    .to_string(),
            )),
            404 => Ok(None),
            s => Err(PortError::new(
                "lambda",
                if s == 403 {
                    PortErrorKind::Invalid
                } else {
                    PortErrorKind::Transient
                },
                body["__type"]
                    .as_str()
                    .or(body["Type"].as_str())
                    .unwrap_or("GetFunctionFailed"),
                format!(
                    "GetFunction {arn}: HTTP {s} {}",
                    body["message"]
                        .as_str()
                        .or(body["Message"].as_str())
                        .unwrap_or_default()
                ),
            )),
        }
    }

    /// One JSON request to an API Gateway API behind IAM authorization, signed for
    /// `execute-api` with these credentials: the status and the JSON answer (Null if none).
    pub async fn call_api(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), PortError> {
        self.call_api_as(method, url, body, None).await
    }

    /// As [`HttpHooks::call_api`]; with `bearer`, the request carries that token
    /// (`Authorization: Bearer …`, for an API behind a JWT authorizer) and is not signed.
    pub async fn call_api_as(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> Result<(u16, Value), PortError> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let hook = Hook {
            lambda_arn: None,
            url: Some(url.to_string()),
            method: Some(method.to_string()),
            auth: None,
            timeout_seconds: 30,
            headers: Default::default(),
        };
        let authorization = bearer.map(|t| format!("Bearer {t}"));
        let resp = match &authorization {
            Some(a) => {
                self.send(&hook, method, url, &[("authorization", a)], bytes, None)
                    .await?
            }
            None => {
                self.send(
                    &hook,
                    method,
                    url,
                    &[],
                    bytes,
                    Some(("execute-api", self.region.as_str())),
                )
                .await?
            }
        };
        let status = resp.status().as_u16();
        Ok((status, answer(resp).await))
    }
}

async fn answer(resp: reqwest::Response) -> Value {
    let bytes = resp.bytes().await.unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

#[async_trait]
impl Hooks for HttpHooks {
    async fn call(
        &self,
        hook: &Hook,
        headers: &ResolvedHeaders,
        payload: &Value,
    ) -> Result<Value, PortError> {
        let body = serde_json::to_vec(payload).map_err(|e| failed(e.to_string()))?;
        if let Some(arn) = &hook.lambda_arn {
            let (url, region) = self.lambda_url(arn);
            let resp = self
                .send(
                    hook,
                    "POST",
                    &url,
                    &[("x-amz-invocation-type", "RequestResponse")],
                    body,
                    Some(("lambda", &region)),
                )
                .await?;
            let status = resp.status();
            let function_error = resp
                .headers()
                .get("x-amz-function-error")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return match (status.as_u16(), function_error) {
                (200, None) => Ok(answer(resp).await),
                (200, Some(kind)) => {
                    // The function threw: its error payload says why (never a secret of ours).
                    let why = answer(resp).await;
                    let msg = why
                        .get("errorMessage")
                        .and_then(Value::as_str)
                        .unwrap_or("no message");
                    Err(failed(format!("{kind}: {msg}")))
                }
                (429, _) => Err(PortError::new(
                    SERVICE,
                    PortErrorKind::Throttled,
                    "TooManyRequestsException",
                    "Lambda throttled the hook",
                )),
                (s, _) if s >= 500 => Err(PortError::new(
                    SERVICE,
                    PortErrorKind::Transient,
                    "ServiceException",
                    format!("Lambda answered HTTP {s}"),
                )),
                (s, _) => Err(failed(format!("Lambda Invoke answered HTTP {s}"))),
            };
        }
        let url = hook.url.as_deref().unwrap_or_default();
        if self.guarded {
            if let Some(why) = url::Url::parse(url)
                .ok()
                .and_then(|u| cutover_core::netguard::forbidden_url(&u))
            {
                return Err(failed(format!("refused: {why}")));
            }
        }
        let method = hook.method.as_deref().unwrap_or("POST");
        let sign_as =
            (hook.auth.as_deref() != Some("none")).then_some(("execute-api", self.region.as_str()));
        // The plan's headers (read from Secrets Manager or Parameter Store just now).
        let extra: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        let resp = self.send(hook, method, url, &extra, body, sign_as).await?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(answer(resp).await),
            429 | 502..=504 => Err(PortError::new(
                SERVICE,
                PortErrorKind::Transient,
                "HookUnavailable",
                format!("HTTP {status}"),
            )),
            _ => Err(failed(format!("HTTP {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_hook_is_invoked_in_its_own_region_with_the_arn_encoded() {
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let h = HttpHooks::new(&sdk).unwrap();
        let (url, region) =
            h.lambda_url("arn:aws:lambda:us-west-2:123456789012:function:orders-freeze");
        assert_eq!(region, "us-west-2");
        assert_eq!(
            url,
            "https://lambda.us-west-2.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A123456789012%3Afunction%3Aorders-freeze/invocations"
        );
        // The SDK's endpoint override (AWS_ENDPOINT_URL) is every client's, the hooks' too.
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:4566/")
            .build();
        let (url, _) = HttpHooks::new(&sdk)
            .unwrap()
            .lambda_url("arn:aws:lambda:eu-west-1:123456789012:function:f");
        assert!(
            url.starts_with("http://127.0.0.1:4566/2015-03-31/functions/"),
            "{url}"
        );
    }
}
