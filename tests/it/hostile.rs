//! Hostile configuration and hostile data through the binary: the token only goes to Slack,
//! SQL cannot write, table output cannot drive the terminal, files are owner-only and never
//! written through a planted symlink, numeric flags are bounded.

use std::path::Path;

use lastseen_slack_sim::Plan;

use crate::support::{Env, files_under, today};

#[test]
fn slack_urls_that_would_send_the_token_elsewhere_are_refused_with_78() {
    let env = Env::start(10, Plan::Pro, 1);
    let refused = |var: &str, value: &str, field: &str| {
        let out = env.cmd().env(var, value).args(["validate"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{var}={value}: {stderr}");
        assert!(stderr.contains(field) && stderr.contains(var), "{var}={value}: {stderr}");
    };
    refused("LASTSEEN_SLACK__API_URL", "https://attacker.example/api", "slack.api_url");
    refused("LASTSEEN_SLACK__API_URL", "https://10.0.0.5/api", "slack.api_url");
    refused("LASTSEEN_SLACK__API_URL", "https://169.254.169.254/", "slack.api_url");
    refused("LASTSEEN_SLACK__AUDIT_URL", "https://x.example/", "slack.audit_url");
    refused("LASTSEEN_SLACK__SCIM_URL", "https://[fd00:ec2::254]/scim", "slack.scim_url");

    // The opt-in counts only from the file.
    let out = env
        .cmd()
        .env("LASTSEEN_SLACK__ALLOW_CUSTOM_HOSTS", "true")
        .env("LASTSEEN_SLACK__AUDIT_URL", "https://x.example/")
        .args(["validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("slack.allow_custom_hosts"));
    std::fs::write(env.dir.path().join("proxy.toml"), "[slack]\nallow_custom_hosts = true\n").unwrap();
    let out = env
        .cmd()
        .env("LASTSEEN_SLACK__AUDIT_URL", "https://audit-proxy.example/audit/v1")
        .args(["--config", "proxy.toml", "validate"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("audit-proxy.example") && stdout.contains("allow_custom_hosts = true"), "{stdout}");
    // Not even the opt-in sends the token to the metadata service.
    let out = env
        .cmd()
        .env("LASTSEEN_SLACK__AUDIT_URL", "https://169.254.169.254/")
        .args(["--config", "proxy.toml", "validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));

    // The hosts a run sends the token to are printed by validate and logged at start.
    let out = env.cmd().args(["validate"]).output().unwrap();
    let sim = url::Url::parse(&env.sim().api_url()).unwrap();
    let host = format!("{}:{}", sim.host_str().unwrap(), sim.port().unwrap());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("token sent to: {host}")));
    let out = env.run_day(today());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let logged =
        stderr.lines().find(|l| l.contains("the Slack token is sent only to these hosts")).expect("hosts logged");
    assert!(logged.contains(&host), "{logged}");
}

fn lake_files(env: &Env) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    files_under(&env.lake()).into_iter().map(|f| (f.clone(), std::fs::read(&f).unwrap())).collect()
}

#[test]
fn sql_the_shell_and_reports_cannot_write() {
    let env = Env::start(10, Plan::Pro, 2);
    env.run_day_ok(today());
    let before = lake_files(&env);
    let target = env.dir.path().join("x.csv");
    let copy = format!("COPY (SELECT 1) TO '{}'", target.display());
    for (sql, needle) in [
        (copy.as_str(), "read-only"),
        ("CREATE TABLE t AS SELECT 1", "read-only"),
        ("CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/hostname'", "read-only"),
        ("INSERT INTO slack_users SELECT * FROM slack_users", "read-only"),
        ("DROP TABLE slack_users", "read-only"),
        ("SET datafusion.execution.batch_size = 1", "read-only"),
        ("SELECT * FROM '/etc/hostname'", "hostname"),
    ] {
        let out = env.cmd().args(["sql", sql]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{sql}");
        assert!(stderr.contains(needle), "{sql}: {stderr}");
        if needle == "read-only" {
            assert_eq!(out.status.code(), Some(2), "{sql}: {stderr}");
        }
    }
    // The shell is the same engine.
    let out = env.cmd().args(["sql"]).write_stdin(format!("{copy};\nSELECT 1 AS one;\n")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
    assert!(!target.exists(), "COPY wrote {}", target.display());
    assert_eq!(lake_files(&env), before, "the lake changed");
}

#[test]
fn table_output_shows_control_characters_as_escapes() {
    let env = Env::start(10, Plan::Pro, 3);
    env.run_day_ok(today());
    let sql =
        "SELECT 'a' || chr(27) || ']52;c;ZXZpbA==' || chr(7) || 'b' AS cell, display_name FROM slack_users LIMIT 3";
    let out = env.cmd().args(["sql", sql, "--format", "table"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.iter().any(|b| *b == 0x1b || *b == 0x07), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("a\\x1b]52;c;ZXZpbA==\\x07b"));
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn lake_and_exports_are_owner_only_and_symlinks_are_not_followed() {
    let env = Env::start(10, Plan::Pro, 4);
    env.run_day_ok(today());
    let files = files_under(&env.lake());
    assert!(files.len() > 5);
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        assert_eq!(mode(f.parent().unwrap()), 0o700, "{}", f.parent().unwrap().display());
    }

    let out_file = env.dir.path().join("dormant.csv");
    let out = env.cmd().args(["report", "dormant", "--days", "30", "--output"]).arg(&out_file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&out_file), 0o600);

    // An export onto a planted symlink fails and leaves the link's target untouched.
    let victim = env.dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let link = env.dir.path().join("planted.csv");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = env.cmd().args(["report", "dormant", "--days", "30", "--output"]).arg(&link).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    let pack = env.dir.path().join("pack");
    let out = env
        .cmd()
        .args(["report", "dormant", "--days", "30", "--split-by", "workspace", "--format", "csv", "--output"])
        .arg(&pack)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&pack), 0o700);
    for f in files_under(&pack) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

#[cfg(unix)]
#[test]
fn tables_output_refuses_a_planted_symlink_and_is_owner_only() {
    let env = Env::start(10, Plan::Pro, 6);
    env.run_day_ok(today());
    let victim = env.dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let link = env.dir.path().join("tables.csv");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = env.cmd().args(["tables", "--format", "csv", "--output"]).arg(&link).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());

    let file = env.dir.path().join("tables-ok.csv");
    let out = env.cmd().args(["tables", "--format", "csv", "--output"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&file), 0o600);
    assert!(std::fs::read_to_string(&file).unwrap().lines().any(|l| l.starts_with("slack_users,")));
}

#[test]
fn numeric_flags_are_bounded() {
    let env = Env::start(10, Plan::Pro, 5);
    env.run_day_ok(today());
    for days in ["4000000000", "0", "-1", "99999999999"] {
        let out = env.cmd().args(["report", "dormant", "--days", days]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--days {days}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    for args in [
        ["demo", "--history-days", "4000000000"],
        ["demo", "--dormant-days", "4000000000"],
        ["simulate", "--history-days", "4000000000"],
    ] {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
