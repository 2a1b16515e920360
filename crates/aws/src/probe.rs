//! HTTP health probes with reqwest over rustls: a per-request timeout, the expected status.

use async_trait::async_trait;
use cutover_core::model::ProbeResult;
use cutover_core::plan::HttpCheck;
use cutover_core::ports::HealthProbe;
use cutover_core::secret::ResolvedHeaders;
use std::time::Duration;

#[derive(Clone)]
pub struct HttpProbe {
    client: reqwest::Client,
    /// Refuse targets on this machine or its platform (cutover_core::netguard), by literal and
    /// by resolved address; off only for tests whose target listens on loopback.
    guarded: bool,
}

impl HttpProbe {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = crate::tls::reqwest_builder("cutover-health-probe")
            .timeout(timeout)
            .connect_timeout(timeout)
            .dns_resolver(std::sync::Arc::new(crate::tls::GuardedResolver))
            .build()?;
        Ok(HttpProbe {
            client,
            guarded: true,
        })
    }

    /// A probe that may reach loopback: for tests against a local server only.
    pub fn allowing_local_targets(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = crate::tls::reqwest_builder("cutover-health-probe")
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(HttpProbe {
            client,
            guarded: false,
        })
    }
}

#[async_trait]
impl HealthProbe for HttpProbe {
    async fn probe(&self, check: &HttpCheck, headers: &ResolvedHeaders) -> ProbeResult {
        if self.guarded {
            // An address literal never reaches the resolver: it is checked here. (A redirect is
            // never followed: the client's policy is none.)
            if let Some(why) = url::Url::parse(&check.url)
                .ok()
                .and_then(|u| cutover_core::netguard::forbidden_url(&u))
            {
                return ProbeResult {
                    ok: false,
                    status: None,
                    detail: format!("refused: {why}"),
                };
            }
        }
        let mut request = self.client.get(&check.url);
        if let Some(t) = check.timeout_seconds {
            // The plan's wait for the whole request replaces the client's (HTTP_TIMEOUT_SECONDS).
            request = request.timeout(Duration::from_secs(t));
        }
        for (name, value) in headers {
            // Marked sensitive: never shown by the client's Debug output.
            let Ok(mut v) = reqwest::header::HeaderValue::from_str(value.expose()) else {
                return ProbeResult {
                    ok: false,
                    status: None,
                    detail: format!("header {name} holds a character HTTP refuses"),
                };
            };
            v.set_sensitive(true);
            request = request.header(name.as_str(), v);
        }
        match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let ok = status == check.expect_status;
                let detail = if ok {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}, expected {}", check.expect_status)
                };
                ProbeResult {
                    ok,
                    status: Some(status),
                    detail,
                }
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                // The whole chain: a refused resolution says why only in its source.
                let mut detail = format!("{what}: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    detail.push_str(&format!(": {s}"));
                    source = s.source();
                }
                ProbeResult {
                    ok: false,
                    status: None,
                    detail: cutover_core::redact::redact_text(&detail),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    fn check(url: &str) -> HttpCheck {
        serde_json::from_value(serde_json::json!({"url": url, "expectStatus": 200})).unwrap()
    }

    #[tokio::test]
    async fn a_name_resolving_to_the_platform_is_refused_at_probe_time() {
        // The resolver sees what DNS answers now, whatever plan check saw.
        for name in ["169.254.169.254", "localhost", "127.0.0.1"] {
            let name: reqwest::dns::Name = name.parse().unwrap();
            let e = crate::tls::GuardedResolver
                .resolve(name)
                .await
                .err()
                .expect("refused");
            assert!(e.to_string().contains("may not reach"), "{e}");
        }
        // A server listens on loopback: the guarded probe still never reaches it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
        let probe = HttpProbe::new(Duration::from_secs(2)).unwrap();
        let r = probe
            .probe(&check(&format!("http://localhost:{port}/health")), &vec![])
            .await;
        assert!(!r.ok && r.detail.contains("may not reach"), "{}", r.detail);
        let r = probe
            .probe(&check("http://169.254.169.254/latest/meta-data/"), &vec![])
            .await;
        assert!(!r.ok && r.detail.starts_with("refused:"), "{}", r.detail);
        assert!(!accepted.is_finished(), "no connection was made");
        accepted.abort();
    }

    /// The plan's timeoutSeconds bounds the whole answer: a server that accepts and then takes
    /// longer fails the probe as timed out, though the client's own timeout is longer.
    #[tokio::test]
    async fn a_slower_answer_than_the_plan_allows_times_out() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    // 1.5 s before answering.
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        let probe = HttpProbe::allowing_local_targets(Duration::from_secs(10)).unwrap();
        let url = format!("http://127.0.0.1:{port}/health");
        let mut quick = check(&url);
        quick.timeout_seconds = Some(1);
        let r = probe.probe(&quick, &vec![]).await;
        assert!(!r.ok && r.detail.starts_with("timed out"), "{}", r.detail);
        let mut patient = check(&url);
        patient.timeout_seconds = Some(3);
        let r = probe.probe(&patient, &vec![]).await;
        assert!(r.ok, "{}", r.detail);
        server.abort();
    }
}
