//! `admin.analytics.getFile` type=member: a gzip NDJSON file per UTC day, one row per member,
//! derived from the same per-day activity as the access logs and the audit logins.

use std::io::Write;

use axum::http::StatusCode;
use chrono::{Months, NaiveDate};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;

use crate::activity::Client;
use crate::api::{Ctx, Reply};
use crate::rng::{below, day_hash};

const D_COUNTS: u64 = 0x800;
/// The first day the simulator treats as "after the API became available". Slack does not
/// publish the date; the method appeared in 2020, so any earlier day is safely before it.
const API_START: NaiveDate = NaiveDate::from_ymd_opt(2020, 1, 1).expect("a valid date");
const D_IOS: u64 = 0x801;

pub(crate) fn get_file(ctx: &Ctx<'_>) -> Reply {
    let p = ctx.params;
    match p.get("type") {
        None => return Reply::error("invalid_arguments"),
        Some("member") => {}
        // Channel analytics are not modelled: Slack would have a file, the simulator has none.
        Some("public_channel") => return Reply::error("file_not_found"),
        Some(_) => return Reply::error("invalid_type"),
    }
    let Some(date) = p.get("date") else {
        return Reply::error("invalid_arguments");
    };
    let Ok(date) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
        return Reply::error("invalid_date");
    };
    let org = ctx.org();
    let today = chrono::DateTime::from_timestamp(ctx.shared.now(), 0).unwrap_or_default().date_naive();
    if date >= today.pred_opt().unwrap_or(today) {
        return Reply::error("file_not_yet_available");
    }
    if date < API_START {
        // "The date was before the API became available" (slack-api-ref
        // admin.analytics.getFile.json).
        return Reply::error("data_not_available");
    }
    if today.checked_sub_months(Months::new(13)).is_some_and(|oldest| date < oldest) {
        // Retention is "a rolling 13-month basis"; which code a day past it returns is not
        // documented. `file_not_found` ("The analytics data for the date specified weren't
        // found") is the documented code that fits; `data_not_available` means something else.
        return Reply::error("file_not_found");
    }
    let day = org.day_of(date.and_hms_opt(12, 0, 0).map_or(0, |t| t.and_utc().timestamp())) as i32;
    let day_text = date.to_string();
    let enterprise = org.enterprise_id().unwrap_or_default();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let mut buf = Vec::new();
    let mut bad_line_written = false;
    for pos in 0..org.len() {
        let u = org.user(pos);
        // Members only: no bots, no one not yet joined, no one already deactivated that day.
        if !u.kind.is_human() || u.invited || org.deleted_day(pos).is_some_and(|d| d <= day) {
            continue;
        }
        if !ctx.org_wide && !org.in_workspace(pos, ctx.ws) {
            continue;
        }
        buf.clear();
        org.day_accesses(pos, day, &mut buf);
        let active = !buf.is_empty();
        let used = |c: Client| buf.iter().any(|a| a.client == c);
        let mobile = used(Client::Mobile);
        let ios = mobile && below(day_hash(u.key, 0, D_IOS), 2) == 0;
        let h = day_hash(u.key, day, D_COUNTS);
        let messages = if active { below(h, 40) } else { 0 };
        let row = json!({
            "date": day_text, "enterprise_id": enterprise,
            "team_id": org.workspaces()[org.home_workspace(pos)].id,
            "user_id": u.id, "email_address": org.email(pos).unwrap_or_default(),
            "is_guest": u.kind.is_guest(), "is_billable_seat": org.billable_on(pos, day),
            "is_active": active, "is_active_ios": ios, "is_active_android": mobile && !ios,
            "is_active_desktop": used(Client::Desktop),
            "reactions_added_count": if active { below(h >> 8, 15) } else { 0 },
            "messages_posted_count": messages,
            "channel_messages_posted_count": messages * below(h >> 16, 4) / 4,
            "files_added_count": if active { below(h >> 24, 3) } else { 0 },
            "is_active_apps": false, "is_active_workflows": false, "is_active_slack_connect": false,
            "total_calls_count": 0, "slack_calls_count": 0, "slack_huddles_count": 0,
            "search_count": if active { below(h >> 32, 6) } else { 0 },
            "date_claimed": org.date_created(pos),
        });
        let mut row = row;
        if ctx.shared.conditions.analytics_enterprise_user_id
            && let Some(obj) = row.as_object_mut()
            && let Some(id) = obj.remove("user_id")
        {
            // Slack's field guide names the column `enterprise_user_id` ("The canonical,
            // organization-wide user ID this row concerns", older api.slack.com page).
            obj.insert("enterprise_user_id".into(), id);
        }
        let _ = serde_json::to_writer(&mut gz, &row);
        let _ = gz.write_all(b"\n");
        if ctx.shared.conditions.analytics_bad_line && !bad_line_written {
            // One damaged line after the first row (`Conditions::analytics_bad_line`).
            let _ = gz.write_all(b"{\"date\":\"broken\",\"user_id\":\n");
            bad_line_written = true;
        }
    }
    let body = gz.finish().unwrap_or_default();
    Reply { status: StatusCode::OK, content_type: "application/gzip", headers: Vec::new(), body }.with_header(
        "content-disposition",
        format!("attachment; filename=\"{} Member Analytics {day_text}.json.gz\"", org.team_name()),
    )
}
