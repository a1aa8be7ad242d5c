//! The warehouse described as data: objects, activity sources, metrics, links.
//! The default describes SPEC §5; another warehouse is another JSON file.

use crate::model::{FieldType, Focus, SegmentObject};
use crate::sql::is_identifier;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The reference warehouse of SPEC §5.
pub const DEFAULT_CATALOG_JSON: &str = include_str!("default_catalog.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnType {
    #[serde(rename = "STRING")]
    String,
    #[serde(rename = "INT64")]
    Int64,
    #[serde(rename = "FLOAT64")]
    Float64,
    #[serde(rename = "BOOL")]
    Bool,
    #[serde(rename = "TIMESTAMP")]
    Timestamp,
    #[serde(rename = "DATE")]
    Date,
    #[serde(rename = "ARRAY<STRING>")]
    StringArray,
}

impl ColumnType {
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Int64 | ColumnType::Float64)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Catalog {
    /// Keyed by segment object wire name (`session`, `crm-lead`, ...).
    pub objects: BTreeMap<String, ObjectDef>,
    /// Activity tables that metrics and event focuses read.
    pub sources: BTreeMap<String, SourceDef>,
    /// Keyed by condition focus wire name (`other-event`, ...).
    pub event_focuses: BTreeMap<String, SelectorDef>,
    /// Keyed by field type wire name (`conversion`, `trigger`, ...): metric-focus
    /// conditions that count activity rows whose selector column equals `id`.
    pub counts: BTreeMap<String, SelectorDef>,
    pub relations: RelationsDef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectDef {
    pub table: String,
    pub id: String,
    pub time: String,
    pub columns: BTreeMap<String, ColumnType>,
    /// The `ARRAY<STRUCT<key, value>>` column of custom properties.
    #[serde(default)]
    pub custom: Option<String>,
    /// Columns of this table holding the id of another object (reports use them).
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceDef {
    pub table: String,
    pub time: String,
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnType>,
    /// The `ARRAY<STRUCT<key, value>>` column of event properties.
    #[serde(default)]
    pub properties: Option<String>,
    /// Object wire name -> column of this table holding that object's id.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    /// How rows reach CRM objects: `objectColumn` names the kind, `idColumn` the id.
    #[serde(default)]
    pub crm_link: Option<CrmLink>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrmLink {
    pub object_column: String,
    pub id_column: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SelectorDef {
    pub source: String,
    /// The column compared with a condition's `id` (or `key`).
    pub selector: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

impl Aggregate {
    /// Count and sum are 0 for objects with no activity; the others are unknown.
    pub fn zero_when_empty(self) -> bool {
        matches!(
            self,
            Aggregate::Count | Aggregate::CountDistinct | Aggregate::Sum
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricDef {
    /// A value of the object's own row (session `pageviews`); no source.
    #[serde(default)]
    pub row: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
    #[serde(default)]
    pub column: Option<String>,
    /// Column -> exact value the activity row must have.
    #[serde(default)]
    pub filter: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelationsDef {
    pub table: String,
    pub from_object: String,
    pub from_id: String,
    pub to_object: String,
    pub to_id: String,
}

/// How an activity row reaches an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link<'a> {
    Column(&'a str),
    Crm {
        object_column: &'a str,
        id_column: &'a str,
    },
}

impl Catalog {
    pub fn default_catalog() -> Catalog {
        // The embedded catalog is checked by a unit test; failing here is a build defect.
        Catalog::from_json(DEFAULT_CATALOG_JSON).unwrap_or_else(|e| panic!("default catalog: {e}"))
    }

    pub fn from_json(text: &str) -> Result<Catalog, String> {
        let catalog: Catalog = serde_json::from_str(text).map_err(|e| e.to_string())?;
        catalog.check()?;
        Ok(catalog)
    }

    pub fn object(&self, object: SegmentObject) -> Option<&ObjectDef> {
        self.objects.get(object.as_str())
    }

    pub fn event_focus(&self, focus: Focus) -> Option<(&SelectorDef, &SourceDef)> {
        let sel = self.event_focuses.get(focus.as_str())?;
        Some((sel, self.sources.get(&sel.source)?))
    }

    pub fn count(&self, field_type: FieldType) -> Option<(&SelectorDef, &SourceDef)> {
        let sel = self.counts.get(field_type.as_str())?;
        Some((sel, self.sources.get(&sel.source)?))
    }

    /// Every identifier must pass the identifier check and every reference resolve,
    /// so the compiler can trust catalog names.
    fn check(&self) -> Result<(), String> {
        let ident = |what: &str, s: &str| -> Result<(), String> {
            if is_identifier(s) {
                Ok(())
            } else {
                Err(format!("{what}: {s:?} is not a valid identifier"))
            }
        };
        for (name, o) in &self.objects {
            if SegmentObject::from_wire(name).is_none() {
                return Err(format!("objects: unknown segment object {name:?}"));
            }
            let p = format!("objects.{name}");
            ident(&format!("{p}.table"), &o.table)?;
            ident(&format!("{p}.id"), &o.id)?;
            ident(&format!("{p}.time"), &o.time)?;
            if let Some(c) = &o.custom {
                ident(&format!("{p}.custom"), c)?;
            }
            for c in o.columns.keys() {
                ident(&format!("{p}.columns"), c)?;
            }
            for (obj, col) in &o.links {
                ident(&format!("{p}.links.{obj}"), col)?;
            }
            for (m, def) in &o.metrics {
                self.check_metric(&format!("{p}.metrics.{m}"), o, def)?;
            }
        }
        for (name, s) in &self.sources {
            let p = format!("sources.{name}");
            ident(&format!("{p}.table"), &s.table)?;
            ident(&format!("{p}.time"), &s.time)?;
            for c in s.columns.keys() {
                ident(&format!("{p}.columns"), c)?;
            }
            if let Some(c) = &s.properties {
                ident(&format!("{p}.properties"), c)?;
            }
            for (obj, col) in &s.links {
                if SegmentObject::from_wire(obj).is_none() {
                    return Err(format!("{p}.links: unknown segment object {obj:?}"));
                }
                ident(&format!("{p}.links.{obj}"), col)?;
            }
            if let Some(l) = &s.crm_link {
                ident(&format!("{p}.crmLink.objectColumn"), &l.object_column)?;
                ident(&format!("{p}.crmLink.idColumn"), &l.id_column)?;
            }
        }
        for (kind, map) in [
            ("eventFocuses", &self.event_focuses),
            ("counts", &self.counts),
        ] {
            for (name, sel) in map {
                let known = if kind == "eventFocuses" {
                    Focus::from_wire(name).is_some_and(Focus::is_event)
                } else {
                    FieldType::from_wire(name).is_some()
                };
                if !known {
                    return Err(format!("{kind}: unknown name {name:?}"));
                }
                if !self.sources.contains_key(&sel.source) {
                    return Err(format!("{kind}.{name}.source: no source {:?}", sel.source));
                }
                ident(&format!("{kind}.{name}.selector"), &sel.selector)?;
            }
        }
        let r = &self.relations;
        for (what, s) in [
            ("relations.table", &r.table),
            ("relations.fromObject", &r.from_object),
            ("relations.fromId", &r.from_id),
            ("relations.toObject", &r.to_object),
            ("relations.toId", &r.to_id),
        ] {
            ident(what, s)?;
        }
        Ok(())
    }

    fn check_metric(&self, p: &str, o: &ObjectDef, m: &MetricDef) -> Result<(), String> {
        match (&m.row, &m.source) {
            (Some(col), None) => {
                if !o.columns.get(col).is_some_and(|t| t.is_numeric()) {
                    return Err(format!(
                        "{p}.row: {col:?} is not a numeric column of {}",
                        o.table
                    ));
                }
            }
            (None, Some(src)) => {
                let Some(s) = self.sources.get(src) else {
                    return Err(format!("{p}.source: no source {src:?}"));
                };
                let agg = m
                    .aggregate
                    .ok_or_else(|| format!("{p}.aggregate: is required"))?;
                match (&m.column, agg) {
                    (None, Aggregate::Count) => {}
                    (None, _) => return Err(format!("{p}.column: is required for {agg:?}")),
                    (Some(c), _) => {
                        if !is_identifier(c) {
                            return Err(format!("{p}.column: {c:?} is not a valid identifier"));
                        }
                    }
                }
                for c in m.filter.keys() {
                    if !is_identifier(c) {
                        return Err(format!("{p}.filter: {c:?} is not a valid identifier"));
                    }
                }
                let _ = s;
            }
            _ => return Err(format!("{p}: give either `row` or `source`")),
        }
        Ok(())
    }
}

impl ObjectDef {
    /// The type of a column of the object's table; the id and time columns
    /// count as columns even when `columns` does not list them.
    pub fn column_type(&self, name: &str) -> Option<ColumnType> {
        self.columns.get(name).copied().or(if name == self.id {
            Some(ColumnType::String)
        } else if name == self.time {
            Some(ColumnType::Timestamp)
        } else {
            None
        })
    }
}

impl SourceDef {
    /// Like [`ObjectDef::column_type`]; the time column counts as a column.
    pub fn column_type(&self, name: &str) -> Option<ColumnType> {
        self.columns
            .get(name)
            .copied()
            .or((name == self.time).then_some(ColumnType::Timestamp))
    }

    pub fn link(&self, object: SegmentObject) -> Option<Link<'_>> {
        if let Some(col) = self.links.get(object.as_str()) {
            return Some(Link::Column(col));
        }
        match &self.crm_link {
            Some(l) if object.is_crm() => Some(Link::Crm {
                object_column: &l.object_column,
                id_column: &l.id_column,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalog_loads_and_covers_every_object() {
        let c = Catalog::default_catalog();
        for o in SegmentObject::ALL {
            assert!(c.object(*o).is_some(), "no catalog entry for {o}");
        }
        for f in Focus::ALL.iter().filter(|f| f.is_event()) {
            assert!(c.event_focus(*f).is_some(), "no event source for {f}");
        }
    }

    #[test]
    fn bad_identifiers_are_refused() {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_CATALOG_JSON).unwrap();
        v["objects"]["session"]["table"] = "sessions; DROP".into();
        let err = Catalog::from_json(&v.to_string()).unwrap_err();
        assert_eq!(
            err,
            r#"objects.session.table: "sessions; DROP" is not a valid identifier"#
        );
    }
}
