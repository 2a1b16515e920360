//! Elastic Load Balancing (v2): Application Load Balancer listeners, their rules' actions and
//! target groups' health, validated as the ELBv2 API validates them.
//!
//! - The default rule's actions change only through ModifyListener; ModifyRule refuses it
//!   (OperationNotPermitted): "To modify the actions for the default rule, use ModifyListener"
//!   (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_ModifyRule.html).
//! - A forward action names one target group (`TargetGroupArn`) or 1 to 5 weighted ones
//!   (`ForwardConfig`, weights 0 to 999); with both, ForwardConfig holds exactly that one group
//!   (API_Action.html, API_ForwardActionConfig.html, API_TargetGroupTuple.html). Stickiness lasts
//!   1 to 604800 seconds (API_TargetGroupStickinessConfig.html).
//! - DescribeTargetHealth counts the targets whose State is `healthy`
//!   (API_TargetHealth.html).

use super::*;
use async_trait::async_trait;
use cutover_core::alb::{Action, LoadBalancer};
use serde::{Deserialize, Serialize};

/// `elbv2:` in a world file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Elbv2Spec {
    #[serde(default)]
    pub listeners: Vec<ListenerSpec>,
    #[serde(default)]
    pub target_groups: Vec<TargetGroupSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerSpec {
    pub arn: String,
    /// The load balancer's account: its ARN's (given, it must agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub default_actions: Vec<Action>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    pub arn: String,
    pub priority: u32,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetGroupSpec {
    pub arn: String,
    /// The target group's account: its ARN's (given, it must agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// [[from second, healthy targets]]; a count holds until the next entry. Absent: 0.
    #[serde(default)]
    pub healthy: Vec<(f64, f64)>,
    /// [[from second, unhealthy targets]], likewise.
    #[serde(default)]
    pub unhealthy: Vec<(f64, f64)>,
}

impl Elbv2Spec {
    /// World-file problems, each named by its field.
    pub fn violations(&self, bad: &mut impl FnMut(String, String)) {
        let groups: Vec<&str> = self.target_groups.iter().map(|g| g.arn.as_str()).collect();
        for (li, l) in self.listeners.iter().enumerate() {
            let at = format!("elbv2.listeners[{li}]");
            if let Err(m) = check_actions(&l.default_actions, &groups) {
                bad(format!("{at}.defaultActions"), m);
            }
            for (ri, r) in l.rules.iter().enumerate() {
                if !(1..=50_000).contains(&r.priority) {
                    bad(
                        format!("{at}.rules[{ri}].priority"),
                        "must be 1..=50000 (the default rule has none)".into(),
                    );
                }
                if let Err(m) = check_actions(&r.actions, &groups) {
                    bad(format!("{at}.rules[{ri}].actions"), m);
                }
            }
        }
        for (gi, g) in self.target_groups.iter().enumerate() {
            for (name, series) in [("healthy", &g.healthy), ("unhealthy", &g.unhealthy)] {
                if series
                    .iter()
                    .any(|(t, n)| *t < 0.0 || *n < 0.0 || n.fract() != 0.0)
                {
                    bad(
                        format!("elbv2.targetGroups[{gi}].{name}"),
                        "holds [second >= 0, whole count >= 0] pairs".into(),
                    );
                }
            }
        }
    }
}

/// The ELBv2 API's own checks of a list of actions, with its wording where it has one.
fn check_actions(actions: &[Action], groups: &[&str]) -> Result<(), String> {
    if actions.is_empty() {
        return Err("at least one action is required".into());
    }
    for a in actions {
        if a.kind != "forward" {
            continue;
        }
        let tuples = a
            .forward_config
            .as_ref()
            .map(|fc| fc.target_groups.as_slice())
            .unwrap_or_default();
        match (&a.target_group_arn, tuples) {
            (None, []) => {
                return Err("a forward action needs targetGroupArn or forwardConfig".into())
            }
            (Some(one), [t]) if &t.target_group_arn != one => {
                return Err(
                    "with targetGroupArn, forwardConfig must name that same one target group"
                        .into(),
                )
            }
            (Some(_), ts) if ts.len() > 1 => {
                return Err(
                    "with targetGroupArn, forwardConfig must name that same one target group"
                        .into(),
                )
            }
            _ => {}
        }
        if tuples.len() > 5 {
            return Err(format!(
                "forwardConfig names {} target groups; at most 5",
                tuples.len()
            ));
        }
        for t in tuples {
            if t.weight.is_some_and(|w| !(0..=999).contains(&w)) {
                return Err(format!(
                    "weight {} of {} is outside 0..=999",
                    t.weight.unwrap_or_default(),
                    t.target_group_arn
                ));
            }
        }
        let sticky = a
            .forward_config
            .as_ref()
            .and_then(|fc| fc.target_group_stickiness_config.as_ref());
        if let Some(s) = sticky.filter(|s| s.enabled) {
            if !s
                .duration_seconds
                .is_some_and(|d| (1..=604_800).contains(&d))
            {
                return Err(
                    "an enabled targetGroupStickinessConfig needs durationSeconds 1..=604800"
                        .into(),
                );
            }
        }
        let named = a
            .target_group_arn
            .iter()
            .map(String::as_str)
            .chain(tuples.iter().map(|t| t.target_group_arn.as_str()));
        for arn in named {
            if !groups.contains(&arn) {
                return Err(format!(
                    "TargetGroupNotFound: target group '{arn}' not found"
                ));
            }
        }
    }
    Ok(())
}

/// Where a rule's or a listener's default actions are kept in the world's state.
pub(super) fn initial_actions(spec: &Elbv2Spec) -> BTreeMap<String, Vec<Action>> {
    let mut out = BTreeMap::new();
    for l in &spec.listeners {
        out.insert(l.arn.clone(), l.default_actions.clone());
        for r in &l.rules {
            out.insert(r.arn.clone(), r.actions.clone());
        }
    }
    out
}

impl World {
    /// The key of the actions `rule_arn` (or the listener's default) names, or the ELBv2 error.
    fn elb_key(&self, listener_arn: &str, rule_arn: Option<&str>) -> Result<String, PortError> {
        let Some(l) = self
            .spec
            .elbv2
            .listeners
            .iter()
            .find(|l| l.arn == listener_arn)
        else {
            return Err(err(
                "elbv2",
                "ListenerNotFound",
                format!("One or more listeners not found: '{listener_arn}'"),
            ));
        };
        match rule_arn {
            None => Ok(l.arn.clone()),
            Some(r) if l.rules.iter().any(|x| x.arn == r) => Ok(r.to_string()),
            Some(r) => Err(err(
                "elbv2",
                "RuleNotFound",
                format!("One or more rules not found: '{r}'"),
            )),
        }
    }

    /// The actions the world holds now for a rule (or a listener's default), for reports.
    pub fn alb_actions(&self, listener_arn: &str, rule_arn: Option<&str>) -> Vec<Action> {
        let Ok(key) = self.elb_key(listener_arn, rule_arn) else {
            return vec![];
        };
        self.st().alb.get(&key).cloned().unwrap_or_default()
    }

    fn target_count(&self, series: &[(f64, f64)]) -> u32 {
        let t = self.t();
        let n = series
            .iter()
            .take_while(|(from, _)| *from <= t)
            .last()
            .map_or(0.0, |(_, n)| *n);
        n as u32
    }

    /// Share of requests forwarded to target groups that no action forwarded to at t = 0,
    /// over every listener (weights as ELBv2 spreads them; all zero: none).
    pub(super) fn alb_green_share(&self, st: &State) -> Option<f64> {
        if self.spec.elbv2.listeners.is_empty() {
            return None;
        }
        let blue: Vec<String> = initial_actions(&self.spec.elbv2)
            .values()
            .flat_map(|a| cutover_core::alb::weights(a))
            .filter(|(_, w)| *w > 0)
            .map(|(arn, _)| arn)
            .collect();
        let (mut green, mut total) = (0.0, 0.0);
        for actions in st.alb.values() {
            for (arn, w) in cutover_core::alb::weights(actions) {
                total += f64::from(w);
                if !blue.contains(&arn) {
                    green += f64::from(w);
                }
            }
        }
        Some(if total > 0.0 { green / total } else { 0.0 })
    }
}

#[async_trait]
impl LoadBalancer for World {
    async fn actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
    ) -> Result<Vec<Action>, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "elbv2", "DescribeRules")?;
        let key = self.elb_key(listener_arn, rule_arn)?;
        Ok(st.alb.get(&key).cloned().unwrap_or_default())
    }

    async fn set_actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
        actions: &[Action],
    ) -> Result<(), PortError> {
        let mut st = self.st();
        let op = if rule_arn.is_some() {
            "ModifyRule"
        } else {
            "ModifyListener"
        };
        self.enter(&mut st, "elbv2", op)?;
        let key = self.elb_key(listener_arn, rule_arn)?;
        let groups: Vec<&str> = self
            .spec
            .elbv2
            .target_groups
            .iter()
            .map(|g| g.arn.as_str())
            .collect();
        if let Err(m) = check_actions(actions, &groups) {
            let code = if m.starts_with("TargetGroupNotFound") {
                "TargetGroupNotFound"
            } else {
                "InvalidLoadBalancerAction"
            };
            return Err(err("elbv2", code, m));
        }
        // Who writes where follows the weights from now on.
        self.settle(&mut st);
        st.alb.insert(key, actions.to_vec());
        Ok(())
    }

    async fn healthy_targets(&self, target_group_arn: &str) -> Result<u32, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "elbv2", "DescribeTargetHealth")?;
        drop(st);
        let Some(g) = self
            .spec
            .elbv2
            .target_groups
            .iter()
            .find(|g| g.arn == target_group_arn)
        else {
            return Err(err(
                "elbv2",
                "TargetGroupNotFound",
                format!("One or more target groups not found: '{target_group_arn}'"),
            ));
        };
        Ok(self.target_count(&g.healthy))
    }
}
