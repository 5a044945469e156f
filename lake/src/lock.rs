//! The single-flight lease `_lastseen/lock`: at most one run writes the lake at a time.
//!
//! Taken with a create-only put, so two processes (or two machines) cannot both hold it. A lease
//! has an expiry; a lease whose holder is known to be dead (same host, process gone) or whose
//! expiry has passed is taken over, so a killed run never blocks the next one for long.

use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{Lake, LakeError, Result};

const LOCK_PATH: &str = "_lastseen/lock";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    run_id: String,
    host: String,
    pid: u32,
    acquired_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// Proof of holding the lease. Call [`LockGuard::release`] when done; a guard that is dropped
/// without release leaves the lease to expire.
#[derive(Debug)]
pub struct LockGuard {
    lake: Lake,
    run_id: String,
    released: bool,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn holder_is_dead(rec: &LeaseRecord) -> bool {
    // Only provable on this host and where /proc exists; elsewhere rely on the expiry.
    rec.host == host_name()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{}", rec.pid)).exists()
}

impl Lake {
    /// Take the lease for `run_id` for `ttl`, or fail with [`LakeError::Locked`] naming the holder.
    pub async fn acquire_lock(&self, run_id: &str, ttl: Duration) -> Result<LockGuard> {
        let path = self.path(LOCK_PATH);
        for _ in 0..3 {
            let now = Utc::now();
            let rec = LeaseRecord {
                run_id: run_id.to_string(),
                host: host_name(),
                pid: std::process::id(),
                acquired_at: now,
                expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(6)),
            };
            let body = serde_json::to_vec(&rec).map_err(|source| LakeError::Json { what: "lease".into(), source })?;
            let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
            match self.store().put_opts(&path, PutPayload::from(body), opts).await {
                Ok(_) => {
                    return Ok(LockGuard { lake: self.clone(), run_id: run_id.to_string(), released: false });
                }
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {}
                Err(e) => return Err(LakeError::store(&path, e)),
            }
            let held = match self.store().get(&path).await {
                Ok(r) => r.bytes().await.map_err(|e| LakeError::store(&path, e))?,
                // Released between our put and our read: try again.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(LakeError::store(&path, e)),
            };
            let current: Option<LeaseRecord> = serde_json::from_slice(&held).ok();
            match current {
                Some(cur) if cur.expires_at > Utc::now() && !holder_is_dead(&cur) => {
                    return Err(LakeError::Locked { holder: cur.run_id, expires_at: cur.expires_at.to_rfc3339() });
                }
                stale => {
                    tracing::warn!(
                        holder = stale.as_ref().map(|s| s.run_id.as_str()).unwrap_or("unreadable lease"),
                        "taking over a stale lake lease (its run died or expired)"
                    );
                    self.store().delete(&path).await.map_err(|e| LakeError::store(&path, e))?;
                }
            }
        }
        Err(LakeError::Locked { holder: "another run (contended)".into(), expires_at: "unknown".into() })
    }
}

impl Lake {
    /// Delete the lease if this process holds it, whichever run took it. For a process that
    /// abandons a run it was executing (the daemon's shutdown after its grace period): the run's
    /// guard is gone without a release, and waiting out the expiry would block the next run for
    /// hours on another host. Returns the run id of the lease it removed.
    pub async fn release_lock_held_by_this_process(&self) -> Result<Option<String>> {
        let path = self.path(LOCK_PATH);
        let held = match self.store().get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| LakeError::store(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(LakeError::store(&path, e)),
        };
        match serde_json::from_slice::<LeaseRecord>(&held) {
            Ok(rec) if rec.host == host_name() && rec.pid == std::process::id() => {
                self.store().delete(&path).await.map_err(|e| LakeError::store(&path, e))?;
                Ok(Some(rec.run_id))
            }
            _ => Ok(None),
        }
    }
}

impl LockGuard {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Give the lease up, if it is still ours.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        let path = self.lake.path(LOCK_PATH);
        let ours = match self.lake.store().get(&path).await {
            Ok(r) => {
                let b = r.bytes().await.map_err(|e| LakeError::store(&path, e))?;
                serde_json::from_slice::<LeaseRecord>(&b).map(|r| r.run_id == self.run_id).unwrap_or(false)
            }
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => return Err(LakeError::store(&path, e)),
        };
        if ours {
            self.lake.store().delete(&path).await.map_err(|e| LakeError::store(&path, e))?;
        }
        Ok(())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            tracing::debug!(run_id = %self.run_id, "lake lease dropped without release; it will expire");
        }
    }
}
