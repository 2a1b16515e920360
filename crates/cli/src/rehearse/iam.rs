//! IAM policy evaluation for what the template's roles use: identity-based Allow statements
//! (the template writes no Deny), actions and resources with `*` and `?` wildcards, and the
//! condition operators the template sets. A request is allowed when some Allow statement
//! matches its action, one of its resources and all of its conditions
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html);
//! an operator this evaluator does not know denies, so an unknown construct never passes.

use super::stack::Statement;
use std::collections::BTreeMap;

/// What one AWS request asks of IAM.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    /// `service:Action`, e.g. `dynamodb:Query`.
    pub action: String,
    /// The resource ARN (or `*` for actions without resource-level permissions).
    pub resource: String,
    /// Condition keys the request carries (multi-valued keys as several values).
    pub context: BTreeMap<String, Vec<String>>,
}

/// `*` matches any run of characters, `?` any one (IAM's wildcards, in actions and ARNs).
pub fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            pattern.to_ascii_lowercase().chars().collect(),
            text.to_ascii_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn condition_holds(op: &str, key: &str, accepted: &[String], req: &Request) -> Option<bool> {
    let values = req.context.get(key);
    let (set_op, base) = match op.split_once(':') {
        Some((set, base)) => (Some(set), base),
        None => (None, op),
    };
    let (base, if_exists) = match base.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (base, false),
    };
    let matches = |v: &str| -> Option<bool> {
        Some(match base {
            "StringEquals" | "ArnEquals" => accepted.iter().any(|a| a == v),
            "StringEqualsIgnoreCase" => accepted.iter().any(|a| a.eq_ignore_ascii_case(v)),
            "StringLike" | "ArnLike" => accepted.iter().any(|a| glob(a, v, false)),
            "StringNotEquals" => !accepted.iter().any(|a| a == v),
            "Bool" => accepted.iter().any(|a| a.eq_ignore_ascii_case(v)),
            _ => return None,
        })
    };
    match (set_op, values) {
        // ForAllValues holds when every value matches, and also when the key is absent or empty
        // (IAM's documented behaviour for set operators).
        (Some("ForAllValues"), None) => Some(true),
        (Some("ForAllValues"), Some(vs)) => {
            let mut all = true;
            for v in vs {
                all &= matches(v)?;
            }
            Some(all)
        }
        (Some("ForAnyValue"), None) => Some(false),
        (Some("ForAnyValue"), Some(vs)) => {
            let mut any = false;
            for v in vs {
                any |= matches(v)?;
            }
            Some(any)
        }
        (Some(_), _) => None,
        (None, None) => Some(if_exists),
        (None, Some(vs)) => {
            // A single-valued operator on a key with one value.
            let mut any = false;
            for v in vs {
                any |= matches(v)?;
            }
            Some(any)
        }
    }
}

/// The first Allow statement that grants `req`, by index; None when the request is denied.
pub fn allowing_statement(statements: &[Statement], req: &Request) -> Option<usize> {
    statements.iter().position(|s| {
        s.effect == "Allow"
            && s.actions.iter().any(|a| glob(a, &req.action, true))
            && s.resources.iter().any(|r| glob(r, &req.resource, false))
            && s.conditions.iter().all(|(op, keys)| {
                keys.iter()
                    .all(|(k, accepted)| condition_holds(op, k, accepted, req) == Some(true))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(actions: &[&str], resources: &[&str], cond: &[(&str, &str, &[&str])]) -> Statement {
        let mut conditions: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (op, k, v) in cond {
            conditions
                .entry(op.to_string())
                .or_default()
                .insert(k.to_string(), v.iter().map(|s| s.to_string()).collect());
        }
        Statement {
            principals: vec![],
            effect: "Allow".into(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            conditions,
        }
    }

    fn req(action: &str, resource: &str, ctx: &[(&str, &[&str])]) -> Request {
        Request {
            action: action.into(),
            resource: resource.into(),
            context: ctx
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    #[test]
    fn actions_and_resources_match_with_wildcards() {
        let s = [st(
            &["dynamodb:GetItem", "dynamodb:PutItem"],
            &["arn:aws:dynamodb:us-east-1:123456789012:table/runs"],
            &[],
        )];
        let table = "arn:aws:dynamodb:us-east-1:123456789012:table/runs";
        assert_eq!(
            allowing_statement(&s, &req("dynamodb:GetItem", table, &[])),
            Some(0)
        );
        assert_eq!(
            allowing_statement(&s, &req("DynamoDB:getitem", table, &[])),
            Some(0)
        );
        assert_eq!(
            allowing_statement(&s, &req("dynamodb:Query", table, &[])),
            None
        );
        assert_eq!(
            allowing_statement(
                &s,
                &req(
                    "dynamodb:GetItem",
                    "arn:aws:dynamodb:us-east-1:123456789012:table/other",
                    &[]
                )
            ),
            None
        );
        let s = [st(
            &["dms:Describe*"],
            &["arn:aws:dms:*:123456789012:task:*"],
            &[],
        )];
        assert!(allowing_statement(
            &s,
            &req(
                "dms:DescribeTableStatistics",
                "arn:aws:dms:us-east-1:123456789012:task:X",
                &[]
            )
        )
        .is_some());
        assert!(allowing_statement(
            &s,
            &req(
                "dms:StartReplicationTask",
                "arn:aws:dms:us-east-1:123456789012:task:X",
                &[]
            )
        )
        .is_none());
        assert!(glob("a?c", "abc", false) && !glob("a?c", "abbc", false) && glob("*", "", false));
    }

    #[test]
    fn conditions_hold_as_iam_evaluates_them() {
        let tagged = [st(
            &["dms:StartReplicationTask"],
            &["*"],
            &[("StringEquals", "aws:ResourceTag/cutover", &["allowed"])],
        )];
        let a = "dms:StartReplicationTask";
        assert!(allowing_statement(
            &tagged,
            &req(a, "t", &[("aws:ResourceTag/cutover", &["allowed"])])
        )
        .is_some());
        assert!(allowing_statement(
            &tagged,
            &req(a, "t", &[("aws:ResourceTag/cutover", &["no"])])
        )
        .is_none());
        assert!(
            allowing_statement(&tagged, &req(a, "t", &[])).is_none(),
            "an untagged task is refused"
        );
        let records = [st(
            &["route53:ChangeResourceRecordSets"],
            &["*"],
            &[(
                "ForAllValues:StringEquals",
                "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                &["orders.example.com"],
            )],
        )];
        let c = "route53:ChangeResourceRecordSets";
        let k = "route53:ChangeResourceRecordSetsNormalizedRecordNames";
        assert!(
            allowing_statement(&records, &req(c, "z", &[(k, &["orders.example.com"])])).is_some()
        );
        assert!(allowing_statement(
            &records,
            &req(c, "z", &[(k, &["orders.example.com", "pay.example.com"])])
        )
        .is_none());
        let unknown = [st(
            &["s3:GetObject"],
            &["*"],
            &[("NumericLessThan", "s3:max-keys", &["10"])],
        )];
        assert!(
            allowing_statement(
                &unknown,
                &req("s3:GetObject", "o", &[("s3:max-keys", &["1"])])
            )
            .is_none(),
            "an unknown operator denies"
        );
    }
}
