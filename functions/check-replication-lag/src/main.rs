//! Lambda entry point of the `check-replication-lag` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve(
        "check-replication-lag",
        cutover_lambda::steps::check_replication_lag,
    )
    .await
}
