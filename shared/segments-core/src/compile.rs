//! Plan → member query (the emit pass). One CTE per rule group yields
//! `object_id`s; groups combine with AND before OR, then every exclude
//! group's members are removed. Tables are named here, from the target.

use crate::activity::{Window, left_join};
use crate::catalog::{Catalog, ObjectDef};
use crate::error::ValidationErrors;
use crate::model::*;
use crate::plan::*;
use crate::resolve::{id, resolve};
use crate::sql::*;

/// The output column of every member query and segment table.
pub const OBJECT_ID: &str = "object_id";

/// Resolves a segment and compiles it into the query that lists its members.
pub fn members_query(
    seg: &Segment,
    catalog: &Catalog,
    target: &Target,
) -> Result<Query, ValidationErrors> {
    Ok(emit(&resolve(seg, catalog)?, target))
}

/// The member query of a resolved plan.
pub fn emit(plan: &Plan, target: &Target) -> Query {
    let obj = plan.def;
    let mut ctes = Vec::new();
    let mut includes = Vec::new();
    let mut excludes = Vec::new();
    for (gi, g) in plan.groups.iter().enumerate() {
        let name = id(&format!("g{gi}"));
        ctes.push((name.clone(), group(plan.object, obj, &g.population, target)));
        let from_cte = Query::select(
            Select {
                from: Some(FromItem::Table {
                    table: TableRef::Cte(name),
                    alias: format!("g{gi}").into(),
                }),
                ..Default::default()
            }
            .item(
                Expr::col(format!("g{gi}"), &Ident::fixed(OBJECT_ID)),
                Some(OBJECT_ID),
            ),
        );
        match g.main_operator {
            MainOperator::Include => includes.push((g.conjunction, from_cte)),
            MainOperator::Exclude => excludes.push(from_cte),
        }
    }
    let base = if includes.is_empty() {
        // Exclude-only: start from every object.
        let o = Select {
            from: Some(object_table(obj, target, "o")),
            filter: Some(Expr::col("o", &id(&obj.id)).is_not_null()),
            ..Default::default()
        }
        .item(Expr::col("o", &id(&obj.id)), Some(OBJECT_ID));
        Query::select(o)
    } else {
        let terms: Vec<Query> = and_or_terms(includes)
            .into_iter()
            .map(|t| set(SetOp::IntersectDistinct, t))
            .collect();
        set(SetOp::UnionDistinct, terms)
    };
    let members = if excludes.is_empty() {
        base
    } else {
        Query::Set(
            SetOp::ExceptDistinct,
            vec![base, set(SetOp::UnionDistinct, excludes)],
        )
    };
    ctes.push((Ident::fixed("members"), members));
    let body = Query::select(
        Select {
            from: Some(FromItem::Table {
                table: TableRef::Cte(Ident::fixed("members")),
                alias: "m".into(),
            }),
            ..Default::default()
        }
        .item(Expr::col("m", &Ident::fixed(OBJECT_ID)), Some(OBJECT_ID)),
    );
    Query::With(ctes, Box::new(body))
}

fn object_table(obj: &ObjectDef, target: &Target, alias: &'static str) -> FromItem {
    FromItem::Table {
        table: target.table(&obj.table),
        alias: alias.into(),
    }
}

/// `SELECT DISTINCT <id> AS object_id FROM ... WHERE ...` for one group.
fn group(object: SegmentObject, obj: &ObjectDef, p: &Population, target: &Target) -> Query {
    let oid = Expr::col("o", &id(&obj.id));
    let (from, joins, filter, key) = match p {
        Population::Rows { filter } => {
            (object_table(obj, target, "o"), vec![], filter.clone(), oid)
        }
        Population::Measured {
            activity,
            relations,
            window,
            filter,
        } => {
            let mut joins = activity.joins(object, &oid, target, window);
            for (ri, r) in relations.iter().enumerate() {
                let q = relation_counts(object, r, window, target);
                joins.push(left_join(q, format!("r{ri}"), &oid));
            }
            (object_table(obj, target, "o"), joins, filter.clone(), oid)
        }
        Population::Events {
            source,
            key,
            filter,
        } => {
            // Only objects that exist: an orphan event row makes no member.
            let exists = Expr::InQuery(
                Box::new(key.clone()),
                Box::new(Query::select(
                    Select {
                        from: Some(object_table(obj, target, "o")),
                        ..Default::default()
                    }
                    .item(oid, None),
                )),
            );
            let from = FromItem::Table {
                table: target.table(&source.table),
                alias: "e".into(),
            };
            let filter = match filter.clone() {
                Expr::And(mut items) => {
                    items.push(exists);
                    Expr::And(items)
                }
                f => Expr::and(vec![f, exists]),
            };
            (from, vec![], filter, key.clone())
        }
    };
    Query::select(
        Select {
            distinct: true,
            from: Some(from),
            joins,
            filter: Some(filter),
            ..Default::default()
        }
        .item(key, Some(OBJECT_ID)),
    )
}

/// Distinct related objects per object, through the relation table in either
/// direction, counting only links whose related row exists (and is in range).
fn relation_counts(object: SegmentObject, r: &Relation, window: &Window, target: &Target) -> Query {
    let rel = r.via;
    let pairs = |mine_obj: &str, mine_id: &str, other_obj: &str, other_id: &str| {
        Query::select(
            Select {
                from: Some(FromItem::Table {
                    table: target.table(&rel.table),
                    alias: "rel".into(),
                }),
                filter: Some(Expr::and(vec![
                    Expr::col("rel", &id(mine_obj)).eq(Expr::str(object.as_str())),
                    Expr::col("rel", &id(other_obj)).eq(Expr::str(r.related.as_str())),
                    Expr::col("rel", &id(mine_id)).is_not_null(),
                ])),
                ..Default::default()
            }
            .item(Expr::col("rel", &id(mine_id)), Some("k"))
            .item(Expr::col("rel", &id(other_id)), Some("other")),
        )
    };
    let both = Query::Set(
        SetOp::UnionAll,
        vec![
            pairs(&rel.from_object, &rel.from_id, &rel.to_object, &rel.to_id),
            pairs(&rel.to_object, &rel.to_id, &rel.from_object, &rel.from_id),
        ],
    );
    let mut on = vec![Expr::col("rt", &id(&r.def.id)).eq(Expr::col("p", &Ident::fixed("other")))];
    if r.in_range {
        on.extend(window.filter(Expr::col("rt", &id(&r.def.time))));
    }
    let k = Expr::col("p", &Ident::fixed("k"));
    Query::select(
        Select {
            from: Some(FromItem::Subquery {
                query: Box::new(both),
                alias: "p".into(),
            }),
            joins: vec![Join {
                kind: JoinKind::Inner,
                item: FromItem::Table {
                    table: target.table(&r.def.table),
                    alias: "rt".into(),
                },
                on: Expr::and(on),
            }],
            group_by: vec![k.clone()],
            ..Default::default()
        }
        .item(k, Some("k"))
        .item(
            Expr::agg(AggFunc::Count, true, Expr::col("p", &Ident::fixed("other"))),
            Some("v"),
        ),
    )
}

fn set(op: SetOp, mut parts: Vec<Query>) -> Query {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Query::Set(op, parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::render_query;
    use crate::time::Clock;

    /// The member query of one group, parsed from JSON text (not built with
    /// `json!`, which never goes through the float parser).
    fn sql(group: &str) -> String {
        let text = format!(r#"{{"id": "n1", "ruleGroups": [{group}]}}"#);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let seg = crate::parse_segment(&v).unwrap();
        let target = Target::new("p", "d").unwrap();
        let q = members_query(&seg, &Catalog::default_catalog(), &target).unwrap();
        render_query(target.dialect(), &q, Clock::Placeholders).unwrap()
    }

    #[test]
    fn json_numbers_reach_sql_at_full_precision_on_every_path() {
        let v = "999.9900000000001";
        let cases = [
            // A property of the object's row.
            (
                r#"{"mainOperator": "include", "segmentObject": "crm-opportunity", "conditionFocus": "property",
                 "g0": {"type": "number", "key": "amount", "condition": "less-than", "value": 999.9900000000001}}"#,
                format!("o.`amount` < {v}"),
            ),
            // A row metric.
            (
                r#"{"mainOperator": "include", "segmentObject": "crm-opportunity", "conditionFocus": "metric",
                 "g0": {"type": "metric", "key": "amount", "condition": "greater-than", "value": 999.9900000000001}}"#,
                format!("o.`amount` > {v}"),
            ),
            // A per-object aggregate.
            (
                r#"{"mainOperator": "include", "segmentObject": "user", "conditionFocus": "metric",
                 "g0": {"type": "metric", "key": "revenue", "condition": "between", "value": [1, 999.9900000000001]}}"#,
                format!("COALESCE(m0.`v0`, 0) <= {v}"),
            ),
            // An event column and an event key/value property.
            (
                r#"{"mainOperator": "include", "segmentObject": "user", "conditionFocus": "ecommerce-event",
                 "g0": {"id": "purchase", "property": "revenue", "condition": "greater-than-or-equal", "value": 999.9900000000001},
                 "g1": {"id": "purchase", "property": "total", "type": "number", "condition": "less-than-or-equal", "value": 999.9900000000001}}"#,
                format!("e.`revenue` >= {v}"),
            ),
            (
                r#"{"mainOperator": "include", "segmentObject": "user", "conditionFocus": "ecommerce-event",
                 "g0": {"id": "purchase", "property": "total", "type": "number", "condition": "less-than-or-equal", "value": 999.9900000000001}}"#,
                format!("SAFE_CAST(c.`value` AS FLOAT64) <= {v}"),
            ),
        ];
        for (group, want) in cases {
            let sql = sql(group);
            assert!(sql.contains(&want), "{want} not in\n{sql}");
        }
    }
}
