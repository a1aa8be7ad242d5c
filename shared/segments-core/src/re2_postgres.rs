//! `matches-regex` on Postgres: RE2 patterns (what BigQuery runs) rewritten
//! into Postgres advanced regular expressions (ARE) with the same meaning, or
//! refused, naming the construct, where the two engines read a pattern
//! differently and no faithful rewrite is short (docs/postgres-warehouse.md).
//!
//! Rewritten (RE2 → ARE):
//! - `.` → `[^\n]`: RE2's dot never matches a newline, ARE's does.
//! - `\d \w \s \D \W \S` → explicit ASCII classes: RE2's are ASCII, ARE's
//!   follow the database's locale (Unicode digits, letters, spaces).
//!   Inside brackets only the positive ones (`[\d]` → `[0-9]`).
//! - `\z` → `\Z` (end of text); `\xHH`, `\x{H…}` → `\UHHHHHHHH` (ARE's `\x`
//!   swallows every following hex digit).
//! - a `{` that is not a repetition (RE2 reads it as a literal) → `\{`;
//!   a literal `[` inside brackets → `\[`.
//!
//! Refused: flag groups `(?i)` `(?s)` `(?m)` `(?U)` (ARE has options only at
//! the very start, and its case folding follows the locale); named groups;
//! `\b \B` (ARE's `\b` is a backspace, its word boundary `\y` counts non-ASCII
//! letters as word characters); `\pN`, `\p{…}`, `\PN` (no Unicode classes in
//! ARE); POSIX classes `[[:alpha:]]` (locale dependent in ARE); `\Q…\E`; `\C`;
//! octal escapes `\1`…; repetition counts above 255 (ARE's limit);
//! `\D \W \S` inside brackets.
//!
//! Call after [`crate::re2::check`] accepted the pattern: this module does not
//! re-validate RE2's syntax, it only rewrites or refuses.

/// ARE's largest repetition count (`DUPMAX`).
const ARE_MAX_REPEAT: u32 = 255;

const DIGIT: &str = "0-9";
const WORD: &str = "0-9A-Za-z_";
const SPACE: &str = "\\t\\n\\f\\r ";

/// The ARE pattern that matches exactly what RE2 matches with `pattern`, or
/// the construct that has no such rewrite.
pub fn to_postgres(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                i = escape(&chars, i, &mut out, false)?;
            }
            '.' => {
                out.push_str("[^\\n]");
                i += 1;
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                if chars.get(i + 2) == Some(&':') {
                    out.push_str("(?:");
                    i += 3;
                } else if matches!(chars.get(i + 2), Some('P') | Some('<')) {
                    return Err("named groups (?P<name>…) are not supported on Postgres".into());
                } else {
                    let end = chars[i..]
                        .iter()
                        .position(|c| *c == ')' || *c == ':')
                        .map_or(chars.len(), |p| i + p + 1);
                    let flags: String = chars[i..end].iter().collect();
                    return Err(format!(
                        "the flag group {flags} is not supported on Postgres (its options differ)"
                    ));
                }
            }
            '{' => match counted(&chars[i..]) {
                Some((len, counts)) => {
                    if counts.iter().any(|n| *n > ARE_MAX_REPEAT) {
                        let text: String = chars[i..i + len].iter().collect();
                        return Err(format!(
                            "the repetition {text} exceeds Postgres's limit of {ARE_MAX_REPEAT}"
                        ));
                    }
                    out.extend(&chars[i..i + len]);
                    i += len;
                }
                None => {
                    out.push_str("\\{");
                    i += 1;
                }
            },
            '[' => {
                i = class(&chars, i, &mut out)?;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// `{n}`, `{n,}` or `{n,m}` at the start of `s`: its length and counts.
fn counted(s: &[char]) -> Option<(usize, Vec<u32>)> {
    let close = s.iter().position(|c| *c == '}')?;
    let inner: String = s[1..close].iter().collect();
    let mut parts = inner.splitn(2, ',');
    let min = parts.next()?;
    if min.is_empty() || !min.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut counts = vec![min.parse().unwrap_or(u32::MAX)];
    if let Some(max) = parts.next() {
        if !max.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !max.is_empty() {
            counts.push(max.parse().unwrap_or(u32::MAX));
        }
    }
    Some((close + 1, counts))
}

/// One escape at `chars[i]` (a backslash); returns the index after it.
fn escape(chars: &[char], i: usize, out: &mut String, in_class: bool) -> Result<usize, String> {
    let Some(&e) = chars.get(i + 1) else {
        return Err("a trailing \\".into());
    };
    let class = |set: &str, negated: bool, out: &mut String| {
        if in_class {
            out.push_str(set);
        } else {
            out.push('[');
            if negated {
                out.push('^');
            }
            out.push_str(set);
            out.push(']');
        }
    };
    match e {
        'd' => class(DIGIT, false, out),
        'w' => class(WORD, false, out),
        's' => class(SPACE, false, out),
        'D' | 'W' | 'S' if in_class => {
            return Err(format!(
                "\\{e} inside brackets is not supported on Postgres (write the class out)"
            ));
        }
        'D' => class(DIGIT, true, out),
        'W' => class(WORD, true, out),
        'S' => class(SPACE, true, out),
        'b' | 'B' => {
            return Err(format!(
                "\\{e} (word boundary) is not supported on Postgres (there \\b is a backspace)"
            ));
        }
        'p' | 'P' => {
            return Err(format!(
                "Unicode classes \\{e}… are not supported on Postgres"
            ));
        }
        'Q' | 'E' => return Err("quoting with \\Q…\\E is not supported on Postgres".into()),
        'C' => return Err("\\C (any byte) is not supported on Postgres".into()),
        '0'..='9' => {
            return Err(format!(
                "the octal escape \\{e}… is not supported on Postgres (there it is a back reference)"
            ));
        }
        'z' if !in_class => out.push_str("\\Z"),
        'A' if !in_class => out.push_str("\\A"),
        'x' => {
            let (code, len) =
                hex_escape(&chars[i + 2..]).ok_or_else(|| "a malformed \\x escape".to_string())?;
            out.push_str(&format!("\\U{code:08X}"));
            return Ok(i + 2 + len);
        }
        'a' | 'f' | 't' | 'n' | 'r' | 'v' => {
            out.push('\\');
            out.push(e);
        }
        c if c.is_ascii_alphanumeric() => {
            return Err(format!("the escape \\{c} is not supported on Postgres"));
        }
        c => {
            // An escaped punctuation or non-ASCII character is itself in both.
            out.push('\\');
            out.push(c);
        }
    }
    Ok(i + 2)
}

/// `HH` or `{H…}` after `\x`: the code point and how many chars it took.
fn hex_escape(s: &[char]) -> Option<(u32, usize)> {
    if s.first() == Some(&'{') {
        let close = s.iter().position(|c| *c == '}')?;
        let digits: String = s[1..close].iter().collect();
        let code = u32::from_str_radix(&digits, 16).ok()?;
        return Some((code, close + 1));
    }
    let digits: String = s.iter().take(2).collect();
    if digits.len() != 2 {
        return None;
    }
    Some((u32::from_str_radix(&digits, 16).ok()?, 2))
}

/// A bracket expression starting at `chars[i]` (`[`); returns the index after it.
fn class(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    out.push('[');
    let mut j = i + 1;
    if chars.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    // A `]` right after `[` or `[^` is a literal in both.
    if chars.get(j) == Some(&']') {
        out.push_str("\\]");
        j += 1;
    }
    while j < chars.len() {
        match chars[j] {
            ']' => {
                out.push(']');
                return Ok(j + 1);
            }
            '[' if chars.get(j + 1) == Some(&':') => {
                return Err("POSIX classes [[:name:]] are not supported on Postgres (they follow its locale)".into());
            }
            '[' => {
                out.push_str("\\[");
                j += 1;
            }
            '\\' => j = escape(chars, j, out, true)?,
            c => {
                out.push(c);
                j += 1;
            }
        }
    }
    Err("missing ]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_what_reads_differently() {
        for (re2, are) in [
            ("a.c", "a[^\\n]c"),
            ("\\d+", "[0-9]+"),
            ("[\\w-]", "[0-9A-Za-z_-]"),
            ("\\S", "[^\\t\\n\\f\\r ]"),
            ("end\\z", "end\\Z"),
            ("\\x41B", "\\U00000041B"),
            ("\\x{1F600}", "\\U0001F600"),
            ("a{2,3}", "a{2,3}"),
            ("a{,3}", "a\\{,3}"),
            ("[]a]", "[\\]a]"),
            ("[[]", "[\\[]"),
            ("(?:ab)+", "(?:ab)+"),
            ("^\\$\\.", "^\\$\\."),
        ] {
            assert_eq!(to_postgres(re2).as_deref(), Ok(are), "{re2}");
        }
    }

    #[test]
    fn refuses_with_the_construct_named() {
        for (re2, named) in [
            ("(?i)abc", "(?i)"),
            ("(?P<n>a)", "named groups"),
            ("\\bword", "\\b"),
            ("\\pL", "Unicode classes"),
            ("[[:alpha:]]", "POSIX classes"),
            ("\\Qa.b\\E", "\\Q"),
            ("a{256}", "{256} exceeds"),
            ("[\\D]", "\\D inside brackets"),
            ("\\12", "octal"),
        ] {
            let err = to_postgres(re2).unwrap_err();
            assert!(err.contains(named), "{re2}: {err}");
        }
    }
}
