//! The audit-logins collector: the Audit Logs API's `user_login`, `user_logout` and
//! `user_login_failed` events (Enterprise Grid), cursor paged per action, incremental from the
//! committed watermark `audit/<enterprise>` (the newest `date_create` stored), read again from
//! [`OVERLAP_SECS`] before it since events may arrive late, and merged on the event `id`. [`window`] reads any span, for the daily run and for `lastseen backfill`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::Days;
use datafusion::arrow::array::{ArrayRef, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt, TryStreamExt};
use lastseen_config::Source;
use lastseen_lake::TableDef;
use lastseen_lake::catalog::SLACK_AUDIT_LOGINS;
use serde::Deserialize;
use url::Url;

use crate::error::{IngestError, Result};
use crate::slack::collector::{
    Collector, Item, RunContext, arrow_err, items_or_skip, start_of_day, watermark_at_least,
};
use crate::slack::cursor::{CursorPage, cursor_pages, with_cursor};
use crate::slack::models::{ResponseMetadata, lenient};
use crate::slack::{micros, secs_to_micros};
use crate::source::{History, Past, WatermarkMeaning, Window};

pub const AUDIT_LOGS: &str = "audit.logs";
/// The login-related actions collected.
pub const ACTIONS: [&str; 3] = ["user_login", "user_logout", "user_login_failed"];
/// Without a watermark, a first run reads this many days before the run day.
pub const FIRST_RUN_DAYS: u64 = 30;
const PAGE: &str = "1000";
/// How far before the committed watermark a daily run reads again, for events that arrive
/// late. Slack states no delivery bound; six hours covers the delays integrations report
/// while costing a fraction of a day's pages.
pub const OVERLAP_SECS: i64 = 6 * 3600;

pub fn watermark_key(org_key: &str) -> String {
    format!("audit/{org_key}")
}

#[derive(Debug, Default, Deserialize)]
struct LogsPage {
    #[serde(default, deserialize_with = "lenient::vec")]
    entries: Vec<Entry>,
    #[serde(default, deserialize_with = "lenient::object")]
    response_metadata: Option<ResponseMetadata>,
}

impl CursorPage for LogsPage {
    fn rows(&self) -> usize {
        self.entries.len()
    }

    fn take_metadata(&mut self) -> Option<ResponseMetadata> {
        self.response_metadata.take()
    }
}

#[derive(Debug, Default, Deserialize)]
struct Entry {
    #[serde(deserialize_with = "lenient::string")]
    id: String,
    #[serde(deserialize_with = "lenient::i64")]
    date_create: i64,
    #[serde(deserialize_with = "lenient::string")]
    action: String,
    #[serde(default, deserialize_with = "lenient::object")]
    actor: Option<Actor>,
    #[serde(default, deserialize_with = "lenient::object")]
    context: Option<Context>,
}

#[derive(Debug, Default, Deserialize)]
struct Actor {
    #[serde(default, deserialize_with = "lenient::object")]
    user: Option<ActorUser>,
}

#[derive(Debug, Default, Deserialize)]
struct ActorUser {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    email: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Context {
    #[serde(default, deserialize_with = "lenient::object")]
    location: Option<Location>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    ua: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    ip_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Location {
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_string")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    id: Option<String>,
}

static TABLES: [&TableDef; 1] = [&SLACK_AUDIT_LOGINS];

/// The `audit` source.
#[derive(Debug)]
pub struct AuditCollector;

fn logs_url(base: &Url, params: &[(&str, String)]) -> Result<Url> {
    let mut url =
        base.join("logs").map_err(|e| IngestError::Setup(format!("building the Audit Logs URL from {base}: {e}")))?;
    for (k, v) in params {
        url.query_pairs_mut().append_pair(k, v);
    }
    Ok(url)
}

impl Collector for AuditCollector {
    fn source(&self) -> Source {
        Source::Audit
    }

    fn methods(&self) -> &'static [&'static str] {
        &[AUDIT_LOGS]
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        &TABLES
    }

    fn probe<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Result<()>> {
        async move {
            let url = logs_url(&ctx.settings.audit_base, &[("limit", "1".into()), ("action", ACTIONS[0].into())])?;
            match ctx.client.get_rest::<LogsPage>(AUDIT_LOGS, Some(ctx.scope.org_key()), &url).await {
                // The token passed; only the probe's action is refused, and the collection
                // skips unsupported actions one by one.
                Err(e) if unsupported_action(&e) => Ok(()),
                other => other.map(drop).map_err(IngestError::refused_rest_token),
            }
        }
        .boxed()
    }

    fn collect(&self, ctx: Arc<RunContext>) -> BoxStream<'static, Result<Item>> {
        let old = ctx.watermarks.get(&watermark_key(ctx.scope.org_key())).copied();
        let first = ctx.date.checked_sub_days(Days::new(FIRST_RUN_DAYS)).map_or(0, start_of_day);
        // Slack never returns events from the future, so the end of the run day is a safe
        // upper bound even when the run day is today.
        let latest = crate::slack::collector::end_of_day(ctx.date);
        // Events can reach the API after later ones were already read: re-read an overlap
        // before the watermark; the merge on the event `id` makes the re-read harmless.
        let oldest = old.map_or(first, |wm| wm.saturating_sub(OVERLAP_SECS));
        watermark_at_least(window(&ctx, oldest, latest), old)
    }

    fn history(&self) -> Option<History> {
        Some(History {
            kept: "the Audit Logs API keeps login events from the organisation's start, none before March 2018 \
                   (Enterprise Grid, an org owner's org-level token)",
            watermark: WatermarkMeaning::NewestEvent,
        })
    }

    /// `oldest` = the start of the window's first day, `latest` = the end of its last day;
    /// rows go to the UTC day of their `date_create`, merged on `id`.
    fn read_past(&self, ctx: Arc<RunContext>, range: Window) -> BoxStream<'static, Result<Past>> {
        window(&ctx, range.start(), range.end()).map(|item| item.map(Past::Item)).boxed()
    }
}

/// The login events of every collected action with `oldest <= date_create <= latest` (epoch
/// seconds, both inclusive, as the API reads them), as `slack_audit_logins` rows, then an
/// `Item::Watermark` `audit/<org>` at the newest `date_create` read (none when nothing was).
/// The daily collector reads from its watermark to the end of the run day; a backfill reads a
/// past window. Each action is paged on its own cursor, all three at once.
pub(crate) fn window(ctx: &RunContext, oldest: i64, latest: i64) -> BoxStream<'static, Result<Item>> {
    let org = ctx.scope.org_key().to_owned();
    let newest = Arc::new(AtomicI64::new(i64::MIN));
    let collected = micros(ctx.collected_at);
    let walks = ACTIONS.map(|action| {
        let (client, base, key) = (Arc::clone(&ctx.client), ctx.settings.audit_base.clone(), org.clone());
        let pages = cursor_pages(Arc::clone(&ctx.client), AUDIT_LOGS, move |cursor| {
            let (client, base, key) = (Arc::clone(&client), base.clone(), key.clone());
            async move {
                let params = with_cursor(
                    vec![
                        ("action", action.to_string()),
                        ("oldest", oldest.to_string()),
                        ("latest", latest.to_string()),
                        ("limit", PAGE.to_string()),
                    ],
                    cursor,
                );
                let url = logs_url(&base, &params)?;
                client.get_rest::<LogsPage>(AUDIT_LOGS, Some(&key), &url).await.map_err(|e| {
                    if unsupported_action(&e) { action_skipped(&e, action) } else { e.refused_rest_token() }
                })
            }
        });
        let newest = Arc::clone(&newest);
        let pages = pages
            .try_filter_map(move |page| {
                if let Some(m) = page.entries.iter().map(|e| e.date_create).max() {
                    newest.fetch_max(m, Ordering::Relaxed);
                }
                let item = (!page.entries.is_empty()).then(|| {
                    logins_batch(&page.entries, collected).map(|batch| Item::Rows { table: &SLACK_AUDIT_LOGINS, batch })
                });
                std::future::ready(item.transpose())
            })
            .boxed();
        // An action Slack no longer supports, or a token the API refuses, skips that part; the
        // other actions go on.
        items_or_skip(None, pages)
    });
    let tail = stream::once(async move {
        let value = newest.load(Ordering::Relaxed);
        (value != i64::MIN).then(|| Ok(Item::Watermark { key: watermark_key(&org), value }))
    })
    .filter_map(std::future::ready);
    stream::select_all(walks).chain(tail).boxed()
}

/// The standing condition recorded for an action the Audit Logs API refuses as unsupported.
fn action_skipped(e: &IngestError, action: &str) -> IngestError {
    IngestError::Standing {
        method: AUDIT_LOGS.into(),
        code: e.slack_code().unwrap_or("http_400").to_owned(),
        meaning: format!(
            "the Audit Logs API answers HTTP 400 for an action it no longer supports; action `{action}` is skipped"
        ),
    }
}

/// The actions the collector reads that the Audit Logs API refuses as unsupported, each with
/// the condition a run records for it (one `limit=1` call per action; `lastseen check` lists
/// them). Other errors are the probe's to report and are left out here.
pub async fn unsupported_actions(ctx: &RunContext) -> Result<Vec<(&'static str, IngestError)>> {
    let mut out = Vec::new();
    for action in ACTIONS {
        let url = logs_url(&ctx.settings.audit_base, &[("limit", "1".into()), ("action", action.into())])?;
        if let Err(e) = ctx.client.get_rest::<LogsPage>(AUDIT_LOGS, Some(ctx.scope.org_key()), &url).await
            && unsupported_action(&e)
        {
            out.push((action, action_skipped(&e, action)));
        }
    }
    Ok(out)
}

/// HTTP 400 from the Audit Logs API: the action is not (or no longer) supported (java-slack-sdk
/// `test_with_remote_apis/audit/ApiTest.java` `verifyAllActions`: "seems to be no longer
/// supported" on 400).
fn unsupported_action(e: &IngestError) -> bool {
    matches!(e, IngestError::RestApi { status: 400, .. } | IngestError::Http { status: 400, .. })
}

fn logins_batch(entries: &[Entry], collected_at_us: i64) -> Result<RecordBatch> {
    let s = StringBuilder::new;
    let (mut id, mut action, mut user, mut email, mut team, mut ip, mut ua) = (s(), s(), s(), s(), s(), s(), s());
    let ts = || TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let (mut created, mut collected) = (ts(), ts());
    for e in entries {
        let at = secs_to_micros(e.date_create).ok_or_else(|| IngestError::Protocol {
            method: AUDIT_LOGS.into(),
            message: format!("event {} has date_create {} out of range", e.id, e.date_create),
        })?;
        let actor = e.actor.as_ref().and_then(|a| a.user.as_ref());
        let ctx = e.context.as_ref();
        let location = ctx.and_then(|c| c.location.as_ref()).filter(|l| l.kind.as_deref() == Some("workspace"));
        id.append_value(&e.id);
        created.append_value(at);
        action.append_value(&e.action);
        user.append_option(actor.and_then(|u| u.id.as_deref()));
        email.append_option(actor.and_then(|u| u.email.as_deref()));
        team.append_option(location.and_then(|l| l.id.as_deref()));
        ip.append_option(ctx.and_then(|c| c.ip_address.as_deref()));
        ua.append_option(ctx.and_then(|c| c.ua.as_deref()));
        collected.append_value(collected_at_us);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(created.finish()),
        Arc::new(action.finish()),
        Arc::new(user.finish()),
        Arc::new(email.finish()),
        Arc::new(team.finish()),
        Arc::new(ip.finish()),
        Arc::new(ua.finish()),
        Arc::new(collected.finish()),
    ];
    RecordBatch::try_new(SLACK_AUDIT_LOGINS.schema(), columns).map_err(arrow_err(&SLACK_AUDIT_LOGINS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_sample_reads() {
        let page: LogsPage = serde_json::from_str(
            r#"{"entries":[{"id":"32c68de4","date_create":1611221649,"action":"user_login",
              "actor":{"type":"user","user":{"id":"W111","name":"n","email":"foo@example.com","team":"E111"}},
              "entity":{"type":"user","user":{"id":"W111"}},
              "context":{"location":{"type":"workspace","id":"T111","name":"WS","domain":"d"},"ua":"UA","ip_address":"1.2.3.4"}},
              {"id":"e2","date_create":"1611221650","action":"user_logout","context":{"location":{"type":"enterprise","id":"E1"}}}],
              "response_metadata":{"next_cursor":""}}"#,
        )
        .unwrap();
        let b = logins_batch(&page.entries, 0).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema(), SLACK_AUDIT_LOGINS.schema());
        use datafusion::arrow::array::{Array, AsArray};
        let team = b.column_by_name("team_id").unwrap().as_string::<i32>();
        assert_eq!(team.value(0), "T111");
        assert!(team.is_null(1), "an enterprise-level event has no workspace");
    }

    #[test]
    fn every_field_read_is_in_slacks_recorded_answers() {
        use crate::slack::contract::{TEXT, parse};
        let page: LogsPage = parse("audit__v1__logs.json");
        let e = &page.entries[0];
        assert_eq!((e.id.as_str(), e.date_create, e.action.as_str()), (TEXT, 123, TEXT));
        let user = e.actor.as_ref().and_then(|a| a.user.as_ref()).unwrap();
        assert_eq!((user.id.as_deref(), user.email.as_deref()), (Some(TEXT), Some(TEXT)));
        let c = e.context.as_ref().unwrap();
        assert_eq!((c.ua.as_deref(), c.ip_address.as_deref()), (Some(TEXT), Some(TEXT)));
        let l = c.location.as_ref().unwrap();
        assert_eq!((l.kind.as_deref(), l.id.as_deref()), (Some(TEXT), Some(TEXT)));
        assert_eq!(page.response_metadata.and_then(|m| m.next_cursor).as_deref(), Some(TEXT));
    }
}
