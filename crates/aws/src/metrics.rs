//! CloudWatch: DMS lag from GetMetricData and alarm states from DescribeAlarms.
//!
//! DMS publishes task metrics in namespace `AWS/DMS` with the dimensions
//! `ReplicationInstanceIdentifier` and `ReplicationTaskIdentifier` (CHAP_Monitoring, "Replication
//! task metrics"). The task dimension carries the task's resource id — the last part of its ARN —
//! and the instance dimension the instance's identifier, which is resolved from the task's
//! `ReplicationInstanceArn` with DescribeReplicationInstances. Both CDCLatencySource and
//! CDCLatencyTarget are read, newest datapoint of the last 10 minutes at 60 s resolution, with the
//! datapoint's timestamp so the caller can refuse a stale one. Target latency already includes
//! the source's delay, so the step takes the larger of the two, never their sum. CDCIncomingChanges
//! (its Maximum: change events waiting to be applied) comes with them, for the drain after a
//! write freeze.
//!
//! Alarms: DescribeAlarms returns only metric alarms unless `AlarmTypes` names composite alarms
//! too (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html),
//! so both types are asked for; reading composite alarms needs `cloudwatch:DescribeAlarms` on
//! `*` (same page), which the template grants.

use crate::errors::{map_sdk_error, Codes};
use crate::replication::AwsReplication;
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StateValue,
};
use aws_sdk_databasemigration::types::Filter;
use cutover_core::model::{AlarmState, DmsLatency, DMS_METRIC_PERIOD_SECONDS};
use cutover_core::ports::{Metrics, PortError, PortErrorKind};
use std::collections::HashMap;
use std::sync::Mutex;

const SERVICE: &str = "cloudwatch";
const CODES: Codes = Codes {
    service: SERVICE,
    invalid: &["InvalidParameterValue", "InvalidParameterCombination"],
    not_found: &["ResourceNotFound"],
    conflict: &[],
};

pub struct CloudWatchMetrics {
    cloudwatch: crate::Lazy<aws_sdk_cloudwatch::Client>,
    replication: AwsReplication,
    dms: crate::Lazy<aws_sdk_databasemigration::Client>,
    /// Task ARN -> (instance identifier, task resource id), resolved once per sandbox.
    dimensions: Mutex<HashMap<String, (String, String)>>,
}

/// The task's resource id: the last `:`-separated part of its ARN.
pub fn task_resource_id(task_arn: &str) -> &str {
    task_arn.rsplit(':').next().unwrap_or(task_arn)
}

impl CloudWatchMetrics {
    pub fn new(
        cloudwatch: impl Into<crate::Lazy<aws_sdk_cloudwatch::Client>>,
        replication: AwsReplication,
        dms: impl Into<crate::Lazy<aws_sdk_databasemigration::Client>>,
    ) -> Self {
        CloudWatchMetrics {
            cloudwatch: cloudwatch.into(),
            replication,
            dms: dms.into(),
            dimensions: Mutex::new(HashMap::new()),
        }
    }

    /// Pins the dimensions of a task (tests, or callers that already know them).
    pub fn with_dimensions(self, task_arn: &str, instance_identifier: &str) -> Self {
        self.dimensions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                task_arn.to_string(),
                (
                    instance_identifier.to_string(),
                    task_resource_id(task_arn).to_string(),
                ),
            );
        self
    }

    async fn dimensions_of(&self, task_arn: &str) -> Result<(String, String), PortError> {
        if let Some(d) = self
            .dimensions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(task_arn)
        {
            return Ok(d.clone());
        }
        let task = self.replication.describe_task(task_arn).await?;
        let instance_arn = task
            .replication_instance_arn()
            .unwrap_or_default()
            .to_string();
        let filter = Filter::builder()
            .name("replication-instance-arn")
            .values(&instance_arn)
            .build()
            .map_err(|e| crate::errors::build_err("dms", e))?;
        let resp = self
            .dms
            .describe_replication_instances()
            .filters(filter)
            .send()
            .await
            .map_err(|e| map_sdk_error("dms", e, &[], &["ResourceNotFoundFault"], &[]))?;
        let instance = resp
            .replication_instances()
            .first()
            .and_then(|i| i.replication_instance_identifier())
            .ok_or_else(|| {
                PortError::new(
                    "dms",
                    PortErrorKind::NotFound,
                    "ResourceNotFoundFault",
                    format!("no replication instance {instance_arn}"),
                )
            })?
            .to_string();
        let dims = (instance, task_resource_id(task_arn).to_string());
        self.dimensions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task_arn.to_string(), dims.clone());
        Ok(dims)
    }
}

fn query(id: &str, metric: &str, stat: &str, instance: &str, task: &str) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace("AWS/DMS")
        .metric_name(metric)
        .dimensions(
            Dimension::builder()
                .name("ReplicationInstanceIdentifier")
                .value(instance)
                .build(),
        )
        .dimensions(
            Dimension::builder()
                .name("ReplicationTaskIdentifier")
                .value(task)
                .build(),
        )
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(DMS_METRIC_PERIOD_SECONDS as i32)
                .stat(stat)
                .build(),
        )
        .return_data(true)
        .build()
}

#[async_trait]
impl Metrics for CloudWatchMetrics {
    async fn dms_cdc_latency(&self, task_arn: &str) -> Result<Option<DmsLatency>, PortError> {
        let (instance, task) = self.dimensions_of(task_arn).await?;
        let now = std::time::SystemTime::now();
        let start = now - std::time::Duration::from_secs(600);
        let resp = self
            .cloudwatch
            .get_metric_data()
            .metric_data_queries(query(
                "source",
                "CDCLatencySource",
                "Average",
                &instance,
                &task,
            ))
            .metric_data_queries(query(
                "target",
                "CDCLatencyTarget",
                "Average",
                &instance,
                &task,
            ))
            // The drain after a write freeze needs the most that waited in the period, not its
            // average: Maximum of CDCIncomingChanges.
            .metric_data_queries(query(
                "incoming",
                "CDCIncomingChanges",
                "Maximum",
                &instance,
                &task,
            ))
            .start_time(start.into())
            .end_time(now.into())
            .scan_by(ScanBy::TimestampDescending)
            .send()
            .await
            .map_err(|e| CODES.map(e))?;
        let newest = |id: &str| {
            resp.metric_data_results()
                .iter()
                .find(|r| r.id() == Some(id))
                .and_then(|r| {
                    let v = r.values().first().copied()?;
                    let at = r.timestamps().first().map(crate::errors::to_chrono)?;
                    v.is_finite().then_some((v, at))
                })
        };
        Ok(match (newest("source"), newest("target")) {
            (Some((s, s_at)), Some((t, t_at))) => Some(DmsLatency {
                source_seconds: s.max(0.0),
                target_seconds: t.max(0.0),
                at: s_at.min(t_at),
                // Only a datapoint of the same period speaks for the same moment.
                incoming_changes: newest("incoming")
                    .filter(|(_, at)| *at == s_at.min(t_at))
                    .map(|(v, _)| v.max(0.0)),
            }),
            _ => None,
        })
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<(String, AlarmState)>, PortError> {
        let state = |s: Option<&StateValue>| match s {
            Some(StateValue::Alarm) => AlarmState::Alarm,
            Some(StateValue::Ok) => AlarmState::Ok,
            _ => AlarmState::InsufficientData,
        };
        let mut found: HashMap<String, AlarmState> = HashMap::new();
        // AlarmNames takes at most 100 names per call.
        for chunk in names.chunks(100) {
            let mut next: Option<String> = None;
            loop {
                let resp = self
                    .cloudwatch
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .set_next_token(next.take())
                    .send()
                    .await
                    .map_err(|e| CODES.map(e))?;
                for a in resp.metric_alarms() {
                    found.insert(
                        a.alarm_name().unwrap_or_default().to_string(),
                        state(a.state_value()),
                    );
                }
                for a in resp.composite_alarms() {
                    found.insert(
                        a.alarm_name().unwrap_or_default().to_string(),
                        state(a.state_value()),
                    );
                }
                match resp.next_token() {
                    Some(t) if !t.is_empty() => next = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        names
            .iter()
            .map(|n| {
                found.get(n).map(|s| (n.clone(), *s)).ok_or_else(|| {
                    PortError::new(
                        SERVICE,
                        PortErrorKind::NotFound,
                        "ResourceNotFound",
                        format!("alarm {n} does not exist"),
                    )
                })
            })
            .collect()
    }
}
