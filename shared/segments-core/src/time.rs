//! Time as an input: instants that depend on `now` or on the account's time zone
//! are rendered as placeholders, then replaced for one run's `now` and zone.
//! The create query and the stored cronjob query therefore come from one text.

use crate::error::CoreError;
use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// An instant, resolved at substitution time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeRef {
    Now,
    /// `now` minus this many hours (`in-last-days N` is N×24 h).
    NowMinusHours(u32),
    /// Local midnight of (today in the account's zone + offset days).
    TodayStart(i32),
    /// Local midnight of a calendar day in the account's zone.
    DayStart(NaiveDate),
}

/// A calendar day, resolved at substitution time (for DATE columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayRef {
    /// The local day of `now` minus this many hours.
    NowMinusHours(u32),
    /// Today in the account's zone + offset days.
    Today(i32),
    Fixed(NaiveDate),
}

/// When a statement is rendered for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clock {
    /// Instants that depend on the run stay `{{ts:...}}` / `{{date:...}}`
    /// placeholders: the form stored for people to read.
    Placeholders,
    /// One run: every instant becomes a literal for `now` in zone `tz`.
    At { tz: Tz, now: DateTime<Utc> },
}

impl TimeRef {
    /// The instant at `now` in `tz`; `None` when it cannot be represented.
    pub fn resolve(&self, tz: &Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match *self {
            TimeRef::Now => Some(now),
            TimeRef::NowMinusHours(h) => now.checked_sub_signed(Duration::try_hours(h.into())?),
            TimeRef::TodayStart(d) => Some(day_start(tz, shift_days(today(tz, now), d.into())?)),
            TimeRef::DayStart(day) => Some(day_start(tz, day)),
        }
    }

    pub fn placeholder(&self) -> String {
        match self {
            TimeRef::Now => "{{ts:now}}".into(),
            TimeRef::NowMinusHours(h) => format!("{{{{ts:now-{h}h}}}}"),
            TimeRef::TodayStart(d) => format!("{{{{ts:today{d:+}d}}}}"),
            TimeRef::DayStart(day) => format!("{{{{ts:{}}}}}", day.format("%Y-%m-%d")),
        }
    }
}

impl DayRef {
    /// The day at `now` in `tz`; `None` when it cannot be represented.
    pub fn resolve(&self, tz: &Tz, now: DateTime<Utc>) -> Option<NaiveDate> {
        match *self {
            DayRef::NowMinusHours(h) => {
                let t = now.checked_sub_signed(Duration::try_hours(h.into())?)?;
                Some(t.with_timezone(tz).date_naive())
            }
            DayRef::Today(d) => shift_days(today(tz, now), d.into()),
            DayRef::Fixed(day) => Some(day),
        }
    }

    pub fn placeholder(&self) -> String {
        match self {
            DayRef::NowMinusHours(h) => format!("{{{{date:now-{h}h}}}}"),
            DayRef::Today(d) => format!("{{{{date:today{d:+}d}}}}"),
            // A fixed day does not depend on the zone: render it directly.
            DayRef::Fixed(day) => format!("DATE '{}'", day.format("%Y-%m-%d")),
        }
    }
}

/// Parses an IANA zone name (`Europe/Berlin`, `UTC`).
pub fn parse_time_zone(name: &str) -> Result<Tz, CoreError> {
    name.trim().parse::<Tz>().map_err(|_| {
        CoreError::Argument(format!(
            "unknown time zone {name:?} (expected an IANA name such as Europe/Berlin)"
        ))
    })
}

/// Parses an RFC 3339 instant.
pub fn parse_now(text: &str) -> Result<DateTime<Utc>, CoreError> {
    let t = DateTime::parse_from_rfc3339(text.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| {
            CoreError::Argument(format!("--now {text:?} is not an RFC 3339 instant: {e}"))
        })?;
    if !in_bigquery_range(t) {
        return Err(CoreError::Argument(format!(
            "--now {text:?} is outside BigQuery's range (years 1 to 9999)"
        )));
    }
    Ok(without_leap_second(t))
}

/// BigQuery has no leap seconds: 23:59:60.x is read as the last microsecond
/// of 23:59:59, which keeps the order of instants.
pub fn without_leap_second(t: DateTime<Utc>) -> DateTime<Utc> {
    if t.nanosecond() >= 1_000_000_000 {
        t.with_nanosecond(999_999_000).unwrap_or(t)
    } else {
        t
    }
}

/// Whether BigQuery's TIMESTAMP can hold `t` (0001-01-01 to 9999-12-31 UTC).
pub fn in_bigquery_range(t: DateTime<Utc>) -> bool {
    (1..=9999).contains(&t.year())
}

/// The first instant of `day` in `tz`. On a day whose midnight does not exist
/// (a DST jump at 00:00) that is the first instant after the gap; where it is
/// ambiguous, the earlier one.
pub fn day_start(tz: &Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        LocalResult::None => {
            // Walk forward in minutes until the local clock exists again.
            for m in 1..=24 * 60 {
                if let Some(t) = tz
                    .from_local_datetime(&(midnight + Duration::minutes(m)))
                    .earliest()
                {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&midnight)
        }
    }
}

pub fn today(tz: &Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(tz).date_naive()
}

/// `TIMESTAMP 'YYYY-MM-DD HH:MM:SS[.ffffff]+00:00'`.
pub fn timestamp_literal(t: DateTime<Utc>) -> String {
    let t = without_leap_second(t);
    let micros = t.timestamp_subsec_micros();
    if micros == 0 {
        format!("TIMESTAMP '{}+00:00'", t.format("%Y-%m-%d %H:%M:%S"))
    } else {
        format!(
            "TIMESTAMP '{}.{micros:06}+00:00'",
            t.format("%Y-%m-%d %H:%M:%S")
        )
    }
}

/// Whether a DATE can hold `d` (years 1 to 9999).
pub fn day_in_range(d: NaiveDate) -> bool {
    (1..=9999).contains(&d.year())
}

/// The error for a time that falls outside the warehouse's range at `now`.
pub fn out_of_range(placeholder: &str, now: DateTime<Utc>) -> CoreError {
    CoreError::Argument(format!(
        "{placeholder} at {now} falls outside BigQuery's range (years 1 to 9999)"
    ))
}

/// What a placeholder stands for at one run.
enum Resolved {
    Ts(DateTime<Utc>),
    Date(NaiveDate),
}

impl Resolved {
    /// BigQuery holds years 1 to 9999 only.
    fn in_range(&self) -> bool {
        match self {
            Resolved::Ts(t) => in_bigquery_range(*t),
            Resolved::Date(d) => (1..=9999).contains(&d.year()),
        }
    }

    fn literal(&self) -> String {
        match self {
            Resolved::Ts(t) => timestamp_literal(*t),
            Resolved::Date(d) => date_literal(*d),
        }
    }
}

fn date_literal(d: NaiveDate) -> String {
    format!("DATE '{}'", d.format("%Y-%m-%d"))
}

fn shift_days(d: NaiveDate, days: i64) -> Option<NaiveDate> {
    d.checked_add_signed(Duration::try_days(days)?)
}

fn resolve(body: &str, tz: &Tz, now: DateTime<Utc>) -> Option<Resolved> {
    let (kind, arg) = body.split_once(':')?;
    let today = today(tz, now);
    let hours_back = |s: &str| -> Option<DateTime<Utc>> {
        let h: i64 = s.strip_prefix("now-")?.strip_suffix('h')?.parse().ok()?;
        now.checked_sub_signed(Duration::try_hours(h)?)
    };
    let today_offset = |s: &str| -> Option<NaiveDate> {
        let d: i64 = s.strip_prefix("today")?.strip_suffix('d')?.parse().ok()?;
        shift_days(today, d)
    };
    match kind {
        "ts" if arg == "now" => Some(Resolved::Ts(now)),
        "ts" if arg.starts_with("now-") => hours_back(arg).map(Resolved::Ts),
        "ts" if arg.starts_with("today") => {
            today_offset(arg).map(|d| Resolved::Ts(day_start(tz, d)))
        }
        "ts" => crate::parse::parse_day(arg).map(|d| Resolved::Ts(day_start(tz, d))),
        "date" if arg.starts_with("now-") => {
            hours_back(arg).map(|t| Resolved::Date(t.with_timezone(tz).date_naive()))
        }
        "date" if arg.starts_with("today") => today_offset(arg).map(Resolved::Date),
        _ => None,
    }
}

/// Replaces every `{{...}}` placeholder outside string literals and quoted
/// identifiers, so a user value that looks like a placeholder stays a value.
pub fn substitute(sql: &str, tz: &Tz, now: DateTime<Utc>) -> Result<String, CoreError> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 64);
    // Each distinct placeholder is resolved once; a query repeats few of them.
    let mut resolved: Vec<(&str, String)> = Vec::new();
    let mut copied = 0; // bytes of `sql` already in `out`
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                // Skip a quoted run, honouring backslash escapes.
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                let Some(len) = sql[i..].find("}}") else {
                    return Err(CoreError::Argument(format!(
                        "unterminated placeholder at byte {i}"
                    )));
                };
                let body = &sql[i + 2..i + len];
                out.push_str(&sql[copied..i]);
                match resolved.iter().find(|(b, _)| *b == body) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        let r = resolve(body, tz, now).ok_or_else(|| {
                            CoreError::Argument(format!("unknown placeholder {{{{{body}}}}}"))
                        })?;
                        if !r.in_range() {
                            return Err(CoreError::Argument(format!(
                                "{{{{{body}}}}} at {now} falls outside BigQuery's range (years 1 to 9999)"
                            )));
                        }
                        let v = r.literal();
                        out.push_str(&v);
                        resolved.push((body, v));
                    }
                }
                i += len + 2;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leap_second_is_the_last_microsecond_before_it() {
        let t = parse_now("2016-12-31T23:59:60.5Z").unwrap();
        assert_eq!(
            timestamp_literal(t),
            "TIMESTAMP '2016-12-31 23:59:59.999999+00:00'"
        );
    }

    #[test]
    fn instants_outside_bigquerys_range_are_errors() {
        assert!(parse_now("0000-12-31T23:00:00Z").is_err());
        let tz = parse_time_zone("UTC").unwrap();
        let now = parse_now("0001-01-01T10:00:00Z").unwrap();
        assert!(substitute("SELECT {{ts:now}}", &tz, now).is_ok());
        let e = substitute("SELECT {{ts:now-24h}}", &tz, now).unwrap_err();
        assert!(e.to_string().contains("outside BigQuery's range"), "{e}");
        let e = substitute("SELECT {{date:today-1d}}", &tz, now).unwrap_err();
        assert!(e.to_string().contains("outside BigQuery's range"), "{e}");
    }

    fn at(s: &str) -> DateTime<Utc> {
        parse_now(s).unwrap()
    }

    #[test]
    fn day_start_follows_the_zone_and_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap(); // DST starts at 02:00
        assert_eq!(day_start(&ny, d), at("2024-03-10T05:00:00Z"));
        let next = NaiveDate::from_ymd_opt(2024, 3, 11).unwrap();
        assert_eq!(day_start(&ny, next), at("2024-03-11T04:00:00Z"));
        // Santiago skipped midnight: 2022-09-11 starts at 01:00 local (-03).
        let scl: Tz = "America/Santiago".parse().unwrap();
        let gap = NaiveDate::from_ymd_opt(2022, 9, 11).unwrap();
        assert_eq!(day_start(&scl, gap), at("2022-09-11T04:00:00Z"));
    }

    #[test]
    fn substitutes_outside_literals_only() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let now = at("2024-06-15T10:30:00.25Z");
        let sql = "SELECT {{ts:now}}, {{ts:today-1d}}, {{ts:now-48h}}, {{date:today+0d}}, '{{ts:now}}', 'it\\'s {{x}}', `{{y}}`, {{ts:2024-01-01}}";
        assert_eq!(
            substitute(sql, &tz, now).unwrap(),
            "SELECT TIMESTAMP '2024-06-15 10:30:00.250000+00:00', TIMESTAMP '2024-06-13 22:00:00+00:00', \
             TIMESTAMP '2024-06-13 10:30:00.250000+00:00', DATE '2024-06-15', '{{ts:now}}', 'it\\'s {{x}}', `{{y}}`, \
             TIMESTAMP '2023-12-31 23:00:00+00:00'"
        );
        assert!(substitute("{{nope}}", &tz, now).is_err());
        assert!(substitute("{{ts:now", &tz, now).is_err());
    }

    #[test]
    fn placeholders_round_trip() {
        let tz: Tz = "UTC".parse().unwrap();
        let now = at("2024-06-15T00:00:00Z");
        for t in [
            TimeRef::Now,
            TimeRef::NowMinusHours(24),
            TimeRef::TodayStart(-30),
            TimeRef::TodayStart(0),
        ] {
            assert!(substitute(&t.placeholder(), &tz, now).is_ok(), "{t:?}");
        }
        assert_eq!(
            substitute(&TimeRef::TodayStart(-30).placeholder(), &tz, now).unwrap(),
            "TIMESTAMP '2024-05-16 00:00:00+00:00'"
        );
    }
}
