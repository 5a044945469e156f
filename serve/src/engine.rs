//! The engine side of `lastseen serve` (the server side is [`crate::handler`]): one prepared
//! session per committed lake version, swapped in when a newer version appears, and a fresh
//! per-query session on top of it that carries the query's memory limit.
//!
//! A statement is planned against the version current when it arrives, and its plan holds that
//! version's table providers, so a query keeps reading the version it started on even when a
//! newer one is published while it runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use lastseen_lake::Lake;
use lastseen_query::reports::{self, Param};
use lastseen_query::{QueryEngine, ReportParams};
use tokio::sync::Mutex;

use crate::error::Result;

/// One lake version, ready to plan against: the lake tables, the report views and the
/// Postgres catalogue.
pub struct Prepared {
    pub engine: QueryEngine,
    pub version: u64,
}

/// Limits every query runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub query_memory: usize,
    pub query_timeout: Duration,
}

/// The newest committed lake version, looked for at most every `refresh`.
pub struct Versions {
    lake: Lake,
    refresh: Duration,
    dormant_days: u32,
    pub limits: Limits,
    current: Mutex<(Arc<Prepared>, Instant)>,
}

impl Versions {
    pub async fn open(lake: Lake, refresh: Duration, dormant_days: u32, limits: Limits) -> Result<Versions> {
        let prepared = prepare(&lake, dormant_days).await?;
        tracing::info!(version = prepared.version, "serving lake version");
        Ok(Versions { lake, refresh, dormant_days, limits, current: Mutex::new((Arc::new(prepared), Instant::now())) })
    }

    /// The version new statements plan against. A failure to look for a newer version keeps
    /// serving the one we have (and says so in the log): the lake being briefly unreachable
    /// must not stop analysts reading the committed data they already see.
    pub async fn current(&self) -> Arc<Prepared> {
        let mut guard = self.current.lock().await;
        if guard.1.elapsed() >= self.refresh {
            guard.1 = Instant::now();
            match self.lake.snapshot().await {
                Ok(s) if s.version != guard.0.version => match prepare_at(&self.lake, s, self.dormant_days).await {
                    Ok(p) => {
                        tracing::info!(version = p.version, previous = guard.0.version, "serving a new lake version");
                        guard.0 = Arc::new(p);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a new lake version could not be prepared; serving the previous one")
                    }
                },
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "looking for a new lake version failed; serving the previous one"),
            }
        }
        Arc::clone(&guard.0)
    }

    /// A session over `p` for one query: the same tables and views, its own memory pool of
    /// `query_memory` bytes and no spilling to disk, so a query past the limit fails alone
    /// ("resources exhausted") instead of starving the others or filling the disk.
    pub fn session(&self, p: &Prepared) -> Result<SessionContext> {
        let base = p.engine.context();
        let runtime = RuntimeEnvBuilder::from_runtime_env(base.runtime_env().as_ref())
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(self.limits.query_memory)))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()?;
        let state = SessionStateBuilder::new_from_existing(base.state()).with_runtime_env(runtime).build();
        Ok(SessionContext::new_with_state(state))
    }
}

async fn prepare(lake: &Lake, dormant_days: u32) -> Result<Prepared> {
    let snapshot = lake.snapshot().await.map_err(lastseen_query::QueryError::from)?;
    prepare_at(lake, snapshot, dormant_days).await
}

async fn prepare_at(lake: &Lake, snapshot: lastseen_lake::Snapshot, dormant_days: u32) -> Result<Prepared> {
    let version = snapshot.version;
    let engine = QueryEngine::at(lake, snapshot)?;
    // The session time zone Postgres reports (`SHOW timezone` is UTC): `x::timestamptz` is a
    // timestamp in UTC, sent as `timestamptz`, as Grafana's `$__time(col::timestamptz)` needs.
    engine.context().state_ref().write().config_mut().options_mut().execution.time_zone = Some("UTC".into());
    register_reports(&engine, dormant_days).await;
    crate::catalog::register(engine.context()).await?;
    Ok(Prepared { engine, version })
}

/// Every report as the view `report_<name>` with its default parameters (the newest snapshot
/// day, `reports.dormant_days`), so a dashboard can use it without copying SQL. A report whose
/// tables have no snapshot yet gets no view until a version that has one.
async fn register_reports(engine: &QueryEngine, dormant_days: u32) {
    let defs = match reports::builtin() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "the reports could not be loaded; no report views");
            return;
        }
    };
    for def in defs {
        let params = ReportParams { days: def.takes(Param::Days).then_some(dormant_days), ..Default::default() };
        let name = format!("report_{}", def.name);
        match def.plan(engine, &params).await {
            Ok((df, as_of)) => match engine.context().register_table(name.as_str(), df.into_view()) {
                Ok(_) => tracing::debug!(view = name, ?as_of, "report view"),
                Err(e) => tracing::warn!(view = name, error = %e, "report view not registered"),
            },
            Err(e) => tracing::info!(view = name, reason = %e, "no report view for this lake version"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::NaiveDate;
    use datafusion::arrow::array::{
        ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray, new_null_array,
    };
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    use futures::TryStreamExt;
    use lastseen_lake::Lake;
    use lastseen_lake::catalog::SLACK_USERS;

    use super::{Limits, Versions};

    /// A `slack_users` snapshot holding `ids`, every other column a plain value (or NULL where
    /// the column allows it): the test is about which version is read, not about the columns.
    fn users(ids: &[&str]) -> RecordBatch {
        let schema = SLACK_USERS.schema();
        let n = ids.len();
        let cols: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.data_type() {
                    DataType::Utf8 if f.name() == "user_id" => Arc::new(StringArray::from(ids.to_vec())),
                    _ if f.is_nullable() => new_null_array(f.data_type(), n),
                    DataType::Utf8 => Arc::new(StringArray::from(vec!["T1"; n])),
                    DataType::Boolean => Arc::new(BooleanArray::from(vec![false; n])),
                    DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => {
                        Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC"))
                    }
                    other => panic!("slack_users has a non-null {other} column `{}`", f.name()),
                }
            })
            .collect();
        match RecordBatch::try_new(schema, cols) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    async fn commit_users(lake: &Lake, ids: &[&str]) {
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
        let lease = lake.acquire_lock("test", Duration::from_secs(60)).await.expect("lease");
        let mut tx = lake.begin(&lease).await.expect("begin");
        tx.write(&SLACK_USERS, day, users(ids)).expect("stage");
        tx.commit().await.expect("commit");
        lease.release().await.expect("release");
    }

    fn ids(batches: &[RecordBatch]) -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| {
                // Text comes back as `Utf8View` (the query engine reads it so).
                let c = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
                c.as_string::<i32>().iter().map(|v| v.unwrap_or_default().to_owned()).collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_query_keeps_reading_the_version_it_started_on_while_a_new_one_is_served_to_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = url::Url::from_directory_path(dir.path()).expect("url");
        let lake = Lake::open(&url, &BTreeMap::new()).expect("open");
        commit_users(&lake, &["U1", "U2"]).await;
        let limits = Limits { query_memory: 64 << 20, query_timeout: Duration::from_secs(60) };
        // refresh = 0: every statement looks for a newer version, as a long-running server does
        // once its refresh interval has passed.
        let versions = Versions::open(lake.clone(), Duration::ZERO, 90, limits).await.expect("serve");

        let v1 = versions.current().await;
        assert_eq!(v1.version, 1);
        let ctx = versions.session(&v1).expect("session");
        let df = ctx.sql("SELECT user_id FROM slack_users ORDER BY user_id").await.expect("plan");
        let stream = df.execute_stream().await.expect("start");

        // The day is re-collected and committed while the query is open.
        commit_users(&lake, &["U3"]).await;

        let started: Vec<RecordBatch> = stream.try_collect().await.expect("drain");
        assert_eq!(ids(&started), ["U1", "U2"], "the open query reads the version it started on");

        let v2 = versions.current().await;
        assert_eq!(v2.version, 2, "the next statement gets the new version without a restart");
        let ctx = versions.session(&v2).expect("session");
        let next = ctx.sql("SELECT user_id FROM slack_users ORDER BY user_id").await.expect("plan");
        assert_eq!(ids(&next.collect().await.expect("run")), ["U3"]);
        drop(v1);
    }
}
