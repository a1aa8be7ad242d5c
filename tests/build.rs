//! Lists the golden cases (`cases/*.json`) so each becomes its own test
//! function, named after its file: `golden_cases! { name, ... }` in
//! `$OUT_DIR/golden_cases.rs`, which each test file expands its own way.

use std::fmt::Write;

fn main() {
    println!("cargo:rerun-if-changed=cases");
    let dir = std::path::Path::new("cases");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from("golden_cases! {\n");
    for name in &names {
        // A case file must be named like a function: the test is called after it.
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase()),
            "tests/cases/{name}.json: name case files in snake_case (the test is named after it)"
        );
        let _ = writeln!(out, "    {name},");
    }
    out.push_str("}\n");
    let path =
        std::path::Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("golden_cases.rs");
    std::fs::write(&path, out).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
