//! segment-api: wiring only. The handler is segments_handlers::api::entry.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    segments_handlers::entry::serve(segments_handlers::api::entry).await
}
