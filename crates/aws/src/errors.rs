//! One mapping from SDK errors to `PortError`, keeping the service's error code.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use cutover_core::ports::{PortError, PortErrorKind};

/// Error codes that mean "try again later", across the services used here.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
];
const TRANSIENT: &[&str] = &[
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
];

/// Maps any SDK error. `invalid`, `not_found` and `conflict` list the service's own codes of those kinds.
pub fn map_sdk_error<E, R>(
    service: &'static str,
    err: aws_sdk_dynamodb::error::SdkError<E, R>,
    invalid: &[&str],
    not_found: &[&str],
    conflict: &[&str],
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::SdkError;
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = e.message().unwrap_or_default().to_string();
            let kind = classify(&code, invalid, not_found, conflict);
            PortError {
                service,
                code,
                message,
                kind,
            }
        }
        SdkError::TimeoutError(_) => PortError::new(
            service,
            PortErrorKind::Transient,
            "Timeout",
            "request timed out",
        ),
        SdkError::DispatchFailure(d) => PortError::new(
            service,
            PortErrorKind::Transient,
            "DispatchFailure",
            format!("{d:?}"),
        ),
        SdkError::ResponseError(r) => PortError::new(
            service,
            PortErrorKind::Transient,
            "ResponseError",
            format!("{r:?}"),
        ),
        other => PortError::new(
            service,
            PortErrorKind::Other,
            "ClientError",
            other.to_string(),
        ),
    }
}

pub fn classify(
    code: &str,
    invalid: &[&str],
    not_found: &[&str],
    conflict: &[&str],
) -> PortErrorKind {
    if THROTTLING.contains(&code) {
        PortErrorKind::Throttled
    } else if code == "PriorRequestNotComplete" {
        PortErrorKind::Busy
    } else if TRANSIENT.contains(&code) {
        PortErrorKind::Transient
    } else if invalid.contains(&code) {
        PortErrorKind::Invalid
    } else if not_found.contains(&code) {
        PortErrorKind::NotFound
    } else if conflict.contains(&code) {
        PortErrorKind::Conflict
    } else if code.contains("AccessDenied") || code == "UnauthorizedOperation" {
        PortErrorKind::Denied
    } else {
        PortErrorKind::Other
    }
}

/// A service's own error codes by kind: one value per service replaces a wrapper per service.
#[derive(Debug, Clone, Copy)]
pub struct Codes {
    pub service: &'static str,
    pub invalid: &'static [&'static str],
    pub not_found: &'static [&'static str],
    pub conflict: &'static [&'static str],
}

impl Codes {
    pub fn map<E, R>(&self, err: aws_sdk_dynamodb::error::SdkError<E, R>) -> PortError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        map_sdk_error(
            self.service,
            err,
            self.invalid,
            self.not_found,
            self.conflict,
        )
    }
}

/// Converts the SDK's timestamp.
pub fn to_chrono(t: &aws_smithy_types::DateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

pub fn build_err(service: &'static str, e: impl std::fmt::Display) -> PortError {
    PortError::new(service, PortErrorKind::Other, "BuildError", e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes() {
        assert_eq!(
            classify("Throttling", &[], &[], &[]),
            PortErrorKind::Throttled
        );
        assert_eq!(
            classify("PriorRequestNotComplete", &[], &[], &[]),
            PortErrorKind::Busy
        );
        assert_eq!(
            classify("InvalidChangeBatch", &["InvalidChangeBatch"], &[], &[]),
            PortErrorKind::Invalid
        );
        assert_eq!(
            classify("AccessDeniedException", &[], &[], &[]),
            PortErrorKind::Denied
        );
        assert_eq!(classify("Weird", &[], &[], &[]), PortErrorKind::Other);
    }
}
