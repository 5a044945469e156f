//! Backfill: past days of the sources that keep history in their app, merged into the lake
//! under the lease, then the newest `last_seen` snapshot re-derived. Which sources keep
//! history, and how each is read back in time, is the source's own (`AppSource::history` and
//! `AppSource::read_past`, planned before connecting from `App::sources`); every other source
//! says it cannot be backfilled. Nothing here names an app.
//!
//! Like the daily run, a backfill always gives the lease back (failed, interrupted by
//! SIGTERM/Ctrl-C through [`Backfill::cancel`], or with a manifest that could not be written).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use indicatif::ProgressBar;
use lastseen_config::Config;
use lastseen_ingest::IngestError;
use lastseen_ingest::source::{App, History, Item, Past, RunInfo, Window, backfilled_watermark};

use crate::error::{Context, PipelineError, Result, Step};
use lastseen_lake::{Lake, LockGuard, Partitioning, RunKind, RunManifest, RunStatus, SourceStatus, Transaction};

use crate::pipeline::{
    Cancel, ConnectedSource, add_tables, committed_by, connect_all, note_part_skip, note_skip, or_cancelled,
    parts_collected, whole_source_skip, write_manifest,
};

/// A source that keeps history, with how far back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfilled {
    pub app: &'static str,
    pub source: String,
    pub history: History,
}

/// What a backfill of the enabled sources will do, known before connecting.
#[derive(Debug, Default)]
pub struct Plan {
    pub backfilled: Vec<Backfilled>,
    /// Enabled sources that serve only their current state: (app, source).
    pub not_backfillable: Vec<(&'static str, String)>,
    /// Sources that keep history but are not enabled, named when nothing enabled does.
    pub not_enabled: Vec<String>,
}

pub fn plan(apps: &[Box<dyn App>]) -> Plan {
    let mut p = Plan::default();
    for app in apps {
        for s in app.sources() {
            match (s.enabled, s.history) {
                (true, Some(history)) => p.backfilled.push(Backfilled { app: app.name(), source: s.name, history }),
                (true, None) => p.not_backfillable.push((app.name(), s.name)),
                (false, Some(_)) => p.not_enabled.push(s.name),
                (false, None) => {}
            }
        }
    }
    p
}

pub struct Backfill<'a> {
    pub config: &'a Config,
    pub lake: &'a Lake,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub progress: Option<ProgressBar>,
    /// Stops the backfill (SIGTERM/Ctrl-C); `None` runs to the end.
    pub cancel: Option<Cancel>,
}

#[derive(Debug)]
pub struct BackfillOutcome {
    pub manifest: RunManifest,
    /// The `last_seen` snapshot day re-derived, if the lake had an account snapshot.
    pub last_seen_dt: Option<NaiveDate>,
}

/// Backfill `b`'s window with the configured apps (`lastseen_ingest::apps::configured`).
pub async fn run(b: Backfill<'_>, apps: Vec<Box<dyn App>>) -> Result<BackfillOutcome> {
    if b.from > b.to {
        return Err(PipelineError::Refused(format!(
            "--from {} is after --to {}: the window must run forward",
            b.from, b.to
        )));
    }
    let today = Utc::now().date_naive();
    if b.to > today {
        return Err(PipelineError::Refused(format!("--to {} is in the future (today is {today} UTC)", b.to)));
    }
    let p = plan(&apps);
    if p.backfilled.is_empty() {
        return Err(PipelineError::Refused(format!(
            "nothing to backfill: none of the enabled sources ({}) keeps history in its app; sources that do: {}",
            p.not_backfillable.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join(", "),
            p.not_enabled.join(", ")
        )));
    }
    let started = Utc::now();
    let run_id = lastseen_lake::new_run_id(started);
    // What each app's credentials see (Slack's workspaces and organisation key, say), found
    // the way the daily run finds them; only the planned sources are read.
    let (connected, warnings) = connect_all(&apps, b.cancel.as_ref(), &run_id).await?;
    let sources: Vec<(ConnectedSource, History)> = connected
        .into_iter()
        .filter_map(|c| {
            let history = c.source.history()?;
            p.backfilled.iter().any(|h| h.source == c.source.name()).then_some((c, history))
        })
        .collect();
    // Connection warnings are about an app: said only when one of its sources is read.
    let warnings: Vec<String> =
        warnings.into_iter().filter(|(app, _)| sources.iter().any(|(c, _)| c.app == *app)).map(|(_, w)| w).collect();
    tracing::info!(run_id = %run_id, from = %b.from, to = %b.to, sources = sources.len(), "backfill started");
    let lease = b.lake.acquire_lock(&run_id, b.config.lake.lease_ttl).await.context("taking the lake lease")?;
    let start = RunManifest {
        kind: RunKind::Backfill { from: b.from, to: b.to },
        ..RunManifest::start(&run_id, b.to, started)
    };
    let work = collect_and_commit(&b, &apps, sources, warnings, &lease, start.clone());
    match or_cancelled(b.cancel.as_ref(), work).await.and_then(|r| r) {
        Ok(outcome) => {
            // The lease goes back even when the manifest cannot be written.
            let written = write_manifest(b.lake, &outcome.manifest).await;
            let released = lease.release().await;
            written.context("writing the run manifest: the backfilled days are committed, but without a manifest")?;
            released.context("releasing the lake lease")?;
            Ok(outcome)
        }
        Err(err) => {
            // The backfilled raw days stay published when their commit landed before the failure.
            let committed = committed_by(b.lake, &run_id).await;
            let err = match committed {
                Some(v) => err.context(format!(
                    "the backfilled days were committed as lake version {v}, but the backfill did not finish: \
                     last_seen is not re-derived; the next daily run re-derives the changed days"
                )),
                None => err,
            };
            let failed = RunManifest {
                finished_at: Utc::now(),
                status: RunStatus::Failed,
                lake_version: committed,
                error: Some(crate::error::render(&err)),
                ..start
            };
            if let Err(e) = write_manifest(b.lake, &failed).await {
                tracing::warn!(error = %e, "could not record the failed backfill's manifest");
            }
            if let Err(e) = lease.release().await {
                tracing::warn!(error = %e, "could not release the lake lease; it will expire");
            }
            Err(err)
        }
    }
}

/// What one source's read staged.
#[derive(Debug, Default)]
struct Staged {
    rows: u64,
    /// The `Item::Watermark`s read: per key, how far the window's read got.
    read_up_to: BTreeMap<String, i64>,
    /// Days the source had no data for, by why.
    unavailable: BTreeMap<&'static str, Vec<NaiveDate>>,
    /// Workspaces (or org-wide parts) skipped for a standing condition.
    parts_skipped: Vec<(Option<String>, IngestError)>,
    /// Run warnings the source raised (quarantined lines, say).
    warnings: Vec<String>,
}

/// Why staging a source stopped: Slack (which may only mean the source is not available to
/// this plan or token) or the lake.
enum StageError {
    Source(IngestError),
    Lake(PipelineError),
}

/// Stages every item of `reads` in `tx`, as the daily run does.
async fn stage(
    tx: &mut Transaction,
    mut reads: BoxStream<'static, Result<Past, IngestError>>,
    snapshot_dt: NaiveDate,
    pb: &ProgressBar,
    source: &str,
) -> Result<Staged, StageError> {
    let mut staged = Staged::default();
    while let Some(read) = reads.next().await {
        match read.map_err(StageError::Source)? {
            Past::Item(Item::Rows { table, batch }) => {
                staged.rows += batch.num_rows() as u64;
                pb.set_message(format!("{source}: {} rows", staged.rows));
                tx.write_spilling(table, snapshot_dt, batch)
                    .await
                    .with_context(|| format!("staging rows of {}", table.name))
                    .map_err(StageError::Lake)?;
            }
            Past::Item(Item::Partition { table, dt }) => tx.declare_partition(table, dt),
            Past::Item(Item::Skipped { workspace, error }) => staged.parts_skipped.push((workspace, error)),
            Past::Item(Item::Warning(msg)) => staged.warnings.push(msg),
            Past::Item(Item::Watermark { key, value }) => {
                let v = staged.read_up_to.entry(key).or_insert(value);
                *v = (*v).max(value);
            }
            Past::Unavailable { day, why } => staged.unavailable.entry(why).or_default().push(day),
        }
    }
    Ok(staged)
}

/// Days as `2025-05-01 to 2025-05-03, 2025-05-07`: consecutive days as one range.
fn describe_days(days: &[NaiveDate]) -> String {
    let mut sorted = days.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for d in sorted {
        match runs.last_mut() {
            Some((_, last)) if last.succ_opt() == Some(d) => *last = d,
            _ => runs.push((d, d)),
        }
    }
    runs.iter().map(|(a, z)| if a == z { a.to_string() } else { format!("{a} to {z}") }).collect::<Vec<_>>().join(", ")
}

async fn collect_and_commit(
    b: &Backfill<'_>,
    apps: &[Box<dyn App>],
    reads: Vec<(ConnectedSource, History)>,
    mut warnings: Vec<String>,
    lease: &LockGuard,
    start: RunManifest,
) -> Result<BackfillOutcome> {
    let pb = b.progress.clone().unwrap_or_else(ProgressBar::hidden);
    let mut tx = b.lake.begin(lease).await?;
    tx.set_memory_budget(b.config.lake.stage_memory);
    let info =
        Arc::new(RunInfo { date: b.to, collected_at: start.started_at, watermarks: tx.base().watermarks.clone() });
    let mut sources = BTreeMap::new();
    let window = Window { from: b.from, to: b.to };
    for (c, history) in &reads {
        let (app, source) = (&apps[c.app], c.source.as_ref());
        let name = source.name();
        let began = std::time::Instant::now();
        let result = stage(&mut tx, source.read_past(Arc::clone(&info), window), b.to, &pb, &name).await;
        let mut rep = app.report(source.methods());
        rep.app = app.name().to_owned();
        rep.duration_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(staged) => {
                rep.status = Some(SourceStatus::Collected);
                rep.rows = staged.rows;
                for msg in &staged.warnings {
                    let msg = format!("{name}: {msg}");
                    tracing::warn!("{msg}");
                    warnings.push(msg);
                }
                for (workspace, e) in &staged.parts_skipped {
                    note_part_skip(&name, workspace.clone(), e, &mut rep.skipped, &mut warnings);
                }
                // Parts known to be skipped (a Slack workspace not granted; the connection
                // warned about it once).
                rep.skipped.extend(source.known_skips());
                rep.workspaces = parts_collected(&source.parts(), &rep.skipped);
                for (key, read_up_to) in staged.read_up_to {
                    let committed = tx.base().watermarks.get(&key).copied();
                    if let Some(wm) = backfilled_watermark(committed, Some(read_up_to), history.joins_from(b.from)) {
                        tx.set_watermark(key, wm);
                    }
                }
                for (why, days) in &staged.unavailable {
                    let msg = format!(
                        "{name}: no data for {} day(s) of the window, {}: {why}; those days stay missing",
                        days.len(),
                        describe_days(days)
                    );
                    tracing::warn!("{msg}");
                    warnings.push(msg);
                }
            }
            // The plan, scopes or token type cannot serve this source: drop what it staged and
            // go on with the others, as the daily run does.
            Err(StageError::Source(e)) if e.is_capability() => {
                for t in source.tables() {
                    tx.discard(t);
                }
                note_skip(source, &e, &mut warnings);
                rep.status = Some(SourceStatus::Skipped);
                rep.error = Some(e.to_string());
                rep.duration_ms = 0;
                rep.skipped.push(whole_source_skip(&e));
            }
            Err(StageError::Source(e)) => {
                return Err(e.step(format!("reading {} to {} of source `{name}` ({})", b.from, b.to, c.what())));
            }
            Err(StageError::Lake(e)) => return Err(e),
        }
        sources.insert(name, rep);
    }
    pb.set_message("committing");
    let raw = tx.commit().await.context("committing the backfilled days")?;
    let mut tables = BTreeMap::new();
    add_tables(&mut tables, &raw);
    let mut lake_version = Some(raw.version);

    // last_seen reads the whole history up to its day, so the newest snapshot is the one
    // backfilled evidence can change; older snapshots keep what was known on their day. The
    // account snapshots (every app's, guarded against mass change) say which day that is.
    let snapshot = b.lake.snapshot().await.context("reading the lake's commit log")?;
    let last_seen_dt = lastseen_lake::catalog::TABLES
        .iter()
        .filter(|t| t.mass_change_guard && t.partitioning == Partitioning::Snapshot)
        .filter_map(|t| snapshot.dates(t.name).last().copied())
        .max();
    match last_seen_dt {
        Some(dt) => {
            pb.set_message("deriving last_seen");
            let options = lastseen_transform::DeriveOptions::from_config(b.config);
            let derived = lastseen_transform::derive_all(b.lake, lease, &[dt], Utc::now(), &options)
                .await
                .with_context(|| format!("re-deriving last_seen for dt={dt}"))?;
            for w in &derived.warnings {
                tracing::warn!("{w}");
            }
            let derived = derived.summary;
            add_tables(&mut tables, &derived);
            lake_version = Some(derived.version);
        }
        None => tracing::info!("no account snapshot yet: last_seen is derived by the first daily run"),
    }
    let manifest = RunManifest {
        finished_at: Utc::now(),
        status: if warnings.is_empty() { RunStatus::Succeeded } else { RunStatus::Partial },
        lake_version,
        sources,
        tables,
        warnings,
        ..start
    };
    tracing::info!(run_id = %manifest.run_id, status = ?manifest.status, "backfill finished");
    Ok(BackfillOutcome { manifest, last_seen_dt })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lastseen_ingest::source::WatermarkMeaning;

    fn apps(toml: &str) -> Vec<Box<dyn App>> {
        let cfg = Config::from_toml_str(toml, "test", Vec::<(String, String)>::new()).unwrap();
        vec![lastseen_ingest::apps::slack(&cfg, secrecy::SecretString::from("xoxp-test")).unwrap()]
    }

    fn names(p: &Plan) -> (Vec<&str>, Vec<&str>) {
        (
            p.backfilled.iter().map(|h| h.source.as_str()).collect(),
            p.not_backfillable.iter().map(|(_, s)| s.as_str()).collect(),
        )
    }

    #[test]
    fn only_sources_listed_as_keeping_history_are_backfilled() {
        let p = plan(&apps(""));
        let history = ["access_logs", "analytics", "audit"];
        assert_eq!(names(&p).0, history);
        assert!(p.backfilled.iter().all(|h| h.app == "slack"));
        assert_eq!(
            p.backfilled.iter().map(|h| h.history.watermark).collect::<Vec<_>>(),
            [WatermarkMeaning::NewestEvent, WatermarkMeaning::NewestWholeDay, WatermarkMeaning::NewestEvent]
        );
        assert!(p.backfilled.iter().all(|h| !h.history.kept.is_empty()));
        // Every other default source serves only its current state.
        let cfg = Config::from_toml_str("", "test", Vec::<(String, String)>::new()).unwrap();
        let others: Vec<String> =
            cfg.slack.sources.iter().map(|s| s.to_string()).filter(|s| !history.contains(&s.as_str())).collect();
        assert!(others.iter().any(|s| s == "users") && others.iter().any(|s| s == "billing"));
        assert_eq!(names(&p).1, others);
        assert!(p.not_enabled.is_empty());

        // A configured subset keeps its order, split the same way; the history sources left
        // out are named for the refusal when nothing enabled keeps history.
        let p = plan(&apps("[slack]\nsources = [\"audit\", \"users\", \"analytics\"]\n"));
        assert_eq!(names(&p), (vec!["audit", "analytics"], vec!["users"]));
        assert_eq!(p.not_enabled, ["access_logs"]);
    }

    #[test]
    fn unavailable_days_are_named_as_ranges() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let days = [d("2025-05-29"), d("2025-05-27"), d("2025-05-28"), d("2025-06-01"), d("2025-05-28")];
        assert_eq!(describe_days(&days), "2025-05-27 to 2025-05-29, 2025-06-01");
        assert_eq!(describe_days(&[d("2024-12-31")]), "2024-12-31");
        assert_eq!(describe_days(&[d("2024-12-31"), d("2025-01-01")]), "2024-12-31 to 2025-01-01");
    }
}
