//! The identity source of a run: the export and the overrides file read once and staged in the
//! run's raw transaction (`identities`, `identities_quarantine`, `correlation_overrides`), so the
//! derivation reads only lake tables. The export's mass-change guard is checked before anything
//! is staged: a refused export leaves the transaction as it was.

use chrono::{DateTime, NaiveDate, Utc};
use lastseen_config::Config;
use lastseen_lake::catalog::{CORRELATION_OVERRIDES, IDENTITIES, IDENTITIES_QUARANTINE};
use lastseen_lake::{Snapshot, Transaction};

use crate::{IngestError, Result};

/// Read the identity export and overrides of `config` (none configured: nothing, no warning)
/// and stage them in `tx` as the snapshot of every day of `dates`. Returns the run warnings
/// (quarantined rows). On an error nothing of them is staged, so the caller may still commit
/// the rest of the transaction and report the error after it (the daily run does: the raw
/// tables land, the derivation does not run).
pub async fn stage(
    tx: &mut Transaction,
    config: &Config,
    dates: &[NaiveDate],
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let (Some(_), Some(&until)) = (&config.identities.url, dates.iter().max()) else { return Ok(Vec::new()) };
    let load = super::read_identities(&config.identities, &config.storage.options, now).await?;
    if let Some(max_drop) = config.lake.max_snapshot_drop {
        check_identity_drop(tx.base(), until, load.identities.num_rows() as u64, max_drop)?;
    }
    let overrides = match &config.correlation.overrides {
        Some(url) => Some(super::read_overrides(url, &config.storage.options).await?),
        None => None,
    };
    let mut warnings = Vec::new();
    if !load.problems.is_empty() {
        let shown = load.problems.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
        let msg = format!(
            "identities: {} of {} rows quarantined (see table identities_quarantine): {shown}{}",
            load.problems.len(),
            load.records,
            if load.problems.len() > 5 { "; …" } else { "" }
        );
        tracing::warn!("{msg}");
        warnings.push(msg);
    }
    let staged = async {
        for &dt in dates {
            tx.declare_snapshot(&IDENTITIES, dt);
            tx.write_spilling(&IDENTITIES, dt, load.identities.clone()).await?;
            tx.declare_snapshot(&IDENTITIES_QUARANTINE, dt);
            tx.write_spilling(&IDENTITIES_QUARANTINE, dt, load.quarantine.clone()).await?;
            // Declared even without a file: no overrides that day is an empty snapshot.
            tx.declare_snapshot(&CORRELATION_OVERRIDES, dt);
            if let Some(o) = &overrides {
                tx.write_spilling(&CORRELATION_OVERRIDES, dt, o.clone()).await?;
            }
        }
        Ok::<(), lastseen_lake::LakeError>(())
    }
    .await;
    if let Err(e) = staged {
        for t in [&IDENTITIES, &IDENTITIES_QUARANTINE, &CORRELATION_OVERRIDES] {
            tx.discard(t);
        }
        return Err(IngestError::IdentityStage(e));
    }
    Ok(warnings)
}

/// The identity export's mass-change guard, as `slack_users` has one: the reference is the
/// newest committed `identities` snapshot dated before `dt`, or, when there is none, the one
/// being replaced. Only usable rows count: quarantined rows are what a half-written file adds.
pub fn check_identity_drop(snapshot: &Snapshot, dt: NaiveDate, rows: u64, max_drop: f64) -> Result<()> {
    let Some(table) = snapshot.table(IDENTITIES.name) else { return Ok(()) };
    let previous = table.partitions.range(..dt).next_back().or_else(|| table.partitions.get_key_value(&dt));
    let Some((&previous_dt, previous)) = previous else { return Ok(()) };
    let previous_rows = previous.rows;
    if rows < previous_rows && (previous_rows - rows) as f64 > max_drop * previous_rows as f64 {
        return Err(IngestError::IdentityDrop { rows, previous_dt, previous_rows, max_drop });
    }
    Ok(())
}
