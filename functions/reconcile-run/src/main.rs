//! Lambda entry point of the `reconcile-run` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("reconcile-run", cutover_lambda::steps::reconcile_run).await
}
