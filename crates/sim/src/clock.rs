//! The virtual clock: tokio's (paused) clock read as wall time from a chosen epoch.

use chrono::{DateTime, Utc};
use cutover_core::ports::Clock;

#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    epoch: DateTime<Utc>,
    base: tokio::time::Instant,
}

impl SimClock {
    /// Must be created inside the runtime whose clock it reads.
    pub fn start(epoch: DateTime<Utc>) -> Self {
        SimClock {
            epoch,
            base: tokio::time::Instant::now(),
        }
    }

    pub fn epoch(&self) -> DateTime<Utc> {
        self.epoch
    }

    /// Seconds since the epoch (the world's t).
    pub fn elapsed_seconds(&self) -> f64 {
        (tokio::time::Instant::now() - self.base).as_secs_f64()
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        self.epoch
            + chrono::Duration::from_std(tokio::time::Instant::now() - self.base)
                .unwrap_or_default()
    }
    fn sleep(&self, d: std::time::Duration) -> cutover_core::ports::Pause {
        Box::pin(tokio::time::sleep(d))
    }
}
