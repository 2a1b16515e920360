//! For AWS-compatible test endpoints only (moto): its DMS answers carry timestamps as ISO 8601
//! strings, where the AWS JSON protocol sends epoch seconds and the SDK for Rust refuses anything
//! else. This interceptor rewrites such fields before deserialization. It is installed only on
//! clients built for `--aws-endpoint-url` and in the wire tests, never in deployed functions.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use http_body::{Body, Frame};
use serde_json::Value;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// A DMS client for an AWS-compatible endpoint (moto) whose answers carry ISO timestamps: the
/// interceptor below converts them before the SDK reads them.
pub fn dms_client(sdk: &aws_config::SdkConfig) -> aws_sdk_databasemigration::Client {
    aws_sdk_databasemigration::Client::from_conf(
        aws_sdk_databasemigration::config::Builder::from(sdk)
            .interceptor(IsoTimestampsAsEpoch)
            .build(),
    )
}

#[derive(Debug, Default, Clone, Copy)]
pub struct IsoTimestampsAsEpoch;

impl Intercept for IsoTimestampsAsEpoch {
    fn name(&self) -> &'static str {
        "IsoTimestampsAsEpoch"
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = std::mem::replace(ctx.response_mut().body_mut(), SdkBody::taken());
        *ctx.response_mut().body_mut() = SdkBody::from_body_1_x(Rewrite {
            inner: body,
            buf: Vec::new(),
            done: false,
        });
        Ok(())
    }
}

/// Reads the whole (small, JSON) body, then yields it rewritten as one frame.
struct Rewrite {
    inner: SdkBody,
    buf: Vec<u8>,
    done: bool,
}

impl Body for Rewrite {
    type Data = Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    this.done = true;
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rewrite(&this.buf))))));
                }
            }
        }
    }
}

/// Timestamp-looking strings under keys that name a date or time become epoch seconds.
pub fn rewrite(body: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if let Value::String(s) = x {
                        if k.contains("Date") || k.contains("Time") {
                            if let Some(secs) = epoch(s) {
                                *x = serde_json::Number::from_f64(secs)
                                    .map(Value::Number)
                                    .unwrap_or(Value::Null);
                                continue;
                            }
                        }
                    }
                    walk(x);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}

fn epoch(s: &str) -> Option<f64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros() as f64 / 1e6);
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_micros() as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::rewrite;
    use serde_json::{json, Value};

    #[test]
    fn converts_only_timestamp_fields() {
        let body = json!({"ReplicationTask": {"ReplicationTaskCreationDate": "2026-11-22T01:15:04.5", "Status": "2026-11-22T01:15:04", "StopDate": "not a date"}});
        let out: Value = serde_json::from_slice(&rewrite(body.to_string().as_bytes())).unwrap();
        assert_eq!(
            out["ReplicationTask"]["ReplicationTaskCreationDate"],
            json!(1795310104.5)
        );
        assert_eq!(
            out["ReplicationTask"]["Status"], "2026-11-22T01:15:04",
            "not a date field"
        );
        assert_eq!(out["ReplicationTask"]["StopDate"], "not a date");
        assert_eq!(rewrite(b"<xml/>"), b"<xml/>");
    }
}
