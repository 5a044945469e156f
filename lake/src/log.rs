//! The commit log: `_lastseen/log/<version>.json`, each a complete snapshot of the lake.
//!
//! A version is written once with a create-only put (`If-None-Match: *` on S3, a hard link on a
//! local disk), so exactly one writer can publish version N and a reader always sees a whole
//! version. Data files are written before the version that lists them; a file no version lists is
//! not part of the lake (lastseen's readers never see it, and the next commit removes it).
//! Watermarks live in the same version as the data they cover, so they can never run ahead of it.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{Lake, LakeError, Result};

pub(crate) const LOG_DIR: &str = "_lastseen/log";
/// Versions older than this many are removed after a commit; readers only ever need the newest.
const KEEP_VERSIONS: u64 = 20;

/// One version of the lake: which files make up every partition of every table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u64,
    pub committed_at: Option<DateTime<Utc>>,
    pub run_id: Option<String>,
    pub tables: BTreeMap<String, TableState>,
    /// Incremental-source positions (epoch seconds), advanced with the data they cover.
    pub watermarks: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableState {
    pub schema_version: u32,
    pub partitions: BTreeMap<NaiveDate, PartitionState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionState {
    pub files: Vec<DataFile>,
    pub rows: u64,
    pub run_id: String,
    pub committed_at: DateTime<Utc>,
}

/// A committed Parquet file; `path` is relative to the lake root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

impl Snapshot {
    pub fn table(&self, name: &str) -> Option<&TableState> {
        self.tables.get(name)
    }

    pub fn partition(&self, table: &str, dt: NaiveDate) -> Option<&PartitionState> {
        self.tables.get(table).and_then(|t| t.partitions.get(&dt))
    }

    /// The committed snapshot days of a table, oldest first.
    pub fn dates(&self, table: &str) -> Vec<NaiveDate> {
        self.tables.get(table).map(|t| t.partitions.keys().copied().collect()).unwrap_or_default()
    }
}

fn version_path(version: u64) -> String {
    format!("{LOG_DIR}/{version:020}.json")
}

fn parse_version(name: &str) -> Option<u64> {
    name.strip_suffix(".json")?.parse().ok()
}

impl Lake {
    /// All committed version numbers, ascending.
    async fn versions(&self) -> Result<Vec<u64>> {
        let prefix = self.path(LOG_DIR);
        let objects: Vec<_> = match self.store().list(Some(&prefix)).try_collect().await {
            Ok(o) => o,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(LakeError::store(&prefix, e)),
        };
        let mut versions: Vec<u64> =
            objects.iter().filter_map(|m| m.location.filename().and_then(parse_version)).collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// The newest committed snapshot (version 0, empty, for a new lake).
    pub async fn snapshot(&self) -> Result<Snapshot> {
        match self.versions().await?.last() {
            None => Ok(Snapshot::default()),
            Some(&v) => self.read_version(v).await,
        }
    }

    pub(crate) async fn read_version(&self, version: u64) -> Result<Snapshot> {
        let rel = version_path(version);
        let path = self.path(&rel);
        let bytes = self
            .store()
            .get(&path)
            .await
            .map_err(|e| LakeError::store(&path, e))?
            .bytes()
            .await
            .map_err(|e| LakeError::store(&path, e))?;
        let snap: Snapshot = serde_json::from_slice(&bytes)
            .map_err(|e| LakeError::CorruptLog { path: rel.clone(), message: e.to_string() })?;
        if snap.version != version {
            return Err(LakeError::CorruptLog { path: rel, message: format!("file says version {}", snap.version) });
        }
        Ok(snap)
    }

    /// Publish `snapshot` as its version. `Ok(false)` means another writer published that
    /// version first; nothing was written.
    pub(crate) async fn try_publish(&self, snapshot: &Snapshot) -> Result<bool> {
        let path = self.path(&version_path(snapshot.version));
        let body = serde_json::to_vec_pretty(snapshot)
            .map_err(|source| LakeError::Json { what: "commit log version".into(), source })?;
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store().put_opts(&path, PutPayload::from(body), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(LakeError::store(&path, e)),
        }
    }

    /// Remove log versions no reader needs any more (best effort).
    pub(crate) async fn prune_log(&self, newest: u64) {
        let Ok(versions) = self.versions().await else { return };
        for v in versions.into_iter().filter(|v| v + KEEP_VERSIONS <= newest) {
            let path = self.path(&version_path(v));
            if let Err(e) = self.store().delete(&path).await {
                tracing::debug!(%path, error = %e, "could not prune old log version");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_sort_as_numbers() {
        assert_eq!(version_path(7), "_lastseen/log/00000000000000000007.json");
        assert_eq!(parse_version("00000000000000000012.json"), Some(12));
        assert_eq!(parse_version("12.json.tmp"), None);
    }
}
