//! Lambda entry point of the `close-run` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("close-run", cutover_lambda::steps::close_run).await
}
