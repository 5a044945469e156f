//! SCIM v1.1 and v2.0 `/Users` and `/Groups`: reads (`startIndex`/`count` paging,
//! `filter=userName eq "x"`, `active:false` for deactivated users) and the user writes that
//! (de)activate (`PATCH active`, `DELETE`), with Slack's refusals, the per-user write lock, the
//! org-wide write buckets, SCIM error bodies with real HTTP statuses. Business+ and Grid only.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::DateTime;
use serde_json::{Value, json};

use crate::api::{Params, Reply, TokenInfo, TokenState, TokenType};
use crate::endpoints::usergroups::{self, Group};
use crate::org::Kind;
use crate::org::{Org, Plan};
use crate::ratelimit::Tier;
use crate::server::{FaultPlan, Shared, plan_fault};
use crate::server::{ScimWrite, WriteLock};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Slack's SCIM error body. v2 uses the v1 shape too, not RFC 7644's `detail`/`status`: the
/// java-slack-sdk remote test `test_with_remote_apis/scim2/ApiTest.java` reads
/// `{"Errors":{"description":"invalid_authentication","code":401}}` from live v2, and the
/// recorded sample `scim__v2__Users.json` carries `Errors`.
fn error(_version: Version, status: StatusCode, description: &str) -> Reply {
    let body = json!({"Errors": {"description": description, "code": status.as_u16()}});
    let mut reply = Reply::json(&body);
    reply.status = status;
    reply
}

pub(crate) async fn handle_list(
    State(shared): State<Arc<Shared>>,
    Path((version, resource)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    serve(shared, version, resource, None, method, headers, query, body).await
}

pub(crate) async fn handle_one(
    State(shared): State<Arc<Shared>>,
    Path((version, resource, id)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    serve(shared, version, resource, Some(id), method, headers, query, body).await
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    shared: Arc<Shared>,
    version: String,
    resource: String,
    id: Option<String>,
    method: Method,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let version = match version.as_str() {
        "v1" => Version::V1,
        "v2" => Version::V2,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    // Writes have their own fault counter (`scim.Users.write`), so a test can fail the n-th
    // write whatever reads came before it.
    let key = if method == Method::GET { format!("scim.{resource}") } else { format!("scim.{resource}.write") };
    let mut reply = match plan_fault(&shared, &key) {
        FaultPlan::Answer(reply) => reply,
        FaultPlan::Run { delay_ms, post } if method != Method::GET => {
            // "Only one write operation per user or group can be made at a time; concurrent
            // writes ... receive an HTTP 429 with a retry-after header" (docs.slack.dev/
            // reference/scim-api/rate-limits, "Concurrency"). The lock spans the whole write,
            // a slow one (a `Slow` fault) included.
            let pos = id.as_deref().filter(|_| resource == "Users").and_then(|id| shared.org.position_of(id));
            let _lock = match pos.map(|p| WriteLock::take(&shared, p)) {
                Some(None) => {
                    let busy = error(version, StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
                        .with_header("retry-after", "1".to_owned());
                    return busy.into_response();
                }
                Some(Some(lock)) => Some(lock),
                None => None,
            };
            if delay_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            }
            post.apply(write(&shared, version, &resource, id.as_deref(), &method, &headers, &body), None)
        }
        FaultPlan::Run { delay_ms, post } => {
            if delay_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            }
            let params = Params::parse(query.as_deref(), &HeaderMap::new(), &[]);
            post.apply(answer(&shared, version, &resource, id.as_deref(), &method, &headers, &params), None)
        }
    };
    if reply.status == StatusCode::TOO_MANY_REQUESTS && reply.body.starts_with(b"{\"ok\"") {
        // A rate-limit fault speaks SCIM's error dialect too.
        let retry = reply.headers.clone();
        reply = error(version, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        reply.headers = retry;
    }
    reply.into_response()
}

/// The token's install, or the SCIM error that refuses it.
fn authorise<'a>(shared: &'a Shared, version: Version, headers: &HeaderMap) -> Result<&'a TokenInfo, Reply> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(info) = token.and_then(|t| shared.tokens.iter().find(|i| i.token == t)) else {
        return Err(error(version, StatusCode::UNAUTHORIZED, "invalid_authentication"));
    };
    match info.state {
        TokenState::Active => Ok(info),
        TokenState::Revoked => Err(error(version, StatusCode::UNAUTHORIZED, "token_revoked")),
        TokenState::Inactive => Err(error(version, StatusCode::UNAUTHORIZED, "account_inactive")),
    }
}

fn answer(
    shared: &Shared,
    version: Version,
    resource: &str,
    id: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    params: &Params,
) -> Reply {
    let info = match authorise(shared, version, headers) {
        Ok(info) => info,
        Err(reply) => return reply,
    };
    let org = &shared.org;
    if !matches!(org.spec().plan, Plan::BusinessPlus | Plan::Enterprise) {
        return error(version, StatusCode::FORBIDDEN, "feature_not_enabled");
    }
    if shared.conditions.scim_refuses_token {
        // A token valid for the Web API that SCIM does not accept: 401 with the SCIM error body
        // (java-slack-sdk `test_with_remote_apis/scim/ApiTest.java` and `scim2/ApiTest.java`).
        return error(version, StatusCode::UNAUTHORIZED, "invalid_authentication");
    }
    if info.kind == TokenType::Bot || !info.scopes.contains(&"admin") {
        return error(version, StatusCode::FORBIDDEN, "permission_denied");
    }
    // SCIM limits hold for every SCIM app of the organisation together.
    let org_key = org.enterprise_id().unwrap_or(org.team_id());
    let (bucket, tier) = match (resource, id) {
        ("Users", Some(_)) => ("scim.user", Tier::PerMinute(300)),
        ("Groups", _) => ("scim.groups", Tier::PerMinute(300)),
        _ => ("scim.reads", Tier::PerMinute(1000)),
    };
    if let Some(limiter) = &shared.limiter
        && let Err(wait) = limiter.acquire(bucket, org_key, tier)
    {
        return error(version, StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            .with_header("retry-after", wait.to_string());
    }
    if method != Method::GET {
        // The organisation is fixed at generation; writes are not simulated.
        return error(version, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
    match (resource, id) {
        ("Users", Some(id)) => match org.position_of(id).filter(|&p| scim_listed(org, p)) {
            Some(pos) => Reply::json(&user_resource(org, version, pos)),
            None => error(version, StatusCode::NOT_FOUND, "user_not_found"),
        },
        ("Users", None) => list_users(org, version, params),
        ("Groups", Some(id)) => match usergroups::find_group(org, id).filter(|g| !g.disabled()) {
            Some(g) => {
                let members = usergroups::members(org, g.ws).swap_remove(g.index);
                Reply::json(&group_resource(org, version, &g, &members))
            }
            None => error(version, StatusCode::NOT_FOUND, "group_not_found"),
        },
        ("Groups", None) => list_groups(org, version, params),
        _ => error(version, StatusCode::NOT_FOUND, "resource_not_found"),
    }
}

/// `PATCH` (v2 PatchOp `replace active`, or the v1.1 partial resource) and `DELETE` on one user.
fn write(
    shared: &Shared,
    version: Version,
    resource: &str,
    id: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    let info = match authorise(shared, version, headers) {
        Ok(info) => info,
        Err(reply) => return reply,
    };
    let org = &shared.org;
    // "plus_teams_only: SCIM is only available to Business+ and Enterprise plans" and
    // "non_org_teams_only: on Enterprise ... SCIM methods are called against the entire org",
    // so a workspace-level install may not write (docs.slack.dev/reference/scim-api, errors).
    // Statuses are not documented; 403 as for the other plan and permission refusals here.
    if !matches!(org.spec().plan, Plan::BusinessPlus | Plan::Enterprise) {
        return error(version, StatusCode::FORBIDDEN, "plus_teams_only");
    }
    if info.kind == TokenType::Bot || !info.scopes.contains(&"admin") {
        return error(version, StatusCode::FORBIDDEN, "permission_denied");
    }
    if org.spec().plan == Plan::Enterprise && !info.org_level {
        return error(version, StatusCode::FORBIDDEN, "non_org_teams_only");
    }
    let (Some(id), "Users") = (id, resource) else {
        // Group writes are not simulated: say so instead of pretending.
        return error(version, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    };
    let deactivate_only = *method == Method::DELETE;
    if !deactivate_only && *method != Method::PATCH {
        // PUT overwrites every attribute (research §5.1); lastseen never sends it.
        return error(version, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
    // Org-wide writes 600/min (burst 180), and update / delete a user 180/min (burst 20) each,
    // "apply to all SCIM apps in an org" (docs.slack.dev/reference/scim-api/rate-limits).
    let org_key = org.enterprise_id().unwrap_or(org.team_id());
    let op_bucket = if deactivate_only { "scim.user.delete" } else { "scim.user.update" };
    if let Some(limiter) = &shared.limiter {
        for (bucket, tier) in [("scim.writes", Tier::Burst(600, 180)), (op_bucket, Tier::Burst(180, 20))] {
            if let Err(wait) = limiter.acquire(bucket, org_key, tier) {
                return error(version, StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
                    .with_header("retry-after", wait.to_string());
            }
        }
    }
    let Some(pos) = org.position_of(id) else {
        return error(version, StatusCode::NOT_FOUND, "no_such_user");
    };
    let active = if deactivate_only {
        false
    } else {
        match patch_active(version, body) {
            Ok(active) => active,
            Err(reply) => return reply,
        }
    };
    let kind = org.user(pos).kind;
    if !kind.is_human() {
        return error(version, StatusCode::FORBIDDEN, "cannot_disable_bot_user_with_scim");
    }
    if !active && kind == Kind::PrimaryOwner {
        return error(version, StatusCode::FORBIDDEN, "cannot_disable_primary_owner");
    }
    if !active && kind == Kind::Owner {
        return error(version, StatusCode::FORBIDDEN, "cannot_modify_owner");
    }
    // Writing the current value again is accepted and changes nothing (it still counts).
    org.set_active(pos, active, shared.now());
    shared.record_scim_write(ScimWrite {
        user: id.to_owned(),
        version: if version == Version::V1 { "v1" } else { "v2" }.to_owned(),
        method: method.as_str().to_owned(),
        active,
    });
    if deactivate_only {
        // "DELETE /Users/<id> Sets a Slack user to deactivated" (docs.slack.dev/reference/
        // scim-api); the answer has no body.
        return Reply {
            status: StatusCode::NO_CONTENT,
            content_type: crate::api::JSON,
            headers: Vec::new(),
            body: Vec::new(),
        };
    }
    // The PATCH answer is the user resource as it now is (docs.slack.dev/reference/scim-api).
    Reply::json(&user_resource(org, version, pos))
}

/// The `active` value a PATCH body sets, in the body's own dialect: v2 a PatchOp
/// (`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace",
/// "path":"active","value":false}]}`), v1.1 a partial resource (`{"schemas":
/// ["urn:scim:schemas:core:1.0"],"active":false}`), both from docs.slack.dev/reference/scim-api.
/// The wrong dialect for the version is refused (400), so a client that mixes them is noticed.
fn patch_active(version: Version, body: &[u8]) -> Result<bool, Reply> {
    let bad = |what: &str| error(version, StatusCode::BAD_REQUEST, what);
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("invalid_syntax"))?;
    let schemas: Vec<&str> = v
        .get("schemas")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match version {
        Version::V2 => {
            if !schemas.contains(&"urn:ietf:params:scim:api:messages:2.0:PatchOp") {
                return Err(bad("invalid_schema"));
            }
            let ops = v.get("Operations").and_then(Value::as_array).ok_or_else(|| bad("invalid_syntax"))?;
            let mut active = None;
            for op in ops {
                let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
                if !kind.eq_ignore_ascii_case("replace") {
                    return Err(bad("invalid_syntax"));
                }
                match (op.get("path").and_then(Value::as_str), op.get("value")) {
                    (Some("active"), Some(Value::Bool(b))) => active = Some(*b),
                    (None, Some(Value::Object(m))) if m.get("active").is_some_and(Value::is_boolean) => {
                        active = m.get("active").and_then(Value::as_bool);
                    }
                    // Other attributes are not simulated.
                    _ => return Err(bad("invalid_syntax")),
                }
            }
            active.ok_or_else(|| bad("invalid_syntax"))
        }
        Version::V1 => {
            if v.get("Operations").is_some() || !schemas.contains(&"urn:scim:schemas:core:1.0") {
                return Err(bad("invalid_schema"));
            }
            v.get("active").and_then(Value::as_bool).ok_or_else(|| bad("invalid_syntax"))
        }
    }
}

fn scim_listed(org: &Org, pos: usize) -> bool {
    org.user(pos).kind.is_human()
}

/// `startIndex` (1-based) and `count` (default 10, anything above 1000 read as 1000).
fn paging(params: &Params) -> Result<(usize, usize), ()> {
    let start = params.get("startIndex").map_or(Ok(1), str::parse::<usize>).map_err(|_| ())?.max(1);
    let count = params.get("count").map_or(Ok(10), str::parse::<usize>).map_err(|_| ())?.min(1000);
    Ok((start, count))
}

/// `attr eq "value"` for the attributes clients filter on.
fn parse_filter(filter: &str) -> Option<(String, String)> {
    let mut parts = filter.trim().splitn(3, ' ');
    let attr = parts.next()?.to_ascii_lowercase();
    if !parts.next()?.eq_ignore_ascii_case("eq") {
        return None;
    }
    let value = parts.next()?.trim().strip_prefix('"')?.strip_suffix('"')?.to_owned();
    Some((attr, value))
}

fn list_response(version: Version, total: usize, start: usize, resources: Vec<Value>) -> Reply {
    let schema = match version {
        Version::V1 => "urn:scim:schemas:core:1.0",
        Version::V2 => "urn:ietf:params:scim:api:messages:2.0:ListResponse",
    };
    Reply::json(&json!({
        "schemas": [schema], "totalResults": total, "itemsPerPage": resources.len(),
        "startIndex": start, "Resources": resources,
    }))
}

fn list_users(org: &Org, version: Version, params: &Params) -> Reply {
    let Ok((start, count)) = paging(params) else {
        return error(version, StatusCode::BAD_REQUEST, "invalid_arguments");
    };
    let filter = match params.get("filter").map(parse_filter) {
        None => None,
        Some(Some((attr, value))) if matches!(attr.as_str(), "username" | "email" | "emails" | "emails.value") => {
            Some((attr, value))
        }
        Some(_) => return error(version, StatusCode::BAD_REQUEST, "invalid_filter"),
    };
    let matches = |pos: usize| match &filter {
        None => true,
        Some((attr, value)) if attr == "username" => org.user(pos).name.eq_ignore_ascii_case(value),
        Some((_, value)) => org.email(pos).is_some_and(|e| e.eq_ignore_ascii_case(value)),
    };
    let hits: Vec<usize> = (0..org.len()).filter(|&p| scim_listed(org, p) && matches(p)).collect();
    let resources = hits.iter().skip(start - 1).take(count).map(|&p| user_resource(org, version, p)).collect();
    list_response(version, hits.len(), start, resources)
}

fn list_groups(org: &Org, version: Version, params: &Params) -> Reply {
    let Ok((start, count)) = paging(params) else {
        return error(version, StatusCode::BAD_REQUEST, "invalid_arguments");
    };
    let mut all = Vec::new();
    for ws in 0..org.workspaces().len() {
        let members = usergroups::members(org, ws);
        for g in usergroups::groups(org, ws).into_iter().filter(|g| !g.disabled()) {
            all.push(group_resource(org, version, &g, &members[g.index]));
        }
    }
    let total = all.len();
    list_response(version, total, start, all.into_iter().skip(start - 1).take(count).collect())
}

fn iso(epoch: i64) -> String {
    DateTime::from_timestamp(epoch, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn user_resource(org: &Org, version: Version, pos: usize) -> Value {
    let u = org.user(pos);
    let (first, last) = org.person_name(pos);
    let email = org.email(pos).unwrap_or_default();
    let mut groups = Vec::new();
    for ws in 0..org.workspaces().len() {
        if !org.in_workspace(pos, ws) || org.is_deleted(pos) || u.kind.is_guest() {
            continue;
        }
        let g = &usergroups::groups(org, ws)[org.department(pos)];
        groups.push(json!({"value": g.id, "display": g.name}));
    }
    let (core, enterprise, guest) = match version {
        Version::V1 => (
            "urn:scim:schemas:core:1.0",
            "urn:scim:schemas:extension:enterprise:1.0",
            "urn:scim:schemas:extension:slack:guest:1.0",
        ),
        Version::V2 => (
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:extension:slack:guest:2.0:User",
        ),
    };
    let path = if version == Version::V1 { "v1" } else { "v2" };
    let mut v = json!({
        "schemas": [core, enterprise],
        "id": u.id, "externalId": org.external_id(pos).unwrap_or_default(),
        "meta": {"created": iso(org.date_created(pos)), "location": format!("https://api.slack.com/scim/{path}/Users/{}", u.id)},
        "userName": u.name, "nickName": u.name,
        "name": {"givenName": first, "familyName": last},
        "displayName": format!("{first} {last}"),
        "profileUrl": format!("https://{}.slack.com/team/{}", org.domain(), u.name),
        "title": org.title(pos), "timezone": crate::names::ZONES[usize::from(u.zone)].tz,
        "userType": "", "preferredLanguage": "en_US", "locale": "en-US",
        "active": !org.is_deleted(pos),
        "emails": [{"value": email, "type": "work", "primary": true}],
        "photos": [{"value": format!("https://avatars.slack-edge.com/sim/{}_192.jpg", u.id), "type": "photo"}],
        "phoneNumbers": [], "addresses": [], "roles": [],
        "groups": groups,
        enterprise: {"employeeNumber": (100_000 + pos).to_string(), "department": crate::names::DEPARTMENTS[org.department(pos)]},
    });
    if u.kind.is_guest() {
        let kind = if u.kind == crate::org::Kind::GuestSingle { "single" } else { "multi" };
        v["schemas"] = json!([core, enterprise, guest]);
        v[guest] = json!({"type": kind, "channels": []});
    }
    v
}

fn group_resource(org: &Org, version: Version, g: &Group, members: &[usize]) -> Value {
    let core = match version {
        Version::V1 => "urn:scim:schemas:core:1.0",
        Version::V2 => "urn:ietf:params:scim:schemas:core:2.0:Group",
    };
    let members: Vec<Value> =
        members.iter().map(|&p| json!({"value": org.user(p).id, "display": org.user(p).name})).collect();
    json!({"schemas": [core], "id": g.id, "displayName": g.name, "meta": {"created": iso(org.start_epoch())}, "members": members})
}
