//! Raw Segment.com warehouse rows written by hand (SPEC §10) and the SQL that
//! loads them and reads the derived tables back, for BigQuery and Postgres.
//!
//! Rows are `|`-separated in the raw table's column order; `-` is NULL.
//! Timestamps are UTC.

/// The engine a fixture is written for (test-side SQL only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    BigQuery,
    Postgres,
}

pub const IDENTIFY_COLUMNS: &[&str] = &[
    "id",
    "anonymous_id",
    "user_id",
    "timestamp",
    "email",
    "first_name",
    "last_name",
];
pub const PAGE_COLUMNS: &[&str] = &[
    "id",
    "anonymous_id",
    "user_id",
    "timestamp",
    "url",
    "path",
    "title",
    "referrer",
    "context_campaign_source",
    "context_campaign_medium",
    "context_campaign_name",
];
pub const TRACK_COLUMNS: &[&str] = &[
    "id",
    "anonymous_id",
    "user_id",
    "timestamp",
    "event",
    "context_page_url",
];

/// The hard parts: a gap of one second less than the timeout (e01→e02), a
/// gap of exactly the timeout (e02→e03), equal timestamps (e03/e04, e20/e21,
/// i4/i5), events before and after an identify (a1), an anonymous id later
/// identified as a different user (a2: u1, then u2), events with only a
/// `user_id` (e30, e31), pages without tracks (a3) and tracks without pages
/// (a2, a4), redelivered ids (e01, e02, i1), a 9.9 s session (a4).
pub const IDENTIFIES: &[&str] = &[
    "i1|a1|u1|2024-06-10 10:30:00|ann@example.com|Ann|-",
    "i1|a1|u1|2024-06-10 10:30:00|ann@example.com|Ann|-",
    "i2|a2|u1|2024-06-10 12:01:00|ann@new.example.com|-|Lee",
    "i3|a2|u2|2024-06-10 12:04:00|bo@test.io|Bo|-",
    "i4|a3|u3|2024-06-10 09:00:00|cy@example.org|Cy|-",
    "i5|a3|u4|2024-06-10 09:00:00|-|-|-",
    "i6|-|u5|2024-06-10 08:00:00|dee@example.com|Dee|-",
];
pub const PAGES: &[&str] = &[
    "e01|a1|-|2024-06-10 10:00:00|https://x.io/home|/home|Home|https://google.com|google|cpc|spring",
    "e01|a1|-|2024-06-10 10:00:00|https://x.io/home|/home|Home|https://google.com|google|cpc|spring",
    "e04|a1|-|2024-06-10 10:59:59|https://x.io/pricing|/pricing|-|-|-|-|-",
    "e05|a1|u1|2024-06-10 11:00:05|https://x.io/docs|/docs|Docs|-|-|-|-",
    "e20|a3|-|2024-06-10 09:00:00|https://x.io/a|/a|A|-|-|-|-",
    "e21|a3|-|2024-06-10 09:00:00|https://x.io/b|/b|B|-|-|-|-",
    "e31|-|u9|2024-06-10 14:00:00|https://x.io/u9|/u9|-|-|-|-|-",
];
pub const TRACKS: &[&str] = &[
    "e02|a1|-|2024-06-10 10:29:59|signup_click|https://x.io/home",
    "e02|a1|-|2024-06-10 10:29:59|signup_click|https://x.io/home",
    "e03|a1|-|2024-06-10 10:59:59|scroll|https://x.io/pricing",
    "e10|a2|-|2024-06-10 12:00:00|open_app|-",
    "e11|a2|u2|2024-06-10 12:05:00|login|-",
    "e30|-|u3|2024-06-10 15:00:00|purchase|-",
    "e40|a4|-|2024-06-10 08:00:00|ping|-",
    "e41|a4|-|2024-06-10 08:00:09.900|ping|-",
];

/// `event_id|event_name|session_id|user_id|people_id|company_id|page_url|event_timestamp|properties|custom entries`.
pub const EXPECT_EVENTS: &[&str] = &[
    "e01|page_view|a1/e01|a1|u1|-|https://x.io/home|2024-06-10 10:00:00|path=/home,referrer=https://google.com,title=Home|0",
    "e02|signup_click|a1/e01|a1|u1|-|https://x.io/home|2024-06-10 10:29:59||0",
    "e03|scroll|a1/e03|a1|u1|-|https://x.io/pricing|2024-06-10 10:59:59||0",
    "e04|page_view|a1/e03|a1|u1|-|https://x.io/pricing|2024-06-10 10:59:59|path=/pricing|0",
    "e05|page_view|a1/e03|a1|u1|-|https://x.io/docs|2024-06-10 11:00:05|path=/docs,title=Docs|0",
    "e10|open_app|a2/e10|a2|u2|-|-|2024-06-10 12:00:00||0",
    "e11|login|a2/e10|a2|u2|-|-|2024-06-10 12:05:00||0",
    "e20|page_view|a3/e20|a3|u4|-|https://x.io/a|2024-06-10 09:00:00|path=/a,title=A|0",
    "e21|page_view|a3/e20|a3|u4|-|https://x.io/b|2024-06-10 09:00:00|path=/b,title=B|0",
    "e40|ping|a4/e40|a4|-|-|-|2024-06-10 08:00:00||0",
    "e41|ping|a4/e40|a4|-|-|-|2024-06-10 08:00:09||0",
];

/// `session_id|user_id|people_id|started_at|ended_at|landing_page|referrer|utm_source|utm_medium|utm_campaign|pageviews|duration_seconds|is_engaged|other columns`.
pub const EXPECT_SESSIONS: &[&str] = &[
    "a1/e01|a1|u1|2024-06-10 10:00:00|2024-06-10 10:29:59|https://x.io/home|https://google.com|google|cpc|spring|1|1799|true|-|0",
    "a1/e03|a1|u1|2024-06-10 10:59:59|2024-06-10 11:00:05|https://x.io/pricing|-|-|-|-|2|6|true|-|0",
    "a2/e10|a2|u2|2024-06-10 12:00:00|2024-06-10 12:05:00|-|-|-|-|-|0|300|true|-|0",
    "a3/e20|a3|u4|2024-06-10 09:00:00|2024-06-10 09:00:00|https://x.io/a|-|-|-|-|2|0|true|-|0",
    "a4/e40|a4|-|2024-06-10 08:00:00|2024-06-10 08:00:09|-|-|-|-|-|0|9|false|-|0",
];

/// `user_id|people_id|first_seen_at|last_seen_at|other columns`.
pub const EXPECT_USERS: &[&str] = &[
    "a1|u1|2024-06-10 10:00:00|2024-06-10 11:00:05|-|0",
    "a2|u2|2024-06-10 12:00:00|2024-06-10 12:05:00|-|0",
    "a3|u4|2024-06-10 09:00:00|2024-06-10 09:00:00|-|0",
    "a4|-|2024-06-10 08:00:00|2024-06-10 08:00:09|-|0",
];

/// `people_id|email|first_name|last_name|created_at|last_seen_at|other columns`.
pub const EXPECT_PEOPLE: &[&str] = &[
    "u1|ann@new.example.com|Ann|Lee|2024-06-10 10:30:00|2024-06-10 12:01:00|-|0",
    "u2|bo@test.io|Bo|-|2024-06-10 12:04:00|2024-06-10 12:05:00|-|0",
    "u3|cy@example.org|Cy|-|2024-06-10 09:00:00|2024-06-10 15:00:00|-|0",
    "u4|-|-|-|2024-06-10 09:00:00|2024-06-10 09:00:00|-|0",
    "u5|dee@example.com|Dee|-|2024-06-10 08:00:00|2024-06-10 08:00:00|-|0",
];

impl Engine {
    fn ts_type(self) -> &'static str {
        match self {
            Engine::BigQuery => "TIMESTAMP",
            Engine::Postgres => "timestamptz",
        }
    }

    fn text_type(self) -> &'static str {
        match self {
            Engine::BigQuery => "STRING",
            Engine::Postgres => "text",
        }
    }

    /// `"ns"."table"` or `` `project.ns.table` ``.
    pub fn table(self, project: &str, ns: &str, table: &str) -> String {
        match self {
            Engine::BigQuery => format!("`{project}.{ns}.{table}`"),
            Engine::Postgres => format!("\"{ns}\".\"{table}\""),
        }
    }

    fn literal(self, column: &str, v: &str) -> String {
        if v == "-" {
            return "NULL".into();
        }
        if column == "timestamp" {
            return match self {
                Engine::BigQuery => format!("TIMESTAMP '{v}+00'"),
                Engine::Postgres => format!("TIMESTAMPTZ '{v}+00'"),
            };
        }
        format!("'{}'", v.replace('\'', "''"))
    }

    /// `CREATE TABLE` of a raw table (with two columns the models must
    /// ignore) and one INSERT of `rows`.
    pub fn load_raw(
        self,
        project: &str,
        ns: &str,
        table: &str,
        columns: &[&str],
        rows: &[&str],
    ) -> Vec<String> {
        let t = self.table(project, ns, table);
        let defs: Vec<String> = columns
            .iter()
            .map(|c| {
                let ty = if *c == "timestamp" {
                    self.ts_type()
                } else {
                    self.text_type()
                };
                format!("{} {ty}", self.quote(c))
            })
            .collect();
        let mut out = vec![format!(
            "CREATE TABLE {t} ({}, {} {}, {} {})",
            defs.join(", "),
            self.quote("received_at"),
            self.ts_type(),
            self.quote("context_ip"),
            self.text_type()
        )];
        out.extend(self.insert_raw(project, ns, table, columns, rows));
        out
    }

    /// One INSERT of `rows` into a raw table (nothing when empty).
    pub fn insert_raw(
        self,
        project: &str,
        ns: &str,
        table: &str,
        columns: &[&str],
        rows: &[&str],
    ) -> Vec<String> {
        if rows.is_empty() {
            return vec![];
        }
        let t = self.table(project, ns, table);
        let values: Vec<String> = rows
            .iter()
            .map(|r| {
                let cells: Vec<String> = r
                    .split('|')
                    .zip(columns)
                    .map(|(v, c)| self.literal(c, v))
                    .collect();
                assert_eq!(cells.len(), columns.len(), "fixture row {r}");
                format!("({}, NULL, '10.0.0.1')", cells.join(", "))
            })
            .collect();
        let cols: Vec<String> = columns.iter().map(|c| self.quote(c)).collect();
        vec![format!(
            "INSERT INTO {t} ({}, {}, {}) VALUES {}",
            cols.join(", "),
            self.quote("received_at"),
            self.quote("context_ip"),
            values.join(", ")
        )]
    }

    fn quote(self, c: &str) -> String {
        match self {
            Engine::BigQuery => format!("`{c}`"),
            Engine::Postgres => format!("\"{c}\""),
        }
    }

    fn text(self, c: &str) -> String {
        match self {
            Engine::BigQuery => format!("COALESCE(CAST({c} AS STRING), '-')"),
            Engine::Postgres => format!("COALESCE(CAST({c} AS text), '-')"),
        }
    }

    fn ts(self, c: &str) -> String {
        match self {
            Engine::BigQuery => format!("COALESCE(FORMAT_TIMESTAMP('%F %T', {c}), '-')"),
            Engine::Postgres => {
                format!("COALESCE(to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), '-')")
            }
        }
    }

    /// `key=value,...` sorted by key.
    fn entries(self, c: &str) -> String {
        match self {
            Engine::BigQuery => format!(
                "COALESCE((SELECT STRING_AGG(CONCAT(e.key, '=', e.value), ',' ORDER BY e.key) FROM UNNEST({c}) AS e), '')"
            ),
            Engine::Postgres => format!(
                "COALESCE((SELECT string_agg((e->>'key') || '=' || (e->>'value'), ',' ORDER BY e->>'key') FROM jsonb_array_elements({c}) AS e), '')"
            ),
        }
    }

    fn length(self, c: &str) -> String {
        match self {
            Engine::BigQuery => format!("CAST(ARRAY_LENGTH({c}) AS STRING)"),
            Engine::Postgres => format!("CAST(jsonb_array_length({c}) AS text)"),
        }
    }

    fn text_array_length(self, c: &str) -> String {
        match self {
            Engine::BigQuery => format!("CAST(ARRAY_LENGTH({c}) AS STRING)"),
            Engine::Postgres => format!("CAST(cardinality({c}) AS text)"),
        }
    }

    fn row(self, parts: Vec<String>) -> String {
        match self {
            Engine::BigQuery => format!("CONCAT({})", parts.join(", '|', ")),
            Engine::Postgres => parts.join(" || '|' || "),
        }
    }

    /// One text column per derived row, in the `EXPECT_*` formats.
    pub fn read_events(self, table: &str) -> String {
        let p = vec![
            self.text("event_id"),
            self.text("event_name"),
            self.text("session_id"),
            self.text("user_id"),
            self.text("people_id"),
            self.text("company_id"),
            self.text("page_url"),
            self.ts("event_timestamp"),
            self.entries("properties"),
            self.length("custom"),
        ];
        format!("SELECT {} FROM {table}", self.row(p))
    }

    pub fn read_sessions(self, table: &str) -> String {
        let nulls = [
            "company_id",
            "channel",
            "device_type",
            "browser",
            "country",
            "region",
            "city",
        ]
        .map(|c| self.text(c));
        let p = vec![
            self.text("session_id"),
            self.text("user_id"),
            self.text("people_id"),
            self.ts("started_at"),
            self.ts("ended_at"),
            self.text("landing_page"),
            self.text("referrer"),
            self.text("utm_source"),
            self.text("utm_medium"),
            self.text("utm_campaign"),
            self.text("pageviews"),
            self.text("duration_seconds"),
            self.text("is_engaged"),
            self.same_nulls(&nulls),
            self.length("custom"),
        ];
        format!("SELECT {} FROM {table}", self.row(p))
    }

    pub fn read_users(self, table: &str) -> String {
        let nulls = ["country", "device_type", "browser"].map(|c| self.text(c));
        let p = vec![
            self.text("user_id"),
            self.text("people_id"),
            self.ts("first_seen_at"),
            self.ts("last_seen_at"),
            self.same_nulls(&nulls),
            self.length("custom"),
        ];
        format!("SELECT {} FROM {table}", self.row(p))
    }

    pub fn read_people(self, table: &str) -> String {
        let nulls =
            ["company_id", "job_title", "lifecycle_stage", "is_customer"].map(|c| self.text(c));
        let p = vec![
            self.text("people_id"),
            self.text("email"),
            self.text("first_name"),
            self.text("last_name"),
            self.ts("created_at"),
            self.ts("last_seen_at"),
            self.same_nulls(&nulls),
            self.text_array_length("tags"),
        ];
        format!("SELECT {} FROM {table}", self.row(p))
    }

    /// `-` when every one of the columns is NULL, otherwise the values.
    fn same_nulls(self, cols: &[String]) -> String {
        let all = self.row(cols.to_vec());
        match self {
            Engine::BigQuery => format!(
                "IF({all} = '{}', '-', {all})",
                vec!["-"; cols.len()].join("|")
            ),
            Engine::Postgres => format!(
                "CASE WHEN {all} = '{}' THEN '-' ELSE {all} END",
                vec!["-"; cols.len()].join("|")
            ),
        }
    }
}

/// Rows of the first load that the later, late rows join or re-split:
/// a5 has two sessions (a gap of 50 minutes), a6 one session from e60.
pub const PAGES_BEFORE: &[&str] = &[
    "e50|a5|-|2024-06-10 13:00:00|https://x.io/five|/five|-|-|-|-|-",
    "e52|a5|-|2024-06-10 13:50:00|https://x.io/five-b|/five-b|-|-|-|-|-",
    "e60|a6|-|2024-06-10 16:00:00|https://x.io/six|/six|-|-|-|-|-",
    "e62|a6|-|2024-06-10 16:20:00|https://x.io/six-b|/six-b|-|-|-|-|-",
];

/// Appended after the first build: late rows that join a5's sessions (e51)
/// and move a6's first event earlier (e61), a redelivery of e01, a new
/// anonymous id (a7), a new event for a4.
pub const PAGES_LATER: &[&str] = &[
    "e51|a5|-|2024-06-10 13:25:00|https://x.io/five-late|/five-late|Late|-|-|-|-",
    "e61|a6|-|2024-06-10 15:45:00|https://x.io/six-late|/six-late|-|https://bing.com|bing|-|-",
    "e01|a1|-|2024-06-10 10:00:00|https://x.io/home|/home|Home|https://google.com|google|cpc|spring",
    "e70|a7|-|2024-06-11 11:00:00|https://x.io/seven|/seven|-|-|-|-|-",
];
pub const TRACKS_LATER: &[&str] = &[
    "e42|a4|-|2024-06-11 09:00:00|ping|-",
    "e32|-|u5|2024-06-11 12:00:00|purchase|-",
];

/// Identity changes: a4 is identified as u3; a2 goes back to u1 (so u2
/// loses a2's events).
pub const IDENTIFIES_LATER: &[&str] = &[
    "i7|a4|u3|2024-06-11 08:00:00|-|-|-",
    "i8|a2|u1|2024-06-11 10:00:00|-|-|-",
];

/// Sessions of a4, a5 and a6 after the later rows (the `EXPECT_SESSIONS` format).
pub const EXPECT_SESSIONS_LATER: &[&str] = &[
    "a4/e40|a4|u3|2024-06-10 08:00:00|2024-06-10 08:00:09|-|-|-|-|-|0|9|false|-|0",
    "a4/e42|a4|u3|2024-06-11 09:00:00|2024-06-11 09:00:00|-|-|-|-|-|0|0|false|-|0",
    "a5/e50|a5|-|2024-06-10 13:00:00|2024-06-10 13:50:00|https://x.io/five|-|-|-|-|3|3000|true|-|0",
    "a6/e61|a6|-|2024-06-10 15:45:00|2024-06-10 16:20:00|https://x.io/six-late|https://bing.com|bing|-|-|3|2100|true|-|0",
];

/// People after the later rows.
pub const EXPECT_PEOPLE_LATER: &[&str] = &[
    "u1|ann@new.example.com|Ann|Lee|2024-06-10 10:30:00|2024-06-11 10:00:00|-|0",
    "u2|bo@test.io|Bo|-|2024-06-10 12:04:00|2024-06-10 12:04:00|-|0",
    "u3|cy@example.org|Cy|-|2024-06-10 09:00:00|2024-06-11 09:00:00|-|0",
    "u4|-|-|-|2024-06-10 09:00:00|2024-06-10 09:00:00|-|0",
    "u5|dee@example.com|Dee|-|2024-06-10 08:00:00|2024-06-11 12:00:00|-|0",
];

impl Engine {
    /// Every row of a table as one JSON text (column order of the table).
    pub fn read_rows(self, table: &str) -> String {
        match self {
            Engine::BigQuery => format!("SELECT TO_JSON_STRING(t) FROM {table} AS t"),
            Engine::Postgres => format!("SELECT CAST(row_to_json(t) AS text) FROM {table} AS t"),
        }
    }
}
