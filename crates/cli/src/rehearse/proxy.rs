//! The AWS endpoint the rehearsed functions call (`AWS_ENDPOINT_URL`): every request is named
//! (service, action, resource, condition keys), checked against the calling function's role in
//! the template, recorded, and answered. A request the role does not allow is refused as AWS
//! refuses it (AccessDenied), so the function fails where it would fail on AWS. Allowed requests
//! go to moto, except where moto has no API or protocol; those are answered by documented shims:
//!
//! - CloudWatch (`GetMetricData`, `DescribeAlarms`): moto cannot decode the SDK's rpc-v2-cbor;
//!   the shim answers CBOR with the rehearsal's lag and alarm states.
//! - DMS `DescribeTableStatistics`: not in moto's DMS; the shim answers one loaded, validated
//!   table. moto's other DMS answers carry ISO timestamps where the JSON protocol sends epoch
//!   seconds: they are rewritten.
//! - MGN: not in moto; the shim keeps each source server's lifecycle and launch job.
//! - Step Functions: callbacks (`SendTask*`) and `DescribeExecution`/`StopExecution` go to the
//!   local engine that runs the executions.
//! - Lambda `Invoke` of data hooks: answered as a hook that succeeded.
//! - KMS `Encrypt`/`Decrypt` with the template's keys: judged against the role **and** the key's
//!   own policy (a key policy that names no caller refuses it, whatever the role allows, as KMS
//!   does for a key whose policy does not delegate to IAM:
//!   https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html); a ciphertext
//!   opens only with the key and the encryption context it was sealed with.
//!
//! Secrets Manager and Parameter Store reads (the credentials of probes and hooks) go to moto,
//! judged against the role with the resource's tags (`World::tags`) as `aws:ResourceTag/*`.
//!
//! Who calls is read from the SigV4 credential: each sandbox signs with a key naming its
//! function (`AKID/date/region/service/aws4_request`).

use super::iam::{allowing_statement, Request as IamRequest};
use super::runtime::{body_bytes, respond};
use super::stack::{Stack, ACCOUNT, PARTITION, REGION};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The key the rehearsal itself signs with (seeding and checks): not a function, not checked.
pub const OPERATOR_KEY: &str = "rehearsal-operator";

/// One AWS request a function made.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub function: String,
    #[serde(flatten)]
    pub request: IamRequest,
    pub allowed: bool,
    /// Where it was answered: moto, or the shim's name.
    pub answered_by: String,
    pub status: u16,
    pub scenario: String,
}

/// A source server the MGN shim holds.
#[derive(Debug, Clone)]
pub struct MgnServer {
    pub id: String,
    pub lifecycle: String,
    pub job: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What the shims answer and the engine hooks they reach.
#[derive(Default)]
pub struct World {
    /// CDC latency (seconds) the CloudWatch shim reports for every DMS task.
    pub lag_seconds: f64,
    /// Alarm name -> state value (`OK`, `ALARM`, `INSUFFICIENT_DATA`); unknown names are OK.
    pub alarms: HashMap<String, String>,
    /// Resource ARN -> its tags (DMS tasks, hook functions, ALB listeners and rules).
    pub tags: HashMap<String, BTreeMap<String, String>>,
    pub mgn: Vec<MgnServer>,
    /// Execution ARN -> status, for DescribeExecution.
    pub executions: HashMap<String, String>,
    /// Hook calls seen (function ARN, payload).
    pub hook_calls: Vec<(String, Value)>,
    /// What the KMS shim sealed: (key ARN, plaintext, encryption context), by ciphertext index.
    pub sealed: Vec<(String, String, BTreeMap<String, String>)>,
}

pub struct Proxy {
    stack: Arc<Stack>,
    moto: String,
    client: reqwest::Client,
    pub world: Mutex<World>,
    pub calls: Mutex<Vec<Call>>,
    pub scenario: Mutex<String>,
    pub broker: Mutex<Option<Arc<cutover_engine::TokenBroker>>>,
}

type Body = Full<Bytes>;

impl Proxy {
    pub fn new(stack: Arc<Stack>, moto: &str) -> Arc<Proxy> {
        Arc::new(Proxy {
            stack,
            moto: moto.trim_end_matches('/').to_string(),
            client: cutover_aws::tls::reqwest_builder("cutover-rehearse")
                .build()
                .unwrap_or_default(),
            world: Mutex::new(World::default()),
            calls: Mutex::new(Vec::new()),
            scenario: Mutex::new(String::new()),
            broker: Mutex::new(None),
        })
    }

    pub async fn listen(self: &Arc<Self>) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let me = self.clone();
        tokio::spawn(super::runtime::serve(listener, move |req| {
            let me = me.clone();
            async move { me.handle(req).await }
        }));
        Ok(url)
    }

    fn world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let mut w = self.world.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut w)
    }

    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<Body> {
        let (parts, body) = body_bytes(req).await;
        let auth = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        // Credential=KEY/DATE/REGION/SERVICE/aws4_request
        let scope: Vec<&str> = auth
            .split("Credential=")
            .nth(1)
            .and_then(|s| s.split([',', ' ']).next())
            .unwrap_or_default()
            .split('/')
            .collect();
        let (key, service) = (
            scope.first().copied().unwrap_or_default().to_string(),
            scope.get(3).copied().unwrap_or_default().to_string(),
        );
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let path = parts.uri.path().to_string();
        let named = self.name(&service, &parts.method, &path, &target, &body);
        let Some(named) = named else {
            return self.forward(&parts, body, &service, None).await;
        };
        let function = if key == OPERATOR_KEY {
            None
        } else {
            self.stack.functions.iter().find(|f| f.name == key)
        };
        // Each IAM request of the call, judged once: refused when the caller's role allows it not.
        let verdicts: Vec<bool> = named
            .requests
            .iter()
            .map(|r| {
                function.is_none_or(|f| {
                    allowing_statement(&f.statements, r).is_some()
                        && (service != "kms" || self.key_policy_allows(&f.role_arn, r))
                })
            })
            .collect();
        let refused = verdicts.iter().position(|ok| !ok);
        let (status, answered_by, response) = if let Some(i) = refused {
            let r = &named.requests[i];
            let who = function
                .map(|f| f.function_name.clone())
                .unwrap_or_default();
            let message = format!(
                "User: arn:aws:sts::{ACCOUNT}:assumed-role/{who}-role/{who} is not authorized to perform: {} on resource: {} because no identity-based policy allows the {} action",
                r.action, r.resource, r.action
            );
            let resp = access_denied(&service, &message);
            (resp.status().as_u16(), "iam".to_string(), resp)
        } else {
            let (by, resp) = match self.shim(&service, &named.action, &body).await {
                Some(resp) => (named.shim_name(&service), resp),
                None => (
                    "moto".to_string(),
                    self.forward(&parts, body, &service, Some(&named.action))
                        .await,
                ),
            };
            (resp.status().as_u16(), by, resp)
        };
        if let Some(f) = function {
            let scenario = self.scenario.lock().map(|s| s.clone()).unwrap_or_default();
            let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
            for (r, ok) in named.requests.into_iter().zip(verdicts) {
                calls.push(Call {
                    function: f.name.clone(),
                    request: r,
                    allowed: ok,
                    answered_by: answered_by.clone(),
                    status,
                    scenario: scenario.clone(),
                });
            }
        }
        response
    }

    /// The IAM request(s) of one AWS call; None for calls the rehearsal does not model.
    fn name(
        &self,
        service: &str,
        method: &hyper::Method,
        path: &str,
        target: &str,
        body: &[u8],
    ) -> Option<Named> {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let s = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_string);
        let op = target.rsplit('.').next().unwrap_or_default().to_string();
        let one = |action: String, resource: String, context: BTreeMap<String, Vec<String>>| {
            Some(Named {
                action: action.rsplit(':').next().unwrap_or_default().to_string(),
                requests: vec![IamRequest {
                    action,
                    resource,
                    context,
                }],
            })
        };
        let tags_of = |arn: &str| -> BTreeMap<String, Vec<String>> {
            self.world(|w| {
                w.tags
                    .get(arn)
                    .map(|t| {
                        t.iter()
                            .map(|(k, v)| (format!("aws:ResourceTag/{k}"), vec![v.clone()]))
                            .collect()
                    })
                    .unwrap_or_default()
            })
        };
        match service {
            "dynamodb" => one(
                format!("dynamodb:{op}"),
                format!(
                    "arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{}",
                    s("TableName").unwrap_or_default()
                ),
                BTreeMap::new(),
            ),
            "kms" => {
                let key = s("KeyId").unwrap_or_else(|| "*".into());
                let mut ctx: BTreeMap<String, Vec<String>> = self
                    .stack
                    .key(&key)
                    .map(|k| {
                        k.tags
                            .iter()
                            .map(|(t, v)| (format!("aws:ResourceTag/{t}"), vec![v.clone()]))
                            .collect()
                    })
                    .unwrap_or_default();
                for (k, v) in json
                    .get("EncryptionContext")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    ctx.insert(
                        format!("kms:EncryptionContext:{k}"),
                        vec![v.as_str().unwrap_or_default().to_string()],
                    );
                }
                one(format!("kms:{op}"), key, ctx)
            }
            // Credentials of probes and hooks, by ARN; the resource's tags are its context.
            "secretsmanager" | "ssm" => {
                let arn = s("SecretId").or_else(|| s("Name"))?;
                let ctx = tags_of(&arn);
                one(format!("{service}:{op}"), arn, ctx)
            }
            "dms" => {
                let arn = s("ReplicationTaskArn");
                let ctx = arn.as_deref().map(tags_of).unwrap_or_default();
                one(format!("dms:{op}"), arn.unwrap_or_else(|| "*".into()), ctx)
            }
            "states" => one(
                format!("states:{op}"),
                s("executionArn")
                    .or_else(|| s("stateMachineArn"))
                    .unwrap_or_else(|| "*".into()),
                BTreeMap::new(),
            ),
            "monitoring" => {
                let op = path.rsplit('/').next().unwrap_or_default();
                one(format!("cloudwatch:{op}"), "*".into(), BTreeMap::new())
            }
            "sns" => {
                let form: HashMap<String, String> =
                    url::form_urlencoded::parse(body).into_owned().collect();
                let action = form.get("Action").cloned().unwrap_or_default();
                one(
                    format!("sns:{action}"),
                    form.get("TopicArn").cloned().unwrap_or_else(|| "*".into()),
                    BTreeMap::new(),
                )
            }
            // ELBv2 (query protocol): ModifyRule is authorized on the rule, ModifyListener on the
            // listener, each with its tags; the Describe actions take no resource scope.
            "elasticloadbalancing" => {
                let form: HashMap<String, String> =
                    url::form_urlencoded::parse(body).into_owned().collect();
                let action = form.get("Action").cloned().unwrap_or_default();
                let resource = match action.as_str() {
                    "ModifyRule" => form.get("RuleArn").cloned(),
                    "ModifyListener" => form.get("ListenerArn").cloned(),
                    _ => None,
                };
                let ctx = resource.as_deref().map(tags_of).unwrap_or_default();
                one(
                    format!("elasticloadbalancing:{action}"),
                    resource.unwrap_or_else(|| "*".into()),
                    ctx,
                )
            }
            "route53" => {
                let rest = path.strip_prefix("/2013-04-01/")?;
                let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
                let zone = |id: &str| format!("arn:{PARTITION}:route53:::hostedzone/{id}");
                match (method.as_str(), parts.as_slice()) {
                    ("GET", ["hostedzone", id, "rrset"]) => one(
                        "route53:ListResourceRecordSets".into(),
                        zone(id),
                        BTreeMap::new(),
                    ),
                    ("POST", ["hostedzone", id, "rrset"]) => {
                        let xml = String::from_utf8_lossy(body);
                        let names = xml_values(&xml, "Name")
                            .into_iter()
                            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                            .collect();
                        let mut ctx = BTreeMap::new();
                        ctx.insert(
                            "route53:ChangeResourceRecordSetsNormalizedRecordNames".to_string(),
                            names,
                        );
                        ctx.insert(
                            "route53:ChangeResourceRecordSetsRecordTypes".to_string(),
                            xml_values(&xml, "Type"),
                        );
                        ctx.insert(
                            "route53:ChangeResourceRecordSetsActions".to_string(),
                            xml_values(&xml, "Action"),
                        );
                        one("route53:ChangeResourceRecordSets".into(), zone(id), ctx)
                    }
                    ("GET", ["change", id]) => one(
                        "route53:GetChange".into(),
                        format!("arn:{PARTITION}:route53:::change/{id}"),
                        BTreeMap::new(),
                    ),
                    ("GET", ["hostedzone", id]) => {
                        one("route53:GetHostedZone".into(), zone(id), BTreeMap::new())
                    }
                    _ => None,
                }
            }
            "mgn" => {
                let op = path.trim_matches('/').to_string();
                // StartCutover names 1 to 200 servers; IAM authorizes the call on each of them.
                let servers: Vec<String> = match s("sourceServerID") {
                    Some(id) => vec![id],
                    None => json
                        .get("sourceServerIDs")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                match op.as_str() {
                    "StartCutover" | "FinalizeCutover" if !servers.is_empty() => {
                        let requests = servers
                            .iter()
                            .map(|id| {
                                let context = self.world(|w| {
                                    w.mgn
                                        .iter()
                                        .find(|m| &m.id == id)
                                        .map(|m| {
                                            m.tags
                                                .iter()
                                                .map(|(k, v)| {
                                                    (
                                                        format!("aws:ResourceTag/{k}"),
                                                        vec![v.clone()],
                                                    )
                                                })
                                                .collect()
                                        })
                                        .unwrap_or_default()
                                });
                                IamRequest {
                                    action: format!("mgn:{op}"),
                                    resource: format!(
                                        "arn:{PARTITION}:mgn:{REGION}:{ACCOUNT}:source-server/{id}"
                                    ),
                                    context,
                                }
                            })
                            .collect();
                        Some(Named {
                            action: op.clone(),
                            requests,
                        })
                    }
                    _ => one(format!("mgn:{op}"), "*".into(), BTreeMap::new()),
                }
            }
            "scheduler" => {
                let name = path.strip_prefix("/schedules/")?;
                let group = s("GroupName").unwrap_or_else(|| "default".into());
                let mut named = one(
                    "scheduler:CreateSchedule".into(),
                    format!("arn:{PARTITION}:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{name}"),
                    BTreeMap::new(),
                )?;
                if let Some(role) = json.pointer("/Target/RoleArn").and_then(Value::as_str) {
                    let mut ctx = BTreeMap::new();
                    ctx.insert(
                        "iam:PassedToService".to_string(),
                        vec!["scheduler.amazonaws.com".to_string()],
                    );
                    named.requests.push(IamRequest {
                        action: "iam:PassRole".into(),
                        resource: role.to_string(),
                        context: ctx,
                    });
                }
                Some(named)
            }
            "lambda" => {
                let name = path
                    .strip_prefix("/2015-03-31/functions/")?
                    .strip_suffix("/invocations")?;
                let name = url::form_urlencoded::parse(format!("n={name}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let arn = if name.starts_with("arn:") {
                    name
                } else {
                    format!("arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}")
                };
                let ctx = tags_of(&arn);
                one("lambda:InvokeFunction".into(), arn, ctx)
            }
            _ => None,
        }
    }

    /// Whether the key's own policy has an Allow statement naming `role` for `req`.
    fn key_policy_allows(&self, role: &str, req: &IamRequest) -> bool {
        self.stack.key(&req.resource).is_some_and(|k| {
            let mine: Vec<_> = k
                .policy
                .iter()
                .filter(|s| s.principals.iter().any(|p| p == role))
                .cloned()
                .collect();
            allowing_statement(&mine, req).is_some()
        })
    }

    /// KMS Encrypt/Decrypt with the template's keys.
    fn kms(&self, op: &str, req: &Value) -> Response<Body> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = req.get("KeyId").and_then(Value::as_str).unwrap_or_default();
        if self.stack.key(key).is_none() {
            return error_json(
                400,
                "NotFoundException",
                &format!("key {key} does not exist"),
            );
        }
        let context: BTreeMap<String, String> = req
            .get("EncryptionContext")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        self.world(|w| match op {
            "Encrypt" => {
                let plain = req
                    .get("Plaintext")
                    .and_then(Value::as_str)
                    .and_then(|p| b64.decode(p).ok())
                    .map(|b| String::from_utf8_lossy(&b).to_string())
                    .unwrap_or_default();
                w.sealed.push((key.to_string(), plain, context));
                let blob = b64.encode(format!("rehearsal-kms:{}", w.sealed.len() - 1));
                json_response(json!({"CiphertextBlob": blob, "KeyId": key}))
            }
            "Decrypt" => {
                let index = req
                    .get("CiphertextBlob")
                    .and_then(Value::as_str)
                    .and_then(|c| b64.decode(c).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|t| t.strip_prefix("rehearsal-kms:")?.parse::<usize>().ok());
                match index.and_then(|i| w.sealed.get(i)) {
                    Some((k, plain, ctx)) if k == key && *ctx == context => json_response(
                        json!({"Plaintext": b64.encode(plain.as_bytes()), "KeyId": key}),
                    ),
                    _ => error_json(
                        400,
                        "InvalidCiphertextException",
                        "not this key's ciphertext, or another encryption context",
                    ),
                }
            }
            other => error_json(400, "UnsupportedOperationException", other),
        })
    }

    /// The answer of a shim, or None for moto.
    async fn shim(&self, service: &str, action: &str, body: &[u8]) -> Option<Response<Body>> {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match (service, action) {
            ("monitoring", op) => Some(self.cloudwatch(op, body)),
            ("dms", "DescribeTableStatistics") => Some(json_response(json!({
                "ReplicationTaskArn": json.get("ReplicationTaskArn"),
                "TableStatistics": [{
                    "SchemaName": "app", "TableName": "orders", "TableState": "Table completed",
                    "ValidationState": "Validated", "FullLoadRows": 1000, "Inserts": 10,
                    "Updates": 5, "Deletes": 0
                }]
            }))),
            ("mgn", op) => Some(self.mgn(op, &json)),
            ("states", op) => Some(self.states(op, &json)),
            ("kms", op) => Some(self.kms(op, &json)),
            ("lambda", _) => {
                self.world(|w| {
                    w.hook_calls.push((
                        String::new(),
                        serde_json::from_slice(body).unwrap_or(Value::Null),
                    ))
                });
                Some(json_response(json!({"ok": true})))
            }
            _ => None,
        }
    }

    fn cloudwatch(&self, op: &str, body: &[u8]) -> Response<Body> {
        use ciborium::Value as C;
        let req: C = ciborium::from_reader(body).unwrap_or(C::Null);
        let get = |v: &C, k: &str| -> Option<C> {
            v.as_map()?
                .iter()
                .find(|(key, _)| key.as_text() == Some(k))
                .map(|(_, v)| v.clone())
        };
        let now = chrono::Utc::now().timestamp() as f64;
        let text = |s: &str| C::Text(s.to_string());
        let doc = match op {
            "GetMetricData" => {
                let lag = self.world(|w| w.lag_seconds);
                let queries = get(&req, "MetricDataQueries")
                    .and_then(|q| q.as_array().cloned())
                    .unwrap_or_default();
                let results: Vec<C> = queries
                    .iter()
                    .map(|q| {
                        let id = get(q, "Id").and_then(|i| i.as_text().map(str::to_string));
                        let value = if id.as_deref() == Some("incoming") {
                            0.0
                        } else {
                            lag
                        };
                        C::Map(vec![
                            (text("Id"), text(id.as_deref().unwrap_or_default())),
                            (text("StatusCode"), text("Complete")),
                            (
                                text("Timestamps"),
                                C::Array(vec![C::Tag(1, Box::new(C::Float(now)))]),
                            ),
                            (text("Values"), C::Array(vec![C::Float(value)])),
                        ])
                    })
                    .collect();
                C::Map(vec![(text("MetricDataResults"), C::Array(results))])
            }
            "DescribeAlarms" => {
                let names: Vec<String> = get(&req, "AlarmNames")
                    .and_then(|n| n.as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|n| n.as_text().map(str::to_string))
                    .collect();
                let alarms: Vec<C> = names
                    .iter()
                    .map(|n| {
                        let state =
                            self.world(|w| w.alarms.get(n).cloned().unwrap_or_else(|| "OK".into()));
                        C::Map(vec![
                            (text("AlarmName"), text(n)),
                            (
                                text("AlarmArn"),
                                text(&format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{n}")),
                            ),
                            (text("StateValue"), text(&state)),
                            (
                                text("StateUpdatedTimestamp"),
                                C::Tag(1, Box::new(C::Float(now))),
                            ),
                        ])
                    })
                    .collect();
                C::Map(vec![
                    (text("MetricAlarms"), C::Array(alarms)),
                    (text("CompositeAlarms"), C::Array(vec![])),
                ])
            }
            _ => C::Map(vec![]),
        };
        cbor_response(StatusCode::OK, &doc)
    }

    fn mgn(&self, op: &str, req: &Value) -> Response<Body> {
        let server_json = |m: &MgnServer| {
            json!({
                "sourceServerID": m.id,
                "arn": format!("arn:aws:mgn:{REGION}:{ACCOUNT}:source-server/{}", m.id),
                "isArchived": false,
                "lifeCycle": {"state": m.lifecycle},
                "dataReplicationInfo": {"dataReplicationState": "CONTINUOUS", "lagDuration": "PT1S"},
                "launchedInstance": m.job.as_ref().map(|j| json!({"ec2InstanceID": format!("i-{}", m.id.trim_start_matches("s-")), "jobID": j, "firstBoot": "SUCCEEDED"})),
                "tags": m.tags,
            })
        };
        self.world(|w| match op {
            "DescribeSourceServers" => {
                let wanted: Vec<String> = req
                    .pointer("/filters/sourceServerIDs")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                let items: Vec<Value> = w
                    .mgn
                    .iter()
                    .filter(|m| wanted.is_empty() || wanted.contains(&m.id))
                    .map(server_json)
                    .collect();
                json_response(json!({"items": items}))
            }
            "StartCutover" => {
                let ids: Vec<String> = req
                    .get("sourceServerIDs")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                let job = format!("mgnjob-{}", w.mgn.len() + 1);
                for m in w.mgn.iter_mut().filter(|m| ids.contains(&m.id)) {
                    m.lifecycle = "CUTTING_OVER".into();
                    m.job = Some(job.clone());
                }
                json_response(json!({"job": {
                    "jobID": job, "arn": format!("arn:aws:mgn:{REGION}:{ACCOUNT}:job/{job}"),
                    "type": "LAUNCH", "initiatedBy": "START_CUTOVER", "status": "STARTED",
                    "participatingServers": ids.iter().map(|i| json!({"sourceServerID": i, "launchStatus": "PENDING"})).collect::<Vec<_>>()
                }}))
            }
            "DescribeJobs" => {
                let wanted: Vec<String> = req
                    .pointer("/filters/jobIDs")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                let items: Vec<Value> = wanted
                    .iter()
                    .map(|j| {
                        let servers: Vec<Value> = w
                            .mgn
                            .iter()
                            .filter(|m| m.job.as_deref() == Some(j))
                            .map(|m| json!({"sourceServerID": m.id, "launchStatus": "LAUNCHED"}))
                            .collect();
                        json!({"jobID": j, "type": "LAUNCH", "status": "COMPLETED", "participatingServers": servers})
                    })
                    .collect();
                json_response(json!({"items": items}))
            }
            "FinalizeCutover" => {
                let id = req.get("sourceServerID").and_then(Value::as_str).unwrap_or_default();
                match w.mgn.iter_mut().find(|m| m.id == id) {
                    Some(m) => {
                        m.lifecycle = "CUTOVER".into();
                        json_response(server_json(m))
                    }
                    None => error_json(404, "ResourceNotFoundException", "no such source server"),
                }
            }
            _ => error_json(400, "UnknownOperationException", op),
        })
    }

    fn states(&self, op: &str, req: &Value) -> Response<Body> {
        let broker = self.broker.lock().ok().and_then(|b| b.clone());
        let token = req
            .get("taskToken")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let token_result = |r: Result<(), cutover_engine::TokenError>| match r {
            Ok(()) => json_response(json!({})),
            Err(cutover_engine::TokenError::InvalidToken) => {
                error_json(400, "InvalidToken", "Invalid Token")
            }
            Err(cutover_engine::TokenError::TaskTimedOut) => {
                error_json(400, "TaskTimedOut", "Task Timed Out")
            }
        };
        match (op, broker) {
            ("SendTaskSuccess", Some(b)) => {
                let output = req
                    .get("output")
                    .and_then(Value::as_str)
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null);
                token_result(b.send_success(token, output))
            }
            ("SendTaskFailure", Some(b)) => token_result(b.send_failure(
                token,
                req.get("error").and_then(Value::as_str).unwrap_or_default(),
                req.get("cause").and_then(Value::as_str).unwrap_or_default(),
            )),
            ("SendTaskHeartbeat", Some(b)) => token_result(b.send_heartbeat(token)),
            ("DescribeExecution", _) => {
                let arn = req
                    .get("executionArn")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match self.world(|w| w.executions.get(arn).cloned()) {
                    Some(status) => {
                        let machine = arn
                            .rsplit_once(':')
                            .map(|(m, _)| m.replace(":execution:", ":stateMachine:"))
                            .unwrap_or_default();
                        json_response(json!({
                            "executionArn": arn, "stateMachineArn": machine,
                            "name": arn.rsplit(':').next(), "status": status,
                            "startDate": chrono::Utc::now().timestamp() as f64 - 60.0,
                        }))
                    }
                    None => error_json(
                        400,
                        "ExecutionDoesNotExist",
                        &format!("Execution Does Not Exist: '{arn}'"),
                    ),
                }
            }
            ("StopExecution", _) => {
                let arn = req
                    .get("executionArn")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.world(|w| {
                    if let Some(s) = w.executions.get_mut(arn) {
                        if s == "RUNNING" {
                            *s = "ABORTED".into();
                        }
                    }
                });
                json_response(json!({"stopDate": chrono::Utc::now().timestamp() as f64}))
            }
            _ => error_json(400, "UnknownOperationException", op),
        }
    }

    async fn forward(
        &self,
        parts: &http::request::Parts,
        body: Vec<u8>,
        service: &str,
        action: Option<&str>,
    ) -> Response<Body> {
        let url = format!(
            "{}{}",
            self.moto,
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
        );
        let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let mut rb = self.client.request(method, &url).body(body);
        for (k, v) in &parts.headers {
            if k.as_str() != "host" && k.as_str() != "content-length" {
                rb = rb.header(k.as_str(), v.as_bytes());
            }
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return error_json(503, "ServiceUnavailable", &format!("moto: {e}")),
        };
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "content-length" | "transfer-encoding" | "connection" | "server" | "date"
                )
            })
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let mut bytes = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        if service == "dms" && action.is_some() {
            // moto's DMS sends ISO timestamps where the JSON protocol sends epoch seconds.
            if let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) {
                iso_to_epoch(&mut v);
                bytes = serde_json::to_vec(&v).unwrap_or(bytes);
            }
        }
        let hs: Vec<(&str, String)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        respond(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            &hs,
            bytes,
        )
    }
}

struct Named {
    action: String,
    requests: Vec<IamRequest>,
}

impl Named {
    fn shim_name(&self, service: &str) -> String {
        format!("shim:{service}")
    }
}

/// An answer in CloudWatch's protocol (Smithy RPC v2 CBOR).
fn cbor_response(status: StatusCode, doc: &ciborium::Value) -> Response<Body> {
    let mut out = Vec::new();
    let _ = ciborium::into_writer(doc, &mut out);
    respond(
        status,
        &[
            ("content-type", "application/cbor".into()),
            ("smithy-protocol", "rpc-v2-cbor".into()),
        ],
        out,
    )
}

fn json_response(v: Value) -> Response<Body> {
    respond(
        StatusCode::OK,
        &[("content-type", "application/x-amz-json-1.1".into())],
        serde_json::to_vec(&v).unwrap_or_default(),
    )
}

fn error_json(status: u16, code: &str, message: &str) -> Response<Body> {
    respond(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        &[
            ("content-type", "application/x-amz-json-1.1".into()),
            ("x-amzn-ErrorType", code.to_string()),
        ],
        serde_json::to_vec(&json!({"__type": code, "message": message})).unwrap_or_default(),
    )
}

/// AccessDenied in the protocol of the service
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html).
fn access_denied(service: &str, message: &str) -> Response<Body> {
    match service {
        "route53" | "sns" => {
            let code = if service == "sns" {
                "AuthorizationError"
            } else {
                "AccessDenied"
            };
            let xml = format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>rehearsal</RequestId></ErrorResponse>",
                message.replace('&', "&amp;").replace('<', "&lt;")
            );
            respond(
                StatusCode::FORBIDDEN,
                &[("content-type", "text/xml".into())],
                xml.into_bytes(),
            )
        }
        "monitoring" => {
            use ciborium::Value as C;
            let doc = C::Map(vec![
                (C::Text("__type".into()), C::Text("AccessDenied".into())),
                (C::Text("message".into()), C::Text(message.into())),
            ]);
            cbor_response(StatusCode::FORBIDDEN, &doc)
        }
        _ => error_json(400, "AccessDeniedException", message),
    }
}

/// The text of every `<tag>…</tag>` in an XML document (Route 53 change batches).
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

fn iso_to_epoch(v: &mut Value) {
    match v {
        Value::Object(m) => m.values_mut().for_each(iso_to_epoch),
        Value::Array(a) => a.iter_mut().for_each(iso_to_epoch),
        Value::String(s) => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                *v = json!(t.timestamp_millis() as f64 / 1000.0);
            } else if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
                *v = json!(t.and_utc().timestamp_millis() as f64 / 1000.0);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_batches_name_their_records_types_and_actions() {
        let xml = "<ChangeBatch><Changes><Change><Action>DELETE</Action><ResourceRecordSet><Name>Orders.Example.com.</Name><Type>CNAME</Type></ResourceRecordSet></Change><Change><Action>CREATE</Action><ResourceRecordSet><Name>orders.example.com</Name><Type>CNAME</Type></ResourceRecordSet></Change></Changes></ChangeBatch>";
        assert_eq!(xml_values(xml, "Action"), ["DELETE", "CREATE"]);
        assert_eq!(xml_values(xml, "Type"), ["CNAME", "CNAME"]);
        assert_eq!(xml_values(xml, "Name").len(), 2);
    }

    #[test]
    fn iso_timestamps_become_epoch_seconds() {
        let mut v = json!({"a": "2026-12-04T10:00:00Z", "b": ["x"], "c": "2026-12-04T10:00:00.5"});
        iso_to_epoch(&mut v);
        assert_eq!(v["a"], json!(1796378400.0));
        assert_eq!(v["b"][0], "x");
        assert_eq!(v["c"], json!(1796378400.5));
    }
}
