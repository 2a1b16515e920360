//! Local Step Functions engine: loads ASL (JSONPath) and runs it on tokio's clock, so a paused
//! runtime plays hours of Wait states in milliseconds. Constructs it cannot run are refused at load.

pub mod asl;
pub mod choice;
pub mod exec;
pub mod intrinsics;
pub mod jsonpath;
pub mod tokens;

pub use asl::{load, load_value, LoadError, StateMachine};
pub use exec::{
    lambda_error, ChildListener, Clock, Engine, Execution, HistoryEvent, Observer, Options, Status,
    TaskError, TaskHandler, MAX_HISTORY_EVENTS, MAX_PAYLOAD_BYTES,
};
pub use tokens::{TokenBroker, TokenError};
