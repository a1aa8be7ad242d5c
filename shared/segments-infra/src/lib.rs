//! segments-infra: the ports the handlers use (one small trait per capability)
//! and their real adapters. Nothing here decides anything: decisions live in
//! segments-core, orchestration in the function crates.

pub mod aws;
pub mod bigquery;
pub mod cache;
pub mod config;
pub mod error;
pub mod faults;
pub mod lambda;
pub mod pg_tls;
pub mod pg_warehouse;
pub mod ports;
pub mod postgres;
pub mod pusher;
pub mod secrets;
pub mod telemetry;
pub mod wiring;

pub use error::{InfraError, Result};
