//! Approval notices, pages and run notices on SNS, with message attributes a subscription's
//! filter policy routes by. The notice types have no token field, so none can be published.

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

/// The message attributes every publish carries, so that a subscription's filter policy can
/// route by them (SNS filter policies match message attributes or the payload, never the
/// subject: https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html):
/// `kind` (`page` | `approval` | `notice`), `event` (the notice's kind, or the gate), `application`,
/// `runId`, and `outcome` on the notice that a run ended.
pub fn message_attributes(
    kind: &str,
    event: &str,
    application: &str,
    run_id: &str,
) -> Vec<(&'static str, String)> {
    let mut attrs = vec![
        ("kind", kind.to_string()),
        ("event", event.to_string()),
        ("application", application.to_string()),
        ("runId", run_id.to_string()),
    ];
    // The notice a run's close sends is `run_<outcome>`.
    const OUTCOMES: [&str; 6] = [
        "completed",
        "completed_with_errors",
        "rolled_back",
        "aborted",
        "failed",
        "rollback_failed",
    ];
    if let Some(outcome) = event.strip_prefix("run_").filter(|o| OUTCOMES.contains(o)) {
        attrs.push(("outcome", outcome.to_string()));
    }
    attrs
}

/// The message as AWS Chatbot (Amazon Q Developer in chat applications) renders a custom
/// notification: `version` 1.0, `source` custom, the content in the chat platform's markdown,
/// the run id as the thread, so that every notice of one run lands in one thread
/// (https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html, "Event schema").
pub fn chat_message(
    title: &str,
    description: &str,
    next_steps: &[String],
    event: &str,
    application: &str,
    run_id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "version": "1.0",
        "source": "custom",
        "id": format!("{run_id}:{event}"),
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": description,
            "nextSteps": next_steps,
            "keywords": [application, event],
        },
        "metadata": {
            "threadId": run_id,
            "summary": title,
            "eventType": event,
            "additionalContext": {"application": application, "runId": run_id},
        },
    })
}

/// A chat notification's `id` is the notice's dedupe key where it has one, so that a repeated
/// publish is the same notification.
fn with_chat_id(mut chat: serde_json::Value, dedupe_key: &str) -> serde_json::Value {
    if !dedupe_key.is_empty() {
        chat["id"] = serde_json::Value::String(dedupe_key.to_string());
    }
    chat
}

/// One publish for every protocol (SNS `MessageStructure: json`,
/// https://docs.aws.amazon.com/sns/latest/api/API_Publish.html): the words for e-mail and
/// queues (`default`, `email`), the chat notification for HTTPS subscribers, which is how AWS
/// Chatbot subscribes to a topic.
pub fn structured_message(body: &str, chat: &serde_json::Value) -> String {
    serde_json::json!({
        "default": body,
        "email": body,
        "https": chat.to_string(),
    })
    .to_string()
}

impl SnsNotifier {
    async fn publish(
        &self,
        subject: String,
        body: String,
        chat: serde_json::Value,
        attributes: Vec<(&'static str, String)>,
    ) -> Result<(), PortError> {
        // SNS subjects: at most 100 printable ASCII characters.
        let subject: String = subject
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(100)
            .collect();
        let mut publish = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message_structure("json")
            .message(structured_message(&body, &chat));
        for (name, value) in attributes.into_iter().filter(|(_, v)| !v.is_empty()) {
            publish = publish.message_attributes(
                name,
                aws_sdk_sns::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map_err(|e| crate::errors::build_err("sns", e))?,
            );
        }
        publish.send().await.map_err(|e| {
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
        let title = format!(
            "cutover {}: approval {} requested",
            notice.application, notice.gate
        );
        let chat = chat_message(
            &title,
            &notice.summary,
            &[
                format!(
                    "Approve: `cutover run approve {} {} --reason \"…\"`",
                    notice.run_id, notice.gate
                ),
                format!(
                    "Reject: `cutover run reject {} {} --reason \"…\"`",
                    notice.run_id, notice.gate
                ),
                format!("Follow: `cutover run status {} --watch`", notice.run_id),
            ],
            &notice.gate,
            &notice.application,
            &notice.run_id,
        );
        self.publish(
            title,
            body,
            chat,
            message_attributes(
                "approval",
                &notice.gate,
                &notice.application,
                &notice.run_id,
            ),
        )
        .await
    }

    async fn page(&self, notice: &RunNotice) -> Result<(), PortError> {
        let body =
            serde_json::to_string_pretty(notice).map_err(|e| crate::errors::build_err("sns", e))?;
        let title = format!(
            "cutover {}{}: {} (run {})",
            if notice.is_page() { "PAGE " } else { "" },
            notice.application,
            notice.kind,
            notice.run_id
        );
        let chat = chat_message(
            &title,
            &notice.message,
            &[
                format!("Status: `cutover run status {}`", notice.run_id),
                format!(
                    "Report: `cutover run report {} --html run.html`",
                    notice.run_id
                ),
            ],
            &notice.kind,
            &notice.application,
            &notice.run_id,
        );
        let chat = with_chat_id(chat, &notice.dedupe_key);
        let mut attributes = message_attributes(
            if notice.is_page() { "page" } else { "notice" },
            &notice.kind,
            &notice.application,
            &notice.run_id,
        );
        // The same on every publish of this notice: what a pager deduplicates on.
        attributes.push(("dedupeKey", notice.dedupe_key.clone()));
        self.publish(title, body, chat, attributes).await
    }
}

#[cfg(test)]
mod tests {
    use super::{chat_message, message_attributes, structured_message};

    /// E-mail and queues get the words; HTTPS subscribers (AWS Chatbot) the custom notification,
    /// in the schema Chatbot documents, threaded by run.
    #[test]
    fn each_protocol_gets_its_message_and_chat_gets_its_schema() {
        let chat = chat_message(
            "cutover orders: approval before-50 requested",
            "green at 10 %",
            &["Approve: `cutover run approve orders-1 before-50`".into()],
            "before-50",
            "orders",
            "orders-1",
        );
        let m: serde_json::Value =
            serde_json::from_str(&structured_message("the words", &chat)).unwrap();
        assert_eq!(m["default"], "the words");
        assert_eq!(m["email"], "the words");
        let https: serde_json::Value = serde_json::from_str(m["https"].as_str().unwrap()).unwrap();
        assert_eq!(https["version"], "1.0");
        assert_eq!(https["source"], "custom");
        assert_eq!(https["content"]["textType"], "client-markdown");
        assert_eq!(https["metadata"]["threadId"], "orders-1");
        assert!(https["content"]["nextSteps"][0]
            .as_str()
            .unwrap()
            .contains("cutover run approve orders-1 before-50"));
    }

    #[test]
    fn attributes_name_kind_event_application_run_and_outcome() {
        let a = message_attributes("notice", "run_rolled_back", "orders", "orders-1");
        assert_eq!(
            a,
            vec![
                ("kind", "notice".to_string()),
                ("event", "run_rolled_back".to_string()),
                ("application", "orders".to_string()),
                ("runId", "orders-1".to_string()),
                ("outcome", "rolled_back".to_string()),
            ]
        );
        // A page named run_… that is no outcome carries none.
        let stuck = message_attributes("page", "run_stuck", "orders", "orders-1");
        assert!(stuck.iter().all(|(k, _)| *k != "outcome"), "{stuck:?}");
        let started = message_attributes("notice", "run_started", "orders", "orders-1");
        assert!(started.iter().all(|(k, _)| *k != "outcome"), "{started:?}");
    }
}
