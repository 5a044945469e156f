//! `lastseen tables`: what the lake holds per table and the last successful run, read from the
//! commit log and the run manifests only (no data file is opened).

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use datafusion::arrow::array::{ArrayRef, Date32Array, StringArray, TimestampMicrosecondArray, UInt64Array};
use datafusion::arrow::record_batch::RecordBatch;
use lastseen_lake::{RunManifest, RunStatus, Snapshot, TABLES};

use crate::cli::{Format, GlobalArgs, TablesArgs};

pub async fn run(g: &GlobalArgs, args: &TablesArgs) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    let lake = super::open_lake(&cfg)?;
    let snapshot = lake.snapshot().await.context("reading the lake's commit log")?;
    let runs = lake.run_manifests().await.context("reading the run manifests in _lastseen/runs")?;
    // Partial runs committed their data (a source was skipped), so they count as successful.
    let last = runs.iter().filter(|r| r.status != RunStatus::Failed).max_by_key(|r| r.finished_at);

    let tables = tables_columns(&snapshot);
    let run = run_columns(last);
    // Built in memory (one row per table) and written the way exports are: a planted symlink
    // at --output is refused, the file is owner-only and appears whole or not at all.
    let mut out: Vec<u8> = Vec::new();
    match args.output.format {
        Format::Table => {
            lastseen_query::format::write(&[batch(tables)?], Format::Table.into(), &mut out)?;
            match last {
                Some(_) => {
                    writeln!(out, "last successful run:")?;
                    lastseen_query::format::write(&[batch(run)?], Format::Table.into(), &mut out)?;
                }
                None => writeln!(out, "no successful run yet: `lastseen run` commits the first day")?,
            }
        }
        // One self-contained row per table, so the output stays one CSV table / one kind of
        // JSON object.
        format => {
            let n = TABLES.len();
            let mut cols = tables;
            for (name, col) in run {
                let repeated = datafusion::arrow::compute::take(
                    col.as_ref(),
                    &datafusion::arrow::array::UInt32Array::from(vec![0; n]),
                    None,
                )
                .context("repeating the last run's columns")?;
                cols.push((format!("last_run_{name}"), repeated));
            }
            lastseen_query::format::write(&[batch(cols)?], format.into(), &mut out)?;
        }
    }
    match &args.output.output {
        Some(path) => lastseen_query::export::save_bytes(path, &out)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&out).and_then(|()| stdout.flush()).map_err(crate::stdout::error)?;
        }
    }
    Ok(crate::exit::OK)
}

type Columns = Vec<(String, ArrayRef)>;

fn batch(cols: Columns) -> anyhow::Result<RecordBatch> {
    RecordBatch::try_from_iter(cols).context("assembling the tables listing")
}

fn days(d: NaiveDate) -> i32 {
    // Date32 counts days from the Unix epoch; every NaiveDate the lake holds fits.
    i32::try_from((d - NaiveDate::default()).num_days()).unwrap_or(i32::MAX)
}

/// One row per catalog table, empty tables included, so the listing also says what is missing.
fn tables_columns(s: &Snapshot) -> Columns {
    let mut name = Vec::new();
    let (mut partitions, mut rows, mut bytes, mut files) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for def in TABLES {
        let parts = s.table(def.name).map(|t| &t.partitions);
        name.push(def.name);
        partitions.push(parts.map_or(0, |p| p.len() as u64));
        first.push(parts.and_then(|p| p.keys().next()).copied().map(days));
        last.push(parts.and_then(|p| p.keys().next_back()).copied().map(days));
        let all = parts.into_iter().flat_map(|p| p.values());
        rows.push(all.clone().map(|p| p.rows).sum::<u64>());
        bytes.push(all.clone().flat_map(|p| &p.files).map(|f| f.bytes).sum::<u64>());
        files.push(all.map(|p| p.files.len() as u64).sum::<u64>());
    }
    vec![
        ("table".into(), Arc::new(StringArray::from(name)) as ArrayRef),
        ("partitions".into(), Arc::new(UInt64Array::from(partitions))),
        ("first_dt".into(), Arc::new(Date32Array::from(first))),
        ("last_dt".into(), Arc::new(Date32Array::from(last))),
        ("rows".into(), Arc::new(UInt64Array::from(rows))),
        ("bytes".into(), Arc::new(UInt64Array::from(bytes))),
        ("files".into(), Arc::new(UInt64Array::from(files))),
    ]
}

/// The last successful run as one row (all nulls when there is none).
fn run_columns(m: Option<&RunManifest>) -> Columns {
    let status = m.map(|m| match m.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Partial => "partial",
        RunStatus::Failed => "failed",
    });
    vec![
        ("id".into(), Arc::new(StringArray::from(vec![m.map(|m| m.run_id.clone())])) as ArrayRef),
        ("date".into(), Arc::new(Date32Array::from(vec![m.map(|m| days(m.date))]))),
        (
            "finished_at".into(),
            Arc::new(
                TimestampMicrosecondArray::from(vec![m.map(|m| m.finished_at.timestamp_micros())]).with_timezone("UTC"),
            ),
        ),
        ("status".into(), Arc::new(StringArray::from(vec![status]))),
        ("warnings".into(), Arc::new(StringArray::from(vec![m.map(|m| m.warnings.join("; "))]))),
    ]
}
