//! Small local servers for tests: a proxy in front of the BigQuery emulator
//! that refuses dataset inserts, the Google token endpoint
//! (tests/stack/google_token.py), and a log capture.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};

/// Forwards every request to the emulator, except `POST .../datasets`, which
/// gets BigQuery's 403 for a caller without `bigquery.datasets.create`.
/// Counts the dataset calls by method.
pub struct InsertRefusingProxy {
    port: u16,
    calls: Arc<Mutex<HashMap<String, u32>>>,
}

impl InsertRefusingProxy {
    pub async fn start(upstream: &str) -> InsertRefusingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls: Arc<Mutex<HashMap<String, u32>>> = Default::default();
        let (upstream, counted) = (upstream.trim_end_matches('/').to_string(), calls.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (http, upstream, counted) = (http.clone(), upstream.clone(), counted.clone());
                tokio::spawn(async move {
                    let _ = proxy_one(stream, &http, &upstream, &counted).await;
                });
            }
        });
        InsertRefusingProxy { port, calls }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn calls(&self, method: &str) -> u32 {
        self.calls.lock().unwrap().get(method).copied().unwrap_or(0)
    }
}

async fn proxy_one(
    stream: tokio::net::TcpStream,
    http: &reqwest::Client,
    upstream: &str,
    calls: &Mutex<HashMap<String, u32>>,
) -> std::io::Result<()> {
    let mut reader = TokioBufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).await?;
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            if matches!(k.as_str(), "content-type" | "authorization") {
                headers.push((k, v));
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await?;
    let is_dataset = path.split('?').next().unwrap_or("").contains("/datasets");
    if is_dataset && !path.contains("/tables") {
        *calls.lock().unwrap().entry(method.clone()).or_default() += 1;
    }
    let (status, text) = if method == "POST"
        && path.split('?').next().unwrap_or("").ends_with("/datasets")
    {
        let message = "Access Denied: Project segments-local: User does not have bigquery.datasets.create permission in project segments-local.";
        (
            403,
            serde_json::json!({"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED",
                "errors": [{"message": message, "domain": "global", "reason": "accessDenied"}]}})
            .to_string(),
        )
    } else {
        let mut req = http
            .request(method.parse().unwrap(), format!("{upstream}{path}"))
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (502, e.to_string()),
        }
    };
    let mut stream = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        text.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(text.as_bytes()).await?;
    stream.shutdown().await
}

/// tests/stack/google_token.py on a free port, stopped on drop.
pub struct TokenEndpoint {
    child: Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl TokenEndpoint {
    pub fn start() -> TokenEndpoint {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = std::env::temp_dir().join(format!("segments-token-{}", super::fresh_uuid()));
        std::fs::create_dir_all(&dir).unwrap();
        let python = root.join(".venv/bin/python");
        let mut child = Command::new(&python)
            .arg(root.join("tests/stack/google_token.py"))
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}; tests/stack/up.sh creates it", python.display()));
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("google_token.py did not start: {first:?}"));
        TokenEndpoint { child, dir, port }
    }

    /// The service-account key (JSON) whose token_uri is this endpoint.
    pub fn service_account_key(&self) -> String {
        std::fs::read_to_string(self.dir.join("service_account.json")).unwrap()
    }

    pub async fn exchanges(&self) -> Vec<serde_json::Value> {
        reqwest::get(format!("http://127.0.0.1:{}/exchanges", self.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Everything logged (tracing events and `log` records of the dependencies)
/// through the functions' JSON format with `filter`, kept in memory.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process-wide subscriber (once per test binary).
pub fn capture_logs(filter: &str) -> Logs {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(move || writer.clone())
        .flatten_event(true)
        .try_init()
        .expect("another subscriber is installed");
    logs
}
