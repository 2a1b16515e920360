//! Simulated AWS world on a virtual clock: Route 53 (weighted records, PENDING -> INSYNC,
//! throttling, batch validation), DMS tasks with lag curves, MGN lifecycle, HTTP health
//! endpoints, CloudWatch alarms, a run store, scripted approvals and injected faults.

pub mod clock;
pub mod faults;
pub mod spec;
pub mod store;
pub mod world;

pub use clock::SimClock;
pub use faults::{Faults, Faulty};
pub use spec::{WorldError, WorldSpec};
pub use store::MemoryStore;
pub use world::{Counters, World, WriteTally};
