//! The commit log: `_lastseen/log/<version>.json`, each a complete snapshot of the lake.
//!
//! A version is written once with a create-only put (`If-None-Match: *` on S3, a hard link on a
//! local disk), so exactly one writer can publish version N and a reader always sees a whole
//! version. Data files are written before the version that lists them; a file no version lists is
//! not part of the lake (lastseen's readers never see it; `vacuum` removes it once its run is
//! over and the keep window has passed). Watermarks live in the same version as the data they
//! cover, so they can never run ahead of it.
//!
//! A version also records the lease generation of the run that published it (a publish over a
//! version with a higher generation is refused: that run lost the lease) and the files that
//! versions since the keep window have superseded, with when, so `vacuum` deletes a file only
//! once no reader of a version younger than the window can still need it.
//!
//! A torn or empty newest version (a power cut on a disk that lost the write) is skipped with a
//! warning: readers get the newest readable version, and the next commit publishes above the
//! damaged one, which repairs the log.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{Lake, LakeError, Result};

pub(crate) const LOG_DIR: &str = "_lastseen/log";
/// Versions kept below the newest whatever their age: the fallback when the newest is damaged.
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
    /// The lease generation of the run that published this version (absent before leases
    /// were generation-numbered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_generation: Option<u64>,
    /// Files this or an earlier version stopped listing, kept on storage until `vacuum` finds
    /// them older than the keep window: readers of older versions may still be scanning them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<Superseded>,
}

/// A data file no longer part of the lake, waiting out the keep window before deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Superseded {
    pub path: String,
    /// When the version that stopped listing it was built.
    pub since: DateTime<Utc>,
    /// That version.
    pub version: u64,
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
    /// Wall-clock time of the committing machine: for people. Never compared across runs.
    pub committed_at: DateTime<Utc>,
    /// The log version that wrote this partition's content (0 in logs written before it was
    /// recorded). Derived tables compare it with their inputs' to decide what is stale: unlike
    /// `committed_at` it does not depend on which machine's clock stamped it (D18).
    #[serde(default)]
    pub version: u64,
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

    /// Whether any partition of any table lists `path`.
    pub fn lists(&self, path: &str) -> bool {
        self.tables.values().any(|t| t.partitions.values().any(|p| p.files.iter().any(|f| f.path == path)))
    }

    /// Record `files` as superseded by version `self.version` at `now` (they stay on storage
    /// until `vacuum` finds them older than the keep window).
    pub fn supersede<'a>(&mut self, files: impl IntoIterator<Item = &'a DataFile>, now: DateTime<Utc>) {
        let version = self.version;
        self.superseded.extend(files.into_iter().map(|f| Superseded { path: f.path.clone(), since: now, version }));
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
    /// All committed version numbers with when their file was written, ascending.
    async fn version_objects(&self) -> Result<Vec<(u64, DateTime<Utc>)>> {
        let prefix = self.path(LOG_DIR);
        let objects: Vec<_> = match self.store().list(Some(&prefix)).try_collect().await {
            Ok(o) => o,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(LakeError::store(&prefix, e)),
        };
        let mut versions: Vec<(u64, DateTime<Utc>)> = objects
            .iter()
            .filter_map(|m| m.location.filename().and_then(parse_version).map(|v| (v, m.last_modified)))
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// The newest committed snapshot (version 0, empty, for a new lake). A damaged newest
    /// version is skipped with a warning (see [`Lake::head`]).
    pub async fn snapshot(&self) -> Result<Snapshot> {
        Ok(self.head().await?.0)
    }

    /// The newest readable snapshot, and the number the next version must take (one above the
    /// newest listed, readable or not, so a commit after a damaged version repairs the log).
    pub(crate) async fn head(&self) -> Result<(Snapshot, u64)> {
        let versions = self.version_objects().await?;
        let Some(&(newest, _)) = versions.last() else { return Ok((Snapshot::default(), 1)) };
        let mut first_error = None;
        for &(v, _) in versions.iter().rev() {
            match self.read_version(v).await {
                Ok(snap) => {
                    if let Some(e) = &first_error {
                        tracing::warn!(
                            newest,
                            using = v,
                            error = %e,
                            "the newest commit log version is damaged (torn or empty after a power cut?); \
                             reading the newest readable version instead. The next commit publishes above it"
                        );
                    }
                    return Ok((snap, newest + 1));
                }
                Err(e @ LakeError::CorruptLog { .. }) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_error.expect("at least one version was read"))
    }

    /// Lake version `version`, for reading it again (an auditor re-running a review pack on the
    /// version its provenance names). Fails with [`LakeError::VersionGone`] when its log entry
    /// was pruned or any file it lists was deleted by `vacuum`: a partial version is never read.
    pub async fn snapshot_at(&self, version: u64) -> Result<Snapshot> {
        let gone = |reason: String| LakeError::VersionGone { version, reason };
        let snap = match self.read_version(version).await {
            Ok(s) => s,
            Err(LakeError::Store { source: object_store::Error::NotFound { .. }, .. }) => {
                let versions = self.version_objects().await?;
                return Err(gone(match (versions.first(), versions.last()) {
                    (Some((first, _)), Some((last, _))) => {
                        format!("it is not in the commit log (versions {first} to {last} are)")
                    }
                    _ => "the lake has no commit log yet".to_string(),
                }));
            }
            Err(e) => return Err(e),
        };
        let files: Vec<&DataFile> =
            snap.tables.values().flat_map(|t| t.partitions.values().flat_map(|p| p.files.iter())).collect();
        let mut heads = futures::stream::iter(files.into_iter().map(|f| async move {
            let path = self.path(&f.path);
            match self.store().head(&path).await {
                Ok(_) => Ok(None),
                Err(object_store::Error::NotFound { .. }) => Ok(Some(f.path.clone())),
                Err(e) => Err(LakeError::store(&path, e)),
            }
        }))
        .buffer_unordered(16);
        while let Some(r) = heads.next().await {
            if let Some(path) = r? {
                return Err(gone(format!("its file `{path}` was deleted by vacuum")));
            }
        }
        drop(heads);
        Ok(snap)
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
        match self.store().put_opts(&path, PutPayload::from(body.clone()), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                // A create the store applied but whose answer was lost (object_store retries a
                // 5xx, and the retry meets our own object) is ours: the bytes tell, since every
                // version carries its run id and build time.
                let ours = match self.store().get(&path).await {
                    Ok(r) => r.bytes().await.is_ok_and(|b| b.as_ref() == body.as_slice()),
                    Err(_) => false,
                };
                Ok(ours)
            }
            Err(e) => Err(LakeError::store(&path, e)),
        }
    }

    /// Remove log versions at least [`KEEP_VERSIONS`] below `newest` whose file is older than
    /// the default keep window (best effort).
    pub(crate) async fn prune_log(&self, newest: u64) {
        let keep = chrono::Duration::from_std(crate::DEFAULT_KEEP_SUPERSEDED).unwrap_or(chrono::Duration::days(7));
        self.prune_log_before(newest, Utc::now() - keep).await;
    }

    /// Remove log versions at least [`KEEP_VERSIONS`] below `newest` written before `cutoff`:
    /// an engine reading an older version's file list may need it until then. Returns how many.
    pub(crate) async fn prune_log_before(&self, newest: u64, cutoff: DateTime<Utc>) -> usize {
        let Ok(versions) = self.version_objects().await else { return 0 };
        let mut n = 0;
        for (v, _) in versions.into_iter().filter(|(v, w)| v + KEEP_VERSIONS <= newest && *w <= cutoff) {
            let path = self.path(&version_path(v));
            match self.store().delete(&path).await {
                Ok(()) => n += 1,
                Err(e) => tracing::debug!(%path, error = %e, "could not prune old log version"),
            }
        }
        n
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
