//! The client and the collectors against hostile servers over real loopback HTTP: cursor
//! cycles, servers that ignore `startIndex` or `before`, endless empty pages, bodies without
//! end, a gzip bomb, 429 storms, the run deadline. These servers are deliberately not Slack
//! (the simulator stays faithful to Slack); each answers one way a broken or malicious server,
//! or a proxy in front of Slack, could.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use futures::TryStreamExt;
use lastseen_config::{RateLimitConfig, RetryConfig, SlackConfig, Source, TokenSource};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use crate::slack::collector::{Collector, RunContext, Scope, Settings, Workspace};
use crate::slack::{AccessLogWindow, access_logs, users};
use crate::{AuthInfo, IngestError, SlackClient};

const TOKEN: &str = "xoxp-HOSTILE-SENTINEL";

/// One request as the handler sees it.
#[derive(Debug, Clone)]
struct Request {
    query: BTreeMap<String, String>,
    authorization: Option<String>,
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(body: serde_json::Value) -> Reply {
        Reply { status: 200, headers: vec![("content-type", "application/json".into())], body: body.to_string().into() }
    }
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// A minimal HTTP/1.1 server on 127.0.0.1: one request per connection, answered by `handler`.
/// Returns its base URL and the requests it saw.
async fn serve(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> (Url, Arc<Mutex<Vec<Request>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler: Handler = Arc::new(handler);
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (handler, log) = (Arc::clone(&handler), Arc::clone(&log));
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let target = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let url = Url::parse(&format!("http://h{target}")).unwrap();
                let authorization = text
                    .lines()
                    .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("authorization")))
                    .map(|(_, v)| v.trim().to_owned());
                let req = Request { query: url.query_pairs().into_owned().collect(), authorization };
                log.lock().unwrap().push(req.clone());
                let reply = handler(&req);
                let mut out = format!(
                    "HTTP/1.1 {} X\r\nconnection: close\r\ncontent-length: {}\r\n",
                    reply.status,
                    reply.body.len()
                );
                for (k, v) in &reply.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.write_all(&reply.body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (Url::parse(&format!("http://{addr}/api/")).unwrap(), seen)
}

fn config(api_url: &Url) -> SlackConfig {
    SlackConfig {
        api_url: api_url.clone(),
        token: TokenSource::Env("SLACK_TOKEN".into()),
        sources: Source::ALL.to_vec(),
        auto_sources: true,
        gov: false,
        scim_url: None,
        audit_url: None,
        allow_custom_hosts: false,
        users_page_size: 2,
        access_logs_page_size: 2,
        access_logs_overlap: Duration::ZERO,
        request_timeout: Duration::from_secs(30),
        concurrency: 2,
        run_deadline: Duration::from_secs(600),
        retry: RetryConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            min_retry_after: Duration::from_millis(1),
            max_retry_after: Duration::from_millis(5),
            rate_limit_budget: Duration::from_secs(60),
        },
        rate_limits: RateLimitConfig { enabled: false, per_minute: [1, 20, 50, 100] },
    }
}

fn client(cfg: &SlackConfig) -> Arc<SlackClient> {
    Arc::new(SlackClient::new(cfg, SecretString::from(TOKEN)).unwrap())
}

fn context(cfg: &SlackConfig) -> Arc<RunContext> {
    let auth = AuthInfo {
        team_id: "T1".into(),
        team: "Hostile".into(),
        user_id: "U1".into(),
        url: String::new(),
        bot_id: None,
        enterprise_id: Some("E1".into()),
        is_enterprise_install: false,
        scopes: None,
    };
    Arc::new(RunContext {
        client: client(cfg),
        scope: Arc::new(Scope {
            auth,
            workspaces: vec![Workspace { id: "T1".into(), name: None, domain: None }],
            not_granted: Vec::new(),
        }),
        date: NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
        collected_at: Utc.with_ymd_and_hms(2025, 3, 31, 23, 0, 0).unwrap(),
        watermarks: BTreeMap::new(),
        settings: Settings::from(cfg),
    })
}

fn member(id: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "team_id": "T1", "name": id, "deleted": false, "profile": {}})
}

#[tokio::test]
async fn a_cursor_cycle_a_b_a_fails_the_source_at_its_first_repeat() {
    let (api, seen) = serve(|req| {
        let next = match req.query.get("cursor").map(String::as_str) {
            None | Some("B") => "A",
            Some(_) => "B",
        };
        Reply::json(
            serde_json::json!({"ok": true, "members": [member("U1")], "response_metadata": {"next_cursor": next}}),
        )
    })
    .await;
    let c = client(&config(&api));
    let err = users(Arc::clone(&c), "T1".into(), 2, Utc::now()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(matches!(err, IngestError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("already given"), "{err}");
    // No cursor,  A, B: the third answer hands A out again and the walk stops there.
    let cursors: Vec<Option<String>> = seen.lock().unwrap().iter().map(|r| r.query.get("cursor").cloned()).collect();
    assert_eq!(cursors, [None, Some("A".into()), Some("B".into())]);
}

#[tokio::test]
async fn a_scim_server_ignoring_start_index_is_caught_on_the_second_page() {
    // Always page 1, with a full page and no totalResults: today's walk would never end.
    let (api, seen) = serve(|_| {
        let resources: Vec<_> =
            (0..1000).map(|i| serde_json::json!({"id": format!("U{i}"), "userName": "x"})).collect();
        Reply::json(serde_json::json!({"schemas": [], "Resources": resources}))
    })
    .await;
    let ctx = context(&config(&api));
    let err = crate::slack::scim::ScimCollector.collect(ctx).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(matches!(err, IngestError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("ignore the paging"), "{err}");
    // Users and Groups are walked at once; each stops at its second page.
    assert!(seen.lock().unwrap().len() <= 4, "{} requests", seen.lock().unwrap().len());
}

#[tokio::test]
async fn access_logs_from_a_server_ignoring_before_stop() {
    let (api, seen) = serve(|_| {
        let login =
            |u: &str| serde_json::json!({"user_id": u, "date_first": 1_700_000_000, "date_last": 1_700_000_100});
        Reply::json(serde_json::json!({"ok": true, "logins": [login("U1"), login("U2")],
            "paging": {"count": 2, "total": 100_000, "page": 1, "pages": 50_000}}))
    })
    .await;
    let c = client(&config(&api));
    let err = access_logs(Arc::clone(&c), "T1".into(), AccessLogWindow::default(), 2, Utc::now())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, IngestError::Protocol { .. }), "{err}");
    // Two windows of 100 pages (`before` unset, then the oldest second) and one a second
    // earlier; the next would go back to the second window.
    assert_eq!(seen.lock().unwrap().len(), 300);
}

#[tokio::test]
async fn endless_empty_audit_pages_with_fresh_cursors_stop() {
    let n = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&n);
    let (api, _) = serve(move |_| {
        let i = count.fetch_add(1, Ordering::Relaxed);
        Reply::json(serde_json::json!({"entries": [], "response_metadata": {"next_cursor": format!("c{i}")}}))
    })
    .await;
    let ctx = context(&config(&api));
    let err = crate::slack::audit::window(&ctx, 0, 1).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(err.to_string().contains("empty pages in a row"), "{err}");
    // Three actions walk at once; the first to reach the cap ends the stream.
    assert!(n.load(Ordering::Relaxed) <= 3 * (crate::walk::MAX_EMPTY_PAGES_IN_A_ROW as usize + 1));
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_not_read() {
    let (api, _) = serve(|_| {
        let mut body = br#"{"ok":true,"members":[],"pad":""#.to_vec();
        body.resize(crate::http::MAX_JSON_BODY + 1024, b'x');
        body.extend_from_slice(br#""}"#);
        Reply { status: 200, headers: vec![("content-type", "application/json".into())], body }
    })
    .await;
    let c = client(&config(&api));
    let err = users(Arc::clone(&c), "T1".into(), 2, Utc::now()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(matches!(err, IngestError::Decode { retriable: false, .. }), "{err}");
    assert!(err.to_string().contains("larger than 64 MiB"), "{err}");
}

#[tokio::test]
async fn rate_limits_are_bounded_by_time_not_by_attempts() {
    // Ten 429s, then the answer: three attempts would have failed the run.
    let n = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&n);
    let (api, _) = serve(move |_| {
        if count.fetch_add(1, Ordering::Relaxed) < 10 {
            return Reply { status: 429, headers: vec![("retry-after", "0".into())], body: Vec::new() };
        }
        Reply::json(serde_json::json!({"ok": true, "members": [member("U1")]}))
    })
    .await;
    let cfg = config(&api);
    let c = client(&cfg);
    let batches = users(Arc::clone(&c), "T1".into(), 2, Utc::now()).try_collect::<Vec<_>>().await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert_eq!(c.stats(crate::slack::USERS_LIST).rate_limited, 10);

    // With no time left in the budget, the first 429 ends the call.
    let (api, _) = serve(|_| Reply { status: 429, headers: vec![("retry-after", "1".into())], body: Vec::new() }).await;
    let mut cfg = config(&api);
    cfg.retry.rate_limit_budget = Duration::ZERO;
    let c = client(&cfg);
    let err = users(Arc::clone(&c), "T1".into(), 2, Utc::now()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(matches!(err, IngestError::RetriesExhausted { attempts: 1, .. }), "{err}");
}

#[tokio::test]
async fn nothing_starts_after_the_run_deadline() {
    let (api, seen) = serve(|_| Reply::json(serde_json::json!({"ok": true, "members": []}))).await;
    let mut cfg = config(&api);
    cfg.run_deadline = Duration::ZERO;
    let c = client(&cfg);
    let err = users(Arc::clone(&c), "T1".into(), 2, Utc::now()).try_collect::<Vec<_>>().await.unwrap_err();
    assert!(matches!(err, IngestError::Deadline { .. }), "{err}");
    assert!(err.to_string().contains("slack.run_deadline"), "{err}");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_token_travels_only_in_the_authorization_header() {
    let (api, seen) = serve(|_| Reply::json(serde_json::json!({"ok": true, "members": []}))).await;
    let c = client(&config(&api));
    users(Arc::clone(&c), "T1".into(), 2, Utc::now()).try_collect::<Vec<_>>().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    assert!(seen.iter().all(|r| r.query.values().all(|v| !v.contains("SENTINEL"))));
}

/// A gzip stream of `chunks` MiB of `a` without one newline, about 1 KiB per MiB: one block
/// compressed with a full flush (so it stands alone) and repeated, then the trailer.
fn gzip_bomb(chunks: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    let chunk = vec![b'a'; 1 << 20];
    let mut deflate = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(1 << 20);
    deflate.compress_vec(&chunk, &mut block, FlushCompress::Full).unwrap();
    assert_eq!(deflate.total_in(), chunk.len() as u64);
    let mut tail = Vec::with_capacity(64);
    deflate.compress_vec(&[], &mut tail, FlushCompress::Finish).unwrap();
    let mut crc = Crc::new();
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..chunks {
        crc.update(&chunk);
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&tail);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
    out
}

#[test]
fn the_gzip_bomb_is_what_it_claims() {
    let bomb = gzip_bomb(4);
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bomb[..]), &mut inflated).unwrap();
    assert_eq!(inflated.len(), 4 << 20);
    assert!(inflated.iter().all(|b| *b == b'a'));
}

const BOMB_CHILD: &str = "LASTSEEN_TEST_GZIP_BOMB_CHILD";

/// Run in a child process by [`a_gzip_bomb_fails_as_a_decode_error_in_bounded_memory`], so its
/// peak memory is its own: reads one member-analytics day whose file is a gzip bomb.
#[test]
fn gzip_bomb_child() {
    if std::env::var_os(BOMB_CHILD).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let bomb = Arc::new(gzip_bomb(1024));
        assert!(bomb.len() < 1_200_000, "{} bytes", bomb.len());
        let file = Arc::clone(&bomb);
        let (api, _) = serve(move |_| Reply {
            status: 200,
            headers: vec![("content-type", "application/gzip".into())],
            body: file.to_vec(),
        })
        .await;
        let ctx = context(&config(&api));
        let day = ctx.date;
        let err = crate::slack::analytics::backfill_days(ctx, vec![day]).try_collect::<Vec<_>>().await.unwrap_err();
        println!("ERROR={err}");
        assert!(matches!(err, IngestError::Decode { .. }), "{err}");
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap().to_owned();
    println!("PEAK {hwm}");
}

#[test]
fn a_gzip_bomb_fails_as_a_decode_error_in_bounded_memory() {
    if !std::path::Path::new("/proc/self/status").exists() {
        return; // peak RSS is read from procfs (Linux)
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hostile_tests::gzip_bomb_child", "--nocapture", "--test-threads=1"])
        .env(BOMB_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ERROR=admin.analytics.getFile: could not read the response"), "{stdout}");
    let kb: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PEAK VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {stdout}"));
    assert!(kb < 256 * 1024, "peak RSS {kb} kB");
}
