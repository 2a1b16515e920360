//! Seeding an AWS-compatible test endpoint (moto) with what a scenario needs and the SDK crates
//! here do not create: the wire tests and `cutover rehearse` only, never deployed functions.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, LoadBalancerTypeEnum, ProtocolEnum, RuleCondition,
    TargetDescription, TargetGroupStickinessConfig, TargetGroupTuple, TargetTypeEnum,
};

/// An Application Load Balancer as seeded: a listener whose default action forwards to blue,
/// one rule (priority 10, `/catalog/*`) forwarding to blue with stickiness (300 s), blue's
/// target group with two registered IP targets and green's with one.
#[derive(Debug, Clone)]
pub struct SeededAlb {
    pub listener_arn: String,
    pub rule_arn: String,
    pub blue: String,
    pub green: String,
}

/// One unsigned query-protocol request (EC2's): moto routes by the credential scope's service
/// and checks no signature. Returns the response's XML.
async fn query(endpoint: &str, service: &str, form: &[(&str, &str)]) -> Result<String, String> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = crate::tls::reqwest_builder("seed")
        .build()
        .map_err(|e| e.to_string())?
        .post(format!("{}/", endpoint.trim_end_matches('/')))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{form:?}: HTTP {status}: {text}"));
    }
    Ok(text)
}

fn xml_first(xml: &str, tag: &str) -> Result<String, String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open).ok_or(format!("no {tag} in {xml}"))? + open.len();
    let end = xml[start..]
        .find(&format!("</{tag}>"))
        .ok_or(format!("no closing {tag}"))?
        + start;
    Ok(xml[start..end].to_string())
}

fn sdk_err(
    what: &str,
    e: impl aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata + std::fmt::Display,
) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{what}: {code}: {message}"),
        _ => format!("{what}: {e}"),
    }
}

/// Seeds one ALB named `name` (at most 32 characters) in a VPC of its own (`cidr16`: the VPC's
/// second octet, so several can coexist).
pub async fn seed_alb(
    sdk: &aws_config::SdkConfig,
    endpoint: &str,
    name: &str,
    cidr16: u8,
) -> Result<SeededAlb, String> {
    let ec2 = |form: Vec<(&'static str, String)>| async move {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        query(endpoint, "ec2", &pairs).await
    };
    let vpc = xml_first(
        &ec2(vec![
            ("Action", "CreateVpc".into()),
            ("Version", "2016-11-15".into()),
            ("CidrBlock", format!("10.{cidr16}.0.0/16")),
        ])
        .await?,
        "vpcId",
    )?;
    let mut subnets = vec![];
    for (i, az) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let xml = ec2(vec![
            ("Action", "CreateSubnet".into()),
            ("Version", "2016-11-15".into()),
            ("VpcId", vpc.clone()),
            ("CidrBlock", format!("10.{cidr16}.{}.0/24", i + 1)),
            ("AvailabilityZone", az.to_string()),
        ])
        .await?;
        subnets.push(xml_first(&xml, "subnetId")?);
    }
    let c = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let lb = c
        .create_load_balancer()
        .name(name)
        .set_subnets(Some(subnets))
        .r#type(LoadBalancerTypeEnum::Application)
        .send()
        .await
        .map_err(|e| sdk_err("CreateLoadBalancer", e))?;
    let lb_arn = lb
        .load_balancers()
        .first()
        .and_then(|l| l.load_balancer_arn())
        .ok_or("CreateLoadBalancer returned no ARN")?
        .to_string();
    let mut groups = vec![];
    for (side, targets) in [("b", 2u8), ("g", 1)] {
        let out = c
            .create_target_group()
            .name(format!("{}-{side}", &name[..name.len().min(28)]))
            .protocol(ProtocolEnum::Http)
            .port(80)
            .vpc_id(&vpc)
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .map_err(|e| sdk_err("CreateTargetGroup", e))?;
        let arn = out
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .ok_or("CreateTargetGroup returned no ARN")?
            .to_string();
        let mut reg = c.register_targets().target_group_arn(&arn);
        for k in 0..targets {
            let ip = format!(
                "10.{cidr16}.1.{}",
                10 + k + if side == "g" { 100 } else { 0 }
            );
            reg = reg.targets(TargetDescription::builder().id(ip).port(80).build());
        }
        reg.send()
            .await
            .map_err(|e| sdk_err("RegisterTargets", e))?;
        groups.push(arn);
    }
    let (blue, green) = (groups[0].clone(), groups[1].clone());
    let listener_arn = c
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&blue)
                .build(),
        )
        .send()
        .await
        .map_err(|e| sdk_err("CreateListener", e))?
        .listeners()
        .first()
        .and_then(|l| l.listener_arn())
        .ok_or("CreateListener returned no ARN")?
        .to_string();
    let sticky = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(&blue)
                        .weight(1)
                        .build(),
                )
                .target_group_stickiness_config(
                    TargetGroupStickinessConfig::builder()
                        .enabled(true)
                        .duration_seconds(300)
                        .build(),
                )
                .build(),
        )
        .build();
    let rule_arn = c
        .create_rule()
        .listener_arn(&listener_arn)
        .priority(10)
        .conditions(
            RuleCondition::builder()
                .field("path-pattern")
                .values("/catalog/*")
                .build(),
        )
        .actions(sticky)
        .send()
        .await
        .map_err(|e| sdk_err("CreateRule", e))?
        .rules()
        .first()
        .and_then(|r| r.rule_arn())
        .ok_or("CreateRule returned no ARN")?
        .to_string();
    Ok(SeededAlb {
        listener_arn,
        rule_arn,
        blue,
        green,
    })
}
