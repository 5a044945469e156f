//! The Slack token never appears in logs (at the most verbose level), output or lake files.

use lastseen_slack_sim::Plan;

use crate::support::{Env, files_under, today};

#[test]
fn token_is_never_logged_or_written() {
    let env = Env::start(50, Plan::Pro, 13);
    let token = env.sim().user_token().to_string();
    env.sim().set_now(crate::support::end_of(today()));
    let out = env.cmd().env("RUST_LOG", "trace").args(["-vv", "run", "--date", &today().to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().count() > 20, "expected verbose logs, got: {stderr}");
    assert!(!stderr.contains(&token) && !String::from_utf8_lossy(&out.stdout).contains(&token));
    // The secret part of the token must not leak either (e.g. with the prefix stripped).
    let secret_part = token.rsplit('-').next().unwrap();
    assert!(secret_part.len() >= 8 && !stderr.contains(secret_part));
    for f in files_under(&env.lake()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!bytes.windows(secret_part.len()).any(|w| w == secret_part.as_bytes()), "token in {}", f.display());
    }

    // A rejected token: the error names the problem, not the token.
    let out = env.cmd().env("SLACK_TOKEN", "xoxp-wrong-0123456789abcdef").args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid_auth"), "{stderr}");
    assert!(!stderr.contains("0123456789abcdef"), "{stderr}");
}
