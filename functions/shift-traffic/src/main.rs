//! Lambda entry point of the `shift-traffic` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("shift-traffic", cutover_lambda::steps::shift_traffic).await
}
