//! The `okta_logs` source: System Log events of the configured types (`user.session.start`,
//! `user.authentication.sso`) as `okta_log_events` rows, incremental under the watermark
//! `okta.logs`, and backfillable within the 90 days Okta keeps.
//!
//! Each run reads one *bounded* request (`since` and `until` set, `sortOrder=ASCENDING`): "The
//! returned events are time filtered by their associated published field", "guaranteed to be in
//! order", and "have a finite number of pages" — but "not all events for the specified time
//! range may be present — events may be delayed" (System Log API, "Request types"). So the
//! window is `[watermark − logs_overlap, min(now, end of the run day) − logs_lag)`: the lag lets
//! most events land before they are read, the overlap re-reads the tail of the previous window
//! for the rare late ones, and the lake merges rows on Okta's unique `uuid` (rows read twice in
//! one run are dropped here). The watermark is the window's end, published with the data and
//! never moved back. A first run reads `logs_first_run_days` back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::{ArrayRef, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use lastseen_config::{OKTA_LOG_RETENTION_DAYS, OktaConfig};
use lastseen_lake::TableDef;
use lastseen_lake::catalog::OKTA_LOG_EVENTS;

use super::client::{LOGS, OktaClient};
use super::models::LogEvent;
use super::{Clock, pages, until_error};
use crate::error::Result;
use crate::source::{AppSource, History, Item, Past, Probe, RunInfo, WatermarkMeaning, Window, start_of_day};

/// The watermark key: the end (epoch seconds, exclusive) of the newest window read.
pub const WATERMARK: &str = "okta.logs";

/// What a day older than the retention is reported as by a backfill.
const GONE: &str = "the Okta System Log keeps 90 days; older events are deleted";
const NOT_YET: &str = "the day has not happened yet";

const RETENTION_SECS: i64 = OKTA_LOG_RETENTION_DAYS as i64 * 86_400;

static TABLES: [&TableDef; 1] = [&OKTA_LOG_EVENTS];

/// The `okta_logs` source.
pub struct LogsSource {
    client: Arc<OktaClient>,
    cfg: Arc<OktaConfig>,
    now: Clock,
}

impl LogsSource {
    pub fn new(client: Arc<OktaClient>, cfg: Arc<OktaConfig>, now: Clock) -> Self {
        LogsSource { client, cfg, now }
    }

    /// The daily window and the part of the wanted history Okta no longer keeps.
    pub fn daily_window(&self, run: &RunInfo) -> DailyWindow {
        let now = (self.now)().timestamp();
        let day_end = start_of_day(run.date) + 86_400;
        let until = now.min(day_end) - secs(self.cfg.logs_lag);
        let floor = now - RETENTION_SECS;
        let wanted = match run.watermarks.get(WATERMARK) {
            Some(&wm) => wm - secs(self.cfg.logs_overlap),
            None => until - i64::from(self.cfg.logs_first_run_days) * 86_400,
        };
        let lost = (run.watermarks.contains_key(WATERMARK) && wanted < floor).then_some((wanted, floor));
        let since = wanted.max(floor);
        DailyWindow { read: (since < until).then_some((since, until)), lost }
    }
}

/// What a daily run reads, `[since, until)` in epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyWindow {
    /// `None` when there is nothing to read (the run day lies before the committed
    /// watermark's overlap).
    pub read: Option<(i64, i64)>,
    /// Events from the committed watermark on that are past the 90-day retention.
    pub lost: Option<(i64, i64)>,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

fn rfc3339(epoch: i64) -> String {
    DateTime::<Utc>::from_timestamp(epoch, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl AppSource for LogsSource {
    fn app(&self) -> &'static str {
        "okta"
    }

    fn name(&self) -> String {
        "okta_logs".to_owned()
    }

    fn methods(&self) -> &'static [&'static str] {
        &[LOGS]
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        &TABLES
    }

    /// One bounded request over the last minute: a token whose administrator may not read the
    /// System Log gets E0000006 (403) here.
    fn probe<'a>(&'a self, _run: &'a RunInfo) -> BoxFuture<'a, Result<Probe>> {
        async move {
            let now = (self.now)().timestamp();
            let params = [("since", rfc3339(now - 60)), ("until", rfc3339(now)), ("limit", "1".to_owned())];
            let url = self.client.url("api/v1/logs", &params)?;
            match self.client.page::<LogEvent>(LOGS, &url).await {
                Ok(_) => Ok(Probe::Works),
                Err(e) if e.is_capability() => Ok(Probe::Unavailable(e)),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn collect(&self, run: Arc<RunInfo>) -> BoxStream<'static, Result<Item>> {
        let committed = run.watermarks.get(WATERMARK).copied();
        let DailyWindow { read: window, lost } = self.daily_window(&run);
        let warning = lost.map(|(from, to)| {
            Ok(Item::Warning(format!(
                "okta_logs: the last run read the System Log up to {}; events published from {} to {} are past \
                 Okta's 90-day retention and cannot be read any more",
                rfc3339(committed.unwrap_or(from)),
                rfc3339(from),
                rfc3339(to)
            )))
        });
        let head = stream::iter(warning);
        let Some((since, until)) = window else { return head.boxed() };
        let collected = run.collected_at.timestamp_micros();
        // The watermark never moves back: a run of an earlier day reads an older window.
        let value = committed.map_or(until, |c| c.max(until));
        until_error(
            head.chain(read_window(Arc::clone(&self.client), Arc::clone(&self.cfg), since, until, collected))
                .chain(stream::once(async move { Ok(Item::Watermark { key: WATERMARK.to_owned(), value }) }))
                .boxed(),
        )
    }

    fn history(&self) -> Option<History> {
        Some(History { kept: "the Okta System Log keeps events for 90 days", watermark: WatermarkMeaning::NewestEvent })
    }

    /// The window's days within the last 90 days, read as one bounded request; days older than
    /// that (or not yet begun) are reported by name. The watermark item says how far the read
    /// got, for the backfill to join it to the committed one if the window is contiguous.
    fn read_past(&self, run: Arc<RunInfo>, window: Window) -> BoxStream<'static, Result<Past>> {
        let now = (self.now)().timestamp();
        let floor = now - RETENTION_SECS;
        let mut unavailable = Vec::new();
        for day in window.days() {
            let start = start_of_day(day);
            if start + 86_400 <= floor {
                unavailable.push(Past::Unavailable { day, why: GONE });
            } else if start > now {
                unavailable.push(Past::Unavailable { day, why: NOT_YET });
            }
        }
        let since = window.start().max(floor);
        let until = (window.end() + 1).min(now - secs(self.cfg.logs_lag));
        let head = stream::iter(unavailable.into_iter().map(Ok));
        if since >= until {
            return head.boxed();
        }
        let collected = run.collected_at.timestamp_micros();
        until_error(
            head.chain(
                read_window(Arc::clone(&self.client), Arc::clone(&self.cfg), since, until, collected)
                    .chain(stream::once(async move { Ok(Item::Watermark { key: WATERMARK.to_owned(), value: until }) }))
                    .map_ok(Past::Item),
            )
            .boxed(),
        )
    }
}

/// The SCIM filter selecting the configured event types (validated to `[A-Za-z0-9._-]`).
pub fn event_filter(types: &[String]) -> String {
    types.iter().map(|t| format!("eventType eq \"{t}\"")).collect::<Vec<_>>().join(" or ")
}

/// Every event of the configured types published in `[since, until)`, page by page as rows,
/// each `uuid` once.
fn read_window(
    client: Arc<OktaClient>,
    cfg: Arc<OktaConfig>,
    since: i64,
    until: i64,
    collected_at: i64,
) -> BoxStream<'static, Result<Item>> {
    let params = [
        ("since", rfc3339(since)),
        ("until", rfc3339(until)),
        ("limit", cfg.logs_page_size.to_string()),
        ("sortOrder", "ASCENDING".to_owned()),
        ("filter", event_filter(&cfg.event_types)),
    ];
    let first = match client.url("api/v1/logs", &params) {
        Ok(url) => url,
        Err(e) => return stream::once(async move { Err(e) }).boxed(),
    };
    tracing::info!(since = %rfc3339(since), until = %rfc3339(until), "reading the Okta System Log");
    let mut seen: HashSet<String> = HashSet::new();
    // A short page is the last one, whatever link came with it.
    pages::<LogEvent>(client, LOGS, first, Some(cfg.logs_page_size as usize))
        .try_filter_map(move |events| {
            let fresh: Vec<LogEvent> = events.into_iter().filter(|e| seen.insert(e.uuid.clone())).collect();
            let item = (!fresh.is_empty()).then(|| {
                events_batch(&fresh, &cfg, collected_at).map(|batch| Item::Rows { table: &OKTA_LOG_EVENTS, batch })
            });
            std::future::ready(item.transpose())
        })
        .boxed()
}

/// Events as `okta_log_events` rows (the catalog's column order).
pub(crate) fn events_batch(events: &[LogEvent], cfg: &OktaConfig, collected_at: i64) -> Result<RecordBatch> {
    let s = StringBuilder::new;
    let ts = || TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let (mut uuid, mut kind, mut actor_id, mut actor_type, mut actor_alt, mut actor_name) =
        (s(), s(), s(), s(), s(), s());
    let (mut result, mut reason, mut app_id, mut app_label, mut mapped, mut user, mut ip) =
        (s(), s(), s(), s(), s(), s(), s());
    let (mut published, mut collected) = (ts(), ts());
    for e in events {
        uuid.append_value(&e.uuid);
        published.append_value(e.published.timestamp_micros());
        kind.append_value(&e.event_type);
        let actor = e.actor.as_ref();
        actor_id.append_option(actor.map(|a| a.id.as_str()));
        actor_type.append_option(actor.and_then(|a| a.kind.as_deref()));
        actor_alt.append_option(actor.and_then(|a| a.alternate_id.as_deref()));
        actor_name.append_option(actor.and_then(|a| a.display_name.as_deref()));
        let outcome = e.outcome.as_ref();
        result.append_option(outcome.and_then(|o| o.result.as_deref()));
        reason.append_option(outcome.and_then(|o| o.reason.as_deref()));
        let app = e.target_of_type("AppInstance");
        app_id.append_option(app.map(|t| t.id.as_str()));
        let label = app.and_then(|t| t.display_name.as_deref().or(t.alternate_id.as_deref()));
        app_label.append_option(label);
        mapped.append_option(app.and_then(|t| {
            cfg.mapped_app(&t.id, t.display_name.as_deref())
                .or_else(|| cfg.mapped_app(&t.id, t.alternate_id.as_deref()))
        }));
        user.append_option(e.target_of_type("User").map(|t| t.id.as_str()));
        ip.append_option(e.client.as_ref().and_then(|c| c.ip_address.as_deref()));
        collected.append_value(collected_at);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(uuid.finish()),
        Arc::new(published.finish()),
        Arc::new(kind.finish()),
        Arc::new(actor_id.finish()),
        Arc::new(actor_type.finish()),
        Arc::new(actor_alt.finish()),
        Arc::new(actor_name.finish()),
        Arc::new(result.finish()),
        Arc::new(reason.finish()),
        Arc::new(app_id.finish()),
        Arc::new(app_label.finish()),
        Arc::new(mapped.finish()),
        Arc::new(user.finish()),
        Arc::new(ip.finish()),
        Arc::new(collected.finish()),
    ];
    RecordBatch::try_new(OKTA_LOG_EVENTS.schema(), columns).map_err(crate::source::arrow_err(&OKTA_LOG_EVENTS))
}
