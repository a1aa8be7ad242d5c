//! segment-api: what the web app calls around the segment functions (the
//! primary source's service functions). One request per action, always scoped
//! to `accountId`; every refusal names the path of the input it refuses.
//!
//! Direct invoke: the request is the payload, the answer the result. Function
//! URL (AWS_IAM): the request is the HTTP body, the answer an HTTP response
//! whose status says what happened (400 bad input, 404 not the account's,
//! 409 conflict, 503 outage).

pub mod export;
pub mod preview;
pub mod reports;
pub mod segments;
pub mod testing;

use crate::App;
use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent};
use segments_core::ValidationErrors;
use segments_core::messages::{canonical_uuid, decode, shown};
use segments_infra::InfraError;
use segments_infra::error::ErrorClass;
use serde::Deserialize;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;
use tracing::Instrument;

/// How long the list, preview and option caches live (the primary source's 1 hour).
pub const CACHE_TTL: Duration = Duration::from_secs(3600);

/// One refused input: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorItem {
    pub path: String,
    pub message: String,
}

/// A refusal. `kind` is `invalid` (400), `not-found` (404), `conflict` (409),
/// `over-byte-cap` (422) or `unavailable` (503, worth retrying).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub kind: &'static str,
    pub errors: Vec<ErrorItem>,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, path: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            errors: vec![ErrorItem {
                path: path.into(),
                message: message.into(),
            }],
        }
    }
    pub fn invalid(path: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid", path, message)
    }
    pub fn not_found(path: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not-found", path, message)
    }
    pub fn conflict(path: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(409, "conflict", path, message)
    }
    /// Validation errors of a nested input, their paths under `prefix`.
    pub fn nested(prefix: &str, errs: ValidationErrors) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid",
            errors: errs
                .0
                .into_iter()
                .map(|e| ErrorItem {
                    path: join_path(prefix, &e.path),
                    message: e.message,
                })
                .collect(),
        }
    }
    pub fn body(&self) -> Value {
        json!({ "error": self })
    }
}

fn join_path(prefix: &str, path: &str) -> String {
    match (prefix, path) {
        ("", p) => p.to_string(),
        (p, "$" | "") => p.to_string(),
        (p, q) if q.starts_with('[') => format!("{p}{q}"),
        (p, q) => format!("{p}.{q}"),
    }
}

impl ApiError {
    /// Whether a retry can help: only an outage (503) is transient; every
    /// other refusal is the request's and fails the same way again.
    pub fn class(&self) -> ErrorClass {
        if self.status == 503 {
            ErrorClass::Transient
        } else {
            ErrorClass::Permanent
        }
    }
}

impl From<InfraError> for ApiError {
    fn from(e: InfraError) -> Self {
        match (e.class(), e) {
            (_, InfraError::NotFound(m)) => ApiError::not_found("$", m),
            (ErrorClass::Transient, e) => ApiError::new(503, "unavailable", "$", e.to_string()),
            // A service's refusal (a 4xx, a constraint, an invalid query) is the request's.
            (ErrorClass::Permanent, e) => ApiError::invalid("$", e.to_string()),
        }
    }
}

impl From<crate::Failure> for ApiError {
    fn from(e: crate::Failure) -> Self {
        match e {
            crate::Failure::Rejected(m) => ApiError::invalid("$", m),
            crate::Failure::Retry(m) => ApiError::new(503, "unavailable", "$", m),
        }
    }
}

/// An API refusal as a queue handler's failure: outages retry, the rest are rejected.
pub fn failure(e: ApiError) -> crate::Failure {
    let text = e
        .errors
        .iter()
        .map(|i| format!("{}: {}", i.path, i.message))
        .collect::<Vec<_>>()
        .join("; ");
    match e.class() {
        ErrorClass::Transient => crate::Failure::Retry(text),
        ErrorClass::Permanent => crate::Failure::Rejected(text),
    }
}

pub type ApiResult<T = Value> = Result<T, ApiError>;

/// A required string field.
pub fn required_str<'a>(req: &'a Value, key: &str) -> ApiResult<&'a str> {
    match req.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        None | Some(Value::Null) => Err(ApiError::invalid(key, "is required")),
        Some(_) => Err(ApiError::invalid(key, "must be a non-empty string")),
    }
}

/// A required UUID field, canonical (lower-cased): datasets, tables and cache
/// keys are named after ids, so one id has one spelling.
pub fn required_uuid(req: &Value, key: &str) -> ApiResult<String> {
    let s = required_str(req, key)?;
    canonical_uuid(s).ok_or_else(|| ApiError::invalid(key, format!("{} is not a UUID", shown(s))))
}

/// The caller's account: `accountId`, which must exist. Returns it and its time zone.
pub async fn account(app: &App, req: &Value) -> ApiResult<(String, String)> {
    let id = required_uuid(req, "accountId")?;
    let tz = app
        .ports
        .store
        .account_time_zone(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("accountId", format!("account {id} does not exist")))?;
    Ok((id, tz))
}

/// What every request says first: its action, decoded as [`Action`], so an
/// unknown one is refused at `action` with the list of the known ones.
#[derive(Debug, Deserialize)]
struct Envelope {
    action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Get,
    List,
    Enable,
    Disable,
    Test,
    ReportSegments,
    LinkReport,
    UnlinkReport,
    ApplyChart,
    Preview,
    Options,
    Export,
}

/// The request's action, decoded with its path.
fn action(req: &Value) -> ApiResult<Action> {
    required_str(req, "action")?;
    let envelope: Envelope =
        decode(json!({ "action": req.get("action") })).map_err(|e| ApiError::nested("", e))?;
    Ok(envelope.action)
}

/// The actions, by wire name.
pub const ACTIONS: &[&str] = &[
    "get",
    "list",
    "enable",
    "disable",
    "test",
    "report-segments",
    "link-report",
    "unlink-report",
    "apply-chart",
    "preview",
    "options",
    "export",
];

/// Handles one request. `request_id` names the invocation (job ids derive from it).
pub async fn handle(app: &App, req: &Value, request_id: &str, now: DateTime<Utc>) -> ApiResult {
    if !req.is_object() {
        return Err(ApiError::invalid("$", "a request must be a JSON object"));
    }
    match action(req)? {
        Action::Get => segments::get(app, req).await,
        Action::List => segments::list(app, req).await,
        Action::Enable => segments::set_status(app, req, true).await,
        Action::Disable => segments::set_status(app, req, false).await,
        Action::Test => testing::test(app, req, now).await,
        Action::ReportSegments => reports::list(app, req).await,
        Action::LinkReport => reports::link(app, req).await,
        Action::UnlinkReport => reports::unlink(app, req).await,
        Action::ApplyChart => reports::apply_chart(app, req).await,
        Action::Preview => preview::preview(app, req, request_id, now).await,
        Action::Options => preview::options(app, req, request_id, now).await,
        Action::Export => export::export(app, req).await,
    }
}

/// The request of an event, structurally: a direct invoke's payload or a
/// Function URL's body, a JSON object naming a known `action` and a UUID
/// `accountId`. What each action needs besides is checked when handled.
pub fn parse_request(payload: &Value) -> ApiResult<Value> {
    let request = match http_body(payload) {
        Some(r) => r?,
        None => payload.clone(),
    };
    if !request.is_object() {
        return Err(ApiError::invalid("$", "a request must be a JSON object"));
    }
    action(&request)?;
    required_uuid(&request, "accountId")?;
    Ok(request)
}

/// A Function URL request (payload format 2.0): its body, decoded.
fn http_body(payload: &Value) -> Option<Result<Value, ApiError>> {
    payload.get("requestContext")?.get("http")?;
    let raw = payload.get("body").and_then(Value::as_str).unwrap_or("");
    let bytes = if payload.get("isBase64Encoded") == Some(&Value::Bool(true)) {
        match base64_decode(raw) {
            Some(b) => b,
            None => return Some(Err(ApiError::invalid("$", "the body is not valid base64"))),
        }
    } else {
        raw.as_bytes().to_vec()
    };
    Some(
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::invalid("$", format!("the body is not JSON: {e}"))),
    )
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn http_response(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
    })
}

/// The Lambda entry: a direct invoke answers `{"result"}` or `{"error"}`;
/// a Function URL request the same body with an HTTP status.
pub async fn entry(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    let (request, via_url) = match http_body(&payload) {
        Some(Ok(r)) => (r, true),
        Some(Err(e)) => return Ok(http_response(e.status, &e.body())),
        None => (payload, false),
    };
    let account = request
        .get("accountId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let field = |k: &str| {
        request
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let (segment_id, action) = (field("segmentId"), field("action"));
    let span = tracing::info_span!("segment-api", accountId = %account, segmentId = %segment_id, action = %action);
    let out = handle(app, &request, &ctx.request_id, Utc::now())
        .instrument(span.clone())
        .await;
    let (status, body) = match out {
        Ok(result) => (200, json!({ "result": result })),
        Err(e) => {
            span.in_scope(|| tracing::warn!(kind = e.kind, errors = %serde_json::to_string(&e.errors).unwrap_or_default(), "refused"));
            (e.status, e.body())
        }
    };
    Ok(if via_url {
        http_response(status, &body)
    } else {
        body
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_bodies_decode() {
        assert_eq!(base64_decode("eyJhIjoxfQ==").unwrap(), br#"{"a":1}"#);
        assert!(base64_decode("e$").is_none());
    }

    #[test]
    fn every_action_decodes_and_others_are_refused_at_their_path() {
        for a in ACTIONS {
            assert!(action(&json!({ "action": a })).is_ok(), "{a}");
        }
        let e = action(&json!({"action": "delete-all"})).unwrap_err();
        assert_eq!((e.status, e.errors[0].path.as_str()), (400, "action"));
        assert!(
            e.errors[0].message.contains("unknown variant `delete-all`")
                && e.errors[0].message.contains("link-report"),
            "{e:?}"
        );
        assert_eq!(e.class(), ErrorClass::Permanent);
        let e = action(&json!({"action": 3})).unwrap_err();
        assert_eq!(e.errors[0].path, "action");
    }

    #[test]
    fn outages_are_transient_and_refusals_permanent() {
        use segments_infra::error::Service;
        let outage = ApiError::from(InfraError::outage(Service::Postgres, "connection refused"));
        assert_eq!(
            (outage.status, outage.class()),
            (503, ErrorClass::Transient)
        );
        assert!(matches!(failure(outage), crate::Failure::Retry(_)));
        let refused = ApiError::from(InfraError::refused(
            Service::BigQuery,
            "invalidQuery",
            "bad",
        ));
        assert_eq!(
            (refused.status, refused.class()),
            (400, ErrorClass::Permanent)
        );
        assert!(matches!(failure(refused), crate::Failure::Rejected(_)));
        let missing = ApiError::from(InfraError::NotFound("segment x".into()));
        assert_eq!(missing.status, 404);
    }

    #[test]
    fn account_ids_are_canonical() {
        let id = required_uuid(
            &json!({"accountId": "0D6F4B52-6A2C-4C1E-9A8E-3B1F2F0C9D11"}),
            "accountId",
        )
        .unwrap();
        assert_eq!(id, "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11");
        let e = required_uuid(
            &json!({"accountId": "0d6f4b52_6a2c_4c1e_9a8e_3b1f2f0c9d11"}),
            "accountId",
        )
        .unwrap_err();
        assert_eq!(e.errors[0].path, "accountId");
    }

    #[test]
    fn nested_paths_join() {
        assert_eq!(
            join_path("segment", "ruleGroups[0].g0"),
            "segment.ruleGroups[0].g0"
        );
        assert_eq!(join_path("segment", "$"), "segment");
        assert_eq!(join_path("", "x"), "x");
    }
}
