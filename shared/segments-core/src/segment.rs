//! The two statements stored per segment: the create (CTAS) query for a build at
//! `now`, and the cronjob (MERGE) query that keeps the table equal to a rebuild.

use crate::catalog::Catalog;
use crate::compile::{OBJECT_ID, members_query};
use crate::error::{CoreError, ValidationErrors};
use crate::model::Segment;
use crate::parse::{parse_segment, parse_segment_bytes, partial_groups};
use crate::sql::{Ident, Statement, Target};
use crate::time::Clock;
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

/// Parses segment JSON and checks it against the catalog, listing every
/// error: when the structure has errors, the groups and conditions that did
/// parse are still checked against the catalog, and those errors are listed
/// too (each under its own path).
pub fn check_segment(
    v: &serde_json::Value,
    catalog: &Catalog,
) -> Result<Segment, ValidationErrors> {
    let mut errs = match parse_segment(v) {
        Ok(seg) => return validate_segment(&seg, catalog).map(|()| seg),
        Err(errs) => errs,
    };
    for (gi, group, kept) in partial_groups(v) {
        if group.conditions.is_empty() {
            continue;
        }
        let alone = Segment {
            id: "partial".into(),
            account_id: None,
            name: None,
            description: None,
            object: group.object,
            rule_groups: vec![group],
        };
        let Err(more) = validate_segment(&alone, catalog) else {
            continue;
        };
        for e in more.0 {
            let path = relocate(&e.path, gi, &kept);
            if !errs
                .0
                .iter()
                .any(|x| x.path == path && x.message == e.message)
            {
                errs.push(path, e.message);
            }
        }
    }
    Err(errs)
}

/// [`check_segment`] over raw bytes.
pub fn check_segment_bytes(bytes: &[u8], catalog: &Catalog) -> Result<Segment, ValidationErrors> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(v) => check_segment(&v, catalog),
        // parse_segment_bytes words the JSON error.
        Err(_) => parse_segment_bytes(bytes),
    }
}

/// A path of group 0 of a one-group segment, moved to group `gi`, whose
/// condition `k` is the original `g{kept[k]}`.
fn relocate(path: &str, gi: usize, kept: &[usize]) -> String {
    let Some(rest) = path.strip_prefix("ruleGroups[0]") else {
        return path.to_string();
    };
    let rest = match rest.strip_prefix(".g") {
        Some(tail) => {
            let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
            match tail[..digits]
                .parse::<usize>()
                .ok()
                .and_then(|k| kept.get(k))
            {
                Some(orig) => format!(".g{orig}{}", &tail[digits..]),
                None => rest.to_string(),
            }
        }
        None => rest.to_string(),
    };
    format!("ruleGroups[{gi}]{rest}")
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
    let create = Statement::CreateOrReplaceTable {
        table: table.clone(),
        query: &members,
    };
    let sync = Statement::Sync {
        table,
        source: &members,
        key: Ident::trusted(OBJECT_ID),
    };
    Ok(RenderedSegment {
        table: table_name,
        create_table_query: target.render(&create, Clock::At { tz: *tz, now })?,
        cronjob_query: target.render(&sync, Clock::Placeholders)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: serde_json::Value) -> Vec<String> {
        match check_segment(&v, &Catalog::default_catalog()) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn structural_and_catalog_errors_are_listed_together() {
        let cond = |key: &str, op: &str, value: serde_json::Value| json!({"type": "dimension", "key": key, "condition": op, "value": value});
        let group = |conds: Vec<serde_json::Value>| {
            let mut g = json!({"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property"});
            for (i, c) in conds.into_iter().enumerate() {
                g[format!("g{i}")] = c;
            }
            g
        };
        let v = json!({"id": "s1", "ruleGroups": [
            group(vec![cond("nocolumn", "equals", json!("x")), cond("country", "greater-than", json!("x"))]),
            group(vec![cond("country", "equals", json!("x")), cond("alsonocolumn", "equals", json!("x")), cond("country", "equal", json!("x"))]),
        ]});
        let errs = check(v);
        assert_eq!(errs.len(), 4, "{errs:#?}");
        // Structural errors first, then the catalog's, each at its own path.
        assert_eq!(errs[0], "ruleGroups[0].g1.value: expected a number");
        assert_eq!(
            errs[1],
            r#"ruleGroups[1].g2.condition: unknown operator "equal""#
        );
        assert!(
            errs[2].starts_with(r#"ruleGroups[0].g0.key: unknown field of sessions "nocolumn""#),
            "{}",
            errs[2]
        );
        assert!(
            errs[3]
                .starts_with(r#"ruleGroups[1].g1.key: unknown field of sessions "alsonocolumn""#),
            "{}",
            errs[3]
        );
    }

    #[test]
    fn a_valid_segment_checks_clean_and_a_catalog_error_alone_is_reported() {
        let g = json!({"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
            "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "US"}});
        assert_eq!(
            check(json!({"id": "s1", "ruleGroups": [g.clone()]})),
            Vec::<String>::new()
        );
        let mut bad = g;
        bad["g0"]["key"] = json!("nocolumn");
        let errs = check(json!({"id": "s1", "ruleGroups": [bad]}));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("ruleGroups[0].g0.key:"), "{errs:?}");
    }

    #[test]
    fn relocated_paths_keep_their_tails() {
        assert_eq!(
            relocate("ruleGroups[0].g1.value", 3, &[0, 2]),
            "ruleGroups[3].g2.value"
        );
        assert_eq!(
            relocate("ruleGroups[0].dateRangeFilter", 1, &[0]),
            "ruleGroups[1].dateRangeFilter"
        );
        assert_eq!(relocate("ruleGroups[0]", 2, &[]), "ruleGroups[2]");
        assert_eq!(relocate("id", 2, &[]), "id");
    }

    #[test]
    fn crm_lifetime_count_counts_crm_objects_only() {
        let seg = |key: &str| {
            json!({"id": "s1", "ruleGroups": [{"mainOperator": "include", "segmentObject": "crm-account",
                "conditionFocus": "metric",
                "g0": {"type": "crm-lifetime-count", "key": key, "condition": "greater-than", "value": 1}}]})
        };
        assert_eq!(check(seg("crm-contact")), Vec::<String>::new());
        assert_eq!(
            check(seg("session")),
            vec![
                r#"ruleGroups[0].g0.key: crm-lifetime-count counts CRM objects; "session" is not one"#
            ]
        );
    }

    #[test]
    fn datasets_may_start_with_a_digit() {
        assert!(Target::new("p", "0d6f4b52_6a2c").is_ok());
        assert!(Target::new("p", "bad-name").is_err());
        assert!(Target::new("p", "").is_err());
    }
}
