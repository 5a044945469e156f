//! The Audit Logs API (`/audit/v1/logs`, `/schemas`, `/actions`): login, logout and failed
//! login events derived from the same per-day activity as the access logs. Enterprise Grid
//! only, real HTTP statuses for errors, rate limited org-wide at Tier 3.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::activity::{Access, Client, Entry};
use crate::api::{Params, Reply, TokenState, decode_cursor, encode_cursor};
use crate::org::{Org, Plan};
use crate::ratelimit::Tier;
use crate::rng::{day_hash, mix4, unit};
use crate::server::{FaultPlan, Shared, plan_fault};

const D_LOGOUT: u64 = 0x900;
const D_FAILED: u64 = 0x901;
const T_EVENT: u64 = 900;
pub(crate) const ACTIONS: [&str; 3] = ["user_login", "user_logout", "user_login_failed"];

fn fail(status: StatusCode, code: &str) -> Reply {
    let mut reply = Reply::error(code);
    reply.status = status;
    reply
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let key = format!("audit.{endpoint}");
    let params = Params::parse(query.as_deref(), &HeaderMap::new(), &[]);
    let run = || match endpoint.as_str() {
        "logs" => logs(&shared, &headers, &params),
        "actions" => Reply::json(&json!({"user": ACTIONS})),
        "schemas" => Reply::json(
            &json!({"schemas": [{"type": "user", "user": {"id": "", "name": "", "email": "", "team": ""}}]}),
        ),
        _ => fail(StatusCode::NOT_FOUND, "unknown_method"),
    };
    let reply = match plan_fault(&shared, &key) {
        FaultPlan::Answer(reply) => reply,
        FaultPlan::Run { delay_ms, post } => {
            if delay_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            }
            post.apply(run(), params.get("cursor"))
        }
    };
    reply.into_response()
}

struct Event {
    pos: usize,
    at: i64,
    action: usize,
    access: Access,
    seq: u64,
}

fn logs(shared: &Shared, headers: &HeaderMap, params: &Params) -> Reply {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(token) = token else { return fail(StatusCode::UNAUTHORIZED, "not_authed") };
    let Some(info) = shared.tokens.iter().find(|t| t.token == token) else {
        return fail(StatusCode::UNAUTHORIZED, "invalid_auth");
    };
    match info.state {
        TokenState::Active => {}
        TokenState::Revoked => return fail(StatusCode::UNAUTHORIZED, "token_revoked"),
        TokenState::Inactive => return fail(StatusCode::UNAUTHORIZED, "account_inactive"),
    }
    let org = &shared.org;
    if org.spec().plan != Plan::Enterprise {
        return fail(StatusCode::FORBIDDEN, "feature_not_enabled");
    }
    if shared.conditions.audit_refuses_token {
        // "status: 401, no response body" for a token the Audit Logs API does not accept
        // (java-slack-sdk `test_with_remote_apis/audit/ApiTest.java` `getLogs_dummy`); only an
        // org owner's token is accepted ("Grid organization administrator tokens are not
        // currently supported", Audit Logs API docs).
        return Reply {
            status: StatusCode::UNAUTHORIZED,
            content_type: "text/plain",
            headers: Vec::new(),
            body: Vec::new(),
        };
    }
    if !info.scopes.contains(&"auditlogs:read") {
        let mut reply = Reply::json(&json!({
            "ok": false, "error": "missing_scope", "needed": "auditlogs:read", "provided": info.scopes.join(","),
        }));
        reply.status = StatusCode::FORBIDDEN;
        return reply;
    }
    let org_key = org.enterprise_id().unwrap_or(org.team_id());
    if let Some(limiter) = &shared.limiter
        && let Err(wait) = limiter.acquire("audit.logs", org_key, Tier::Tier3)
    {
        return Reply::rate_limited(wait);
    }
    let now = shared.now();
    let num = |name: &str| params.get(name).map(|v| v.parse::<i64>().map_err(|_| ()));
    let (Ok(latest), Ok(oldest), Ok(limit)) = (
        num("latest").unwrap_or(Ok(now)),
        num("oldest").unwrap_or(Ok(org.start_epoch())),
        num("limit").unwrap_or(Ok(100)),
    ) else {
        return fail(StatusCode::BAD_REQUEST, "invalid_arguments");
    };
    if !(1..=9999).contains(&limit) {
        return fail(StatusCode::BAD_REQUEST, "invalid_limit");
    }
    if let Some(a) = params.get("action")
        && shared.conditions.audit_unsupported_actions.iter().any(|u| u == a)
    {
        // An action Slack no longer supports answers HTTP 400 (java-slack-sdk audit
        // `ApiTest.java` `verifyAllActions`: "seems to be no longer supported" on 400).
        return fail(StatusCode::BAD_REQUEST, "invalid_action");
    }
    let action = match params.get("action") {
        None => None,
        Some(a) => match ACTIONS.iter().position(|x| *x == a) {
            Some(i) => Some(i),
            None => return fail(StatusCode::BAD_REQUEST, "invalid_action"),
        },
    };
    let actor = match params.get("actor") {
        None => None,
        Some(a) => match org.position_of(a) {
            Some(p) => Some(p),
            // An unknown actor simply has no events.
            None => return Reply::json(&json!({"entries": [], "response_metadata": {"next_cursor": ""}})),
        },
    };
    // Nothing after the simulated clock exists yet.
    let latest = latest.min(now);
    let top_day = org.day_of(latest);
    let (mut day, mut skip) = match params.get("cursor") {
        None => (top_day, 0usize),
        Some(c) => {
            let parsed = decode_cursor(c).and_then(|t| {
                let (d, i) = t.strip_prefix("audit:")?.split_once(':')?;
                Some((d.parse::<i64>().ok()?, i.parse::<usize>().ok()?))
            });
            match parsed {
                Some(p) if p.0 <= top_day => p,
                _ => return fail(StatusCode::BAD_REQUEST, "invalid_cursor"),
            }
        }
    };
    let bottom = org.day_of(oldest).max(0);
    let limit = limit as usize;
    let mut entries = Vec::new();
    let mut next = String::new();
    while day >= bottom {
        let events = day_events(org, day as i32, actor, action, oldest, latest);
        let take = (limit - entries.len()).min(events.len().saturating_sub(skip));
        entries.extend(events[skip..skip + take].iter().map(|e| entry_json(org, e)));
        if entries.len() == limit {
            let used = skip + take;
            next = if used < events.len() {
                encode_cursor(&format!("audit:{day}:{used}"))
            } else if day > bottom {
                encode_cursor(&format!("audit:{}:0", day - 1))
            } else {
                String::new()
            };
            break;
        }
        skip = 0;
        day -= 1;
    }
    Reply::json(&json!({"ok": true, "entries": entries, "response_metadata": {"next_cursor": next}}))
}

/// One day's events, newest first: a login per client used that day (a failed attempt just
/// before some), and a logout after the last access on some.
fn day_events(
    org: &Org,
    day: i32,
    actor: Option<usize>,
    action: Option<usize>,
    oldest: i64,
    latest: i64,
) -> Vec<Event> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let people: Box<dyn Iterator<Item = usize>> = match actor {
        Some(p) => Box::new(std::iter::once(p)),
        None => Box::new(0..org.len()),
    };
    for pos in people {
        let u = org.user(pos);
        if !u.kind.is_human() {
            continue;
        }
        buf.clear();
        org.day_accesses(pos, day, &mut buf);
        for client in [Client::Desktop, Client::Mobile, Client::Browser] {
            let mut of_client = buf.iter().filter(|a| a.client == client);
            let Some(first) = of_client.clone().min_by_key(|a| a.at) else { continue };
            let last = of_client.by_ref().max_by_key(|a| a.at).map_or(first.at, |a| a.at);
            let c = client as u64;
            let mut push =
                |at: i64, act: usize, seq: u64| out.push(Event { pos, at, action: act, access: *first, seq });
            push(first.at, 0, c * 4);
            if unit(day_hash(u.key, day, D_FAILED + c * 16)) < 0.05 {
                push(first.at - 30, 2, c * 4 + 1);
            }
            if client != Client::Mobile && unit(day_hash(u.key, day, D_LOGOUT + c * 16)) < 0.3 {
                push(last + 600, 1, c * 4 + 2);
            }
        }
    }
    out.retain(|e| e.at >= oldest && e.at <= latest && action.is_none_or(|a| a == e.action));
    out.sort_by(|a, b| b.at.cmp(&a.at).then(a.pos.cmp(&b.pos)).then(a.seq.cmp(&b.seq)));
    out
}

fn entry_json(org: &Org, e: &Event) -> Value {
    let u = org.user(e.pos);
    let enterprise = org.enterprise_id().unwrap_or_default();
    let ws = &org.workspaces()[org.home_workspace(e.pos)];
    let h = mix4(org.seed(), e.pos as u64, e.at as u64, T_EVENT + e.seq);
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        0x8000 | ((h >> 48) & 0x3fff),
        (h.rotate_left(17)) & 0xffff_ffff_ffff
    );
    let user = json!({"id": u.id, "name": u.name, "email": org.email(e.pos).unwrap_or_default(), "team": enterprise});
    let entry = Entry {
        user: e.pos as u32,
        client: e.access.client,
        variant: e.access.variant,
        date_first: e.at,
        date_last: e.at,
        count: 1,
    };
    json!({
        "id": id, "date_create": e.at, "action": ACTIONS[e.action],
        "actor": {"type": "user", "user": user},
        "entity": {"type": "user", "user": user},
        "context": {
            "location": {"type": "workspace", "id": ws.id, "name": ws.name, "domain": ws.domain},
            "ua": org.entry_agent(&entry), "ip_address": org.entry_ip(&entry),
            // A string in the answers recorded from live Slack (contract sample
            // `audit__v1__logs.json`), although the docs' example shows a number.
            "session_id": ((h >> 20) % 10_000_000_000_000).to_string(),
        },
    })
}
