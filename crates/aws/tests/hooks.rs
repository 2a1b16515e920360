//! The data hooks adapter against a local HTTP server that records what arrives: a Lambda hook is
//! a SigV4-signed Lambda Invoke whose function error is a HookFailed, a URL hook is signed for
//! `execute-api` unless `auth: none`, and a hook that does not answer in time is HookTimedOut.

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use cutover_aws::HttpHooks;
use cutover_core::plan::Hook;
use cutover_core::ports::Hooks;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn sdk() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )))
        .build()
}

/// Serves one request with `response` (or never answers when None); returns the raw request.
async fn serve_once(response: Option<String>) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(head_end) = text.find("\r\n\r\n") {
                let len = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= head_end + 4 + len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let request = String::from_utf8_lossy(&buf).to_string();
        match response {
            Some(r) => {
                sock.write_all(r.as_bytes()).await.unwrap();
            }
            None => tokio::time::sleep(std::time::Duration::from_secs(30)).await,
        }
        request
    });
    (addr, task)
}

fn http(status: &str, headers: &[&str], body: &str) -> String {
    let mut r = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn hook(lambda: Option<&str>, url: Option<&str>, auth: Option<&str>) -> Hook {
    Hook {
        lambda_arn: lambda.map(str::to_string),
        url: url.map(str::to_string),
        method: None,
        auth: auth.map(str::to_string),
        timeout_seconds: 2,
        headers: Default::default(),
    }
}

#[tokio::test]
async fn a_lambda_hook_is_a_signed_invoke_and_a_function_error_is_hook_failed() {
    let (addr, server) = serve_once(Some(http(
        "200 OK",
        &["x-amz-function-error: Unhandled"],
        r#"{"errorMessage":"maintenance page could not be enabled"}"#,
    )))
    .await;
    let hooks = HttpHooks::new(&sdk()).unwrap().with_lambda_endpoint(&addr);
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:orders-maintenance-on";
    let e = hooks
        .call(
            &hook(Some(arn), None, None),
            &vec![],
            &json!({"action": "freeze", "runId": "r1"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "HookFailed");
    assert!(
        e.message.contains("maintenance page could not be enabled"),
        "{e}"
    );
    let request = server.await.unwrap();
    assert!(
        request.starts_with("POST /2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aorders-maintenance-on/invocations "),
        "{request}"
    );
    let auth = header(&request, "authorization").expect("signed");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && auth.contains("/us-east-1/lambda/aws4_request")
            && auth.contains("SignedHeaders=")
            && auth.contains("Signature="),
        "{auth}"
    );
    assert!(header(&request, "x-amz-date").is_some());
    assert_eq!(
        header(&request, "x-amz-invocation-type"),
        Some("RequestResponse")
    );
    assert!(
        request.ends_with(r#"{"action":"freeze","runId":"r1"}"#),
        "{request}"
    );
    assert!(
        !request.contains("wJalrXUtnFEMI"),
        "the secret key never travels"
    );
}

#[tokio::test]
async fn a_url_hook_is_signed_for_api_gateway_unless_auth_none() {
    let (addr, server) = serve_once(Some(http("200 OK", &[], r#"{"ok":true}"#))).await;
    let hooks = HttpHooks::new(&sdk())
        .unwrap()
        .allowing_local_targets()
        .unwrap();
    let url = format!("{addr}/orders/switch");
    let out = hooks
        .call(
            &hook(None, Some(&url), None),
            &vec![],
            &json!({"action": "switch", "to": "green"}),
        )
        .await
        .unwrap();
    assert_eq!(out, json!({"ok": true}));
    let request = server.await.unwrap();
    assert!(request.starts_with("POST /orders/switch "), "{request}");
    assert!(header(&request, "authorization")
        .unwrap()
        .contains("/us-east-1/execute-api/aws4_request"));

    let (addr, server) = serve_once(Some(http("500 Internal Server Error", &[], ""))).await;
    let e = hooks
        .call(
            &hook(None, Some(&format!("{addr}/x")), Some("none")),
            // A credential read from a secret travels as the plan's header says.
            &vec![(
                "Authorization".to_string(),
                cutover_core::secret::Secret::new("Bearer hook-t0ken"),
            )],
            &json!({"action": "unfreeze"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "HookFailed");
    let request = server.await.unwrap();
    assert_eq!(
        header(&request, "authorization"),
        Some("Bearer hook-t0ken"),
        "{request}"
    );
    assert!(!e.message.contains("hook-t0ken"), "{e}");
}

#[tokio::test]
async fn a_hook_that_does_not_answer_in_time_is_hook_timed_out() {
    let (addr, server) = serve_once(None).await;
    let hooks = HttpHooks::new(&sdk())
        .unwrap()
        .allowing_local_targets()
        .unwrap();
    let e = hooks
        .call(
            &hook(None, Some(&format!("{addr}/slow")), Some("none")),
            &vec![],
            &json!({"action": "freeze"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "HookTimedOut", "{e}");
    server.abort();
}
