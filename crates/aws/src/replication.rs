//! DMS and MGN over the SDK: task status, the start types the task's state allows, table
//! statistics and validation states; MGN source servers, cutover launch and finalize.

use crate::errors::Codes;
use async_trait::async_trait;
use aws_sdk_databasemigration::types::{Filter, StartReplicationTaskTypeValue};
use aws_sdk_mgn::types::{DescribeJobsRequestFilters, DescribeSourceServersRequestFilters};
use cutover_core::model::{
    DmsStartType, DmsTask, LaunchedInstance, MgnJob, MgnServer, TableStatus,
};
use cutover_core::ports::{PortError, PortErrorKind, Replication};

const DMS: &str = "dms";
const MGN: &str = "mgn";
const DMS_INVALID: &[&str] = &[
    "InvalidResourceStateFault",
    "InvalidParameterValueException",
    "InvalidParameterCombinationException",
];
const DMS_NOT_FOUND: &[&str] = &["ResourceNotFoundFault"];
const MGN_INVALID: &[&str] = &["ConflictException", "ValidationException"];
const MGN_NOT_FOUND: &[&str] = &["ResourceNotFoundException"];
const DMS_CODES: Codes = Codes {
    service: DMS,
    invalid: DMS_INVALID,
    not_found: DMS_NOT_FOUND,
    conflict: &[],
};
const MGN_CODES: Codes = Codes {
    service: MGN,
    invalid: MGN_INVALID,
    not_found: MGN_NOT_FOUND,
    conflict: &[],
};

#[derive(Clone)]
pub struct AwsReplication {
    dms: crate::Lazy<aws_sdk_databasemigration::Client>,
    mgn: crate::Lazy<aws_sdk_mgn::Client>,
    /// DescribeTableStatistics is read unless turned off (moto does not implement it).
    table_statistics: bool,
}

impl AwsReplication {
    pub fn new(
        dms: impl Into<crate::Lazy<aws_sdk_databasemigration::Client>>,
        mgn: impl Into<crate::Lazy<aws_sdk_mgn::Client>>,
    ) -> Self {
        AwsReplication {
            dms: dms.into(),
            mgn: mgn.into(),
            table_statistics: true,
        }
    }

    /// Its DMS client (a cheap clone), for another port that reads DMS too.
    pub fn dms_client(&self) -> crate::Lazy<aws_sdk_databasemigration::Client> {
        self.dms.clone()
    }

    pub fn without_table_statistics(mut self) -> Self {
        self.table_statistics = false;
        self
    }

    /// The task as DescribeReplicationTasks reports it, with its replication instance ARN.
    pub async fn describe_task(
        &self,
        task_arn: &str,
    ) -> Result<aws_sdk_databasemigration::types::ReplicationTask, PortError> {
        let filter = Filter::builder()
            .name("replication-task-arn")
            .values(task_arn)
            .build()
            .map_err(|e| crate::errors::build_err(DMS, e))?;
        let resp = self
            .dms
            .describe_replication_tasks()
            .filters(filter)
            .without_settings(true)
            .send()
            .await
            .map_err(|e| DMS_CODES.map(e))?;
        resp.replication_tasks()
            .iter()
            .find(|t| t.replication_task_arn() == Some(task_arn))
            .cloned()
            .ok_or_else(|| {
                PortError::new(
                    DMS,
                    PortErrorKind::NotFound,
                    "ResourceNotFoundFault",
                    format!("no replication task {task_arn}"),
                )
            })
    }

    async fn tables(&self, task_arn: &str) -> Result<Vec<TableStatus>, PortError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let resp = self
                .dms
                .describe_table_statistics()
                .replication_task_arn(task_arn)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| DMS_CODES.map(e))?;
            for t in resp.table_statistics() {
                out.push(TableStatus {
                    name: format!(
                        "{}.{}",
                        t.schema_name().unwrap_or_default(),
                        t.table_name().unwrap_or_default()
                    ),
                    state: t.table_state().unwrap_or_default().to_string(),
                    validation_state: t.validation_state().unwrap_or_default().to_string(),
                });
            }
            match resp.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl Replication for AwsReplication {
    async fn dms_task(&self, task_arn: &str) -> Result<DmsTask, PortError> {
        let t = self.describe_task(task_arn).await?;
        let tables = if self.table_statistics {
            self.tables(task_arn).await?
        } else {
            vec![]
        };
        Ok(DmsTask {
            arn: task_arn.to_string(),
            status: t.status().unwrap_or("unknown").to_ascii_lowercase(),
            migration_type: t
                .migration_type()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            tables,
        })
    }

    async fn start_dms_task(
        &self,
        task_arn: &str,
        start_type: DmsStartType,
    ) -> Result<(), PortError> {
        let t = match start_type {
            DmsStartType::StartReplication => StartReplicationTaskTypeValue::StartReplication,
            DmsStartType::ResumeProcessing => StartReplicationTaskTypeValue::ResumeProcessing,
            DmsStartType::ReloadTarget => StartReplicationTaskTypeValue::ReloadTarget,
        };
        self.dms
            .start_replication_task()
            .replication_task_arn(task_arn)
            .start_replication_task_type(t)
            .send()
            .await
            .map_err(|e| DMS_CODES.map(e))?;
        Ok(())
    }

    async fn stop_dms_task(&self, task_arn: &str) -> Result<(), PortError> {
        self.dms
            .stop_replication_task()
            .replication_task_arn(task_arn)
            .send()
            .await
            .map_err(|e| DMS_CODES.map(e))?;
        Ok(())
    }

    async fn mgn_server(&self, server_id: &str) -> Result<MgnServer, PortError> {
        let filters = DescribeSourceServersRequestFilters::builder()
            .source_server_ids(server_id)
            .build();
        let resp = self
            .mgn
            .describe_source_servers()
            .filters(filters)
            .send()
            .await
            .map_err(|e| MGN_CODES.map(e))?;
        let s = resp
            .items()
            .iter()
            .find(|s| s.source_server_id() == Some(server_id))
            .ok_or_else(|| {
                PortError::new(
                    MGN,
                    PortErrorKind::NotFound,
                    "ResourceNotFoundException",
                    format!("no source server {server_id}"),
                )
            })?;
        let info = s.data_replication_info();
        Ok(MgnServer {
            id: server_id.to_string(),
            lifecycle: s
                .life_cycle()
                .and_then(|l| l.state())
                .map(|st| st.as_str().to_string())
                .unwrap_or_else(|| "UNKNOWN".into()),
            replication_state: info
                .and_then(|i| i.data_replication_state())
                .map(|st| st.as_str().to_string())
                .unwrap_or_else(|| "UNKNOWN".into()),
            lag_duration: info.and_then(|i| i.lag_duration()).map(str::to_string),
            launched_instance: s.launched_instance().map(|l| LaunchedInstance {
                ec2_instance_id: l.ec2_instance_id().map(str::to_string),
                job_id: l.job_id().map(str::to_string),
                first_boot: l
                    .first_boot()
                    .map(|f| f.as_str().to_string())
                    .unwrap_or_else(|| "UNKNOWN".into()),
            }),
        })
    }

    /// DescribeJobs filtered by the job id (MGN API reference, DescribeJobs,
    /// https://docs.aws.amazon.com/mgn/latest/APIReference/API_DescribeJobs.html).
    async fn mgn_job(&self, job_id: &str, server_id: &str) -> Result<MgnJob, PortError> {
        let resp = self
            .mgn
            .describe_jobs()
            .filters(
                DescribeJobsRequestFilters::builder()
                    .job_ids(job_id)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| MGN_CODES.map(e))?;
        let job = resp
            .items()
            .iter()
            .find(|j| j.job_id() == job_id)
            .ok_or_else(|| {
                PortError::new(
                    MGN,
                    PortErrorKind::NotFound,
                    "ResourceNotFoundException",
                    format!("no MGN job {job_id}"),
                )
            })?;
        Ok(MgnJob {
            id: job_id.to_string(),
            status: job
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "UNKNOWN".into()),
            launch_status: job
                .participating_servers()
                .iter()
                .find(|p| p.source_server_id() == server_id)
                .and_then(|p| p.launch_status())
                .map(|l| l.as_str().to_string()),
        })
    }

    async fn start_mgn_cutover(&self, server_ids: &[String]) -> Result<String, PortError> {
        let resp = self
            .mgn
            .start_cutover()
            .set_source_server_ids(Some(server_ids.to_vec()))
            .send()
            .await
            .map_err(|e| MGN_CODES.map(e))?;
        Ok(resp
            .job()
            .map(|j| j.job_id())
            .unwrap_or_default()
            .to_string())
    }

    async fn finalize_mgn_cutover(&self, server_id: &str) -> Result<(), PortError> {
        self.mgn
            .finalize_cutover()
            .source_server_id(server_id)
            .send()
            .await
            .map_err(|e| MGN_CODES.map(e))?;
        Ok(())
    }
}
