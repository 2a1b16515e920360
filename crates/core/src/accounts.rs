//! Several accounts of a landing zone: a plan section (`dns`, `alb`, `replication`, `health`)
//! may name the role that reaches its resources in another account (`roleArn`, optional
//! `externalId`). The steps then call that section's services with the role's credentials:
//! [`Deps::reach`](crate::steps::Deps::reach) swaps the section's ports for ones that assume the
//! role (session name = the run id) through the [`Accounts`] port, cached until shortly before
//! the credentials expire.
//!
//! AWS facts this relies on (docs/plan.md, "Several accounts"):
//! - a role's trust policy names the accounts that may assume it, and `sts:ExternalId` in that
//!   policy guards against a confused deputy
//!   (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-user_externalid.html);
//! - AssumeRole's `ExternalId` is 2–1224 characters of `[\w+=,.@:/-]`, `RoleSessionName` 2–64 of
//!   `[\w+=,.@-]`, and the credentials last `DurationSeconds`, 3600 by default
//!   (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html);
//! - a resource of another account is invisible to the caller's own credentials: Route 53
//!   answers `NoSuchHostedZone`, DMS `ResourceNotFoundFault`, and so on.

use crate::alb::{Action, LoadBalancer};
use crate::model::{AlarmState, Change, ChangeInfo, DmsLatency, DmsStartType, DmsTask, MgnJob};
use crate::model::{MgnServer, RecordSet, RecordType};
use crate::ports::{Clock, Metrics, PortError, PortErrorKind, Replication, TrafficRouter};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The role a plan section names to reach its resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role {
    pub arn: String,
    pub external_id: Option<String>,
}

impl Role {
    /// The role of a section's `roleArn` / `externalId`, if it names one.
    pub fn of(arn: &Option<String>, external_id: &Option<String>) -> Option<Role> {
        arn.as_ref().map(|arn| Role {
            arn: arn.clone(),
            external_id: external_id.clone(),
        })
    }

    /// The account the role belongs to (the ARN's fifth field).
    pub fn account(&self) -> &str {
        arn_account(&self.arn).unwrap_or_default()
    }
}

/// An ARN's account (its fifth field), if it names one.
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Shape problems of a section's `roleArn` / `externalId`, each with its field
/// (`{section}.roleArn`); nothing when neither is given.
pub fn role_violations(
    section: &str,
    arn: &Option<String>,
    external_id: &Option<String>,
    bad: &mut impl FnMut(String, String),
) {
    if let Some(arn) = arn {
        if !is_role_arn(arn) {
            bad(
                format!("{section}.roleArn"),
                format!(
                    "'{arn}' is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)"
                ),
            );
        }
    }
    match (arn, external_id) {
        (None, Some(_)) => bad(
            format!("{section}.externalId"),
            "goes with roleArn: the external ID is sent when assuming that role".into(),
        ),
        (Some(_), Some(id)) if !is_external_id(id) => bad(
            format!("{section}.externalId"),
            "must be 2 to 1224 characters of letters, digits and + = , . @ : / - _ (AssumeRole's ExternalId)".into(),
        ),
        _ => {}
    }
}

fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_word, partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 512
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
    };
    arn_word == "arn"
        && matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && service == "iam"
        && region.is_empty()
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource
            .strip_prefix("role/")
            .is_some_and(|n| name_ok(n) && !n.ends_with('/'))
}

fn is_external_id(id: &str) -> bool {
    (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c))
}

/// The role session name for a run: its id, kept to what AssumeRole accepts (2–64 characters of
/// `[\w+=,.@-]`), so CloudTrail in the member account names the run that acted.
pub fn session_name(run_id: &str) -> String {
    let mut s: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while s.len() < 2 {
        s.push('-');
    }
    s
}

/// Where a pre-flight looked for a section's resource that was not found, for its message: a
/// resource in another account is invisible to the stack's own credentials, so the message says
/// which account was asked and names the section's `roleArn`.
pub fn looked_in(section: &str, role_arn: &Option<String>, stack_account: Option<&str>) -> String {
    match role_arn {
        Some(arn) => format!(
            " (looked in account {}, through {section}.roleArn)",
            arn_account(arn).unwrap_or_default()
        ),
        None => format!(
            " (looked in the stack's account{}; a resource in another account needs {section}.roleArn)",
            stack_account.map(|a| format!(" {a}")).unwrap_or_default()
        ),
    }
}

/// The ports of one account reached through a role, and when their credentials expire (`None`:
/// the adapter refreshes them itself, as the SDK's identity cache does).
#[derive(Clone)]
pub struct Reached {
    pub router: Arc<dyn TrafficRouter>,
    pub load_balancer: Arc<dyn LoadBalancer>,
    pub replication: Arc<dyn Replication>,
    pub metrics: Arc<dyn Metrics>,
    pub expires: Option<DateTime<Utc>>,
}

/// STS: the ports of another account, assumed through a role.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// AssumeRole(`role`, session name `session`): Denied when the role does not trust the
    /// stack's account or the external ID does not match, NotFound-free (AWS answers
    /// AccessDenied for a role that does not exist too).
    async fn assume(&self, role: &Role, session: &str) -> Result<Reached, PortError>;
}

/// Refreshed this long before the credentials expire, so no call starts on credentials about to
/// run out (the SDK's identity cache keeps the same kind of buffer).
pub const REFRESH_BEFORE_SECONDS: i64 = 300;

/// What a stack that reaches no other account has: every assume is refused, naming the setting.
pub struct NoAccounts;

#[async_trait]
impl Accounts for NoAccounts {
    async fn assume(&self, role: &Role, _session: &str) -> Result<Reached, PortError> {
        Err(PortError::new(
            "sts",
            PortErrorKind::Denied,
            "AccessDenied",
            format!(
                "this function may not assume {}: it reaches no other account",
                role.arn
            ),
        ))
    }
}

/// Decorates the router of a reached account (its Route 53 budget, say); the account id is the
/// second argument.
pub type WrapRouter =
    Arc<dyn Fn(Arc<dyn TrafficRouter>, &str) -> Arc<dyn TrafficRouter> + Send + Sync>;

/// [`Accounts`] with the credentials of each (role, session) kept until
/// [`REFRESH_BEFORE_SECONDS`] before they expire, and each reached router decorated once.
pub struct Cached {
    inner: Arc<dyn Accounts>,
    clock: Arc<dyn Clock>,
    wrap_router: Option<WrapRouter>,
    kept: Mutex<HashMap<(Role, String), Reached>>,
}

impl Cached {
    pub fn new(
        inner: Arc<dyn Accounts>,
        clock: Arc<dyn Clock>,
        wrap_router: Option<WrapRouter>,
    ) -> Arc<Self> {
        Arc::new(Cached {
            inner,
            clock,
            wrap_router,
            kept: Mutex::new(HashMap::new()),
        })
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<(Role, String), Reached>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Accounts for Cached {
    async fn assume(&self, role: &Role, session: &str) -> Result<Reached, PortError> {
        let key = (role.clone(), session.to_string());
        let now = self.clock.now();
        let fresh = |r: &Reached| {
            r.expires
                .is_none_or(|at| now + Duration::seconds(REFRESH_BEFORE_SECONDS) < at)
        };
        if let Some(r) = self.kept().get(&key).filter(|r| fresh(r)) {
            return Ok(r.clone());
        }
        let mut reached = self.inner.assume(role, session).await?;
        if let Some(wrap) = &self.wrap_router {
            reached.router = wrap(reached.router, role.account());
        }
        let mut kept = self.kept();
        // Sessions of runs long over go: what a long-lived process keeps stays bounded.
        kept.retain(|_, r| r.expires.is_none_or(|at| at > now));
        kept.insert(key, reached.clone());
        Ok(reached)
    }
}

/// A port that assumes its role on every call (cached by [`Cached`]): what
/// [`Deps::reach`](crate::steps::Deps::reach) puts in place of a section's port.
pub(crate) struct Through {
    pub accounts: Arc<dyn Accounts>,
    pub role: Role,
    pub session: String,
}

impl Through {
    async fn reach(&self) -> Result<Reached, PortError> {
        self.accounts.assume(&self.role, &self.session).await
    }
}

#[async_trait]
impl TrafficRouter for Through {
    async fn records(
        &self,
        zone_id: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RecordSet>, PortError> {
        let r = self.reach().await?;
        r.router.records(zone_id, name, record_type).await
    }
    async fn change(
        &self,
        zone_id: &str,
        changes: &[Change],
        comment: &str,
    ) -> Result<ChangeInfo, PortError> {
        let r = self.reach().await?;
        r.router.change(zone_id, changes, comment).await
    }
    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, PortError> {
        self.reach().await?.router.change_status(change_id).await
    }
}

#[async_trait]
impl LoadBalancer for Through {
    async fn actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
    ) -> Result<Vec<Action>, PortError> {
        let r = self.reach().await?;
        r.load_balancer.actions(listener_arn, rule_arn).await
    }
    async fn set_actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
        actions: &[Action],
    ) -> Result<(), PortError> {
        let r = self.reach().await?;
        r.load_balancer
            .set_actions(listener_arn, rule_arn, actions)
            .await
    }
    async fn healthy_targets(&self, target_group_arn: &str) -> Result<u32, PortError> {
        let r = self.reach().await?;
        r.load_balancer.healthy_targets(target_group_arn).await
    }
}

#[async_trait]
impl Replication for Through {
    async fn dms_task(&self, task_arn: &str) -> Result<DmsTask, PortError> {
        self.reach().await?.replication.dms_task(task_arn).await
    }
    async fn start_dms_task(
        &self,
        task_arn: &str,
        start_type: DmsStartType,
    ) -> Result<(), PortError> {
        let r = self.reach().await?;
        r.replication.start_dms_task(task_arn, start_type).await
    }
    async fn stop_dms_task(&self, task_arn: &str) -> Result<(), PortError> {
        self.reach()
            .await?
            .replication
            .stop_dms_task(task_arn)
            .await
    }
    async fn mgn_server(&self, server_id: &str) -> Result<MgnServer, PortError> {
        self.reach().await?.replication.mgn_server(server_id).await
    }
    async fn start_mgn_cutover(&self, server_ids: &[String]) -> Result<String, PortError> {
        let r = self.reach().await?;
        r.replication.start_mgn_cutover(server_ids).await
    }
    async fn mgn_job(&self, job_id: &str, server_id: &str) -> Result<MgnJob, PortError> {
        self.reach()
            .await?
            .replication
            .mgn_job(job_id, server_id)
            .await
    }
    async fn finalize_mgn_cutover(&self, server_id: &str) -> Result<(), PortError> {
        let r = self.reach().await?;
        r.replication.finalize_mgn_cutover(server_id).await
    }
}

/// CloudWatch split by what it is asked: DMS latency in the replication section's account,
/// alarms in the health section's.
pub(crate) struct MetricsBy {
    pub lag: Arc<dyn Metrics>,
    pub alarms: Arc<dyn Metrics>,
}

#[async_trait]
impl Metrics for MetricsBy {
    async fn dms_cdc_latency(&self, task_arn: &str) -> Result<Option<DmsLatency>, PortError> {
        self.lag.dms_cdc_latency(task_arn).await
    }
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<(String, AlarmState)>, PortError> {
        self.alarms.alarm_states(names).await
    }
}

/// The metrics port reached through a role: the reached account's CloudWatch.
pub(crate) struct ThroughMetrics(pub Through);

#[async_trait]
impl Metrics for ThroughMetrics {
    async fn dms_cdc_latency(&self, task_arn: &str) -> Result<Option<DmsLatency>, PortError> {
        self.0
            .reach()
            .await?
            .metrics
            .dms_cdc_latency(task_arn)
            .await
    }
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<(String, AlarmState)>, PortError> {
        self.0.reach().await?.metrics.alarm_states(names).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_and_external_ids_are_checked_by_shape() {
        let mut bad = Vec::new();
        let mut f = |field: String, _m: String| bad.push(field);
        role_violations(
            "dns",
            &Some("arn:aws:iam::111122223333:role/cutover-member-dns".into()),
            &Some("ext-1".into()),
            &mut f,
        );
        role_violations(
            "alb",
            &Some("arn:aws:iam::1111:role/x".into()),
            &None,
            &mut f,
        );
        role_violations(
            "health",
            &Some("arn:aws:iam::111122223333:user/x".into()),
            &None,
            &mut f,
        );
        role_violations("replication", &None, &Some("ext".into()), &mut f);
        role_violations(
            "dns",
            &Some("arn:aws:iam::111122223333:role/a".into()),
            &Some("x".into()),
            &mut f,
        );
        assert_eq!(
            bad,
            [
                "alb.roleArn",
                "health.roleArn",
                "replication.externalId",
                "dns.externalId"
            ]
        );
    }

    #[test]
    fn session_names_fit_assume_role() {
        assert_eq!(
            session_name("orders-20261205T101500"),
            "orders-20261205T101500"
        );
        assert_eq!(session_name("a"), "a-");
        assert_eq!(session_name(&"x".repeat(80)).len(), 64);
        assert_eq!(session_name("a b/c"), "a-b-c");
    }
}
