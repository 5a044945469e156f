//! The user-groups collector: `usergroups.list` per workspace (disabled groups included, with
//! counts and members), falling back to `usergroups.users.list` for a group listed without its
//! members; writes `slack_usergroups` and one `slack_usergroup_members` row per member.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt};
use lastseen_config::Source;
use lastseen_lake::TableDef;
use lastseen_lake::catalog::{SLACK_USERGROUP_MEMBERS, SLACK_USERGROUPS};
use serde::Deserialize;

use crate::error::Result;
use crate::slack::api::SlackClient;
use crate::slack::collector::{Collector, Item, RunContext, arrow_err, items_or_skip, probe_first_workspace};
use crate::slack::micros;
use crate::slack::models::lenient;

pub const USERGROUPS_LIST: &str = "usergroups.list";
pub const USERGROUPS_USERS_LIST: &str = "usergroups.users.list";

#[derive(Debug, Default, Deserialize)]
struct GroupsPage {
    #[serde(default, deserialize_with = "lenient::vec")]
    usergroups: Vec<Group>,
}

#[derive(Debug, Default, Deserialize)]
struct Group {
    #[serde(deserialize_with = "lenient::string")]
    id: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    team_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    handle: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    name: Option<String>,
    /// Non-zero for a disabled group.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    date_delete: Option<i64>,
    /// Slack documents a string and sends numbers too.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    user_count: Option<i64>,
    /// Present with `include_users=true`.
    #[serde(default)]
    users: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct GroupUsers {
    #[serde(default, deserialize_with = "lenient::strings")]
    users: Vec<String>,
}

static TABLES: [&TableDef; 2] = [&SLACK_USERGROUPS, &SLACK_USERGROUP_MEMBERS];

/// The `usergroups` source.
#[derive(Debug)]
pub struct UsergroupsCollector;

impl Collector for UsergroupsCollector {
    fn source(&self) -> Source {
        Source::Usergroups
    }

    fn methods(&self) -> &'static [&'static str] {
        &[USERGROUPS_LIST, USERGROUPS_USERS_LIST]
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        &TABLES
    }

    fn probe<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Result<()>> {
        // usergroups.list does not page: the whole list is the probe.
        probe_first_workspace::<GroupsPage>(ctx, USERGROUPS_LIST, false)
    }

    fn per_workspace(&self) -> bool {
        true
    }

    fn collect(&self, ctx: Arc<RunContext>) -> BoxStream<'static, Result<Item>> {
        let collected = micros(ctx.collected_at);
        stream::select_all(ctx.scope.workspaces.iter().map(|ws| {
            let client = Arc::clone(&ctx.client);
            let team = ws.id.clone();
            let items = async move { workspace_groups(&client, &team, collected).await }
                .into_stream()
                .flat_map(|r| match r {
                    Ok(items) => stream::iter(items.into_iter().map(Ok)).boxed(),
                    Err(e) => stream::once(async move { Err(e) }).boxed(),
                })
                .boxed();
            items_or_skip(Some(ws.id.clone()), items)
        }))
        .boxed()
    }
}

/// One workspace's groups and members (a few dozen groups: small enough for one batch each).
async fn workspace_groups(client: &SlackClient, team: &str, collected_at_us: i64) -> Result<Vec<Item>> {
    let params = vec![
        ("team_id", team.to_string()),
        ("include_disabled", "true".to_string()),
        ("include_count", "true".to_string()),
        ("include_users", "true".to_string()),
    ];
    let page: GroupsPage = client.call(USERGROUPS_LIST, Some(team), &params).await?;
    client.record_page(USERGROUPS_LIST, page.usergroups.len());
    let mut members: Vec<(String, Vec<String>)> = Vec::with_capacity(page.usergroups.len());
    for g in &page.usergroups {
        let listed = g.users.as_ref().and_then(|v| v.as_array()).map(|a| {
            a.iter().filter_map(|x| x.as_str().filter(|s| !s.is_empty()).map(str::to_owned)).collect::<Vec<_>>()
        });
        let users = match listed {
            Some(users) => users,
            None => {
                let params = vec![
                    ("team_id", team.to_string()),
                    ("usergroup", g.id.clone()),
                    ("include_disabled", "true".to_string()),
                ];
                let r: GroupUsers = client.call(USERGROUPS_USERS_LIST, Some(team), &params).await?;
                client.record_page(USERGROUPS_USERS_LIST, r.users.len());
                r.users
            }
        };
        members.push((g.id.clone(), users));
    }
    Ok(vec![
        Item::Rows { table: &SLACK_USERGROUPS, batch: groups_batch(team, &page.usergroups, collected_at_us)? },
        Item::Rows { table: &SLACK_USERGROUP_MEMBERS, batch: members_batch(team, &members, collected_at_us)? },
    ])
}

fn groups_batch(team: &str, groups: &[Group], collected_at_us: i64) -> Result<RecordBatch> {
    let s = StringBuilder::new;
    let (mut t, mut id, mut handle, mut name) = (s(), s(), s(), s());
    let mut disabled = BooleanBuilder::new();
    let mut count = Int64Builder::new();
    let mut collected = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for g in groups {
        t.append_value(g.team_id.as_deref().unwrap_or(team));
        id.append_value(&g.id);
        handle.append_option(g.handle.as_deref());
        name.append_option(g.name.as_deref());
        disabled.append_value(g.date_delete.is_some_and(|d| d > 0));
        count.append_option(g.user_count);
        collected.append_value(collected_at_us);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(t.finish()),
        Arc::new(id.finish()),
        Arc::new(handle.finish()),
        Arc::new(name.finish()),
        Arc::new(disabled.finish()),
        Arc::new(count.finish()),
        Arc::new(collected.finish()),
    ];
    RecordBatch::try_new(SLACK_USERGROUPS.schema(), columns).map_err(arrow_err(&SLACK_USERGROUPS))
}

fn members_batch(team: &str, members: &[(String, Vec<String>)], collected_at_us: i64) -> Result<RecordBatch> {
    let s = StringBuilder::new;
    let (mut t, mut g, mut u) = (s(), s(), s());
    let mut collected = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for (group, users) in members {
        for user in users {
            t.append_value(team);
            g.append_value(group);
            u.append_value(user);
            collected.append_value(collected_at_us);
        }
    }
    let columns: Vec<ArrayRef> =
        vec![Arc::new(t.finish()), Arc::new(g.finish()), Arc::new(u.finish()), Arc::new(collected.finish())];
    RecordBatch::try_new(SLACK_USERGROUP_MEMBERS.schema(), columns).map_err(arrow_err(&SLACK_USERGROUP_MEMBERS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_read_is_in_slacks_recorded_answers() {
        use crate::slack::contract::{TEXT, parse};
        let page: GroupsPage = parse("api__usergroups.list.json");
        let g = &page.usergroups[0];
        assert_eq!((g.id.as_str(), g.team_id.as_deref()), ("S00000000", Some("T00000000")));
        assert_eq!((g.handle.as_deref(), g.name.as_deref()), (Some(TEXT), Some(TEXT)));
        assert_eq!((g.date_delete, g.user_count), (Some(12345), Some(12345)));
        assert_eq!(g.users.as_ref().and_then(|u| u.as_array()).map(Vec::len), Some(2));
        let users: GroupUsers = parse("api__usergroups.users.list.json");
        assert_eq!(users.users, [TEXT]);
    }
}
