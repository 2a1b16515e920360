//! The ALB router over Elastic Load Balancing (v2): a rule's actions read with DescribeRules (by
//! listener, paginated), replaced with ModifyRule, or ModifyListener for the listener's default
//! rule ("To modify the actions for the default rule, use ModifyListener",
//! https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_ModifyRule.html), and
//! a target group's healthy targets counted with DescribeTargetHealth.

use crate::errors::Codes;
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action as SdkAction, ActionTypeEnum, ForwardActionConfig, TargetGroupStickinessConfig,
    TargetGroupTuple, TargetHealthStateEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;
use cutover_core::alb::{Action, ForwardConfig, LoadBalancer, Stickiness, WeightedTargetGroup};
use cutover_core::ports::{PortError, PortErrorKind};

const SERVICE: &str = "elbv2";
const CODES: Codes = Codes {
    service: SERVICE,
    invalid: &[
        "InvalidLoadBalancerAction",
        "ValidationError",
        "OperationNotPermitted",
        "IncompatibleProtocols",
    ],
    not_found: &["ListenerNotFound", "RuleNotFound", "TargetGroupNotFound"],
    conflict: &[],
};

pub struct AlbRouter {
    client: crate::Lazy<Client>,
}

impl AlbRouter {
    pub fn new(client: impl Into<crate::Lazy<Client>>) -> Self {
        AlbRouter {
            client: client.into(),
        }
    }
}

fn from_sdk(a: &SdkAction) -> Action {
    Action {
        kind: a
            .r#type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        order: a.order(),
        target_group_arn: a.target_group_arn().map(str::to_string),
        forward_config: a.forward_config().map(|fc| ForwardConfig {
            target_groups: fc
                .target_groups()
                .iter()
                .map(|t| WeightedTargetGroup {
                    target_group_arn: t.target_group_arn().unwrap_or_default().to_string(),
                    weight: t.weight(),
                })
                .collect(),
            target_group_stickiness_config: fc.target_group_stickiness_config().map(|s| {
                Stickiness {
                    enabled: s.enabled().unwrap_or(false),
                    duration_seconds: s.duration_seconds(),
                }
            }),
        }),
    }
}

fn to_sdk(a: &Action) -> SdkAction {
    SdkAction::builder()
        .r#type(ActionTypeEnum::from(a.kind.as_str()))
        .set_order(a.order)
        .set_target_group_arn(a.target_group_arn.clone())
        .set_forward_config(a.forward_config.as_ref().map(|fc| {
            ForwardActionConfig::builder()
                .set_target_groups(Some(
                    fc.target_groups
                        .iter()
                        .map(|t| {
                            TargetGroupTuple::builder()
                                .target_group_arn(&t.target_group_arn)
                                .set_weight(t.weight)
                                .build()
                        })
                        .collect(),
                ))
                .set_target_group_stickiness_config(fc.target_group_stickiness_config.as_ref().map(
                    |s| {
                        TargetGroupStickinessConfig::builder()
                            .enabled(s.enabled)
                            .set_duration_seconds(s.duration_seconds)
                            .build()
                    },
                ))
                .build()
        }))
        .build()
}

#[async_trait]
impl LoadBalancer for AlbRouter {
    async fn actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
    ) -> Result<Vec<Action>, PortError> {
        let mut marker: Option<String> = None;
        loop {
            let resp = self
                .client
                .describe_rules()
                .listener_arn(listener_arn)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| CODES.map(e))?;
            let found = resp.rules().iter().find(|r| match rule_arn {
                Some(arn) => r.rule_arn() == Some(arn),
                None => r.is_default() == Some(true),
            });
            if let Some(rule) = found {
                return Ok(rule.actions().iter().map(from_sdk).collect());
            }
            match resp.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Err(PortError::new(
            SERVICE,
            PortErrorKind::NotFound,
            "RuleNotFound",
            match rule_arn {
                Some(arn) => format!("no rule {arn} on listener {listener_arn}"),
                None => format!("listener {listener_arn} has no default rule"),
            },
        ))
    }

    async fn set_actions(
        &self,
        listener_arn: &str,
        rule_arn: Option<&str>,
        actions: &[Action],
    ) -> Result<(), PortError> {
        let actions: Vec<SdkAction> = actions.iter().map(to_sdk).collect();
        match rule_arn {
            Some(arn) => self
                .client
                .modify_rule()
                .rule_arn(arn)
                .set_actions(Some(actions))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| CODES.map(e)),
            None => self
                .client
                .modify_listener()
                .listener_arn(listener_arn)
                .set_default_actions(Some(actions))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| CODES.map(e)),
        }
    }

    async fn healthy_targets(&self, target_group_arn: &str) -> Result<u32, PortError> {
        let resp = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| CODES.map(e))?;
        let healthy = resp
            .target_health_descriptions()
            .iter()
            .filter(|d| {
                d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy)
            })
            .count();
        Ok(u32::try_from(healthy).unwrap_or(u32::MAX))
    }
}
