//! `lastseen daemon` as a real process against the in-process simulator: scheduled runs every
//! few seconds, /healthz and /metrics, a second instance on the same lake, catch-up of missed
//! days on start, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use lastseen_slack_sim::{FaultKind, FaultRule, FaultWhen, OrgSpec, Plan, RateLimits, SimConfig};

use crate::support::{Env, count, end_of, http_get};

/// The real UTC day: the daemon runs the day its schedule fires on.
fn real_today() -> NaiveDate {
    Utc::now().date_naive()
}

fn env_for_today(users: usize, seed: u64, faults: Vec<FaultRule>) -> Env {
    Env::start_with(SimConfig {
        org: OrgSpec::new(seed, users, Plan::Pro, real_today(), 30),
        rate_limits: RateLimits::Off,
        faults,
        conditions: Default::default(),
    })
}

/// A running daemon whose stderr (JSON log lines) is collected as it comes.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    addr: SocketAddr,
}

impl Daemon {
    fn start(env: &Env, schedule: &str, extra: &[(&str, &str)]) -> Daemon {
        let mut cmd = env.spawnable();
        cmd.arg("daemon")
            .env("LASTSEEN_DAEMON__SCHEDULE", schedule)
            .env("LASTSEEN_DAEMON__LISTEN", "127.0.0.1:0")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut d = Daemon { child, lines, log: Vec::new(), addr: "0.0.0.0:0".parse().unwrap() };
        let started = d.wait_for_log("daemon started", Duration::from_secs(60));
        let v: serde_json::Value = serde_json::from_str(&started).unwrap();
        d.addr = v["addr"].as_str().unwrap_or_else(|| panic!("no addr in {started}")).parse().unwrap();
        d
    }

    /// Waits for a log line containing `needle` (or fails with the log so far).
    fn wait_for_log(&mut self, needle: &str, within: Duration) -> String {
        if let Some(l) = self.log.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no log line with {needle:?} within {within:?}; log:\n{}", self.log.join("\n"));
    }

    fn drain_log(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path, None)
    }

    /// The value of one Prometheus sample line, e.g. `lastseen_runs_total{status="succeeded"}`.
    fn metric(&self, series: &str) -> Option<f64> {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
    }

    fn wait_for_metric(&self, series: &str, at_least: f64, within: Duration) -> f64 {
        let deadline = Instant::now() + within;
        loop {
            let v = self.metric(series).unwrap_or(0.0);
            if v >= at_least {
                return v;
            }
            assert!(Instant::now() < deadline, "{series} stayed at {v} (< {at_least}); {}", self.get("/metrics").1);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then the exit code (within `within`).
    fn terminate(&mut self, within: Duration) -> Option<i32> {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread ends with the pipe; keep what it read.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.log.push(line);
                }
                return status.code();
            }
            assert!(Instant::now() < deadline, "the daemon did not stop within {within:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed assertion must not leave the process behind.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run manifests in the lake, oldest first.
fn manifests(lake: &Path) -> Vec<serde_json::Value> {
    let dir = lake.join("_lastseen/runs");
    let paths: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => {
            entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect()
        }
        Err(_) => Vec::new(),
    };
    let mut runs: Vec<serde_json::Value> =
        paths.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect();
    // Run ids sort by start second only; runs a catch-up starts within one second need the instant.
    runs.sort_by_key(|r| r["started_at"].as_str().unwrap().parse::<chrono::DateTime<Utc>>().unwrap());
    runs
}

fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_daemon_runs_on_its_schedule_serves_health_and_metrics_and_stops_on_sigterm() {
    let env = env_for_today(60, 5, Vec::new());
    let accounts = env.sim().org().accounts().len();
    let mut d = Daemon::start(&env, "*/2 * * * * *", &[]);

    let (status, body) = d.get("/healthz");
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok", "{body}");
    assert!(health["daemon"]["schedule"].as_str().unwrap().contains("*/2 * * * * *"), "{body}");
    assert!(health["daemon"]["next_run"].is_string(), "{body}");

    // An empty lake has nothing to catch up: the first run comes from a tick.
    d.wait_for_log("scheduled run starting", Duration::from_secs(30));
    d.wait_for_metric("lastseen_runs_total{status=\"succeeded\"}", 1.0, Duration::from_secs(60));
    let m = manifests(&env.lake());
    assert!(!m.is_empty());
    assert!(m.iter().all(|r| r["status"] == "succeeded" && r["kind"] == "daily"), "{m:?}");
    assert_eq!(m[0]["date"].as_str(), Some(real_today().to_string().as_str()));

    assert_eq!(d.metric("lastseen_last_run_rows{table=\"slack_users\"}"), Some(accounts as f64));
    assert!(d.metric("lastseen_api_calls_total{app=\"slack\",source=\"users\"}").unwrap() >= 1.0);
    assert!(d.metric("lastseen_api_calls_total{app=\"slack\",source=\"access_logs\"}").unwrap() >= 1.0);
    assert_eq!(d.metric("lastseen_api_rate_limited_total{app=\"slack\",source=\"users\"}"), Some(0.0));
    assert_eq!(d.metric("lastseen_runs_total{status=\"failed\"}"), Some(0.0));
    assert!(d.metric("lastseen_last_run_duration_seconds").unwrap() > 0.0);
    let last_success = d.metric("lastseen_last_success_timestamp_seconds").unwrap();
    assert!((last_success - Utc::now().timestamp() as f64).abs() < 120.0, "{last_success}");
    let (_, body) = d.get("/healthz");
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["daemon"]["last_success"].is_string());

    assert_eq!(d.terminate(Duration::from_secs(60)), Some(0), "log:\n{}", d.log.join("\n"));
    assert!(d.log.iter().any(|l| l.contains("daemon stopped")), "{}", d.log.join("\n"));
    assert!(!crate::lake_safety::lease_held(&env.lake()), "the lease is released");
    // The lake is whole: every committed day reads back with one snapshot of the organisation.
    let rows = env.sql(&format!("SELECT count(*) AS n FROM slack_users WHERE dt = DATE '{}'", real_today()));
    assert_eq!(count(&rows, "n") as usize, accounts);
    assert_eq!(count(&env.sql("SELECT count(*) AS n FROM last_seen"), "n") as usize, accounts);
}

#[test]
fn a_second_daemon_on_the_same_lake_skips_the_overlapping_run_without_failing() {
    // Every users.list call takes 2.5 s, so each run holds the lake lease across the next tick
    // of both daemons (every 2 s, at the same instants).
    let slow = FaultRule::new("users.list", FaultWhen::EveryNth(1), FaultKind::Slow { millis: 2500 });
    let env = env_for_today(40, 9, vec![slow]);
    let mut a = Daemon::start(&env, "*/2 * * * * *", &[]);
    let mut b = Daemon::start(&env, "*/2 * * * * *", &[]);

    let skipped = "lastseen_runs_total{status=\"skipped_locked\"}";
    let deadline = Instant::now() + Duration::from_secs(90);
    while a.metric(skipped).unwrap_or(0.0) + b.metric(skipped).unwrap_or(0.0) < 2.0 {
        assert!(
            Instant::now() < deadline,
            "no instance skipped a run; a: {:?}, b: {:?}",
            a.get("/metrics"),
            b.get("/metrics")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // In-process, a tick that finds this daemon's own run still going is skipped too.
    let busy = "lastseen_runs_total{status=\"skipped_busy\"}";
    assert!(a.metric(busy).unwrap_or(0.0) + b.metric(busy).unwrap_or(0.0) >= 1.0);
    assert!(a.is_running() && b.is_running(), "a skipped run does not stop a daemon");
    for d in [&mut a, &mut b] {
        d.drain_log();
        assert_eq!(d.metric("lastseen_runs_total{status=\"failed\"}"), Some(0.0), "{}", d.log.join("\n"));
    }
    let skip_lines: Vec<&String> =
        a.log.iter().chain(&b.log).filter(|l| l.contains("another lastseen instance holds the lake lease")).collect();
    assert!(!skip_lines.is_empty());
    assert!(skip_lines.iter().all(|l| l.contains("\"WARN\"") && l.contains("locked by run")), "{skip_lines:?}");

    for d in [&mut a, &mut b] {
        assert_eq!(d.terminate(Duration::from_secs(60)), Some(0), "{}", d.log.join("\n"));
    }
    // Only committed runs left manifests, and none failed: the loser of each race wrote nothing.
    let m = manifests(&env.lake());
    assert!(!m.is_empty() && m.iter().all(|r| r["status"] == "succeeded"), "{m:?}");
    assert!(!crate::lake_safety::lease_held(&env.lake()));
}

#[test]
fn the_daemon_catches_up_missed_days_oldest_first_on_start() {
    let env = env_for_today(50, 13, Vec::new());
    let today = real_today();
    let two_days_ago = today - chrono::Days::new(2);
    // The lake's last successful run is two days back.
    env.run_day_ok(two_days_ago);
    env.sim().set_now(end_of(today));

    // Midnight UTC every day: today's fire time has passed, tomorrow's is far off, so every run
    // the test sees is catch-up.
    let mut d = Daemon::start(&env, "0 0 * * *", &[]);
    d.wait_for_log("catching up missed days", Duration::from_secs(10));
    wait_until(Duration::from_secs(120), "two catch-up runs", || manifests(&env.lake()).len() >= 3);
    assert_eq!(d.terminate(Duration::from_secs(60)), Some(0), "{}", d.log.join("\n"));

    let m = manifests(&env.lake());
    let dates: Vec<&str> = m.iter().map(|r| r["date"].as_str().unwrap()).collect();
    let want = [two_days_ago, today - chrono::Days::new(1), today].map(|d| d.to_string());
    assert_eq!(dates, want, "oldest first, each missed day once");
    assert!(m.iter().all(|r| r["status"] == "succeeded"), "{m:?}");

    let accounts = env.sim().org().accounts().len() as i64;
    let rows = env.sql("SELECT CAST(dt AS VARCHAR) AS d, count(*) AS n FROM slack_users GROUP BY dt ORDER BY dt");
    let got: Vec<(String, i64)> =
        rows.iter().map(|r| (r["d"].as_str().unwrap().to_string(), r["n"].as_i64().unwrap())).collect();
    assert_eq!(got, want.iter().map(|d| (d.clone(), accounts)).collect::<Vec<_>>());
    let seen = env.sql("SELECT count(DISTINCT dt) AS n FROM last_seen");
    assert_eq!(count(&seen, "n"), 3);
}

#[test]
fn a_day_that_failed_is_caught_up_by_a_later_tick_without_a_restart() {
    // The run before the daemon makes auth.test call 1; the daemon's first run (its catch-up
    // of yesterday) makes call 2, which fails as with a revoked token for a moment.
    let flaky = FaultRule::new("auth.test", FaultWhen::Nth(2), FaultKind::OkFalse { error: "invalid_auth".into() });
    let env = env_for_today(40, 17, vec![flaky]);
    let today = real_today();
    let (two_days_ago, yesterday) = (today - chrono::Days::new(2), today - chrono::Days::new(1));
    env.run_day_ok(two_days_ago);
    assert_eq!(env.sim().call_count("auth.test"), 1, "one auth.test per run, so the daemon's first one fails");
    env.sim().set_now(end_of(today));

    let mut d = Daemon::start(&env, "*/2 * * * * *", &[]);
    d.wait_for_log("catching up missed days", Duration::from_secs(10));
    let ok_on = |day: NaiveDate| {
        manifests(&env.lake())
            .iter()
            .any(|r| r["date"].as_str() == Some(day.to_string().as_str()) && r["status"] == "succeeded")
    };
    // Before the fix the failed day stayed missing until a restart: ticks ran only their own day.
    wait_until(Duration::from_secs(120), "yesterday committed by a later tick", || ok_on(yesterday));
    assert_eq!(d.terminate(Duration::from_secs(60)), Some(0), "{}", d.log.join("\n"));
    assert!(ok_on(today));
    assert!(d.log.iter().any(|l| l.contains("run failed")), "the first try failed: {}", d.log.join("\n"));
    let accounts = env.sim().org().accounts().len() as i64;
    let rows = env.sql(&format!("SELECT count(*) AS n FROM slack_users WHERE dt = DATE '{yesterday}'"));
    assert_eq!(count(&rows, "n"), accounts);
    let seen = env.sql(&format!("SELECT count(*) AS n FROM last_seen WHERE dt = DATE '{yesterday}'"));
    assert_eq!(count(&seen, "n"), accounts);
}

#[test]
fn an_unreadable_run_manifest_does_not_stop_the_daemon_from_starting() {
    let env = env_for_today(20, 19, Vec::new());
    env.run_day_ok(real_today());
    // Zero bytes after a power loss; before the fix the daemon exited 1 at start, every time.
    std::fs::write(env.lake().join("_lastseen/runs/99991231T000000Z-broken.json"), b"").unwrap();
    let mut d = Daemon::start(&env, "0 0 1 1 *", &[]);
    assert!(d.log.iter().any(|l| l.contains("skipping a run manifest")), "{}", d.log.join("\n"));
    let (status, body) = d.get("/healthz");
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(health["daemon"]["last_success"].is_string(), "the good manifest still counts: {body}");
    assert_eq!(d.terminate(Duration::from_secs(30)), Some(0), "{}", d.log.join("\n"));
}

#[test]
fn sigterm_during_a_long_run_abandons_it_after_the_grace_period_and_releases_the_lease() {
    // users.list answers after 30 s; the daemon gets 1 s to finish on SIGTERM.
    let slow = FaultRule::new("users.list", FaultWhen::EveryNth(1), FaultKind::Slow { millis: 30_000 });
    let env = env_for_today(20, 21, vec![slow]);
    let mut d = Daemon::start(&env, "*/2 * * * * *", &[("LASTSEEN_DAEMON__SHUTDOWN_GRACE", "1s")]);
    d.wait_for_log("scheduled run starting", Duration::from_secs(30));
    wait_until(Duration::from_secs(20), "the run to take the lake lease", || {
        crate::lake_safety::lease_held(&env.lake())
    });

    let t0 = Instant::now();
    assert_eq!(d.terminate(Duration::from_secs(20)), Some(0), "{}", d.log.join("\n"));
    assert!(t0.elapsed() < Duration::from_secs(15), "the daemon waited out the slow run: {:?}", t0.elapsed());
    let log = d.log.join("\n");
    assert!(
        log.contains("abandoned the run in progress") && log.contains("released the abandoned run's lake lease"),
        "{log}"
    );
    assert!(!crate::lake_safety::lease_held(&env.lake()), "the next run need not wait for the lease to expire");
    // Nothing was published; the run recorded itself as failed (interrupted), not as a success.
    let m = manifests(&env.lake());
    assert!(!m.is_empty() && m.iter().all(|r| r["status"] == "failed" && r["lake_version"].is_null()), "{m:?}");
    assert!(m.iter().all(|r| r["error"].as_str().unwrap_or_default().contains("interrupted")), "{m:?}");
    assert!(!env.lake().join("_lastseen/log").exists());
}

#[test]
fn the_daemon_refuses_a_bad_schedule_or_a_missing_token_at_start_with_exit_78() {
    let env = Env::start(5, Plan::Pro, 1);
    let out = env.cmd().env("LASTSEEN_DAEMON__SCHEDULE", "every day at noon").arg("daemon").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("daemon.schedule") && err.contains("LASTSEEN_DAEMON__SCHEDULE"), "{err}");

    let out = env
        .cmd()
        .env_remove("SLACK_TOKEN")
        .env("LASTSEEN_DAEMON__LISTEN", "127.0.0.1:0")
        .arg("daemon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SLACK_TOKEN"));
}
