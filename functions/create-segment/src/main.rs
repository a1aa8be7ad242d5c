//! create-segment: builds the real adapters once per container and hands every event
//! to its handler. See segments_handlers::entry::create_segment.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use segments_handlers::{App, entry};
use segments_infra::telemetry;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::install_crypto_provider();
    telemetry::init_json_logs();
    let app = App::from_env().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| {
        entry::create_segment(app, event)
    }))
    .await
}
