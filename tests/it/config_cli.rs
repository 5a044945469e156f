//! Configuration errors and the command line's contract (exit codes, help).

use lastseen_slack_sim::Plan;

use crate::support::Env;

#[test]
fn validate_exits_78_naming_the_bad_field() {
    let env = Env::start(10, Plan::Pro, 1);
    std::fs::write(env.dir.path().join("bad.toml"), "[slack]\nusers_page_size = 5000\n").unwrap();
    let out = env.cmd().args(["--config", "bad.toml", "validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("slack.users_page_size"), "{stderr}");

    std::fs::write(env.dir.path().join("typo.toml"), "[storage]\nurll = \"x\"\n").unwrap();
    let out = env.cmd().args(["--config", "typo.toml", "run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("urll"));

    let out = env.cmd().args(["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn missing_token_is_a_config_error_that_names_the_variable() {
    let env = Env::start(10, Plan::Pro, 1);
    let out = env.cmd().env_remove("SLACK_TOKEN").args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SLACK_TOKEN"));
}

#[test]
fn report_before_any_run_explains_what_to_do() {
    let env = Env::start(10, Plan::Pro, 1);
    let out = env.cmd().args(["report", "dormant"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lastseen run"));
}

#[test]
fn help_documents_commands_and_env_variables() {
    let env = Env::start(10, Plan::Pro, 1);
    let out = env.cmd().args(["--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["demo", "run", "sql", "report", "validate", "LASTSEEN_CONFIG", "LASTSEEN_LAKE", "78"] {
        assert!(help.contains(needle), "--help lacks {needle}: {help}");
    }
    let out = env.cmd().args(["run", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--dry-run"));
}
