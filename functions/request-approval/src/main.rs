//! Lambda entry point of the `request-approval` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("request-approval", cutover_lambda::steps::request_approval).await
}
