//! `report-segments`, `link-report`, `unlink-report`, `apply-chart`: the
//! `"SegmentReport"` rows that say which segments a user applies to a report.
//!
//! A link names a user's report (`reportName`); a sticky link (`"sticky": true`)
//! has no report name and applies to every report of the user, as the segment
//! dropdown's sticky toggle does. At most 4 segments are applied to one report
//! of one user, sticky ones included.

use super::segments::owned;
use super::{ApiError, ApiResult, account, required_str, required_uuid};
use crate::App;
use segments_infra::ports::SegmentReportRow;
use serde::Serialize;
use serde_json::{Value, json};

/// Segments applied to one report at once (SPEC §7).
pub const MAX_APPLIED: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkView {
    pub id: String,
    pub segment_id: String,
    pub segment_name: String,
    /// S1, S2, ...: the order the report shows them in.
    pub position: Option<usize>,
    pub report_name: Option<String>,
    pub sticky: bool,
    pub report_type: Option<String>,
    pub object: Option<String>,
    pub apply: bool,
    pub apply_chart: bool,
}

struct Scope {
    account: String,
    user: String,
    report: String,
}

async fn scope(app: &App, req: &Value) -> ApiResult<Scope> {
    let (account, _) = account(app, req).await?;
    let user = required_uuid(req, "userId")?.to_string();
    let report = required_str(req, "reportName")?;
    if report.chars().count() > 200 {
        return Err(ApiError::invalid("reportName", "at most 200 characters"));
    }
    Ok(Scope {
        account,
        user,
        report: report.to_string(),
    })
}

/// The links of a user's report, applied ones numbered S1.. in link order
/// (a segment linked both to the report and sticky counts once).
pub async fn links(app: &App, account: &str, user: &str, report: &str) -> ApiResult<Vec<LinkView>> {
    let rows = app
        .ports
        .store
        .segment_reports(account, user, report)
        .await?;
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for r in rows {
        let position = if r.apply && !seen.contains(&r.segment_id) {
            seen.push(r.segment_id.clone());
            Some(seen.len())
        } else {
            None
        };
        out.push(LinkView {
            id: r.id,
            segment_id: r.segment_id,
            segment_name: r.segment_name,
            position,
            sticky: r.report_name.is_none(),
            report_name: r.report_name,
            report_type: r.report_type,
            object: r.object,
            apply: r.apply,
            apply_chart: r.apply_chart,
        });
    }
    Ok(out)
}

/// The segments applied to a user's report, in order (at most 4): what
/// report-with-segment filters by when a request names none.
pub async fn applied_segments(
    app: &App,
    account: &str,
    user: &str,
    report: &str,
) -> ApiResult<Vec<String>> {
    Ok(links(app, account, user, report)
        .await?
        .into_iter()
        .filter(|l| l.position.is_some())
        .map(|l| l.segment_id)
        .take(MAX_APPLIED)
        .collect())
}

fn answer(links: Vec<LinkView>) -> Value {
    json!({ "links": links })
}

pub async fn list(app: &App, req: &Value) -> ApiResult {
    let s = scope(app, req).await?;
    Ok(answer(links(app, &s.account, &s.user, &s.report).await?))
}

fn opt_bool(req: &Value, key: &str, default: bool) -> ApiResult<bool> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(key, "must be true or false")),
    }
}

fn opt_str(req: &Value, key: &str) -> ApiResult<Option<String>> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 200 => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(
            key,
            "must be a string of at most 200 characters",
        )),
    }
}

/// Links (or re-links) a segment to a user's report; `apply` (default true)
/// applies it, refused when 4 others are applied already.
pub async fn link(app: &App, req: &Value) -> ApiResult {
    let s = scope(app, req).await?;
    let seg = owned(app, &s.account, req).await?;
    let apply = opt_bool(req, "apply", true)?;
    let sticky = opt_bool(req, "sticky", false)?;
    if apply && !seg.status {
        return Err(ApiError::invalid(
            "segmentId",
            format!("segment {} is disabled", seg.id),
        ));
    }
    let current = links(app, &s.account, &s.user, &s.report).await?;
    let others = current
        .iter()
        .filter(|l| l.position.is_some() && l.segment_id != seg.id)
        .count();
    if apply && others >= MAX_APPLIED {
        return Err(ApiError::conflict(
            "segmentId",
            format!("{others} segments are applied to this report already; at most {MAX_APPLIED}"),
        ));
    }
    let existing_chart = current
        .iter()
        .any(|l| l.segment_id == seg.id && l.apply_chart);
    let row = SegmentReportRow {
        id: String::new(),
        account_id: s.account.clone(),
        segment_id: seg.id.clone(),
        segment_name: seg.name.clone(),
        report_name: (!sticky).then(|| s.report.clone()),
        user_id: s.user.clone(),
        report_type: opt_str(req, "reportType")?,
        object: opt_str(req, "object")?,
        apply,
        apply_chart: opt_bool(req, "applyChart", existing_chart)?,
    };
    // A sticky link replaces the report's own link of the segment (and the
    // other way round): one row per segment. A link of the same kind is
    // updated in place and keeps its position.
    if current
        .iter()
        .any(|l| l.segment_id == seg.id && l.sticky != sticky)
    {
        app.ports
            .store
            .unlink_report(&s.account, &s.user, &s.report, &seg.id)
            .await?;
    }
    app.ports.store.link_report(&row).await?;
    app.invalidate(&s.account, None).await;
    Ok(answer(links(app, &s.account, &s.user, &s.report).await?))
}

/// Removes the segment from the user's report, its sticky link included.
pub async fn unlink(app: &App, req: &Value) -> ApiResult {
    let s = scope(app, req).await?;
    let seg = owned(app, &s.account, req).await?;
    let removed = app
        .ports
        .store
        .unlink_report(&s.account, &s.user, &s.report, &seg.id)
        .await?;
    if removed == 0 {
        return Err(ApiError::not_found(
            "segmentId",
            format!("segment {} is not linked to report {:?}", seg.id, s.report),
        ));
    }
    app.invalidate(&s.account, None).await;
    Ok(answer(links(app, &s.account, &s.user, &s.report).await?))
}

/// `applyChart` on exactly the named segments of the user's report (the
/// charts show them); each must be applied to the report.
pub async fn apply_chart(app: &App, req: &Value) -> ApiResult {
    let s = scope(app, req).await?;
    let ids: Vec<String> = match req.get("segmentIds") {
        Some(Value::Array(items)) => {
            let mut ids = Vec::new();
            for (i, v) in items.iter().enumerate() {
                match v.as_str().and_then(segments_core::messages::canonical_uuid) {
                    Some(id) => ids.push(id),
                    _ => {
                        return Err(ApiError::invalid(
                            &format!("segmentIds[{i}]"),
                            "must be a segment id (UUID)",
                        ));
                    }
                }
            }
            ids
        }
        None | Some(Value::Null) => return Err(ApiError::invalid("segmentIds", "is required")),
        Some(_) => {
            return Err(ApiError::invalid(
                "segmentIds",
                "must be an array of segment ids",
            ));
        }
    };
    if ids.len() > MAX_APPLIED {
        return Err(ApiError::invalid(
            "segmentIds",
            format!("{} segments; at most {MAX_APPLIED}", ids.len()),
        ));
    }
    let current = links(app, &s.account, &s.user, &s.report).await?;
    for (i, id) in ids.iter().enumerate() {
        if !current
            .iter()
            .any(|l| &l.segment_id == id && l.position.is_some())
        {
            return Err(ApiError::not_found(
                &format!("segmentIds[{i}]"),
                format!(
                    "segment {id} is not applied to report {:?} of this user",
                    s.report
                ),
            ));
        }
    }
    app.ports
        .store
        .apply_chart(&s.account, &s.user, &s.report, &ids)
        .await?;
    Ok(answer(links(app, &s.account, &s.user, &s.report).await?))
}
