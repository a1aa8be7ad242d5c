//! Start-up helpers every `main.rs` calls: one rustls crypto provider for the
//! whole process, and JSON logs.

use std::sync::Once;

static PROVIDER: Once = Once::new();

/// The AWS and Google stacks each bring rustls; some calls panic unless a
/// process-wide default provider is chosen. We choose ring, once.
pub fn install_crypto_provider() {
    PROVIDER.call_once(|| {
        // Err means another provider is already installed: that one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// JSON lines on stdout (CloudWatch), filtered by `RUST_LOG` (default `info`).
/// Span fields (`accountId`, `segmentId`, `jobId`) appear on every line inside the span.
pub fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .try_init();
}
