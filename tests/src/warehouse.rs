//! A fixture warehouse on the local BigQuery emulator, reached through the real
//! `gcp-bigquery-client`. Start the emulator with `tests/stack/up.sh`.

use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::query_response::ResultSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

pub const PROJECT: &str = "segments-local";

/// The emulator needs no credentials.
#[derive(Clone)]
struct NoToken;

#[async_trait::async_trait]
impl Authenticator for NoToken {
    async fn access_token(&self) -> Result<String, BQError> {
        Ok("local".into())
    }
}

pub fn emulator_url() -> String {
    std::env::var("BIGQUERY_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:9050".into())
}

pub struct Warehouse {
    pub client: Client,
    pub project: String,
    pub dataset: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A dataset name no other test run uses.
pub fn unique_dataset(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn client() -> Client {
    client_at(&emulator_url()).await
}

/// A client of the emulator at `url` (e.g. the asynchronous one on :9051).
pub async fn client_at(url: &str) -> Client {
    let http = reqwest_client();
    ClientBuilder::new()
        .with_v2_base_url(format!("{url}/bigquery/v2"))
        .with_client(http)
        .build_from_authenticator(Arc::new(NoToken))
        .await
        .unwrap_or_else(|e| panic!("BigQuery client for {url}: {e}"))
}

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap_or_else(|e| panic!("http client: {e}"))
}

impl Warehouse {
    /// A new, empty dataset.
    pub async fn empty(prefix: &str) -> Warehouse {
        Warehouse::named(&unique_dataset(prefix)).await
    }

    /// A dataset that may already exist (the demo reuses its account's).
    pub async fn open(dataset: &str) -> Warehouse {
        Warehouse::open_at(&emulator_url(), dataset).await
    }

    /// [`Warehouse::open`] on the emulator at `url`.
    pub async fn open_at(url: &str, dataset: &str) -> Warehouse {
        let client = client_at(url).await;
        let _ = client
            .dataset()
            .create(Dataset::new(PROJECT, dataset))
            .await;
        Warehouse {
            client,
            project: PROJECT.into(),
            dataset: dataset.to_string(),
        }
    }

    async fn named(dataset: &str) -> Warehouse {
        Warehouse::named_at(&emulator_url(), dataset).await
    }

    async fn named_at(url: &str, dataset: &str) -> Warehouse {
        let client = client_at(url).await;
        let dataset = dataset.to_string();
        if let Err(e) = client
            .dataset()
            .create(Dataset::new(PROJECT, &dataset))
            .await
        {
            panic!(
                "cannot create dataset on the BigQuery emulator at {url} ({e}); start the local stack with tests/stack/up.sh"
            );
        }
        Warehouse {
            client,
            project: PROJECT.into(),
            dataset,
        }
    }

    /// A new dataset holding the fixture warehouse of `tests/fixtures/warehouse.sql`.
    pub async fn fixture(prefix: &str) -> Warehouse {
        Warehouse::fixture_in(&unique_dataset(prefix)).await
    }

    /// The fixture warehouse in a dataset of the caller's choosing (e.g. an account's).
    pub async fn fixture_in(dataset: &str) -> Warehouse {
        Warehouse::fixture_at(&emulator_url(), dataset).await
    }

    /// The fixture warehouse in `dataset` on the emulator at `url`.
    pub async fn fixture_at(url: &str, dataset: &str) -> Warehouse {
        let w = Warehouse::named_at(url, dataset).await;
        let path = crate::repo_root().join("tests/fixtures/warehouse.sql");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        w.run_script(&text).await;
        w
    }

    /// Runs statements separated by lines holding only `;`; `{{dataset}}` names this dataset.
    pub async fn run_script(&self, text: &str) {
        let qualified = format!("`{}`.`{}`", self.project, self.dataset);
        for stmt in text.split("\n;\n") {
            let body: String = stmt
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            if body.trim().is_empty() {
                continue;
            }
            self.run(&body.replace("{{dataset}}", &qualified))
                .await
                .unwrap_or_else(|e| panic!("fixture statement failed: {e}\n{body}"));
        }
    }

    /// Runs one statement to completion; returns its rows (if any).
    pub async fn run(&self, sql: &str) -> Result<ResultSet, String> {
        let mut req = QueryRequest::new(sql);
        req.timeout_ms = Some(60_000);
        let resp = self
            .client
            .job()
            .query(&self.project, req)
            .await
            .map_err(|e| format!("{e}"))?;
        Ok(ResultSet::new_from_query_response(resp))
    }

    /// The sorted values of the first column.
    pub async fn column(&self, sql: &str) -> Result<Vec<String>, String> {
        let mut rs = self.run(sql).await?;
        let mut out = Vec::new();
        while rs.next_row() {
            out.push(
                rs.get_string(0)
                    .map_err(|e| e.to_string())?
                    .unwrap_or_else(|| "<NULL>".into()),
            );
        }
        out.sort();
        Ok(out)
    }

    pub fn table(&self, name: &str) -> String {
        format!("`{}.{}.{}`", self.project, self.dataset, name)
    }

    /// The sorted member ids of a segment table.
    pub async fn members(&self, table: &str) -> Result<Vec<String>, String> {
        self.column(&format!("SELECT object_id FROM {}", self.table(table)))
            .await
    }
}

/// The emulator with BigQuery's asynchronous jobs (`tests/stack/crucible_async.py`).
pub fn async_emulator_url(env: &std::collections::HashMap<String, String>) -> String {
    env.get("BIGQUERY_ASYNC_BASE_URL")
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "BIGQUERY_ASYNC_BASE_URL is not set: start the local stack with tests/stack/up.sh"
            )
        })
}

/// The BigQuery API calls the asynchronous emulator saw for each job of
/// `project`: job id → method (`jobs.insert`, `jobs.get`, `getQueryResults`,
/// `jobs.cancel`) → count.
pub async fn api_calls(
    url: &str,
    project: &str,
) -> std::collections::HashMap<String, std::collections::BTreeMap<String, u32>> {
    let calls = format!("{url}/_async/calls/{project}");
    reqwest_client()
        .get(&calls)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{calls}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{calls}: {e}"))
}

/// Holds every job of `project` queued on the asynchronous emulator (still
/// PENDING/RUNNING to the API, cancellable) until [`release_jobs`].
pub async fn hold_jobs(url: &str, project: &str) {
    admin(url, "hold", project).await;
}

pub async fn release_jobs(url: &str, project: &str) {
    admin(url, "release", project).await;
}

async fn admin(url: &str, verb: &str, project: &str) {
    let at = format!("{url}/_async/{verb}/{project}");
    let r = reqwest_client()
        .post(&at)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    assert!(r.status().is_success(), "{at}: {}", r.status());
}
