//! Retention: dropping partitions older than a per-table cutoff from the lake, as one new log
//! version. Their files are not deleted here: the version records them as superseded, and
//! `vacuum` deletes them once the keep window has passed, so a reader still holding an older
//! version keeps reading them.
//!
//! Two guards keep a mistake (a typo'd `[lake.retention]`, a wrong clock) from destroying
//! history Slack will not give back: a table's newest partition is never dropped, and a pass
//! that would drop more than `max_drop` of a table's partitions (and more than one: the daily
//! case) drops nothing of that table and reports it as refused.
//!
//! The version is published like a commit's: fenced on the lease (the run must hold the newest
//! generation, and the version it builds on must not come from a newer one), numbered above the
//! newest version listed (a torn one included), with a create-only put.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};

use crate::commit::check_generation;
use crate::{Lake, LakeError, LockGuard, Result};

/// Publishing races lost in a row before giving up; the lease makes even one unlikely.
const MAX_ATTEMPTS: u32 = 5;

/// A partition removed by retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedPartition {
    pub table: String,
    pub dt: NaiveDate,
    pub rows: u64,
    pub files: usize,
}

/// A table whose retention pass was refused by the share guard: nothing of it was dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedRetention {
    pub table: String,
    pub cutoff: NaiveDate,
    /// Partitions the pass would have dropped, of `partitions`.
    pub would_drop: usize,
    pub partitions: usize,
    pub max_drop: f64,
}

impl std::fmt::Display for RefusedRetention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "retention refused for `{}`: dropping partitions before {} would remove {} of its {} partitions \
             ({:.1}%), more than lake.retention_max_drop = {} allows; nothing of `{}` was dropped. Check \
             [lake.retention] and the run date; to apply it, run `lastseen run --force` once",
            self.table,
            self.cutoff,
            self.would_drop,
            self.partitions,
            100.0 * self.would_drop as f64 / self.partitions.max(1) as f64,
            self.max_drop,
            self.table
        )
    }
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionOutcome {
    pub dropped: Vec<DroppedPartition>,
    pub refused: Vec<RefusedRetention>,
}

/// Whether dropping `would_drop` of `partitions` exceeds the share `max_drop`. One partition is
/// always allowed, so the daily pass of a short retention (3 days: one of four) is never refused.
fn exceeds_share(would_drop: usize, partitions: usize, max_drop: Option<f64>) -> bool {
    match max_drop {
        Some(share) => would_drop > 1 && would_drop as f64 > share * partitions as f64,
        None => false,
    }
}

impl Lake {
    /// Drop every partition of each table dated before that table's cutoff (`dt < cutoff`).
    /// Tables not named keep everything. Publishes one new version when anything is dropped
    /// (none otherwise) that records the dropped partitions' files as superseded; `vacuum`
    /// deletes them after the keep window. Holding the lease is required, as for a commit.
    /// The table's newest partition is kept whatever its date. No share guard: see
    /// [`Lake::apply_retention_guarded`].
    pub async fn apply_retention(
        &self,
        lease: &LockGuard,
        cutoffs: &BTreeMap<String, NaiveDate>,
    ) -> Result<Vec<DroppedPartition>> {
        Ok(self.apply_retention_guarded(lease, cutoffs, None).await?.dropped)
    }

    /// [`Lake::apply_retention`] with the share guard: a table whose pass would drop more than
    /// `max_drop` of its partitions (and more than one) keeps them all and is listed in
    /// `refused`; the other tables are applied. `None` turns the guard off (`--force`).
    pub async fn apply_retention_guarded(
        &self,
        lease: &LockGuard,
        cutoffs: &BTreeMap<String, NaiveDate>,
        max_drop: Option<f64>,
    ) -> Result<RetentionOutcome> {
        for table in cutoffs.keys() {
            crate::catalog::table(table)?;
        }
        let generation = lease.generation();
        let mut attempts = 0;
        let (published, dropped, refused) = loop {
            attempts += 1;
            // The same fencing as a commit: still the newest lease generation, and never over a
            // version a newer generation published.
            lease.ensure_held().await?;
            // `head`, not `snapshot`: the number to take is one above the newest version listed,
            // readable or not, so a pass after a torn version publishes above it.
            let (latest, number) = self.head().await?;
            check_generation(&latest, lease.run_id(), generation)?;
            let mut next = latest.clone();
            next.version = number;
            let now = Utc::now();
            let mut dropped = Vec::new();
            let mut refused = Vec::new();
            for (table, cutoff) in cutoffs {
                let Some(t) = next.tables.get_mut(table) else { continue };
                let mut keep = t.partitions.split_off(cutoff);
                // The newest partition stays even when it is older than the cutoff (a source
                // that stopped, a clock gone wrong): the table never ends up empty by retention.
                if keep.is_empty()
                    && let Some((dt, p)) = t.partitions.pop_last()
                {
                    keep.insert(dt, p);
                }
                let partitions = t.partitions.len() + keep.len();
                if exceeds_share(t.partitions.len(), partitions, max_drop) {
                    refused.push(RefusedRetention {
                        table: table.clone(),
                        cutoff: *cutoff,
                        would_drop: t.partitions.len(),
                        partitions,
                        max_drop: max_drop.unwrap_or(1.0),
                    });
                    t.partitions.append(&mut keep);
                    continue;
                }
                for (dt, p) in std::mem::replace(&mut t.partitions, keep) {
                    dropped
                        .push((DroppedPartition { table: table.clone(), dt, rows: p.rows, files: p.files.len() }, p));
                }
            }
            if dropped.is_empty() {
                break (None, dropped, refused);
            }
            // The files stay on storage, recorded as superseded: a reader still scanning an
            // older version keeps them until `vacuum` finds them past the keep window.
            next.supersede(dropped.iter().flat_map(|(_, p)| p.files.iter()), now);
            next.committed_at = Some(now);
            next.run_id = Some(lease.run_id().to_string());
            next.lease_generation = Some(generation);
            if self.try_publish(&next).await? {
                break (Some(next.version), dropped, refused);
            }
            if attempts >= MAX_ATTEMPTS {
                return Err(LakeError::Conflict { version: number, what: "retention".into() });
            }
        };
        for (d, _) in &dropped {
            tracing::info!(table = %d.table, dt = %d.dt, rows = d.rows, files = d.files, "retention dropped partition");
        }
        for r in &refused {
            tracing::warn!("{r}");
        }
        if let Some(version) = published {
            self.sync_delta_logged(&lease.state()).await;
            self.prune_log(version).await;
        }
        Ok(RetentionOutcome { dropped: dropped.into_iter().map(|(d, _)| d).collect(), refused })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use chrono::NaiveDate;

    use super::*;
    use crate::catalog::{SLACK_ACCESS_LOGS, SLACK_USERS};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    /// A local lake with an (empty) `slack_users` snapshot on each of `days`, and one
    /// `slack_access_logs` day.
    async fn lake_with_days(days: &[u32]) -> (tempfile::TempDir, Lake) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&url::Url::from_directory_path(dir.path()).unwrap(), &BTreeMap::new()).unwrap();
        let lease = lake.acquire_lock("setup", Duration::from_secs(60)).await.unwrap();
        let mut tx = lake.begin(&lease).await.unwrap();
        for &d in days {
            tx.declare_snapshot(&SLACK_USERS, day(d));
        }
        tx.declare_partition(&SLACK_ACCESS_LOGS, day(1));
        tx.commit().await.unwrap();
        lease.release().await.unwrap();
        (dir, lake)
    }

    #[tokio::test]
    async fn the_newest_partition_survives_a_cutoff_after_it() {
        let (_dir, lake) = lake_with_days(&[1, 2, 3]).await;
        let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
        // A cutoff after every partition (a run date far in the future, a wrong clock).
        let cutoffs = BTreeMap::from([("slack_users".to_string(), day(30)), ("slack_access_logs".into(), day(30))]);
        let out = lake.apply_retention_guarded(&lease, &cutoffs, None).await.unwrap();
        assert_eq!(out.dropped.iter().map(|d| d.dt).collect::<Vec<_>>(), [day(1), day(2)]);
        assert!(out.refused.is_empty());
        let snap = lake.snapshot().await.unwrap();
        assert_eq!(snap.dates("slack_users"), [day(3)]);
        assert_eq!(snap.dates("slack_access_logs"), [day(1)], "a single partition is the newest one");
    }

    #[tokio::test]
    async fn a_pass_dropping_more_than_the_share_is_refused_for_that_table_only() {
        let (_dir, lake) = lake_with_days(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).await;
        let version = lake.snapshot().await.unwrap().version;
        let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
        // 6 of 10 partitions is over half: refused, nothing published.
        let cutoffs = BTreeMap::from([("slack_users".to_string(), day(7))]);
        let out = lake.apply_retention_guarded(&lease, &cutoffs, Some(0.5)).await.unwrap();
        assert!(out.dropped.is_empty());
        assert_eq!(
            out.refused,
            [RefusedRetention {
                table: "slack_users".into(),
                cutoff: day(7),
                would_drop: 6,
                partitions: 10,
                max_drop: 0.5
            }]
        );
        let msg = out.refused[0].to_string();
        for needle in ["slack_users", "6 of its 10", "60.0%", "lake.retention_max_drop", "--force"] {
            assert!(msg.contains(needle), "{needle} missing from {msg}");
        }
        assert_eq!(lake.snapshot().await.unwrap().version, version, "nothing published");
        assert_eq!(lake.snapshot().await.unwrap().dates("slack_users").len(), 10);

        // 5 of 10 is within the share; so is a single partition of a short table; forced, anything.
        let cutoffs = BTreeMap::from([("slack_users".to_string(), day(6))]);
        let out = lake.apply_retention_guarded(&lease, &cutoffs, Some(0.5)).await.unwrap();
        assert_eq!((out.dropped.len(), out.refused.len()), (5, 0));
        let cutoffs = BTreeMap::from([("slack_users".to_string(), day(10))]);
        let out = lake.apply_retention_guarded(&lease, &cutoffs, None).await.unwrap();
        assert_eq!((out.dropped.len(), out.refused.len()), (4, 0));
        assert_eq!(lake.snapshot().await.unwrap().dates("slack_users"), [day(10)]);
    }

    #[test]
    fn one_partition_is_always_allowed() {
        assert!(!exceeds_share(1, 2, Some(0.1)));
        assert!(exceeds_share(2, 3, Some(0.5)));
        assert!(!exceeds_share(2, 4, Some(0.5)));
        assert!(!exceeds_share(99, 100, None));
        assert!(exceeds_share(2, 100, Some(0.0)));
    }
}
