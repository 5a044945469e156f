//! The member-analytics collector: `admin.analytics.getFile` type=member, one gzip NDJSON file
//! per UTC day. A run reads the newest available day plus every day missed since the committed
//! watermark `analytics/<enterprise or team>` (within Slack's 13 months), each day replacing its
//! `slack_member_analytics` partition. Files are decoded in chunks off the async threads.
//! [`backfill_days`] reads chosen past days the same way, for `lastseen backfill`.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Buf;
use chrono::{Days, Months, NaiveDate};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::record_batch::RecordBatch;
use flate2::read::GzDecoder;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt, TryStreamExt};
use lastseen_config::Source;
use lastseen_lake::TableDef;
use lastseen_lake::catalog::{SLACK_MEMBER_ANALYTICS, SLACK_MEMBER_ANALYTICS_QUARANTINE, date32};
use serde::Deserialize;

use crate::error::{IngestError, Result};
use crate::slack::api::SlackClient;
use crate::slack::collector::{Collector, Item, Past, RunContext, arrow_err, start_of_day};
use crate::slack::models::lenient;
use crate::slack::{micros, secs_to_micros};
use crate::source::{History, WatermarkMeaning, Window};

pub const ADMIN_ANALYTICS_GET_FILE: &str = "admin.analytics.getFile";
/// Rows per Arrow batch while decoding a file.
const CHUNK: usize = 8192;
/// How many days back from the run day to look for the newest file (Slack publishes a day's
/// file a day or two later).
const NEWEST_LOOKBACK: u64 = 3;

pub fn watermark_key(org_key: &str) -> String {
    format!("analytics/{org_key}")
}

static TABLES: [&TableDef; 2] = [&SLACK_MEMBER_ANALYTICS, &SLACK_MEMBER_ANALYTICS_QUARANTINE];

/// The `analytics` source.
#[derive(Debug)]
pub struct AnalyticsCollector;

impl Collector for AnalyticsCollector {
    fn source(&self) -> Source {
        Source::Analytics
    }

    fn methods(&self) -> &'static [&'static str] {
        &[ADMIN_ANALYTICS_GET_FILE]
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        &TABLES
    }

    fn probe<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Result<()>> {
        // A day long gone costs no download: plan, scope and token checks come first, and a
        // `data_not_available` answer proves they passed.
        async move {
            fetch(&ctx.client, ctx.scope.org_key(), NaiveDate::from_ymd_opt(2000, 1, 1).expect("a date"))
                .await
                .map(drop)
        }
        .boxed()
    }

    fn history(&self) -> Option<History> {
        Some(History {
            kept: "admin.analytics.getFile keeps one member file per day for 13 months, published a day or two \
                   later (Business+ and Enterprise Grid)",
            watermark: WatermarkMeaning::NewestWholeDay,
        })
    }

    /// One file per day of the window, each replacing its day's partition as the daily run does.
    fn read_past(&self, ctx: Arc<RunContext>, window: Window) -> BoxStream<'static, Result<Past>> {
        backfill_days(ctx, window.days())
    }

    fn collect(&self, ctx: Arc<RunContext>) -> BoxStream<'static, Result<Item>> {
        async move { plan_days(&ctx).await.map(|(days, wm)| (ctx, days, wm)) }
            .into_stream()
            .flat_map(|planned| match planned {
                Err(e) => stream::once(async move { Err(e) }).boxed(),
                Ok((ctx, days, watermark)) => {
                    let key = watermark_key(ctx.scope.org_key());
                    let gone = Arc::new(AtomicBool::new(false));
                    let files = stream::iter(days)
                        .flat_map(move |(day, file)| day_items(Arc::clone(&ctx), day, file, Arc::clone(&gone)));
                    let tail = stream::iter(watermark.map(|d| Ok(Item::Watermark { key, value: start_of_day(d) })));
                    files.chain(tail).boxed()
                }
            })
            .boxed()
    }
}

/// Why Slack has no member-analytics file for a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// `file_not_yet_available`: today, and the day or two before it.
    NotYetPublished,
    /// `file_not_found`: "The analytics data for the date specified weren't found".
    NotFound,
    /// `invalid_date` for a well-formed date: at the edge of what Slack keeps.
    InvalidDate,
    /// `data_not_available`: "The date was before the API became available"; so is every
    /// earlier day, so a walk back stops here.
    BeforeApi,
}

impl Missing {
    fn why(self) -> &'static str {
        match self {
            Missing::NotYetPublished => {
                "not published yet (`file_not_yet_available`: Slack publishes a day's file a day or two later)"
            }
            Missing::NotFound => {
                "no file (`file_not_found`: Slack has no member analytics for the day, as for days at the edge \
                 of the 13 months it keeps or before an upgrade to a paid plan)"
            }
            Missing::InvalidDate => {
                "no file (`invalid_date`: Slack refused the day, as it does at the edge of the 13 months it keeps)"
            }
            Missing::BeforeApi => {
                "before the API existed (`data_not_available`: the day is before admin.analytics.getFile became \
                 available, and so is every earlier day)"
            }
        }
    }
}

/// The day's file, or why Slack has none.
async fn fetch(
    client: &SlackClient,
    org_key: &str,
    day: NaiveDate,
) -> Result<std::result::Result<bytes::Bytes, Missing>> {
    let params = vec![("type", "member".to_string()), ("date", day.format("%Y-%m-%d").to_string())];
    match client.get_file(ADMIN_ANALYTICS_GET_FILE, Some(org_key), &params).await {
        Ok(b) => Ok(Ok(b)),
        Err(e @ IngestError::SlackApi { .. }) => match e.slack_code() {
            Some("file_not_yet_available") => Ok(Err(Missing::NotYetPublished)),
            Some("file_not_found") => Ok(Err(Missing::NotFound)),
            Some("invalid_date") => Ok(Err(Missing::InvalidDate)),
            Some("data_not_available") => Ok(Err(Missing::BeforeApi)),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// The days to read, newest first (the newest with its file already downloaded), and the
/// watermark to publish after them.
async fn plan_days(ctx: &RunContext) -> Result<(Vec<(NaiveDate, Option<bytes::Bytes>)>, Option<NaiveDate>)> {
    let org = ctx.scope.org_key();
    let committed = ctx
        .watermarks
        .get(&watermark_key(org))
        .and_then(|s| chrono::DateTime::from_timestamp(*s, 0))
        .map(|t| t.date_naive());
    let mut newest = None;
    for back in 1..=NEWEST_LOOKBACK {
        let Some(day) = ctx.date.checked_sub_days(Days::new(back)) else { break };
        if committed.is_some_and(|c| c >= day) {
            // Already stored; nothing newer is published yet.
            return Ok((Vec::new(), None));
        }
        if let Ok(file) = fetch(&ctx.client, org, day).await? {
            newest = Some((day, file));
            break;
        }
    }
    let Some((newest_day, file)) = newest else {
        ctx.client.record_warning(
            ADMIN_ANALYTICS_GET_FILE,
            format!("no member analytics file for the {NEWEST_LOOKBACK} days before {} yet", ctx.date),
        );
        return Ok((Vec::new(), None));
    };
    let mut days = vec![(newest_day, Some(file))];
    if let Some(committed) = committed {
        // Missed days, newest first, back to the day after the watermark, within 13 months.
        let oldest = ctx.date.checked_sub_months(Months::new(13)).map_or(committed, |d| d.max(committed));
        let mut day = newest_day.pred_opt();
        while let Some(d) = day.filter(|d| *d > oldest) {
            days.push((d, None));
            day = d.pred_opt();
        }
    }
    Ok((days, Some(newest_day)))
}

/// One day's partition and rows for the daily run. A day Slack has no file for stays
/// missing: not yet published is a note on the source; no file (`file_not_found`,
/// `invalid_date`) or before the API (`data_not_available`, which also stops the walk back
/// through older days, `gone`) is a run warning.
fn day_items(
    ctx: Arc<RunContext>,
    day: NaiveDate,
    file: Option<bytes::Bytes>,
    gone: Arc<AtomicBool>,
) -> BoxStream<'static, Result<Item>> {
    async move {
        if gone.load(Ordering::Relaxed) {
            return Ok(stream::empty().boxed());
        }
        let file = match file {
            Some(f) => Ok(f),
            None => fetch(&ctx.client, ctx.scope.org_key(), day).await?,
        };
        Ok::<_, IngestError>(match file {
            Ok(file) => file_items(&ctx, day, file),
            Err(Missing::NotYetPublished) => {
                ctx.client.record_warning(
                    ADMIN_ANALYTICS_GET_FILE,
                    format!("member analytics for {day}: {}; that day stays missing", Missing::NotYetPublished.why()),
                );
                stream::empty().boxed()
            }
            Err(missing) => {
                if missing == Missing::BeforeApi {
                    gone.store(true, Ordering::Relaxed);
                }
                let msg = format!("member analytics for {day}: {}; that day stays missing", missing.why());
                stream::once(async move { Ok(Item::Warning(msg)) }).boxed()
            }
        })
    }
    .into_stream()
    .flat_map(|r| match r {
        Ok(s) => s,
        Err(e) => stream::once(async move { Err(e) }).boxed(),
    })
    .boxed()
}

/// Past days for a backfill, newest first, each yielding the daily run's items for that day
/// (its partition declared, then the file's rows, which replace the partition); then an
/// `Item::Watermark` `analytics/<org>` at the newest day read (none when no day was). Days
/// Slack has no file for come as [`Past::Unavailable`]; once one is no longer kept, every
/// earlier day is reported the same way without asking (it is before the API existed, and the
/// method is rate limited at Tier 2).
pub(crate) fn backfill_days(ctx: Arc<RunContext>, mut days: Vec<NaiveDate>) -> BoxStream<'static, Result<Past>> {
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();
    let key = watermark_key(ctx.scope.org_key());
    let gone = Arc::new(AtomicBool::new(false));
    let newest = Arc::new(AtomicI64::new(i64::MIN));
    let seen = Arc::clone(&newest);
    let reads = stream::iter(days).flat_map(move |day| {
        let (ctx, gone, seen) = (Arc::clone(&ctx), Arc::clone(&gone), Arc::clone(&seen));
        async move {
            let missing = |m: Missing| stream::once(async move { Ok(Past::Unavailable { day, why: m.why() }) }).boxed();
            if gone.load(Ordering::Relaxed) {
                return missing(Missing::BeforeApi);
            }
            match fetch(&ctx.client, ctx.scope.org_key(), day).await {
                Err(e) => stream::once(async move { Err(e) }).boxed(),
                Ok(Err(m)) => {
                    if m == Missing::BeforeApi {
                        gone.store(true, Ordering::Relaxed);
                    }
                    missing(m)
                }
                Ok(Ok(file)) => {
                    seen.fetch_max(start_of_day(day), Ordering::Relaxed);
                    file_items(&ctx, day, file).map_ok(Past::Item).boxed()
                }
            }
        }
        .flatten_stream()
    });
    let tail = stream::once(async move {
        let value = newest.load(Ordering::Relaxed);
        (value != i64::MIN).then(|| Ok(Past::Item(Item::Watermark { key, value })))
    })
    .filter_map(std::future::ready);
    reads.chain(tail).boxed()
}

/// The partitions of `day` (declared even if the file has no rows, so a fetch replaces what
/// an earlier one stored), the file's rows, the lines it could not read into
/// `slack_member_analytics_quarantine`, and a warning naming how many there were.
fn file_items(ctx: &RunContext, day: NaiveDate, file: bytes::Bytes) -> BoxStream<'static, Result<Item>> {
    let reader = BufReader::new(GzDecoder::new(file.reader()));
    let client = Arc::clone(&ctx.client);
    let collected = micros(ctx.collected_at);
    let refused = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&refused);
    let rows = stream::try_unfold(Some((reader, 0u64)), move |state| {
        let (client, counted) = (Arc::clone(&client), Arc::clone(&counted));
        async move {
            let Some((reader, line_no)) = state else { return Ok(None) };
            let chunk = tokio::task::spawn_blocking(move || read_chunk(reader, line_no, day, collected))
                .await
                .map_err(|e| IngestError::Setup(format!("decoding member analytics: {e}")))??;
            client.record_page(ADMIN_ANALYTICS_GET_FILE, chunk.rows.as_ref().map_or(0, RecordBatch::num_rows));
            let mut items = Vec::new();
            if let Some(batch) = chunk.rows {
                items.push(Item::Rows { table: &SLACK_MEMBER_ANALYTICS, batch });
            }
            if let Some(batch) = chunk.quarantined {
                counted.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                items.push(Item::Rows { table: &SLACK_MEMBER_ANALYTICS_QUARANTINE, batch });
            }
            Ok(Some((items, chunk.reader.map(|r| (r, chunk.line_no)))))
        }
    })
    .map_ok(|items| stream::iter(items.into_iter().map(Ok::<Item, IngestError>)))
    .try_flatten();
    let partitions = stream::iter([
        Ok::<Item, IngestError>(Item::Partition { table: &SLACK_MEMBER_ANALYTICS, dt: day }),
        Ok(Item::Partition { table: &SLACK_MEMBER_ANALYTICS_QUARANTINE, dt: day }),
    ]);
    let tail = stream::once(async move {
        let n = refused.load(Ordering::Relaxed);
        (n > 0).then(|| {
            Ok(Item::Warning(format!(
                "member analytics for {day}: {n} line(s) could not be read and are in \
                 slack_member_analytics_quarantine (line number, reason, text); the day's other rows are stored"
            )))
        })
    })
    .filter_map(std::future::ready);
    partitions.chain(rows).chain(tail).boxed()
}

type Reader = BufReader<GzDecoder<bytes::buf::Reader<bytes::Bytes>>>;

/// What one chunk of a file gave.
struct Chunk {
    /// `None` once the file is exhausted.
    reader: Option<Reader>,
    /// Lines read so far (the next line's number is `line_no + 1`).
    line_no: u64,
    rows: Option<RecordBatch>,
    quarantined: Option<RecordBatch>,
}

/// The longest line text kept in the quarantine table.
const QUARANTINE_TEXT: usize = 1000;

/// Up to `CHUNK` rows. A line that is not a JSON object of the row's shape, or has no user id,
/// is quarantined with its number and reason instead of failing the file: one bad line in a
/// file of an organisation's every member must not lose the day (nor, retried, every later
/// run). A file that cannot be decompressed at all still fails.
fn read_chunk(mut reader: Reader, mut line_no: u64, day: NaiveDate, collected_at_us: i64) -> Result<Chunk> {
    let mut rows = Vec::with_capacity(CHUNK);
    let mut bad: Vec<(i64, String, String)> = Vec::new();
    let mut line = String::new();
    let mut more = true;
    while rows.len() < CHUNK {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|e| IngestError::Decode {
            method: ADMIN_ANALYTICS_GET_FILE.into(),
            detail: format!("reading the member analytics file of {day}: {e}"),
            retriable: false,
        })?;
        if n == 0 {
            more = false;
            break;
        }
        line_no += 1;
        if line.trim().is_empty() {
            continue;
        }
        let number = i64::try_from(line_no).unwrap_or(i64::MAX);
        let text = || line.trim_end().chars().take(QUARANTINE_TEXT).collect::<String>();
        match serde_json::from_str::<Row>(&line) {
            Ok(row) if row.id().is_some() => rows.push(row),
            Ok(_) => bad.push((number, "no user_id or enterprise_user_id".into(), text())),
            Err(e) => bad.push((number, format!("not a member row: {e}"), text())),
        }
    }
    let rows = if rows.is_empty() { None } else { Some(analytics_batch(&rows, day, collected_at_us)?) };
    let quarantined = if bad.is_empty() { None } else { Some(quarantine_batch(&bad, day, collected_at_us)?) };
    Ok(Chunk { reader: more.then_some(reader), line_no, rows, quarantined })
}

fn quarantine_batch(bad: &[(i64, String, String)], day: NaiveDate, collected_at_us: i64) -> Result<RecordBatch> {
    let mut date = Date32Builder::with_capacity(bad.len());
    let mut line = Int64Builder::with_capacity(bad.len());
    let (mut reason, mut record) = (StringBuilder::new(), StringBuilder::new());
    let mut collected = TimestampMicrosecondBuilder::with_capacity(bad.len()).with_timezone("UTC");
    for (n, why, text) in bad {
        date.append_value(date32(day));
        line.append_value(*n);
        reason.append_value(why);
        record.append_value(text);
        collected.append_value(collected_at_us);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(date.finish()),
        Arc::new(line.finish()),
        Arc::new(reason.finish()),
        Arc::new(record.finish()),
        Arc::new(collected.finish()),
    ];
    RecordBatch::try_new(SLACK_MEMBER_ANALYTICS_QUARANTINE.schema(), columns)
        .map_err(arrow_err(&SLACK_MEMBER_ANALYTICS_QUARANTINE))
}

/// One NDJSON line of a member file.
#[derive(Debug, Default, Deserialize)]
struct Row {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    enterprise_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    team_id: Option<String>,
    /// The id is `user_id` in Slack's sample lines and `enterprise_user_id` in its field guide
    /// ("The canonical, organization-wide user ID this row concerns"); either is accepted.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    enterprise_user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    email_address: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    is_guest: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    is_billable_seat: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    is_active_ios: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    is_active_android: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    is_active_desktop: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    is_active_apps: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    is_active_workflows: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    is_active_slack_connect: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    messages_posted_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    channel_messages_posted_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    reactions_added_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    files_added_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    search_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    date_claimed: Option<i64>,
}

impl Row {
    fn id(&self) -> Option<&str> {
        self.user_id.as_deref().or(self.enterprise_user_id.as_deref()).filter(|s| !s.is_empty())
    }
}

fn analytics_batch(rows: &[Row], day: NaiveDate, collected_at_us: i64) -> Result<RecordBatch> {
    let n = rows.len();
    let s = || StringBuilder::with_capacity(n, n * 12);
    let b = || BooleanBuilder::with_capacity(n);
    let i = || Int64Builder::with_capacity(n);
    let mut date = Date32Builder::with_capacity(n);
    let (mut ent, mut team, mut user, mut email) = (s(), s(), s(), s());
    let (mut guest, mut billable, mut active, mut ios, mut android) = (b(), b(), b(), b(), b());
    let (mut desktop, mut apps, mut workflows, mut connect) = (b(), b(), b(), b());
    let (mut messages, mut channel_messages, mut reactions, mut files, mut search) = (i(), i(), i(), i(), i());
    let ts = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut claimed, mut collected) = (ts(), ts());
    let d = date32(day);
    for r in rows {
        date.append_value(d);
        ent.append_option(r.enterprise_id.as_deref());
        team.append_option(r.team_id.as_deref());
        // read_chunk keeps only rows with an id.
        user.append_value(r.id().unwrap_or_default());
        email.append_option(r.email_address.as_deref());
        guest.append_option(r.is_guest);
        billable.append_option(r.is_billable_seat);
        active.append_option(r.is_active);
        ios.append_option(r.is_active_ios);
        android.append_option(r.is_active_android);
        desktop.append_option(r.is_active_desktop);
        apps.append_option(r.is_active_apps);
        workflows.append_option(r.is_active_workflows);
        connect.append_option(r.is_active_slack_connect);
        messages.append_option(r.messages_posted_count);
        channel_messages.append_option(r.channel_messages_posted_count);
        reactions.append_option(r.reactions_added_count);
        files.append_option(r.files_added_count);
        search.append_option(r.search_count);
        claimed.append_option(r.date_claimed.filter(|t| *t > 0).and_then(secs_to_micros));
        collected.append_value(collected_at_us);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(date.finish()),
        Arc::new(ent.finish()),
        Arc::new(team.finish()),
        Arc::new(user.finish()),
        Arc::new(email.finish()),
        Arc::new(guest.finish()),
        Arc::new(billable.finish()),
        Arc::new(active.finish()),
        Arc::new(ios.finish()),
        Arc::new(android.finish()),
        Arc::new(desktop.finish()),
        Arc::new(apps.finish()),
        Arc::new(workflows.finish()),
        Arc::new(connect.finish()),
        Arc::new(messages.finish()),
        Arc::new(channel_messages.finish()),
        Arc::new(reactions.finish()),
        Arc::new(files.finish()),
        Arc::new(search.finish()),
        Arc::new(claimed.finish()),
        Arc::new(collected.finish()),
    ];
    RecordBatch::try_new(SLACK_MEMBER_ANALYTICS.schema(), columns).map_err(arrow_err(&SLACK_MEMBER_ANALYTICS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_gzip_ndjson_file_decodes_in_chunks_with_blank_lines_skipped() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for k in 0..(CHUNK + 5) {
            writeln!(gz, r#"{{"date":"2025-01-02","user_id":"U{k}","is_active":true,"messages_posted_count":"3"}}"#)
                .unwrap();
        }
        writeln!(gz).unwrap();
        let file = bytes::Bytes::from(gz.finish().unwrap());
        let day = NaiveDate::from_ymd_opt(2025, 1, 2).unwrap();
        let reader = BufReader::new(GzDecoder::new(file.reader()));
        let first = read_chunk(reader, 0, day, 0).unwrap();
        assert_eq!(first.rows.unwrap().num_rows(), CHUNK);
        let second = read_chunk(first.reader.unwrap(), first.line_no, day, 0).unwrap();
        let rows = second.rows.unwrap();
        assert_eq!(rows.num_rows(), 5);
        assert_eq!(rows.schema(), SLACK_MEMBER_ANALYTICS.schema());
        assert!(second.reader.is_none() && second.quarantined.is_none());
    }

    #[test]
    fn bad_lines_are_quarantined_with_their_number_and_either_id_key_is_read() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        writeln!(gz, r#"{{"user_id":"U1","is_active":true}}"#).unwrap();
        writeln!(gz, r#"{{"user_id":"#).unwrap();
        writeln!(gz, r#"{{"enterprise_user_id":"W2","is_active":false}}"#).unwrap();
        writeln!(gz, r#"{{"is_active":true}}"#).unwrap();
        let file = bytes::Bytes::from(gz.finish().unwrap());
        let day = NaiveDate::from_ymd_opt(2025, 1, 2).unwrap();
        let chunk = read_chunk(BufReader::new(GzDecoder::new(file.reader())), 0, day, 0).unwrap();
        use datafusion::arrow::array::{Array, AsArray};
        let rows = chunk.rows.unwrap();
        let ids = rows.column_by_name("user_id").unwrap().as_string::<i32>();
        assert_eq!((ids.len(), ids.value(0), ids.value(1)), (2, "U1", "W2"));
        let q = chunk.quarantined.unwrap();
        assert_eq!(q.schema(), SLACK_MEMBER_ANALYTICS_QUARANTINE.schema());
        let lines = q.column_by_name("line").unwrap().as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        assert_eq!(lines.values().to_vec(), vec![2, 4]);
        let reason = q.column_by_name("reason").unwrap().as_string::<i32>();
        assert!(reason.value(0).starts_with("not a member row"), "{}", reason.value(0));
        assert_eq!(reason.value(1), "no user_id or enterprise_user_id");
    }
}
