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
pub use world::{Counters, Route53Use, World, WriteTally};

/// The step ports over one world, with the given run store and Step Functions callbacks: every
/// AWS service the steps call is the world (tests and tools that drive steps directly).
pub fn world_deps(
    world: std::sync::Arc<World>,
    store: std::sync::Arc<dyn cutover_core::ports::RunStore>,
    callbacks: std::sync::Arc<dyn cutover_core::ports::TaskCallbacks>,
) -> cutover_core::steps::Deps {
    cutover_core::steps::Deps {
        // The simulated stack's own account and region (docs/world.md).
        stack: cutover_core::steps::StackContext {
            partition: Some("aws".into()),
            account: Some(world.spec().account.clone()),
            region: Some("us-east-1".into()),
            allowed_hook_arns: vec![],
            ..Default::default()
        },
        clock: std::sync::Arc::new(world.clock()),
        store,
        // The stack's own credentials: its account's resources only (world/accounts.rs).
        router: world.home(),
        load_balancer: world.home(),
        replication: world.home(),
        metrics: world.home(),
        accounts: world.sts(),
        // The memory store publishes the events of a simulated run (MemoryStore::publish_events).
        bus: std::sync::Arc::new(cutover_core::events::NoBus),
        probe: world.clone(),
        notifier: world.clone(),
        callbacks,
        hooks: world.clone(),
        secrets: world.clone(),
        vault: world.clone(),
        executions: world,
        sent: Default::default(),
    }
}
