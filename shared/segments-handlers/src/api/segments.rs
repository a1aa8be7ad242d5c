//! `get`, `list`, `enable`, `disable`, and the name rules create and update share.

use super::{ApiError, ApiResult, CACHE_TTL, account, required_uuid};
use crate::App;
use chrono::{DateTime, Utc};
use segments_infra::cache::keys;
use segments_infra::ports::SegmentRow;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest name (the column is VARCHAR(200)).
pub const MAX_NAME_CHARS: usize = 200;

/// A segment as the web app reads it: rules deserialised, no query text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_custom: bool,
    pub rule_groups: Value,
    pub status: bool,
    pub query_status: String,
    pub is_blocked: bool,
    pub total_bytes_billed: Option<i64>,
    pub build_at: Option<DateTime<Utc>>,
}

impl From<&SegmentRow> for SegmentView {
    fn from(r: &SegmentRow) -> Self {
        SegmentView {
            id: r.id.clone(),
            account_id: r.account_id.clone(),
            name: r.name.clone(),
            description: r.description.clone(),
            is_custom: r.is_custom,
            // "All Data" has no rules; unreadable stored rules read as none.
            rule_groups: r
                .rule_groups
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_else(|| Value::Array(vec![])),
            status: r.status,
            query_status: r.query_status.clone(),
            is_blocked: r.is_blocked,
            total_bytes_billed: r.total_bytes_billed,
            build_at: r.build_at,
        }
    }
}

/// A name the web app may store: present, not blank, at most 200 characters.
/// Returns it trimmed; the error names `path`.
pub fn check_name(name: Option<&str>, path: &str) -> ApiResult<String> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid(path, "is required"));
    }
    let n = name.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(ApiError::invalid(
            path,
            format!("is {n} characters long; at most {MAX_NAME_CHARS}"),
        ));
    }
    Ok(name.to_string())
}

/// [`check_name`], and no other segment of the account has it (trimmed, any case).
pub async fn check_unique_name(
    app: &App,
    account: &str,
    segment_id: &str,
    name: Option<&str>,
    path: &str,
) -> ApiResult<String> {
    let name = check_name(name, path)?;
    if app
        .ports
        .store
        .name_in_use(account, &name, segment_id)
        .await?
    {
        return Err(ApiError::conflict(
            path,
            format!("another segment of the account is named {name:?}"),
        ));
    }
    Ok(name)
}

/// The segment `segmentId` of the caller's account.
pub async fn owned(app: &App, account: &str, req: &Value) -> ApiResult<SegmentRow> {
    let id = required_uuid(req, "segmentId")?;
    app.ports.store.segment(account, &id).await?.ok_or_else(|| {
        ApiError::not_found(
            "segmentId",
            format!("segment {id} does not belong to account {account}"),
        )
    })
}

pub async fn get(app: &App, req: &Value) -> ApiResult {
    let (account, _) = account(app, req).await?;
    let row = owned(app, &account, req).await?;
    Ok(serde_json::to_value(SegmentView::from(&row)).unwrap_or_default())
}

/// Every segment of the account, from `redis_segments_{accountId}` when
/// cached (1 h), else from Postgres (then cached). A cache outage is logged
/// and answered from Postgres.
pub async fn list(app: &App, req: &Value) -> ApiResult {
    let (account, _) = account(app, req).await?;
    let key = keys::segments(&account);
    match app.ports.cache.get(&key).await {
        Ok(Some(text)) => match serde_json::from_str::<Vec<SegmentView>>(&text) {
            Ok(list) => return Ok(serde_json::json!({"segments": list, "cached": true})),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable cached segment list; reading Postgres")
            }
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cache unavailable; reading Postgres"),
    }
    app.ports.store.ensure_all_data(&account).await?;
    let rows = app.ports.store.segments(&account).await?;
    let list: Vec<SegmentView> = rows.iter().map(SegmentView::from).collect();
    let text = serde_json::to_string(&list).unwrap_or_default();
    if let Err(e) = app.ports.cache.put(&key, &text, CACHE_TTL).await {
        tracing::warn!(error = %e, "segment list not cached");
    }
    Ok(serde_json::json!({"segments": list, "cached": false}))
}

/// `enable` / `disable`: the `status` column. Disabled segments are not
/// refreshed and reports refuse them. "All Data" is always enabled.
pub async fn set_status(app: &App, req: &Value, enabled: bool) -> ApiResult {
    let (account, _) = account(app, req).await?;
    let row = owned(app, &account, req).await?;
    if !row.is_custom && !enabled {
        return Err(ApiError::invalid(
            "segmentId",
            "the \"All Data\" segment cannot be disabled",
        ));
    }
    app.ports
        .store
        .set_status(&account, &row.id, enabled)
        .await?;
    app.invalidate(&account, Some(&row.id)).await;
    let row = owned(app, &account, req).await?;
    Ok(serde_json::to_value(SegmentView::from(&row)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_required_and_at_most_200_characters() {
        assert_eq!(check_name(Some("  US  "), "name").unwrap(), "US");
        assert_eq!(
            check_name(None, "segment.name").unwrap_err().errors[0].path,
            "segment.name"
        );
        assert_eq!(
            check_name(Some("   "), "name").unwrap_err().errors[0].message,
            "is required"
        );
        let long = "é".repeat(201);
        assert_eq!(
            check_name(Some(&long), "name").unwrap_err().errors[0].message,
            "is 201 characters long; at most 200"
        );
        assert!(check_name(Some(&"é".repeat(200)), "name").is_ok());
    }
}
