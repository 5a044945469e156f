//! `GET /api/v1/users` (operation listUsers): paging by `after` and `limit` with `Link` headers,
//! the `filter` parameter, and the User object.

use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::filter::{self, Expr, FilterError, Op};
use crate::org::{OktaOrg, UserKind, UserStatus};
use crate::server::{JSON, Reply, Shared, link, param, query_pairs};

/// "If you don't specify a value for `limit`, the maximum (200) is used as a default"; "limit:
/// Specifies the number of results returned (maximum 200)" (okta-developer-docs
/// `reference/api/users/index.md`, the List Users parameters, before its 2025 stub cleanup);
/// the OpenAPI spec keeps `default: 200`. A larger `limit` is clamped to 200 (the simulator's
/// choice: the docs name a maximum, not an error).
pub const USERS_MAX_LIMIT: i64 = 200;

/// Okta timestamps: `2022-04-04T15:56:05.000Z` (the spec's ListUsersResponse example).
pub(crate) fn ts(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn filter_error(shared: &Shared, e: &FilterError) -> Reply {
    match e {
        FilterError::Unsupported { .. } => shared.error(StatusCode::BAD_REQUEST, "E0000031", &e.to_string(), &[]),
        _ => shared.error(StatusCode::BAD_REQUEST, "E0000053", &e.to_string(), &[]),
    }
}

/// Checks a users `filter` against what the operation documents: "Filtering supports the
/// following limited number of properties: `status`, `lastUpdated`, `id`, `profile.login`,
/// `profile.email`, `profile.firstName`, and `profile.lastName`. Additionally, filtering
/// supports only the equal `eq` operator …, except in the case of the `lastUpdated` property.
/// This property can also use the inequality operators (`gt`, `ge`, `lt`, and `le`). For
/// logical operators, only the logical operators `and` and `or` are supported. The `not`
/// operator isn't supported." (listUsers `filter`). `lastUpdated` values are normalised to the
/// millisecond form so comparisons are chronological.
fn users_filter(raw: &str) -> Result<Expr, FilterError> {
    let mut expr = filter::parse(raw)?;
    expr.visit(&mut |attr, op, negated| {
        let ok_attr = matches!(
            attr,
            "status"
                | "lastUpdated"
                | "id"
                | "profile.login"
                | "profile.email"
                | "profile.firstName"
                | "profile.lastName"
        );
        if !ok_attr {
            return Err(FilterError::InvalidField(attr.to_owned()));
        }
        let ok_op = op == Op::Eq || (attr == "lastUpdated" && matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le));
        if !ok_op || negated {
            return Err(FilterError::Unsupported {
                op: if negated { "not" } else { op.as_str() },
                field: attr.to_owned(),
            });
        }
        Ok(())
    })?;
    normalise_dates(&mut expr, raw)?;
    Ok(expr)
}

fn normalise_dates(expr: &mut Expr, raw: &str) -> Result<(), FilterError> {
    match expr {
        Expr::Cmp { attr, value: Some(v), .. } if attr == "lastUpdated" => {
            let t = DateTime::parse_from_rfc3339(v).map_err(|_| {
                FilterError::Syntax(format!("Invalid filter '{raw}': '{v}' is not a valid date-time for lastUpdated"))
            })?;
            *v = ts(t.timestamp_millis());
            Ok(())
        }
        Expr::Cmp { .. } => Ok(()),
        Expr::And(a, b) | Expr::Or(a, b) => {
            normalise_dates(a, raw)?;
            normalise_dates(b, raw)
        }
        Expr::Not(e) => normalise_dates(e, raw),
    }
}

pub(crate) fn list(shared: &Shared, base: &str, query: Option<&str>) -> Reply {
    let pairs = query_pairs(query);
    // Only `filter` is simulated. `search`, `q`, `fields` and `expand` are refused rather than
    // answered unfaithfully (`search` alone has a grammar over every profile attribute, with
    // sorting and an eventually consistent source).
    for unsupported in ["search", "q", "fields", "expand"] {
        if param(&pairs, unsupported).is_some() {
            return shared.validation(unsupported, &[format!("{unsupported}: not supported by the Okta simulator")]);
        }
    }
    let limit = match param(&pairs, "limit").filter(|v| !v.is_empty()) {
        None => USERS_MAX_LIMIT,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => n.min(USERS_MAX_LIMIT),
            _ => return shared.validation("limit", &[format!("limit: '{v}' is not a positive integer")]),
        },
    };
    let filter_raw = param(&pairs, "filter").filter(|f| !f.is_empty());
    let expr = match filter_raw.map(users_filter).transpose() {
        Ok(e) => e,
        Err(e) => return filter_error(shared, &e),
    };
    let after = param(&pairs, "after").filter(|a| !a.is_empty());
    let org = &shared.org;
    let now = shared.now_ms();
    // The cursor is the last user's id, as Okta's own next links show it
    // (`/api/v1/users?after=00ud4tVDDXYVKPXKVLCO&limit=200`, List Users example); clients must
    // still treat it as opaque. Users are listed in id order (the simulator's choice: Okta
    // documents no order for an unsorted listing).
    let start = after.map_or(0, |a| org.by_id.partition_point(|&p| org.users[p].id.as_str() <= a));
    let mut page = Vec::new();
    let mut more = false;
    for &pos in &org.by_id[start..] {
        if !org.exists_at(pos, now) {
            continue;
        }
        let status = org.status_at(pos, now);
        // "This operation omits users that have a status of DEPROVISIONED in the response. To
        // return all users, use a filter or search query instead." (listUsers description)
        if expr.is_none() && status == UserStatus::Deprovisioned {
            continue;
        }
        if let Some(e) = &expr
            && !e.matches(&|attr| user_attr(org, pos, now, attr))
        {
            continue;
        }
        if page.len() as i64 == limit {
            more = true;
            break;
        }
        page.push(pos);
    }
    let body: Vec<Value> = page.iter().map(|&p| user_json(org, p, now, base)).collect();
    let mut headers =
        vec![link(&format!("{base}/api/v1/users{}", query.map(|q| format!("?{q}")).unwrap_or_default()), "self")];
    if more && let Some(&last) = page.last() {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        next.append_pair("limit", &limit.to_string());
        if let Some(f) = filter_raw {
            next.append_pair("filter", f);
        }
        next.append_pair("after", &org.users[last].id);
        headers.push(link(&format!("{base}/api/v1/users?{}", next.finish()), "next"));
    }
    Reply { status: StatusCode::OK, content_type: JSON, headers, body: serde_json::to_vec(&body).unwrap_or_default() }
}

fn user_attr(org: &OktaOrg, pos: usize, now: i64, attr: &str) -> Vec<String> {
    let u = &org.users[pos];
    let v = match attr {
        "status" => org.status_at(pos, now).as_str().to_owned(),
        "lastUpdated" => ts(last_updated(org, pos, now)),
        "id" => u.id.clone(),
        "profile.login" | "profile.email" => u.email.clone(),
        "profile.firstName" => u.first_name.clone(),
        "profile.lastName" => u.last_name.clone(),
        _ => return Vec::new(),
    };
    vec![v]
}

fn last_updated(org: &OktaOrg, pos: usize, now: i64) -> i64 {
    let u = &org.users[pos];
    [Some(u.created), u.activated, u.status_changed, u.password_changed]
        .into_iter()
        .flatten()
        .filter(|&t| t <= now)
        .max()
        .unwrap_or(u.created)
}

/// One User object (schema `User`): what the spec's ListUsersResponse example carries.
pub(crate) fn user_json(org: &OktaOrg, pos: usize, now: i64, base: &str) -> Value {
    let u = &org.users[pos];
    let status = org.status_at(pos, now);
    let status_changed = match u.status_changed {
        Some(t) if t <= now => Some(t),
        _ if status == UserStatus::Active => u.activated,
        _ => None,
    };
    let mut profile = Map::new();
    profile.insert("firstName".into(), json!(u.first_name));
    profile.insert("lastName".into(), json!(u.last_name));
    profile.insert("displayName".into(), json!(format!("{} {}", u.first_name, u.last_name)));
    profile.insert("login".into(), json!(u.email));
    profile.insert("email".into(), json!(u.email));
    if let Some(n) = &u.employee_number {
        profile.insert("employeeNumber".into(), json!(n));
    }
    if let Some(d) = &u.department {
        profile.insert("department".into(), json!(d));
    }
    if let Some(m) = u.manager {
        // "manager: The displayName of the user's manager"; "managerId: The id of the user's
        // manager" (UserProfile).
        let mu = &org.users[m];
        profile.insert("manager".into(), json!(format!("{} {}", mu.first_name, mu.last_name)));
        profile.insert("managerId".into(), json!(mu.id));
    }
    if let Some(t) = &u.user_type {
        profile.insert("userType".into(), json!(t));
    }
    let mut user = json!({
        "id": u.id,
        "status": status.as_str(),
        "created": ts(u.created),
        "activated": u.activated.filter(|&t| t <= now).map(ts),
        "statusChanged": status_changed.map(ts),
        "lastLogin": org.last_login(pos, now).map(ts),
        "lastUpdated": ts(last_updated(org, pos, now)),
        "passwordChanged": u.password_changed.filter(|&t| t <= now).map(ts),
        "type": {"id": format!("oty{}", &org.system_id[3..])},
        "profile": Value::Object(profile),
        "_links": {"self": {"href": format!("{base}/api/v1/users/{}", u.id)}},
    });
    if u.kind != UserKind::Service {
        user["credentials"] = json!({"provider": {"type": "OKTA", "name": "OKTA"}});
    }
    user
}
