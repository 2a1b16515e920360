//! The ALB router's room: its plan section (`alb`), the listener actions as the ELBv2 API spells
//! them, its port and the pure rules the steps apply (steps/alb.rs holds the steps' side).
//!
//! Traffic moves by the weights of one forward action: green = the step's weight, blue = 100 −
//! it ("Forward actions ... you can specify a weight for each target group", TargetGroupTuple,
//! https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupTuple.html).
//! A rule's actions change with ModifyRule; the listener's default rule only with ModifyListener
//! ("To modify the actions for the default rule, use ModifyListener",
//! https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_ModifyRule.html).

use crate::ports::PortError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// `alb:` in a plan, the alternative to `dns:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlbPlan {
    pub listener_arn: String,
    /// The rule whose forward action shifts; absent = the listener's default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_arn: Option<String>,
    pub blue: TargetGroupRef,
    pub green: TargetGroupRef,
    /// Green's healthy targets (DescribeTargetHealth) needed before each shift and in every
    /// health round of a bake.
    #[serde(default = "default_min_healthy")]
    pub min_healthy_targets: u32,
    /// The role that reaches this section's resources in another account (docs/plan.md,
    /// "Several accounts"); absent, the stack's own credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The external ID the role's trust policy asks for (`sts:ExternalId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

fn default_min_healthy() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetGroupRef {
    pub target_group_arn: String,
}

/// One listener or rule action as DescribeRules / DescribeListeners return it and ModifyRule /
/// ModifyListener take it (API_Action.html). Only `forward` actions are shifted; another type is
/// kept as read and refused at pre-flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i32>,
    /// A forward to one target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_config: Option<ForwardConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardConfig {
    pub target_groups: Vec<WeightedTargetGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_stickiness_config: Option<Stickiness>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedTargetGroup {
    pub target_group_arn: String,
    /// 0 to 999; absent reads as 1 on AWS (TargetGroupTuple).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stickiness {
    pub enabled: bool,
    /// 1 to 604800 seconds (TargetGroupStickinessConfig).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i32>,
}

/// The ALB router's port: one listener's rule actions and a target group's health.
#[async_trait]
pub trait LoadBalancer: Send + Sync {
    /// The actions of `rule_arn` on the listener, or of its default rule when `None`
    /// (DescribeRules by listener). NotFound when the listener or the rule is not there.
    async fn actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
    ) -> Result<Vec<Action>, PortError>;
    /// Replaces the actions: ModifyRule, or ModifyListener's DefaultActions for the default rule.
    async fn set_actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
        actions: &[Action],
    ) -> Result<(), PortError>;
    /// How many of the target group's targets are `healthy` now (DescribeTargetHealth).
    async fn healthy_targets(&self, target_group_arn: &str) -> Result<u32, PortError>;
}

/// The weight each target group receives from these actions, summed over every forward (a
/// single-target forward weighs 1); a target group not forwarded to is absent.
pub fn weights(actions: &[Action]) -> Vec<(String, i32)> {
    let mut out: Vec<(String, i32)> = Vec::new();
    let mut add = |arn: &str, w: i32| match out.iter_mut().find(|(a, _)| a == arn) {
        Some((_, sum)) => *sum += w,
        None => out.push((arn.to_string(), w)),
    };
    for a in actions.iter().filter(|a| a.kind == "forward") {
        match (&a.forward_config, &a.target_group_arn) {
            (Some(fc), _) => {
                for tg in &fc.target_groups {
                    add(&tg.target_group_arn, tg.weight.unwrap_or(1));
                }
            }
            (None, Some(arn)) => add(arn, 1),
            (None, None) => {}
        }
    }
    out
}

impl AlbPlan {
    /// What keeps these actions from being shifted, or `None`: exactly one forward action whose
    /// weight all goes to blue, or (left by an earlier rolled-back run) to blue with green at 0.
    pub fn unshiftable(&self, actions: &[Action]) -> Option<String> {
        let kinds: Vec<&str> = actions.iter().map(|a| a.kind.as_str()).collect();
        if kinds != ["forward"] {
            return Some(format!(
                "the rule's actions are [{}]; the cutover shifts a rule of exactly one forward action, so the rule is left as it is",
                kinds.join(", ")
            ));
        }
        let (blue, green) = (&self.blue.target_group_arn, &self.green.target_group_arn);
        let w = weights(actions);
        let blue_w = w.iter().find(|(a, _)| a == blue).map(|(_, w)| *w);
        let others: Vec<&(String, i32)> = w
            .iter()
            .filter(|(a, w)| a != blue && !(a == green && *w == 0))
            .collect();
        if blue_w.is_none_or(|w| w <= 0) || !others.is_empty() {
            let found: Vec<String> = w.iter().map(|(a, w)| format!("{a} ({w})")).collect();
            return Some(format!(
                "the rule forwards to {}, not to the plan's blue alone (green at weight 0 at most)",
                found.join(", ")
            ));
        }
        None
    }

    /// The actions at `green` percent, from the snapshot's forward action: its order and
    /// stickiness kept, blue at 100 − green.
    pub fn weighted(&self, snapshot: &[Action], green: u32) -> Vec<Action> {
        let green = i32::try_from(green.min(100)).unwrap_or(100);
        let first = snapshot.iter().find(|a| a.kind == "forward");
        let stickiness = first
            .and_then(|a| a.forward_config.as_ref())
            .and_then(|fc| fc.target_group_stickiness_config.clone());
        vec![Action {
            kind: "forward".into(),
            order: first.and_then(|a| a.order),
            target_group_arn: None,
            forward_config: Some(ForwardConfig {
                target_groups: vec![
                    WeightedTargetGroup {
                        target_group_arn: self.blue.target_group_arn.clone(),
                        weight: Some(100 - green),
                    },
                    WeightedTargetGroup {
                        target_group_arn: self.green.target_group_arn.clone(),
                        weight: Some(green),
                    },
                ],
                target_group_stickiness_config: stickiness,
            }),
        }]
    }

    /// Plan check of the section, each problem named by its field.
    pub fn violations(&self, bad: &mut impl FnMut(&str, String)) {
        if !elb_arn(&self.listener_arn, "listener", 5) {
            bad(
                "alb.listenerArn",
                format!(
                    "'{}' is not an Application Load Balancer listener ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID)",
                    self.listener_arn
                ),
            );
        }
        if let Some(r) = &self.rule_arn {
            if !elb_arn(r, "listener-rule", 6) {
                bad(
                    "alb.ruleArn",
                    format!("'{r}' is not a listener rule ARN (…:listener-rule/app/NAME/ID/ID/ID); leave it out for the listener's default action"),
                );
            } else if elb_arn(&self.listener_arn, "listener", 5)
                && !rule_of_listener(r, &self.listener_arn)
            {
                bad(
                    "alb.ruleArn",
                    format!("'{r}' is not a rule of {}", self.listener_arn),
                );
            }
        }
        for (side, tg) in [("blue", &self.blue), ("green", &self.green)] {
            if !elb_arn(&tg.target_group_arn, "targetgroup", 3) {
                bad(
                    &format!("alb.{side}.targetGroupArn"),
                    format!(
                        "'{}' is not a target group ARN (…:targetgroup/NAME/ID)",
                        tg.target_group_arn
                    ),
                );
            }
        }
        if self.blue.target_group_arn == self.green.target_group_arn {
            bad(
                "alb.green.targetGroupArn",
                "is blue's target group; green must be another".into(),
            );
        }
        if self.min_healthy_targets == 0 {
            bad(
                "alb.minHealthyTargets",
                "must be at least 1: traffic is never sent to a target group with no healthy target"
                    .into(),
            );
        }
    }
}

/// `arn:aws[a-z-]*:elasticloadbalancing:REGION:ACCOUNT:KIND/...` with `parts` '/'-separated
/// non-empty segments, KIND first and (for listeners and rules) `app` second.
fn elb_arn(s: &str, kind: &str, parts: usize) -> bool {
    let mut it = s.splitn(6, ':');
    let mut next = || it.next().unwrap_or_default();
    let (arn, partition, svc, region, account, resource) =
        (next(), next(), next(), next(), next(), next());
    let segs: Vec<&str> = resource.split('/').collect();
    arn == "arn"
        && partition.starts_with("aws")
        && svc == "elasticloadbalancing"
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && segs.len() == parts
        && segs[0] == kind
        && (kind == "targetgroup" || segs[1] == "app")
        && segs.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A rule ARN names its listener: `listener-rule/app/LB/LBID/LISTENERID/RULEID` under
/// `listener/app/LB/LBID/LISTENERID`.
fn rule_of_listener(rule: &str, listener: &str) -> bool {
    let rule_prefix = rule.rsplit_once('/').map(|(p, _)| p).unwrap_or_default();
    rule_prefix.replacen(":listener-rule/", ":listener/", 1) == listener
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const R: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
    const BLUE: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/73e2d6bc24d8a067";
    const GREEN: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/83e2d6bc24d8a067";

    fn plan() -> AlbPlan {
        AlbPlan {
            listener_arn: L.into(),
            rule_arn: Some(R.into()),
            blue: TargetGroupRef {
                target_group_arn: BLUE.into(),
            },
            green: TargetGroupRef {
                target_group_arn: GREEN.into(),
            },
            min_healthy_targets: 1,
            role_arn: None,
            external_id: None,
        }
    }

    fn forward(arn: &str) -> Action {
        Action {
            kind: "forward".into(),
            order: Some(1),
            target_group_arn: Some(arn.into()),
            forward_config: None,
        }
    }

    fn problems(p: &AlbPlan) -> Vec<String> {
        let mut out = vec![];
        p.violations(&mut |f, m| out.push(format!("{f}: {m}")));
        out
    }

    #[test]
    fn checks_each_arn_and_the_rule_belongs_to_the_listener() {
        assert!(problems(&plan()).is_empty(), "{:?}", problems(&plan()));
        let mut p = plan();
        p.rule_arn = Some(R.replace("shop", "other"));
        p.blue.target_group_arn = "targetgroup/blue".into();
        p.green.target_group_arn = L.into();
        p.min_healthy_targets = 0;
        let v = problems(&p);
        for field in [
            "alb.ruleArn",
            "alb.blue.targetGroupArn",
            "alb.green.targetGroupArn",
            "alb.minHealthyTargets",
        ] {
            assert!(v.iter().any(|m| m.starts_with(field)), "{field}: {v:?}");
        }
        let mut nlb = plan();
        nlb.listener_arn = L.replace("/app/", "/net/");
        nlb.rule_arn = None;
        assert!(problems(&nlb)[0].starts_with("alb.listenerArn"));
    }

    #[test]
    fn only_a_single_forward_to_blue_can_be_shifted() {
        let p = plan();
        assert_eq!(p.unshiftable(&[forward(BLUE)]), None);
        // Left by a rolled-back run: blue 100, green 0.
        assert_eq!(p.unshiftable(&p.weighted(&[forward(BLUE)], 0)), None);
        assert!(p.unshiftable(&[forward(GREEN)]).is_some());
        assert!(p.unshiftable(&p.weighted(&[forward(BLUE)], 10)).is_some());
        let mut auth = forward(BLUE);
        auth.kind = "authenticate-oidc".into();
        let two = p.unshiftable(&[auth, forward(BLUE)]).unwrap();
        assert!(two.contains("[authenticate-oidc, forward]"), "{two}");
    }

    #[test]
    fn weighted_keeps_order_and_stickiness() {
        let p = plan();
        let mut sticky = forward(BLUE);
        sticky.forward_config = Some(ForwardConfig {
            target_groups: vec![WeightedTargetGroup {
                target_group_arn: BLUE.into(),
                weight: Some(1),
            }],
            target_group_stickiness_config: Some(Stickiness {
                enabled: true,
                duration_seconds: Some(300),
            }),
        });
        let w = p.weighted(&[sticky], 25);
        assert_eq!(w[0].order, Some(1));
        let fc = w[0].forward_config.as_ref().unwrap();
        assert_eq!(
            fc.target_group_stickiness_config
                .as_ref()
                .unwrap()
                .duration_seconds,
            Some(300)
        );
        assert_eq!(
            weights(&w),
            vec![(BLUE.to_string(), 75), (GREEN.to_string(), 25)]
        );
    }
}
