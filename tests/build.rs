//! One Postgres test per golden case (`tests/cases/*.json`), so a failure
//! names its case: writes `pg_case!(name);` lines for `postgres_cases.rs`.

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for n in &names {
        // File names are snake_case identifiers; anything else is skipped loudly.
        if n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && n.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        {
            out.push_str(&format!("pg_case!({n});\n"));
        } else {
            println!("cargo:warning=golden case file name {n:?} is not an identifier");
            out.push_str(&format!(
                "compile_error!(\"golden case file name {n:?} is not an identifier\");\n"
            ));
        }
    }
    let dest =
        std::path::Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("pg_cases.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("{}: {e}", dest.display());
    }
}
