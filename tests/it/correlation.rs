//! Identities and correlation end to end: the binary reads the simulator's HR export, and
//! `account_identity`, `last_seen` and the quarantine are compared with the simulator's ground
//! truth.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use lastseen_slack_sim::Plan;

use crate::support::{Env, end_of, today};

fn s(v: &serde_json::Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn rows_by_account(env: &Env, q: &str) -> BTreeMap<String, serde_json::Value> {
    env.sql(q).into_iter().map(|r| (r["account_id"].as_str().unwrap().to_string(), r)).collect()
}

#[test]
fn account_identity_and_last_seen_equal_ground_truth() {
    let env = Env::start(600, Plan::Pro, 21);
    env.configure_identities(|c| c, "");
    let days: Vec<NaiveDate> = (0..3).rev().map(|k| today() - Duration::days(k)).collect();
    for d in &days {
        env.run_day_ok(*d);
    }
    let d = today();
    let truth = env.sim().org().ground_truth(end_of(d));
    let got = rows_by_account(
        &env,
        &format!(
            "SELECT account_id, account_type, match_status, identity_id, rule, matched_value, candidates \
             FROM account_identity WHERE dt = DATE '{d}'"
        ),
    );
    assert_eq!(got.len(), truth.accounts.len());
    let mut matched = 0;
    for acc in &truth.accounts {
        let r = &got[&acc.id];
        let status = r["match_status"].as_str().unwrap();
        if let Some(owner) = truth.owners.get(&acc.id) {
            assert_eq!((status, s(&r["identity_id"])), ("matched", Some(owner.clone())), "{}: {r}", acc.id);
            matched += 1;
            // Records on the alias domain only match through the alias normalisation.
            assert_eq!(r["rule"], "email=email", "{}", acc.id);
            // The matched value is the account's address, normalised.
            assert_eq!(s(&r["matched_value"]), acc.email.as_ref().map(|e| e.to_lowercase()), "{}", acc.id);
        } else if truth.ambiguous.contains(&acc.id) {
            assert_eq!(status, "ambiguous", "{}: {r}", acc.id);
            assert!(r["identity_id"].is_null());
            let cands = r["candidates"].as_str().unwrap();
            assert_eq!(cands.split(';').count(), 2, "{cands}");
            assert!(cands.starts_with("HR") && cands.contains(";HX"), "{cands}");
            assert_eq!(r["rule"], "email=alternate_emails");
        } else if matches!(acc.kind.as_str(), "bot" | "app" | "slackbot") {
            assert_eq!(status, "service", "{}: {r}", acc.id);
        } else {
            assert_eq!(status, "orphan", "{}: {r}", acc.id);
        }
    }
    assert!(matched > 300 && truth.ambiguous.len() > 3, "{matched} {}", truth.ambiguous.len());
    let orphans: BTreeSet<String> = env
        .sql(&format!(
            "SELECT i.account_id FROM account_identity i JOIN accounts a ON a.dt = i.dt AND a.account_id = i.account_id \
             WHERE i.dt = DATE '{d}' AND i.match_status = 'orphan' AND a.status <> 'deactivated'"
        ))
        .iter()
        .map(|r| r["account_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(orphans, truth.orphans);

    // last_seen on each of the three as-of dates equals the true last access, and the state
    // says never_seen exactly where there is none.
    for day in &days {
        let truth = env.sim().org().ground_truth(end_of(*day));
        let got = rows_by_account(
            &env,
            &format!(
                "SELECT account_id, CAST(to_unixtime(last_seen_at) AS BIGINT) AS ts, last_seen_source, state, listed \
                 FROM last_seen WHERE dt = DATE '{day}'"
            ),
        );
        assert_eq!(got.len(), truth.accounts.len(), "{day}");
        for acc in &truth.accounts {
            let r = &got[&acc.id];
            assert_eq!(r["ts"].as_i64(), acc.last_access.map(|t| t.timestamp()), "{day} {}", acc.id);
            let want_state = match acc.last_access {
                None => "never_seen",
                Some(t) if t.date_naive() <= *day - Duration::days(90) => "dormant",
                Some(_) => "active",
            };
            assert_eq!(r["state"], want_state, "{day} {}", acc.id);
            assert_eq!(r["listed"], true);
            if acc.last_access.is_some() {
                assert_eq!(r["last_seen_source"], "access_logs");
            }
        }
    }

    // The incremental snapshot equals a full rebuild from activity_daily.
    let rt = &env.rt;
    let lake = lastseen_lake::Lake::open(&url::Url::from_file_path(env.lake()).unwrap(), &Default::default()).unwrap();
    let rebuilt = rt.block_on(lastseen_transform::rebuild_last_seen(&lake, d, 90, chrono::Utc::now())).unwrap();
    let mut rebuilt_rows = Vec::new();
    // `lastseen sql --format json` writes every column, nulls included.
    let mut w = datafusion::arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut rebuilt_rows);
    for b in &rebuilt {
        let b = b.project(&[1, 2, 3, 4, 5, 7, 8, 9, 10]).unwrap();
        w.write(&b).unwrap();
    }
    w.finish().unwrap();
    let mut rebuilt: Vec<serde_json::Value> = crate::support::parse_json_lines(&rebuilt_rows);
    let mut incremental = env.sql(&format!(
        "SELECT workspace_id, account_id, last_seen_at, last_seen_source, first_seen_at, active_days_30, active_days_90, state, listed \
         FROM last_seen WHERE dt = DATE '{d}'"
    ));
    let key = |r: &serde_json::Value| r["account_id"].as_str().unwrap().to_string();
    rebuilt.sort_by_key(key);
    incremental.sort_by_key(key);
    assert_eq!(rebuilt.len(), incremental.len());
    for (a, b) in rebuilt.iter().zip(&incremental) {
        assert_eq!(a, b);
    }
}

#[test]
fn overrides_decide_and_bad_rows_are_quarantined() {
    let env = Env::start(300, Plan::Pro, 5);
    let truth = env.sim().org().ground_truth(end_of(today()));
    let orphan = truth.orphans.iter().next().unwrap().clone();
    let ambiguous = truth.ambiguous.iter().next().unwrap().clone();
    let bot = truth.accounts.iter().find(|a| a.kind == "bot").unwrap().id.clone();
    let owners = env.dir.path().join("owners.csv");
    std::fs::write(
        &owners,
        format!(
            "account_id,identity_id,service_owner_id,reason\n{orphan},HR0000001,,shared inbox of the founder\n\
             {ambiguous},,,left before HR existed\n{bot},,HR0000002,deploy bot\n"
        ),
    )
    .unwrap();
    env.configure_identities(
        |c| {
            // One line too few fields, one unparseable date, one without an id.
            c + "HR9999991,broken@x.example\nHR9999992,late@x.example,,1,L L,Eng,,terminated,yesterday,employee\n,noid@x.example,,2,N N,Eng,,active,,employee\n"
        },
        &format!("overrides = {:?}\n", owners.display().to_string()),
    );
    let out = env.run_day(today());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("3 of") && log.contains("rows quarantined"), "{log}");

    let got = rows_by_account(
        &env,
        &format!(
            "SELECT account_id, match_status, identity_id, rule, matched_value, service_owner_id FROM account_identity WHERE dt = DATE '{}'",
            today()
        ),
    );
    assert_eq!(got[&orphan]["match_status"], "matched");
    assert_eq!(got[&orphan]["identity_id"], "HR0000001");
    assert_eq!(got[&orphan]["rule"], "override");
    assert_eq!(got[&orphan]["matched_value"], "shared inbox of the founder");
    assert_eq!(got[&ambiguous]["match_status"], "no_owner");
    assert_eq!(got[&bot]["match_status"], "service");
    assert_eq!(got[&bot]["service_owner_id"], "HR0000002");

    let lines = env.dir.path().join("identities.csv");
    let total = std::fs::read_to_string(&lines).unwrap().lines().count() as i64;
    let q = env.sql(&format!(
        "SELECT source_line, identity_id, reason FROM identities_quarantine WHERE dt = DATE '{}' ORDER BY source_line",
        today()
    ));
    let got_lines: Vec<i64> = q.iter().map(|r| r["source_line"].as_i64().unwrap()).collect();
    assert_eq!(got_lines, [total - 2, total - 1, total]);
    assert!(q[0]["reason"].as_str().unwrap().contains("2 fields"));
    assert!(q[1]["reason"].as_str().unwrap().contains("`yesterday` is not a date"));
    assert!(q[2]["reason"].as_str().unwrap().contains("no identity id"));
    let n = env.sql(&format!("SELECT count(*) AS n FROM identities WHERE dt = DATE '{}'", today()));
    assert_eq!(n[0]["n"].as_i64().unwrap(), total - 1 - 3);
}

#[test]
fn an_unusable_identity_file_fails_the_run_naming_the_problem() {
    let env = Env::start(60, Plan::Pro, 9);
    env.configure_identities(|c| c.replacen("identity_id,", "person,", 1), "");
    let out = env.run_day(today());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("identities.csv") && err.contains("identities.columns.identity_id"), "{err}");
    // Nothing derived was published for the day.
    let n = env.sql("SELECT count(*) AS n FROM last_seen");
    assert_eq!(n[0]["n"], 0);
}

#[test]
fn free_plan_accounts_are_unknown_not_never_seen() {
    let env = Env::start(60, Plan::Free, 3);
    let out = env.run_day(today());
    assert_eq!(out.status.code(), Some(3));
    let rows =
        env.sql(&format!("SELECT state, count(*) AS n FROM last_seen WHERE dt = DATE '{}' GROUP BY state", today()));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["state"], "unknown");
}
