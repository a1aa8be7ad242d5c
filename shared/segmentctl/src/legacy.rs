//! Stored queries as text: before compiler version 2 the cronjob ran the
//! stored MERGE after replacing its `{{ts:...}}` placeholders. The cronjob now
//! renders every refresh from the rules; this lexer stays here only so
//! `segmentctl cronjob-sql --query-file` can still show what a stored query
//! (of any version) means for one run.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use segments_core::CoreError;
use segments_core::parse::parse_day;
use segments_core::sql::{Dialect, Expr, Writer};
use segments_core::time::{Clock, DayRef, TimeRef};

/// The AST node a placeholder body (`ts:now-24h`, `date:today+0d`) stands for.
fn placeholder(body: &str) -> Option<Expr> {
    let (kind, arg) = body.split_once(':')?;
    let hours =
        |s: &str| -> Option<u32> { s.strip_prefix("now-")?.strip_suffix('h')?.parse().ok() };
    let days =
        |s: &str| -> Option<i32> { s.strip_prefix("today")?.strip_suffix('d')?.parse().ok() };
    Some(match kind {
        "ts" if arg == "now" => Expr::Time(TimeRef::Now),
        "ts" if arg.starts_with("now-") => Expr::Time(TimeRef::NowMinusHours(hours(arg)?)),
        "ts" if arg.starts_with("today") => Expr::Time(TimeRef::TodayStart(days(arg)?)),
        "ts" => Expr::Time(TimeRef::DayStart(parse_day(arg)?)),
        "date" if arg.starts_with("now-") => Expr::Day(DayRef::NowMinusHours(hours(arg)?)),
        "date" if arg.starts_with("today") => Expr::Day(DayRef::Today(days(arg)?)),
        _ => return None,
    })
}

/// Replaces every `{{...}}` placeholder outside string literals and quoted
/// identifiers (so a user value that looks like a placeholder stays a value)
/// with its literal for `now` in `tz`.
pub fn substitute(
    sql: &str,
    dialect: &dyn Dialect,
    tz: &Tz,
    now: DateTime<Utc>,
) -> Result<String, CoreError> {
    let backslash = dialect.backslash_escapes();
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 64);
    let mut copied = 0; // bytes of `sql` already in `out`
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                // Skip a quoted run, honouring backslash escapes where the
                // dialect has them (Postgres's standard strings do not).
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += if backslash && bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                let len = sql[i..].find("}}").ok_or_else(|| {
                    CoreError::Argument(format!("unterminated placeholder at byte {i}"))
                })?;
                let body = &sql[i + 2..i + len];
                let expr = placeholder(body).ok_or_else(|| {
                    CoreError::Argument(format!("unknown placeholder {{{{{body}}}}}"))
                })?;
                let mut w = Writer::new(dialect, Clock::At { tz: *tz, now });
                w.expr(&expr);
                out.push_str(&sql[copied..i]);
                out.push_str(&w.finish()?);
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
    use segments_core::sql::DialectKind;
    use segments_core::time::{parse_now, parse_time_zone};

    #[test]
    fn substitutes_outside_literals_only() {
        let tz = parse_time_zone("Europe/Berlin").unwrap();
        let now = parse_now("2024-06-15T10:30:00.25Z").unwrap();
        let bq = DialectKind::BigQuery.dialect();
        let sql = "SELECT {{ts:now}}, {{ts:today-1d}}, {{ts:now-48h}}, {{date:today+0d}}, '{{ts:now}}', 'it\\'s {{x}}', `{{y}}`, {{ts:2024-01-01}}";
        assert_eq!(
            substitute(sql, bq, &tz, now).unwrap(),
            "SELECT TIMESTAMP '2024-06-15 10:30:00.250000+00:00', TIMESTAMP '2024-06-13 22:00:00+00:00', \
             TIMESTAMP '2024-06-13 10:30:00.250000+00:00', DATE '2024-06-15', '{{ts:now}}', 'it\\'s {{x}}', `{{y}}`, \
             TIMESTAMP '2023-12-31 23:00:00+00:00'"
        );
        assert!(substitute("{{nope}}", bq, &tz, now).is_err());
        assert!(substitute("{{ts:now", bq, &tz, now).is_err());
        let early = parse_now("0001-01-01T10:00:00Z").unwrap();
        let e = substitute("SELECT {{ts:now-24h}}", bq, &tz, early).unwrap_err();
        assert!(e.to_string().contains("outside BigQuery's range"), "{e}");
    }
}
