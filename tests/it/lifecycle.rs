//! How a run ends: a future `--date` refused before anything is touched, a panicking collector,
//! SIGTERM in the middle of a run, a run manifest that cannot be written, an unreadable one, and
//! the identity export's mass-change guard. Each leaves the lake at a whole version and the lease
//! free.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Days;
use lastseen_slack_sim::{FaultKind, FaultRule, FaultWhen, OrgSpec, Plan, RateLimits, SimConfig};

use crate::support::{Env, count, end_of, files_under, today};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

use crate::lake_safety::lease_held;

/// The newest published log version's file name, if any.
fn newest_version(lake: &Path) -> Option<String> {
    let mut v: Vec<String> = std::fs::read_dir(lake.join("_lastseen/log"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.retain(|n| n.ends_with(".json"));
    v.sort();
    v.pop()
}

/// Every Parquet file of the lake with its length: a changed, added or deleted file shows.
fn parquet_files(lake: &Path) -> Vec<(String, u64)> {
    files_under(lake)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| (p.display().to_string(), std::fs::metadata(&p).unwrap().len()))
        .collect()
}

#[test]
fn run_date_in_the_future_exits_2_and_deletes_nothing() {
    let env = Env::start(60, Plan::Pro, 41);
    let d = today();
    for day in [d - Days::new(1), d] {
        env.run_day_ok(day);
    }
    let files = parquet_files(&env.lake());
    let version = newest_version(&env.lake());
    let partitions = env.sql(
        "SELECT (SELECT count(DISTINCT dt) FROM slack_access_logs) AS logs, \
         (SELECT count(DISTINCT dt) FROM slack_users) AS users",
    );

    // A year typo, with the retention the shipped config has: before the fix this committed
    // the day as 2066 and dropped every older partition of the three tables.
    let future = chrono::Utc::now().date_naive() + Days::new(365 * 40);
    let out = env
        .cmd()
        .env("LASTSEEN_LAKE__RETENTION__SLACK_ACCESS_LOGS", "400")
        .env("LASTSEEN_LAKE__RETENTION__SLACK_USERS", "400")
        .env("LASTSEEN_LAKE__RETENTION__LAST_SEEN", "400")
        .args(["run", "--date", &future.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("--date {future} is in the future")) && err.contains("nothing was"), "{err}");

    assert_eq!(parquet_files(&env.lake()), files, "no file written or deleted");
    assert_eq!(newest_version(&env.lake()), version, "no version published");
    assert!(!lease_held(&env.lake()));
    assert_eq!(
        env.sql(
            "SELECT (SELECT count(DISTINCT dt) FROM slack_access_logs) AS logs, \
             (SELECT count(DISTINCT dt) FROM slack_users) AS users"
        ),
        partitions
    );
    // The same through the environment variable a manifest may leave behind.
    let out = env.cmd().env("LASTSEEN_RUN_DATE", future.to_string()).arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(parquet_files(&env.lake()), files);
}

#[test]
fn a_panicking_collector_fails_the_run_with_exit_1_and_no_new_version() {
    // Enough accounts for several users.list pages (200 per page): the panic comes after the
    // first page, so a run that took the closed channel for "done" would commit a truncated
    // snapshot of one page.
    let env = Env::start(700, Plan::Pro, 43);
    let d = today();
    env.run_day_ok(d - Days::new(1));
    let version = newest_version(&env.lake());
    let files = parquet_files(&env.lake());

    env.sim().set_now(end_of(d));
    let out = env
        .cmd()
        .env("LASTSEEN_TEST_FAILPOINT", "collector_panic:users")
        // Even with the mass-change guard off, the truncated snapshot must not be published.
        .args(["run", "--force", "--date", &d.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the collector of source `users`")
            && err.contains("panicked")
            && err.contains("nothing was committed"),
        "{err}"
    );
    assert_eq!(newest_version(&env.lake()), version, "no version published");
    assert_eq!(parquet_files(&env.lake()), files, "the committed files are untouched");
    assert!(env.sql(&format!("SELECT dt FROM slack_users WHERE dt = DATE '{d}' LIMIT 1")).is_empty());
    assert!(!lease_held(&env.lake()), "the lease is released");
    let m = env.last_manifest();
    assert_eq!(m["status"], "failed", "{m}");
    assert!(m["lake_version"].is_null(), "{m}");
}

#[test]
fn sigterm_during_run_exits_nonzero_publishes_nothing_and_frees_the_lease() {
    // users.list answers after 30 s: the run is in the middle of collecting when it is stopped.
    let slow = FaultRule::new("users.list", FaultWhen::EveryNth(1), FaultKind::Slow { millis: 30_000 });
    let env = Env::start_with(SimConfig {
        org: OrgSpec::new(47, 30, Plan::Pro, today(), 30),
        rate_limits: RateLimits::Off,
        faults: vec![slow],
        conditions: Default::default(),
    });
    env.sim().set_now(end_of(today()));
    let mut child = env.std_cmd().args(["run", "--date", &today().to_string()]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lease_held(&env.lake()) {
        assert!(Instant::now() < deadline, "the run never took the lease");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it was signalled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t0 = Instant::now();
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the run did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "a stopped run exits 1, not killed by the signal: {status:?}");
    assert!(!lease_held(&env.lake()), "the lease is released: the next run need not wait for it to expire");
    assert_eq!(newest_version(&env.lake()), None, "nothing was published");
    assert!(parquet_files(&env.lake()).is_empty());
    let m = env.last_manifest();
    assert_eq!(m["status"], "failed", "{m}");
    assert!(m["error"].as_str().unwrap().contains("interrupted by SIGTERM"), "{m}");
}

#[test]
fn a_run_manifest_that_cannot_be_written_still_frees_the_lease() {
    let env = Env::start(40, Plan::Pro, 53);
    // `_lastseen/runs` is a file, so every manifest put fails (as an S3 outage would).
    std::fs::create_dir_all(env.lake().join("_lastseen")).unwrap();
    std::fs::write(env.lake().join("_lastseen/runs"), b"not a folder").unwrap();
    let d = today();
    let out = env.run_day(d);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!lease_held(&env.lake()), "a failed manifest write must not leave the lease behind");
    let err = stderr(&out);
    assert!(err.contains("writing the run manifest") && err.contains("the day is committed (lake version"), "{err}");
    // The day itself is committed and readable.
    let n = count(&env.sql(&format!("SELECT count(*) AS n FROM slack_users WHERE dt = DATE '{d}'")), "n");
    assert_eq!(n as usize, env.sim().org().accounts().len());
}

#[test]
fn an_unreadable_run_manifest_is_skipped_by_tables_and_reports() {
    let env = Env::start(40, Plan::Pro, 59);
    let d = today();
    env.run_day_ok(d);
    // A manifest cut to zero bytes by a power loss, sorting after the good one.
    std::fs::write(env.lake().join("_lastseen/runs/99991231T000000Z-broken.json"), b"").unwrap();
    let out = env.cmd().args(["tables", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = crate::support::parse_json_lines(&out.stdout);
    assert_eq!(rows[0]["last_run_date"].as_str(), Some(d.to_string().as_str()), "{rows:?}");
    assert!(stderr(&out).contains("skipping a run manifest"), "{}", stderr(&out));
    let out = env.cmd().args(["report", "dormant", "--days", "30", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn an_identity_export_that_shrank_fails_the_run_naming_both_counts_unless_forced() {
    let env = Env::start(300, Plan::Pro, 61);
    let csv = env.configure_identities(|s| s, "");
    let full = std::fs::read_to_string(&csv).unwrap();
    let d = today();
    env.run_day_ok(d - Days::new(1));
    let previous = count(&env.sql("SELECT count(*) AS n FROM identities"), "n");
    assert!(previous > 100, "{previous}");

    // Half-written: the header and the first 30 rows.
    let cut: String = full.lines().take(31).map(|l| format!("{l}\n")).collect();
    std::fs::write(&csv, cut).unwrap();
    let out = env.run_day(d);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for needle in [
        "identity guard".to_string(),
        format!("the {previous} rows"),
        "lake.max_snapshot_drop".into(),
        "--force".into(),
        // The raw commit landed first: the failure says so (exit 1 is not "nothing published").
        format!("the raw tables of {d} were committed as lake version"),
    ] {
        assert!(err.contains(&needle), "stderr lacks {needle:?}: {err}");
    }
    assert!(env.sql(&format!("SELECT dt FROM last_seen WHERE dt = DATE '{d}' LIMIT 1")).is_empty());
    assert!(env.sql(&format!("SELECT dt FROM identities WHERE dt = DATE '{d}' LIMIT 1")).is_empty());
    let m = env.last_manifest();
    assert_eq!(m["status"], "failed");
    assert!(m["lake_version"].is_u64(), "the manifest names the raw version that was published: {m}");
    assert!(!lease_held(&env.lake()));

    // Forced, the shrunken export is used.
    env.sim().set_now(end_of(d));
    let out = env.cmd().args(["run", "--force", "--date", &d.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let n = count(&env.sql(&format!("SELECT count(*) AS n FROM identities WHERE dt = DATE '{d}'")), "n");
    assert!(n > 0 && n <= 30, "{n}");
    assert!(err.contains(&format!("has {n} usable rows")), "the refusal named the usable rows: {err}");
    assert!(!env.sql(&format!("SELECT dt FROM last_seen WHERE dt = DATE '{d}' LIMIT 1")).is_empty());
}

#[test]
fn derived_tables_staged_past_a_tiny_memory_budget_equal_the_unspilled_ones() {
    // One run of each with the same organisation: one stages every derived table in memory,
    // the other (1 MiB) spills them to staging files on the way to the commit.
    let (a, b) = (Env::start(1500, Plan::Pro, 67), Env::start(1500, Plan::Pro, 67));
    let d = today();
    for (env, mb) in [(&a, "64"), (&b, "1")] {
        env.sim().set_now(end_of(d));
        let out = env
            .cmd()
            .env("LASTSEEN_LAKE__STAGE_MEMORY_MB", mb)
            .args(["run", "--date", &d.to_string()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    for q in [
        "SELECT workspace_id, account_id, state, CAST(last_seen_at AS VARCHAR) AS t, last_seen_source FROM last_seen \
         ORDER BY workspace_id, account_id",
        "SELECT workspace_id, account_id, status, email FROM accounts ORDER BY workspace_id, account_id",
        "SELECT CAST(dt AS VARCHAR) AS d, workspace_id, account_id, active, last_source FROM activity_daily \
         ORDER BY dt, workspace_id, account_id",
    ] {
        let (x, y) = (a.sql(q), b.sql(q));
        assert!(!x.is_empty(), "{q}");
        assert_eq!(x, y, "{q}");
    }
}

#[test]
fn sigterm_during_backfill_exits_nonzero_publishes_nothing_and_frees_the_lease() {
    // team.accessLogs answers after 30 s: the backfill is reading its window when it is stopped.
    let slow = FaultRule::new("team.accessLogs", FaultWhen::EveryNth(1), FaultKind::Slow { millis: 30_000 });
    let env = Env::start_with(SimConfig {
        org: OrgSpec::new(71, 30, Plan::Pro, today(), 30),
        rate_limits: RateLimits::Off,
        faults: vec![slow],
        conditions: Default::default(),
    });
    env.sim().set_now(end_of(today()));
    let from = (today() - Days::new(5)).to_string();
    let mut child = env
        .std_cmd()
        .env("LASTSEEN_SLACK__SOURCES", "users,access_logs")
        .args(["backfill", "--from", &from, "--to", &today().to_string()])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lease_held(&env.lake()) {
        assert!(Instant::now() < deadline, "the backfill never took the lease");
        assert!(child.try_wait().unwrap().is_none(), "the backfill ended before it was signalled");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t0 = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the backfill did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(!lease_held(&env.lake()), "the lease is released");
    assert_eq!(newest_version(&env.lake()), None, "nothing was published");
    let m = env.last_manifest();
    assert_eq!((m["status"].as_str(), m["kind"]["backfill"].is_object()), (Some("failed"), true), "{m}");
    assert!(m["error"].as_str().unwrap().contains("interrupted by SIGTERM"), "{m}");
}
