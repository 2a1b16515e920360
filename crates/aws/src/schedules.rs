//! One-time EventBridge Scheduler schedules that start a wave execution inside its window.

use crate::errors::{build_err, map_sdk_error};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
};
use chrono::{DateTime, Utc};
use cutover_core::ports::{PortError, PortErrorKind};

const SERVICE: &str = "scheduler";
/// EventBridge Scheduler accepts target inputs of at most 8192 characters.
pub const MAX_INPUT: usize = 8192;

#[derive(Debug, Clone, PartialEq)]
pub struct OneTimeSchedule {
    pub name: String,
    pub at: DateTime<Utc>,
    pub state_machine_arn: String,
    pub role_arn: String,
    /// The wave execution's input: `{"wave": …}`.
    pub input: String,
}

impl OneTimeSchedule {
    /// Every problem with the schedule, each naming its field; nothing is created if any.
    pub fn problems(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut out = Vec::new();
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok_name {
            out.push(format!(
                "name: '{}' must be 1-64 letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        if self.at <= now {
            out.push(format!("at: {} is not in the future", self.at.to_rfc3339()));
        }
        if !self.state_machine_arn.starts_with("arn:aws")
            || !self.state_machine_arn.contains(":states:")
        {
            out.push(format!(
                "stateMachineArn: '{}' is not a state machine ARN",
                self.state_machine_arn
            ));
        }
        if !self.role_arn.starts_with("arn:aws") || !self.role_arn.contains(":iam::") {
            out.push(format!(
                "roleArn: '{}' is not an IAM role ARN",
                self.role_arn
            ));
        }
        if self.input.len() > MAX_INPUT {
            out.push(format!(
                "input: the wave is {} characters; a schedule's input holds at most {MAX_INPUT}",
                self.input.len()
            ));
        }
        out
    }

    /// `at(yyyy-mm-ddThh:mm:ss)`, evaluated in UTC.
    pub fn expression(&self) -> String {
        format!("at({})", self.at.format("%Y-%m-%dT%H:%M:%S"))
    }
}

#[derive(Clone)]
pub struct WaveScheduler {
    client: aws_sdk_scheduler::Client,
}

impl WaveScheduler {
    pub fn new(client: aws_sdk_scheduler::Client) -> Self {
        WaveScheduler { client }
    }

    /// Creates the schedule; it deletes itself after it fires. Returns the schedule's ARN.
    pub async fn create(&self, s: &OneTimeSchedule) -> Result<String, PortError> {
        let problems = s.problems(Utc::now());
        if !problems.is_empty() {
            return Err(PortError::new(
                SERVICE,
                PortErrorKind::Invalid,
                "ValidationException",
                problems.join("; "),
            ));
        }
        let target = Target::builder()
            .arn(&s.state_machine_arn)
            .role_arn(&s.role_arn)
            .input(&s.input)
            .build()
            .map_err(|e| build_err(SERVICE, e))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| build_err(SERVICE, e))?;
        let resp = self
            .client
            .create_schedule()
            .name(&s.name)
            .schedule_expression(s.expression())
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target)
            .send()
            .await
            .map_err(|e| {
                map_sdk_error(
                    SERVICE,
                    e,
                    &["ValidationException"],
                    &["ResourceNotFoundException"],
                    &["ConflictException"],
                )
            })?;
        Ok(resp.schedule_arn().to_string())
    }

    /// The schedule's expression and target, as the service holds them.
    pub async fn describe(&self, name: &str) -> Result<(String, String), PortError> {
        let r = self
            .client
            .get_schedule()
            .name(name)
            .send()
            .await
            .map_err(|e| {
                map_sdk_error(
                    SERVICE,
                    e,
                    &["ValidationException"],
                    &["ResourceNotFoundException"],
                    &[],
                )
            })?;
        Ok((
            r.schedule_expression().unwrap_or_default().to_string(),
            r.target().map(|t| t.arn().to_string()).unwrap_or_default(),
        ))
    }
}

/// The scheduling port for the approval API: the wave machine and role come from configuration.
pub struct ConfiguredWaveSchedules {
    pub scheduler: WaveScheduler,
    pub state_machine_arn: String,
    pub role_arn: String,
}

#[async_trait::async_trait]
impl cutover_core::ports::WaveSchedules for ConfiguredWaveSchedules {
    async fn schedule_wave(
        &self,
        name: &str,
        at: DateTime<Utc>,
        input: &str,
    ) -> Result<String, PortError> {
        self.scheduler
            .create(&OneTimeSchedule {
                name: name.to_string(),
                at,
                state_machine_arn: self.state_machine_arn.clone(),
                role_arn: self.role_arn.clone(),
                input: input.to_string(),
            })
            .await
    }
}
