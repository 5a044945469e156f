//! One daily run, end to end, as a library call (`run_day`): discover what the token sees, probe
//! every configured source, stream
//! the available ones concurrently into one lake transaction (spilling to staging files by
//! size), commit the raw tables with their watermarks, derive `last_seen`, and record a run
//! manifest. Shared by `run`, `demo` and `daemon`, and callable in-process by tests and benches.
//! The sources come built (`lastseen_ingest::slack::sources`: the client, its budgets and the
//! collectors of the configured sources); they are data (`lastseen_ingest::slack::Collector`),
//! not branches here.
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
use lastseen_config::{Config, Source};
use lastseen_ingest::slack::{self, Collector, Item, Probe, RunContext, Scope, Settings, SlackSources};
use lastseen_ingest::{IngestError, SlackClient};
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

/// Run one day with Slack's built sources (`lastseen_ingest::slack::sources`: the client holds
/// the token, so no other copy of it outlives the call).
pub async fn run_day(run: DayRun<'_>, slack: SlackSources) -> Result<DayOutcome> {
    let started = Utc::now();
    let run_id = lastseen_lake::new_run_id(started);
    if !slack.collectors.iter().any(|c| c.source() == Source::Users) {
        return Err(PipelineError::Refused(
            "config `slack.sources` must include `users`: every other table is keyed on the users snapshot".into(),
        ));
    }
    let SlackSources { client, collectors } = slack;
    let methods: Vec<(Source, &'static [&'static str])> =
        collectors.iter().map(|c| (c.source(), c.methods())).collect();
    let scope = or_cancelled(run.cancel.as_ref(), slack::discover(&client))
        .await?
        .context("checking the Slack token with auth.test")?;
    tracing::info!(
        run_id = %run_id,
        date = %run.date,
        team_id = %scope.auth.team_id,
        team = %scope.auth.team,
        workspaces = scope.workspaces.len(),
        "run started"
    );

    let lease = if run.dry_run {
        None
    } else {
        Some(run.lake.acquire_lock(&run_id, run.config.lake.lease_ttl).await.context("taking the lake lease")?)
    };
    let work = collect_and_commit(&run, &run_id, started, &client, Arc::new(scope), collectors, lease.as_ref());
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
                sources: source_reports_on_failure(&client, &methods),
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
    client: &SlackClient,
    methods: &[(Source, &'static [&'static str])],
) -> BTreeMap<String, SourceReport> {
    methods.iter().map(|(s, m)| (s.to_string(), client.report(m))).filter(|(_, r)| r.calls > 0).collect()
}

/// What one source did during the run.
struct SourceRun {
    collector: Box<dyn Collector>,
    rows: u64,
    watermarks: Vec<(String, i64)>,
    started: Instant,
    finished: Option<Instant>,
    skipped: Option<IngestError>,
    /// Workspaces (or org-wide parts) skipped for a standing condition while the rest of the
    /// source was collected.
    parts_skipped: Vec<SkipReport>,
}

async fn collect_and_commit(
    run: &DayRun<'_>,
    run_id: &str,
    started: DateTime<Utc>,
    client: &Arc<SlackClient>,
    scope: Arc<Scope>,
    collectors: Vec<Box<dyn Collector>>,
    lease: Option<&lastseen_lake::LockGuard>,
) -> Result<DayOutcome> {
    let cfg = &run.config.slack;
    let base = run.lake.snapshot().await.context("reading the lake's commit log")?;
    let pb = run.progress.clone().unwrap_or_else(ProgressBar::hidden);
    let ctx = Arc::new(RunContext {
        client: Arc::clone(client),
        scope,
        date: run.date,
        collected_at: started,
        watermarks: base.watermarks.clone(),
        settings: Settings::from(cfg),
    });

    // Probe every configured source at once: one cheap call each tells whether the plan, the
    // scopes and the token type can serve it.
    pb.set_message("probing sources");
    let probes = futures::future::join_all(collectors.into_iter().map(|c| {
        let ctx = Arc::clone(&ctx);
        async move {
            let p = slack::probe(c.as_ref(), &ctx).await;
            (c, p)
        }
    }))
    .await;
    let mut runs: Vec<SourceRun> = Vec::new();
    let mut warnings = Vec::new();
    for (collector, probed) in probes {
        let source = collector.source();
        let skipped = match probed {
            Ok(Probe::Works) => None,
            Ok(Probe::Unavailable(e)) => Some(e),
            Err(e) => {
                let methods = collector.methods().join(", ");
                return Err(e.step(format!("probing source `{source}` ({methods})")));
            }
        };
        if let Some(e) = &skipped {
            note_skip(cfg, source, e, &mut warnings);
        }
        runs.push(SourceRun {
            collector,
            rows: 0,
            watermarks: Vec::new(),
            started: Instant::now(),
            finished: None,
            skipped,
            parts_skipped: Vec::new(),
        });
    }
    // Workspaces of the organisation the org-wide app was not granted: every per-workspace
    // source skips them, reported once as a warning and per source in the manifest.
    let per_workspace: Vec<Source> = runs
        .iter()
        .filter(|r| r.skipped.is_none() && r.collector.per_workspace())
        .map(|r| r.collector.source())
        .collect();
    warn_not_granted(&ctx.scope, &per_workspace, &mut warnings);
    for r in runs.iter_mut().filter(|r| r.skipped.is_none() && r.collector.per_workspace()) {
        r.parts_skipped.extend(not_granted_skips(&ctx.scope));
    }
    if let Some(users) = runs.iter().find(|r| r.collector.source() == Source::Users)
        && let Some(e) = &users.skipped
    {
        return Err(PipelineError::Refused(format!(
            "the users source cannot run, and every other table is keyed on it: {e}"
        )));
    }

    // Every available source streams into one channel; each runs in its own task so decoding
    // and Arrow building use every core, while the client caps requests in flight
    // (`slack.concurrency`) and paces each (method, workspace) bucket.
    // The tasks are joined after the channel closes: a task that panicked also closes its end,
    // and without the join its source would look finished and a truncated snapshot would be
    // committed. Dropping the set (an early return) aborts the collectors.
    let collect_started = Instant::now();
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<(usize, IngestResult<Item>)>(16);
    let mut tasks = tokio::task::JoinSet::new();
    let mut task_source = BTreeMap::new();
    for (i, r) in runs.iter_mut().enumerate().filter(|(_, r)| r.skipped.is_none()) {
        let mut stream = r.collector.collect(Arc::clone(&ctx));
        let sender = sender.clone();
        let panic_after_first_item = failpoint_collector_panic(r.collector.source());
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
                pb.set_message(format!("{}: {} rows ({total} in all)", r.collector.source(), r.rows));
                match tx.as_mut() {
                    Some(tx) => tx
                        .write_spilling(table, run.date, batch)
                        .await
                        .with_context(|| format!("staging rows of {}", table.name))?,
                    None => *dry_run_rows.entry(table.name.to_string()).or_default() += n,
                }
            }
            Ok(Item::Partition { table, dt }) => {
                if let Some(tx) = tx.as_mut() {
                    tx.declare_partition(table, dt);
                }
            }
            Ok(Item::Watermark { key, value }) => r.watermarks.push((key, value)),
            Ok(Item::Warning(msg)) => {
                let msg = format!("{}: {msg}", r.collector.source());
                tracing::warn!("{msg}");
                warnings.push(msg);
            }
            Ok(Item::Skipped { workspace, error }) => {
                note_part_skip(r.collector.source(), workspace, &error, &mut r.parts_skipped, &mut warnings);
            }
            // The plan or token turned out not to cover this source half-way (one workspace
            // of several, say): drop what it staged and skip it, like a failed probe.
            Err(e) if e.is_capability() => {
                if let Some(tx) = tx.as_mut() {
                    for t in r.collector.tables() {
                        tx.discard(t);
                    }
                }
                note_skip(cfg, r.collector.source(), &e, &mut warnings);
                r.skipped = Some(e);
                r.finished = Some(Instant::now());
            }
            Err(e) => {
                let (source, methods) = (r.collector.source(), r.collector.methods().join(", "));
                return Err(e.step(format!("collecting source `{source}` ({methods})")));
            }
        }
    }
    let done = Instant::now();
    while let Some(joined) = tasks.join_next().await {
        let Err(e) = joined else { continue };
        let r = task_source.get(&e.id()).map(|&i| &runs[i]);
        let (source, methods) =
            r.map(|r| (r.collector.source().to_string(), r.collector.methods().join(", "))).unwrap_or_default();
        let why = if e.is_panic() { format!("panicked: {}", panic_text(e.into_panic())) } else { e.to_string() };
        return Err(PipelineError::Refused(format!(
            "the collector of source `{source}` ({methods}) {why}; its data may be incomplete, so nothing was committed"
        )));
    }

    let mut sources = BTreeMap::new();
    for r in &mut runs {
        let source = r.collector.source();
        let mut rep = client.report(r.collector.methods());
        rep.rows = r.rows;
        rep.duration_ms =
            u64::try_from(r.finished.unwrap_or(done).duration_since(r.started).as_millis()).unwrap_or(u64::MAX);
        let skipped_workspaces = ctx
            .scope
            .workspaces
            .iter()
            .filter(|w| r.parts_skipped.iter().any(|p| p.workspace.as_deref() == Some(w.id.as_str())))
            .count();
        rep.workspaces = ctx.scope.workspaces.len().saturating_sub(skipped_workspaces) as u64;
        // Workspaces skipped today (not granted included) keep their previous users rows in
        // the day's snapshot, and the mass-change guard compares like with like (DESIGN §2).
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
                    for t in r.collector.tables().iter().filter(|t| t.partitioning == Partitioning::Snapshot) {
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
        sources.insert(source.to_string(), rep);
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
/// it or a standing condition of the organisation skips it (`IngestError::is_standing`); with
/// `sources = "auto"` an optional source the plan, scopes or token type lack is only logged.
pub(crate) fn note_skip(
    cfg: &lastseen_config::SlackConfig,
    source: Source,
    e: &IngestError,
    warnings: &mut Vec<String>,
) {
    if cfg.expects(source) || e.is_standing() {
        let msg = format!("{source} skipped: {e}");
        tracing::warn!("{msg}");
        warnings.push(msg);
    } else {
        tracing::info!(%source, "source not available with this plan or token, not collected: {e}");
    }
}

/// Test hook, compiled into the binary on purpose: `LASTSEEN_TEST_FAILPOINT=collector_panic:<source>`
/// makes that source's collector task panic after its first item. Neither Slack nor the
/// simulator can make a collector panic (any input that did would be a bug to fix, not a fault
/// to simulate), yet the run's handling of a panic must be tested on the real binary.
fn failpoint_collector_panic(source: Source) -> bool {
    std::env::var("LASTSEEN_TEST_FAILPOINT").is_ok_and(|v| v == format!("collector_panic:{source}"))
}

/// The manifest entry of a source skipped as a whole.
pub(crate) fn whole_source_skip(e: &IngestError) -> SkipReport {
    SkipReport { workspace: None, code: e.slack_code().unwrap_or("unavailable").to_owned(), reason: e.to_string() }
}

/// One workspace (or org-wide part) of a source skipped for a standing condition: recorded for
/// the manifest and warned about by source, workspace and code, whatever `slack.sources`
/// says (the source itself works, so the operator expects this workspace too); the run ends
/// partial (exit 3).
pub(crate) fn note_part_skip(
    source: Source,
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

/// The `team_access_not_granted` entries a per-workspace source records for the workspaces an
/// org-wide app was not granted (known when `admin.teams.list` answered).
pub(crate) fn not_granted_skips(scope: &Scope) -> Vec<SkipReport> {
    scope
        .not_granted
        .iter()
        .map(|ws| SkipReport {
            workspace: Some(ws.id.clone()),
            code: "team_access_not_granted".into(),
            reason: format!("workspace {} is not granted to the org-wide app", ws.id),
        })
        .collect()
}

/// One warning per workspace the org-wide app was not granted, naming the per-workspace
/// `sources` that skip it.
pub(crate) fn warn_not_granted(scope: &Scope, sources: &[Source], warnings: &mut Vec<String>) {
    if sources.is_empty() {
        return;
    }
    let names: Vec<&str> = sources.iter().map(|s| s.as_str()).collect();
    for ws in &scope.not_granted {
        let name = ws.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        let msg = format!(
            "workspace {}{name} is not granted to the org-wide app (`team_access_not_granted`): {} skipped for \
             it; an org admin can add the app to the workspace",
            ws.id,
            names.join(", ")
        );
        tracing::warn!(workspace = %ws.id, code = "team_access_not_granted", "{msg}");
        warnings.push(msg);
    }
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
