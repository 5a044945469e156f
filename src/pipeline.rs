//! One daily run, end to end: discover what the token sees, probe every configured source, stream
//! the available ones concurrently into one lake transaction (spilling to staging files by
//! size), commit the raw tables with their watermarks, derive `last_seen`, and record a run
//! manifest. Shared by `run` and `demo`. The sources are data (`lastseen_ingest::slack::Collector`),
//! not branches here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use futures::StreamExt;
use indicatif::ProgressBar;
use lastseen_config::{Config, Source};
use lastseen_ingest::slack::{self, Collector, Item, Probe, RunContext, Scope, Settings};
use lastseen_ingest::{IngestError, SlackClient};
use lastseen_lake::{
    CommitSummary, Lake, Partitioning, RunManifest, RunStatus, SourceReport, SourceStatus, TableReport,
};
use secrecy::SecretString;

type IngestResult<T> = std::result::Result<T, IngestError>;

/// The lake lease's expiry where no config is at hand (`lake.lease_ttl` otherwise). The lease
/// renews itself every third of it while the run is alive, so this is how long a killed run
/// blocks the next one, not how long a run may take.
pub(crate) const LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(120);

pub struct DayRun<'a> {
    pub config: &'a Config,
    pub lake: &'a Lake,
    pub date: NaiveDate,
    pub dry_run: bool,
    pub progress: Option<ProgressBar>,
}

/// What a run produced; `manifest.status` says whether every source worked.
#[derive(Debug)]
pub struct DayOutcome {
    pub manifest: RunManifest,
    /// Rows staged per table when `dry_run` (nothing was written).
    pub dry_run_rows: BTreeMap<String, u64>,
}

pub(crate) fn end_of_day(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::from_hms_opt(23, 59, 59).expect("valid time")).and_utc().timestamp()
}

pub(crate) fn start_of_day(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp()
}

/// Run one day. The token is passed apart from `run` so it is moved into the client and no
/// other copy outlives the call.
pub async fn run_day(run: DayRun<'_>, token: SecretString) -> anyhow::Result<DayOutcome> {
    let started = Utc::now();
    let run_id = lastseen_lake::new_run_id(started);
    let cfg = &run.config.slack;
    if !cfg.sources.contains(&Source::Users) {
        bail!("config `slack.sources` must include `users`: every other table is keyed on the users snapshot");
    }
    let client = Arc::new(SlackClient::new(cfg, token).context("setting up the Slack client")?);
    let scope = slack::discover(&client).await.context("checking the Slack token with auth.test")?;
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
    let result = collect_and_commit(&run, &run_id, started, &client, Arc::new(scope), lease.as_ref()).await;
    let outcome = match result {
        Ok(o) => o,
        Err(err) => {
            if let Some(lease) = lease {
                let manifest = RunManifest {
                    finished_at: Utc::now(),
                    status: RunStatus::Failed,
                    error: Some(crate::exit::render(&err)),
                    sources: source_reports_on_failure(&client, cfg),
                    ..RunManifest::start(&run_id, run.date, started)
                };
                if let Err(e) = run.lake.write_run_manifest(&manifest).await {
                    tracing::warn!(error = %e, "could not record the failed run's manifest");
                }
                if let Err(e) = lease.release().await {
                    tracing::warn!(error = %e, "could not release the lake lease; it will expire");
                }
            }
            return Err(err);
        }
    };
    if let Some(lease) = lease {
        run.lake.write_run_manifest(&outcome.manifest).await.context("writing the run manifest")?;
        lease.release().await.context("releasing the lake lease")?;
    }
    Ok(outcome)
}

/// The counters of a failed run, so its manifest still shows what was called and retried.
fn source_reports_on_failure(
    client: &SlackClient,
    cfg: &lastseen_config::SlackConfig,
) -> BTreeMap<String, SourceReport> {
    cfg.sources
        .iter()
        .map(|s| (s.to_string(), client.report(slack::collector(*s).methods())))
        .filter(|(_, r)| r.calls > 0)
        .collect()
}

/// What one source did during the run.
struct SourceRun {
    collector: Box<dyn Collector>,
    rows: u64,
    watermarks: Vec<(String, i64)>,
    started: Instant,
    finished: Option<Instant>,
    skipped: Option<IngestError>,
}

async fn collect_and_commit(
    run: &DayRun<'_>,
    run_id: &str,
    started: DateTime<Utc>,
    client: &Arc<SlackClient>,
    scope: Arc<Scope>,
    lease: Option<&lastseen_lake::LockGuard>,
) -> anyhow::Result<DayOutcome> {
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
    let probes = futures::future::join_all(cfg.sources.iter().map(|s| {
        let ctx = Arc::clone(&ctx);
        async move {
            let c = slack::collector(*s);
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
                return Err(anyhow::Error::new(e).context(format!("probing source `{source}` ({methods})")));
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
        });
    }
    if let Some(users) = runs.iter().find(|r| r.collector.source() == Source::Users)
        && let Some(e) = &users.skipped
    {
        bail!("the users source cannot run, and every other table is keyed on it: {e}");
    }

    // Every available source streams into one channel; each runs in its own task so decoding
    // and Arrow building use every core, while the client caps requests in flight
    // (`slack.concurrency`) and paces each (method, workspace) bucket.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<(usize, IngestResult<Item>)>(16);
    let mut tasks = Vec::new();
    for (i, r) in runs.iter_mut().enumerate().filter(|(_, r)| r.skipped.is_none()) {
        let mut stream = r.collector.collect(Arc::clone(&ctx));
        let sender = sender.clone();
        r.started = Instant::now();
        tasks.push(tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                let failed = item.is_err();
                if sender.send((i, item)).await.is_err() || failed {
                    break;
                }
            }
        }));
    }
    drop(sender);
    // Aborts the collectors when this function returns early (a failed source, a lake error).
    let _abort = AbortOnDrop(tasks);

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
                return Err(anyhow::Error::new(e).context(format!("collecting source `{source}` ({methods})")));
            }
        }
    }
    let done = Instant::now();

    let mut sources = BTreeMap::new();
    for r in &mut runs {
        let source = r.collector.source();
        let mut rep = client.report(r.collector.methods());
        rep.rows = r.rows;
        rep.duration_ms =
            u64::try_from(r.finished.unwrap_or(done).duration_since(r.started).as_millis()).unwrap_or(u64::MAX);
        rep.workspaces = ctx.scope.workspaces.len() as u64;
        match &r.skipped {
            Some(e) => {
                rep.status = Some(SourceStatus::Skipped);
                rep.error = Some(e.to_string());
                rep.duration_ms = 0;
            }
            None => {
                rep.status = Some(SourceStatus::Collected);
                if let Some(tx) = tx.as_mut() {
                    // A snapshot collected empty is still that day's snapshot.
                    for t in r.collector.tables().iter().filter(|t| t.partitioning == Partitioning::Snapshot) {
                        tx.declare_snapshot(t, run.date);
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
    if let (Some(tx), Some(lease)) = (tx, lease) {
        pb.set_message("committing raw tables");
        if tx.spill_count() > 0 {
            tracing::info!(files = tx.spill_count(), "staged rows were spilled to staging files");
        }
        let raw = tx.commit().await.context("committing the raw tables")?;
        pb.set_message("deriving accounts, correlation and last_seen");
        let derived = lastseen_transform::derive_all(run.lake, lease, &[run.date], Utc::now(), run.config)
            .await
            .context("deriving accounts, identities, correlation, activity_daily and last_seen")?;
        other_warnings.extend(derived.warnings);
        let derived = derived.summary;
        add_tables(&mut tables, &raw);
        add_tables(&mut tables, &derived);
        lake_version = Some(derived.version);
        // The day is committed whatever happens here, so a failed retention pass is a
        // warning (the next run retries it), not a failed run.
        if !run.config.lake.retention.is_empty() {
            pb.set_message("applying retention");
            match run.lake.apply_retention(lease, &retention_cutoffs(run.config, run.date)).await {
                Ok(dropped) => {
                    if !dropped.is_empty() {
                        tracing::info!(partitions = dropped.len(), "retention dropped old partitions");
                    }
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
/// it; with `sources = "auto"` an optional source the plan lacks is only logged.
pub(crate) fn note_skip(
    cfg: &lastseen_config::SlackConfig,
    source: Source,
    e: &IngestError,
    warnings: &mut Vec<String>,
) {
    if cfg.expects(source) {
        let msg = format!("{source} skipped: {e}");
        tracing::warn!("{msg}");
        warnings.push(msg);
    } else {
        tracing::info!(%source, "source not available with this plan or token, not collected: {e}");
    }
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Per table, the oldest partition date a run of `date` keeps: `date - days`.
fn retention_cutoffs(config: &Config, date: NaiveDate) -> BTreeMap<String, NaiveDate> {
    config
        .lake
        .retention
        .iter()
        .map(|(table, days)| (table.clone(), date - chrono::Days::new(u64::from(*days))))
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
        let cut = super::retention_cutoffs(&cfg, d);
        assert_eq!(cut.len(), 1);
        assert_eq!(cut["slack_access_logs"], chrono::NaiveDate::from_ymd_opt(2025, 5, 26).unwrap());
    }
}
