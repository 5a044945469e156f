//! The journal: every intent and outcome of a (de)activation as a row of the
//! `deprovision_actions` lake table, committed through the lake (lease, transaction) before the
//! next step, so a crash leaves at most one action whose outcome a read must settle.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use lastseen_lake::Lake;
use lastseen_lake::catalog::DEPROVISION_ACTIONS;
use lastseen_query::QueryEngine;

use crate::error::Result;
use crate::plan::rows;

/// One journal row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub entry_id: String,
    pub plan_id: String,
    pub account_id: String,
    pub workspace_id: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    /// `deactivate` or `reactivate`.
    pub action: String,
    /// `intent` or `outcome`.
    pub phase: String,
    /// Outcomes: `done`, `skipped`, `failed`.
    pub outcome: Option<String>,
    pub detail: Option<String>,
    pub http_status: Option<i64>,
    pub slack_error: Option<String>,
    pub call: Option<String>,
    pub evidence: Option<String>,
    pub approvers: Option<String>,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// Appends entries to the lake, one commit per call.
#[derive(Debug, Clone)]
pub struct Journal {
    lake: Lake,
    lease_ttl: Duration,
}

impl Journal {
    pub fn new(lake: Lake, lease_ttl: Duration) -> Journal {
        Journal { lake, lease_ttl }
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// Commits `entries`; returns once they are durable (the lake published the version).
    pub async fn append(&self, entries: &[Entry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let run_id = lastseen_lake::new_run_id(Utc::now());
        // A daily run may hold the lease for a while: wait for it (up to two lease lifetimes)
        // rather than fail between a call and its outcome.
        let give_up = tokio::time::Instant::now() + self.lease_ttl * 2;
        let lease = loop {
            match self.lake.acquire_lock(&run_id, self.lease_ttl).await {
                Ok(lease) => break lease,
                Err(lastseen_lake::LakeError::Locked { holder, .. }) if tokio::time::Instant::now() < give_up => {
                    tracing::info!(holder, "the lake lease is held; waiting to journal");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let result = async {
            let mut tx = self.lake.begin(&lease).await?;
            tx.write(&DEPROVISION_ACTIONS, Utc::now().date_naive(), to_batch(entries)?)?;
            tx.commit().await?;
            Ok::<_, crate::error::DeprovisionError>(())
        }
        .await;
        lease.release().await?;
        result
    }

    /// Every entry of `plan_id`, oldest first.
    pub async fn load(&self, plan_id: &str) -> Result<Vec<Entry>> {
        let engine = QueryEngine::open(&self.lake).await?;
        load(&engine, plan_id).await
    }
}

pub async fn load(engine: &QueryEngine, plan_id: &str) -> Result<Vec<Entry>> {
    if engine.dates(DEPROVISION_ACTIONS.name).is_empty() {
        return Ok(Vec::new());
    }
    let sql = "SELECT entry_id, plan_id, account_id, workspace_id, username, email, action, phase, outcome, detail, \
               CAST(http_status AS VARCHAR) AS http_status, slack_error, call, evidence, approvers, actor, reason, \
               CAST(to_unixtime(at) * 1000000 AS BIGINT) AS at_us \
               FROM deprovision_actions WHERE plan_id = $plan ORDER BY at, entry_id";
    let found = rows(engine, sql, &[("plan", datafusion::common::ScalarValue::Utf8(Some(plan_id.to_owned())))]).await?;
    Ok(found
        .into_iter()
        .map(|r| {
            let g = |k: &str| r.get(k).cloned().flatten();
            Entry {
                entry_id: g("entry_id").unwrap_or_default(),
                plan_id: g("plan_id").unwrap_or_default(),
                account_id: g("account_id").unwrap_or_default(),
                workspace_id: g("workspace_id"),
                username: g("username"),
                email: g("email"),
                action: g("action").unwrap_or_default(),
                phase: g("phase").unwrap_or_default(),
                outcome: g("outcome"),
                detail: g("detail"),
                http_status: g("http_status").and_then(|s| s.parse().ok()),
                slack_error: g("slack_error"),
                call: g("call"),
                evidence: g("evidence"),
                approvers: g("approvers"),
                actor: g("actor"),
                reason: g("reason"),
                at: g("at_us")
                    .and_then(|t| t.parse::<i64>().ok())
                    .and_then(DateTime::from_timestamp_micros)
                    .unwrap_or_default(),
            }
        })
        .collect())
}

fn to_batch(entries: &[Entry]) -> Result<RecordBatch> {
    let s =
        |f: &dyn Fn(&Entry) -> Option<String>| -> ArrayRef { Arc::new(entries.iter().map(f).collect::<StringArray>()) };
    let columns: Vec<ArrayRef> = vec![
        s(&|e| Some(e.entry_id.clone())),
        s(&|e| Some(e.plan_id.clone())),
        s(&|e| Some(e.account_id.clone())),
        s(&|e| e.workspace_id.clone()),
        s(&|e| e.username.clone()),
        s(&|e| e.email.clone()),
        s(&|e| Some(e.action.clone())),
        s(&|e| Some(e.phase.clone())),
        s(&|e| e.outcome.clone()),
        s(&|e| e.detail.clone()),
        Arc::new(entries.iter().map(|e| e.http_status).collect::<Int64Array>()),
        s(&|e| e.slack_error.clone()),
        s(&|e| e.call.clone()),
        s(&|e| e.evidence.clone()),
        s(&|e| e.approvers.clone()),
        s(&|e| e.actor.clone()),
        s(&|e| e.reason.clone()),
        Arc::new(
            TimestampMicrosecondArray::from(entries.iter().map(|e| e.at.timestamp_micros()).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
    ];
    Ok(RecordBatch::try_new(DEPROVISION_ACTIONS.schema(), columns)?)
}
