//! The orchestration as a library: `lastseen::pipeline::run_day` called in-process (no binary)
//! against the simulator and a temporary local lake, then the lake read back and compared row
//! by row with the simulator's ground truth.

use std::collections::BTreeSet;

use lastseen::pipeline::{DayRun, run_day};
use lastseen_lake::RunStatus;
use lastseen_slack_sim::Plan;
use secrecy::SecretString;

use crate::support::{Env, end_of, today};

#[test]
fn run_day_in_process_commits_exactly_the_simulators_accounts_and_their_last_seen() {
    let env = Env::start(150, Plan::Pro, 23);
    let d = today();
    env.sim().set_now(end_of(d));
    let overrides = [
        ("LASTSEEN_SLACK__API_URL".to_owned(), env.sim().api_url()),
        ("LASTSEEN_SLACK__RATE_LIMITS__ENABLED".to_owned(), "false".to_owned()),
    ];
    let cfg = lastseen_config::Config::from_toml_str("", "in-process test", overrides)
        .unwrap()
        .with_storage_url(&env.lake().display().to_string())
        .unwrap();
    let lake = lastseen_lake::Lake::open(&cfg.storage.url, &cfg.storage.options).unwrap();
    let slack =
        lastseen_ingest::slack::sources(&cfg.slack, SecretString::from(env.sim().user_token().to_owned())).unwrap();
    let run = DayRun { config: &cfg, lake: &lake, date: d, dry_run: false, progress: None, cancel: None };
    let outcome = env.rt.block_on(run_day(run, slack)).unwrap();
    let m = &outcome.manifest;
    assert_eq!(m.status, RunStatus::Succeeded, "warnings: {:?}", m.warnings);
    assert!(m.lake_version.is_some());

    // The users snapshot holds exactly the simulator's accounts.
    let truth = env.sim().org().ground_truth(end_of(d));
    let want: BTreeSet<String> = truth.accounts.iter().map(|a| a.id.clone()).collect();
    let got: BTreeSet<String> = env
        .sql(&format!("SELECT user_id FROM slack_users WHERE dt = DATE '{d}'"))
        .iter()
        .map(|r| r["user_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, want);
    assert_eq!(m.tables["slack_users"].rows as usize, want.len());

    // last_seen per account equals the ground truth's last access, to the second.
    let rows = env.sql(&format!(
        "SELECT account_id, CAST(to_unixtime(last_seen_at) AS BIGINT) AS ts FROM last_seen WHERE dt = DATE '{d}'"
    ));
    assert_eq!(rows.len(), truth.accounts.len());
    for r in rows {
        let id = r["account_id"].as_str().unwrap();
        let acct = truth.accounts.iter().find(|a| a.id == id).unwrap_or_else(|| panic!("{id} not in ground truth"));
        assert_eq!(r["ts"].as_i64(), acct.last_access.map(|t| t.timestamp()), "last_seen of {id}");
    }
}
