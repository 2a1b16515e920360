//! `--aws-endpoint-url`: the same local run, with the run store, Route 53 and DMS going through the
//! real SDK adapters to an AWS-compatible endpoint (moto), while lag, health, alarms, approvals and
//! MGN stay simulated.
//!
//! The engine runs on a paused tokio clock; real network I/O must not let that clock jump. Each
//! adapter call therefore runs on a separate real-time runtime inside `spawn_blocking`, during
//! which tokio does not auto-advance a paused clock.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cutover_aws::{AwsReplication, DynamoStore, Route53Router};
use cutover_core::model::*;
use cutover_core::plan::Plan;
use cutover_core::ports::*;
use cutover_sim::{World, WorldSpec};
use std::future::Future;
use std::sync::Arc;

/// Runs futures on a real-time runtime, keeping the caller's paused clock still meanwhile.
#[derive(Clone)]
pub struct RealIo {
    handle: tokio::runtime::Handle,
    _runtime: Arc<RuntimeOwner>,
}

struct RuntimeOwner(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeOwner {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl RealIo {
    pub fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(RealIo {
            handle: rt.handle().clone(),
            _runtime: Arc::new(RuntimeOwner(Some(rt))),
        })
    }

    pub async fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let h = self.handle.clone();
        tokio::task::spawn_blocking(move || h.block_on(fut))
            .await
            .expect("real-time I/O task")
    }
}

/// A port whose calls run through `RealIo`.
pub struct Real<T> {
    inner: Arc<T>,
    io: RealIo,
}

impl<T> Real<T> {
    pub fn new(inner: T, io: RealIo) -> Self {
        Real {
            inner: Arc::new(inner),
            io,
        }
    }
}

macro_rules! real_call {
    ($self:ident, |$i:ident| $body:expr) => {{
        let $i = $self.inner.clone();
        $self.io.run(async move { $body }).await
    }};
}

#[async_trait]
impl RunStore for Real<DynamoStore> {
    async fn book_slot(
        &self,
        budget: &str,
        now: DateTime<Utc>,
        interval: chrono::Duration,
        latest: DateTime<Utc>,
    ) -> Result<cutover_core::ports::Booking, PortError> {
        let budget = budget.to_string();
        real_call!(self, |i| i.book_slot(&budget, now, interval, latest).await)
    }
    async fn acquire_lock(
        &self,
        a: &str,
        r: &str,
        at: DateTime<Utc>,
    ) -> Result<LockOutcome, PortError> {
        let (a, r) = (a.to_string(), r.to_string());
        real_call!(self, |i| i.acquire_lock(&a, &r, at).await)
    }
    async fn release_lock(&self, a: &str, r: &str) -> Result<(), PortError> {
        let (a, r) = (a.to_string(), r.to_string());
        real_call!(self, |i| i.release_lock(&a, &r).await)
    }
    async fn take_over_lock(
        &self,
        a: &str,
        f: &str,
        t: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let (a, f, t) = (a.to_string(), f.to_string(), t.to_string());
        real_call!(self, |i| i.take_over_lock(&a, &f, &t, at).await)
    }
    async fn load_run(&self, r: &str) -> Result<Option<RunRecord>, PortError> {
        let r = r.to_string();
        real_call!(self, |i| i.load_run(&r).await)
    }
    async fn list_runs(&self, a: Option<&str>) -> Result<Vec<RunRecord>, PortError> {
        let a = a.map(str::to_string);
        real_call!(self, |i| i.list_runs(a.as_deref()).await)
    }
    async fn save_run(&self, rec: &RunRecord) -> Result<(), PortError> {
        let rec = rec.clone();
        real_call!(self, |i| i.save_run(&rec).await)
    }
    async fn append_event(&self, e: &AuditEvent) -> Result<bool, PortError> {
        let e = e.clone();
        real_call!(self, |i| i.append_event(&e).await)
    }
    async fn events(&self, r: &str) -> Result<Vec<AuditEvent>, PortError> {
        let r = r.to_string();
        real_call!(self, |i| i.events(&r).await)
    }
    async fn save_approval(&self, a: &ApprovalRecord, u: bool) -> Result<(), PortError> {
        let a = a.clone();
        real_call!(self, |i| i.save_approval(&a, u).await)
    }
    async fn load_approval(&self, r: &str, g: &str) -> Result<Option<ApprovalRecord>, PortError> {
        let (r, g) = (r.to_string(), g.to_string());
        real_call!(self, |i| i.load_approval(&r, &g).await)
    }
    async fn approvals(&self, r: &str) -> Result<Vec<ApprovalRecord>, PortError> {
        let r = r.to_string();
        real_call!(self, |i| i.approvals(&r).await)
    }
    async fn wave_frozen(&self, w: &str) -> Result<Option<String>, PortError> {
        let w = w.to_string();
        real_call!(self, |i| i.wave_frozen(&w).await)
    }
    async fn set_wave_frozen(&self, w: &str, r: Option<&str>) -> Result<(), PortError> {
        let (w, r) = (w.to_string(), r.map(str::to_string));
        real_call!(self, |i| i.set_wave_frozen(&w, r.as_deref()).await)
    }
    async fn save_calendar_entry(
        &self,
        e: &cutover_core::model::CalendarEntry,
    ) -> Result<(), PortError> {
        let e = e.clone();
        real_call!(self, |i| i.save_calendar_entry(&e).await)
    }
    async fn calendar(&self) -> Result<Vec<cutover_core::model::CalendarEntry>, PortError> {
        real_call!(self, |i| i.calendar().await)
    }
    async fn save_wave_plan(
        &self,
        k: &str,
        n: usize,
        p: &cutover_core::plan::Plan,
    ) -> Result<(), PortError> {
        let (k, p) = (k.to_string(), p.clone());
        real_call!(self, |i| i.save_wave_plan(&k, n, &p).await)
    }
    async fn load_wave_plan(
        &self,
        k: &str,
        n: usize,
    ) -> Result<Option<cutover_core::plan::Plan>, PortError> {
        let k = k.to_string();
        real_call!(self, |i| i.load_wave_plan(&k, n).await)
    }
}

#[async_trait]
impl TrafficRouter for Real<Route53Router> {
    async fn records(&self, z: &str, n: &str, t: RecordType) -> Result<Vec<RecordSet>, PortError> {
        let (z, n) = (z.to_string(), n.to_string());
        real_call!(self, |i| i.records(&z, &n, t).await)
    }
    async fn change(&self, z: &str, c: &[Change], m: &str) -> Result<ChangeInfo, PortError> {
        let (z, c, m) = (z.to_string(), c.to_vec(), m.to_string());
        real_call!(self, |i| i.change(&z, &c, &m).await)
    }
    async fn change_status(&self, id: &str) -> Result<ChangeInfo, PortError> {
        let id = id.to_string();
        real_call!(self, |i| i.change_status(&id).await)
    }
}

/// DMS through the SDK, MGN from the simulated world.
pub struct HybridReplication {
    pub dms: Real<AwsReplication>,
    pub world: Arc<World>,
}

#[async_trait]
impl Replication for HybridReplication {
    async fn dms_task(&self, arn: &str) -> Result<DmsTask, PortError> {
        let arn = arn.to_string();
        let s = &self.dms;
        real_call!(s, |i| i.dms_task(&arn).await)
    }
    async fn start_dms_task(&self, arn: &str, t: DmsStartType) -> Result<(), PortError> {
        let arn = arn.to_string();
        let s = &self.dms;
        real_call!(s, |i| i.start_dms_task(&arn, t).await)
    }
    async fn stop_dms_task(&self, arn: &str) -> Result<(), PortError> {
        let arn = arn.to_string();
        let s = &self.dms;
        real_call!(s, |i| i.stop_dms_task(&arn).await)
    }
    async fn mgn_server(&self, id: &str) -> Result<MgnServer, PortError> {
        self.world.mgn_server(id).await
    }
    async fn start_mgn_cutover(&self, ids: &[String]) -> Result<String, PortError> {
        self.world.start_mgn_cutover(ids).await
    }
    async fn mgn_job(&self, job: &str, id: &str) -> Result<MgnJob, PortError> {
        self.world.mgn_job(job, id).await
    }
    async fn finalize_mgn_cutover(&self, id: &str) -> Result<(), PortError> {
        self.world.finalize_mgn_cutover(id).await
    }
}

/// The adapters of one `--aws-endpoint-url` run, seeded from the world file.
pub struct AwsPorts {
    pub store: Arc<Real<DynamoStore>>,
    pub router: Arc<Real<Route53Router>>,
    pub replication: Arc<HybridReplication>,
    /// The plan with its hosted zone id mapped to the one the endpoint assigned.
    pub plan: Plan,
    pub table: String,
}

pub use crate::local::SeedError;

/// Creates the run table, the world's hosted zones and records and its DMS tasks at `endpoint`.
pub async fn seed(
    endpoint: &str,
    world_spec: &WorldSpec,
    world: Arc<World>,
    plan: &Plan,
    run_id: &str,
) -> Result<AwsPorts, SeedError> {
    // The world's load balancers are not seeded into an endpoint: an alb plan runs on the
    // simulated world only (docs/world.md).
    if plan.alb.is_some() {
        return Err(SeedError {
            endpoint: endpoint.into(),
            message: "an alb plan runs on the simulated world only: leave out --aws-endpoint-url (the ALB adapter is tested over moto by itself)".into(),
        });
    }
    // The seeding writes every resource with the stack's own credentials, into one account.
    if let Some((section, _)) = plan.roles().first() {
        return Err(SeedError {
            endpoint: endpoint.to_string(),
            message: format!("{section}.roleArn: a plan reaching other accounts runs on the simulated world only: leave out --aws-endpoint-url (the STS adapter is tested over moto by itself)"),
        });
    }
    let io = RealIo::new().map_err(|e| SeedError {
        endpoint: endpoint.into(),
        message: e.to_string(),
    })?;
    let ep = endpoint.to_string();
    let spec = world_spec.clone();
    let plan_in = plan.clone();
    let run = run_id.to_string();
    let seeded = io
        .run(async move {
            let sdk = sdk_config(&ep).await;
            seed_on(&sdk, &spec, &plan_in, &run).await
        })
        .await
        .map_err(|message| SeedError {
            endpoint: endpoint.into(),
            message,
        })?;
    let (store, router, repl, plan, table) = seeded;
    // The simulated lag curves run from the start of the run, as if DMS started then.
    for t in &world_spec.dms.tasks {
        world.assume_dms_started(&t.arn);
    }
    Ok(AwsPorts {
        store: Arc::new(Real::new(store, io.clone())),
        router: Arc::new(Real::new(router, io.clone())),
        replication: Arc::new(HybridReplication {
            dms: Real::new(repl, io),
            world,
        }),
        plan,
        table,
    })
}

/// The SDK config for an AWS-compatible endpoint (test credentials unless the environment has
/// some), or for the environment's AWS account, with a named profile and a region as the AWS
/// CLI's `--profile` and `--region` take them (the environment's `AWS_PROFILE` and `AWS_REGION`
/// otherwise).
pub(crate) async fn sdk_with(
    endpoint: Option<&str>,
    profile: Option<&str>,
    region: Option<&str>,
) -> aws_config::SdkConfig {
    if let Some(ep) = endpoint {
        return sdk_config(ep).await;
    }
    let mut loader = cutover_aws::sdk_loader();
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    loader.load().await
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into());
    cutover_aws::sdk_loader()
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            key,
            secret,
            None,
            None,
            "cutover-local",
        ))
        .load()
        .await
}

type Seeded = (DynamoStore, Route53Router, AwsReplication, Plan, String);

/// The run table as template.yaml declares it (pk and sk, both strings; on demand); a table that
/// already exists is kept.
pub(crate) async fn create_run_table(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), String> {
    use aws_sdk_dynamodb::types::*;
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())
    };
    let key = |n: &str, k: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(k)
            .build()
            .map_err(|e| e.to_string())
    };
    let created = ddb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await;
    if let Err(e) = created {
        let e = aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string();
        if !e.contains("ResourceInUse") {
            return Err(format!("create table {table}: {e}"));
        }
    }
    Ok(())
}

async fn seed_on(
    sdk: &aws_config::SdkConfig,
    spec: &WorldSpec,
    plan: &Plan,
    run_id: &str,
) -> Result<Seeded, String> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let table = format!("cutover-local-{}", run_id.to_ascii_lowercase());
    create_run_table(&ddb, &table).await?;
    let store = DynamoStore::new(ddb, &table);

    // Route 53: the endpoint assigns its own zone ids; the plan's id is mapped to the new one.
    let r53 = aws_sdk_route53::Client::new(sdk);
    let router = Route53Router::new(
        r53.clone(),
        f64::from(spec.route53.requests_per_second.min(4)),
    );
    let mut plan = plan.clone();
    for z in &spec.route53.zones {
        let created = r53
            .create_hosted_zone()
            .name(&z.name)
            .caller_reference(format!("{run_id}-{}", z.id))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "create hosted zone {}: {}",
                    z.name,
                    aws_sdk_route53::error::DisplayErrorContext(e)
                )
            })?;
        let new_id = created
            .hosted_zone()
            .map(|h| h.id().trim_start_matches("/hostedzone/").to_string())
            .ok_or("no hosted zone id")?;
        if !z.records.is_empty() {
            let changes: Vec<Change> = z
                .records
                .iter()
                .map(|r| Change {
                    action: ChangeAction::Create,
                    record: r.clone(),
                })
                .collect();
            router
                .change(&new_id, &changes, "seed")
                .await
                .map_err(|e| format!("seed records of {}: {e}", z.name))?;
        }
        if let Some(d) = plan.dns.as_mut().filter(|d| d.hosted_zone_id == z.id) {
            d.hosted_zone_id = new_id;
        }
    }

    // DMS: each task under the id its ARN ends with. moto's DMS answers carry ISO timestamps the
    // SDK refuses, so this client converts them; moto does not check a task's instance.
    let dms = cutover_aws::moto_compat::dms_client(sdk);
    let repl =
        AwsReplication::new(dms.clone(), aws_sdk_mgn::Client::new(sdk)).without_table_statistics();
    {
        let inst_arn = "arn:aws:dms:us-east-1:123456789012:rep:CUTOVER-LOCAL";
        for t in &spec.dms.tasks {
            let id = cutover_aws::metrics::task_resource_id(&t.arn);
            let mt = aws_sdk_databasemigration::types::MigrationTypeValue::from(
                t.migration_type.as_str(),
            );
            // A task left by an earlier run against the same endpoint is replaced.
            if let Ok(old) = repl.describe_task(&t.arn).await {
                if old.status() == Some("running") {
                    repl.stop_dms_task(&t.arn)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                dms.delete_replication_task()
                    .replication_task_arn(&t.arn)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "replace replication task {id}: {}",
                            aws_sdk_databasemigration::error::DisplayErrorContext(e)
                        )
                    })?;
            }
            let created = dms
                .create_replication_task()
                .replication_task_identifier(id)
                .source_endpoint_arn("arn:aws:dms:us-east-1:123456789012:endpoint:SOURCE")
                .target_endpoint_arn("arn:aws:dms:us-east-1:123456789012:endpoint:TARGET")
                .replication_instance_arn(inst_arn)
                .migration_type(mt)
                .table_mappings(r#"{"rules": []}"#)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "create replication task {id}: {}",
                        aws_sdk_databasemigration::error::DisplayErrorContext(e)
                    )
                })?;
            let arn = created
                .replication_task()
                .and_then(|r| r.replication_task_arn())
                .unwrap_or_default()
                .to_string();
            if arn != t.arn {
                return Err(format!("the endpoint named task {id} {arn}, not {}: use account 123456789012 and us-east-1 in the world", t.arn));
            }
            // moto keeps a new task in `creating`; a start (and a stop for ready/stopped tasks)
            // puts it where the world says. A ready task therefore resumes instead of starting.
            if t.status != "failed" {
                repl.start_dms_task(&arn, DmsStartType::StartReplication)
                    .await
                    .map_err(|e| e.to_string())?;
                if t.status != "running" {
                    repl.stop_dms_task(&arn).await.map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok((store, router, repl, plan, table))
}
