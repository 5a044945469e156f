//! `team.billableInfo`: Fair Billing status per user, computed from the same activity as the
//! access logs but lagging it (Slack computes it "periodically").

use serde_json::{Map, Value, json};

use crate::api::{Ctx, MAX_LIMIT, Reply, encode_cursor, page_positions, user_cursor};
use crate::org::Org;
use crate::rng::{mix, unit};

const T_ABSENT: u64 = 600;

/// Accounts Slack leaves out of the map: bots, apps, Slackbot, people still invited, and a few
/// others for no stated reason.
pub(crate) fn listed(org: &Org, pos: usize) -> bool {
    let u = org.user(pos);
    u.kind.is_human() && !u.invited && unit(mix(org.seed(), pos as u64, T_ABSENT)) >= 0.02
}

pub(crate) fn billable_info(ctx: &Ctx<'_>) -> Reply {
    let org = ctx.org();
    let today = org.day_of(ctx.shared.now()) as i32;
    let entry = |pos: usize| json!({"billing_active": org.billable_on(pos, today)});
    if let Some(user) = ctx.params.get("user") {
        return match org.position_of(user).filter(|&p| org.in_workspace(p, ctx.ws)) {
            Some(pos) if listed(org, pos) => {
                let mut map = Map::new();
                map.insert(user.to_owned(), entry(pos));
                Reply::json(&json!({"ok": true, "billable_info": map}))
            }
            Some(_) => Reply::json(&json!({"ok": true, "billable_info": {}})),
            None => Reply::error("user_not_found"),
        };
    }
    let limit = match ctx.params.get("limit").map(str::parse::<usize>) {
        None => MAX_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return Reply::error("invalid_limit"),
    };
    let start = match ctx.params.get("cursor") {
        None => 0,
        Some(c) => match user_cursor(org, c) {
            Some(p) => p,
            None => return Reply::error("invalid_cursor"),
        },
    };
    let ws = ctx.ws;
    let (positions, next) = page_positions(org.len(), start, limit, |p| org.in_workspace(p, ws) && listed(org, p));
    let map: Map<String, Value> = positions.into_iter().map(|p| (org.user(p).id.to_string(), entry(p))).collect();
    let next = next.map(|p| encode_cursor(&format!("user:{}", org.user(p).id))).unwrap_or_default();
    Reply::json(&json!({"ok": true, "billable_info": map, "response_metadata": {"next_cursor": next}}))
}
