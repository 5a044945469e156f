//! Re-runs and interrupted runs never duplicate or lose committed rows.

use chrono::Duration;
use lastseen_slack_sim::Plan;

use crate::support::{Env, count, end_of, files_under, today};

fn table_counts(env: &Env) -> (i64, i64, i64) {
    let users = count(&env.sql("SELECT count(*) AS n FROM slack_users"), "n");
    let logs = count(&env.sql("SELECT count(*) AS n FROM slack_access_logs"), "n");
    let seen = count(&env.sql("SELECT count(*) AS n FROM last_seen"), "n");
    (users, logs, seen)
}

#[test]
fn rerunning_a_day_replaces_it_without_duplicates() {
    let env = Env::start(200, Plan::Pro, 5);
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
    // Superseded files are gone: the files on disk are exactly the files the lake lists.
    let parquet =
        files_under(&env.lake()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")).count();
    let out = env.cmd().args(["tables", "--format", "json"]).output().unwrap();
    let listed: u64 = crate::support::parse_json_lines(&out.stdout).iter().map(|r| r["files"].as_u64().unwrap()).sum();
    assert_eq!(parquet as u64, listed);
}

#[test]
fn a_run_killed_between_file_write_and_commit_leaves_the_previous_content() {
    let env = Env::start(200, Plan::Pro, 9);
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

    // The next run takes over the dead run's lease, commits, and removes the leftovers.
    env.run_day_ok(d);
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
