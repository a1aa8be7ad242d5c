//! The real adapters behind every port, built once per Lambda container from
//! the configuration. Handlers receive `Ports` and never name an adapter.

use crate::aws::{S3Store, SqsQueue, sdk_config};
use crate::bigquery::BigQuery;
use crate::cache::RedisCache;
use crate::config::{Config, WarehouseKind};
use crate::error::Result;
use crate::pg_warehouse::{PgWarehouse, PgWarehouseConfig};
use crate::ports::{Cache, HistoryStore, Notifier, ObjectStore, Queue, SegmentStore, Warehouse};
use crate::postgres::PgStore;
use crate::pusher::Pusher;
use std::sync::Arc;

#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn SegmentStore>,
    /// Rule revisions and runs (SPEC §11); the same database as `store`.
    pub history: Arc<dyn HistoryStore>,
    pub cache: Arc<dyn Cache>,
    pub queue: Arc<dyn Queue>,
    pub objects: Arc<dyn ObjectStore>,
    pub warehouse: Arc<dyn Warehouse>,
    pub notifier: Arc<dyn Notifier>,
}

impl Ports {
    /// Connects every adapter and brings the functions' own Postgres tables up
    /// to date ([`PgStore::migrate_functions`], under an advisory lock: the
    /// deploy's migration step is the first cold start of each function).
    /// Redis connects lazily: its outage must not stop a function.
    pub async fn connect(config: &Config) -> Result<Ports> {
        let store = Arc::new(PgStore::connect_with(
            &config.database_url.0,
            config.database_pool,
        )?);
        let applied = store.migrate_functions().await?;
        if !applied.is_empty() {
            tracing::info!(versions = ?applied, "applied Postgres migrations");
        }
        // Credentials from the environment only (Lambda's role, or moto's dummies
        // locally): config.rs reads every other variable.
        let warehouse: Arc<dyn Warehouse> = match (config.warehouse, &config.postgres_warehouse) {
            (WarehouseKind::Postgres, Some(pg)) => {
                Arc::new(PgWarehouse::connect(&PgWarehouseConfig {
                    url: pg.url.0.clone(),
                    statement_timeout: std::time::Duration::from_secs(pg.statement_timeout_seconds),
                    max_running: 8,
                })?)
            }
            _ => Arc::new(BigQuery::connect(&config.bigquery).await?),
        };
        let sdk = sdk_config(&config.aws_region, config.aws_endpoint_url.as_deref(), None).await;
        Ok(Ports {
            store: store.clone(),
            history: store,
            cache: Arc::new(RedisCache::with_ca_file(
                &config.redis_url.0,
                config.redis_ca_file.as_deref(),
            )?),
            queue: Arc::new(SqsQueue::new(&sdk)),
            objects: Arc::new(S3Store::new(&sdk)),
            warehouse,
            notifier: Arc::new(Pusher::new(config.pusher.clone())?),
        })
    }
}
