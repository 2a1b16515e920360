//! Lambda entry point of the `validate-cutover` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("validate-cutover", cutover_lambda::steps::validate_cutover).await
}
