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

/// Our crates: `RUST_LOG`'s level applies to them as given.
const OUR_CRATES: &[&str] = &[
    "segments_core",
    "segments_infra",
    "segments_handlers",
    "segmentctl",
    "create_segment",
    "check_bigquery_job",
    "segment_cronjob",
    "report_with_segment",
];

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// A level no more verbose than `info`.
fn capped(level: &str) -> &str {
    match level {
        "debug" | "trace" => "info",
        other => other,
    }
}

/// The tracing filter for a `RUST_LOG` value (the template's `LogLevel`).
/// Dependencies never log below `info`: at debug, the OAuth library logs the
/// signed JWT it sends and the access token it receives, and the HTTP and TLS
/// stacks log headers. So `debug` means our crates at debug, every other
/// crate at info; a per-crate directive for a dependency is capped the same way.
pub fn log_filter(rust_log: Option<&str>) -> String {
    let raw = rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("info");
    let mut out = Vec::new();
    for directive in raw.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let lower = directive.to_ascii_lowercase();
        match lower.split_once('=') {
            None if LEVELS.contains(&lower.as_str()) => {
                out.push(capped(&lower).to_string());
                if capped(&lower) != lower {
                    out.extend(OUR_CRATES.iter().map(|c| format!("{c}={lower}")));
                }
            }
            Some((target, level))
                if LEVELS.contains(&level)
                    && !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') =>
            {
                let target = directive[..target.len()].trim();
                let ours = OUR_CRATES
                    .iter()
                    .any(|c| target == *c || target.starts_with(&format!("{c}::")));
                let level = if ours { level } else { capped(level) };
                out.push(format!("{target}={level}"));
            }
            // Not a level we know (a span filter, a typo): left out, not guessed at.
            _ => {}
        }
    }
    if out.is_empty() {
        out.push("info".into());
    }
    out.join(",")
}

/// JSON lines on stdout (CloudWatch), filtered by `RUST_LOG` through
/// [`log_filter`] (default `info`). Span fields (`accountId`, `segmentId`,
/// `jobId`) appear on every line inside the span.
pub fn init_json_logs() {
    let filter =
        tracing_subscriber::EnvFilter::new(log_filter(std::env::var("RUST_LOG").ok().as_deref()));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn debug_is_ours_only_and_dependencies_stay_at_info() {
        let f = log_filter(Some("debug"));
        assert!(f.starts_with("info,"), "{f}");
        assert!(
            f.contains("segments_infra=debug") && f.contains("check_bigquery_job=debug"),
            "{f}"
        );
        assert!(!f.contains("yup_oauth2"), "{f}");
        assert_eq!(log_filter(Some("TRACE")).split(',').next(), Some("info"));
        assert_eq!(log_filter(None), "info");
        assert_eq!(log_filter(Some(" ")), "info");
        assert_eq!(log_filter(Some("warn")), "warn");
        assert_eq!(
            log_filter(Some(
                "warn,yup_oauth2=trace,hyper::proto=debug,segments_core::compile=trace"
            )),
            "warn,yup_oauth2=info,hyper::proto=info,segments_core::compile=trace"
        );
        assert_eq!(log_filter(Some("[span]=debug,nonsense")), "info");
    }
}
