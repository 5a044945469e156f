//! `lastseen backfill`: past access-log days equal what team.accessLogs itself returns for the
//! window, a re-run adds nothing, the watermark never moves back, last_seen is re-derived, and
//! sources without history say so.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use lastseen_slack_sim::Plan;

use crate::support::{Env, count, end_of, http_get, today};

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
