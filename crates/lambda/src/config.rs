//! The functions' configuration, read from the environment once, with errors naming the variable.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// TABLE_NAME: the run table.
    pub table_name: String,
    /// TOPIC_ARN: where approval notices go (request-approval only).
    pub topic_arn: Option<String>,
    /// ROUTE53_REQUESTS_PER_SECOND: Route 53 requests a second for every execution of the
    /// account together, booked in the run table (default 5, Route 53's quota per account).
    pub route53_requests_per_second: f64,
    /// ROUTE53_COORDINATION: `shared` (book the budget, the default) or `backoff` (send at once,
    /// back off when throttled).
    pub route53_coordination: cutover_core::budget::Coordination,
    /// HTTP_TIMEOUT_SECONDS: per health probe (default 5).
    pub http_timeout: Duration,
    /// DMS_TABLE_STATISTICS: read DescribeTableStatistics (default true).
    pub dms_table_statistics: bool,
    /// WAVE_STATE_MACHINE_ARN and WAVE_SCHEDULER_ROLE_ARN: what the approval API's
    /// `POST /waves/{wave}/schedule` schedules, and as whom (both or neither).
    pub wave_schedule: Option<(String, String)>,
    /// APPROVAL_API_URL: the approval API, named in approval notices (request-approval).
    pub approval_api_url: Option<String>,
    /// The approval API's bounds, set by the deployer (stack parameters), each a comma-separated
    /// list: API_OPERATORS (may start, schedule and read), API_APPROVERS (may read, decide and
    /// abort), SESSION_PINNED_ROLES (roles whose sessions name a person), ALLOWED_RECORD_NAMES
    /// and ALLOWED_HOSTED_ZONE_IDS (what scheduled plans may change). Unset or empty: nobody.
    pub api_bounds: cutover_core::api::Bounds,
    /// Where the stack runs (AWS_REGION, set by Lambda; CUTOVER_ACCOUNT_ID and CUTOVER_PARTITION
    /// from the template) and ALLOWED_HOOK_FUNCTION_ARNS (comma-separated): the pre-flight's
    /// check of hook ARNs.
    pub stack: cutover_core::steps::StackContext,
    /// JWT_GROUPS_CLAIM: the JWT claim that holds the caller's groups (default `cognito:groups`).
    pub jwt_groups_claim: String,
    /// CUTOVER_STATE_MACHINE_ARN: the cutover machine, whose executions hold application locks
    /// (every function with the Executions port: validate-cutover, reconcile-run).
    pub cutover_state_machine_arn: Option<String>,
    /// TOKEN_KEY_ARN: the KMS key that seals task tokens (request-approval, approval-api).
    pub token_key_arn: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

impl Config {
    /// The value of a setting the registry may require (`Port::required_env`), by its
    /// variable's name; None when unset or not a setting of this config.
    pub fn value(&self, name: &str) -> Option<&str> {
        match name {
            "TABLE_NAME" => Some(&self.table_name),
            "TOPIC_ARN" => self.topic_arn.as_deref(),
            "CUTOVER_STATE_MACHINE_ARN" => self.cutover_state_machine_arn.as_deref(),
            "TOKEN_KEY_ARN" => self.token_key_arn.as_deref(),
            "APPROVAL_API_URL" => self.approval_api_url.as_deref(),
            "WAVE_STATE_MACHINE_ARN" => self.wave_schedule.as_ref().map(|(m, _)| m.as_str()),
            "WAVE_SCHEDULER_ROLE_ARN" => self.wave_schedule.as_ref().map(|(_, r)| r.as_str()),
            _ => None,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = get("TABLE_NAME")
            .filter(|s| !s.is_empty())
            .ok_or(ConfigError::Missing("TABLE_NAME"))?;
        let number = |name: &'static str, default: f64| -> Result<f64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n > 0.0)
                    .ok_or_else(|| ConfigError::Invalid {
                        name,
                        message: format!("'{v}' is not a positive number"),
                    }),
            }
        };
        let dms_table_statistics = match get("DMS_TABLE_STATISTICS").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => {
                return Err(ConfigError::Invalid {
                    name: "DMS_TABLE_STATISTICS",
                    message: format!("'{v}' is not true or false"),
                })
            }
        };
        let wave_schedule = match (
            get("WAVE_STATE_MACHINE_ARN").filter(|s| !s.is_empty()),
            get("WAVE_SCHEDULER_ROLE_ARN").filter(|s| !s.is_empty()),
        ) {
            (Some(m), Some(r)) => Some((m, r)),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Missing("WAVE_SCHEDULER_ROLE_ARN")),
            (None, Some(_)) => return Err(ConfigError::Missing("WAVE_STATE_MACHINE_ARN")),
        };
        let list = |name: &str| -> Vec<String> {
            get(name)
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let api_bounds = cutover_core::api::Bounds {
            operators: list("API_OPERATORS"),
            approvers: list("API_APPROVERS"),
            identity: cutover_core::steps::IdentityRule {
                pinned_roles: list("SESSION_PINNED_ROLES"),
            },
            allowed_records: get("ALLOWED_RECORD_NAMES").map(|_| list("ALLOWED_RECORD_NAMES")),
            allowed_zones: get("ALLOWED_HOSTED_ZONE_IDS").map(|_| list("ALLOWED_HOSTED_ZONE_IDS")),
        };
        let stack = cutover_core::steps::StackContext {
            partition: get("CUTOVER_PARTITION").filter(|s| !s.is_empty()),
            account: get("CUTOVER_ACCOUNT_ID").filter(|s| !s.is_empty()),
            region: get("AWS_REGION").filter(|s| !s.is_empty()),
            allowed_hook_arns: list("ALLOWED_HOOK_FUNCTION_ARNS"),
            allowed_record_names: api_bounds.allowed_records.clone(),
            allowed_zone_ids: api_bounds.allowed_zones.clone(),
        };
        Ok(Config {
            stack,
            api_bounds,
            jwt_groups_claim: get("JWT_GROUPS_CLAIM")
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "cognito:groups".into()),
            cutover_state_machine_arn: get("CUTOVER_STATE_MACHINE_ARN").filter(|s| !s.is_empty()),
            token_key_arn: get("TOKEN_KEY_ARN").filter(|s| !s.is_empty()),
            approval_api_url: get("APPROVAL_API_URL").filter(|s| !s.is_empty()),
            wave_schedule,
            table_name,
            topic_arn: get("TOPIC_ARN").filter(|s| !s.is_empty()),
            route53_requests_per_second: number(
                "ROUTE53_REQUESTS_PER_SECOND",
                cutover_core::budget::DEFAULT_ROUTE53_RATE,
            )?,
            route53_coordination: match get("ROUTE53_COORDINATION") {
                None => cutover_core::budget::Coordination::Shared,
                Some(v) => v.parse().map_err(|message| ConfigError::Invalid {
                    name: "ROUTE53_COORDINATION",
                    message,
                })?,
            },
            http_timeout: Duration::from_secs_f64(number("HTTP_TIMEOUT_SECONDS", 5.0)?),
            dms_table_statistics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn names_the_missing_or_bad_variable() {
        assert_eq!(
            Config::from_lookup(env(&[])).unwrap_err(),
            ConfigError::Missing("TABLE_NAME")
        );
        let e = Config::from_lookup(env(&[
            ("TABLE_NAME", "t"),
            ("ROUTE53_REQUESTS_PER_SECOND", "fast"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("ROUTE53_REQUESTS_PER_SECOND"), "{e}");
        let c = Config::from_lookup(env(&[("TABLE_NAME", "t")])).unwrap();
        assert_eq!(
            (
                c.route53_requests_per_second,
                c.http_timeout,
                c.dms_table_statistics
            ),
            (5.0, Duration::from_secs(5), true)
        );
        assert_eq!(
            c.route53_coordination,
            cutover_core::budget::Coordination::Shared
        );
        let e = Config::from_lookup(env(&[
            ("TABLE_NAME", "t"),
            ("ROUTE53_COORDINATION", "polite"),
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable ROUTE53_COORDINATION: 'polite' is not shared or backoff"
        );
    }
}
