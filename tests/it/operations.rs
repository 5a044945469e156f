//! Operating the daily job: the mass-change guard and `--force`, retention, `lastseen tables`,
//! and the exit code of a usage error.

use chrono::Duration;
use lastseen_slack_sim::Plan;

use crate::support::{Env, count, end_of, files_under, parse_json_lines, today};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parquet files in partition folders of `table` dated before `before`.
fn files_before(env: &Env, table: &str, before: chrono::NaiveDate) -> Vec<std::path::PathBuf> {
    files_under(&env.lake().join(table))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .filter(|p| {
            let dir = p.parent().and_then(|d| d.file_name()).and_then(|d| d.to_str()).unwrap_or_default();
            dir.strip_prefix("dt=").and_then(|d| d.parse::<chrono::NaiveDate>().ok()).is_some_and(|d| d < before)
        })
        .collect()
}

#[test]
fn mass_change_guard_fails_the_run_unless_forced() {
    // Two organisations, one lake: yesterday's snapshot from the big one, today's from one
    // with half the accounts (a drop of about 50%, over the default 20%).
    let big = Env::start(200, Plan::Pro, 31);
    let small = Env::start(100, Plan::Pro, 31);
    let d = today();
    big.run_day_ok(d - Duration::days(1));
    let before = big.sql("SELECT count(*) AS n FROM slack_users");
    let big_n = big.sim().org().accounts().len();
    let small_n = small.sim().org().accounts().len();
    assert!((small_n as f64) < 0.8 * big_n as f64, "{small_n} vs {big_n}");

    small.sim().set_now(end_of(d));
    let run = |force: bool| {
        let mut c = small.cmd();
        c.env("LASTSEEN_LAKE", big.lake()).args(["run", "--date", &d.to_string()]);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    let out = run(false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for needle in [
        "slack_users".to_string(),
        format!("{small_n} rows"),
        format!("{big_n} rows"),
        "lake.max_snapshot_drop".into(),
        "--force".into(),
    ] {
        assert!(err.contains(&needle), "stderr lacks {needle}: {err}");
    }
    assert_eq!(big.sql("SELECT count(*) AS n FROM slack_users"), before, "the refused snapshot is not published");
    assert!(big.sql(&format!("SELECT dt FROM last_seen WHERE dt = DATE '{d}'")).is_empty());

    let out = run(true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = big.sql(&format!("SELECT count(*) AS n FROM slack_users WHERE dt = DATE '{d}'"));
    assert_eq!(count(&rows, "n") as usize, small_n);

    // A looser threshold from the environment lets the same drop through without --force (the
    // re-run of the day is again compared with the day before).
    let out = small
        .cmd()
        .env("LASTSEEN_LAKE", big.lake())
        .env("LASTSEEN_LAKE__MAX_SNAPSHOT_DROP", "0.9")
        .args(["run", "--date", &d.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn retention_drops_old_partitions_after_a_successful_run() {
    let env = Env::start(80, Plan::Pro, 17);
    let d = today();
    for day in [d - Duration::days(2), d - Duration::days(1)] {
        env.run_day_ok(day);
    }
    let oldest_log = |env: &Env| {
        env.sql("SELECT CAST(min(dt) AS VARCHAR) AS d FROM slack_access_logs")[0]["d"]
            .as_str()
            .unwrap()
            .parse::<chrono::NaiveDate>()
            .unwrap()
    };
    let log_cutoff = d - Duration::days(30);
    assert!(oldest_log(&env) < log_cutoff, "the simulator should have older access logs than the cutoff");
    assert!(!files_before(&env, "slack_access_logs", log_cutoff).is_empty());

    env.sim().set_now(end_of(d));
    let run = |force: bool| {
        let mut c = env.cmd();
        c.env("LASTSEEN_LAKE__RETENTION__SLACK_ACCESS_LOGS", "30")
            .env("LASTSEEN_LAKE__RETENTION__SLACK_USERS", "1")
            .args(["run", "--date", &d.to_string()]);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    // Dropping most of the access-log history at once is refused (retention_max_drop = 0.5):
    // the run commits its day, drops nothing of that table and exits 3 naming the setting.
    let access_days = |env: &Env| count(&env.sql("SELECT count(DISTINCT dt) AS n FROM slack_access_logs"), "n");
    let before = access_days(&env);
    let files = files_before(&env, "slack_access_logs", log_cutoff);
    let out = run(false);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("retention refused for `slack_access_logs`")
            && text.contains("lake.retention_max_drop")
            && text.contains("--force"),
        "{text}"
    );
    assert!(access_days(&env) >= before, "nothing of slack_access_logs was dropped");
    assert_eq!(files_before(&env, "slack_access_logs", log_cutoff), files);
    // One users partition of three is within the share: applied.
    assert_eq!(count(&env.sql("SELECT count(DISTINCT dt) AS n FROM slack_users"), "n"), 2);

    let out = run(true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    assert!(oldest_log(&env) >= log_cutoff);
    let user_days = env.sql("SELECT CAST(dt AS VARCHAR) AS d FROM slack_users GROUP BY dt ORDER BY dt");
    let user_days: Vec<&str> = user_days.iter().map(|r| r["d"].as_str().unwrap()).collect();
    assert_eq!(user_days, vec![(d - Duration::days(1)).to_string(), d.to_string()]);
    // Nothing deleted under a reader: the dropped partitions' files wait out lake.keep_superseded
    // (the run's own vacuum, with the default 7 days, leaves them), then vacuum deletes them.
    assert!(files.iter().all(|f| f.exists()), "a dropped partition's file was deleted at once");
    assert!(!files_before(&env, "slack_users", d - Duration::days(1)).is_empty());
    let out = env.cmd().env("LASTSEEN_LAKE__KEEP_SUPERSEDED", "0s").args(["vacuum", "--apply"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(files_before(&env, "slack_access_logs", log_cutoff).is_empty(), "dropped partitions' files are deleted");
    assert!(files_before(&env, "slack_users", d - Duration::days(1)).is_empty());
    assert!(oldest_log(&env) >= log_cutoff);
    // Tables without a retention setting keep everything.
    let seen = env.sql("SELECT count(DISTINCT dt) AS n FROM last_seen");
    assert_eq!(count(&seen, "n"), 3);
}

#[test]
fn tables_lists_partitions_rows_and_the_last_successful_run() {
    let env = Env::start(60, Plan::Free, 23);
    let out = env.cmd().args(["tables"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("slack_users") && text.contains("no successful run yet"), "{text}");

    let d = today();
    for day in [d - Duration::days(1), d] {
        let out = env.run_day(day);
        assert_eq!(out.status.code(), Some(3), "Free plan: access logs skipped; {}", stderr(&out));
    }
    let accounts = env.sim().org().accounts().len() as u64;

    let out = env.cmd().args(["tables", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = parse_json_lines(&out.stdout);
    let names: Vec<&str> = rows.iter().map(|r| r["table"].as_str().unwrap()).collect();
    assert_eq!(names, lastseen_lake::catalog::table_names());
    let users = &rows[0];
    assert_eq!(users["partitions"].as_u64(), Some(2));
    assert_eq!(users["first_dt"].as_str(), Some((d - Duration::days(1)).to_string().as_str()));
    assert_eq!(users["last_dt"].as_str(), Some(d.to_string().as_str()));
    assert_eq!(users["rows"].as_u64(), Some(2 * accounts));
    assert!(users["files"].as_u64().unwrap() >= 2 && users["bytes"].as_u64().unwrap() > 0, "{users}");
    assert_eq!(rows[1]["partitions"].as_u64(), Some(0), "no access logs on a Free plan");
    for r in &rows {
        assert_eq!(r["last_run_date"].as_str(), Some(d.to_string().as_str()), "{r}");
        assert_eq!(r["last_run_status"].as_str(), Some("partial"), "{r}");
        assert!(r["last_run_warnings"].as_str().unwrap().contains("access_logs skipped"), "{r}");
        assert!(r["last_run_id"].as_str().is_some_and(|s| !s.is_empty()) && r["last_run_finished_at"].is_string());
    }
    // The rows agree with what a query over the data itself counts.
    let counted = env.sql("SELECT count(*) AS n FROM slack_users");
    assert_eq!(count(&counted, "n") as u64, 2 * accounts);

    let out = env.cmd().args(["tables", "--format", "csv"]).output().unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("table,partitions,first_dt,last_dt,rows,bytes,files,last_run_id,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + lastseen_lake::TABLES.len(), "{csv}");

    let out = env.cmd().args(["tables"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("last successful run") && text.contains("partial"), "{text}");
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::start(10, Plan::Pro, 1);
    for args in [
        &["run", "--no-such-flag"][..],
        &["no-such-command"],
        &["run", "--date", "yesterday"],
        &["tables", "--format", "xml"],
        &["report", "dormant", "--days", "0"],
    ] {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!out.stderr.is_empty(), "{args:?}: a usage error says what was wrong");
    }
}
