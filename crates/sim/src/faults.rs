//! Fault injection as a decorator: `Faulty` wraps any port — a simulated service, the in-memory
//! run store or an SDK adapter — and makes the calls the world's `faults` schedule name fail with
//! the scheduled error before they reach it. The wrapped port never knows.

use crate::clock::SimClock;
use crate::spec::FaultSpec;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cutover_core::model::*;
use cutover_core::plan::HttpCheck;
use cutover_core::ports::*;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The kind of an AWS error code, as the SDK adapters classify it.
pub fn aws_error(service: &'static str, code: &str, message: impl Into<String>) -> PortError {
    let kind = match code {
        "Throttling"
        | "ThrottlingException"
        | "ProvisionedThroughputExceededException"
        | "TooManyRequestsException" => PortErrorKind::Throttled,
        "PriorRequestNotComplete" => PortErrorKind::Busy,
        "ServiceUnavailable"
        | "InternalServerError"
        | "Timeout"
        | "ConnectionRefused"
        | "ServiceException" => PortErrorKind::Transient,
        "InvalidChangeBatch"
        | "InvalidResourceStateFault"
        | "ConflictException"
        | "InvalidInput"
        | "InvalidLoadBalancerAction"
        | "ValidationError"
        | "OperationNotPermitted" => PortErrorKind::Invalid,
        "NoSuchHostedZone"
        | "NoSuchChange"
        | "ResourceNotFoundFault"
        | "ResourceNotFoundException"
        | "ResourceNotFound"
        | "ListenerNotFound"
        | "RuleNotFound"
        | "TargetGroupNotFound" => PortErrorKind::NotFound,
        "ConditionalCheckFailedException" => PortErrorKind::Conflict,
        "AccessDenied" | "AccessDeniedException" => PortErrorKind::Denied,
        _ => PortErrorKind::Other,
    };
    PortError::new(service, kind, code, message)
}

/// The world's fault schedule: each entry fails its operation's next `times` calls from
/// `afterSeconds` on.
pub struct Faults {
    clock: SimClock,
    left: Mutex<Vec<(FaultSpec, u32)>>,
    injected: AtomicU64,
}

impl Faults {
    pub fn new(faults: &[FaultSpec], clock: SimClock) -> Self {
        Faults {
            clock,
            left: Mutex::new(faults.iter().map(|f| (f.clone(), f.times)).collect()),
            injected: AtomicU64::new(0),
        }
    }

    /// Fails this call of `operation` (`service.Operation`) if a fault is due.
    pub fn check(&self, service: &'static str, operation: &str) -> Result<(), PortError> {
        let t = self.clock.elapsed_seconds();
        let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((f, n)) = left
            .iter_mut()
            .find(|(f, n)| f.operation == operation && *n > 0 && t >= f.after_seconds)
        {
            *n -= 1;
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Err(aws_error(
                service,
                &f.error,
                format!("injected fault on {operation}"),
            ));
        }
        Ok(())
    }

    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }
}

/// Any port, with the world's faults in front of it.
pub struct Faulty<T: ?Sized> {
    pub faults: Arc<Faults>,
    pub inner: Arc<T>,
}

impl<T: ?Sized> Faulty<T> {
    pub fn new(faults: Arc<Faults>, inner: Arc<T>) -> Arc<Self> {
        Arc::new(Faulty { faults, inner })
    }
}

#[async_trait]
impl TrafficRouter for Faulty<dyn TrafficRouter> {
    async fn records(
        &self,
        zone_id: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RecordSet>, PortError> {
        self.faults
            .check("route53", "route53.ListResourceRecordSets")?;
        self.inner.records(zone_id, name, record_type).await
    }
    async fn change(
        &self,
        zone_id: &str,
        changes: &[Change],
        comment: &str,
    ) -> Result<ChangeInfo, PortError> {
        self.faults
            .check("route53", "route53.ChangeResourceRecordSets")?;
        self.inner.change(zone_id, changes, comment).await
    }
    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, PortError> {
        self.faults.check("route53", "route53.GetChange")?;
        self.inner.change_status(change_id).await
    }
}

#[async_trait]
impl cutover_core::alb::LoadBalancer for Faulty<dyn cutover_core::alb::LoadBalancer> {
    async fn actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
    ) -> Result<Vec<cutover_core::alb::Action>, PortError> {
        self.faults.check("elbv2", "elbv2.DescribeRules")?;
        self.inner.actions(listener_arn, rule_arn).await
    }
    async fn set_actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
        actions: &[cutover_core::alb::Action],
    ) -> Result<(), PortError> {
        // The default rule changes through ModifyListener (API_ModifyRule).
        let op = if rule_arn.is_some() {
            "elbv2.ModifyRule"
        } else {
            "elbv2.ModifyListener"
        };
        self.faults.check("elbv2", op)?;
        self.inner
            .set_actions(listener_arn, rule_arn, actions)
            .await
    }
    async fn healthy_targets(&self, target_group_arn: &str) -> Result<u32, PortError> {
        self.faults.check("elbv2", "elbv2.DescribeTargetHealth")?;
        self.inner.healthy_targets(target_group_arn).await
    }
}

#[async_trait]
impl Replication for Faulty<dyn Replication> {
    async fn dms_task(&self, task_arn: &str) -> Result<DmsTask, PortError> {
        self.faults.check("dms", "dms.DescribeReplicationTasks")?;
        self.inner.dms_task(task_arn).await
    }
    async fn start_dms_task(
        &self,
        task_arn: &str,
        start_type: DmsStartType,
    ) -> Result<(), PortError> {
        self.faults.check("dms", "dms.StartReplicationTask")?;
        self.inner.start_dms_task(task_arn, start_type).await
    }
    async fn stop_dms_task(&self, task_arn: &str) -> Result<(), PortError> {
        self.faults.check("dms", "dms.StopReplicationTask")?;
        self.inner.stop_dms_task(task_arn).await
    }
    async fn mgn_server(&self, server_id: &str) -> Result<MgnServer, PortError> {
        self.faults.check("mgn", "mgn.DescribeSourceServers")?;
        self.inner.mgn_server(server_id).await
    }
    async fn start_mgn_cutover(&self, server_ids: &[String]) -> Result<String, PortError> {
        self.faults.check("mgn", "mgn.StartCutover")?;
        self.inner.start_mgn_cutover(server_ids).await
    }
    async fn mgn_job(&self, job_id: &str, server_id: &str) -> Result<MgnJob, PortError> {
        self.faults.check("mgn", "mgn.DescribeJobs")?;
        self.inner.mgn_job(job_id, server_id).await
    }
    async fn finalize_mgn_cutover(&self, server_id: &str) -> Result<(), PortError> {
        self.faults.check("mgn", "mgn.FinalizeCutover")?;
        self.inner.finalize_mgn_cutover(server_id).await
    }
}

#[async_trait]
impl Metrics for Faulty<dyn Metrics> {
    async fn dms_cdc_latency(&self, task_arn: &str) -> Result<Option<DmsLatency>, PortError> {
        self.faults
            .check("cloudwatch", "cloudwatch.GetMetricData")?;
        self.inner.dms_cdc_latency(task_arn).await
    }
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<(String, AlarmState)>, PortError> {
        self.faults
            .check("cloudwatch", "cloudwatch.DescribeAlarms")?;
        self.inner.alarm_states(names).await
    }
}

#[async_trait]
impl HealthProbe for Faulty<dyn HealthProbe> {
    /// A probe never errors: an injected fault is a failed probe with the fault as its detail.
    async fn probe(
        &self,
        check: &HttpCheck,
        headers: &cutover_core::secret::ResolvedHeaders,
    ) -> ProbeResult {
        if let Err(e) = self.faults.check("http", "http.Probe") {
            return ProbeResult {
                ok: false,
                status: None,
                detail: e.to_string(),
            };
        }
        self.inner.probe(check, headers).await
    }
}

#[async_trait]
impl TokenVault for Faulty<dyn TokenVault> {
    async fn seal(&self, token: &str, run_id: &str, gate: &str) -> Result<String, PortError> {
        self.faults.check("kms", "kms.Encrypt")?;
        self.inner.seal(token, run_id, gate).await
    }
    async fn open(&self, sealed: &str, run_id: &str, gate: &str) -> Result<String, PortError> {
        self.faults.check("kms", "kms.Decrypt")?;
        self.inner.open(sealed, run_id, gate).await
    }
}

#[async_trait]
impl Secrets for Faulty<dyn Secrets> {
    async fn read(&self, arn: &str) -> Result<cutover_core::secret::Secret, PortError> {
        self.faults.check("secrets", "secrets.Read")?;
        self.inner.read(arn).await
    }
}

#[async_trait]
impl Notifier for Faulty<dyn Notifier> {
    async fn approval_requested(&self, notice: &ApprovalNotice) -> Result<(), PortError> {
        self.faults.check("sns", "sns.Publish")?;
        self.inner.approval_requested(notice).await
    }
    async fn page(&self, notice: &RunNotice) -> Result<(), PortError> {
        self.faults.check("sns", "sns.Publish")?;
        self.inner.page(notice).await
    }
}

#[async_trait]
impl TaskCallbacks for Faulty<dyn TaskCallbacks> {
    async fn send_success(&self, task_token: &str, output: Value) -> Result<(), PortError> {
        self.faults.check("states", "states.SendTaskSuccess")?;
        self.inner.send_success(task_token, output).await
    }
    async fn send_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), PortError> {
        self.faults.check("states", "states.SendTaskFailure")?;
        self.inner.send_failure(task_token, error, cause).await
    }
}

/// The run store's calls as the DynamoDB operations they are.
#[async_trait]
impl RunStore for Faulty<dyn RunStore> {
    async fn book_slot(
        &self,
        budget: &str,
        now: DateTime<Utc>,
        interval: chrono::Duration,
        latest: DateTime<Utc>,
    ) -> Result<Booking, PortError> {
        self.faults.check("dynamodb", "dynamodb.PutItem")?;
        self.inner.book_slot(budget, now, interval, latest).await
    }
    async fn acquire_lock(
        &self,
        application: &str,
        run_id: &str,
        at: DateTime<Utc>,
    ) -> Result<LockOutcome, PortError> {
        self.faults.check("dynamodb", "dynamodb.PutItem")?;
        self.inner.acquire_lock(application, run_id, at).await
    }
    async fn list_runs(&self, application: Option<&str>) -> Result<Vec<RunRecord>, PortError> {
        self.faults.check("dynamodb", "dynamodb.Scan")?;
        self.inner.list_runs(application).await
    }
    async fn take_over_lock(
        &self,
        application: &str,
        from: &str,
        to: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        self.faults.check("dynamodb", "dynamodb.PutItem")?;
        self.inner.take_over_lock(application, from, to, at).await
    }
    async fn release_lock(&self, application: &str, run_id: &str) -> Result<(), PortError> {
        self.faults.check("dynamodb", "dynamodb.DeleteItem")?;
        self.inner.release_lock(application, run_id).await
    }
    async fn load_run(&self, run_id: &str) -> Result<Option<RunRecord>, PortError> {
        self.faults.check("dynamodb", "dynamodb.GetItem")?;
        self.inner.load_run(run_id).await
    }
    async fn save_run(&self, record: &RunRecord) -> Result<(), PortError> {
        self.faults.check("dynamodb", "dynamodb.PutItem")?;
        self.inner.save_run(record).await
    }
    async fn append_event(&self, event: &AuditEvent) -> Result<bool, PortError> {
        self.faults.check("dynamodb", "dynamodb.PutItem")?;
        self.inner.append_event(event).await
    }
    async fn events(&self, run_id: &str) -> Result<Vec<AuditEvent>, PortError> {
        self.faults.check("dynamodb", "dynamodb.Query")?;
        self.inner.events(run_id).await
    }
    async fn save_approval(
        &self,
        approval: &ApprovalRecord,
        expect_undecided: bool,
    ) -> Result<(), PortError> {
        self.faults.check("dynamodb", "dynamodb.PutItem")?;
        self.inner.save_approval(approval, expect_undecided).await
    }
    async fn load_approval(
        &self,
        run_id: &str,
        gate: &str,
    ) -> Result<Option<ApprovalRecord>, PortError> {
        self.faults.check("dynamodb", "dynamodb.GetItem")?;
        self.inner.load_approval(run_id, gate).await
    }
    async fn approvals(&self, run_id: &str) -> Result<Vec<ApprovalRecord>, PortError> {
        self.faults.check("dynamodb", "dynamodb.Query")?;
        self.inner.approvals(run_id).await
    }
    async fn wave_frozen(&self, wave: &str) -> Result<Option<String>, PortError> {
        self.faults.check("dynamodb", "dynamodb.GetItem")?;
        self.inner.wave_frozen(wave).await
    }
    async fn set_wave_frozen(&self, wave: &str, reason: Option<&str>) -> Result<(), PortError> {
        self.faults.check("dynamodb", "dynamodb.PutItem")?;
        self.inner.set_wave_frozen(wave, reason).await
    }
    async fn save_calendar_entry(&self, entry: &CalendarEntry) -> Result<(), PortError> {
        self.faults.check("dynamodb", "dynamodb.PutItem")?;
        self.inner.save_calendar_entry(entry).await
    }
    async fn calendar(&self) -> Result<Vec<CalendarEntry>, PortError> {
        self.faults.check("dynamodb", "dynamodb.Query")?;
        self.inner.calendar().await
    }
    async fn save_wave_plan(
        &self,
        key: &str,
        index: usize,
        plan: &cutover_core::plan::Plan,
    ) -> Result<(), PortError> {
        self.faults.check("dynamodb", "dynamodb.PutItem")?;
        self.inner.save_wave_plan(key, index, plan).await
    }
    async fn load_wave_plan(
        &self,
        key: &str,
        index: usize,
    ) -> Result<Option<cutover_core::plan::Plan>, PortError> {
        self.faults.check("dynamodb", "dynamodb.GetItem")?;
        self.inner.load_wave_plan(key, index).await
    }
}

#[async_trait]
impl Executions for Faulty<dyn Executions> {
    async fn is_running(&self, run_id: &str) -> Result<Option<bool>, PortError> {
        self.faults.check("states", "states.DescribeExecution")?;
        self.inner.is_running(run_id).await
    }
    async fn stop(&self, run_id: &str, error: &str, cause: &str) -> Result<(), PortError> {
        self.faults.check("states", "states.StopExecution")?;
        self.inner.stop(run_id, error, cause).await
    }
}

#[async_trait]
impl Hooks for Faulty<dyn Hooks> {
    async fn call(
        &self,
        hook: &cutover_core::plan::Hook,
        headers: &cutover_core::secret::ResolvedHeaders,
        payload: &Value,
    ) -> Result<Value, PortError> {
        self.faults.check("hooks", "hooks.Call")?;
        self.inner.call(hook, headers, payload).await
    }
}

/// STS with the world's faults in front: `sts.AssumeRole` fails as scheduled, and the reached
/// account's ports carry the faults too.
#[async_trait]
impl cutover_core::accounts::Accounts for Faulty<dyn cutover_core::accounts::Accounts> {
    async fn assume(
        &self,
        role: &cutover_core::accounts::Role,
        session: &str,
    ) -> Result<cutover_core::accounts::Reached, PortError> {
        self.faults.check("sts", "sts.AssumeRole")?;
        let r = self.inner.assume(role, session).await?;
        Ok(cutover_core::accounts::Reached {
            router: Faulty::new(self.faults.clone(), r.router),
            load_balancer: Faulty::new(self.faults.clone(), r.load_balancer),
            replication: Faulty::new(self.faults.clone(), r.replication),
            metrics: Faulty::new(self.faults.clone(), r.metrics),
            expires: r.expires,
        })
    }
}
