//! Benchmark of the `last_seen` update: a lake with a year of `activity_daily` for N accounts,
//! then one daily update folded incrementally (yesterday's snapshot + today's day) against a
//! full rebuild from the whole history. Each mode is its own process so `/usr/bin/time -v`
//! reports its peak RSS. See bench/RESULTS.md for how to run it and the recorded numbers.
//!
//! ```text
//! lastseen-bench-last-seen generate DIR [ACCOUNTS] [DAYS]   write the lake (and yesterday's last_seen)
//! lastseen-bench-last-seen incremental DIR                  fold today from yesterday
//! lastseen-bench-last-seen full DIR                         rebuild today from every day
//! ```

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{Days, NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::prelude::SessionContext;
use lastseen_lake::catalog::{ACCOUNTS, ACTIVITY_DAILY, LAST_SEEN};
use lastseen_lake::{Lake, LakeTable};
use lastseen_transform::last_seen::{Sources, Step, fold};

const TODAY: (i32, u32, u32) = (2026, 6, 30);

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).expect("valid date")
}

/// splitmix64: a cheap deterministic hash, so the data is the same on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The chance that account `a` is active on a given day: 40% daily users (70% of days), 20%
/// occasional (10%), 40% dormant or never active.
fn rate(a: u64) -> u64 {
    match mix(a) % 10 {
        0..=3 => 70,
        4..=5 => 10,
        _ => 0,
    }
}

fn activity_day(accounts: u64, d: NaiveDate, n: u64) -> anyhow::Result<Option<RecordBatch>> {
    let start = d.and_hms_opt(0, 0, 0).expect("valid").and_utc().timestamp_micros();
    let (mut ids, mut ws, mut first, mut last) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in 0..accounts {
        let h = mix(a.wrapping_mul(1_000_003) ^ n);
        if h % 100 >= rate(a) {
            continue;
        }
        ids.push(format!("U{a:010}"));
        ws.push("T0000001");
        let t = start + ((h >> 8) % 86_400) as i64 * 1_000_000;
        first.push(t - ((h >> 32) % (30 * 86_400)) as i64 * 1_000_000);
        last.push(t);
    }
    if ids.is_empty() {
        return Ok(None);
    }
    let k = ids.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["slack"; k])),
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from(ws)),
        Arc::new(BooleanArray::from(vec![true; k])),
        Arc::new(StringArray::from(vec!["access_logs"; k])),
        Arc::new(TimestampMicrosecondArray::from(first).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from(last).with_timezone("UTC")),
        Arc::new(StringArray::from(vec!["access_logs"; k])),
        Arc::new(Int64Array::from(vec![None; k])),
        Arc::new(Int64Array::from(vec![None; k])),
        Arc::new(TimestampMicrosecondArray::from(vec![0; k]).with_timezone("UTC")),
    ];
    Ok(Some(RecordBatch::try_new(ACTIVITY_DAILY.schema(), cols)?))
}

/// The accounts snapshot: only the columns the fold reads are filled.
fn accounts_batch(accounts: u64) -> anyhow::Result<RecordBatch> {
    let n = accounts as usize;
    let schema = ACCOUNTS.schema();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for f in schema.fields() {
        let col: ArrayRef = match f.name().as_str() {
            "app" => Arc::new(StringArray::from(vec!["slack"; n])),
            "workspace_id" => Arc::new(StringArray::from(vec!["T0000001"; n])),
            "account_id" => Arc::new(StringArray::from((0..accounts).map(|a| format!("U{a:010}")).collect::<Vec<_>>())),
            "account_type" => Arc::new(StringArray::from(vec!["member"; n])),
            "status" => Arc::new(StringArray::from(vec!["active"; n])),
            "collected_at" => Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC")),
            _ => datafusion::arrow::array::new_null_array(f.data_type(), n),
        };
        cols.push(col);
    }
    Ok(RecordBatch::try_new(schema, cols)?)
}

async fn open(dir: &str) -> anyhow::Result<Lake> {
    std::fs::create_dir_all(dir)?;
    let path = std::fs::canonicalize(dir)?;
    let url = url::Url::from_file_path(&path).map_err(|()| anyhow::anyhow!("bad path {dir}"))?;
    Ok(Lake::open(&url, &Default::default())?)
}

fn rows(b: &[RecordBatch]) -> usize {
    b.iter().map(RecordBatch::num_rows).sum()
}

async fn generate(dir: &str, accounts: u64, days: u64) -> anyhow::Result<()> {
    let lake = open(dir).await?;
    let lease = lake.acquire_lock("bench-generate", std::time::Duration::from_secs(3600)).await?;
    let t = Instant::now();
    let mut total = 0;
    // A commit per month keeps the generator's memory at a month of rows.
    let first = today().checked_sub_days(Days::new(days - 1)).context("date")?;
    let mut d = first;
    while d <= today() {
        let mut tx = lake.begin(&lease).await?;
        for _ in 0..30 {
            if d > today() {
                break;
            }
            let n = (d - first).num_days() as u64;
            tx.declare_snapshot(&ACTIVITY_DAILY, d);
            if let Some(b) = activity_day(accounts, d, n)? {
                total += b.num_rows();
                tx.write(&ACTIVITY_DAILY, d, b)?;
            }
            d = d.succ_opt().context("date")?;
        }
        tx.commit().await?;
        eprintln!("activity_daily up to {d}: {total} rows, {:.1}s", t.elapsed().as_secs_f64());
    }
    let yesterday = today().pred_opt().context("date")?;
    let mut tx = lake.begin(&lease).await?;
    for day in [yesterday, today()] {
        tx.declare_snapshot(&ACCOUNTS, day);
        tx.write(&ACCOUNTS, day, accounts_batch(accounts)?)?;
    }
    tx.commit().await?;
    // Yesterday's last_seen, the incremental run's base.
    let base = lastseen_transform::rebuild_last_seen(&lake, yesterday, 90, Utc::now()).await?;
    let mut tx = lake.begin(&lease).await?;
    tx.declare_snapshot(&LAST_SEEN, yesterday);
    for b in base {
        tx.write(&LAST_SEEN, yesterday, b)?;
    }
    tx.commit().await?;
    lease.release().await?;
    println!(
        "generated {accounts} accounts, {days} days, {total} activity_daily rows in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn update(dir: &str, incremental: bool) -> anyhow::Result<()> {
    let lake = open(dir).await?;
    let snapshot = lake.snapshot().await?;
    let ctx = SessionContext::new();
    LakeTable::register_all(&ctx, &lake, &snapshot)?;
    let t = Instant::now();
    let step = Step {
        as_of: today(),
        base: incremental.then(|| today().pred_opt().expect("date")),
        dormant_days: 90,
        any_source: true,
        computed_at: Utc.with_ymd_and_hms(TODAY.0, TODAY.1, TODAY.2, 23, 0, 0).single().expect("valid"),
    };
    let src = Sources { activity: "activity_daily", accounts: "accounts", last_seen: "last_seen" };
    let out = fold(&ctx, src, step).await?;
    let secs = t.elapsed().as_secs_f64();
    let mode = if incremental { "incremental" } else { "full rebuild" };
    println!("{mode}: {} last_seen rows in {secs:.2}s", rows(&out));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") => {
            let dir = args.get(2).context("generate DIR [ACCOUNTS] [DAYS]")?;
            let accounts = args.get(3).map_or(Ok(500_000), |s| s.parse())?;
            let days = args.get(4).map_or(Ok(365), |s| s.parse())?;
            generate(dir, accounts, days).await
        }
        Some("incremental") => update(args.get(2).context("incremental DIR")?, true).await,
        Some("full") => update(args.get(2).context("full DIR")?, false).await,
        _ => bail!("usage: lastseen-bench-last-seen generate DIR [ACCOUNTS] [DAYS] | incremental DIR | full DIR"),
    }
}
