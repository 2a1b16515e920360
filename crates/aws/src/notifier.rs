//! Approval notices on SNS. The notice type has no token field, so none can be published.

use crate::errors::map_sdk_error;
use async_trait::async_trait;
use cutover_core::model::{ApprovalNotice, RunNotice};
use cutover_core::ports::{Notifier, PortError};

#[derive(Clone)]
pub struct SnsNotifier {
    client: crate::Lazy<aws_sdk_sns::Client>,
    topic_arn: String,
    /// The approval API's base URL, named in approval notices when known.
    api_url: Option<String>,
}

impl SnsNotifier {
    pub fn new(
        client: impl Into<crate::Lazy<aws_sdk_sns::Client>>,
        topic_arn: impl Into<String>,
    ) -> Self {
        SnsNotifier {
            client: client.into(),
            topic_arn: topic_arn.into(),
            api_url: None,
        }
    }

    pub fn with_api_url(mut self, url: Option<String>) -> Self {
        self.api_url = url.filter(|u| !u.is_empty());
        self
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
        let details =
            serde_json::to_string_pretty(notice).map_err(|e| crate::errors::build_err("sns", e))?;
        // Plain words first (an e-mail subscriber reads this), then how to answer, then the data.
        let api = self
            .api_url
            .as_deref()
            .map(|u| format!("\nApproval API: {u} (cutover run … --api-url {u})"))
            .unwrap_or_default();
        let body = format!(
            "{}\n\nTo answer: {}{api}\n\n{details}",
            notice.summary, notice.how_to_answer
        );
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
                "cutover {}{}: {} (run {})",
                if notice.is_page() { "PAGE " } else { "" },
                notice.application,
                notice.kind,
                notice.run_id
            ),
            body,
        )
        .await
    }
}
