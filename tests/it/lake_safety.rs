//! Re-runs and interrupted runs never duplicate or lose committed rows.

use std::collections::BTreeMap;
use std::io::BufRead;

use chrono::{Duration, NaiveDate};
use lastseen_slack_sim::Plan;

use crate::support::{Env, count, end_of, files_under, parse_json_lines, today};

/// `[lake]` settings that make vacuum delete at once (so leftovers can be checked on disk) and
/// let the next run take over a killed run's lease after a second.
fn configure_short_windows(env: &Env) {
    std::fs::write(env.dir.path().join("lastseen.toml"), "[lake]\nkeep_superseded = \"0s\"\nlease_ttl = \"1s\"\n")
        .unwrap();
}

/// Parquet files on disk and the files the lake lists.
fn files_on_disk_and_listed(env: &Env) -> (u64, u64) {
    let parquet =
        files_under(&env.lake()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count();
    let out = env.cmd().args(["tables", "--format", "json"]).output().unwrap();
    let listed: u64 = parse_json_lines(&out.stdout).iter().map(|r| r["files"].as_u64().unwrap()).sum();
    (parquet as u64, listed)
}

/// Every table's rows, sorted, without the collection and computation timestamps (which differ
/// between two runs of the same day by design).
fn contents(env: &Env) -> BTreeMap<String, Vec<String>> {
    let out = env.cmd().args(["tables", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut all = BTreeMap::new();
    for t in parse_json_lines(&out.stdout) {
        let table = t["table"].as_str().unwrap().to_string();
        let mut rows: Vec<String> = env
            .sql(&format!("SELECT * FROM {table}"))
            .into_iter()
            .map(|mut r| {
                if let Some(o) = r.as_object_mut() {
                    o.remove("collected_at");
                    o.remove("computed_at");
                }
                r.to_string()
            })
            .collect();
        rows.sort();
        all.insert(table, rows);
    }
    all
}

/// `lastseen run --date d` stopped at `point` and killed there with SIGKILL; then waits out the
/// lease the killed run held (it can no longer renew it).
pub(crate) fn run_killed_at(env: &Env, d: NaiveDate, point: &str) {
    run_killed_at_with(env, d, point, &[]);
}

/// [`run_killed_at`] with extra environment variables (another app's token, say).
fn run_killed_at_with(env: &Env, d: NaiveDate, point: &str, vars: &[(&str, &str)]) {
    env.sim().set_now(end_of(d));
    let mut child = env
        .std_cmd()
        .envs(vars.iter().copied())
        .env("LASTSEEN_TEST_FAILPOINT", format!("{point}:pause"))
        .args(["run", "--date", &d.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let marker = format!("failpoint `{point}` reached");
    let mut log = Vec::new();
    let reached = stderr.lines().map_while(Result::ok).any(|l| {
        let hit = l.contains(&marker);
        log.push(l);
        hit
    });
    assert!(reached, "the run ended without reaching failpoint {point}:\n{}", log.join("\n"));
    child.kill().unwrap(); // SIGKILL
    assert!(!child.wait().unwrap().success());
    wait_out_lease(env);
}

/// Whether a live run holds the lake lease at `lake`: its newest generation record is neither
/// released nor expired.
/// The newest lease record, chosen as the lake does: the highest numbered `<n>.json`. A put
/// killed half-way leaves object_store's temporary `<n>.json#…` file behind, which is not a
/// record (it sorted last by name and made this helper read an empty file).
pub(crate) fn newest_lease_record(lake: &std::path::Path) -> Option<std::path::PathBuf> {
    files_under(&lake.join("_lastseen/lease"))
        .into_iter()
        .filter_map(|p| Some((p.file_name()?.to_str()?.strip_suffix(".json")?.parse::<u64>().ok()?, p)))
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

pub(crate) fn lease_held(lake: &std::path::Path) -> bool {
    let Some(newest) = newest_lease_record(lake) else { return false };
    let Ok(rec) = serde_json::from_slice::<serde_json::Value>(&std::fs::read(newest).unwrap_or_default()) else {
        return false;
    };
    let expires: chrono::DateTime<chrono::Utc> = rec["expires_at"].as_str().unwrap_or_default().parse().unwrap();
    rec["released"] != true && expires > chrono::Utc::now()
}

/// A killed run cannot release or renew its lease: the next run takes it over once it has
/// expired. Waits until the newest lease record's expiry has passed.
pub(crate) fn wait_out_lease(env: &Env) {
    // The record's expiry is the last renewal plus the TTL; wait until it has passed.
    let newest = newest_lease_record(&env.lake()).expect("a lease record");
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(newest).unwrap()).unwrap();
    let expires: chrono::DateTime<chrono::Utc> = rec["expires_at"].as_str().unwrap().parse().unwrap();
    if let Ok(wait) = (expires - chrono::Utc::now() + Duration::milliseconds(50)).to_std() {
        std::thread::sleep(wait);
    }
}

fn table_counts(env: &Env) -> (i64, i64, i64) {
    let users = count(&env.sql("SELECT count(*) AS n FROM slack_users"), "n");
    let logs = count(&env.sql("SELECT count(*) AS n FROM slack_access_logs"), "n");
    let seen = count(&env.sql("SELECT count(*) AS n FROM last_seen"), "n");
    (users, logs, seen)
}

#[test]
fn rerunning_a_day_replaces_it_without_duplicates() {
    let env = Env::start(200, Plan::Pro, 5);
    configure_short_windows(&env);
    let d = today() - Duration::days(1);
    env.run_day_ok(d);
    let first = table_counts(&env);
    env.run_day_ok(d);
    env.run_day_ok(d);
    assert_eq!(table_counts(&env), first, "re-running {d} changed row counts");
    let dup_users = env.sql(
        "SELECT count(*) AS n FROM (SELECT dt, user_id FROM slack_users GROUP BY dt, user_id HAVING count(*) > 1)",
    );
    assert_eq!(count(&dup_users, "n"), 0);
    let dup_logs = env.sql(
        "SELECT count(*) AS n FROM (SELECT dt, team_id, user_id, ip, user_agent, date_first FROM slack_access_logs \
         GROUP BY dt, team_id, user_id, ip, user_agent, date_first HAVING count(*) > 1)",
    );
    assert_eq!(count(&dup_logs, "n"), 0);
    // With no keep window, the vacuum after each run removed the superseded files: the files
    // on disk are exactly the files the lake lists.
    let (on_disk, listed) = files_on_disk_and_listed(&env);
    assert_eq!(on_disk, listed);
}

#[test]
fn a_run_killed_at_any_failpoint_and_rerun_gives_exactly_the_rows_of_a_clean_run() {
    let d = today() - Duration::days(1);
    let clean = Env::start(150, Plan::Pro, 21);
    configure_short_windows(&clean);
    clean.run_day_ok(d);
    clean.run_day_ok(d);
    let expected = contents(&clean);
    assert!(expected.get("slack_users").is_some_and(|r| r.len() >= 150), "{:?}", expected.keys());
    assert!(expected.get("last_seen").is_some_and(|r| !r.is_empty()));

    for point in ["after_data_write", "after_log_put", "mid_cleanup", "mid_vacuum"] {
        let env = Env::start(150, Plan::Pro, 21);
        configure_short_windows(&env);
        env.run_day_ok(d);
        run_killed_at(&env, d, point);
        env.run_day_ok(d);
        assert_eq!(contents(&env), expected, "killed at {point}, then re-run");
        // The run after the crash settled its leftovers: nothing on disk the lake does not list.
        let (on_disk, listed) = files_on_disk_and_listed(&env);
        assert_eq!(on_disk, listed, "leftovers after a kill at {point}");
    }
}

/// A run of Slack and Okta killed with SIGKILL while an Okta source is collecting (its first
/// page staged, the rest not yet read), then re-run: the lake holds exactly the rows of a run
/// that was never interrupted. The killed run committed nothing and moved no System Log
/// watermark, so the re-run reads the same window again; each event is in the lake once.
#[test]
fn an_okta_run_killed_mid_collection_and_rerun_gives_exactly_the_rows_of_a_clean_run() {
    use lastseen_okta_sim::{OktaOrgSpec, OktaSimConfig, OktaSimulator, RunningOktaSim};

    // The binary reads the System Log by the wall clock, and Okta keeps 90 days: the runs are of
    // the real yesterday and the day before (the organisations are generated around today).
    let real_today = chrono::Utc::now().date_naive();
    let d = real_today - Duration::days(1);
    let days = [d - Duration::days(1), d];
    // Slack (Pro) and an Okta org of the same people, its System Log read in pages of 20 so a
    // source is killed with pages still to read; the first run reads 30 days back, well inside
    // the retention, so the window does not depend on the moment of the run.
    let start = || {
        let env = Env::start_with(lastseen_slack_sim::SimConfig {
            org: lastseen_slack_sim::OrgSpec::new(33, 120, Plan::Pro, real_today, 120),
            rate_limits: lastseen_slack_sim::RateLimits::Off,
            faults: Vec::new(),
            conditions: Default::default(),
        });
        let okta = env
            .rt
            .block_on(OktaSimulator::start(
                OktaSimConfig::new(OktaOrgSpec::from_slack(env.sim().org(), 5)),
                "127.0.0.1:0".parse().unwrap(),
            ))
            .unwrap();
        std::fs::write(
            env.dir.path().join("lastseen.toml"),
            format!(
                "[lake]\nkeep_superseded = \"0s\"\nlease_ttl = \"1s\"\n\n[okta]\norg_url = {:?}\n\
                 users_page_size = 20\nlogs_page_size = 20\nlogs_first_run_days = 30\n",
                okta.org_url()
            ),
        )
        .unwrap();
        (env, okta)
    };
    let token = |okta: &RunningOktaSim| okta.api_token().to_owned();
    let run_ok = |env: &Env, okta: &RunningOktaSim, day: NaiveDate| {
        okta.set_now(end_of(day));
        env.sim().set_now(end_of(day));
        let out =
            env.cmd().env("OKTA_API_TOKEN", token(okta)).args(["run", "--date", &day.to_string()]).output().unwrap();
        assert!(out.status.success(), "run {day} failed: {}", String::from_utf8_lossy(&out.stderr));
    };

    let (clean, clean_okta) = start();
    for day in days {
        run_ok(&clean, &clean_okta, day);
    }
    let expected = contents(&clean);
    for table in ["okta_users", "okta_log_events", "sso_last_seen"] {
        assert!(expected.get(table).is_some_and(|r| r.len() > 20), "{table}: {:?}", expected.get(table).map(Vec::len));
    }

    for source in ["okta_users", "okta_logs"] {
        let (env, okta) = start();
        run_ok(&env, &okta, days[0]);
        okta.set_now(end_of(d));
        run_killed_at_with(&env, d, &format!("mid_collection:{source}"), &[("OKTA_API_TOKEN", &token(&okta))]);
        run_ok(&env, &okta, d);
        assert_eq!(contents(&env), expected, "killed while {source} was collecting, then re-run");
        let (on_disk, listed) = files_on_disk_and_listed(&env);
        assert_eq!(on_disk, listed, "leftovers after a kill while {source} was collecting");
    }
}

/// The first run writes its access logs (21 days of history) as one plan over every day; killed
/// after the first day's files are on disk and before the others are written, it published
/// nothing, and the next run gives exactly the rows of a run that was never interrupted.
#[test]
fn a_run_killed_in_the_middle_of_a_multi_partition_write_publishes_nothing() {
    let d = today() - Duration::days(1);
    let clean = Env::start(150, Plan::Pro, 21);
    configure_short_windows(&clean);
    clean.run_day_ok(d);
    let expected = contents(&clean);
    assert!(expected.get("slack_access_logs").is_some_and(|r| !r.is_empty()));

    let env = Env::start(150, Plan::Pro, 21);
    configure_short_windows(&env);
    run_killed_at(&env, d, "mid_data_write");
    let written: Vec<_> = files_under(&env.lake().join("slack_access_logs"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!written.is_empty(), "the first partition's files were written before the kill");
    let versions = files_under(&env.lake().join("_lastseen/log"));
    assert!(versions.is_empty(), "a killed write must not publish a version: {versions:?}");

    env.run_day_ok(d);
    assert_eq!(contents(&env), expected, "killed mid-write, then re-run");
    let (on_disk, listed) = files_on_disk_and_listed(&env);
    assert_eq!(on_disk, listed, "the killed run's files are vacuumed");
}

#[test]
fn a_run_killed_between_file_write_and_commit_leaves_the_previous_content() {
    let env = Env::start(200, Plan::Pro, 9);
    configure_short_windows(&env);
    let d = today();
    env.sim().set_now(end_of(d - Duration::days(3)));
    // First, a committed run of day D as Slack looked three days earlier.
    let out = env.cmd().args(["run", "--date", &d.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = table_counts(&env);
    let before_users =
        env.sql(&format!("SELECT user_id, name FROM slack_users WHERE dt = DATE '{d}' ORDER BY user_id"));

    // The same day again, with more activity visible, killed after writing files, before commit.
    env.sim().set_now(end_of(d));
    let out = env
        .cmd()
        .env("LASTSEEN_TEST_FAILPOINT", "after_data_write")
        .args(["run", "--date", &d.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the failpoint must abort the run");
    let orphans: Vec<_> =
        files_under(&env.lake()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).collect();
    assert!(orphans.len() > 3, "the killed run should have left unlisted files behind: {orphans:?}");
    assert_eq!(table_counts(&env), before, "uncommitted files must not be visible");
    assert_eq!(
        env.sql(&format!("SELECT user_id, name FROM slack_users WHERE dt = DATE '{d}' ORDER BY user_id")),
        before_users
    );

    // The next run takes over the dead run's lease once it expired, commits, and (no keep
    // window here) its vacuum removes the leftovers.
    wait_out_lease(&env);
    env.run_day_ok(d);
    let (on_disk, listed) = files_on_disk_and_listed(&env);
    assert_eq!(on_disk, listed, "the killed run's files are vacuumed");
    let after = table_counts(&env);
    assert!(after.1 > before.1, "the completed run should add the newer access logs");
    let dup_logs = env.sql(
        "SELECT count(*) AS n FROM (SELECT dt, team_id, user_id, ip, user_agent, date_first FROM slack_access_logs \
         GROUP BY dt, team_id, user_id, ip, user_agent, date_first HAVING count(*) > 1)",
    );
    assert_eq!(count(&dup_logs, "n"), 0);
    let truth = env.sim().org().ground_truth(end_of(d));
    assert_eq!(env.dormant_ids(30, None), truth.dormant(30));
}

#[test]
fn vacuum_lists_by_default_and_deletes_with_apply_only_past_the_window() {
    let env = Env::start(100, Plan::Pro, 23);
    let d = today() - Duration::days(1);
    env.run_day_ok(d);
    env.run_day_ok(d);
    // Default window (7 days): the re-run's superseded files stay, and vacuum has nothing to do.
    let (on_disk, listed) = files_on_disk_and_listed(&env);
    assert!(on_disk > listed, "{on_disk} on disk, {listed} listed");
    let out = env.cmd().args(["vacuum", "--apply"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(files_on_disk_and_listed(&env), (on_disk, listed));

    // No window: a plain `vacuum` only lists them ...
    let no_window = |args: &[&str]| {
        let out = env.cmd().env("LASTSEEN_LAKE__KEEP_SUPERSEDED", "0s").args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dry = no_window(&["vacuum"]);
    let listed_for_deletion = dry.lines().filter(|l| l.starts_with("would delete ") && l.ends_with(".parquet")).count();
    assert_eq!(listed_for_deletion as u64, on_disk - listed, "{dry}");
    assert!(dry.contains("dry run: nothing was deleted"), "{dry}");
    assert_eq!(files_on_disk_and_listed(&env), (on_disk, listed));
    // ... and `--apply` deletes exactly those; the data reads the same.
    let before = table_counts(&env);
    let applied = no_window(&["vacuum", "--apply"]);
    assert!(applied.lines().filter(|l| l.starts_with("deleted ")).count() == listed_for_deletion, "{applied}");
    assert_eq!(files_on_disk_and_listed(&env), (listed, listed));
    assert_eq!(table_counts(&env), before);
}

#[test]
fn check_reports_that_the_lakes_store_honours_create_only_puts() {
    let env = Env::start(20, Plan::Pro, 5);
    let out = env.cmd().arg("check").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("lake:")).unwrap_or_else(|| panic!("no lake line in {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(words[1].starts_with("file://") && words[1].contains(env.lake().to_str().unwrap()), "{line}");
    assert_eq!(words[2..], ["ok", "(create-only", "puts", "honoured)"], "{line}");
    // The probe cleans up after itself: check leaves no object in the lake.
    let left: Vec<_> =
        files_under(&env.lake()).into_iter().filter(|p| p.to_string_lossy().contains("_lastseen/probe")).collect();
    assert!(left.is_empty(), "{left:?}");
}
