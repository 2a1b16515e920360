//! publish-events: the run table's stream to EventBridge (crate::events, docs/events.md).

use super::Deps;
use crate::error::StepError;
use crate::events::{gate_changed, run_changed, stream_changes, TableChange};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishOutput {
    /// Events sent to the bus.
    pub published: usize,
}

/// Turns one batch of the stream into events and puts them on the bus. A batch that cannot be
/// read or put fails whole: the stream delivers it again (event ids make that harmless).
pub async fn publish_events(input: Value, deps: &Deps) -> Result<PublishOutput, StepError> {
    let changes = stream_changes(&input).map_err(StepError::invalid)?;
    let now = deps.clock.now();
    let mut events = Vec::new();
    // A gate's item names its run; the run's item names the application (read once a batch).
    let mut applications: std::collections::HashMap<String, String> = Default::default();
    for change in changes {
        match change {
            TableChange::Run { old, new } => events.extend(run_changed(old.as_deref(), &new, now)),
            TableChange::Gate { old, new } => {
                let application = match applications.get(&new.run_id) {
                    Some(a) => a.clone(),
                    None => {
                        let a = deps
                            .store
                            .load_run(&new.run_id)
                            .await
                            .map_err(super::store_err)?
                            .map_or_else(|| new.run_id.clone(), |r| r.application);
                        applications.insert(new.run_id.clone(), a.clone());
                        a
                    }
                };
                events.extend(gate_changed(old.as_deref(), &new, &application, now));
            }
        }
    }
    if !events.is_empty() {
        deps.bus
            .publish(&events)
            .await
            .map_err(|e| StepError::from_port(e, |e| StepError::Retryable(e.to_string())))?;
    }
    Ok(PublishOutput {
        published: events.len(),
    })
}
