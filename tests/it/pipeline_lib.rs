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

/// Slack and Okta through the same doors: one in-process `run_day` with both apps (Slack's from
/// the registry, Okta's reading the simulator's clock) commits both apps' raw tables in one lake
/// version, and the derived layer answers with the Okta simulator's ground truth: every Okta
/// user, the last SSO per (user, app instance), and — on a Free Slack plan, where no Slack source
/// proves use — each Slack account's last use equal to the person's last Okta SSO into Slack.
#[test]
fn one_run_with_slack_and_okta_commits_both_apps_and_equals_both_ground_truths() {
    use lastseen_okta_sim::{OktaOrgSpec, OktaSimConfig, OktaSimulator};

    let env = Env::start(120, Plan::Free, 61);
    let csv = env.configure_identities(|c| c, "");
    let identities_toml = std::fs::read_to_string(csv.parent().unwrap().join("lastseen.toml")).unwrap();
    let d = today();
    let now = end_of(d);
    env.sim().set_now(now);
    let mut spec = OktaOrgSpec::from_slack(env.sim().org(), 7);
    // Every event published by `now` is readable at `now`, as the ground truth counts it.
    spec.late_fraction = 0.0;
    let okta = env.rt.block_on(OktaSimulator::start(OktaSimConfig::new(spec), "127.0.0.1:0".parse().unwrap())).unwrap();
    okta.set_now(now);
    let cfg = config(&env, &format!("{identities_toml}\n[okta]\norg_url = {:?}\nlogs_lag = \"0s\"\n", okta.org_url()));
    let lake = lastseen_lake::Lake::open(&cfg.storage.url, &cfg.storage.options).unwrap();
    let sim_clock = {
        let okta_now = now;
        std::sync::Arc::new(move || okta_now) as lastseen_ingest::okta::Clock
    };
    let okta_app = lastseen_ingest::okta::OktaApp::new(
        cfg.okta.as_ref().unwrap(),
        SecretString::from(okta.api_token().to_owned()),
    )
    .unwrap()
    .with_clock(sim_clock);
    let mut apps = apps(&env, &cfg);
    apps.push(Box::new(okta_app));
    let run = DayRun { config: &cfg, lake: &lake, date: d, dry_run: false, progress: None, cancel: None };
    let outcome = env.rt.block_on(run_day(run, apps)).unwrap();
    let m = &outcome.manifest;
    // Partial: Slack's paid-only sources are skipped on the Free plan, with a warning.
    assert_eq!(m.status, RunStatus::Partial, "warnings: {:?}", m.warnings);
    for name in ["okta_users", "okta_logs"] {
        assert_eq!(m.sources[name].app, "okta", "{name}");
        assert_eq!(m.sources[name].status, Some(SourceStatus::Collected), "{name}");
    }
    assert_eq!(m.sources["users"].app, "slack");

    let truth = okta.ground_truth();
    // Every Okta user of the ground truth, as an `okta` account of the day.
    let want_users: BTreeSet<String> = truth.users.iter().map(|u| u.id.clone()).collect();
    let got_users: BTreeSet<String> = env
        .sql(&format!("SELECT account_id FROM accounts WHERE app = 'okta' AND dt = DATE '{d}'"))
        .iter()
        .map(|r| r["account_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got_users, want_users);

    // The last SSO per (Okta user, app instance), to the second (`to_unixtime` gives seconds).
    let want_sso: BTreeSet<(String, String, i64)> =
        truth.sso.iter().map(|s| (s.user_id.clone(), s.app_id.clone(), s.last_sso.timestamp())).collect();
    let got_sso: BTreeSet<(String, String, i64)> = env
        .sql(&format!(
            "SELECT idp_user_id, app_instance_id, CAST(to_unixtime(last_sso_at) AS BIGINT) AS ms \
             FROM sso_last_seen WHERE dt = DATE '{d}'"
        ))
        .iter()
        .map(|r| {
            (
                r["idp_user_id"].as_str().unwrap().to_owned(),
                r["app_instance_id"].as_str().unwrap().to_owned(),
                r["ms"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(!want_sso.is_empty());
    assert_eq!(got_sso, want_sso);

    // Slack accounts whose use only Okta proves: last_seen is the person's last SSO into Slack
    // (the latest of them where two HR records, say an employee's and a contractor's, share
    // the account through an alternate address).
    let mut latest: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for s in truth.slack_sso.values() {
        if let Some(id) = &s.slack_user_id {
            let t = latest.entry(id.clone()).or_insert(i64::MIN);
            *t = (*t).max(s.last_sso.timestamp());
        }
    }
    let want_slack: BTreeSet<(String, i64)> = latest.into_iter().collect();
    let got_slack: BTreeSet<(String, i64)> = env
        .sql(&format!(
            "SELECT account_id, CAST(to_unixtime(last_seen_at) AS BIGINT) AS ms FROM last_seen \
             WHERE app = 'slack' AND dt = DATE '{d}' AND last_seen_at IS NOT NULL"
        ))
        .iter()
        .map(|r| (r["account_id"].as_str().unwrap().to_owned(), r["ms"].as_i64().unwrap()))
        .collect();
    assert!(!want_slack.is_empty());
    let only_got: Vec<_> = got_slack.difference(&want_slack).collect();
    let only_want: Vec<_> = want_slack.difference(&got_slack).collect();
    assert!(
        only_got.is_empty() && only_want.is_empty(),
        "only in the lake: {only_got:?}; only in the truth: {only_want:?}"
    );
}
