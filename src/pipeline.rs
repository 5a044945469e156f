//! One daily run, end to end: probe Slack, collect every enabled source concurrently, commit the
//! raw tables, derive `last_seen`, and record a run manifest. Shared by `run` and `demo`.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use datafusion_arrow_helpers::max_epoch_seconds;
use futures::StreamExt;
use indicatif::ProgressBar;
use lastseen_config::{Config, Source};
use lastseen_ingest::slack::{self, AccessLogWindow};
use lastseen_ingest::{IngestError, SlackClient};
use lastseen_lake::catalog::{SLACK_ACCESS_LOGS, SLACK_USERS};
use lastseen_lake::{CommitSummary, Lake, RunManifest, RunStatus, TableReport, total_rows};
use secrecy::SecretString;

/// How long a run may hold the lake lease before another run may assume it died.
pub(crate) const LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

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

pub(crate) fn watermark_key(team: &str) -> String {
    format!("access_logs/{team}")
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
    let client = std::sync::Arc::new(SlackClient::new(cfg, token).context("setting up the Slack client")?);
    let auth = client.auth_test().await.context("checking the Slack token with auth.test")?;
    tracing::info!(run_id = %run_id, date = %run.date, team_id = %auth.team_id, team = %auth.team, "run started");

    let lease = if run.dry_run {
        None
    } else {
        Some(run.lake.acquire_lock(&run_id, LEASE_TTL).await.context("taking the lake lease")?)
    };
    let result = collect_and_commit(&run, &run_id, started, &client, &auth.team_id, lease.as_ref()).await;
    let outcome = match result {
        Ok(o) => o,
        Err(err) => {
            if let Some(lease) = lease {
                let manifest = RunManifest {
                    finished_at: Utc::now(),
                    status: RunStatus::Failed,
                    error: Some(crate::exit::render(&err)),
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

async fn collect_and_commit(
    run: &DayRun<'_>,
    run_id: &str,
    started: DateTime<Utc>,
    client: &std::sync::Arc<SlackClient>,
    team_id: &str,
    lease: Option<&lastseen_lake::LockGuard>,
) -> anyhow::Result<DayOutcome> {
    let cfg = &run.config.slack;
    let base = run.lake.snapshot().await.context("reading the lake's commit log")?;
    let pb = run.progress.clone().unwrap_or_else(ProgressBar::hidden);

    // Access logs: everything newer than the committed watermark (minus an overlap, since Slack
    // updates an entry's date_last in place and may show late entries), and at least the whole
    // run day; nothing after the end of the run day.
    let overlap = i64::try_from(cfg.access_logs_overlap.as_secs()).unwrap_or(i64::MAX);
    let old_wm = base.watermarks.get(&watermark_key(team_id)).copied();
    let day_start = start_of_day(run.date);
    let stop_at = old_wm.map(|wm| (wm.saturating_sub(overlap)).min(day_start.saturating_sub(overlap)));
    let before = (run.date < Utc::now().date_naive()).then(|| end_of_day(run.date));
    let window = AccessLogWindow { before, stop_at };

    let users_fut =
        drain(slack::users(client.clone(), team_id.to_string(), cfg.users_page_size, started), &pb, "users");
    let want_logs = cfg.sources.contains(&Source::AccessLogs);
    let logs_fut = async {
        if want_logs {
            Some(
                drain(
                    slack::access_logs(client.clone(), team_id.to_string(), window, cfg.access_logs_page_size, started),
                    &pb,
                    "access logs",
                )
                .await,
            )
        } else {
            None
        }
    };
    let (users, logs) = tokio::join!(users_fut, logs_fut);
    let users = users.context("collecting users (users.list)")?;

    let mut sources = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut users_report = client.report(&["users.list"]);
    users_report.rows = total_rows(&users);
    sources.insert(Source::Users.to_string(), users_report);

    let mut logs_batches = Vec::new();
    match logs {
        None => {}
        Some(Ok(b)) => {
            let mut rep = client.report(&["team.accessLogs"]);
            rep.rows = total_rows(&b);
            sources.insert(Source::AccessLogs.to_string(), rep);
            logs_batches = b;
        }
        // Sources the plan, scopes or token type cannot serve are skipped with a warning; any
        // other failure fails the run.
        Some(Err(e)) if e.is_capability() => {
            let msg = format!("access_logs skipped: {e}");
            tracing::warn!("{msg}");
            warnings.push(msg.clone());
            let mut rep = client.report(&["team.accessLogs"]);
            rep.error = Some(e.to_string());
            sources.insert(Source::AccessLogs.to_string(), rep);
        }
        Some(Err(e)) => return Err(anyhow::Error::new(e).context("collecting access logs (team.accessLogs)")),
    }

    let new_wm = max_epoch_seconds(&logs_batches, "date_last")?;
    let mut tables = BTreeMap::new();
    let mut dry_run_rows = BTreeMap::new();
    let mut lake_version = None;
    // Warnings that are not about a source: they do not make the run partial.
    let mut other_warnings = Vec::new();
    match lease {
        None => {
            dry_run_rows.insert(SLACK_USERS.name.to_string(), total_rows(&users));
            dry_run_rows.insert(SLACK_ACCESS_LOGS.name.to_string(), total_rows(&logs_batches));
        }
        Some(lease) => {
            let mut tx = run.lake.begin(lease).await?;
            tx.guard_snapshots(run.config.lake.max_snapshot_drop);
            tx.declare_snapshot(&SLACK_USERS, run.date);
            for b in users {
                tx.write(&SLACK_USERS, run.date, b)?;
            }
            for b in logs_batches {
                tx.write(&SLACK_ACCESS_LOGS, run.date, b)?;
            }
            if let Some(wm) = new_wm {
                tx.set_watermark(watermark_key(team_id), old_wm.map_or(wm, |o| o.max(wm)));
            }
            pb.set_message("committing raw tables");
            let raw = tx.commit().await.context("committing the raw tables")?;
            pb.set_message("deriving last_seen");
            let derived = lastseen_transform::derive_last_seen(run.lake, lease, &[run.date], Utc::now())
                .await
                .context("deriving last_seen")?;
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

pub(crate) async fn drain(
    mut stream: futures::stream::BoxStream<'static, Result<datafusion::arrow::record_batch::RecordBatch, IngestError>>,
    pb: &ProgressBar,
    what: &str,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>, IngestError> {
    let mut out = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        pb.set_message(format!("{what}: {rows} rows"));
        out.push(batch);
    }
    Ok(out)
}

/// Small Arrow helpers the orchestration needs.
pub(crate) mod datafusion_arrow_helpers {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::compute::max;
    use datafusion::arrow::datatypes::TimestampMicrosecondType;
    use datafusion::arrow::record_batch::RecordBatch;

    /// The greatest value of a microsecond timestamp column, in epoch seconds.
    pub fn max_epoch_seconds(batches: &[RecordBatch], column: &str) -> anyhow::Result<Option<i64>> {
        let mut best: Option<i64> = None;
        for b in batches {
            let col = b.column_by_name(column).ok_or_else(|| anyhow::anyhow!("batch has no column `{column}`"))?;
            let ts = col
                .as_primitive_opt::<TimestampMicrosecondType>()
                .ok_or_else(|| anyhow::anyhow!("`{column}` is not a timestamp"))?;
            if !ts.is_empty()
                && let Some(m) = max(ts)
            {
                best = Some(best.map_or(m, |b| b.max(m)));
            }
        }
        Ok(best.map(|us| us.div_euclid(1_000_000)))
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
