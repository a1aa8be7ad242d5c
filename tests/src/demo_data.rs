//! A generated demo warehouse in the reference schema: a few thousand rows of
//! companies, people, users, sessions and their events over the 60 days
//! before `now`, deterministic for a seed.

use chrono::{DateTime, Duration, Utc};
use segments_core::sql::string_literal as lit;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn ts(t: DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}+00'", t.format("%Y-%m-%d %H:%M:%S"))
}

fn kv(pairs: &[(&str, &str)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("STRUCT({} AS key, {} AS value)", lit(k), lit(v)))
        .collect();
    format!("[{}]", items.join(", "))
}

fn arr(items: &[&str]) -> String {
    format!(
        "[{}]",
        items.iter().map(|s| lit(s)).collect::<Vec<_>>().join(", ")
    )
}

/// The DDL of the fixture warehouse, as CREATE OR REPLACE (so a rerun resets the data).
fn ddl() -> Vec<String> {
    let text = include_str!("../fixtures/warehouse.sql");
    text.split("\n;\n")
        .map(|s| {
            s.lines()
                .filter(|l| !l.starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| s.trim_start().starts_with("CREATE TABLE"))
        .map(|s| s.replacen("CREATE TABLE", "CREATE OR REPLACE TABLE", 1))
        .collect()
}

fn insert(table: &str, columns: &str, rows: &[String]) -> Vec<String> {
    rows.chunks(400)
        .map(|chunk| {
            format!(
                "INSERT INTO {{{{dataset}}}}.{table} ({columns}) VALUES\n{}",
                chunk.join(",\n")
            )
        })
        .collect()
}

/// Statements (with `{{dataset}}`) that create and fill the demo warehouse.
pub fn statements(now: DateTime<Utc>, seed: u64) -> Vec<String> {
    let mut r = Rng(seed | 1);
    let mut out = ddl();
    let day = |r: &mut Rng| now - Duration::minutes(r.below(60 * 24 * 60) as i64 + 1);

    let countries = ["US", "DE", "FR", "GB", "JP"];
    let mut companies = Vec::new();
    for i in 0..40 {
        let topics = ["AI", "Cloud", "Security", "Analytics"];
        let t1 = r.pick(&topics);
        companies.push(format!(
            "('c{i}', {}, {}, {}, {}, {}, {}.0, {}, {}, {}, {})",
            lit(&format!("Company {i}")),
            lit(&format!("company{i}.example")),
            lit(r.pick(&["Software", "Retail", "Manufacturing", "Finance"])),
            lit(r.pick(&countries)),
            5 + r.below(5000),
            100_000 + r.below(50_000_000),
            arr(&[t1]),
            ts(day(&mut r)),
            ts(day(&mut r)),
            kv(&[("segment", r.pick(&["smb", "mid-market", "enterprise"]))]),
        ));
    }
    out.extend(insert(
        "companies",
        "company_id, name, domain, industry, country, employee_count, annual_revenue, intent_topics, first_seen_at, last_seen_at, custom",
        &companies,
    ));

    let mut people_company = Vec::new();
    let mut people = Vec::new();
    for i in 0..300 {
        let company = format!("c{}", r.below(40));
        people_company.push(company.clone());
        let created = day(&mut r);
        people.push(format!(
            "('p{i}', {}, {}, {}, {}, {}, {}, {}, {}, {})",
            lit(&company),
            lit(&format!("person{i}@company.example")),
            lit(&format!("Person {i}")),
            lit(r.pick(&["lead", "customer", "subscriber"])),
            arr(&[r.pick(&["vip", "beta", "newsletter"])]),
            if r.chance(30) { "TRUE" } else { "FALSE" },
            ts(created),
            ts(created + Duration::hours(r.below(48) as i64)),
            kv(&[("source", r.pick(&["webinar", "ads", "organic"]))]),
        ));
    }
    out.extend(insert(
        "people",
        "people_id, company_id, email, first_name, lifecycle_stage, tags, is_customer, created_at, last_seen_at, custom",
        &people,
    ));

    let mut user_people: Vec<Option<usize>> = Vec::new();
    let mut users = Vec::new();
    for i in 0..600 {
        let p = r.chance(40).then(|| r.below(300));
        user_people.push(p);
        users.push(format!(
            "('u{i}', {}, {}, {}, {}, {}, {}, {})",
            p.map(|p| lit(&format!("p{p}")))
                .unwrap_or_else(|| "NULL".into()),
            ts(day(&mut r)),
            ts(day(&mut r)),
            lit(r.pick(&countries)),
            lit(r.pick(&["Desktop", "mobile", "tablet"])),
            lit(r.pick(&["Chrome", "Firefox", "Safari"])),
            kv(&[("tier", r.pick(&["free", "pro"]))]),
        ));
    }
    out.extend(insert(
        "users",
        "user_id, people_id, first_seen_at, last_seen_at, country, device_type, browser, custom",
        &users,
    ));

    // Sessions, and for each a few events; a session links to its user's person and company.
    let mut sessions = Vec::new();
    let mut events = Vec::new();
    let mut conversions = Vec::new();
    let mut purchases = Vec::new();
    let mut fires = Vec::new();
    for i in 0..2500 {
        let u = r.below(600);
        let person = user_people[u];
        let (p, c) = match person {
            Some(p) => (lit(&format!("p{p}")), lit(&people_company[p])),
            None => ("NULL".to_string(), "NULL".to_string()),
        };
        let start = day(&mut r);
        let pageviews = 1 + r.below(12);
        let device = r.pick(&["Desktop", "Desktop", "mobile", "tablet"]);
        sessions.push(format!(
            "('s{i}', 'u{u}', {p}, {c}, {}, {}, {}, {}, {}, {}, {}, {pageviews}, {}, {}, {})",
            ts(start),
            lit(r.pick(&["/", "/pricing", "/docs", "/blog"])),
            lit(r.pick(&["google", "newsletter", "ads", "direct"])),
            lit(r.pick(&["organic", "email", "paid", "direct"])),
            lit(device),
            lit(r.pick(&["Chrome", "Firefox", "Safari"])),
            lit(r.pick(&countries)),
            pageviews * (20 + r.below(60)),
            if pageviews > 3 { "TRUE" } else { "FALSE" },
            kv(&[("plan", r.pick(&["free", "pro", "team"]))]),
        ));
        for k in 0..(1 + r.below(2)) {
            let name = r.pick(&[
                "page_view",
                "page_view",
                "page_view",
                "download",
                "form_submit",
            ]);
            let props = match name {
                "form_submit" => kv(&[("form", r.pick(&["contact", "newsletter", "demo"]))]),
                _ => kv(&[("title", r.pick(&["Home", "Pricing", "Docs"]))]),
            };
            events.push(format!(
                "('e{i}_{k}', {}, 's{i}', 'u{u}', {p}, {c}, '/', {}, [STRUCT('v' AS key, '1' AS value)], {props})",
                lit(name),
                ts(start + Duration::minutes(k as i64 + 1)),
            ));
        }
        if r.chance(8) {
            conversions.push(format!(
                "('w{i}', {}, 'Conversion', 's{i}', 'u{u}', {p}, {c}, {}.0, {}, [STRUCT('v' AS key, '1' AS value)], {})",
                lit(r.pick(&["signup", "demo"])),
                10 + r.below(90),
                ts(start + Duration::minutes(5)),
                kv(&[("form", r.pick(&["pricing", "contact"]))]),
            ));
        }
        if r.chance(10) {
            purchases.push(format!(
                "('ec{i}', {}, 's{i}', 'u{u}', {p}, {c}, 'T{i}', {}.5, {}, {})",
                lit(r.pick(&["purchase", "add_to_cart"])),
                5 + r.below(500),
                ts(start + Duration::minutes(7)),
                kv(&[("coupon", r.pick(&["NONE", "SUMMER"]))]),
            ));
        }
        if r.chance(4) {
            fires.push(format!(
                "('f{i}', {}, 's{i}', 'u{u}', {p}, {c}, {})",
                lit(r.pick(&["trg-checkout", "trg-pricing"])),
                ts(start + Duration::minutes(2)),
            ));
        }
    }
    out.extend(insert(
        "sessions",
        "session_id, user_id, people_id, company_id, started_at, landing_page, referrer, utm_medium, device_type, browser, country, pageviews, duration_seconds, is_engaged, custom",
        &sessions,
    ));
    out.extend(insert(
        "events",
        "event_id, event_name, session_id, user_id, people_id, company_id, page_url, event_timestamp, custom, properties",
        &events,
    ));
    out.extend(insert(
        "web_conversions",
        "web_conversion_id, conversion_id, conversion_name, session_id, user_id, people_id, company_id, value, converted_at, custom, properties",
        &conversions,
    ));
    out.extend(insert(
        "ecommerce_events",
        "event_id, event_name, session_id, user_id, people_id, company_id, transaction_id, revenue, event_timestamp, properties",
        &purchases,
    ));
    out.extend(insert(
        "trigger_fires",
        "fire_id, trigger_id, session_id, user_id, people_id, company_id, fired_at",
        &fires,
    ));
    out
}

/// How many rows [`statements`] inserts.
pub fn row_count(statements: &[String]) -> usize {
    statements
        .iter()
        .filter(|s| s.starts_with("INSERT"))
        .map(|s| s.lines().count() - 1)
        .sum()
}
