//! Stable error names: the only vocabulary the ASL's Retry and Catch match on.

use crate::ports::{PortError, PortErrorKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// Bad input or a failed pre-flight check: nothing was changed, nothing to retry.
    #[error("{}", .0.join("; "))]
    ValidationFailed(Vec<String>),
    #[error("application {application} is held by run {holder}")]
    RunInProgress { application: String, holder: String },
    #[error("{0}")]
    ReplicationFailed(String),
    #[error("{0}")]
    LagNotConverged(String),
    #[error("{0}")]
    TrafficShiftFailed(String),
    #[error("{}", .0.join("; "))]
    HealthCheckFailed(Vec<String>),
    #[error("{0}")]
    ApprovalRejected(String),
    #[error("{0}")]
    ApprovalExpired(String),
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    RollbackFailed(String),
    /// A data hook (freeze, switch, unfreeze) answered with an error.
    #[error("{0}")]
    HookFailed(String),
    /// A data hook did not answer within its timeout: whether it acted is unknown.
    #[error("{0}")]
    HookTimedOut(String),
    /// Writes stayed frozen longer than data.maxFreezeSeconds without the drain completing.
    #[error("{0}")]
    FreezeTooLong(String),
    /// Green was unhealthy after the application switched to its database.
    #[error("{0}")]
    UnhealthyAfterSwitch(String),
    /// A hold (or holds and bake extensions together) outlasted controls.maxHoldSeconds.
    #[error("{0}")]
    HoldExpired(String),
    /// A transient AWS error (a network error, a 5xx): retried with back-off.
    #[error("{0}")]
    Retryable(String),
    /// Asked to slow down: the account's Route 53 budget is booked by other cutovers, a service
    /// throttled the request, or the hosted zone is still applying another change. Retried
    /// patiently (every state's `Throttled` retrier waits up to half an hour): many cutovers
    /// sharing one account queue here, and none of them should fail for it.
    #[error("{0}")]
    Throttled(String),
}

impl StepError {
    /// The name Step Functions sees as the error type.
    pub fn name(&self) -> &'static str {
        match self {
            StepError::ValidationFailed(_) => "ValidationFailed",
            StepError::RunInProgress { .. } => "RunInProgress",
            StepError::ReplicationFailed(_) => "ReplicationFailed",
            StepError::LagNotConverged(_) => "LagNotConverged",
            StepError::TrafficShiftFailed(_) => "TrafficShiftFailed",
            StepError::HealthCheckFailed(_) => "HealthCheckFailed",
            StepError::ApprovalRejected(_) => "ApprovalRejected",
            StepError::ApprovalExpired(_) => "ApprovalExpired",
            StepError::Aborted(_) => "Aborted",
            StepError::RollbackFailed(_) => "RollbackFailed",
            StepError::HookFailed(_) => "HookFailed",
            StepError::HookTimedOut(_) => "HookTimedOut",
            StepError::FreezeTooLong(_) => "FreezeTooLong",
            StepError::UnhealthyAfterSwitch(_) => "UnhealthyAfterSwitch",
            StepError::HoldExpired(_) => "HoldExpired",
            StepError::Retryable(_) => "Retryable",
            StepError::Throttled(_) => "Throttled",
        }
    }

    /// Maps a port error: throttling and a busy zone become Throttled, other transient errors
    /// Retryable, the rest goes through `other`.
    pub fn from_port(e: PortError, other: impl FnOnce(PortError) -> StepError) -> StepError {
        match e.kind {
            PortErrorKind::Throttled | PortErrorKind::Busy => StepError::Throttled(e.to_string()),
            PortErrorKind::Transient => StepError::Retryable(e.to_string()),
            _ => other(e),
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        StepError::ValidationFailed(vec![msg.into()])
    }
}

/// The `{Error, Cause}` object a Catch puts into the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorInfo {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl ErrorInfo {
    /// The cause as a person reads it. A Lambda function's error reaches a Catch with the whole
    /// error document as its cause (`{"errorType": …, "errorMessage": …}`: Step Functions,
    /// "Handling errors in Step Functions workflows"); its message is what a notice or a report
    /// should say. Any other cause is kept as it is.
    pub fn message(&self) -> String {
        match serde_json::from_str::<serde_json::Value>(&self.cause) {
            Ok(serde_json::Value::Object(doc)) => {
                match doc.get("errorMessage").and_then(|m| m.as_str()) {
                    Some(m) => m.to_string(),
                    None => self.cause.clone(),
                }
            }
            _ => self.cause.clone(),
        }
    }
}

/// Errors that end a run cleanly by policy rather than by fault.
pub const ABORT_ERRORS: &[&str] = &[
    "LagNotConverged",
    "ApprovalRejected",
    "ApprovalExpired",
    "Aborted",
];

#[cfg(test)]
mod cause_tests {
    use super::ErrorInfo;

    #[test]
    fn a_lambda_error_document_reads_as_its_message() {
        let e = |cause: &str| ErrorInfo {
            error: "ValidationFailed".into(),
            cause: cause.into(),
        };
        assert_eq!(
            e(r#"{"errorType": "ValidationFailed", "errorMessage": "dns.recordName: no such record"}"#).message(),
            "dns.recordName: no such record"
        );
        assert_eq!(e("plain words").message(), "plain words");
        assert_eq!(e(r#"{"Error": "x"}"#).message(), r#"{"Error": "x"}"#);
        assert_eq!(e("[1]").message(), "[1]");
    }
}
