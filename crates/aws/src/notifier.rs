//! Approval notices on SNS. The notice type has no token field, so none can be published.

use crate::errors::map_sdk_error;
use async_trait::async_trait;
use cutover_core::model::{ApprovalNotice, RunNotice};
use cutover_core::ports::{Notifier, PortError};

#[derive(Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsNotifier {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

impl SnsNotifier {
    async fn publish(&self, subject: String, body: String) -> Result<(), PortError> {
        // SNS subjects: at most 100 printable ASCII characters.
        let subject: String = subject
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(100)
            .collect();
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(body)
            .send()
            .await
            .map_err(|e| {
                map_sdk_error(
                    "sns",
                    e,
                    &["InvalidParameter", "InvalidParameterValue"],
                    &["NotFound"],
                    &[],
                )
            })?;
        Ok(())
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn approval_requested(&self, notice: &ApprovalNotice) -> Result<(), PortError> {
        let body =
            serde_json::to_string_pretty(notice).map_err(|e| crate::errors::build_err("sns", e))?;
        self.publish(
            format!(
                "cutover {}: approval {} requested",
                notice.application, notice.gate
            ),
            body,
        )
        .await
    }

    async fn page(&self, notice: &RunNotice) -> Result<(), PortError> {
        let body =
            serde_json::to_string_pretty(notice).map_err(|e| crate::errors::build_err("sns", e))?;
        self.publish(
            format!(
                "cutover {}: {} (run {})",
                notice.application, notice.kind, notice.run_id
            ),
            body,
        )
        .await
    }
}
