//! End-to-end tests of the simulator over real HTTP on loopback.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{
    FaultKind, FaultRule, FaultWhen, GroundTruth, OrgSpec, Plan, RateLimits, RunningSim, SimConfig, Simulator,
};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::Value;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap_or_default()
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start(config: SimConfig) -> RunningSim {
    match Simulator::start(config, local()).await {
        Ok(sim) => sim,
        Err(e) => panic!("simulator did not start: {e}"),
    }
}

async fn start_org(users: usize, plan: Plan, history_days: u32) -> RunningSim {
    start(SimConfig::new(OrgSpec::new(7, users, plan, today(), history_days))).await
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One client for the whole test binary: building one loads the system's root certificates.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| reqwest::Client::builder().no_proxy().build().unwrap_or_default())
}

async fn call(sim: &RunningSim, token: Option<&str>, method: &str, args: &[(&str, String)]) -> Answer {
    let mut request = client().get(format!("{}/{method}", sim.api_url())).query(args);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    Answer { status, headers, body }
}

async fn ok(sim: &RunningSim, token: &str, method: &str, args: &[(&str, String)]) -> Value {
    let answer = call(sim, Some(token), method, args).await;
    let v = answer.json();
    assert_eq!(answer.status, 200);
    assert_eq!(v["ok"], Value::Bool(true), "{method} {args:?}: {v}");
    v
}

async fn error_of(sim: &RunningSim, token: Option<&str>, method: &str, args: &[(&str, String)]) -> String {
    let answer = call(sim, token, method, args).await;
    assert_eq!(answer.status, 200, "Slack reports errors with HTTP 200");
    let v = answer.json();
    assert_eq!(v["ok"], Value::Bool(false), "{v}");
    v["error"].as_str().unwrap_or_default().to_owned()
}

fn arg(name: &'static str, value: impl ToString) -> (&'static str, String) {
    (name, value.to_string())
}

async fn all_users(sim: &RunningSim, token: &str, limit: usize) -> Vec<Value> {
    let mut members = Vec::new();
    let mut cursor = String::new();
    let mut short_page_before_end = false;
    loop {
        let mut args = vec![arg("limit", limit)];
        if !cursor.is_empty() {
            args.push(arg("cursor", &cursor));
        }
        let page = ok(sim, token, "users.list", &args).await;
        let batch = page["members"].as_array().cloned().unwrap_or_default();
        assert!(!batch.is_empty() && batch.len() <= limit.min(1000));
        cursor = page["response_metadata"]["next_cursor"].as_str().unwrap_or_default().to_owned();
        short_page_before_end |= batch.len() < limit && !cursor.is_empty();
        members.extend(batch);
        if cursor.is_empty() {
            break;
        }
    }
    if limit == 200 {
        assert!(short_page_before_end, "some page should come back short of the limit");
    }
    members
}

#[tokio::test]
async fn users_list_pages_every_account_exactly_once() {
    let sim = start_org(1200, Plan::Pro, 30).await;
    let expected: Vec<String> = sim.org().accounts().into_iter().map(|a| a.id).collect();
    assert_eq!(expected.len(), 1201);

    for limit in [1, 7, 200, 1000, 5000] {
        let members = all_users(&sim, sim.user_token(), limit).await;
        let ids: Vec<String> = members.iter().map(|m| m["id"].as_str().unwrap_or_default().to_owned()).collect();
        assert_eq!(ids, expected, "limit {limit}");
    }

    let members = all_users(&sim, sim.user_token(), 1000).await;
    let truth = sim.org().accounts();
    for (m, acc) in members.iter().zip(&truth) {
        assert_eq!(m["team_id"].as_str(), Some(sim.org().team_id()));
        assert_eq!(m["name"].as_str(), Some(acc.name.as_str()));
        assert_eq!(m["deleted"].as_bool(), Some(acc.deleted));
        assert_eq!(m["profile"]["email"].as_str(), acc.email.as_deref(), "{m}");
        assert_eq!(m.get("is_invited_user").is_some(), acc.invited);
        let flag = |f: &str| m[f].as_bool().unwrap_or(false);
        let kind = match acc.kind.as_str() {
            "slackbot" => "slackbot",
            _ if flag("is_bot") => {
                assert!(m["profile"]["bot_id"].as_str().is_some_and(|b| b.starts_with('B')));
                "bot"
            }
            _ if flag("is_app_user") => "app",
            _ if flag("is_ultra_restricted") => "guest_single",
            _ if flag("is_restricted") => "guest_multi",
            _ if flag("is_primary_owner") => "primary_owner",
            _ if flag("is_owner") => "owner",
            _ if flag("is_admin") => "admin",
            _ => "member",
        };
        assert_eq!(kind, acc.kind, "{m}");
    }
    let slackbot = members.iter().find(|m| m["id"] == "USLACKBOT");
    assert_eq!(slackbot.map(|s| s["is_bot"].clone()), Some(Value::Bool(false)));

    // Without users:read.email the field is absent, not null.
    let page = ok(&sim, sim.bot_token(), "users.list", &[arg("limit", 50)]).await;
    let members = page["members"].as_array().cloned().unwrap_or_default();
    assert!(members.iter().all(|m| m["profile"].get("email").is_none()));

    assert_eq!(error_of(&sim, Some(sim.user_token()), "users.list", &[]).await, "limit_required");
    let garbage = [arg("limit", 10), arg("cursor", "not a cursor!")];
    assert_eq!(error_of(&sim, Some(sim.user_token()), "users.list", &garbage).await, "invalid_cursor");
    let unknown_user = [arg("limit", 10), arg("cursor", "dXNlcjpVMEc5V0ZYTlo=")];
    assert_eq!(error_of(&sim, Some(sim.user_token()), "users.list", &unknown_user).await, "invalid_cursor");
    sim.shutdown().await;
}

#[tokio::test]
async fn small_team_gets_everything_without_limit() {
    let sim = start_org(40, Plan::Free, 10).await;
    let page = ok(&sim, sim.user_token(), "users.list", &[]).await;
    assert_eq!(page["members"].as_array().map(Vec::len), Some(41));
    // Seed 7 is odd: the collection ends without `response_metadata`.
    assert!(page.get("response_metadata").is_none(), "{page}");
    assert!(page["cache_ts"].is_i64());
}

#[derive(Debug, Clone, PartialEq)]
struct Login {
    user_id: String,
    ip: String,
    agent: String,
    first: i64,
    last: i64,
    count: i64,
}

fn logins_of(page: &Value) -> Vec<Login> {
    page["logins"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| Login {
            user_id: l["user_id"].as_str().unwrap_or_default().to_owned(),
            ip: l["ip"].as_str().unwrap_or_default().to_owned(),
            agent: l["user_agent"].as_str().unwrap_or_default().to_owned(),
            first: l["date_first"].as_i64().unwrap_or(-1),
            last: l["date_last"].as_i64().unwrap_or(-1),
            count: l["count"].as_i64().unwrap_or(-1),
        })
        .collect()
}

async fn all_logins_classic(sim: &RunningSim, count: usize, before: Option<i64>) -> (Vec<Login>, u64) {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let mut args = vec![arg("count", count), arg("page", page)];
        if let Some(b) = before {
            args.push(arg("before", b));
        }
        let v = ok(sim, sim.user_token(), "team.accessLogs", &args).await;
        let paging = &v["paging"];
        assert_eq!(paging["count"].as_u64(), Some(count as u64));
        assert_eq!(paging["page"].as_u64(), Some(page as u64));
        let total = paging["total"].as_u64().unwrap_or_default();
        let pages = paging["pages"].as_u64().unwrap_or_default();
        assert_eq!(pages, total.div_ceil(count as u64).max(1));
        out.extend(logins_of(&v));
        if page as u64 >= pages {
            return (out, total);
        }
        page += 1;
    }
}

async fn all_logins_cursor(sim: &RunningSim, limit: usize) -> Vec<Login> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut args = vec![arg("limit", limit)];
        if !cursor.is_empty() {
            args.push(arg("cursor", &cursor));
        }
        let v = ok(sim, sim.user_token(), "team.accessLogs", &args).await;
        assert!(v.get("paging").is_none());
        out.extend(logins_of(&v));
        cursor = v["response_metadata"]["next_cursor"].as_str().unwrap_or_default().to_owned();
        if cursor.is_empty() {
            return out;
        }
    }
}

#[tokio::test]
async fn access_log_pages_are_the_bytes_a_json_value_gives() {
    // The cursor pages are serialised from structs, not built as `Value`s: their bytes must be
    // what `json!` gave (keys sorted, compact), i.e. the page's own `Value` written again.
    let sim = start_org(300, Plan::Pro, 30).await;
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let mut args = vec![arg("limit", 200)];
        if !cursor.is_empty() {
            args.push(arg("cursor", &cursor));
        }
        let a = call(&sim, Some(sim.user_token()), "team.accessLogs", &args).await;
        assert_eq!(a.status, 200);
        let v = a.json();
        assert!(!logins_of(&v).is_empty());
        assert_eq!(String::from_utf8(serde_json::to_vec(&v).unwrap()).unwrap(), String::from_utf8(a.body).unwrap());
        pages += 1;
        cursor = v["response_metadata"]["next_cursor"].as_str().unwrap_or_default().to_owned();
        if cursor.is_empty() {
            break;
        }
    }
    assert!(pages > 2, "{pages} pages");
}

#[tokio::test]
async fn access_logs_paging_windows_and_gating() {
    let sim = start_org(500, Plan::BusinessPlus, 200).await;
    let now = sim.now().timestamp();

    let (logins, total) = all_logins_classic(&sim, 1000, None).await;
    assert_eq!(logins.len() as u64, total);
    assert!(total > 1000, "want several pages, got {total}");
    assert!(logins.windows(2).all(|w| w[0].last >= w[1].last), "newest first");
    assert!(logins.iter().all(|l| l.first <= l.last && l.last <= now && l.count >= 1));
    let combos: HashSet<_> = logins.iter().map(|l| (&l.user_id, &l.ip, &l.agent)).collect();
    assert_eq!(combos.len(), logins.len(), "one entry per (user, ip, user agent)");

    let (small_pages, small_total) = all_logins_classic(&sim, 97, None).await;
    assert_eq!((small_pages, small_total), (logins.clone(), total));
    assert_eq!(all_logins_cursor(&sim, 333).await, logins);

    let v = ok(&sim, sim.user_token(), "team.accessLogs", &[]).await;
    assert_eq!(v["paging"]["count"].as_u64(), Some(100));
    assert_eq!(v["logins"].as_array().map(Vec::len), Some(100));
    let first = &v["logins"][0];
    for field in ["username", "isp", "country", "region", "user_agent", "ip"] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }

    for (count, page) in [(1001, 1), (100, 101)] {
        let args = [arg("count", count), arg("page", page)];
        assert_eq!(error_of(&sim, Some(sim.user_token()), "team.accessLogs", &args).await, "over_pagination_limit");
    }

    // `before` is inclusive.
    let pivot = logins[logins.len() / 2].last;
    let (window, _) = all_logins_classic(&sim, 1000, Some(pivot)).await;
    assert_eq!(window.first().map(|l| l.last), Some(pivot));
    let expected: Vec<_> = logins.iter().filter(|l| l.last <= pivot).cloned().collect();
    assert_eq!(window, expected);
    let (earlier, _) = all_logins_classic(&sim, 1000, Some(pivot - 1)).await;
    assert!(earlier.iter().all(|l| l.last < pivot));

    // The clock hides later accesses and recomputes counts.
    let past = now - 30 * 86_400;
    sim.set_now(DateTime::from_timestamp(past, 0).unwrap_or_default());
    let (then, _) = all_logins_classic(&sim, 1000, None).await;
    assert!(then.iter().all(|l| l.last <= past));
    assert!(then.len() < logins.len());
    sim.set_now(DateTime::from_timestamp(now, 0).unwrap_or_default());

    // Token and plan errors.
    let bot = sim.bot_token().to_owned();
    assert_eq!(error_of(&sim, Some(&bot), "team.accessLogs", &[]).await, "not_allowed_token_type");
    assert_eq!(error_of(&sim, None, "team.accessLogs", &[]).await, "not_authed");
    assert_eq!(error_of(&sim, Some("xoxp-nope"), "team.accessLogs", &[]).await, "invalid_auth");
    let revoked = sim.revoked_token().to_owned();
    assert_eq!(error_of(&sim, Some(&revoked), "team.accessLogs", &[]).await, "token_revoked");
    let inactive = sim.inactive_token().to_owned();
    assert_eq!(error_of(&sim, Some(&inactive), "users.list", &[]).await, "account_inactive");
    let answer = call(&sim, Some(sim.member_token()), "team.accessLogs", &[]).await;
    let v = answer.json();
    assert_eq!(v["error"], "missing_scope");
    assert_eq!(v["needed"], "admin");
    assert_eq!(v["provided"], "users:read,team:read");
    assert_eq!(answer.header("x-oauth-scopes"), Some("users:read,team:read"));
    let bad_cursor = [arg("cursor", "Zm9v")];
    assert_eq!(error_of(&sim, Some(sim.user_token()), "team.accessLogs", &bad_cursor).await, "invalid_cursor");
    sim.shutdown().await;

    let free = start_org(30, Plan::Free, 30).await;
    assert_eq!(error_of(&free, Some(free.user_token()), "team.accessLogs", &[]).await, "paid_only");
}

#[tokio::test]
async fn ground_truth_matches_access_logs() {
    let sim = start_org(400, Plan::Pro, 150).await;
    let end = sim.now();
    let client = client();
    for as_of in [end, end - TimeDelta::days(45) - TimeDelta::hours(7)] {
        sim.set_now(as_of);
        let logins = all_logins_cursor(&sim, 1000).await;
        let mut last: BTreeMap<String, i64> = BTreeMap::new();
        for l in &logins {
            let e = last.entry(l.user_id.clone()).or_insert(i64::MIN);
            *e = (*e).max(l.last);
        }
        let truth = sim.org().ground_truth(as_of);
        assert_eq!(truth.accounts.len(), 401);
        for acc in &truth.accounts {
            assert_eq!(acc.last_access.map(|t| t.timestamp()), last.get(&acc.id).copied(), "{acc:?}");
        }
        let seen = truth.accounts.iter().filter(|a| a.last_access.is_some()).count();
        assert!(seen > 200, "{seen}");
        let dormant = truth.dormant(30);
        assert!(!dormant.is_empty() && dormant.len() < 200, "{}", dormant.len());

        // The control endpoint serves the same truth, for out-of-process users.
        let url = format!("http://{}/_sim/ground_truth?as_of={}", sim.addr(), as_of.timestamp());
        let body = match client.get(url).send().await {
            Ok(r) => r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            Err(e) => panic!("{e}"),
        };
        let served: Option<GroundTruth> = serde_json::from_slice(&body).ok();
        assert_eq!(served.as_ref(), Some(&truth));
    }

    let at = end - TimeDelta::days(3);
    let url = format!("http://{}/_sim/clock?now={}", sim.addr(), at.timestamp());
    let set = client.post(url).send().await.map(|r| r.status().as_u16()).ok();
    assert_eq!(set, Some(200));
    assert_eq!(sim.now(), at);
}

#[tokio::test]
async fn tight_rate_limit_answers_429_with_retry_after() {
    let mut config = SimConfig::new(OrgSpec::new(3, 20, Plan::Pro, today(), 10));
    config.rate_limits = RateLimits::Tiers { scale: 0.06 };
    let sim = start(config).await;
    let token = sim.user_token().to_owned();
    let mut limited = None;
    for _ in 0..5 {
        let answer = call(&sim, Some(&token), "users.list", &[]).await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.json()["ok"], true);
    }
    let Some(answer) = limited else { panic!("never rate limited") };
    let retry: u64 = answer.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(retry >= 1, "Retry-After must be a positive integer");
    assert_eq!(answer.json(), serde_json::json!({"ok": false, "error": "ratelimited"}));
    // Buckets are per method.
    assert_eq!(call(&sim, Some(&token), "team.info", &[]).await.status, 200);
    assert_eq!(sim.call_count("users.list"), 3);

    let mut bad = SimConfig::new(OrgSpec::new(3, 5, Plan::Pro, today(), 10));
    bad.rate_limits = RateLimits::Tiers { scale: 0.0 };
    assert!(Simulator::start(bad, local()).await.is_err());
}

#[tokio::test]
async fn every_fault_kind_has_its_effect() {
    let rule = |method: &str, when, kind| FaultRule::new(method, when, kind);
    let mut config = SimConfig::new(OrgSpec::new(11, 50, Plan::Pro, today(), 30));
    config.faults = vec![
        rule("auth.test", FaultWhen::Nth(1), FaultKind::Status(502)),
        rule("auth.test", FaultWhen::Nth(2), FaultKind::RateLimited { retry_after_secs: 3 }),
        rule("auth.test", FaultWhen::Nth(3), FaultKind::Truncated),
        rule("auth.test", FaultWhen::Nth(4), FaultKind::Malformed),
        rule("auth.test", FaultWhen::Nth(5), FaultKind::Slow { millis: 300 }),
        rule("auth.test", FaultWhen::Nth(6), FaultKind::OkFalse { error: "fatal_error".into() }),
        rule("users.list", FaultWhen::EveryNth(2), FaultKind::OkFalse { error: "service_unavailable".into() }),
        rule("team.info", FaultWhen::Probability(0.5), FaultKind::Status(503)),
        rule("*", FaultWhen::Nth(1), FaultKind::Status(500)),
    ];
    let sim = start(config).await;
    let token = sim.user_token().to_owned();
    let auth = || async {
        let started = Instant::now();
        let a = call(&sim, Some(&token), "auth.test", &[]).await;
        (a, started.elapsed())
    };

    let (a, _) = auth().await;
    assert_eq!(a.status, 502);
    assert!(a.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    assert!(serde_json::from_slice::<Value>(&a.body).is_err());

    let (a, _) = auth().await;
    assert_eq!(a.status, 429);
    assert_eq!(a.header("retry-after"), Some("3"));
    assert_eq!(a.json()["error"], "ratelimited");

    let (a, _) = auth().await;
    assert_eq!(a.status, 200);
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert!(text.starts_with("{\"") && text.len() > 10, "{text}");
    assert!(serde_json::from_slice::<Value>(&a.body).is_err(), "truncated body must not parse");

    let (a, _) = auth().await;
    assert_eq!(a.status, 200);
    assert!(serde_json::from_slice::<Value>(&a.body).is_err());

    let (a, took) = auth().await;
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert_eq!(a.json()["ok"], true);

    let (a, _) = auth().await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json(), serde_json::json!({"ok": false, "error": "fatal_error"}));

    let (a, _) = auth().await;
    let me = a.json();
    assert_eq!(me["ok"], true);
    assert_eq!(me["team_id"].as_str(), Some(sim.org().team_id()));
    assert_eq!(sim.call_count("auth.test"), 7);

    // The "*" rule takes the first call of any method that no earlier rule claimed.
    assert_eq!(call(&sim, Some(&token), "team.accessLogs", &[]).await.status, 500);
    assert_eq!(call(&sim, Some(&token), "team.accessLogs", &[]).await.status, 200);

    assert_eq!(call(&sim, Some(&token), "users.list", &[]).await.status, 500);
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(call(&sim, Some(&token), "users.list", &[]).await.json()["ok"].clone());
    }
    assert_eq!(outcomes, [false, true, false, true], "calls 2 and 4 fail");

    let mut failures = 0;
    for _ in 0..40 {
        if call(&sim, Some(&token), "team.info", &[]).await.status != 200 {
            failures += 1;
        }
    }
    assert!((5..=35).contains(&failures), "{failures}");
    sim.shutdown().await;
}

#[tokio::test]
async fn envelope_tokens_and_argument_styles() {
    let sim = start_org(60, Plan::Enterprise, 20).await;
    let client = client();

    assert_eq!(error_of(&sim, Some(sim.user_token()), "users.nope", &[]).await, "unknown_method");

    // POST form body with the token as an argument, as older clients send it.
    let form = [("token", sim.user_token().to_owned()), ("limit", "5".to_owned())];
    let response = client.post(format!("{}/users.list", sim.api_url())).form(&form).send().await;
    let body = match response {
        Ok(r) => r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
        Err(e) => panic!("{e}"),
    };
    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
    assert_eq!(v["ok"], true);
    assert!(v["members"].as_array().is_some_and(|m| m.len() <= 5 && !m.is_empty()));

    let me = ok(&sim, sim.bot_token(), "auth.test", &[]).await;
    assert!(me["bot_id"].as_str().is_some_and(|b| b.starts_with('B')));
    assert!(me["url"].as_str().is_some_and(|u| u.starts_with("https://") && u.ends_with(".slack.com/")));
    assert!(me["enterprise_id"].as_str().is_some_and(|e| e.starts_with('E')));
    let owner = ok(&sim, sim.user_token(), "auth.test", &[]).await;
    assert!(owner.get("bot_id").is_none());
    assert_eq!(owner["user_id"].as_str(), sim.org().accounts().first().map(|a| a.id.as_str()));

    let team = ok(&sim, sim.bot_token(), "team.info", &[]).await;
    assert_eq!(team["team"]["id"].as_str(), Some(sim.org().team_id()));
    for field in ["name", "domain", "email_domain"] {
        assert!(team["team"][field].as_str().is_some_and(|s| !s.is_empty()), "{field}");
    }
    assert!(team["team"]["icon"]["image_68"].is_string());
    assert_eq!(error_of(&sim, Some(sim.bot_token()), "team.info", &[arg("team", "T0000")]).await, "team_not_found");

    assert!(sim.user_token().starts_with("xoxp-"));
    assert!(sim.bot_token().starts_with("xoxb-"));
    let ids: BTreeSet<_> = [sim.user_token(), sim.bot_token(), sim.member_token()].into_iter().collect();
    assert_eq!(ids.len(), 3);

    let addr = sim.addr();
    sim.shutdown().await;
    assert!(client.get(format!("http://{addr}/api/auth.test")).send().await.is_err());
}

#[tokio::test]
async fn same_seed_same_organisation_over_http() {
    let a = start_org(120, Plan::Pro, 60).await;
    let b = start_org(120, Plan::Pro, 60).await;
    assert_eq!(a.user_token(), b.user_token());
    let la = all_logins_cursor(&a, 1000).await;
    let lb = all_logins_cursor(&b, 1000).await;
    assert_eq!(la, lb);
    let ua = ok(&a, a.user_token(), "users.list", &[]).await;
    let ub = ok(&b, b.user_token(), "users.list", &[]).await;
    assert_eq!(ua["members"], ub["members"]);
    let _: DateTime<Utc> = a.now();
}

#[tokio::test]
async fn a_collection_ends_with_an_empty_cursor_or_without_response_metadata() {
    for (seed, absent) in [(7u64, true), (8u64, false)] {
        let sim = start(SimConfig::new(OrgSpec::new(seed, 30, Plan::Pro, today(), 10))).await;
        let last = ok(&sim, sim.user_token(), "users.list", &[arg("limit", 1000)]).await;
        assert_eq!(last.get("response_metadata").is_none(), absent, "seed {seed}: {last}");
        if !absent {
            assert_eq!(last["response_metadata"]["next_cursor"], "");
        }
        sim.shutdown().await;
    }
}
