//! The users collector: `users.list` cursor paging per workspace, and on Enterprise Grid
//! `admin.users.list` for the organisation-only facts (last activity, creation, SSO), merged into
//! one `slack_users` row per user (users in several workspaces are listed once, with every
//! workspace they belong to).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, BooleanBuilder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryFutureExt, TryStreamExt};
use lastseen_config::Source;
use lastseen_lake::TableDef;
use lastseen_lake::catalog::{SLACK_USERS, utf8_list_item};
use serde::Deserialize;

use crate::error::{IngestError, Result};
use crate::slack::api::SlackClient;
use crate::slack::collector::{Collector, Item, Part, RunContext, probe_first_workspace, skip_on_condition};
use crate::slack::cursor::{CursorPage, cursor_pages, with_cursor};
use crate::slack::models::{EnterpriseUser, ResponseMetadata, User, UsersPage, lenient};
use crate::slack::{MAX_PAGE_SIZE, micros, secs_to_micros};

/// The Slack method this collector calls.
pub const USERS_LIST: &str = "users.list";
/// Enterprise Grid: organisation-wide user facts.
pub const ADMIN_USERS_LIST: &str = "admin.users.list";

/// Every user of `team_id` (deleted, invited, bots and guests included), one batch per non-empty
/// page, in the `slack_users` schema. The `team_id` column is the user's home workspace when
/// Slack says so, else `team_id`.
pub fn users(
    client: Arc<SlackClient>,
    team_id: String,
    page_size: u32,
    collected_at: DateTime<Utc>,
) -> BoxStream<'static, Result<RecordBatch>> {
    let extras = Extras { collected_at_us: micros(collected_at), ..Extras::default() };
    let team = team_id.clone();
    user_pages(client, team_id, page_size).map(move |page| users_batch(&page?, &team, &extras)).boxed()
}

/// The members of `team_id`, one non-empty page at a time.
pub fn user_pages(client: Arc<SlackClient>, team_id: String, page_size: u32) -> BoxStream<'static, Result<Vec<User>>> {
    let limit = page_size.clamp(1, MAX_PAGE_SIZE).to_string();
    let fetch_client = Arc::clone(&client);
    cursor_pages(client, USERS_LIST, move |cursor| {
        let (client, team_id, limit) = (Arc::clone(&fetch_client), team_id.clone(), limit.clone());
        async move {
            let params = with_cursor(vec![("limit", limit), ("team_id", team_id.clone())], cursor);
            client.call::<UsersPage>(USERS_LIST, Some(&team_id), &params).await
        }
    })
    // Empty pages with a cursor are legal ("fewer than limit even when more exist"): skip them
    // rather than emit empty batches.
    .try_filter_map(|page| std::future::ready(Ok((!page.members.is_empty()).then_some(page.members))))
    .boxed()
}

impl CursorPage for UsersPage {
    fn rows(&self) -> usize {
        self.members.len()
    }

    fn take_metadata(&mut self) -> Option<ResponseMetadata> {
        self.response_metadata.take()
    }
}

impl CursorPage for AdminUsersPage {
    fn rows(&self) -> usize {
        self.users.len()
    }

    fn take_metadata(&mut self) -> Option<ResponseMetadata> {
        self.response_metadata.take()
    }
}

/// Grid users waiting for every listing: the user and the workspaces that listed them.
type Deferred = BTreeMap<String, (User, Vec<String>)>;

/// What `admin.users.list` adds about one user (organisation-wide view only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdminFacts {
    pub last_active_at_us: Option<i64>,
    pub created_at_us: Option<i64>,
    pub has_sso: Option<bool>,
}

/// Columns that do not come from the user object itself.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub collected_at_us: i64,
    pub enterprise_id: Option<String>,
    pub admin: Arc<HashMap<String, AdminFacts>>,
}

#[derive(Debug, Default, Deserialize)]
struct AdminUsersPage {
    #[serde(default, deserialize_with = "lenient::vec")]
    users: Vec<AdminUser>,
    #[serde(default, deserialize_with = "lenient::object")]
    response_metadata: Option<ResponseMetadata>,
}

#[derive(Debug, Default, Deserialize)]
struct AdminUser {
    #[serde(deserialize_with = "lenient::string")]
    id: String,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    date_created: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    last_active_ts: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    has_sso: Option<bool>,
}

/// `admin.users.list` over the whole organisation, active and deactivated accounts (Slack lists
/// them separately), as a map by user id. Only an org-level token without `team_id` sees
/// `last_active_ts`, `date_created` and `has_sso`.
async fn admin_facts(client: &Arc<SlackClient>) -> Result<HashMap<String, AdminFacts>> {
    let mut out = HashMap::new();
    for active in ["true", "false"] {
        let fetch_client = Arc::clone(client);
        let mut pages = cursor_pages(Arc::clone(client), ADMIN_USERS_LIST, move |cursor| {
            let client = Arc::clone(&fetch_client);
            async move {
                let params = with_cursor(vec![("limit", "100".to_string()), ("is_active", active.to_string())], cursor);
                client.call::<AdminUsersPage>(ADMIN_USERS_LIST, None, &params).await
            }
        });
        while let Some(page) = pages.next().await {
            for u in page?.users {
                // 0 is Slack's "never" for last_active_ts.
                let facts = AdminFacts {
                    last_active_at_us: u.last_active_ts.filter(|t| *t > 0).and_then(secs_to_micros),
                    created_at_us: u.date_created.filter(|t| *t > 0).and_then(secs_to_micros),
                    has_sso: u.has_sso,
                };
                out.insert(u.id, facts);
            }
        }
    }
    Ok(out)
}

static TABLES: [&TableDef; 1] = [&SLACK_USERS];

/// The `users` source.
#[derive(Debug)]
pub struct UsersCollector;

impl Collector for UsersCollector {
    fn source(&self) -> Source {
        Source::Users
    }

    fn methods(&self) -> &'static [&'static str] {
        &[USERS_LIST, ADMIN_USERS_LIST]
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        &TABLES
    }

    fn probe<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Result<()>> {
        probe_first_workspace::<UsersPage>(ctx, USERS_LIST, true)
    }

    fn per_workspace(&self) -> bool {
        true
    }

    fn collect(&self, ctx: Arc<RunContext>) -> BoxStream<'static, Result<Item>> {
        let setup = async move {
            let admin = if ctx.scope.org_level() {
                match admin_facts(&ctx.client).await {
                    Ok(map) => map,
                    Err(e) if e.is_capability() => {
                        ctx.client.record_warning(
                            ADMIN_USERS_LIST,
                            format!("slack_users: last_active_at, created_at and has_sso are empty: {e}"),
                        );
                        HashMap::new()
                    }
                    Err(e) => return Err(e),
                }
            } else {
                HashMap::new()
            };
            let extras = Extras {
                collected_at_us: micros(ctx.collected_at),
                enterprise_id: ctx.scope.enterprise_id().map(str::to_owned),
                admin: Arc::new(admin),
            };
            // Every workspace at once; the client's concurrency cap and rate buckets pace them.
            // A workspace with a standing condition (not granted to the app, say) is skipped
            // alone; the others are read.
            let pages = stream::select_all(ctx.scope.workspaces.iter().map(|ws| {
                let team = ws.id.clone();
                skip_on_condition(user_pages(Arc::clone(&ctx.client), ws.id.clone(), ctx.settings.users_page_size))
                    .map_ok(move |page| (team.clone(), page))
            }));
            let grid = ctx.scope.enterprise_id().is_some();
            let order: Vec<String> = ctx.scope.workspaces.iter().map(|w| w.id.clone()).collect();
            // Grid users Slack lists without `enterprise_user` (Slackbot) get their workspaces
            // from the listings they appear in, so they wait until every listing is read.
            let deferred: Arc<Mutex<Deferred>> = Arc::default();
            let waiting = Arc::clone(&deferred);
            let mut seen: HashSet<String> = HashSet::new();
            let page_extras = extras.clone();
            let items = pages.map(move |page| {
                let (team, part) = page?;
                let mut members = match part {
                    Part::Data(members) => members,
                    Part::Skipped(error) => return Ok(Some(Item::Skipped { workspace: Some(team), error })),
                };
                members.retain(|u| {
                    if grid && u.enterprise_user.is_none() {
                        let mut d = waiting.lock().unwrap_or_else(PoisonError::into_inner);
                        d.entry(u.id.clone()).or_insert_with(|| (u.clone(), Vec::new())).1.push(team.clone());
                        return false;
                    }
                    // A Grid user appears in the listing of each of their workspaces: keep the first.
                    seen.insert(u.id.clone())
                });
                if members.is_empty() {
                    return Ok(None);
                }
                let batch = users_batch(&members, &team, &page_extras)?;
                Ok(Some(Item::Rows { table: &SLACK_USERS, batch }))
            });
            let tail = stream::once(async move {
                let d = std::mem::take(&mut *deferred.lock().unwrap_or_else(PoisonError::into_inner));
                if d.is_empty() {
                    return Ok(None);
                }
                let users: Vec<User> = d
                    .into_values()
                    .map(|(mut u, mut teams)| {
                        teams.sort_by_key(|t| order.iter().position(|o| o == t));
                        teams.dedup();
                        u.enterprise_user = Some(EnterpriseUser { enterprise_id: None, teams });
                        u
                    })
                    .collect();
                let first =
                    users[0].enterprise_user.as_ref().and_then(|e| e.teams.first().cloned()).unwrap_or_default();
                Ok(Some(Item::Rows { table: &SLACK_USERS, batch: users_batch(&users, &first, &extras)? }))
            });
            Ok(items.chain(tail).try_filter_map(|i| async move { Ok(i) }))
        };
        setup.try_flatten_stream().boxed()
    }
}

/// One `slack_users` batch from a page of members.
///
/// `team_id` is the workspace whose listing the page came from: the row's `team_id` when Slack
/// does not name the user's home workspace, and its `workspace_ids` when Slack does not list
/// the user's Grid workspaces.
pub fn users_batch(members: &[User], team_id: &str, extras: &Extras) -> Result<RecordBatch> {
    let collected_at_us = extras.collected_at_us;
    let n = members.len();
    let text = || StringBuilder::with_capacity(n, n * 16);
    let flag = || BooleanBuilder::with_capacity(n);
    let (mut team, mut user_id, mut name, mut real_name, mut display_name, mut email, mut title) =
        (text(), text(), text(), text(), text(), text(), text());
    let (mut deleted, mut is_admin, mut is_owner, mut is_primary_owner) = (flag(), flag(), flag(), flag());
    let (mut is_restricted, mut is_ultra_restricted, mut is_bot, mut is_app_user) = (flag(), flag(), flag(), flag());
    let (mut is_invited_user, mut is_stranger, mut has_2fa) = (flag(), flag(), flag());
    let (mut bot_id, mut tz) = (text(), text());
    let ts = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut updated, mut collected, mut last_active, mut created) = (ts(), ts(), ts(), ts());
    let mut enterprise = text();
    let mut workspaces = ListBuilder::new(StringBuilder::new()).with_field(utf8_list_item());
    let mut has_sso = flag();
    let (mut workflow_bot, mut connector_bot) = (flag(), flag());

    for u in members {
        team.append_value(u.team_id.as_deref().unwrap_or(team_id));
        user_id.append_value(&u.id);
        name.append_option(u.name.as_deref());
        real_name.append_option(u.real_name());
        display_name.append_option(u.display_name());
        email.append_option(u.email());
        title.append_option(u.title());
        deleted.append_value(u.deleted);
        is_admin.append_value(u.is_admin);
        is_owner.append_value(u.is_owner);
        is_primary_owner.append_value(u.is_primary_owner);
        is_restricted.append_value(u.is_restricted);
        is_ultra_restricted.append_value(u.is_ultra_restricted);
        is_bot.append_value(u.is_bot);
        is_app_user.append_value(u.is_app_user);
        is_invited_user.append_value(u.is_invited_user);
        is_stranger.append_value(u.is_stranger);
        bot_id.append_option(u.bot_id());
        tz.append_option(u.tz.as_deref());
        has_2fa.append_option(u.has_2fa);
        updated.append_option(u.updated.and_then(secs_to_micros));
        collected.append_value(collected_at_us);
        let ent = u.enterprise_user.as_ref();
        enterprise.append_option(ent.and_then(|e| e.enterprise_id.as_deref()).or(extras.enterprise_id.as_deref()));
        match ent.filter(|e| !e.teams.is_empty()) {
            Some(e) => workspaces.append_value(e.teams.iter().map(Some)),
            None => workspaces.append_value([Some(team_id)]),
        }
        let facts = extras.admin.get(&u.id).copied().unwrap_or_default();
        last_active.append_option(facts.last_active_at_us);
        created.append_option(facts.created_at_us);
        has_sso.append_option(facts.has_sso);
        workflow_bot.append_value(u.is_workflow_bot);
        connector_bot.append_value(u.is_connector_bot);
    }

    // Same order as the catalog schema; `try_new` checks types and nullability against it.
    let columns: Vec<ArrayRef> = vec![
        Arc::new(team.finish()),
        Arc::new(user_id.finish()),
        Arc::new(name.finish()),
        Arc::new(real_name.finish()),
        Arc::new(display_name.finish()),
        Arc::new(email.finish()),
        Arc::new(title.finish()),
        Arc::new(deleted.finish()),
        Arc::new(is_admin.finish()),
        Arc::new(is_owner.finish()),
        Arc::new(is_primary_owner.finish()),
        Arc::new(is_restricted.finish()),
        Arc::new(is_ultra_restricted.finish()),
        Arc::new(is_bot.finish()),
        Arc::new(is_app_user.finish()),
        Arc::new(is_invited_user.finish()),
        Arc::new(is_stranger.finish()),
        Arc::new(bot_id.finish()),
        Arc::new(tz.finish()),
        Arc::new(has_2fa.finish()),
        Arc::new(updated.finish()),
        Arc::new(collected.finish()),
        Arc::new(enterprise.finish()),
        Arc::new(workspaces.finish()),
        Arc::new(last_active.finish()),
        Arc::new(created.finish()),
        Arc::new(has_sso.finish()),
        Arc::new(workflow_bot.finish()),
        Arc::new(connector_bot.finish()),
    ];
    RecordBatch::try_new(SLACK_USERS.schema(), columns)
        .map_err(|source| IngestError::Arrow { table: SLACK_USERS.name, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::TimestampMicrosecondType;

    #[test]
    fn batch_matches_the_catalog() {
        let members: Vec<User> = serde_json::from_str(
            r#"[{"id":"U1","team_id":"T9","name":"a","profile":{"email":"a@x.test","display_name":""},"updated":1700000000,"has_2fa":true},
                {"id":"U2","deleted":true,"is_invited_user":true}]"#,
        )
        .unwrap();
        let extras = Extras { collected_at_us: 5_000_000, ..Extras::default() };
        let batch = users_batch(&members, "T1", &extras).unwrap();
        assert_eq!(batch.schema(), SLACK_USERS.schema());
        assert_eq!(batch.num_rows(), 2);
        let team = batch.column_by_name("team_id").unwrap().as_string::<i32>();
        assert_eq!((team.value(0), team.value(1)), ("T9", "T1"));
        let email = batch.column_by_name("email").unwrap().as_string::<i32>();
        assert_eq!(email.value(0), "a@x.test");
        assert!(email.is_null(1));
        assert!(batch.column_by_name("display_name").unwrap().is_null(0));
        let updated = batch.column_by_name("updated").unwrap().as_primitive::<TimestampMicrosecondType>();
        assert_eq!(updated.value(0), 1_700_000_000_000_000);
        assert!(updated.is_null(1));
        let invited = batch.column_by_name("is_invited_user").unwrap().as_boolean();
        assert!(!invited.value(0) && invited.value(1));
        assert!(batch.column_by_name("has_2fa").unwrap().is_null(1));
    }

    /// Every field the users collector reads is in Slack's recorded answers with the type the
    /// model expects (contract samples; `crate::slack::contract`).
    #[test]
    fn every_field_read_is_in_slacks_recorded_answers() {
        use crate::slack::contract::{TEXT, parse, parse_at};
        let page: UsersPage = parse("api__users.list.json");
        let u = &page.members[0];
        assert_eq!(
            (u.id.as_str(), u.team_id.as_deref(), u.name.as_deref()),
            ("U00000000", Some("T00000000"), Some(TEXT))
        );
        assert_eq!(
            (u.real_name(), u.display_name(), u.email(), u.title()),
            (Some(TEXT), Some(TEXT), Some(TEXT), Some(TEXT))
        );
        assert_eq!(u.bot_id(), Some("B00000000"));
        assert!(u.deleted && u.is_admin && u.is_owner && u.is_primary_owner && u.is_restricted);
        assert!(u.is_ultra_restricted && u.is_bot && u.is_app_user && u.is_workflow_bot);
        assert_eq!((u.tz.as_deref(), u.has_2fa, u.updated), (Some(TEXT), Some(true), Some(12345)));
        let e = u.enterprise_user.as_ref().unwrap();
        assert_eq!((e.enterprise_id.as_deref(), e.teams.as_slice()), (Some("E00000000"), &[TEXT.to_owned()][..]));
        assert_eq!(page.next_cursor(), Some(TEXT));
        // users.list's recorded union lacks these three; users.info (the same user object) has them.
        let u: User = parse_at("api__users.info.json", "/user");
        assert!(u.is_invited_user && u.is_stranger && u.is_connector_bot);

        let admin: AdminUsersPage = parse("api__admin.users.list.json");
        let a = &admin.users[0];
        assert_eq!(
            (a.id.as_str(), a.date_created, a.last_active_ts, a.has_sso),
            ("W00000000", Some(12345), Some(12345), Some(true))
        );
        assert_eq!(admin.response_metadata.and_then(|m| m.next_cursor).as_deref(), Some(TEXT));
    }
}
