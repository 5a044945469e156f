//! The billing collector: `team.billableInfo` per workspace, cursor paged, one
//! `slack_billing` row per user Slack lists (bots and pending invitations are not listed).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt, TryFutureExt};
use lastseen_config::Source;
use lastseen_lake::TableDef;
use lastseen_lake::catalog::SLACK_BILLING;
use serde::Deserialize;

use crate::error::{IngestError, Result};
use crate::slack::api::SlackClient;
use crate::slack::collector::{
    Collector, Item, RunContext, WalkGuard, arrow_err, items_or_skip, next_cursor, probe_workspaces,
};
use crate::slack::micros;
use crate::slack::models::{ResponseMetadata, lenient};

pub const TEAM_BILLABLE_INFO: &str = "team.billableInfo";

#[derive(Debug, Default, Deserialize)]
struct BillablePage {
    #[serde(default, deserialize_with = "lenient::object")]
    billable_info: Option<BTreeMap<String, BillableEntry>>,
    #[serde(default, deserialize_with = "lenient::object")]
    response_metadata: Option<ResponseMetadata>,
}

#[derive(Debug, Default, Deserialize)]
struct BillableEntry {
    #[serde(default, deserialize_with = "lenient::flag")]
    billing_active: bool,
}

static TABLES: [&TableDef; 1] = [&SLACK_BILLING];

/// The `billing` source.
#[derive(Debug)]
pub struct BillingCollector;

impl Collector for BillingCollector {
    fn source(&self) -> Source {
        Source::Billing
    }

    fn methods(&self) -> &'static [&'static str] {
        &[TEAM_BILLABLE_INFO]
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        &TABLES
    }

    fn probe<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Result<()>> {
        let org = ctx.scope.org_level();
        probe_workspaces(ctx, move |ws| {
            async move {
                let params = vec![("team_id", ws.id.clone()), ("limit", "1".to_string())];
                ctx.client.call::<BillablePage>(TEAM_BILLABLE_INFO, Some(&ws.id), &params).await.map(drop)
            }
            .map_err(move |e| classify(e, org))
            .boxed()
        })
    }

    fn per_workspace(&self) -> bool {
        true
    }

    fn collect(&self, ctx: Arc<RunContext>) -> BoxStream<'static, Result<Item>> {
        let collected = micros(ctx.collected_at);
        let org = ctx.scope.org_level();
        stream::select_all(ctx.scope.workspaces.iter().map(|ws| {
            let guard = WalkGuard::new(TEAM_BILLABLE_INFO);
            let st =
                Walk { client: Arc::clone(&ctx.client), team: ws.id.clone(), cursor: None, guard, done: false, org };
            items_or_skip(Some(ws.id.clone()), stream::try_unfold(st, move |st| next_page(st, collected)).boxed())
        }))
        .boxed()
    }
}

/// With an org-level token, `invalid_auth` here means the org owner is not in the workspace
/// (`auth.test` already accepted the token): a standing condition of that workspace.
fn classify(e: IngestError, org_level: bool) -> IngestError {
    if org_level { e.billing_owner_not_in_workspace() } else { e }
}

struct Walk {
    client: Arc<SlackClient>,
    team: String,
    cursor: Option<String>,
    guard: WalkGuard,
    done: bool,
    org: bool,
}

async fn next_page(mut st: Walk, collected_at_us: i64) -> Result<Option<(Item, Walk)>> {
    while !st.done {
        let mut params = vec![("team_id", st.team.clone()), ("limit", "1000".to_string())];
        if let Some(c) = &st.cursor {
            params.push(("cursor", c.clone()));
        }
        let page: BillablePage =
            st.client.call(TEAM_BILLABLE_INFO, Some(&st.team), &params).await.map_err(|e| classify(e, st.org))?;
        let rows = page.billable_info.as_ref().map_or(0, |m| m.len());
        match next_cursor(&mut st.guard, rows, page.response_metadata.and_then(|m| m.next_cursor))? {
            Some(next) => st.cursor = Some(next),
            None => st.done = true,
        }
        let map = page.billable_info.unwrap_or_default();
        st.client.record_page(TEAM_BILLABLE_INFO, map.len());
        if !map.is_empty() {
            let batch = billing_batch(&st.team, &map, collected_at_us)?;
            return Ok(Some((Item::Rows { table: &SLACK_BILLING, batch }, st)));
        }
    }
    Ok(None)
}

fn billing_batch(team: &str, map: &BTreeMap<String, BillableEntry>, collected_at_us: i64) -> Result<RecordBatch> {
    let (mut t, mut u) = (StringBuilder::new(), StringBuilder::new());
    let mut active = BooleanBuilder::new();
    let mut collected = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for (user, e) in map {
        t.append_value(team);
        u.append_value(user);
        active.append_value(e.billing_active);
        collected.append_value(collected_at_us);
    }
    let columns: Vec<ArrayRef> =
        vec![Arc::new(t.finish()), Arc::new(u.finish()), Arc::new(active.finish()), Arc::new(collected.finish())];
    RecordBatch::try_new(SLACK_BILLING.schema(), columns).map_err(arrow_err(&SLACK_BILLING))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_read_is_in_slacks_recorded_answers() {
        let page: BillablePage = crate::slack::contract::parse("api__team.billableInfo.json");
        let map = page.billable_info.unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), ["U00000000", "U00000001"]);
        assert!(map.values().all(|e| e.billing_active));
        assert_eq!(page.response_metadata.and_then(|m| m.next_cursor).as_deref(), Some(crate::slack::contract::TEXT));
    }
}
