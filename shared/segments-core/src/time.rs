//! Time as an input: instants that depend on `now` or on the account's time
//! zone are AST nodes ([`TimeRef`], [`DayRef`]) that the renderer resolves for
//! one run ([`Clock::At`]) or writes as `{{ts:...}}` placeholders in the
//! stored, human-readable form ([`Clock::Placeholders`]).

use crate::error::CoreError;
use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// An instant, resolved when a statement is rendered for a run.
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

/// A calendar day, resolved when a statement is rendered (for DATE columns).
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

fn shift_days(d: NaiveDate, days: i64) -> Option<NaiveDate> {
    d.checked_add_signed(Duration::try_days(days)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leap_second_is_the_last_microsecond_before_it() {
        let t = parse_now("2016-12-31T23:59:60.5Z").unwrap();
        let mut out = String::new();
        crate::sql::dialect::utc_text(&mut out, t);
        assert_eq!(out, "2016-12-31 23:59:59.999999+00:00");
    }

    /// `expr` rendered in BigQuery for `now` in `tz`.
    fn render(expr: crate::sql::Expr, tz: &str, now: &str) -> Result<String, CoreError> {
        let clock = Clock::At {
            tz: parse_time_zone(tz).unwrap(),
            now: parse_now(now).unwrap(),
        };
        let mut w = crate::sql::Writer::new(crate::sql::DialectKind::BigQuery.dialect(), clock);
        w.expr(&expr);
        w.finish()
    }

    #[test]
    fn instants_outside_bigquerys_range_are_errors() {
        use crate::sql::Expr;
        assert!(parse_now("0000-12-31T23:00:00Z").is_err());
        let now = "0001-01-01T10:00:00Z";
        assert!(render(Expr::Time(TimeRef::Now), "UTC", now).is_ok());
        let e = render(Expr::Time(TimeRef::NowMinusHours(24)), "UTC", now).unwrap_err();
        assert!(e.to_string().contains("outside BigQuery's range"), "{e}");
        let e = render(Expr::Day(DayRef::Today(-1)), "UTC", now).unwrap_err();
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
    fn run_time_instants_resolve_in_the_accounts_zone() {
        use crate::sql::Expr;
        let now = "2024-06-15T10:30:00.25Z";
        let cases = [
            (
                Expr::Time(TimeRef::Now),
                "TIMESTAMP '2024-06-15 10:30:00.250000+00:00'",
            ),
            (
                Expr::Time(TimeRef::TodayStart(-1)),
                "TIMESTAMP '2024-06-13 22:00:00+00:00'",
            ),
            (
                Expr::Time(TimeRef::NowMinusHours(48)),
                "TIMESTAMP '2024-06-13 10:30:00.250000+00:00'",
            ),
            (Expr::Day(DayRef::Today(0)), "DATE '2024-06-15'"),
            (
                Expr::Time(TimeRef::DayStart(
                    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                )),
                "TIMESTAMP '2023-12-31 23:00:00+00:00'",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(
                render(e.clone(), "Europe/Berlin", now).unwrap(),
                want,
                "{e:?}"
            );
        }
        // Placeholders are the stored form.
        let mut w = crate::sql::Writer::new(
            crate::sql::DialectKind::BigQuery.dialect(),
            Clock::Placeholders,
        );
        w.expr(&Expr::Time(TimeRef::TodayStart(-30)));
        assert_eq!(w.finish().unwrap(), "{{ts:today-30d}}");
    }
}
