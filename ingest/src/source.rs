//! What any app's source yields, independent of the app: the items a collection streams
//! ([`Item`]), what a read of past days adds ([`Past`]), how a capability probe ended
//! ([`Probe`]), and how a source that keeps history is backfilled ([`History`], [`Window`]).
//! The orchestrator (daily run and backfill) handles only these, never an app's internals:
//! an [`App`] connects (checks its credentials, discovers what they see) and hands over its
//! [`AppSource`]s, each carrying its own client; a source gets only the app-agnostic [`RunInfo`].

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use lastseen_lake::{SkipReport, SourceReport, TableDef};

use crate::error::{IngestError, Result};

/// What every source of every app is told about the run (the app's own state, its client and
/// what its discovery found, is inside the source).
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The day being collected (UTC).
    pub date: NaiveDate,
    /// Stamped on every row (`collected_at`).
    pub collected_at: DateTime<Utc>,
    /// The committed watermarks the run starts from (keys are the sources' own).
    pub watermarks: BTreeMap<String, i64>,
}

impl RunInfo {
    /// End of the run day (epoch seconds), or `None` when the run day is today (read up to now).
    pub fn day_end(&self) -> Option<i64> {
        (self.date < Utc::now().date_naive()).then(|| start_of_day(self.date) + 86_399)
    }
}

/// One connected source of one app: what the daily run and the backfill drive.
pub trait AppSource: Send + Sync {
    /// The app whose tables it writes (`slack`, `okta`).
    fn app(&self) -> &'static str;

    /// Its key in the run manifest and in messages; unique across apps.
    fn name(&self) -> String;

    /// The counter labels its calls go under (for the manifest's per-source report).
    fn methods(&self) -> &'static [&'static str];

    /// The raw tables it writes.
    fn tables(&self) -> &'static [&'static TableDef];

    /// Whether the run is refused when this source cannot run (an app's account snapshot,
    /// which every other table of the app is keyed on).
    fn required(&self) -> bool {
        false
    }

    /// Whether the source being unavailable (plan, scopes, token type) is worth a warning and
    /// exit 3: the configuration named it. A source enabled only because the app collects
    /// whatever it can is logged instead. A standing condition is always a warning.
    fn expected(&self) -> bool {
        true
    }

    /// The parts of the app the source reads one by one (a Slack workspace's id), so the
    /// manifest can count those collected; empty (the default) = the source reads one whole
    /// (an organisation), counted as 1.
    fn parts(&self) -> Vec<String> {
        Vec::new()
    }

    /// One cheap call: [`Probe::Unavailable`] when the plan, scopes or token type cannot serve
    /// the source; an error for a real failure (auth, network).
    fn probe<'a>(&'a self, run: &'a RunInfo) -> BoxFuture<'a, Result<Probe>>;

    /// Parts of the source known before collecting to be skipped (a Slack workspace the
    /// org-wide app was not granted), reported in the manifest.
    fn known_skips(&self) -> Vec<SkipReport> {
        Vec::new()
    }

    /// The source's rows, streamed page by page.
    fn collect(&self, run: Arc<RunInfo>) -> BoxStream<'static, Result<Item>>;

    /// How far back the API keeps the source's history; `None` = only its current state.
    fn history(&self) -> Option<History> {
        None
    }

    /// The source's rows for the past `window` (a backfill), and the days the API has nothing
    /// for. Only sources with a [`AppSource::history`] implement it.
    fn read_past(&self, _run: Arc<RunInfo>, _window: Window) -> BoxStream<'static, Result<Past>> {
        let name = self.name();
        Box::pin(futures::stream::once(async move {
            Err(IngestError::Setup(format!("source `{name}` keeps no history that can be read back")))
        }))
    }
}

/// What an app's connection found: its sources, and what the operator must know once.
pub struct Connected {
    pub sources: Vec<Box<dyn AppSource>>,
    /// Said once as run warnings (the run ends partial): e.g. workspaces not granted.
    pub warnings: Vec<String>,
    /// For the run's log line: who the credentials are (team, org URL), never a secret.
    pub describe: String,
}

/// A source as the app's configuration describes it, known without connecting: what a
/// backfill plans with (and names when nothing enabled keeps history), and what the daily run
/// checks before it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// As [`AppSource::name`].
    pub name: String,
    /// The configuration enables it (the daily run collects it).
    pub enabled: bool,
    /// As [`AppSource::required`]: a daily run of a configuration that does not enable it is
    /// refused before anything is read.
    pub required: bool,
    /// As [`AppSource::history`].
    pub history: Option<History>,
}

/// One configured app: connects once per run and reports its calls.
pub trait App: Send + Sync {
    /// `slack`, `okta`.
    fn name(&self) -> &'static str;

    /// Every source the app can collect, enabled or not, in the configured order.
    fn sources(&self) -> Vec<SourceInfo>;

    /// Checks the credentials and discovers what they see; an error here fails the run.
    fn connect(&self) -> BoxFuture<'_, Result<Connected>>;

    /// The counters of calls under `methods` (retries, 429s, waits), for the manifest.
    fn report(&self, methods: &[&str]) -> SourceReport;
}

/// One thing a collector stream yields.
#[derive(Debug)]
pub enum Item {
    /// Rows of `table`; snapshot tables go to the run's date, event tables to their event day.
    Rows { table: &'static TableDef, batch: RecordBatch },
    /// Publish partition `dt` of `table` even if no rows arrive for it (a day fetched empty).
    Partition { table: &'static TableDef, dt: NaiveDate },
    /// An incremental position to publish with the data it covers (epoch seconds).
    Watermark { key: String, value: i64 },
    /// Part of the source cannot be read because of a standing condition
    /// (`error.is_standing()`): one workspace (`Some(team)`), or, with `None`, an
    /// organisation-wide part such as one audit action. Nothing of that part was yielded; the
    /// rest of the source is collected and the run ends partial (exit 3).
    Skipped { workspace: Option<String>, error: IngestError },
    /// Something the operator must know while the source itself is collected (a day the API
    /// has no file for, lines quarantined): a run warning, and the run ends partial (exit 3).
    Warning(String),
}

/// What a read of past days (a backfill) yields: the items a daily run would get, and the days
/// the source has nothing for, which a backfill reports by name instead of failing.
#[derive(Debug)]
pub enum Past {
    Item(Item),
    /// The API has no data for `day`; `why` says whether it is gone for good or not there yet.
    Unavailable {
        day: NaiveDate,
        why: &'static str,
    },
}

/// How a probe ended.
#[derive(Debug)]
pub enum Probe {
    Works,
    /// The plan, scopes or token type cannot serve the source; the error says which.
    Unavailable(IngestError),
}

/// The days a backfill reads, both inclusive (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Window {
    /// The first second of `from` (epoch seconds).
    pub fn start(&self) -> i64 {
        start_of_day(self.from)
    }

    /// The last second of `to` (epoch seconds).
    pub fn end(&self) -> i64 {
        start_of_day(self.to) + 86_399
    }

    /// Every day of the window, oldest first.
    pub fn days(&self) -> Vec<NaiveDate> {
        self.from.iter_days().take_while(|d| *d <= self.to).collect()
    }
}

/// How far back a source's API keeps history, and how its watermark relates to a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// Said to the user when the window reaches further back than the API keeps.
    pub kept: &'static str,
    /// What the source's committed watermark means, which decides whether a backfilled window
    /// joins it (and so may move it forward).
    pub watermark: WatermarkMeaning,
}

/// What a source's committed watermark stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatermarkMeaning {
    /// The newest event time stored (access logs, audit): a window must start at or before it.
    NewestEvent,
    /// The start of the newest day stored whole (a daily file): a window starting the day after
    /// it joins too.
    NewestWholeDay,
}

impl History {
    /// The earliest committed watermark a window starting on `from` joins.
    pub fn joins_from(&self, from: NaiveDate) -> i64 {
        match self.watermark {
            WatermarkMeaning::NewestWholeDay => start_of_day(from.pred_opt().unwrap_or(from)),
            WatermarkMeaning::NewestEvent => start_of_day(from),
        }
    }
}

/// The watermark to publish after a backfill that read up to `read_up_to` from `window_start`
/// on: never earlier than the committed one, and later only when the window joins the history
/// the committed watermark already covers (otherwise the daily run's next read would skip the
/// gap between them). `None` = leave it as it is. The same rule holds for every incremental
/// source.
pub fn backfilled_watermark(committed: Option<i64>, read_up_to: Option<i64>, window_start: i64) -> Option<i64> {
    match (committed, read_up_to) {
        (Some(old), Some(new)) if new > old && window_start <= old => Some(new),
        _ => None,
    }
}

/// Maps an Arrow error building `table`'s batch to the error that names the table.
pub(crate) fn arrow_err(table: &'static TableDef) -> impl Fn(datafusion::arrow::error::ArrowError) -> IngestError {
    move |source| IngestError::Arrow { table: table.name, source }
}

pub(crate) fn start_of_day(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_never_moves_back_and_moves_forward_only_over_a_contiguous_window() {
        // Window starts before the committed watermark and reads past it: forward.
        assert_eq!(backfilled_watermark(Some(100), Some(150), 50), Some(150));
        // Reads nothing newer: unchanged, never backwards.
        assert_eq!(backfilled_watermark(Some(100), Some(80), 50), None);
        assert_eq!(backfilled_watermark(Some(100), None, 50), None);
        // A window after a gap: the daily run must still read the gap.
        assert_eq!(backfilled_watermark(Some(100), Some(300), 200), None);
        // No watermark yet: the first daily run reads the whole history anyway.
        assert_eq!(backfilled_watermark(None, Some(300), 200), None);
    }

    #[test]
    fn a_whole_day_watermark_joins_the_day_before_and_event_windows_must_overlap() {
        let whole = History { kept: "k", watermark: WatermarkMeaning::NewestWholeDay };
        let events = History { kept: "k", watermark: WatermarkMeaning::NewestEvent };
        let d = NaiveDate::from_ymd_opt(2026, 6, 20).unwrap();
        let stored_day = start_of_day(d - chrono::Days::new(1));
        // Whole days stored through the day before `d`: a window from `d` on joins it.
        assert_eq!(
            backfilled_watermark(Some(stored_day), Some(start_of_day(d)), whole.joins_from(d)),
            Some(start_of_day(d))
        );
        // From the day after that there is a day missing in between.
        let later = d + chrono::Days::new(1);
        assert_eq!(backfilled_watermark(Some(stored_day), Some(start_of_day(later)), whole.joins_from(later)), None);
        // An event stored at noon the day before: events after it that day were not read.
        let noon = stored_day + 43_200;
        assert_eq!(backfilled_watermark(Some(noon), Some(start_of_day(d) + 60), events.joins_from(d)), None);
        let before = d - chrono::Days::new(1);
        assert_eq!(
            backfilled_watermark(Some(noon), Some(start_of_day(d) + 60), events.joins_from(before)),
            Some(start_of_day(d) + 60)
        );
        let w = Window { from: before, to: d };
        assert_eq!((w.start(), w.end(), w.days().len()), (stored_day, start_of_day(d) + 86_399, 2));
    }
}
