//! Test support: BigQuery syntax checks over generated SQL, and a warehouse
//! on the local BigQuery emulator loaded with the fixture data.

pub mod bq_check;
pub mod fixture;
pub mod pg_warehouse;
pub mod warehouse;

use std::path::PathBuf;

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

pub mod cases;
pub mod demo_data;
pub mod lambda;
pub mod segment_demo;
pub mod segment_raw;
