//! Lambda entry point of the `finalize-cutover` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("finalize-cutover", cutover_lambda::steps::finalize_cutover).await
}
