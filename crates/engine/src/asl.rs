//! Loading an ASL definition into a checked model. Anything the engine cannot run is refused here.

use crate::choice::{parse_rule, Rule};
use crate::intrinsics::{self, Call};
use crate::jsonpath::{JsonPath, PathStep};
use serde_json::{Map, Value};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{location}: {message}")]
pub struct LoadError {
    pub location: String,
    pub message: String,
}

fn err(location: &str, message: impl Into<String>) -> LoadError {
    LoadError {
        location: location.to_string(),
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
pub struct StateMachine {
    pub start_at: String,
    pub states: HashMap<String, State>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub kind: Kind,
    pub input_path: PathField,
    pub output_path: PathField,
    pub result_path: ResultPath,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub transition: Transition,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    /// Whether any field of the state itself (not of its branches or item processor) names the
    /// context object (`$$`): the engine builds the context only for such states.
    pub uses_context: bool,
}

#[derive(Debug, Clone)]
pub enum Transition {
    Next(String),
    End,
    /// Choice, Succeed and Fail decide for themselves.
    None,
}

/// InputPath / OutputPath: absent means `$`, null means an empty object.
#[derive(Debug, Clone)]
pub enum PathField {
    Whole,
    Empty,
    Path(JsonPath),
}

#[derive(Debug, Clone)]
pub enum ResultPath {
    Replace,
    Discard,
    At(Vec<PathStep>),
}

#[derive(Debug, Clone)]
pub enum NumberOrPath {
    Number(u64),
    Path(JsonPath),
}

#[derive(Debug, Clone)]
pub enum Kind {
    Pass {
        result: Option<Value>,
    },
    Task {
        resource: String,
        timeout: Option<NumberOrPath>,
        heartbeat: Option<NumberOrPath>,
    },
    Choice {
        choices: Vec<(Rule, String)>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Succeed,
    Fail {
        error: Option<StringOrPath>,
        cause: Option<StringOrPath>,
    },
    Parallel {
        branches: Vec<StateMachine>,
    },
    Map {
        items_path: Option<JsonPath>,
        item_selector: Option<Template>,
        processor: Box<StateMachine>,
        max_concurrency: NumberOrPath,
    },
}

#[derive(Debug, Clone)]
pub enum StringOrPath {
    Literal(String),
    Path(JsonPath),
    Intrinsic(Call),
}

#[derive(Debug, Clone)]
pub enum WaitFor {
    Seconds(u64),
    SecondsPath(JsonPath),
    Timestamp(chrono::DateTime<chrono::FixedOffset>),
    TimestampPath(JsonPath),
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub jitter_full: bool,
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    pub result_path: ResultPath,
}

/// A payload template (Parameters, ItemSelector, ResultSelector) with its paths parsed.
#[derive(Debug, Clone)]
pub enum Template {
    Literal(Value),
    Path(JsonPath),
    Intrinsic(Call),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
}

/// Replaces `${Name}` with its substitution; an unknown name is an error, as in SAM.
pub fn substitute(text: &str, subs: &HashMap<String, String>) -> Result<String, LoadError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| err("definition", "unterminated ${…} substitution"))?;
        let name = &after[..end];
        let value = subs.get(name).ok_or_else(|| {
            err(
                "definition",
                format!("no DefinitionSubstitutions value for ${{{name}}}"),
            )
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub fn load(text: &str, subs: &HashMap<String, String>) -> Result<StateMachine, LoadError> {
    let text = substitute(text, subs)?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| err("definition", format!("not valid JSON: {e}")))?;
    load_value(&v)
}

pub fn load_value(v: &Value) -> Result<StateMachine, LoadError> {
    let obj = v
        .as_object()
        .ok_or_else(|| err("definition", "must be a JSON object"))?;
    let sm = machine(obj, "", true)?;
    Ok(sm)
}

fn machine(obj: &Map<String, Value>, loc: &str, top: bool) -> Result<StateMachine, LoadError> {
    let allowed: &[&str] = if top {
        &[
            "StartAt",
            "States",
            "Comment",
            "Version",
            "TimeoutSeconds",
            "QueryLanguage",
        ]
    } else {
        &["StartAt", "States", "Comment", "ProcessorConfig"]
    };
    check_fields(
        obj,
        allowed,
        if loc.is_empty() { "definition" } else { loc },
    )?;
    if let Some(q) = obj.get("QueryLanguage") {
        if q != "JSONPath" {
            return Err(err(
                "definition",
                format!("QueryLanguage {q} is not supported by the local engine (JSONPath only)"),
            ));
        }
    }
    if let Some(pc) = obj.get("ProcessorConfig") {
        let pc = pc
            .as_object()
            .ok_or_else(|| err(loc, "ProcessorConfig must be an object"))?;
        check_fields(
            pc,
            &["Mode", "ExecutionType"],
            &format!("{loc}.ProcessorConfig"),
        )?;
        if let Some(m) = pc.get("Mode") {
            if m != "INLINE" {
                return Err(err(
                    loc,
                    format!("ProcessorConfig.Mode {m} is not supported (INLINE only)"),
                ));
            }
        }
    }
    let start_at = obj
        .get("StartAt")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            err(
                if loc.is_empty() { "definition" } else { loc },
                "StartAt is required",
            )
        })?
        .to_string();
    let states_v = obj
        .get("States")
        .and_then(Value::as_object)
        .ok_or_else(|| err(loc, "States is required"))?;
    let mut states = HashMap::new();
    for (name, sv) in states_v {
        let so = sv
            .as_object()
            .ok_or_else(|| err(name, "a state must be an object"))?;
        states.insert(name.clone(), state(name, so)?);
    }
    if !states.contains_key(&start_at) {
        return Err(err(loc, format!("StartAt '{start_at}' names no state")));
    }
    for s in states.values() {
        let mut targets: Vec<&String> = s.catch.iter().map(|c| &c.next).collect();
        if let Transition::Next(n) = &s.transition {
            targets.push(n);
        }
        if let Kind::Choice { choices, default } = &s.kind {
            targets.extend(choices.iter().map(|(_, n)| n));
            targets.extend(default.iter());
        }
        for t in targets {
            if !states.contains_key(t) {
                return Err(err(
                    &s.name,
                    format!("transition to '{t}', which is not a state here"),
                ));
            }
        }
    }
    let timeout_seconds = match obj.get("TimeoutSeconds") {
        None => None,
        Some(t) => Some(
            t.as_u64()
                .ok_or_else(|| err("definition", "TimeoutSeconds must be a positive integer"))?,
        ),
    };
    Ok(StateMachine {
        start_at,
        states,
        timeout_seconds,
    })
}

fn check_fields(obj: &Map<String, Value>, allowed: &[&str], loc: &str) -> Result<(), LoadError> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(err(
                loc,
                format!("field '{k}' is not supported by the local engine here"),
            ));
        }
    }
    Ok(())
}

const COMMON: &[&str] = &["Type", "Comment"];

fn state(name: &str, o: &Map<String, Value>) -> Result<State, LoadError> {
    let ty = o
        .get("Type")
        .and_then(Value::as_str)
        .ok_or_else(|| err(name, "Type is required"))?;
    let (extra, transitions): (&[&str], bool) = match ty {
        "Pass" => (
            &[
                "InputPath",
                "OutputPath",
                "ResultPath",
                "Parameters",
                "Result",
            ],
            true,
        ),
        "Task" => (
            &[
                "InputPath",
                "OutputPath",
                "ResultPath",
                "Parameters",
                "ResultSelector",
                "Resource",
                "TimeoutSeconds",
                "TimeoutSecondsPath",
                "HeartbeatSeconds",
                "HeartbeatSecondsPath",
                "Retry",
                "Catch",
            ],
            true,
        ),
        "Choice" => (&["Choices", "Default", "InputPath", "OutputPath"], false),
        "Wait" => (
            &[
                "InputPath",
                "OutputPath",
                "Seconds",
                "SecondsPath",
                "Timestamp",
                "TimestampPath",
            ],
            true,
        ),
        "Succeed" => (&["InputPath", "OutputPath"], false),
        "Fail" => (&["Error", "ErrorPath", "Cause", "CausePath"], false),
        "Parallel" => (
            &[
                "InputPath",
                "OutputPath",
                "ResultPath",
                "Parameters",
                "ResultSelector",
                "Branches",
                "Retry",
                "Catch",
            ],
            true,
        ),
        "Map" => (
            &[
                "InputPath",
                "OutputPath",
                "ResultPath",
                "Parameters",
                "ItemSelector",
                "ResultSelector",
                "ItemsPath",
                "Iterator",
                "ItemProcessor",
                "MaxConcurrency",
                "MaxConcurrencyPath",
                "Retry",
                "Catch",
            ],
            true,
        ),
        other => {
            return Err(err(
                name,
                format!("state type '{other}' is not supported by the local engine"),
            ))
        }
    };
    for k in o.keys() {
        let ok = COMMON.contains(&k.as_str())
            || extra.contains(&k.as_str())
            || (transitions && (k == "Next" || k == "End"));
        if !ok {
            return Err(err(
                name,
                format!("field '{k}' is not supported by the local engine for a {ty} state"),
            ));
        }
    }
    let transition = if transitions {
        match (o.get("Next"), o.get("End")) {
            (Some(Value::String(n)), None) => Transition::Next(n.clone()),
            (None, Some(Value::Bool(true))) => Transition::End,
            _ => return Err(err(name, "exactly one of Next or End: true is required")),
        }
    } else {
        Transition::None
    };
    let input_path = path_field(o, "InputPath", name)?;
    let output_path = path_field(o, "OutputPath", name)?;
    let result_path = result_path(o.get("ResultPath"), name)?;
    let parameters = o
        .get("Parameters")
        .map(|p| template(p, &format!("{name}.Parameters")))
        .transpose()?;
    let result_selector = o
        .get("ResultSelector")
        .map(|p| template(p, &format!("{name}.ResultSelector")))
        .transpose()?;
    let retry = match o.get("Retry") {
        None => vec![],
        Some(v) => retriers(v, name)?,
    };
    let catch = match o.get("Catch") {
        None => vec![],
        Some(v) => catchers(v, name)?,
    };
    let kind = match ty {
        "Pass" => Kind::Pass {
            result: o.get("Result").cloned(),
        },
        "Task" => Kind::Task {
            resource: task_resource(o, name)?,
            timeout: number_or_path(o, "TimeoutSeconds", name)?,
            heartbeat: number_or_path(o, "HeartbeatSeconds", name)?,
        },
        "Choice" => {
            let list = o
                .get("Choices")
                .and_then(Value::as_array)
                .ok_or_else(|| err(name, "Choices must be a non-empty array"))?;
            if list.is_empty() {
                return Err(err(name, "Choices must be a non-empty array"));
            }
            let mut choices = Vec::new();
            for (i, c) in list.iter().enumerate() {
                let loc = format!("{name}.Choices[{i}]");
                let co = c
                    .as_object()
                    .ok_or_else(|| err(&loc, "a choice rule must be an object"))?;
                let next = co
                    .get("Next")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(&loc, "Next is required"))?;
                choices.push((
                    parse_rule(co, true).map_err(|m| err(&loc, m))?,
                    next.to_string(),
                ));
            }
            let default = o.get("Default").and_then(Value::as_str).map(str::to_string);
            Kind::Choice { choices, default }
        }
        "Wait" => {
            let present: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
                .into_iter()
                .filter(|k| o.contains_key(*k))
                .collect();
            if present.len() != 1 {
                return Err(err(
                    name,
                    "exactly one of Seconds, SecondsPath, Timestamp, TimestampPath is required",
                ));
            }
            Kind::Wait(match present[0] {
                "Seconds" => WaitFor::Seconds(
                    o["Seconds"]
                        .as_u64()
                        .ok_or_else(|| err(name, "Seconds must be a non-negative integer"))?,
                ),
                "SecondsPath" => WaitFor::SecondsPath(jpath(&o["SecondsPath"], name)?),
                "Timestamp" => WaitFor::Timestamp(
                    o["Timestamp"]
                        .as_str()
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                        .ok_or_else(|| {
                            err(name, "Timestamp must be an ISO-8601 date-time with offset")
                        })?,
                ),
                _ => WaitFor::TimestampPath(jpath(&o["TimestampPath"], name)?),
            })
        }
        "Succeed" => Kind::Succeed,
        "Fail" => Kind::Fail {
            error: string_or_path(o, "Error", name)?,
            cause: string_or_path(o, "Cause", name)?,
        },
        "Parallel" => {
            let list = o
                .get("Branches")
                .and_then(Value::as_array)
                .ok_or_else(|| err(name, "Branches must be an array"))?;
            let mut branches = Vec::new();
            for (i, b) in list.iter().enumerate() {
                let bo = b
                    .as_object()
                    .ok_or_else(|| err(name, "a branch must be an object"))?;
                branches.push(machine(bo, &format!("{name}.Branches[{i}]"), false)?);
            }
            Kind::Parallel { branches }
        }
        "Map" => {
            let proc_v = o
                .get("ItemProcessor")
                .or_else(|| o.get("Iterator"))
                .ok_or_else(|| err(name, "ItemProcessor is required"))?;
            let po = proc_v
                .as_object()
                .ok_or_else(|| err(name, "ItemProcessor must be an object"))?;
            let processor = machine(po, &format!("{name}.ItemProcessor"), false)?;
            let selector = o.get("ItemSelector").or_else(|| o.get("Parameters"));
            let item_selector = selector
                .map(|p| template(p, &format!("{name}.ItemSelector")))
                .transpose()?;
            let max_concurrency =
                match (o.get("MaxConcurrency"), o.get("MaxConcurrencyPath")) {
                    (Some(_), Some(_)) => {
                        return Err(err(
                            name,
                            "MaxConcurrency and MaxConcurrencyPath are exclusive",
                        ))
                    }
                    (Some(v), None) => NumberOrPath::Number(v.as_u64().ok_or_else(|| {
                        err(name, "MaxConcurrency must be a non-negative integer")
                    })?),
                    (None, Some(p)) => NumberOrPath::Path(jpath(p, name)?),
                    (None, None) => NumberOrPath::Number(0),
                };
            let items_path = o.get("ItemsPath").map(|p| jpath(p, name)).transpose()?;
            Kind::Map {
                items_path,
                item_selector,
                processor: Box::new(processor),
                max_concurrency,
            }
        }
        _ => unreachable!("type checked above"),
    };
    // Map's legacy Parameters is its ItemSelector, not a state-input template.
    let parameters = if matches!(kind, Kind::Map { .. }) {
        None
    } else {
        parameters
    };
    let uses_context = o
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "Branches" | "ItemProcessor" | "Iterator"))
        .any(|(_, v)| v.to_string().contains("$$"));
    Ok(State {
        uses_context,
        name: name.to_string(),
        kind,
        input_path,
        output_path,
        result_path,
        parameters,
        result_selector,
        transition,
        retry,
        catch,
    })
}

fn jpath(v: &Value, loc: &str) -> Result<JsonPath, LoadError> {
    let s = v
        .as_str()
        .ok_or_else(|| err(loc, "a path must be a string"))?;
    JsonPath::parse(s).map_err(|m| err(loc, m))
}

fn path_field(o: &Map<String, Value>, key: &str, loc: &str) -> Result<PathField, LoadError> {
    match o.get(key) {
        None => Ok(PathField::Whole),
        Some(Value::Null) => Ok(PathField::Empty),
        Some(v) => Ok(PathField::Path(jpath(v, &format!("{loc}.{key}"))?)),
    }
}

fn result_path(v: Option<&Value>, loc: &str) -> Result<ResultPath, LoadError> {
    match v {
        None => Ok(ResultPath::Replace),
        Some(Value::Null) => Ok(ResultPath::Discard),
        Some(v) => {
            let p = jpath(v, &format!("{loc}.ResultPath"))?;
            if p.context {
                return Err(err(loc, "ResultPath cannot write to the context object"));
            }
            let steps = p.fields().ok_or_else(|| {
                err(
                    loc,
                    "ResultPath must be a reference path (fields and indexes only)",
                )
            })?;
            Ok(if steps.is_empty() {
                ResultPath::Replace
            } else {
                ResultPath::At(steps)
            })
        }
    }
}

fn number_or_path(
    o: &Map<String, Value>,
    key: &str,
    loc: &str,
) -> Result<Option<NumberOrPath>, LoadError> {
    let path_key = format!("{key}Path");
    match (o.get(key), o.get(&path_key)) {
        (Some(_), Some(_)) => Err(err(loc, format!("{key} and {path_key} are exclusive"))),
        (Some(v), None) => Ok(Some(NumberOrPath::Number(
            v.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| err(loc, format!("{key} must be a positive integer")))?,
        ))),
        (None, Some(p)) => Ok(Some(NumberOrPath::Path(jpath(p, loc)?))),
        (None, None) => Ok(None),
    }
}

fn string_or_path(
    o: &Map<String, Value>,
    key: &str,
    loc: &str,
) -> Result<Option<StringOrPath>, LoadError> {
    let path_key = format!("{key}Path");
    match (o.get(key), o.get(&path_key)) {
        (Some(_), Some(_)) => Err(err(loc, format!("{key} and {path_key} are exclusive"))),
        (Some(v), None) => Ok(Some(StringOrPath::Literal(
            v.as_str()
                .ok_or_else(|| err(loc, format!("{key} must be a string")))?
                .into(),
        ))),
        (None, Some(p)) => {
            let s = p
                .as_str()
                .ok_or_else(|| err(loc, format!("{path_key} must be a string")))?;
            if s.starts_with("States.") {
                Ok(Some(StringOrPath::Intrinsic(
                    intrinsics::parse(s).map_err(|m| err(loc, m))?,
                )))
            } else {
                Ok(Some(StringOrPath::Path(
                    JsonPath::parse(s).map_err(|m| err(loc, m))?,
                )))
            }
        }
        (None, None) => Ok(None),
    }
}

pub fn template(v: &Value, loc: &str) -> Result<Template, LoadError> {
    Ok(match v {
        Value::Object(o) => {
            let mut fields = Vec::with_capacity(o.len());
            for (k, val) in o {
                if let Some(key) = k.strip_suffix(".$") {
                    let s = val.as_str().ok_or_else(|| {
                        err(loc, format!("'{k}' must hold a path or intrinsic function"))
                    })?;
                    let t = if s.starts_with("States.") {
                        Template::Intrinsic(
                            intrinsics::parse(s).map_err(|m| err(&format!("{loc}.{k}"), m))?,
                        )
                    } else {
                        Template::Path(
                            JsonPath::parse(s).map_err(|m| err(&format!("{loc}.{k}"), m))?,
                        )
                    };
                    fields.push((key.to_string(), t));
                } else {
                    fields.push((k.clone(), template(val, &format!("{loc}.{k}"))?));
                }
            }
            Template::Object(fields)
        }
        Value::Array(a) => Template::Array(
            a.iter()
                .map(|x| template(x, loc))
                .collect::<Result<_, _>>()?,
        ),
        other => Template::Literal(other.clone()),
    })
}

fn retriers(v: &Value, loc: &str) -> Result<Vec<Retrier>, LoadError> {
    let list = v
        .as_array()
        .ok_or_else(|| err(loc, "Retry must be an array"))?;
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let l = format!("{loc}.Retry[{i}]");
        let ro = r
            .as_object()
            .ok_or_else(|| err(&l, "a retrier must be an object"))?;
        check_fields(
            ro,
            &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ],
            &l,
        )?;
        let num = |k: &str, d: f64| -> Result<f64, LoadError> {
            match ro.get(k) {
                None => Ok(d),
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| err(&l, format!("{k} must be a number"))),
            }
        };
        let jitter_full = match ro.get("JitterStrategy").map(|j| j.as_str()) {
            None | Some(Some("NONE")) => false,
            Some(Some("FULL")) => true,
            _ => return Err(err(&l, "JitterStrategy must be FULL or NONE")),
        };
        let interval_seconds = num("IntervalSeconds", 1.0)?;
        let backoff_rate = num("BackoffRate", 2.0)?;
        if interval_seconds < 1.0 || backoff_rate < 1.0 {
            return Err(err(
                &l,
                "IntervalSeconds and BackoffRate must be at least 1",
            ));
        }
        out.push(Retrier {
            error_equals: error_equals(ro, &l)?,
            interval_seconds,
            max_attempts: num("MaxAttempts", 3.0)? as u32,
            backoff_rate,
            max_delay_seconds: ro
                .get("MaxDelaySeconds")
                .map(|_| num("MaxDelaySeconds", 0.0))
                .transpose()?,
            jitter_full,
        });
    }
    Ok(out)
}

fn catchers(v: &Value, loc: &str) -> Result<Vec<Catcher>, LoadError> {
    let list = v
        .as_array()
        .ok_or_else(|| err(loc, "Catch must be an array"))?;
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let l = format!("{loc}.Catch[{i}]");
        let co = c
            .as_object()
            .ok_or_else(|| err(&l, "a catcher must be an object"))?;
        check_fields(co, &["ErrorEquals", "Next", "ResultPath", "Comment"], &l)?;
        out.push(Catcher {
            error_equals: error_equals(co, &l)?,
            next: co
                .get("Next")
                .and_then(Value::as_str)
                .ok_or_else(|| err(&l, "Next is required"))?
                .to_string(),
            result_path: result_path(co.get("ResultPath"), &l)?,
        });
    }
    Ok(out)
}

fn error_equals(o: &Map<String, Value>, loc: &str) -> Result<Vec<String>, LoadError> {
    let list = o
        .get("ErrorEquals")
        .and_then(Value::as_array)
        .ok_or_else(|| err(loc, "ErrorEquals must be a non-empty array"))?;
    if list.is_empty() {
        return Err(err(loc, "ErrorEquals must be a non-empty array"));
    }
    list.iter()
        .map(|e| {
            e.as_str()
                .map(str::to_string)
                .ok_or_else(|| err(loc, "ErrorEquals entries must be strings"))
        })
        .collect()
}

/// The integrations the engine can run; any other Resource is refused at load.
pub const SUPPORTED_RESOURCES: &[&str] = &[
    "arn:aws:lambda:…:function:…",
    "arn:aws:states:::lambda:invoke",
    "arn:aws:states:::lambda:invoke.waitForTaskToken",
    "arn:aws:states:::states:startExecution.sync:2",
    "arn:aws:states:::states:startExecution",
];

fn task_resource(o: &Map<String, Value>, name: &str) -> Result<String, LoadError> {
    let r = o
        .get("Resource")
        .and_then(Value::as_str)
        .ok_or_else(|| err(name, "Resource is required"))?;
    let lambda_arn = r.starts_with("arn:aws:lambda:") && r.contains(":function:");
    if lambda_arn || SUPPORTED_RESOURCES[1..].contains(&r) {
        Ok(r.to_string())
    } else {
        Err(err(
            name,
            format!(
                "Resource '{r}' is not supported by the local engine (supported: {})",
                SUPPORTED_RESOURCES.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a state whose own fields name `$$` gets the context object built; a Map's item
    /// processor is its own states, each marked for itself.
    #[test]
    fn marks_the_states_that_read_the_context_object() {
        let m = load_value(&serde_json::json!({
            "StartAt": "Named",
            "States": {
                "Named": {"Type": "Pass", "Parameters": {"run.$": "$$.Execution.Name"}, "Next": "Wait"},
                "Wait": {"Type": "Wait", "Seconds": 5, "Next": "Choose"},
                "Choose": {"Type": "Choice", "Choices": [{"Variable": "$$.State.Name", "StringEquals": "x", "Next": "Each"}], "Default": "Each"},
                "Each": {"Type": "Map", "ItemsPath": "$.items", "End": true,
                    "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "Parameters": {"i.$": "$$.Map.Item.Index"}, "End": true}}}}
            }
        }))
        .expect("loads");
        let uses = |n: &str| m.states[n].uses_context;
        assert!(uses("Named"));
        assert!(!uses("Wait"));
        assert!(uses("Choose"));
        assert!(!uses("Each"), "only its item processor reads $$");
    }
}
