//! One daily run, end to end, as a library call (`run_day`): connect every configured app
//! (each checks its credentials and discovers what they see), probe every source of every app
//! at once, stream the available ones concurrently into one lake transaction (spilling to
//! staging files by size), commit the raw tables with their watermarks, derive `last_seen`,
//! and record one run manifest with every app's sources. Shared by `run`, `demo` and `daemon`,
//! and callable in-process by tests and benches.
//!
//! The apps come built (`lastseen_ingest::apps::configured`: each holds its own client, budgets
//! and counters) and are driven only through the app-agnostic interface
//! (`lastseen_ingest::source`: `App`, `AppSource`, `RunInfo`); nothing here names an app. A
//! source the app marks `required` that cannot run refuses the run, naming app and source.
//!
//! A run ends one of three ways, and always gives the lease back: committed (manifest written),
//! failed, or interrupted (SIGTERM/Ctrl-C through [`DayRun::cancel`]). The lake moves only by
//! whole versions, so a failed or interrupted run published nothing unless its raw commit had
//! landed before the failure; the error and the manifest then name that version.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use futures::future::{BoxFuture, Shared};
use indicatif::ProgressBar;
use lastseen_config::Config;
use lastseen_ingest::IngestError;
use lastseen_ingest::source::{App, AppSource, Item, Probe, RunInfo};
use lastseen_lake::{
    CommitSummary, Lake, Partitioning, RunManifest, RunStatus, SkipReport, SourceReport, SourceStatus, TableReport,
};

use crate::error::{Context, PipelineError, Result, Step};

type IngestResult<T> = std::result::Result<T, IngestError>;

/// Resolves when the run must stop (SIGTERM or Ctrl-C); shared so every stage can wait on it.
pub type Cancel = Shared<BoxFuture<'static, ()>>;

/// `fut`, unless `cancel` resolves first: then [`PipelineError::Interrupted`]. Dropping `fut`
/// at an await point is safe for the lake: a version is published by one create-only put, so
/// it either landed or did not.
pub(crate) async fn or_cancelled<T>(cancel: Option<&Cancel>, fut: impl std::future::Future<Output = T>) -> Result<T> {
    match cancel {
        None => Ok(fut.await),
        Some(c) => tokio::select! {
            biased;
            () = c.clone() => Err(PipelineError::Interrupted),
            v = fut => Ok(v),
        },
    }
}

pub struct DayRun<'a> {
    pub config: &'a Config,
    pub lake: &'a Lake,
    pub date: NaiveDate,
    pub dry_run: bool,
    pub progress: Option<ProgressBar>,
    /// Stops the run (`run` passes SIGTERM/Ctrl-C); `None` runs to the end.
    pub cancel: Option<Cancel>,
}

/// What a run produced; `manifest.status` says whether every source worked.
#[derive(Debug)]
pub struct DayOutcome {
    pub manifest: RunManifest,
    /// Rows staged per table when `dry_run` (nothing was written).
    pub dry_run_rows: BTreeMap<String, u64>,
}

/// One connected source, with the index of its app in the run's apps.
pub(crate) struct ConnectedSource {
    pub app: usize,
    pub source: Box<dyn AppSource>,
}

impl ConnectedSource {
    /// `slack: users.list, …`: the app and the counter labels, for messages.
    pub fn what(&self) -> String {
        format!("{}: {}", self.source.app(), self.source.methods().join(", "))
    }
}

/// Every app connected, concurrently: its sources in order (apps in the given order), and the
/// warnings the connections raised, each with the index of its app (said once; they make the
/// run partial).
pub(crate) async fn connect_all(
    apps: &[Box<dyn App>],
    cancel: Option<&Cancel>,
    run_id: &str,
) -> Result<(Vec<ConnectedSource>, Vec<(usize, String)>)> {
    let connections = or_cancelled(cancel, futures::future::join_all(apps.iter().map(|a| a.connect()))).await?;
    let mut sources: Vec<ConnectedSource> = Vec::new();
    let mut warnings = Vec::new();
    for (i, (app, connected)) in apps.iter().zip(connections).enumerate() {
        let c = connected
            .with_context(|| format!("connecting to {}: checking its credentials and what they can see", app.name()))?;
        tracing::info!(run_id = %run_id, app = app.name(), "connected: {}", c.describe);
        for w in c.warnings {
            tracing::warn!(app = app.name(), "{w}");
            warnings.push((i, w));
        }
        for source in c.sources {
            let name = source.name();
            if let Some(other) = sources.iter().find(|o| o.source.name() == name) {
                return Err(PipelineError::Refused(format!(
                    "two sources are named `{name}` ({} and {}): a source's name is its key in the run manifest \
                     and must be unique across apps",
                    other.source.app(),
                    source.app()
                )));
            }
            sources.push(ConnectedSource { app: i, source });
        }
    }
    Ok((sources, warnings))
}

/// Run one day with the configured apps (`lastseen_ingest::apps::configured`: each app's
/// client holds its secret, so no other copy of it outlives the call).
pub async fn run_day(run: DayRun<'_>, apps: Vec<Box<dyn App>>) -> Result<DayOutcome> {
    let started = Utc::now();
    let run_id = lastseen_lake::new_run_id(started);
    // A required source the configuration leaves out: refused before anything is read.
    for app in &apps {
        if let Some(s) = app.sources().into_iter().find(|s| s.required && !s.enabled) {
            let (app, name) = (app.name(), s.name);
            return Err(PipelineError::Refused(format!(
                "config `{app}.sources` must include `{name}`: the {app} source `{name}` is required, every other \
                 {app} table is keyed on it"
            )));
        }
    }
    let (sources, warnings) = connect_all(&apps, run.cancel.as_ref(), &run_id).await?;
    let warnings: Vec<String> = warnings.into_iter().map(|(_, w)| w).collect();
    tracing::info!(run_id = %run_id, date = %run.date, apps = apps.len(), sources = sources.len(), "run started");
    let methods: Vec<(usize, String, &'static [&'static str])> =
        sources.iter().map(|c| (c.app, c.source.name(), c.source.methods())).collect();

    let lease = if run.dry_run {
        None
    } else {
        Some(run.lake.acquire_lock(&run_id, run.config.lake.lease_ttl).await.context("taking the lake lease")?)
    };
    let work = collect_and_commit(&run, &run_id, started, &apps, sources, warnings, lease.as_ref());
    let result = or_cancelled(run.cancel.as_ref(), work).await.and_then(|r| r);
    let outcome = match result {
        Ok(o) => o,
        Err(err) => {
            let Some(lease) = lease else { return Err(err) };
            // A raw commit that landed before the failure stays published (a whole version;
            // the next run re-derives from it): say so rather than suggest nothing changed.
            let committed = committed_by(run.lake, &run_id).await;
            let err = match committed {
                Some(v) => err.context(format!(
                    "the raw tables of {date} were committed as lake version {v}, but the run did not finish: \
                     last_seen and the other derived tables for {date} are not updated; re-run \
                     `lastseen run --date {date}`",
                    date = run.date
                )),
                None => err,
            };
            let manifest = RunManifest {
                finished_at: Utc::now(),
                status: RunStatus::Failed,
                lake_version: committed,
                error: Some(crate::error::render(&err)),
                sources: source_reports_on_failure(&apps, &methods),
                ..RunManifest::start(&run_id, run.date, started)
            };
            if let Err(e) = write_manifest(run.lake, &manifest).await {
                tracing::warn!(error = %e, "could not record the failed run's manifest");
            }
            if let Err(e) = lease.release().await {
                tracing::warn!(error = %e, "could not release the lake lease; it will expire");
            }
            return Err(err);
        }
    };
    if let Some(lease) = lease {
        // The lease goes back whether or not the manifest could be written: a lost manifest
        // must not block the next run (on another host) for the lease's lifetime.
        let written = write_manifest(run.lake, &outcome.manifest).await;
        let released = lease.release().await;
        written.with_context(|| {
            format!(
                "writing the run manifest: the day is committed (lake version {}), but without its manifest \
                 `lastseen tables` and the daemon's catch-up do not know it ran",
                outcome.manifest.lake_version.map_or_else(|| "none".into(), |v| v.to_string())
            )
        })?;
        released.context("releasing the lake lease")?;
    }
    Ok(outcome)
}

/// The newest lake version, if `run_id` published it (its raw commit landed before a failure).
pub(crate) async fn committed_by(lake: &Lake, run_id: &str) -> Option<u64> {
    match lake.snapshot().await {
        Ok(s) if s.run_id.as_deref() == Some(run_id) => Some(s.version),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the commit log to see whether the failed run committed");
            None
        }
    }
}

/// Writes a run manifest, retrying a few times: a transient store error must not lose the record
/// of a committed day.
pub(crate) async fn write_manifest(lake: &Lake, m: &RunManifest) -> lastseen_lake::Result<()> {
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        match lake.write_run_manifest(m).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= 3 => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, attempt, "writing the run manifest failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
}

/// The counters of a failed run, so its manifest still shows what was called and retried.
fn source_reports_on_failure(
    apps: &[Box<dyn App>],
    methods: &[(usize, String, &'static [&'static str])],
) -> BTreeMap<String, SourceReport> {
    methods
        .iter()
        .map(|(app, name, m)| {
            let mut rep = apps[*app].report(m);
            rep.app = apps[*app].name().to_owned();
            (name.clone(), rep)
        })
        .filter(|(_, r)| r.calls > 0)
        .collect()
}

/// What one source did during the run.
struct SourceRun {
    app: usize,
    source: Box<dyn AppSource>,
    /// `source.name()`, its key in the manifest and in messages.
    name: String,
    rows: u64,
    watermarks: Vec<(String, i64)>,
    started: Instant,
    finished: Option<Instant>,
    skipped: Option<IngestError>,
    /// Parts (workspaces, org-wide parts) skipped for a standing condition while the rest of
    /// the source was collected, and those known to be skipped before it started.
    parts_skipped: Vec<SkipReport>,
}

impl SourceRun {
    /// `slack: users.list, …`: the app and the counter labels, for messages.
    fn what(&self) -> String {
        format!("{}: {}", self.source.app(), self.source.methods().join(", "))
    }
}

#[allow(clippy::too_many_arguments)]
async fn collect_and_commit(
    run: &DayRun<'_>,
    run_id: &str,
    started: DateTime<Utc>,
    apps: &[Box<dyn App>],
    sources: Vec<ConnectedSource>,
    mut warnings: Vec<String>,
    lease: Option<&lastseen_lake::LockGuard>,
) -> Result<DayOutcome> {
    let base = run.lake.snapshot().await.context("reading the lake's commit log")?;
    let pb = run.progress.clone().unwrap_or_else(ProgressBar::hidden);
    let info = Arc::new(RunInfo { date: run.date, collected_at: started, watermarks: base.watermarks.clone() });

    // Probe every source of every app at once: one cheap call each tells whether the plan,
    // the scopes and the token type can serve it.
    pb.set_message("probing sources");
    let probes = futures::future::join_all(sources.into_iter().map(|c| {
        let info = Arc::clone(&info);
        async move {
            let p = c.source.probe(&info).await;
            (c, p)
        }
    }))
    .await;
    let mut runs: Vec<SourceRun> = Vec::new();
    for (c, probed) in probes {
        let name = c.source.name();
        let skipped = match probed {
            Ok(Probe::Works) => None,
            Ok(Probe::Unavailable(e)) => Some(e),
            Err(e) => return Err(e.step(format!("probing source `{name}` ({})", c.what()))),
        };
        if let Some(e) = &skipped {
            note_skip(c.source.as_ref(), e, &mut warnings);
        }
        // Parts known to be skipped before collecting (a Slack workspace the org-wide app was
        // not granted; the connection warned about it once).
        let parts_skipped = if skipped.is_none() { c.source.known_skips() } else { Vec::new() };
        runs.push(SourceRun {
            app: c.app,
            source: c.source,
            name,
            rows: 0,
            watermarks: Vec::new(),
            started: Instant::now(),
            finished: None,
            skipped,
            parts_skipped,
        });
    }
    if let Some(r) = runs.iter().find(|r| r.source.required() && r.skipped.is_some()) {
        let (app, name) = (r.source.app(), &r.name);
        let e = r.skipped.as_ref().map(ToString::to_string).unwrap_or_default();
        return Err(PipelineError::Refused(format!(
            "the {app} source `{name}` cannot run, and every other {app} table is keyed on it: {e}"
        )));
    }

    // Every available source streams into one channel; each runs in its own task so decoding
    // and Arrow building use every core, while each app's client caps its requests in flight
    // and paces its rate buckets.
    // The tasks are joined after the channel closes: a task that panicked also closes its end,
    // and without the join its source would look finished and a truncated snapshot would be
    // committed. Dropping the set (an early return) aborts the collectors.
    let collect_started = Instant::now();
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<(usize, IngestResult<Item>)>(16);
    let mut tasks = tokio::task::JoinSet::new();
    let mut task_source = BTreeMap::new();
    for (i, r) in runs.iter_mut().enumerate().filter(|(_, r)| r.skipped.is_none()) {
        let mut stream = r.source.collect(Arc::clone(&info));
        let sender = sender.clone();
        let panic_after_first_item = failpoint_collector_panic(&r.name);
        r.started = Instant::now();
        let handle = tasks.spawn(async move {
            while let Some(item) = stream.next().await {
                let failed = item.is_err();
                if sender.send((i, item)).await.is_err() || failed {
                    break;
                }
                if panic_after_first_item {
                    panic!("failpoint collector_panic: the collector panicked after its first item");
                }
            }
        });
        task_source.insert(handle.id(), i);
    }
    drop(sender);

    let mut tx = match lease {
        Some(lease) => {
            let mut tx = run.lake.begin(lease).await?;
            tx.guard_snapshots(run.config.lake.max_snapshot_drop);
            tx.set_memory_budget(run.config.lake.stage_memory);
            Some(tx)
        }
        None => None,
    };
    let mut dry_run_rows: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    while let Some((i, item)) = receiver.recv().await {
        let r = &mut runs[i];
        match item {
            Ok(Item::Rows { table, batch }) => {
                let n = batch.num_rows() as u64;
                r.rows += n;
                total += n;
                pb.set_message(format!("{}: {} rows ({total} in all)", r.name, r.rows));
                match tx.as_mut() {
                    Some(tx) => tx
                        .write_spilling(table, run.date, batch)
                        .await
                        .with_context(|| format!("staging rows of {}", table.name))?,
                    None => *dry_run_rows.entry(table.name.to_string()).or_default() += n,
                }
                // A crash in the middle of collecting: this source's first rows are staged, it
                // has not finished, nothing is committed and no watermark has moved. Checked on
                // the source's first batch only, off the per-batch path.
                if r.rows == n {
                    lastseen_lake::failpoint(&format!("mid_collection:{}", r.name));
                }
            }
            Ok(Item::Partition { table, dt }) => {
                if let Some(tx) = tx.as_mut() {
                    tx.declare_partition(table, dt);
                }
            }
            Ok(Item::Watermark { key, value }) => r.watermarks.push((key, value)),
            Ok(Item::Warning(msg)) => {
                let msg = format!("{}: {msg}", r.name);
                tracing::warn!("{msg}");
                warnings.push(msg);
            }
            Ok(Item::Skipped { workspace, error }) => {
                note_part_skip(&r.name, workspace, &error, &mut r.parts_skipped, &mut warnings);
            }
            // The plan or token turned out not to cover this source half-way (one workspace
            // of several, say): drop what it staged and skip it, like a failed probe.
            Err(e) if e.is_capability() => {
                if let Some(tx) = tx.as_mut() {
                    for t in r.source.tables() {
                        tx.discard(t);
                    }
                }
                note_skip(r.source.as_ref(), &e, &mut warnings);
                r.skipped = Some(e);
                r.finished = Some(Instant::now());
            }
            Err(e) => return Err(e.step(format!("collecting source `{}` ({})", r.name, r.what()))),
        }
    }
    let done = Instant::now();
    while let Some(joined) = tasks.join_next().await {
        let Err(e) = joined else { continue };
        let r = task_source.get(&e.id()).map(|&i| &runs[i]);
        let (source, what) = r.map(|r| (r.name.clone(), r.what())).unwrap_or_default();
        let why = if e.is_panic() { format!("panicked: {}", panic_text(e.into_panic())) } else { e.to_string() };
        return Err(PipelineError::Refused(format!(
            "the collector of source `{source}` ({what}) {why}; its data may be incomplete, so nothing was committed"
        )));
    }

    let mut sources = BTreeMap::new();
    for r in &mut runs {
        let app = &apps[r.app];
        let mut rep = app.report(r.source.methods());
        rep.app = app.name().to_owned();
        rep.rows = r.rows;
        rep.duration_ms =
            u64::try_from(r.finished.unwrap_or(done).duration_since(r.started).as_millis()).unwrap_or(u64::MAX);
        rep.workspaces = parts_collected(&r.source.parts(), &r.parts_skipped);
        // Parts skipped today (not granted included) keep their previous rows in the day's
        // snapshot, and the mass-change guard compares like with like (DESIGN §2).
        let skipped_ids: Vec<String> = r.parts_skipped.iter().filter_map(|p| p.workspace.clone()).collect();
        rep.skipped = std::mem::take(&mut r.parts_skipped);
        match &r.skipped {
            Some(e) => {
                rep.status = Some(SourceStatus::Skipped);
                rep.error = Some(e.to_string());
                rep.duration_ms = 0;
                rep.workspaces = 0;
                rep.skipped.push(whole_source_skip(e));
            }
            None => {
                rep.status = Some(SourceStatus::Collected);
                if let Some(tx) = tx.as_mut() {
                    // A snapshot collected empty is still that day's snapshot.
                    for t in r.source.tables().iter().filter(|t| t.partitioning == Partitioning::Snapshot) {
                        tx.declare_snapshot(t, run.date);
                        if t.mass_change_guard {
                            tx.carry_forward_skipped(t, run.date, skipped_ids.iter().cloned());
                        }
                    }
                    for (k, v) in &r.watermarks {
                        tx.set_watermark(k.clone(), *v);
                    }
                }
            }
        }
        sources.insert(r.name.clone(), rep);
    }
    let mut tables = BTreeMap::new();
    let mut lake_version = None;
    // Warnings that are not about a source: they do not make the run partial.
    let mut other_warnings = Vec::new();
    if let (Some(mut tx), Some(lease)) = (tx, lease) {
        pb.set_message("committing raw tables");
        if tx.spill_count() > 0 {
            tracing::info!(files = tx.spill_count(), "staged rows were spilled to staging files");
        }
        // The identity export and overrides, committed with the raw tables; an export that is
        // refused (guard) or unusable stages nothing and fails the run after this commit.
        let identities = lastseen_ingest::identities::stage(&mut tx, run.config, &[run.date], Utc::now()).await;
        let t0 = Instant::now();
        let raw = tx.commit().await.context("committing the raw tables")?;
        let commit_ms = t0.elapsed().as_millis() as u64;
        tracing::debug!(peak_rss_mib = lastseen_lake::peak_rss_mib(), "raw tables committed");
        pb.set_message("deriving accounts, correlation and last_seen");
        let t0 = Instant::now();
        other_warnings.extend(identities.context("reading the identity export")?);
        let options = lastseen_transform::DeriveOptions::from_config(run.config);
        let derived = lastseen_transform::derive_all(run.lake, lease, &[run.date], Utc::now(), &options)
            .await
            .context("deriving accounts, identities, correlation, activity_daily and last_seen")?;
        tracing::info!(
            collect_ms = done.duration_since(collect_started).as_millis() as u64,
            commit_ms,
            derive_ms = t0.elapsed().as_millis() as u64,
            "run phases"
        );
        other_warnings.extend(derived.warnings);
        let derived = derived.summary;
        add_tables(&mut tables, &raw);
        add_tables(&mut tables, &derived);
        lake_version = Some(derived.version);
        // The day is committed whatever happens here, so a failed retention pass is a
        // warning (the next run retries it), not a failed run. A pass refused by the share
        // guard makes the run partial (exit 3): it needs an operator, not a retry.
        if !run.config.lake.retention.is_empty() {
            pb.set_message("applying retention");
            let cutoffs = retention_cutoffs(run.config, run.date, Utc::now().date_naive());
            match run.lake.apply_retention_guarded(lease, &cutoffs, run.config.lake.retention_max_drop).await {
                Ok(out) => {
                    if !out.dropped.is_empty() {
                        tracing::info!(partitions = out.dropped.len(), "retention dropped old partitions");
                    }
                    warnings.extend(out.refused.iter().map(ToString::to_string));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention failed; the next run will retry it");
                    other_warnings.push(format!("retention failed: {e}"));
                }
            }
        }
        // Files superseded longer ago than `lake.keep_superseded`; a failure is retried next run.
        pb.set_message("vacuuming superseded files");
        if let Err(e) = run.lake.vacuum(lease, run.config.lake.keep_superseded, false).await {
            tracing::warn!(error = %e, "vacuum failed; the next run will retry it");
            other_warnings.push(format!("vacuum failed: {e}"));
        }
    }
    let status = if warnings.is_empty() { RunStatus::Succeeded } else { RunStatus::Partial };
    warnings.extend(other_warnings);
    let manifest = RunManifest {
        finished_at: Utc::now(),
        status,
        lake_version,
        sources,
        tables,
        warnings,
        ..RunManifest::start(run_id, run.date, started)
    };
    tracing::info!(
        run_id = %run_id,
        status = ?manifest.status,
        lake_version = ?manifest.lake_version,
        rows = ?manifest.tables.iter().map(|(k, v)| (k.as_str(), v.rows)).collect::<BTreeMap<_, _>>(),
        "run finished"
    );
    Ok(DayOutcome { manifest, dry_run_rows })
}

/// A skipped source is a warning (and makes the run partial) when the configuration expects
/// it (`AppSource::expected`) or a standing condition of the organisation skips it
/// (`IngestError::is_standing`); a source the app enabled only because it might work (Slack's
/// `sources = "auto"`) that the plan, scopes or token type lack is only logged.
pub(crate) fn note_skip(source: &dyn AppSource, e: &IngestError, warnings: &mut Vec<String>) {
    let name = source.name();
    if source.expected() || e.is_standing() {
        let msg = format!("{name} skipped: {e}");
        tracing::warn!(app = source.app(), "{msg}");
        warnings.push(msg);
    } else {
        tracing::info!(app = source.app(), source = %name, "source not available with this plan or token, not collected: {e}");
    }
}

/// How many of a source's `parts` (`AppSource::parts`) were collected, for the manifest's
/// `workspaces`: those not skipped; a source read as one whole counts 1.
pub(crate) fn parts_collected(parts: &[String], skipped: &[SkipReport]) -> u64 {
    if parts.is_empty() {
        return 1;
    }
    parts.iter().filter(|p| !skipped.iter().any(|s| s.workspace.as_deref() == Some(p.as_str()))).count() as u64
}

/// Test hook, compiled into the binary on purpose: `LASTSEEN_TEST_FAILPOINT=collector_panic:<source>`
/// makes that source's collector task panic after its first item. Neither Slack nor the
/// simulator can make a collector panic (any input that did would be a bug to fix, not a fault
/// to simulate), yet the run's handling of a panic must be tested on the real binary.
fn failpoint_collector_panic(source: &str) -> bool {
    std::env::var("LASTSEEN_TEST_FAILPOINT").is_ok_and(|v| v == format!("collector_panic:{source}"))
}

/// The manifest entry of a source skipped as a whole.
pub(crate) fn whole_source_skip(e: &IngestError) -> SkipReport {
    SkipReport { workspace: None, code: e.slack_code().unwrap_or("unavailable").to_owned(), reason: e.to_string() }
}

/// One workspace (or org-wide part) of a source skipped for a standing condition: recorded for
/// the manifest and warned about by source, workspace and code, whatever the configuration
/// says (the source itself works, so the operator expects this workspace too); the run ends
/// partial (exit 3).
pub(crate) fn note_part_skip(
    source: &str,
    workspace: Option<String>,
    e: &IngestError,
    parts: &mut Vec<SkipReport>,
    warnings: &mut Vec<String>,
) {
    let code = e.slack_code().unwrap_or("unavailable").to_owned();
    let msg = match &workspace {
        Some(ws) => format!("{source} skipped for workspace {ws} (`{code}`): {e}"),
        None => format!("{source}: part skipped (`{code}`): {e}"),
    };
    tracing::warn!(%source, workspace = workspace.as_deref().unwrap_or("-"), %code, "{msg}");
    warnings.push(msg);
    parts.push(SkipReport { workspace, code, reason: e.to_string() });
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast_ref::<&str>().map_or_else(|| "(no message)".into(), |s| (*s).to_string()),
    }
}

/// Per table, the oldest partition date a run of `date` keeps: `min(date, today) - days`. A run
/// date in the future (refused by `run`, but a clock can be wrong too) never moves the cutoff
/// past today.
fn retention_cutoffs(config: &Config, date: NaiveDate, today: NaiveDate) -> BTreeMap<String, NaiveDate> {
    let from = date.min(today);
    config
        .lake
        .retention
        .iter()
        .map(|(table, days)| (table.clone(), from - chrono::Days::new(u64::from(*days))))
        .collect()
}

pub(crate) fn add_tables(tables: &mut BTreeMap<String, TableReport>, s: &CommitSummary) {
    for p in &s.partitions {
        let t = tables.entry(p.table.clone()).or_default();
        t.partitions += 1;
        t.files += p.files as u64;
        t.rows += p.rows;
        t.bytes += p.bytes;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_knows_exactly_the_lakes_tables() {
        assert_eq!(lastseen_config::LAKE_TABLES, lastseen_lake::catalog::table_names().as_slice());
    }

    #[test]
    fn retention_keeps_the_configured_number_of_days_before_the_run_date() {
        let cfg = lastseen_config::Config::from_toml_str(
            "[lake.retention]\nslack_access_logs = 400\n",
            "test",
            Vec::<(String, String)>::new(),
        )
        .unwrap();
        let d = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
        let cut = super::retention_cutoffs(&cfg, d, d + chrono::Days::new(3));
        assert_eq!(cut.len(), 1);
        assert_eq!(cut["slack_access_logs"], chrono::NaiveDate::from_ymd_opt(2025, 5, 26).unwrap());
        // A run date after today counts back from today.
        let cut = super::retention_cutoffs(&cfg, d + chrono::Days::new(365 * 40), d);
        assert_eq!(cut["slack_access_logs"], chrono::NaiveDate::from_ymd_opt(2025, 5, 26).unwrap());
    }
}
