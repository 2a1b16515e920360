//! Lambda entry point of the `next-wave-round` step; the logic lives in `cutover_core::steps`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cutover_lambda::serve("next-wave-round", cutover_lambda::steps::next_wave_round).await
}
