//! The failure model end to end (issue 12, docs/DESIGN.md §2): each standing condition Slack
//! documents, switched on in the simulator, skips exactly the (source, workspace) it concerns;
//! the run commits every other source and workspace, exits 3, and the manifest, `lastseen
//! tables` and `lastseen check` name source, workspace and code. Also: member analytics with a
//! bad line, service accounts, and access logs listed in an order lastseen must not assume.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use lastseen_slack_sim::{
    Conditions, FaultKind, FaultRule, FaultWhen, OrgSpec, Plan, RateLimits, SimConfig, Simulator, WorkspaceError,
};
use serde_json::Value;

use crate::support::{Env, end_of, today};

pub(crate) fn start(plan: Plan, seed: u64, conditions: Conditions, faults: Vec<FaultRule>) -> Env {
    let mut org = OrgSpec::new(seed, 60, plan, today(), 40);
    if plan == Plan::Enterprise {
        org.workspaces = 3;
    }
    Env::start_with(SimConfig { org, rate_limits: RateLimits::Off, faults, conditions })
}

/// Replaces the simulator (same organisation) with one under `conditions`: a condition that
/// clears, or appears, between two runs.
pub(crate) fn restart(env: &mut Env, conditions: Conditions) {
    let spec = env.sim().org().spec().clone();
    if let Some(old) = env.sim.take() {
        env.rt.block_on(old.shutdown());
    }
    let cfg = SimConfig { org: spec, rate_limits: RateLimits::Off, faults: Vec::new(), conditions };
    env.sim = Some(env.rt.block_on(Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())).unwrap());
}

pub(crate) fn run(env: &Env, d: chrono::NaiveDate, token: &str) -> std::process::Output {
    env.sim().set_now(end_of(d));
    env.cmd().env("SLACK_TOKEN", token).args(["run", "--date", &d.to_string()]).output().unwrap()
}

/// The manifest of the daily run of `d` (run ids of runs in the same second do not sort by time).
pub(crate) fn manifest_for(env: &Env, d: chrono::NaiveDate) -> Value {
    let dir = env.lake().join("_lastseen/runs");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| serde_json::from_slice::<Value>(&std::fs::read(e.path()).unwrap()).unwrap())
        .find(|m| m["date"] == d.to_string())
        .unwrap_or_else(|| panic!("no manifest for {d}"))
}

pub(crate) fn out_text(out: &std::process::Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `(workspace or "-", code)` of every skip the manifest records for `source`.
pub(crate) fn skips(m: &Value, source: &str) -> Vec<(String, String)> {
    m["sources"][source]["skipped"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| (s["workspace"].as_str().unwrap_or("-").to_owned(), s["code"].as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Every source of the run except `except` was collected with nothing skipped.
pub(crate) fn others_clean(m: &Value, except: &str) {
    for (name, rep) in m["sources"].as_object().unwrap() {
        if name != except {
            assert_eq!(rep["status"], "collected", "{name}: {rep}");
            assert!(skips(m, name).is_empty(), "{name}: {rep}");
        }
    }
}

/// `lastseen check` stdout and exit code.
pub(crate) fn check(env: &Env, token: &str) -> (Option<i32>, String) {
    let out = env.cmd().env("SLACK_TOKEN", token).arg("check").output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `check` has a row `source  status  …` whose reason contains every one of `parts`.
pub(crate) fn check_row(stdout: &str, source: &str, status: &str, parts: &[&str]) -> bool {
    stdout.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some(source) && w.next() == Some(status) && parts.iter().all(|p| l.contains(p))
    })
}

pub(crate) fn tables(env: &Env) -> String {
    let out = env.cmd().args(["tables", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", out_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn distinct(env: &Env, sql: &str) -> BTreeSet<String> {
    env.sql(sql).iter().map(|r| r["t"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn an_org_wide_app_granted_two_of_three_workspaces_collects_the_two_and_names_the_third() {
    let granted = Conditions { granted_workspaces: Some(vec![0, 1]), ..Conditions::default() };
    let mut env = start(Plan::Enterprise, 120, granted, Vec::new());
    let ids = env.sim().org().workspace_ids();
    let (two, third) = (ids[..2].iter().cloned().collect::<BTreeSet<_>>(), ids[2].clone());
    let token = env.sim().org_token().unwrap().to_owned();

    let (code, stdout) = check(&env, &token);
    assert_eq!(code, Some(3), "{stdout}");
    assert!(stdout.contains("workspaces:  2") && stdout.contains(&format!("not granted: 1 ({third})")), "{stdout}");
    for s in ["users", "billing", "usergroups", "access_logs"] {
        assert!(check_row(&stdout, s, "skipped", &[third.as_str(), "team_access_not_granted"]), "{s}: {stdout}");
    }

    let d = today();
    let out = run(&env, d, &token);
    assert_eq!(out.status.code(), Some(3), "{}", out_text(&out));
    let m = env.last_manifest();
    assert_eq!(m["status"], "partial");
    for s in ["users", "billing", "usergroups", "access_logs"] {
        assert_eq!(m["sources"][s]["status"], "collected", "{s}");
        assert_eq!(skips(&m, s), vec![(third.clone(), "team_access_not_granted".to_owned())], "{s}");
        assert_eq!(m["sources"][s]["workspaces"], 2, "{s}");
    }
    let warnings: Vec<&str> = m["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&third) && warnings[0].contains("team_access_not_granted"), "{warnings:?}");
    // The two granted workspaces, and nothing of the third.
    assert_eq!(distinct(&env, "SELECT DISTINCT team_id AS t FROM slack_workspaces"), two);
    assert_eq!(distinct(&env, "SELECT DISTINCT team_id AS t FROM slack_access_logs"), two);
    assert_eq!(distinct(&env, "SELECT DISTINCT team_id AS t FROM slack_billing"), two);
    assert_eq!(distinct(&env, "SELECT DISTINCT team_id AS t FROM slack_usergroup_members"), two);
    let listing = tables(&env);
    assert!(listing.contains("team_access_not_granted") && listing.contains(&third), "{listing}");

    // Without admin.teams:read the two granted workspaces are still collected: the list comes
    // from auth.teams.list, which needs no scope; the third cannot even be named.
    let narrow = env.sim().org_token_without_teams_scope().unwrap().to_owned();
    let (code, stdout) = check(&env, &narrow);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("workspaces:  2") && !stdout.contains("not granted"), "{stdout}");

    // The app is granted the third workspace: the next run reads its whole history, so the
    // access logs of the day it was skipped are there too.
    restart(&mut env, Conditions::default());
    let next = d + Days::new(1);
    let out = run(&env, next, &token);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    let filled =
        env.sql(&format!("SELECT count(*) AS n FROM slack_access_logs WHERE team_id = '{third}' AND dt <= DATE '{d}'"));
    assert!(filled[0]["n"].as_i64().unwrap() > 0, "the third workspace's past access logs: {filled:?}");
    assert!(skips(&manifest_for(&env, next), "access_logs").is_empty());
}

/// One Web API method answering a documented code for the second workspace only.
#[test]
fn each_standing_code_of_one_workspace_skips_that_source_for_that_workspace_only() {
    let cases: &[(&str, &str, &str)] = &[
        ("users.list", "access_denied", "users"),
        ("users.list", "two_factor_setup_required", "users"),
        ("team.accessLogs", "invalid_team_id", "access_logs"),
        ("team.accessLogs", "not_an_admin", "access_logs"),
        ("team.accessLogs", "enterprise_is_restricted", "access_logs"),
        ("team.billableInfo", "accesslimited", "billing"),
        ("team.billableInfo", "user_cannot_manage_public_channels", "billing"),
        ("usergroups.list", "no_permission", "usergroups"),
        ("usergroups.list", "ekm_access_denied", "usergroups"),
        ("usergroups.list", "team_access_not_granted", "usergroups"),
    ];
    let owner_missing = Conditions { owner_missing_from: vec![1], ..Conditions::default() };
    let all = cases
        .iter()
        .map(|(method, code, source)| {
            let c = Conditions {
                workspace_errors: vec![WorkspaceError {
                    method: (*method).into(),
                    workspace: 1,
                    error: (*code).into(),
                }],
                ..Conditions::default()
            };
            (c, *code, *source)
        })
        // team.billableInfo with an org token, for a workspace the org owner is not in.
        .chain([(owner_missing, "invalid_auth", "billing")]);
    for (i, (conditions, code, source)) in all.enumerate() {
        let env = start(Plan::Enterprise, 200 + i as u64, conditions, Vec::new());
        let ws = env.sim().org().workspace_ids()[1].clone();
        let token = env.sim().org_token().unwrap().to_owned();
        let out = run(&env, today(), &token);
        assert_eq!(out.status.code(), Some(3), "{code}: {}", out_text(&out));
        let m = env.last_manifest();
        assert_eq!(m["status"], "partial", "{code}");
        assert_eq!(m["sources"][source]["status"], "collected", "{code}");
        assert_eq!(skips(&m, source), vec![(ws.clone(), code.to_owned())], "{code}");
        others_clean(&m, source);
        let warnings = m["warnings"].as_array().unwrap();
        assert_eq!(warnings.len(), 1, "{code}: {warnings:?}");
        let w = warnings[0].as_str().unwrap();
        assert!(w.contains(source) && w.contains(&ws) && w.contains(code), "{w}");
        let listing = tables(&env);
        assert!(listing.contains(code) && listing.contains(&ws) && listing.contains(source), "{code}: {listing}");
        let (exit, stdout) = check(&env, &token);
        assert_eq!(exit, Some(3), "{code}: {stdout}");
        assert!(check_row(&stdout, source, "skipped", &[ws.as_str(), code]), "{code}: {stdout}");
    }
}

/// Organisation-wide conditions: the whole source (or one audit action) is skipped.
#[test]
fn org_wide_conditions_skip_their_source_and_transitional_codes_are_retried_then_skipped_for_the_day() {
    let getfile = |code: &str| {
        vec![FaultRule::new(
            "admin.analytics.getFile",
            FaultWhen::EveryNth(1),
            FaultKind::OkFalse { error: code.into() },
        )]
    };
    let billing_always = vec![FaultRule::new(
        "team.billableInfo",
        FaultWhen::EveryNth(1),
        FaultKind::OkFalse { error: "org_login_required".into() },
    )];
    let cases: Vec<(Conditions, Vec<FaultRule>, &str, &str)> = vec![
        (
            Conditions { hide_emails: true, ..Conditions::default() },
            vec![],
            "analytics",
            "org_level_email_display_disabled",
        ),
        (
            Conditions { analytics_disabled: true, ..Conditions::default() },
            vec![],
            "analytics",
            "member_analytics_disabled",
        ),
        (Conditions::default(), getfile("not_an_enterprise"), "analytics", "not_an_enterprise"),
        (Conditions { scim_refuses_token: true, ..Conditions::default() }, vec![], "scim", "invalid_authentication"),
        (Conditions { audit_refuses_token: true, ..Conditions::default() }, vec![], "audit", "http_401"),
        (Conditions::default(), billing_always, "billing", "org_login_required"),
    ];
    for (i, (conditions, faults, source, code)) in cases.into_iter().enumerate() {
        let env = start(Plan::Enterprise, 300 + i as u64, conditions, faults);
        let token = env.sim().org_token().unwrap().to_owned();
        let out = run(&env, today(), &token);
        assert_eq!(out.status.code(), Some(3), "{code}: {}", out_text(&out));
        let m = env.last_manifest();
        assert_eq!(m["sources"][source]["status"], "skipped", "{code}");
        assert_eq!(skips(&m, source), vec![("-".to_owned(), code.to_owned())], "{code}");
        others_clean(&m, source);
        let warnings = m["warnings"].as_array().unwrap();
        assert_eq!(warnings.len(), 1, "{code}: {warnings:?}");
        assert!(warnings[0].as_str().unwrap().contains(code), "{warnings:?}");
        let listing = tables(&env);
        assert!(listing.contains(code) && listing.contains(source), "{code}: {listing}");
        let (exit, stdout) = check(&env, &token);
        assert_eq!(exit, Some(3), "{code}: {stdout}");
        assert!(check_row(&stdout, source, "skipped", &[code]), "{code}: {stdout}");
    }

    // An audit action Slack no longer supports: that action is skipped, the others collected.
    let gone = Conditions { audit_unsupported_actions: vec!["user_logout".into()], ..Conditions::default() };
    let env = start(Plan::Enterprise, 310, gone, Vec::new());
    let token = env.sim().org_token().unwrap().to_owned();
    let out = run(&env, today(), &token);
    assert_eq!(out.status.code(), Some(3), "{}", out_text(&out));
    let m = env.last_manifest();
    assert_eq!(m["sources"]["audit"]["status"], "collected");
    assert_eq!(skips(&m, "audit"), vec![("-".to_owned(), "invalid_action".to_owned())]);
    assert!(m["warnings"][0].as_str().unwrap().contains("user_logout"), "{m}");
    let actions = distinct(&env, "SELECT DISTINCT action AS t FROM slack_audit_logins");
    assert!(actions.contains("user_login") && !actions.contains("user_logout"), "{actions:?}");

    // A transitional code that clears within the run is retried and costs nothing.
    let once = vec![FaultRule::new(
        "team.billableInfo",
        FaultWhen::Nth(1),
        FaultKind::OkFalse { error: "team_added_to_org".into() },
    )];
    let env = start(Plan::Enterprise, 311, Conditions::default(), once);
    let token = env.sim().org_token().unwrap().to_owned();
    let out = run(&env, today(), &token);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    assert_eq!(env.last_manifest()["sources"]["billing"]["status"], "collected");
}

#[test]
fn a_bad_analytics_line_is_quarantined_and_either_id_key_is_read() {
    let bad = Conditions { analytics_bad_line: true, analytics_enterprise_user_id: true, ..Conditions::default() };
    let mut env = start(Plan::BusinessPlus, 400, bad, Vec::new());
    let token = env.sim().user_token().to_owned();
    let d = today();
    let out = run(&env, d, &token);
    assert_eq!(out.status.code(), Some(3), "{}", out_text(&out));
    let m = env.last_manifest();
    assert_eq!(m["sources"]["analytics"]["status"], "collected");
    let warnings = m["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap().contains("slack_member_analytics_quarantine"), "{warnings:?}");
    let q = env.sql("SELECT CAST(dt AS VARCHAR) AS dt, line, reason FROM slack_member_analytics_quarantine");
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["line"], 2);
    assert!(q[0]["reason"].as_str().unwrap().starts_with("not a member row"), "{q:?}");
    // Every member row of the day is there, under `enterprise_user_id`.
    let day = q[0]["dt"].as_str().unwrap().to_owned();
    let rows = env.sql(&format!("SELECT count(*) AS n FROM slack_member_analytics WHERE dt = DATE '{day}'"));
    assert!(rows[0]["n"].as_i64().unwrap() > 10, "{rows:?}");

    // The same day fetched clean (a backfill of it) replaces its quarantined lines.
    restart(&mut env, Conditions::default());
    env.sim().set_now(end_of(d));
    let out = env.cmd().args(["backfill", "--from", &day, "--to", &day]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    let q = env.sql("SELECT count(*) AS n FROM slack_member_analytics_quarantine");
    assert_eq!(q[0]["n"], 0);
}

#[test]
fn workflow_and_connector_bots_are_service_accounts_never_dormant_people() {
    let bots = Conditions { workflow_bots: true, ..Conditions::default() };
    let env = start(Plan::Pro, 500, bots, Vec::new());
    let token = env.sim().user_token().to_owned();
    let out = run(&env, today(), &token);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    let truth = env.sim().org().ground_truth(env.sim().now());
    let bot_ids: BTreeSet<String> = truth.accounts.iter().filter(|a| a.kind == "bot").map(|a| a.id.clone()).collect();
    assert!(!bot_ids.is_empty());
    let typed = env
        .sql("SELECT account_id, account_type FROM accounts WHERE account_type IN ('workflow_bot', 'connector_bot')");
    let typed_ids: BTreeSet<String> = typed.iter().map(|r| r["account_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(typed_ids, bot_ids);
    let dormant = env.dormant_ids(30, None);
    assert!(dormant.is_disjoint(&bot_ids), "service accounts reported dormant: {:?}", dormant.intersection(&bot_ids));
}

/// Each account's newest access-log `date_last` in the lake equals the simulator's ground truth
/// for day `d` (more than 20 accounts with a last access checked).
pub(crate) fn assert_last_access_is_ground_truth(env: &Env, d: NaiveDate) {
    let truth = env.sim().org().ground_truth(end_of(d));
    let got = env.sql(
        "SELECT user_id, CAST(to_unixtime(max(date_last)) AS BIGINT) AS last FROM slack_access_logs GROUP BY user_id",
    );
    let got: std::collections::BTreeMap<String, i64> =
        got.iter().map(|r| (r["user_id"].as_str().unwrap().to_owned(), r["last"].as_i64().unwrap())).collect();
    let mut checked = 0;
    for a in &truth.accounts {
        assert_eq!(got.get(&a.id).copied(), a.last_access.map(|t| t.timestamp()), "{}", a.id);
        checked += usize::from(a.last_access.is_some());
    }
    assert!(checked > 20, "{checked}");
}

#[test]
fn access_logs_listed_by_date_first_are_read_fully_and_match_ground_truth() {
    let order = Conditions { access_logs_by_date_first: true, ..Conditions::default() };
    let env = start(Plan::Pro, 600, order, Vec::new());
    let token = env.sim().user_token().to_owned();
    let d = run_two_days_with_small_access_log_pages(&env);
    assert_last_access_is_ground_truth(&env, d);
    let warned = manifest_for(&env, d)["sources"]["access_logs"]["warnings"].to_string();
    assert!(warned.contains("not ordered by date_last"), "{warned}");
    // `check` tells the operator which order their workspace lists in.
    let (_, stdout) = check(&env, &token);
    assert!(stdout.contains("access log order: NOT by date_last"), "{stdout}");
}

#[test]
fn analytics_skipped_while_emails_are_hidden_fill_their_gap_once_the_policy_is_lifted() {
    let mut env = start(Plan::BusinessPlus, 700, Conditions::default(), Vec::new());
    let token = env.sim().user_token().to_owned();
    let d = today();
    let days = |env: &Env| -> BTreeSet<String> {
        env.sql("SELECT DISTINCT CAST(dt AS VARCHAR) AS t FROM slack_member_analytics")
            .iter()
            .map(|r| r["t"].as_str().unwrap().to_owned())
            .collect()
    };
    // Day d-3 reads the newest file Slack has then (d-5).
    let out = run(&env, d - Days::new(3), &token);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    assert_eq!(days(&env), BTreeSet::from([(d - Days::new(5)).to_string()]));

    // The organisation hides e-mail addresses: analytics are skipped, the rest is committed.
    restart(&mut env, Conditions { hide_emails: true, ..Conditions::default() });
    let out = run(&env, d - Days::new(2), &token);
    assert_eq!(out.status.code(), Some(3), "{}", out_text(&out));
    assert_eq!(
        skips(&manifest_for(&env, d - Days::new(2)), "analytics"),
        vec![("-".to_owned(), "org_level_email_display_disabled".to_owned())]
    );
    assert_eq!(days(&env).len(), 1);

    // Lifted: the next run reads from the last stored day on, the skipped days included.
    restart(&mut env, Conditions::default());
    let out = run(&env, d, &token);
    assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    let want: BTreeSet<String> = (2..=5).map(|k| (d - Days::new(k)).to_string()).collect();
    assert_eq!(days(&env), want);
}

/// Runs yesterday and today with 20-entry access-log pages (so the walk spans many pages),
/// each expected to exit 0; returns today.
pub(crate) fn run_two_days_with_small_access_log_pages(env: &Env) -> chrono::NaiveDate {
    let token = env.sim().user_token().to_owned();
    let small = [("LASTSEEN_SLACK__ACCESS_LOGS_PAGE_SIZE", "20")];
    let d = today();
    for day in [d - Days::new(1), d] {
        env.sim().set_now(end_of(day));
        let out = env
            .cmd()
            .env("SLACK_TOKEN", &token)
            .envs(small)
            .args(["run", "--date", &day.to_string()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", out_text(&out));
    }
    d
}
