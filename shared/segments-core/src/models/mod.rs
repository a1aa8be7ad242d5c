//! Models: statements that build the reference warehouse (SPEC §5) of an
//! account from another shape of data, rendered through the dialect seam.

pub mod schema;
pub mod segment_source;

pub use segment_source::{DEFAULT_SESSION_TIMEOUT_MINUTES, SegmentSource};
