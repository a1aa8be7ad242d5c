//! TLS to the local Postgres, which serves TLS with its own self-signed
//! certificate (Debian's snakeoil, issued to `localhost`): each `sslmode`
//! connects or refuses as libpq would, and encryption is read back from the
//! server (`pg_stat_ssl`).

mod common;

use common::var;
use segments_infra::postgres::PgStore;

/// The stack's DATABASE_URL with `host` and the TLS parameters replaced.
fn url(host: &str, params: &str) -> String {
    let base = var("DATABASE_URL");
    let base = base.split('?').next().unwrap_or_default();
    let base = base.replace("127.0.0.1", host);
    format!("{base}?{params}")
}

/// The server's certificate file, which also serves as its own CA here.
async fn server_cert() -> String {
    let plain = PgStore::connect(&url("127.0.0.1", "sslmode=disable"), 1).unwrap();
    let ssl = plain.setting("ssl").await.unwrap();
    assert_eq!(
        ssl, "on",
        "the local Postgres does not serve TLS (ssl = {ssl}); these tests need it"
    );
    plain.setting("ssl_cert_file").await.unwrap()
}

async fn connects(url: &str) -> Result<bool, String> {
    let store = PgStore::connect(url, 1).map_err(|e| e.to_string())?;
    store.tls_in_use().await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn disable_is_plain_and_prefer_and_require_encrypt() {
    server_cert().await;
    assert_eq!(
        connects(&url("127.0.0.1", "sslmode=disable")).await,
        Ok(false)
    );
    // No sslmode: prefer, as libpq.
    assert_eq!(
        connects(&url("127.0.0.1", "application_name=t")).await,
        Ok(true)
    );
    assert_eq!(
        connects(&url("127.0.0.1", "sslmode=require")).await,
        Ok(true)
    );
}

#[tokio::test]
async fn verify_ca_accepts_the_servers_ca_and_refuses_another() {
    let cert = server_cert().await;
    let ok = url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={cert}"),
    );
    // The name (127.0.0.1) is not checked by verify-ca.
    assert_eq!(connects(&ok).await, Ok(true));
    // The Mozilla roots did not sign a self-signed certificate.
    let e = connects(&url("127.0.0.1", "sslmode=verify-ca&sslrootcert=system"))
        .await
        .unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // require with a root certificate verifies, as libpq.
    let e = connects(&url("127.0.0.1", "sslmode=require&sslrootcert=system"))
        .await
        .unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
}

#[tokio::test]
async fn verify_full_also_checks_the_host_name() {
    let cert = server_cert().await;
    let named = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={cert}"),
    );
    assert_eq!(connects(&named).await, Ok(true));
    // The certificate names localhost, not 127.0.0.1.
    let e = connects(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={cert}"),
    ))
    .await
    .unwrap_err();
    assert!(e.contains("not valid for name"), "{e}");
}
