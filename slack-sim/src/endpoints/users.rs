//! `users.info`: one user object, the same shape `users.list` returns.

use serde_json::json;

use crate::api::{Ctx, Reply, service_flags, user_json};

pub(crate) fn users_info(ctx: &Ctx<'_>) -> Reply {
    let Some(user) = ctx.params.get("user") else {
        return Reply::error("user_not_found");
    };
    if user.contains(',') {
        return Reply::error("too_many_users");
    }
    let org = ctx.org();
    let Some(pos) = org.position_of(user.trim()) else {
        return Reply::error("user_not_found");
    };
    let with_email = ctx.info.scopes.contains(&"users:read.email");
    let user = user_json(org, pos, with_email, ctx.params.flag("include_locale"));
    Reply::json(&json!({"ok": true, "user": service_flags(ctx, pos, user)}))
}
