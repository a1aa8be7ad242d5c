//! The typed segment definition: what `parse` produces and `compile` consumes.
//! Every value here has already been validated; invalid states do not reach SQL.

use chrono::NaiveDate;
use std::fmt;

/// Declares a string-valued enum with its wire names in one place.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            pub fn from_wire(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// The kind of object a segment selects.
    SegmentObject {
        Event => "event",
        Session => "session",
        User => "user",
        People => "people",
        RevealedCompany => "revealed-company",
        WebConversion => "web-conversion",
        CrmLead => "crm-lead",
        CrmContact => "crm-contact",
        CrmAccount => "crm-account",
        CrmParentAccount => "crm-parent-account",
        CrmOpportunity => "crm-opportunity",
        CrmQuote => "crm-quote",
        CrmOrder => "crm-order",
        CrmContract => "crm-contract",
        CrmCampaign => "crm-campaign",
        CrmEvent => "crm-event",
    }
);

impl SegmentObject {
    pub fn is_crm(self) -> bool {
        self.as_str().starts_with("crm-")
    }
}

wire_enum!(
    /// What a rule group looks at.
    Focus {
        Property => "property",
        Metric => "metric",
        WebConversionEvent => "web-conversion-event",
        EcommerceEvent => "ecommerce-event",
        SalesConversionEvent => "sales-conversion-event",
        Relationship => "relationship",
        OtherEvent => "other-event",
    }
);

impl Focus {
    /// Event focuses test all conditions of a group on one event row.
    pub fn is_event(self) -> bool {
        matches!(
            self,
            Focus::WebConversionEvent
                | Focus::EcommerceEvent
                | Focus::SalesConversionEvent
                | Focus::OtherEvent
        )
    }
}

wire_enum!(
    /// The field type of a condition, as the web app sends it.
    FieldType {
        Dimension => "dimension",
        Metric => "metric",
        Custom => "custom",
        Conversion => "conversion",
        SalesConversion => "sales-conversion",
        Ecommerce => "ecommerce",
        Trigger => "trigger",
        CrmLifetimeCount => "crm-lifetime-count",
        Date => "date",
        MultiValue => "multi-value",
        Boolean => "boolean",
        Number => "number",
        Intent => "intent",
    }
);

wire_enum!(
    /// Every operator of SPEC §3. Which ones apply depends on the field.
    Operator {
        Equals => "equals",
        NotEqual => "not-equal",
        Contains => "contains",
        NotContain => "not-contain",
        StartsWith => "starts-with",
        EndsWith => "ends-with",
        MatchesRegex => "matches-regex",
        NotMatchRegex => "not-match-regex",
        InList => "in-list",
        NotInList => "not-in-list",
        IsSet => "is-set",
        IsNotSet => "is-not-set",
        GreaterThan => "greater-than",
        GreaterThanOrEqual => "greater-than-or-equal",
        LessThan => "less-than",
        LessThanOrEqual => "less-than-or-equal",
        Between => "between",
        Before => "before",
        After => "after",
        InLastDays => "in-last-days",
        IsTrue => "is-true",
        IsFalse => "is-false",
        ContainsAny => "contains-any",
        ContainsAll => "contains-all",
        NotContainsAny => "not-contains-any",
    }
);

impl Operator {
    /// The positive twin of a negative operator; `None` for positive ones.
    pub fn positive_twin(self) -> Option<Operator> {
        Some(match self {
            Operator::NotEqual => Operator::Equals,
            Operator::NotContain => Operator::Contains,
            Operator::NotMatchRegex => Operator::MatchesRegex,
            Operator::NotInList => Operator::InList,
            Operator::NotContainsAny => Operator::ContainsAny,
            Operator::IsNotSet => Operator::IsSet,
            _ => return None,
        })
    }
}

wire_enum!(
    MainOperator {
        Include => "include",
        Exclude => "exclude",
    }
);

wire_enum!(
    Conjunction {
        And => "and",
        Or => "or",
    }
);

/// A number as the user wrote it; integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// The validated operand of a condition, shaped by its operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// is-set, is-not-set, is-true, is-false, or an event selector alone.
    None,
    Text(String),
    TextList(Vec<String>),
    Regex(String),
    Number(Number),
    NumberRange(Number, Number),
    Date(NaiveDate),
    DateRange(NaiveDate, NaiveDate),
    Days(u32),
}

/// What a condition tests: an operator and its validated operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    pub operator: Operator,
    pub operand: Operand,
}

/// One condition (`g0`, `g1`, ...) of a rule group: the field it reads, in
/// the shape its group's focus gives it, and its test.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond<F, T = Test> {
    /// The `N` of `gN`, so errors found later name the condition as written.
    pub index: usize,
    pub conjunction: Conjunction,
    pub field: F,
    pub test: T,
}

/// A property-focus field: a column or row metric of the object, or a key of
/// its custom properties.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyField {
    Column(String),
    Custom(String),
    /// `type: metric`: a metric the catalog stores on the object's row.
    RowMetric(String),
}

/// A metric-focus field.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricField {
    /// A catalog metric of the object (`type` metric, number or absent).
    Metric(String),
    /// How many activity rows select `id` (`conversion`, `sales-conversion`,
    /// `ecommerce`, `trigger`).
    Count { kind: FieldType, id: String },
    /// How many related CRM objects of this kind, ever.
    CrmLifetimeCount(String),
}

/// An event-focus field: which event (`selected`) and which of its values.
#[derive(Debug, Clone, PartialEq)]
pub struct EventField {
    /// The selector value (an event name, a conversion id); `None` for any.
    pub selected: Option<String>,
    /// The column or property tested; `None` tests that the event happened.
    pub property: Option<EventProperty>,
    /// `type: number`: key/value properties compare as numbers.
    pub numeric: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventProperty {
    /// A column of the source, or a (dotted) key of its properties.
    pub name: String,
    /// The wire field it came from (`subKey` or `property`), for error paths.
    pub wire: &'static str,
}

/// A group's conditions, one shape per focus.
#[derive(Debug, Clone, PartialEq)]
pub enum Conditions {
    Property(Vec<Cond<PropertyField>>),
    Metric(Vec<Cond<MetricField>>),
    /// Related-object counts inside the group's range; the field is the related object.
    Relationship(Vec<Cond<String>>),
    /// The focus is one of the event focuses; the test is `None` when a
    /// condition only selects the event (`{"id": "purchase"}`).
    Event(Focus, Vec<Cond<EventField, Option<Test>>>),
}

impl Conditions {
    pub fn focus(&self) -> Focus {
        match self {
            Conditions::Property(_) => Focus::Property,
            Conditions::Metric(_) => Focus::Metric,
            Conditions::Relationship(_) => Focus::Relationship,
            Conditions::Event(f, _) => *f,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Conditions::Property(c) => c.len(),
            Conditions::Metric(c) => c.len(),
            Conditions::Relationship(c) => c.len(),
            Conditions::Event(_, c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRange {
    Lifetime,
    PreviousPeriod { days: u32 },
    Specific { start: NaiveDate, end: NaiveDate },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    /// The `N` of `ruleGroups[N]`.
    pub index: usize,
    pub main_operator: MainOperator,
    pub conjunction: Conjunction,
    pub object: SegmentObject,
    pub date_range: DateRange,
    pub conditions: Conditions,
}

impl RuleGroup {
    pub fn focus(&self) -> Focus {
        self.conditions.focus()
    }

    /// `ruleGroups[N]`.
    pub fn path(&self) -> String {
        format!("ruleGroups[{}]", self.index)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: String,
    pub account_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub object: SegmentObject,
    pub rule_groups: Vec<RuleGroup>,
}

impl Segment {
    /// `segment_{uuid with - turned into _}`.
    pub fn table_name(&self) -> String {
        segment_table_name(&self.id)
    }
}

/// The table of a segment: `segment_{id}` with `-` turned into `_`.
pub fn segment_table_name(id: &str) -> String {
    format!("segment_{}", id.replace('-', "_"))
}

/// The dataset (or schema) of an account: `prefix` + its id with `-` turned into `_`.
pub fn account_dataset(prefix: &str, account_id: &str) -> String {
    format!("{prefix}{}", account_id.replace('-', "_"))
}

/// Groups items by a conjunction list with AND binding tighter than OR:
/// the result is a disjunction of conjunctions (each inner Vec is ANDed).
pub fn and_or_terms<T>(items: impl IntoIterator<Item = (Conjunction, T)>) -> Vec<Vec<T>> {
    let mut terms: Vec<Vec<T>> = Vec::new();
    for (i, (conj, item)) in items.into_iter().enumerate() {
        if i == 0 || conj == Conjunction::Or {
            terms.push(vec![item]);
        } else if let Some(last) = terms.last_mut() {
            last.push(item);
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn and_binds_tighter_than_or() {
        use Conjunction::*;
        let terms = and_or_terms([(Or, 'a'), (And, 'b'), (Or, 'c'), (And, 'd')]);
        assert_eq!(terms, vec![vec!['a', 'b'], vec!['c', 'd']]);
        let terms = and_or_terms([(And, 'a'), (Or, 'b'), (Or, 'c')]);
        assert_eq!(terms, vec![vec!['a'], vec!['b'], vec!['c']]);
    }

    #[test]
    fn wire_names_round_trip() {
        for op in Operator::ALL {
            assert_eq!(Operator::from_wire(op.as_str()), Some(*op));
        }
        assert_eq!(
            SegmentObject::from_wire("crm-lead"),
            Some(SegmentObject::CrmLead)
        );
        assert!(SegmentObject::CrmLead.is_crm());
        assert!(!SegmentObject::People.is_crm());
    }
}
