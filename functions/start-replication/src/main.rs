//! Lambda entry point of the `start-replication` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve(
        "start-replication",
        cutover_lambda::steps::start_replication,
    )
    .await
}
