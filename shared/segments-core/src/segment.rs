//! The two statements stored per segment: the create (CTAS) query for a build at
//! `now`, and the cronjob (MERGE) query that keeps the table equal to a rebuild.

use crate::catalog::Catalog;
use crate::compile::{OBJECT_ID, members_query};
use crate::error::{CoreError, ValidationErrors};
use crate::model::Segment;
use crate::parse::{parse_rules, parse_segment, parse_segment_bytes};
use crate::resolve::{group_errors, resolve};
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
    /// The refresh (a MERGE for BigQuery) with its run-time instants as
    /// `{{ts:...}}` placeholders: the form stored for people to read. The
    /// refresh that runs is rendered from the rules by [`render_refresh`].
    pub cronjob_query: String,
}

/// The version of the compiler, stamped on every stored query. Version 1
/// stored unstamped queries the cronjob ran after a text substitution;
/// from version 2 the cronjob renders every refresh from the rules.
pub const COMPILER_VERSION: u32 = 2;

const STAMP: &str = "-- segments-compiler v";

impl RenderedSegment {
    /// The `query` column: the cronjob query under a first line naming the
    /// compiler version (`-- segments-compiler v2`).
    pub fn stored_query(&self) -> String {
        format!("{STAMP}{COMPILER_VERSION}\n{}", self.cronjob_query)
    }
}

/// The compiler version a stored query was written by; 1 for unstamped
/// (earlier) queries.
pub fn stored_query_version(stored: &str) -> u32 {
    stored
        .strip_prefix(STAMP)
        .and_then(|rest| rest.split('\n').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

/// The statement one scheduled refresh runs: the segment's rules compiled
/// now, for `now` in `tz`. After it the table holds exactly what a rebuild
/// at `now` would.
pub fn render_refresh(
    seg: &Segment,
    catalog: &Catalog,
    target: &Target,
    tz: &Tz,
    now: DateTime<Utc>,
) -> Result<String, CoreError> {
    let members = members_query(seg, catalog, target)?;
    let table_name = seg.table_name();
    target
        .dialect()
        .check_identifier(&table_name)
        .map_err(CoreError::Argument)?;
    let sync = Statement::Sync {
        table: target.table(&table_name),
        source: &members,
        key: Ident::trusted(OBJECT_ID),
    };
    target.render(&sync, Clock::At { tz: *tz, now })
}

/// Parses segment JSON and checks it against the catalog, listing every
/// error: when the structure has errors, the groups and conditions that did
/// parse are still resolved against the catalog, and those errors are listed
/// too (each under its own path).
pub fn check_segment(
    v: &serde_json::Value,
    catalog: &Catalog,
) -> Result<Segment, ValidationErrors> {
    let parsed = parse_rules(v);
    if parsed.errors.is_empty() {
        let seg = parsed.into_segment()?;
        return validate_segment(&seg, catalog).map(|()| seg);
    }
    let more = group_errors(&parsed.groups, catalog);
    let mut errs = parsed.errors;
    for e in more.0 {
        if !errs
            .0
            .iter()
            .any(|x| x.path == e.path && x.message == e.message)
        {
            errs.push(e.path, e.message);
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

/// Checks a parsed segment against the catalog (keys, operators, links):
/// the resolve pass, without rendering anything.
pub fn validate_segment(seg: &Segment, catalog: &Catalog) -> Result<(), ValidationErrors> {
    resolve(seg, catalog).map(|_| ())
}

/// The columns of a stored segment row that hold its definition.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoredRules<'a> {
    pub id: &'a str,
    pub account_id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    /// The `ruleGroups` JSON text as stored.
    pub rule_groups: Option<&'a str>,
}

/// Turns a stored row back into a segment (and its rule groups as JSON).
/// Missing or corrupt JSON is said as such, not as a missing field.
pub fn stored_segment(row: StoredRules) -> Result<(Segment, serde_json::Value), CoreError> {
    let id = row.id;
    let text = row
        .rule_groups
        .ok_or_else(|| CoreError::StoredRules(format!("segment {id} has no stored rules")))?;
    let rules: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        CoreError::StoredRules(format!(
            "the stored rules of segment {id} are not valid JSON: {e}"
        ))
    })?;
    let seg = parse_segment(&serde_json::json!({
        "id": id, "accountId": row.account_id, "name": row.name,
        "description": row.description, "ruleGroups": rules,
    }))?;
    Ok((seg, rules))
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
    target
        .dialect()
        .check_identifier(&table_name)
        .map_err(CoreError::Argument)?;
    let table = target.table(&table_name);
    // Both statements come from the same member query: after a refresh at T
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
    fn corrupt_stored_rules_say_they_are_not_json() {
        let row = |rules| StoredRules {
            id: "s1",
            rule_groups: rules,
            ..Default::default()
        };
        let e = stored_segment(row(Some("[{\"mainOperator\": "))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the stored rules of segment s1 are not valid JSON: "),
            "{e}"
        );
        let e = stored_segment(row(None)).unwrap_err();
        assert_eq!(e.to_string(), "segment s1 has no stored rules");
        let ok = r#"[{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
            "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "US"}}]"#;
        let (seg, rules) = stored_segment(row(Some(ok))).unwrap();
        assert_eq!(
            (seg.id.as_str(), rules.as_array().map(Vec::len)),
            ("s1", Some(1))
        );
    }

    #[test]
    fn stored_queries_carry_the_compiler_version() {
        let r = RenderedSegment {
            table: "segment_s1".into(),
            create_table_query: String::new(),
            cronjob_query: "MERGE x".into(),
        };
        let stored = r.stored_query();
        assert_eq!(
            stored,
            format!("-- segments-compiler v{COMPILER_VERSION}\nMERGE x")
        );
        assert_eq!(stored_query_version(&stored), COMPILER_VERSION);
        assert_eq!(stored_query_version("MERGE `p.d.segment_s1` AS t"), 1);
        assert_eq!(stored_query_version("-- segments-compiler vX\nMERGE"), 1);
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
