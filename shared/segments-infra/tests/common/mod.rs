//! Shared test setup: the local stack's endpoints (from the environment, or
//! from `.stack/env` that tests/stack/up.sh writes) and unique ids.
#![allow(dead_code)]

use sha2_10::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub fn stack_env() -> HashMap<String, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.stack/env");
    let mut vars: HashMap<String, String> = std::fs::read_to_string(&root)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    for (k, v) in std::env::vars() {
        vars.insert(k, v);
    }
    vars
}

pub fn var(name: &str) -> String {
    stack_env().remove(name).unwrap_or_else(|| {
        panic!("{name} is not set: start the local stack with tests/stack/up.sh")
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
