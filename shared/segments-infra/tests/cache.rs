//! The Redis cache: values with TTLs, and invalidation by prefix that touches
//! nothing else even when ids hold glob characters.

mod common;

use common::{fresh_uuid, up, var};
use segments_infra::cache::{RedisCache, keys};
use segments_infra::ports::Cache;
use std::time::Duration;

#[tokio::test]
async fn values_expire_and_prefixes_invalidate_only_their_keys() {
    let c = up(RedisCache::connect(&var("REDIS_URL")).await, "Redis");
    let acc = fresh_uuid();
    let seg = format!("{}*[x]?", fresh_uuid());
    c.put(&keys::segments(&acc), "[]", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        c.get(&keys::segments(&acc)).await.unwrap().as_deref(),
        Some("[]")
    );

    let mine: Vec<String> = (0..25)
        .map(|i| format!("{}{i}", keys::report_segment_prefix(&acc, &seg)))
        .collect();
    // Keys a glob-unsafe prefix would also match, and another account's keys.
    let others = [
        format!("{}1", keys::report_segment_prefix(&acc, "zzz")),
        format!("{acc}_report_segment_{}", seg.replace('*', "ANY")),
        format!("{}1", keys::report_segments_prefix(&fresh_uuid())),
    ];
    for k in mine.iter().chain(others.iter()) {
        c.put(k, "v", Duration::from_secs(60)).await.unwrap();
    }
    assert_eq!(
        c.delete_prefix(&keys::report_segment_prefix(&acc, &seg))
            .await
            .unwrap(),
        25
    );
    for k in &mine {
        assert_eq!(c.get(k).await.unwrap(), None);
    }
    for k in &others {
        assert_eq!(
            c.get(k).await.unwrap().as_deref(),
            Some("v"),
            "{k} was deleted"
        );
        c.delete(k).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        c.get(&keys::segments(&acc)).await.unwrap(),
        None,
        "the TTL expired"
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let r = RedisCache::connect("redis://127.0.0.1:1").await;
    assert!(r.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// `rediss://` (ElastiCache with in-transit encryption): the second Redis of
/// tests/stack/up.sh serves TLS only, with a certificate from a local CA.
#[tokio::test]
async fn rediss_verifies_the_server_against_the_given_ca() {
    segments_infra::telemetry::install_crypto_provider();
    let url = var("REDIS_TLS_URL");
    assert!(url.starts_with("rediss://"), "{url}");
    let ca = var("REDIS_TLS_CA_FILE");
    let c = up(RedisCache::with_ca_file(&url, Some(&ca)), "Redis with TLS");
    let key = format!("tls_{}", fresh_uuid());
    up(
        c.put(&key, "over tls", Duration::from_secs(30)).await,
        "Redis with TLS",
    );
    assert_eq!(c.get(&key).await.unwrap().as_deref(), Some("over tls"));
    c.delete(&key).await.unwrap();

    // The Mozilla roots do not know the local CA: refused, not silently accepted.
    let untrusted = RedisCache::connect(&url).await;
    let err = untrusted
        .err()
        .expect("a certificate from an unknown CA was accepted")
        .to_string();
    assert!(err.contains("redis"), "{err}");
    // Plain redis:// to the TLS port does not get through either.
    let plain = url.replacen("rediss://", "redis://", 1);
    let c = RedisCache::new(&plain).unwrap();
    assert!(c.get(&key).await.is_err());
}

#[test]
fn a_ca_file_needs_rediss_and_a_readable_pem() {
    let e = RedisCache::with_ca_file("redis://127.0.0.1:6379", Some("/etc/hostname"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("REDIS_CA_FILE is set but REDIS_URL is not rediss://"),
        "{e}"
    );
    let e = RedisCache::with_ca_file("rediss://127.0.0.1:6380", Some("/nonexistent.pem"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("REDIS_CA_FILE /nonexistent.pem"), "{e}");
    let e = RedisCache::with_ca_file("rediss://127.0.0.1:6380", Some("/etc/hostname"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no PEM certificate"), "{e}");
}
