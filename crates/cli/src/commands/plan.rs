//! `cutover plan check`.

use clap::Subcommand;
use cutover_cli::load_plan;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Validate a plan: exit 0, or 2 with every problem named by its field.
    Check {
        /// The plan file (YAML or JSON): docs/plan.md.
        plan: PathBuf,
    },
}

pub fn run(command: PlanCommand) -> ExitCode {
    match command {
        PlanCommand::Check { plan } => match load_plan(&plan) {
            Ok(p) => {
                let route = match &p.dns {
                    Some(d) => format!(
                        "{} {} in {}",
                        d.record_type, d.record_name, d.hosted_zone_id
                    ),
                    None => p.route_name(),
                };
                println!(
                    "{}: ok: {} via {:?}, {route}, {} traffic step(s) to 100%",
                    plan.display(),
                    p.application,
                    p.replication.kind,
                    p.traffic.steps.len()
                );
                for w in p.warnings() {
                    eprintln!("warning: {w}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}
