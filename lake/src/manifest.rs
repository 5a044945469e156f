//! Run manifests `_lastseen/runs/<run-id>.json`: what one run did, source by source, so an
//! operator (and `lastseen tables`) can see calls, retries, rate-limit waits, rows and warnings.
//!
//! Manifests are a record, not the lake's state: one that cannot be read (cut short by a power
//! loss, written by a newer lastseen, edited by hand) is skipped with a warning, never an error
//! that stops a daemon or a report.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{Lake, LakeError, Result};

const RUNS_DIR: &str = "_lastseen/runs";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    /// Committed, but at least one source was skipped or failed.
    Partial,
    Failed,
}

/// How a source ended in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Its rows are in the run's commit.
    Collected,
    /// The plan, scopes or token type cannot serve it (`error` says which); nothing was written.
    Skipped,
    /// It failed; the run failed with it.
    Failed,
}

/// What started a run: the daily job (`run`, the daemon's ticks and catch-up, `demo`) or a
/// backfill of past days. Only daily runs count when the daemon looks for missed days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    #[default]
    Daily,
    /// `lastseen backfill --from --to`; the manifest's `date` is `to`.
    Backfill { from: NaiveDate, to: NaiveDate },
}

/// Per-source counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceReport {
    /// The app the source belongs to (`slack`, `okta`); empty in manifests written before
    /// sources carried it (those are all Slack's).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub app: String,
    pub status: Option<SourceStatus>,
    /// Workspaces the source was collected for (organisation-wide sources count 1).
    pub workspaces: u64,
    /// Wall time from the first call to the last row.
    pub duration_ms: u64,
    pub calls: u64,
    pub pages: u64,
    pub rows: u64,
    pub retries: u64,
    /// HTTP 429 answers (and `ok:false` `ratelimited`).
    pub rate_limited: u64,
    /// Time spent waiting for the client-side rate budget and for 429s' `Retry-After`.
    pub rate_wait_ms: u64,
    pub warnings: Vec<String>,
    /// Why the source produced nothing, when it failed or was skipped.
    pub error: Option<String>,
    /// What of the source was not collected, and why: a workspace (or, with no workspace, the
    /// whole source or an organisation-wide part of it) and Slack's code.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkipReport>,
}

/// One part of a source skipped for a standing condition (docs/DESIGN.md §2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SkipReport {
    /// The workspace skipped; `None` for the whole source or an organisation-wide part.
    pub workspace: Option<String>,
    /// Slack's code (`team_access_not_granted`, `missing_scope`, `http_401`, …).
    pub code: String,
    /// The full message: what failed and what to do.
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableReport {
    pub partitions: u64,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    pub run_id: String,
    pub date: NaiveDate,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub status: RunStatus,
    /// Manifests written before this field existed were daily runs.
    #[serde(default)]
    pub kind: RunKind,
    /// The log version this run published, if it committed.
    pub lake_version: Option<u64>,
    pub sources: BTreeMap<String, SourceReport>,
    pub tables: BTreeMap<String, TableReport>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub lastseen_version: String,
}

impl RunManifest {
    /// A manifest for a run that has just started: no sources, tables or warnings yet.
    pub fn start(run_id: &str, date: NaiveDate, started_at: DateTime<Utc>) -> RunManifest {
        RunManifest {
            run_id: run_id.to_string(),
            date,
            started_at,
            finished_at: started_at,
            status: RunStatus::Succeeded,
            kind: RunKind::Daily,
            lake_version: None,
            sources: BTreeMap::new(),
            tables: BTreeMap::new(),
            warnings: Vec::new(),
            error: None,
            lastseen_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl Lake {
    pub async fn write_run_manifest(&self, m: &RunManifest) -> Result<()> {
        let path = self.path(&format!("{RUNS_DIR}/{}.json", m.run_id));
        let body =
            serde_json::to_vec_pretty(m).map_err(|source| LakeError::Json { what: "run manifest".into(), source })?;
        self.store().put(&path, PutPayload::from(body)).await.map_err(|e| LakeError::store(&path, e))?;
        Ok(())
    }

    /// All readable run manifests, oldest first (run ids sort by start time). Reads every
    /// manifest ever written: callers that only need the latest runs use
    /// [`Lake::recent_run_manifests`].
    pub async fn run_manifests(&self) -> Result<Vec<RunManifest>> {
        self.read_manifests(None).await
    }

    /// The readable manifests among the newest `n` written (by run id, i.e. start time), oldest
    /// first: a bounded number of reads however long the lake's history is.
    pub async fn recent_run_manifests(&self, n: usize) -> Result<Vec<RunManifest>> {
        self.read_manifests(Some(n)).await
    }

    /// The manifest of run `run_id`, `None` when none was written (or it cannot be read): one
    /// read however many runs the lake has seen. Provenance looks up the run that published
    /// the version it read; reading every manifest instead cost a year-old lake 365 reads per
    /// report (seconds on S3, one request after another).
    pub async fn run_manifest(&self, run_id: &str) -> Result<Option<RunManifest>> {
        // A run id is one path segment (see `new_run_id`); anything else names no manifest.
        if run_id.is_empty() || run_id.contains('/') || run_id.starts_with('.') {
            return Ok(None);
        }
        let location = self.path(&format!("{RUNS_DIR}/{run_id}.json"));
        match self.read_manifest(&location).await {
            Ok(m) => Ok(Some(m)),
            Err(LakeError::Store { source: object_store::Error::NotFound { .. }, .. }) => Ok(None),
            Err(e) => {
                tracing::warn!(manifest = %location, error = %e, "the run manifest cannot be read; the lake's data does not depend on it");
                Ok(None)
            }
        }
    }

    /// The newest readable manifest (by run id, i.e. start time) that `accepts`, reading newest
    /// first and stopping at the first: the run a report asks about (the one that wrote its
    /// as-of day) is nearly always among the last few, so this is a handful of reads where
    /// [`Lake::run_manifests`] reads the lake's whole history.
    pub async fn newest_run_manifest(&self, accepts: impl Fn(&RunManifest) -> bool) -> Result<Option<RunManifest>> {
        let mut objects = self.manifest_objects().await?;
        objects.reverse();
        for o in &objects {
            if let Some(m) = self.read_manifest_or_warn(&o.location).await
                && accepts(&m)
            {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// The manifest files under `_lastseen/runs/`, oldest first (one listing).
    async fn manifest_objects(&self) -> Result<Vec<object_store::ObjectMeta>> {
        let prefix = self.path(RUNS_DIR);
        let mut objects: Vec<_> = match self.store().list(Some(&prefix)).try_collect().await {
            Ok(o) => o,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(LakeError::store(&prefix, e)),
        };
        objects.retain(|o| o.location.as_ref().ends_with(".json"));
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    async fn read_manifests(&self, newest: Option<usize>) -> Result<Vec<RunManifest>> {
        let mut objects = self.manifest_objects().await?;
        if let Some(n) = newest {
            objects.drain(..objects.len().saturating_sub(n));
        }
        let mut out = Vec::new();
        for o in &objects {
            out.extend(self.read_manifest_or_warn(&o.location).await);
        }
        Ok(out)
    }

    /// The manifest at `location`, or a warning and `None` when it cannot be read.
    async fn read_manifest_or_warn(&self, location: &object_store::path::Path) -> Option<RunManifest> {
        match self.read_manifest(location).await {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(
                    manifest = %location,
                    error = %e,
                    "skipping a run manifest that cannot be read; the lake's data does not depend on it"
                );
                None
            }
        }
    }

    async fn read_manifest(&self, location: &object_store::path::Path) -> Result<RunManifest> {
        let bytes = self
            .store()
            .get(location)
            .await
            .map_err(|e| LakeError::store(location, e))?
            .bytes()
            .await
            .map_err(|e| LakeError::store(location, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|source| LakeError::Json { what: format!("run manifest {location}"), source })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[tokio::test]
    async fn an_unreadable_manifest_is_skipped_and_recent_reads_only_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&url::Url::from_directory_path(dir.path()).unwrap(), &BTreeMap::new()).unwrap();
        for (id, t) in [("20260601T003000Z-a", "2026-06-01T00:30:00Z"), ("20260602T003000Z-b", "2026-06-02T00:30:00Z")]
        {
            lake.write_run_manifest(&RunManifest::start(id, at(t).date_naive(), at(t))).await.unwrap();
        }
        // Cut short by a power loss, and one with a status a newer lastseen wrote.
        let put = |name: &str, body: &'static str| {
            let lake = lake.clone();
            let path = lake.path(&format!("{RUNS_DIR}/{name}"));
            async move { lake.store().put(&path, PutPayload::from_static(body.as_bytes())).await.unwrap() }
        };
        put("20260601T120000Z-bad.json", "").await;
        let newer = r#"{"run_id":"x","date":"2026-06-03","started_at":"2026-06-03T00:30:00Z","finished_at":"2026-06-03T00:30:00Z","status":"aborted_by_operator","lake_version":null,"sources":{},"tables":{},"warnings":[],"error":null,"lastseen_version":"9"}"#;
        put("20260603T003000Z-new.json", newer).await;

        let all = lake.run_manifests().await.unwrap();
        assert_eq!(
            all.iter().map(|m| m.run_id.as_str()).collect::<Vec<_>>(),
            ["20260601T003000Z-a", "20260602T003000Z-b"]
        );
        // The newest two written are the good "b" and the unreadable newer one.
        let recent = lake.recent_run_manifests(2).await.unwrap();
        assert_eq!(recent.iter().map(|m| m.run_id.as_str()).collect::<Vec<_>>(), ["20260602T003000Z-b"]);
        assert!(lake.recent_run_manifests(0).await.unwrap().is_empty());
    }
}
