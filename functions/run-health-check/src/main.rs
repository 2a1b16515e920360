//! Lambda entry point of the `run-health-check` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("run-health-check", cutover_lambda::steps::run_health_check).await
}
