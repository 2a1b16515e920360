//! Lambda entry point of the `check-dns-sync` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("check-dns-sync", cutover_lambda::steps::check_dns_sync).await
}
