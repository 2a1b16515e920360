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
    client: crate::Lazy<aws_sdk_sfn::Client>,
}

impl SfnCallbacks {
    pub fn new(client: impl Into<crate::Lazy<aws_sdk_sfn::Client>>) -> Self {
        SfnCallbacks {
            client: client.into(),
        }
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

/// DescribeExecution of the cutover machine by run id: the execution ARN is the machine's ARN
/// with `stateMachine` replaced by `execution` and the name appended
/// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
/// RUNNING and PENDING_REDRIVE count as running; ExecutionDoesNotExist is None.
#[derive(Clone)]
pub struct SfnExecutions {
    client: crate::Lazy<aws_sdk_sfn::Client>,
    machine_arn: String,
}

impl SfnExecutions {
    pub fn new(client: impl Into<crate::Lazy<aws_sdk_sfn::Client>>, machine_arn: &str) -> Self {
        SfnExecutions {
            client: client.into(),
            machine_arn: machine_arn.to_string(),
        }
    }

    pub fn execution_arn(&self, run_id: &str) -> String {
        format!(
            "{}:{run_id}",
            self.machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }
}

#[async_trait]
impl cutover_core::ports::Executions for SfnExecutions {
    async fn is_running(&self, run_id: &str) -> Result<Option<bool>, PortError> {
        match self
            .client
            .describe_execution()
            .execution_arn(self.execution_arn(run_id))
            .send()
            .await
        {
            Ok(out) => Ok(Some(matches!(
                out.status(),
                aws_sdk_sfn::types::ExecutionStatus::Running
                    | aws_sdk_sfn::types::ExecutionStatus::PendingRedrive
            ))),
            Err(e) => {
                let e = map_sdk_error(SERVICE, e, &["InvalidArn"], &["ExecutionDoesNotExist"], &[]);
                if e.kind == cutover_core::ports::PortErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// StopExecution (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html):
    /// stopping an execution that already ended succeeds; one that does not exist is left alone.
    async fn stop(&self, run_id: &str, error: &str, cause: &str) -> Result<(), PortError> {
        match self
            .client
            .stop_execution()
            .execution_arn(self.execution_arn(run_id))
            .error(error)
            .cause(cause)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = map_sdk_error(SERVICE, e, &["InvalidArn"], &["ExecutionDoesNotExist"], &[]);
                if e.kind == cutover_core::ports::PortErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}
