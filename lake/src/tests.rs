//! Commit-protocol tests on real object stores (local disk and in-memory).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::catalog::{SLACK_ACCESS_LOGS, SLACK_USERS};
use crate::{Lake, LakeError, LakeTable};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

fn ts(d: u32, secs: i64) -> i64 {
    (day(d).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp() + secs) * 1_000_000
}

fn utc(v: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
}

fn users(ids: &[&str]) -> RecordBatch {
    let n = ids.len();
    let s = |v: Option<&str>| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
    let b = |v: bool| -> ArrayRef { Arc::new(BooleanArray::from(vec![v; n])) };
    let mut cols: Vec<ArrayRef> = vec![s(Some("T1")), Arc::new(StringArray::from(ids.to_vec()))];
    cols.extend([s(Some("name")), s(None), s(None), s(None), s(None)]);
    cols.extend((0..10).map(|_| b(false)));
    cols.extend([s(None), s(None), Arc::new(BooleanArray::from(vec![None; n])) as ArrayRef]);
    cols.push(utc(vec![0; n]));
    cols.push(utc(vec![ts(1, 0); n]));
    cols.push(s(None));
    cols.push(datafusion::arrow::array::new_null_array(SLACK_USERS.schema().field(23).data_type(), n));
    cols.push(Arc::new(TimestampMicrosecondArray::from(vec![None; n]).with_timezone("UTC")));
    cols.push(Arc::new(TimestampMicrosecondArray::from(vec![None; n]).with_timezone("UTC")));
    cols.push(Arc::new(BooleanArray::from(vec![None; n])));
    // Version 3: is_workflow_bot, is_connector_bot.
    cols.extend((0..2).map(|_| Arc::new(BooleanArray::from(vec![None; n])) as ArrayRef));
    RecordBatch::try_new(SLACK_USERS.schema(), cols).unwrap()
}

/// Access-log rows: (user, ip, date_first, date_last) on days given by the timestamps.
fn logs(rows: &[(&str, &str, i64, i64)], collected: i64) -> RecordBatch {
    let n = rows.len();
    let s = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let cols: Vec<ArrayRef> = vec![
        s(vec![Some("T1"); n]),
        s(rows.iter().map(|r| Some(r.0)).collect()),
        s(vec![Some("u"); n]),
        utc(rows.iter().map(|r| r.2).collect()),
        utc(rows.iter().map(|r| r.3).collect()),
        Arc::new(Int64Array::from(vec![1; n])),
        s(rows.iter().map(|r| Some(r.1)).collect()),
        s(vec![Some("ua"); n]),
        s(vec![None; n]),
        s(vec![None; n]),
        s(vec![None; n]),
        utc(vec![collected; n]),
    ];
    RecordBatch::try_new(SLACK_ACCESS_LOGS.schema(), cols).unwrap()
}

async fn query(lake: &Lake, sql: &str) -> Vec<RecordBatch> {
    let ctx = SessionContext::new();
    LakeTable::register_all(&ctx, lake, &lake.snapshot().await.unwrap()).unwrap();
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

async fn scalar(lake: &Lake, sql: &str) -> i64 {
    let b = query(lake, sql).await;
    datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(b[0].column(0)).value(0)
}

async fn parquet_files(lake: &Lake) -> Vec<String> {
    let mut v: Vec<String> = lake
        .store()
        .list(Some(&lake.path("")))
        .map_ok(|m| m.location.to_string())
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.ends_with(".parquet"))
        .collect();
    v.sort();
    v
}

fn file_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let lake = Lake::open(&url, &BTreeMap::new()).unwrap();
    (dir, lake)
}

#[tokio::test]
async fn rerunning_a_snapshot_day_replaces_it() {
    let (_dir, lake) = file_lake();
    for ids in [&["U1", "U2", "U3"][..], &["U2", "U4"][..]] {
        let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
        let mut tx = lake.begin(&lease).await.unwrap();
        tx.write(&SLACK_USERS, day(1), users(ids)).unwrap();
        tx.commit().await.unwrap();
        lease.release().await.unwrap();
    }
    let b = query(&lake, "SELECT user_id FROM slack_users ORDER BY user_id").await;
    let ids: Vec<_> = b
        .iter()
        .flat_map(|b| {
            datafusion::arrow::array::AsArray::as_string::<i32>(b.column(0))
                .iter()
                .map(|v| v.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids, vec!["U2", "U4"]);
    assert_eq!(parquet_files(&lake).await.len(), 1, "the superseded file is removed");
    assert_eq!(lake.snapshot().await.unwrap().version, 2);
}

#[tokio::test]
async fn merge_tables_keep_the_newest_row_per_key_and_split_by_event_day() {
    let lake = Lake::open(&url::Url::parse("memory:///lake").unwrap(), &BTreeMap::new()).unwrap();
    let lease = lake.acquire_lock("r1", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.write(
        &SLACK_ACCESS_LOGS,
        day(9),
        logs(&[("U1", "ip1", ts(1, 10), ts(2, 100)), ("U2", "ip1", ts(1, 5), ts(3, 7))], ts(3, 0)),
    )
    .unwrap();
    tx.set_watermark("access_logs/T1", ts(3, 7) / 1_000_000);
    let s = tx.commit().await.unwrap();
    assert_eq!(s.partitions.iter().map(|p| (p.dt, p.rows)).collect::<Vec<_>>(), vec![(day(2), 1), (day(3), 1)]);

    // A later read: U1's entry moved later in day 2, U3 is new, and U2's row is read again.
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.write(
        &SLACK_ACCESS_LOGS,
        day(9),
        logs(
            &[
                ("U1", "ip1", ts(1, 10), ts(2, 900)),
                ("U3", "ip2", ts(2, 1), ts(2, 50)),
                ("U2", "ip1", ts(1, 5), ts(3, 7)),
            ],
            ts(4, 0),
        ),
    )
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_access_logs").await, 3);
    assert_eq!(
        scalar(&lake, "SELECT CAST(to_unixtime(date_last) AS BIGINT) FROM slack_access_logs WHERE user_id = 'U1'")
            .await,
        ts(2, 900) / 1_000_000
    );
    // Re-read rows keep their first collection time, so identical re-reads change nothing.
    assert_eq!(
        scalar(&lake, "SELECT CAST(to_unixtime(collected_at) AS BIGINT) FROM slack_access_logs WHERE user_id = 'U2'")
            .await,
        ts(3, 0) / 1_000_000
    );
    // Partition pruning: a dt filter reads only that day.
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_access_logs WHERE dt = DATE '2026-03-02'").await, 2);
    assert_eq!(lake.snapshot().await.unwrap().watermarks.get("access_logs/T1"), Some(&(ts(3, 7) / 1_000_000)));
}

#[tokio::test]
async fn unpublished_files_are_invisible_and_removed_by_the_next_commit() {
    let (_dir, lake) = file_lake();
    let lease = lake.acquire_lock("r1", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.write(&SLACK_USERS, day(1), users(&["U1"])).unwrap();
    tx.commit().await.unwrap();
    // A run that died after writing its files and before publishing them.
    let rows = crate::writer::prepare(&lake, &SLACK_USERS, &[], vec![users(&["U7", "U8"])]).await.unwrap();
    crate::writer::write_files(&lake, &SLACK_USERS, day(1), "dead-run", &rows).await.unwrap();
    assert_eq!(parquet_files(&lake).await.len(), 2);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 1, "the dead run's file is not data");

    let mut tx = lake.begin(&lease).await.unwrap();
    tx.write(&SLACK_USERS, day(1), users(&["U1", "U2"])).unwrap();
    tx.commit().await.unwrap();
    let files = parquet_files(&lake).await;
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(!files[0].contains("dead-run"));
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 2);
}

#[tokio::test]
async fn the_lease_is_exclusive_until_released() {
    let (_dir, lake) = file_lake();
    let a = lake.acquire_lock("run-a", Duration::from_secs(60)).await.unwrap();
    match lake.acquire_lock("run-b", Duration::from_secs(60)).await {
        Err(LakeError::Locked { holder, .. }) => assert_eq!(holder, "run-a"),
        other => panic!("expected Locked, got {other:?}"),
    }
    a.release().await.unwrap();
    let b = lake.acquire_lock("run-b", Duration::from_secs(60)).await.unwrap();
    b.release().await.unwrap();
}

#[tokio::test]
async fn a_lease_abandoned_by_this_process_can_be_released_without_its_guard() {
    let (dir, lake) = file_lake();
    assert_eq!(lake.release_lock_held_by_this_process().await.unwrap(), None, "no lease: nothing to do");
    let abandoned = lake.acquire_lock("run-a", Duration::from_secs(3600)).await.unwrap();
    drop(abandoned);
    assert!(matches!(lake.acquire_lock("run-b", Duration::from_secs(60)).await, Err(LakeError::Locked { .. })));
    assert_eq!(lake.release_lock_held_by_this_process().await.unwrap().as_deref(), Some("run-a"));
    let b = lake.acquire_lock("run-b", Duration::from_secs(60)).await.unwrap();

    // Another process's lease is left alone.
    b.release().await.unwrap();
    let lock = dir.path().join("_lastseen/lock");
    let other = serde_json::json!({
        "run_id": "run-elsewhere", "host": "another-host", "pid": 1,
        "acquired_at": "2026-01-01T00:00:00Z", "expires_at": "2999-01-01T00:00:00Z"
    });
    std::fs::write(&lock, other.to_string()).unwrap();
    assert_eq!(lake.release_lock_held_by_this_process().await.unwrap(), None);
    assert!(lock.exists());
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let (_dir, lake) = file_lake();
    let _dead = lake.acquire_lock("run-a", Duration::from_secs(0)).await.unwrap();
    let b = lake.acquire_lock("run-b", Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.run_id(), "run-b");
}

#[tokio::test]
async fn a_batch_with_the_wrong_schema_is_refused_naming_the_column() {
    let (_dir, lake) = file_lake();
    let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    let err = tx.write(&SLACK_USERS, day(1), logs(&[("U1", "ip", 0, 0)], 0)).unwrap_err().to_string();
    assert!(err.contains("slack_users"), "{err}");
    let bad = RecordBatch::try_from_iter(vec![("team_id", Arc::new(Int64Array::from(vec![1])) as ArrayRef)]).unwrap();
    let err = tx.write(&SLACK_ACCESS_LOGS, day(1), bad).unwrap_err().to_string();
    assert!(err.contains("columns"), "{err}");
}

#[tokio::test]
async fn concurrent_publishers_cannot_both_win_a_version() {
    let (_dir, lake) = file_lake();
    let snap = crate::log::Snapshot { version: 1, ..Default::default() };
    assert!(lake.try_publish(&snap).await.unwrap());
    assert!(!lake.try_publish(&snap).await.unwrap(), "the second create of version 1 must lose");
    let p = lake.path("_lastseen/log/00000000000000000001.json");
    assert!(lake.store().head(&p).await.is_ok());
}

async fn commit_users(lake: &Lake, dt: NaiveDate, ids: &[&str], max_drop: Option<f64>) -> crate::Result<()> {
    let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.guard_snapshots(max_drop);
    tx.write(&SLACK_USERS, dt, users(ids)).unwrap();
    tx.write(&SLACK_ACCESS_LOGS, dt, logs(&[("U1", "ip1", ts(1, 10), ts(1, 20))], ts(1, 30))).unwrap();
    let result = tx.commit().await.map(|_| ());
    lease.release().await.unwrap();
    result
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("U{i:03}")).collect()
}

#[tokio::test]
async fn mass_change_guard_refuses_a_shrunken_snapshot_before_writing_anything() {
    let (_dir, lake) = file_lake();
    let ten = ids(10);
    let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
    commit_users(&lake, day(1), &ten, Some(0.2)).await.unwrap();
    let files_before = parquet_files(&lake).await;
    let version = lake.snapshot().await.unwrap().version;

    // 10 → 7 is a 30% drop, over the 20% allowed: refused, naming the table, both counts and the flag.
    let err = commit_users(&lake, day(2), &ten[..7], Some(0.2)).await.unwrap_err();
    match &err {
        LakeError::SnapshotDrop { table, rows, previous_rows, previous_dt, .. } => {
            assert_eq!((table.as_str(), *rows, *previous_rows, *previous_dt), ("slack_users", 7, 10, day(1)));
        }
        other => panic!("expected SnapshotDrop, got {other:?}"),
    }
    let msg = err.to_string();
    for needle in ["slack_users", "7 rows", "10 rows", "30.0%", "20.0%", "lake.max_snapshot_drop", "--force"] {
        assert!(msg.contains(needle), "{needle} missing from: {msg}");
    }
    assert_eq!(lake.snapshot().await.unwrap().version, version, "nothing published");
    assert_eq!(parquet_files(&lake).await, files_before, "no file written, not even the access logs'");

    // A drop of exactly the allowed share passes, and so does any drop with the guard off.
    commit_users(&lake, day(2), &ten[..8], Some(0.2)).await.unwrap();
    commit_users(&lake, day(3), &ten[..1], None).await.unwrap();
    // With no earlier day, a re-run is compared with the partition it replaces.
    let (_dir2, lake2) = file_lake();
    commit_users(&lake2, day(5), &ten, Some(0.2)).await.unwrap();
    let err = commit_users(&lake2, day(5), &[], Some(0.5)).await.unwrap_err();
    assert!(matches!(err, LakeError::SnapshotDrop { rows: 0, previous_rows: 10, .. }), "{err:?}");
    // Growth and unguarded tables are never refused.
    commit_users(&lake2, day(6), &[&ten[..], &["X1", "X2"]].concat(), Some(0.0)).await.unwrap();
}

#[tokio::test]
async fn retention_drops_old_partitions_from_the_log_and_deletes_their_files() {
    let (_dir, lake) = file_lake();
    for d in 1..=5 {
        commit_users(&lake, day(d), &["U1", "U2"], None).await.unwrap();
    }
    // A run that died before publishing a file into a partition retention will drop.
    let rows = crate::writer::prepare(&lake, &SLACK_USERS, &[], vec![users(&["U9"])]).await.unwrap();
    crate::writer::write_files(&lake, &SLACK_USERS, day(2), "dead-run", &rows).await.unwrap();

    let lease = lake.acquire_lock("retention", Duration::from_secs(60)).await.unwrap();
    let cutoffs = BTreeMap::from([("slack_users".to_string(), day(4))]);
    let dropped = lake.apply_retention(&lease, &cutoffs).await.unwrap();
    assert_eq!(
        dropped.iter().map(|d| (d.table.as_str(), d.dt, d.rows)).collect::<Vec<_>>(),
        vec![("slack_users", day(1), 2), ("slack_users", day(2), 2), ("slack_users", day(3), 2)]
    );
    let snap = lake.snapshot().await.unwrap();
    assert_eq!(snap.dates("slack_users"), vec![day(4), day(5)]);
    assert_eq!(snap.dates("slack_access_logs"), vec![day(1)], "tables without a cutoff keep everything");
    let files = parquet_files(&lake).await;
    for d in ["01", "02", "03"] {
        assert!(!files.iter().any(|f| f.contains(&format!("slack_users/dt=2026-03-{d}"))), "dt {d} left in {files:?}");
    }
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 4);

    // Nothing older left: no new version.
    let version = snap.version;
    assert!(lake.apply_retention(&lease, &cutoffs).await.unwrap().is_empty());
    assert_eq!(lake.snapshot().await.unwrap().version, version);
    let err = lake.apply_retention(&lease, &BTreeMap::from([("nope".to_string(), day(1))])).await.unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn a_declared_snapshot_with_no_rows_is_published_as_an_empty_day() {
    let (_dir, lake) = file_lake();
    let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.declare_snapshot(&SLACK_USERS, day(4));
    tx.commit().await.unwrap();
    let snap = lake.snapshot().await.unwrap();
    let part = snap.partition(SLACK_USERS.name, day(4)).expect("the day is recorded");
    assert_eq!((part.rows, part.files.len()), (0, 0));
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 0);
}

#[tokio::test]
async fn spilled_rows_commit_exactly_once_and_their_staging_files_are_removed() {
    let (_dir, lake) = file_lake();
    let lease = lake.acquire_lock("spill", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    // A budget far below one batch: every write spills.
    tx.set_memory_budget(1);
    let mut expected = 0;
    for page in 0..5u32 {
        let rows: Vec<(String, String, i64, i64)> = (0..20)
            .map(|i| (format!("U{page}-{i}"), "ip".to_string(), ts(1, 0), ts(1 + (i % 3), i64::from(page))))
            .collect();
        let refs: Vec<(&str, &str, i64, i64)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str(), r.2, r.3)).collect();
        expected += refs.len() as i64;
        tx.write_spilling(&SLACK_ACCESS_LOGS, day(1), logs(&refs, ts(9, 0))).await.unwrap();
        // The same rows again (a page read twice): the merge keeps one copy.
        tx.write_spilling(&SLACK_ACCESS_LOGS, day(1), logs(&refs, ts(9, 0))).await.unwrap();
    }
    for i in 0..3 {
        tx.write_spilling(&SLACK_USERS, day(1), users(&[&format!("U{i}")])).await.unwrap();
    }
    assert!(tx.spill_count() >= 10, "{}", tx.spill_count());
    let staging = |files: &[String]| files.iter().filter(|f| f.contains("_lastseen/staging/")).count();
    assert!(staging(&parquet_files(&lake).await) >= 10);
    assert_eq!(tx.staged_rows()[SLACK_ACCESS_LOGS.name], 2 * expected as u64);
    let summary = tx.commit().await.unwrap();
    assert_eq!(summary.rows_by_table()[SLACK_ACCESS_LOGS.name], expected as u64);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_access_logs").await, expected);
    assert_eq!(scalar(&lake, "SELECT count(DISTINCT user_id) FROM slack_access_logs").await, expected);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 3);
    let dts = query(&lake, "SELECT DISTINCT dt FROM slack_access_logs").await;
    assert_eq!(dts.iter().map(|b| b.num_rows()).sum::<usize>(), 3, "split by the day of date_last");
    assert_eq!(staging(&parquet_files(&lake).await), 0, "staging is removed after the commit");
}

#[tokio::test]
async fn a_discarded_table_is_not_published() {
    let (_dir, lake) = file_lake();
    let lease = lake.acquire_lock("d", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.set_memory_budget(1);
    tx.write_spilling(&SLACK_USERS, day(1), users(&["U1"])).await.unwrap();
    tx.write_spilling(&SLACK_ACCESS_LOGS, day(1), logs(&[("U1", "ip", ts(1, 0), ts(1, 5))], 0)).await.unwrap();
    tx.discard(&SLACK_ACCESS_LOGS);
    tx.commit().await.unwrap();
    let snap = lake.snapshot().await.unwrap();
    assert!(snap.table(SLACK_ACCESS_LOGS.name).is_none());
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 1);
}
