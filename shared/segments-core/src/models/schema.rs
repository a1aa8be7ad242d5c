//! The tables of the reference warehouse (SPEC §5) with their column types,
//! for models that build or create them.

use crate::sql::ValueType::{self, *};

/// A §5 table: its name and typed columns, in the fixture warehouse's order.
pub struct TableSchema {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ValueType)],
}

const CRM: &[(&str, ValueType)] = &[
    ("id", Text),
    ("name", Text),
    ("status", Text),
    ("stage", Text),
    ("owner", Text),
    ("amount", Float),
    ("people_id", Text),
    ("company_id", Text),
    ("created_at", Timestamp),
    ("last_modified_at", Timestamp),
    ("custom", KeyValues),
];

/// The §5 tables no Segment model derives: they are created empty.
pub const EMPTY_TABLES: &[TableSchema] = &[
    TableSchema {
        name: "companies",
        columns: &[
            ("company_id", Text),
            ("name", Text),
            ("domain", Text),
            ("industry", Text),
            ("country", Text),
            ("employee_count", Int),
            ("annual_revenue", Float),
            ("intent_topics", TextArray),
            ("first_seen_at", Timestamp),
            ("last_seen_at", Timestamp),
            ("custom", KeyValues),
        ],
    },
    TableSchema {
        name: "web_conversions",
        columns: &[
            ("web_conversion_id", Text),
            ("conversion_id", Text),
            ("conversion_name", Text),
            ("session_id", Text),
            ("user_id", Text),
            ("people_id", Text),
            ("company_id", Text),
            ("value", Float),
            ("converted_at", Timestamp),
            ("custom", KeyValues),
            ("properties", KeyValues),
        ],
    },
    TableSchema {
        name: "ecommerce_events",
        columns: &[
            ("event_id", Text),
            ("event_name", Text),
            ("session_id", Text),
            ("user_id", Text),
            ("people_id", Text),
            ("company_id", Text),
            ("transaction_id", Text),
            ("revenue", Float),
            ("event_timestamp", Timestamp),
            ("properties", KeyValues),
        ],
    },
    TableSchema {
        name: "sales_conversions",
        columns: &[
            ("sales_conversion_event_id", Text),
            ("sales_conversion_id", Text),
            ("crm_object", Text),
            ("crm_object_id", Text),
            ("people_id", Text),
            ("company_id", Text),
            ("value", Float),
            ("converted_at", Timestamp),
            ("properties", KeyValues),
        ],
    },
    TableSchema {
        name: "trigger_fires",
        columns: &[
            ("fire_id", Text),
            ("trigger_id", Text),
            ("session_id", Text),
            ("user_id", Text),
            ("people_id", Text),
            ("company_id", Text),
            ("fired_at", Timestamp),
        ],
    },
    TableSchema {
        name: "crm_relations",
        columns: &[
            ("from_object", Text),
            ("from_id", Text),
            ("to_object", Text),
            ("to_id", Text),
            ("created_at", Timestamp),
        ],
    },
    TableSchema {
        name: "crm_leads",
        columns: CRM,
    },
    TableSchema {
        name: "crm_contacts",
        columns: CRM,
    },
    TableSchema {
        name: "crm_accounts",
        columns: CRM,
    },
    TableSchema {
        name: "crm_parent_accounts",
        columns: CRM,
    },
    TableSchema {
        name: "crm_opportunities",
        columns: CRM,
    },
    TableSchema {
        name: "crm_quotes",
        columns: CRM,
    },
    TableSchema {
        name: "crm_orders",
        columns: CRM,
    },
    TableSchema {
        name: "crm_contracts",
        columns: CRM,
    },
    TableSchema {
        name: "crm_campaigns",
        columns: CRM,
    },
    TableSchema {
        name: "crm_events",
        columns: CRM,
    },
];
