//! Scalar values of the wire format: days, day counts, numbers.

use crate::error::ValidationErrors;
use crate::model::Number;
use chrono::NaiveDate;
use serde_json::Value;

use super::MAX_DAYS;

pub(crate) fn parse_days(
    v: Option<&Value>,
    path: &str,
    errs: &mut ValidationErrors,
) -> Option<u32> {
    let n = match v {
        None | Some(Value::Null) => {
            errs.push(path, "is required");
            return None;
        }
        Some(v) => number_of(v),
    };
    match n {
        Some(Number::Int(i)) if (1..=MAX_DAYS as i64).contains(&i) => Some(i as u32),
        Some(Number::Float(f)) if f.fract() == 0.0 && (1.0..=MAX_DAYS as f64).contains(&f) => {
            Some(f as u32)
        }
        _ => {
            errs.push(
                path,
                format!("must be a whole number of days from 1 to {MAX_DAYS}"),
            );
            None
        }
    }
}

pub(crate) fn parse_date(
    v: Option<&Value>,
    path: &str,
    errs: &mut ValidationErrors,
) -> Option<NaiveDate> {
    match v {
        None | Some(Value::Null) => {
            errs.push(path, "is required");
            None
        }
        Some(Value::String(s)) => match parse_day(s) {
            Some(d) => Some(d),
            None => {
                errs.push(path, format!("{s:?} is not a date (YYYY-MM-DD)"));
                None
            }
        },
        Some(_) => {
            errs.push(path, "must be a date string (YYYY-MM-DD)");
            None
        }
    }
}

/// A calendar day written `YYYY-MM-DD`, years 1 to 9999.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.len() != 10 || s.as_bytes()[4] != b'-' || s.as_bytes()[7] != b'-' {
        return None;
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    // A day's bounds in any zone (UTC-12 to UTC+14) must stay inside
    // BigQuery's TIMESTAMP range, years 1 to 9999.
    (d >= NaiveDate::from_ymd_opt(1, 1, 2)? && d <= NaiveDate::from_ymd_opt(9999, 12, 30)?)
        .then_some(d)
}

/// A JSON number, or a string holding one (the web app sends both).
pub fn number_of(v: &Value) -> Option<Number> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Number::Int(i))
            } else {
                n.as_f64().filter(|f| f.is_finite()).map(Number::Float)
            }
        }
        Value::String(s) => parse_number_text(s),
        _ => None,
    }
}

pub fn parse_number_text(s: &str) -> Option<Number> {
    let t = s.trim();
    if t.is_empty() || t.len() > 64 {
        return None;
    }
    // Only plain decimal notation: no "inf", "NaN", hex or underscores.
    let ok = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !ok || !t.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(Number::Int(i));
    }
    t.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Number::Float)
}
