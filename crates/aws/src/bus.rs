//! EventBridge: the events of runs (cutover_core::events) on the account's default bus.
//! PutEvents takes at most 10 entries a call and answers per entry; refused entries are sent
//! again once, and any still refused fail the call, so the stream delivers the batch again
//! (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html).

use crate::errors::map_sdk_error;
use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use cutover_core::events::{Bus, CutoverEvent, SOURCE};
use cutover_core::ports::{PortError, PortErrorKind};

/// Entries per PutEvents call: the API's limit.
pub const ENTRIES_PER_CALL: usize = 10;

pub struct EventBridgeBus {
    client: crate::Lazy<Client>,
}

impl EventBridgeBus {
    pub fn new(client: impl Into<crate::Lazy<Client>>) -> Self {
        EventBridgeBus {
            client: client.into(),
        }
    }

    /// Sends `entries`; returns those refused (with the first refusal's code and message).
    async fn put(
        &self,
        entries: Vec<PutEventsRequestEntry>,
    ) -> Result<(Vec<PutEventsRequestEntry>, Option<String>), PortError> {
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries.clone()))
            .send()
            .await
            .map_err(|e| map_sdk_error("events", e, &["ValidationException"], &[], &[]))?;
        let mut refused = Vec::new();
        let mut why = None;
        for (entry, result) in entries.into_iter().zip(out.entries()) {
            if let Some(code) = result.error_code() {
                why.get_or_insert_with(|| {
                    format!("{code}: {}", result.error_message().unwrap_or_default())
                });
                refused.push(entry);
            }
        }
        Ok((refused, why))
    }
}

fn entry(e: &CutoverEvent) -> Result<PutEventsRequestEntry, PortError> {
    let detail = serde_json::to_string(&e.detail)
        .map_err(|x| PortError::new("events", PortErrorKind::Other, "Encode", x.to_string()))?;
    Ok(PutEventsRequestEntry::builder()
        .source(SOURCE)
        .detail_type(e.detail_type.as_str())
        .detail(detail)
        .build())
}

#[async_trait]
impl Bus for EventBridgeBus {
    async fn publish(&self, events: &[CutoverEvent]) -> Result<(), PortError> {
        for chunk in events.chunks(ENTRIES_PER_CALL) {
            let entries = chunk.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
            let (refused, _) = self.put(entries).await?;
            if refused.is_empty() {
                continue;
            }
            let (still, why) = self.put(refused).await?;
            if !still.is_empty() {
                return Err(PortError::new(
                    "events",
                    PortErrorKind::Transient,
                    "FailedEntries",
                    format!(
                        "{} event(s) refused twice: {}",
                        still.len(),
                        why.unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }
}
