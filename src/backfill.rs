//! Backfill: past days of the sources that keep history in Slack, merged into the lake under the
//! lease, then the newest `last_seen` snapshot re-derived. Which sources keep history, and how
//! each is read back in time, is data ([`HISTORY`]); every other source says it cannot be
//! backfilled.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use chrono::{NaiveDate, Utc};
use indicatif::ProgressBar;
use lastseen_config::{Config, Source};
use lastseen_ingest::SlackClient;
use lastseen_ingest::slack::{self, AccessLogWindow};
use lastseen_lake::catalog::{SLACK_ACCESS_LOGS, SLACK_USERS};
use lastseen_lake::{Lake, LockGuard, RunKind, RunManifest, RunStatus, total_rows};
use secrecy::SecretString;

use crate::pipeline::datafusion_arrow_helpers::max_epoch_seconds;
use crate::pipeline::{LEASE_TTL, add_tables, drain, end_of_day, start_of_day, watermark_key};

/// How a history-keeping source is read for a past window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRead {
    /// `team.accessLogs` walked back from `before` = the end of the window's last day, stopping
    /// at entries whose `date_last` is older than the window's first day.
    AccessLogsBefore,
}

/// A source Slack keeps history for, and how far back.
#[derive(Debug)]
pub struct HistorySource {
    pub source: Source,
    pub read: HistoryRead,
    /// Said to the user when the window reaches further back than Slack keeps.
    pub kept: &'static str,
}

/// The sources that can be backfilled. Sources not listed serve only their current state.
pub const HISTORY: &[HistorySource] = &[HistorySource {
    source: Source::AccessLogs,
    read: HistoryRead::AccessLogsBefore,
    kept: "team.accessLogs goes back as far as the workspace's access history (paid plans)",
}];

/// What a backfill of an enabled source set will do.
#[derive(Debug)]
pub struct Plan {
    pub backfilled: Vec<&'static HistorySource>,
    pub not_backfillable: Vec<Source>,
}

pub fn plan(config: &Config) -> Plan {
    let mut p = Plan { backfilled: Vec::new(), not_backfillable: Vec::new() };
    for &src in &config.slack.sources {
        match HISTORY.iter().find(|h| h.source == src) {
            Some(h) => p.backfilled.push(h),
            None => p.not_backfillable.push(src),
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
}

#[derive(Debug)]
pub struct BackfillOutcome {
    pub manifest: RunManifest,
    /// The `last_seen` snapshot day re-derived, if the lake had a users snapshot.
    pub last_seen_dt: Option<NaiveDate>,
}

/// The access-log watermark to publish after a backfill that read up to `read_up_to` from
/// `window_start` on: never earlier than the committed one, and later only when the window
/// joins the history the committed watermark already covers (otherwise the daily run's next
/// read would skip the gap between them). `None` = leave it as it is.
fn backfilled_watermark(committed: Option<i64>, read_up_to: Option<i64>, window_start: i64) -> Option<i64> {
    match (committed, read_up_to) {
        (Some(old), Some(new)) if new > old && window_start <= old => Some(new),
        _ => None,
    }
}

pub async fn run(b: Backfill<'_>, token: SecretString) -> anyhow::Result<BackfillOutcome> {
    if b.from > b.to {
        bail!("--from {} is after --to {}: the window must run forward", b.from, b.to);
    }
    let today = Utc::now().date_naive();
    if b.to > today {
        bail!("--to {} is in the future (today is {today} UTC)", b.to);
    }
    let p = plan(b.config);
    if p.backfilled.is_empty() {
        bail!(
            "nothing to backfill: none of the enabled sources ({}) keeps history in Slack; sources that do: {}",
            b.config.slack.sources.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            HISTORY.iter().map(|h| h.source.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let started = Utc::now();
    let run_id = lastseen_lake::new_run_id(started);
    let client = std::sync::Arc::new(SlackClient::new(&b.config.slack, token).context("setting up the Slack client")?);
    let auth = client.auth_test().await.context("checking the Slack token with auth.test")?;
    tracing::info!(run_id = %run_id, from = %b.from, to = %b.to, team_id = %auth.team_id, "backfill started");
    let lease = b.lake.acquire_lock(&run_id, LEASE_TTL).await.context("taking the lake lease")?;
    let start = RunManifest {
        kind: RunKind::Backfill { from: b.from, to: b.to },
        ..RunManifest::start(&run_id, b.to, started)
    };
    match collect_and_commit(&b, &p, &client, &auth.team_id, &lease, start.clone()).await {
        Ok(outcome) => {
            b.lake.write_run_manifest(&outcome.manifest).await.context("writing the run manifest")?;
            lease.release().await.context("releasing the lake lease")?;
            Ok(outcome)
        }
        Err(err) => {
            let failed = RunManifest {
                finished_at: Utc::now(),
                status: RunStatus::Failed,
                error: Some(crate::exit::render(&err)),
                ..start
            };
            if let Err(e) = b.lake.write_run_manifest(&failed).await {
                tracing::warn!(error = %e, "could not record the failed backfill's manifest");
            }
            if let Err(e) = lease.release().await {
                tracing::warn!(error = %e, "could not release the lake lease; it will expire");
            }
            Err(err)
        }
    }
}

async fn collect_and_commit(
    b: &Backfill<'_>,
    p: &Plan,
    client: &std::sync::Arc<SlackClient>,
    team_id: &str,
    lease: &LockGuard,
    start: RunManifest,
) -> anyhow::Result<BackfillOutcome> {
    let pb = b.progress.clone().unwrap_or_else(ProgressBar::hidden);
    let mut tx = b.lake.begin(lease).await?;
    let mut sources = BTreeMap::new();
    let mut warnings = Vec::new();
    for h in &p.backfilled {
        match h.read {
            HistoryRead::AccessLogsBefore => {
                let window = AccessLogWindow { before: Some(end_of_day(b.to)), stop_at: Some(start_of_day(b.from)) };
                let stream = slack::access_logs(
                    client.clone(),
                    team_id.to_string(),
                    window,
                    b.config.slack.access_logs_page_size,
                    Utc::now(),
                );
                let mut rep = client.report(&[slack::TEAM_ACCESS_LOGS]);
                match drain(stream, &pb, "access logs").await {
                    Ok(batches) => {
                        rep = client.report(&[slack::TEAM_ACCESS_LOGS]);
                        rep.rows = total_rows(&batches);
                        let key = watermark_key(team_id);
                        let committed = tx.base().watermarks.get(&key).copied();
                        let read_up_to = max_epoch_seconds(&batches, "date_last")?;
                        if let Some(wm) = backfilled_watermark(committed, read_up_to, start_of_day(b.from)) {
                            tx.set_watermark(key, wm);
                        }
                        for batch in batches {
                            tx.write(&SLACK_ACCESS_LOGS, b.to, batch)?;
                        }
                    }
                    Err(e) if e.is_capability() => {
                        let msg = format!("{} skipped: {e}", h.source);
                        tracing::warn!("{msg}");
                        warnings.push(msg);
                        rep.error = Some(e.to_string());
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e).context("reading past access logs (team.accessLogs)"));
                    }
                }
                sources.insert(h.source.to_string(), rep);
            }
        }
    }
    pb.set_message("committing");
    let raw = tx.commit().await.context("committing the backfilled days")?;
    let mut tables = BTreeMap::new();
    add_tables(&mut tables, &raw);
    let mut lake_version = Some(raw.version);

    // last_seen reads the whole access history up to its day, so the newest snapshot is the one
    // backfilled evidence can change; older snapshots keep what was known on their day.
    let snapshot = b.lake.snapshot().await.context("reading the lake's commit log")?;
    let last_seen_dt = snapshot.dates(SLACK_USERS.name).last().copied();
    match last_seen_dt {
        Some(dt) => {
            pb.set_message("deriving last_seen");
            let derived = lastseen_transform::derive_all(b.lake, lease, &[dt], Utc::now(), b.config)
                .await
                .with_context(|| format!("re-deriving last_seen for dt={dt}"))?;
            for w in &derived.warnings {
                tracing::warn!("{w}");
            }
            let derived = derived.summary;
            add_tables(&mut tables, &derived);
            lake_version = Some(derived.version);
        }
        None => tracing::info!("no slack_users snapshot yet: last_seen is derived by the first daily run"),
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
    fn only_sources_listed_as_keeping_history_are_backfilled() {
        let cfg = Config::from_toml_str("", "test", Vec::<(String, String)>::new()).unwrap();
        let p = plan(&cfg);
        assert_eq!(p.backfilled.iter().map(|h| h.source).collect::<Vec<_>>(), [Source::AccessLogs]);
        // Every other default source says it cannot be backfilled (member analytics and audit
        // logs keep history in Slack but have no backfill reader yet).
        let others: Vec<Source> = cfg.slack.sources.iter().copied().filter(|s| *s != Source::AccessLogs).collect();
        assert!(others.contains(&Source::Users) && others.contains(&Source::Analytics));
        assert_eq!(p.not_backfillable, others);
    }
}
