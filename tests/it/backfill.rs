//! `lastseen backfill`: past access-log days equal what team.accessLogs itself returns for the
//! window, member analytics what admin.analytics.getFile serves for each day, audit logins what
//! /audit/v1/logs serves for the window (all read here over plain HTTP); a re-run adds
//! nothing, watermarks never move back and move forward only over a joined window, days Slack
//! lacks are named, last_seen is re-derived, and sources without history say so.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use chrono::{Duration, NaiveDate};
use lastseen_slack_sim::Plan;

use crate::support::{Env, count, end_of, http_get, http_get_bytes, today};

/// (user_id, ip, user_agent, date_first, date_last, count)
type Entry = (String, Option<String>, Option<String>, i64, i64, i64);

/// The window read straight from the simulator's team.accessLogs: every entry with
/// `date_last` between the start of `from` and the end of `to`.
fn api_entries(env: &Env, from: NaiveDate, to: NaiveDate) -> BTreeSet<Entry> {
    let before = end_of(to).timestamp();
    let start = from.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    let mut out = BTreeSet::new();
    for page in 1..=100 {
        let path = format!("/api/team.accessLogs?count=1000&page={page}&before={before}");
        let (status, body) = http_get(env.sim().addr(), &path, Some(env.sim().user_token()));
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["ok"], true, "{body}");
        let logins = v["logins"].as_array().unwrap();
        for l in logins.iter().filter(|l| l["date_last"].as_i64().unwrap() >= start) {
            out.insert((
                l["user_id"].as_str().unwrap().to_string(),
                l["ip"].as_str().map(str::to_string),
                l["user_agent"].as_str().map(str::to_string),
                l["date_first"].as_i64().unwrap(),
                l["date_last"].as_i64().unwrap(),
                l["count"].as_i64().unwrap(),
            ));
        }
        if page >= v["paging"]["pages"].as_i64().unwrap() {
            return out;
        }
    }
    panic!("more than 100 pages in the test window");
}

fn lake_entries(env: &Env, from: NaiveDate, to: NaiveDate) -> Vec<Entry> {
    env.sql(&format!(
        "SELECT user_id, ip, user_agent, CAST(to_unixtime(date_first) AS BIGINT) AS f, \
         CAST(to_unixtime(date_last) AS BIGINT) AS l, count AS c FROM slack_access_logs \
         WHERE dt BETWEEN DATE '{from}' AND DATE '{to}'"
    ))
    .iter()
    .map(|r| {
        (
            r["user_id"].as_str().unwrap().to_string(),
            r["ip"].as_str().map(str::to_string),
            r["user_agent"].as_str().map(str::to_string),
            r["f"].as_i64().unwrap(),
            r["l"].as_i64().unwrap(),
            r["c"].as_i64().unwrap(),
        )
    })
    .collect()
}

/// The watermarks of the newest commit-log version.
fn watermarks(env: &Env) -> serde_json::Value {
    let dir = env.lake().join("_lastseen/log");
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().path().file_stem()?.to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let text = std::fs::read_to_string(dir.join(format!("{newest:020}.json"))).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["watermarks"].clone()
}

fn backfill(env: &Env, from: NaiveDate, to: NaiveDate, sources: Option<&str>) -> std::process::Output {
    let mut c = env.cmd();
    if let Some(s) = sources {
        c.env("LASTSEEN_SLACK__SOURCES", s);
    }
    c.args(["backfill", "--from", &from.to_string(), "--to", &to.to_string()]).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn backfill_merges_exactly_the_windows_access_logs_and_rederives_last_seen() {
    let env = Env::start(200, Plan::Pro, 19);
    let d = today();
    let (from, to) = (d - Duration::days(10), d - Duration::days(3));

    // A users snapshot for today without access logs: last_seen knows nothing yet.
    env.sim().set_now(end_of(d));
    let out =
        env.cmd().env("LASTSEEN_SLACK__SOURCES", "users").args(["run", "--date", &d.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(count(&env.sql("SELECT count(last_seen_at) AS n FROM last_seen"), "n"), 0);

    let out = backfill(&env, from, to, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("users: cannot be backfilled"), "{stdout}");
    assert!(stdout.contains(&format!("last_seen re-derived for dt={d}")), "{stdout}");

    let want = api_entries(&env, from, to);
    assert!(want.len() > 20, "the window should hold a fair number of entries: {}", want.len());
    let got = lake_entries(&env, from, to);
    assert_eq!(got.len(), want.len(), "no duplicates");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    let outside =
        env.sql(&format!("SELECT count(*) AS n FROM slack_access_logs WHERE dt < DATE '{from}' OR dt > DATE '{to}'"));
    assert_eq!(count(&outside, "n"), 0, "nothing outside the window");
    assert!(watermarks(&env).as_object().unwrap().is_empty(), "a backfill does not invent a watermark");

    // last_seen of today now carries the backfilled evidence: per account, its newest date_last.
    let mut newest: BTreeMap<String, i64> = BTreeMap::new();
    for (user, _, _, _, last, _) in &want {
        let e = newest.entry(user.clone()).or_insert(*last);
        *e = (*e).max(*last);
    }
    let rows = env.sql(&format!(
        "SELECT account_id, CAST(to_unixtime(last_seen_at) AS BIGINT) AS ts FROM last_seen \
         WHERE dt = DATE '{d}' AND last_seen_at IS NOT NULL"
    ));
    let seen: BTreeMap<String, i64> =
        rows.iter().map(|r| (r["account_id"].as_str().unwrap().to_string(), r["ts"].as_i64().unwrap())).collect();
    assert_eq!(seen, newest);

    // Again: the same rows, nothing added.
    let out = backfill(&env, from, to, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let again = lake_entries(&env, from, to);
    assert_eq!(again.len(), want.len());
    assert_eq!(again.into_iter().collect::<BTreeSet<_>>(), want);

    // A daily run sets the access-log watermark; a backfill of older days leaves it where it is.
    env.run_day_ok(d);
    let wm = watermarks(&env);
    assert_eq!(wm.as_object().unwrap().len(), 1, "{wm}");
    let out = backfill(&env, from, to, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(watermarks(&env), wm, "the watermark never moves back");
    let after = lake_entries(&env, from, to);
    assert_eq!(after.len(), want.len(), "the daily run's and the backfill's rows merge without duplicates");
    assert_eq!(after.into_iter().collect::<BTreeSet<_>>(), want);

    let runs = std::fs::read_dir(env.lake().join("_lastseen/runs")).unwrap().count();
    assert_eq!(runs, 5, "two daily runs and three backfills, each with its manifest");
}

#[test]
fn backfill_without_a_history_source_says_what_cannot_be_backfilled() {
    let env = Env::start(20, Plan::Pro, 23);
    let d = today();
    let out = backfill(&env, d - Duration::days(3), d - Duration::days(1), Some("users"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("users: cannot be backfilled"), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("nothing to backfill") && err.contains("access_logs"), "{err}");
    assert!(!env.lake().join("_lastseen/log").exists(), "nothing was written");

    // A window that runs backwards is refused before anything is read.
    let out = backfill(&env, d, d - Duration::days(1), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is after --to"), "{}", text(&out.stderr));
}

/// A Grid organisation, and its org-level token: the token that reads member analytics
/// organisation-wide and the Audit Logs API (collect.rs sets Grid up the same way).
fn grid(users: usize, seed: u64) -> (Env, String) {
    let env = Env::start(users, Plan::Enterprise, seed);
    let token = env.sim().org_token().expect("a Grid simulator has an org token").to_owned();
    (env, token)
}

fn backfill_as(env: &Env, token: &str, from: NaiveDate, to: NaiveDate) -> std::process::Output {
    env.cmd()
        .env("SLACK_TOKEN", token)
        .args(["backfill", "--from", &from.to_string(), "--to", &to.to_string()])
        .output()
        .unwrap()
}

/// A JSON value as the text of one `|`-separated field; null, absent and "" are all "".
fn field(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn row(r: &serde_json::Value, cols: &[&str]) -> String {
    cols.iter().map(|c| field(&r[*c])).collect::<Vec<_>>().join("|")
}

/// The member-analytics fields compared: (the lake's column, the file's key). Rows also
/// carry the partition `dt` first and `date_claimed` (epoch seconds, 0 = none) last.
const ANALYTICS_FIELDS: [(&str, &str); 19] = [
    ("date", "date"),
    ("enterprise_id", "enterprise_id"),
    ("team_id", "team_id"),
    ("user_id", "user_id"),
    ("email", "email_address"),
    ("is_guest", "is_guest"),
    ("is_billable_seat", "is_billable_seat"),
    ("is_active", "is_active"),
    ("is_active_ios", "is_active_ios"),
    ("is_active_android", "is_active_android"),
    ("is_active_desktop", "is_active_desktop"),
    ("is_active_apps", "is_active_apps"),
    ("is_active_workflows", "is_active_workflows"),
    ("is_active_slack_connect", "is_active_slack_connect"),
    ("messages_posted", "messages_posted_count"),
    ("channel_messages_posted", "channel_messages_posted_count"),
    ("reactions_added", "reactions_added_count"),
    ("files_added", "files_added_count"),
    ("search_count", "search_count"),
];

/// The lake columns of a compared row, in order.
fn analytics_cols() -> Vec<&'static str> {
    std::iter::once("dt").chain(ANALYTICS_FIELDS.iter().map(|(lake, _)| *lake)).chain(["date_claimed"]).collect()
}

/// The day's member file straight from the simulator's admin.analytics.getFile (gunzipped
/// here), as rows in `analytics_cols()` order; `None` with Slack's error code when there is no
/// file.
fn api_analytics(env: &Env, token: &str, day: NaiveDate) -> Result<Vec<String>, String> {
    let path = format!("/api/admin.analytics.getFile?type=member&date={day}");
    let (status, body) = http_get_bytes(env.sim().addr(), &path, Some(token));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    if body.first() == Some(&b'{') {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["ok"], false, "{v}");
        return Err(field(&v["error"]));
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
    let rows = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            let claimed = r["date_claimed"].as_i64().filter(|t| *t > 0).map(|t| t.to_string()).unwrap_or_default();
            let mut out = vec![day.to_string()];
            for (_, key) in ANALYTICS_FIELDS {
                out.push(field(&r[key]));
            }
            out.push(claimed);
            out.join("|")
        })
        .collect();
    Ok(rows)
}

fn lake_analytics(env: &Env, from: NaiveDate, to: NaiveDate) -> Vec<String> {
    let names = analytics_cols();
    let cols: Vec<String> = names
        .iter()
        .map(|c| match *c {
            "date_claimed" => "CAST(to_unixtime(date_claimed) AS BIGINT) AS date_claimed".to_string(),
            c => c.to_string(),
        })
        .collect();
    env.sql(&format!(
        "SELECT {} FROM slack_member_analytics WHERE dt BETWEEN DATE '{from}' AND DATE '{to}'",
        cols.join(", ")
    ))
    .iter()
    .map(|r| row(r, &names))
    .collect()
}

const AUDIT_COLS: [&str; 9] = ["dt", "id", "date_create", "action", "user_id", "email", "team_id", "ip", "user_agent"];

/// Every login event of the collected actions with `oldest <= date_create <= latest`, straight
/// from the simulator's /audit/v1/logs, as rows in `AUDIT_COLS` order (`dt` = the UTC day of
/// `date_create`).
fn api_audit(env: &Env, token: &str, oldest: i64, latest: i64) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for action in ["user_login", "user_logout", "user_login_failed"] {
        let mut cursor = String::new();
        for _ in 0..1000 {
            let path = format!(
                "/audit/v1/logs?action={action}&oldest={oldest}&latest={latest}&limit=1000&cursor={}",
                cursor.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
            );
            let (status, body) = http_get(env.sim().addr(), &path, Some(token));
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            for e in v["entries"].as_array().unwrap() {
                let t = e["date_create"].as_i64().unwrap();
                assert!((oldest..=latest).contains(&t), "{e}");
                let dt = chrono::DateTime::from_timestamp(t, 0).unwrap().date_naive();
                out.insert(
                    [
                        dt.to_string(),
                        field(&e["id"]),
                        t.to_string(),
                        field(&e["action"]),
                        field(&e["actor"]["user"]["id"]),
                        field(&e["actor"]["user"]["email"]),
                        field(&e["context"]["location"]["id"]),
                        field(&e["context"]["ip_address"]),
                        field(&e["context"]["ua"]),
                    ]
                    .join("|"),
                );
            }
            cursor = field(&v["response_metadata"]["next_cursor"]);
            if cursor.is_empty() {
                break;
            }
        }
        assert!(cursor.is_empty(), "more than 1000 audit pages of {action}");
    }
    out
}

fn lake_audit(env: &Env) -> Vec<String> {
    env.sql(
        "SELECT dt, id, CAST(to_unixtime(date_create) AS BIGINT) AS date_create, action, user_id, email, team_id, \
         ip, user_agent FROM slack_audit_logins",
    )
    .iter()
    .map(|r| row(r, &AUDIT_COLS))
    .collect()
}

fn start_of(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp()
}

/// The lake's rows equal Slack's exactly, none twice.
fn assert_same(got: Vec<String>, want: &BTreeSet<String>, what: &str) {
    let n = got.len();
    let got: BTreeSet<String> = got.into_iter().collect();
    assert_eq!(n, got.len(), "{what}: duplicate rows");
    let missing: Vec<_> = want.difference(&got).take(3).collect();
    let extra: Vec<_> = got.difference(want).take(3).collect();
    assert!(missing.is_empty() && extra.is_empty(), "{what}: missing {missing:?}, not in Slack {extra:?}");
}

#[test]
fn grid_backfill_writes_exactly_slacks_analytics_files_and_audit_logins_once() {
    let (env, token) = grid(150, 61);
    let d = today();
    let (from, to) = (d - Duration::days(12), d - Duration::days(3));
    env.sim().set_now(end_of(d));

    // An empty lake: whatever the window holds afterwards came from the backfill.
    let out = backfill_as(&env, &token, from, to);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    for s in ["access_logs", "analytics", "audit"] {
        assert!(stdout.contains(&format!("{s}: backfilling {from} to {to}")), "{stdout}");
    }
    assert!(stdout.contains("users: cannot be backfilled"), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");

    let mut want_analytics = BTreeSet::new();
    for day in from.iter_days().take_while(|x| *x <= to) {
        let rows = api_analytics(&env, &token, day).unwrap_or_else(|e| panic!("{day}: {e}"));
        assert!(rows.len() > 100, "{day}: {} members", rows.len());
        want_analytics.extend(rows);
    }
    assert!(want_analytics.iter().any(|r| r.split('|').nth(8) == Some("true")), "someone was active");
    assert_same(lake_analytics(&env, from, to), &want_analytics, "slack_member_analytics");
    let all = env.sql("SELECT count(*) AS n, count(DISTINCT dt) AS days FROM slack_member_analytics");
    assert_eq!(count(&all, "n") as usize, want_analytics.len(), "no analytics day outside the window");
    assert_eq!(count(&all, "days"), (to - from).num_days() + 1);

    let (oldest, latest) = (start_of(from), end_of(to).timestamp());
    let want_audit = api_audit(&env, &token, oldest, latest);
    assert!(want_audit.len() > 500, "{}", want_audit.len());
    assert_same(lake_audit(&env), &want_audit, "slack_audit_logins");
    assert!(watermarks(&env).as_object().unwrap().is_empty(), "a backfill does not invent a watermark");
    let m = backfill_manifest(&env, from, to);
    assert_eq!(m["status"], "succeeded", "{m}");
    assert_eq!(m["sources"]["analytics"]["rows"].as_u64().unwrap() as usize, want_analytics.len());
    assert_eq!(m["sources"]["audit"]["rows"].as_u64().unwrap() as usize, want_audit.len());

    // The same window again: the same rows, nothing added.
    let out = backfill_as(&env, &token, from, to);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_same(lake_analytics(&env, from, to), &want_analytics, "slack_member_analytics, second backfill");
    assert_same(lake_audit(&env), &want_audit, "slack_audit_logins, second backfill");

    // A daily run collects audit events of 30 days, the window among them, and sets the
    // watermarks; a backfill of older days moves none back and adds no audit row twice.
    env.run_day_ok_as(d, &token);
    let wm = watermarks(&env);
    let org = env.sim().org().enterprise_id().unwrap().to_owned();
    for key in [format!("analytics/{org}"), format!("audit/{org}")] {
        assert!(wm.get(&key).is_some(), "{key} in {wm}");
    }
    let daily = lake_audit(&env);
    let out = backfill_as(&env, &token, from, to);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(watermarks(&env), wm, "the watermarks never move back");
    assert_same(lake_audit(&env), &daily.iter().cloned().collect(), "slack_audit_logins after the daily run");
    assert_same(lake_analytics(&env, from, to), &want_analytics, "slack_member_analytics after the daily run");
}

#[test]
fn grid_backfill_moves_watermarks_forward_only_over_joined_windows_and_names_days_slack_lacks() {
    let (env, token) = grid(60, 62);
    let d = today();
    let org = env.sim().org().enterprise_id().unwrap().to_owned();
    let (analytics_key, audit_key) = (format!("analytics/{org}"), format!("audit/{org}"));

    // A daily run six days ago: analytics stored up to its newest file (two days before it),
    // audit events up to its end.
    env.run_day_ok_as(d - Duration::days(6), &token);
    let wm = watermarks(&env);
    assert_eq!(wm[&analytics_key].as_i64(), Some(start_of(d - Duration::days(8))), "{wm}");
    let audit_wm = wm[&audit_key].as_i64().unwrap();
    assert!(audit_wm > start_of(d - Duration::days(6)) && audit_wm <= end_of(d - Duration::days(6)).timestamp());
    env.sim().set_now(end_of(d));

    // A window after a gap: the daily run must still read the gap, so nothing moves. (Stored
    // analytics end with the day eight days ago; this window starts four days ago.)
    let out = backfill_as(&env, &token, d - Duration::days(4), d - Duration::days(3));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(watermarks(&env), wm, "a window after a gap moves no watermark");
    // An older window: nothing moves back.
    let out = backfill_as(&env, &token, d - Duration::days(20), d - Duration::days(15));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(watermarks(&env), wm, "an older window moves no watermark back");

    // A window that joins what is stored and reads past it: forward, to exactly what it read.
    // It starts inside the stored audit events (the daily run read up to six days ago) and on
    // the day after the newest stored analytics day (eight days ago).
    let (from, to) = (d - Duration::days(7), d - Duration::days(3));
    let out = backfill_as(&env, &token, from, to);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let moved = watermarks(&env);
    assert_eq!(moved[&analytics_key].as_i64(), Some(start_of(to)), "{moved}");
    let newest_event = api_audit(&env, &token, start_of(from), end_of(to).timestamp())
        .iter()
        .map(|r| r.split('|').nth(2).unwrap().parse::<i64>().unwrap())
        .max()
        .unwrap();
    assert_eq!(moved[&audit_key].as_i64(), Some(newest_event), "{moved}");
    for (k, v) in wm.as_object().unwrap() {
        if k != &analytics_key && k != &audit_key {
            assert!(moved[k].as_i64() >= v.as_i64(), "{k}: {v} became {}", moved[k]);
        }
    }

    // A window reaching past Slack's 13 months: the days it no longer keeps are a warning
    // naming them, the kept ones are written exactly, and the backfill is partial (exit 3).
    // The simulator keeps analytics from 2025-05-30 on (13 months before 2026-06-30).
    let (from, to) = (date("2025-05-27"), date("2025-06-01"));
    let calls_before = env.sim().call_count("admin.analytics.getFile");
    let out = backfill_as(&env, &token, from, to);
    assert_eq!(out.status.code(), Some(3), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "warning: analytics: no data for 3 day(s) of the window, 2025-05-27 to 2025-05-29: no file (`file_not_found`"
        ),
        "{stdout}"
    );
    let m = backfill_manifest(&env, from, to);
    assert_eq!(m["status"], "partial", "{m}");
    assert_eq!(m["warnings"].as_array().unwrap().len(), 1, "{m}");
    // Newest first: three files, then three `file_not_found` days (past the 13 months Slack
    // keeps; only `data_not_available`, "before the API became available", stops the walk).
    assert_eq!(env.sim().call_count("admin.analytics.getFile") - calls_before, 6);
    let mut want = BTreeSet::new();
    for day in from.iter_days().take_while(|x| *x <= to) {
        match api_analytics(&env, &token, day) {
            Ok(rows) => {
                assert!(day >= date("2025-05-30"), "{day} should be gone");
                want.extend(rows);
            }
            Err(code) => {
                assert_eq!(code, "file_not_found", "{day}");
                assert!(day < date("2025-05-30"), "{day} should be kept");
            }
        }
    }
    assert!(!want.is_empty());
    assert_same(lake_analytics(&env, from, to), &want, "slack_member_analytics at the 13-month edge");
    let gone = env.sql(&format!(
        "SELECT count(*) AS n FROM slack_member_analytics WHERE dt < DATE '2025-05-30' AND dt >= DATE '{from}'"
    ));
    assert_eq!(count(&gone, "n"), 0);

    // Days not published yet (yesterday and today) are named the same way. The window starts
    // the day after the newest stored analytics day, which joins it: forward to the one day
    // read.
    let out = backfill_as(&env, &token, d - Duration::days(2), d);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let (y, t) = (d - Duration::days(1), d);
    assert!(
        stdout.contains(&format!("analytics: no data for 2 day(s) of the window, {y} to {t}: not published yet")),
        "{stdout}"
    );
    assert_eq!(watermarks(&env)[&analytics_key].as_i64(), Some(start_of(d - Duration::days(2))));
}

#[test]
fn listed_sources_the_plan_cannot_serve_are_skipped_with_a_warning_and_the_rest_committed() {
    let env = Env::start(30, Plan::Pro, 63);
    let d = today();
    env.sim().set_now(end_of(d));
    let out = backfill(&env, d - Duration::days(5), d - Duration::days(2), Some("access_logs,analytics,audit"));
    assert_eq!(out.status.code(), Some(3), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("analytics: skipped:") && stdout.contains("feature_not_available"), "{stdout}");
    assert!(stdout.contains("audit: skipped:") && stdout.contains("feature_not_enabled"), "{stdout}");
    let m = env.last_manifest();
    assert_eq!(m["status"], "partial");
    let warnings = m["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{m}");
    assert!(warnings[0].as_str().unwrap().starts_with("analytics skipped"), "{m}");
    assert!(warnings[1].as_str().unwrap().starts_with("audit skipped"), "{m}");
    assert_eq!(m["sources"]["analytics"]["status"], "skipped", "{m}");
    assert_eq!(m["sources"]["access_logs"]["status"], "collected", "{m}");
    assert!(count(&env.sql("SELECT count(*) AS n FROM slack_access_logs"), "n") > 0);
    for t in ["slack_member_analytics", "slack_audit_logins"] {
        let n = env.sql(&format!("SELECT count(*) AS n FROM {t}"));
        assert_eq!(count(&n, "n"), 0, "{t}");
    }
}

/// The manifest of the backfill of `from..=to` (run ids have whole seconds, so the newest file
/// name is not always the newest run).
fn backfill_manifest(env: &Env, from: NaiveDate, to: NaiveDate) -> serde_json::Value {
    let window = serde_json::json!({"backfill": {"from": from.to_string(), "to": to.to_string()}});
    let mut found: Vec<serde_json::Value> = std::fs::read_dir(env.lake().join("_lastseen/runs"))
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .filter(|m: &serde_json::Value| m["kind"] == window)
        .collect();
    assert_eq!(found.len(), 1, "one backfill of {from} to {to}");
    found.pop().unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}
