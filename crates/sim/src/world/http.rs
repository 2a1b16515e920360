//! HTTP health endpoints: scripted statuses; the MGN cutover instance's URLs refuse connections
//! until its first boot.

use super::*;
use async_trait::async_trait;

#[async_trait]
impl HealthProbe for World {
    async fn probe(&self, check: &HttpCheck) -> ProbeResult {
        let mut st = self.st();
        if let Err(e) = self.enter(&mut st, "http", "Probe") {
            return ProbeResult {
                ok: false,
                status: None,
                detail: e.to_string(),
            };
        }
        // A URL the launched cutover instance serves does not answer before its first boot.
        let t = self.t();
        let not_booted = self.spec.mgn.servers.iter().any(|s| {
            s.launched_urls.contains(&check.url)
                && st
                    .mgn
                    .get(&s.id)
                    .and_then(|m| m.launched_at)
                    .is_none_or(|at| s.launch_fails || t < at + s.launch_seconds)
        });
        if not_booted {
            return ProbeResult {
                ok: false,
                status: None,
                detail: "connection refused (the MGN cutover instance is not launched or has not finished its first boot)".into(),
            };
        }
        match self
            .spec
            .http
            .get(&check.url)
            .and_then(|c| step_value(c, self.t()))
        {
            None => ProbeResult {
                ok: false,
                status: None,
                detail: "connection refused (no such endpoint in the world)".into(),
            },
            Some(s) if s == check.expect_status => ProbeResult {
                ok: true,
                status: Some(s),
                detail: format!("HTTP {s}"),
            },
            Some(s) => ProbeResult {
                ok: false,
                status: Some(s),
                detail: format!("HTTP {s}, expected {}", check.expect_status),
            },
        }
    }
}
