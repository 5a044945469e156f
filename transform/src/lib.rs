//! Derived tables: DataFusion SQL plans over the committed lake tables only (the raw tables, and
//! the identity export and overrides the run commits with them), written back through the
//! lake's commit protocol in one transaction: `accounts`, `account_identity` (correlation),
//! `activity_daily`, `last_seen`, `sso_last_seen` and the rollups.
//!
//! `last_seen` is incremental: each day folds the previous snapshot with the `activity_daily`
//! days after it. Days whose raw evidence was re-committed (access logs are merged and move
//! forward) are recomputed, and the `last_seen` snapshots from the earliest such day on are
//! re-folded, so the result always equals a full rebuild.

pub mod activity;
pub mod correlation;
pub mod last_seen;
mod minmax;
pub mod rollups;
pub mod session;
pub mod sources;
pub mod sso;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use lastseen_config::CorrelationConfig;
use lastseen_lake::catalog::{
    ACCOUNT_IDENTITY, ACCOUNT_REPORT, ACCOUNTS, ACTIVITY_DAILY, IDENTITIES, LAST_SEEN, SSO_LAST_SEEN, USAGE_DAILY,
};
use lastseen_lake::{CommitSummary, Lake, LockGuard};

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error(transparent)]
    Lake(#[from] lastseen_lake::LakeError),
    #[error("query engine error while {what}: {source}")]
    Plan {
        what: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    #[error(
        "query engine ran out of memory while {what}: {source}. The derivation's plans share a pool of \
         `lake.derive_memory_mb` (env LASTSEEN_LAKE__DERIVE_MEMORY_MB); raise it"
    )]
    Memory {
        what: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    #[error("{what}: the result does not fit the table schema ({message}); this is a bug in the transform SQL")]
    Shape { what: String, message: String },
    #[error("cannot derive {table} for {dt}: {message}")]
    Missing { table: &'static str, dt: NaiveDate, message: String },
}

impl TransformError {
    pub(crate) fn df(what: impl Into<String>, source: datafusion::error::DataFusionError) -> Self {
        if matches!(source.find_root(), datafusion::error::DataFusionError::ResourcesExhausted(_)) {
            return TransformError::Memory { what: what.into(), source: Box::new(source) };
        }
        TransformError::Plan { what: what.into(), source: Box::new(source) }
    }
}

pub type Result<T, E = TransformError> = std::result::Result<T, E>;

/// What a derivation applies beside the lake: `lake.derive_memory_mb`, `lake.stage_memory_mb`,
/// `reports.dormant_days` and `[correlation]`.
#[derive(Debug, Clone)]
pub struct DeriveOptions {
    /// The memory pool of the derivation's plans (bytes).
    pub derive_memory: usize,
    /// Derived rows staged in memory before they spill to staging files (bytes).
    pub stage_memory: usize,
    pub dormant_days: u32,
    pub correlation: CorrelationConfig,
}

impl DeriveOptions {
    pub fn from_config(config: &lastseen_config::Config) -> Self {
        DeriveOptions {
            derive_memory: config.lake.derive_memory,
            stage_memory: config.lake.stage_memory,
            dormant_days: config.reports.dormant_days,
            correlation: config.correlation.clone(),
        }
    }
}

/// What one derivation committed, and what the run should warn about.
#[derive(Debug)]
pub struct Derived {
    pub summary: CommitSummary,
    /// Quarantined identity rows, skipped rules: worth a line in the run manifest.
    pub warnings: Vec<String>,
}

/// Derive every table for `dates` (run days; each needs the account snapshot of every app the
/// lake has collected by then: see [`sources::present_apps`]) and commit
/// them as one lake version. Reads only lake tables: a run day is correlated when it has an
/// `identities` snapshot (committed with the raw tables by `lastseen_ingest::identities::stage`).
pub async fn derive_all(
    lake: &Lake,
    lease: &LockGuard,
    dates: &[NaiveDate],
    now: DateTime<Utc>,
    options: &DeriveOptions,
) -> Result<Derived> {
    let snapshot = lake.snapshot().await?;
    let dates: BTreeSet<NaiveDate> = dates.iter().copied().collect();
    let Some(&until) = dates.last() else {
        return Ok(Derived { summary: lake.begin(lease).await?.commit().await?, warnings: Vec::new() });
    };
    // Every app the lake has collected accounts of by a run day needs that day's account
    // snapshot (a Slack-only lake: `slack_users`); an app first collected later is not needed.
    for &dt in &dates {
        let needed = sources::present_apps(&snapshot, dt);
        let missing: Vec<&str> = if needed.is_empty() {
            sources::ACCOUNT_SOURCES.iter().map(|a| a.table).collect()
        } else {
            needed.iter().filter(|a| snapshot.partition(a.table, dt).is_none()).map(|a| a.table).collect()
        };
        if !missing.is_empty() {
            return Err(TransformError::Missing {
                table: LAST_SEEN.name,
                dt,
                message: format!("no {} snapshot for that day", missing.join(" or ")),
            });
        }
    }
    let ctx = session::context(lake, &snapshot, options.derive_memory).await?;
    let mut tx = lake.begin(lease).await?;
    // Derived rows are staged like raw ones: past `lake.stage_memory_mb` they spill to staging
    // files. With the day-at-a-time loops below, re-deriving a year after a backfill holds one
    // day's accounts and last_seen rows and a week of evidence, not the whole chain (audit D6).
    tx.set_memory_budget(options.stage_memory);
    let warnings = Vec::new();

    // activity_daily for every day whose evidence changed (a first run or a backfill: every
    // day), one streaming plan per few hundred thousand evidence rows, staged as it comes; the
    // fold below reads the staged days back from their staging files rather than from memory.
    let t0 = std::time::Instant::now();
    let dirty = activity::dirty_days(&snapshot, until);
    let groups = activity::plan_groups(&snapshot, &dirty);
    for days in &groups {
        activity::derive_into(&ctx, &snapshot, days, now, &mut tx).await?;
    }
    tracing::debug!(
        days = dirty.len(),
        plans = groups.len(),
        ms = t0.elapsed().as_millis() as u64,
        "derived activity_daily"
    );
    let t0 = std::time::Instant::now();
    let _ = ctx.deregister_table("evidence");
    let staged_activity = tx.staged_table(&ACTIVITY_DAILY).await?;
    let _ = ctx.deregister_table("activity_new");
    ctx.register_table("activity_new", Arc::new(staged_activity))
        .map_err(|e| TransformError::df("registering activity_new", e))?;
    let not_dirty = if dirty.is_empty() {
        String::new()
    } else {
        let list = dirty.iter().map(|d| format!("DATE '{d}'")).collect::<Vec<_>>().join(", ");
        format!(" WHERE dt NOT IN ({list})")
    };
    register_view(
        &ctx,
        "activity_src",
        &format!("SELECT * FROM activity_daily{not_dirty} UNION ALL SELECT * FROM activity_new"),
    )
    .await?;

    // The last_seen snapshots to (re)fold: the run days, and every committed one from the
    // earliest re-derived activity day on (their base changed).
    let committed_ls = snapshot.dates(LAST_SEEN.name);
    let mut chain: BTreeSet<NaiveDate> = dates.clone();
    if let Some(&first_dirty) = dirty.first() {
        chain.extend(
            committed_ls
                .iter()
                .copied()
                .filter(|d| *d >= first_dirty && *d <= until && !sources::apps_on(&snapshot, *d).is_empty()),
        );
    }
    // One chain day at a time: accounts, correlation (run days), then last_seen folded from the
    // previous day's snapshot. No day is held in memory as a whole: each plan's batches are
    // staged as they are produced (spilling past `lake.stage_memory_mb`), and the next step reads
    // the staged rows back from their staging files (issue 18: a day of 500,000 accounts is
    // ~100 MiB of Arrow per table, and account_report is wider still).
    let accounts_schema = ACCOUNTS.schema();
    let ls_schema = LAST_SEEN.schema();
    let first = *chain.first().expect("chain holds the run days");
    let mut base = committed_ls.iter().copied().rfind(|d| *d < first);
    register_view(&ctx, "last_seen_src", "SELECT * FROM last_seen").await?;
    // The rollups fold from the previous rollup day: the newest committed one before the chain
    // (`false`: read it from the lake), then each chain day's staged rows (`true`).
    let report_schema = ACCOUNT_REPORT.schema();
    let usage_schema = USAGE_DAILY.schema();
    let mut report_base: Option<(NaiveDate, bool)> =
        snapshot.dates(ACCOUNT_REPORT.name).iter().copied().rfind(|d| *d < first).map(|d| (d, false));
    // sso_last_seen folds like last_seen, from its newest committed day before the chain (none:
    // every sign-on up to the day), then from each chain day's staged rows.
    let sso_schema = SSO_LAST_SEEN.schema();
    let mut sso_base = snapshot.dates(SSO_LAST_SEEN.name).iter().copied().rfind(|d| *d < first);
    // Rows of the base day: a day with no sign-on input and an empty base is empty, unplanned.
    let mut sso_base_rows = sso_base.and_then(|b| snapshot.partition(SSO_LAST_SEEN.name, b)).map_or(0, |p| p.rows);
    register_view(&ctx, "sso_last_seen_src", "SELECT * FROM sso_last_seen").await?;
    for &d in &chain {
        tx.declare_snapshot(&ACCOUNTS, d);
        let what = format!("deriving accounts for {d}");
        let accounts_sql = sources::accounts_sql(&sources::apps_on(&snapshot, d));
        let mut stream = session::stream(&ctx, &what, &accounts_sql, &[("dt", session::date(d))]).await?;
        while let Some(b) = session::next_batch(&mut stream, &accounts_schema, &what).await? {
            tx.write_spilling(&ACCOUNTS, d, b).await?;
        }
        drop(stream);
        // The fold, the correlation and the rollups read the day's accounts only (`dt = d`).
        let staged_accounts: Arc<dyn TableProvider> = Arc::new(tx.staged_table(&ACCOUNTS).await?);
        let _ = ctx.deregister_table("accounts_src");
        ctx.register_table("accounts_src", Arc::clone(&staged_accounts))
            .map_err(|e| TransformError::df("registering accounts_src", e))?;
        // The day's rollups read the rows derived for it here (from staging), not the committed ones.
        let mut fresh: Vec<(&'static str, Arc<dyn TableProvider>)> = vec![("accounts", staged_accounts)];

        if dates.contains(&d) && snapshot.partition(IDENTITIES.name, d).is_some() {
            let cols = ACCOUNTS.schema().fields().iter().map(|f| format!("\"{}\"", f.name())).collect::<Vec<_>>();
            let day_accounts = ctx
                .sql(&format!("SELECT {} FROM accounts_src WHERE dt = DATE '{d}'", cols.join(", ")))
                .await
                .map_err(|e| TransformError::df(format!("reading the accounts of {d}"), e))?
                .into_view();
            let identities = ctx
                .sql(&format!("SELECT * EXCLUDE (dt) FROM identities WHERE dt = DATE '{d}'"))
                .await
                .map_err(|e| TransformError::df(format!("reading the identities of {d}"), e))?
                .into_view();
            let overrides = ctx
                .sql(&format!("SELECT * EXCLUDE (dt) FROM correlation_overrides WHERE dt = DATE '{d}'"))
                .await
                .map_err(|e| TransformError::df(format!("reading the correlation overrides of {d}"), e))?
                .into_view();
            let rows =
                correlation::correlate(&ctx, &options.correlation, day_accounts, identities, overrides, d, now).await?;
            tx.declare_snapshot(&ACCOUNT_IDENTITY, d);
            for b in rows {
                tx.write_spilling(&ACCOUNT_IDENTITY, d, b).await?;
            }
            fresh.push(("account_identity", Arc::new(tx.staged_table(&ACCOUNT_IDENTITY).await?)));
        }

        let covered = activity::covered_apps(&ctx, &snapshot, d).await?;
        let step =
            last_seen::Step { as_of: d, base, dormant_days: options.dormant_days, covered: &covered, computed_at: now };
        let src = last_seen::Sources { activity: "activity_src", accounts: "accounts_src", last_seen: "last_seen_src" };
        tx.declare_snapshot(&LAST_SEEN, d);
        let what = format!("deriving last_seen for {d}");
        let mut stream = last_seen::fold_stream(&ctx, src, step).await?;
        while let Some(b) = session::next_batch(&mut stream, &ls_schema, &what).await? {
            tx.write_spilling(&LAST_SEEN, d, b).await?;
        }
        drop(stream);
        // The next day folds from this one, which is not committed yet: read it from staging.
        let staged_ls: Arc<dyn TableProvider> = Arc::new(tx.staged_table(&LAST_SEEN).await?);
        let _ = ctx.deregister_table("last_seen_src");
        ctx.register_table("last_seen_src", Arc::clone(&staged_ls))
            .map_err(|e| TransformError::df("registering last_seen_src", e))?;
        base = Some(d);

        // The day's last sign-on per IdP user and app instance, in the same commit as last_seen.
        tx.declare_snapshot(&SSO_LAST_SEEN, d);
        let mut sso_rows = 0u64;
        if sso_base_rows > 0 || sso::has_input(&snapshot, d) {
            let what = format!("deriving sso_last_seen for {d}");
            let src = sso::Sources { sso_last_seen: "sso_last_seen_src", accounts: "accounts_src" };
            let mut stream = sso::fold_stream(&ctx, src, d, sso_base, now).await?;
            while let Some(b) = session::next_batch(&mut stream, &sso_schema, &what).await? {
                sso_rows += b.num_rows() as u64;
                tx.write_spilling(&SSO_LAST_SEEN, d, b).await?;
            }
            drop(stream);
        }
        sso_base_rows = sso_rows;
        let staged_sso: Arc<dyn TableProvider> = Arc::new(tx.staged_table(&SSO_LAST_SEEN).await?);
        let _ = ctx.deregister_table("sso_last_seen_src");
        ctx.register_table("sso_last_seen_src", staged_sso)
            .map_err(|e| TransformError::df("registering sso_last_seen_src", e))?;
        sso_base = Some(d);

        // The day's rollups, from the rows just derived: re-running or re-deriving the day
        // rewrites them in the same commit as its last_seen.
        fresh.push(("last_seen", staged_ls));
        let (report_base_day, base_staged) = report_base.take().unzip();
        if base_staged == Some(true) {
            fresh.push(("account_report", Arc::new(tx.staged_table(&ACCOUNT_REPORT).await?)));
        }
        let day_ctx = rollups::day_context(&ctx, fresh, &[("activity_daily", "activity_src")]).await?;
        tx.declare_snapshot(&ACCOUNT_REPORT, d);
        let what = format!("deriving account_report for {d}");
        let mut stream = rollups::account_report_stream(&day_ctx, d, report_base_day).await?;
        while let Some(b) = session::next_batch(&mut stream, &report_schema, &what).await? {
            tx.write_spilling(&ACCOUNT_REPORT, d, b).await?;
        }
        drop(stream);
        // usage_daily counts the day's account_report rows, read back from staging.
        let staged_report = Arc::new(tx.staged_table(&ACCOUNT_REPORT).await?);
        let _ = day_ctx.deregister_table("account_report");
        day_ctx
            .register_table("account_report", staged_report)
            .map_err(|e| TransformError::df("registering account_report", e))?;
        tx.declare_snapshot(&USAGE_DAILY, d);
        let what = format!("deriving usage_daily for {d}");
        let mut stream = rollups::usage_daily_stream(&day_ctx, d).await?;
        while let Some(b) = session::next_batch(&mut stream, &usage_schema, &what).await? {
            tx.write_spilling(&USAGE_DAILY, d, b).await?;
        }
        drop(stream);
        report_base = Some((d, true));
    }
    tracing::debug!(
        days = chain.len(),
        ms = t0.elapsed().as_millis() as u64,
        "derived accounts, correlation and last_seen"
    );
    let t0 = std::time::Instant::now();
    let summary = tx.commit().await?;
    tracing::debug!(ms = t0.elapsed().as_millis() as u64, "committed the derived tables");
    Ok(Derived { summary, warnings })
}

pub(crate) async fn register_view(ctx: &datafusion::prelude::SessionContext, name: &str, sql: &str) -> Result<()> {
    let _ = ctx.deregister_table(name);
    let df = ctx.sql(sql).await.map_err(|e| TransformError::df(format!("preparing {name}"), e))?;
    ctx.register_table(name, df.into_view()).map_err(|e| TransformError::df(format!("registering {name}"), e))?;
    Ok(())
}

/// The derivation's memory pool when no configuration is at hand (the `lake.derive_memory_mb`
/// default).
pub const DEFAULT_DERIVE_MEMORY: usize = 512 << 20;

/// `last_seen` as of `as_of` rebuilt from every committed `activity_daily` day, ignoring the
/// committed `last_seen` snapshots: what the incremental fold must equal (tests and benchmarks
/// compare the two). Needs the committed `accounts` snapshot of `as_of`.
pub async fn rebuild_last_seen(
    lake: &Lake,
    as_of: NaiveDate,
    dormant_days: u32,
    now: DateTime<Utc>,
) -> Result<Vec<RecordBatch>> {
    let snapshot = lake.snapshot().await?;
    let ctx = session::context(lake, &snapshot, DEFAULT_DERIVE_MEMORY).await?;
    let covered = activity::covered_apps(&ctx, &snapshot, as_of).await?;
    let step = last_seen::Step { as_of, base: None, dormant_days, covered: &covered, computed_at: now };
    let src = last_seen::Sources { activity: "activity_daily", accounts: "accounts", last_seen: "last_seen" };
    last_seen::fold(&ctx, src, step).await
}
