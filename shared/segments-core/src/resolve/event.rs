//! Event groups: every condition of a group tests the same event row.

use super::{Resolver, combine, field, id};
use crate::activity::link_key;
use crate::catalog::{ObjectDef, SourceDef};
use crate::model::*;
use crate::plan::Population;
use crate::sql::*;

impl<'c> Resolver<'c> {
    pub(super) fn event_group(
        &mut self,
        g: &RuleGroup,
        focus: Focus,
        conds: &[Cond<EventField, Option<Test>>],
        object: SegmentObject,
        _def: &'c ObjectDef,
    ) -> Option<Population<'c>> {
        let path = g.path();
        let Some((sel, source)) = self.catalog.event_focus(focus) else {
            self.err(
                format!("{path}.conditionFocus"),
                format!("the catalog defines no source for \"{focus}\""),
            );
            return None;
        };
        let Some((key, mut filter)) = link_key(source, object, "e") else {
            self.err(
                format!("{path}.conditionFocus"),
                format!(
                    "\"{focus}\" rows ({}) do not link to {object}",
                    source.table
                ),
            );
            return None;
        };
        filter.extend(self.window(g)?.filter(Expr::col("e", &id(&source.time))));
        let mut preds = Vec::new();
        for c in conds {
            let cpath = format!("{path}.g{}", c.index);
            if let Some(p) = self.event_condition(&cpath, c, &sel.selector, source) {
                preds.push((c.conjunction, p));
            }
        }
        if preds.len() != conds.len() {
            return None;
        }
        filter.push(combine(preds));
        Some(Population::Events {
            source,
            key,
            filter: Expr::and(filter),
        })
    }

    /// The selector test and the property test of one condition.
    fn event_condition(
        &mut self,
        path: &str,
        c: &Cond<EventField, Option<Test>>,
        selector: &str,
        source: &SourceDef,
    ) -> Option<Expr> {
        let mut parts = Vec::new();
        if let Some(s) = &c.field.selected {
            parts.push(Expr::col("e", &id(selector)).eq(Expr::str(s)));
        }
        // Without a property the condition only selects the event.
        if let (Some(prop), Some(test)) = (&c.field.property, &c.test) {
            let field = self.found(field::event_property(source, prop, path))?;
            parts.push(self.field_test(path, "e", field, c.field.numeric, test)?);
        }
        Some(Expr::and(parts))
    }
}
