//! Lambda entry point of the approval HTTP API; the routes live in `cutover_core::api`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve_api().await
}
