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

/// One condition (`g0`, `g1`, ...) of a rule group.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub conjunction: Conjunction,
    pub field_type: Option<FieldType>,
    pub key: Option<String>,
    pub sub_key: Option<String>,
    pub sub_key_lv2: Option<String>,
    pub property: Option<String>,
    pub id: Option<String>,
    /// `None` only for event conditions that select by `id` alone.
    pub operator: Option<Operator>,
    pub operand: Operand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRange {
    Lifetime,
    PreviousPeriod { days: u32 },
    Specific { start: NaiveDate, end: NaiveDate },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub main_operator: MainOperator,
    pub conjunction: Conjunction,
    pub object: SegmentObject,
    pub focus: Focus,
    pub date_range: DateRange,
    pub conditions: Vec<Condition>,
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

pub fn segment_table_name(id: &str) -> String {
    format!("segment_{}", id.replace('-', "_"))
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
