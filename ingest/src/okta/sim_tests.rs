//! The Okta client and sources against okta-sim over real loopback HTTP, compared with the
//! simulator's ground truth: the user snapshot, incremental System Log windows with late
//! events, rate limits, errors, link safety, malformed bodies and the 90-day backfill limit.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use futures::StreamExt;
use lastseen_config::{OktaConfig, OktaCredentials, OktaSource, RetryConfig, TokenSource};
use lastseen_okta_sim::{
    FaultKind, FaultRule, FaultWhen, OAuthClient, OTHER_OAUTH_PRIVATE_KEY_PEM, OktaOrgSpec, OktaSimConfig,
    OktaSimulator, RateLimits, RunningOktaSim, TEST_OAUTH_PRIVATE_KEY_PEM,
};
use secrecy::SecretString;

use super::{Clock, LOGS, OktaApp, USERS, WATERMARK};
use crate::IngestError;
use crate::source::{App, AppSource, Item, Past, Probe, RunInfo, Window};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The simulator's last day.
fn today() -> NaiveDate {
    day(2026, 6, 30)
}

fn at(d: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(h, m, 0).unwrap())
}

/// An Okta org sharing its people with a slack-sim org, like the simulator's own tests.
fn spec(people: usize) -> OktaOrgSpec {
    let slack = lastseen_slack_sim::Org::generate(&lastseen_slack_sim::OrgSpec::new(
        7,
        people,
        lastseen_slack_sim::Plan::BusinessPlus,
        today(),
        120,
    ));
    OktaOrgSpec::from_slack(&slack, 11)
}

async fn start(config: OktaSimConfig) -> RunningOktaSim {
    OktaSimulator::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn config(org_url: &str) -> OktaConfig {
    OktaConfig {
        org_url: url::Url::parse(&format!("{org_url}/")).unwrap(),
        allow_custom_hosts: false,
        credentials: OktaCredentials::ApiToken(TokenSource::Env("OKTA_API_TOKEN".into())),
        sources: OktaSource::ALL.to_vec(),
        users_page_size: 200,
        logs_page_size: 1000,
        logs_overlap: Duration::from_secs(3600),
        logs_lag: Duration::from_secs(300),
        logs_first_run_days: 3,
        event_types: vec!["user.session.start".into(), "user.authentication.sso".into()],
        apps: BTreeMap::from([("slack".to_owned(), vec!["Slack".to_owned()])]),
        request_timeout: Duration::from_secs(10),
        run_deadline: Duration::from_secs(600),
        retry: RetryConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(20),
            min_retry_after: Duration::ZERO,
            max_retry_after: Duration::from_secs(10),
            rate_limit_budget: Duration::from_secs(60),
        },
    }
}

/// The app with the simulator's clock (shared with the test, which moves both together).
fn make_app(cfg: &OktaConfig, token: &str, clock: &Arc<AtomicI64>) -> OktaApp {
    let c = Arc::clone(clock);
    let now: Clock = Arc::new(move || DateTime::from_timestamp(c.load(Ordering::SeqCst), 0).unwrap_or_default());
    OktaApp::new(cfg, SecretString::from(token.to_owned())).unwrap().with_clock(now)
}

fn set_now(sim: &RunningOktaSim, clock: &AtomicI64, t: DateTime<Utc>) {
    sim.set_now(t);
    clock.store(t.timestamp(), Ordering::SeqCst);
}

fn run(date: NaiveDate, watermarks: &[(&str, i64)]) -> Arc<RunInfo> {
    Arc::new(RunInfo {
        date,
        collected_at: at(date, 23, 59),
        watermarks: watermarks.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
    })
}

fn source(app: &OktaApp, name: &str) -> Box<dyn AppSource> {
    app.built_sources().into_iter().find(|s| s.name() == name).unwrap()
}

/// Every item of a collection, or the first error.
async fn items(src: &dyn AppSource, run: Arc<RunInfo>) -> Result<Vec<Item>, IngestError> {
    src.collect(run).collect::<Vec<_>>().await.into_iter().collect()
}

fn batches(items: &[Item]) -> Vec<&RecordBatch> {
    items.iter().filter_map(|i| if let Item::Rows { batch, .. } = i { Some(batch) } else { None }).collect()
}

fn watermark(items: &[Item]) -> Option<i64> {
    items
        .iter()
        .find_map(|i| if let Item::Watermark { key, value } = i { (key == WATERMARK).then_some(*value) } else { None })
}

fn text(batches: &[&RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name(column).unwrap().as_string::<i32>();
            (0..col.len()).map(|i| col.is_valid(i).then(|| col.value(i).to_owned())).collect::<Vec<_>>()
        })
        .collect()
}

fn times(batches: &[&RecordBatch], column: &str) -> Vec<Option<DateTime<Utc>>> {
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name(column).unwrap().as_primitive::<TimestampMicrosecondType>();
            (0..col.len())
                .map(|i| col.is_valid(i).then(|| DateTime::from_timestamp_micros(col.value(i)).unwrap_or_default()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn the_user_snapshot_equals_the_ground_truth_every_status_included() {
    let spec = spec(120);
    let sim = start(OktaSimConfig::new(spec.clone())).await;
    let clock = Arc::new(AtomicI64::new(0));
    set_now(&sim, &clock, at(today(), 12, 0));
    let truth = sim.ground_truth();
    let mut cfg = config(&sim.org_url());
    cfg.users_page_size = 25;
    let app = make_app(&cfg, sim.api_token(), &clock);
    let connected = app.connect().await.unwrap();
    assert!(connected.describe.contains(&sim.org_url()) && !connected.describe.contains(sim.api_token()));
    let names: Vec<String> = connected.sources.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["okta_users", "okta_logs"]);
    let users = source(&app, "okta_users");
    assert!(users.required());
    let got = items(users.as_ref(), run(today(), &[])).await.unwrap();
    let b = batches(&got);

    let ids = text(&b, "user_id");
    let rows: BTreeMap<String, usize> = ids.iter().enumerate().map(|(i, id)| (id.clone().unwrap(), i)).collect();
    assert_eq!(rows.len(), ids.len(), "every user once");
    let expected: BTreeSet<String> = truth.users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(rows.keys().cloned().collect::<BTreeSet<_>>(), expected, "every user, DEPROVISIONED included");
    let (status, login, email, last_login) =
        (text(&b, "status"), text(&b, "login"), text(&b, "email"), times(&b, "last_login"));
    for u in &truth.users {
        let i = rows[&u.id];
        assert_eq!(status[i].as_deref(), Some(u.status.as_str()), "{}", u.id);
        assert_eq!((login[i].as_deref(), email[i].as_deref()), (Some(u.login.as_str()), Some(u.email.as_str())));
        assert_eq!(last_login[i], u.last_login, "{}", u.id);
    }
    let statuses: BTreeSet<String> = status.into_iter().flatten().collect();
    assert_eq!(statuses.len(), 8, "all eight statuses: {statuses:?}");
    // Profiles: department, employee number and user type as HR gave them; the manager's id
    // is the Okta user with the manager's email.
    let (dept, number, kind, manager_id) =
        (text(&b, "department"), text(&b, "employee_number"), text(&b, "user_type"), text(&b, "manager_id"));
    let id_by_email: BTreeMap<String, String> =
        truth.users.iter().map(|u| (u.email.to_ascii_lowercase(), u.id.clone())).collect();
    let mut checked = 0;
    for p in &spec.people {
        let Some(id) = id_by_email.get(&p.email.to_ascii_lowercase()) else { continue };
        let i = rows[id];
        assert_eq!((&dept[i], &number[i], &kind[i]), (&p.department, &p.employee_number, &p.user_type), "{}", p.email);
        let manager = p.manager_email.as_ref().and_then(|m| id_by_email.get(&m.to_ascii_lowercase())).cloned();
        assert_eq!(manager_id[i], manager, "{}", p.email);
        checked += 1;
    }
    assert!(checked >= 100, "{checked}");
    let stats = app.client().stats(USERS);
    // 5 pages unfiltered (probe in connect, then ⌈n/25⌉), plus the DEPROVISIONED listing.
    assert!(stats.pages >= 6 && stats.rows as usize >= expected.len(), "{stats:?}");
}

/// The uuids of the truth events of the collected types published in `[since, until)`.
fn expected_uuids(sim: &RunningOktaSim, since: i64, until: i64) -> BTreeSet<String> {
    sim.org()
        .log_events(since * 1000, until * 1000)
        .into_iter()
        .filter(|e| matches!(e.event_type.as_str(), "user.session.start" | "user.authentication.sso"))
        .map(|e| e.uuid)
        .collect()
}

#[tokio::test]
async fn two_incremental_runs_read_every_matching_event_once_late_ones_included() {
    let mut spec = spec(80);
    // Many late events, up to the overlap: the re-read must find every one of them.
    spec.late_fraction = 0.3;
    spec.late_max_secs = 3_000;
    let sim = start(OktaSimConfig::new(spec)).await;
    let clock = Arc::new(AtomicI64::new(0));
    let mut cfg = config(&sim.org_url());
    cfg.logs_page_size = 50;
    let app = make_app(&cfg, sim.api_token(), &clock);
    let logs = source(&app, "okta_logs");
    let d = today().pred_opt().unwrap();

    // Run 1, in the afternoon of the run day: no watermark, three days back.
    let t1 = at(d, 14, 0);
    set_now(&sim, &clock, t1);
    let first = items(logs.as_ref(), run(d, &[])).await.unwrap();
    let until1 = t1.timestamp() - 300;
    let since1 = until1 - 3 * 86_400;
    assert_eq!(watermark(&first), Some(until1));
    // Run 2, the next night: the same run day, read to its end (minus the lag) from the
    // watermark minus the overlap.
    let t2 = at(today(), 2, 0);
    set_now(&sim, &clock, t2);
    let second = items(logs.as_ref(), run(d, &[(WATERMARK, until1)])).await.unwrap();
    let until2 = t2.timestamp().min(at(today(), 0, 0).timestamp()) - 300;
    assert_eq!(watermark(&second), Some(until2));

    let (b1, b2) = (batches(&first), batches(&second));
    let (u1, u2) = (text(&b1, "uuid"), text(&b2, "uuid"));
    assert_eq!(u1.iter().collect::<HashSet<_>>().len(), u1.len(), "run 1 reads each event once");
    assert_eq!(u2.iter().collect::<HashSet<_>>().len(), u2.len(), "run 2 reads each event once");
    let union: BTreeSet<String> = u1.iter().chain(&u2).flatten().cloned().collect();
    let expected = expected_uuids(&sim, since1, until2);
    let missing: Vec<_> = expected.difference(&union).collect();
    let extra: Vec<_> = union.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}");

    // The late events run 1 could not see were there for run 2.
    let run1: BTreeSet<String> = u1.iter().flatten().cloned().collect();
    let late: Vec<String> = sim
        .org()
        .log_events(since1 * 1000, until1 * 1000)
        .into_iter()
        .filter(|e| e.persisted > t1 && expected.contains(&e.uuid))
        .map(|e| e.uuid)
        .collect();
    assert!(!late.is_empty(), "the test needs late events");
    assert!(late.iter().all(|u| !run1.contains(u) && u2.iter().flatten().any(|x| x == u)));

    // Without the overlap, those late events are lost: the comparison above can fail.
    let mut no_overlap = cfg.clone();
    no_overlap.logs_overlap = Duration::ZERO;
    let blind = make_app(&no_overlap, sim.api_token(), &clock);
    let again = items(source(&blind, "okta_logs").as_ref(), run(d, &[(WATERMARK, until1)])).await.unwrap();
    let seen: BTreeSet<String> =
        run1.iter().cloned().chain(text(&batches(&again), "uuid").into_iter().flatten()).collect();
    assert!(late.iter().any(|u| !seen.contains(u)), "without an overlap some late event is lost");

    // Rows carry the event: SSOs into the Slack instance map to `slack`, others to nothing.
    let all: Vec<&RecordBatch> = b1.iter().chain(&b2).copied().collect();
    let (kinds, labels, mapped, actors) =
        (text(&all, "event_type"), text(&all, "target_app_label"), text(&all, "mapped_app"), text(&all, "actor_id"));
    let slack_id = sim.org().slack_app().id.clone();
    let app_ids = text(&all, "target_app_id");
    let mut ssos = 0;
    for i in 0..kinds.len() {
        assert!(actors[i].is_some());
        if kinds[i].as_deref() == Some("user.authentication.sso") {
            ssos += 1;
            let is_slack = app_ids[i].as_deref() == Some(slack_id.as_str());
            assert_eq!(is_slack, labels[i].as_deref() == Some("Slack"));
            assert_eq!(mapped[i].as_deref(), is_slack.then_some("slack"));
        } else {
            assert_eq!((&app_ids[i], &mapped[i]), (&None, &None));
        }
    }
    assert!(ssos > 0);
    // Pages were short of 1000: the page size was honoured and paging followed `next`.
    assert!(app.client().stats(LOGS).pages > 3);
}

#[tokio::test]
async fn a_watermark_never_moves_back_and_a_window_older_than_it_reads_nothing() {
    let sim = start(OktaSimConfig::new(spec(20))).await;
    let clock = Arc::new(AtomicI64::new(0));
    set_now(&sim, &clock, at(today(), 12, 0));
    let app = make_app(&config(&sim.org_url()), sim.api_token(), &clock);
    let logs = source(&app, "okta_logs");
    // A run of an earlier day after later days were read: nothing to read, no watermark.
    let later = at(today(), 11, 0).timestamp();
    let got = items(logs.as_ref(), run(day(2026, 6, 20), &[(WATERMARK, later)])).await.unwrap();
    assert!(got.is_empty(), "{got:?}");
    // A run of a day whose end is newer than the watermark: published at least at the old one.
    let got = items(logs.as_ref(), run(today(), &[(WATERMARK, later)])).await.unwrap();
    assert_eq!(watermark(&got), Some(at(today(), 11, 55).timestamp()));
}

#[tokio::test]
async fn enforced_rate_limits_and_a_429_are_waited_out_and_counted() {
    let mut config_sim = OktaSimConfig::new(spec(60));
    // Three calls per two-second window; the second call of `users` answers 429 with a reset
    // one second ahead.
    config_sim.rate_limits = RateLimits::enforced(3, 3, 2);
    config_sim.faults = vec![FaultRule::new("users", FaultWhen::Nth(2), FaultKind::RateLimited { reset_secs: 1 })];
    let sim = start(config_sim).await;
    let clock = Arc::new(AtomicI64::new(0));
    set_now(&sim, &clock, at(today(), 12, 0));
    let truth = sim.ground_truth();
    let mut cfg = config(&sim.org_url());
    cfg.users_page_size = 20;
    let app = make_app(&cfg, sim.api_token(), &clock);
    let got = items(source(&app, "okta_users").as_ref(), run(today(), &[])).await.unwrap();
    let ids: BTreeSet<String> = text(&batches(&got), "user_id").into_iter().flatten().collect();
    assert_eq!(ids, truth.users.iter().map(|u| u.id.clone()).collect::<BTreeSet<_>>());
    let stats = app.client().stats(USERS);
    assert_eq!(stats.rate_limited, 1, "only the injected 429: pacing kept under the limit {stats:?}");
    assert_eq!(stats.retries, 1, "{stats:?}");
    assert!(stats.rate_wait >= Duration::from_secs(2), "waited for resets: {stats:?}");
    let report = app.report(&[USERS]);
    assert_eq!((report.rate_limited, report.retries), (1, 1));
    assert!(report.rate_wait_ms >= 2_000, "{report:?}");
}

#[tokio::test]
async fn a_rejected_token_fails_naming_okta_its_code_and_the_token_source_never_the_token() {
    let sim = start(OktaSimConfig::new(spec(10))).await;
    let clock = Arc::new(AtomicI64::new(0));
    set_now(&sim, &clock, at(today(), 12, 0));
    let secret = "00notTheTokenAtAll0000000000000000000000ab";
    let app = make_app(&config(&sim.org_url()), secret, &clock);
    let err = app.connect().await.err().expect("a bad token fails connect");
    assert!(err.is_auth(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("Okta /api/v1/users") && msg.contains("E0000011"), "{msg}");
    assert!(msg.contains("env OKTA_API_TOKEN") && !msg.contains(secret), "{msg}");
    assert!(!format!("{:?}", app.client()).contains(secret));
    // A token whose admin may not read the System Log: the logs source is unavailable, not a
    // failed run.
    let denied = make_app(&config(&sim.org_url()), sim.logs_denied_token(), &clock);
    let probe = source(&denied, "okta_logs").probe(&run(today(), &[])).await.unwrap();
    match probe {
        Probe::Unavailable(e) => assert!(e.is_capability() && e.to_string().contains("E0000006"), "{e}"),
        Probe::Works => panic!("the logs-denied token cannot read the System Log"),
    }
    assert!(matches!(source(&denied, "okta_users").probe(&run(today(), &[])).await, Ok(Probe::Works)));
}

#[tokio::test]
async fn a_malformed_body_fails_naming_the_endpoint() {
    let mut config_sim = OktaSimConfig::new(spec(10));
    config_sim.faults = vec![FaultRule::new("users", FaultWhen::EveryNth(1), FaultKind::Malformed)];
    let sim = start(config_sim).await;
    let clock = Arc::new(AtomicI64::new(0));
    set_now(&sim, &clock, at(today(), 12, 0));
    let app = make_app(&config(&sim.org_url()), sim.api_token(), &clock);
    let err = items(source(&app, "okta_users").as_ref(), run(today(), &[])).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("Okta /api/v1/users") && msg.contains("could not read the response"), "{msg}");
    assert_eq!(sim.call_count("users"), 3, "retried up to max_attempts, as a damaged transfer: {msg}");
}

/// A server answering one page of users whose `next` link is `next(own base URL)`.
async fn one_page_server(next: impl Fn(&str) -> String + Send + 'static) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let link = next(&url);
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let body = r#"[{"id":"00u1","status":"ACTIVE","created":"2026-01-01T00:00:00.000Z","profile":{}}]"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlink: <{link}>; rel=\"next\"\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_next_link_to_another_host_or_path_is_refused() {
    // The "other host" counts connections: the token must never reach it.
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_url = format!("http://{}", other.local_addr().unwrap());
    let hits = Arc::new(AtomicI64::new(0));
    let counter = Arc::clone(&hits);
    let other_task = tokio::spawn(async move {
        while other.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let clock = Arc::new(AtomicI64::new(Utc::now().timestamp()));
    let to_other = other_url.clone();
    let (url, task) = one_page_server(move |_| format!("{to_other}/api/v1/users?after=00u1")).await;
    let cases = vec![(url, task, other_url.clone())];
    let (url, task) = one_page_server(|own| format!("{own}/api/v1/groups?after=00u1")).await;
    let mut cases = cases;
    cases.push((url, task, "/api/v1/groups".to_owned()));
    for (url, task, says) in cases {
        let app = make_app(&config(&url), "00token", &clock);
        let err = items(source(&app, "okta_users").as_ref(), run(today(), &[])).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, IngestError::Protocol { .. }), "{msg}");
        assert!(msg.contains("refusing to follow") && msg.contains(&says), "{msg}");
        task.abort();
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was sent to the other host");
    other_task.abort();
}

#[tokio::test]
async fn a_backfill_reads_the_last_90_days_and_names_the_days_older_than_that() {
    let sim = start(OktaSimConfig::new(spec(30))).await;
    let clock = Arc::new(AtomicI64::new(0));
    let now = at(today(), 12, 0);
    set_now(&sim, &clock, now);
    let app = make_app(&config(&sim.org_url()), sim.api_token(), &clock);
    let logs = source(&app, "okta_logs");
    assert!(logs.history().is_some());
    // 95 to 85 days back: the first days are gone.
    let window = Window { from: today() - chrono::Days::new(95), to: today() - chrono::Days::new(85) };
    let read: Vec<Past> =
        logs.read_past(run(today(), &[]), window).collect::<Vec<_>>().await.into_iter().map(Result::unwrap).collect();
    let floor = now.timestamp() - 90 * 86_400;
    let gone: Vec<NaiveDate> = read
        .iter()
        .filter_map(|p| {
            if let Past::Unavailable { day, why } = p {
                assert!(why.contains("90 days"));
                Some(*day)
            } else {
                None
            }
        })
        .collect();
    let expected_gone: Vec<NaiveDate> =
        window.days().into_iter().filter(|d| crate::source::start_of_day(*d) + 86_400 <= floor).collect();
    assert_eq!(gone, expected_gone);
    assert_eq!(gone.len(), 5, "{gone:?}");
    let rows: Vec<Item> = read.into_iter().filter_map(|p| if let Past::Item(i) = p { Some(i) } else { None }).collect();
    let uuids: BTreeSet<String> = text(&batches(&rows), "uuid").into_iter().flatten().collect();
    assert_eq!(uuids, expected_uuids(&sim, floor, window.end() + 1));
    assert!(!uuids.is_empty());
    assert_eq!(watermark(&rows), Some(window.end() + 1));
}

#[tokio::test]
async fn a_server_timeout_is_retried_and_a_next_link_going_in_circles_is_refused() {
    let mut config_sim = OktaSimConfig::new(spec(40));
    // The first logs call answers Okta's E0000009 (HTTP 500); the users listing's second page
    // links back to itself.
    config_sim.faults = vec![
        FaultRule::new("logs", FaultWhen::Nth(1), FaultKind::Timeout),
        FaultRule::new("users", FaultWhen::Nth(2), FaultKind::RepeatCursor),
    ];
    let sim = start(config_sim).await;
    let clock = Arc::new(AtomicI64::new(0));
    let now = at(today(), 12, 0);
    set_now(&sim, &clock, now);
    let mut cfg = config(&sim.org_url());
    cfg.users_page_size = 10;
    cfg.logs_first_run_days = 1;
    let app = make_app(&cfg, sim.api_token(), &clock);
    let got = items(source(&app, "okta_logs").as_ref(), run(today(), &[])).await.unwrap();
    let until = now.timestamp() - 300;
    let uuids: BTreeSet<String> = text(&batches(&got), "uuid").into_iter().flatten().collect();
    assert_eq!(uuids, expected_uuids(&sim, until - 86_400, until));
    let stats = app.client().stats(LOGS);
    assert_eq!((stats.retries, stats.rate_limited), (1, 0), "{stats:?}");
    let err = items(source(&app, "okta_users").as_ref(), run(today(), &[])).await.unwrap_err();
    assert!(matches!(err, IngestError::Protocol { .. }) && err.to_string().contains("Okta /api/v1/users"), "{err}");
    assert!(sim.call_count("users") <= 3, "stopped at once: {}", sim.call_count("users"));
}

#[tokio::test]
async fn a_first_run_reads_its_days_back_and_a_watermark_past_retention_is_reported() {
    let sim = start(OktaSimConfig::new(spec(10))).await;
    let clock = Arc::new(AtomicI64::new(0));
    let now = at(today(), 12, 0);
    set_now(&sim, &clock, now);
    let mut cfg = config(&sim.org_url());
    cfg.logs_first_run_days = 90;
    let app = make_app(&cfg, sim.api_token(), &clock);
    let logs = super::LogsSource::new(Arc::clone(app.client()), Arc::new(cfg.clone()), {
        let c = Arc::clone(&clock);
        Arc::new(move || DateTime::from_timestamp(c.load(Ordering::SeqCst), 0).unwrap_or_default())
    });
    let until = now.timestamp() - 300;
    let floor = now.timestamp() - 90 * 86_400;
    let first = logs.daily_window(&run(today(), &[]));
    assert_eq!(first.read, Some((floor.max(until - 90 * 86_400), until)));
    assert_eq!(first.lost, None);
    // The last run was 100 days ago: the 10 days before the retention floor are gone, said once.
    let old = now.timestamp() - 100 * 86_400;
    let stale = logs.daily_window(&run(today(), &[(WATERMARK, old)]));
    assert_eq!(stale.read, Some((floor, until)));
    assert_eq!(stale.lost, Some((old - 3600, floor)));
    let got = items(&logs, run(today(), &[(WATERMARK, old)])).await.unwrap();
    assert!(matches!(&got[0], Item::Warning(w) if w.contains("90-day retention")), "{:?}", got.first());
    assert_eq!(watermark(&got), Some(until));
}

/// Stages a run's items in one lake transaction the way the daily run does, and commits.
async fn commit(lake: &lastseen_lake::Lake, lease: &lastseen_lake::LockGuard, items: Vec<Item>, dt: NaiveDate) {
    let mut tx = lake.begin(lease).await.unwrap();
    for item in items {
        match item {
            Item::Rows { table, batch } => tx.write(table, dt, batch).unwrap(),
            Item::Watermark { key, value } => tx.set_watermark(key, value),
            other => panic!("unexpected item {other:?}"),
        }
    }
    tx.commit().await.unwrap();
}

async fn count(lake: &lastseen_lake::Lake, sql: &str) -> Vec<i64> {
    let ctx = datafusion::prelude::SessionContext::new();
    lastseen_lake::LakeTable::register_all(&ctx, lake, &lake.snapshot().await.unwrap()).unwrap();
    let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    (0..b[0].num_columns())
        .map(|c| b[0].column(c).as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(0))
        .collect()
}

#[tokio::test]
async fn two_runs_committed_to_the_lake_hold_every_event_once_in_its_day() {
    let mut spec = spec(40);
    spec.late_fraction = 0.3;
    spec.late_max_secs = 3_000;
    let sim = start(OktaSimConfig::new(spec)).await;
    let clock = Arc::new(AtomicI64::new(0));
    let app = make_app(&config(&sim.org_url()), sim.api_token(), &clock);
    let (users, logs) = (source(&app, "okta_users"), source(&app, "okta_logs"));
    let lake = lastseen_lake::Lake::open(&url::Url::parse("memory:///okta").unwrap(), &BTreeMap::new()).unwrap();
    let lease = lake.acquire_lock("okta-test", Duration::from_secs(60)).await.unwrap();
    let d = today().pred_opt().unwrap();
    let t1 = at(d, 14, 0);
    set_now(&sim, &clock, t1);
    let mut first = items(users.as_ref(), run(d, &[])).await.unwrap();
    first.extend(items(logs.as_ref(), run(d, &[])).await.unwrap());
    commit(&lake, &lease, first, d).await;
    let committed = lake.snapshot().await.unwrap().watermarks;
    let until1 = t1.timestamp() - 300;
    assert_eq!(committed.get(WATERMARK), Some(&until1));
    set_now(&sim, &clock, at(today(), 2, 0));
    let wm: Vec<(&str, i64)> = committed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    commit(&lake, &lease, items(logs.as_ref(), run(d, &wm)).await.unwrap(), d).await;

    let until2 = at(today(), 0, 0).timestamp() - 300;
    let expected = expected_uuids(&sim, until1 - 3 * 86_400, until2);
    let got = count(&lake, "SELECT count(*), count(DISTINCT uuid) FROM okta_log_events").await;
    assert_eq!(got, [expected.len() as i64; 2], "each event once, none missing");
    // Each row lies in the partition of its `published` day.
    let misplaced = count(&lake, "SELECT count(*) FROM okta_log_events WHERE CAST(published AS DATE) <> dt").await;
    assert_eq!(misplaced, [0]);
    let users_rows = count(&lake, "SELECT count(*) FROM okta_users").await;
    assert_eq!(users_rows, [sim.ground_truth().users.len() as i64]);
    assert_eq!(lake.snapshot().await.unwrap().watermarks.get(WATERMARK), Some(&until2));
}

/// A private key file readable only by its owner.
fn key_file(dir: &tempfile::TempDir, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, pem).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

fn oauth_config(org_url: &str, client_id: &str, key: &std::path::Path) -> OktaConfig {
    let mut cfg = config(org_url);
    cfg.credentials = OktaCredentials::PrivateKeyJwt {
        client_id: client_id.to_owned(),
        private_key: key.to_path_buf(),
        key_id: None,
        scopes: vec!["okta.users.read".into(), "okta.logs.read".into()],
    };
    cfg
}

#[tokio::test]
async fn oauth_with_a_private_key_reads_users_and_renews_its_access_token() {
    let mut config_sim = OktaSimConfig::new(spec(40));
    config_sim.oauth_clients = vec![
        OAuthClient::from_pem("0oaLastseen", TEST_OAUTH_PRIVATE_KEY_PEM, &["okta.users.read", "okta.logs.read"])
            .unwrap(),
        OAuthClient::from_pem("0oaUsersOnly", TEST_OAUTH_PRIVATE_KEY_PEM, &["okta.users.read"]).unwrap(),
    ];
    // Tokens live 3 s; every users call takes 2.3 s, longer than the 2.25 s the client uses a
    // token for, so each call needs a new token (no assertion on time itself).
    config_sim.access_token_ttl_secs = 3;
    config_sim.faults = vec![FaultRule::new("users", FaultWhen::EveryNth(1), FaultKind::Slow { millis: 2_300 })];
    let sim = start(config_sim).await;
    let clock = Arc::new(AtomicI64::new(0));
    set_now(&sim, &clock, at(today(), 12, 0));
    let truth = sim.ground_truth();
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(&dir, "okta.pem", TEST_OAUTH_PRIVATE_KEY_PEM);
    let cfg = oauth_config(&sim.org_url(), "0oaLastseen", &key);
    let c = Arc::clone(&clock);
    let app = OktaApp::with_oauth(&cfg)
        .unwrap()
        .with_clock(Arc::new(move || DateTime::from_timestamp(c.load(Ordering::SeqCst), 0).unwrap_or_default()));
    let connected = app.connect().await.unwrap();
    assert!(connected.describe.contains("OAuth client 0oaLastseen"), "{}", connected.describe);
    assert!(!format!("{:?}", app.client()).contains("PRIVATE KEY"));
    let got = items(source(&app, "okta_users").as_ref(), run(today(), &[])).await.unwrap();
    let ids: BTreeSet<String> = text(&batches(&got), "user_id").into_iter().flatten().collect();
    assert_eq!(ids, truth.users.iter().map(|u| u.id.clone()).collect::<BTreeSet<_>>());
    // connect, then the unfiltered page and the DEPROVISIONED page: one token each.
    assert_eq!(app.client().token_fetches(), 3);
    assert_eq!(sim.call_count("users"), 3, "no call was refused for an expired token");
    assert!(matches!(source(&app, "okta_logs").probe(&run(today(), &[])).await, Ok(Probe::Works)));
}

#[tokio::test]
async fn oauth_refusals_name_the_client_and_the_scope_and_never_the_key() {
    let mut config_sim = OktaSimConfig::new(spec(10));
    config_sim.oauth_clients = vec![
        OAuthClient::from_pem("0oaLastseen", TEST_OAUTH_PRIVATE_KEY_PEM, &["okta.users.read", "okta.logs.read"])
            .unwrap(),
        OAuthClient::from_pem("0oaUsersOnly", TEST_OAUTH_PRIVATE_KEY_PEM, &["okta.users.read"]).unwrap(),
    ];
    let sim = start(config_sim).await;
    let dir = tempfile::tempdir().unwrap();
    let good = key_file(&dir, "good.pem", TEST_OAUTH_PRIVATE_KEY_PEM);
    let other = key_file(&dir, "other.pem", OTHER_OAUTH_PRIVATE_KEY_PEM);
    // A key the app does not hold: invalid_client, an auth failure naming client and file.
    let app = OktaApp::with_oauth(&oauth_config(&sim.org_url(), "0oaLastseen", &other)).unwrap();
    let err = app.connect().await.err().expect("a foreign key is refused");
    let msg = err.to_string();
    assert!(err.is_auth() && msg.contains("invalid_client") && msg.contains("0oaLastseen"), "{msg}");
    assert!(msg.contains("other.pem") && !msg.contains("PRIVATE KEY"), "{msg}");
    // Scopes the app was not granted: invalid_scope, pointing at okta.scopes.
    let app = OktaApp::with_oauth(&oauth_config(&sim.org_url(), "0oaUsersOnly", &good)).unwrap();
    let msg = app.connect().await.err().expect("an ungranted scope is refused").to_string();
    assert!(msg.contains("invalid_scope") && msg.contains("okta.scopes"), "{msg}");
    // Granted users only: users work, the System Log is unavailable (403), not a failed run.
    let mut cfg = oauth_config(&sim.org_url(), "0oaUsersOnly", &good);
    cfg.credentials = match cfg.credentials {
        OktaCredentials::PrivateKeyJwt { client_id, private_key, key_id, .. } => {
            OktaCredentials::PrivateKeyJwt { client_id, private_key, key_id, scopes: vec!["okta.users.read".into()] }
        }
        other => other,
    };
    let app = OktaApp::with_oauth(&cfg).unwrap();
    app.connect().await.unwrap();
    match source(&app, "okta_logs").probe(&run(today(), &[])).await.unwrap() {
        Probe::Unavailable(e) => assert!(e.is_capability() && e.to_string().contains("E0000006"), "{e}"),
        Probe::Works => panic!("a token without okta.logs.read cannot read the System Log"),
    }
    // A key file others can read is refused before any call.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = OktaApp::with_oauth(&oauth_config(&sim.org_url(), "0oaLastseen", &good)).err().unwrap();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
