//! Lambda entry point of the `start-wave` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("start-wave", cutover_lambda::steps::start_wave).await
}
