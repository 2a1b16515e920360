//! Task tokens sealed with the stack's KMS key (`TaskTokenKey`): `Encrypt` before the run table
//! stores a gate, `Decrypt` when its callback is sent, both with the encryption context
//! `{purpose, runId, gate}` (https://docs.aws.amazon.com/kms/latest/APIReference/API_Encrypt.html,
//! https://docs.aws.amazon.com/kms/latest/APIReference/API_Decrypt.html). A sealed token is
//! `kms:` and the ciphertext blob in base64. The key's policy lets request-approval encrypt and
//! the approval API decrypt, nobody else (template.yaml, docs/security.md).

use crate::json_api::{region_of, JsonApi};
use async_trait::async_trait;
use base64::Engine;
use cutover_core::ports::{PortError, PortErrorKind, TokenVault};
use serde_json::{json, Value};

const PORT: &str = "kms";
const PREFIX: &str = "kms:";
/// The encryption context's `purpose`: the key policy admits only requests that carry it.
pub const PURPOSE: &str = "cutover-task-token";

pub struct KmsVault {
    api: JsonApi,
    key_arn: String,
}

impl KmsVault {
    pub fn new(sdk: &aws_config::SdkConfig, key_arn: &str) -> Result<Self, reqwest::Error> {
        Ok(KmsVault {
            api: JsonApi::new(PORT, sdk)?,
            key_arn: key_arn.to_string(),
        })
    }

    fn region(&self) -> &str {
        region_of(&self.key_arn).unwrap_or("us-east-1")
    }
}

fn context(run_id: &str, gate: &str) -> Value {
    json!({"purpose": PURPOSE, "runId": run_id, "gate": gate})
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn invalid(message: &str) -> PortError {
    PortError::new(
        PORT,
        PortErrorKind::Invalid,
        "InvalidCiphertextException",
        message,
    )
}

#[async_trait]
impl TokenVault for KmsVault {
    async fn seal(&self, token: &str, run_id: &str, gate: &str) -> Result<String, PortError> {
        let answer = self
            .api
            .call(
                "kms",
                self.region(),
                "TrentService.Encrypt",
                &json!({
                    "KeyId": self.key_arn,
                    "Plaintext": b64().encode(token.as_bytes()),
                    "EncryptionContext": context(run_id, gate),
                }),
            )
            .await?;
        let blob = answer
            .get("CiphertextBlob")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("Encrypt answered no CiphertextBlob"))?;
        Ok(format!("{PREFIX}{blob}"))
    }

    async fn open(&self, sealed: &str, run_id: &str, gate: &str) -> Result<String, PortError> {
        let blob = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| invalid("the stored token is not sealed by KMS"))?;
        let answer = self
            .api
            .call(
                "kms",
                self.region(),
                "TrentService.Decrypt",
                &json!({
                    "KeyId": self.key_arn,
                    "CiphertextBlob": blob,
                    "EncryptionContext": context(run_id, gate),
                }),
            )
            .await?;
        let plain = answer
            .get("Plaintext")
            .and_then(Value::as_str)
            .and_then(|p| b64().decode(p).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| invalid("Decrypt answered no readable Plaintext"))?;
        Ok(plain)
    }
}
