//! The access-logs collector: `team.accessLogs` in cursor mode (classic paging, with the
//! restart Slack's 100-page cap per `before` window requires, only as a fallback), one
//! `slack_access_logs` Arrow batch per page; incremental per workspace from the committed
//! watermark `access_logs/<team>` (the newest `date_last` stored), without relying on an
//! undocumented sort order (see [`access_logs`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use futures::FutureExt;
use futures::future::BoxFuture;
use lastseen_config::Source;
use lastseen_lake::TableDef;

use crate::slack::collector::{
    Collector, Item, RunContext, items_or_skip, probe_workspaces, start_of_day, watermark_at_least,
};
use crate::source::{History, Past, WatermarkMeaning, Window};
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use lastseen_lake::catalog::SLACK_ACCESS_LOGS;

use crate::error::{IngestError, Result};
use crate::slack::api::SlackClient;
use crate::slack::models::{AccessLogsPage, Login};
use crate::slack::{MAX_PAGE_SIZE, micros, secs_to_micros};
use crate::walk::WalkGuard;

/// The Slack method this collector calls.
pub const TEAM_ACCESS_LOGS: &str = "team.accessLogs";

/// Slack refuses `page` above this (`over_pagination_limit`).
pub const MAX_PAGES_PER_WINDOW: u32 = 100;

/// Which part of the access history to read. Entries come newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessLogWindow {
    /// Epoch seconds, inclusive upper bound on `date_last`; `None` = now.
    pub before: Option<i64>,
    /// Epoch seconds: keep only entries with `date_last >= stop_at`, and stop walking at a page
    /// wholly older while the entries come in `date_last` order. `None` = read the whole
    /// history Slack keeps.
    pub stop_at: Option<i64>,
}

/// How the walk pages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// `limit` + `cursor` (with `before`), what Slack recommends (it warns
    /// `use_cursor_pagination_instead` on `count`/`page`). `None` before the first page.
    Cursor(Option<String>),
    /// `count` + `page`, at most 100 pages per `before` window: the fallback when Slack
    /// answers a cursor request without a cursor block but with classic paging.
    Classic { page: u32 },
}

struct State {
    client: Arc<SlackClient>,
    team_id: String,
    page_size: u32,
    stop_at: Option<i64>,
    collected_at: i64,
    before: Option<i64>,
    mode: Mode,
    /// Oldest `date_last` seen in the current `before` window: where the next classic window
    /// starts.
    window_oldest: Option<i64>,
    /// Caps the walk; in classic mode each (`before`, `page`) is asked for once: a server
    /// ignoring `before` sends the walk back to a window it already read.
    guard: WalkGuard,
    /// The last entry's `date_last` of the previous page, to check the order across pages.
    last_seen: Option<i64>,
    /// Slack documents no sort key: once a page is seen out of `date_last` order, the early
    /// stop is off and the window is read to its end.
    unordered: bool,
    done: bool,
}

/// Access-log entries of `team_id` inside `window`, one batch per non-empty page, in the
/// `slack_access_logs` schema, in cursor mode (classic paging only as a fallback).
///
/// The walk may stop early (the rest of the list older than `stop_at`) only while every entry
/// read so far came in non-increasing `date_last` order, and only at a page wholly older than
/// `stop_at`. Slack does not document the order ("Set the before parameter to the oldest
/// timestamp returned"); listed by `date_first`, a steady user's entry with a fresh
/// `date_last` can sit deep in the list, so a page out of order turns the early stop off and
/// the window is read fully (a warning says so). Rows older than `stop_at` are dropped either
/// way. In classic mode one `before` window holds at most 100 pages; at page 100 the walk
/// restarts with `before` = the oldest `date_last` seen. Entries read twice merge on
/// (team_id, user_id, ip, user_agent, date_first).
pub fn access_logs(
    client: Arc<SlackClient>,
    team_id: String,
    window: AccessLogWindow,
    page_size: u32,
    collected_at: DateTime<Utc>,
) -> BoxStream<'static, Result<RecordBatch>> {
    let state = State {
        client,
        team_id,
        page_size: page_size.clamp(1, MAX_PAGE_SIZE),
        stop_at: window.stop_at,
        collected_at: micros(collected_at),
        before: window.before,
        mode: Mode::Cursor(None),
        window_oldest: None,
        guard: WalkGuard::new(TEAM_ACCESS_LOGS),
        last_seen: None,
        unordered: false,
        done: false,
    };
    stream::try_unfold(state, next_page).boxed()
}

async fn next_page(mut st: State) -> Result<Option<(RecordBatch, State)>> {
    while !st.done {
        let mut params = vec![("team_id", st.team_id.clone())];
        match &st.mode {
            Mode::Cursor(cursor) => {
                params.push(("limit", st.page_size.to_string()));
                if let Some(c) = cursor {
                    params.push(("cursor", c.clone()));
                }
            }
            Mode::Classic { page } => {
                params.extend([("count", st.page_size.to_string()), ("page", page.to_string())]);
            }
        }
        if let Some(before) = st.before {
            params.push(("before", before.to_string()));
        }
        if let Mode::Classic { page } = &st.mode {
            st.guard.visit(format!("{:?}/{page}", st.before))?;
        }
        let page: AccessLogsPage = st.client.call(TEAM_ACCESS_LOGS, Some(&st.team_id), &params).await?;
        st.check_order(&page);
        st.advance(&page)?;

        let keep = |l: &&Login| st.stop_at.is_none_or(|stop| l.date_last >= stop);
        let rows: Vec<&Login> = page.logins.iter().filter(keep).collect();
        st.client.record_page(TEAM_ACCESS_LOGS, rows.len());
        if !rows.is_empty() {
            let batch = access_logs_batch(&rows, &st.team_id, st.collected_at)?;
            return Ok(Some((batch, st)));
        }
    }
    Ok(None)
}

impl State {
    /// Notes a page whose entries are not in non-increasing `date_last` order (within it, or
    /// against the previous page's last entry).
    fn check_order(&mut self, page: &AccessLogsPage) {
        let mut prev = self.last_seen;
        let mut ordered = true;
        for l in &page.logins {
            if prev.is_some_and(|p| l.date_last > p) {
                ordered = false;
            }
            prev = Some(l.date_last);
        }
        self.last_seen = prev.or(self.last_seen);
        if !ordered && !self.unordered {
            self.unordered = true;
            if self.stop_at.is_some() {
                self.client.record_warning(
                    TEAM_ACCESS_LOGS,
                    format!(
                        "team {}: access-log entries are not ordered by date_last; the whole window is read \
                         instead of stopping at the last run's position",
                        self.team_id
                    ),
                );
            }
        }
    }

    /// Decides where the walk goes after `page`.
    fn advance(&mut self, page: &AccessLogsPage) -> Result<()> {
        let Some(page_oldest) = page.logins.iter().map(|l| l.date_last).min() else {
            self.done = true;
            return Ok(());
        };
        let page_newest = page.logins.iter().map(|l| l.date_last).max().unwrap_or(page_oldest);
        self.window_oldest = Some(self.window_oldest.map_or(page_oldest, |o| o.min(page_oldest)));
        if !self.unordered && self.stop_at.is_some_and(|stop| page_newest < stop) {
            self.done = true;
            return Ok(());
        }
        match &self.mode {
            Mode::Cursor(current) => {
                let next = page.response_metadata.as_ref().and_then(|m| m.next_cursor.clone());
                match (next, page.paging) {
                    (None, Some(_)) if current.is_none() && page.response_metadata.is_none() => {
                        // The cursor request was answered the classic way: page classically
                        // from page 2 (this was page 1).
                        self.mode = Mode::Classic { page: 1 };
                        self.guard.visit(format!("{:?}/1", self.before))?;
                        self.guard.page(page.logins.len())?;
                        self.advance_classic(page);
                    }
                    (next, _) => match self.guard.next_cursor(page.logins.len(), next)? {
                        Some(n) => self.mode = Mode::Cursor(Some(n)),
                        None => self.done = true,
                    },
                }
            }
            Mode::Classic { .. } => {
                self.guard.page(page.logins.len())?;
                self.advance_classic(page);
            }
        }
        Ok(())
    }

    fn advance_classic(&mut self, page: &AccessLogsPage) {
        let Mode::Classic { page: current } = self.mode else { return };
        let more = match page.paging.and_then(|p| p.pages) {
            Some(pages) => i64::from(current) < pages,
            // Without a paging block, a full page is the only hint that another may follow.
            None => page.logins.len() >= self.page_size as usize,
        };
        if !more {
            self.done = true;
        } else if current < MAX_PAGES_PER_WINDOW {
            self.mode = Mode::Classic { page: current + 1 };
        } else {
            self.restart_window();
        }
    }

    fn restart_window(&mut self) {
        let Some(oldest) = self.window_oldest.take() else {
            self.done = true;
            return;
        };
        let next = if self.before == Some(oldest) {
            // A whole window of entries shares one second: restarting there would read the
            // same window forever. Step past it, and say what may have been skipped.
            self.client.record_warning(
                TEAM_ACCESS_LOGS,
                format!(
                    "team {}: more than {} entries have date_last = {oldest}; entries of that \
                     second beyond the first {} pages could not be read",
                    self.team_id,
                    MAX_PAGES_PER_WINDOW as usize * self.page_size as usize,
                    MAX_PAGES_PER_WINDOW
                ),
            );
            oldest - 1
        } else {
            oldest
        };
        tracing::debug!(
            team = %self.team_id,
            before = next,
            "team.accessLogs: 100-page window exhausted, continuing with an earlier `before`"
        );
        self.before = Some(next);
        self.mode = Mode::Classic { page: 1 };
        // A new window starts again from the newest entry: the order check restarts too.
        self.last_seen = None;
    }
}

/// The watermark key of one workspace's access logs.
pub fn watermark_key(team: &str) -> String {
    format!("access_logs/{team}")
}

/// The part of the history a run reads: everything newer than the committed watermark minus
/// the overlap (Slack moves an entry's `date_last` forward in place while it is in use, and
/// may show entries late), and at least the whole run day; nothing after the run day's end.
pub fn window_for(ctx: &RunContext, team: &str) -> AccessLogWindow {
    let overlap = i64::try_from(ctx.settings.access_logs_overlap.as_secs()).unwrap_or(i64::MAX);
    let old = ctx.watermarks.get(&watermark_key(team)).copied();
    let day_start = start_of_day(ctx.date);
    let stop_at = old.map(|wm| wm.saturating_sub(overlap).min(day_start.saturating_sub(overlap)));
    AccessLogWindow { before: ctx.day_end(), stop_at }
}

static TABLES: [&TableDef; 1] = [&SLACK_ACCESS_LOGS];

/// The `access_logs` source.
#[derive(Debug)]
pub struct AccessLogsCollector;

impl Collector for AccessLogsCollector {
    fn source(&self) -> Source {
        Source::AccessLogs
    }

    fn methods(&self) -> &'static [&'static str] {
        &[TEAM_ACCESS_LOGS]
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        &TABLES
    }

    fn probe<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Result<()>> {
        probe_workspaces(ctx, move |ws| {
            async move {
                let mut params = ctx.scope.team_param(ws);
                params.push(("limit", "1".to_string()));
                ctx.client.call::<AccessLogsPage>(TEAM_ACCESS_LOGS, Some(&ws.id), &params).await.map(drop)
            }
            .boxed()
        })
    }

    fn per_workspace(&self) -> bool {
        true
    }

    fn collect(&self, ctx: Arc<RunContext>) -> BoxStream<'static, Result<Item>> {
        let per_workspace = ctx.scope.workspaces.iter().map(|ws| {
            let window = window_for(&ctx, &ws.id);
            let old = ctx.watermarks.get(&watermark_key(&ws.id)).copied();
            watermark_at_least(workspace_items(&ctx, ws.id.clone(), window), old)
        });
        stream::select_all(per_workspace).boxed()
    }

    fn history(&self) -> Option<History> {
        Some(History {
            kept: "team.accessLogs goes back as far as the workspace's access history (paid plans)",
            watermark: WatermarkMeaning::NewestEvent,
        })
    }

    /// Every workspace walked back from `before` = the end of the window's last day, stopping
    /// at entries whose `date_last` is older than the window's first day.
    fn read_past(&self, ctx: Arc<RunContext>, window: Window) -> BoxStream<'static, Result<Past>> {
        let range = AccessLogWindow { before: Some(window.end()), stop_at: Some(window.start()) };
        let per_workspace =
            ctx.scope.workspaces.iter().map(|ws| workspace_items(&ctx, ws.id.clone(), range)).collect::<Vec<_>>();
        stream::select_all(per_workspace).map(|item| item.map(Past::Item)).boxed()
    }
}

/// The entries of workspace `team` inside `window` as `slack_access_logs` rows, then an
/// `Item::Watermark` `access_logs/<team>` at the newest `date_last` read (none when nothing
/// was). The daily collector reads from its watermark on; a backfill reads a past window.
pub(crate) fn workspace_items(
    ctx: &RunContext,
    team: String,
    window: AccessLogWindow,
) -> BoxStream<'static, Result<Item>> {
    let newest = Arc::new(AtomicI64::new(i64::MIN));
    let seen = Arc::clone(&newest);
    let team_for_skip = team.clone();
    let rows = access_logs(
        Arc::clone(&ctx.client),
        team.clone(),
        window,
        ctx.settings.access_logs_page_size,
        ctx.collected_at,
    )
    .map(move |batch| {
        let batch = batch?;
        if let Some(col) = batch.column_by_name("date_last")
            && let Some(m) = datafusion::arrow::compute::max(col.as_primitive::<TimestampMicrosecondType>())
        {
            seen.fetch_max(m.div_euclid(1_000_000), Ordering::Relaxed);
        }
        Ok(Item::Rows { table: &SLACK_ACCESS_LOGS, batch })
    });
    let tail = stream::once(async move {
        let value = newest.load(Ordering::Relaxed);
        (value != i64::MIN).then(|| Ok(Item::Watermark { key: watermark_key(&team), value }))
    })
    .filter_map(std::future::ready);
    // A standing condition of this workspace skips it alone; it publishes no watermark, so
    // the next run reads its gap (Slack keeps the history).
    items_or_skip(Some(team_for_skip), rows.chain(tail).boxed())
}

/// One `slack_access_logs` batch from a page of entries.
pub fn access_logs_batch(logins: &[&Login], team_id: &str, collected_at_us: i64) -> Result<RecordBatch> {
    let n = logins.len();
    let text = |bytes| StringBuilder::with_capacity(n, n * bytes);
    let ts = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut team, mut user_id, mut username) = (text(12), text(12), text(12));
    let (mut date_first, mut date_last, mut collected) = (ts(), ts(), ts());
    let mut count = Int64Builder::with_capacity(n);
    let (mut ip, mut user_agent, mut isp, mut country, mut region) = (text(16), text(64), text(16), text(2), text(4));

    for l in logins {
        team.append_value(team_id);
        user_id.append_value(&l.user_id);
        username.append_option(l.username.as_deref());
        date_first.append_value(secs_to_micros(l.date_first).ok_or_else(|| out_of_range(l))?);
        date_last.append_value(secs_to_micros(l.date_last).ok_or_else(|| out_of_range(l))?);
        // The column is non-null; an entry without a count still recorded at least one access.
        count.append_value(l.count.unwrap_or(1));
        ip.append_option(l.ip.as_deref());
        user_agent.append_option(l.user_agent.as_deref());
        isp.append_option(l.isp.as_deref());
        country.append_option(l.country.as_deref());
        region.append_option(l.region.as_deref());
        collected.append_value(collected_at_us);
    }

    let columns: Vec<ArrayRef> = vec![
        Arc::new(team.finish()),
        Arc::new(user_id.finish()),
        Arc::new(username.finish()),
        Arc::new(date_first.finish()),
        Arc::new(date_last.finish()),
        Arc::new(count.finish()),
        Arc::new(ip.finish()),
        Arc::new(user_agent.finish()),
        Arc::new(isp.finish()),
        Arc::new(country.finish()),
        Arc::new(region.finish()),
        Arc::new(collected.finish()),
    ];
    RecordBatch::try_new(SLACK_ACCESS_LOGS.schema(), columns)
        .map_err(|source| IngestError::Arrow { table: SLACK_ACCESS_LOGS.name, source })
}

fn out_of_range(l: &Login) -> IngestError {
    IngestError::Protocol {
        method: TEAM_ACCESS_LOGS.to_owned(),
        message: format!(
            "entry of user {} has timestamps out of range (date_first {}, date_last {})",
            l.user_id, l.date_first, l.date_last
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Int64Type, TimestampMicrosecondType};

    #[test]
    fn batch_matches_the_catalog() {
        let logins: Vec<Login> = serde_json::from_str(
            r#"[{"user_id":"U1","username":"a","date_first":100,"date_last":200,"count":3,"ip":"10.0.0.1","user_agent":"UA","isp":null,"country":"US","region":"CA"},
                {"user_id":"U2","date_first":50,"date_last":60}]"#,
        )
        .unwrap();
        let refs: Vec<&Login> = logins.iter().collect();
        let batch = access_logs_batch(&refs, "T1", 7).unwrap();
        assert_eq!(batch.schema(), SLACK_ACCESS_LOGS.schema());
        let last = batch.column_by_name("date_last").unwrap().as_primitive::<TimestampMicrosecondType>();
        assert_eq!((last.value(0), last.value(1)), (200_000_000, 60_000_000));
        let count = batch.column_by_name("count").unwrap().as_primitive::<Int64Type>();
        assert_eq!((count.value(0), count.value(1)), (3, 1));
        assert!(batch.column_by_name("isp").unwrap().is_null(0));
        assert!(batch.column_by_name("ip").unwrap().is_null(1));
        let team = batch.column_by_name("team_id").unwrap().as_string::<i32>();
        assert_eq!(team.value(1), "T1");
    }
}
