//! check-bigquery-job: wiring only. The handler is segments_handlers::entry::check_job.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    segments_handlers::entry::serve(segments_handlers::entry::check_job).await
}
