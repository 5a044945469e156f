//! Run manifests `_lastseen/runs/<run-id>.json`: what one run did, source by source, so an
//! operator (and `lastseen tables`) can see calls, retries, rate-limit waits, rows and warnings.

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

    /// All run manifests, oldest first (run ids sort by start time).
    pub async fn run_manifests(&self) -> Result<Vec<RunManifest>> {
        let prefix = self.path(RUNS_DIR);
        let mut objects: Vec<_> = match self.store().list(Some(&prefix)).try_collect().await {
            Ok(o) => o,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(LakeError::store(&prefix, e)),
        };
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let mut out = Vec::new();
        for o in objects.iter().filter(|o| o.location.as_ref().ends_with(".json")) {
            let bytes = self
                .store()
                .get(&o.location)
                .await
                .map_err(|e| LakeError::store(&o.location, e))?
                .bytes()
                .await
                .map_err(|e| LakeError::store(&o.location, e))?;
            let m = serde_json::from_slice(&bytes)
                .map_err(|source| LakeError::Json { what: format!("run manifest {}", o.location), source })?;
            out.push(m);
        }
        Ok(out)
    }
}
