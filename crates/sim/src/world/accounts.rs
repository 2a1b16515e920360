//! Several accounts: the stack's own (`account`), the others of the landing zone (`accounts`)
//! with the roles the stack may assume in them, and which account owns each resource.
//!
//! As on AWS, a caller sees only its own account's resources: a hosted zone of another account
//! is `NoSuchHostedZone` to it, a DMS task `ResourceNotFoundFault`, and so on. A role is assumed
//! only when its trust policy names the caller's account and, where the policy asks for one, the
//! external ID matches (AccessDenied otherwise; AWS answers the same for a role that does not
//! exist), and its credentials last an hour (AssumeRole's default `DurationSeconds`):
//! https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html,
//! https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-user_externalid.html.
//! Route 53's request rate is counted per account.

use super::*;
use async_trait::async_trait;
use cutover_core::accounts::{Accounts, Reached, Role};
use cutover_core::alb::{Action, LoadBalancer};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How long assumed credentials last: AssumeRole's default.
pub const SESSION_SECONDS: i64 = 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountSpec {
    pub id: String,
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleSpec {
    pub arn: String,
    /// The account its trust policy names (who may assume it).
    pub trusts_account: String,
    /// The external ID its trust policy asks for (`sts:ExternalId`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_digit())
}

pub use cutover_core::accounts::arn_account;

/// World-file problems of the accounts and of each resource's `account`, named by field.
pub(crate) fn violations(spec: &WorldSpec, bad: &mut impl FnMut(String, String)) {
    fn twelve(bad: &mut impl FnMut(String, String), field: String, v: &str) {
        if !is_account(v) {
            bad(field, format!("'{v}' is not a 12-digit account id"));
        }
    }
    twelve(bad, "account".into(), &spec.account);
    for (zi, z) in spec.route53.zones.iter().enumerate() {
        if let Some(a) = &z.account {
            twelve(bad, format!("route53.zones[{zi}].account"), a);
        }
    }
    for (si, s) in spec.mgn.servers.iter().enumerate() {
        if let Some(a) = &s.account {
            twelve(bad, format!("mgn.servers[{si}].account"), a);
        }
    }
    for (name, alarm) in &spec.alarms {
        if let Some(a) = alarm.account() {
            twelve(bad, format!("alarms.{name}.account"), a);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (ai, a) in spec.accounts.iter().enumerate() {
        twelve(bad, format!("accounts[{ai}].id"), &a.id);
        if !seen.insert(a.id.as_str()) {
            bad(
                format!("accounts[{ai}].id"),
                format!("account {} is listed twice", a.id),
            );
        }
        for (ri, r) in a.roles.iter().enumerate() {
            let at = format!("accounts[{ai}].roles[{ri}]");
            let mut role_bad = |f: String, m: String| {
                let f = f.replacen("role.roleArn", &format!("{at}.arn"), 1);
                let f = f.replacen("role.externalId", &format!("{at}.externalId"), 1);
                bad(f, m)
            };
            cutover_core::accounts::role_violations(
                "role",
                &Some(r.arn.clone()),
                &r.external_id,
                &mut role_bad,
            );
            if arn_account(&r.arn).is_some_and(|x| x != a.id) {
                bad(
                    format!("{at}.arn"),
                    format!("'{}' is not a role of account {}", r.arn, a.id),
                );
            }
            twelve(bad, format!("{at}.trustsAccount"), &r.trusts_account);
        }
    }
    // ARN-named resources belong to their ARN's account; an `account` beside it must agree.
    let mut agree = |field: String, arn: &str, account: &Option<String>| match account {
        Some(a) if arn_account(arn) != Some(a.as_str()) => {
            bad(field, format!("'{a}' is not the account of its ARN {arn}"))
        }
        _ => {}
    };
    for (ti, t) in spec.dms.tasks.iter().enumerate() {
        agree(format!("dms.tasks[{ti}].account"), &t.arn, &t.account);
    }
    for (li, l) in spec.elbv2.listeners.iter().enumerate() {
        agree(format!("elbv2.listeners[{li}].account"), &l.arn, &l.account);
    }
    for (gi, g) in spec.elbv2.target_groups.iter().enumerate() {
        agree(
            format!("elbv2.targetGroups[{gi}].account"),
            &g.arn,
            &g.account,
        );
    }
}

tokio::task_local! {
    /// The account whose credentials the current call carries (set by [`AsAccount`]).
    static CALLER: String;
}

impl World {
    /// The account of the credentials making the current call: the stack's, unless an
    /// [`AsAccount`] port made it.
    pub(crate) fn caller(&self) -> String {
        CALLER
            .try_with(|c| c.clone())
            .unwrap_or_else(|_| self.spec.account.clone())
    }

    /// The services as the stack's own credentials see them: only its account's resources.
    pub fn home(self: &Arc<Self>) -> Arc<AsAccount> {
        Arc::new(AsAccount {
            world: self.clone(),
            account: self.spec.account.clone(),
            expires: None,
        })
    }

    fn zone_account(&self, zone_id: &str) -> Option<&str> {
        self.spec
            .route53
            .zones
            .iter()
            .find(|z| z.id == zone_id)
            .map(|z| z.account.as_deref().unwrap_or(&self.spec.account))
    }

    fn change_account(&self, change_id: &str) -> Option<String> {
        let zone = self.st().changes.get(change_id).map(|(_, z)| z.clone())?;
        self.zone_account(&zone).map(str::to_string)
    }

    fn server_account(&self, server_id: &str) -> Option<&str> {
        self.spec
            .mgn
            .servers
            .iter()
            .find(|s| s.id == server_id)
            .map(|s| s.account.as_deref().unwrap_or(&self.spec.account))
    }

    fn alarm_account(&self, name: &str) -> Option<&str> {
        self.spec
            .alarms
            .get(name)
            .map(|a| a.account().unwrap_or(&self.spec.account))
    }
}

impl World {
    /// AssumeRole: the ports of the role's account for an hour, or AccessDenied.
    pub async fn assume_as(self: &Arc<Self>, role: &Role) -> Result<Reached, PortError> {
        {
            let mut st = self.st();
            self.enter(&mut st, "sts", "AssumeRole")?;
        }
        let caller = self.caller();
        let trusted = self
            .spec
            .accounts
            .iter()
            .flat_map(|a| a.roles.iter())
            .find(|r| r.arn == role.arn)
            .is_some_and(|r| r.trusts_account == caller && r.external_id == role.external_id);
        if !trusted {
            return Err(err(
                "sts",
                "AccessDenied",
                format!(
                    "User: arn:aws:sts::{caller}:assumed-role/cutover is not authorized to perform: sts:AssumeRole on resource: {}",
                    role.arn
                ),
            ));
        }
        let expires = self.clock.now() + chrono::Duration::seconds(SESSION_SECONDS);
        let port = Arc::new(AsAccount {
            world: self.clone(),
            account: role.account().to_string(),
            expires: Some(expires),
        });
        Ok(Reached {
            router: port.clone(),
            load_balancer: port.clone(),
            replication: port.clone(),
            metrics: port,
            expires: Some(expires),
        })
    }

    /// The world's STS, for `Deps::accounts`.
    pub fn sts(self: &Arc<Self>) -> Arc<Sts> {
        Arc::new(Sts(self.clone()))
    }
}

/// The world's [`Accounts`] port: what STS answers in it.
pub struct Sts(pub Arc<World>);

#[async_trait]
impl Accounts for Sts {
    async fn assume(&self, role: &Role, _session: &str) -> Result<Reached, PortError> {
        self.0.assume_as(role).await
    }
}

/// The world's services as one account's credentials see them.
pub struct AsAccount {
    world: Arc<World>,
    account: String,
    /// When the credentials run out (assumed ones); after, every call is `ExpiredToken`.
    expires: Option<chrono::DateTime<chrono::Utc>>,
}

impl AsAccount {
    /// Fails unless the credentials are still valid and `owner` (the resource's account, None
    /// when it does not exist) is this account; `missing` is the service's not-found answer.
    fn see(
        &self,
        owner: Option<&str>,
        missing: impl FnOnce() -> PortError,
    ) -> Result<(), PortError> {
        self.fresh()?;
        match owner {
            Some(o) if o != self.account => Err(missing()),
            _ => Ok(()),
        }
    }

    /// A zone this account may not see is still a request Route 53 counts against its rate.
    async fn see_zone(&self, zone_id: &str, op: &str) -> Result<(), PortError> {
        let seen = self.see(self.world.zone_account(zone_id), no_zone(zone_id));
        if seen.is_err() {
            self.call(async { self.world.route53_spend(op) }).await?;
        }
        seen
    }

    /// Fails once assumed credentials have expired.
    fn fresh(&self) -> Result<(), PortError> {
        match self.expires {
            Some(at) if self.world.clock.now() >= at => Err(err(
                "sts",
                "ExpiredToken",
                "The security token included in the request is expired",
            )),
            _ => Ok(()),
        }
    }

    async fn call<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        CALLER.scope(self.account.clone(), f).await
    }
}

fn no_zone(zone_id: &str) -> impl FnOnce() -> PortError + '_ {
    move || {
        err(
            "route53",
            "NoSuchHostedZone",
            format!("No hosted zone found with ID: {zone_id}"),
        )
    }
}

fn no_task(arn: &str) -> impl FnOnce() -> PortError + '_ {
    move || {
        err(
            "dms",
            "ResourceNotFoundFault",
            format!("Replication task {arn} not found"),
        )
    }
}

fn no_server(id: &str) -> impl FnOnce() -> PortError + '_ {
    move || {
        err(
            "mgn",
            "ResourceNotFoundException",
            format!("Source server {id} not found"),
        )
    }
}

#[async_trait]
impl TrafficRouter for AsAccount {
    async fn records(
        &self,
        zone_id: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RecordSet>, PortError> {
        self.see_zone(zone_id, "ListResourceRecordSets").await?;
        self.call(self.world.records(zone_id, name, record_type))
            .await
    }
    async fn change(
        &self,
        zone_id: &str,
        changes: &[Change],
        comment: &str,
    ) -> Result<ChangeInfo, PortError> {
        self.see_zone(zone_id, "ChangeResourceRecordSets").await?;
        self.call(self.world.change(zone_id, changes, comment))
            .await
    }
    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, PortError> {
        self.see(self.world.change_account(change_id).as_deref(), || {
            err(
                "route53",
                "NoSuchChange",
                format!("No change with ID {change_id}"),
            )
        })?;
        self.call(self.world.change_status(change_id)).await
    }
}

#[async_trait]
impl LoadBalancer for AsAccount {
    async fn actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
    ) -> Result<Vec<Action>, PortError> {
        self.see(arn_account(listener_arn), || {
            err(
                "elbv2",
                "ListenerNotFound",
                format!("One or more listeners not found: '{listener_arn}'"),
            )
        })?;
        self.call(self.world.actions(listener_arn, rule_arn)).await
    }
    async fn set_actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
        actions: &[Action],
    ) -> Result<(), PortError> {
        self.see(arn_account(listener_arn), || {
            err(
                "elbv2",
                "ListenerNotFound",
                format!("One or more listeners not found: '{listener_arn}'"),
            )
        })?;
        self.call(self.world.set_actions(listener_arn, rule_arn, actions))
            .await
    }
    async fn healthy_targets(&self, target_group_arn: &str) -> Result<u32, PortError> {
        self.see(arn_account(target_group_arn), || {
            err(
                "elbv2",
                "TargetGroupNotFound",
                format!("One or more target groups not found: '{target_group_arn}'"),
            )
        })?;
        self.call(self.world.healthy_targets(target_group_arn))
            .await
    }
}

#[async_trait]
impl Replication for AsAccount {
    async fn dms_task(&self, task_arn: &str) -> Result<DmsTask, PortError> {
        self.see(arn_account(task_arn), no_task(task_arn))?;
        self.call(self.world.dms_task(task_arn)).await
    }
    async fn start_dms_task(
        &self,
        task_arn: &str,
        start_type: DmsStartType,
    ) -> Result<(), PortError> {
        self.see(arn_account(task_arn), no_task(task_arn))?;
        self.call(self.world.start_dms_task(task_arn, start_type))
            .await
    }
    async fn stop_dms_task(&self, task_arn: &str) -> Result<(), PortError> {
        self.see(arn_account(task_arn), no_task(task_arn))?;
        self.call(self.world.stop_dms_task(task_arn)).await
    }
    async fn mgn_server(&self, server_id: &str) -> Result<MgnServer, PortError> {
        self.see(self.world.server_account(server_id), no_server(server_id))?;
        self.call(self.world.mgn_server(server_id)).await
    }
    async fn start_mgn_cutover(&self, server_ids: &[String]) -> Result<String, PortError> {
        for id in server_ids {
            self.see(self.world.server_account(id), no_server(id))?;
        }
        self.call(self.world.start_mgn_cutover(server_ids)).await
    }
    async fn mgn_job(&self, job_id: &str, server_id: &str) -> Result<MgnJob, PortError> {
        self.see(self.world.server_account(server_id), || {
            err(
                "mgn",
                "ResourceNotFoundException",
                format!("Job {job_id} not found"),
            )
        })?;
        self.call(self.world.mgn_job(job_id, server_id)).await
    }
    async fn finalize_mgn_cutover(&self, server_id: &str) -> Result<(), PortError> {
        self.see(self.world.server_account(server_id), no_server(server_id))?;
        self.call(self.world.finalize_mgn_cutover(server_id)).await
    }
}

#[async_trait]
impl Metrics for AsAccount {
    async fn dms_cdc_latency(&self, task_arn: &str) -> Result<Option<DmsLatency>, PortError> {
        // CloudWatch has no datapoints for another account's task: nothing, not an error.
        self.fresh()?;
        if arn_account(task_arn).is_some_and(|a| a != self.account) {
            return Ok(None);
        }
        self.call(self.world.dms_cdc_latency(task_arn)).await
    }
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<(String, AlarmState)>, PortError> {
        for n in names {
            self.see(self.world.alarm_account(n), || {
                err(
                    "cloudwatch",
                    "ResourceNotFound",
                    format!("alarm {n} does not exist"),
                )
            })?;
        }
        self.call(self.world.alarm_states(names)).await
    }
}
