//! The real function binaries behind cargo lambda's Lambda runtime API
//! emulator (`cargo lambda watch --only-lambda-apis`), invoked the way AWS
//! invokes them. Used by the end-to-end test and the local demo.

use crate::repo_root;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const FUNCTIONS: [&str; 5] = [
    "create-segment",
    "check-bigquery-job",
    "segment-cronjob",
    "report-with-segment",
    "segment-api",
];

/// The local stack's variables (`.stack/env`), overridden by the process environment.
pub fn stack_env() -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = std::fs::read_to_string(repo_root().join(".stack/env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vars.extend(std::env::vars().filter(|(k, _)| !k.starts_with("CARGO")));
    vars
}

/// A UUID no other run uses.
pub fn fresh_uuid() -> String {
    use sha2::Digest;
    let seed = crate::warehouse::unique_dataset("u");
    let h: String = sha2::Sha256::digest(seed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The emulator and one process per function; all stopped on drop.
pub struct LocalLambdas {
    procs: Vec<Child>,
    port: u16,
    cargo_lambda: PathBuf,
}

impl Drop for LocalLambdas {
    fn drop(&mut self) {
        for c in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl LocalLambdas {
    /// Starts the runtime API and the binaries of `bin_dir` with `env`.
    pub async fn start(
        env: &HashMap<String, String>,
        bin_dir: &std::path::Path,
    ) -> Result<LocalLambdas, String> {
        let cargo_lambda = repo_root().join(".venv/bin/cargo-lambda");
        if !cargo_lambda.exists() {
            return Err(format!(
                "{} is missing: run tests/stack/up.sh",
                cargo_lambda.display()
            ));
        }
        for f in FUNCTIONS {
            if !bin_dir.join(f).exists() {
                return Err(format!(
                    "{}/{f} is missing: run cargo build --workspace --bins",
                    bin_dir.display()
                ));
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| e.to_string())?;
        let mut me = LocalLambdas {
            procs: vec![],
            port,
            cargo_lambda: cargo_lambda.clone(),
        };
        let emulator = Command::new(&cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cargo lambda watch: {e}"))?;
        me.procs.push(emulator);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let logs = repo_root().join(".stack");
        let _ = std::fs::create_dir_all(&logs);
        for f in FUNCTIONS {
            // Each function's JSON log lines go to .stack/lambda-{function}.log.
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logs.join(format!("lambda-{f}.log")))
                .map_err(|e| format!("{f} log: {e}"))?;
            let err = log.try_clone().map_err(|e| e.to_string())?;
            let child = Command::new(bin_dir.join(f))
                .envs(env)
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{port}/.rt/{f}"),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", f)
                // At debug unless told otherwise, so tests/scan_logs.sh sees
                // everything a function can print (the functions cap their
                // dependencies at info themselves).
                .env(
                    "RUST_LOG",
                    env.get("RUST_LOG").map(String::as_str).unwrap_or("debug"),
                )
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .stdout(log)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("{f}: {e}"))?;
            me.procs.push(child);
        }
        Ok(me)
    }

    /// Invokes a function with a JSON payload and returns its JSON answer.
    pub fn invoke(&self, function: &str, data: &str) -> Result<Value, String> {
        let out = Command::new(&self.cargo_lambda)
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &self.port.to_string(),
                "--data-ascii",
                data,
            ])
            .output()
            .map_err(|e| format!("cargo lambda invoke: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{function} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "{function} answered non-JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// Wraps bodies as an SQS event, like the event source mapping does.
pub fn sqs_event(bodies: &[String]) -> String {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({"messageId": format!("local-{i}-{}", fresh_uuid()), "receiptHandle": "r", "body": b,
                "attributes": {"SentTimestamp": "1718452800000"}, "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
        })
        .collect();
    json!({"Records": records}).to_string()
}

/// Receives what a queue holds: until `want` messages arrived when given,
/// otherwise until two receives in a row come back empty (under load SQS may
/// return fewer messages than are queued); waits up to `wait` in all.
pub async fn drain_n(
    sqs: &segments_infra::aws::SqsQueue,
    url: &str,
    want: Option<usize>,
    wait: Duration,
) -> Vec<String> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + wait;
    let mut empty_in_a_row = 0;
    while std::time::Instant::now() < deadline {
        let r = sqs
            .client()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await;
        let got: Vec<String> = match r {
            Ok(r) => r
                .messages()
                .iter()
                .filter_map(|m| m.body().map(String::from))
                .collect(),
            Err(_) => vec![],
        };
        empty_in_a_row = if got.is_empty() {
            empty_in_a_row + 1
        } else {
            0
        };
        out.extend(got);
        match want {
            Some(n) if out.len() >= n => break,
            None if !out.is_empty() && empty_in_a_row >= 2 => break,
            _ => {}
        }
    }
    out
}

/// [`drain_n`] without an expected count.
pub async fn drain(sqs: &segments_infra::aws::SqsQueue, url: &str, wait: Duration) -> Vec<String> {
    drain_n(sqs, url, None, wait).await
}

/// An SQS client on the local stack, and fresh queues for the functions.
pub async fn local_queues(
    env: &mut HashMap<String, String>,
    tag: &str,
) -> segments_infra::aws::SqsQueue {
    let (id, secret) = (
        env["AWS_ACCESS_KEY_ID"].clone(),
        env["AWS_SECRET_ACCESS_KEY"].clone(),
    );
    let sdk = segments_infra::aws::sdk_config(
        &env["AWS_REGION"],
        Some(&env["AWS_ENDPOINT_URL"]),
        Some((&id, &secret)),
    )
    .await;
    let sqs = segments_infra::aws::SqsQueue::new(&sdk);
    for (var, name) in [
        ("CHECK_JOB_QUEUE_URL", "check"),
        ("CRONJOB_QUEUE_URL", "cron"),
        ("SCHEDULE_REPORT_QUEUE_URL", "schedule-report"),
    ] {
        let url = sqs
            .client()
            .create_queue()
            .queue_name(format!("{tag}-{name}-{}", &fresh_uuid()[..8]))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "SQS on {}: {e:?}; run tests/stack/up.sh",
                    env["AWS_ENDPOINT_URL"]
                )
            })
            .queue_url()
            .unwrap_or_default()
            .to_string();
        env.insert(var.into(), url);
    }
    sqs
}
