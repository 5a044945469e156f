//! The pipeline against a real S3-compatible server (moto or s3s-fs, started by `.ci/run`).
//!
//! Runs when `LASTSEEN_TEST_S3_ENDPOINT` names the server (and `LASTSEEN_TEST_S3_BUCKET` an
//! existing bucket, default `lastseen-test`); otherwise it says it was skipped.

use chrono::Duration;
use lastseen_slack_sim::Plan;

use crate::support::{Env, count, end_of, today};

#[test]
fn pipeline_on_s3_commits_reruns_and_reports_like_on_disk() {
    let Ok(endpoint) = std::env::var("LASTSEEN_TEST_S3_ENDPOINT") else {
        eprintln!("skipped: set LASTSEEN_TEST_S3_ENDPOINT to run the S3 end-to-end test");
        return;
    };
    let bucket = std::env::var("LASTSEEN_TEST_S3_BUCKET").unwrap_or_else(|_| "lastseen-test".into());
    let prefix = format!("it-{}", std::process::id());
    let env = Env::start(150, Plan::Pro, 21);
    let s3 = |mut c: assert_cmd::Command| {
        c.env("LASTSEEN_LAKE", format!("s3://{bucket}/{prefix}"))
            .env("LASTSEEN_STORAGE__OPTIONS__AWS_ENDPOINT", &endpoint)
            .env("LASTSEEN_STORAGE__OPTIONS__AWS_ALLOW_HTTP", "true")
            .env("LASTSEEN_STORAGE__OPTIONS__AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "testsecret");
        c
    };
    let d0 = today() - Duration::days(1);
    for d in [d0, today(), today()] {
        env.sim().set_now(end_of(d));
        let out = s3(env.cmd()).args(["run", "--date", &d.to_string()]).output().unwrap();
        assert!(out.status.success(), "run {d} on S3 failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let sql = |q: &str| {
        let out = s3(env.cmd()).args(["sql", q, "--format", "json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        crate::support::parse_json_lines(&out.stdout)
    };
    let users = sql(&format!("SELECT count(*) AS n FROM slack_users WHERE dt = DATE '{}'", today()));
    assert_eq!(count(&users, "n") as usize, env.sim().org().accounts().len());
    let dups = sql(
        "SELECT count(*) AS n FROM (SELECT dt, team_id, user_id, ip, user_agent, date_first FROM slack_access_logs \
         GROUP BY dt, team_id, user_id, ip, user_agent, date_first HAVING count(*) > 1)",
    );
    assert_eq!(count(&dups, "n"), 0);
    let out = s3(env.cmd()).args(["report", "dormant", "--days", "30", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: std::collections::BTreeSet<String> = crate::support::parse_json_lines(&out.stdout)
        .iter()
        .map(|r| r["account_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, env.sim().org().ground_truth(end_of(today())).dormant(30));

    // The Delta logs on S3: the `deltalake` package reads every table exactly as lastseen does
    // (DuckDB's delta extension would need its httpfs extension, which is not on PyPI).
    if let Some(python) = crate::delta::python() {
        let script = crate::delta::checker(env.dir.path());
        let options = serde_json::json!({
            "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "testsecret",
        });
        let mut jobs = Vec::new();
        for t in crate::delta::table_names(|| s3(env.cmd())) {
            let file = env.dir.path().join(format!("{t}.parquet"));
            crate::delta::export(|| s3(env.cmd()), &t, None, &file);
            jobs.push(serde_json::json!({
                "table_url": format!("s3://{bucket}/{prefix}/{t}"), "expected": file, "delta_version": null,
                "engines": ["deltalake"], "storage_options": options,
            }));
        }
        let jobs_file = env.dir.path().join("jobs.json");
        std::fs::write(&jobs_file, serde_json::to_vec(&jobs).unwrap()).unwrap();
        let out = crate::delta::run_checker(&python, &script, &["compare", jobs_file.to_str().unwrap()]);
        eprintln!("Delta logs on S3 read by deltalake:\n{out}");
    } else {
        eprintln!("Delta check on S3 skipped: set LASTSEEN_TEST_PYTHON");
    }
    eprintln!("S3 end-to-end test ran against {endpoint} (bucket {bucket}, prefix {prefix})");
}
