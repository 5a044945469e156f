//! Compiles the derived layer's per-app SQL into the crate, so adding evidence or an app's
//! accounts is adding a file: every `sql/evidence/*.sql` (an evidence source; its header names
//! the app whose accounts it speaks for, the raw table it reads and its priority) and every
//! `sql/accounts/<app>.sql` (one app's account rows; its header names the app's account snapshot
//! table; an evidence file may add `-- @snapshot <table>`, the snapshot table whose days map its
//! events to snapshots, see `sources::EvidenceSource::snapshot`) and every `sql/sso/<idp>.sql` (one identity provider's single sign-ons into app
//! instances, for `sso_last_seen`; its header names the raw table it reads). A file without a
//! directive it needs fails the build, naming file and directive.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn sql_files(dir: &Path) -> Vec<PathBuf> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
}

/// The value of `-- @key value` in `file`'s comment lines; a missing directive fails the build.
fn directive(file: &Path, text: &str, key: &str) -> String {
    optional_directive(file, text, key)
        .unwrap_or_else(|| panic!("{}: no `-- @{key} …` line in its header", file.display()))
}

/// The value of `-- @key value`, if the file has one; twice, or without a value, fails the build.
fn optional_directive(file: &Path, text: &str, key: &str) -> Option<String> {
    let found: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--").map(str::trim))
        .filter_map(|c| c.strip_prefix('@'))
        .filter_map(|d| d.split_once(char::is_whitespace).filter(|(k, _)| *k == key).map(|(_, v)| v.trim()))
        .collect();
    match found.as_slice() {
        [v] if !v.is_empty() => Some((*v).to_string()),
        [] => None,
        _ => panic!("{}: `-- @{key}` must appear exactly once, with a value", file.display()),
    }
}

fn stem(f: &Path) -> &str {
    f.file_stem().and_then(|s| s.to_str()).expect("SQL file names are UTF-8")
}

fn main() {
    let sql = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("sql");
    let mut out = String::new();
    out.push_str("/// Every evidence source, one per `sql/evidence/*.sql`, by file name.\n");
    out.push_str("pub static EVIDENCE: &[EvidenceSource] = &[\n");
    for f in sql_files(&sql.join("evidence")) {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        let priority: i32 = directive(&f, &text, "priority")
            .parse()
            .unwrap_or_else(|e| panic!("{}: `-- @priority` is not an integer: {e}", f.display()));
        // activity_daily.sql writes it as 4 digits in the text that orders sources.
        assert!((0..=9999).contains(&priority), "{}: `-- @priority` must be 0..=9999", f.display());
        let _ = writeln!(
            out,
            "    EvidenceSource {{ name: {:?}, app: {:?}, table: {:?}, snapshot: {:?}, sql: include_str!({:?}), priority: {priority} }},",
            stem(&f),
            directive(&f, &text, "app"),
            directive(&f, &text, "table"),
            optional_directive(&f, &text, "snapshot"),
            f.display().to_string(),
        );
    }
    out.push_str("];\n\n");
    out.push_str("/// Every app's account rows, one per `sql/accounts/<app>.sql`, by app.\n");
    out.push_str("pub static ACCOUNT_SOURCES: &[AccountSource] = &[\n");
    for f in sql_files(&sql.join("accounts")) {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        let _ = writeln!(
            out,
            "    AccountSource {{ app: {:?}, table: {:?}, sql: include_str!({:?}) }},",
            stem(&f),
            directive(&f, &text, "table"),
            f.display().to_string(),
        );
    }
    out.push_str("];\n\n");
    out.push_str("/// Every identity provider's single sign-ons, one per `sql/sso/<idp>.sql`, by IdP.\n");
    out.push_str("pub static SSO_SOURCES: &[SsoSource] = &[\n");
    for f in sql_files(&sql.join("sso")) {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        let _ = writeln!(
            out,
            "    SsoSource {{ idp: {:?}, table: {:?}, sql: include_str!({:?}) }},",
            stem(&f),
            directive(&f, &text, "table"),
            f.display().to_string(),
        );
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("sources.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}
