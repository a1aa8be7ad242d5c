//! Shared test setup: the local stack's endpoints (from the environment, or
//! from `.stack/env` that tests/stack/up.sh writes) and unique ids.
#![allow(dead_code)]

pub mod http;

use sha2_10::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The endpoints tests/stack/up.sh starts, for a run without `.stack/env`.
const DEFAULTS: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
    ("REDIS_URL", "redis://127.0.0.1:6379"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:5055"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("BIGQUERY_BASE_URL", "http://127.0.0.1:9050"),
    ("BIGQUERY_PROJECT", "segments-local"),
    ("PUSHER_HOST", "http://127.0.0.1:5056"),
    ("PUSHER_APP_ID", "segments-local"),
    ("PUSHER_KEY", "local-key"),
    ("PUSHER_SECRET", "local-secret"),
];

/// Defaults, then `.stack/env`, then the process environment (last wins).
pub fn stack_env() -> HashMap<String, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.stack/env");
    let mut vars: HashMap<String, String> = DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let file = std::fs::read_to_string(&root).unwrap_or_default();
    for (k, v) in file.lines().filter_map(|l| l.split_once('=')) {
        vars.insert(k.trim().to_string(), v.trim().to_string());
    }
    vars.extend(std::env::vars());
    vars
}

pub fn var(name: &str) -> String {
    stack_env().remove(name).unwrap_or_else(|| {
        panic!("{name} is not set: start the local stack with tests/stack/up.sh")
    })
}

/// The first call to a service: a failure means the stack is down, and the
/// test fails saying how to start it (it never skips).
pub fn up<T, E: std::fmt::Debug>(r: Result<T, E>, service: &str) -> T {
    r.unwrap_or_else(|e| {
        panic!("{service} is not reachable ({e:?}): start the local stack with tests/stack/up.sh")
    })
}

static N: AtomicU64 = AtomicU64::new(0);

/// A UUID no other test (or test run) uses.
pub fn fresh_uuid() -> String {
    let seed = format!(
        "{:?}-{}-{}",
        std::time::SystemTime::now(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let h = hex::encode(Sha256::digest(seed.as_bytes()));
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}
