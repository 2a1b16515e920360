//! Cutover domain: the plan, the run record, the step logic over narrow ports, and the stable
//! error names the state machines branch on. No AWS SDK types and no I/O of its own.

pub mod accounts;
pub mod alb;
pub mod api;
pub mod budget;
pub mod duration;
pub mod error;
pub mod events;
pub mod model;
pub mod netguard;
pub mod plan;
pub mod ports;
pub mod redact;
pub mod secret;
pub mod shape;
pub mod steps;
pub mod waves;

pub use error::{ErrorInfo, StepError};
pub use plan::{Plan, PlanError, Violation};
