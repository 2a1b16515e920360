//! Route 53: change batches validated as Route 53 validates them, the account-wide request rate,
//! busy zones and PENDING -> INSYNC propagation.

use super::*;
use async_trait::async_trait;
use std::sync::Arc;

impl World {
    /// A request Route 53 refuses before reading anything (a zone of another account): it still
    /// spends the caller's rate.
    pub(super) fn route53_spend(&self, op: &str) -> Result<(), PortError> {
        let mut st = self.st();
        self.route53_enter(&mut st, op)
    }

    /// Route 53's account-wide rate limit, counted per virtual second.
    fn route53_enter(&self, st: &mut State, op: &str) -> Result<(), PortError> {
        self.enter(st, "route53", op)?;
        // Route 53's quota is per account: each caller's account has its own window.
        let second = self.t().floor() as i64;
        let caller = self.caller();
        let window = st.r53_window.entry(caller.clone()).or_insert((second, 0));
        if window.0 != second {
            *window = (second, 0);
        }
        window.1 += 1;
        if window.1 > self.spec.route53.requests_per_second {
            st.counters.throttled += 1;
            st.r53.entry(caller).or_default().throttled += 1;
            return Err(err("route53", "Throttling", "Rate exceeded"));
        }
        *st.r53
            .entry(caller)
            .or_default()
            .answered
            .entry(second)
            .or_insert(0) += 1;
        Ok(())
    }

    /// Wraps the router the steps use (budget and faults included) to see Route 53 as the
    /// cutovers want it: when each caller first asked and when it was finally answered.
    pub fn observe_route53(
        self: &Arc<Self>,
        inner: Arc<dyn TrafficRouter>,
    ) -> Arc<dyn TrafficRouter> {
        self.observe_route53_in(inner, &self.spec.account)
    }

    /// [`World::observe_route53`] for the Route 53 of `account` (reached through a role).
    pub fn observe_route53_in(
        self: &Arc<Self>,
        inner: Arc<dyn TrafficRouter>,
        account: &str,
    ) -> Arc<dyn TrafficRouter> {
        Arc::new(Observed {
            world: self.clone(),
            inner,
            account: account.to_string(),
        })
    }

    /// How the stack's own account's Route 53 budget was used while callers waited for it.
    pub fn route53_use(&self) -> Route53Use {
        self.route53_use_of(&self.spec.account)
    }

    /// [`World::route53_use`] of every account whose Route 53 was asked, by account.
    pub fn route53_use_by_account(&self) -> BTreeMap<String, Route53Use> {
        let accounts: Vec<String> = self.st().r53.keys().cloned().collect();
        accounts
            .into_iter()
            .map(|a| {
                let u = self.route53_use_of(&a);
                (a, u)
            })
            .collect()
    }

    fn route53_use_of(&self, account: &str) -> Route53Use {
        let st = self.st();
        let empty = Demand::default();
        let d = st.r53.get(account).unwrap_or(&empty);
        // Whole seconds during which at least one caller was waiting for an answer: in each,
        // the account could have answered its full rate.
        let mut spans = d.waits.clone();
        spans.extend(d.wanting.values().map(|t0| (*t0, self.t())));
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::new();
        for (a, b) in spans {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let (mut seconds, mut answered) = (0u64, 0u64);
        for (a, b) in merged {
            for second in (a.ceil() as i64)..(b.floor() as i64) {
                seconds += 1;
                answered += u64::from(d.answered.get(&second).copied().unwrap_or(0));
            }
        }
        let capacity = seconds * u64::from(self.spec.route53.requests_per_second);
        Route53Use {
            requests_answered: d.answered.values().map(|n| u64::from(*n)).sum(),
            throttled: d.throttled,
            waiting_seconds: seconds,
            budget_used_while_waiting: (capacity > 0).then(|| answered as f64 / capacity as f64),
            longest_wait_seconds: d.waits.iter().map(|(a, b)| b - a).fold(0.0, f64::max),
        }
    }

    fn want(&self, account: &str, key: &str) {
        let t = self.t();
        let mut st = self.st();
        let d = st.r53.entry(account.to_string()).or_default();
        d.wanting.entry(key.to_string()).or_insert(t);
    }

    fn answered<T>(&self, account: &str, key: &str, r: &Result<T, PortError>) {
        let t = self.t();
        let mut st = self.st();
        let d = st.r53.entry(account.to_string()).or_default();
        match r {
            // Still waiting for the budget: throttled by Route 53, or the budget booked. (A busy
            // zone is an answer: it spent a request of the budget; a retry waits anew.)
            Err(e) if e.kind == PortErrorKind::Throttled => {}
            _ => {
                if let Some(t0) = d.wanting.remove(key) {
                    d.waits.push((t0, t));
                }
            }
        }
    }

    fn change_status_at(&self, submitted: DateTime<Utc>) -> ChangeStatus {
        let age = (self.clock.now() - submitted).num_milliseconds() as f64 / 1000.0;
        if age >= self.spec.route53.propagation_seconds as f64 {
            ChangeStatus::Insync
        } else {
            ChangeStatus::Pending
        }
    }
}

/// Route 53 as the callers saw it (`World::route53_use`).
#[derive(Default)]
pub(super) struct Demand {
    /// Requests Route 53 answered (not throttled), by virtual second.
    answered: BTreeMap<i64, u32>,
    /// Callers asking and not yet answered, by what they ask about (a record name, or a
    /// change id), since when.
    wanting: HashMap<String, f64>,
    /// Each answered caller's wait: from its first ask until its answer.
    waits: Vec<(f64, f64)>,
    /// Requests refused for the rate.
    throttled: u64,
}

/// Figures of a run (or a wave) on the account's Route 53 budget.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route53Use {
    pub requests_answered: u64,
    pub throttled: u64,
    /// Whole seconds in which at least one caller was waiting for Route 53.
    pub waiting_seconds: u64,
    /// Requests answered in those seconds over what the account's rate allows in them.
    pub budget_used_while_waiting: Option<f64>,
    pub longest_wait_seconds: f64,
}

struct Observed {
    world: Arc<World>,
    inner: Arc<dyn TrafficRouter>,
    /// Whose Route 53 it is.
    account: String,
}

#[async_trait]
impl TrafficRouter for Observed {
    async fn records(
        &self,
        zone_id: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RecordSet>, PortError> {
        self.world.want(&self.account, name);
        let r = self.inner.records(zone_id, name, record_type).await;
        self.world.answered(&self.account, name, &r);
        r
    }

    async fn change(
        &self,
        zone_id: &str,
        changes: &[Change],
        comment: &str,
    ) -> Result<ChangeInfo, PortError> {
        let key = cutover_core::budget::change_key(zone_id, changes);
        self.world.want(&self.account, key);
        let r = self.inner.change(zone_id, changes, comment).await;
        self.world.answered(&self.account, key, &r);
        r
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, PortError> {
        self.world.want(&self.account, change_id);
        let r = self.inner.change_status(change_id).await;
        self.world.answered(&self.account, change_id, &r);
        r
    }
}

fn key(r: &RecordSet) -> (String, RecordType, Option<String>) {
    (r.name.clone(), r.record_type, r.set_identifier.clone())
}

/// Why Route 53 refuses a batch: InvalidInput for a malformed record, InvalidChangeBatch for a
/// batch that does not fit the zone (ChangeResourceRecordSets errors,
/// https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html).
struct BatchError {
    code: &'static str,
    message: String,
}

impl BatchError {
    fn input(message: String) -> Self {
        BatchError {
            code: "InvalidInput",
            message,
        }
    }
    fn batch(message: String) -> Self {
        BatchError {
            code: "InvalidChangeBatch",
            message,
        }
    }
}

/// Applies a batch to a copy of the zone's records as Route 53 would, or says why it refuses.
/// The batch is transactional: all of it or none. A DELETE must name the record exactly as it is,
/// health check and alias target included ("To delete a resource record set, you must specify all
/// the same values that you specified when you created it").
fn apply_batch(zone: &Zone, changes: &[Change]) -> Result<Vec<RecordSet>, BatchError> {
    if changes.is_empty() {
        return Err(BatchError::input("the change batch is empty".into()));
    }
    let mut records = zone.records.clone();
    for c in changes {
        let r = canonical_record(c.record.clone());
        let zone_name = &zone.name;
        if r.name != *zone_name && !r.name.ends_with(&format!(".{zone_name}")) {
            return Err(BatchError::batch(format!(
                "RRSet with DNS name {} is not permitted in zone {zone_name}",
                r.name
            )));
        }
        if let Some(m) = record_shape_error(&r) {
            return Err(BatchError::input(m));
        }
        if r.weight.is_some() != r.set_identifier.is_some() {
            return Err(BatchError::input(format!(
                "Invalid request: weight and SetIdentifier must be given together for {}",
                r.name
            )));
        }
        if r.weight.is_some_and(|w| w > 255) {
            return Err(BatchError::input(format!(
                "Invalid weight {} for {}: weights are 0..=255",
                r.weight.unwrap_or(0),
                r.name
            )));
        }
        if r.alias_target.is_none() && r.record_type == RecordType::CNAME && r.values.len() != 1 {
            return Err(BatchError::batch(format!(
                "Invalid number of values for {} {}",
                r.name, r.record_type
            )));
        }
        let pos = records.iter().position(|x| key(x) == key(&r));
        match c.action {
            ChangeAction::Create => {
                if pos.is_some() {
                    return Err(BatchError::batch(format!("Tried to create resource record set [name='{}', type='{}'] but it already exists", r.name, r.record_type)));
                }
                records.push(r);
            }
            ChangeAction::Delete => match pos {
                Some(i) if records[i] == r => {
                    records.remove(i);
                }
                Some(_) => {
                    return Err(BatchError::batch(format!(
                        "Tried to delete resource record set [name='{}', type='{}'] but the values provided do not match the current values",
                        r.name, r.record_type
                    )))
                }
                None => {
                    return Err(BatchError::batch(format!("Tried to delete resource record set [name='{}', type='{}'] but it was not found", r.name, r.record_type)))
                }
            },
            ChangeAction::Upsert => match pos {
                Some(i) => records[i] = r,
                None => records.push(r),
            },
        }
    }
    // Whole-batch rules, checked on the result.
    let mut groups: BTreeMap<(String, RecordType), Vec<&RecordSet>> = BTreeMap::new();
    for r in &records {
        groups
            .entry((r.name.clone(), r.record_type))
            .or_default()
            .push(r);
    }
    for ((name, ty), group) in groups {
        let simple = group.iter().filter(|r| !r.is_weighted()).count();
        if simple > 0 && group.len() > 1 {
            return Err(BatchError::batch(format!(
                "RRSet of type {ty} with DNS name {name} is not permitted because a conflicting RRSet of type {ty} with the same DNS name already exists"
            )));
        }
        // The TTL rule binds the value records of a weighted set; alias records have no TTL.
        let ttls: Vec<u64> = group.iter().filter_map(|r| r.ttl).collect();
        if ttls.windows(2).any(|w| w[0] != w[1]) {
            return Err(BatchError::batch(format!("All resource record sets in the weighted set {name} {ty} must have the same TTL, got {ttls:?}")));
        }
    }
    Ok(records)
}

#[async_trait]
impl TrafficRouter for World {
    async fn records(
        &self,
        zone_id: &str,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<RecordSet>, PortError> {
        {
            let mut st = self.st();
            self.route53_enter(&mut st, "ListResourceRecordSets")?;
            if !st.zones.contains_key(zone_id) {
                return Err(err(
                    "route53",
                    "NoSuchHostedZone",
                    format!("No hosted zone found with ID: {zone_id}"),
                ));
            }
        }
        Ok(self.dns(zone_id, name, record_type))
    }

    async fn change(
        &self,
        zone_id: &str,
        changes: &[Change],
        _comment: &str,
    ) -> Result<ChangeInfo, PortError> {
        let mut st = self.st();
        self.route53_enter(&mut st, "ChangeResourceRecordSets")?;
        // Writes so far split by the weights that held until now.
        self.settle(&mut st);
        let now = self.clock.now();
        let busy_for = chrono::Duration::seconds(self.spec.route53.busy_seconds as i64);
        let busy = st
            .changes
            .values()
            .any(|(at, z)| z == zone_id && now - *at < busy_for);
        if busy {
            return Err(err(
                "route53",
                "PriorRequestNotComplete",
                "The request was rejected because Route 53 was still processing a prior request.",
            ));
        }
        let zone = st.zones.get(zone_id).ok_or_else(|| {
            err(
                "route53",
                "NoSuchHostedZone",
                format!("No hosted zone found with ID: {zone_id}"),
            )
        })?;
        let records = apply_batch(zone, changes).map_err(|e| err("route53", e.code, e.message))?;
        let mut before = zone.records.clone();
        let mut after = records.clone();
        before.sort();
        after.sort();
        if before != after {
            st.counters.dns_changes_applied += 1;
        }
        if let Some(z) = st.zones.get_mut(zone_id) {
            z.records = records;
        }
        st.next_change += 1;
        let id = format!("C{:012}", st.next_change);
        let now = self.clock.now();
        st.changes.insert(id.clone(), (now, zone_id.to_string()));
        Ok(ChangeInfo {
            id,
            status: ChangeStatus::Pending,
            submitted_at: now,
        })
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, PortError> {
        let mut st = self.st();
        self.route53_enter(&mut st, "GetChange")?;
        let (at, _) = st.changes.get(change_id).cloned().ok_or_else(|| {
            err(
                "route53",
                "NoSuchChange",
                format!("No change with ID {change_id}"),
            )
        })?;
        Ok(ChangeInfo {
            id: change_id.to_string(),
            status: self.change_status_at(at),
            submitted_at: at,
        })
    }
}
