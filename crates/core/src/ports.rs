//! Narrow ports named for capabilities. Each has an SDK adapter and a simulated one; steps see
//! only these traits and the project's own types.

use crate::model::CalendarEntry;
use crate::model::{
    AlarmState, ApprovalNotice, ApprovalRecord, AuditEvent, Change, ChangeInfo, DmsLatency,
    DmsStartType, DmsTask, MgnJob, MgnServer, ProbeResult, RecordSet, RecordType, RunNotice,
    RunRecord,
};
use crate::plan::{Hook, HttpCheck, Plan};
use crate::secret::{ResolvedHeaders, Secret};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortErrorKind {
    /// Rate exceeded: retry with back-off.
    Throttled,
    /// The service is still busy with an earlier request (Route 53 PriorRequestNotComplete).
    Busy,
    /// Network or 5xx: retry.
    Transient,
    /// The request was refused as invalid (InvalidChangeBatch, InvalidResourceStateFault, …).
    Invalid,
    NotFound,
    /// A conditional write lost (lock held, stale version, decided already).
    Conflict,
    Denied,
    Other,
}

/// An adapter error that keeps the service's own error code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{service} {code}: {message}")]
pub struct PortError {
    pub service: &'static str,
    pub code: String,
    pub message: String,
    pub kind: PortErrorKind,
}

impl PortError {
    pub fn new(
        service: &'static str,
        kind: PortErrorKind,
        code: &str,
        message: impl Into<String>,
    ) -> Self {
        PortError {
            service,
            code: code.to_string(),
            message: message.into(),
            kind,
        }
    }
}

/// A wait on a clock: real time on AWS, virtual time in the simulator.
pub type Pause = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Waits `d` on this clock. Steps wait only seconds in-step (never a bake or a poll, which
    /// are Wait states).
    fn sleep(&self, d: std::time::Duration) -> Pause;
}

#[derive(Debug, Clone, PartialEq)]
pub enum LockOutcome {
    Acquired,
    /// This run held it already (a redelivered validate).
    AlreadyHeld,
    HeldBy(String),
}

/// The answer to a request for a slot of a shared request budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booking {
    /// The slot is this caller's: it may send its request at this time (now, or later).
    Booked(DateTime<Utc>),
    /// Every slot up to the caller's `latest` is taken; the first free one is this.
    Full(DateTime<Utc>),
}

#[async_trait]
pub trait RunStore: Send + Sync {
    /// Books the first free slot of the named budget at or after `now`, slots `interval` apart,
    /// unless it would lie after `latest`. Every caller of the same store shares the budget.
    async fn book_slot(
        &self,
        budget: &str,
        now: DateTime<Utc>,
        interval: chrono::Duration,
        latest: DateTime<Utc>,
    ) -> Result<Booking, PortError>;
    async fn acquire_lock(
        &self,
        application: &str,
        run_id: &str,
        at: DateTime<Utc>,
    ) -> Result<LockOutcome, PortError>;
    /// Releases only a lock this run holds; anything else is left alone.
    async fn release_lock(&self, application: &str, run_id: &str) -> Result<(), PortError>;
    /// Moves the lock from `from` to `to` if `from` still holds it; false if it does not.
    async fn take_over_lock(
        &self,
        application: &str,
        from: &str,
        to: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError>;
    async fn load_run(&self, run_id: &str) -> Result<Option<RunRecord>, PortError>;
    /// Writes if the stored version equals `record.version` (0 = must not exist); stores version + 1.
    async fn save_run(&self, record: &RunRecord) -> Result<(), PortError>;
    /// Appends unless an event with the same key exists; returns whether it was new.
    async fn append_event(&self, event: &AuditEvent) -> Result<bool, PortError>;
    async fn events(&self, run_id: &str) -> Result<Vec<AuditEvent>, PortError>;
    /// `expect_undecided` makes the write conditional on no decision being stored yet and on the
    /// stored version being `approval.version` (0: nothing stored). Every write stores version + 1.
    async fn save_approval(
        &self,
        approval: &ApprovalRecord,
        expect_undecided: bool,
    ) -> Result<(), PortError>;
    /// Reads the approval with its server-side token.
    async fn load_approval(
        &self,
        run_id: &str,
        gate: &str,
    ) -> Result<Option<ApprovalRecord>, PortError>;
    async fn approvals(&self, run_id: &str) -> Result<Vec<ApprovalRecord>, PortError>;
    /// Every run record (of one application, when given), newest first. For the run sweep and
    /// operators' listings, never on a cutover step's path.
    async fn list_runs(&self, application: Option<&str>) -> Result<Vec<RunRecord>, PortError>;
    /// The wave's freeze flag: Some(reason) stops new applications of the wave from starting.
    async fn wave_frozen(&self, wave: &str) -> Result<Option<String>, PortError>;
    async fn set_wave_frozen(&self, wave: &str, reason: Option<&str>) -> Result<(), PortError>;
    /// Writes a calendar entry if the stored version equals `entry.version` (0: must not exist);
    /// stores version + 1. A lost race is Conflict.
    async fn save_calendar_entry(&self, entry: &CalendarEntry) -> Result<(), PortError>;
    /// Every calendar entry, in no particular order.
    async fn calendar(&self) -> Result<Vec<CalendarEntry>, PortError>;
    /// Stores one application's plan under `key` (a queued wave's or a wave run's), by its place
    /// in the wave.
    async fn save_wave_plan(&self, key: &str, index: usize, plan: &Plan) -> Result<(), PortError>;
    async fn load_wave_plan(&self, key: &str, index: usize) -> Result<Option<Plan>, PortError>;
}

#[async_trait]
pub trait TrafficRouter: Send + Sync {
    /// Every record set of exactly this name and type (simple and weighted).
    async fn records(
        &self,
        zone_id: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RecordSet>, PortError>;
    /// One atomic change batch.
    async fn change(
        &self,
        zone_id: &str,
        changes: &[Change],
        comment: &str,
    ) -> Result<ChangeInfo, PortError>;
    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, PortError>;
}

#[async_trait]
pub trait Replication: Send + Sync {
    async fn dms_task(&self, task_arn: &str) -> Result<DmsTask, PortError>;
    async fn start_dms_task(
        &self,
        task_arn: &str,
        start_type: DmsStartType,
    ) -> Result<(), PortError>;
    async fn stop_dms_task(&self, task_arn: &str) -> Result<(), PortError>;
    async fn mgn_server(&self, server_id: &str) -> Result<MgnServer, PortError>;
    /// Launches the cutover instances of these servers in one LAUNCH job (StartCutover takes 1
    /// to 200 `sourceServerIDs`); returns the job id.
    async fn start_mgn_cutover(&self, server_ids: &[String]) -> Result<String, PortError>;
    /// The launch job and this server's launch status in it.
    async fn mgn_job(&self, job_id: &str, server_id: &str) -> Result<MgnJob, PortError>;
    /// The point of no return; only the finalize step calls it.
    async fn finalize_mgn_cutover(&self, server_id: &str) -> Result<(), PortError>;
}

#[async_trait]
pub trait Metrics: Send + Sync {
    /// Newest CDCLatencySource and CDCLatencyTarget datapoints of a DMS task; None without data.
    async fn dms_cdc_latency(&self, task_arn: &str) -> Result<Option<DmsLatency>, PortError>;
    /// States of the named alarms, metric and composite alike; an alarm that does not exist is
    /// NotFound.
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<(String, AlarmState)>, PortError>;
}

#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// One request to `check.url` carrying `headers` (the check's headers, resolved).
    async fn probe(&self, check: &HttpCheck, headers: &ResolvedHeaders) -> ProbeResult;
}

/// Credentials kept in Secrets Manager or SSM Parameter Store, read by ARN when a request needs
/// them (`crate::secret`).
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The value stored at `arn`: a secret's `SecretString`, a parameter's value decrypted.
    /// A secret or parameter that does not exist is NotFound; one the role may not read, Denied.
    async fn read(&self, arn: &str) -> Result<Secret, PortError>;
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn approval_requested(&self, notice: &ApprovalNotice) -> Result<(), PortError>;
    /// Pages the people on call about a run (the same topic as approval notices).
    async fn page(&self, notice: &RunNotice) -> Result<(), PortError>;
}

/// Seals task tokens before the run table stores them and opens them to send a gate's callback:
/// AWS KMS with a key whose policy lets only the function that stores gates encrypt and only the
/// function that answers them decrypt. The run and gate are the encryption context: a sealed
/// token copied to another gate's item does not open
/// (https://docs.aws.amazon.com/kms/latest/developerguide/encrypt_context.html).
#[async_trait]
pub trait TokenVault: Send + Sync {
    async fn seal(&self, token: &str, run_id: &str, gate: &str) -> Result<String, PortError>;
    async fn open(&self, sealed: &str, run_id: &str, gate: &str) -> Result<String, PortError>;
}

/// Step Functions callbacks (SendTaskSuccess / SendTaskFailure).
#[async_trait]
pub trait TaskCallbacks: Send + Sync {
    async fn send_success(&self, task_token: &str, output: Value) -> Result<(), PortError>;
    async fn send_failure(
        &self,
        task_token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), PortError>;
}

/// One-time schedules that start the wave machine (EventBridge Scheduler).
#[async_trait]
pub trait WaveSchedules: Send + Sync {
    /// Schedules one wave execution at `at` with `input`; returns the schedule's ARN.
    async fn schedule_wave(
        &self,
        name: &str,
        at: DateTime<Utc>,
        input: &str,
    ) -> Result<String, PortError>;
}

/// Step Functions executions of the cutover machine, by run id (the execution name).
#[async_trait]
pub trait Executions: Send + Sync {
    /// Some(true) while the execution runs (or waits to be redriven), Some(false) once it ended,
    /// None when no such execution exists.
    async fn is_running(&self, run_id: &str) -> Result<Option<bool>, PortError>;
    /// Stops the execution of `run_id` if it still runs (StopExecution); an execution that has
    /// ended or does not exist is left alone.
    async fn stop(&self, run_id: &str, error: &str, cause: &str) -> Result<(), PortError>;
}

/// The application owner's data hooks (freeze writes, switch the database, unfreeze).
#[async_trait]
pub trait Hooks: Send + Sync {
    /// Calls `hook` with `payload` and returns its answer. Errors keep their meaning in `code`:
    /// `HookFailed` (the hook answered with an error), `HookTimedOut` (no answer within
    /// `hook.timeout_seconds`: it may or may not have acted), or the transport's own.
    /// A `url` hook's request carries `headers` (the hook's headers, resolved).
    async fn call(
        &self,
        hook: &Hook,
        headers: &ResolvedHeaders,
        payload: &Value,
    ) -> Result<Value, PortError>;
}
