//! The commands that talk to a deployed stack, one module each over one shared AWS context
//! (`cutover_cli::deployed::Context`).

pub mod run;
pub mod stack;
pub mod wave;
