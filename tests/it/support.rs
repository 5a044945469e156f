//! Test harness: a simulator in a background runtime, a temporary lake, and the binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use lastseen_slack_sim::{OrgSpec, Plan, RateLimits, RunningSim, SimConfig, Simulator};

/// A fixed "today" so ground truth and runs are reproducible whatever day the tests run.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
}

pub fn end_of(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap()).and_utc()
}

pub struct Env {
    pub sim: Option<RunningSim>,
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
}

impl Env {
    /// Writes the simulator's HR export (through `edit`) and a lastseen.toml naming it as
    /// `[identities]`, with the alias domain and `extra` lines under `[correlation]`, as a
    /// deployment would configure it. Returns the export's path.
    pub fn configure_identities(&self, edit: impl Fn(String) -> String, extra: &str) -> PathBuf {
        let org = self.sim().org();
        let csv = self.dir.path().join("identities.csv");
        std::fs::write(&csv, edit(org.identities_csv())).unwrap();
        let toml = format!(
            "[identities]\nurl = {:?}\n\n[correlation]\n{extra}\n[correlation.domain_aliases]\n{:?} = {:?}\n",
            csv.display().to_string(),
            org.alias_email_domain(),
            org.email_domain()
        );
        std::fs::write(self.dir.path().join("lastseen.toml"), toml).unwrap();
        csv
    }

    pub fn start(users: usize, plan: Plan, seed: u64) -> Env {
        Self::start_with(SimConfig {
            org: OrgSpec::new(seed, users, plan, today(), 120),
            rate_limits: RateLimits::Off,
            faults: Vec::new(),
            conditions: Default::default(),
        })
    }

    pub fn start_with(cfg: SimConfig) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let sim = rt.block_on(Simulator::start(cfg, "127.0.0.1:0".parse().unwrap())).unwrap();
        Env { sim: Some(sim), rt, dir: tempfile::tempdir().unwrap() }
    }

    pub fn sim(&self) -> &RunningSim {
        self.sim.as_ref().unwrap()
    }

    pub fn lake(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    /// The environment that points the binary at this simulator and lake.
    fn env_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("LASTSEEN_LAKE", self.lake().display().to_string()),
            ("LASTSEEN_SLACK__API_URL", self.sim().api_url()),
            ("LASTSEEN_SLACK__RATE_LIMITS__ENABLED", "false".into()),
            ("LASTSEEN_SLACK__RETRY__INITIAL_BACKOFF", "10ms".into()),
            ("LASTSEEN_SLACK__RETRY__MAX_BACKOFF", "50ms".into()),
            ("LASTSEEN_LOG_FORMAT", "json".into()),
            ("SLACK_TOKEN", self.sim().user_token().into()),
        ]
    }

    /// The binary, configured for this simulator and lake through the environment only.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("lastseen").unwrap();
        c.current_dir(self.dir.path()).env_clear().envs(self.env_vars());
        c
    }

    /// The same as a `std` command, for a process the test spawns and signals (the daemon).
    pub fn spawnable(&self) -> std::process::Command {
        use assert_cmd::cargo::CommandCargoExt;
        let mut c = std::process::Command::cargo_bin("lastseen").unwrap();
        c.current_dir(self.dir.path()).env_clear().envs(self.env_vars());
        c
    }

    /// The same environment as `cmd`, for a process the test must be able to kill.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("lastseen"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LASTSEEN_LAKE", self.lake())
            .env("LASTSEEN_SLACK__API_URL", self.sim().api_url())
            .env("LASTSEEN_SLACK__RATE_LIMITS__ENABLED", "false")
            .env("LASTSEEN_SLACK__RETRY__INITIAL_BACKOFF", "10ms")
            .env("LASTSEEN_SLACK__RETRY__MAX_BACKOFF", "50ms")
            .env("LASTSEEN_LOG_FORMAT", "json")
            .env("SLACK_TOKEN", self.sim().user_token());
        c
    }

    /// The newest run manifest.
    pub fn last_manifest(&self) -> serde_json::Value {
        let dir = self.lake().join("_lastseen/runs");
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        serde_json::from_slice(&std::fs::read(files.last().expect("a run manifest")).unwrap()).unwrap()
    }

    /// `lastseen run --date D` with the simulator's clock at the end of D.
    pub fn run_day(&self, d: NaiveDate) -> Output {
        self.sim().set_now(end_of(d));
        self.cmd().args(["run", "--date", &d.to_string()]).output().unwrap()
    }

    pub fn run_day_ok(&self, d: NaiveDate) {
        let out = self.run_day(d);
        assert!(out.status.success(), "run {d} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// [`Env::run_day_ok`] with another token (a Grid org token, say).
    pub fn run_day_ok_as(&self, d: NaiveDate, token: &str) {
        self.sim().set_now(end_of(d));
        let out = self.cmd().env("SLACK_TOKEN", token).args(["run", "--date", &d.to_string()]).output().unwrap();
        assert!(out.status.success(), "run {d} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Query the lake and return JSON rows.
    pub fn sql(&self, q: &str) -> Vec<serde_json::Value> {
        let out = self.cmd().args(["sql", q, "--format", "json"]).output().unwrap();
        assert!(out.status.success(), "sql failed: {}", String::from_utf8_lossy(&out.stderr));
        parse_json_lines(&out.stdout)
    }

    pub fn dormant_ids(&self, days: u32, as_of: Option<NaiveDate>) -> BTreeSet<String> {
        let mut c = self.cmd();
        c.args(["report", "dormant", "--days", &days.to_string(), "--format", "json"]);
        if let Some(d) = as_of {
            c.args(["--as-of", &d.to_string()]);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "report failed: {}", String::from_utf8_lossy(&out.stderr));
        parse_json_lines(&out.stdout).iter().map(|r| r["account_id"].as_str().unwrap().to_string()).collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

pub fn parse_json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

pub fn count(rows: &[serde_json::Value], col: &str) -> i64 {
    rows[0][col].as_i64().unwrap_or_else(|| panic!("no integer {col} in {:?}", rows[0]))
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out.sort();
    out
}

/// A minimal HTTP/1.1 GET over loopback, optionally with a bearer token: status and body.
pub fn http_get(addr: std::net::SocketAddr, path: &str, bearer: Option<&str>) -> (u16, String) {
    let (status, body) = http_get_bytes(addr, path, bearer);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// [`http_get`] for binary bodies (the gzip member-analytics files).
pub fn http_get_bytes(addr: std::net::SocketAddr, path: &str, bearer: Option<&str>) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let auth = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |i| i + 4);
    let (head, body) = raw.split_at(split);
    let head = String::from_utf8_lossy(head);
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
    (status, if chunked { dechunk(body) } else { body.to_vec() })
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..eol]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let rest = &body[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}
