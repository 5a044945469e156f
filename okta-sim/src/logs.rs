//! `GET /api/v1/logs` (operation listLogEvents): polling and bounded requests, opaque `after`
//! tokens, `limit`, `sortOrder`, `filter`, the 90-day retention and the LogEvent object.
//!
//! Quotations are from Okta's System Log API reference (okta-developer-docs
//! `reference/api/system-log/index.md`, "Request types", "Datetime filter", "Errors", "Data
//! retention") unless said otherwise.

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use serde_json::{Value, json};

use crate::filter::{self, Expr, FilterError};
use crate::org::{Actor, Event, EventKind, OktaOrg};
use crate::rng::{base62, below, mix, mix64};
use crate::server::{JSON, Reply, Shared, link, param, query_pairs};
use crate::users::ts;

/// "Log data older than 90 days isn't returned … Queries that exceed the retention period
/// succeed, but only those results that have a `published` timestamp within the window are
/// returned." ("Data retention").
pub const RETENTION_DAYS: i64 = 90;
/// "Invalid parameter: The since parameter is over 180 days prior to the current day." (an
/// E0000053 example under "Errors").
const SINCE_MAX_DAYS: i64 = 180;
/// "`limit` … Integer between 0 and 1000", default 100 (listLogEvents parameters). A larger
/// value is clamped to 1000 (the simulator's choice; Okta documents the range, not an error).
pub const LOGS_MAX_LIMIT: i64 = 1000;
const LOGS_DEFAULT_LIMIT: i64 = 100;
const DAY_MS: i64 = 86_400_000;

/// Where a page ends. Polling positions are in persistence order, bounded ones in `published`
/// order (an index into the org's events, which are sorted that way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// Events with (persisted, index) strictly after this.
    Polling { persisted: i64, index: i64 },
    /// The last event served (exclusive in the request's direction).
    Bounded { index: i64 },
}

fn fnv(parts: &[&str]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// "The `after` parameter is system generated for use in "next" links. Don't attempt to craft
/// requests that use this value." The token is opaque (base64url) and bound to the query it
/// continues: reused with another filter, order or window it is refused.
fn encode(pos: Position, query_hash: u64) -> String {
    let raw = match pos {
        Position::Polling { persisted, index } => format!("p.{persisted}.{index}.{query_hash:x}"),
        Position::Bounded { index } => format!("b.{index}.{query_hash:x}"),
    };
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode(token: &str, query_hash: u64) -> Option<Position> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let parts: Vec<&str> = raw.split('.').collect();
    let (pos, hash) = match parts.as_slice() {
        ["p", persisted, index, hash] => {
            (Position::Polling { persisted: persisted.parse().ok()?, index: index.parse().ok()? }, *hash)
        }
        ["b", index, hash] => (Position::Bounded { index: index.parse().ok()? }, *hash),
        _ => return None,
    };
    (u64::from_str_radix(hash, 16).ok()? == query_hash).then_some(pos)
}

/// Validates a System Log `filter`: any attribute path of the LogEvent the simulator fills in,
/// any operator ("All operators except [ ] are supported"), never `published` ("SCIM filter
/// expressions can't use the published attribute"), and not `co` on the debug URLs (E0000031
/// example). Unknown attributes: E0000053 "field is not valid: …" (the documented example).
fn logs_filter(raw: &str) -> Result<Expr, FilterError> {
    let expr = filter::parse(raw)?;
    expr.visit(&mut |attr, op, _| {
        if matches!(attr, "debugContext.debugData.url" | "debugContext.debugData.requestUri") && op == filter::Op::Co {
            return Err(FilterError::Unsupported { op: "co", field: attr.to_owned() });
        }
        if LOG_ATTRS.contains(&attr) { Ok(()) } else { Err(FilterError::InvalidField(attr.to_owned())) }
    })?;
    Ok(expr)
}

const LOG_ATTRS: [&str; 17] = [
    "uuid",
    "eventType",
    "severity",
    "displayMessage",
    "legacyEventType",
    "actor.id",
    "actor.type",
    "actor.alternateId",
    "actor.displayName",
    "target.id",
    "target.type",
    "target.alternateId",
    "target.displayName",
    "outcome.result",
    "outcome.reason",
    "client.ipAddress",
    "transaction.id",
];

/// The values of a filter attribute in a rendered event (several inside `target`).
fn event_attr(event: &Value, attr: &str) -> Vec<String> {
    let mut parts = attr.split('.');
    let head = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let pick = |v: &Value| -> Option<String> {
        let mut cur = v;
        for p in &rest {
            cur = cur.get(p)?;
        }
        cur.as_str().map(str::to_owned)
    };
    match event.get(head) {
        Some(Value::Array(items)) => items.iter().filter_map(pick).collect(),
        Some(v) => pick(v).into_iter().collect(),
        None => Vec::new(),
    }
}

fn parse_time(shared: &Shared, name: &str, value: Option<&str>) -> Result<Option<i64>, Reply> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v).map(|t| Some(t.timestamp_millis())).map_err(|_| {
            // The System Log page's `until` error example, word for word.
            shared.validation(
                &format!(
                    "'{name}': The date format in your query is not recognized. Please enter dates using ISO8601 string format.. '{name}': must be a valid date-time or empty."
                ),
                &[
                    format!("{name}: The date format in your query is not recognized. Please enter dates using ISO8601 string format."),
                    format!("{name}: must be a valid date-time or empty."),
                ],
            )
        }),
    }
}

pub(crate) fn list(shared: &Shared, base: &str, query: Option<&str>) -> Reply {
    let pairs = query_pairs(query);
    // `q` (keyword search over every attribute value, hyphen splitting included) is refused
    // rather than approximated.
    if param(&pairs, "q").is_some_and(|q| !q.is_empty()) {
        return shared.validation("q", &["q: not supported by the Okta simulator".to_owned()]);
    }
    let since_raw = param(&pairs, "since").unwrap_or_default();
    let until_raw = param(&pairs, "until").unwrap_or_default();
    let filter_raw = param(&pairs, "filter").unwrap_or_default();
    let since = match parse_time(shared, "since", Some(since_raw)) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let until = match parse_time(shared, "until", Some(until_raw)) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let descending = match param(&pairs, "sortOrder").filter(|s| !s.is_empty()) {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(other) => {
            return shared
                .validation("sortOrder", &[format!("sortOrder: '{other}' is not one of ASCENDING, DESCENDING")]);
        }
    };
    let limit = match param(&pairs, "limit").filter(|v| !v.is_empty()) {
        None => LOGS_DEFAULT_LIMIT,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => n.min(LOGS_MAX_LIMIT),
            _ => return shared.validation("limit", &[format!("limit: '{v}' is not an integer between 0 and 1000")]),
        },
    };
    let expr = match (!filter_raw.is_empty()).then(|| logs_filter(filter_raw)).transpose() {
        Ok(e) => e,
        Err(e @ FilterError::Unsupported { .. }) => {
            return shared.error(StatusCode::BAD_REQUEST, "E0000031", &e.to_string(), &[]);
        }
        Err(e) => return shared.error(StatusCode::BAD_REQUEST, "E0000053", &e.to_string(), &[]),
    };
    let after = param(&pairs, "after").filter(|a| !a.is_empty());
    let now = shared.now_ms();
    // "For a request to be a polling request … `until` must be unspecified. `sortOrder` must be
    // `ASCENDING`"; "A polling query is defined as an ASCENDING query with an empty or absent
    // until parameter" (core-okta-api "Link header"). Every other request is answered as a
    // bounded one (filtered by `published`, finite), `since` defaulting to "7 days prior to
    // until" and `until` to "current time".
    let polling = until.is_none() && !descending;
    if let Some(s) = since
        && s < now - SINCE_MAX_DAYS * DAY_MS
    {
        return shared.error(
            StatusCode::BAD_REQUEST,
            "E0000053",
            "Invalid parameter: The since parameter is over 180 days prior to the current day.",
            &[],
        );
    }
    // "`since` and `after` are mutually exclusive and can't be specified simultaneously." Okta's
    // own bounded next link carries both (the "Next link response header" example), so the
    // simulator refuses the pair on polling requests only, whose next links carry `after` alone.
    if polling && after.is_some() && since.is_some() {
        return shared.validation("since", &["since: since and after are mutually exclusive".to_owned()]);
    }
    let query_hash = if polling {
        fnv(&["polling", filter_raw])
    } else {
        fnv(&["bounded", filter_raw, since_raw, until_raw, if descending { "D" } else { "A" }])
    };
    let position = match after.map(|a| decode(a, query_hash)) {
        None => None,
        Some(Some(p)) if matches!(p, Position::Polling { .. }) == polling => Some(p),
        Some(_) => return shared.validation("after", &["after: not a cursor this query issued".to_owned()]),
    };
    let org = &shared.org;
    let retention_floor = now - RETENTION_DAYS * DAY_MS;
    let visible = |e: &Event| e.persisted <= now && e.published >= retention_floor;
    let rendered_matches = |i: usize| -> Option<Value> {
        let v = event_json(org, i);
        match &expr {
            Some(x) if !x.matches(&|attr| event_attr(&v, attr)) => None,
            _ => Some(v),
        }
    };

    let mut page: Vec<Value> = Vec::new();
    let next: Option<Position>;
    if polling {
        // "The returned events are time filtered by their internal "persistence time" to avoid
        // skipping records due to system delays"; "They may return events out of order according
        // to the published field"; "They have an infinite number of pages. That is, a next link
        // relation header is always present, even if there are no new events".
        let (p0, i0) = match position {
            Some(Position::Polling { persisted, index }) => (persisted, index),
            _ => (since.unwrap_or(now - 7 * DAY_MS), -1),
        };
        let mut pos = Position::Polling { persisted: p0, index: i0 };
        let start = org.by_persisted.partition_point(|&i| {
            let e = &org.events[i as usize];
            (e.persisted, i64::from(i)) <= (p0, i0)
        });
        for &i in &org.by_persisted[start..] {
            let e = &org.events[i as usize];
            if e.persisted > now || page.len() as i64 >= limit {
                break;
            }
            // Filtered-out and expired events are passed over for good: the position moves on.
            pos = Position::Polling { persisted: e.persisted, index: i64::from(i) };
            if e.published < retention_floor {
                continue;
            }
            if let Some(v) = rendered_matches(i as usize) {
                page.push(v);
            }
        }
        next = Some(pos);
    } else {
        // "The returned events are time filtered by their associated published field"; "The
        // returned events are guaranteed to be in order according to the published field";
        // "They have a finite number of pages. That is, the last page doesn't contain a next
        // link"; "Not all events for the specified time range may be present — events may be
        // delayed" (an event not yet persisted is not returned). The window is
        // [since, until): the simulator's choice, as Okta documents no bound inclusivity.
        let until_ms = until.unwrap_or(now);
        let since_ms = since.unwrap_or(until_ms - 7 * DAY_MS).max(retention_floor);
        let lo = org.events.partition_point(|e| e.published < since_ms) as i64;
        let hi = org.events.partition_point(|e| e.published < until_ms) as i64;
        let mut cursor = match position {
            Some(Position::Bounded { index }) if descending => index - 1,
            Some(Position::Bounded { index }) => index + 1,
            _ if descending => hi - 1,
            _ => lo,
        };
        let mut last_served: Option<i64> = None;
        let mut more = false;
        while cursor >= lo && cursor < hi {
            let e = &org.events[cursor as usize];
            if visible(e)
                && let Some(v) = rendered_matches(cursor as usize)
            {
                if page.len() as i64 >= limit {
                    more = true;
                    break;
                }
                page.push(v);
                last_served = Some(cursor);
            }
            cursor += if descending { -1 } else { 1 };
        }
        next = more.then(|| Position::Bounded {
            index: last_served.unwrap_or_else(|| match position {
                Some(Position::Bounded { index }) => index,
                _ if descending => hi,
                _ => lo - 1,
            }),
        });
    }

    // "The response always includes a self link header"; next links keep the query's
    // parameters (the "Next link response header" example keeps `since`, `until`, `limit` and
    // `sortOrder` next to `after`; polling links carry `after` in place of `since`).
    let mut headers =
        vec![link(&format!("{base}/api/v1/logs{}", query.map(|q| format!("?{q}")).unwrap_or_default()), "self")];
    if let Some(pos) = next {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("limit", &limit.to_string());
        q.append_pair("sortOrder", if descending { "DESCENDING" } else { "ASCENDING" });
        if !filter_raw.is_empty() {
            q.append_pair("filter", filter_raw);
        }
        if !polling {
            if !since_raw.is_empty() {
                q.append_pair("since", since_raw);
            }
            if !until_raw.is_empty() {
                q.append_pair("until", until_raw);
            }
        }
        q.append_pair("after", &encode(pos, query_hash));
        headers.push(link(&format!("{base}/api/v1/logs?{}", q.finish()), "next"));
    }
    Reply { status: StatusCode::OK, content_type: JSON, headers, body: serde_json::to_vec(&page).unwrap_or_default() }
}

const CITIES: [(&str, &str, &str, &str, f64, f64); 4] = [
    ("New York", "New York", "United States", "10013", 40.3157, -74.01),
    ("Toronto", "Ontario", "Canada", "M4M", 43.6567, -79.34),
    ("Seattle", "Washington", "United States", "98101", 47.6062, -122.3321),
    ("London", "England", "United Kingdom", "EC1A", 51.5072, -0.1276),
];
const AGENTS: [(&str, &str, &str); 3] = [
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36",
        "Mac OS X",
        "CHROME",
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "Windows 10", "FIREFOX"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "iOS", "SAFARI"),
];

/// One LogEvent (schema `LogEvent`), shaped like the spec's ListLogs example and the System
/// Log page's example. Only attributes whose values the simulator can fill are present
/// (every LogEvent attribute but `uuid`, `published`, `eventType`, `version` and `severity` is
/// optional, per the page's annotated example).
pub(crate) fn event_json(org: &OktaOrg, index: usize) -> Value {
    let e = &org.events[index];
    let seed = org.spec().seed;
    let mut v = json!({
        "uuid": e.uuid(),
        "published": ts(e.published),
        "eventType": e.kind.event_type(),
        "version": "0",
        "severity": if e.failure { "WARN" } else { "INFO" },
    });
    match e.actor {
        Actor::User(u) => {
            let user = &org.users[u as usize];
            v["actor"] = json!({
                "id": user.id,
                "type": "User",
                "alternateId": user.email,
                "displayName": format!("{} {}", user.first_name, user.last_name),
            });
            // One place and browser per person; a session id per person-day, shared by the
            // day's sign-in and SSOs ("authenticationContext.externalSessionId: Identifies
            // events that occurred in the same user session", "Event correlation").
            let h = mix(seed, u64::from(u), 31);
            let (city, state, country, postal, lat, lon) = CITIES[below(h, CITIES.len() as u64) as usize];
            let (raw, os, browser) = AGENTS[below(mix64(h), AGENTS.len() as u64) as usize];
            let ip = format!("10.{}.{}.{}", h % 250 + 1, (h >> 8) % 250 + 1, (h >> 16) % 250 + 1);
            let geo = json!({"city": city, "state": state, "country": country, "postalCode": postal,
                "geolocation": {"lat": lat, "lon": lon}});
            v["client"] = json!({
                "userAgent": {"rawUserAgent": raw, "os": os, "browser": browser},
                "device": "Computer",
                "ipAddress": ip,
                "geographicalContext": geo,
            });
            v["request"] = json!({"ipChain": [{"ip": ip, "geographicalContext": geo, "version": "V4"}]});
            v["transaction"] = json!({"type": "WEB", "id": base62(mix64(e.salt ^ 0x7777), 27)});
            let session = mix(seed, u64::from(u), e.published.div_euclid(DAY_MS) as u64);
            v["authenticationContext"] =
                json!({"authenticationStep": 0, "externalSessionId": format!("102{}", base62(session, 22))});
        }
        Actor::System => {
            v["actor"] = json!({
                "id": org.system_id,
                "type": "SystemPrincipal",
                "alternateId": "system@okta.com",
                "displayName": "Okta System",
            });
            // "Transaction events with type equal to JOB don't have a geographical context set"
            // (LogGeographicalContext).
            v["transaction"] = json!({"type": "JOB", "id": base62(mix64(e.salt ^ 0x7777), 27)});
        }
    }
    v["outcome"] = if e.failure {
        json!({"result": "FAILURE", "reason": "INVALID_CREDENTIALS"})
    } else {
        json!({"result": "SUCCESS"})
    };
    match e.kind {
        EventKind::SessionStart => {
            // The System Log page's example event: "User login to Okta",
            // `core.user_auth.login_success`, `requestUri` `/login/do-login`.
            v["displayMessage"] = json!("User login to Okta");
            if !e.failure {
                v["legacyEventType"] = json!("core.user_auth.login_success");
            }
            v["debugContext"] = json!({"debugData": {"requestUri": "/login/do-login"}});
        }
        EventKind::Sso => {
            // "User single sign on to app" (the "Event correlation" table). The AppInstance is
            // one of the targets, next to the AppUser; "Target types … for a given eventType
            // are not always in the same array location" (LogEvent.target), so their order
            // varies.
            let app = &org.apps[usize::from(e.app.unwrap_or(0))];
            let Actor::User(u) = e.actor else { return v };
            let user = &org.users[u as usize];
            let instance =
                json!({"id": app.id, "type": "AppInstance", "alternateId": app.label, "displayName": app.label});
            let app_user = json!({
                "id": format!("0ua{}", base62(mix(seed, u64::from(u), u64::from(e.app.unwrap_or(0)) + 1000), 17)),
                "type": "AppUser",
                "alternateId": user.email,
                "displayName": format!("{} {}", user.first_name, user.last_name),
            });
            v["displayMessage"] = json!("User single sign on to app");
            v["target"] =
                if e.salt.is_multiple_of(2) { json!([instance, app_user]) } else { json!([app_user, instance]) };
        }
        EventKind::LifecycleCreate
        | EventKind::LifecycleSuspend
        | EventKind::LifecycleDeactivate
        | EventKind::AccountLock => {
            if e.kind == EventKind::LifecycleCreate {
                // The System Log page's filter error example names this display message.
                v["displayMessage"] = json!("Create okta user");
            }
            if let Some(t) = e.target_user {
                let user = &org.users[t as usize];
                v["target"] = json!([{
                    "id": user.id,
                    "type": "User",
                    "alternateId": user.email,
                    "displayName": format!("{} {}", user.first_name, user.last_name),
                }]);
            }
        }
    }
    v
}
