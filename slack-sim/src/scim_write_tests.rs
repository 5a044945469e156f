//! SCIM user writes over real HTTP: (de)activation and its visibility in every later read,
//! Slack's refusals, the per-user write lock and the write buckets.

use std::net::SocketAddr;

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::org::Kind;
use crate::{FaultKind, FaultRule, FaultWhen, OrgSpec, Plan, RateLimits, RunningSim, SimConfig, Simulator};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap_or_default()
}

async fn start(plan: Plan, rate_limits: RateLimits, faults: Vec<FaultRule>) -> RunningSim {
    let config = SimConfig { rate_limits, faults, ..SimConfig::new(OrgSpec::new(11, 300, plan, today(), 60)) };
    match Simulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).await {
        Ok(sim) => sim,
        Err(e) => panic!("simulator did not start: {e}"),
    }
}

fn writer_token(sim: &RunningSim) -> String {
    sim.org_token().unwrap_or(sim.user_token()).to_owned()
}

/// The first live account of `kind`.
fn first_of(sim: &RunningSim, kind: Kind) -> String {
    let org = sim.org();
    let pos = (0..org.len()).find(|&p| org.user(p).kind == kind && !org.is_deleted(p) && !org.user(p).invited);
    org.user(pos.unwrap_or_else(|| panic!("no {kind:?}"))).id.to_string()
}

fn v2_body(active: bool) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "path": "active", "value": active}]})
}

fn v1_body(active: bool) -> Value {
    json!({"schemas": ["urn:scim:schemas:core:1.0"], "active": active})
}

async fn send(method: reqwest::Method, url: String, token: &str, body: Option<Value>) -> (u16, Option<String>, Value) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap_or_default();
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("request failed: {e}"));
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = response.bytes().await.unwrap_or_default();
    (status, retry, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn patch(sim: &RunningSim, token: &str, user: &str, active: bool) -> (u16, Option<String>, Value) {
    let url = format!("{}/v2/Users/{user}", sim.scim_url());
    send(reqwest::Method::PATCH, url, token, Some(v2_body(active))).await
}

async fn get_json(url: String, token: &str) -> Value {
    send(reqwest::Method::GET, url, token, None).await.2
}

#[tokio::test]
async fn deactivation_is_visible_to_every_later_read_and_reversible() {
    let sim = start(Plan::BusinessPlus, RateLimits::Off, Vec::new()).await;
    let token = writer_token(&sim);
    let user = first_of(&sim, Kind::Member);
    let (status, _, body) = patch(&sim, &token, &user, false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], json!(false));
    assert_eq!(body["id"], json!(user));

    let scim = get_json(format!("{}/v2/Users/{user}", sim.scim_url()), &token).await;
    assert_eq!(scim["active"], json!(false));
    let info = get_json(format!("{}/users.info?user={user}", sim.api_url()), &token).await;
    assert_eq!(info["user"]["deleted"], json!(true), "{info}");
    let billing = get_json(format!("{}/team.billableInfo?user={user}", sim.api_url()), &token).await;
    assert_eq!(billing["billable_info"][&user]["billing_active"], json!(false), "{billing}");
    let truth = sim.org().ground_truth(sim.now());
    assert!(truth.accounts.iter().any(|a| a.id == user && a.deleted));
    assert_eq!(sim.scim_writes(&user), 1);

    let (status, _, body) = patch(&sim, &token, &user, true).await;
    assert_eq!(status, 200, "{body}");
    let info = get_json(format!("{}/users.info?user={user}", sim.api_url()), &token).await;
    assert_eq!(info["user"]["deleted"], json!(false));
    assert_eq!(sim.scim_writes(&user), 2);

    // DELETE deactivates too, without a body.
    let url = format!("{}/v2/Users/{user}", sim.scim_url());
    let (status, _, _) = send(reqwest::Method::DELETE, url, &token, None).await;
    assert_eq!(status, 204);
    let scim = get_json(format!("{}/v2/Users/{user}", sim.scim_url()), &token).await;
    assert_eq!(scim["active"], json!(false));
    let log = get_json(format!("http://{}/_sim/scim_writes?user={user}", sim.addr()), &token).await;
    assert_eq!(log["count"], json!(3), "{log}");
}

#[tokio::test]
async fn slack_refuses_owners_bots_unknown_users_and_the_wrong_dialect() {
    let sim = start(Plan::BusinessPlus, RateLimits::Off, Vec::new()).await;
    let token = writer_token(&sim);
    let description = |v: &Value| v["Errors"]["description"].as_str().unwrap_or_default().to_owned();
    for (kind, expected) in [
        (Kind::PrimaryOwner, "cannot_disable_primary_owner"),
        (Kind::Owner, "cannot_modify_owner"),
        (Kind::Bot, "cannot_disable_bot_user_with_scim"),
    ] {
        let user = first_of(&sim, kind);
        let (status, _, body) = patch(&sim, &token, &user, false).await;
        assert_eq!((status, description(&body).as_str()), (403, expected), "{kind:?}");
        assert_eq!(sim.scim_writes(&user), 0);
    }
    let (status, _, body) = patch(&sim, &token, "U0000000000", false).await;
    assert_eq!((status, description(&body).as_str()), (404, "no_such_user"));
    // A v1.1 body on the v2 path, and a v2 PatchOp on the v1 path, are refused.
    let user = first_of(&sim, Kind::Member);
    let url = format!("{}/v2/Users/{user}", sim.scim_url());
    let (status, _, _) = send(reqwest::Method::PATCH, url, &token, Some(v1_body(false))).await;
    assert_eq!(status, 400);
    let url = format!("{}/v1/Users/{user}", sim.scim_url());
    let (status, _, _) = send(reqwest::Method::PATCH, url.clone(), &token, Some(v2_body(false))).await;
    assert_eq!(status, 400);
    let (status, _, body) = send(reqwest::Method::PATCH, url, &token, Some(v1_body(false))).await;
    assert_eq!((status, body["active"].clone()), (200, json!(false)), "{body}");
    assert_eq!(sim.scim_write_log().last().map(|w| w.version.clone()), Some("v1".to_owned()));

    let pro = start(Plan::Pro, RateLimits::Off, Vec::new()).await;
    let member = first_of(&pro, Kind::Member);
    let (status, _, body) = patch(&pro, pro.user_token(), &member, false).await;
    assert_eq!((status, description(&body).as_str()), (403, "plus_teams_only"));

    let grid = start(Plan::Enterprise, RateLimits::Off, Vec::new()).await;
    let member = first_of(&grid, Kind::Member);
    let (status, _, body) = patch(&grid, grid.user_token(), &member, false).await;
    assert_eq!((status, description(&body).as_str()), (403, "non_org_teams_only"));
    let (status, _, _) = patch(&grid, &writer_token(&grid), &member, false).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_second_write_to_the_same_user_meanwhile_gets_429() {
    let slow = FaultRule::new("scim.Users.write", FaultWhen::Nth(1), FaultKind::Slow { millis: 1500 });
    let sim = start(Plan::BusinessPlus, RateLimits::Off, vec![slow]).await;
    let token = writer_token(&sim);
    let user = first_of(&sim, Kind::Member);
    let first = patch(&sim, &token, &user, false);
    let second = async {
        // The first request is being served (slowly) by the time this one arrives.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        patch(&sim, &token, &user, false).await
    };
    let ((s1, _, _), (s2, retry, body)) = tokio::join!(first, second);
    assert_eq!(s1, 200);
    assert_eq!(s2, 429, "{body}");
    assert_eq!(body["Errors"]["description"], json!("too_many_requests"));
    assert!(retry.is_some());
    assert_eq!(sim.scim_writes(&user), 1);
}

#[tokio::test]
async fn the_update_bucket_bursts_twenty_then_answers_429_with_retry_after() {
    let sim = start(Plan::BusinessPlus, RateLimits::Tiers { scale: 1.0 }, Vec::new()).await;
    let token = writer_token(&sim);
    let org = sim.org();
    let members: Vec<String> = (0..org.len())
        .filter(|&p| org.user(p).kind == Kind::Member && !org.is_deleted(p))
        .map(|p| org.user(p).id.to_string())
        .take(80)
        .collect();
    let mut statuses = Vec::new();
    let started = std::time::Instant::now();
    for user in &members {
        let (status, retry, _) = patch(&sim, &token, user, false).await;
        statuses.push(status);
        if status == 429 {
            assert!(retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1)));
            break;
        }
    }
    // docs.slack.dev/reference/scim-api/rate-limits: update a user, burst 20, refilled at
    // 180/min (3/s). On a loaded machine the calls take a while, and the bucket refills by the
    // time elapsed: that many more may pass, no more.
    let refilled = (started.elapsed().as_secs_f64() * 3.0).ceil() as usize;
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert!((20..=20 + refilled).contains(&ok), "{ok} accepted, refill allows {refilled} over 20: {statuses:?}");
    assert_eq!(statuses.last(), Some(&429));
}
