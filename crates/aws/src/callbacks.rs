//! Step Functions callbacks: SendTaskSuccess / SendTaskFailure. The token is never logged.

use crate::errors::map_sdk_error;
use async_trait::async_trait;
use cutover_core::ports::{PortError, TaskCallbacks};
use serde_json::Value;

const SERVICE: &str = "states";
const INVALID: &[&str] = &["InvalidOutput", "TaskTimedOut"];
const NOT_FOUND: &[&str] = &["InvalidToken", "TaskDoesNotExist"];

#[derive(Clone)]
pub struct SfnCallbacks {
    client: aws_sdk_sfn::Client,
}

impl SfnCallbacks {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        SfnCallbacks { client }
    }
}

/// SendTaskFailure limits: error 256 characters, cause 32768.
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[async_trait]
impl TaskCallbacks for SfnCallbacks {
    async fn send_success(&self, task_token: &str, output: Value) -> Result<(), PortError> {
        self.client
            .send_task_success()
            .task_token(task_token)
            .output(output.to_string())
            .send()
            .await
            .map_err(|e| map_sdk_error(SERVICE, e, INVALID, NOT_FOUND, &[]))?;
        Ok(())
    }

    async fn send_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), PortError> {
        self.client
            .send_task_failure()
            .task_token(task_token)
            .error(clip(error, 256))
            .cause(clip(cause, 32768))
            .send()
            .await
            .map_err(|e| map_sdk_error(SERVICE, e, INVALID, NOT_FOUND, &[]))?;
        Ok(())
    }
}
