//! Wire tests: every SDK call the adapters make, against moto's server (started by
//! `scripts/test`, endpoint in CUTOVER_MOTO_ENDPOINT). Set CUTOVER_SKIP_WIRE=1 to skip them
//! explicitly when no moto is running; otherwise a missing endpoint fails the tests.

use aws_config::{Region, SdkConfig};
use chrono::Utc;
use cutover_aws::{AwsReplication, DynamoStore, Route53Router, SfnCallbacks, SnsNotifier};
use cutover_core::model::*;
use cutover_core::ports::*;
use serde_json::json;

async fn sdk() -> Option<SdkConfig> {
    let endpoint = match std::env::var("CUTOVER_MOTO_ENDPOINT") {
        Ok(e) => e,
        Err(_) if std::env::var("CUTOVER_SKIP_WIRE").as_deref() == Ok("1") => {
            eprintln!("skipped: CUTOVER_SKIP_WIRE=1");
            return None;
        }
        Err(_) => panic!("CUTOVER_MOTO_ENDPOINT is not set: run ./scripts/test (it starts moto), or set CUTOVER_SKIP_WIRE=1"),
    };
    let creds = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "moto");
    Some(
        cutover_aws::sdk_loader()
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .load()
            .await,
    )
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_like())
}

fn uuid_like() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", n, std::process::id())
}

async fn table(sdk: &SdkConfig) -> DynamoStore {
    use aws_sdk_dynamodb::types::*;
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let name = unique("runs");
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
    DynamoStore::new(client, name)
}

/// The shared Route 53 budget on the table: concurrent callers each get their own slot, spaced
/// at the interval (a lost conditional put re-reads), and a budget booked past `latest` is
/// refused without being changed.
#[tokio::test]
async fn dynamodb_budget_slots_are_distinct_and_spaced() {
    use cutover_core::ports::Booking;
    let Some(sdk) = sdk().await else { return };
    let s = table(&sdk).await;
    // The table keeps microseconds.
    let now = chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    let interval = chrono::Duration::milliseconds(200);
    let latest = now + chrono::Duration::seconds(20);
    let calls = (0..12).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.book_slot("route53", now, interval, latest).await })
    });
    let mut slots = Vec::new();
    for c in calls {
        match c.await.unwrap().expect("booked") {
            Booking::Booked(at) => slots.push(at),
            other => panic!("{other:?}"),
        }
    }
    slots.sort();
    let expected: Vec<_> = (0..12).map(|i| now + interval * i).collect();
    assert_eq!(slots, expected);
    let tight = now + chrono::Duration::seconds(1);
    assert_eq!(
        s.book_slot("route53", now, interval, tight).await.unwrap(),
        Booking::Full(now + interval * 12)
    );
    assert_eq!(
        s.book_slot("route53", now, interval, latest).await.unwrap(),
        Booking::Booked(now + interval * 12),
        "the refused request booked nothing"
    );
    // Another budget is its own.
    assert_eq!(
        s.book_slot("other", now, interval, latest).await.unwrap(),
        Booking::Booked(now)
    );
}

#[tokio::test]
async fn dynamodb_lock_is_a_conditional_put() {
    let Some(sdk) = sdk().await else { return };
    let s = table(&sdk).await;
    let now = Utc::now();
    assert_eq!(
        s.acquire_lock("orders", "r1", now).await.unwrap(),
        LockOutcome::Acquired
    );
    assert_eq!(
        s.acquire_lock("orders", "r1", now).await.unwrap(),
        LockOutcome::AlreadyHeld
    );
    assert_eq!(
        s.acquire_lock("orders", "r2", now).await.unwrap(),
        LockOutcome::HeldBy("r1".into())
    );
    s.release_lock("orders", "r2").await.unwrap();
    assert_eq!(
        s.acquire_lock("orders", "r2", now).await.unwrap(),
        LockOutcome::HeldBy("r1".into()),
        "r2 cannot free r1's lock"
    );
    s.release_lock("orders", "r1").await.unwrap();
    assert_eq!(
        s.acquire_lock("orders", "r2", now).await.unwrap(),
        LockOutcome::Acquired
    );
    // The lease: taken over only from the run that still holds it.
    assert!(!s.take_over_lock("orders", "r1", "r3", now).await.unwrap());
    assert!(s.take_over_lock("orders", "r2", "r3", now).await.unwrap());
    assert_eq!(
        s.acquire_lock("orders", "r2", now).await.unwrap(),
        LockOutcome::HeldBy("r3".into())
    );
    assert!(!s.take_over_lock("orders", "r2", "r4", now).await.unwrap());
}

#[tokio::test]
async fn dynamodb_run_record_has_optimistic_versions() {
    let Some(sdk) = sdk().await else { return };
    let s = table(&sdk).await;
    let mut rec = RunRecord::new("r1", "orders", Utc::now());
    rec.snapshot = vec![RecordSet {
        name: "orders.example.com.".into(),
        record_type: RecordType::CNAME,
        set_identifier: None,
        weight: None,
        ttl: Some(300),
        values: vec!["blue".into()],
        alias_target: None,
        health_check_id: None,
        failover: None,
        region: None,
        geo_location: None,
        multi_value_answer: None,
        cidr_routing_config: None,
    }];
    s.save_run(&rec).await.unwrap();
    let e = s.save_run(&rec).await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (PortErrorKind::Conflict, "ConditionalCheckFailedException")
    );
    let mut loaded = s.load_run("r1").await.unwrap().expect("stored");
    assert_eq!(loaded.version, 1);
    assert_eq!(loaded.snapshot, rec.snapshot);
    loaded
        .steps
        .insert("shift#0".into(), json!({"changeId": "C1"}));
    s.save_run(&loaded).await.unwrap();
    assert_eq!(
        s.save_run(&loaded).await.unwrap_err().kind,
        PortErrorKind::Conflict,
        "a stale version is refused"
    );
    let again = s.load_run("r1").await.unwrap().unwrap();
    assert!(again.traffic_moved());
    assert_eq!(s.load_run("nope").await.unwrap(), None);
}

#[tokio::test]
async fn dynamodb_audit_events_are_appended_once() {
    let Some(sdk) = sdk().await else { return };
    let s = table(&sdk).await;
    let t0 = Utc::now();
    let ev = |key: &str, secs: i64| AuditEvent {
        run_id: "r1".into(),
        key: key.into(),
        at: t0 + chrono::Duration::seconds(secs),
        step: "S".into(),
        event: "e".into(),
        weights: Some(Weights {
            blue: 90,
            green: 10,
        }),
        lag_seconds: None,
        healthy: Some(true),
        actor: None,
        message: String::new(),
    };
    assert!(s.append_event(&ev("z-later", 10)).await.unwrap());
    assert!(s.append_event(&ev("a-earlier", 5)).await.unwrap());
    assert!(
        !s.append_event(&ev("a-earlier", 99)).await.unwrap(),
        "same key: not appended again"
    );
    let events = s.events("r1").await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["a-earlier", "z-later"],
        "time order"
    );
    assert_eq!(
        events[0].weights,
        Some(Weights {
            blue: 90,
            green: 10
        })
    );
}

#[tokio::test]
async fn dynamodb_approval_token_stays_server_side() {
    let Some(sdk) = sdk().await else { return };
    let s = table(&sdk).await;
    let mut a = ApprovalRecord {
        run_id: "r1".into(),
        gate: "g".into(),
        sealed_token: "kms:SEALED-123".into(),
        token_digest: "d1".into(),
        requested_at: Utc::now(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
        decision: None,
        decided_by: None,
        decided_at: None,
        reason: None,
        evidence: json!({"lagSeconds": 3.0}),
        required_approvals: 1,
        approvals: vec![],
        callback_sent: false,
        notified: false,
        version: 0,
    };
    s.save_approval(&a, true).await.unwrap();
    let loaded = s.load_approval("r1", "g").await.unwrap().unwrap();
    assert_eq!(loaded.sealed_token, "kms:SEALED-123");
    assert_eq!(loaded.token_digest, "d1");
    assert_eq!(
        s.approvals("r1").await.unwrap()[0].sealed_token,
        "",
        "listing never returns the token"
    );
    assert_eq!(loaded.version, 1, "the store bumps the version");
    // A write from a stale read (version 0) is refused: a concurrent approval is never lost.
    a.approvals.push(cutover_core::model::Approver {
        by: "bob".into(),
        at: Utc::now(),
    });
    assert_eq!(
        s.save_approval(&a, true).await.unwrap_err().kind,
        PortErrorKind::Conflict
    );
    a.version = 1;
    a.decision = Some(Decision::Approve);
    a.decided_by = Some("alice".into());
    s.save_approval(&a, true).await.unwrap();
    a.version = 2;
    a.decision = Some(Decision::Reject);
    assert_eq!(
        s.save_approval(&a, true).await.unwrap_err().kind,
        PortErrorKind::Conflict,
        "a decided gate is not decided again"
    );
}

async fn zone(sdk: &SdkConfig) -> (aws_sdk_route53::Client, String) {
    let c = aws_sdk_route53::Client::new(sdk);
    let z = c
        .create_hosted_zone()
        .name("example.com.")
        .caller_reference(unique("ref"))
        .send()
        .await
        .expect("zone");
    let id = z
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    (c, id)
}

fn rec(name: &str, id: Option<&str>, w: Option<u32>, ttl: u64, v: &str) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: RecordType::CNAME,
        set_identifier: id.map(str::to_string),
        weight: w,
        ttl: Some(ttl),
        values: vec![v.into()],
        alias_target: None,
        health_check_id: None,
        failover: None,
        region: None,
        geo_location: None,
        multi_value_answer: None,
        cidr_routing_config: None,
    }
}

#[tokio::test]
async fn route53_reads_exact_records_and_converts_simple_to_weighted_atomically() {
    let Some(sdk) = sdk().await else { return };
    let (client, zone_id) = zone(&sdk).await;
    let r = Route53Router::new(client, 50.0);
    let seed = [
        rec("api.example.com.", None, None, 60, "api-lb.example.com"),
        rec(
            "orders.example.com.",
            None,
            None,
            300,
            "blue-lb.example.com",
        ),
        rec("orders2.example.com.", None, None, 60, "o2.example.com"),
    ];
    let create: Vec<Change> = seed
        .iter()
        .map(|r| Change {
            action: ChangeAction::Create,
            record: r.clone(),
        })
        .collect();
    r.change(&zone_id, &create, "seed").await.unwrap();
    let current = r
        .records(&zone_id, "Orders.Example.com", RecordType::CNAME)
        .await
        .unwrap();
    assert_eq!(
        current,
        vec![seed[1].clone()],
        "only the exact name and type"
    );

    let batch = vec![
        Change {
            action: ChangeAction::Delete,
            record: seed[1].clone(),
        },
        Change {
            action: ChangeAction::Upsert,
            record: rec(
                "orders.example.com.",
                Some("blue"),
                Some(90),
                60,
                "blue-lb.example.com",
            ),
        },
        Change {
            action: ChangeAction::Upsert,
            record: rec(
                "orders.example.com.",
                Some("green"),
                Some(10),
                60,
                "green-lb.example.com",
            ),
        },
    ];
    let info = r.change(&zone_id, &batch, "shift").await.unwrap();
    assert!(!info.id.starts_with('/'), "bare change id");
    let status = r.change_status(&info.id).await.unwrap();
    assert_eq!(status.id, info.id);
    let now = r
        .records(&zone_id, "orders.example.com", RecordType::CNAME)
        .await
        .unwrap();
    assert_eq!(
        now.iter()
            .map(|x| (x.set_identifier.clone().unwrap(), x.weight.unwrap()))
            .collect::<Vec<_>>(),
        [("blue".into(), 90), ("green".into(), 10)]
    );
}

fn alias(name: &str, id: Option<&str>, w: Option<u32>, lb: &str, check: Option<&str>) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: RecordType::A,
        set_identifier: id.map(str::to_string),
        weight: w,
        ttl: None,
        values: vec![],
        alias_target: Some(AliasTarget {
            hosted_zone_id: "Z35SXDOTRQ7X7K".into(),
            dns_name: lb.into(),
            evaluate_target_health: true,
        }),
        health_check_id: check.map(str::to_string),
        failover: None,
        region: None,
        geo_location: None,
        multi_value_answer: None,
        cidr_routing_config: None,
    }
}

/// An alias record with a health check travels exactly: read, converted to a weighted alias
/// pair in one batch (the DELETE must match, health check included), and restored.
#[tokio::test]
async fn route53_alias_targets_and_health_checks_round_trip() {
    let Some(sdk) = sdk().await else { return };
    let (client, zone_id) = zone(&sdk).await;
    let check = client
        .create_health_check()
        .caller_reference(unique("hc"))
        .health_check_config(
            aws_sdk_route53::types::HealthCheckConfig::builder()
                .r#type(aws_sdk_route53::types::HealthCheckType::Https)
                .fully_qualified_domain_name("blue.example.com")
                .resource_path("/health")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("health check")
        .health_check()
        .unwrap()
        .id()
        .to_string();
    let r = Route53Router::new(client, 50.0);
    let original = alias(
        "shop.example.com.",
        None,
        None,
        "blue-123.us-east-1.elb.amazonaws.com.",
        Some(&check),
    );
    r.change(
        &zone_id,
        &[Change {
            action: ChangeAction::Create,
            record: original.clone(),
        }],
        "seed",
    )
    .await
    .unwrap();
    let read = r
        .records(&zone_id, "shop.example.com", RecordType::A)
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(
        read[0].alias_target, original.alias_target,
        "alias target read back"
    );
    assert_eq!(read[0].health_check_id.as_deref(), Some(check.as_str()));
    assert_eq!(read[0].ttl, None, "an alias record has no TTL");

    let pair = [
        alias(
            "shop.example.com.",
            Some("blue"),
            Some(90),
            "blue-123.us-east-1.elb.amazonaws.com.",
            Some(&check),
        ),
        alias(
            "shop.example.com.",
            Some("green"),
            Some(10),
            "green-456.us-east-1.elb.amazonaws.com.",
            None,
        ),
    ];
    let mut batch = vec![Change {
        action: ChangeAction::Delete,
        record: read[0].clone(),
    }];
    batch.extend(pair.iter().map(|p| Change {
        action: ChangeAction::Upsert,
        record: p.clone(),
    }));
    r.change(&zone_id, &batch, "shift").await.unwrap();
    let now = r
        .records(&zone_id, "shop.example.com", RecordType::A)
        .await
        .unwrap();
    let mut now_sorted = now.clone();
    now_sorted.sort_by(|a, b| a.set_identifier.cmp(&b.set_identifier));
    assert_eq!(
        now_sorted,
        pair.to_vec(),
        "weighted alias pair, blue keeps its check"
    );

    let mut restore: Vec<Change> = now
        .iter()
        .map(|x| Change {
            action: ChangeAction::Delete,
            record: x.clone(),
        })
        .collect();
    restore.push(Change {
        action: ChangeAction::Upsert,
        record: read[0].clone(),
    });
    r.change(&zone_id, &restore, "rollback").await.unwrap();
    assert_eq!(
        r.records(&zone_id, "shop.example.com", RecordType::A)
            .await
            .unwrap(),
        read,
        "restored exactly"
    );
}

/// Records of other routing policies are read with their policy (so pre-flight can refuse them)
/// and written back exactly: failover, latency and multivalue answer records round-trip.
#[tokio::test]
async fn route53_other_routing_policies_round_trip() {
    let Some(sdk) = sdk().await else { return };
    let (client, zone_id) = zone(&sdk).await;
    let r = Route53Router::new(client, 50.0);
    let mut primary = rec(
        "db.example.com.",
        Some("primary"),
        None,
        60,
        "db-1.example.com",
    );
    primary.failover = Some("PRIMARY".into());
    let mut secondary = rec(
        "db.example.com.",
        Some("secondary"),
        None,
        60,
        "db-2.example.com",
    );
    secondary.failover = Some("SECONDARY".into());
    let mut near = rec(
        "api.example.com.",
        Some("use1"),
        None,
        60,
        "api-use1.example.com",
    );
    near.region = Some("us-east-1".into());
    let mut multi = RecordSet::new("www.example.com.", RecordType::A);
    multi.set_identifier = Some("one".into());
    multi.multi_value_answer = Some(true);
    multi.ttl = Some(60);
    multi.values = vec!["192.0.2.1".into(), "192.0.2.2".into()];
    let seed = [primary, secondary, near, multi];
    let create: Vec<Change> = seed
        .iter()
        .map(|x| Change {
            action: ChangeAction::Create,
            record: x.clone(),
        })
        .collect();
    r.change(&zone_id, &create, "seed").await.unwrap();
    let db = r
        .records(&zone_id, "db.example.com", RecordType::CNAME)
        .await
        .unwrap();
    assert_eq!(db, seed[..2].to_vec());
    assert_eq!(db[0].other_routing_policy(), Some("failover"));
    let api = r
        .records(&zone_id, "api.example.com", RecordType::CNAME)
        .await
        .unwrap();
    assert_eq!(api, vec![seed[2].clone()]);
    assert_eq!(api[0].other_routing_policy(), Some("latency"));
    let www = r
        .records(&zone_id, "www.example.com", RecordType::A)
        .await
        .unwrap();
    assert_eq!(www, vec![seed[3].clone()]);
    assert_eq!(www[0].other_routing_policy(), Some("multivalue answer"));
}

#[tokio::test]
async fn route53_unknown_zone_is_not_found() {
    let Some(sdk) = sdk().await else { return };
    let r = Route53Router::new(aws_sdk_route53::Client::new(&sdk), 50.0);
    let e = r
        .records("ZNOSUCHZONE", "x.example.com", RecordType::A)
        .await
        .unwrap_err();
    assert_eq!(e.kind, PortErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn dms_task_is_described_started_and_stopped() {
    let Some(sdk) = sdk().await else { return };
    // moto's DMS answers carry ISO timestamps, which the SDK refuses; the compat interceptor converts them.
    let dms = cutover_aws::moto_compat::dms_client(&sdk);
    // moto answers CreateReplicationInstance with ISO dates where the SDK expects epoch seconds,
    // and does not check the instance of a task: the task names an instance ARN directly.
    let inst_arn = "arn:aws:dms:us-east-1:123456789012:rep:INSTANCE".to_string();
    let task = dms
        .create_replication_task()
        .replication_task_identifier(unique("orders"))
        .source_endpoint_arn("arn:aws:dms:us-east-1:123456789012:endpoint:SRC")
        .target_endpoint_arn("arn:aws:dms:us-east-1:123456789012:endpoint:TGT")
        .replication_instance_arn(&inst_arn)
        .migration_type(aws_sdk_databasemigration::types::MigrationTypeValue::FullLoadAndCdc)
        .table_mappings("{}")
        .send()
        .await
        .expect("task");
    let arn = task
        .replication_task()
        .unwrap()
        .replication_task_arn()
        .unwrap()
        .to_string();
    // moto does not implement DescribeTableStatistics: that call is tested with mocks.
    let repl =
        AwsReplication::new(dms.clone(), aws_sdk_mgn::Client::new(&sdk)).without_table_statistics();
    let t = repl.dms_task(&arn).await.unwrap();
    assert_eq!(t.migration_type, "full-load-and-cdc");
    repl.start_dms_task(&arn, DmsStartType::StartReplication)
        .await
        .unwrap();
    assert_eq!(repl.dms_task(&arn).await.unwrap().status, "running");
    repl.stop_dms_task(&arn).await.unwrap();
    assert_eq!(repl.dms_task(&arn).await.unwrap().status, "stopped");
    repl.start_dms_task(&arn, DmsStartType::ResumeProcessing)
        .await
        .unwrap();
    let e = repl
        .dms_task("arn:aws:dms:us-east-1:123456789012:task:NOPE")
        .await
        .unwrap_err();
    assert_eq!(e.kind, PortErrorKind::NotFound);
}

#[tokio::test]
async fn sns_publishes_a_notice_without_a_token_field() {
    let Some(sdk) = sdk().await else { return };
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name(unique("approvals"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let n = SnsNotifier::new(sns.clone(), &topic);
    let notice = ApprovalNotice {
        run_id: "r1".into(),
        application: "orders".into(),
        gate: "before-50".into(),
        expires_at: Utc::now(),
        evidence: json!({"weights": {"blue": 90, "green": 10}}),
        how_to_answer: "POST /runs/r1/approvals/before-50".into(),
        summary: "orders: gate before-50".into(),
    };
    n.approval_requested(&notice).await.unwrap();
    let missing = SnsNotifier::new(sns, "arn:aws:sns:us-east-1:123456789012:no-such-topic");
    let e = missing.approval_requested(&notice).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::NotFound, "{e}");
}

/// Pages, approval notices and run notices carry message attributes, so a subscription's filter
/// policy routes them: a queue subscribed with `{"kind": ["page"]}` receives the page and not
/// the notice; one with `{"outcome": ["rolled_back"]}` only the rolled-back notice.
#[tokio::test]
async fn sns_subscription_filter_policies_route_by_kind_and_outcome() {
    let Some(sdk) = sdk().await else { return };
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name(unique("notices"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let queue = |policy: &'static str| {
        let sns = sns.clone();
        let topic = topic.clone();
        async move {
            let name = unique("q");
            let url = seed_json("sqs", "AmazonSQS.CreateQueue", json!({"QueueName": name})).await
                ["QueueUrl"]
                .as_str()
                .unwrap()
                .to_string();
            sns.subscribe()
                .topic_arn(&topic)
                .protocol("sqs")
                .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:{name}"))
                .attributes("FilterPolicy", policy)
                .send()
                .await
                .unwrap();
            url
        }
    };
    let pages = queue(r#"{"kind": ["page"]}"#).await;
    let rolled_back = queue(r#"{"outcome": ["rolled_back"]}"#).await;
    let n = SnsNotifier::new(sns.clone(), &topic);
    let notice = |kind: &str| RunNotice {
        run_id: "orders-1".into(),
        application: "orders".into(),
        kind: kind.into(),
        message: format!("{kind} of orders"),
        at: Utc::now(),
        dedupe_key: format!("orders-1/page.{kind}"),
    };
    n.page(&notice("rollback_failed")).await.unwrap();
    n.page(&notice("run_rolled_back")).await.unwrap();
    n.page(&notice("run_completed")).await.unwrap();
    let received = |url: String| async move {
        let r = seed_json(
            "sqs",
            "AmazonSQS.ReceiveMessage",
            json!({"QueueUrl": url, "MaxNumberOfMessages": 10}),
        )
        .await;
        r["Messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                let body: serde_json::Value =
                    serde_json::from_str(m["Body"].as_str().unwrap()).unwrap();
                let attr = |name: &str| {
                    body["MessageAttributes"][name]["Value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                };
                (attr("event"), attr("dedupeKey"))
            })
            .collect::<Vec<_>>()
    };
    // Every publish carries its dedupe key: a pager collapses a repeated page into one incident.
    assert_eq!(
        received(pages).await,
        vec![(
            "rollback_failed".to_string(),
            "orders-1/page.rollback_failed".to_string()
        )]
    );
    assert_eq!(
        received(rolled_back).await,
        vec![(
            "run_rolled_back".to_string(),
            "orders-1/page.run_rolled_back".to_string()
        )]
    );
}

#[tokio::test]
async fn sfn_callbacks_reach_the_service() {
    let Some(sdk) = sdk().await else { return };
    let cb = SfnCallbacks::new(aws_sdk_sfn::Client::new(&sdk));
    // moto accepts any token here; token errors are tested with mocks.
    cb.send_success("moto-token", json!({"decision": "approve"}))
        .await
        .unwrap();
    cb.send_failure("moto-token", "ApprovalRejected", "bob rejected")
        .await
        .unwrap();
}

#[tokio::test]
async fn scheduler_creates_a_one_time_wave_schedule() {
    let Some(sdk) = sdk().await else { return };
    let s = cutover_aws::WaveScheduler::new(aws_sdk_scheduler::Client::new(&sdk));
    let sched = cutover_aws::OneTimeSchedule {
        name: unique("wave-7"),
        at: Utc::now() + chrono::Duration::days(2),
        state_machine_arn: "arn:aws:states:us-east-1:123456789012:stateMachine:cutover-dev-wave"
            .into(),
        role_arn: "arn:aws:iam::123456789012:role/cutover-wave-scheduler".into(),
        input: json!({"wave": {"wave": "wave-7"}}).to_string(),
    };
    let arn = s.create(&sched).await.unwrap();
    assert!(arn.contains(&sched.name), "{arn}");
    let (expr, target) = s.describe(&sched.name).await.unwrap();
    assert_eq!(expr, sched.expression());
    assert!(expr.starts_with("at(") && !expr.contains('+'), "{expr}");
    assert_eq!(target, sched.state_machine_arn);

    let mut past = sched.clone();
    past.name = unique("late");
    past.at = Utc::now() - chrono::Duration::hours(1);
    past.input = "x".repeat(9000);
    let e = s.create(&past).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Invalid);
    assert!(
        e.message.contains("at:") && e.message.contains("input:"),
        "{e}"
    );
    assert!(s.describe(&past.name).await.is_err(), "nothing was created");

    // A queued wave of any size is scheduled by reference: the input names it, nothing more.
    let mut by_reference = sched.clone();
    by_reference.name = unique("wave-200");
    by_reference.input = json!({"calendar": {"wave": "wave-200"}}).to_string();
    let arn = s.create(&by_reference).await.unwrap();
    assert!(arn.contains(&by_reference.name), "{arn}");
}

/// One unsigned JSON-protocol request to moto (which checks no signature): seeding only.
async fn seed_json(service: &str, target: &str, body: serde_json::Value) -> serde_json::Value {
    let endpoint = std::env::var("CUTOVER_MOTO_ENDPOINT").unwrap();
    let resp = cutover_aws::tls::reqwest_builder("seed")
        .build()
        .unwrap()
        .post(format!("{endpoint}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        // moto routes by the credential scope's service.
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{target}: {}", resp.status());
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn secrets_are_read_from_secrets_manager_and_parameter_store_by_arn() {
    let Some(sdk) = sdk().await else { return };
    let name = unique("orders-probe");
    let created = seed_json(
        "secretsmanager",
        "secretsmanager.CreateSecret",
        json!({"Name": name, "SecretString": r#"{"token":"pr0be-t0ken"}"#}),
    )
    .await;
    let secret_arn = created["ARN"].as_str().unwrap().to_string();
    let param = format!("/{}/key", unique("orders"));
    seed_json(
        "ssm",
        "AmazonSSM.PutParameter",
        json!({"Name": param, "Value": "ssm-k3y", "Type": "SecureString"}),
    )
    .await;
    let param_arn = format!("arn:aws:ssm:us-east-1:123456789012:parameter{param}");

    let secrets = cutover_aws::AwsSecrets::new(&sdk).unwrap();
    assert_eq!(
        secrets.read(&secret_arn).await.unwrap().expose(),
        r#"{"token":"pr0be-t0ken"}"#
    );
    assert_eq!(secrets.read(&param_arn).await.unwrap().expose(), "ssm-k3y");

    // What does not exist is NotFound, with the service's own code.
    let missing = secret_arn.replace(&name, &unique("absent"));
    let e = secrets.read(&missing).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::NotFound, "{e}");
    assert_eq!(e.code, "ResourceNotFoundException");
    let e = secrets
        .read("arn:aws:ssm:us-east-1:123456789012:parameter/absent/nowhere")
        .await
        .unwrap_err();
    assert_eq!(e.kind, PortErrorKind::NotFound, "{e}");
    assert_eq!(e.code, "ParameterNotFound");
}

#[tokio::test]
async fn kms_seals_a_task_token_that_opens_only_for_its_run_and_gate() {
    let Some(sdk) = sdk().await else { return };
    let created = seed_json(
        "kms",
        "TrentService.CreateKey",
        json!({"Description": "task tokens"}),
    )
    .await;
    let key = created["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    let vault = cutover_aws::KmsVault::new(&sdk, &key).unwrap();
    let token = "AQCEAAAAKgAAAAMAAAAAAAAAAQ-example-task-token";
    let sealed = vault.seal(token, "run-1", "before-50").await.unwrap();
    assert!(
        sealed.starts_with("kms:") && !sealed.contains(token),
        "{sealed}"
    );
    assert_eq!(
        vault.open(&sealed, "run-1", "before-50").await.unwrap(),
        token
    );
    // Copied to another gate's item, the sealed token does not open.
    let e = vault.open(&sealed, "run-1", "finalize").await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::Invalid, "{e}");
    let e = vault
        .open("TOKEN-in-clear", "run-1", "before-50")
        .await
        .unwrap_err();
    assert_eq!(e.code, "InvalidCiphertextException", "{e}");
}

#[tokio::test]
async fn dynamodb_calendar_entries_are_conditional_and_plans_round_trip() {
    use cutover_core::model::{CalendarApp, CalendarEntry, CalendarState};
    let Some(sdk) = sdk().await else { return };
    let s = table(&sdk).await;
    let mut e = CalendarEntry {
        wave: "wave-1".into(),
        order: 1,
        window: None,
        max_concurrency: 2,
        scheduling_interval_seconds: 60,
        handover_after_events: cutover_core::steps::DEFAULT_HANDOVER_AFTER_EVENTS,
        applications: vec![CalendarApp {
            application: "orders".into(),
            depends_on: vec![],
        }],
        state: CalendarState::Queued,
        queued_at: Utc::now(),
        queued_by: "ci".into(),
        wave_run_id: None,
        taken_at: None,
        note: None,
        version: 0,
    };
    s.save_calendar_entry(&e).await.unwrap();
    // A second "new" entry of the same wave loses: two operators never queue it twice.
    let again = s.save_calendar_entry(&e).await.unwrap_err();
    assert_eq!(again.kind, PortErrorKind::Conflict, "{again}");
    let stored = s.calendar().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].version, 1);
    // Two firings taking the same version: one wins, the other is refused.
    e.version = 1;
    e.state = CalendarState::Running;
    e.wave_run_id = Some("firing-a".into());
    s.save_calendar_entry(&e).await.unwrap();
    e.wave_run_id = Some("firing-b".into());
    let lost = s.save_calendar_entry(&e).await.unwrap_err();
    assert_eq!(lost.kind, PortErrorKind::Conflict, "{lost}");
    let stored = s.calendar().await.unwrap();
    assert_eq!(stored[0].wave_run_id.as_deref(), Some("firing-a"));
    assert_eq!(stored[0].state, CalendarState::Running);

    let plan = cutover_core::plan::Plan::parse(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/dms-happy-path/plan.yaml"),
        )
        .unwrap(),
        false,
    )
    .unwrap();
    s.save_wave_plan("CALENDAR#wave-1", 0, &plan).await.unwrap();
    assert_eq!(
        s.load_wave_plan("CALENDAR#wave-1", 0).await.unwrap(),
        Some(plan)
    );
    assert_eq!(s.load_wave_plan("CALENDAR#wave-1", 1).await.unwrap(), None);
}

/// An ALB seeded in moto (cutover_aws::moto_seed): a listener forwarding to blue, a sticky rule
/// forwarding to blue, blue with two healthy targets and green with one.
async fn load_balancer(sdk: &SdkConfig) -> cutover_aws::moto_seed::SeededAlb {
    let endpoint = std::env::var("CUTOVER_MOTO_ENDPOINT").unwrap();
    // Each test its own VPC range.
    let octet = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 200) as u8
        + 20;
    let name = unique("lb");
    cutover_aws::moto_seed::seed_alb(sdk, &endpoint, &name[..name.len().min(32)], octet)
        .await
        .unwrap()
}

#[tokio::test]
async fn elbv2_rule_and_default_actions_shift_and_restore_exactly() {
    use cutover_core::alb::{AlbPlan, LoadBalancer, TargetGroupRef};
    let Some(sdk) = sdk().await else { return };
    let seeded = load_balancer(&sdk).await;
    let (listener, rule, blue, green) = (
        seeded.listener_arn,
        seeded.rule_arn,
        seeded.blue,
        seeded.green,
    );
    let alb = cutover_aws::AlbRouter::new(aws_sdk_elasticloadbalancingv2::Client::new(&sdk));
    let plan = AlbPlan {
        listener_arn: listener.clone(),
        rule_arn: Some(rule.clone()),
        blue: TargetGroupRef {
            target_group_arn: blue.clone(),
        },
        green: TargetGroupRef {
            target_group_arn: green.clone(),
        },
        min_healthy_targets: 1,
        role_arn: None,
        external_id: None,
    };
    // The rule as found: one forward, stickiness on, blue alone: shiftable.
    let snapshot = alb.actions(&listener, Some(&rule)).await.unwrap();
    assert_eq!(plan.unshiftable(&snapshot), None, "{snapshot:?}");
    let sticky = snapshot[0].forward_config.as_ref().unwrap();
    assert_eq!(
        sticky
            .target_group_stickiness_config
            .as_ref()
            .map(|s| (s.enabled, s.duration_seconds)),
        Some((true, Some(300)))
    );
    // 25 %: ModifyRule with both weights; read back as written, stickiness kept.
    let shifted = plan.weighted(&snapshot, 25);
    alb.set_actions(&listener, Some(&rule), &shifted)
        .await
        .unwrap();
    let now = alb.actions(&listener, Some(&rule)).await.unwrap();
    assert_eq!(
        cutover_core::alb::weights(&now),
        vec![(blue.clone(), 75), (green.clone(), 25)]
    );
    assert_eq!(
        now[0]
            .forward_config
            .as_ref()
            .unwrap()
            .target_group_stickiness_config,
        sticky.target_group_stickiness_config
    );
    // The restore writes the snapshot back; the rule reads as it did before the run.
    alb.set_actions(&listener, Some(&rule), &snapshot)
        .await
        .unwrap();
    assert_eq!(alb.actions(&listener, Some(&rule)).await.unwrap(), snapshot);
    // The listener's default rule: read as the default, changed with ModifyListener.
    let default = alb.actions(&listener, None).await.unwrap();
    assert_eq!(
        cutover_core::alb::weights(&default),
        vec![(blue.clone(), 1)]
    );
    let mut at_green = plan.clone();
    at_green.rule_arn = None;
    alb.set_actions(&listener, None, &at_green.weighted(&default, 100))
        .await
        .unwrap();
    let now = alb.actions(&listener, None).await.unwrap();
    assert_eq!(
        cutover_core::alb::weights(&now),
        vec![(blue.clone(), 0), (green.clone(), 100)]
    );
    // The rule was not touched by the listener's change.
    assert_eq!(alb.actions(&listener, Some(&rule)).await.unwrap(), snapshot);
    // Healthy targets: blue has two registered, green one.
    assert_eq!(alb.healthy_targets(&blue).await.unwrap(), 2);
    assert_eq!(alb.healthy_targets(&green).await.unwrap(), 1);
}

#[tokio::test]
async fn elbv2_unknown_rule_listener_and_target_group_are_not_found() {
    use cutover_core::alb::LoadBalancer;
    let Some(sdk) = sdk().await else { return };
    let seeded = load_balancer(&sdk).await;
    let (listener, rule, blue) = (seeded.listener_arn, seeded.rule_arn, seeded.blue);
    let alb = cutover_aws::AlbRouter::new(aws_sdk_elasticloadbalancingv2::Client::new(&sdk));
    // The same ARN with its last hex digit changed: an id no resource has.
    let other = |arn: &str| {
        let last = if arn.ends_with('0') { '1' } else { '0' };
        format!("{}{last}", &arn[..arn.len() - 1])
    };
    let other_rule = other(&rule);
    let e = alb.actions(&listener, Some(&other_rule)).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::NotFound, "{e}");
    let other_listener = other(&listener);
    let e = alb.actions(&other_listener, None).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::NotFound, "{e}");
    let other_tg = other(&blue);
    let e = alb.healthy_targets(&other_tg).await.unwrap_err();
    assert_eq!(e.kind, PortErrorKind::NotFound, "{e}");
    assert_eq!(e.code, "TargetGroupNotFound");
}

/// Another account through a role: AssumeRole gives credentials for the role's account, whose
/// resources the stack's own credentials do not see (moto keeps each account's apart, as AWS does).
#[tokio::test]
async fn sts_reaches_a_zone_of_another_account_that_the_stack_cannot_see() {
    let Some(sdk) = sdk().await else { return };
    let kept: std::sync::Arc<std::sync::Mutex<Option<SdkConfig>>> = Default::default();
    let keep = kept.clone();
    let build = move |conf: &SdkConfig| {
        *keep.lock().unwrap() = Some(conf.clone());
        let replication = AwsReplication::new(
            aws_sdk_databasemigration::Client::new(conf),
            aws_sdk_mgn::Client::new(conf),
        );
        cutover_core::accounts::Reached {
            router: std::sync::Arc::new(Route53Router::new(
                aws_sdk_route53::Client::new(conf),
                50.0,
            )),
            load_balancer: std::sync::Arc::new(cutover_aws::AlbRouter::new(
                aws_sdk_elasticloadbalancingv2::Client::new(conf),
            )),
            replication: std::sync::Arc::new(replication.clone()),
            metrics: std::sync::Arc::new(cutover_aws::CloudWatchMetrics::new(
                aws_sdk_cloudwatch::Client::new(conf),
                replication,
                aws_sdk_databasemigration::Client::new(conf),
            )),
            expires: None,
        }
    };
    let sts = cutover_aws::StsAccounts::new(&sdk, std::sync::Arc::new(build));
    let role = cutover_core::accounts::Role {
        arn: "arn:aws:iam::111111111111:role/cutover-member-dns".into(),
        external_id: Some("orders-cutover".into()),
    };
    use cutover_core::accounts::Accounts;
    let reached = sts.assume(&role, "orders-run-1").await.expect("assumed");
    let expires = reached.expires.expect("the credentials' expiry");
    assert!(
        expires > Utc::now() + chrono::Duration::minutes(30),
        "{expires}"
    );
    // A zone created in the networking account with the assumed credentials ...
    let conf = kept.lock().unwrap().clone().unwrap();
    let (_, zone_id) = zone(&conf).await;
    // ... is readable through the reached router ...
    reached
        .router
        .records(&zone_id, "orders.example.com", RecordType::CNAME)
        .await
        .expect("visible in its own account");
    // ... and is not there for the stack's own credentials.
    let home = Route53Router::new(aws_sdk_route53::Client::new(&sdk), 50.0);
    let e = home
        .records(&zone_id, "orders.example.com", RecordType::CNAME)
        .await
        .unwrap_err();
    assert_eq!(e.kind, PortErrorKind::NotFound, "{e}");
}

/// The events of runs on the default bus: more than one PutEvents call's worth (10 entries),
/// every entry accepted.
#[tokio::test]
async fn eventbridge_takes_the_events_of_a_run_in_batches_of_ten() {
    use cutover_core::events::{Bus, CutoverEvent, Detail, DetailType};
    let Some(sdk) = sdk().await else { return };
    let bus = cutover_aws::EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk));
    let events: Vec<CutoverEvent> = (0..23)
        .map(|i| CutoverEvent {
            detail_type: DetailType::PhaseChanged,
            detail: Detail {
                version: "1".into(),
                id: format!("run-{i}/v{i}/phase"),
                run_id: "orders-run".into(),
                application: "orders".into(),
                at: Utc::now(),
                phase: Some(format!("shifting:{i}")),
                previous_phase: None,
                green_weight: Some(i),
                gate: None,
                expires_at: None,
                decision: None,
                decided_by: None,
                outcome: None,
                error: None,
            },
        })
        .collect();
    bus.publish(&events).await.expect("published");
}
