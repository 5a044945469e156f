//! The member-analytics collector: `admin.analytics.getFile` type=member, one gzip NDJSON file
//! per UTC day. A run reads the newest available day plus every day missed since the committed
//! watermark `analytics/<enterprise or team>` (within Slack's 13 months), each day replacing its
//! `slack_member_analytics` partition. Files are decoded in chunks off the async threads.
//! [`backfill_days`] reads chosen past days the same way, for `lastseen backfill`.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

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
use lastseen_lake::catalog::{SLACK_MEMBER_ANALYTICS, date32};
use serde::Deserialize;

use crate::client::SlackClient;
use crate::error::{IngestError, Result};
use crate::slack::collector::{Collector, Item, Past, RunContext, arrow_err, start_of_day};
use crate::slack::models::lenient;
use crate::slack::{micros, secs_to_micros};

pub const ADMIN_ANALYTICS_GET_FILE: &str = "admin.analytics.getFile";
/// Rows per Arrow batch while decoding a file.
const CHUNK: usize = 8192;
/// How many days back from the run day to look for the newest file (Slack publishes a day's
/// file a day or two later).
const NEWEST_LOOKBACK: u64 = 3;

pub fn watermark_key(org_key: &str) -> String {
    format!("analytics/{org_key}")
}

static TABLES: [&TableDef; 1] = [&SLACK_MEMBER_ANALYTICS];

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

    fn collect(&self, ctx: Arc<RunContext>) -> BoxStream<'static, Result<Item>> {
        async move { plan_days(&ctx).await.map(|(days, wm)| (ctx, days, wm)) }
            .into_stream()
            .flat_map(|planned| match planned {
                Err(e) => stream::once(async move { Err(e) }).boxed(),
                Ok((ctx, days, watermark)) => {
                    let key = watermark_key(ctx.scope.org_key());
                    let files = stream::iter(days).flat_map(move |(day, file)| day_items(Arc::clone(&ctx), day, file));
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
    /// `data_not_available`: older than the 13 months Slack keeps, and so is every earlier day.
    NoLongerKept,
}

impl Missing {
    fn why(self) -> &'static str {
        match self {
            Missing::NotYetPublished => {
                "not published yet (`file_not_yet_available`: Slack publishes a day's file a day or two later)"
            }
            Missing::NoLongerKept => {
                "no longer kept (`data_not_available`: Slack keeps member analytics for 13 months)"
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
        Err(e) if e.slack_code() == Some("file_not_yet_available") => Ok(Err(Missing::NotYetPublished)),
        Err(e) if e.slack_code() == Some("data_not_available") => Ok(Err(Missing::NoLongerKept)),
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

/// One day's partition and rows for the daily run: a day Slack has no file for is a warning on
/// the source, and stays missing.
fn day_items(ctx: Arc<RunContext>, day: NaiveDate, file: Option<bytes::Bytes>) -> BoxStream<'static, Result<Item>> {
    async move {
        let file = match file {
            Some(f) => Ok(f),
            None => fetch(&ctx.client, ctx.scope.org_key(), day).await?,
        };
        Ok::<_, IngestError>(match file {
            Ok(file) => file_items(&ctx, day, file),
            Err(missing) => {
                ctx.client.record_warning(
                    ADMIN_ANALYTICS_GET_FILE,
                    format!("member analytics for {day}: {}; that day stays missing", missing.why()),
                );
                stream::empty().boxed()
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
/// earlier day is reported the same way without asking (Slack keeps 13 months, and the method
/// is rate limited at Tier 2).
pub fn backfill_days(ctx: Arc<RunContext>, mut days: Vec<NaiveDate>) -> BoxStream<'static, Result<Past>> {
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
                return missing(Missing::NoLongerKept);
            }
            match fetch(&ctx.client, ctx.scope.org_key(), day).await {
                Err(e) => stream::once(async move { Err(e) }).boxed(),
                Ok(Err(m)) => {
                    if m == Missing::NoLongerKept {
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

/// The partition of `day` (declared even if the file has no rows) and the file's rows.
fn file_items(ctx: &RunContext, day: NaiveDate, file: bytes::Bytes) -> BoxStream<'static, Result<Item>> {
    let reader = BufReader::new(GzDecoder::new(file.reader()));
    let client = Arc::clone(&ctx.client);
    let collected = micros(ctx.collected_at);
    let rows = stream::try_unfold(Some(reader), move |reader| {
        let client = Arc::clone(&client);
        async move {
            let Some(reader) = reader else { return Ok(None) };
            let (reader, rows) = tokio::task::spawn_blocking(move || read_chunk(reader, day, collected))
                .await
                .map_err(|e| IngestError::Setup(format!("decoding member analytics: {e}")))??;
            client.record_page(ADMIN_ANALYTICS_GET_FILE, rows.as_ref().map_or(0, RecordBatch::num_rows));
            Ok(rows.map(|batch| (Item::Rows { table: &SLACK_MEMBER_ANALYTICS, batch }, reader)))
        }
    });
    let partition = stream::once(async move { Ok(Item::Partition { table: &SLACK_MEMBER_ANALYTICS, dt: day }) });
    partition.chain(rows).boxed()
}

type Reader = BufReader<GzDecoder<bytes::buf::Reader<bytes::Bytes>>>;

/// Up to `CHUNK` rows; `None` reader once the file is exhausted.
fn read_chunk(
    mut reader: Reader,
    day: NaiveDate,
    collected_at_us: i64,
) -> Result<(Option<Reader>, Option<RecordBatch>)> {
    let mut rows = Vec::with_capacity(CHUNK);
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
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(&line).map_err(|e| IngestError::Decode {
            method: ADMIN_ANALYTICS_GET_FILE.into(),
            detail: format!("a row of the member analytics file of {day}: {e}"),
            retriable: false,
        })?;
        rows.push(row);
    }
    let batch = if rows.is_empty() { None } else { Some(analytics_batch(&rows, day, collected_at_us)?) };
    Ok((more.then_some(reader), batch))
}

/// One NDJSON line of a member file.
#[derive(Debug, Default, Deserialize)]
struct Row {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    enterprise_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    team_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    user_id: String,
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
        user.append_value(&r.user_id);
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
        let (reader, first) = read_chunk(reader, day, 0).unwrap();
        assert_eq!(first.unwrap().num_rows(), CHUNK);
        let (reader, second) = read_chunk(reader.unwrap(), day, 0).unwrap();
        let second = second.unwrap();
        assert_eq!(second.num_rows(), 5);
        assert_eq!(second.schema(), SLACK_MEMBER_ANALYTICS.schema());
        assert!(reader.is_none());
    }
}
