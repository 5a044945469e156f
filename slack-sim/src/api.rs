//! The Web API core: argument parsing, tokens, the method table (tier, scopes, plan gate,
//! workspace scoping), and the original methods auth.test, team.info, users.list and
//! team.accessLogs. Newer method families live in `endpoints/`.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::activity::Entry;
use crate::endpoints;
use crate::names::ZONES;
use crate::org::{Kind, Org, Plan, T_PROFILE_FIELDS};
use crate::ratelimit::Tier;
use crate::rng::{base36, below, mix, permute, unit};
use crate::server::Shared;

/// A response before it becomes HTTP, so faults can rewrite it (e.g. truncate the body).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub(crate) const JSON: &str = "application/json; charset=utf-8";

impl Reply {
    pub(crate) fn json(value: &Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type: JSON,
            headers: Vec::new(),
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// Slack reports failures with HTTP 200 and `ok:false`.
    pub(crate) fn error(code: &str) -> Reply {
        Reply::json(&json!({"ok": false, "error": code}))
    }

    pub(crate) fn rate_limited(retry_after_secs: u64) -> Reply {
        let mut reply = Reply::error("ratelimited");
        reply.status = StatusCode::TOO_MANY_REQUESTS;
        reply.headers.push(("retry-after", retry_after_secs.max(1).to_string()));
        reply
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        if let Ok(v) = self.content_type.parse() {
            headers.insert(header::CONTENT_TYPE, v);
        }
        for (name, value) in self.headers {
            if let Ok(v) = value.parse() {
                headers.insert(name, v);
            }
        }
        response
    }
}

/// Arguments from the query string and a form-encoded body; the body wins, and an empty value
/// counts as absent, as Slack treats `cursor=` like no cursor.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub(crate) fn parse(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Params {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            pairs.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            pairs.extend(url::form_urlencoded::parse(body).into_owned());
        }
        Params { pairs }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenType {
    User,
    Bot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenState {
    Active,
    Revoked,
    Inactive,
}

#[derive(Clone, Debug)]
pub(crate) struct TokenInfo {
    pub token: String,
    pub kind: TokenType,
    pub state: TokenState,
    pub scopes: &'static [&'static str],
    pub user_id: String,
    pub user_name: String,
    pub bot_id: Option<String>,
    /// An Enterprise Grid organisation-wide install: workspace-scoped methods need `team_id`.
    pub org_level: bool,
    /// The workspace a workspace token belongs to (index into `Org::workspaces`).
    pub workspace: usize,
}

pub(crate) const USER_SCOPES: &[&str] = &[
    "users:read",
    "users:read.email",
    "team:read",
    "admin",
    "usergroups:read",
    "admin.analytics:read",
    "admin.users:read",
    "admin.teams:read",
];
pub(crate) const ORG_SCOPES: &[&str] = &[
    "users:read",
    "users:read.email",
    "team:read",
    "admin",
    "usergroups:read",
    "admin.analytics:read",
    "admin.users:read",
    "admin.teams:read",
    "auditlogs:read",
];
pub(crate) const ORG_SCOPES_NO_TEAMS: &[&str] = &[
    "users:read",
    "users:read.email",
    "team:read",
    "admin",
    "usergroups:read",
    "admin.analytics:read",
    "admin.users:read",
    "auditlogs:read",
];
pub(crate) const BOT_SCOPES: &[&str] = &["users:read", "team:read", "usergroups:read"];
pub(crate) const MEMBER_SCOPES: &[&str] = &["users:read", "team:read"];

/// Which plans a method answers on, and what it says otherwise.
#[derive(Clone, Copy, Debug)]
enum Gate {
    All,
    /// Free answers `paid_only`.
    Paid,
    /// Free answers `plan_upgrade_required` (user groups).
    Standard,
    /// Only Enterprise Grid; others answer `feature_not_enabled`.
    Grid,
    /// Business+ and Grid; others answer `feature_not_available`.
    BusinessPlus,
}

impl Gate {
    fn check(self, plan: Plan) -> Result<(), &'static str> {
        match self {
            Gate::All => Ok(()),
            Gate::Paid if plan.is_paid() => Ok(()),
            Gate::Paid => Err("paid_only"),
            Gate::Standard if plan.is_paid() => Ok(()),
            Gate::Standard => Err("plan_upgrade_required"),
            Gate::Grid if plan == Plan::Enterprise => Ok(()),
            Gate::Grid => Err("feature_not_enabled"),
            Gate::BusinessPlus if matches!(plan, Plan::BusinessPlus | Plan::Enterprise) => Ok(()),
            Gate::BusinessPlus => Err("feature_not_available"),
        }
    }
}

struct MethodSpec {
    name: &'static str,
    tier: Tier,
    scopes: &'static [&'static str],
    user_token_only: bool,
    gate: Gate,
    /// With an org-level token the method needs `team_id`.
    team_scoped: bool,
}

const fn method(name: &'static str, tier: Tier, scopes: &'static [&'static str], user_only: bool) -> MethodSpec {
    MethodSpec { name, tier, scopes, user_token_only: user_only, gate: Gate::All, team_scoped: false }
}

const fn scoped(mut m: MethodSpec, gate: Gate) -> MethodSpec {
    m.gate = gate;
    m.team_scoped = true;
    m
}

const fn gated(mut m: MethodSpec, gate: Gate) -> MethodSpec {
    m.gate = gate;
    m
}

const METHODS: &[MethodSpec] = &[
    // auth.test is "Special" (hundreds per minute); Tier 4 is close enough for a simulator.
    method("auth.test", Tier::Tier4, &[], false),
    // "No scope required", Tier 2, cursor paging with `limit` up to 1000 (slack-api-ref
    // docs.slack.dev/methods/auth.teams.list.json).
    method("auth.teams.list", Tier::Tier2, &[], false),
    method("team.info", Tier::Tier3, &["team:read"], false),
    scoped(method("users.list", Tier::Tier2, &["users:read"], false), Gate::All),
    method("users.info", Tier::Tier4, &["users:read"], false),
    // paid_only comes from inside the method, after the scope check, as it always has here.
    scoped(method("team.accessLogs", Tier::Tier2, &["admin"], true), Gate::All),
    scoped(method("team.billableInfo", Tier::Tier2, &["admin"], true), Gate::Paid),
    scoped(method("usergroups.list", Tier::Tier2, &["usergroups:read"], false), Gate::Standard),
    scoped(method("usergroups.users.list", Tier::Tier2, &["usergroups:read"], false), Gate::Standard),
    gated(method("admin.teams.list", Tier::Tier3, &["admin.teams:read"], true), Gate::Grid),
    gated(method("admin.users.list", Tier::Tier4, &["admin.users:read"], true), Gate::Grid),
    gated(method("admin.analytics.getFile", Tier::Tier2, &["admin.analytics:read"], true), Gate::BusinessPlus),
];

/// What a method handler needs to know about the call.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub info: &'a TokenInfo,
    pub params: &'a Params,
    /// The workspace the call is about.
    pub ws: usize,
    /// An org-level token without `team_id`: the organisation-wide view.
    pub org_wide: bool,
}

impl Ctx<'_> {
    pub(crate) fn org(&self) -> &Org {
        &self.shared.org
    }

    pub(crate) fn grid(&self) -> bool {
        self.org().workspaces().len() > 1
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Normal handling of one call: method lookup, auth, rate limit, scopes, then the method.
pub(crate) async fn handle(shared: &Shared, method: &str, headers: &HeaderMap, params: &Params) -> Reply {
    let Some(spec) = METHODS.iter().find(|m| m.name == method) else {
        return Reply::json(&json!({"ok": false, "error": "unknown_method", "req_method": method}));
    };
    let Some(token) = bearer(headers).or_else(|| params.get("token")) else {
        return Reply::error("not_authed");
    };
    let Some(info) = shared.tokens.iter().find(|t| t.token == token) else {
        return Reply::error("invalid_auth");
    };
    match info.state {
        TokenState::Active => {}
        TokenState::Revoked => return Reply::error("token_revoked"),
        TokenState::Inactive => return Reply::error("account_inactive"),
    }
    let org = &shared.org;
    let team_arg = params.get("team_id");
    let (ws, org_wide) = if info.org_level {
        match team_arg {
            None if spec.team_scoped => return Reply::error("missing_argument"),
            None => (0, true),
            Some(t) => match org.workspace_index(t) {
                Some(ws) => (ws, false),
                None if spec.name.starts_with("admin.") => return Reply::error("team_not_found"),
                None => return Reply::error("invalid_team_id"),
            },
        }
    } else {
        // A workspace token's own workspace wins; Slack ignores `team_id` then.
        (info.workspace, false)
    };
    // Buckets are per (method, workspace); the org-wide view counts against the organisation.
    let bucket = if org_wide { org.enterprise_id().unwrap_or(org.team_id()) } else { &org.workspaces()[ws].id };
    if let Some(limiter) = &shared.limiter
        && let Err(wait) = limiter.acquire(method, bucket, spec.tier)
    {
        return Reply::rate_limited(wait);
    }
    let provided = info.scopes.join(",");
    let accepted = spec.scopes.join(",");
    let ctx = Ctx { shared, info, params, ws, org_wide };
    let reply = if spec.user_token_only && info.kind == TokenType::Bot {
        Reply::error("not_allowed_token_type")
    } else if let Err(code) = spec.gate.check(org.spec().plan) {
        Reply::error(code)
    } else if spec.scopes.iter().any(|s| !info.scopes.contains(s)) {
        Reply::json(&json!({
            "ok": false, "error": "missing_scope", "needed": accepted, "provided": provided,
        }))
    } else if let Some(reply) = standing_condition(&ctx, spec) {
        reply
    } else {
        match spec.name {
            "auth.test" => auth_test(shared, info),
            "auth.teams.list" => auth_teams_list(&ctx),
            "team.info" => team_info(shared, params),
            "users.list" => users_list(&ctx),
            "users.info" => endpoints::users::users_info(&ctx),
            "team.billableInfo" => endpoints::billing::billable_info(&ctx),
            "usergroups.list" => endpoints::usergroups::list(&ctx),
            "usergroups.users.list" => endpoints::usergroups::users_list(&ctx),
            "admin.teams.list" => endpoints::admin::teams_list(&ctx),
            "admin.users.list" => endpoints::admin::users_list(&ctx),
            "admin.analytics.getFile" => endpoints::analytics::get_file(&ctx),
            _ => access_logs(&ctx).await,
        }
    };
    reply.with_header("x-oauth-scopes", provided).with_header("x-accepted-oauth-scopes", accepted)
}

/// The answer of a standing condition (`Conditions`) to this call, if one applies. Checked
/// after token, plan and scope, as Slack answers those first.
fn standing_condition(ctx: &Ctx<'_>, spec: &MethodSpec) -> Option<Reply> {
    let c = &ctx.shared.conditions;
    let on_workspace = ctx.info.org_level && !ctx.org_wide;
    // Workspace-scoped methods with an org token and the `team_id` of a workspace the org-wide
    // app was not granted: "The token used is not granted the specific workspace access
    // required to complete this request" (Slack's method error tables).
    if on_workspace && spec.team_scoped && !c.granted(ctx.ws) {
        return Some(Reply::error("team_access_not_granted"));
    }
    if on_workspace && spec.name == "team.billableInfo" && c.owner_missing_from.contains(&ctx.ws) {
        // "passing the team_id parameter will result in an invalid_auth error if the org owner
        // is not part of the team" (Slack's team.billableInfo page).
        return Some(Reply::error("invalid_auth"));
    }
    if let Some(e) = c.workspace_errors.iter().find(|e| e.method == spec.name && e.workspace == ctx.ws && !ctx.org_wide)
    {
        return Some(Reply::error(&e.error));
    }
    if spec.name == "admin.analytics.getFile" {
        // Both from the method's error table (slack-api-ref admin.analytics.getFile.json):
        // "unavailable for organizations with a 'Hide email addresses' policy", and
        // member analytics switched off for the organisation.
        if c.hide_emails {
            return Some(Reply::error("org_level_email_display_disabled"));
        }
        if c.analytics_disabled {
            return Some(Reply::error("member_analytics_disabled"));
        }
    }
    None
}

/// `auth.teams.list`: the workspaces an org-wide app was granted, cursor paged, in the shape
/// of the recorded sample (`teams[{id,name,icon}]`, `response_metadata.next_cursor`; contract
/// sample `api__auth.teams.list.json`). A workspace token lists its own workspace (an
/// assumption: Slack documents the method for org-wide apps).
fn auth_teams_list(ctx: &Ctx<'_>) -> Reply {
    let org = ctx.org();
    let limit = match ctx.params.get("limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return Reply::error("invalid_limit"),
    };
    let granted: Vec<usize> = if ctx.info.org_level {
        (0..org.workspaces().len()).filter(|&w| ctx.shared.conditions.granted(w)).collect()
    } else {
        vec![ctx.info.workspace]
    };
    let start = match ctx.params.get("cursor") {
        None => 0,
        Some(c) => match decode_cursor(c).and_then(|t| t.strip_prefix("granted:")?.parse::<usize>().ok()) {
            Some(i) if i < granted.len() => i,
            _ => return Reply::error("invalid_cursor"),
        },
    };
    let end = (start + limit).min(granted.len());
    let teams: Vec<Value> = granted[start..end]
        .iter()
        .map(|&w| {
            let ws = &org.workspaces()[w];
            let icon = format!("https://avatars.slack-edge.com/sim/{}", ws.id.to_ascii_lowercase());
            json!({
                "id": ws.id, "name": ws.name,
                "icon": {
                    "image_default": false,
                    "image_34": format!("{icon}_34.png"), "image_44": format!("{icon}_44.png"),
                    "image_68": format!("{icon}_68.png"), "image_88": format!("{icon}_88.png"),
                    "image_102": format!("{icon}_102.png"), "image_132": format!("{icon}_132.png"),
                    "image_230": format!("{icon}_230.png"),
                },
            })
        })
        .collect();
    let next = if end < granted.len() { encode_cursor(&format!("granted:{end}")) } else { String::new() };
    Reply::json(&json!({"ok": true, "teams": teams, "response_metadata": {"next_cursor": next}}))
}

fn auth_test(shared: &Shared, info: &TokenInfo) -> Reply {
    let org = &shared.org;
    let mut body = json!({
        "ok": true,
        "url": format!("https://{}.slack.com/", org.domain()),
        "team": org.team_name(),
        "user": info.user_name,
        "team_id": org.team_id(),
        "user_id": info.user_id,
        "is_enterprise_install": info.org_level,
    });
    if info.org_level
        && let Some(e) = org.enterprise_id()
    {
        // An organisation-wide install reports the organisation as its team.
        body["team_id"] = json!(e);
        body["url"] = json!(format!("https://{}.enterprise.slack.com/", org.domain()));
    }
    if let Some(bot_id) = &info.bot_id {
        body["bot_id"] = json!(bot_id);
    }
    if let Some(e) = org.enterprise_id() {
        body["enterprise_id"] = json!(e);
    }
    Reply::json(&body)
}

fn team_info(shared: &Shared, params: &Params) -> Reply {
    let org = &shared.org;
    if params.get("team").is_some_and(|t| t != org.team_id()) {
        return Reply::error("team_not_found");
    }
    let icon_base = format!("https://avatars.slack-edge.com/sim/{}", org.team_id().to_ascii_lowercase());
    let mut team = json!({
        "id": org.team_id(),
        "name": org.team_name(),
        "url": format!("https://{}.slack.com/", org.domain()),
        "domain": org.domain(),
        "email_domain": org.email_domain(),
        "icon": {
            "image_34": format!("{icon_base}_34.png"),
            "image_44": format!("{icon_base}_44.png"),
            "image_68": format!("{icon_base}_68.png"),
            "image_88": format!("{icon_base}_88.png"),
            "image_102": format!("{icon_base}_102.png"),
            "image_132": format!("{icon_base}_132.png"),
            "image_230": format!("{icon_base}_230.png"),
            "image_original": format!("{icon_base}_original.png"),
            "image_default": false,
        },
        "avatar_base_url": "https://ca.slack-edge.com/",
        "is_verified": false,
    });
    if let Some(e) = org.enterprise_id() {
        team["enterprise_id"] = json!(e);
        team["enterprise_name"] = json!(org.team_name());
        team["enterprise_domain"] = json!(org.domain());
    }
    Reply::json(&json!({"ok": true, "team": team}))
}

/// Opaque cursors in Slack's style: base64 of a readable position.
pub(crate) fn encode_cursor(text: &str) -> String {
    B64.encode(text)
}

pub(crate) fn decode_cursor(cursor: &str) -> Option<String> {
    B64.decode(cursor.trim()).ok().and_then(|b| String::from_utf8(b).ok())
}

const T_PAGE: u64 = 300;
const T_BOT_ID: u64 = 301;
const T_APP_ID: u64 = 302;
const T_COLOR: u64 = 303;
pub(crate) const MAX_LIMIT: usize = 1000;

/// Positions from `start` on that satisfy `keep`, at most `count` of them, and the position of
/// the next one (where the following page starts), if any.
pub(crate) fn page_positions(
    total: usize,
    start: usize,
    count: usize,
    keep: impl Fn(usize) -> bool,
) -> (Vec<usize>, Option<usize>) {
    let mut out = Vec::with_capacity(count.min(total));
    let mut pos = start;
    while pos < total && out.len() < count {
        if keep(pos) {
            out.push(pos);
        }
        pos += 1;
    }
    let next = (pos..total).find(|&p| keep(p));
    (out, next)
}

/// The position a `user:<id>` cursor points at.
pub(crate) fn user_cursor(org: &Org, cursor: &str) -> Option<usize> {
    decode_cursor(cursor).and_then(|t| t.strip_prefix("user:").map(str::to_owned)).and_then(|id| org.position_of(&id))
}

fn users_list(ctx: &Ctx<'_>) -> Reply {
    let (shared, info, params) = (ctx.shared, ctx.info, ctx.params);
    let org = &shared.org;
    let total = org.len();
    let limit = match params.get("limit").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Reply::error("invalid_limit"),
    };
    let start = match params.get("cursor") {
        None => 0,
        Some(c) => match user_cursor(org, c) {
            Some(p) => p,
            None => return Reply::error("invalid_cursor"),
        },
    };
    let page = match limit {
        0 if total > MAX_LIMIT => return Reply::error("limit_required"),
        0 => total,
        // Real pages often come back a little short of `limit` even mid-collection.
        n if n >= 10 => {
            let limit = n.min(MAX_LIMIT);
            limit - below(mix(org.seed(), start as u64, T_PAGE), limit as u64 / 10 + 1) as usize
        }
        n => n,
    };
    let ws = ctx.ws;
    let (positions, next) = page_positions(total, start, page.max(1), |p| org.in_workspace(p, ws));
    let with_email = info.scopes.contains(&"users:read.email");
    let locale = params.flag("include_locale");
    let members: Vec<Value> =
        positions.into_iter().map(|pos| service_flags(ctx, pos, user_json(org, pos, with_email, locale))).collect();
    let next = next.map(|p| encode_cursor(&format!("user:{}", org.user(p).id))).unwrap_or_default();
    let mut body = json!({
        "ok": true,
        "members": members,
        "cache_ts": shared.now(),
        "response_metadata": {"next_cursor": next},
    });
    // Slack ends a collection either with `next_cursor: ""` or with no `response_metadata` at
    // all; organisations with an odd seed get the second form so clients meet both.
    if next.is_empty() && org.seed() % 2 == 1 {
        body.as_object_mut().expect("a JSON object").remove("response_metadata");
    }
    Reply::json(&body)
}

pub(crate) fn bot_id(org: &Org, pos: usize) -> String {
    format!("B{}", base36(permute(mix(org.seed(), 0, T_BOT_ID), pos as u64), 10))
}

fn app_id(org: &Org, pos: usize) -> String {
    format!("A{}", base36(permute(mix(org.seed(), 0, T_APP_ID), pos as u64), 10))
}

fn title_case(name: &str) -> String {
    name.split(['-', '.'])
        .map(|w| {
            let mut cs = w.chars();
            cs.next().map(|c| c.to_ascii_uppercase().to_string() + cs.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A user object in Slack's shape, including its habit of leaving profile fields missing, null
/// or empty.
/// `Conditions::workflow_bots`: the organisation's bot users are workflow and connector bots
/// (alternately), flagged `is_workflow_bot` / `is_connector_bot` as real user objects are
/// (java-slack-sdk samples `users.list.json`, `users.info.json`) and with `is_bot: false`:
/// Slack does not document whether they also set `is_bot`, so the switch takes the case that
/// would make them look like people.
pub(crate) fn service_flags(ctx: &Ctx<'_>, pos: usize, mut user: Value) -> Value {
    if ctx.shared.conditions.workflow_bots
        && ctx.org().user(pos).kind == Kind::Bot
        && let Some(obj) = user.as_object_mut()
    {
        let flag = if pos.is_multiple_of(2) { "is_workflow_bot" } else { "is_connector_bot" };
        obj.insert("is_bot".into(), json!(false));
        obj.insert(flag.into(), json!(true));
    }
    user
}

pub(crate) fn user_json(org: &Org, pos: usize, with_email: bool, include_locale: bool) -> Value {
    let u = org.user(pos);
    if u.kind == Kind::Slackbot {
        return slackbot_json(org, include_locale);
    }
    let seed = org.seed();
    let h = |tag: u64| mix(seed, pos as u64, T_PROFILE_FIELDS + tag * 64);
    let zone = &ZONES[usize::from(u.zone)];
    let human = u.kind.is_human();
    let avatar_hash = format!("g{:011x}", h(1) & 0xFFF_FFFF_FFFF);

    let mut profile = Map::new();
    let (real_name, display_name) = if human {
        let (first, last) = org.person_name(pos);
        let real = if u.invited && unit(h(2)) < 0.4 { String::new() } else { format!("{first} {last}") };
        let display = match below(h(3), 10) {
            0..=4 => String::new(),
            5..=7 => first.to_ascii_lowercase(),
            _ => real.clone(),
        };
        match below(h(4), 20) {
            0 => {}
            1 => {
                profile.insert("first_name".into(), Value::Null);
                profile.insert("last_name".into(), Value::Null);
            }
            _ if real.is_empty() => {
                profile.insert("first_name".into(), json!(""));
                profile.insert("last_name".into(), json!(""));
            }
            _ => {
                profile.insert("first_name".into(), json!(first));
                profile.insert("last_name".into(), json!(last));
            }
        }
        match below(h(5), 4) {
            0 => {}
            1 => {
                profile.insert("title".into(), Value::Null);
            }
            2 => {
                profile.insert("title".into(), json!(""));
            }
            _ => {
                profile.insert("title".into(), json!(org.title(pos)));
            }
        }
        if below(h(6), 3) != 0 {
            profile.insert("phone".into(), json!(""));
            profile.insert("skype".into(), json!(""));
        }
        if with_email && let Some(email) = org.email(pos) {
            profile.insert("email".into(), json!(email));
        }
        (real, display)
    } else {
        let real = title_case(&u.name);
        profile.insert("title".into(), json!(""));
        profile.insert("phone".into(), json!(""));
        profile.insert("skype".into(), json!(""));
        (real, String::new())
    };
    profile.insert("real_name".into(), json!(real_name));
    profile.insert("real_name_normalized".into(), json!(real_name));
    profile.insert("display_name".into(), json!(display_name));
    profile.insert("display_name_normalized".into(), json!(display_name));
    profile.insert("fields".into(), if below(h(7), 2) == 0 { Value::Null } else { json!({}) });
    profile.insert("status_text".into(), json!(""));
    profile.insert("status_emoji".into(), json!(""));
    profile.insert("status_emoji_display_info".into(), json!([]));
    profile.insert("status_expiration".into(), json!(0));
    profile.insert("avatar_hash".into(), json!(avatar_hash));
    match u.kind {
        Kind::Bot => {
            profile.insert("bot_id".into(), json!(bot_id(org, pos)));
            profile.insert("api_app_id".into(), json!(app_id(org, pos)));
            profile.insert("always_active".into(), json!(below(h(8), 2) == 0));
        }
        Kind::App => {
            profile.insert("api_app_id".into(), json!(app_id(org, pos)));
            profile.insert("always_active".into(), json!(false));
        }
        _ => {}
    }
    for size in [24, 32, 48, 72, 192, 512] {
        profile.insert(
            format!("image_{size}"),
            json!(format!("https://avatars.slack-edge.com/sim/{avatar_hash}_{size}.jpg")),
        );
    }
    let home = &org.workspaces()[org.home_workspace(pos)].id;
    profile.insert("team".into(), json!(home));

    let mut user = Map::new();
    user.insert("id".into(), json!(u.id));
    user.insert("team_id".into(), json!(home));
    user.insert("name".into(), json!(u.name));
    user.insert("deleted".into(), json!(org.is_deleted(pos)));
    user.insert("color".into(), json!(format!("{:06x}", mix(seed, pos as u64, T_COLOR) & 0xFF_FFFF)));
    user.insert("real_name".into(), json!(real_name));
    // Deactivated accounts come back without their time zone.
    if !org.is_deleted(pos) {
        user.insert("tz".into(), json!(zone.tz));
        user.insert("tz_label".into(), json!(zone.label));
        user.insert("tz_offset".into(), json!(zone.offset));
    }
    user.insert("profile".into(), Value::Object(profile));
    let owner = matches!(u.kind, Kind::Owner | Kind::PrimaryOwner);
    user.insert("is_admin".into(), json!(owner || u.kind == Kind::Admin));
    user.insert("is_owner".into(), json!(owner));
    user.insert("is_primary_owner".into(), json!(u.kind == Kind::PrimaryOwner));
    user.insert("is_restricted".into(), json!(u.kind.is_guest()));
    user.insert("is_ultra_restricted".into(), json!(u.kind == Kind::GuestSingle));
    user.insert("is_bot".into(), json!(u.kind == Kind::Bot));
    user.insert("is_app_user".into(), json!(u.kind == Kind::App));
    user.insert("updated".into(), json!(u.updated));
    user.insert("is_email_confirmed".into(), json!(human && !u.invited));
    user.insert("who_can_share_contact_card".into(), json!("EVERYONE"));
    if u.invited {
        user.insert("is_invited_user".into(), json!(true));
    }
    if human {
        user.insert("has_2fa".into(), json!(u.has_2fa));
        if u.has_2fa {
            user.insert("two_factor_type".into(), json!(if below(h(9), 4) == 0 { "sms" } else { "app" }));
        }
    }
    if include_locale {
        user.insert("locale".into(), json!("en-US"));
    }
    if let Some(enterprise_id) = org.enterprise_id() {
        let teams = org.member_workspace_ids(pos);
        user.insert(
            "enterprise_user".into(),
            json!({
                "id": u.id, "enterprise_id": enterprise_id, "enterprise_name": org.team_name(),
                "is_admin": owner || u.kind == Kind::Admin, "is_owner": owner,
                "is_primary_owner": u.kind == Kind::PrimaryOwner, "teams": teams,
            }),
        );
    }
    Value::Object(user)
}

fn slackbot_json(org: &Org, include_locale: bool) -> Value {
    let mut user = json!({
        "id": "USLACKBOT",
        "team_id": org.team_id(),
        "name": "slackbot",
        "deleted": false,
        "color": "757575",
        "real_name": "Slackbot",
        "tz": "America/Los_Angeles",
        "tz_label": "Pacific Standard Time",
        "tz_offset": -28800,
        "profile": {
            "title": "", "phone": "", "skype": "",
            "real_name": "Slackbot", "real_name_normalized": "Slackbot",
            "display_name": "Slackbot", "display_name_normalized": "Slackbot",
            "fields": null, "status_text": "", "status_emoji": "", "status_expiration": 0,
            "avatar_hash": "sv41d8cd98f0", "always_active": true,
            "first_name": "slackbot", "last_name": "",
            "image_24": "https://a.slack-edge.com/sim/slackbot_24.png",
            "image_72": "https://a.slack-edge.com/sim/slackbot_72.png",
            "team": org.team_id(),
        },
        "is_admin": false, "is_owner": false, "is_primary_owner": false,
        "is_restricted": false, "is_ultra_restricted": false,
        // Slackbot really is reported as a non-bot; clients must recognise it by id.
        "is_bot": false, "is_app_user": false,
        "updated": 0, "is_email_confirmed": false, "who_can_share_contact_card": "EVERYONE",
    });
    if include_locale {
        user["locale"] = json!("en-US");
    }
    user
}

fn parse_epoch(s: &str) -> Option<i64> {
    // Slack accepts fractional timestamps ("1700000000.123") in time arguments.
    match s.split_once('.') {
        Some((whole, frac)) if frac.bytes().all(|b| b.is_ascii_digit()) => whole.parse().ok(),
        _ => s.parse().ok(),
    }
}

async fn access_logs(ctx: &Ctx<'_>) -> Reply {
    let (shared, params) = (ctx.shared, ctx.params);
    if !shared.org.spec().plan.is_paid() {
        return Reply::error("paid_only");
    }
    let now = shared.now();
    let mut before = match params.get("before").map(parse_epoch) {
        None => now,
        Some(Some(b)) => b,
        Some(None) => return Reply::error("invalid_arguments"),
    };
    // A workspace switched to the classic answer ignores `limit`/`cursor` (see
    // `Conditions::access_logs_classic`).
    let classic_only = shared.conditions.access_logs_classic.contains(&ctx.ws);
    let cursor_mode = !classic_only && (params.get("cursor").is_some() || params.get("limit").is_some());
    let mut offset = 0usize;
    let per_page;
    if cursor_mode {
        per_page = match params.get("limit").map(str::parse::<usize>) {
            None | Some(Ok(0)) => 100,
            Some(Ok(n)) => n.min(MAX_LIMIT),
            Some(Err(_)) => return Reply::error("invalid_limit"),
        };
        if let Some(c) = params.get("cursor") {
            let parsed = decode_cursor(c).and_then(|text| {
                let rest = text.strip_prefix("before:")?;
                let (b, o) = rest.split_once(":offset:")?;
                Some((b.parse::<i64>().ok()?, o.parse::<usize>().ok()?))
            });
            match parsed {
                Some((b, o)) => {
                    before = b;
                    offset = o;
                }
                None => return Reply::error("invalid_cursor"),
            }
        }
    } else {
        let count = match params.get("count").map(str::parse::<usize>) {
            None | Some(Ok(0)) => 100,
            Some(Ok(n)) => n,
            Some(Err(_)) => return Reply::error("invalid_arguments"),
        };
        let page = match params.get("page").map(str::parse::<usize>) {
            None | Some(Ok(0)) => 1,
            Some(Ok(n)) => n,
            Some(Err(_)) => return Reply::error("invalid_arguments"),
        };
        if count > 1000 || page > 100 {
            return Reply::error("over_pagination_limit");
        }
        per_page = count;
        offset = (page - 1) * count;
    }

    let log = match shared.access_log(now).await {
        Ok(log) => log,
        Err(()) => return Reply::error("fatal_error"),
    };
    let from = log.partition_point(|e| e.date_last > before);
    let filtered: Vec<Entry>;
    let window = if ctx.grid() {
        // On a Grid each workspace's log holds its members' accesses.
        filtered = log[from..].iter().filter(|e| shared.org.in_workspace(e.user as usize, ctx.ws)).copied().collect();
        &filtered[..]
    } else {
        &log[from..]
    };
    let by_first: Vec<Entry>;
    let window = if shared.conditions.access_logs_by_date_first {
        // Slack documents no sort key for this method ("Set the before parameter to the oldest
        // timestamp returned", team.accessLogs page); every public sample is descending in both
        // dates and cannot tell them apart. This switch lists by `date_first`, newest first,
        // so a long-lived entry with a fresh `date_last` sits deep in the list.
        let mut v = window.to_vec();
        v.sort_by_key(|e| std::cmp::Reverse(e.date_first));
        by_first = v;
        &by_first[..]
    } else {
        window
    };
    let page_entries = window.iter().skip(offset).take(per_page);
    let logins: Vec<Login<'_>> = page_entries.map(|e| Login::of(&shared.org, e)).collect();
    let end = offset.saturating_add(per_page);

    if cursor_mode {
        let next =
            if end < window.len() { encode_cursor(&format!("before:{before}:offset:{end}")) } else { String::new() };
        // Serialised straight from the entries (the bytes `json!` gives, keys in its sorted
        // order): a page of 1,000 built as `Value`s first took ~6 ms, the simulator's ceiling in
        // the collection benchmark (bench/RESULTS.md).
        #[derive(serde::Serialize)]
        struct Meta {
            next_cursor: String,
        }
        #[derive(serde::Serialize)]
        struct Page<'a> {
            logins: Vec<Login<'a>>,
            ok: bool,
            response_metadata: Meta,
        }
        Reply {
            status: StatusCode::OK,
            content_type: JSON,
            headers: Vec::new(),
            body: serde_json::to_vec(&Page { logins, ok: true, response_metadata: Meta { next_cursor: next } })
                .unwrap_or_default(),
        }
    } else {
        let total = window.len();
        Reply::json(&json!({
            "ok": true,
            "logins": logins,
            "paging": {
                "count": per_page,
                "total": total,
                "page": offset / per_page + 1,
                "pages": total.div_ceil(per_page).max(1),
                // The recorded live answer carries the warning here and in `warning`, and has
                // no `response_metadata.warnings` (contract sample `api__team.accessLogs.json`).
                "warnings": ["use_cursor_pagination_instead"],
            },
            "warning": "use_cursor_pagination_instead",
        }))
    }
}

/// One `logins` entry of `team.accessLogs`, its fields in the sorted order `json!` writes them
/// (tested: every cursor page is byte for byte its own `Value` re-serialised).
#[derive(serde::Serialize)]
struct Login<'a> {
    count: u32,
    country: Option<&'static str>,
    date_first: i64,
    date_last: i64,
    ip: String,
    isp: Option<&'static str>,
    region: Option<&'static str>,
    user_agent: &'static str,
    user_id: &'a str,
    username: &'a str,
}

impl<'a> Login<'a> {
    fn of(org: &'a Org, e: &Entry) -> Self {
        let (isp, country, region) = org.entry_geo(e);
        let user = org.user(e.user as usize);
        Login {
            count: e.count,
            country,
            date_first: e.date_first,
            date_last: e.date_last,
            ip: org.entry_ip(e),
            isp,
            region,
            user_agent: org.entry_agent(e),
            user_id: &user.id,
            username: &user.name,
        }
    }
}
