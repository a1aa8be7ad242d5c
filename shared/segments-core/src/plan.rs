//! The resolved plan: rules checked against the catalog. Every name is a
//! catalog column, every predicate is a table-free SQL expression over fixed
//! aliases (`o` the object row, `e` the event row, `m{i}`/`r{i}` the joined
//! aggregates); only [`crate::compile`] decides which tables they read.

use crate::activity::{Activity, Window};
use crate::catalog::{ObjectDef, RelationsDef, SourceDef};
use crate::model::{Conjunction, MainOperator, SegmentObject};
use crate::sql::Expr;

#[derive(Debug, Clone)]
pub struct Plan<'c> {
    pub object: SegmentObject,
    pub def: &'c ObjectDef,
    pub groups: Vec<GroupPlan<'c>>,
}

#[derive(Debug, Clone)]
pub struct GroupPlan<'c> {
    pub main_operator: MainOperator,
    pub conjunction: Conjunction,
    pub population: Population<'c>,
}

/// Which objects a group selects.
#[derive(Debug, Clone)]
pub enum Population<'c> {
    /// Objects whose own row (`o`) satisfies `filter` (property focus).
    Rows { filter: Expr },
    /// Objects (`o`) joined to per-object aggregates of activity (`m{i}`)
    /// and related-object counts (`r{i}`) inside `window`, satisfying
    /// `filter` (metric and relationship focus).
    Measured {
        activity: Activity<'c>,
        relations: Vec<Relation<'c>>,
        window: Window,
        filter: Expr,
    },
    /// Objects with a row of `source` (`e`) satisfying `filter`, linked by `key`.
    Events {
        source: &'c SourceDef,
        key: Expr,
        filter: Expr,
    },
}

/// Distinct related objects per object, through the relation table.
#[derive(Debug, Clone)]
pub struct Relation<'c> {
    pub related: SegmentObject,
    pub def: &'c ObjectDef,
    /// The catalog's relation table.
    pub via: &'c RelationsDef,
    /// Count only related objects whose time is inside the group's window.
    pub in_range: bool,
}
