//! The resolve pass: rules × catalog → [`Plan`]. Every semantic error is
//! reported here with its path; this pass is validation (no SQL is rendered
//! and no warehouse is named to validate a segment).

mod event;
pub mod field;
mod measure;
mod predicate;

pub use field::FieldRef;

use crate::activity::Window;
use crate::catalog::{Catalog, ObjectDef};
use crate::error::{ValidationError, ValidationErrors};
use crate::model::*;
use crate::plan::*;
use crate::sql::{Expr, Ident};

/// Resolves a parsed segment; every error with its path.
pub fn resolve<'c>(seg: &Segment, catalog: &'c Catalog) -> Result<Plan<'c>, ValidationErrors> {
    let mut r = Resolver {
        catalog,
        errs: ValidationErrors::default(),
    };
    let Some(def) = r.object_def(seg.object, "ruleGroups[0].segmentObject") else {
        return Err(r.errs);
    };
    let groups: Vec<GroupPlan> = seg
        .rule_groups
        .iter()
        .filter_map(|g| r.group(g, seg.object, def))
        .collect();
    if groups.len() != seg.rule_groups.len() || !r.errs.is_empty() {
        if r.errs.is_empty() {
            r.errs.push("ruleGroups", "could not be compiled");
        }
        return Err(r.errs);
    }
    Ok(Plan {
        object: seg.object,
        def,
        groups,
    })
}

/// The catalog's errors for groups that parsed on their own (each against
/// its own object), for a segment whose structure has errors elsewhere.
pub fn group_errors(groups: &[RuleGroup], catalog: &Catalog) -> ValidationErrors {
    let mut r = Resolver {
        catalog,
        errs: ValidationErrors::default(),
    };
    for g in groups.iter().filter(|g| !g.conditions.is_empty()) {
        let path = format!("{}.segmentObject", g.path());
        if let Some(def) = r.object_def(g.object, &path) {
            r.group(g, g.object, def);
        }
    }
    r.errs
}

pub(crate) struct Resolver<'c> {
    catalog: &'c Catalog,
    errs: ValidationErrors,
}

pub(crate) fn id(s: &str) -> Ident {
    Ident::trusted(s)
}

impl<'c> Resolver<'c> {
    fn err(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.errs.push(path, msg);
    }

    fn object_def(&mut self, object: SegmentObject, path: &str) -> Option<&'c ObjectDef> {
        let def = self.catalog.object(object);
        if def.is_none() {
            self.err(path, format!("the catalog has no object \"{object}\""));
        }
        def
    }

    /// The group's window; an end date with no next day is an error.
    fn window(&mut self, g: &RuleGroup) -> Option<Window> {
        match Window::of(&g.date_range) {
            Ok(w) => Some(w),
            Err(msg) => {
                self.err(format!("{}.dateRangeFilter.endDate", g.path()), msg);
                None
            }
        }
    }

    fn group(
        &mut self,
        g: &RuleGroup,
        object: SegmentObject,
        def: &'c ObjectDef,
    ) -> Option<GroupPlan<'c>> {
        let population = match &g.conditions {
            Conditions::Property(conds) => self.property_group(g, conds, def)?,
            Conditions::Metric(_) | Conditions::Relationship(_) => {
                self.metric_group(g, object, def)?
            }
            Conditions::Event(focus, conds) => self.event_group(g, *focus, conds, object, def)?,
        };
        Some(GroupPlan {
            main_operator: g.main_operator,
            conjunction: g.conjunction,
            population,
        })
    }

    fn property_group(
        &mut self,
        g: &RuleGroup,
        conds: &[Cond<PropertyField>],
        def: &'c ObjectDef,
    ) -> Option<Population<'c>> {
        let oid = Expr::col("o", &id(&def.id));
        let mut filter = vec![oid.is_not_null()];
        filter.extend(self.window(g)?.filter(Expr::col("o", &id(&def.time))));
        let mut preds = Vec::new();
        for c in conds {
            let path = format!("{}.g{}", g.path(), c.index);
            if let Some(p) = self.property_condition(&path, c, def) {
                preds.push((c.conjunction, p));
            }
        }
        if preds.len() != conds.len() {
            return None;
        }
        filter.push(combine(preds));
        Some(Population::Rows {
            filter: Expr::and(filter),
        })
    }

    fn property_condition(
        &mut self,
        path: &str,
        c: &Cond<PropertyField>,
        def: &ObjectDef,
    ) -> Option<Expr> {
        let field = self.found(field::property_field(def, &c.field, path))?;
        self.field_test(path, "o", field, false, &c.test)
    }

    /// Keeps a resolved field, or records why it is not one.
    fn found(&mut self, r: Result<FieldRef, ValidationError>) -> Option<FieldRef> {
        r.map_err(|e| self.err(e.path, e.message)).ok()
    }

    /// `test` on a field of the row aliased `alias`.
    fn field_test(
        &mut self,
        path: &str,
        alias: &'static str,
        field: FieldRef,
        numeric: bool,
        test: &Test,
    ) -> Option<Expr> {
        match field {
            FieldRef::Column(name, ty) => {
                self.on_value(path, Expr::col(alias, &name), ty.into(), test)
            }
            FieldRef::Keyed { array, key } => {
                self.keyed_entries(path, Expr::col(alias, &array), &key, numeric, test)
            }
        }
    }
}

/// AND binds tighter than OR.
pub(crate) fn combine(items: Vec<(Conjunction, Expr)>) -> Expr {
    Expr::or(and_or_terms(items).into_iter().map(Expr::and).collect())
}

pub(crate) fn unknown<'k>(
    what: &str,
    key: &str,
    known: impl Iterator<Item = &'k String>,
) -> String {
    let known: Vec<&str> = known.map(String::as_str).collect();
    format!("unknown {what} {key:?} (known: {})", known.join(", "))
}
