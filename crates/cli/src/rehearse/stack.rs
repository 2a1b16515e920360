//! The stack as `template.yaml` declares it, resolved as CloudFormation would for one account and
//! region: each function's environment, role statements and physical name, the state machines'
//! definitions with their `DefinitionSubstitutions`, and the resources' names and ARNs. Only the
//! intrinsic functions the template uses are understood (`!Ref`, `!GetAtt X.Arn`, `!Sub`,
//! `!Join`, `!Split`, `!Select`, `!If`, `!Equals`, `!Not`); anything else is an error naming it,
//! so a new construct cannot be silently misread.

use serde_json::{Map, Value as Json};
use serde_norway::Value as Yaml;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const PARTITION: &str = "aws";

/// One IAM policy statement, resolved: actions, resources and conditions as strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub effect: String,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// operator -> key -> accepted values
    pub conditions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// A resource policy's `Principal.AWS` (ARNs); empty in an identity policy.
    pub principals: Vec<String>,
}

/// A KMS key the template declares: its ARN, its key policy and its tags.
#[derive(Debug, Clone)]
pub struct Key {
    pub logical_id: String,
    pub arn: String,
    pub policy: Vec<Statement>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// The function's directory under `functions/` (its crate and bin name).
    pub name: String,
    /// The deployed function name (`FunctionName`).
    pub function_name: String,
    pub arn: String,
    pub environment: BTreeMap<String, String>,
    /// The role SAM creates for the function (`<LogicalId>Role`).
    pub role_arn: String,
    pub statements: Vec<Statement>,
    pub log_level: String,
    /// The log group it writes to (Lambda's `AWS_LAMBDA_LOG_GROUP_NAME`).
    pub log_group: String,
    pub timeout_seconds: u64,
    pub memory_mb: u64,
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub logical_id: String,
    pub name: String,
    pub arn: String,
    /// The definition with its substitutions resolved.
    pub definition: String,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone)]
pub struct Stack {
    pub functions: Vec<Function>,
    pub machines: Vec<Machine>,
    pub keys: Vec<Key>,
    pub table_name: String,
    pub topic_arn: String,
    pub parameters: HashMap<String, Json>,
}

#[derive(Debug, thiserror::Error)]
#[error("template.yaml: {0}")]
pub struct StackError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, StackError> {
    Err(StackError(m.into()))
}

struct Resolver<'a> {
    template: &'a Yaml,
    parameters: HashMap<String, Json>,
    conditions: HashMap<String, bool>,
    stack_name: String,
}

impl Stack {
    /// Reads `template` (its `DefinitionUri` files relative to it) with the given parameter
    /// values over the template's defaults.
    pub fn load(
        template: &Path,
        stack_name: &str,
        overrides: &HashMap<String, String>,
    ) -> Result<Stack, StackError> {
        let text = std::fs::read_to_string(template)
            .map_err(|e| StackError(format!("{}: {e}", template.display())))?;
        let t: Yaml = serde_norway::from_str(&text).map_err(|e| StackError(e.to_string()))?;
        let root: PathBuf = template.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut r = Resolver {
            template: &t,
            parameters: HashMap::new(),
            conditions: HashMap::new(),
            stack_name: stack_name.to_string(),
        };
        r.parameters = r.parameters(overrides)?;
        r.conditions = r.conditions()?;
        let resources = t["Resources"]
            .as_mapping()
            .ok_or_else(|| StackError("no Resources".into()))?;
        let mut functions = Vec::new();
        let mut machines = Vec::new();
        let mut keys = Vec::new();
        for (id, res) in resources {
            let id = id.as_str().unwrap_or_default().to_string();
            match res["Type"].as_str() {
                Some("AWS::Serverless::Function") => functions.push(r.function(&id, res)?),
                Some("AWS::Serverless::StateMachine") => machines.push(r.machine(&id, res, &root)?),
                Some("AWS::KMS::Key") => keys.push(r.key(&id, res)?),
                _ => {}
            }
        }
        let table_name = r
            .reference("RunTable")?
            .as_str()
            .unwrap_or_default()
            .to_string();
        let topic_arn = r
            .reference("ApprovalTopic")?
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(Stack {
            functions,
            machines,
            keys,
            table_name,
            topic_arn,
            parameters: r.parameters.clone(),
        })
    }

    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    pub fn function_by_arn(&self, arn: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.arn == arn)
    }

    pub fn key(&self, arn: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.arn == arn)
    }

    pub fn machine(&self, logical_id: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.logical_id == logical_id)
    }
}

fn yaml_str(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn json_str(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::Array(a) => a.iter().map(json_str).collect(),
        Json::Null => vec![],
        other => vec![json_str(other)],
    }
}

impl Resolver<'_> {
    fn parameters(
        &self,
        overrides: &HashMap<String, String>,
    ) -> Result<HashMap<String, Json>, StackError> {
        let mut out = HashMap::new();
        let params = self.template["Parameters"].as_mapping();
        for (k, p) in params.into_iter().flatten() {
            let name = k.as_str().unwrap_or_default().to_string();
            let raw = overrides
                .get(&name)
                .cloned()
                .or_else(|| yaml_str(&p["Default"]));
            let Some(raw) = raw else {
                return err(format!(
                    "parameter {name} has no default: give it with --parameter {name}=VALUE"
                ));
            };
            let value = if p["Type"].as_str() == Some("CommaDelimitedList") {
                Json::Array(
                    raw.split(',')
                        .map(|s| Json::String(s.trim().to_string()))
                        .collect(),
                )
            } else {
                Json::String(raw)
            };
            out.insert(name, value);
        }
        for k in overrides.keys() {
            if !out.contains_key(k) {
                return err(format!(
                    "--parameter {k}: the template has no such parameter"
                ));
            }
        }
        Ok(out)
    }

    fn conditions(&mut self) -> Result<HashMap<String, bool>, StackError> {
        let mut out = HashMap::new();
        let conds = self.template["Conditions"].as_mapping().cloned();
        for (k, c) in conds.into_iter().flatten() {
            let v = self.resolve(&c)?;
            out.insert(
                k.as_str().unwrap_or_default().to_string(),
                v.as_bool().unwrap_or(false),
            );
        }
        Ok(out)
    }

    fn pseudo(&self, name: &str) -> Option<Json> {
        Some(Json::String(match name {
            "AWS::Region" => REGION.into(),
            "AWS::AccountId" => ACCOUNT.into(),
            "AWS::Partition" => PARTITION.into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            "AWS::StackName" => self.stack_name.clone(),
            "AWS::StackId" => format!(
                "arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{}/00000000-0000-0000-0000-000000000001",
                self.stack_name
            ),
            "AWS::NoValue" => return Some(Json::Null),
            _ => return None,
        }))
    }

    fn property(&self, id: &str, prop: &str) -> Result<Option<String>, StackError> {
        let v = &self.template["Resources"][id]["Properties"][prop];
        if v.is_null() {
            return Ok(None);
        }
        Ok(Some(json_str(&self.resolve(v)?)))
    }

    /// What `!Ref` of a parameter, a pseudo parameter or a resource gives.
    fn reference(&self, name: &str) -> Result<Json, StackError> {
        if let Some(p) = self.parameters.get(name) {
            return Ok(p.clone());
        }
        if let Some(p) = self.pseudo(name) {
            return Ok(p);
        }
        let res = &self.template["Resources"][name];
        let generated = format!("{}-{name}", self.stack_name);
        Ok(Json::String(match res["Type"].as_str() {
            Some("AWS::Serverless::Function") => {
                self.property(name, "FunctionName")?.unwrap_or(generated)
            }
            Some("AWS::DynamoDB::Table") => self.property(name, "TableName")?.unwrap_or(generated),
            Some("AWS::Logs::LogGroup") => {
                self.property(name, "LogGroupName")?.unwrap_or(generated)
            }
            Some("AWS::SNS::Topic") => format!(
                "arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{}",
                self.property(name, "TopicName")?.unwrap_or(generated)
            ),
            Some("AWS::Serverless::StateMachine") => format!(
                "arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{}",
                self.property(name, "Name")?.unwrap_or(generated)
            ),
            Some("AWS::ApiGatewayV2::Api") => "rehearsalapi".into(),
            Some(_) => generated,
            // The role SAM creates for a function without one (`<FunctionLogicalId>Role`).
            None if self.implicit_role(name) => generated,
            None => return err(format!("!Ref {name}: no such parameter or resource")),
        }))
    }

    /// Whether `name` is the role SAM generates for a function of the template.
    fn implicit_role(&self, name: &str) -> bool {
        name.strip_suffix("Role").is_some_and(|f| {
            self.template["Resources"][f]["Type"].as_str() == Some("AWS::Serverless::Function")
                && self.template["Resources"][f]["Properties"]["Role"].is_null()
        })
    }

    fn get_att(&self, target: &str) -> Result<Json, StackError> {
        let (id, att) = target
            .split_once('.')
            .ok_or_else(|| StackError(format!("!GetAtt {target}: expected Resource.Attribute")))?;
        let res = &self.template["Resources"][id];
        let name = json_str(&self.reference(id)?);
        // A table's stream: its ARN ends in the stream's creation label, a timestamp.
        if att == "StreamArn" && res["Type"].as_str() == Some("AWS::DynamoDB::Table") {
            return Ok(Json::String(format!(
                "arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}/stream/2026-12-05T00:00:00.000"
            )));
        }
        if att != "Arn" {
            return err(format!(
                "!GetAtt {target}: only .Arn and a table's .StreamArn are understood"
            ));
        }
        Ok(Json::String(match res["Type"].as_str() {
            Some("AWS::Serverless::Function") => {
                format!("arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}")
            }
            Some("AWS::DynamoDB::Table") => {
                format!("arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
            }
            Some("AWS::IAM::Role") => format!("arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"),
            None if self.implicit_role(id) => {
                format!("arn:{PARTITION}:iam::{ACCOUNT}:role/{name}")
            }
            Some("AWS::KMS::Key") => format!("arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{name}"),
            Some("AWS::Logs::LogGroup") => {
                format!("arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*")
            }
            Some(_) | None => name,
        }))
    }

    fn sub(&self, text: &str, vars: &Map<String, Json>) -> Result<String, StackError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            if let Some(lit) = after.strip_prefix('!') {
                // ${!Literal} stays as ${Literal}.
                out.push_str("${");
                rest = lit;
                continue;
            }
            let end = after
                .find('}')
                .ok_or_else(|| StackError(format!("!Sub {text:?}: unclosed ${{")))?;
            let name = &after[..end];
            let v = if let Some(v) = vars.get(name) {
                v.clone()
            } else if let Some((id, att)) = name.split_once('.') {
                self.get_att(&format!("{id}.{att}"))?
            } else {
                self.reference(name)?
            };
            out.push_str(&json_str(&v));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve(&self, v: &Yaml) -> Result<Json, StackError> {
        Ok(match v {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => Json::String(n.to_string()),
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Sequence(items) => {
                let mut out = Vec::new();
                for i in items {
                    let r = self.resolve(i)?;
                    if !r.is_null() {
                        out.push(r);
                    }
                }
                Json::Array(out)
            }
            Yaml::Mapping(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    let r = self.resolve(v)?;
                    if !r.is_null() {
                        out.insert(yaml_str(k).unwrap_or_default(), r);
                    }
                }
                Json::Object(out)
            }
            Yaml::Tagged(t) => self.intrinsic(&t.tag.to_string(), &t.value)?,
        })
    }

    fn intrinsic(&self, tag: &str, arg: &Yaml) -> Result<Json, StackError> {
        let list = |v: &Yaml| -> Result<Vec<Json>, StackError> {
            match self.resolve(v)? {
                Json::Array(a) => Ok(a),
                other => err(format!("{tag} expects a list, got {other}")),
            }
        };
        match tag {
            "!Ref" => self.reference(arg.as_str().unwrap_or_default()),
            "!GetAtt" => self.get_att(arg.as_str().unwrap_or_default()),
            "!Sub" => match arg {
                Yaml::String(s) => Ok(Json::String(self.sub(s, &Map::new())?)),
                Yaml::Sequence(items) if items.len() == 2 => {
                    let text = items[0].as_str().unwrap_or_default();
                    let vars = match self.resolve(&items[1])? {
                        Json::Object(m) => m,
                        _ => return err("!Sub's second item must be a mapping"),
                    };
                    Ok(Json::String(self.sub(text, &vars)?))
                }
                _ => err("!Sub takes a string or [string, mapping]"),
            },
            "!Join" => {
                // "For the Fn::Join delimiter, you can't use any functions. You must specify a
                // string value" (Fn::Join, Supported functions): CloudFormation refuses the
                // template otherwise, so the rehearsal does too.
                if let Yaml::Sequence(items) = arg {
                    if !matches!(items.first(), Some(Yaml::String(_))) {
                        return err("!Join's delimiter must be a literal string, not a function");
                    }
                }
                let a = list(arg)?;
                let (delim, items) = (json_str(&a[0]), a.get(1).cloned().unwrap_or(Json::Null));
                Ok(Json::String(strings(&items).join(&delim)))
            }
            "!Split" => {
                let a = list(arg)?;
                let delim = json_str(&a[0]);
                let text = json_str(a.get(1).unwrap_or(&Json::Null));
                Ok(Json::Array(
                    text.split(delim.as_str())
                        .map(|s| Json::String(s.to_string()))
                        .collect(),
                ))
            }
            "!Select" => {
                let a = list(arg)?;
                let i: usize = json_str(&a[0]).parse().unwrap_or(0);
                Ok(strings(a.get(1).unwrap_or(&Json::Null))
                    .get(i)
                    .cloned()
                    .map(Json::String)
                    .unwrap_or(Json::Null))
            }
            "!Equals" => {
                let a = list(arg)?;
                Ok(Json::Bool(a.first() == a.get(1)))
            }
            "!Not" => {
                let a = list(arg)?;
                Ok(Json::Bool(
                    !a.first().and_then(Json::as_bool).unwrap_or(false),
                ))
            }
            "!If" => {
                let items = arg
                    .as_sequence()
                    .filter(|s| s.len() == 3)
                    .ok_or_else(|| StackError("!If takes [condition, then, else]".into()))?;
                let cond = items[0].as_str().unwrap_or_default();
                let holds = *self
                    .conditions
                    .get(cond)
                    .ok_or_else(|| StackError(format!("!If: no condition {cond}")))?;
                self.resolve(&items[if holds { 1 } else { 2 }])
            }
            other => err(format!("{other} is not understood by the rehearsal")),
        }
    }

    fn statements(&self, policies: &Yaml) -> Result<Vec<Statement>, StackError> {
        let mut out = Vec::new();
        for p in policies.as_sequence().into_iter().flatten() {
            let doc = if p["PolicyDocument"].is_null() {
                self.resolve(p)?
            } else {
                self.resolve(&p["PolicyDocument"])?
            };
            let Some(list) = doc.get("Statement").and_then(Json::as_array) else {
                return err(format!("a policy without statements: {doc}"));
            };
            for s in list {
                let mut conditions = BTreeMap::new();
                if let Some(c) = s.get("Condition").and_then(Json::as_object) {
                    for (op, keys) in c {
                        let mut m = BTreeMap::new();
                        for (k, v) in keys.as_object().into_iter().flatten() {
                            m.insert(k.clone(), strings(v));
                        }
                        conditions.insert(op.clone(), m);
                    }
                }
                out.push(Statement {
                    effect: s.get("Effect").map(json_str).unwrap_or_default(),
                    actions: s.get("Action").map(strings).unwrap_or_default(),
                    resources: s.get("Resource").map(strings).unwrap_or_default(),
                    conditions,
                    principals: s.pointer("/Principal/AWS").map(strings).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    fn key(&self, id: &str, res: &Yaml) -> Result<Key, StackError> {
        let props = &res["Properties"];
        let policy = Yaml::Sequence(vec![props["KeyPolicy"].clone()]);
        let mut tags = BTreeMap::new();
        if let Json::Array(list) = self.resolve(&props["Tags"])? {
            for t in list {
                tags.insert(
                    t.get("Key").map(json_str).unwrap_or_default(),
                    t.get("Value").map(json_str).unwrap_or_default(),
                );
            }
        }
        Ok(Key {
            logical_id: id.to_string(),
            arn: json_str(&self.get_att(&format!("{id}.Arn"))?),
            policy: self.statements(&policy)?,
            tags,
        })
    }

    fn function(&self, id: &str, res: &Yaml) -> Result<Function, StackError> {
        let props = &res["Properties"];
        let globals = &self.template["Globals"]["Function"];
        let mut environment = BTreeMap::new();
        for vars in [
            &globals["Environment"]["Variables"],
            &props["Environment"]["Variables"],
        ] {
            if let Json::Object(m) = self.resolve(vars)? {
                for (k, v) in m {
                    environment.insert(k, json_str(&v));
                }
            }
        }
        let code = props["CodeUri"].as_str().unwrap_or_default();
        let name = code.strip_prefix("functions/").unwrap_or(code).to_string();
        let function_name = json_str(&self.reference(id)?);
        // The group the function logs to: its own LoggingConfig.LogGroup, else the one Lambda
        // creates by itself.
        let log_group = match self.resolve(&props["LoggingConfig"]["LogGroup"])? {
            Json::Null => format!("/aws/lambda/{function_name}"),
            group => json_str(&group),
        };
        let number = |v: &Yaml, default: u64| -> Result<u64, StackError> {
            Ok(json_str(&self.resolve(v)?).parse().unwrap_or(default))
        };
        Ok(Function {
            logical_id: id.to_string(),
            arn: json_str(&self.get_att(&format!("{id}.Arn"))?),
            function_name,
            name,
            environment,
            role_arn: json_str(&self.get_att(&format!("{id}Role.Arn"))?),
            statements: self.statements(&props["Policies"])?,
            log_level: json_str(&self.resolve(&globals["LoggingConfig"]["ApplicationLogLevel"])?),
            log_group,
            timeout_seconds: if props["Timeout"].is_null() {
                number(&globals["Timeout"], 3)?
            } else {
                number(&props["Timeout"], 3)?
            },
            memory_mb: number(&globals["MemorySize"], 128)?,
        })
    }

    fn machine(&self, id: &str, res: &Yaml, root: &Path) -> Result<Machine, StackError> {
        let props = &res["Properties"];
        let uri = props["DefinitionUri"].as_str().unwrap_or_default();
        let text = std::fs::read_to_string(root.join(uri))
            .map_err(|e| StackError(format!("{uri}: {e}")))?;
        let mut subs = HashMap::new();
        if let Json::Object(m) = self.resolve(&props["DefinitionSubstitutions"])? {
            for (k, v) in m {
                subs.insert(k, json_str(&v));
            }
        }
        let definition = cutover_engine::asl::substitute(&text, &subs)
            .map_err(|e| StackError(format!("{uri}: {e}")))?;
        let arn = json_str(&self.reference(id)?);
        Ok(Machine {
            logical_id: id.to_string(),
            name: arn.rsplit(':').next().unwrap_or_default().to_string(),
            arn,
            definition,
            statements: self.statements(&props["Policies"])?,
        })
    }
}

/// The parameters a rehearsal deploys with: the allowed zone and records of its worlds.
pub fn rehearsal_parameters(zone_id: &str, records: &[&str]) -> HashMap<String, String> {
    let mut p = HashMap::new();
    p.insert("AllowedHostedZoneIds".into(), zone_id.to_string());
    p.insert("AllowedRecordNames".into(), records.join(","));
    // The rehearsal's people: alice (IAM) approves, the release-managers group (JWT) decides.
    p.insert(
        "ApiApprovers".into(),
        "arn:aws:iam::123456789012:user/alice,group:release-managers".into(),
    );
    p.insert(
        "ApiOperators".into(),
        "arn:aws:iam::123456789012:role/ReleaseOperator".into(),
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
    }

    fn load(params: &[(&str, &str)]) -> Stack {
        let mut p = rehearsal_parameters("Z1", &["orders.example.com"]);
        for (k, v) in params {
            p.insert(k.to_string(), v.to_string());
        }
        Stack::load(&template(), "s", &p).unwrap()
    }

    #[test]
    fn the_template_resolves_as_cloudformation_would() {
        let stack = load(&[]);
        let f = stack.function("reconcile-run").unwrap();
        assert_eq!(f.function_name, "cutover-dev-reconcile-run");
        assert_eq!(f.log_group, "/cutover/dev/reconcile-run");
        assert_eq!(
            f.environment
                .get("CUTOVER_STATE_MACHINE_ARN")
                .map(String::as_str),
            Some("arn:aws:states:us-east-1:123456789012:stateMachine:cutover-dev")
        );
        let m = stack.machine("CutoverStateMachine").unwrap();
        assert!(m
            .definition
            .contains(&stack.function("close-run").unwrap().arn));
        assert!(!m.definition.contains("${"), "every substitution resolved");
        // A zone list parameter becomes one ARN per zone.
        let shift = stack.function("shift-traffic").unwrap();
        assert!(shift
            .statements
            .iter()
            .any(|s| s.resources == ["arn:aws:route53:::hostedzone/Z1"]));
    }

    #[test]
    fn a_join_whose_delimiter_is_a_function_is_refused_as_cloudformation_refuses_it() {
        let dir = std::env::temp_dir().join(format!("cutover-join-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = std::fs::read_to_string(template()).unwrap();
        // The form the template once used for its hosted zone ARNs.
        let bad = text.replacen(
            "!Join [\",arn:aws:route53:::hostedzone/\"",
            "!Join [!Sub \",arn:${AWS::Partition}:route53:::hostedzone/\"",
            1,
        );
        assert_ne!(bad, text, "the template joins its zone ARNs");
        let path = dir.join("template.yaml");
        std::fs::write(&path, bad).unwrap();
        let p = rehearsal_parameters("Z1", &["orders.example.com"]);
        let Err(e) = Stack::load(&path, "s", &p) else {
            panic!("a function as a Join delimiter was accepted")
        };
        assert!(format!("{e:?}").contains("delimiter"), "{e:?}");
        let _ = std::fs::remove_dir_all(&dir);
        // Two zones: one ARN each, in the stack's partition.
        let mut p = rehearsal_parameters("Z1", &["orders.example.com"]);
        p.insert("AllowedHostedZoneIds".into(), "Z1,Z2".into());
        let stack = Stack::load(&template(), "s", &p).unwrap();
        assert!(stack
            .function("shift-traffic")
            .unwrap()
            .statements
            .iter()
            .any(|s| s.resources
                == [
                    "arn:aws:route53:::hostedzone/Z1",
                    "arn:aws:route53:::hostedzone/Z2"
                ]));
    }

    #[test]
    fn only_request_approval_seals_and_only_the_approval_api_opens_task_tokens() {
        use super::super::iam::{allowing_statement, Request};
        let stack = load(&[]);
        let key = stack
            .keys
            .iter()
            .find(|k| k.logical_id == "TaskTokenKey")
            .unwrap();
        for f in &stack.functions {
            assert_eq!(
                f.environment.contains_key("TOKEN_KEY_ARN"),
                ["request-approval", "approval-api"].contains(&f.name.as_str()),
                "{}: TOKEN_KEY_ARN",
                f.name
            );
        }
        let req = |action: &str, purpose: &str| {
            let mut context = BTreeMap::new();
            context.insert(
                "kms:EncryptionContext:purpose".to_string(),
                vec![purpose.to_string()],
            );
            for (t, v) in &key.tags {
                context.insert(format!("aws:ResourceTag/{t}"), vec![v.clone()]);
            }
            Request {
                action: action.into(),
                resource: key.arn.clone(),
                context,
            }
        };
        // Both the role and the key's own policy must allow (the key does not delegate its use).
        let may = |f: &Function, r: &Request| {
            let by_key: Vec<Statement> = key
                .policy
                .iter()
                .filter(|s| s.principals.contains(&f.role_arn))
                .cloned()
                .collect();
            allowing_statement(&f.statements, r).is_some()
                && allowing_statement(&by_key, r).is_some()
        };
        for f in &stack.functions {
            for (action, who) in [
                ("kms:Encrypt", "request-approval"),
                ("kms:Decrypt", "approval-api"),
            ] {
                assert_eq!(
                    may(f, &req(action, "cutover-task-token")),
                    f.name == who,
                    "{} {action}",
                    f.name
                );
                assert!(
                    !may(f, &req(action, "other")),
                    "{} {action} without the purpose",
                    f.name
                );
            }
        }
        // The account's administrators manage the key but may not use it.
        let root = format!("arn:aws:iam::{ACCOUNT}:root");
        let admin: Vec<Statement> = key
            .policy
            .iter()
            .filter(|s| s.principals.contains(&root))
            .cloned()
            .collect();
        assert!(allowing_statement(&admin, &req("kms:Decrypt", "cutover-task-token")).is_none());
        assert!(allowing_statement(&admin, &req("kms:ScheduleKeyDeletion", "")).is_some());
    }

    #[test]
    fn url_hooks_may_be_signed_only_for_the_listed_apis() {
        let invoke = |stack: &Stack, f: &str| -> Vec<String> {
            stack
                .function(f)
                .unwrap()
                .statements
                .iter()
                .filter(|s| s.actions.iter().any(|a| a == "execute-api:Invoke"))
                .flat_map(|s| s.resources.clone())
                .collect()
        };
        let none = load(&[]);
        assert!(invoke(&none, "data-cutover").is_empty());
        assert!(invoke(&none, "reconcile-run").is_empty());
        let two = load(&[("HookApiIds", "abc123,def456")]);
        // API ids are unique across AWS; the region and account segments are wildcards because
        // a Fn::Join delimiter cannot carry the stack's own (it must be a literal string).
        let arn = |id: &str, m: &str| format!("arn:aws:execute-api:*:*:{id}/*/{m}/*");
        for f in ["data-cutover", "reconcile-run"] {
            assert_eq!(
                invoke(&two, f),
                [
                    arn("abc123", "POST"),
                    arn("def456", "POST"),
                    arn("abc123", "PUT"),
                    arn("def456", "PUT")
                ],
                "{f}"
            );
        }
    }
}
