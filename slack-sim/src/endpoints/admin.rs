//! Enterprise Grid admin methods: `admin.teams.list` and `admin.users.list`, whose
//! `last_active_ts`, `date_created` and `has_sso` only an org token without `team_id` sees.

use serde_json::{Value, json};

use crate::api::{Ctx, Reply, decode_cursor, encode_cursor, page_positions, user_cursor};
use crate::org::Kind;
use crate::rng::{mix, unit};

const T_SSO: u64 = 800;

pub(crate) fn teams_list(ctx: &Ctx<'_>) -> Reply {
    let org = ctx.org();
    let limit = match ctx.params.get("limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return Reply::error("invalid_limit"),
    };
    let start = match ctx.params.get("cursor") {
        None => 0,
        Some(c) => match decode_cursor(c).and_then(|t| t.strip_prefix("team:")?.parse::<usize>().ok()) {
            Some(i) if i < org.workspaces().len() => i,
            _ => return Reply::error("invalid_cursor"),
        },
    };
    let owner_email = org.email(0);
    let end = (start + limit).min(org.workspaces().len());
    let teams: Vec<Value> = org.workspaces()[start..end]
        .iter()
        .enumerate()
        .map(|(i, w)| {
            json!({
                "id": w.id, "name": w.name,
                "discoverability": if (start + i) % 2 == 0 { "open" } else { "hidden" },
                "primary_owner": {"user_id": org.user(0).id, "email": owner_email},
                "team_url": format!("https://{}.slack.com/", w.domain),
            })
        })
        .collect();
    let next = if end < org.workspaces().len() { encode_cursor(&format!("team:{end}")) } else { String::new() };
    Reply::json(&json!({"ok": true, "teams": teams, "response_metadata": {"next_cursor": next}}))
}

pub(crate) fn users_list(ctx: &Ctx<'_>) -> Reply {
    let org = ctx.org();
    let p = ctx.params;
    let limit = match p.get("limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return Reply::error("invalid_limit"),
    };
    if p.flag("include_deactivated_user_workspaces") && !ctx.org_wide {
        return Reply::error("include_deactivated_user_workspaces_invalid");
    }
    let start = match p.get("cursor") {
        None => 0,
        Some(c) => match user_cursor(org, c) {
            Some(pos) => pos,
            None => return Reply::error("invalid_cursor"),
        },
    };
    // `is_active` defaults to true: deactivated accounts only appear when asked for alone.
    let want_active = !matches!(p.get("is_active"), Some("false" | "0"));
    let only_guests = p.flag("only_guests");
    let (ws, org_wide) = (ctx.ws, ctx.org_wide);
    let keep = |pos: usize| {
        let u = org.user(pos);
        u.kind != Kind::Slackbot
            && org.is_deleted(pos) != want_active
            && (!only_guests || u.kind.is_guest())
            && (org_wide || org.in_workspace(pos, ws))
    };
    let (positions, next) = page_positions(org.len() - 1, start, limit, keep);
    let now = ctx.shared.now();
    let users: Vec<Value> = positions
        .into_iter()
        .map(|pos| {
            let u = org.user(pos);
            let owner = matches!(u.kind, Kind::Owner | Kind::PrimaryOwner);
            let workspaces = org.member_workspace_ids(pos);
            let role = match u.kind {
                Kind::PrimaryOwner => "primary_owner",
                Kind::Owner => "owner",
                Kind::Admin => "admin",
                Kind::GuestMulti | Kind::GuestSingle => "guest",
                _ => "member",
            };
            let mut v = json!({
                "id": u.id, "email": org.email(pos).unwrap_or_default(), "username": u.name,
                "full_name": org.person_name(pos).0.to_owned() + " " + org.person_name(pos).1,
                "is_admin": owner || u.kind == Kind::Admin, "is_owner": owner,
                "is_primary_owner": u.kind == Kind::PrimaryOwner, "is_restricted": u.kind.is_guest(),
                "is_ultra_restricted": u.kind == Kind::GuestSingle, "is_bot": !u.kind.is_human(),
                "is_active": !org.is_deleted(pos), "roles": [role], "workspaces": workspaces,
            });
            if let Some(day) = org.deleted_day(pos) {
                v["deactivated_ts"] = json!(org.start_epoch() + i64::from(day) * 86_400);
            }
            if u.kind.is_guest() {
                v["expiration_ts"] = json!(0);
            }
            if org_wide {
                v["date_created"] = json!(org.date_created(pos));
                v["has_2fa"] = json!(u.has_2fa);
                v["has_sso"] = json!(u.kind.is_human() && unit(mix(org.seed(), pos as u64, T_SSO)) < 0.7);
                v["last_active_ts"] = json!(org.last_access(pos, now).unwrap_or(0));
            }
            v
        })
        .collect();
    let next = next.map(|p| encode_cursor(&format!("user:{}", org.user(p).id))).unwrap_or_default();
    Reply::json(&json!({"ok": true, "users": users, "response_metadata": {"next_cursor": next}}))
}
