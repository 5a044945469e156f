//! `lastseen daemon`: the daily run on the configured schedule (tokio-cron-scheduler), missed
//! days caught up on start and at every tick (a day that failed is retried by the next tick),
//! never two runs at once (a single run slot in this process, the lake lease across processes
//! and machines), `/healthz` and `/metrics` (loopback by default, with connection limits and
//! timeouts), and a graceful shutdown.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use lastseen_config::{Config, Schedule};
use lastseen_lake::{Lake, LakeError, RunKind, RunStatus};
use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::cli::{DaemonArgs, GlobalArgs};
use crate::metrics::{self, Health};
use lastseen::pipeline::{DayRun, run_day};

pub async fn run(g: &GlobalArgs, args: &DaemonArgs) -> anyhow::Result<u8> {
    // Installed first: from here on SIGTERM means "stop gracefully", never the default kill.
    let shutdown = super::simulate::shutdown_signal()?;
    let cfg = super::load_config(g)?;
    // Fail at start, with exit 78, rather than at the first tick hours later. Each run loads the
    // apps' secrets again, so a rotated token file is picked up without a restart.
    drop(super::configured_apps(&cfg)?);
    let lake = super::open_lake(&cfg)?;
    let listen = args.listen.unwrap_or(cfg.daemon.listen);
    // `serve.in_daemon`: the Postgres listener of `lastseen serve` in this process too, checked
    // (users, TLS) before anything starts.
    let pg = if cfg.serve.in_daemon { Some(super::serve::bind(&cfg, lake.clone()).await?) } else { None };

    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus metrics recorder")?;
    metrics::describe();

    let schedule = cfg.daemon.schedule.clone();
    let health = Arc::new(Mutex::new(Health { schedule: schedule.to_string(), ..Health::default() }));
    // Only the newest manifests are read (a bounded number of GETs however long the history):
    // enough for several runs a day over the catch-up window. A day whose success is older
    // than what is read looks missed at worst, and re-running a day replaces it.
    let recent = 4 * cfg.daemon.catch_up_days as usize + 16;
    let runs = lake.recent_run_manifests(recent).await.context("reading the run manifests in _lastseen/runs")?;
    let ok_runs: Vec<_> = runs.iter().filter(|m| m.kind == RunKind::Daily && m.status != RunStatus::Failed).collect();
    let last_ok = ok_runs.iter().max_by_key(|m| (m.date, m.finished_at)).copied();
    // Set when a shutdown's grace period runs out: the run in progress stops through its own
    // cancel path (failed manifest, lease released by its guard).
    let (abandon, mut abandon_rx) = tokio::sync::watch::channel(false);
    let abandoned: lastseen::pipeline::Cancel = futures::FutureExt::shared(Box::pin(async move {
        let _ = abandon_rx.wait_for(|v| *v).await;
    })
        as futures::future::BoxFuture<'static, ()>);
    let d = Arc::new(Daemon {
        cfg,
        lake,
        busy: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        current: Mutex::new(None),
        health: health.clone(),
        ok_days: Mutex::new(ok_runs.iter().map(|m| m.date).collect()),
        abandon,
        abandoned,
    });
    if let Some(m) = last_ok {
        metrics::record_success_time(m.finished_at);
        d.update_health(|h| h.last_success = Some(m.finished_at));
    }

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} (daemon.listen) for /healthz and /metrics"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let listener = metrics::GuardedListener::new(
        listener,
        metrics::MAX_CONNECTIONS,
        metrics::IDLE_TIMEOUT,
        metrics::CONNECTION_LIFETIME,
    );
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let app = metrics::router(health, prometheus);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the /healthz and /metrics server stopped");
        }
    });

    let (stop_pg, pg_stopped) = tokio::sync::oneshot::channel::<()>();
    let pg = pg.map(|server| {
        tokio::spawn(async move {
            if let Err(e) = server
                .run(async move {
                    let _ = pg_stopped.await;
                })
                .await
            {
                tracing::error!(error = %e, "the Postgres listener stopped");
            }
        })
    });

    let now = Utc::now();
    let days = missed_days(
        &d.ok_days(),
        schedule.latest_at_or_before(now).map(|t| t.date_naive()),
        now.date_naive(),
        d.cfg.daemon.catch_up_days,
    );
    if !days.is_empty() {
        tracing::info!(days = ?days.iter().map(|d| d.to_string()).collect::<Vec<_>>(), "catching up missed days");
        if let Some(slot) = d.try_claim(days[0]) {
            let (d2, first) = (d.clone(), days[0]);
            let handle = tokio::spawn(async move { d2.catch_up(days, slot).await });
            d.set_current(first, handle);
        }
    } else if d.ok_days().is_empty() {
        tracing::info!("no successful daily run in the lake yet: the first run comes with the schedule");
    }

    let mut sched = JobScheduler::new().await.context("starting the scheduler")?;
    arm(&sched, d.clone(), now).await?;
    sched.start().await.context("starting the scheduler")?;
    tracing::info!(%addr, schedule = %schedule, "daemon started: /healthz and /metrics on http://{addr}");

    shutdown.await;
    tracing::info!("shutdown requested: no new runs will start");
    d.stopping.store(true, Ordering::SeqCst);
    d.update_health(|h| {
        h.shutting_down = true;
        h.next_run = None;
    });
    if let Err(e) = sched.shutdown().await {
        tracing::warn!(error = %e, "the scheduler did not stop cleanly");
    }
    d.finish_or_abandon().await;
    let _ = stop_http.send(());
    let _ = server.await;
    let _ = stop_pg.send(());
    if let Some(pg) = pg {
        let _ = pg.await;
    }
    tracing::info!("daemon stopped");
    Ok(crate::exit::OK)
}

/// The days to catch up: those without a successful daily run (`ok`), after the first one
/// known, up to `last_due` (the day of the schedule's latest fire time on start; the day before
/// the fire day at a tick), no further back than `window` days before `today`; oldest first.
/// Nothing when the lake has no successful run yet (there is no gap to fill). A day that failed
/// between two successes is missed too, so the next tick retries it.
fn missed_days(ok: &BTreeSet<NaiveDate>, last_due: Option<NaiveDate>, today: NaiveDate, window: u32) -> Vec<NaiveDate> {
    let (Some(&first_ok), Some(last_due)) = (ok.first(), last_due) else { return Vec::new() };
    if window == 0 {
        return Vec::new();
    }
    let earliest = today - chrono::Days::new(u64::from(window));
    let first = (first_ok + chrono::Days::new(1)).max(earliest);
    first.iter_days().take_while(|d| *d <= last_due).filter(|d| !ok.contains(d)).collect()
}

struct Daemon {
    cfg: Config,
    lake: Lake,
    /// The single run slot: a tick that finds it taken is skipped.
    busy: AtomicBool,
    stopping: AtomicBool,
    /// The task executing the current run (or catch-up), so a shutdown can wait for it.
    current: Mutex<Option<(NaiveDate, JoinHandle<()>)>>,
    health: Arc<Mutex<Health>>,
    /// Days with a successful (or partial) daily run: from the recent manifests, then each run.
    ok_days: Mutex<BTreeSet<NaiveDate>>,
    /// `true` abandons the run in progress (see `finish_or_abandon`); `abandoned` is its cancel.
    abandon: tokio::sync::watch::Sender<bool>,
    abandoned: lastseen::pipeline::Cancel,
}

/// Holding the run slot; dropping it frees the slot.
struct RunSlot {
    d: Arc<Daemon>,
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        self.d.busy.store(false, Ordering::SeqCst);
        ::metrics::gauge!(metrics::RUN_IN_PROGRESS).set(0.0);
        self.d.update_health(|h| h.running = None);
    }
}

/// How one run ended, as far as the daemon's scheduling cares.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Committed,
    Failed,
    /// Another lastseen (a second daemon, a CronJob, a manual `run`) holds the lake lease.
    Locked,
}

impl Daemon {
    fn update_health(&self, f: impl FnOnce(&mut Health)) {
        f(&mut self.health.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn ok_days(&self) -> BTreeSet<NaiveDate> {
        self.ok_days.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn try_claim(self: &Arc<Self>, date: NaiveDate) -> Option<RunSlot> {
        if self.stopping.load(Ordering::SeqCst) || self.busy.swap(true, Ordering::SeqCst) {
            return None;
        }
        ::metrics::gauge!(metrics::RUN_IN_PROGRESS).set(1.0);
        self.update_health(|h| h.running = Some(date));
        Some(RunSlot { d: self.clone() })
    }

    fn set_current(&self, date: NaiveDate, handle: JoinHandle<()>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((date, handle));
    }

    /// A schedule tick: run the days missed before the fire time's UTC day (a failed day, a
    /// day skipped while a run was going), oldest first, then that day; unless a run is going
    /// or we are stopping.
    fn tick(self: &Arc<Self>, fire: DateTime<Utc>) {
        let date = fire.date_naive();
        if self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Some(slot) = self.try_claim(date) else {
            tracing::warn!(%date, "skipped: the previous run is still going; the next tick catches this day up");
            metrics::record_skip("skipped_busy");
            return;
        };
        let mut days =
            missed_days(&self.ok_days(), date.pred_opt(), Utc::now().date_naive(), self.cfg.daemon.catch_up_days);
        if !days.is_empty() {
            tracing::info!(days = ?days.iter().map(|d| d.to_string()).collect::<Vec<_>>(), "catching up missed days");
        }
        days.push(date);
        let d = self.clone();
        let handle = tokio::spawn(async move { d.catch_up(days, slot).await });
        self.set_current(date, handle);
    }

    async fn catch_up(self: Arc<Self>, days: Vec<NaiveDate>, slot: RunSlot) {
        for date in days {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            self.update_health(|h| h.running = Some(date));
            if self.run_one(date).await == Ended::Locked {
                tracing::warn!("catch-up stopped: another lastseen instance is writing the lake");
                break;
            }
        }
        drop(slot);
    }

    async fn run_one(&self, date: NaiveDate) -> Ended {
        let t0 = Instant::now();
        let apps = match super::configured_apps(&self.cfg) {
            Ok(apps) => apps,
            Err(e) => {
                tracing::error!(%date, error = %crate::exit::render(&e), "run not started: an app could not be set up");
                metrics::record_failure(t0.elapsed());
                return Ended::Failed;
            }
        };
        tracing::info!(%date, "scheduled run starting");
        let run = DayRun {
            config: &self.cfg,
            lake: &self.lake,
            date,
            dry_run: false,
            progress: None,
            cancel: Some(self.abandoned.clone()),
        };
        let ran = run_day(run, apps).await.map_err(anyhow::Error::from);
        match ran {
            Ok(outcome) => {
                let m = &outcome.manifest;
                metrics::record_run(m);
                if m.status == RunStatus::Failed {
                    return Ended::Failed;
                }
                self.ok_days.lock().unwrap_or_else(|e| e.into_inner()).insert(date);
                self.update_health(|h| h.last_success = Some(m.finished_at));
                Ended::Committed
            }
            Err(err)
                if err.chain().any(|e| matches!(e.downcast_ref::<LakeError>(), Some(LakeError::Locked { .. }))) =>
            {
                tracing::warn!(%date, reason = %crate::exit::render(&err), "skipped: another lastseen instance holds the lake lease");
                metrics::record_skip("skipped_locked");
                Ended::Locked
            }
            Err(err) => {
                tracing::error!(%date, error = %crate::exit::render(&err), "run failed; the next tick tries again");
                metrics::record_failure(t0.elapsed());
                Ended::Failed
            }
        }
    }

    /// Wait for the run in progress up to the grace period; past it, abandon the run. A run
    /// that is cut off never published a partial version (the commit is one create-only put),
    /// so the lake stays at its last committed version. It is stopped through its cancel, so it
    /// records a failed manifest and releases its lease itself; only if it does not stop within
    /// a few seconds is its task aborted and the lease released here, so the next run, on any
    /// host, does not wait for the lease to expire.
    async fn finish_or_abandon(&self) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some((date, mut handle)) = current else { return };
        if handle.is_finished() {
            return;
        }
        let grace = self.cfg.daemon.shutdown_grace;
        tracing::info!(%date, grace = %humantime_secs(grace), "waiting for the run in progress to finish");
        if tokio::time::timeout(grace, &mut handle).await.is_ok() {
            tracing::info!(%date, "the run in progress finished");
            return;
        }
        let _ = self.abandon.send(true);
        if tokio::time::timeout(Duration::from_secs(10), &mut handle).await.is_ok() {
            tracing::warn!(%date, "abandoned the run in progress after the grace period; the lake keeps its last committed version and the next run redoes the day");
            tracing::info!(%date, "released the abandoned run's lake lease (the run gave it back)");
            return;
        }
        handle.abort();
        let _ = handle.await;
        tracing::warn!(%date, "abandoned the run in progress after the grace period; the lake keeps its last committed version and the next run redoes the day");
        match self.lake.release_lock_held_by_this_process().await {
            Ok(Some(run_id)) => tracing::info!(%run_id, "released the abandoned run's lake lease"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not release the abandoned run's lease; it will expire"),
        }
    }
}

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// Schedule the first fire time after `after` as a one-shot job that, when it fires, first arms
/// the following one and then ticks. Fire times come from [`Schedule`] (DST-correct in the
/// configured zone) rather than from the scheduler's own cron jobs, which fix a zone's offset.
fn arm(
    sched: &JobScheduler,
    d: Arc<Daemon>,
    after: DateTime<Utc>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send + '_>> {
    Box::pin(async move {
        let schedule: &Schedule = &d.cfg.daemon.schedule;
        let Some(fire) = schedule.next_after(after) else {
            tracing::warn!(schedule = %schedule, "the schedule has no further fire time; no more runs will start");
            return Ok(());
        };
        d.update_health(|h| h.next_run = Some(fire));
        let wait = (fire - Utc::now()).to_std().unwrap_or_default();
        let job = Job::new_one_shot_at_instant_async(Instant::now() + wait, move |_id, sched| {
            let d = d.clone();
            Box::pin(async move {
                // The scheduler fires on whole seconds and may be early by up to one; a run must
                // not start (and take its snapshot) before its time.
                if let Ok(early) = (fire - Utc::now()).to_std() {
                    tokio::time::sleep(early).await;
                }
                if d.stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Err(e) = arm(&sched, d.clone(), fire).await {
                    tracing::error!(error = %crate::exit::render(&e), "could not schedule the next run");
                }
                d.tick(fire);
            })
        })
        .context("creating the scheduler job")?;
        sched.add(job).await.context("adding the next run to the scheduler")?;
        tracing::debug!(next = %fire, "next run scheduled");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn ok(days: &[&str]) -> BTreeSet<NaiveDate> {
        days.iter().map(|d| day(d)).collect()
    }

    #[test]
    fn catch_up_runs_the_days_without_a_success_up_to_the_last_due_one() {
        let today = day("2026-06-30");
        assert_eq!(missed_days(&ok(&["2026-06-28"]), Some(today), today, 7), [day("2026-06-29"), day("2026-06-30")]);
        // Today's fire time has not come yet: today waits for the schedule.
        assert_eq!(missed_days(&ok(&["2026-06-28"]), Some(day("2026-06-29")), today, 7), [day("2026-06-29")]);
        // Up to date, or nothing to compare with: nothing to do.
        assert!(missed_days(&ok(&["2026-06-30"]), Some(today), today, 7).is_empty());
        assert!(missed_days(&ok(&[]), Some(today), today, 7).is_empty());
        // Only the window's days: a lake idle for a month gets the last 3 days.
        assert_eq!(
            missed_days(&ok(&["2026-05-30"]), Some(today), today, 3),
            [day("2026-06-27"), day("2026-06-28"), day("2026-06-29"), day("2026-06-30")]
        );
        assert!(missed_days(&ok(&["2026-06-28"]), Some(today), today, 0).is_empty());
        // A day that failed between two successes is missed too (the next tick retries it).
        assert_eq!(
            missed_days(&ok(&["2026-06-27", "2026-06-30"]), Some(day("2026-06-29")), today, 7),
            [day("2026-06-28"), day("2026-06-29")]
        );
    }
}
