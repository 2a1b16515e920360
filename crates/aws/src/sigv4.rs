//! Signature Version 4 for the requests made without an SDK client: data hooks (Lambda Invoke,
//! API Gateway's `execute-api`) and the few JSON-protocol calls of `json_api`.
//! (Signing AWS API requests: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html)

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use cutover_core::ports::{PortError, PortErrorKind};
use std::time::SystemTime;

/// The SigV4 headers for one request (`headers` must include `host`), signed for `service` in
/// `region` with the current credentials of `provider`. `port` names the port in errors.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn signed_headers(
    port: &'static str,
    provider: Option<&SharedCredentialsProvider>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    service: &str,
    region: &str,
) -> Result<Vec<(String, String)>, PortError> {
    let denied = |m: String| PortError::new(port, PortErrorKind::Denied, "NoCredentials", m);
    let failed = |m: String| PortError::new(port, PortErrorKind::Other, "SigningFailed", m);
    let provider =
        provider.ok_or_else(|| denied("no AWS credentials to sign the request".into()))?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| denied(e.to_string()))?;
    let identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(format!("signing: {e}")))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| failed(format!("signing: {e}")))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| failed(format!("signing: {e}")))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}
