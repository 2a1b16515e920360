//! Lambda entry point of the `close-wave` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("close-wave", cutover_lambda::steps::close_wave).await
}
