//! segments-core: segment rules in, warehouse SQL and decisions out. No I/O.
//! Wire JSON --[`parse`]--> rules ([`model`]) --[`resolve`] with the [`catalog`]-->
//! [`plan`] --[`compile`]--> SQL AST ([`sql::ast`]) --[`sql::Dialect`]--> text.
//! See docs/architecture.md.

pub mod activity;
pub mod catalog;
pub mod compile;
pub mod cronjob;
pub mod error;
pub mod history;
pub mod jobs;
pub mod messages;
pub mod model;
pub mod models;
pub mod parse;
pub mod plan;
pub mod preview;
pub mod re2;
pub mod re2_postgres;
pub mod report;
pub mod resolve;
pub mod segment;
pub mod sql;
pub mod time;

pub use catalog::Catalog;
pub use error::{CoreError, ValidationError, ValidationErrors};
pub use model::Segment;
pub use parse::{parse_segment, parse_segment_bytes};
pub use segment::{
    COMPILER_VERSION, RenderedSegment, StoredRules, check_segment, check_segment_bytes,
    render_refresh, render_segment, stored_query_version, stored_segment, validate_segment,
};
pub use sql::Target;
