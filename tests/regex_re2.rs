//! GIVEN the BigQuery emulator (DuckDB's RE2 behind `REGEXP_CONTAINS`), WHEN a
//! pattern of each kind where RE2 and Rust's regex syntax part ways is used,
//! THEN the emulator accepts it exactly when `segments_core::re2::check` does.
//!
//! Every expectation below was first observed on the emulator; where it
//! differed from the usual description of RE2 the emulator won:
//! - `(?U)` is accepted (RE2's non-greedy swap); `(?x)` is not.
//! - `\<`, `\>` are escaped punctuation (literals); `\b{start}` is `\b`
//!   followed by the literal text `{start}`.
//! - `[a--b]` is rejected: it reads as the range `a`..`-`, which is reversed.
//! - `[a&&b]`, `[a~~b]`, `[[]`, `[a[b]` are plain sets of literals.
//! - `(?P<é>x)` and repeated names are accepted (RE2 since 2023 allows Unicode
//!   word characters in names), but `(?<n>x)` is not (this RE2 predates it).
//! - `a{01}`, `a{,5}`, `x{1001` are literal braces, not repetitions.
//!
//! Not compared: patterns too large to compile (`\pL{1000}`, "pattern too
//! large - compile failed"), a limit of RE2's memory budget that `check`
//! does not model; and patterns that a raw literal cannot hold (a `'`, a
//! newline, a trailing `\`).

use segments_tests::warehouse::Warehouse;

const PATTERNS: &[&str] = &[
    // Ordinary.
    "x",
    r"^[A-Z]{2}\d+$",
    r"(?i)^(foo|bar)+\.com$",
    r"\pN\p{Greek}\PL\p{^Latin}",
    r"\A\z",
    r"\x41\x{1F600}",
    "(?P<name>a)(?:b)",
    "[]a]",
    "[^]a]",
    "[a-]",
    // RE2 only.
    r"\Qa.b\E",
    r"\Qa.b",
    r"a\Q\E*",
    r"\C",
    "[[]",
    "[a[b]",
    "[a&&b]",
    "[a~~b]",
    "[[:alpha:]]",
    "[[:^alpha:]]",
    r"\12",
    "a{01}",
    "a{,5}",
    "x{1001",
    "a*(?i)*",
    "(?U)a+",
    "(?P<1a>x)",
    "(?P<é>x)(?P<é>y)",
    r"\<\>",
    r"\b{start}",
    "a{1000}",
    "((a{10}){10}){10}",
    // Rust only.
    r"\u0041",
    r"\u{41}",
    r"\U00000041",
    "a{1001}",
    "a{2,1001}",
    "a{1001,}",
    "((a{10}){10}){11}",
    "(a{3}){334}",
    "(?<name>a)",
    "(?x)a b",
    "(?R)a",
    r"\Z",
    "a**",
    "a{2}{3}",
    "[a--b]",
    "[[:foo:]]",
    r"\p{Letter}",
    // Neither.
    "(a",
    "a)",
    "[z-a]",
    "*",
    r"\1",
    "(?=a)",
    r"\x{110000}",
];

fn raw_literal(pattern: &str) -> Option<String> {
    if pattern.contains('\'') || pattern.contains('\n') || pattern.ends_with('\\') {
        return None;
    }
    Some(format!("r'{pattern}'"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_accepts_a_pattern_exactly_when_check_does() {
    let w = Warehouse::empty("regex_re2").await;
    // The probe itself works.
    w.run("SELECT REGEXP_CONTAINS('x', r'x')")
        .await
        .unwrap_or_else(|e| panic!("the probe query fails on the emulator: {e}"));
    let mut disagreements = Vec::new();
    let mut compared = 0;
    for &p in PATTERNS {
        let Some(lit) = raw_literal(p) else { continue };
        compared += 1;
        let emulator = w.run(&format!("SELECT REGEXP_CONTAINS('x', {lit})")).await;
        let ours = segments_core::re2::check(p);
        if emulator.is_ok() != ours.is_ok() {
            disagreements.push(format!(
                "{p:?}: emulator {}, check {ours:?}",
                match &emulator {
                    Ok(_) => "accepts".to_string(),
                    Err(e) => format!("rejects ({e})"),
                }
            ));
        }
    }
    assert!(compared >= 40, "only {compared} patterns compared");
    assert!(
        disagreements.is_empty(),
        "{} of {compared} patterns judged differently:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
