//! Wall-clock time for deployed functions.

use chrono::{DateTime, Utc};
use cutover_core::ports::Clock;

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, d: std::time::Duration) -> cutover_core::ports::Pause {
        Box::pin(tokio::time::sleep(d))
    }
}
