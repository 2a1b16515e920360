//! Lambda entry point of the `data-cutover` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("data-cutover", cutover_lambda::steps::data_cutover).await
}
