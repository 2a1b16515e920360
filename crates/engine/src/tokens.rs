//! Task tokens for `.waitForTaskToken`: issued per attempt, answered once, forgotten after.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

#[derive(Debug)]
pub enum TokenMessage {
    Success(Value),
    Failure { error: String, cause: String },
    Heartbeat,
}

/// Why a callback was refused; the names are those of the Step Functions API.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("InvalidToken: the task token is not known")]
    InvalidToken,
    #[error("TaskTimedOut: the task is no longer waiting")]
    TaskTimedOut,
}

#[derive(Default)]
pub struct TokenBroker {
    pending: Mutex<HashMap<String, UnboundedSender<TokenMessage>>>,
    issued: Mutex<Vec<String>>,
}

impl TokenBroker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Issues a fresh opaque token and the receiver its task waits on.
    pub fn register(&self) -> (String, UnboundedReceiver<TokenMessage>) {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let token = format!(
            "AQ{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        issued.push(token.clone());
        let (tx, rx) = unbounded_channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), tx);
        (token, rx)
    }

    pub fn forget(&self, token: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    fn send(&self, token: &str, msg: TokenMessage, keep: bool) -> Result<(), TokenError> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let tx = if keep {
            pending.get(token).cloned()
        } else {
            pending.remove(token)
        };
        let tx = tx.ok_or(TokenError::InvalidToken)?;
        tx.send(msg).map_err(|_| TokenError::TaskTimedOut)
    }

    pub fn send_success(&self, token: &str, output: Value) -> Result<(), TokenError> {
        self.send(token, TokenMessage::Success(output), false)
    }

    pub fn send_failure(&self, token: &str, error: &str, cause: &str) -> Result<(), TokenError> {
        self.send(
            token,
            TokenMessage::Failure {
                error: error.into(),
                cause: cause.into(),
            },
            false,
        )
    }

    pub fn send_heartbeat(&self, token: &str) -> Result<(), TokenError> {
        self.send(token, TokenMessage::Heartbeat, true)
    }

    /// Every token issued so far, so tests can prove none leaked into an output.
    pub fn issued(&self) -> Vec<String> {
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn pending_count(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
