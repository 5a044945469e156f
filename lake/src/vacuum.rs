//! Vacuum: the only place lake data files are deleted, and only files no reader can still need.
//! (Commits and retention record what they drop as superseded; they never delete.)
//!
//! A file is deleted when it is (a) recorded as superseded by a version built longer ago than
//! the keep window (`lake.keep_superseded`, default 7 days), or (b) a file of a commit whose
//! in-flight marker is older than the keep window and that no version lists, superseded or
//! current: a run that died before publishing, found through its marker, never by listing
//! "whatever is unlisted". Staging folders of other runs go after the same window. Log versions
//! older than the window (beyond the newest 20) go too. Every batch of deletes is fenced on the
//! lease, and the pass is idempotent: a crash half-way leaves the superseded records in place,
//! so the next pass deletes the rest (files already gone count as deleted). The Delta logs
//! (`delta.rs`) are the second reader to honour: a file a Delta log lists, or removed within the
//! window, stays too.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::commit::{INFLIGHT_DIR, InflightMarker, STAGING_DIR, failpoint};
use crate::{Lake, LakeError, LockGuard, Result};

/// How long superseded files and dead runs' files stay, by default.
pub const DEFAULT_KEEP_SUPERSEDED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Deletes between two fencing checks.
const FENCE_EVERY: usize = 100;

/// What a vacuum pass deleted (or, for a dry run, would delete).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumReport {
    /// Superseded data files past the keep window.
    pub superseded_files: Vec<String>,
    /// Unpublished files of commits that never published (or of old markers).
    pub orphan_files: Vec<String>,
    /// In-flight markers settled.
    pub markers: usize,
    /// Staging files of other runs.
    pub staging_files: usize,
    /// Old log versions removed.
    pub log_versions: usize,
    /// The version that dropped the deleted files' records, if one was published.
    pub version: Option<u64>,
}

impl Lake {
    /// Delete what no reader of a version younger than `keep` can need (see the module docs).
    /// With `dry_run`, only reports what it would delete. Requires the lease: every batch of
    /// deletes first checks that it is still held.
    pub async fn vacuum(&self, lease: &LockGuard, keep: Duration, dry_run: bool) -> Result<VacuumReport> {
        let now = Utc::now();
        let cutoff = now - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::days(36500));
        let mut report = VacuumReport::default();
        lease.ensure_held().await?;
        let (snap, _) = self.head().await?;
        // Neither log may still reference a file vacuum deletes: bring the Delta logs up to
        // this version first, then keep whatever a Delta log lists or removed within the window
        // (its remove can be younger than lastseen's record when the Delta view caught up late).
        // An unreadable Delta log stops the pass: nothing is deleted on a guess.
        if !dry_run {
            self.sync_delta_logged(&lease.state()).await;
        }
        let delta_refs = self.delta_referenced(&snap, cutoff).await?;

        // (a) Superseded files past the window, not listed again by the newest version nor
        // referenced by a Delta log within the window.
        let expired: BTreeSet<String> = snap
            .superseded
            .iter()
            .filter(|s| s.since <= cutoff && !snap.lists(&s.path) && !delta_refs.contains(&s.path))
            .map(|s| s.path.clone())
            .collect();
        report.superseded_files = expired.iter().cloned().collect();

        // (b) Files of commits whose marker is past the window and that no version lists.
        let known: BTreeSet<&str> = snap
            .superseded
            .iter()
            .map(|s| s.path.as_str())
            .chain(
                snap.tables
                    .values()
                    .flat_map(|t| t.partitions.values().flat_map(|p| p.files.iter().map(|f| f.path.as_str()))),
            )
            .collect();
        let mut markers = Vec::new();
        let dir = self.path(INFLIGHT_DIR);
        let objects: Vec<_> = match self.store().list(Some(&dir)).try_collect().await {
            Ok(o) => o,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(LakeError::store(&dir, e)),
        };
        for o in objects.into_iter().filter(|o| o.last_modified <= cutoff) {
            let bytes = match self.store().get(&o.location).await {
                Ok(r) => r.bytes().await.map_err(|e| LakeError::store(&o.location, e))?,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(LakeError::store(&o.location, e)),
            };
            let marker: InflightMarker = match serde_json::from_slice(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(marker = %o.location, error = %e, "unreadable in-flight marker left in place");
                    continue;
                }
            };
            let prefix = format!("part-{}-", marker.file_prefix);
            let mut files = Vec::new();
            for part in &marker.partitions {
                let pdir = self.path(part);
                let listed: Vec<_> = match self.store().list(Some(&pdir)).try_collect().await {
                    Ok(l) => l,
                    Err(object_store::Error::NotFound { .. }) => Vec::new(),
                    Err(e) => return Err(LakeError::store(&pdir, e)),
                };
                files.extend(
                    listed
                        .iter()
                        .filter(|f| f.location.filename().is_some_and(|n| n.starts_with(&prefix)))
                        .filter_map(|f| self.relative(&f.location))
                        .filter(|rel| !known.contains(rel.as_str()) && !delta_refs.contains(rel)),
                );
            }
            report.orphan_files.extend(files.iter().cloned());
            markers.push((o.location, files));
        }
        report.markers = markers.len();

        // Staging folders of other runs, every file past the window.
        let staging = self.old_staging(lease.run_id(), cutoff).await?;
        report.staging_files = staging.len();
        if dry_run {
            return Ok(report);
        }

        let mut deleted = 0usize;
        for rel in expired.iter().chain(markers.iter().flat_map(|(_, f)| f.iter())) {
            self.fenced_delete(lease, &self.path(rel), &mut deleted).await?;
        }
        for (marker, _) in &markers {
            self.fenced_delete(lease, marker, &mut deleted).await?;
        }
        for path in &staging {
            self.fenced_delete(lease, path, &mut deleted).await?;
        }

        // Drop the deleted files' records with a new version (so the log does not grow). A
        // crash before this leaves them recorded; the next pass deletes again, harmlessly.
        if !expired.is_empty() {
            report.version = Some(self.publish_without(lease, &expired).await?);
        }
        let newest = report.version.unwrap_or(snap.version);
        report.log_versions = self.prune_log_before(newest, cutoff).await;
        tracing::info!(
            superseded = report.superseded_files.len(),
            orphans = report.orphan_files.len(),
            markers = report.markers,
            staging = report.staging_files,
            log_versions = report.log_versions,
            "vacuum finished"
        );
        Ok(report)
    }

    async fn fenced_delete(&self, lease: &LockGuard, path: &object_store::path::Path, n: &mut usize) -> Result<()> {
        if n.is_multiple_of(FENCE_EVERY) {
            lease.ensure_held().await?;
        }
        match self.store().delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(LakeError::store(path, e)),
        }
        *n += 1;
        if *n == 1 {
            failpoint("mid_vacuum");
        }
        Ok(())
    }

    /// Files under `_lastseen/staging/<run>/` for runs other than `own` whose newest file is
    /// older than `cutoff`.
    async fn old_staging(&self, own: &str, cutoff: DateTime<Utc>) -> Result<Vec<object_store::path::Path>> {
        let dir = self.path(STAGING_DIR);
        let listing = match self.store().list_with_delimiter(Some(&dir)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(LakeError::store(&dir, e)),
        };
        let mut out = Vec::new();
        for folder in listing.common_prefixes {
            if folder.filename() == Some(own) {
                continue;
            }
            let files: Vec<_> = match self.store().list(Some(&folder)).try_collect().await {
                Ok(f) => f,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(LakeError::store(&folder, e)),
            };
            if files.iter().all(|f| f.last_modified <= cutoff) {
                out.extend(files.into_iter().map(|f| f.location));
            }
        }
        Ok(out)
    }

    /// Publish the newest version minus the superseded records of `gone`.
    async fn publish_without(&self, lease: &LockGuard, gone: &BTreeSet<String>) -> Result<u64> {
        for _ in 0..5 {
            lease.ensure_held().await?;
            let (latest, number) = self.head().await?;
            crate::commit::check_generation(&latest, lease.run_id(), lease.generation())?;
            let mut next = latest.clone();
            next.superseded.retain(|s| !gone.contains(&s.path));
            next.version = number;
            next.committed_at = Some(Utc::now());
            next.run_id = Some(lease.run_id().to_string());
            next.lease_generation = Some(lease.generation());
            if self.try_publish(&next).await? {
                return Ok(number);
            }
        }
        Err(LakeError::Conflict { version: 0, what: "vacuum's version".into() })
    }
}
