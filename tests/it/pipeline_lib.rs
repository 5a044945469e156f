//! The orchestration as a library: `lastseen::pipeline::run_day` called in-process (no binary)
//! with the apps the registry builds (`lastseen_ingest::apps`), against the simulator and a
//! temporary local lake, then the lake read back and compared row by row with the simulator's
//! ground truth. The run knows sources only through the app-agnostic interface: the manifest
//! keys each source by its name and records its app, and a required source that cannot run
//! refuses the run naming app and source.

use std::collections::BTreeSet;

use lastseen::PipelineError;
use lastseen::pipeline::{DayRun, run_day};
use lastseen_lake::{RunStatus, SourceStatus};
use lastseen_slack_sim::{FaultKind, FaultRule, FaultWhen, OrgSpec, Plan, RateLimits, SimConfig};
use secrecy::SecretString;

use crate::support::{Env, end_of, today};

/// The configuration of an in-process run against `env`'s simulator, with `toml` on top.
fn config(env: &Env, toml: &str) -> lastseen_config::Config {
    let overrides = [
        ("LASTSEEN_SLACK__API_URL".to_owned(), env.sim().api_url()),
        ("LASTSEEN_SLACK__RATE_LIMITS__ENABLED".to_owned(), "false".to_owned()),
    ];
    lastseen_config::Config::from_toml_str(toml, "in-process test", overrides)
        .unwrap()
        .with_storage_url(&env.lake().display().to_string())
        .unwrap()
}

/// The registry's apps for `cfg`, with the simulator's token.
fn apps(env: &Env, cfg: &lastseen_config::Config) -> Vec<Box<dyn lastseen_ingest::App>> {
    vec![lastseen_ingest::apps::slack(cfg, SecretString::from(env.sim().user_token().to_owned())).unwrap()]
}

#[test]
fn run_day_in_process_commits_exactly_the_simulators_accounts_and_their_last_seen() {
    let env = Env::start(150, Plan::Pro, 23);
    let d = today();
    env.sim().set_now(end_of(d));
    let cfg = config(&env, "");
    let lake = lastseen_lake::Lake::open(&cfg.storage.url, &cfg.storage.options).unwrap();
    let run = DayRun { config: &cfg, lake: &lake, date: d, dry_run: false, progress: None, cancel: None };
    let outcome = env.rt.block_on(run_day(run, apps(&env, &cfg))).unwrap();
    let m = &outcome.manifest;
    assert_eq!(m.status, RunStatus::Succeeded, "warnings: {:?}", m.warnings);
    assert!(m.lake_version.is_some());

    // One manifest entry per configured source, under its own name, each with its app.
    let want_sources: BTreeSet<String> = cfg.slack.sources.iter().map(|s| s.to_string()).collect();
    assert_eq!(m.sources.keys().cloned().collect::<BTreeSet<_>>(), want_sources);
    for (name, rep) in &m.sources {
        assert_eq!(rep.app, "slack", "the app of source {name}");
    }
    assert_eq!(m.sources["users"].status, Some(SourceStatus::Collected));

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

#[test]
fn a_required_source_the_configuration_leaves_out_refuses_the_run_naming_app_and_source() {
    let env = Env::start(20, Plan::Pro, 5);
    let cfg = config(&env, "[slack]\nsources = [\"access_logs\"]\n");
    let lake = lastseen_lake::Lake::open(&cfg.storage.url, &cfg.storage.options).unwrap();
    let run = DayRun { config: &cfg, lake: &lake, date: today(), dry_run: false, progress: None, cancel: None };
    let err = env.rt.block_on(run_day(run, apps(&env, &cfg))).unwrap_err();
    assert!(matches!(err, PipelineError::Refused(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("slack.sources") && msg.contains("the slack source `users` is required"), "{msg}");
    // Refused before anything was read or written.
    assert_eq!(env.sim().call_count("auth.test"), 0);
    assert!(!env.lake().join("_lastseen").exists(), "nothing was written");
}

#[test]
fn a_required_source_that_cannot_run_refuses_the_run_naming_app_and_source() {
    // Every users.list call answers `missing_scope`: the users source is unavailable.
    let no_users =
        FaultRule::new("users.list", FaultWhen::EveryNth(1), FaultKind::OkFalse { error: "missing_scope".into() });
    let env = Env::start_with(SimConfig {
        org: OrgSpec::new(9, 20, Plan::Pro, today(), 30),
        rate_limits: RateLimits::Off,
        faults: vec![no_users],
        conditions: Default::default(),
    });
    let cfg = config(&env, "");
    let lake = lastseen_lake::Lake::open(&cfg.storage.url, &cfg.storage.options).unwrap();
    let run = DayRun { config: &cfg, lake: &lake, date: today(), dry_run: false, progress: None, cancel: None };
    let err = env.rt.block_on(run_day(run, apps(&env, &cfg))).unwrap_err();
    assert!(matches!(err, PipelineError::Refused(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("the slack source `users` cannot run") && msg.contains("lacks a required scope"), "{msg}");
    // Nothing was committed: the lake has no version.
    assert!(lake_versions(&env).is_empty(), "nothing was committed");
}

/// The committed lake versions (files of the commit log).
fn lake_versions(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.lake().join("_lastseen/log"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}
