//! Compiles every `reports/*.sql` into the binary, so adding a report is adding a SQL file, and
//! every `reports/oracle/*.sql`: the unoptimised report over the raw tables, run when the as-of
//! day has no rollup and kept as the test oracle of the optimised one (not a report itself).

use std::fmt::Write as _;
use std::path::PathBuf;

fn sql_files(dir: &std::path::Path) -> Vec<PathBuf> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
}

fn table(out: &mut String, doc: &str, name: &str, files: &[PathBuf]) {
    let _ = writeln!(out, "/// {doc}: (name, SQL file text), by name.\npub(crate) const {name}: &[(&str, &str)] = &[");
    for f in files {
        let name = f.file_stem().and_then(|s| s.to_str()).expect("report file names are UTF-8");
        let _ = writeln!(out, "    ({name:?}, include_str!({:?})),", f.display().to_string());
    }
    out.push_str("];\n");
}

fn main() {
    let dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("reports");
    let mut out = String::new();
    table(&mut out, "Built-in reports", "BUILTIN", &sql_files(&dir));
    table(&mut out, "Oracles of the reports that read rollups", "ORACLES", &sql_files(&dir.join("oracle")));
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("reports.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}
