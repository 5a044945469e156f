//! The failure model against the lake's guards and history (issue 12, docs/DESIGN.md §2): a
//! workspace skipped for a standing condition neither trips the mass-change guard nor makes its
//! accounts vanish from the day's snapshot, while a real shrink still trips it; a source that
//! keeps history fills the skipped days once the condition clears; and the access-log
//! collector's classic-paging fallback reads exactly what Slack holds.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use lastseen_slack_sim::{Conditions, OrgSpec, Plan, RateLimits, SimConfig, Simulator, WorkspaceError};

use crate::conditions::{
    assert_last_access_is_ground_truth, check, check_row, manifest_for, out_text, restart, run,
    run_two_days_with_small_access_log_pages, skips, start, tables,
};
use crate::support::{Env, count, end_of, today};

/// A Grid of two workspaces with `users` accounts (seeded: the same seed gives the same
/// workspaces and the same first accounts whatever `users` is).
fn grid(users: usize, conditions: Conditions) -> SimConfig {
    let mut org = OrgSpec::new(900, users, Plan::Enterprise, today(), 40);
    org.workspaces = 2;
    SimConfig { org, rate_limits: RateLimits::Off, faults: Vec::new(), conditions }
}

/// users.list answering `access_denied` for the second workspace (Slack's common error table).
fn users_denied_on_second() -> Conditions {
    Conditions {
        workspace_errors: vec![WorkspaceError {
            method: "users.list".into(),
            workspace: 1,
            error: "access_denied".into(),
        }],
        ..Conditions::default()
    }
}

fn swap_sim(env: &mut Env, cfg: SimConfig) {
    if let Some(old) = env.sim.take() {
        env.rt.block_on(old.shutdown());
    }
    env.sim = Some(env.rt.block_on(Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())).unwrap());
}

/// `user_id -> (status, collected_at)` of the day's `accounts`.
fn accounts_on(env: &Env, d: NaiveDate) -> BTreeMap<String, (String, String)> {
    env.sql(&format!(
        "SELECT account_id, status, CAST(collected_at AS VARCHAR) AS c FROM accounts WHERE dt = DATE '{d}'"
    ))
    .iter()
    .map(|r| {
        let s = |k: &str| r[k].as_str().unwrap().to_owned();
        (s("account_id"), (s("status"), s("c")))
    })
    .collect()
}

/// The accounts of the day's users snapshot listed only in workspace `ws`.
fn only_in(env: &Env, d: NaiveDate, other: &str) -> BTreeSet<String> {
    env.sql(&format!(
        "SELECT user_id FROM slack_users WHERE dt = DATE '{d}' AND NOT array_has(workspace_ids, '{other}')"
    ))
    .iter()
    .map(|r| r["user_id"].as_str().unwrap().to_owned())
    .collect()
}

#[test]
fn a_workspace_skipped_for_users_neither_trips_the_guard_nor_loses_its_accounts() {
    let mut env = Env::start_with(grid(120, Conditions::default()));
    let ids = env.sim().org().workspace_ids();
    let (first, second) = (ids[0].clone(), ids[1].clone());
    let token = env.sim().org_token().unwrap().to_owned();
    let d = today();
    let yesterday = d - Days::new(1);
    let out = run(&env, yesterday, &token);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    let all = count(&env.sql(&format!("SELECT count(*) AS n FROM slack_users WHERE dt = DATE '{yesterday}'")), "n");
    let second_only = only_in(&env, yesterday, &first);
    // Enough of the organisation sits only in the second workspace for the default guard
    // (20%) to refuse a snapshot without them: the test can fail.
    assert!(second_only.len() as f64 > 0.2 * all as f64, "{} of {all}", second_only.len());

    // users.list is refused for the second workspace today: a standing condition, exit 3.
    swap_sim(&mut env, grid(120, users_denied_on_second()));
    let out = run(&env, d, &token);
    assert_eq!(out.status.code(), Some(3), "{}", out_text(&out));
    let m = manifest_for(&env, d);
    assert_eq!(m["status"], "partial");
    assert!(m["lake_version"].is_u64(), "{m}");
    assert_eq!(m["sources"]["users"]["status"], "collected");
    assert_eq!(skips(&m, "users"), vec![(second.clone(), "access_denied".to_owned())]);
    assert!(tables(&env).contains("access_denied"));

    // The accounts of the skipped workspace are carried from yesterday's snapshot unchanged
    // (status and collected_at), not dropped as if removed; the first workspace is today's.
    let (before, now) = (accounts_on(&env, yesterday), accounts_on(&env, d));
    assert_eq!(before.keys().collect::<Vec<_>>(), now.keys().collect::<Vec<_>>());
    for id in &second_only {
        assert_eq!(now[id], before[id], "{id}");
    }
    let fresh: Vec<&String> = now.iter().filter(|(id, _)| !second_only.contains(*id)).map(|(id, _)| id).collect();
    assert!(!fresh.is_empty());
    for id in fresh {
        assert_ne!(now[id].1, before[id].1, "{id} was collected today");
    }
    let last_seen = env.sql(&format!("SELECT count(*) AS n FROM last_seen WHERE dt = DATE '{d}'"));
    assert!(count(&last_seen, "n") > 0, "the day is derived");

    // Cleared: the next run reads the second workspace again; nothing is carried.
    swap_sim(&mut env, grid(120, Conditions::default()));
    let next = d + Days::new(1);
    let out = run(&env, next, &token);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    let later = accounts_on(&env, next);
    assert_eq!(later.keys().collect::<Vec<_>>(), now.keys().collect::<Vec<_>>());
    for id in &second_only {
        assert_ne!(later[id].1, before[id].1, "{id} was collected again");
    }
}

#[test]
fn a_real_shrink_of_a_collected_workspace_still_trips_the_guard_while_another_is_skipped() {
    let mut env = Env::start_with(grid(120, Conditions::default()));
    let token = env.sim().org_token().unwrap().to_owned();
    let d = today();
    let out = run(&env, d - Days::new(1), &token);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    let before = env.sql("SELECT count(*) AS n FROM slack_users");

    // The same organisation with a third of its accounts, and the second workspace refused:
    // the first workspace lost most of its members, which the guard must still refuse.
    swap_sim(&mut env, grid(40, users_denied_on_second()));
    let out = run(&env, d, &token);
    assert_eq!(out.status.code(), Some(1), "{}", out_text(&out));
    let err = out_text(&out);
    assert!(err.contains("slack_users") && err.contains("lake.max_snapshot_drop"), "{err}");
    assert_eq!(env.sql("SELECT count(*) AS n FROM slack_users"), before, "nothing published");
    assert!(env.sql(&format!("SELECT dt FROM last_seen WHERE dt = DATE '{d}'")).is_empty());
}

/// The audit event ids of `slack_audit_logins` dated from `from` to `to`.
fn audit_ids(env: &Env, from: NaiveDate, to: NaiveDate) -> BTreeSet<String> {
    env.sql(&format!(
        "SELECT id FROM slack_audit_logins WHERE CAST(date_create AS DATE) BETWEEN DATE '{from}' AND DATE '{to}'"
    ))
    .iter()
    .map(|r| r["id"].as_str().unwrap().to_owned())
    .collect()
}

#[test]
fn audit_refusing_the_token_is_skipped_named_and_its_days_filled_once_it_accepts() {
    let refused = Conditions { audit_refuses_token: true, ..Conditions::default() };
    let mut env = start(Plan::Enterprise, 910, refused, Vec::new());
    let token = env.sim().org_token().unwrap().to_owned();
    let d = today();
    let skipped_day = d - Days::new(2);
    let out = run(&env, skipped_day, &token);
    assert_eq!(out.status.code(), Some(3), "{}", out_text(&out));
    let m = manifest_for(&env, skipped_day);
    assert_eq!(m["sources"]["audit"]["status"], "skipped");
    assert_eq!(skips(&m, "audit"), vec![("-".to_owned(), "http_401".to_owned())]);
    assert!(tables(&env).contains("http_401"));
    let (exit, stdout) = check(&env, &token);
    assert_eq!(exit, Some(3), "{stdout}");
    assert!(check_row(&stdout, "audit", "skipped", &["401"]), "{stdout}");
    assert!(audit_ids(&env, d - Days::new(60), d).is_empty());

    // The token is accepted again (an owner's): the next run reads the days it missed.
    restart(&mut env, Conditions::default());
    let out = run(&env, d, &token);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    // The days a first read covers from either run date (a first run reads 30 days back).
    let from = d - Days::new(20);
    let got = audit_ids(&env, from, skipped_day);
    // Ground truth: a lake that never missed a day, same organisation, same clock.
    let clean = start(Plan::Enterprise, 910, Conditions::default(), Vec::new());
    for day in [skipped_day, d] {
        let out = run(&clean, day, &token_of(&clean));
        assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    }
    let want = audit_ids(&clean, from, skipped_day);
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

fn token_of(env: &Env) -> String {
    env.sim().org_token().unwrap().to_owned()
}

#[test]
fn an_unsupported_audit_action_shows_in_check_and_tables() {
    let gone = Conditions { audit_unsupported_actions: vec!["user_logout".into()], ..Conditions::default() };
    let env = start(Plan::Enterprise, 920, gone, Vec::new());
    let token = token_of(&env);
    let out = run(&env, today(), &token);
    assert_eq!(out.status.code(), Some(3), "{}", out_text(&out));
    let listing = tables(&env);
    assert!(listing.contains("invalid_action") && listing.contains("user_logout"), "{listing}");
    let (exit, stdout) = check(&env, &token);
    assert_eq!(exit, Some(3), "{stdout}");
    assert!(check_row(&stdout, "audit", "works", &[]), "{stdout}");
    assert!(check_row(&stdout, "audit", "skipped", &["user_logout", "400"]), "{stdout}");
}

#[test]
fn access_logs_answered_the_classic_way_match_ground_truth() {
    // Slack answers a cursor request with a `paging` block and no cursor: the collector pages
    // with `count`/`page` from page 2 on (team.accessLogs page; contract sample
    // `api__team.accessLogs.json` carries `paging` {count, total, page, pages}).
    let classic = Conditions { access_logs_classic: vec![0], ..Conditions::default() };
    let env = start(Plan::Pro, 930, classic, Vec::new());
    let small = [("LASTSEEN_SLACK__ACCESS_LOGS_PAGE_SIZE", "20")];
    let d = run_two_days_with_small_access_log_pages(&env);
    // More than one classic page was read (the first answer was not the whole log).
    assert!(env.sim().call_count("team.accessLogs") > 3, "{}", env.sim().call_count("team.accessLogs"));
    assert_last_access_is_ground_truth(&env, d);
    // Every entry Slack holds, once: the rows equal a lake collected in cursor mode.
    let cursor = start(Plan::Pro, 930, Conditions::default(), Vec::new());
    for day in [d - Days::new(1), d] {
        cursor.sim().set_now(end_of(day));
        let out = cursor
            .cmd()
            .env("SLACK_TOKEN", cursor.sim().user_token())
            .envs(small)
            .args(["run", "--date", &day.to_string()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    }
    let rows = "SELECT user_id, ip, user_agent, CAST(date_first AS VARCHAR) AS f, CAST(date_last AS VARCHAR) AS l, \
                count FROM slack_access_logs ORDER BY user_id, ip, user_agent, f, l";
    let (a, b) = (env.sql(rows), cursor.sql(rows));
    assert!(a.len() > 50, "{}", a.len());
    assert_eq!(a, b);
}

#[test]
fn scim_answering_403_with_its_error_body_is_skipped_and_named() {
    // A bot token: SCIM needs a user token with the `admin` scope (Slack's SCIM API page), and
    // the simulator answers 403 `{"Errors":{"description":"permission_denied","code":403}}`.
    let env = start(Plan::Enterprise, 940, Conditions::default(), Vec::new());
    let token = env.sim().bot_token().to_owned();
    let sources = [("LASTSEEN_SLACK__SOURCES", "users,scim")];
    env.sim().set_now(end_of(today()));
    let out = env
        .cmd()
        .env("SLACK_TOKEN", &token)
        .envs(sources)
        .args(["run", "--date", &today().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", out_text(&out));
    let m = manifest_for(&env, today());
    assert_eq!(m["sources"]["users"]["status"], "collected");
    assert_eq!(m["sources"]["scim"]["status"], "skipped");
    assert_eq!(skips(&m, "scim"), vec![("-".to_owned(), "permission_denied".to_owned())]);
    let listing = tables(&env);
    assert!(listing.contains("permission_denied") && listing.contains("scim"), "{listing}");
    assert!(count(&env.sql("SELECT count(*) AS n FROM slack_users"), "n") > 0);
    let out = env.cmd().env("SLACK_TOKEN", &token).envs(sources).arg("check").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(check_row(&stdout, "scim", "skipped", &["permission_denied"]), "{stdout}");
}

/// Each access-log entry of `ws` (user, ip, agent, first access) with its newest `date_last`
/// and count: what Slack holds, however the reads were spread over days.
fn access_rows(env: &Env, ws: &str) -> Vec<serde_json::Value> {
    env.sql(&format!(
        "SELECT user_id, ip, user_agent, CAST(date_first AS VARCHAR) AS f, CAST(max(date_last) AS VARCHAR) AS l, \
         max(count) AS n FROM slack_access_logs WHERE team_id = '{ws}' \
         GROUP BY user_id, ip, user_agent, date_first ORDER BY user_id, ip, user_agent, f"
    ))
}

#[test]
fn access_logs_refused_for_one_workspace_fill_its_gap_once_allowed() {
    let denied = Conditions {
        workspace_errors: vec![WorkspaceError {
            method: "team.accessLogs".into(),
            workspace: 1,
            error: "not_an_admin".into(),
        }],
        ..Conditions::default()
    };
    let mut env = start(Plan::Enterprise, 950, denied, Vec::new());
    let ws = env.sim().org().workspace_ids()[1].clone();
    let token = token_of(&env);
    let d = today();
    let out = run(&env, d - Days::new(1), &token);
    assert_eq!(out.status.code(), Some(3), "{}", out_text(&out));
    assert_eq!(skips(&manifest_for(&env, d - Days::new(1)), "access_logs"), vec![(ws.clone(), "not_an_admin".into())]);
    assert!(access_rows(&env, &ws).is_empty());

    restart(&mut env, Conditions::default());
    let out = run(&env, d, &token);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    // Ground truth: a lake that read the workspace on both days.
    let clean = start(Plan::Enterprise, 950, Conditions::default(), Vec::new());
    for day in [d - Days::new(1), d] {
        let out = run(&clean, day, &token_of(&clean));
        assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    }
    let (got, want) = (access_rows(&env, &ws), access_rows(&clean, &ws));
    assert!(want.len() > 10, "{}", want.len());
    assert_eq!(got, want);
}
