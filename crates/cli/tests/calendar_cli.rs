//! `cutover waves queue|list|skip` against the approval API's own handler, served on loopback:
//! signed requests, the calendar's answers, refusals as exit 1.
#![cfg(feature = "aws")]

use cutover_core::api::{handle_api_with, ApiRequest, Bounds};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

struct NoCallbacks;
#[async_trait::async_trait]
impl cutover_core::ports::TaskCallbacks for NoCallbacks {
    async fn send_success(
        &self,
        _: &str,
        _: serde_json::Value,
    ) -> Result<(), cutover_core::ports::PortError> {
        unreachable!()
    }
    async fn send_failure(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<(), cutover_core::ports::PortError> {
        unreachable!()
    }
}

/// Serves `requests` requests through the API handler (one operator identity, the stack's
/// operators admitting only it); returns the raw requests seen.
fn serve(requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let world = cutover_cli::load_world(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/wave-12/world.yaml"),
        )
        .unwrap();
        let deps = rt.block_on(async {
            let clock = cutover_sim::SimClock::start(world.start_time);
            cutover_sim::world_deps(
                Arc::new(cutover_sim::World::new(world, clock)),
                Arc::new(cutover_sim::MemoryStore::new()),
                Arc::new(NoCallbacks),
            )
        });
        let bounds = Bounds {
            operators: vec!["arn:aws:iam::123456789012:role/ReleaseOperator".into()],
            ..Bounds::default()
        };
        let mut seen = vec![];
        for _ in 0..requests {
            let (mut sock, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65536];
            loop {
                let n = sock.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                let t = String::from_utf8_lossy(&got).to_string();
                if let Some(h) = t.find("\r\n\r\n") {
                    let len: usize = t[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= h + 4 + len || n == 0 {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&got).to_string();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let mut first = head.lines().next().unwrap().split(' ');
            let (method, path) = (first.next().unwrap(), first.next().unwrap());
            // The caller as API Gateway's IAM authorizer would name a signed request's role.
            let signed = head
                .to_ascii_lowercase()
                .contains("execute-api/aws4_request");
            let req = ApiRequest {
                method: method.into(),
                path: path.into(),
                body: (!body.is_empty()).then(|| body.to_string()),
                identity: signed
                    .then(|| "arn:aws:sts::123456789012:assumed-role/ReleaseOperator/ci".into()),
                groups: vec![],
            };
            let r = rt.block_on(handle_api_with(&req, &deps, None, &bounds));
            let out = r.body.to_string();
            let _ = sock.write_all(
                format!(
                    "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{out}",
                    r.status,
                    out.len()
                )
                .as_bytes(),
            );
            seen.push(text);
        }
        seen
    });
    (url, handle)
}

fn cutover(args: &[&str], url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .args(["--api-url", url])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap()
}

#[test]
fn waves_are_queued_listed_and_skipped_through_the_approval_api() {
    let (url, server) = serve(5);
    let ok = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let queued = ok(&cutover(
        &[
            "waves",
            "queue",
            "--wave",
            "examples/calendar/waves/1-core.yaml",
        ],
        &url,
    ));
    assert!(queued.contains(r#""state":"queued""#), "{queued}");
    // The same wave again while queued: the API refuses it (409), exit 1 with its reason.
    let again = cutover(
        &[
            "waves",
            "queue",
            "--wave",
            "examples/calendar/waves/1-core.yaml",
        ],
        &url,
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("409"));
    let listed = ok(&cutover(&["waves", "list"], &url));
    assert!(
        listed.contains("core") && listed.contains("queued"),
        "{listed}"
    );
    ok(&cutover(
        &["waves", "skip", "core", "--reason", "freeze"],
        &url,
    ));
    let listed = ok(&cutover(&["waves", "list", "--json"], &url));
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(v["waves"][0]["state"], "skipped");
    assert!(v["waves"][0]["note"].as_str().unwrap().contains("freeze"));
    let seen = server.join().unwrap();
    assert!(seen[0].starts_with("POST /calendar "), "{}", seen[0]);
    assert!(seen[2].starts_with("GET /calendar "), "{}", seen[2]);
    assert!(
        seen[3].starts_with("POST /calendar/core/skip "),
        "{}",
        seen[3]
    );
}
