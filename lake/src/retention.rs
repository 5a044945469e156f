//! Retention: dropping partitions older than a per-table cutoff from the lake, as one new log
//! version, then deleting their files.
//!
//! Same order as a commit, for the same crash safety: the version that no longer lists the
//! partitions is published first, the files are deleted after. A crash in between leaves
//! unlisted files that no lastseen reader sees; every pass also sweeps partition folders older
//! than the cutoff that the log no longer lists, so the next pass deletes them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

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

impl Lake {
    /// Drop every partition of each table dated before that table's cutoff (`dt < cutoff`).
    /// Tables not named keep everything. Publishes one new version when anything is dropped
    /// (none otherwise), then deletes the dropped partitions' files. Holding the lease is
    /// required, as for a commit: deleting files is only safe when no writer is mid-commit.
    pub async fn apply_retention(
        &self,
        lease: &LockGuard,
        cutoffs: &BTreeMap<String, NaiveDate>,
    ) -> Result<Vec<DroppedPartition>> {
        for table in cutoffs.keys() {
            crate::catalog::table(table)?;
        }
        let mut attempts = 0;
        let (snapshot, dropped) = loop {
            attempts += 1;
            let latest = self.snapshot().await?;
            let mut next = latest.clone();
            let mut dropped = Vec::new();
            for (table, cutoff) in cutoffs {
                let Some(t) = next.tables.get_mut(table) else { continue };
                let keep = t.partitions.split_off(cutoff);
                for (dt, p) in std::mem::replace(&mut t.partitions, keep) {
                    dropped
                        .push((DroppedPartition { table: table.clone(), dt, rows: p.rows, files: p.files.len() }, p));
                }
            }
            if dropped.is_empty() {
                break (latest, dropped);
            }
            next.version = latest.version + 1;
            next.committed_at = Some(Utc::now());
            next.run_id = Some(lease.run_id().to_string());
            if self.try_publish(&next).await? {
                break (next, dropped);
            }
            if attempts >= MAX_ATTEMPTS {
                return Err(LakeError::Conflict { version: latest.version + 1, what: "retention".into() });
            }
        };
        let mut doomed: BTreeSet<String> =
            dropped.iter().flat_map(|(_, p)| p.files.iter().map(|f| f.path.clone())).collect();
        for (table, cutoff) in cutoffs {
            doomed.extend(self.unlisted_files_before(&snapshot, table, *cutoff).await);
        }
        for rel in doomed {
            match self.store().delete(&self.path(&rel)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!(file = %rel, error = %e, "could not delete a file dropped by retention"),
            }
        }
        for (d, _) in &dropped {
            tracing::info!(table = %d.table, dt = %d.dt, rows = d.rows, files = d.files, "retention dropped partition");
        }
        if dropped.is_empty() {
            return Ok(Vec::new());
        }
        self.prune_log(snapshot.version).await;
        Ok(dropped.into_iter().map(|(d, _)| d).collect())
    }

    /// Parquet files in `<table>/dt=D/` folders with `D < cutoff` that `snapshot` does not list
    /// (best effort: a listing failure is logged and leaves them for the next pass).
    async fn unlisted_files_before(&self, snapshot: &crate::Snapshot, table: &str, cutoff: NaiveDate) -> Vec<String> {
        let dir = self.path(table);
        let listing = match self.store().list_with_delimiter(Some(&dir)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Vec::new(),
            Err(e) => {
                tracing::warn!(dir = %dir, error = %e, "could not list table folder for retention");
                return Vec::new();
            }
        };
        let prefix = format!("{}=", crate::PARTITION_COLUMN);
        let mut out = Vec::new();
        for folder in listing.common_prefixes {
            let Some(dt) = folder
                .filename()
                .and_then(|f| f.strip_prefix(&prefix))
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if dt >= cutoff || snapshot.partition(table, dt).is_some() {
                continue;
            }
            match self.store().list(Some(&folder)).try_collect::<Vec<_>>().await {
                Ok(objects) => out.extend(
                    objects.iter().filter_map(|o| self.relative(&o.location)).filter(|rel| rel.ends_with(".parquet")),
                ),
                Err(e) => tracing::warn!(dir = %folder, error = %e, "could not list a dropped partition"),
            }
        }
        out
    }
}
