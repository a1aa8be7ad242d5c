//! What follows a finished run of a segment (SPEC §11): a size alert when a
//! rule change moved the population by more than the configured share.
//! Nothing here fails the check: the run and its history are already written.

use crate::App;
use segments_core::history::{population_points, size_alert};
use segments_core::messages::CheckJobMessage;
use serde_json::json;

/// The Pusher event of a size alert, on `channel-{accountId}`.
pub const SIZE_ALERT_EVENT: &str = "PUSHER_SEGMENT_SIZE_ALERT";

/// Reads the run's result (its population row and the one before it) and
/// raises a size alert when due.
pub async fn after_run(app: &App, msg: &CheckJobMessage) {
    let segment_id = msg.job_input_data.segment_id.as_deref().unwrap_or_default();
    let rows = match app.ports.warehouse.rows(&msg.job_id, 2).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "run finished; its population row could not be read");
            return;
        }
    };
    let Some((current, previous)) = population_points(&msg.job_id, &rows) else {
        tracing::warn!("run finished without its population row");
        return;
    };
    tracing::info!(
        revision = current.revision,
        population = current.population,
        "run recorded"
    );
    let Some(alert) = size_alert(&current, previous.as_ref(), app.size_alert_share) else {
        return;
    };
    tracing::warn!(
        segmentId = %segment_id,
        previousRevision = alert.previous.revision,
        previousPopulation = alert.previous.population,
        revision = alert.current.revision,
        population = alert.current.population,
        change = alert.change,
        share = app.size_alert_share,
        "segment size moved after a rule change"
    );
    let payload = json!({
        "segmentId": segment_id,
        "jobId": msg.job_id,
        "previous": alert.previous,
        "current": alert.current,
        // null when the previous population was 0.
        "change": alert.change.is_finite().then_some(alert.change),
        "share": app.size_alert_share,
    });
    let channel = format!("channel-{}", msg.account_id);
    if let Err(e) = app
        .ports
        .notifier
        .trigger(&channel, SIZE_ALERT_EVENT, &payload)
        .await
    {
        tracing::error!(error = %e, "size alert not delivered");
    }
}
