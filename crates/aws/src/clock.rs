//! Wall-clock time for deployed functions.

use chrono::{DateTime, Utc};
use cutover_core::ports::Clock;

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
