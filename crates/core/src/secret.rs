//! Credentials a probe or a hook sends, named by reference and never written in a plan: a
//! Secrets Manager secret or an SSM Parameter Store SecureString, read by the function when it
//! sends the request. The plan, the run table, the execution input, the audit trail and the
//! report hold only the reference.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a header's value is kept.
///
/// - `secretArn`: a Secrets Manager secret; its `SecretString` is the value, or with `jsonKey`
///   the string under that key of the JSON it holds (Secrets Manager, GetSecretValue:
///   https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html).
/// - `parameterArn`: an SSM parameter, read decrypted (GetParameter with `WithDecryption`, which
///   takes a name or an ARN: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html).
/// - `prefix`: text put before the value, not secret (`"Bearer "`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl SecretRef {
    /// The ARN the value is read from.
    pub fn arn(&self) -> &str {
        self.secret_arn
            .as_deref()
            .or(self.parameter_arn.as_deref())
            .unwrap_or_default()
    }
}

/// A header's value in a plan: a reference. An inline string is read so that plan check can
/// refuse it naming the header, instead of a parse error that names nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HeaderValue {
    Ref(SecretRef),
    Inline(String),
}

/// Header name -> where its value is kept.
pub type Headers = BTreeMap<String, HeaderValue>;

/// A credential read at run time. Its `Debug` never shows it; only the request that carries it
/// reads it (`expose`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Headers resolved for one request: name and value.
pub type ResolvedHeaders = Vec<(String, Secret)>;

/// The most headers one probe or hook may carry.
pub const MAX_HEADERS: usize = 10;

/// Headers the transport owns: a plan may not set them.
const TRANSPORT_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "expect",
];

/// `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME` (ARN formats for Secrets Manager:
/// https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html).
pub fn secret_arn(s: &str) -> bool {
    arn_parts(s, "secretsmanager").is_some_and(|rest| {
        rest.strip_prefix("secret:").is_some_and(|name| {
            (1..=512).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
        })
    })
}

/// `arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME` (Parameter Store ARNs:
/// https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-access.html).
pub fn parameter_arn(s: &str) -> bool {
    arn_parts(s, "ssm").is_some_and(|rest| {
        rest.strip_prefix("parameter/").is_some_and(|name| {
            (1..=2048).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b))
        })
    })
}

/// The resource part of an ARN of `service` with a partition, region and account, else None.
fn arn_parts<'a>(s: &'a str, service: &str) -> Option<&'a str> {
    let mut it = s.splitn(6, ':');
    let (arn, partition, svc, region, account, rest) = (
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    );
    (arn == "arn"
        && crate::plan::AWS_PARTITIONS.contains(&partition)
        && svc == service
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit()))
    .then_some(rest)
}

/// An HTTP header name (RFC 9110 `token`), 1-128 characters.
fn header_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What is wrong with `headers` at `field` (`health.http[0].headers`), as (field, message).
/// `signed`: the request is signed with SigV4, which owns `Authorization` and `X-Amz-*`.
pub fn header_violations(field: &str, headers: &Headers, signed: bool) -> Vec<(String, String)> {
    let mut out = vec![];
    if headers.len() > MAX_HEADERS {
        out.push((
            field.to_string(),
            format!("{} headers; at most {MAX_HEADERS}", headers.len()),
        ));
    }
    for (name, value) in headers {
        let f = format!("{field}.{name}");
        let lower = name.to_ascii_lowercase();
        if !header_name(name) {
            out.push((f.clone(), "is not an HTTP header name".into()));
        } else if TRANSPORT_HEADERS.contains(&lower.as_str()) {
            out.push((f.clone(), "is set by the transport, not by a plan".into()));
        } else if signed && (lower == "authorization" || lower.starts_with("x-amz-")) {
            out.push((
                f.clone(),
                "is set by the SigV4 signature of an `auth: iam` hook; use `auth: none` to send your own".into(),
            ));
        }
        match value {
            HeaderValue::Inline(_) => out.push((
                f,
                "inline values are refused: reference a Secrets Manager secret ({\"secretArn\": …}) or an SSM SecureString ({\"parameterArn\": …}), so the value never sits in the plan, the run table or the execution input".into(),
            )),
            HeaderValue::Ref(r) => {
                match (&r.secret_arn, &r.parameter_arn) {
                    (Some(_), Some(_)) => {
                        out.push((f.clone(), "takes secretArn or parameterArn, not both".into()))
                    }
                    (None, None) => out.push((f.clone(), "needs secretArn or parameterArn".into())),
                    (Some(a), None) if !secret_arn(a) => out.push((
                        format!("{f}.secretArn"),
                        format!("'{a}' is not a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"),
                    )),
                    (None, Some(a)) if !parameter_arn(a) => out.push((
                        format!("{f}.parameterArn"),
                        format!("'{a}' is not an SSM parameter ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)"),
                    )),
                    _ => {}
                }
                if r.json_key.is_some() && r.parameter_arn.is_some() {
                    out.push((
                        format!("{f}.jsonKey"),
                        "applies to secretArn only".into(),
                    ));
                }
                if let Some(k) = &r.json_key {
                    if k.is_empty() || k.len() > 256 {
                        out.push((format!("{f}.jsonKey"), "must be 1-256 characters".into()));
                    }
                }
                if let Some(p) = &r.prefix {
                    if p.len() > 64 || p.chars().any(|c| c.is_control()) {
                        out.push((
                            format!("{f}.prefix"),
                            "must be at most 64 characters, none of them control characters"
                                .into(),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// The header value from what the store answered: the `jsonKey` of a JSON secret if named, the
/// prefix put before it. Errors name what is wrong without the value.
pub fn header_value(r: &SecretRef, stored: &Secret) -> Result<Secret, String> {
    let value = match &r.json_key {
        None => stored.expose().to_string(),
        Some(k) => {
            let doc: serde_json::Value = serde_json::from_str(stored.expose()).map_err(|_| {
                format!(
                    "{} does not hold JSON, so jsonKey '{k}' cannot be read",
                    r.arn()
                )
            })?;
            doc.get(k)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| format!("{} holds no string under '{k}'", r.arn()))?
                .to_string()
        }
    };
    let full = format!("{}{value}", r.prefix.as_deref().unwrap_or_default());
    // A header value may not break the request: no control characters (RFC 9110, field values).
    if full.is_empty() || full.chars().any(|c| c.is_control()) {
        return Err(format!(
            "{} does not hold a usable header value (empty, or a control character)",
            r.arn()
        ));
    }
    Ok(Secret(full))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(json: serde_json::Value) -> Headers {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn references_are_accepted_and_inline_values_refused() {
        let ok = headers(serde_json::json!({
            "Authorization": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders/probe-AbCdEf", "jsonKey": "token", "prefix": "Bearer "},
            "X-Api-Key": {"parameterArn": "arn:aws:ssm:eu-west-1:123456789012:parameter/orders/probe-key"}
        }));
        assert_eq!(header_violations("h", &ok, false), vec![]);
        let bad = headers(serde_json::json!({
            "Authorization": "Bearer abc",
            "Host": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"},
            "X-Key": {"secretArn": "arn:awsfoo:secretsmanager:eu-west-1:123456789012:secret:x"},
            "X-Both": {"secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x", "parameterArn": "arn:aws:ssm:eu-west-1:123456789012:parameter/x"},
            "X-Ssm": {"parameterArn": "arn:aws:ssm:eu-west-1:123456789012:parameter/x", "jsonKey": "k"},
        }));
        let v = header_violations("h", &bad, false);
        let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "h.Authorization",
                "h.Host",
                "h.X-Both",
                "h.X-Key.secretArn",
                "h.X-Ssm.jsonKey"
            ]
        );
        assert!(v[0].1.contains("inline values are refused"), "{v:?}");
        // A signed hook's signature owns Authorization.
        let signed = header_violations("h", &ok, true);
        assert_eq!(signed.len(), 1);
        assert_eq!(signed[0].0, "h.Authorization");
    }

    #[test]
    fn a_header_value_is_read_from_json_and_prefixed_and_never_printed() {
        let r = SecretRef {
            secret_arn: Some("arn:aws:secretsmanager:eu-west-1:123456789012:secret:x".into()),
            parameter_arn: None,
            json_key: Some("token".into()),
            prefix: Some("Bearer ".into()),
        };
        let v = header_value(&r, &Secret::new(r#"{"token":"t0k","user":"u"}"#)).unwrap();
        assert_eq!(v.expose(), "Bearer t0k");
        assert_eq!(format!("{v:?}"), "Secret(<redacted>)");
        let e = header_value(&r, &Secret::new("plain-t0k")).unwrap_err();
        assert!(
            !e.contains("plain-t0k") && e.contains("does not hold JSON"),
            "{e}"
        );
        let e = header_value(&r, &Secret::new(r#"{"token":"a\nb"}"#)).unwrap_err();
        assert!(e.contains("control character"), "{e}");
    }
}
