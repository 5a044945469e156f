//! The main job end to end: several daily runs, then reports compared with ground truth.

use chrono::Duration;
use lastseen_slack_sim::Plan;

use crate::support::{Env, count, end_of, today};

#[test]
fn dormant_report_equals_ground_truth_at_two_thresholds_and_two_days() {
    let env = Env::start(400, Plan::Pro, 7);
    let days = [today() - Duration::days(2), today() - Duration::days(1), today()];
    for d in days {
        env.run_day_ok(d);
    }
    for (as_of, arg) in [(today(), None), (today() - Duration::days(1), Some(today() - Duration::days(1)))] {
        let truth = env.sim().org().ground_truth(end_of(as_of));
        for threshold in [7, 30, 90] {
            let want = truth.dormant(threshold);
            let got = env.dormant_ids(threshold, arg);
            assert!(!want.is_empty(), "ground truth should have dormant accounts at {threshold} days");
            assert_eq!(got, want, "dormant accounts as of {as_of}, threshold {threshold}");
        }
    }
    // The thresholds must actually discriminate, or the comparison above proves little.
    let truth = env.sim().org().ground_truth(end_of(today()));
    assert!(truth.dormant(7).len() > truth.dormant(90).len());
}

#[test]
fn raw_tables_hold_exactly_the_simulators_accounts() {
    let env = Env::start(250, Plan::Pro, 11);
    env.run_day_ok(today());
    let d = today();
    let rows = env
        .sql(&format!("SELECT count(*) AS n, count(DISTINCT user_id) AS ids FROM slack_users WHERE dt = DATE '{d}'"));
    let accounts = env.sim().org().accounts();
    assert_eq!(count(&rows, "n") as usize, accounts.len());
    assert_eq!(count(&rows, "ids") as usize, accounts.len());

    // last_seen per account equals the ground truth's last access, to the second.
    let truth = env.sim().org().ground_truth(end_of(d));
    let rows = env.sql(&format!(
        "SELECT account_id, CAST(to_unixtime(last_seen_at) AS BIGINT) AS ts FROM last_seen WHERE dt = DATE '{d}' ORDER BY account_id"
    ));
    assert_eq!(rows.len(), truth.accounts.len());
    for r in rows {
        let id = r["account_id"].as_str().unwrap();
        let acct = truth.accounts.iter().find(|a| a.id == id).unwrap_or_else(|| panic!("{id} not in ground truth"));
        assert_eq!(r["ts"].as_i64(), acct.last_access.map(|t| t.timestamp()), "last_seen of {id}");
    }
}

#[test]
fn free_plan_skips_access_logs_with_a_warning_and_exit_code_3() {
    let env = Env::start(60, Plan::Free, 3);
    let out = env.run_day(today());
    assert_eq!(out.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("access_logs skipped") && stdout.contains("paid_only"), "{stdout}");
    // The users snapshot is still committed.
    let rows = env.sql("SELECT count(*) AS n FROM slack_users");
    assert_eq!(count(&rows, "n") as usize, env.sim().org().accounts().len());
    // A report over that day says its "never seen" rows are unobserved, not proven dormant.
    let out = env.cmd().args(["report", "dormant", "--days", "30"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no activity source was available") && stderr.contains("paid_only"), "{stderr}");
}

/// `lastseen demo --okta`: Slack and an Okta organisation of the same people through the same
/// daily runs. Every Okta user of the simulator's ground truth is an `okta` account of the last
/// day, the printed per-app figures are the lake's, and some Slack accounts' latest use is an
/// Okta SSO into Slack.
#[test]
fn demo_with_okta_runs_both_apps_and_its_okta_accounts_equal_the_ground_truth() {
    use lastseen_okta_sim::{OktaOrg, OktaOrgSpec};
    use lastseen_slack_sim::{Org, OrgSpec};

    let (users, seed) = (150, 9);
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo");
    let out = assert_cmd::Command::cargo_bin("lastseen")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["demo", "--okta", "--users", &users.to_string(), "--runs", "2", "--seed", &seed.to_string()])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();

    // The organisations the demo generated: the same specs give the same organisations.
    let day = chrono::Utc::now().date_naive();
    let slack = Org::generate(&OrgSpec::new(seed, users, Plan::Pro, day, 120));
    let okta = OktaOrg::generate(&OktaOrgSpec::from_slack(&slack, seed));
    let truth = okta.ground_truth(end_of(day), None);
    let mut expected: Vec<String> = truth.users.iter().map(|u| u.id.clone()).collect();
    expected.sort();
    assert!(expected.len() > users / 2, "{} Okta users", expected.len());

    let sql = |q: &str| -> Vec<serde_json::Value> {
        let out = assert_cmd::Command::cargo_bin("lastseen")
            .unwrap()
            .env_clear()
            .args(["sql", "--format", "json", "--lake"])
            .arg(&out_dir)
            .arg(q)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        crate::support::parse_json_lines(&out.stdout)
    };
    let got: Vec<String> =
        sql(&format!("SELECT account_id FROM accounts WHERE app = 'okta' AND dt = DATE '{day}' ORDER BY account_id"))
            .iter()
            .map(|r| r["account_id"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(got, expected, "the demo's Okta accounts are the simulator's users");

    let live = |app: &str| {
        count(
            &sql(&format!(
                "SELECT count(*) AS n FROM accounts WHERE app = '{app}' AND dt = DATE '{day}' AND status <> 'deactivated'"
            )),
            "n",
        )
    };
    let line = stdout.lines().find(|l| l.starts_with("Dormant accounts as of")).expect("the per-app summary");
    // "… (okta: D of N, slack: D of N)": N is the app's live accounts of the day.
    for app in ["okta", "slack"] {
        let at = line.find(&format!("{app}: ")).unwrap_or_else(|| panic!("{app} in {line:?}")) + app.len() + 2;
        let figures: Vec<&str> = line[at..].split([',', ')']).next().unwrap().split(" of ").collect();
        assert_eq!(figures.get(1).and_then(|n| n.parse::<i64>().ok()), Some(live(app)), "{app} in {line:?}");
    }
    let via_okta = count(
        &sql(&format!(
            "SELECT count(*) AS n FROM last_seen WHERE app = 'slack' AND dt = DATE '{day}' AND last_seen_source = 'okta_sso'"
        )),
        "n",
    );
    assert!(via_okta > 0);
    assert!(stdout.contains(&format!("latest evidence of use for {via_okta} Slack accounts")), "{stdout}");
}
