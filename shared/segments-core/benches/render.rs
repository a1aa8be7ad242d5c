//! Rendering cost: a 5-group x 5-condition segment (parse + compile + render)
//! and a 4-segment report. `cargo bench -p segments-core`.

use criterion::{Criterion, criterion_group, criterion_main};
use segments_core::report::{parse_report_value, render_report};
use segments_core::time::{parse_now, parse_time_zone};
use segments_core::{Catalog, Target, parse_segment, render_segment};
use serde_json::{Value, json};
use std::hint::black_box;

fn segment_5x5() -> Value {
    let conds = [
        json!({"type": "dimension", "key": "country", "condition": "in-list", "value": ["US", "DE", "FR"]}),
        json!({"conjunction": "or", "type": "custom", "key": "plan", "condition": "equals", "value": "pro"}),
        json!({"type": "number", "key": "pageviews", "condition": "between", "value": ["2", "20"]}),
        json!({"type": "boolean", "key": "is_engaged", "condition": "is-true"}),
        json!({"conjunction": "or", "type": "dimension", "key": "referrer", "condition": "not-contain", "value": "spam"}),
    ];
    let mut groups = Vec::new();
    for i in 0..5 {
        let mut g = json!({
            "mainOperator": if i == 4 { "exclude" } else { "include" },
            "conjunction": if i % 2 == 0 { "and" } else { "or" },
            "segmentObject": "session", "conditionFocus": "property",
            "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 30}
        });
        for (j, c) in conds.iter().enumerate() {
            g[format!("g{j}")] = c.clone();
        }
        groups.push(g);
    }
    json!({"id": "bench-segment", "ruleGroups": groups})
}

fn bench(c: &mut Criterion) {
    let catalog = Catalog::default_catalog();
    let target = Target::new("acme-analytics", "account_1").unwrap();
    let tz = parse_time_zone("America/New_York").unwrap();
    let now = parse_now("2024-06-15T12:00:00Z").unwrap();
    let seg_json = segment_5x5();
    c.bench_function("render segment 5 groups x 5 conditions", |b| {
        b.iter(|| {
            let seg = parse_segment(black_box(&seg_json)).unwrap();
            black_box(render_segment(&seg, &catalog, &target, &tz, now).unwrap())
        })
    });
    let seg = parse_segment(&seg_json).unwrap();
    c.bench_function("parse only", |b| {
        b.iter(|| black_box(parse_segment(black_box(&seg_json)).unwrap()))
    });
    c.bench_function("members query only", |b| {
        b.iter(|| {
            black_box(segments_core::compile::members_query(&seg, &catalog, &target).unwrap())
        })
    });
    let q = segments_core::compile::members_query(&seg, &catalog, &target).unwrap();
    c.bench_function("render query only", |b| {
        b.iter(|| {
            let clock = segments_core::time::Clock::At { tz, now };
            black_box(segments_core::sql::render_query(target.dialect(), &q, clock).unwrap())
        })
    });
    let req = json!({
        "object": "session", "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"},
        "dimensions": ["country", "device_type"], "metrics": ["sessions", "pageviews"],
        "segments": ["a1", {"id": "a2", "object": "user"}, {"id": "a3", "object": "people"}, "a4"],
        "sort": {"by": "sessions", "direction": "desc"}, "limit": 100
    });
    c.bench_function("render report with 4 segments", |b| {
        b.iter(|| {
            let r = parse_report_value(black_box(&req)).unwrap();
            black_box(render_report(&r, &catalog, &target, &tz, now).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
