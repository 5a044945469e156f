//! End-to-end tests of the public loading API: layering, error attribution and the example.

use std::time::Duration;

use super::*;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn load(text: &str) -> Result<Config> {
    Config::from_toml_str(text, "lastseen.toml", no_env())
}

fn err(text: &str) -> ConfigError {
    load(text).expect_err("config should be rejected")
}

#[test]
fn defaults() {
    let c = Config::from_toml_str("", "defaults", no_env()).unwrap();
    assert_eq!(c.origin, "defaults");
    assert_eq!(c.storage.url.scheme(), "file");
    assert_eq!(c.storage.url.to_file_path().unwrap(), std::env::current_dir().unwrap().join("lastseen-data"));
    assert!(c.storage.options.is_empty());
    let s = &c.slack;
    assert_eq!(s.api_url.as_str(), "https://slack.com/api/");
    assert_eq!(s.token, TokenSource::Env("SLACK_TOKEN".into()));
    assert_eq!(s.sources, Source::ALL.to_vec());
    assert!(s.auto_sources && !s.gov);
    assert_eq!(s.users_page_size, 200);
    assert_eq!(s.access_logs_page_size, 1000);
    assert_eq!(s.access_logs_overlap, Duration::from_secs(86_400));
    assert_eq!(s.request_timeout, Duration::from_secs(60));
    assert_eq!(s.concurrency, 4);
    assert_eq!(
        s.retry,
        RetryConfig {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            min_retry_after: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(15 * 60),
            rate_limit_budget: Duration::from_secs(30 * 60),
        }
    );
    assert_eq!(s.run_deadline, Duration::from_secs(5 * 3600));
    assert!(!s.allow_custom_hosts);
    assert!(s.rate_limits.enabled);
    assert_eq!(s.rate_limits.per_minute, [1, 20, 50, 100]);
    assert_eq!(s.rate_limits.per_minute(2), 20);
    assert_eq!(c.reports.dormant_days, 90);
    assert_eq!(c.lake.max_snapshot_drop, Some(0.2));
    assert!(c.lake.retention.is_empty());
}

#[test]
fn example_parses_to_the_defaults() {
    let example = Config::from_toml_str(EXAMPLE, "example.toml", no_env()).unwrap();
    let defaults = Config::from_toml_str("", "example.toml", no_env()).unwrap();
    assert_eq!(example, defaults);
}

#[test]
fn example_s3_block_is_valid_when_uncommented() {
    let text = EXAMPLE
        .replace("url = \"./lastseen-data\"", "")
        .replace("# url = \"s3://", "url = \"s3://")
        .replace("# aws_region", "aws_region")
        .replace("# aws_endpoint", "aws_endpoint")
        .replace("# aws_allow_http", "aws_allow_http");
    let c = Config::from_toml_str(&text, "example.toml", no_env()).unwrap();
    assert_eq!(c.storage.url.as_str(), "s3://my-bucket/lastseen");
    assert_eq!(c.storage.options["aws_region"], "eu-west-1");
    assert_eq!(c.storage.options["aws_endpoint"], "http://127.0.0.1:9000");
    assert_eq!(c.storage.options["aws_allow_http"], "true");
}

#[test]
fn unknown_key_in_file_is_named() {
    let e = err("[slack]\napi_urll = \"https://x\"\n");
    assert_eq!(e.field(), Some("slack.api_urll"));
    let msg = e.to_string();
    assert!(msg.starts_with("config error in lastseen.toml: field `slack.api_urll`"), "{msg}");

    let e = err("[slak]\n");
    assert_eq!(e.field(), Some("slak"));
    let e = err("[slack.retry]\nmax = 1\n");
    assert_eq!(e.field(), Some("slack.retry.max"));
}

#[test]
fn unknown_key_via_env_names_the_variable() {
    let e = Config::from_toml_str("", "defaults", env(&[("LASTSEEN_SLACK__TOKN", "x")])).unwrap_err();
    assert_eq!(e.field(), Some("slack.tokn"));
    assert!(e.to_string().contains("LASTSEEN_SLACK__TOKN"), "{e}");

    let e = Config::from_toml_str("", "defaults", env(&[("LASTSEEN_NOPE__X", "1")])).unwrap_err();
    assert!(e.to_string().contains("LASTSEEN_NOPE__X"), "{e}");
}

#[test]
fn cli_variables_without_double_underscore_are_ignored() {
    let c = Config::from_toml_str(
        "",
        "defaults",
        env(&[
            ("LASTSEEN_CONFIG", "/etc/lastseen.toml"),
            ("LASTSEEN_LOG", "debug"),
            ("LASTSEEN_LOG_FORMAT", "json"),
            ("LASTSEEN_LAKE", "s3://elsewhere/x"),
            ("SLACK_TOKEN", "xoxp-not-config"),
        ]),
    )
    .unwrap();
    assert_eq!(c.storage.url.scheme(), "file");
}

#[test]
fn wrong_type_names_the_field() {
    let e = err("[slack]\nusers_page_size = \"lots\"\n");
    assert_eq!(e.field(), Some("slack.users_page_size"));
    let e = err("[slack.rate_limits]\nenabled = \"yes\"\n");
    assert_eq!(e.field(), Some("slack.rate_limits.enabled"));
    let e = err("[slack]\nsources = [\"users\", 3]\n");
    assert_eq!(e.field(), Some("slack.sources[1]"));
    let e = err("storage = 5\n");
    assert_eq!(e.field(), Some("storage"));
    let e = err("[slack]\nrequest_timeout = 60\n");
    assert_eq!(e.field(), Some("slack.request_timeout"));
    assert!(e.to_string().contains("duration string"), "{e}");
    let e = err("[reports]\ndormant_days = 1.5\n");
    assert!(e.to_string().contains("expected an integer"), "{e}");
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let e = err("[storage]\nurl = \n");
    match &e {
        ConfigError::Parse { origin, message } => {
            assert_eq!(origin, "lastseen.toml");
            assert!(message.contains("line 2"), "{message}");
            assert!(message.contains("column"), "{message}");
        }
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[test]
fn range_checks() {
    let cases: &[(&str, &str, &str)] = &[
        ("[slack]\nusers_page_size = 5000", "slack.users_page_size", "between 1 and 1000 (got 5000)"),
        ("[slack]\nusers_page_size = 0", "slack.users_page_size", "between 1 and 1000 (got 0)"),
        ("[slack]\naccess_logs_page_size = 1001", "slack.access_logs_page_size", "(got 1001)"),
        ("[slack]\nconcurrency = 0", "slack.concurrency", "between 1 and 64"),
        ("[slack]\nconcurrency = 65", "slack.concurrency", "between 1 and 64"),
        ("[slack.retry]\nmax_attempts = 0", "slack.retry.max_attempts", "at least 1 (got 0)"),
        ("[slack.retry]\nmax_attempts = -3", "slack.retry.max_attempts", "at least 1"),
        (
            "[slack.retry]\ninitial_backoff = \"10s\"\nmax_backoff = \"5s\"",
            "slack.retry.max_backoff",
            "at least slack.retry.initial_backoff",
        ),
        (
            "[slack.retry]\nmin_retry_after = \"1h\"",
            "slack.retry.max_retry_after",
            "at least slack.retry.min_retry_after",
        ),
        ("[slack.retry]\nmax_backoff = \"soon\"", "slack.retry.max_backoff", "not a duration"),
        ("[slack]\nrequest_timeout = \"0s\"", "slack.request_timeout", "greater than zero"),
        ("[slack.rate_limits]\ntier3 = 0", "slack.rate_limits.tier3", "at least 1"),
        ("[reports]\ndormant_days = 0", "reports.dormant_days", "between 1 and 3650"),
        ("[reports]\ndormant_days = 3651", "reports.dormant_days", "(got 3651)"),
        ("[lake]\nmax_snapshot_drop = 1.5", "lake.max_snapshot_drop", "between 0 and 1"),
        ("[lake]\nmax_snapshot_drop = -0.1", "lake.max_snapshot_drop", "between 0 and 1"),
        ("[lake]\nmax_snapshot_drop = nan", "lake.max_snapshot_drop", "between 0 and 1"),
        ("[lake.retention]\nslack_users = 0", "lake.retention.slack_users", "between 1 and 36500"),
        ("[lake.retention]\nslack_acces_logs = 400", "lake.retention.slack_acces_logs", "known tables: slack_users"),
        ("[slack]\nsources = [\"users\", \"audits\"]", "slack.sources[1]", "unknown source `audits`"),
        ("[slack]\nsources = [\"auto\", \"users\"]", "slack.sources", "stands alone"),
        ("[slack]\nscim_url = \"http://example.com/scim\"", "slack.scim_url", "https"),
        ("[slack]\nsources = [\"users\", \"users\"]", "slack.sources[1]", "listed twice"),
        ("[slack]\nsources = []", "slack.sources", "at least one"),
        ("[slack]\ntoken_env = \"xoxp-123\"", "slack.token_env", "not an environment variable"),
    ];
    for (text, field, needle) in cases {
        let e = err(text);
        assert_eq!(e.field(), Some(*field), "{text}: {e}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
    let e = err("[slack]\nusers_page_size = 5000");
    assert_eq!(
        e.to_string(),
        "config error in lastseen.toml: field `slack.users_page_size`: must be between 1 and 1000 (got 5000)"
    );
}

#[test]
fn in_range_edges_are_accepted() {
    let c = load(
        "[slack]\nusers_page_size = 1\naccess_logs_page_size = 1000\nconcurrency = 64\n\
         [slack.retry]\nmax_attempts = 1\ninitial_backoff = \"2s\"\nmax_backoff = \"2s\"\n\
         [reports]\ndormant_days = 3650\n",
    )
    .unwrap();
    assert_eq!(c.slack.users_page_size, 1);
    assert_eq!(c.slack.concurrency, 64);
    assert_eq!(c.slack.retry.max_attempts, 1);
    assert_eq!(c.reports.dormant_days, 3650);
}

#[test]
fn relative_storage_path_becomes_absolute_file_url() {
    let c = load("[storage]\nurl = \"data/lake\"\n").unwrap();
    assert_eq!(c.storage.url.scheme(), "file");
    assert_eq!(c.storage.url.to_file_path().unwrap(), std::env::current_dir().unwrap().join("data").join("lake"));
}

#[test]
fn s3_url_and_options_are_kept() {
    let c = load(
        "[storage]\nurl = \"s3://my-bucket/lastseen\"\n[storage.options]\n\
         aws_region = \"eu-west-1\"\nAWS_ALLOW_HTTP = true\n",
    )
    .unwrap();
    assert_eq!(c.storage.url.as_str(), "s3://my-bucket/lastseen");
    assert_eq!(c.storage.options["aws_region"], "eu-west-1");
    assert_eq!(c.storage.options["aws_allow_http"], "true");
}

#[test]
fn bad_storage_url_names_the_field() {
    let e = load("[storage]\nurl = \"ftp://x/y\"\n").unwrap_err();
    assert_eq!(e.field(), Some("storage.url"));
    assert!(e.to_string().contains("unsupported scheme"), "{e}");
}

#[test]
fn api_url_must_be_https_unless_loopback() {
    let e = err("[slack]\napi_url = \"http://slack.com/api\"\n");
    assert_eq!(e.field(), Some("slack.api_url"));
    assert!(e.to_string().contains("https"), "{e}");

    let c = load("[slack]\napi_url = \"http://127.0.0.1:8089/api\"\n").unwrap();
    assert_eq!(c.slack.api_url.as_str(), "http://127.0.0.1:8089/api/");
    assert_eq!(c.slack.api_url.port(), Some(8089));
}

#[test]
fn env_override_beats_file() {
    let file = "[storage]\nurl = \"/srv/lake\"\n[reports]\ndormant_days = 60\n";
    let c = Config::from_toml_str(
        file,
        "lastseen.toml",
        env(&[
            ("LASTSEEN_STORAGE__URL", "s3://bucket/prefix"),
            ("LASTSEEN_REPORTS__DORMANT_DAYS", "30"),
            ("LASTSEEN_SLACK__API_URL", "http://localhost:9999"),
            ("LASTSEEN_SLACK__RETRY__MAX_ATTEMPTS", "3"),
            ("LASTSEEN_SLACK__RATE_LIMITS__ENABLED", "false"),
            ("LASTSEEN_SLACK__SOURCES", "[\"users\"]"),
            ("LASTSEEN_SLACK__ACCESS_LOGS_OVERLAP", "2h"),
            ("LASTSEEN_STORAGE__OPTIONS__AWS_ENDPOINT", "http://127.0.0.1:9000"),
            ("LASTSEEN_STORAGE__OPTIONS__AWS_ALLOW_HTTP", "true"),
        ]),
    )
    .unwrap();
    assert_eq!(c.storage.url.as_str(), "s3://bucket/prefix");
    assert_eq!(c.reports.dormant_days, 30);
    assert_eq!(c.slack.api_url.as_str(), "http://localhost:9999/");
    assert_eq!(c.slack.retry.max_attempts, 3);
    assert!(!c.slack.rate_limits.enabled);
    assert_eq!(c.slack.sources, vec![Source::Users]);
    assert_eq!(c.slack.access_logs_overlap, Duration::from_secs(7200));
    assert_eq!(c.storage.options["aws_endpoint"], "http://127.0.0.1:9000");
    assert_eq!(c.storage.options["aws_allow_http"], "true");
    assert_eq!(c.origin, "lastseen.toml");
}

#[test]
fn comma_separated_sources_from_env() {
    let c = Config::from_toml_str("", "defaults", env(&[("LASTSEEN_SLACK__SOURCES", "access_logs, users")])).unwrap();
    assert_eq!(c.slack.sources, vec![Source::AccessLogs, Source::Users]);
}

#[test]
fn env_sourced_errors_name_the_variable() {
    let e = Config::from_toml_str(
        "[storage]\nurl = \"/srv/lake\"\n",
        "lastseen.toml",
        env(&[("LASTSEEN_STORAGE__URL", "ftp://nope/x")]),
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("storage.url"));
    assert!(e.to_string().contains("LASTSEEN_STORAGE__URL"), "{e}");

    let e = Config::from_toml_str("", "defaults", env(&[("LASTSEEN_REPORTS__DORMANT_DAYS", "9999")])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "config error in environment variable LASTSEEN_REPORTS__DORMANT_DAYS: \
         field `reports.dormant_days`: must be between 1 and 3650 (got 9999)"
    );

    let e = Config::from_toml_str("", "defaults", env(&[("LASTSEEN_SLACK__USERS_PAGE_SIZE", "many")])).unwrap_err();
    assert_eq!(e.field(), Some("slack.users_page_size"));
    assert!(e.to_string().contains("LASTSEEN_SLACK__USERS_PAGE_SIZE"), "{e}");

    // A file error next to an unrelated override is still blamed on the file.
    let e = Config::from_toml_str(
        "[slack]\nconcurrency = 100\n",
        "lastseen.toml",
        env(&[("LASTSEEN_SLACK__API_URL", "https://slack.com/api")]),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("config error in lastseen.toml:"), "{e}");
}

#[test]
fn token_file_and_token_env_are_exclusive() {
    let c = load("[slack]\ntoken_file = \"/run/secrets/slack-token\"\n").unwrap();
    assert_eq!(c.slack.token, TokenSource::File("/run/secrets/slack-token".into()));
    assert_eq!(c.slack.token.describe(), "file /run/secrets/slack-token");

    let c = load("[slack]\ntoken_env = \"MY_SLACK\"\n").unwrap();
    assert_eq!(c.slack.token, TokenSource::Env("MY_SLACK".into()));

    let e = err("[slack]\ntoken_env = \"A\"\ntoken_file = \"/x\"\n");
    assert_eq!(e.field(), Some("slack.token_file"));
}

#[test]
fn load_reads_the_given_file_and_requires_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.toml");
    std::fs::write(&path, "[reports]\ndormant_days = 45\n").unwrap();
    let c = Config::load(Some(&path)).unwrap();
    assert_eq!(c.reports.dormant_days, 45);
    assert_eq!(c.origin, path.display().to_string());

    let missing = dir.path().join("missing.toml");
    let e = Config::load(Some(&missing)).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("missing.toml"), "{e}");
}

#[test]
fn with_storage_url_overrides_and_validates() {
    let c = load("").unwrap();
    let c = c.with_storage_url("memory://").unwrap();
    assert_eq!(c.storage.url.as_str(), "memory://");
    let e = c.with_storage_url("s3://").unwrap_err();
    assert_eq!(e.field(), Some("storage.url"));
    assert!(parse_storage_url("gs://b/p").is_ok());
    assert_eq!(parse_storage_url("nope://x").unwrap_err().field(), Some("storage.url"));
}

#[test]
fn debug_shows_no_secrets() {
    let c = Config::from_toml_str(
        "[storage]\nurl = \"s3://b/p\"\n[storage.options]\naws_secret_access_key = \"hunter2\"\n",
        "lastseen.toml",
        env(&[("SLACK_TOKEN", "xoxp-super-secret")]),
    )
    .unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("xoxp"), "{dbg}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
    assert!(dbg.contains("SLACK_TOKEN"), "{dbg}");

    let token = secrecy::SecretString::from("xoxp-super-secret".to_owned());
    assert!(!format!("{token:?}").contains("xoxp"));
}

#[test]
fn lake_guard_and_retention_from_file_and_env() {
    let c = load("[lake]\nmax_snapshot_drop = 1\n[lake.retention]\nslack_access_logs = 400\n").unwrap();
    assert_eq!(c.lake.max_snapshot_drop, Some(1.0));
    assert_eq!(c.lake.retention.get("slack_access_logs"), Some(&400));
    let c = Config::from_toml_str(
        "",
        "lastseen.toml",
        env(&[("LASTSEEN_LAKE__MAX_SNAPSHOT_DROP", "0.05"), ("LASTSEEN_LAKE__RETENTION__LAST_SEEN", "30")]),
    )
    .unwrap();
    assert_eq!(c.lake.max_snapshot_drop, Some(0.05));
    assert_eq!(c.lake.retention.get("last_seen"), Some(&30));
    let e = Config::from_toml_str("", "lastseen.toml", env(&[("LASTSEEN_LAKE__RETENTION__USERS", "30")])).unwrap_err();
    assert_eq!(e.field(), Some("lake.retention.users"));
    assert!(e.to_string().contains("LASTSEEN_LAKE__RETENTION__USERS"), "{e}");
}

#[test]
fn gov_switches_the_default_api_url_and_scim_version() {
    let c = Config::from_toml_str("[slack]\ngov = true\n", "t", no_env()).unwrap();
    assert_eq!(c.slack.api_url.as_str(), "https://slack-gov.com/api/");
    assert_eq!(c.slack.scim_base().as_str(), "https://api.slack-gov.com/scim/v1/");
    // An explicit api_url (the simulator's GovSlack paths) wins; SCIM stays v1.
    let c = Config::from_toml_str(
        "",
        "t",
        env(&[("LASTSEEN_SLACK__GOV", "true"), ("LASTSEEN_SLACK__API_URL", "http://127.0.0.1:8/gov/api")]),
    )
    .unwrap();
    assert_eq!(c.slack.scim_base().as_str(), "http://127.0.0.1:8/gov/scim/v1/");
    assert_eq!(c.slack.audit_base().as_str(), "http://127.0.0.1:8/gov/audit/v1/");
    let c = Config::from_toml_str("[slack]\nsources = \"auto\"\n", "t", no_env()).unwrap();
    assert!(c.slack.auto_sources);
    let c = Config::from_toml_str("[lake]\nstage_memory_mb = 8\n", "t", no_env()).unwrap();
    assert_eq!(c.lake.stage_memory, 8 << 20);
}

#[test]
fn identities_and_correlation_defaults() {
    let c = load("").unwrap();
    let i = &c.identities;
    assert_eq!(i.url, None);
    assert_eq!(i.format, None);
    assert_eq!((i.delimiter, i.list_separator), (b',', ';'));
    assert_eq!(i.columns.identity_id, "identity_id");
    assert_eq!(i.columns.alternate_emails.as_deref(), Some("alternate_email"));
    assert_eq!(i.columns.username, None);
    let names: Vec<String> = c.correlation.rules.iter().map(CorrelationRule::name).collect();
    assert_eq!(
        names,
        ["scim_external_id=identity_id", "employee_id=employee_id", "email=email", "email=alternate_emails"]
    );
    assert!(c.correlation.rules[2].normalize.contains(&Normalize::DomainAliases));
    assert!(c.correlation.domain_aliases.is_empty());
}

#[test]
fn identities_and_correlation_from_file() {
    let c = load(
        "[identities]\nurl = \"s3://hr/export.jsonl\"\ndelimiter = \"\\\\t\"\n[identities.columns]\nidentity_id = \"id\"\nemail = \"\"\n\
         [correlation]\noverrides = \"/etc/owners.csv\"\nrules = [{ account = \"username\", identity = \"username\", normalize = [\"case\"] }]\n\
         [correlation.domain_aliases]\n\"Corp.Example\" = \"example.com\"\n",
    )
    .unwrap();
    assert_eq!(c.identities.url.as_ref().unwrap().as_str(), "s3://hr/export.jsonl");
    assert_eq!(c.identities.effective_format(c.identities.url.as_ref().unwrap()), Some(IdentityFormat::Jsonl));
    assert_eq!(c.identities.delimiter, b'\t');
    assert_eq!(c.identities.columns.identity_id, "id");
    assert_eq!(c.identities.columns.email, None);
    assert_eq!(c.correlation.rules.len(), 1);
    assert_eq!(c.correlation.domain_aliases["corp.example"], "example.com");
    assert_eq!(c.correlation.overrides.as_ref().unwrap().as_str(), "file:///etc/owners.csv");
}

#[test]
fn bad_identity_and_correlation_settings_name_the_field() {
    for (text, field) in [
        ("[identities]\nformat = \"xml\"\n", "identities.format"),
        ("[identities]\nurl = \"/tmp/export.xlsx\"\n", "identities.format"),
        ("[identities]\ndelimiter = \";;\"\n", "identities.delimiter"),
        ("[identities.columns]\nidentity_id = \"\"\n", "identities.columns.identity_id"),
        ("[identities.columns]\nemail = \"identity_id\"\n", "identities.columns.email"),
        ("[correlation]\nrules = [{ account = \"mail\", identity = \"email\" }]\n", "correlation.rules[0].account"),
        (
            "[correlation]\nrules = [{ account = \"email\", identity = \"email\", normalize = [\"soundex\"] }]\n",
            "correlation.rules[0].normalize[0]",
        ),
        (
            "[correlation.domain_aliases]\n\"a.example\" = \"b.example\"\n\"b.example\" = \"c.example\"\n",
            "correlation.domain_aliases.\"a.example\"",
        ),
        ("[correlation.domain_aliases]\n\"nodot\" = \"b.example\"\n", "correlation.domain_aliases.\"nodot\""),
    ] {
        let e = err(text);
        assert_eq!(e.field(), Some(field), "{text}: {e}");
    }
    let e = err("[correlation]\nrules = [{ account = \"mail\", identity = \"email\" }]\n");
    assert!(e.to_string().contains("scim_external_id"), "{e}");
}

#[test]
fn the_token_goes_only_to_slack_hosts() {
    for (text, field) in [
        ("[slack]\napi_url = \"https://attacker.example/api\"\n", "slack.api_url"),
        ("[slack]\napi_url = \"https://10.0.0.5/api\"\n", "slack.api_url"),
        ("[slack]\napi_url = \"https://169.254.169.254/\"\n", "slack.api_url"),
        ("[slack]\nscim_url = \"https://scim.example/scim\"\n", "slack.scim_url"),
        ("[slack]\nallow_custom_hosts = true\naudit_url = \"https://169.254.169.254/\"\n", "slack.audit_url"),
    ] {
        assert_eq!(err(text).field(), Some(field), "{text}");
    }
    let e = Config::from_toml_str("", "lastseen.toml", env(&[("LASTSEEN_SLACK__AUDIT_URL", "https://x.example/")]))
        .unwrap_err();
    assert_eq!(e.field(), Some("slack.audit_url"));
    assert!(e.to_string().contains("LASTSEEN_SLACK__AUDIT_URL"), "{e}");

    // The opt-in works from the file, never from the environment.
    let c = load("[slack]\nallow_custom_hosts = true\nscim_url = \"https://proxy.example/scim\"\n").unwrap();
    assert_eq!(c.slack.scim_base().as_str(), "https://proxy.example/scim/v2/");
    assert_eq!(c.slack.token_hosts(), ["slack.com", "proxy.example", "api.slack.com"]);
    let e = Config::from_toml_str(
        "",
        "lastseen.toml",
        env(&[("LASTSEEN_SLACK__ALLOW_CUSTOM_HOSTS", "true"), ("LASTSEEN_SLACK__AUDIT_URL", "https://x.example/")]),
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("slack.allow_custom_hosts"));
    assert!(e.to_string().contains("LASTSEEN_SLACK__ALLOW_CUSTOM_HOSTS"), "{e}");
}

#[test]
fn run_deadline_is_bounded_by_a_day_not_by_the_old_lease() {
    assert_eq!(load("[slack]\nrun_deadline = \"10m\"\n").unwrap().slack.run_deadline, Duration::from_secs(600));
    // The lease is renewed by a heartbeat: a deadline longer than the old 6 h lease is fine.
    assert_eq!(load("[slack]\nrun_deadline = \"8h\"\n").unwrap().slack.run_deadline, Duration::from_secs(8 * 3600));
    for bad in ["25h", "0s"] {
        let e = err(&format!("[slack]\nrun_deadline = \"{bad}\"\n"));
        assert_eq!(e.field(), Some("slack.run_deadline"), "{bad}");
        assert!(e.to_string().contains("at most 24h") && !e.to_string().contains("6h"), "{e}");
    }
}

#[test]
fn lake_keep_window_and_lease_ttl_defaults_overrides_and_bounds() {
    let c = load("").unwrap();
    assert_eq!(c.lake.keep_superseded, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(c.lake.lease_ttl, Duration::from_secs(120));
    let c = load("[lake]\nkeep_superseded = \"12h\"\nlease_ttl = \"30s\"\n").unwrap();
    assert_eq!(c.lake.keep_superseded, Duration::from_secs(12 * 3600));
    assert_eq!(c.lake.lease_ttl, Duration::from_secs(30));
    let c = Config::from_toml_str("", "t", env(&[("LASTSEEN_LAKE__KEEP_SUPERSEDED", "0s")])).unwrap();
    assert_eq!(c.lake.keep_superseded, Duration::ZERO);
    for (text, field) in [
        ("[lake]\nlease_ttl = \"10ms\"\n", "lake.lease_ttl"),
        ("[lake]\nkeep_superseded = \"a week\"\n", "lake.keep_superseded"),
    ] {
        let e = load(text).unwrap_err();
        assert_eq!(e.field(), Some(field), "{e}");
    }
}

/// The `[okta]` block of the example, uncommented (single `# ` lines; `## ` lines explain).
fn example_with_okta() -> String {
    let (head, tail) = EXAMPLE.split_once("# [okta]\n").expect("the example has an [okta] block");
    let mut text = format!("{head}[okta]\n");
    for line in tail.lines() {
        if line.starts_with("## ") {
            continue;
        }
        text.push_str(line.strip_prefix("# ").unwrap_or(line));
        text.push('\n');
    }
    text
}

#[test]
fn okta_is_absent_by_default_and_the_example_block_gives_its_defaults() {
    assert_eq!(load("").unwrap().okta, None);
    let c = Config::from_toml_str(&example_with_okta(), "example.toml", no_env()).unwrap();
    let o = c.okta.expect("[okta] uncommented");
    assert_eq!(o.org_url.as_str(), "https://acme.okta.com/");
    assert_eq!(o.credentials, OktaCredentials::ApiToken(TokenSource::Env("OKTA_API_TOKEN".into())));
    assert_eq!(o.sources, [OktaSource::Users, OktaSource::Logs]);
    assert_eq!((o.users_page_size, o.logs_page_size, o.logs_first_run_days), (200, 1000, 90));
    assert_eq!((o.logs_overlap, o.logs_lag), (Duration::from_secs(3600), Duration::from_secs(300)));
    assert_eq!(o.event_types, ["user.session.start", "user.authentication.sso"]);
    assert_eq!(o.apps.get("slack").map(Vec::as_slice), Some(&["Slack".to_owned()][..]));
    assert_eq!(o.retry, c.slack.retry, "the example's retry block is Slack's defaults");
    // The shortest [okta] gives the same settings as the example block.
    let short = load("[okta]\norg_url = \"https://acme.okta.com\"\n").unwrap().okta.unwrap();
    assert_eq!(short, o);
    assert_eq!(short.mapped_app("0oa1", Some("Slack")), Some("slack"));
    assert_eq!(short.mapped_app("0oa1", Some("Zoom")), None);
    assert_eq!(short.token_host(), "acme.okta.com");
}

#[test]
fn okta_settings_are_checked_and_name_their_field() {
    let base = "[okta]\norg_url = \"https://acme.okta.com\"\n";
    for (extra, field, says) in [
        ("users_page_size = 500\n", "okta.users_page_size", "between 1 and 200"),
        ("logs_page_size = 0\n", "okta.logs_page_size", "between 1 and 1000"),
        ("logs_first_run_days = 120\n", "okta.logs_first_run_days", "between 1 and 90"),
        ("sources = [\"users\", \"audit\"]\n", "okta.sources[1]", "unknown Okta source"),
        ("sources = [\"users\", \"users\"]\n", "okta.sources[1]", "twice"),
        ("event_types = [\"user.session.start\\\" or x\"]\n", "okta.event_types[0]", "not an Okta event type"),
        ("token_env = \"00abc-token\"\n", "okta.token_env", "not an environment variable name"),
        ("token_env = \"A\"\ntoken_file = \"/x\"\n", "okta.token_file", "only one"),
        ("logs_lag = \"soon\"\n", "okta.logs_lag", "not a duration"),
        ("[okta.apps]\nslack = [\"Slack\"]\nzoom = [\"Slack\"]\n", "okta.apps.zoom", "already stands for app `slack`"),
        ("[okta.apps]\nSlack = [\"Slack\"]\n", "okta.apps.Slack", "not a lastseen app name"),
        ("[okta.retry]\nmax_attempts = 0\n", "okta.retry.max_attempts", "at least 1"),
        ("colour = \"blue\"\n", "okta.colour", "unknown field"),
    ] {
        let e = err(&format!("{base}{extra}"));
        assert_eq!(e.field(), Some(field), "{extra}: {e}");
        assert!(e.to_string().contains(says), "{extra}: {e}");
    }
    let e = err("[okta]\nusers_page_size = 10\n");
    assert_eq!(e.field(), Some("okta.org_url"));
    let e = err("[okta]\norg_url = \"http://acme.okta.com\"\n");
    assert!(e.to_string().contains("https"), "{e}");
    // A custom domain: only with the opt-in, and only from the file.
    let custom = "[okta]\norg_url = \"https://login.acme.example\"\n";
    assert!(err(custom).to_string().contains("allow_custom_hosts"));
    assert!(load(&format!("{custom}allow_custom_hosts = true\n")).is_ok());
    let via_env = Config::from_toml_str(custom, "lastseen.toml", env(&[("LASTSEEN_OKTA__ALLOW_CUSTOM_HOSTS", "true")]));
    assert!(via_env.unwrap_err().to_string().contains("only be set in the configuration file"));
    // Env overrides reach [okta] like any section.
    let c = Config::from_toml_str(base, "lastseen.toml", env(&[("LASTSEEN_OKTA__LOGS_PAGE_SIZE", "250")])).unwrap();
    assert_eq!(c.okta.unwrap().logs_page_size, 250);
}

#[test]
fn okta_token_errors_name_okta_and_never_the_value() {
    let src = TokenSource::Env("LASTSEEN_TEST_SURELY_UNSET_OKTA_4242".into());
    let msg = src.load_as(OKTA_API_TOKEN).unwrap_err().to_string();
    assert!(msg.starts_with("okta token:") && msg.contains("Okta API token"), "{msg}");
    assert!(!msg.contains("xoxp"), "{msg}");
}

#[test]
fn okta_oauth_with_a_private_key_is_an_alternative_to_the_api_token() {
    let base = "[okta]\norg_url = \"https://acme.okta.com\"\n";
    let o = load(&format!("{base}client_id = \"0oa1b2c3\"\nprivate_key_file = \"/run/secrets/okta.pem\"\n"))
        .unwrap()
        .okta
        .unwrap();
    assert_eq!(
        o.credentials,
        OktaCredentials::PrivateKeyJwt {
            client_id: "0oa1b2c3".into(),
            private_key: "/run/secrets/okta.pem".into(),
            key_id: None,
            scopes: vec!["okta.users.read".into(), "okta.logs.read".into()],
        }
    );
    assert!(o.credentials.describe().contains("0oa1b2c3") && o.credentials.describe().contains("okta.pem"));
    for (extra, field, says) in [
        ("client_id = \"0oa1\"\n", "okta.private_key_file", "required"),
        ("client_id = \"0oa1\"\nprivate_key_file = \"/k\"\ntoken_env = \"T\"\n", "okta.client_id", "not both"),
        ("private_key_file = \"/k\"\n", "okta.private_key_file", "needs okta.client_id"),
        ("client_id = \"0oa 1\"\nprivate_key_file = \"/k\"\n", "okta.client_id", "not an Okta client id"),
        ("client_id = \"0oa1\"\nprivate_key_file = \"/k\"\nscopes = [\"users.read\"]\n", "okta.scopes", "Okta scopes"),
    ] {
        let e = err(&format!("{base}{extra}"));
        assert_eq!(e.field(), Some(field), "{extra}: {e}");
        assert!(e.to_string().contains(says), "{extra}: {e}");
    }
}
