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
