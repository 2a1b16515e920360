//! The adapter for a port a step does not use: every call is refused, naming the step.

use async_trait::async_trait;
use cutover_core::model::*;
use cutover_core::plan::{Hook, HttpCheck};
use cutover_core::ports::*;
use cutover_core::secret::{ResolvedHeaders, Secret};
use serde_json::Value;

pub struct Unconfigured(pub String);

impl Unconfigured {
    fn refuse(&self, port: &'static str) -> PortError {
        PortError::new(
            port,
            PortErrorKind::Denied,
            "NotConfigured",
            format!("{port} is not available to the {} function", self.0),
        )
    }
}

#[async_trait]
impl TrafficRouter for Unconfigured {
    async fn records(&self, _: &str, _: &str, _: RecordType) -> Result<Vec<RecordSet>, PortError> {
        Err(self.refuse("route53"))
    }
    async fn change(&self, _: &str, _: &[Change], _: &str) -> Result<ChangeInfo, PortError> {
        Err(self.refuse("route53"))
    }
    async fn change_status(&self, _: &str) -> Result<ChangeInfo, PortError> {
        Err(self.refuse("route53"))
    }
}

#[async_trait]
impl cutover_core::alb::LoadBalancer for Unconfigured {
    async fn actions(
        &self,
        _: &str,
        _: Option<&str>,
    ) -> Result<Vec<cutover_core::alb::Action>, PortError> {
        Err(self.refuse("elbv2"))
    }
    async fn set_actions(
        &self,
        _: &str,
        _: Option<&str>,
        _: &[cutover_core::alb::Action],
    ) -> Result<(), PortError> {
        Err(self.refuse("elbv2"))
    }
    async fn healthy_targets(&self, _: &str) -> Result<u32, PortError> {
        Err(self.refuse("elbv2"))
    }
}

#[async_trait]
impl Replication for Unconfigured {
    async fn dms_task(&self, _: &str) -> Result<DmsTask, PortError> {
        Err(self.refuse("dms"))
    }
    async fn start_dms_task(&self, _: &str, _: DmsStartType) -> Result<(), PortError> {
        Err(self.refuse("dms"))
    }
    async fn stop_dms_task(&self, _: &str) -> Result<(), PortError> {
        Err(self.refuse("dms"))
    }
    async fn mgn_server(&self, _: &str) -> Result<MgnServer, PortError> {
        Err(self.refuse("mgn"))
    }
    async fn start_mgn_cutover(&self, _: &[String]) -> Result<String, PortError> {
        Err(self.refuse("mgn"))
    }
    async fn mgn_job(&self, _: &str, _: &str) -> Result<MgnJob, PortError> {
        Err(self.refuse("mgn"))
    }
    async fn finalize_mgn_cutover(&self, _: &str) -> Result<(), PortError> {
        Err(self.refuse("mgn"))
    }
}

#[async_trait]
impl Metrics for Unconfigured {
    async fn dms_cdc_latency(&self, _: &str) -> Result<Option<DmsLatency>, PortError> {
        Err(self.refuse("cloudwatch"))
    }
    async fn alarm_states(&self, _: &[String]) -> Result<Vec<(String, AlarmState)>, PortError> {
        Err(self.refuse("cloudwatch"))
    }
}

#[async_trait]
impl HealthProbe for Unconfigured {
    async fn probe(&self, _: &HttpCheck, _: &ResolvedHeaders) -> ProbeResult {
        ProbeResult {
            ok: false,
            status: None,
            detail: format!("http probes are not available to the {} function", self.0),
        }
    }
}

#[async_trait]
impl Notifier for Unconfigured {
    async fn approval_requested(&self, _: &ApprovalNotice) -> Result<(), PortError> {
        Err(self.refuse("sns"))
    }
    async fn page(&self, _: &RunNotice) -> Result<(), PortError> {
        Err(self.refuse("sns"))
    }
}

#[async_trait]
impl TaskCallbacks for Unconfigured {
    async fn send_success(&self, _: &str, _: Value) -> Result<(), PortError> {
        Err(self.refuse("states"))
    }
    async fn send_failure(&self, _: &str, _: &str, _: &str) -> Result<(), PortError> {
        Err(self.refuse("states"))
    }
}

#[async_trait]
impl Hooks for Unconfigured {
    async fn call(&self, _: &Hook, _: &ResolvedHeaders, _: &Value) -> Result<Value, PortError> {
        Err(self.refuse("hooks"))
    }
}

#[async_trait]
impl TokenVault for Unconfigured {
    async fn seal(&self, _: &str, _: &str, _: &str) -> Result<String, PortError> {
        Err(self.refuse("kms"))
    }
    async fn open(&self, _: &str, _: &str, _: &str) -> Result<String, PortError> {
        Err(self.refuse("kms"))
    }
}

#[async_trait]
impl Secrets for Unconfigured {
    async fn read(&self, _: &str) -> Result<Secret, PortError> {
        Err(self.refuse("secrets"))
    }
}

#[async_trait]
impl Executions for Unconfigured {
    async fn is_running(&self, _: &str) -> Result<Option<bool>, PortError> {
        Err(self.refuse("states"))
    }
    async fn stop(&self, _: &str, _: &str, _: &str) -> Result<(), PortError> {
        Err(self.refuse("states"))
    }
}
