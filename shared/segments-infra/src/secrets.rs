//! Secrets from AWS Secrets Manager. When `SECRETS_ARN` is set, that secret's
//! value, a JSON object such as `{"DATABASE_URL": "...", "PUSHER_SECRET": "..."}`,
//! supplies the secret variables at start-up, so they need not sit in the
//! function's environment. A variable the environment sets to a non-empty
//! value wins (local overrides). No error message carries a secret's value.

use crate::error::{InfraError, Result};
use std::collections::HashMap;

/// The variables a secret may supply.
pub const SECRET_VARS: [&str; 6] = [
    "DATABASE_URL",
    "REDIS_URL",
    "PUSHER_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "PUSHER_APP_ID",
    "PUSHER_KEY",
];

/// Fills `vars` from the secret's JSON text.
pub fn merge(vars: &mut HashMap<String, String>, secret: &str) -> Result<()> {
    let value: serde_json::Value = serde_json::from_str(secret).map_err(|e| {
        // serde's message names a line and column, never the text.
        InfraError::Config(format!("SECRETS_ARN: the secret is not JSON ({e})"))
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(InfraError::Config(
            "SECRETS_ARN: the secret must be a JSON object of variables".into(),
        ));
    };
    let mut problems = Vec::new();
    for (key, v) in map {
        if !SECRET_VARS.contains(&key.as_str()) {
            problems.push(format!(
                "{key:?} is not a variable a secret may set ({})",
                SECRET_VARS.join(", ")
            ));
            continue;
        }
        let Some(text) = v.as_str() else {
            problems.push(format!("{key} must be a string"));
            continue;
        };
        let set = vars.get(&key).is_some_and(|v| !v.trim().is_empty());
        if !set {
            vars.insert(key, text.to_string());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InfraError::Config(format!(
            "SECRETS_ARN: {}",
            problems.join("; ")
        )))
    }
}

/// The secret's current value (`SecretString`).
pub async fn fetch(sdk: &aws_config::SdkConfig, arn: &str) -> Result<String> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            InfraError::Config(format!(
                "SECRETS_ARN: cannot read secret {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))
        })?;
    out.secret_string().map(str::to_string).ok_or_else(|| {
        InfraError::Config(format!(
            "SECRETS_ARN: secret {arn} has no string value (binary secrets are not read)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_fills_what_the_environment_leaves_empty() {
        let mut vars: HashMap<String, String> =
            [("DATABASE_URL", ""), ("REDIS_URL", "redis://local:6379")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        merge(
            &mut vars,
            r#"{"DATABASE_URL": "postgres://u:pw@db/app", "REDIS_URL": "redis://prod:6379", "PUSHER_SECRET": "s"}"#,
        )
        .unwrap();
        assert_eq!(vars["DATABASE_URL"], "postgres://u:pw@db/app");
        assert_eq!(vars["REDIS_URL"], "redis://local:6379");
        assert_eq!(vars["PUSHER_SECRET"], "s");
    }

    #[test]
    fn bad_secrets_are_errors_that_do_not_show_the_value() {
        let mut vars = HashMap::new();
        let e = merge(&mut vars, r#"{"DATABASE_URL": "postgres://u:hunter2@db"#).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = merge(&mut vars, r#"["hunter2"]"#).unwrap_err();
        assert!(e.to_string().contains("JSON object"), "{e}");
        let e = merge(
            &mut vars,
            r#"{"AWS_SECRET_ACCESS_KEY": "hunter2", "REDIS_URL": 5}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("AWS_SECRET_ACCESS_KEY") && e.contains("REDIS_URL must be a string"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }
}
