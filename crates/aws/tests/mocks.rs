//! Adapter paths moto cannot serve, over aws-smithy-mocks: MGN (moto has none), CloudWatch
//! (rpc-v2-cbor, which moto cannot decode), and error answers moto never gives (Throttling,
//! PriorRequestNotComplete, InvalidResourceStateFault, InvalidToken, ConflictException).

use aws_sdk_cloudwatch::types::{MetricAlarm, MetricDataResult, StateValue};
use aws_sdk_mgn::types::{
    DataReplicationInfo, DataReplicationState, LifeCycle, LifeCycleState, SourceServer,
};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_types::retry::RetryConfig;
use cutover_aws::route53::Backoff;
use cutover_aws::{AwsReplication, CloudWatchMetrics, Route53Router, SfnCallbacks, SfnExecutions};
use cutover_core::model::*;
use cutover_core::ports::*;
use std::time::Duration;

/// The metadata the SDK's deserializer attaches to a service error (code and message).
fn meta(code: &str, message: &str) -> aws_smithy_types::error::ErrorMetadata {
    aws_smithy_types::error::ErrorMetadata::builder()
        .code(code)
        .message(message)
        .build()
}

const TASK: &str = "arn:aws:dms:us-east-1:123456789012:task:ORDERSRESOURCEID";

fn no_dms() -> aws_sdk_databasemigration::Client {
    mock_client!(aws_sdk_databasemigration, [])
}

fn no_mgn() -> aws_sdk_mgn::Client {
    mock_client!(aws_sdk_mgn, [])
}

#[tokio::test]
async fn mgn_source_server_lag_and_lifecycle() {
    let describe = mock!(aws_sdk_mgn::Client::describe_source_servers)
        .match_requests(|r| {
            r.filters().map(|f| f.source_server_ids())
                == Some(&["s-0123456789abcdef0".to_string()][..])
        })
        .then_output(|| {
            aws_sdk_mgn::operation::describe_source_servers::DescribeSourceServersOutput::builder()
                .items(
                    SourceServer::builder()
                        .source_server_id("s-0123456789abcdef0")
                        .life_cycle(
                            LifeCycle::builder()
                                .state(LifeCycleState::ReadyForCutover)
                                .build(),
                        )
                        .data_replication_info(
                            DataReplicationInfo::builder()
                                .data_replication_state(DataReplicationState::Continuous)
                                .lag_duration("PT1M30S")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let mgn = mock_client!(aws_sdk_mgn, [&describe]);
    let r = AwsReplication::new(no_dms(), mgn);
    let s = r.mgn_server("s-0123456789abcdef0").await.unwrap();
    assert_eq!(s.lifecycle, "READY_FOR_CUTOVER");
    assert_eq!(s.replication_state, "CONTINUOUS");
    assert_eq!(s.lag_duration.as_deref(), Some("PT1M30S"));
    assert_eq!(describe.num_calls(), 1);
}

/// Several servers launch in one StartCutover (its sourceServerIDs list) and DescribeJobs reports
/// each server's launch in the job's participatingServers.
#[tokio::test]
async fn mgn_several_servers_launch_in_one_job() {
    use aws_sdk_mgn::types::{Job, JobStatus, LaunchStatus, ParticipatingServer};
    let ids = vec![
        "s-000000000000000a1".to_string(),
        "s-000000000000000a2".to_string(),
    ];
    let want = ids.clone();
    let start = mock!(aws_sdk_mgn::Client::start_cutover)
        .match_requests(move |r| r.source_server_ids() == &want[..])
        .then_output(|| {
            aws_sdk_mgn::operation::start_cutover::StartCutoverOutput::builder()
                .job(Job::builder().job_id("mgnjob-1").build().unwrap())
                .build()
        });
    let jobs = mock!(aws_sdk_mgn::Client::describe_jobs)
        .match_requests(|r| r.filters().map(|f| f.job_ids()) == Some(&["mgnjob-1".to_string()][..]))
        .then_output(|| {
            let server = |id: &str, launch: LaunchStatus| {
                ParticipatingServer::builder()
                    .source_server_id(id)
                    .launch_status(launch)
                    .build()
                    .unwrap()
            };
            aws_sdk_mgn::operation::describe_jobs::DescribeJobsOutput::builder()
                .items(
                    Job::builder()
                        .job_id("mgnjob-1")
                        .status(JobStatus::Completed)
                        .participating_servers(server(
                            "s-000000000000000a1",
                            LaunchStatus::Launched,
                        ))
                        .participating_servers(server("s-000000000000000a2", LaunchStatus::Failed))
                        .build()
                        .unwrap(),
                )
                .build()
        });
    let mgn = mock_client!(aws_sdk_mgn, RuleMode::MatchAny, [&start, &jobs]);
    let r = AwsReplication::new(no_dms(), mgn);
    assert_eq!(r.start_mgn_cutover(&ids).await.unwrap(), "mgnjob-1");
    assert_eq!(start.num_calls(), 1);
    let a1 = r.mgn_job("mgnjob-1", &ids[0]).await.unwrap();
    let a2 = r.mgn_job("mgnjob-1", &ids[1]).await.unwrap();
    assert_eq!(a1.status, "COMPLETED");
    assert_eq!(a1.launch_status.as_deref(), Some("LAUNCHED"));
    assert_eq!(a2.launch_status.as_deref(), Some("FAILED"));
}

#[tokio::test]
async fn mgn_missing_server_and_conflicts() {
    let empty = mock!(aws_sdk_mgn::Client::describe_source_servers).then_output(|| {
        aws_sdk_mgn::operation::describe_source_servers::DescribeSourceServersOutput::builder()
            .build()
    });
    let conflict = mock!(aws_sdk_mgn::Client::start_cutover).then_error(|| {
        aws_sdk_mgn::operation::start_cutover::StartCutoverError::ConflictException(
            aws_sdk_mgn::types::error::ConflictException::builder()
                .message("server is not ready")
                .meta(meta("ConflictException", "server is not ready"))
                .build(),
        )
    });
    let finalize = mock!(aws_sdk_mgn::Client::finalize_cutover).then_output(|| {
        aws_sdk_mgn::operation::finalize_cutover::FinalizeCutoverOutput::builder().build()
    });
    let mgn = mock_client!(
        aws_sdk_mgn,
        RuleMode::MatchAny,
        [&empty, &conflict, &finalize]
    );
    let r = AwsReplication::new(no_dms(), mgn);
    assert_eq!(
        r.mgn_server("s-0123456789abcdef0").await.unwrap_err().kind,
        PortErrorKind::NotFound
    );
    let e = r
        .start_mgn_cutover(&["s-0123456789abcdef0".to_string()])
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (PortErrorKind::Invalid, "ConflictException")
    );
    r.finalize_mgn_cutover("s-0123456789abcdef0").await.unwrap();
    assert_eq!(finalize.num_calls(), 1);
}

#[tokio::test]
async fn dms_refused_start_keeps_its_fault_code() {
    let start = mock!(aws_sdk_databasemigration::Client::start_replication_task).then_error(|| {
        aws_sdk_databasemigration::operation::start_replication_task::StartReplicationTaskError::InvalidResourceStateFault(
            aws_sdk_databasemigration::types::error::InvalidResourceStateFault::builder().message("task is running").meta(meta("InvalidResourceStateFault", "task is running")).build(),
        )
    });
    let dms = mock_client!(aws_sdk_databasemigration, [&start]);
    let e = AwsReplication::new(dms, no_mgn())
        .start_dms_task(TASK, DmsStartType::StartReplication)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (PortErrorKind::Invalid, "InvalidResourceStateFault")
    );
}

#[tokio::test]
async fn dms_table_statistics_and_validation_states() {
    use aws_sdk_databasemigration::types::{ReplicationTask, TableStatistics};
    let describe = mock!(aws_sdk_databasemigration::Client::describe_replication_tasks).then_output(|| {
        aws_sdk_databasemigration::operation::describe_replication_tasks::DescribeReplicationTasksOutput::builder()
            .replication_tasks(ReplicationTask::builder().replication_task_arn(TASK).status("running").build())
            .build()
    });
    let page1 = mock!(aws_sdk_databasemigration::Client::describe_table_statistics).match_requests(|r| r.marker().is_none()).then_output(|| {
        aws_sdk_databasemigration::operation::describe_table_statistics::DescribeTableStatisticsOutput::builder()
            .table_statistics(TableStatistics::builder().schema_name("orders").table_name("orders").table_state("Table completed").validation_state("Validated").build())
            .marker("next")
            .build()
    });
    let page2 = mock!(aws_sdk_databasemigration::Client::describe_table_statistics).match_requests(|r| r.marker() == Some("next")).then_output(|| {
        aws_sdk_databasemigration::operation::describe_table_statistics::DescribeTableStatisticsOutput::builder()
            .table_statistics(TableStatistics::builder().schema_name("orders").table_name("lines").table_state("Table completed").validation_state("Mismatched records").build())
            .build()
    });
    let dms = mock_client!(
        aws_sdk_databasemigration,
        RuleMode::MatchAny,
        [&describe, &page1, &page2]
    );
    let t = AwsReplication::new(dms, no_mgn())
        .dms_task(TASK)
        .await
        .unwrap();
    assert_eq!(t.status, "running");
    assert_eq!(t.tables.len(), 2, "both pages read");
    assert!(t.tables[0].blocking_reason().is_none());
    assert!(t.tables[1]
        .blocking_reason()
        .unwrap()
        .contains("Mismatched records"));
}

#[tokio::test]
async fn cloudwatch_dms_lag_uses_the_published_dimensions() {
    let data = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| {
            let q = r.metric_data_queries();
            let dims = |i: usize| {
                q[i].metric_stat().and_then(|s| s.metric()).map(|m| {
                    (
                        m.namespace().unwrap_or_default().to_string(),
                        m.metric_name().unwrap_or_default().to_string(),
                        m.dimensions()
                            .iter()
                            .map(|d| {
                                (
                                    d.name().unwrap_or_default().to_string(),
                                    d.value().unwrap_or_default().to_string(),
                                )
                            })
                            .collect::<Vec<_>>(),
                    )
                })
            };
            let want = |m: &str| {
                Some((
                    "AWS/DMS".to_string(),
                    m.to_string(),
                    vec![
                        (
                            "ReplicationInstanceIdentifier".to_string(),
                            "inst-1".to_string(),
                        ),
                        (
                            "ReplicationTaskIdentifier".to_string(),
                            "ORDERSRESOURCEID".to_string(),
                        ),
                    ],
                ))
            };
            let stat = |i: usize| {
                q[i].metric_stat()
                    .and_then(|s| s.stat())
                    .unwrap_or_default()
                    .to_string()
            };
            q.len() == 3
                && dims(0) == want("CDCLatencySource")
                && dims(1) == want("CDCLatencyTarget")
                && dims(2) == want("CDCIncomingChanges")
                && stat(2) == "Maximum"
        })
        .then_output(|| {
            aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput::builder()
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("source")
                        .values(12.0)
                        .values(40.0)
                        .timestamps(aws_smithy_types::DateTime::from_secs(1_800_000_060))
                        .timestamps(aws_smithy_types::DateTime::from_secs(1_800_000_000))
                        .build(),
                )
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("target")
                        .values(30.0)
                        .timestamps(aws_smithy_types::DateTime::from_secs(1_800_000_000))
                        .build(),
                )
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("incoming")
                        .values(7.0)
                        .timestamps(aws_smithy_types::DateTime::from_secs(1_800_000_000))
                        .build(),
                )
                .build()
        });
    let cw = mock_client!(aws_sdk_cloudwatch, [&data]);
    let m = CloudWatchMetrics::new(cw, AwsReplication::new(no_dms(), no_mgn()), no_dms())
        .with_dimensions(TASK, "inst-1");
    let sample = m.dms_cdc_latency(TASK).await.unwrap().expect("datapoints");
    assert_eq!(
        (sample.source_seconds, sample.target_seconds),
        (12.0, 30.0),
        "the newest datapoint of each"
    );
    assert_eq!(
        sample.incoming_changes,
        Some(7.0),
        "CDCIncomingChanges of the same period as the latencies"
    );
    assert_eq!(
        sample.at.timestamp(),
        1_800_000_000,
        "stamped with the older of the two, so staleness is never understated"
    );
    assert_eq!(
        sample.end_to_end(),
        30.0,
        "target latency includes the source's: never summed"
    );
    assert_eq!(data.num_calls(), 1);
}

#[tokio::test]
async fn cloudwatch_without_datapoints_has_no_lag() {
    let data = mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_output(|| {
        aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput::builder()
            .metric_data_results(MetricDataResult::builder().id("source").build())
            .metric_data_results(MetricDataResult::builder().id("target").build())
            .build()
    });
    let cw = mock_client!(aws_sdk_cloudwatch, [&data]);
    let m = CloudWatchMetrics::new(cw, AwsReplication::new(no_dms(), no_mgn()), no_dms())
        .with_dimensions(TASK, "inst-1");
    assert_eq!(m.dms_cdc_latency(TASK).await.unwrap(), None);
}

#[tokio::test]
async fn cloudwatch_alarm_states_and_missing_alarms() {
    // Without AlarmTypes, DescribeAlarms answers with metric alarms only.
    let alarms = mock!(aws_sdk_cloudwatch::Client::describe_alarms)
        .match_requests(|r| {
            r.alarm_types()
                == [
                    aws_sdk_cloudwatch::types::AlarmType::MetricAlarm,
                    aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm,
                ]
        })
        .then_output(|| {
            aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput::builder()
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("green-5xx")
                        .state_value(StateValue::Alarm)
                        .build(),
                )
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("green-latency")
                        .state_value(StateValue::Ok)
                        .build(),
                )
                .composite_alarms(
                    aws_sdk_cloudwatch::types::CompositeAlarm::builder()
                        .alarm_name("green-composite")
                        .state_value(StateValue::Alarm)
                        .build(),
                )
                .build()
        });
    let cw = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&alarms]);
    let m = CloudWatchMetrics::new(cw, AwsReplication::new(no_dms(), no_mgn()), no_dms());
    let states = m
        .alarm_states(&[
            "green-5xx".into(),
            "green-latency".into(),
            "green-composite".into(),
        ])
        .await
        .unwrap();
    assert_eq!(
        states,
        vec![
            ("green-5xx".into(), AlarmState::Alarm),
            ("green-latency".into(), AlarmState::Ok),
            ("green-composite".into(), AlarmState::Alarm)
        ]
    );
    let e = m
        .alarm_states(&["green-5xx".into(), "typo".into()])
        .await
        .unwrap_err();
    assert_eq!(e.kind, PortErrorKind::NotFound);
    assert!(e.message.contains("typo"));
}

fn throttling_xml() -> String {
    "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>".into()
}

fn change_output(
) -> aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput {
    aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput::builder()
        .change_info(
            aws_sdk_route53::types::ChangeInfo::builder()
                .id("/change/C123")
                .status(aws_sdk_route53::types::ChangeStatus::Pending)
                .submitted_at(aws_smithy_types::DateTime::from_secs(1_800_000_000))
                .build()
                .unwrap(),
        )
        .build()
}

fn upsert() -> Vec<Change> {
    vec![Change {
        action: ChangeAction::Upsert,
        record: RecordSet {
            name: "orders.example.com.".into(),
            record_type: RecordType::CNAME,
            set_identifier: Some("green".into()),
            weight: Some(10),
            ttl: Some(60),
            values: vec!["g.example.com".into()],
            alias_target: None,
            health_check_id: None,
            failover: None,
            region: None,
            geo_location: None,
            multi_value_answer: None,
            cidr_routing_config: None,
        },
    }]
}

fn fast() -> Backoff {
    Backoff {
        max_attempts: 4,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn route53_retries_throttling_and_prior_request_then_succeeds() {
    let change = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .sequence()
        .http_status(400, Some(throttling_xml()))
        .error(|| {
            aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsError::PriorRequestNotComplete(
                aws_sdk_route53::types::error::PriorRequestNotComplete::builder().message("busy").meta(meta("PriorRequestNotComplete", "busy")).build(),
            )
        })
        .output(change_output)
        .build();
    let client = mock_client!(aws_sdk_route53, RuleMode::Sequential, [&change], |b| b
        .retry_config(RetryConfig::disabled()));
    let r = Route53Router::new(client, 1000.0).with_backoff(fast());
    let info = r.change("Z1", &upsert(), "shift").await.unwrap();
    assert_eq!(info.id, "C123");
    assert_eq!(info.status, ChangeStatus::Pending);
    assert_eq!(
        change.num_calls(),
        3,
        "two refusals retried, then the change"
    );
}

#[tokio::test]
async fn route53_gives_up_after_its_attempts_and_never_retries_invalid_batches() {
    let throttled = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .sequence()
        .http_status(400, Some(throttling_xml()))
        .times(10)
        .build();
    let client = mock_client!(aws_sdk_route53, RuleMode::Sequential, [&throttled], |b| b
        .retry_config(RetryConfig::disabled()));
    let r = Route53Router::new(client, 1000.0).with_backoff(fast());
    let e = r.change("Z1", &upsert(), "shift").await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (PortErrorKind::Throttled, "Throttling")
    );
    assert_eq!(throttled.num_calls(), 4);

    let invalid = mock!(aws_sdk_route53::Client::change_resource_record_sets).then_error(|| {
        aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsError::InvalidChangeBatch(
            aws_sdk_route53::types::error::InvalidChangeBatch::builder().message("Tried to delete resource record set but it was not found").meta(meta("InvalidChangeBatch", "Tried to delete resource record set but it was not found")).build(),
        )
    });
    let client = mock_client!(aws_sdk_route53, RuleMode::Sequential, [&invalid], |b| b
        .retry_config(RetryConfig::disabled()));
    let r = Route53Router::new(client, 1000.0).with_backoff(fast());
    let e = r.change("Z1", &upsert(), "shift").await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (PortErrorKind::Invalid, "InvalidChangeBatch")
    );
    assert_eq!(invalid.num_calls(), 1);
}

#[tokio::test]
async fn sfn_unknown_token_is_not_found() {
    let fail = mock!(aws_sdk_sfn::Client::send_task_success).then_error(|| {
        aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError::InvalidToken(
            aws_sdk_sfn::types::error::InvalidToken::builder()
                .message("bad")
                .meta(meta("InvalidToken", "bad"))
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_sfn, [&fail]);
    let e = SfnCallbacks::new(client)
        .send_success("t", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (PortErrorKind::NotFound, "InvalidToken")
    );
}

#[tokio::test]
async fn sfn_executions_tell_a_running_lock_holder_from_an_ended_or_unknown_one() {
    use cutover_core::ports::Executions;
    const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:cutover-prod";
    let running = mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(|r| {
            r.execution_arn()
                == Some("arn:aws:states:us-east-1:123456789012:execution:cutover-prod:orders-1")
        })
        .then_output(|| {
            aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput::builder()
                .execution_arn(
                    "arn:aws:states:us-east-1:123456789012:execution:cutover-prod:orders-1",
                )
                .state_machine_arn(MACHINE)
                .status(aws_sdk_sfn::types::ExecutionStatus::Running)
                .start_date(aws_smithy_types::DateTime::from_secs(1_800_000_000))
                .build()
                .unwrap()
        });
    let ended = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
        aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput::builder()
            .execution_arn("arn:aws:states:us-east-1:123456789012:execution:cutover-prod:orders-2")
            .state_machine_arn(MACHINE)
            .status(aws_sdk_sfn::types::ExecutionStatus::Aborted)
            .start_date(aws_smithy_types::DateTime::from_secs(1_800_000_000))
            .build()
            .unwrap()
    });
    let missing = mock!(aws_sdk_sfn::Client::describe_execution).then_error(|| {
        aws_sdk_sfn::operation::describe_execution::DescribeExecutionError::ExecutionDoesNotExist(
            aws_sdk_sfn::types::error::ExecutionDoesNotExist::builder()
                .message("no")
                .meta(meta("ExecutionDoesNotExist", "no"))
                .build(),
        )
    });
    let client = mock_client!(
        aws_sdk_sfn,
        aws_smithy_mocks::RuleMode::Sequential,
        [&running, &ended, &missing]
    );
    let x = SfnExecutions::new(client, MACHINE);
    assert_eq!(x.is_running("orders-1").await.unwrap(), Some(true));
    assert_eq!(x.is_running("orders-2").await.unwrap(), Some(false));
    assert_eq!(x.is_running("orders-3").await.unwrap(), None);
}
