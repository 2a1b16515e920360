//! Intrinsic functions (`States.Format`, `States.Array…`, …) for JSONPath payload templates.

use crate::jsonpath::JsonPath;
use base64::Engine as _;
use rand::RngExt;
use serde_json::{Number, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Literal(Value),
    Path(JsonPath),
    Call(Call),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Arg>,
}

const FUNCTIONS: &[&str] = &[
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

/// Parses `States.Name(arg, …)`. Unknown functions are refused here, at load time.
pub fn parse(text: &str) -> Result<Call, String> {
    let chars: Vec<char> = text.trim().chars().collect();
    let mut p = Parser { chars, pos: 0 };
    let call = p.call()?;
    p.skip_ws();
    if p.pos != p.chars.len() {
        return Err(format!("unexpected text after the call in '{text}'"));
    }
    Ok(call)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn skip_ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn call(&mut self) -> Result<Call, String> {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '.' {
                self.pos += 1;
            } else {
                break;
            }
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if !FUNCTIONS.contains(&name.as_str()) {
            return Err(format!("unsupported intrinsic function '{name}'"));
        }
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(format!("expected '(' after {name}"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(Call { name, args });
        }
        loop {
            args.push(self.arg()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Call { name, args });
                }
                _ => return Err(format!("expected ',' or ')' in the arguments of {name}")),
            }
        }
    }
    fn arg(&mut self) -> Result<Arg, String> {
        self.skip_ws();
        match self.peek() {
            Some('\'') => {
                self.pos += 1;
                let mut s = String::new();
                loop {
                    match self.peek() {
                        None => return Err("unterminated string literal".into()),
                        Some('\\') => {
                            let n = self
                                .chars
                                .get(self.pos + 1)
                                .copied()
                                .ok_or("dangling escape")?;
                            s.push(n);
                            self.pos += 2;
                        }
                        Some('\'') => {
                            self.pos += 1;
                            return Ok(Arg::Literal(Value::String(s)));
                        }
                        Some(c) => {
                            s.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            Some('$') => {
                let start = self.pos;
                let mut depth = 0;
                while let Some(c) = self.peek() {
                    match c {
                        '[' | '(' => depth += 1,
                        ']' | ')' if depth > 0 => depth -= 1,
                        ',' | ')' if depth == 0 => break,
                        _ => {}
                    }
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                Ok(Arg::Path(JsonPath::parse(text.trim())?))
            }
            Some('S') => Ok(Arg::Call(self.call()?)),
            _ => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c == ',' || c == ')' {
                        break;
                    }
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                let text = text.trim();
                let v: Value = serde_json::from_str(text)
                    .map_err(|_| format!("unsupported argument '{text}'"))?;
                if v.is_object() || v.is_array() {
                    return Err(format!("unsupported argument '{text}'"));
                }
                Ok(Arg::Literal(v))
            }
        }
    }
}

/// What arguments resolve against.
pub struct Scope<'a> {
    pub input: &'a Value,
    pub context: &'a Value,
}

pub fn eval(call: &Call, scope: &Scope) -> Result<Value, String> {
    let mut args = Vec::with_capacity(call.args.len());
    for a in &call.args {
        args.push(match a {
            Arg::Literal(v) => v.clone(),
            Arg::Call(c) => eval(c, scope)?,
            Arg::Path(p) => {
                let root = if p.context {
                    scope.context
                } else {
                    scope.input
                };
                p.select(root).ok_or_else(|| {
                    format!(
                        "The JsonPath argument for the field '{}' could not be found in the input",
                        p.text
                    )
                })?
            }
        });
    }
    apply(&call.name, args)
}

fn want_args(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("{name} takes {n} arguments, got {}", args.len()));
    }
    Ok(())
}

fn as_int(name: &str, v: &Value) -> Result<i64, String> {
    match v {
        // Fractions round half up (Java's Math.round), as AWS does: 1.5 -> 2, -1.5 -> -1.
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| (f + 0.5).floor() as i64)
            })
            .ok_or_else(|| format!("{name} expects an integer, got {v}")),
        _ => Err(format!("{name} expects an integer, got {v}")),
    }
}

fn as_str<'v>(name: &str, v: &'v Value) -> Result<&'v str, String> {
    v.as_str()
        .ok_or_else(|| format!("{name} expects a string, got {v}"))
}

fn as_array<'v>(name: &str, v: &'v Value) -> Result<&'v Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("{name} expects an array, got {v}"))
}

/// Renders a value the way `States.Format` prints it (Java-style maps and lists).
fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let parts: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{k}={}", format_value(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(format_value).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

fn apply(name: &str, args: Vec<Value>) -> Result<Value, String> {
    match name {
        "States.Format" => {
            let template = as_str(name, args.first().ok_or("States.Format needs a template")?)?;
            let mut out = String::new();
            let mut rest = args[1..].iter();
            let mut chars = template.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else if c == '{' && chars.peek() == Some(&'}') {
                    chars.next();
                    let v = rest
                        .next()
                        .ok_or("States.Format has more placeholders than arguments")?;
                    out.push_str(&format_value(v));
                } else {
                    out.push(c);
                }
            }
            if rest.next().is_some() {
                return Err("States.Format has more arguments than placeholders".into());
            }
            Ok(Value::String(out))
        }
        "States.StringToJson" => {
            want_args(name, &args, 1)?;
            let s = as_str(name, &args[0])?;
            if s.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(s).map_err(|e| format!("States.StringToJson: {e}"))
        }
        "States.JsonToString" => {
            want_args(name, &args, 1)?;
            Ok(Value::String(
                serde_json::to_string(&args[0]).unwrap_or_default(),
            ))
        }
        "States.Array" => Ok(Value::Array(args)),
        "States.ArrayPartition" => {
            want_args(name, &args, 2)?;
            let arr = as_array(name, &args[0])?;
            let size = as_int(name, &args[1])?;
            if size <= 0 {
                return Err("States.ArrayPartition chunk size must be positive".into());
            }
            Ok(Value::Array(
                arr.chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "States.ArrayContains" => {
            want_args(name, &args, 2)?;
            Ok(Value::Bool(
                as_array(name, &args[0])?
                    .iter()
                    .any(|v| json_eq(v, &args[1])),
            ))
        }
        "States.ArrayRange" => {
            want_args(name, &args, 3)?;
            let (s, e, step) = (
                as_int(name, &args[0])?,
                as_int(name, &args[1])?,
                as_int(name, &args[2])?,
            );
            if step == 0 {
                return Err("States.ArrayRange step must not be 0".into());
            }
            let mut out = Vec::new();
            let mut i = s;
            while (step > 0 && i <= e) || (step < 0 && i >= e) {
                out.push(Value::from(i));
                if out.len() > 1000 {
                    return Err("States.ArrayRange may produce at most 1000 items".into());
                }
                i += step;
            }
            Ok(Value::Array(out))
        }
        "States.ArrayGetItem" => {
            want_args(name, &args, 2)?;
            let arr = as_array(name, &args[0])?;
            let i = as_int(name, &args[1])?;
            usize::try_from(i)
                .ok()
                .and_then(|i| arr.get(i).cloned())
                .ok_or_else(|| format!("States.ArrayGetItem index {i} is out of bounds"))
        }
        "States.ArrayLength" => {
            want_args(name, &args, 1)?;
            Ok(Value::from(as_array(name, &args[0])?.len()))
        }
        "States.ArrayUnique" => {
            want_args(name, &args, 1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in as_array(name, &args[0])? {
                if !out.iter().any(|o| json_eq(o, v)) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "States.Base64Encode" => {
            want_args(name, &args, 1)?;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(as_str(name, &args[0])?),
            ))
        }
        "States.Base64Decode" => {
            want_args(name, &args, 1)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(as_str(name, &args[0])?)
                .map_err(|e| format!("States.Base64Decode: {e}"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|e| format!("States.Base64Decode: {e}"))
        }
        "States.Hash" => {
            want_args(name, &args, 2)?;
            let data = match &args[0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let algo = as_str(name, &args[1])?;
            use sha2::Digest;
            let hex = match algo {
                "MD5" => hex(&md5::Md5::digest(data.as_bytes())),
                "SHA-1" => hex(&sha1::Sha1::digest(data.as_bytes())),
                "SHA-256" => hex(&sha2::Sha256::digest(data.as_bytes())),
                "SHA-384" => hex(&sha2::Sha384::digest(data.as_bytes())),
                "SHA-512" => hex(&sha2::Sha512::digest(data.as_bytes())),
                other => {
                    return Err(format!(
                        "States.Hash does not support the algorithm '{other}'"
                    ))
                }
            };
            Ok(Value::String(hex))
        }
        "States.JsonMerge" => {
            want_args(name, &args, 3)?;
            if args[2] != Value::Bool(false) {
                return Err("States.JsonMerge supports only a shallow merge (false)".into());
            }
            let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                return Err("States.JsonMerge expects two objects".into());
            };
            let mut out = a.clone();
            for (k, v) in b {
                out.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(out))
        }
        "States.MathRandom" => {
            if args.len() != 2 && args.len() != 3 {
                return Err("States.MathRandom takes 2 or 3 arguments".into());
            }
            let (lo, hi) = (as_int(name, &args[0])?, as_int(name, &args[1])?);
            if lo >= hi {
                return Err("States.MathRandom start must be below end".into());
            }
            Ok(Value::from(rand::rng().random_range(lo..hi)))
        }
        "States.MathAdd" => {
            want_args(name, &args, 2)?;
            let sum = as_int(name, &args[0])?
                .checked_add(as_int(name, &args[1])?)
                .ok_or("States.MathAdd overflowed")?;
            Ok(Value::Number(Number::from(sum)))
        }
        "States.StringSplit" => {
            want_args(name, &args, 2)?;
            let s = as_str(name, &args[0])?;
            let delims: Vec<char> = as_str(name, &args[1])?.chars().collect();
            Ok(Value::Array(
                s.split(|c| delims.contains(&c))
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ))
        }
        "States.UUID" => {
            want_args(name, &args, 0)?;
            Ok(Value::String(uuid::Uuid::new_v4().to_string()))
        }
        other => Err(format!("unsupported intrinsic function '{other}'")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON equality that compares numbers by value (1 == 1.0).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(expr: &str, input: Value) -> Result<Value, String> {
        let ctx = json!({});
        eval(
            &parse(expr)?,
            &Scope {
                input: &input,
                context: &ctx,
            },
        )
    }

    #[test]
    fn format_and_nesting() {
        assert_eq!(
            run(
                "States.Format('a={} b={}', $.a, $.b)",
                json!({"a": 1, "b": "x"})
            )
            .unwrap(),
            json!("a=1 b=x")
        );
        assert_eq!(
            run(
                "States.MathAdd(States.ArrayLength($.l), -1)",
                json!({"l": [1, 2, 3]})
            )
            .unwrap(),
            json!(2)
        );
        assert_eq!(
            run("States.StringSplit('a,,b', ',')", json!({})).unwrap(),
            json!(["a", "b"])
        );
    }

    #[test]
    fn refuses_unknown_functions_at_parse() {
        assert!(parse("States.Nope(1)").is_err());
        assert!(parse("States.Format('x'").is_err());
    }
}
