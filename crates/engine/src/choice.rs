//! Choice rules: comparison operators, And/Or/Not, Is* tests and the `…Path` variants.

use crate::jsonpath::JsonPath;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test {
        variable: JsonPath,
        op: Op,
        operand: Operand,
    },
}

#[derive(Debug, Clone)]
pub enum Operand {
    Value(Value),
    Path(JsonPath),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    String,
    Numeric,
    Timestamp,
    Boolean,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Compare(Kind, Cmp),
    StringMatches,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

fn op_from_name(name: &str) -> Option<(Op, bool)> {
    let (base, path) = match name.strip_suffix("Path") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let kinds = [
        ("String", Kind::String),
        ("Numeric", Kind::Numeric),
        ("Timestamp", Kind::Timestamp),
        ("Boolean", Kind::Boolean),
    ];
    let cmps = [
        ("Equals", Cmp::Eq),
        ("LessThanEquals", Cmp::Le),
        ("GreaterThanEquals", Cmp::Ge),
        ("LessThan", Cmp::Lt),
        ("GreaterThan", Cmp::Gt),
    ];
    for (kp, k) in kinds {
        if let Some(rest) = base.strip_prefix(kp) {
            for (cp, c) in cmps {
                if rest == cp && (k != Kind::Boolean || c == Cmp::Eq) {
                    return Some((Op::Compare(k, c), path));
                }
            }
        }
    }
    if path {
        return None;
    }
    Some((
        match name {
            "StringMatches" => Op::StringMatches,
            "IsNull" => Op::IsNull,
            "IsPresent" => Op::IsPresent,
            "IsNumeric" => Op::IsNumeric,
            "IsString" => Op::IsString,
            "IsBoolean" => Op::IsBoolean,
            "IsTimestamp" => Op::IsTimestamp,
            _ => return None,
        },
        false,
    ))
}

/// Parses one rule. `top` rules carry Next (checked by the caller); nested ones must not.
pub fn parse_rule(o: &Map<String, Value>, top: bool) -> Result<Rule, String> {
    let mut ops = Vec::new();
    let mut variable = None;
    for (k, v) in o {
        match k.as_str() {
            "Next" if top => {}
            "Comment" => {}
            "Variable" => {
                variable = Some(JsonPath::parse(
                    v.as_str().ok_or("Variable must be a string")?,
                )?);
            }
            "And" | "Or" => {
                let list = v
                    .as_array()
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| format!("{k} must be a non-empty array"))?;
                let rules = list
                    .iter()
                    .map(|r| {
                        parse_rule(
                            r.as_object().ok_or("a nested rule must be an object")?,
                            false,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                ops.push(if k == "And" {
                    Rule::And(rules)
                } else {
                    Rule::Or(rules)
                });
            }
            "Not" => {
                let inner = v.as_object().ok_or("Not must hold one rule object")?;
                ops.push(Rule::Not(Box::new(parse_rule(inner, false)?)));
            }
            name => {
                let (op, path) = op_from_name(name)
                    .ok_or_else(|| format!("unsupported choice field '{name}'"))?;
                let operand = if path {
                    Operand::Path(JsonPath::parse(
                        v.as_str().ok_or_else(|| format!("{name} must be a path"))?,
                    )?)
                } else {
                    check_literal(op, v).map_err(|m| format!("{name}: {m}"))?;
                    Operand::Value(v.clone())
                };
                // The variable is filled in below once every field has been read.
                ops.push(Rule::Test {
                    variable: JsonPath::parse("$")?,
                    op,
                    operand,
                });
            }
        }
    }
    if ops.len() != 1 {
        return Err("a choice rule needs exactly one operator".into());
    }
    let rule = ops.pop().expect("one operator");
    match rule {
        Rule::Test { op, operand, .. } => {
            let variable = variable.ok_or("a comparison needs a Variable")?;
            Ok(Rule::Test {
                variable,
                op,
                operand,
            })
        }
        other => {
            if variable.is_some() {
                return Err("And/Or/Not do not take a Variable".into());
            }
            Ok(other)
        }
    }
}

fn check_literal(op: Op, v: &Value) -> Result<(), String> {
    let ok = match op {
        Op::Compare(Kind::String, _) | Op::StringMatches => v.is_string(),
        Op::Compare(Kind::Numeric, _) => v.is_number(),
        Op::Compare(Kind::Boolean, _) => v.is_boolean(),
        Op::Compare(Kind::Timestamp, _) => v.as_str().and_then(parse_timestamp).is_some(),
        _ => v.is_boolean(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("operand {v} has the wrong type"))
    }
}

pub fn parse_timestamp(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    // AWS requires the 'T' separator and an explicit offset or Z.
    if !s.contains('T') {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(s).ok()
}

/// Evaluates a rule. A missing Variable (other than for IsPresent) is a runtime error.
pub fn eval(rule: &Rule, input: &Value, context: &Value) -> Result<bool, String> {
    match rule {
        Rule::And(rs) => {
            for r in rs {
                if !eval(r, input, context)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::Or(rs) => {
            for r in rs {
                if eval(r, input, context)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Rule::Not(r) => Ok(!eval(r, input, context)?),
        Rule::Test {
            variable,
            op,
            operand,
        } => {
            let root = if variable.context { context } else { input };
            let value = variable.select(root);
            let want = match operand {
                Operand::Value(v) => v.clone(),
                Operand::Path(p) => {
                    let r = if p.context { context } else { input };
                    p.select(r).ok_or_else(|| format!("Invalid path '{}': The choice state's condition path references an undefined value.", p.text))?
                }
            };
            if *op == Op::IsPresent {
                return Ok(value.is_some() == want.as_bool().unwrap_or(false));
            }
            let value = value.ok_or_else(|| {
                format!("Invalid path '{}': The choice state's condition path references an undefined value.", variable.text)
            })?;
            let flag = want.as_bool().unwrap_or(false);
            Ok(match op {
                Op::IsNull => value.is_null() == flag,
                Op::IsNumeric => value.is_number() == flag,
                Op::IsString => value.is_string() == flag,
                Op::IsBoolean => value.is_boolean() == flag,
                Op::IsTimestamp => value.as_str().and_then(parse_timestamp).is_some() == flag,
                Op::IsPresent => unreachable!("handled above"),
                Op::StringMatches => match (value.as_str(), want.as_str()) {
                    (Some(s), Some(p)) => wildcard_match(p, s),
                    _ => false,
                },
                Op::Compare(kind, cmp) => compare(*kind, *cmp, &value, &want),
            })
        }
    }
}

fn compare(kind: Kind, cmp: Cmp, a: &Value, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match kind {
        Kind::String => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => Some(x.cmp(y)),
            _ => None,
        },
        Kind::Numeric => match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
            _ => None,
        },
        Kind::Boolean => match (a.as_bool(), b.as_bool()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => None,
        },
        Kind::Timestamp => match (
            a.as_str().and_then(parse_timestamp),
            b.as_str().and_then(parse_timestamp),
        ) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => None,
        },
    };
    let Some(ord) = ord else { return false };
    match cmp {
        Cmp::Eq => ord == Ordering::Equal,
        Cmp::Lt => ord == Ordering::Less,
        Cmp::Gt => ord == Ordering::Greater,
        Cmp::Le => ord != Ordering::Greater,
        Cmp::Ge => ord != Ordering::Less,
    }
}

/// `*` matches any run of characters; `\*` is a literal star.
fn wildcard_match(pattern: &str, s: &str) -> bool {
    let mut parts: Vec<(bool, char)> = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                parts.push((false, n));
            }
        } else {
            parts.push((c == '*', c));
        }
    }
    let text: Vec<char> = s.chars().collect();
    fn go(p: &[(bool, char)], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some((true, _)) => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some((false, c)) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&parts, &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Rule {
        parse_rule(v.as_object().unwrap(), true).unwrap()
    }

    #[test]
    fn operators_and_composites() {
        let input = json!({"n": 5, "s": "abc", "t": "2026-01-01T00:00:00Z", "b": true});
        let ctx = json!({});
        assert!(eval(
            &rule(json!({"Variable": "$.n", "NumericGreaterThan": 4, "Next": "x"})),
            &input,
            &ctx
        )
        .unwrap());
        assert!(!eval(
            &rule(json!({"Variable": "$.s", "NumericEquals": 5, "Next": "x"})),
            &input,
            &ctx
        )
        .unwrap());
        assert!(eval(
            &rule(json!({"Variable": "$.s", "StringMatches": "a*", "Next": "x"})),
            &input,
            &ctx
        )
        .unwrap());
        assert!(eval(
            &rule(json!({"And": [{"Variable": "$.b", "BooleanEquals": true}, {"Not": {"Variable": "$.x", "IsPresent": true}}], "Next": "x"})),
            &input,
            &ctx
        )
        .unwrap());
        assert!(eval(
            &rule(
                json!({"Variable": "$.t", "TimestampLessThan": "2026-01-01T00:00:01Z", "Next": "x"})
            ),
            &input,
            &ctx
        )
        .unwrap());
        assert!(eval(
            &rule(json!({"Variable": "$.n", "NumericEqualsPath": "$.n", "Next": "x"})),
            &input,
            &ctx
        )
        .unwrap());
        assert!(eval(
            &rule(json!({"Variable": "$.missing", "NumericEquals": 1, "Next": "x"})),
            &input,
            &ctx
        )
        .is_err());
    }

    #[test]
    fn refuses_bad_rules() {
        assert!(parse_rule(
            json!({"Variable": "$.a", "Next": "x"}).as_object().unwrap(),
            true
        )
        .is_err());
        assert!(parse_rule(
            json!({"Variable": "$.a", "NumericEquals": "1", "Next": "x"})
                .as_object()
                .unwrap(),
            true
        )
        .is_err());
        assert!(parse_rule(
            json!({"Variable": "$.a", "Frobnicate": 1, "Next": "x"})
                .as_object()
                .unwrap(),
            true
        )
        .is_err());
    }
}
