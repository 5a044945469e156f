//! The client and the collectors against the Slack simulator over real loopback HTTP: paging,
//! the 100-page restart, retries and fault classification, token hygiene and pacing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::slack::{AccessLogWindow, TEAM_ACCESS_LOGS, USERS_LIST, access_logs, users};
use crate::{IngestError, SlackClient};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use futures::TryStreamExt;
use lastseen_config::{RateLimitConfig, RetryConfig, SlackConfig, Source, TokenSource};
use lastseen_lake::catalog::{SLACK_ACCESS_LOGS, SLACK_USERS};
use lastseen_slack_sim::{
    FaultKind, FaultRule, FaultWhen, OrgSpec, Plan, RateLimits, RunningSim, SimConfig, Simulator,
};
use secrecy::SecretString;

const TODAY: (i32, u32, u32) = (2025, 3, 31);

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).unwrap()
}

fn collected_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(TODAY.0, TODAY.1, TODAY.2, 23, 59, 59).unwrap()
}

async fn start(users: usize, plan: Plan, history_days: u32, faults: Vec<FaultRule>) -> RunningSim {
    start_with(users, plan, history_days, faults, RateLimits::Off).await
}

async fn start_with(
    users: usize,
    plan: Plan,
    history_days: u32,
    faults: Vec<FaultRule>,
    rate_limits: RateLimits,
) -> RunningSim {
    let config = SimConfig {
        org: OrgSpec::new(7, users, plan, today(), history_days),
        rate_limits,
        faults,
        conditions: Default::default(),
    };
    Simulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn config(sim: &RunningSim) -> SlackConfig {
    SlackConfig {
        api_url: url::Url::parse(&format!("{}/", sim.api_url())).unwrap(),
        token: TokenSource::Env("SLACK_TOKEN".into()),
        sources: Source::ALL.to_vec(),
        auto_sources: true,
        gov: false,
        scim_url: None,
        audit_url: None,
        allow_custom_hosts: false,
        users_page_size: 200,
        access_logs_page_size: 1000,
        access_logs_overlap: Duration::from_secs(86_400),
        request_timeout: Duration::from_secs(10),
        concurrency: 4,
        run_deadline: Duration::from_secs(600),
        retry: RetryConfig {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(20),
            min_retry_after: Duration::from_millis(1),
            max_retry_after: Duration::from_secs(5),
            rate_limit_budget: Duration::from_secs(60),
        },
        rate_limits: RateLimitConfig { enabled: false, per_minute: [1, 20, 50, 100] },
    }
}

fn client_with(cfg: &SlackConfig, token: &str) -> Arc<SlackClient> {
    Arc::new(SlackClient::new(cfg, SecretString::from(token.to_owned())).unwrap())
}

fn client(sim: &RunningSim) -> Arc<SlackClient> {
    client_with(&config(sim), sim.user_token())
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name(column).unwrap().as_string::<i32>();
            (0..col.len()).map(|i| col.value(i).to_owned()).collect::<Vec<_>>()
        })
        .collect()
}

fn micros(batches: &[RecordBatch], column: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name(column).unwrap().as_primitive::<TimestampMicrosecondType>();
            col.values().to_vec()
        })
        .collect()
}

async fn all_users(client: &Arc<SlackClient>, team: &str, page: u32) -> Vec<RecordBatch> {
    users(Arc::clone(client), team.to_owned(), page, collected_at()).try_collect().await.unwrap()
}

fn expected_ids(sim: &RunningSim) -> Vec<String> {
    let mut ids: Vec<String> = sim.org().accounts().into_iter().map(|a| a.id).collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// An access-log entry's identity in the lake (its merge key).
type EntryKey = (String, String, String, i64);

fn entry_keys(batches: &[RecordBatch]) -> Vec<(EntryKey, i64, i64)> {
    let users = strings(batches, "user_id");
    let first = micros(batches, "date_first");
    let last = micros(batches, "date_last");
    let mut ips = Vec::new();
    let mut agents = Vec::new();
    let mut counts = Vec::new();
    for b in batches {
        let ip = b.column_by_name("ip").unwrap().as_string::<i32>();
        let ua = b.column_by_name("user_agent").unwrap().as_string::<i32>();
        let count = b.column_by_name("count").unwrap().as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let text =
                |col: &StringArray| -> String { if col.is_valid(i) { col.value(i).to_owned() } else { String::new() } };
            ips.push(text(ip));
            agents.push(text(ua));
            counts.push(count.value(i));
        }
    }
    (0..users.len())
        .map(|i| ((users[i].clone(), ips[i].clone(), agents[i].clone(), first[i]), last[i], counts[i]))
        .collect()
}

/// The reference: the simulator's whole access log through cursor paging, which has no
/// 100-page cap, fetched with the same client.
async fn reference_log(client: &SlackClient, team: &str) -> BTreeMap<EntryKey, (i64, i64)> {
    #[derive(serde::Deserialize)]
    struct Page {
        logins: Vec<crate::slack::models::Login>,
        response_metadata: crate::slack::models::ResponseMetadata,
    }
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("limit", "1000".to_owned())];
        if let Some(c) = &cursor {
            params.push(("cursor", c.clone()));
        }
        let page: Page = client.call(TEAM_ACCESS_LOGS, Some(team), &params).await.unwrap();
        for l in page.logins {
            let key = (l.user_id, l.ip.unwrap_or_default(), l.user_agent.unwrap_or_default(), l.date_first * 1_000_000);
            let previous = out.insert(key, (l.date_last * 1_000_000, l.count.unwrap_or(1)));
            assert!(previous.is_none(), "the simulator repeated an entry");
        }
        match page.response_metadata.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

fn dedup(entries: Vec<(EntryKey, i64, i64)>) -> BTreeMap<EntryKey, (i64, i64)> {
    let mut out = BTreeMap::new();
    for (key, last, count) in entries {
        if let Some(seen) = out.insert(key, (last, count)) {
            assert_eq!(seen, (last, count), "the same entry came back different");
        }
    }
    out
}

#[tokio::test]
async fn users_every_account_once_for_any_page_size() {
    let sim = start(250, Plan::Pro, 7, vec![]).await;
    let client = client(&sim);
    let auth = client.auth_test().await.unwrap();
    assert_eq!(auth.team_id, sim.org().team_id());
    assert!(auth.bot_id.is_none());
    assert!(auth.scopes.as_ref().unwrap().iter().any(|s| s == "admin"), "{auth:?}");

    let expected = expected_ids(&sim);
    for page in [1, 7, 200] {
        let batches = all_users(&client, &auth.team_id, page).await;
        for b in &batches {
            assert_eq!(b.schema(), SLACK_USERS.schema());
            assert!(b.num_rows() > 0);
        }
        let ids = strings(&batches, "user_id");
        assert_eq!(ids.len(), expected.len(), "page size {page}: duplicates or gaps");
        assert_eq!(sorted(ids), expected, "page size {page}");
        assert!(strings(&batches, "team_id").iter().all(|t| *t == auth.team_id));
        assert!(micros(&batches, "collected_at").iter().all(|t| *t == collected_at().timestamp_micros()));
    }
    let report = client.report(&[USERS_LIST]);
    assert_eq!(report.calls, sim.call_count(USERS_LIST));
    assert_eq!(report.pages, report.calls);
    assert_eq!(report.rows, 3 * expected.len() as u64);
    assert_eq!((report.retries, report.rate_limited), (0, 0));

    // Deleted, invited and bot accounts are all there, with their flags.
    let truth = sim.org().accounts();
    let batches = all_users(&client, &auth.team_id, 200).await;
    let ids = strings(&batches, "user_id");
    let flag = |name: &str| -> Vec<bool> {
        batches
            .iter()
            .flat_map(|b| {
                let c = b.column_by_name(name).unwrap().as_boolean();
                (0..c.len()).map(|i| c.value(i)).collect::<Vec<_>>()
            })
            .collect()
    };
    let (deleted, invited) = (flag("deleted"), flag("is_invited_user"));
    for account in &truth {
        let i = ids.iter().position(|id| *id == account.id).unwrap();
        assert_eq!(deleted[i], account.deleted, "{}", account.id);
        assert_eq!(invited[i], account.invited, "{}", account.id);
    }
}

#[tokio::test]
async fn access_logs_complete_windowed_and_across_the_100_page_cap() {
    let sim = start(300, Plan::BusinessPlus, 30, vec![]).await;
    let client = client(&sim);
    let team = sim.org().team_id().to_owned();
    let reference = reference_log(&client, &team).await;
    let total = reference.len();
    assert!(total > 300, "the organisation should have a sizeable access log, got {total}");

    // Whole history at the configured page size: one window.
    let batches: Vec<RecordBatch> =
        access_logs(Arc::clone(&client), team.clone(), AccessLogWindow::default(), 1000, collected_at())
            .try_collect()
            .await
            .unwrap();
    for b in &batches {
        assert_eq!(b.schema(), SLACK_ACCESS_LOGS.schema());
    }
    let entries = entry_keys(&batches);
    assert_eq!(entries.len(), total, "one window: every entry exactly once");
    assert_eq!(dedup(entries), reference);
    assert!(strings(&batches, "team_id").iter().all(|t| *t == team));

    // Small pages: more than 100 pages, so the walk must restart with an earlier `before`.
    let page_size = u32::try_from(total.div_ceil(250)).unwrap().max(1);
    let calls_before = sim.call_count(TEAM_ACCESS_LOGS);
    let batches: Vec<RecordBatch> =
        access_logs(Arc::clone(&client), team.clone(), AccessLogWindow::default(), page_size, collected_at())
            .try_collect()
            .await
            .unwrap();
    let calls = sim.call_count(TEAM_ACCESS_LOGS) - calls_before;
    assert!(calls > 100, "page size {page_size} over {total} entries should need > 100 pages, made {calls} calls");
    let entries = entry_keys(&batches);
    assert!(entries.len() >= total);
    assert_eq!(dedup(entries), reference, "restarted walk lost or changed entries");
    // Newest first: date_last never increases within a window, and every page respects the bound.
    let last = micros(&batches, "date_last");
    assert!(last.windows(2).all(|w| w[0] >= w[1]), "entries must come newest first");

    // A window: entries with stop_at <= date_last <= before, and the walk stops early.
    let mut lasts: Vec<i64> = reference.values().map(|(l, _)| l / 1_000_000).collect();
    lasts.sort_unstable();
    let stop_at = lasts[lasts.len() / 3];
    let before = lasts[lasts.len() * 2 / 3];
    let expected: BTreeMap<_, _> = reference
        .iter()
        .filter(|(_, (l, _))| (stop_at..=before).contains(&(l / 1_000_000)))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let calls_before = sim.call_count(TEAM_ACCESS_LOGS);
    let window = AccessLogWindow { before: Some(before), stop_at: Some(stop_at) };
    let batches: Vec<RecordBatch> =
        access_logs(Arc::clone(&client), team.clone(), window, page_size, collected_at()).try_collect().await.unwrap();
    let window_calls = sim.call_count(TEAM_ACCESS_LOGS) - calls_before;
    let got = dedup(entry_keys(&batches));
    assert_eq!(got, expected, "window [{stop_at}, {before}]");
    let needed = expected.len().div_ceil(page_size as usize) as u64;
    assert!(
        window_calls <= needed + 3,
        "stop_at should end the walk early: {window_calls} calls for {} entries",
        expected.len()
    );

    // Everyone's last access equals the simulator's ground truth.
    let mut last_by_user: BTreeMap<String, i64> = BTreeMap::new();
    for ((user, ..), (last, _)) in &reference {
        let e = last_by_user.entry(user.clone()).or_default();
        *e = (*e).max(*last);
    }
    let truth = sim.org().ground_truth(sim.now());
    for account in truth.accounts {
        let want = account.last_access.map(|t| t.timestamp_micros());
        assert_eq!(last_by_user.get(&account.id).copied(), want, "{}", account.id);
    }

    let report = client.report(&[TEAM_ACCESS_LOGS]);
    assert_eq!(report.calls, sim.call_count(TEAM_ACCESS_LOGS));
    assert!(report.warnings.is_empty(), "the deliberate classic paging warning is not news: {:?}", report.warnings);
}

#[tokio::test]
async fn transient_faults_are_retried_and_counted() {
    let faults = vec![
        FaultRule::new(USERS_LIST, FaultWhen::Nth(2), FaultKind::Status(500)),
        FaultRule::new(USERS_LIST, FaultWhen::Nth(4), FaultKind::Truncated),
        FaultRule::new(USERS_LIST, FaultWhen::Nth(6), FaultKind::Malformed),
        FaultRule::new(USERS_LIST, FaultWhen::Nth(8), FaultKind::RateLimited { retry_after_secs: 1 }),
        FaultRule::new(USERS_LIST, FaultWhen::Nth(10), FaultKind::OkFalse { error: "internal_error".into() }),
        FaultRule::new(TEAM_ACCESS_LOGS, FaultWhen::Nth(3), FaultKind::Status(503)),
        FaultRule::new(TEAM_ACCESS_LOGS, FaultWhen::Nth(5), FaultKind::OkFalse { error: "ratelimited".into() }),
    ];
    let sim = start(120, Plan::Pro, 5, faults).await;
    let client = client(&sim);
    let team = sim.org().team_id().to_owned();

    let started = Instant::now();
    let batches = all_users(&client, &team, 10).await;
    assert!(started.elapsed() >= Duration::from_millis(950), "Retry-After 1 was not honoured");
    assert_eq!(sorted(strings(&batches, "user_id")), expected_ids(&sim));
    let stats = client.stats(USERS_LIST);
    assert_eq!(stats.retries, 5, "{stats:?}");
    assert_eq!(stats.rate_limited, 1, "{stats:?}");
    assert_eq!(stats.calls, sim.call_count(USERS_LIST));
    assert_eq!(stats.calls, stats.pages + 5);
    assert!(stats.rate_wait >= Duration::from_millis(950), "{stats:?}");
    let report = client.report(&[USERS_LIST]);
    assert_eq!((report.retries, report.rate_limited), (5, 1));
    assert!(report.rate_wait_ms >= 950);

    let batches: Vec<RecordBatch> =
        access_logs(Arc::clone(&client), team.clone(), AccessLogWindow::default(), 10, collected_at())
            .try_collect()
            .await
            .unwrap();
    let stats = client.stats(TEAM_ACCESS_LOGS);
    assert!(stats.pages >= 5, "{stats:?}");
    assert_eq!(dedup(entry_keys(&batches)), reference_log(&client, &team).await);
    assert_eq!((stats.retries, stats.rate_limited), (2, 1), "{stats:?}");
}

#[tokio::test]
async fn persistent_failure_gives_up_after_max_attempts() {
    let faults = vec![FaultRule::new(USERS_LIST, FaultWhen::EveryNth(1), FaultKind::Status(503))];
    let sim = start(20, Plan::Pro, 1, faults).await;
    let client = client(&sim);
    let err = users(Arc::clone(&client), "T1".into(), 5, collected_at()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(matches!(err, IngestError::RetriesExhausted { attempts: 4, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("users.list") && msg.contains("4 attempts") && msg.contains("503"), "{msg}");
    assert_eq!(sim.call_count(USERS_LIST), 4);
    assert_eq!(client.stats(USERS_LIST).retries, 3);
}

#[tokio::test]
async fn fatal_answers_fail_fast_with_a_clear_message() {
    let sim = start(20, Plan::Pro, 1, vec![]).await;
    let cfg = config(&sim);
    let team = sim.org().team_id().to_owned();

    let wrong = client_with(&cfg, "xoxp-not-a-real-token");
    let err = wrong.auth_test().await.unwrap_err();
    assert!(matches!(err, IngestError::Auth { ref code, .. } if code == "invalid_auth"), "{err:?}");
    assert!(err.is_auth() && !err.is_retriable());
    assert!(err.to_string().contains("env SLACK_TOKEN"), "{err}");
    let err = users(Arc::clone(&wrong), team.clone(), 5, collected_at()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(matches!(err, IngestError::Auth { .. }), "{err:?}");
    assert_eq!(sim.call_count(USERS_LIST), 1, "invalid_auth must not be retried");

    let revoked = client_with(&cfg, sim.revoked_token());
    let err = revoked.auth_test().await.unwrap_err();
    assert_eq!(err.slack_code(), Some("token_revoked"));

    let bot = client_with(&cfg, sim.bot_token());
    assert!(bot.auth_test().await.unwrap().bot_id.is_some());
    let err = access_logs(Arc::clone(&bot), team.clone(), AccessLogWindow::default(), 100, collected_at())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, IngestError::TokenType { .. }), "{err:?}");
    assert!(err.is_capability());
    assert!(err.to_string().contains("xoxp-"), "{err}");
    assert_eq!(sim.call_count(TEAM_ACCESS_LOGS), 1);

    let member = client_with(&cfg, sim.member_token());
    let err = member.call::<serde_json::Value>(TEAM_ACCESS_LOGS, None, &[("count", "10".into())]).await.unwrap_err();
    match &err {
        IngestError::MissingScope { needed, .. } => assert_eq!(needed.as_deref(), Some("admin")),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("needed: admin"), "{err}");

    let free = start(20, Plan::Free, 1, vec![]).await;
    let err = access_logs(client(&free), free.org().team_id().into(), AccessLogWindow::default(), 100, collected_at())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, IngestError::PlanUnavailable { ref code, .. } if code == "paid_only"), "{err:?}");

    let err = client(&sim).call::<serde_json::Value>("no.such.method", None, &[]).await.unwrap_err();
    assert!(matches!(err, IngestError::SlackApi { ref code, .. } if code == "unknown_method"), "{err:?}");
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let faults = vec![FaultRule::new(USERS_LIST, FaultWhen::Nth(1), FaultKind::Slow { millis: 2_000 })];
    let sim = start(30, Plan::Pro, 1, faults).await;
    let mut cfg = config(&sim);
    cfg.request_timeout = Duration::from_millis(300);
    let client = client_with(&cfg, sim.user_token());
    let batches = all_users(&client, sim.org().team_id(), 200).await;
    assert_eq!(sorted(strings(&batches, "user_id")), expected_ids(&sim));
    assert_eq!(client.stats(USERS_LIST).retries, 1);
}

/// A `MakeWriter` that keeps everything logged, to grep it for the token.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn the_token_never_shows_up() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let faults = vec![
        FaultRule::new(USERS_LIST, FaultWhen::Nth(1), FaultKind::Status(500)),
        FaultRule::new(USERS_LIST, FaultWhen::Nth(2), FaultKind::RateLimited { retry_after_secs: 0 }),
        FaultRule::new(USERS_LIST, FaultWhen::Nth(3), FaultKind::Truncated),
        FaultRule::new("auth.test", FaultWhen::EveryNth(1), FaultKind::Malformed),
    ];
    let sim = start(10, Plan::Pro, 1, faults).await;
    let cfg = config(&sim);
    let mut seen = Vec::new();

    let good = client_with(&cfg, sim.user_token());
    all_users(&good, sim.org().team_id(), 200).await;
    seen.push(format!("{good:?}"));
    let err = good.auth_test().await.unwrap_err();
    seen.push(format!("{err} {err:?}"));
    let err = good.call::<serde_json::Value>("bad/method", None, &[]).await.unwrap_err();
    seen.push(format!("{err} {err:?}"));
    let err =
        good.call::<serde_json::Value>(USERS_LIST, None, &[("token", sim.user_token().into())]).await.unwrap_err();
    seen.push(format!("{err} {err:?}"));

    let sentinel = "xoxp-SENTINEL-4242-do-not-print";
    let wrong = client_with(&cfg, sentinel);
    seen.push(format!("{wrong:?}"));
    let err = wrong.call::<serde_json::Value>(USERS_LIST, None, &[]).await.unwrap_err();
    seen.push(format!("{err} {err:?}"));

    let bot = client_with(&cfg, sim.bot_token());
    let err = access_logs(Arc::clone(&bot), "T".into(), AccessLogWindow::default(), 10, collected_at())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    seen.push(format!("{err} {err:?}"));
    seen.push(format!("{bot:?}"));

    // Nothing listening: a connection error.
    let mut closed = cfg.clone();
    closed.api_url = url::Url::parse("http://127.0.0.1:9/api/").unwrap();
    closed.retry.max_attempts = 2;
    let err = client_with(&closed, sentinel).call::<serde_json::Value>(USERS_LIST, None, &[]).await.unwrap_err();
    assert!(matches!(err, IngestError::RetriesExhausted { .. }), "{err:?}");
    seen.push(format!("{err} {err:?}"));

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("retrying"), "the capture should hold the retry warnings");
    seen.push(logged);
    for text in &seen {
        for token in [sim.user_token(), sim.bot_token(), sentinel] {
            assert!(!text.contains(token), "token leaked into: {text}");
        }
        assert!(!text.contains("SENTINEL"), "token leaked into: {text}");
    }
}

#[tokio::test]
async fn pacing_keeps_a_steady_run_free_of_429s() {
    // The simulator enforces Slack's tiers 60x faster (a minute's quota per second): Tier 2 is
    // 20 calls/s, with a burst allowance of 6 s worth. The client is configured with the same
    // budgets, so its calls are spaced 50 ms apart and none is refused.
    let scale = 60.0;
    let sim = start_with(100, Plan::Pro, 1, vec![], RateLimits::Tiers { scale }).await;
    let mut cfg = config(&sim);
    cfg.rate_limits = RateLimitConfig { enabled: true, per_minute: [60, 20 * 60, 50 * 60, 100 * 60] };
    let client = client_with(&cfg, sim.user_token());
    client.auth_test().await.unwrap();

    let started = Instant::now();
    let team = sim.org().team_id().to_owned();
    let batches = all_users(&client, &team, 5).await;
    let elapsed = started.elapsed();
    let calls = sim.call_count(USERS_LIST);
    assert!(calls >= 20, "{calls}");
    assert_eq!(sorted(strings(&batches, "user_id")), expected_ids(&sim));
    // Evenly spaced at 50 ms: calls - 1 gaps.
    let floor = Duration::from_millis(50 * (calls - 1) - 20);
    assert!(elapsed >= floor, "{calls} calls took {elapsed:?}, pacing needs {floor:?}");
    let stats = client.stats(USERS_LIST);
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert_eq!(stats.retries, 0, "{stats:?}");
    assert_eq!(stats.calls, calls);
    assert!(stats.rate_wait >= floor / 2, "{stats:?}");
    assert!(client.report(&[USERS_LIST]).rate_wait_ms > 0);

    // Concurrency on one bucket: still paced, still no 429s.
    let ids = BTreeSet::from_iter(expected_ids(&sim));
    let runs = futures::future::join_all((0..3).map(|_| all_users(&client, &team, 25))).await;
    for batches in runs {
        assert_eq!(BTreeSet::from_iter(strings(&batches, "user_id")), ids);
    }
    assert_eq!(client.stats(USERS_LIST).rate_limited, 0);
}

fn run_context(cfg: &SlackConfig, client: Arc<SlackClient>, scope: crate::slack::Scope) -> crate::slack::RunContext {
    crate::slack::RunContext {
        client,
        scope: Arc::new(scope),
        date: today(),
        collected_at: collected_at(),
        watermarks: BTreeMap::new(),
        settings: crate::slack::Settings::from(cfg),
    }
}

#[tokio::test]
async fn discovery_lists_a_grid_organisations_workspaces_only_for_an_org_level_token() {
    let sim = start(120, Plan::Enterprise, 30, Vec::new()).await;
    let cfg = config(&sim);
    let org = crate::slack::discover(&client_with(&cfg, sim.org_token().unwrap())).await.unwrap();
    assert!(org.org_level());
    assert_eq!(org.workspaces.iter().map(|w| w.id.clone()).collect::<Vec<_>>(), sim.org().workspace_ids());
    assert!(org.workspaces.iter().all(|w| w.domain.is_some() && w.name.is_some()), "{:?}", org.workspaces);
    assert_eq!(org.org_key(), sim.org().enterprise_id().unwrap());
    let ws = crate::slack::discover(&client(&sim)).await.unwrap();
    assert!(!ws.org_level());
    assert_eq!(ws.workspaces.len(), 1);
    assert_eq!(ws.workspaces[0].id, sim.org().team_id());
}

#[tokio::test]
async fn probes_sort_capability_errors_from_sources_that_work() {
    use crate::slack::{Probe, collector, probe};
    let sim = start(60, Plan::Pro, 30, Vec::new()).await;
    let cfg = config(&sim);
    let client = client(&sim);
    let scope = crate::slack::discover(&client).await.unwrap();
    let ctx = run_context(&cfg, Arc::clone(&client), scope);
    let mut works = BTreeSet::new();
    for s in Source::ALL {
        match probe(collector(s).as_ref(), &ctx).await.unwrap() {
            Probe::Works => {
                works.insert(s);
            }
            Probe::Unavailable(e) => assert!(e.is_capability(), "{s}: {e}"),
        }
    }
    let expect: BTreeSet<Source> =
        [Source::Workspaces, Source::Users, Source::Billing, Source::Usergroups, Source::AccessLogs].into();
    assert_eq!(works, expect);
    // One cheap call each.
    for m in ["team.info", "users.list", "team.billableInfo", "usergroups.list", "team.accessLogs"] {
        assert_eq!(sim.call_count(m), 1, "{m}");
    }
}
