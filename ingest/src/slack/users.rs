//! The users collector: `users.list` cursor paging, one `slack_users` Arrow batch per page.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use lastseen_lake::catalog::SLACK_USERS;

use crate::client::SlackClient;
use crate::error::{IngestError, Result};
use crate::slack::models::{User, UsersPage};
use crate::slack::{MAX_PAGE_SIZE, micros, secs_to_micros};

/// The Slack method this collector calls.
pub const USERS_LIST: &str = "users.list";

struct State {
    client: Arc<SlackClient>,
    team_id: String,
    limit: String,
    collected_at: i64,
    /// `None` before the first page; `Some(cursor)` for the next one.
    cursor: Option<String>,
    done: bool,
}

/// Every user of `team_id` (deleted, invited, bots and guests included), one batch per non-empty
/// page, in the `slack_users` schema. The `team_id` column is the user's home workspace when
/// Slack says so, else `team_id`.
pub fn users(
    client: Arc<SlackClient>,
    team_id: String,
    page_size: u32,
    collected_at: DateTime<Utc>,
) -> BoxStream<'static, Result<RecordBatch>> {
    let state = State {
        client,
        team_id,
        limit: page_size.clamp(1, MAX_PAGE_SIZE).to_string(),
        collected_at: micros(collected_at),
        cursor: None,
        done: false,
    };
    stream::try_unfold(state, next_page).boxed()
}

async fn next_page(mut st: State) -> Result<Option<(RecordBatch, State)>> {
    // Empty pages with a cursor are legal ("fewer than limit even when more exist"): skip them
    // rather than emit empty batches.
    while !st.done {
        let mut params = vec![("limit", st.limit.clone()), ("team_id", st.team_id.clone())];
        if let Some(cursor) = &st.cursor {
            params.push(("cursor", cursor.clone()));
        }
        let page: UsersPage = st.client.call(USERS_LIST, Some(&st.team_id), &params).await?;
        match page.next_cursor() {
            None => st.done = true,
            Some(next) if st.cursor.as_deref() == Some(next) => {
                return Err(IngestError::Protocol {
                    method: USERS_LIST.to_owned(),
                    message: "Slack returned the same cursor twice; stopping instead of looping".to_owned(),
                });
            }
            Some(next) => st.cursor = Some(next.to_owned()),
        }
        st.client.record_page(USERS_LIST, page.members.len());
        if !page.members.is_empty() {
            let batch = users_batch(&page.members, &st.team_id, st.collected_at)?;
            return Ok(Some((batch, st)));
        }
    }
    Ok(None)
}

/// One `slack_users` batch from a page of members.
pub fn users_batch(members: &[User], team_id: &str, collected_at_us: i64) -> Result<RecordBatch> {
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
    let (mut updated, mut collected) = (ts(), ts());

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
        let batch = users_batch(&members, "T1", 5_000_000).unwrap();
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
}
