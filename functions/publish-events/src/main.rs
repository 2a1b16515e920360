//! Lambda entry point of the `publish-events` function: the run table's stream to EventBridge;
//! the logic lives in `cutover_core::steps` and `cutover_core::events`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("publish-events", cutover_lambda::steps::publish_events).await
}
