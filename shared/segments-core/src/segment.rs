//! The two statements stored per segment: the create (CTAS) query for a build at
//! `now`, and the cronjob (MERGE) query that keeps the table equal to a rebuild.

use crate::catalog::Catalog;
use crate::compile::{OBJECT_ID, members_query};
use crate::error::{CoreError, ValidationErrors};
use crate::model::Segment;
use crate::sql::{Ident, Statement, Target, render_statement};
use crate::time::substitute;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedSegment {
    /// `segment_{id}` (dashes become underscores).
    pub table: String,
    /// CREATE OR REPLACE TABLE for a build at `now`, ready to run.
    pub create_table_query: String,
    /// MERGE with time placeholders; run [`crate::time::substitute`] before each refresh.
    pub cronjob_query: String,
}

/// Checks a parsed segment against the catalog (keys, operators, links).
pub fn validate_segment(seg: &Segment, catalog: &Catalog) -> Result<(), ValidationErrors> {
    let target = Target::new("validate", "validate").map_err(|e| {
        let mut errs = ValidationErrors::default();
        errs.push("$", e);
        errs
    })?;
    members_query(seg, catalog, &target).map(|_| ())
}

pub fn render_segment(
    seg: &Segment,
    catalog: &Catalog,
    target: &Target,
    tz: &Tz,
    now: DateTime<Utc>,
) -> Result<RenderedSegment, CoreError> {
    let members = members_query(seg, catalog, target)?;
    let table_name = seg.table_name();
    let table = target.table(&table_name);
    // Both statements come from the same member query text: after a refresh at T
    // the table holds exactly what a rebuild at T would.
    let create = render_statement(&Statement::CreateOrReplaceTable {
        table: table.clone(),
        query: &members,
    });
    let cronjob = render_statement(&Statement::MergeSync {
        table,
        source: &members,
        key: Ident::trusted(OBJECT_ID),
    });
    Ok(RenderedSegment {
        table: table_name,
        create_table_query: substitute(&create, tz, now)?,
        cronjob_query: cronjob,
    })
}
