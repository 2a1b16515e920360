//! Answers every event with `{}`: what any Rust Lambda on `lambda_runtime` pays at init, and
//! nothing more. The init benchmark compares each function's init against this one's.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(serde_json::json!({}))
    }))
    .await
}
