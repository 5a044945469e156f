//! Behaviour over real HTTP: users paging and statuses, both System Log request kinds, late
//! events, retention, tokens bound to their query, limits, auth, rate limits, faults, and the
//! organisation shared with slack-sim — each compared with the ground truth.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::contract_tests::{get, next_link, start, test_spec};
use crate::{FaultKind, FaultRule, FaultWhen, OktaOrg, OktaSimConfig, RateLimits, UserStatus};

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Follows `next` links from `first` until there is none (bounded) or a page is empty
/// (polling, whose next link never ends); returns every event and the last next link.
async fn drain(sim: &crate::RunningOktaSim, first: &str) -> (Vec<Value>, Option<String>) {
    let token = sim.api_token().to_owned();
    let mut all = Vec::new();
    let mut url = Some(first.to_owned());
    let mut last_next = None;
    while let Some(u) = url {
        let (status, headers, body) = get(sim, &u, Some(&token)).await;
        assert_eq!(status, 200, "{u}: {body}");
        let page = body.as_array().cloned().unwrap_or_default();
        let empty = page.is_empty();
        all.extend(page);
        last_next = next_link(&headers);
        url = if empty { None } else { last_next.clone() };
    }
    (all, last_next)
}

fn uuid(e: &Value) -> String {
    e["uuid"].as_str().unwrap_or_default().to_owned()
}

fn published(e: &Value) -> DateTime<Utc> {
    e["published"].as_str().and_then(|p| p.parse().ok()).unwrap_or_default()
}

#[tokio::test]
async fn users_pages_cover_every_status_and_omit_deprovisioned_without_a_filter() {
    let sim = start(OktaSimConfig::new(test_spec(260))).await;
    let truth = sim.ground_truth();
    let base = sim.org_url();
    // limit above the maximum is clamped to 200.
    let (all, _) = drain(&sim, &format!("{base}/api/v1/users?limit=5000")).await;
    let token = sim.api_token().to_owned();
    let (_, headers, first) = get(&sim, &format!("{base}/api/v1/users?limit=5000"), Some(&token)).await;
    assert_eq!(first.as_array().map(Vec::len), Some(crate::USERS_MAX_LIMIT as usize));
    assert!(next_link(&headers).is_some());
    let listed: Vec<String> = all.iter().map(|u| u["id"].as_str().unwrap_or_default().to_owned()).collect();
    let expected: Vec<String> =
        truth.users.iter().filter(|u| u.status != UserStatus::Deprovisioned).map(|u| u.id.clone()).collect();
    assert_eq!(listed, expected, "every non-DEPROVISIONED user once, in id order");

    let filter = enc(r#"status eq "DEPROVISIONED" or status ne "x""#);
    let (status, _, body) = get(&sim, &format!("{base}/api/v1/users?filter={filter}"), Some(&token)).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("E0000031")), "users filters take eq only: {body}");

    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_login: BTreeMap<String, Value> = BTreeMap::new();
    for s in UserStatus::ALL {
        let f = enc(&format!("status eq \"{}\"", s.as_str()));
        let (users, _) = drain(&sim, &format!("{base}/api/v1/users?limit=50&filter={f}")).await;
        for u in &users {
            assert_eq!(u["status"], s.as_str());
            last_login.insert(u["id"].as_str().unwrap_or_default().to_owned(), u["lastLogin"].clone());
        }
        by_status.insert(s.as_str().to_owned(), users.len());
    }
    assert!(by_status.values().all(|&n| n > 0), "every status exists: {by_status:?}");
    assert_eq!(by_status.values().sum::<usize>(), truth.users.len());
    for u in &truth.users {
        let want = u.last_login.map_or(Value::Null, |t| Value::String(rfc(t)));
        assert_eq!(last_login.get(&u.id), Some(&want), "lastLogin of {}", u.id);
    }
    // Some users signed in only before the 90 days the System Log keeps.
    assert!(truth.users.iter().any(|u| u.last_login.is_some() && u.last_session_start.is_none()));
    let (status, _, body) = get(&sim, &format!("{base}/api/v1/users?search=x"), Some(&token)).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("E0000001")));
    sim.shutdown().await;
}

#[tokio::test]
async fn bounded_requests_are_finite_in_published_order_and_equal_the_ground_truth() {
    let sim = start(OktaSimConfig::new(test_spec(60))).await;
    let now = sim.now();
    // Two hours of lag: longer than the latest persistence delay, so nothing is missing.
    let until = now - Duration::hours(2);
    let since = now - Duration::days(89);
    let url = format!("{}/api/v1/logs?since={}&until={}&limit=333", sim.org_url(), enc(&rfc(since)), enc(&rfc(until)));
    let (events, last_next) = drain(&sim, &url).await;
    assert!(last_next.is_none(), "the last page of a bounded request has no next link");
    let times: Vec<DateTime<Utc>> = events.iter().map(published).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "ascending by published");
    assert!(times.iter().all(|&t| t >= since && t < until));
    let ids: HashSet<String> = events.iter().map(uuid).collect();
    assert_eq!(ids.len(), events.len(), "no duplicates");

    let truth = sim.org().ground_truth(until - Duration::milliseconds(1), Some(since));
    let mut sessions: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut sso: BTreeMap<(String, String), DateTime<Utc>> = BTreeMap::new();
    for e in &events {
        let actor = e["actor"]["id"].as_str().unwrap_or_default().to_owned();
        match e["eventType"].as_str() {
            Some("user.session.start") if e["outcome"]["result"] == "SUCCESS" => {
                let t = sessions.entry(actor).or_insert(published(e));
                *t = (*t).max(published(e));
            }
            Some("user.authentication.sso") => {
                let targets = e["target"].as_array().cloned().unwrap_or_default();
                let app = targets
                    .iter()
                    .find(|t| t["type"] == "AppInstance")
                    .map(|t| t["id"].as_str().unwrap_or_default().to_owned());
                let t = sso.entry((actor, app.unwrap_or_default())).or_insert(published(e));
                *t = (*t).max(published(e));
            }
            _ => {}
        }
    }
    let want_sessions: BTreeMap<String, DateTime<Utc>> =
        truth.users.iter().filter_map(|u| u.last_session_start.map(|t| (u.id.clone(), t))).collect();
    assert_eq!(sessions, want_sessions);
    let want_sso: BTreeMap<(String, String), DateTime<Utc>> =
        truth.sso.iter().map(|s| ((s.user_id.clone(), s.app_id.clone()), s.last_sso)).collect();
    assert_eq!(sso, want_sso);
    assert!(want_sso.keys().any(|(_, app)| *app == sim.org().slack_app().id), "SSOs into the Slack app");
    // Service actors and system events are there too, and are not users signing in.
    assert!(events.iter().any(|e| e["actor"]["type"] == "SystemPrincipal"));
    assert!(events.iter().any(|e| e["eventType"] == "user.lifecycle.create"));

    // DESCENDING: the same events, newest first.
    let desc = format!("{url}&sortOrder=DESCENDING");
    let (down, last) = drain(&sim, &desc).await;
    assert!(last.is_none());
    let mut up: Vec<String> = down.iter().map(uuid).collect();
    up.reverse();
    assert_eq!(up, events.iter().map(uuid).collect::<Vec<_>>());
    sim.shutdown().await;
}

#[tokio::test]
async fn polling_always_links_next_and_delivers_late_events_exactly_once() {
    let mut spec = test_spec(40);
    spec.late_fraction = 0.2;
    let sim = start(OktaSimConfig::new(spec)).await;
    let start_at = sim.now() - Duration::days(3);
    sim.set_now(start_at);
    let first = format!("{}/api/v1/logs?since={}&limit=100", sim.org_url(), enc(&rfc(start_at - Duration::days(2))));
    let (mut got, next) = drain(&sim, &first).await;
    let Some(mut next) = next else { panic!("a polling request always has a next link") };
    let (status, headers, body) = get(&sim, &next, Some(sim.api_token())).await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(0)), "nothing new yet");
    assert!(next_link(&headers).is_some(), "even an empty polling page links next");
    let persisted: std::collections::HashMap<String, i64> =
        sim.org().events.iter().map(|e| (e.uuid(), e.persisted)).collect();
    let mut late_seen = 0;
    // Poll every 30 simulated minutes for three days.
    for step in 1..=(3 * 48) {
        sim.set_now(start_at + Duration::minutes(30 * step));
        let before = got.iter().map(published).max().unwrap_or_default();
        let (page, n) = drain(&sim, &next).await;
        let now_ms = sim.now().timestamp_millis();
        for e in &page {
            let p = persisted.get(&uuid(e)).copied().unwrap_or(i64::MAX);
            assert!(p <= now_ms, "{} served before it was persisted", uuid(e));
        }
        late_seen += page.iter().filter(|e| published(e) < before).count();
        got.extend(page);
        next = n.unwrap_or_else(|| panic!("polling lost its next link"));
    }
    let ids: Vec<String> = got.iter().map(uuid).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "no event delivered twice");
    // Exactly the events persisted between the first `since` and now (all within retention).
    let org: &OktaOrg = sim.org();
    let now_ms = sim.now().timestamp_millis();
    let from_ms = (start_at - Duration::days(2)).timestamp_millis();
    let want: BTreeSet<String> =
        org.events.iter().filter(|e| e.persisted >= from_ms && e.persisted <= now_ms).map(|e| e.uuid()).collect();
    assert_eq!(unique, want, "no late event lost");
    assert!(late_seen > 0, "some events arrived after later-published ones had been served");
    // A bounded request over the same span at a moment when late events are still unpersisted
    // misses them: "events may be delayed".
    // Just after a late event was published, before it is persisted.
    let late = org.events.iter().rev().find(|e| e.persisted - e.published > 60_000 && e.published < now_ms);
    let Some(late) = late else { panic!("no late event") };
    sim.set_now(DateTime::from_timestamp(late.published / 1000 + 1, 0).unwrap_or_default());
    let now_ms = sim.now().timestamp_millis();
    let since = sim.now() - Duration::days(1);
    let url =
        format!("{}/api/v1/logs?since={}&until={}&limit=1000", sim.org_url(), enc(&rfc(since)), enc(&rfc(sim.now())));
    let (bounded, last) = drain(&sim, &url).await;
    assert!(last.is_none());
    let got: BTreeSet<String> = bounded.iter().map(uuid).collect();
    let in_window = |e: &&crate::org::Event| e.published >= since.timestamp_millis() && e.published < now_ms;
    let want: BTreeSet<String> =
        org.events.iter().filter(in_window).filter(|e| e.persisted <= now_ms).map(|e| e.uuid()).collect();
    assert_eq!(got, want, "a bounded request returns what is persisted, no more");
    assert!(org.events.iter().filter(in_window).any(|e| e.persisted > now_ms), "and late events are missing from it");
    sim.shutdown().await;
}

#[tokio::test]
async fn retention_tokens_filters_and_limits_behave_as_documented() {
    let sim = start(OktaSimConfig::new(test_spec(60))).await;
    let base = sim.org_url();
    let token = sim.api_token().to_owned();
    let now = sim.now();
    // Older than 90 days: succeeds, returns nothing older than 90 days.
    let url = format!(
        "{base}/api/v1/logs?since={}&until={}&limit=1000",
        enc(&rfc(now - Duration::days(100))),
        enc(&rfc(now - Duration::days(85)))
    );
    let (status, _, body) = get(&sim, &url, Some(&token)).await;
    assert_eq!(status, 200);
    let floor = now - Duration::days(crate::RETENTION_DAYS);
    assert!(body.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|e| published(e) >= floor)));
    // Older than 180 days: the documented E0000053.
    let url = format!("{base}/api/v1/logs?since={}&until={}", enc(&rfc(now - Duration::days(200))), enc(&rfc(now)));
    let (status, _, body) = get(&sim, &url, Some(&token)).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("E0000053")));
    // limit: clamped to 1000.
    let url =
        format!("{base}/api/v1/logs?since={}&until={}&limit=5000", enc(&rfc(now - Duration::days(60))), enc(&rfc(now)));
    let (_, headers, body) = get(&sim, &url, Some(&token)).await;
    assert_eq!(body.as_array().map(Vec::len), Some(crate::LOGS_MAX_LIMIT as usize));
    // The after token belongs to its query.
    let Some(next) = next_link(&headers) else { panic!("more than 1000 events in 60 days") };
    let other = format!("{next}&filter={}", enc(r#"eventType eq "user.session.start""#));
    let (status, _, body) = get(&sim, &other, Some(&token)).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("E0000001")), "{body}");
    let (status, _, body) = get(&sim, &format!("{base}/api/v1/logs?after=bm9wZQ"), Some(&token)).await;
    assert_eq!(status, 400, "{body}");
    // filter: eventType eq, and documented refusals.
    let f = enc(r#"eventType eq "user.authentication.sso" and target.type eq "AppInstance""#);
    let (events, _) = drain(
        &sim,
        &format!(
            "{base}/api/v1/logs?since={}&until={}&filter={f}&limit=1000",
            enc(&rfc(now - Duration::days(30))),
            enc(&rfc(now))
        ),
    )
    .await;
    assert!(!events.is_empty() && events.iter().all(|e| e["eventType"] == "user.authentication.sso"));
    let slack = sim.org().slack_app().clone();
    let f = enc(&format!(r#"target.id eq "{}""#, slack.id));
    let (events, _) = drain(
        &sim,
        &format!(
            "{base}/api/v1/logs?since={}&until={}&filter={f}&limit=1000",
            enc(&rfc(now - Duration::days(30))),
            enc(&rfc(now))
        ),
    )
    .await;
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e["target"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x["displayName"] == slack.label.as_str())))
    );
    let f = enc(r#"eventType eqq "x""#);
    let (status, _, body) = get(&sim, &format!("{base}/api/v1/logs?filter={f}"), Some(&token)).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("E0000053")));
    let (status, _, body) = get(&sim, &format!("{base}/api/v1/logs?q=alice"), Some(&token)).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("E0000001")));
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limits_and_faults() {
    let mut config = OktaSimConfig::new(test_spec(20));
    config.rate_limits = RateLimits::enforced(100, 2, 3600);
    config.faults = vec![
        FaultRule::new("users", FaultWhen::Nth(1), FaultKind::Status(503)),
        FaultRule::new("users", FaultWhen::Nth(2), FaultKind::RateLimited { reset_secs: 7 }),
        FaultRule::new("users", FaultWhen::Nth(3), FaultKind::RepeatCursor),
    ];
    let sim = start(config).await;
    let base = sim.org_url();
    let token = sim.api_token().to_owned();
    let (status, _, _) = get(&sim, &format!("{base}/api/v1/users?limit=3"), Some(&token)).await;
    assert_eq!(status, 503);
    let (status, headers, body) = get(&sim, &format!("{base}/api/v1/users?limit=3"), Some(&token)).await;
    assert_eq!((status, body["errorCode"].as_str()), (429, Some("E0000047")));
    assert_eq!(headers.get("x-rate-limit-remaining").and_then(|v| v.to_str().ok()), Some("0"));
    let (status, headers, _) = get(&sim, &format!("{base}/api/v1/users?limit=3&after=00u"), Some(&token)).await;
    assert_eq!(status, 200);
    assert!(
        next_link(&headers).is_some_and(|n| n.ends_with("after=00u")),
        "RepeatCursor hands the request's after back"
    );
    // Logs: two calls per window, then 429 until the reset.
    for want in [200, 200, 429] {
        let (status, headers, body) = get(&sim, &format!("{base}/api/v1/logs"), Some(&token)).await;
        assert_eq!(status, want, "{body}");
        let remaining =
            headers.get("x-rate-limit-remaining").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let reset: i64 =
            headers.get("x-rate-limit-reset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
        assert!(reset > Utc::now().timestamp(), "reset is a future epoch second");
        if want == 429 {
            assert_eq!(remaining, "0");
            assert_eq!(body["errorCode"], "E0000047");
        }
    }
    assert_eq!(sim.call_count("logs"), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn slack_accounts_whose_last_use_only_okta_shows() {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or_default();
    let slack = lastseen_slack_sim::Org::generate(&lastseen_slack_sim::OrgSpec::new(
        7,
        120,
        lastseen_slack_sim::Plan::BusinessPlus,
        today,
        120,
    ));
    let spec = crate::OktaOrgSpec::from_slack(&slack, 11);
    assert!(spec.people.iter().filter(|p| p.slack_user_id.is_some()).count() > 50);
    let sim = start(OktaSimConfig::new(spec)).await;
    let truth = sim.ground_truth();
    let slack_truth = slack.ground_truth(sim.now());
    let slack_last: BTreeMap<&str, Option<DateTime<Utc>>> =
        slack_truth.accounts.iter().map(|a| (a.id.as_str(), a.last_access)).collect();
    let only_okta: Vec<&str> = truth
        .slack_sso
        .values()
        .filter_map(|s| {
            let id = s.slack_user_id.as_deref()?;
            let last = slack_last.get(id)?;
            last.is_none_or(|t| t < s.last_sso).then_some(id)
        })
        .collect();
    assert!(!only_okta.is_empty(), "some Slack accounts' last use is shown only by an Okta SSO");
    // Every Slack-mapped SSO is an SSO into the Slack app instance by that person's Okta user.
    let slack_app = sim.org().slack_app().id.clone();
    for s in truth.slack_sso.values() {
        assert!(
            truth.sso.iter().any(|x| x.user_id == s.okta_user_id && x.app_id == slack_app && x.last_sso == s.last_sso)
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn documented_refusals_fault_bodies_and_the_control_endpoints() {
    let mut config = OktaSimConfig::new(test_spec(30));
    config.faults = vec![
        FaultRule::new("logs", FaultWhen::Nth(1), FaultKind::Truncated),
        FaultRule::new("logs", FaultWhen::Nth(2), FaultKind::Malformed),
        FaultRule::new("logs", FaultWhen::Nth(3), FaultKind::Timeout),
    ];
    let sim = start(config).await;
    let base = sim.org_url();
    let token = sim.api_token().to_owned();
    let (status, _, body) = get(&sim, &format!("{base}/api/v1/logs"), Some(&token)).await;
    assert_eq!((status, body.is_null()), (200, true), "a truncated body is not JSON");
    let (status, _, body) = get(&sim, &format!("{base}/api/v1/logs"), Some(&token)).await;
    assert_eq!((status, body.is_null()), (200, true), "a malformed body is not JSON");
    let (status, _, body) = get(&sim, &format!("{base}/api/v1/logs"), Some(&token)).await;
    assert_eq!((status, body["errorCode"].as_str()), (500, Some("E0000009")));
    // OAuth is not simulated: a Bearer token is refused like an unknown one.
    let resp = reqwest::Client::new()
        .get(format!("{base}/api/v1/users"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(resp.ok(), Some(401));
    // `since` and `after` together on a polling request.
    let (_, headers, _) = get(&sim, &format!("{base}/api/v1/logs?limit=5"), Some(&token)).await;
    let Some(next) = next_link(&headers) else { panic!("polling next link") };
    let (status, _, body) = get(&sim, &format!("{next}&since={}", enc(&rfc(sim.now()))), Some(&token)).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("E0000001")));
    // A polling token is not a bounded one.
    let bounded = format!("{next}&until={}", enc(&rfc(sim.now())));
    let (status, _, _) = get(&sim, &bounded, Some(&token)).await;
    assert_eq!(status, 400);
    // lastUpdated compares as a date, whatever RFC 3339 form the filter uses.
    let f = enc(r#"lastUpdated gt "2000-01-01T00:00:00+00:00" and lastUpdated lt "2100-01-01T00:00:00Z""#);
    let (users, _) = drain(&sim, &format!("{base}/api/v1/users?filter={f}")).await;
    assert_eq!(users.len(), sim.ground_truth().users.len());
    let f = enc(r#"lastUpdated gt "soon""#);
    let (status, _, _) = get(&sim, &format!("{base}/api/v1/users?filter={f}"), Some(&token)).await;
    assert_eq!(status, 400);
    // The control endpoints: the clock and the ground truth as JSON.
    let client = reqwest::Client::new();
    let earlier = sim.now() - Duration::days(10);
    let set =
        client.post(format!("{base}/_sim/clock?now={}", earlier.timestamp())).send().await.map(|r| r.status().as_u16());
    assert_eq!(set.ok(), Some(200));
    assert_eq!(sim.now(), earlier);
    let (status, _, truth) = get(&sim, &format!("{base}/_sim/ground_truth"), None).await;
    assert_eq!(status, 200);
    let expected = serde_json::to_value(sim.ground_truth()).unwrap_or_default();
    assert_eq!(truth, expected);
    sim.shutdown().await;
}
