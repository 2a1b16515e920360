//! HTTP health endpoints: scripted statuses; the MGN cutover instance's URLs refuse connections
//! until its first boot.

use super::*;
use async_trait::async_trait;

#[async_trait]
impl HealthProbe for World {
    async fn probe(&self, check: &HttpCheck, headers: &ResolvedHeaders) -> ProbeResult {
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
        // An endpoint slower than the probe's wait: the probe gives up (reqwest's request
        // timeout), whatever the status would have been.
        let slow = self
            .spec
            .http_latency_ms
            .get(&check.url)
            .and_then(|c| step_value(c, t))
            .filter(|ms| *ms > (check.timeout() * 1000) as f64);
        if let Some(ms) = slow {
            return ProbeResult {
                ok: false,
                status: None,
                detail: format!(
                    "timed out after {}s (the endpoint answers in {ms:.0} ms)",
                    check.timeout()
                ),
            };
        }
        if let Some(missing) = self.unauthorized(&check.url, headers) {
            return ProbeResult {
                ok: false,
                status: Some(401),
                detail: format!("HTTP 401, expected {} ({missing})", check.expect_status),
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

impl World {
    /// Why an endpoint listed in `requireHeaders` refuses the request (401), if it does: the
    /// header missing or holding another value, named without any value.
    pub(super) fn unauthorized(&self, url: &str, headers: &ResolvedHeaders) -> Option<String> {
        let required = self.spec.require_headers.get(url)?;
        required.iter().find_map(|(name, want)| {
            match headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                None => Some(format!("no {name} header")),
                Some((_, v)) if v.expose() != want => Some(format!("{name} refused")),
                Some(_) => None,
            }
        })
    }
}

/// Secrets Manager and Parameter Store: the world's `secrets`, by ARN.
#[async_trait]
impl Secrets for World {
    async fn read(&self, arn: &str) -> Result<Secret, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "secrets", "Read")?;
        match self.spec.secrets.get(arn) {
            Some(v) => Ok(Secret::new(v.clone())),
            None => Err(PortError::new(
                "secrets",
                PortErrorKind::NotFound,
                if arn.contains(":ssm:") {
                    "ParameterNotFound"
                } else {
                    "ResourceNotFoundException"
                },
                format!("{arn} does not exist"),
            )),
        }
    }
}

/// AWS KMS as the suite uses the token key: a sealed token is an opaque ciphertext that names
/// nothing of the token, and opens only with the run and gate it was sealed for (a wrong
/// encryption context is `InvalidCiphertextException`, as KMS Decrypt answers:
/// https://docs.aws.amazon.com/kms/latest/APIReference/API_Decrypt.html).
#[async_trait]
impl TokenVault for World {
    async fn seal(&self, token: &str, run_id: &str, gate: &str) -> Result<String, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "kms", "Encrypt")?;
        st.sealed
            .push((token.to_string(), run_id.to_string(), gate.to_string()));
        Ok(format!("sim-kms:{}", st.sealed.len() - 1))
    }

    async fn open(&self, sealed: &str, run_id: &str, gate: &str) -> Result<String, PortError> {
        let mut st = self.st();
        self.enter(&mut st, "kms", "Decrypt")?;
        let invalid = || {
            PortError::new(
                "kms",
                PortErrorKind::Invalid,
                "InvalidCiphertextException",
                "the ciphertext or its encryption context is not the one sealed",
            )
        };
        let i: usize = sealed
            .strip_prefix("sim-kms:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(invalid)?;
        match st.sealed.get(i) {
            Some((token, r, g)) if r == run_id && g == gate => Ok(token.clone()),
            _ => Err(invalid()),
        }
    }
}
