//! Segment-shaped raw rows for the demo (`tests/demo.sh --segment`): 120
//! anonymous ids browsing over the last 7 days before `now`, in sessions of
//! 1 to 8 events, a third of them identified (with emails at a few domains).
//! Deterministic for a given `now`. Rows are in the `segment_raw` format.

use chrono::{DateTime, Duration, Utc};

/// A small deterministic generator (no dependency; the demo needs no quality).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Raw `identifies`, `pages` and `tracks` rows.
pub struct RawRows {
    pub identifies: Vec<String>,
    pub pages: Vec<String>,
    pub tracks: Vec<String>,
}

const PAGES: &[&str] = &["/", "/pricing", "/docs", "/blog/segments", "/signup"];
const EVENTS: &[&str] = &["signup_click", "video_play", "form_submit", "scroll"];
const DOMAINS: &[&str] = &["example.com", "acme.io", "initech.org"];
const SOURCES: &[&str] = &["google", "newsletter", "-"];

pub fn rows(now: DateTime<Utc>) -> RawRows {
    let mut rng = Lcg(42);
    let start = now - Duration::days(7);
    let ts = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let mut out = RawRows {
        identifies: vec![],
        pages: vec![],
        tracks: vec![],
    };
    let mut n = 0;
    for a in 0..120 {
        let anon = format!("anon-{a:03}");
        let user = (a % 3 == 0).then(|| format!("user-{:03}", a / 3));
        let sessions = 1 + rng.next(6);
        for _ in 0..sessions {
            let mut t = start + Duration::seconds(rng.next(7 * 24 * 3600 - 4 * 3600) as i64);
            let source = SOURCES[rng.next(SOURCES.len() as u64) as usize];
            for e in 0..(1 + rng.next(8)) {
                n += 1;
                let id = format!("evt-{n:06}");
                let uid = user.as_deref().filter(|_| rng.next(4) == 0).unwrap_or("-");
                if e == 0 || rng.next(2) == 0 {
                    let path = PAGES[rng.next(PAGES.len() as u64) as usize];
                    out.pages.push(format!(
                        "{id}|{anon}|{uid}|{}|https://demo.example{path}|{path}|Demo {path}|{}|{source}|{}|-",
                        ts(t),
                        if e == 0 { "https://google.com" } else { "-" },
                        if source == "-" { "-" } else { "cpc" },
                    ));
                } else {
                    let event = EVENTS[rng.next(EVENTS.len() as u64) as usize];
                    out.tracks
                        .push(format!("{id}|{anon}|{uid}|{}|{event}|-", ts(t)));
                }
                t += Duration::seconds(5 + rng.next(20 * 60) as i64);
            }
        }
        if let Some(user) = &user {
            let domain = DOMAINS[rng.next(DOMAINS.len() as u64) as usize];
            out.identifies.push(format!(
                "idf-{a:03}|{anon}|{user}|{}|{user}@{domain}|Demo|User {a}",
                ts(start + Duration::hours(1))
            ));
        }
    }
    out
}
