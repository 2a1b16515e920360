//! Lambda entry point of the `check-launch` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("check-launch", cutover_lambda::steps::check_launch).await
}
