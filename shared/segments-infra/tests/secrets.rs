//! Secret variables from Secrets Manager (moto), read by the same loader every
//! function starts with.

mod common;

use common::{fresh_uuid, stack_env, up};
use segments_infra::aws::sdk_config;
use segments_infra::config::Config;
use segments_infra::postgres::PgStore;
use serde_json::json;

#[tokio::test]
async fn config_takes_the_secret_variables_from_secrets_manager() {
    let env = stack_env();
    let sdk = sdk_config(
        &env["AWS_REGION"],
        Some(&env["AWS_ENDPOINT_URL"]),
        Some((&env["AWS_ACCESS_KEY_ID"], &env["AWS_SECRET_ACCESS_KEY"])),
    )
    .await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret = json!({"DATABASE_URL": env["DATABASE_URL"], "PUSHER_SECRET": "from-the-secret"});
    let created = up(
        client
            .create_secret()
            .name(format!("segments-test-{}", fresh_uuid()))
            .secret_string(secret.to_string())
            .send()
            .await,
        "moto (Secrets Manager)",
    );
    let arn = created.arn().unwrap_or_default().to_string();

    let mut vars = env.clone();
    vars.remove("DATABASE_URL");
    vars.insert("PUSHER_SECRET".into(), String::new());
    vars.insert("PUSHER_APP_ID".into(), "1".into());
    vars.insert("PUSHER_KEY".into(), "k".into());
    vars.insert(
        "CHECK_JOB_QUEUE_URL".into(),
        "http://127.0.0.1:5055/1/q".into(),
    );
    vars.insert("SECRETS_ARN".into(), arn.clone());
    let config = Config::load_from(vars.clone()).await.unwrap();
    assert_eq!(config.database_url.0, env["DATABASE_URL"]);
    assert_eq!(config.pusher.secret.0, "from-the-secret");
    assert_eq!(config.secrets_arn.as_deref(), Some(arn.as_str()));
    // The URL from the secret reaches Postgres.
    let store = PgStore::connect(&config.database_url.0, 1).unwrap();
    assert!(store.setting("server_version").await.is_ok());
    // Debug output keeps the secret's values hidden.
    let shown = format!("{config:?}");
    assert!(!shown.contains("from-the-secret"), "{shown}");

    // A secret that does not exist is a start-up error naming it.
    vars.insert("SECRETS_ARN".into(), format!("{arn}-gone"));
    let e = Config::load_from(vars).await.unwrap_err().to_string();
    assert!(
        e.contains("cannot read secret") && e.contains("-gone"),
        "{e}"
    );
}
