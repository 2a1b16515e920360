//! HTTP health probes with reqwest over rustls: a per-request timeout, the expected status.

use async_trait::async_trait;
use cutover_core::model::ProbeResult;
use cutover_core::plan::HttpCheck;
use cutover_core::ports::HealthProbe;
use std::time::Duration;

#[derive(Clone)]
pub struct HttpProbe {
    client: reqwest::Client,
}

impl HttpProbe {
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = crate::tls::reqwest_builder("cutover-health-probe")
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(HttpProbe { client })
    }
}

#[async_trait]
impl HealthProbe for HttpProbe {
    async fn probe(&self, check: &HttpCheck) -> ProbeResult {
        match self.client.get(&check.url).send().await {
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
                ProbeResult {
                    ok: false,
                    status: None,
                    detail: format!("{what}: {e}"),
                }
            }
        }
    }
}
