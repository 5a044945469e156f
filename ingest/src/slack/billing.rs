//! The billing collector: `team.billableInfo` per workspace, cursor paged, one
//! `slack_billing` row per user Slack lists (bots and pending invitations are not listed).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt, TryFutureExt, TryStreamExt};
use lastseen_config::Source;
use lastseen_lake::TableDef;
use lastseen_lake::catalog::SLACK_BILLING;
use serde::Deserialize;

use crate::error::{IngestError, Result};
use crate::slack::collector::{Collector, Item, RunContext, arrow_err, items_or_skip, probe_workspaces};
use crate::slack::cursor::{CursorPage, cursor_pages, with_cursor};
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

impl CursorPage for BillablePage {
    fn rows(&self) -> usize {
        self.billable_info.as_ref().map_or(0, BTreeMap::len)
    }

    fn take_metadata(&mut self) -> Option<ResponseMetadata> {
        self.response_metadata.take()
    }
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
            let (client, team) = (Arc::clone(&ctx.client), ws.id.clone());
            let pages = cursor_pages(Arc::clone(&ctx.client), TEAM_BILLABLE_INFO, move |cursor| {
                let (client, team) = (Arc::clone(&client), team.clone());
                async move {
                    let params = with_cursor(vec![("team_id", team.clone()), ("limit", "1000".to_string())], cursor);
                    let page: BillablePage =
                        client.call(TEAM_BILLABLE_INFO, Some(&team), &params).await.map_err(|e| classify(e, org))?;
                    Ok(page)
                }
            });
            let team = ws.id.clone();
            let items = pages.try_filter_map(move |page| {
                let map = page.billable_info.unwrap_or_default();
                let item = (!map.is_empty()).then(|| {
                    billing_batch(&team, &map, collected).map(|batch| Item::Rows { table: &SLACK_BILLING, batch })
                });
                std::future::ready(item.transpose())
            });
            items_or_skip(Some(ws.id.clone()), items.boxed())
        }))
        .boxed()
    }
}

/// With an org-level token, `invalid_auth` here means the org owner is not in the workspace
/// (`auth.test` already accepted the token): a standing condition of that workspace.
fn classify(e: IngestError, org_level: bool) -> IngestError {
    if org_level { e.billing_owner_not_in_workspace() } else { e }
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
