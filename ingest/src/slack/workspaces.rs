//! The workspaces collector: `team.info` for a workspace token, or the organisation's workspaces
//! that discovery read with `admin.teams.list` for an Enterprise Grid org-level token.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use lastseen_config::Source;
use lastseen_lake::TableDef;
use lastseen_lake::catalog::SLACK_WORKSPACES;
use serde::Deserialize;

use crate::error::Result;
use crate::slack::collector::{ADMIN_TEAMS_LIST, Collector, Item, RunContext, Workspace, arrow_err};
use crate::slack::micros;
use crate::slack::models::lenient;

pub const TEAM_INFO: &str = "team.info";

#[derive(Debug, Default, Deserialize)]
struct TeamInfo {
    #[serde(default, deserialize_with = "lenient::object")]
    team: Option<Team>,
}

#[derive(Debug, Default, Deserialize)]
struct Team {
    #[serde(deserialize_with = "lenient::string")]
    id: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    domain: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    enterprise_id: Option<String>,
}

static TABLES: [&TableDef; 1] = [&SLACK_WORKSPACES];

/// The `workspaces` source.
#[derive(Debug)]
pub struct WorkspacesCollector;

impl Collector for WorkspacesCollector {
    fn source(&self) -> Source {
        Source::Workspaces
    }

    fn methods(&self) -> &'static [&'static str] {
        &[TEAM_INFO, ADMIN_TEAMS_LIST]
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        &TABLES
    }

    fn probe<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Result<()>> {
        async move {
            if ctx.scope.org_level() {
                // Discovery already listed the workspaces.
                return Ok(());
            }
            ctx.client.call::<TeamInfo>(TEAM_INFO, None, &[]).await.map(drop)
        }
        .boxed()
    }

    fn collect(&self, ctx: Arc<RunContext>) -> BoxStream<'static, Result<Item>> {
        async move {
            let enterprise = ctx.scope.enterprise_id().map(str::to_owned);
            let rows: Vec<(Workspace, Option<String>)> = if ctx.scope.org_level() {
                ctx.scope.workspaces.iter().map(|w| (w.clone(), enterprise.clone())).collect()
            } else {
                let info: TeamInfo = ctx.client.call(TEAM_INFO, None, &[]).await?;
                ctx.client.record_page(TEAM_INFO, usize::from(info.team.is_some()));
                info.team
                    .map(|t| (Workspace { id: t.id, name: t.name, domain: t.domain }, t.enterprise_id.or(enterprise)))
                    .into_iter()
                    .collect()
            };
            let batch = workspaces_batch(&rows, micros(ctx.collected_at))?;
            Ok(Item::Rows { table: &SLACK_WORKSPACES, batch })
        }
        .into_stream()
        .boxed()
    }
}

fn workspaces_batch(rows: &[(Workspace, Option<String>)], collected_at_us: i64) -> Result<RecordBatch> {
    let (mut id, mut name, mut domain, mut enterprise) =
        (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let mut collected = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    for (w, e) in rows {
        id.append_value(&w.id);
        name.append_option(w.name.as_deref());
        domain.append_option(w.domain.as_deref());
        enterprise.append_option(e.as_deref());
        collected.append_value(collected_at_us);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(name.finish()),
        Arc::new(domain.finish()),
        Arc::new(enterprise.finish()),
        Arc::new(collected.finish()),
    ];
    RecordBatch::try_new(SLACK_WORKSPACES.schema(), columns).map_err(arrow_err(&SLACK_WORKSPACES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_read_is_in_slacks_recorded_answers() {
        use crate::slack::contract::{TEXT, parse};
        let info: TeamInfo = parse("api__team.info.json");
        let t = info.team.unwrap();
        assert_eq!((t.id.as_str(), t.name.as_deref(), t.domain.as_deref()), ("T00000000", Some(TEXT), Some(TEXT)));
        assert_eq!(t.enterprise_id.as_deref(), Some("E00000000"));
    }
}
