//! The local demo: loads the fixture warehouse into the BigQuery emulator, builds
//! the example segments of `docs/examples/`, refreshes them a day later with
//! their cronjob queries, and runs a report filtered by two of them.
//! Run with `tests/demo.sh` (it starts the local stack first).

use segments_core::report::{parse_report_request, render_report};
use segments_core::time::{parse_now, parse_time_zone, substitute};
use segments_core::{Catalog, Target, parse_segment_bytes, render_segment};
use segments_tests::repo_root;
use segments_tests::warehouse::Warehouse;

const BUILD_AT: &str = "2024-06-15T12:00:00Z";
const REFRESH_AT: &str = "2024-06-16T12:00:00Z";
const ZONE: &str = "America/New_York";

fn fail(step: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("\nFAILED while {step}: {err}");
    eprintln!("Is the local stack up? Run tests/stack/up.sh, then try again.");
    std::process::exit(1)
}

#[tokio::main]
async fn main() {
    let catalog = Catalog::default_catalog();
    let tz = parse_time_zone(ZONE).unwrap_or_else(|e| fail("reading the zone", e));
    let (build_at, refresh_at) = (
        parse_now(BUILD_AT).unwrap_or_else(|e| fail("reading the build time", e)),
        parse_now(REFRESH_AT).unwrap_or_else(|e| fail("reading the refresh time", e)),
    );

    println!("1/4 loading the demo warehouse into the BigQuery emulator ...");
    let w = Warehouse::fixture("demo").await;
    let target =
        Target::new(&w.project, &w.dataset).unwrap_or_else(|e| fail("naming the dataset", e));
    println!("    dataset {}.{}", w.project, w.dataset);

    println!("2/4 building segments at {BUILD_AT} ({ZONE}) ...");
    let mut built = Vec::new();
    for name in [
        "engaged-us-sessions",
        "returning-users",
        "contact-form-people",
    ] {
        let path = repo_root().join(format!("docs/examples/{name}.json"));
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| fail(&format!("reading {}", path.display()), e));
        let seg =
            parse_segment_bytes(&bytes).unwrap_or_else(|e| fail(&format!("validating {name}"), e));
        let r = render_segment(&seg, &catalog, &target, &tz, build_at)
            .unwrap_or_else(|e| fail(&format!("rendering {name}"), e));
        w.run(&r.create_table_query)
            .await
            .unwrap_or_else(|e| fail(&format!("building {name}"), e));
        let members = w
            .members(&r.table)
            .await
            .unwrap_or_else(|e| fail(&format!("reading {name}"), e));
        println!(
            "    {:<38} {:<8} {} members {:?}",
            seg.name.clone().unwrap_or_default(),
            seg.object.as_str(),
            members.len(),
            members
        );
        built.push((seg, r));
    }

    println!("3/4 refreshing with the cronjob queries at {REFRESH_AT} ...");
    for (seg, r) in &built {
        let sql = substitute(&r.cronjob_query, &tz, refresh_at)
            .unwrap_or_else(|e| fail("substituting", e));
        w.run(&sql).await.unwrap_or_else(|e| fail("refreshing", e));
        let members = w
            .members(&r.table)
            .await
            .unwrap_or_else(|e| fail("reading", e));
        println!(
            "    {:<38} {} members {:?}",
            seg.name.clone().unwrap_or_default(),
            members.len(),
            members
        );
    }

    println!("4/4 report: sessions by device, June 2024, filtered by two segments ...");
    let path = repo_root().join("docs/examples/session-report.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| fail("reading the report request", e));
    let req =
        parse_report_request(&bytes).unwrap_or_else(|e| fail("validating the report request", e));
    let queries = render_report(&req, &catalog, &target, &tz, refresh_at)
        .unwrap_or_else(|e| fail("rendering the report", e));
    for q in &queries.segments {
        let mut rs = w
            .run(&q.query)
            .await
            .unwrap_or_else(|e| fail("running the report", e));
        println!("    segment {}", q.segment_id);
        println!(
            "      {:<10} {:>8} {:>9}",
            "device", "sessions", "pageviews"
        );
        while rs.next_row() {
            println!(
                "      {:<10} {:>8} {:>9}",
                rs.get_string(0).ok().flatten().unwrap_or_default(),
                rs.get_i64(1).ok().flatten().unwrap_or_default(),
                rs.get_i64(2).ok().flatten().unwrap_or_default()
            );
        }
    }
    println!("\ndone.");
}
