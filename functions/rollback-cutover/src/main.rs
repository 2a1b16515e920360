//! Lambda entry point of the `rollback-cutover` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("rollback-cutover", cutover_lambda::steps::rollback_cutover).await
}
