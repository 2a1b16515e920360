//! JSONPath as Step Functions reads it: reference paths, wildcards, slices and simple filters.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Index(i64),
    Wildcard,
    Slice(Option<i64>, Option<i64>),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    field: Vec<String>,
    op: String,
    literal: Value,
}

/// A parsed path. `context` is true for `$$` paths, which read the context object.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    pub text: String,
    pub context: bool,
    segments: Vec<Segment>,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (context, rest) = if let Some(r) = text.strip_prefix("$$") {
            (true, r)
        } else if let Some(r) = text.strip_prefix('$') {
            (false, r)
        } else {
            return Err(format!("path '{text}' must start with '$'"));
        };
        let chars: Vec<char> = rest.chars().collect();
        let mut i = 0;
        let mut segments = Vec::new();
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    if i < chars.len() && chars[i] == '*' {
                        segments.push(Segment::Wildcard);
                        i += 1;
                        continue;
                    }
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    if start == i {
                        return Err(format!("path '{text}' has an empty field name"));
                    }
                    segments.push(Segment::Field(chars[start..i].iter().collect()));
                }
                '[' => {
                    let close = find_bracket_end(&chars, i)
                        .ok_or_else(|| format!("path '{text}' has an unclosed '['"))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    segments.push(
                        parse_bracket(inner.trim()).map_err(|e| format!("path '{text}': {e}"))?,
                    );
                    i = close + 1;
                }
                c => return Err(format!("path '{text}' has an unexpected character '{c}'")),
            }
        }
        Ok(JsonPath {
            text: text.to_string(),
            context,
            segments,
        })
    }

    /// True when the path names at most one value (no wildcard, slice or filter).
    pub fn is_definite(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Field(_) | Segment::Index(_)))
    }

    /// Only fields and indexes, as ResultPath requires.
    pub fn fields(&self) -> Option<Vec<PathStep>> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Field(f) => Some(PathStep::Field(f.clone())),
                Segment::Index(i) => Some(PathStep::Index(*i)),
                _ => None,
            })
            .collect()
    }

    /// Normalized form used in AWS error messages: `$['a']['b'][0]`.
    pub fn normalized(&self) -> String {
        let mut s = String::from("$");
        for seg in &self.segments {
            match seg {
                Segment::Field(f) => s.push_str(&format!("['{f}']")),
                Segment::Index(i) => s.push_str(&format!("[{i}]")),
                Segment::Wildcard => s.push_str("[*]"),
                Segment::Slice(a, b) => s.push_str(&format!(
                    "[{}:{}]",
                    a.map(|v| v.to_string()).unwrap_or_default(),
                    b.map(|v| v.to_string()).unwrap_or_default()
                )),
                Segment::Filter(_) => s.push_str("[?]"),
            }
        }
        s
    }

    /// Evaluates the path. A definite path gives the value or None; an indefinite one
    /// always gives an array of its matches.
    pub fn select(&self, root: &Value) -> Option<Value> {
        let mut current: Vec<&Value> = vec![root];
        for seg in &self.segments {
            let mut next = Vec::new();
            for v in current {
                match seg {
                    Segment::Field(f) => {
                        if let Some(x) = v.as_object().and_then(|o| o.get(f)) {
                            next.push(x);
                        }
                    }
                    Segment::Index(i) => {
                        if let Some(a) = v.as_array() {
                            let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                            if idx >= 0 {
                                if let Some(x) = a.get(idx as usize) {
                                    next.push(x);
                                }
                            }
                        }
                    }
                    Segment::Wildcard => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(o) => next.extend(o.values()),
                        _ => {}
                    },
                    Segment::Slice(a, b) => {
                        if let Some(arr) = v.as_array() {
                            let len = arr.len() as i64;
                            let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                            let s = a.map(norm).unwrap_or(0);
                            let e = b.map(norm).unwrap_or(len);
                            if s < e {
                                next.extend(arr[s as usize..e as usize].iter());
                            }
                        }
                    }
                    Segment::Filter(f) => {
                        if let Some(arr) = v.as_array() {
                            next.extend(arr.iter().filter(|item| f.matches(item)));
                        }
                    }
                }
            }
            current = next;
        }
        if self.is_definite() {
            current.first().map(|v| (*v).clone())
        } else {
            Some(Value::Array(current.into_iter().cloned().collect()))
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Field(String),
    Index(i64),
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        let mut v = item;
        for f in &self.field {
            match v.get(f) {
                Some(x) => v = x,
                None => return false,
            }
        }
        let ord = match (v, &self.literal) {
            (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (a, b) if self.op == "==" || self.op == "!=" => {
                return (a == b) == (self.op == "==");
            }
            _ => None,
        };
        let Some(ord) = ord else { return false };
        use std::cmp::Ordering::*;
        match self.op.as_str() {
            "==" => ord == Equal,
            "!=" => ord != Equal,
            "<" => ord == Less,
            "<=" => ord != Greater,
            ">" => ord == Greater,
            ">=" => ord != Less,
            _ => false,
        }
    }
}

fn find_bracket_end(chars: &[char], open: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut depth = 0;
    let mut i = open;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) => {
                if c == '\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

fn parse_bracket(inner: &str) -> Result<Segment, String> {
    if inner == "*" {
        return Ok(Segment::Wildcard);
    }
    if let Some(q) = inner.chars().next().filter(|c| *c == '\'' || *c == '"') {
        if inner.len() < 2 || !inner.ends_with(q) {
            return Err(format!("bad quoted name [{inner}]"));
        }
        let body = &inner[1..inner.len() - 1];
        let mut out = String::new();
        let mut chars = body.chars();
        // A backslash escapes only the quote character; anything else is taken literally.
        while let Some(c) = chars.next() {
            if c == '\\' && chars.clone().next() == Some(q) {
                out.push(q);
                chars.next();
            } else {
                out.push(c);
            }
        }
        return Ok(Segment::Field(out));
    }
    if let Some(f) = inner.strip_prefix("?(").and_then(|s| s.strip_suffix(')')) {
        return parse_filter(f.trim());
    }
    if let Some((a, b)) = inner.split_once(':') {
        let p = |s: &str| -> Result<Option<i64>, String> {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse()
                    .map(Some)
                    .map_err(|_| format!("bad slice bound '{s}'"))
            }
        };
        return Ok(Segment::Slice(p(a)?, p(b)?));
    }
    inner
        .parse::<i64>()
        .map(Segment::Index)
        .map_err(|_| format!("unsupported selector [{inner}]"))
}

fn parse_filter(f: &str) -> Result<Segment, String> {
    for op in ["==", "!=", "<=", ">=", "<", ">"] {
        if let Some((lhs, rhs)) = f.split_once(op) {
            let lhs = lhs.trim();
            let path = lhs
                .strip_prefix("@.")
                .ok_or_else(|| format!("filter '{f}' must compare @.field"))?;
            let literal = parse_literal(rhs.trim())?;
            return Ok(Segment::Filter(Filter {
                field: path.split('.').map(str::to_string).collect(),
                op: op.to_string(),
                literal,
            }));
        }
    }
    Err(format!("unsupported filter '{f}'"))
}

fn parse_literal(s: &str) -> Result<Value, String> {
    if let Some(body) = s.strip_prefix('\'').and_then(|b| b.strip_suffix('\'')) {
        return Ok(Value::String(body.to_string()));
    }
    serde_json::from_str(s).map_err(|_| format!("bad filter literal '{s}'"))
}

/// Writes `value` at `steps` inside a copy of `target`, creating objects on the way.
/// Fails when a step goes through something that is not an object.
pub fn set_path(target: &Value, steps: &[PathStep], value: Value) -> Result<Value, String> {
    if steps.is_empty() {
        return Ok(value);
    }
    let mut root = target.clone();
    let mut cur = &mut root;
    for (n, step) in steps.iter().enumerate() {
        let last = n + 1 == steps.len();
        match step {
            PathStep::Field(f) => {
                if cur.is_null() && n > 0 {
                    *cur = Value::Object(Default::default());
                }
                let obj = cur
                    .as_object_mut()
                    .ok_or_else(|| format!("cannot set field '{f}' on a non-object"))?;
                if last {
                    obj.insert(f.clone(), value);
                    return Ok(root);
                }
                cur = obj
                    .entry(f.clone())
                    .or_insert_with(|| Value::Object(Default::default()));
            }
            PathStep::Index(i) => {
                let arr = cur
                    .as_array_mut()
                    .ok_or_else(|| format!("cannot set index {i} on a non-array"))?;
                let idx = usize::try_from(*i).map_err(|_| format!("negative index {i}"))?;
                let slot = arr
                    .get_mut(idx)
                    .ok_or_else(|| format!("index {i} is out of range"))?;
                if last {
                    *slot = value;
                    return Ok(root);
                }
                cur = slot;
            }
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definite_and_indefinite_paths() {
        let doc = json!({"a": {"b": [1, 2, 3]}, "users": [{"s": 0}, {"s": 1}]});
        assert_eq!(
            JsonPath::parse("$.a.b[1]").unwrap().select(&doc),
            Some(json!(2))
        );
        assert_eq!(
            JsonPath::parse("$.a.b[1:]").unwrap().select(&doc),
            Some(json!([2, 3]))
        );
        assert_eq!(
            JsonPath::parse("$.a.b[:1]").unwrap().select(&doc),
            Some(json!([1]))
        );
        assert_eq!(
            JsonPath::parse("$['a']['b'][*]").unwrap().select(&doc),
            Some(json!([1, 2, 3]))
        );
        assert_eq!(
            JsonPath::parse("$.users[?(@.s == 0)]")
                .unwrap()
                .select(&doc),
            Some(json!([{"s": 0}]))
        );
        assert_eq!(JsonPath::parse("$.missing").unwrap().select(&doc), None);
        assert_eq!(
            JsonPath::parse("$.missing").unwrap().normalized(),
            "$['missing']"
        );
    }

    #[test]
    fn set_path_creates_objects_and_refuses_scalars() {
        let doc = json!({"a": 1});
        let p = JsonPath::parse("$.x.y").unwrap().fields().unwrap();
        assert_eq!(
            set_path(&doc, &p, json!(true)).unwrap(),
            json!({"a": 1, "x": {"y": true}})
        );
        let p = JsonPath::parse("$.a.y").unwrap().fields().unwrap();
        assert!(set_path(&doc, &p, json!(true)).is_err());
    }

    #[test]
    fn rejects_malformed_paths() {
        assert!(JsonPath::parse("a.b").is_err());
        assert!(JsonPath::parse("$.a[").is_err());
        assert!(JsonPath::parse("$.a[x]").is_err());
    }
}
