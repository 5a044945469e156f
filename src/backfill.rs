//! Backfill: past days of the sources that keep history in Slack, merged into the lake under the
//! lease, then the newest `last_seen` snapshot re-derived. Which sources keep history, and how
//! each is read back in time, is data ([`HISTORY`]); every other source says it cannot be
//! backfilled.
//!
//! Like the daily run, a backfill always gives the lease back (failed, interrupted by
//! SIGTERM/Ctrl-C through [`Backfill::cancel`], or with a manifest that could not be written).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{NaiveDate, Utc};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use lastseen_config::{Config, Source};
use lastseen_ingest::slack::{self, AccessLogWindow, Item, Past, RunContext, Scope, Settings};
use lastseen_ingest::{IngestError, SlackClient};
use lastseen_lake::catalog::SLACK_USERS;
use lastseen_lake::{Lake, LockGuard, RunKind, RunManifest, RunStatus, SourceStatus, Transaction};
use secrecy::SecretString;

use crate::pipeline::{
    Cancel, add_tables, committed_by, end_of_day, not_granted_skips, note_part_skip, note_skip, or_cancelled,
    start_of_day, warn_not_granted, whole_source_skip, write_manifest,
};

/// How a history-keeping source is read for a past window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRead {
    /// `team.accessLogs` of every workspace walked back from `before` = the end of the window's
    /// last day, stopping at entries whose `date_last` is older than the window's first day.
    AccessLogsBefore,
    /// `admin.analytics.getFile` type=member for each day of the window, each file replacing
    /// its day's `slack_member_analytics` partition as the daily run does.
    AnalyticsFiles,
    /// The Audit Logs API with `oldest` = the start of the window's first day and `latest` =
    /// the end of its last day; rows go to the UTC day of their `date_create`, merged on `id`.
    AuditLogsWindow,
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
pub const HISTORY: &[HistorySource] = &[
    HistorySource {
        source: Source::AccessLogs,
        read: HistoryRead::AccessLogsBefore,
        kept: "team.accessLogs goes back as far as the workspace's access history (paid plans)",
    },
    HistorySource {
        source: Source::Analytics,
        read: HistoryRead::AnalyticsFiles,
        kept: "admin.analytics.getFile keeps one member file per day for 13 months, published a day or two \
               later (Business+ and Enterprise Grid)",
    },
    HistorySource {
        source: Source::Audit,
        read: HistoryRead::AuditLogsWindow,
        kept: "the Audit Logs API keeps login events from the organisation's start, none before March 2018 \
               (Enterprise Grid, an org owner's org-level token)",
    },
];

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
    /// Stops the backfill (SIGTERM/Ctrl-C); `None` runs to the end.
    pub cancel: Option<Cancel>,
}

#[derive(Debug)]
pub struct BackfillOutcome {
    pub manifest: RunManifest,
    /// The `last_seen` snapshot day re-derived, if the lake had a users snapshot.
    pub last_seen_dt: Option<NaiveDate>,
}

/// The watermark to publish after a backfill that read up to `read_up_to` from `window_start`
/// on: never earlier than the committed one, and later only when the window joins the history
/// the committed watermark already covers (otherwise the daily run's next read would skip the
/// gap between them). `None` = leave it as it is. The same rule holds for every incremental
/// source (`access_logs/<team>`, `analytics/<org>`, `audit/<org>`).
fn backfilled_watermark(committed: Option<i64>, read_up_to: Option<i64>, window_start: i64) -> Option<i64> {
    match (committed, read_up_to) {
        (Some(old), Some(new)) if new > old && window_start <= old => Some(new),
        _ => None,
    }
}

/// The earliest committed watermark a window starting on `from` joins. The access-log and
/// audit watermarks are the newest event time stored, so the window must start at or before
/// it; `analytics/<org>` is the start of the newest day whose whole file is stored, so a window
/// starting the day after it joins too.
fn joins_from(read: HistoryRead, from: NaiveDate) -> i64 {
    match read {
        HistoryRead::AnalyticsFiles => start_of_day(from.pred_opt().unwrap_or(from)),
        HistoryRead::AccessLogsBefore | HistoryRead::AuditLogsWindow => start_of_day(from),
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
    let client = Arc::new(SlackClient::new(&b.config.slack, token).context("setting up the Slack client")?);
    // The workspaces (access logs are read per workspace) and the organisation key (analytics
    // and audit), found the way the daily run finds them.
    let scope = or_cancelled(b.cancel.as_ref(), slack::discover(&client))
        .await?
        .context("checking the Slack token with auth.test")?;
    tracing::info!(
        run_id = %run_id,
        from = %b.from,
        to = %b.to,
        team_id = %scope.auth.team_id,
        workspaces = scope.workspaces.len(),
        "backfill started"
    );
    let lease = b.lake.acquire_lock(&run_id, b.config.lake.lease_ttl).await.context("taking the lake lease")?;
    let start = RunManifest {
        kind: RunKind::Backfill { from: b.from, to: b.to },
        ..RunManifest::start(&run_id, b.to, started)
    };
    let work = collect_and_commit(&b, &p, &client, Arc::new(scope), &lease, start.clone());
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
                error: Some(crate::exit::render(&err)),
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

/// The window's read of one history source, as items for the transaction.
fn read(
    h: &HistorySource,
    ctx: &Arc<RunContext>,
    from: NaiveDate,
    to: NaiveDate,
) -> BoxStream<'static, Result<Past, IngestError>> {
    match h.read {
        HistoryRead::AccessLogsBefore => {
            let window = AccessLogWindow { before: Some(end_of_day(to)), stop_at: Some(start_of_day(from)) };
            let per_workspace = ctx
                .scope
                .workspaces
                .iter()
                .map(|ws| slack::access_logs::workspace_items(ctx, ws.id.clone(), window))
                .collect::<Vec<_>>();
            stream::select_all(per_workspace).map_ok(Past::Item).boxed()
        }
        HistoryRead::AnalyticsFiles => {
            slack::analytics::backfill_days(Arc::clone(ctx), from.iter_days().take_while(|d| *d <= to).collect())
        }
        HistoryRead::AuditLogsWindow => {
            slack::audit::window(ctx, start_of_day(from), end_of_day(to)).map_ok(Past::Item).boxed()
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
    Lake(anyhow::Error),
}

/// Stages every item of `reads` in `tx`, as the daily run does.
async fn stage(
    tx: &mut Transaction,
    mut reads: BoxStream<'static, Result<Past, IngestError>>,
    snapshot_dt: NaiveDate,
    pb: &ProgressBar,
    source: Source,
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
    p: &Plan,
    client: &Arc<SlackClient>,
    scope: Arc<Scope>,
    lease: &LockGuard,
    start: RunManifest,
) -> anyhow::Result<BackfillOutcome> {
    let pb = b.progress.clone().unwrap_or_else(ProgressBar::hidden);
    let mut tx = b.lake.begin(lease).await?;
    tx.set_memory_budget(b.config.lake.stage_memory);
    let ctx = Arc::new(RunContext {
        client: Arc::clone(client),
        scope,
        date: b.to,
        collected_at: start.started_at,
        watermarks: tx.base().watermarks.clone(),
        settings: Settings::from(&b.config.slack),
    });
    let mut sources = BTreeMap::new();
    let mut warnings = Vec::new();
    for h in &p.backfilled {
        let collector = slack::collector(h.source);
        let methods = collector.methods();
        let began = std::time::Instant::now();
        let result = stage(&mut tx, read(h, &ctx, b.from, b.to), b.to, &pb, h.source).await;
        let mut rep = client.report(methods);
        rep.duration_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
        rep.workspaces = if h.read == HistoryRead::AccessLogsBefore { ctx.scope.workspaces.len() as u64 } else { 1 };
        match result {
            Ok(staged) => {
                rep.status = Some(SourceStatus::Collected);
                rep.rows = staged.rows;
                for msg in &staged.warnings {
                    let msg = format!("{}: {msg}", h.source);
                    tracing::warn!("{msg}");
                    warnings.push(msg);
                }
                for (workspace, e) in &staged.parts_skipped {
                    note_part_skip(h.source, workspace.clone(), e, &mut rep.skipped, &mut warnings);
                }
                if collector.per_workspace() {
                    warn_not_granted(&ctx.scope, &[h.source], &mut warnings);
                    rep.skipped.extend(not_granted_skips(&ctx.scope));
                }
                for (key, read_up_to) in staged.read_up_to {
                    let committed = tx.base().watermarks.get(&key).copied();
                    if let Some(wm) = backfilled_watermark(committed, Some(read_up_to), joins_from(h.read, b.from)) {
                        tx.set_watermark(key, wm);
                    }
                }
                for (why, days) in &staged.unavailable {
                    let msg = format!(
                        "{}: no data for {} day(s) of the window, {}: {why}; those days stay missing",
                        h.source,
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
                for t in collector.tables() {
                    tx.discard(t);
                }
                note_skip(&b.config.slack, h.source, &e, &mut warnings);
                rep.status = Some(SourceStatus::Skipped);
                rep.error = Some(e.to_string());
                rep.duration_ms = 0;
                rep.skipped.push(whole_source_skip(&e));
            }
            Err(StageError::Source(e)) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "reading {} to {} of source `{}` ({})",
                    b.from,
                    b.to,
                    h.source,
                    methods.join(", ")
                )));
            }
            Err(StageError::Lake(e)) => return Err(e),
        }
        sources.insert(h.source.to_string(), rep);
    }
    pb.set_message("committing");
    let raw = tx.commit().await.context("committing the backfilled days")?;
    let mut tables = BTreeMap::new();
    add_tables(&mut tables, &raw);
    let mut lake_version = Some(raw.version);

    // last_seen reads the whole history up to its day, so the newest snapshot is the one
    // backfilled evidence can change; older snapshots keep what was known on their day.
    let snapshot = b.lake.snapshot().await.context("reading the lake's commit log")?;
    let last_seen_dt = snapshot.dates(SLACK_USERS.name).last().copied();
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
    fn an_analytics_window_joins_the_stored_day_before_it_and_event_windows_must_overlap() {
        let d = NaiveDate::from_ymd_opt(2026, 6, 20).unwrap();
        let stored_day = start_of_day(d - chrono::Days::new(1));
        // Analytics stored through the day before `d`: a window from `d` on joins it.
        let from = joins_from(HistoryRead::AnalyticsFiles, d);
        assert_eq!(backfilled_watermark(Some(stored_day), Some(start_of_day(d)), from), Some(start_of_day(d)));
        // From the day after that there is a day missing in between.
        let from = joins_from(HistoryRead::AnalyticsFiles, d + chrono::Days::new(1));
        assert_eq!(backfilled_watermark(Some(stored_day), Some(start_of_day(d + chrono::Days::new(1))), from), None);
        // An audit event stored at noon the day before: events after it that day were not read.
        let noon = stored_day + 43_200;
        let from = joins_from(HistoryRead::AuditLogsWindow, d);
        assert_eq!(backfilled_watermark(Some(noon), Some(start_of_day(d) + 60), from), None);
        let from = joins_from(HistoryRead::AuditLogsWindow, d - chrono::Days::new(1));
        assert_eq!(backfilled_watermark(Some(noon), Some(start_of_day(d) + 60), from), Some(start_of_day(d) + 60));
    }

    #[test]
    fn only_sources_listed_as_keeping_history_are_backfilled() {
        let cfg = Config::from_toml_str("", "test", Vec::<(String, String)>::new()).unwrap();
        let p = plan(&cfg);
        let history = [Source::AccessLogs, Source::Analytics, Source::Audit];
        assert_eq!(p.backfilled.iter().map(|h| h.source).collect::<Vec<_>>(), history);
        assert_eq!(
            p.backfilled.iter().map(|h| h.read).collect::<Vec<_>>(),
            [HistoryRead::AccessLogsBefore, HistoryRead::AnalyticsFiles, HistoryRead::AuditLogsWindow]
        );
        assert!(p.backfilled.iter().all(|h| !h.kept.is_empty()));
        // Every other default source serves only its current state.
        let others: Vec<Source> = cfg.slack.sources.iter().copied().filter(|s| !history.contains(s)).collect();
        assert!(others.contains(&Source::Users) && others.contains(&Source::Billing));
        assert_eq!(p.not_backfillable, others);

        // A configured subset keeps its order, split the same way.
        let cfg = Config::from_toml_str(
            "[slack]\nsources = [\"audit\", \"users\", \"analytics\"]\n",
            "test",
            Vec::<(String, String)>::new(),
        )
        .unwrap();
        let p = plan(&cfg);
        assert_eq!(p.backfilled.iter().map(|h| h.source).collect::<Vec<_>>(), [Source::Audit, Source::Analytics]);
        assert_eq!(p.not_backfillable, [Source::Users]);
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
