//! Credentials of probes and hooks come from Secrets Manager or Parameter Store references and
//! never leave: not into the run table, the execution input, the report, a progress line or the
//! HTML page (docs/security.md, "Secrets in what the suite writes").

mod common;
use common::{edit, happened, run, text};
use cutover_core::plan::Plan;

const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/probe-AbCdEf";
const PARAM: &str = "arn:aws:ssm:us-east-1:123456789012:parameter/orders/hook-key";
const PROBE_TOKEN: &str = "pr0be-t0ken-5ecret";
const HOOK_KEY: &str = "h00k-k3y-5ecret";

/// The happy-path plan whose probe sends `Authorization: Bearer <token>` read from a secret.
fn probe_plan() -> String {
    edit(
        text("dms-happy-path", "plan.yaml"),
        &[(
            r#"http:   [{url: "https://green.example.com/health", expectStatus: 200}]"#,
            &format!(
                r#"http:   [{{url: "https://green.example.com/health", expectStatus: 200, headers: {{Authorization: {{secretArn: "{SECRET}", jsonKey: token, prefix: "Bearer "}}}}}}]"#
            ),
        )],
    )
}

/// The world whose health endpoint answers 401 without that header, holding `secret` under the
/// secret's ARN (none when None).
fn probe_world(secret: Option<&str>) -> String {
    let mut w = text("dms-happy-path", "world.yaml")
        + &format!(
            "requireHeaders: {{\"https://green.example.com/health\": {{Authorization: \"Bearer {PROBE_TOKEN}\"}}}}\n"
        );
    if let Some(v) = secret {
        w += &format!("secrets: {{\"{SECRET}\": '{v}'}}\n");
    }
    w
}

/// Every text the run left behind: the report (JSON and HTML), the run table, the execution's
/// history (every state's input and output) and its output.
fn everything(r: &cutover_cli::local::LocalRun) -> String {
    let report = serde_json::to_value(&r.report).unwrap();
    let html = cutover_cli::html::render(&report);
    let exec = serde_json::to_string(&r.execution.history).unwrap()
        + &serde_json::to_string(&r.execution.output).unwrap();
    format!("{report}\n{html}\n{}\n{exec}", r.store.dump())
}

#[test]
fn a_probe_sends_its_credential_from_a_secret_and_it_never_leaves() {
    let r = run(
        &probe_plan(),
        &probe_world(Some(&format!(r#"{{"token":"{PROBE_TOKEN}"}}"#))),
        false,
    );
    assert_eq!(r.report.outcome, "completed", "{:?}", r.report.cause);
    let all = everything(&r);
    assert!(!all.contains(PROBE_TOKEN), "the credential leaked");
    assert!(all.contains(SECRET), "the reference is what is kept");
}

#[test]
fn a_credential_that_is_wrong_or_missing_stops_the_run_before_anything_moves() {
    // The secret holds another token: green answers 401 to the pre-flight probe.
    let r = run(
        &probe_plan(),
        &probe_world(Some(r#"{"token":"old-token"}"#)),
        false,
    );
    assert_eq!(r.report.error.as_deref(), Some("ValidationFailed"));
    let cause = r.report.cause.clone().unwrap_or_default();
    assert!(cause.contains("HTTP 401"), "{cause}");
    assert_eq!(r.report.world.dns_changes_applied, 0);
    assert!(!everything(&r).contains("old-token"));

    // No such secret: the pre-flight names the header and the reference.
    let r = run(&probe_plan(), &probe_world(None), false);
    assert_eq!(r.report.error.as_deref(), Some("ValidationFailed"));
    let cause = r.report.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("health.http[0].headers")
            && cause.contains(SECRET)
            && cause.contains("ResourceNotFoundException"),
        "{cause}"
    );
    assert_eq!(r.report.world.dns_changes_applied, 0);

    // The secret holds no JSON, so jsonKey cannot be read: named, the value never shown.
    let r = run(&probe_plan(), &probe_world(Some("plain-v4lue")), false);
    let cause = r.report.cause.clone().unwrap_or_default();
    assert!(cause.contains("does not hold JSON"), "{cause}");
    assert!(!everything(&r).contains("plain-v4lue"));
}

#[test]
fn a_url_hook_sends_its_credential_from_parameter_store() {
    let hook = "https://hooks.example.com/orders/maintenance";
    let plan = edit(
        text("data-blue-until-switch", "plan.yaml"),
        &[(
            r#"freeze:   {lambdaArn: "arn:aws:lambda:us-east-1:123456789012:function:orders-maintenance-on"}"#,
            &format!(
                r#"freeze:   {{url: "{hook}", auth: none, headers: {{X-Api-Key: {{parameterArn: "{PARAM}"}}}}}}"#
            ),
        )],
    );
    let world = text("data-blue-until-switch", "world.yaml")
        + &format!("requireHeaders: {{\"{hook}\": {{X-Api-Key: \"{HOOK_KEY}\"}}}}\n");
    // With the parameter: the freeze acts, the switch happens, nothing leaks.
    let ok = run(
        &plan,
        &(world.clone() + &format!("secrets: {{\"{PARAM}\": \"{HOOK_KEY}\"}}\n")),
        false,
    );
    assert_eq!(ok.report.outcome, "completed", "{:?}", ok.report.cause);
    assert_eq!(ok.report.data.surviving_database, "green");
    assert!(!everything(&ok).contains(HOOK_KEY));

    // The parameter holds another value: the hook refuses (401) and did not act, so writes were
    // never frozen and nothing is lost.
    let refused = run(
        &plan,
        &(world + &format!("secrets: {{\"{PARAM}\": \"stale-key\"}}\n")),
        false,
    );
    assert_ne!(refused.report.outcome, "completed");
    assert!(
        !happened(&refused, "database-switched"),
        "no switch without a freeze"
    );
    assert_eq!(refused.report.data.writes_lost, 0);
    assert!(!refused.world.writes_frozen(), "writes are not left frozen");
    assert!(!everything(&refused).contains("stale-key"));
}

#[test]
fn a_plan_carrying_a_credential_is_refused_before_it_is_stored() {
    let url = "https://probe:hunter2-pw@green.example.com/health?token=s3cr3t-t0ken&region=eu";
    let plan = text("dms-happy-path", "plan.yaml").replace("https://green.example.com/health", url);
    let e = Plan::parse(&plan, false).unwrap_err().to_string();
    assert!(
        e.contains("health.http[0].url") && e.contains("carries a credential"),
        "{e}"
    );
    for secret in ["hunter2-pw", "s3cr3t-t0ken"] {
        assert!(!e.contains(secret), "{secret} leaked into the error: {e}");
    }
}

#[test]
fn task_tokens_are_sealed_in_the_run_table() {
    // Two gates opened and answered: the run table holds each token only sealed.
    let r = run(
        &text("approval-rejected", "plan.yaml"),
        &text("approval-rejected", "world.yaml"),
        false,
    );
    assert!(!r.tokens.is_empty(), "the run opened gates");
    let table = r.store.dump();
    assert!(table.contains("\"sealedTaskToken\":\"sim-kms:"), "{table}");
    for t in &r.tokens {
        assert!(!table.contains(t.as_str()), "token {t} is in the table");
    }
    assert!(!everything(&r).contains(r.tokens[0].as_str()));
}
