//! Local runs: the real `statemachines/cutover.asl.json` in the embedded engine, the real step
//! handlers, a simulated AWS world, all on a virtual clock.

#[cfg(feature = "aws")]
pub mod aws_mode;
pub mod calendar;
pub mod chaos;
pub mod chaos_wave;
#[cfg(feature = "aws")]
pub mod deployed;
pub mod html;
pub mod local;
#[cfg(feature = "aws")]
pub mod rehearse;
pub mod report;
pub mod serve;
pub mod style;
pub mod wave;

pub use local::{load_plan, load_world, run_local, InputError, RunOptions};
pub use report::Report;
