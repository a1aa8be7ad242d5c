//! What the benchmarks share: the handlers' App wired to the local stack, with
//! BigQuery played by the emulator with asynchronous jobs
//! (`tests/stack/crucible_async.py`), and a fresh account.
// Each benchmark compiles this module on its own and uses part of it.
#![allow(dead_code)]

use segments_core::Catalog;
use segments_handlers::App;
use segments_infra::aws::SqsQueue;
use segments_infra::config::Config;
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use segments_tests::lambda::{fresh_uuid, local_queues, stack_env};
use segments_tests::warehouse::async_emulator_url;
use std::sync::Arc;

pub struct AsyncStack {
    pub app: App,
    pub store: PgStore,
    pub sqs: SqsQueue,
    /// The asynchronous emulator's base URL.
    pub url: String,
    pub account: String,
}

/// Fresh queues named after `prefix`, a fresh account in UTC; BigQuery
/// `project` when given (the emulator holds jobs per project), else the stack's.
pub async fn async_stack(prefix: &str, project: Option<&str>) -> AsyncStack {
    let mut env = stack_env();
    let url = async_emulator_url(&env);
    env.insert("BIGQUERY_BASE_URL".into(), url.clone());
    if let Some(project) = project {
        env.insert("BIGQUERY_PROJECT".into(), project.to_string());
    }
    env.insert("BIGQUERY_DATASET_PREFIX".into(), format!("{prefix}_"));
    let sqs = local_queues(&mut env, prefix).await;
    let config = Config::from_map(&env).unwrap();
    let store = PgStore::connect(&config.database_url.0, 8).unwrap();
    store.migrate().await.unwrap();
    let account = fresh_uuid();
    store
        .upsert_account(&account, "Bench", "UTC")
        .await
        .unwrap();
    let mut ports = Ports::connect(&config).await.unwrap();
    // The harness's client: credentials from the stack's env, not the process's.
    ports.queue = Arc::new(sqs.clone());
    let app = App::new(&config, ports, Catalog::default_catalog());
    AsyncStack {
        app,
        store,
        sqs,
        url,
        account,
    }
}
