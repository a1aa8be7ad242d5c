//! report-with-segment: wiring only. The handler is segments_handlers::entry::report.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    segments_handlers::entry::serve(segments_handlers::entry::report).await
}
