//! The single-writer lease: generation-numbered records `_lastseen/lease/<n>.json`, at most one
//! run holds the newest one, and only the holder of the newest one writes the lake.
//!
//! Why generations: taking over a stale lease must be as exclusive as taking a free one. A
//! contender never deletes or overwrites another run's record; it creates generation `n + 1`
//! with a create-only put, so of two contenders that both judged `n` stale exactly one wins
//! (the same rule as log versions). The holder renews its own record (heartbeat, every TTL/3)
//! while the run is alive, and checks that it still holds the newest generation, renewed within
//! its TTL, before it publishes a version and before it deletes anything (fencing); a run that
//! lost the lease stops with [`LakeError::LeaseLost`]. The generation is also recorded in every
//! log version, and a publish over a version with a higher generation is refused.
//!
//! Liveness is expiry plus heartbeat only: host names and PIDs prove nothing when containers
//! share them. Expiry compares the holder's clock with the contender's, so hosts writing one
//! lake must agree on the time to well within the TTL (NTP).

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{Lake, LakeError, Result};

pub(crate) const LEASE_DIR: &str = "_lastseen/lease";
/// The lease file of lastseen versions before generations: still honoured while unexpired, so
/// an old binary mid-run is not overtaken by a new one during an upgrade.
const LEGACY_LOCK: &str = "_lastseen/lock";
/// Generations kept below the newest; older records are removed by the next holder.
const KEEP_GENERATIONS: u64 = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    generation: u64,
    run_id: String,
    /// Unique per acquisition: tells this acquisition's record from any other, including one
    /// of the same run id, when a create-only put's answer was ambiguous.
    token: String,
    /// Unique per process; only used to release a lease the process abandoned.
    process: String,
    acquired_at: DateTime<Utc>,
    renewed_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    released: bool,
}

impl LeaseRecord {
    fn live(&self) -> bool {
        !self.released && self.expires_at > Utc::now()
    }
}

fn lease_rel(generation: u64) -> String {
    format!("{LEASE_DIR}/{generation:020}.json")
}

fn process_nonce() -> &'static str {
    static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NONCE.get_or_init(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Leases this process holds, so [`Lake::release_lock_held_by_this_process`] can stop their
/// heartbeats before it marks them released (otherwise a renewal could resurrect the record).
fn held_leases() -> &'static Mutex<Vec<Weak<LeaseState>>> {
    static HELD: std::sync::OnceLock<Mutex<Vec<Weak<LeaseState>>>> = std::sync::OnceLock::new();
    HELD.get_or_init(|| Mutex::new(Vec::new()))
}

/// What the holder knows about its lease; shared by the guard, its heartbeat task and the
/// transactions that fence on it.
#[derive(Debug)]
pub(crate) struct LeaseState {
    lake_url: String,
    record: Mutex<LeaseRecord>,
    ttl: Duration,
    /// Until when the lease is known to be ours: start of the last successful renewal + TTL.
    valid_until: Mutex<Instant>,
    /// Why the lease is no longer ours, once that is known.
    lost: Mutex<Option<String>>,
}

impl LeaseState {
    pub(crate) fn generation(&self) -> u64 {
        self.record.lock().expect("lease record lock").generation
    }

    fn run_id(&self) -> String {
        self.record.lock().expect("lease record lock").run_id.clone()
    }

    fn lost(&self, reason: String) -> LakeError {
        let mut lost = self.lost.lock().expect("lease lost lock");
        let reason = lost.get_or_insert(reason).clone();
        LakeError::LeaseLost { run_id: self.run_id(), generation: self.generation(), reason }
    }
}

/// Proof of holding the lease. Call [`LockGuard::release`] when done; a guard dropped without
/// release stops renewing, so the lease expires one TTL later.
#[derive(Debug)]
pub struct LockGuard {
    lake: Lake,
    run_id: String,
    state: Arc<LeaseState>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    released: bool,
}

impl Lake {
    /// The newest lease generation and its record (`None` for a lake never leased). An
    /// unreadable record (a torn write) is returned as `Err` so the caller treats it as stale.
    async fn newest_lease(&self) -> Result<Option<(u64, std::result::Result<LeaseRecord, String>)>> {
        let prefix = self.path(LEASE_DIR);
        let objects: Vec<_> = match self.store().list(Some(&prefix)).try_collect().await {
            Ok(o) => o,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(LakeError::store(&prefix, e)),
        };
        let Some(newest) =
            objects.iter().filter_map(|m| m.location.filename()?.strip_suffix(".json")?.parse::<u64>().ok()).max()
        else {
            return Ok(None);
        };
        Ok(Some((newest, self.read_lease(newest).await?)))
    }

    async fn read_lease(&self, generation: u64) -> Result<std::result::Result<LeaseRecord, String>> {
        let path = self.path(&lease_rel(generation));
        let bytes = match self.store().get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| LakeError::store(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(Err("removed".into())),
            Err(e) => return Err(LakeError::store(&path, e)),
        };
        Ok(serde_json::from_slice::<LeaseRecord>(&bytes).map_err(|e| e.to_string()))
    }

    async fn write_lease(&self, rec: &LeaseRecord, mode: PutMode) -> Result<std::result::Result<(), ()>> {
        let path = self.path(&lease_rel(rec.generation));
        let body = serde_json::to_vec(rec).map_err(|source| LakeError::Json { what: "lease".into(), source })?;
        match self.store().put_opts(&path, PutPayload::from(body), PutOptions { mode, ..Default::default() }).await {
            Ok(_) => Ok(Ok(())),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(Err(())),
            Err(e) => Err(LakeError::store(&path, e)),
        }
    }

    /// Take the lease for `run_id` with expiry `ttl` (renewed every `ttl / 3` while the guard
    /// lives), or fail with [`LakeError::Locked`] naming the holder. First checks, once per
    /// process, that the store really honours create-only puts ([`Lake::verify_create_only`]).
    pub async fn acquire_lock(&self, run_id: &str, ttl: Duration) -> Result<LockGuard> {
        self.verify_create_only().await?;
        self.check_legacy_lock().await?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        for _ in 0..3 {
            let newest = self.newest_lease().await?;
            let next = match &newest {
                None => 1,
                Some((_, Ok(cur))) if cur.live() => {
                    return Err(LakeError::Locked {
                        holder: cur.run_id.clone(),
                        expires_at: cur.expires_at.to_rfc3339(),
                    });
                }
                Some((n, cur)) => {
                    match cur {
                        Ok(cur) if cur.released => {}
                        Ok(cur) => tracing::warn!(
                            holder = %cur.run_id,
                            generation = n,
                            expired_at = %cur.expires_at,
                            "taking over an expired lake lease (its run died or stopped renewing it)"
                        ),
                        Err(e) => tracing::warn!(generation = n, error = %e, "taking over an unreadable lake lease"),
                    }
                    n + 1
                }
            };
            let now = Utc::now();
            let rec = LeaseRecord {
                generation: next,
                run_id: run_id.to_string(),
                token: token.clone(),
                process: process_nonce().to_string(),
                acquired_at: now,
                renewed_at: now,
                expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1)),
                released: false,
            };
            let started = Instant::now();
            let won = match self.write_lease(&rec, PutMode::Create).await? {
                Ok(()) => true,
                // Someone created this generation first, or our own put was applied and its
                // answer lost (a retried create sees 412): the token tells which.
                Err(()) => matches!(self.read_lease(next).await?, Ok(r) if r.token == token),
            };
            if won {
                self.prune_leases(next).await;
                let guard = self.guard(rec, ttl, started);
                // Catch-up: a run killed between lastseen's put and the Delta commits left the
                // Delta view behind (and a lake from before Delta logs has none); the holder of
                // the lease brings every table up to the newest version first.
                self.sync_delta_logged(&guard.state()).await;
                return Ok(guard);
            }
        }
        Err(LakeError::Locked { holder: "another run (contended)".into(), expires_at: "unknown".into() })
    }

    /// An unexpired `_lastseen/lock` from a lastseen version before generation leases.
    async fn check_legacy_lock(&self) -> Result<()> {
        #[derive(Deserialize)]
        struct Legacy {
            run_id: String,
            expires_at: DateTime<Utc>,
        }
        let path = self.path(LEGACY_LOCK);
        let bytes = match self.store().get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| LakeError::store(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(LakeError::store(&path, e)),
        };
        match serde_json::from_slice::<Legacy>(&bytes) {
            Ok(l) if l.expires_at > Utc::now() => Err(LakeError::Locked {
                holder: format!("{} (an older lastseen's `{LEGACY_LOCK}`)", l.run_id),
                expires_at: l.expires_at.to_rfc3339(),
            }),
            _ => Ok(()),
        }
    }

    fn guard(&self, rec: LeaseRecord, ttl: Duration, renewed: Instant) -> LockGuard {
        let run_id = rec.run_id.clone();
        let state = Arc::new(LeaseState {
            lake_url: self.url().to_string(),
            record: Mutex::new(rec),
            ttl,
            valid_until: Mutex::new(renewed + ttl),
            lost: Mutex::new(None),
        });
        {
            let mut held = held_leases().lock().expect("held leases lock");
            held.retain(|w| w.strong_count() > 0);
            held.push(Arc::downgrade(&state));
        }
        // A zero TTL is a lease that is stale at once (tests); nothing to renew.
        let heartbeat = (!ttl.is_zero()).then(|| {
            let lake = self.clone();
            let state = Arc::clone(&state);
            tokio::spawn(async move { heartbeat(lake, state).await })
        });
        LockGuard { lake: self.clone(), run_id, state, heartbeat, released: false }
    }

    /// Remove lease records far below the newest (best effort). The newest is never removed,
    /// so a generation number is never reused.
    async fn prune_leases(&self, newest: u64) {
        for g in newest.saturating_sub(KEEP_GENERATIONS + 8)..newest.saturating_sub(KEEP_GENERATIONS) {
            let _ = self.store().delete(&self.path(&lease_rel(g))).await;
        }
    }

    /// Fencing: `Ok` only if `state`'s generation is still the newest, still ours, not released,
    /// and renewed within its TTL. Called before every publish and every delete.
    pub(crate) async fn check_lease(&self, state: &LeaseState) -> Result<()> {
        let lost = state.lost.lock().expect("lease lost lock").clone();
        if let Some(reason) = lost {
            return Err(state.lost(reason));
        }
        let (generation, token) = {
            let r = state.record.lock().expect("lease record lock");
            (r.generation, r.token.clone())
        };
        match self.newest_lease().await? {
            Some((n, Ok(rec))) if n == generation && rec.token == token && !rec.released => {
                let valid_until = *state.valid_until.lock().expect("lease validity lock");
                if Instant::now() >= valid_until {
                    return Err(state.lost(format!(
                        "it was not renewed within its {:?} TTL, so another run may take it over at any moment",
                        state.ttl
                    )));
                }
                Ok(())
            }
            Some((n, Ok(rec))) if n > generation => {
                Err(state.lost(format!("run {} took over generation {n}", rec.run_id)))
            }
            Some((n, _)) if n > generation => Err(state.lost(format!("generation {n} was taken"))),
            Some((_, Ok(rec))) if rec.released => Err(state.lost("the lease was released".into())),
            _ => Err(state.lost("its lease record is gone or was replaced".into())),
        }
    }

    /// Renew `state`'s record: fence, then rewrite our own generation with a later expiry.
    /// Only the holder ever writes its generation's key, so the plain put is safe.
    pub(crate) async fn renew_lease(&self, state: &LeaseState) -> Result<()> {
        let started = Instant::now();
        self.check_lease(state).await?;
        let rec = {
            let mut r = state.record.lock().expect("lease record lock");
            let now = Utc::now();
            r.renewed_at = now;
            r.expires_at = now + chrono::Duration::from_std(state.ttl).unwrap_or(chrono::Duration::hours(1));
            r.clone()
        };
        let _ = self.write_lease(&rec, PutMode::Overwrite).await?;
        *state.valid_until.lock().expect("lease validity lock") = started + state.ttl;
        Ok(())
    }
}

async fn heartbeat(lake: Lake, state: Arc<LeaseState>) {
    let every = (state.ttl / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        match lake.renew_lease(&state).await {
            Ok(()) => {}
            Err(e @ LakeError::LeaseLost { .. }) => {
                tracing::error!(error = %e, "the lake lease was lost; this run will not publish");
                return;
            }
            // A failed renewal is retried; if none succeeds within the TTL, fencing fails.
            Err(e) => tracing::warn!(error = %e, "could not renew the lake lease; retrying"),
        }
    }
}

impl Lake {
    /// Release the newest lease if this process holds it, whichever run took it. For a process
    /// that abandons a run it was executing (the daemon's shutdown after its grace period): the
    /// run's guard may be gone without a release, and waiting out the expiry would block the
    /// next run. Returns the run id of the lease it released.
    pub async fn release_lock_held_by_this_process(&self) -> Result<Option<String>> {
        let url = self.url().to_string();
        let held: Vec<Arc<LeaseState>> = held_leases()
            .lock()
            .expect("held leases lock")
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|s| s.lake_url == url)
            .collect();
        for s in &held {
            // Stops their heartbeats: a renewal must not rewrite the record after the release.
            let _ = s.lost("the lease was released by this process".into());
        }
        let Some((_, Ok(mut rec))) = self.newest_lease().await? else { return Ok(None) };
        if rec.process != process_nonce() || rec.released {
            return Ok(None);
        }
        rec.released = true;
        let _ = self.write_lease(&rec, PutMode::Overwrite).await?;
        Ok(Some(rec.run_id))
    }
}

impl LockGuard {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The lease generation this guard holds (recorded in every version it publishes).
    pub fn generation(&self) -> u64 {
        self.state.generation()
    }

    /// Fencing for callers outside the commit: `Err(LeaseLost)` unless this guard still holds
    /// the newest lease generation. Call it before publishing or deleting anything.
    pub async fn ensure_held(&self) -> Result<()> {
        self.lake.check_lease(&self.state).await
    }

    pub(crate) fn state(&self) -> Arc<LeaseState> {
        Arc::clone(&self.state)
    }

    /// Renew now rather than on the heartbeat's schedule (tests; a caller about to start a long
    /// step).
    pub async fn renew(&self) -> Result<()> {
        self.lake.renew_lease(&self.state).await
    }

    /// Give the lease up, if it is still ours: the record is marked released (never deleted, so
    /// its generation number is never reused) and the next run takes generation `n + 1` at once.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        // Anything still fencing on this lease (a heartbeat mid-renewal) now fails.
        let _ = self.state.lost("the lease was released".into());
        let generation = self.state.generation();
        let token = self.state.record.lock().expect("lease record lock").token.clone();
        match self.lake.newest_lease().await? {
            Some((n, Ok(mut rec))) if n == generation && rec.token == token => {
                rec.released = true;
                let _ = self.lake.write_lease(&rec, PutMode::Overwrite).await?;
            }
            _ => tracing::debug!(run_id = %self.run_id, generation, "lease already taken over; nothing to release"),
        }
        Ok(())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if !self.released {
            tracing::debug!(run_id = %self.run_id, "lake lease dropped without release; it will expire");
        }
    }
}
