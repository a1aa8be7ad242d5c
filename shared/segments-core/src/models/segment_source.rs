//! Models over a Segment.com warehouse (SPEC §10): the raw `identifies`,
//! `pages` and `tracks` of a source dataset become the reference tables
//! `events`, `sessions`, `users` and `people` of the account's dataset.
//!
//! Every statement is an AST rendered by the target's dialect. The build goes
//! through four staging tables in the account's dataset:
//!
//! 1. `segment_src_identifies`: `identifies` without redelivered ids.
//! 2. `segment_src_hits`: `pages` and `tracks` without redelivered ids, in one
//!    shape (a page is a hit named `page_view`).
//! 3. `segment_src_identity`: each `anonymous_id` and the `user_id` of its
//!    latest row (by `timestamp`, then `id`) that carries both.
//! 4. `segment_src_sessionised`: the hits with an `anonymous_id`, their mapped
//!    user and their `session_id`.
//!
//! then the derived tables from them, then the other §5 tables (empty).

use super::schema::{EMPTY_TABLES, TableSchema};
use crate::error::CoreError;
use crate::sql::{
    AggFunc, BinOp, Expr, FromItem, Func, Ident, Join, JoinKind, OrderKey, Query, Select,
    SelectItem, SetOp, Statement, TableRef, Target, ValueType, Window, WindowFunc,
};
use crate::time::Clock;

/// The staging tables the models keep in the account's dataset.
pub const STAGING_TABLES: &[&str] = &[
    "segment_src_identifies",
    "segment_src_hits",
    "segment_src_identity",
    "segment_src_sessionised",
    "segment_src_new_identifies",
    "segment_src_new_hits",
    AFFECTED_ANONS,
    AFFECTED_PEOPLE,
];

/// Where the raw tables are, where the models go, and the session rule.
#[derive(Debug, Clone)]
pub struct SegmentSource {
    /// The dataset (or schema) holding Segment's raw tables.
    pub source: Target,
    /// The account's dataset (or schema) the §5 tables are built in.
    pub target: Target,
    /// A new session starts at an event at least this long after the previous one.
    pub session_timeout_seconds: i64,
}

/// The default session timeout (30 minutes), as the Segment packages use.
pub const DEFAULT_SESSION_TIMEOUT_MINUTES: u32 = 30;

impl SegmentSource {
    /// Checks the options: both targets in one dialect, a timeout of 1 minute
    /// to 1 week.
    pub fn new(
        source: Target,
        target: Target,
        session_timeout_minutes: u32,
    ) -> Result<SegmentSource, CoreError> {
        if source.dialect_kind() != target.dialect_kind() {
            return Err(CoreError::Argument(
                "the source and target datasets must be in one warehouse dialect".into(),
            ));
        }
        if !(1..=7 * 24 * 60).contains(&session_timeout_minutes) {
            return Err(CoreError::Argument(format!(
                "session timeout must be 1 to 10080 minutes, got {session_timeout_minutes}"
            )));
        }
        Ok(SegmentSource {
            source,
            target,
            session_timeout_seconds: i64::from(session_timeout_minutes) * 60,
        })
    }

    /// The statements of a full build, rendered, to run in order.
    pub fn full_build(&self) -> Result<Vec<String>, CoreError> {
        let mut out = Vec::new();
        let all = Scope::All;
        let staged = [
            ("segment_src_identifies", self.staged_identifies(all)),
            ("segment_src_hits", self.staged_hits(all)),
            ("segment_src_identity", self.identity(all)),
            ("segment_src_sessionised", self.sessionised(all)),
            ("events", self.events(all)),
            ("sessions", self.sessions(all)),
            ("users", self.users(all)),
            ("people", self.people(all)),
            // A refresh starts from empty lists of what to rebuild.
            (AFFECTED_ANONS, self.affected_none(AFFECTED_ANONS)),
            (AFFECTED_PEOPLE, self.affected_none(AFFECTED_PEOPLE)),
        ];
        for (name, query) in &staged {
            out.push(self.target.render(
                &Statement::CreateOrReplaceTable {
                    table: self.target.table(name),
                    query,
                },
                Clock::Placeholders,
            )?);
        }
        for t in EMPTY_TABLES {
            out.push(self.create_empty(t)?);
        }
        Ok(out)
    }

    /// The statements of a refresh after an earlier build (full or refresh)
    /// of the same datasets, rendered, to run in order. It reads the raw rows
    /// whose `id` is not staged yet (new and late rows alike), finds the
    /// anonymous ids and people they touch (including identity changes), and
    /// rebuilds only their rows; every other row is kept. The result equals
    /// a full build over the same raw tables (see docs/segment-source.md).
    pub fn refresh(&self) -> Result<Vec<String>, CoreError> {
        let aff = Scope::Affected;
        let mut steps: Vec<(&str, Query)> = vec![
            // 1. What is new.
            ("segment_src_new_identifies", self.staged_identifies(aff)),
            ("segment_src_new_hits", self.staged_hits(aff)),
            // 2. Whom it touches, before the identity moves (plus whatever a
            //    refresh that failed part-way left to rebuild).
            (AFFECTED_ANONS, self.affected_anons()),
            (AFFECTED_PEOPLE, self.affected_people(false)),
            // 3. Staged raw rows grow by the new ones.
            (
                "segment_src_identifies",
                self.append("segment_src_identifies", "segment_src_new_identifies"),
            ),
            (
                "segment_src_hits",
                self.append("segment_src_hits", "segment_src_new_hits"),
            ),
        ];
        // 4. Rebuild the touched rows, keep the others.
        steps.push((
            "segment_src_identity",
            self.keep_others(
                "segment_src_identity",
                "anonymous_id",
                AFFECTED_ANONS,
                self.identity(aff),
            ),
        ));
        steps.push((AFFECTED_PEOPLE, self.affected_people(true)));
        steps.push((
            "segment_src_sessionised",
            self.keep_others(
                "segment_src_sessionised",
                "anonymous_id",
                AFFECTED_ANONS,
                self.sessionised(aff),
            ),
        ));
        steps.push((
            "events",
            self.keep_others("events", "user_id", AFFECTED_ANONS, self.events(aff)),
        ));
        steps.push((
            "sessions",
            self.keep_others("sessions", "user_id", AFFECTED_ANONS, self.sessions(aff)),
        ));
        steps.push((
            "users",
            self.keep_others("users", "user_id", AFFECTED_ANONS, self.users(aff)),
        ));
        steps.push((
            "people",
            self.keep_others("people", "people_id", AFFECTED_PEOPLE, self.people(aff)),
        ));
        // 5. Done: nothing is left to rebuild. Until this runs, the lists
        //    stay, so a refresh that failed part-way is completed by the next.
        steps.push((AFFECTED_ANONS, self.affected_none(AFFECTED_ANONS)));
        steps.push((AFFECTED_PEOPLE, self.affected_none(AFFECTED_PEOPLE)));
        let mut out = Vec::new();
        for (name, query) in &steps {
            out.push(self.target.render(
                &Statement::CreateOrReplaceTable {
                    table: self.target.table(name),
                    query,
                },
                Clock::Placeholders,
            )?);
        }
        for t in EMPTY_TABLES {
            out.push(self.create_empty(t)?);
        }
        Ok(out)
    }

    /// `expr IN (SELECT key FROM affected)` when only the affected rows are built.
    fn only(&self, scope: Scope, expr: Expr, affected: &str) -> Option<Expr> {
        (scope == Scope::Affected).then(|| {
            let key = affected_key(affected);
            Expr::InQuery(
                Box::new(expr),
                Box::new(Query::select(
                    Select {
                        from: Some(table(self.staging(affected), "x")),
                        ..Select::default()
                    }
                    .items_from(vec![(col("x", key), key)]),
                )),
            )
        })
    }

    /// The anonymous ids of new rows: their identity, sessions, events and
    /// user rows are rebuilt.
    fn affected_anons(&self) -> Query {
        let of = |t: &str, alias: &'static str| {
            Query::select(
                Select {
                    from: Some(table(self.staging(t), alias)),
                    filter: Some(col(alias, "anonymous_id").is_not_null()),
                    ..Select::default()
                }
                .items_from(vec![(col(alias, "anonymous_id"), "anonymous_id")]),
            )
        };
        Query::select(
            Select {
                distinct: true,
                from: Some(sub(
                    Query::Set(
                        SetOp::UnionAll,
                        vec![
                            of("segment_src_new_hits", "h"),
                            of("segment_src_new_identifies", "i"),
                            of(AFFECTED_ANONS, "p"),
                        ],
                    ),
                    "a",
                )),
                ..Select::default()
            }
            .items_from(vec![(col("a", "anonymous_id"), "anonymous_id")]),
        )
    }

    /// The people whose row is rebuilt: the user ids of new rows, and the
    /// people the affected anonymous ids map to (before the identity is
    /// rebuilt; with `again`, the ones already listed plus those after).
    fn affected_people(&self, again: bool) -> Query {
        let user_ids = |t: &str, alias: &'static str| {
            Query::select(
                Select {
                    from: Some(table(self.staging(t), alias)),
                    ..Select::default()
                }
                .items_from(vec![(col(alias, "user_id"), "person")]),
            )
        };
        let mapped = Query::select(
            Select {
                from: Some(table(self.staging("segment_src_identity"), "m")),
                filter: self.only(Scope::Affected, col("m", "anonymous_id"), AFFECTED_ANONS),
                ..Select::default()
            }
            .items_from(vec![(col("m", "user_id"), "person")]),
        );
        let mut parts = vec![
            mapped,
            Query::select(
                Select {
                    from: Some(table(self.staging(AFFECTED_PEOPLE), "p")),
                    ..Select::default()
                }
                .items_from(vec![(col("p", "person"), "person")]),
            ),
        ];
        if !again {
            parts.push(user_ids("segment_src_new_identifies", "i"));
            parts.push(user_ids("segment_src_new_hits", "h"));
        }
        Query::select(
            Select {
                distinct: true,
                from: Some(sub(Query::Set(SetOp::UnionAll, parts), "a")),
                filter: Some(col("a", "person").is_not_null()),
                ..Select::default()
            }
            .items_from(vec![(col("a", "person"), "person")]),
        )
    }

    /// An empty list of anonymous ids or people (typed like a full one).
    fn affected_none(&self, affected: &str) -> Query {
        let key = affected_key(affected);
        Query::select(
            Select {
                from: Some(table(self.staging("segment_src_identity"), "x")),
                filter: Some(Expr::Bool(false)),
                ..Select::default()
            }
            .items_from(vec![(col("x", "user_id"), key)]),
        )
    }

    /// The staged rows of `table` followed by those of `new` (same columns).
    fn append(&self, table_name: &str, new: &str) -> Query {
        let columns = if table_name == "segment_src_hits" {
            output_columns(&self.staged_hits(Scope::All))
        } else {
            IDENTIFY_COLUMNS.iter().map(|c| Ident::trusted(c)).collect()
        };
        let all = |t: &str, alias: &'static str| {
            let mut sel = Select {
                from: Some(table(self.staging(t), alias)),
                ..Select::default()
            };
            for c in &columns {
                sel.items.push(item(col(alias, c.as_str()), c.as_str()));
            }
            Query::select(sel)
        };
        Query::Set(SetOp::UnionAll, vec![all(table_name, "o"), all(new, "n")])
    }

    /// The rows of `table` whose `key` is not affected, then `rebuilt`.
    fn keep_others(&self, table_name: &str, key: &str, affected: &str, rebuilt: Query) -> Query {
        let mut kept = Select {
            from: Some(table(self.staging(table_name), "o")),
            filter: self
                .only(Scope::Affected, col("o", key), affected)
                .map(|e| Expr::Not(Box::new(e))),
            ..Select::default()
        };
        for c in output_columns(&rebuilt) {
            kept.items.push(item(col("o", c.as_str()), c.as_str()));
        }
        Query::Set(SetOp::UnionAll, vec![Query::select(kept), rebuilt])
    }

    fn create_empty(&self, t: &TableSchema) -> Result<String, CoreError> {
        let columns = t
            .columns
            .iter()
            .map(|(name, ty)| (Ident::fixed(name), *ty))
            .collect();
        self.target.render(
            &Statement::CreateTableIfNotExists {
                table: self.target.table(t.name),
                columns,
                partition_by_day: None,
                cluster_by: vec![],
            },
            Clock::Placeholders,
        )
    }

    fn raw(&self, name: &str) -> TableRef {
        self.source.table(name)
    }

    fn staging(&self, name: &str) -> TableRef {
        self.target.table(name)
    }

    /// A raw table without redelivered ids: per `id`, the copy that sorts
    /// first on every column read (so the choice never depends on the engine).
    /// Rows without an `id` are no event. With `unseen`, only ids the staging
    /// table (`staged` on its `key` column, rows matching `kind`) lacks.
    fn dedup(&self, raw: &str, columns: &[&'static str], unseen: Option<Unseen>) -> Query {
        let order = columns
            .iter()
            .filter(|c| **c != "id")
            .map(|c| {
                let key = OrderKey::asc(col("r", c));
                if *c == "timestamp" { key } else { key.bytes() }
            })
            .collect();
        let rn = Window::new(WindowFunc::RowNumber, vec![])
            .partition(vec![col("r", "id")])
            .order(order)
            .expr();
        let mut filter = vec![col("r", "id").is_not_null()];
        if let Some(u) = unseen {
            let mut matches = vec![col("s", u.key).eq(col("r", "id"))];
            matches.extend(u.kind.map(|(c, v)| col("s", c).eq(Expr::Bool(v))));
            filter.push(Expr::Not(Box::new(Expr::Exists(Box::new(Query::select(
                Select {
                    from: Some(table(self.staging(u.staged), "s")),
                    filter: Some(Expr::and(matches)),
                    ..Select::default()
                }
                .items_from(vec![(Expr::Int(1), "found")]),
            ))))));
        }
        let mut inner = Select {
            from: Some(table(self.raw(raw), "r")),
            filter: Some(Expr::and(filter)),
            ..Select::default()
        };
        for c in columns {
            inner.items.push(item(col("r", c), c));
        }
        inner.items.push(item(rn, "copy_number"));
        let mut outer = Select {
            from: Some(sub(Query::select(inner), "d")),
            filter: Some(col("d", "copy_number").eq(Expr::Int(1))),
            ..Select::default()
        };
        for c in columns {
            outer.items.push(item(col("d", c), c));
        }
        Query::select(outer)
    }

    /// The identifies (only those not staged yet, for a refresh).
    fn staged_identifies(&self, scope: Scope) -> Query {
        let unseen = (scope == Scope::Affected).then_some(Unseen {
            staged: "segment_src_identifies",
            key: "id",
            kind: None,
        });
        self.dedup("identifies", IDENTIFY_COLUMNS, unseen)
    }

    /// Pages and tracks in one shape (only those not staged yet, for a refresh).
    fn staged_hits(&self, scope: Scope) -> Query {
        let unseen = |page: bool| {
            (scope == Scope::Affected).then_some(Unseen {
                staged: "segment_src_hits",
                key: "event_id",
                kind: Some(("is_page", page)),
            })
        };
        let null = || Expr::TypedNull(ValueType::Text);
        let page = |c: &str| col("p", c);
        let pages = Select {
            from: Some(sub(self.dedup("pages", PAGE_COLUMNS, unseen(true)), "p")),
            ..Select::default()
        }
        .items_from(vec![
            (page("id"), "event_id"),
            (page("anonymous_id"), "anonymous_id"),
            (page("user_id"), "user_id"),
            (page("timestamp"), "event_timestamp"),
            (Expr::str("page_view"), "event_name"),
            (page("url"), "page_url"),
            (page("path"), "path"),
            (page("title"), "title"),
            (page("referrer"), "referrer"),
            (page("context_campaign_source"), "utm_source"),
            (page("context_campaign_medium"), "utm_medium"),
            (page("context_campaign_name"), "utm_campaign"),
            (Expr::Bool(true), "is_page"),
        ]);
        let track = |c: &str| col("t", c);
        let tracks = Select {
            from: Some(sub(self.dedup("tracks", TRACK_COLUMNS, unseen(false)), "t")),
            ..Select::default()
        }
        .items_from(vec![
            (track("id"), "event_id"),
            (track("anonymous_id"), "anonymous_id"),
            (track("user_id"), "user_id"),
            (track("timestamp"), "event_timestamp"),
            (track("event"), "event_name"),
            (track("context_page_url"), "page_url"),
            (null(), "path"),
            (null(), "title"),
            (null(), "referrer"),
            (null(), "utm_source"),
            (null(), "utm_medium"),
            (null(), "utm_campaign"),
            (Expr::Bool(false), "is_page"),
        ]);
        Query::Set(
            SetOp::UnionAll,
            vec![Query::select(pages), Query::select(tracks)],
        )
    }

    /// Each `anonymous_id` with the `user_id` of its latest row (by
    /// `timestamp`, then `id` as bytes) among identifies, pages and tracks
    /// that carries both.
    fn identity(&self, scope: Scope) -> Query {
        let both = |alias: &'static str| {
            let mut all = vec![
                col(alias, "anonymous_id").is_not_null(),
                col(alias, "user_id").is_not_null(),
            ];
            all.extend(self.only(scope, col(alias, "anonymous_id"), AFFECTED_ANONS));
            Expr::and(all)
        };
        let from_hits = Select {
            from: Some(table(self.staging("segment_src_hits"), "h")),
            filter: Some(both("h")),
            ..Select::default()
        }
        .items_from(vec![
            (col("h", "event_id"), "id"),
            (col("h", "anonymous_id"), "anonymous_id"),
            (col("h", "user_id"), "user_id"),
            (col("h", "event_timestamp"), "at"),
        ]);
        let from_identifies = Select {
            from: Some(table(self.staging("segment_src_identifies"), "i")),
            filter: Some(both("i")),
            ..Select::default()
        }
        .items_from(vec![
            (col("i", "id"), "id"),
            (col("i", "anonymous_id"), "anonymous_id"),
            (col("i", "user_id"), "user_id"),
            (col("i", "timestamp"), "at"),
        ]);
        let rows = Query::Set(
            SetOp::UnionAll,
            vec![Query::select(from_hits), Query::select(from_identifies)],
        );
        let rank = Window::new(WindowFunc::RowNumber, vec![])
            .partition(vec![col("a", "anonymous_id")])
            .order(vec![
                OrderKey::desc(col("a", "at")),
                OrderKey::desc(col("a", "id")).bytes(),
                OrderKey::desc(col("a", "user_id")).bytes(),
            ])
            .expr();
        let ranked = Select {
            from: Some(sub(rows, "a")),
            ..Select::default()
        }
        .items_from(vec![
            (col("a", "anonymous_id"), "anonymous_id"),
            (col("a", "user_id"), "user_id"),
            (rank, "latest"),
        ]);
        Query::select(
            Select {
                from: Some(sub(Query::select(ranked), "b")),
                filter: Some(col("b", "latest").eq(Expr::Int(1))),
                ..Select::default()
            }
            .items_from(vec![
                (col("b", "anonymous_id"), "anonymous_id"),
                (col("b", "user_id"), "user_id"),
            ]),
        )
    }

    /// The hits with an `anonymous_id`, their mapped user (`people_id`) and
    /// `session_id`: per `anonymous_id` in (`timestamp`, `id`) order, a
    /// session starts at the first hit and at every hit at least the timeout
    /// after the previous one.
    fn sessionised(&self, scope: Scope) -> Query {
        let order = |a: &'static str| {
            vec![
                OrderKey::asc(col(a, "event_timestamp")),
                OrderKey::asc(col(a, "event_id")).bytes(),
            ]
        };
        // 1. The previous hit's time.
        let previous = Window::new(WindowFunc::Lag, vec![col("h", "event_timestamp")])
            .partition(vec![col("h", "anonymous_id")])
            .order(order("h"))
            .expr();
        let mut first = Select {
            from: Some(table(self.staging("segment_src_hits"), "h")),
            joins: vec![Join {
                kind: JoinKind::Left,
                item: table(self.staging("segment_src_identity"), "i"),
                on: col("i", "anonymous_id").eq(col("h", "anonymous_id")),
            }],
            filter: Some(Expr::and(
                std::iter::once(col("h", "anonymous_id").is_not_null())
                    .chain(self.only(scope, col("h", "anonymous_id"), AFFECTED_ANONS))
                    .collect(),
            )),
            ..Select::default()
        };
        for c in SESSIONISED_HIT_COLUMNS {
            first.items.push(item(col("h", c), c));
        }
        first.items.push(item(col("i", "user_id"), "people_id"));
        first.items.push(item(previous, "previous_at"));
        // 2. A running count of session starts numbers the sessions.
        let starts = Expr::call(
            Func::If,
            vec![
                Expr::or(vec![
                    Expr::IsNull(Box::new(col("a", "previous_at"))),
                    col("a", "event_timestamp").bin(
                        BinOp::GtEq,
                        Expr::AddSeconds(
                            Box::new(col("a", "previous_at")),
                            self.session_timeout_seconds,
                        ),
                    ),
                ]),
                Expr::Int(1),
                Expr::Int(0),
            ],
        );
        let number = Window::new(WindowFunc::Sum, vec![starts])
            .partition(vec![col("a", "anonymous_id")])
            .order(order("a"))
            .running()
            .expr();
        let mut second = Select {
            from: Some(sub(Query::select(first), "a")),
            ..Select::default()
        };
        for c in SESSIONISED_HIT_COLUMNS.iter().chain(["people_id"].iter()) {
            second.items.push(item(col("a", c), c));
        }
        second.items.push(item(number, "session_number"));
        // 3. The session id names the session's first hit.
        let first_id = Window::new(WindowFunc::FirstValue, vec![col("b", "event_id")])
            .partition(vec![col("b", "anonymous_id"), col("b", "session_number")])
            .order(order("b"))
            .expr();
        let mut third = Select {
            from: Some(sub(Query::select(second), "b")),
            ..Select::default()
        };
        for c in SESSIONISED_HIT_COLUMNS.iter().chain(["people_id"].iter()) {
            third.items.push(item(col("b", c), c));
        }
        third.items.push(item(
            Expr::Concat(vec![col("b", "anonymous_id"), Expr::str("/"), first_id]),
            "session_id",
        ));
        Query::select(third)
    }

    fn events(&self, scope: Scope) -> Query {
        let s = |c: &str| col("s", c);
        Query::select(
            Select {
                from: Some(table(self.staging("segment_src_sessionised"), "s")),
                filter: self.only(scope, s("anonymous_id"), AFFECTED_ANONS),
                ..Select::default()
            }
            .items_from(vec![
                (s("event_id"), "event_id"),
                (s("event_name"), "event_name"),
                (s("session_id"), "session_id"),
                (s("anonymous_id"), "user_id"),
                (s("people_id"), "people_id"),
                (Expr::TypedNull(ValueType::Text), "company_id"),
                (s("page_url"), "page_url"),
                (s("event_timestamp"), "event_timestamp"),
                (Expr::EmptyArray(ValueType::KeyValues), "custom"),
                (
                    Expr::KeyValues(vec![
                        ("path".into(), s("path")),
                        ("title".into(), s("title")),
                        ("referrer".into(), s("referrer")),
                    ]),
                    "properties",
                ),
            ]),
        )
    }

    fn sessions(&self, scope: Scope) -> Query {
        let e = |c: &str| col("e", c);
        // 1. Mark each session's first page.
        let first_page = Expr::and(vec![
            e("is_page"),
            Window::new(WindowFunc::RowNumber, vec![])
                .partition(vec![e("session_id"), e("is_page")])
                .order(vec![
                    OrderKey::asc(e("event_timestamp")),
                    OrderKey::asc(e("event_id")).bytes(),
                ])
                .expr()
                .eq(Expr::Int(1)),
        ]);
        let mut marked = Select {
            from: Some(table(self.staging("segment_src_sessionised"), "e")),
            filter: self.only(scope, e("anonymous_id"), AFFECTED_ANONS),
            ..Select::default()
        };
        for c in [
            "session_id",
            "anonymous_id",
            "people_id",
            "event_timestamp",
            "is_page",
            "page_url",
            "referrer",
            "utm_source",
            "utm_medium",
            "utm_campaign",
        ] {
            marked.items.push(item(e(c), c));
        }
        marked.items.push(item(first_page, "first_page"));
        // 2. One row per session.
        let f = |c: &str| col("f", c);
        let of_first_page = |c: &str| {
            Expr::agg(
                AggFunc::Max,
                false,
                Expr::call(Func::If, vec![f("first_page"), f(c), Expr::Null]),
            )
        };
        let grouped = Select {
            from: Some(sub(Query::select(marked), "f")),
            group_by: vec![f("session_id")],
            ..Select::default()
        }
        .items_from(vec![
            (f("session_id"), "session_id"),
            (Expr::agg(AggFunc::Max, false, f("anonymous_id")), "user_id"),
            (Expr::agg(AggFunc::Max, false, f("people_id")), "people_id"),
            (
                Expr::agg(AggFunc::Min, false, f("event_timestamp")),
                "started_at",
            ),
            (
                Expr::agg(AggFunc::Max, false, f("event_timestamp")),
                "ended_at",
            ),
            (of_first_page("page_url"), "landing_page"),
            (of_first_page("referrer"), "referrer"),
            (of_first_page("utm_source"), "utm_source"),
            (of_first_page("utm_medium"), "utm_medium"),
            (of_first_page("utm_campaign"), "utm_campaign"),
            (Expr::call(Func::CountIf, vec![f("is_page")]), "pageviews"),
        ]);
        // 3. Duration, engagement and the columns Segment does not fill.
        let g = |c: &str| col("g", c);
        let duration = || Expr::SecondsBetween(Box::new(g("started_at")), Box::new(g("ended_at")));
        let text = || Expr::TypedNull(ValueType::Text);
        Query::select(
            Select {
                from: Some(sub(Query::select(grouped), "g")),
                ..Select::default()
            }
            .items_from(vec![
                (g("session_id"), "session_id"),
                (g("user_id"), "user_id"),
                (g("people_id"), "people_id"),
                (text(), "company_id"),
                (g("started_at"), "started_at"),
                (g("ended_at"), "ended_at"),
                (g("landing_page"), "landing_page"),
                (g("referrer"), "referrer"),
                (g("utm_source"), "utm_source"),
                (g("utm_medium"), "utm_medium"),
                (g("utm_campaign"), "utm_campaign"),
                (text(), "channel"),
                (text(), "device_type"),
                (text(), "browser"),
                (text(), "country"),
                (text(), "region"),
                (text(), "city"),
                (g("pageviews"), "pageviews"),
                (duration(), "duration_seconds"),
                (
                    Expr::or(vec![
                        duration().bin(BinOp::GtEq, Expr::Int(10)),
                        g("pageviews").bin(BinOp::GtEq, Expr::Int(2)),
                    ]),
                    "is_engaged",
                ),
                (Expr::EmptyArray(ValueType::KeyValues), "custom"),
            ]),
        )
    }

    fn users(&self, scope: Scope) -> Query {
        let s = |c: &str| col("s", c);
        let text = || Expr::TypedNull(ValueType::Text);
        Query::select(
            Select {
                from: Some(table(self.staging("segment_src_sessionised"), "s")),
                filter: self.only(scope, s("anonymous_id"), AFFECTED_ANONS),
                group_by: vec![s("anonymous_id")],
                ..Select::default()
            }
            .items_from(vec![
                (s("anonymous_id"), "user_id"),
                (Expr::agg(AggFunc::Max, false, s("people_id")), "people_id"),
                (
                    Expr::agg(AggFunc::Min, false, s("event_timestamp")),
                    "first_seen_at",
                ),
                (
                    Expr::agg(AggFunc::Max, false, s("event_timestamp")),
                    "last_seen_at",
                ),
                (text(), "country"),
                (text(), "device_type"),
                (text(), "browser"),
                (Expr::EmptyArray(ValueType::KeyValues), "custom"),
            ]),
        )
    }

    /// One row per identified `user_id`: the latest non-NULL traits, the
    /// first identify, and the latest identify or event of the person.
    fn people(&self, scope: Scope) -> Query {
        let i = |c: &str| col("i", c);
        // 1. Per trait, rank the identifies with a value first, latest first.
        let latest_with = |c: &str| {
            Window::new(WindowFunc::RowNumber, vec![])
                .partition(vec![i("user_id")])
                .order(vec![
                    OrderKey::asc(Expr::call(
                        Func::If,
                        vec![Expr::IsNull(Box::new(i(c))), Expr::Int(1), Expr::Int(0)],
                    )),
                    OrderKey::desc(i("timestamp")),
                    OrderKey::desc(i("id")).bytes(),
                ])
                .expr()
        };
        let ranked = Select {
            from: Some(table(self.staging("segment_src_identifies"), "i")),
            filter: Some(Expr::and(
                std::iter::once(i("user_id").is_not_null())
                    .chain(self.only(scope, i("user_id"), AFFECTED_PEOPLE))
                    .collect(),
            )),
            ..Select::default()
        }
        .items_from(vec![
            (i("user_id"), "user_id"),
            (i("timestamp"), "at"),
            (i("email"), "email"),
            (i("first_name"), "first_name"),
            (i("last_name"), "last_name"),
            (latest_with("email"), "email_rank"),
            (latest_with("first_name"), "first_name_rank"),
            (latest_with("last_name"), "last_name_rank"),
        ]);
        let r = |c: &str| col("r", c);
        let top = |c: &str, rank: &str| {
            Expr::agg(
                AggFunc::Max,
                false,
                Expr::call(Func::If, vec![r(rank).eq(Expr::Int(1)), r(c), Expr::Null]),
            )
        };
        let traits = Select {
            from: Some(sub(Query::select(ranked), "r")),
            group_by: vec![r("user_id")],
            ..Select::default()
        }
        .items_from(vec![
            (r("user_id"), "user_id"),
            (top("email", "email_rank"), "email"),
            (top("first_name", "first_name_rank"), "first_name"),
            (top("last_name", "last_name_rank"), "last_name"),
            (Expr::agg(AggFunc::Min, false, r("at")), "created_at"),
            (Expr::agg(AggFunc::Max, false, r("at")), "identified_at"),
        ]);
        // 2. The person's latest event: through `people_id`, or a hit with
        //    only a `user_id`.
        let through_people = Select {
            from: Some(table(self.staging("segment_src_sessionised"), "s")),
            filter: Some(Expr::and(
                std::iter::once(col("s", "people_id").is_not_null())
                    .chain(self.only(scope, col("s", "people_id"), AFFECTED_PEOPLE))
                    .collect(),
            )),
            ..Select::default()
        }
        .items_from(vec![
            (col("s", "people_id"), "person"),
            (col("s", "event_timestamp"), "at"),
        ]);
        let only_user = Select {
            from: Some(table(self.staging("segment_src_hits"), "h")),
            filter: Some(Expr::and(
                [
                    Expr::IsNull(Box::new(col("h", "anonymous_id"))),
                    col("h", "user_id").is_not_null(),
                ]
                .into_iter()
                .chain(self.only(scope, col("h", "user_id"), AFFECTED_PEOPLE))
                .collect(),
            )),
            ..Select::default()
        }
        .items_from(vec![
            (col("h", "user_id"), "person"),
            (col("h", "event_timestamp"), "at"),
        ]);
        let seen = Select {
            from: Some(sub(
                Query::Set(
                    SetOp::UnionAll,
                    vec![Query::select(through_people), Query::select(only_user)],
                ),
                "v",
            )),
            group_by: vec![col("v", "person")],
            ..Select::default()
        }
        .items_from(vec![
            (col("v", "person"), "person"),
            (Expr::agg(AggFunc::Max, false, col("v", "at")), "at"),
        ]);
        // 3. Traits joined with the latest event.
        let t = |c: &str| col("t", c);
        let later_event = Expr::and(vec![
            col("w", "at").is_not_null(),
            col("w", "at").bin(BinOp::Gt, t("identified_at")),
        ]);
        let text = || Expr::TypedNull(ValueType::Text);
        Query::select(
            Select {
                from: Some(sub(Query::select(traits), "t")),
                joins: vec![Join {
                    kind: JoinKind::Left,
                    item: sub(Query::select(seen), "w"),
                    on: col("w", "person").eq(t("user_id")),
                }],
                ..Select::default()
            }
            .items_from(vec![
                (t("user_id"), "people_id"),
                (text(), "company_id"),
                (t("email"), "email"),
                (t("first_name"), "first_name"),
                (t("last_name"), "last_name"),
                (text(), "job_title"),
                (text(), "lifecycle_stage"),
                (Expr::EmptyArray(ValueType::TextArray), "tags"),
                (Expr::TypedNull(ValueType::Bool), "is_customer"),
                (t("created_at"), "created_at"),
                (
                    Expr::call(
                        Func::If,
                        vec![later_event, col("w", "at"), t("identified_at")],
                    ),
                    "last_seen_at",
                ),
                (Expr::EmptyArray(ValueType::KeyValues), "custom"),
            ]),
        )
    }
}

/// Which rows a builder makes: all of them, or only those of the affected
/// anonymous ids and people (a refresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    Affected,
}

/// Raw rows whose id a staging table does not hold yet.
struct Unseen {
    staged: &'static str,
    key: &'static str,
    /// A boolean column the staged row must have this value in (pages vs tracks).
    kind: Option<(&'static str, bool)>,
}

/// The refresh's lists of anonymous ids and people to rebuild.
const AFFECTED_ANONS: &str = "segment_src_affected_anonymous_ids";
const AFFECTED_PEOPLE: &str = "segment_src_affected_people";

/// The column of a list of what to rebuild.
fn affected_key(affected: &str) -> &'static str {
    if affected == AFFECTED_ANONS {
        "anonymous_id"
    } else {
        "person"
    }
}

/// The names a query's rows have (its first SELECT's aliases).
fn output_columns(q: &Query) -> Vec<Ident> {
    match q {
        Query::Select(s) => s.items.iter().filter_map(|i| i.alias.clone()).collect(),
        Query::Set(_, parts) => parts.first().map(output_columns).unwrap_or_default(),
        Query::With(_, body) => output_columns(body),
    }
}

/// The raw columns read (SPEC §10); nothing else of the raw tables is read.
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

/// The hit columns carried into `segment_src_sessionised` (its `user_id` is
/// replaced by the mapped `people_id`).
const SESSIONISED_HIT_COLUMNS: &[&str] = &[
    "event_id",
    "anonymous_id",
    "event_timestamp",
    "event_name",
    "page_url",
    "path",
    "title",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "is_page",
];

fn col(alias: &'static str, name: &str) -> Expr {
    Expr::Column(alias.into(), Ident::trusted(name))
}

fn item(expr: Expr, alias: &str) -> SelectItem {
    SelectItem {
        expr,
        alias: Some(Ident::trusted(alias)),
    }
}

fn table(table: TableRef, alias: &'static str) -> FromItem {
    FromItem::Table {
        table,
        alias: alias.into(),
    }
}

fn sub(query: Query, alias: &'static str) -> FromItem {
    FromItem::Subquery {
        query: Box::new(query),
        alias: alias.into(),
    }
}

trait Items {
    fn items_from(self, items: Vec<(Expr, &str)>) -> Self;
}

impl Items for Select {
    fn items_from(mut self, items: Vec<(Expr, &str)>) -> Select {
        for (e, a) in items {
            self.items.push(item(e, a));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::DialectKind;

    fn models(dialect: DialectKind) -> SegmentSource {
        SegmentSource::new(
            Target::for_dialect(dialect, "proj", "segment_raw").unwrap(),
            Target::for_dialect(dialect, "proj", "acct_1").unwrap(),
            30,
        )
        .unwrap()
    }

    fn all_statements() -> Vec<(DialectKind, &'static str, Vec<String>)> {
        let mut out = Vec::new();
        for d in [DialectKind::BigQuery, DialectKind::Postgres] {
            out.push((d, "full", models(d).full_build().unwrap()));
            out.push((d, "refresh", models(d).refresh().unwrap()));
        }
        out
    }

    #[test]
    fn statements_parse_in_their_dialect() {
        use sqlparser::dialect::{BigQueryDialect, PostgreSqlDialect};
        use sqlparser::parser::Parser;
        for (d, kind, statements) in all_statements() {
            for sql in statements {
                let parsed = match d {
                    DialectKind::BigQuery => Parser::parse_sql(&BigQueryDialect {}, &sql),
                    DialectKind::Postgres => Parser::parse_sql(&PostgreSqlDialect {}, &sql),
                };
                assert!(parsed.is_ok(), "{d} {kind}: {parsed:?}\n{sql}");
            }
        }
    }

    /// No `*` anywhere, and every column read from a raw table (always bound
    /// to the alias `r`) is one SPEC §10 lists for that table.
    #[test]
    fn only_the_listed_raw_columns_are_read() {
        let mut reads = 0;
        for (d, kind, statements) in all_statements() {
            let q = if d == DialectKind::BigQuery { '`' } else { '"' };
            for sql in &statements {
                assert!(!sql.contains('*'), "{d} {kind}: a * in\n{sql}");
                for (raw, listed) in [
                    ("identifies", IDENTIFY_COLUMNS),
                    ("pages", PAGE_COLUMNS),
                    ("tracks", TRACK_COLUMNS),
                ] {
                    let from = match d {
                        DialectKind::BigQuery => format!("`proj.segment_raw.{raw}` AS r"),
                        DialectKind::Postgres => format!("\"segment_raw\".\"{raw}\" AS r"),
                    };
                    let mut seen = std::collections::BTreeSet::new();
                    for select in sql.split("SELECT ").filter(|s| s.contains(&from)) {
                        let pattern = format!("r.{q}");
                        for (i, _) in select.match_indices(&pattern) {
                            let rest = &select[i + pattern.len()..];
                            let name = &rest[..rest.find(q).unwrap()];
                            assert!(listed.contains(&name), "{d} {kind}: {raw}.{name} read");
                            seen.insert(name.to_string());
                        }
                    }
                    // A statement reading the raw table reads every listed column.
                    if sql.contains(&from) {
                        assert_eq!(seen.len(), listed.len(), "{d} {kind} {raw}: {seen:?}");
                        reads += 1;
                    }
                }
            }
        }
        // identifies, and pages and tracks, in a full build and a refresh, per dialect.
        assert_eq!(reads, 3 * 2 * 2);
    }

    #[test]
    fn statement_snapshots() {
        for (d, kind, statements) in all_statements() {
            insta::assert_snapshot!(
                format!("segment_models_{d}_{kind}"),
                statements.join("\n;\n")
            );
        }
    }

    #[test]
    fn options_are_checked() {
        let bq = |ds: &str| Target::for_dialect(DialectKind::BigQuery, "p", ds).unwrap();
        let pg = |ds: &str| Target::for_dialect(DialectKind::Postgres, "", ds).unwrap();
        assert!(SegmentSource::new(bq("a"), bq("b"), 0).is_err());
        assert!(SegmentSource::new(bq("a"), bq("b"), 10081).is_err());
        assert!(SegmentSource::new(bq("a"), pg("b"), 30).is_err());
        let m = SegmentSource::new(bq("a"), bq("b"), 45).unwrap();
        assert_eq!(m.session_timeout_seconds, 2700);
        let sql = m.full_build().unwrap().join("\n");
        assert!(sql.contains("INTERVAL 2700 SECOND"), "{sql}");
    }
}
