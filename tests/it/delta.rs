//! The Delta Lake view: DuckDB (`delta_scan`, the `duckdb-extension-delta` wheel) and the
//! `deltalake` Python package read every table's Delta log and must return exactly the rows of
//! lastseen's own `SELECT`, after normal runs, a re-run, retention, a kill between lastseen's
//! put and the Delta commits, and a crash before lastseen's put; time travel to Delta version
//! N equals `lastseen sql --lake-version` of the lastseen version that Delta commit records.
//!
//! Runs when `LASTSEEN_TEST_PYTHON` names a Python with `duckdb`, `duckdb-extension-delta` and
//! `deltalake` (`.ci/run` installs them); otherwise it says it was skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Duration;
use lastseen_slack_sim::Plan;

use crate::support::{Env, count, end_of, files_under, parse_json_lines, today};

/// The Python with the Delta readers, or `None` (the test is skipped).
pub(crate) fn python() -> Option<PathBuf> {
    match std::env::var("LASTSEEN_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => None,
    }
}

/// The checker script, written next to the lake.
pub(crate) fn checker(dir: &Path) -> PathBuf {
    let path = dir.join("delta_check.py");
    std::fs::write(&path, include_str!("delta_check.py")).unwrap();
    path
}

/// Run the checker; panics with its output when it fails.
pub(crate) fn run_checker(python: &Path, script: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(python).arg(script).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "delta_check.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The tables the lake has data for (a catalog table no source filled has no Delta log).
pub(crate) fn table_names(cmd: impl Fn() -> assert_cmd::Command) -> Vec<String> {
    let out = cmd().args(["tables", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    parse_json_lines(&out.stdout)
        .iter()
        .filter(|t| t["partitions"].as_u64().unwrap() > 0)
        .map(|t| t["table"].as_str().unwrap().to_string())
        .collect()
}

/// `lastseen sql --format parquet` of `SELECT * FROM table` (at `version`) into `file`.
pub(crate) fn export(cmd: impl Fn() -> assert_cmd::Command, table: &str, version: Option<u64>, file: &Path) {
    let mut c = cmd();
    c.args(["sql", &format!("SELECT * FROM {table}"), "--format", "parquet", "--output"]).arg(file);
    if let Some(v) = version {
        c.args(["--lake-version", &v.to_string()]);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "exporting {table}: {}", String::from_utf8_lossy(&out.stderr));
}

struct Check<'a> {
    env: &'a Env,
    python: PathBuf,
    script: PathBuf,
    out: PathBuf,
    n: std::cell::Cell<u32>,
}

impl Check<'_> {
    fn table_url(&self, table: &str) -> String {
        format!("file://{}/{table}", self.env.lake().display())
    }

    /// Every table through both engines equals lastseen's own rows at `version` (the newest
    /// when `None`); `delta_version` pins the Delta side.
    fn all_tables(&self, what: &str, version: Option<u64>) {
        let tables = table_names(|| self.env.cmd());
        assert!(tables.len() > 5, "expected the lake's tables, got {tables:?}");
        let mut jobs = Vec::new();
        for t in &tables {
            assert!(self.env.lake().join(t).join("_delta_log").is_dir(), "{what}: `{t}` has no Delta log");
            let file = self.expected(t, version);
            jobs.push(serde_json::json!({
                "table_url": self.table_url(t), "expected": file, "delta_version": null,
                "engines": ["duckdb", "deltalake"],
            }));
        }
        let out = self.compare(&jobs);
        eprintln!("{what}: {} tables match\n{out}", tables.len());
    }

    fn expected(&self, table: &str, version: Option<u64>) -> PathBuf {
        self.n.set(self.n.get() + 1);
        let file = self.out.join(format!("{table}-{}.parquet", self.n.get()));
        export(|| self.env.cmd(), table, version, &file);
        file
    }

    fn compare(&self, jobs: &[serde_json::Value]) -> String {
        let jobs_file = self.out.join(format!("jobs-{}.json", self.n.get()));
        std::fs::write(&jobs_file, serde_json::to_vec(jobs).unwrap()).unwrap();
        run_checker(&self.python, &self.script, &["compare", jobs_file.to_str().unwrap()])
    }

    /// Each table's Delta history: (Delta version, lastseen version).
    fn history(&self, table: &str) -> Vec<(u64, u64)> {
        let out = run_checker(&self.python, &self.script, &["history", &self.table_url(table)]);
        parse_json_lines(out.as_bytes())
            .iter()
            .map(|h| (h["delta_version"].as_u64().unwrap(), h["lake_version"].as_u64().expect("a lake version")))
            .collect()
    }
}

/// The newest lastseen log version on disk.
fn lake_head(lake: &Path) -> u64 {
    files_under(&lake.join("_lastseen/log"))
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.strip_suffix(".json")?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Every file of every `_delta_log`, with its bytes.
fn delta_logs(lake: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(lake)
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "_delta_log"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn other_engines_read_exactly_the_committed_state_through_the_delta_logs() {
    let Some(python) = python() else {
        eprintln!("skipped: set LASTSEEN_TEST_PYTHON to a Python with duckdb, duckdb-extension-delta and deltalake");
        return;
    };
    let env = Env::start(120, Plan::Pro, 31);
    // A short lease so the next run takes over a killed one at once; the default keep window
    // (7 days), so every version stays readable for time travel.
    std::fs::write(env.dir.path().join("lastseen.toml"), "[lake]\nlease_ttl = \"1s\"\n").unwrap();
    let out = env.dir.path().join("expected");
    std::fs::create_dir_all(&out).unwrap();
    let check = Check { env: &env, script: checker(env.dir.path()), python, out, n: Default::default() };
    let (d0, d1, d2, d3) =
        (today() - Duration::days(3), today() - Duration::days(2), today() - Duration::days(1), today());

    // A normal run, then a re-run of the same day (replaces its partitions: remove + add).
    env.run_day_ok(d0);
    check.all_tables("after the first run", None);
    let v_first = lake_head(&env.lake());
    let dormant_first = env.dormant_ids(30, None);
    env.run_day_ok(d0);
    check.all_tables("after a re-run of the same day", None);

    // Retention drops the oldest slack_users partition (one of three: allowed).
    env.run_day_ok(d1);
    env.sim().set_now(end_of(d2));
    let run = env
        .cmd()
        .env("LASTSEEN_LAKE__RETENTION__SLACK_USERS", "1")
        .args(["run", "--date", &d2.to_string()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let user_days = env.sql("SELECT CAST(min(dt) AS VARCHAR) AS d, count(DISTINCT dt) AS n FROM slack_users");
    assert_eq!(count(&user_days, "n"), 2, "retention should have dropped {d0}");
    check.all_tables("after a retention pass", None);

    // Killed between lastseen's put and the Delta commits: other engines still read exactly
    // the previous version, and the next run catches the Delta logs up.
    let before = lake_head(&env.lake());
    crate::lake_safety::run_killed_at(&env, d3, "after_log_put");
    assert!(lake_head(&env.lake()) > before, "the killed run should have published its version");
    check.all_tables("after a kill between the two commits: Delta shows the previous version", Some(before));
    // Catch-up: the next command that takes the lease (here `vacuum`, a dry run that commits
    // nothing of its own) brings every Delta log up to the newest version.
    let out = env.cmd().args(["vacuum"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check.all_tables("after the catch-up by the next command taking the lease", None);
    // Killed after the first table's Delta commit; the next run finishes the others.
    crate::lake_safety::run_killed_at(&env, d3, "mid_delta");
    env.run_day_ok(d3);
    check.all_tables("after the run following the kills", None);

    // A crash before lastseen's put: the Delta logs are untouched, byte for byte.
    let logs = delta_logs(&env.lake());
    env.sim().set_now(end_of(d3));
    let out = env
        .cmd()
        .env("LASTSEEN_TEST_FAILPOINT", "after_data_write")
        .args(["run", "--date", &d3.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the failpoint must abort the run");
    assert_eq!(delta_logs(&env.lake()).keys().collect::<Vec<_>>(), logs.keys().collect::<Vec<_>>());
    assert!(delta_logs(&env.lake()) == logs, "a run that crashed before its commit changed a Delta log");
    check.all_tables("after a crash before lastseen's commit", None);

    // Time travel: every Delta version of every table equals the lastseen version it records.
    let mut jobs = Vec::new();
    // A table whose every partition is empty (sso_last_seen without an IdP configured) has
    // nothing for a later version to change: one Delta version is its whole history.
    let empty: Vec<String> = {
        let out = env.cmd().args(["tables", "--format", "json"]).output().unwrap();
        parse_json_lines(&out.stdout)
            .iter()
            .filter(|t| t["rows"].as_u64() == Some(0))
            .map(|t| t["table"].as_str().unwrap().to_string())
            .collect()
    };
    for t in table_names(|| env.cmd()) {
        let history = check.history(&t);
        if !empty.contains(&t) {
            assert!(history.len() >= 2, "{t}: expected several Delta versions, got {history:?}");
        }
        for (dv, lv) in history {
            let file = check.expected(&t, Some(lv));
            jobs.push(serde_json::json!({
                "table_url": check.table_url(&t), "expected": file, "delta_version": dv, "engines": ["duckdb"],
            }));
        }
    }
    let n = jobs.len();
    check.compare(&jobs);
    eprintln!("time travel: {n} Delta versions equal their lastseen versions");

    // The review an auditor re-runs: the report at the first version, as it was then.
    let mut c = env.cmd();
    c.args(["report", "dormant", "--days", "30", "--format", "json", "--lake-version", &v_first.to_string()]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again: std::collections::BTreeSet<String> =
        parse_json_lines(&out.stdout).iter().map(|r| r["account_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(again, dormant_first);

    // Vacuum with no keep window deletes the superseded files; the first version can no longer
    // be read (a clear error), and every engine still reads the newest state.
    let out = env.cmd().env("LASTSEEN_LAKE__KEEP_SUPERSEDED", "0s").args(["vacuum", "--apply"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = env
        .cmd()
        .args(["sql", "SELECT count(*) FROM slack_users", "--lake-version", &v_first.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("lake version {v_first} cannot be read")) && err.contains("deleted by vacuum"),
        "{err}"
    );
    check.all_tables("after vacuum", None);
}
