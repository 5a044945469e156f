//! Commit-protocol tests on real object stores (local disk and in-memory).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::basic::Compression;
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
    assert_eq!(lake.snapshot().await.unwrap().version, 2);
    assert_eq!(parquet_files(&lake).await.len(), 2, "the superseded file stays for readers of version 1");
    let lease = lake.acquire_lock("v", Duration::from_secs(60)).await.unwrap();
    lake.vacuum(&lease, Duration::ZERO, false).await.unwrap();
    assert_eq!(parquet_files(&lake).await.len(), 1, "vacuum removes it after the window");
}

#[tokio::test]
async fn the_query_side_reads_text_as_views_and_the_transform_side_as_the_catalog_says() {
    let (_dir, lake) = file_lake();
    commit_users(&lake, day(1), &["U1", "U2", "U3"], None).await.unwrap();
    let snapshot = lake.snapshot().await.unwrap();
    let sql = "SELECT user_id, team_id FROM slack_users ORDER BY user_id";
    let mut rows = Vec::new();
    for (views, want) in [(false, DataType::Utf8), (true, DataType::Utf8View)] {
        let ctx = SessionContext::new();
        if views {
            LakeTable::register_all_views(&ctx, &lake, &snapshot).unwrap();
        } else {
            LakeTable::register_all(&ctx, &lake, &snapshot).unwrap();
        }
        let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        assert_eq!(b[0].schema().field(0).data_type(), &want);
        let as_text: Vec<RecordBatch> = b
            .iter()
            .map(|b| {
                let cols =
                    b.columns().iter().map(|c| datafusion::arrow::compute::cast(c, &DataType::Utf8).unwrap()).collect();
                RecordBatch::try_new(
                    Arc::new(Schema::new(vec![
                        Field::new("user_id", DataType::Utf8, true),
                        Field::new("team_id", DataType::Utf8, true),
                    ])),
                    cols,
                )
                .unwrap()
            })
            .collect();
        rows.push(datafusion::arrow::util::pretty::pretty_format_batches(&as_text).unwrap().to_string());
    }
    assert_eq!(rows[0], rows[1]);
    assert!(rows[0].contains("U3"), "{}", rows[0]);
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
    let other = dir.path().join(format!("_lastseen/lease/{:020}.json", b.generation()));
    let mut rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&other).unwrap()).unwrap();
    drop(b);
    rec["process"] = serde_json::json!("another-process");
    std::fs::write(&other, rec.to_string()).unwrap();
    assert_eq!(lake.release_lock_held_by_this_process().await.unwrap(), None);
    assert!(matches!(lake.acquire_lock("run-c", Duration::from_secs(60)).await, Err(LakeError::Locked { .. })));
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
    let snap = crate::log::Snapshot { version: 1, run_id: Some("a".into()), ..Default::default() };
    assert!(lake.try_publish(&snap).await.unwrap());
    let other = crate::log::Snapshot { run_id: Some("b".into()), ..snap.clone() };
    assert!(!lake.try_publish(&other).await.unwrap(), "the second create of version 1 must lose");
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
async fn retention_drops_old_partitions_from_the_log_and_vacuum_deletes_their_files() {
    let (_dir, lake) = file_lake();
    for d in 1..=5 {
        commit_users(&lake, day(d), &["U1", "U2"], None).await.unwrap();
    }
    let files_before = parquet_files(&lake).await;
    let before = lake.snapshot().await.unwrap();
    let dropped_files: BTreeSet<String> = (1..=3)
        .flat_map(|d| before.partition("slack_users", day(d)).unwrap().files.iter().map(|f| f.path.clone()))
        .collect();
    assert_eq!(dropped_files.len(), 3);
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
    assert_eq!(snap.lease_generation, Some(lease.generation()), "published under the lease");
    // Nothing deleted: the dropped files are recorded as superseded by this version.
    assert_eq!(parquet_files(&lake).await, files_before);
    let superseded: BTreeSet<String> =
        snap.superseded.iter().filter(|s| s.version == snap.version).map(|s| s.path.clone()).collect();
    assert_eq!(superseded, dropped_files);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 4);

    // Nothing older left: no new version.
    let version = snap.version;
    assert!(lake.apply_retention(&lease, &cutoffs).await.unwrap().is_empty());
    assert_eq!(lake.snapshot().await.unwrap().version, version);
    let err = lake.apply_retention(&lease, &BTreeMap::from([("nope".to_string(), day(1))])).await.unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");

    // Vacuum past the window deletes the dropped partitions' files.
    let report = lake.vacuum(&lease, Duration::ZERO, false).await.unwrap();
    assert!(dropped_files.iter().all(|f| report.superseded_files.contains(f)), "{report:?}");
    let left = parquet_files(&lake).await;
    for d in ["01", "02", "03"] {
        assert!(!left.iter().any(|f| f.contains(&format!("slack_users/dt=2026-03-{d}"))), "dt {d} left in {left:?}");
    }
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 4);
}

#[tokio::test]
async fn a_reader_holding_a_version_keeps_reading_a_partition_retention_drops() {
    let (_dir, lake) = file_lake();
    let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
    commit_day(&lake, &lease, day(1), &["U1", "U2", "U3"]).await.unwrap();
    commit_day(&lake, &lease, day(2), &["U1"]).await.unwrap();
    // A long report planned on version N, which still lists day 1.
    let held = lake.snapshot().await.unwrap();
    let ctx = SessionContext::new();
    LakeTable::register_all(&ctx, &lake, &held).unwrap();
    // The rows themselves, not `count(*)`: a count is answered from the listed row counts
    // without opening the files.
    let read_held = || async {
        let batches = ctx.sql("SELECT user_id FROM slack_users ORDER BY user_id").await?.collect().await?;
        Ok::<_, datafusion::error::DataFusionError>(
            batches
                .iter()
                .flat_map(|b| {
                    datafusion::arrow::array::AsArray::as_string::<i32>(b.column(0))
                        .iter()
                        .map(|v| v.unwrap().to_string())
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>(),
        )
    };
    let all = ["U1", "U1", "U2", "U3"].map(String::from).to_vec();
    assert_eq!(read_held().await.unwrap(), all);

    // Version N+1 drops day 1; the daily vacuum runs with a window.
    let cutoffs = BTreeMap::from([("slack_users".to_string(), day(2))]);
    let out = lake.apply_retention_guarded(&lease, &cutoffs, None).await.unwrap();
    assert_eq!(out.dropped.iter().map(|d| d.dt).collect::<Vec<_>>(), [day(1)]);
    assert_eq!(lake.snapshot().await.unwrap().version, held.version + 1);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 1, "new readers see N+1");
    let report = lake.vacuum(&lease, Duration::from_secs(3600), false).await.unwrap();
    assert!(report.superseded_files.is_empty(), "{report:?}");
    assert_eq!(
        read_held().await.map_err(|e| e.to_string()),
        Ok(all),
        "the reader of version N still reads the dropped day"
    );

    // Past the window (here: none), vacuum deletes the dropped day's file and forgets it.
    let day1 = held.partition("slack_users", day(1)).unwrap().files.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
    let report = lake.vacuum(&lease, Duration::ZERO, false).await.unwrap();
    assert_eq!(report.superseded_files, day1);
    assert!(!parquet_files(&lake).await.iter().any(|f| day1.iter().any(|d| f.ends_with(d.as_str()))));
    assert!(lake.snapshot().await.unwrap().superseded.is_empty());
}

#[tokio::test]
async fn retention_after_a_torn_newest_version_publishes_above_it() {
    let (dir, lake) = file_lake();
    let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
    for d in 1..=3 {
        commit_day(&lake, &lease, day(d), &["U1"]).await.unwrap();
    }
    // A power cut left version 4 torn (another run's commit, say).
    std::fs::write(dir.path().join("_lastseen/log/00000000000000000004.json"), b"{\"vers").unwrap();
    assert_eq!(lake.snapshot().await.unwrap().version, 3);
    let cutoffs = BTreeMap::from([("slack_users".to_string(), day(2))]);
    let out = lake.apply_retention_guarded(&lease, &cutoffs, None).await.unwrap();
    assert_eq!(out.dropped.len(), 1);
    let snap = lake.snapshot().await.unwrap();
    assert_eq!((snap.version, snap.dates("slack_users")), (5, vec![day(2), day(3)]));
    // Each partition records the version that wrote it (not the one that carried it over).
    let versions: Vec<u64> = snap.table("slack_users").unwrap().partitions.values().map(|p| p.version).collect();
    assert_eq!(versions, [2, 3]);
}

#[tokio::test]
async fn retention_publishes_nothing_once_a_newer_lease_generation_has_published() {
    let (dir, lake) = file_lake();
    let old = lake.acquire_lock("old", Duration::from_secs(60)).await.unwrap();
    commit_day(&lake, &old, day(1), &["U1"]).await.unwrap();
    commit_day(&lake, &old, day(2), &["U1"]).await.unwrap();
    let version = lake.snapshot().await.unwrap().version;
    // Another host judged the old run's record expired (it was paused) and took over.
    let rec_path = dir.path().join(format!("_lastseen/lease/{:020}.json", old.generation()));
    let mut rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&rec_path).unwrap()).unwrap();
    rec["expires_at"] = serde_json::json!("2000-01-01T00:00:00Z");
    std::fs::write(&rec_path, rec.to_string()).unwrap();
    let cutoffs = BTreeMap::from([("slack_users".to_string(), day(2))]);
    let newer = lake.acquire_lock("newer", Duration::from_secs(60)).await.unwrap();
    commit_day(&lake, &newer, day(3), &["U1"]).await.unwrap();
    let err = lake.apply_retention_guarded(&old, &cutoffs, None).await.unwrap_err();
    assert!(matches!(err, LakeError::LeaseLost { .. }), "{err:?}");
    assert_eq!(lake.snapshot().await.unwrap().version, version + 1, "retention published nothing");
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
async fn staged_rows_are_readable_before_the_commit_from_staging_files_only() {
    let (_dir, lake) = file_lake();
    let lease = lake.acquire_lock("staged", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    // A budget that holds everything in memory: the read-back must still come from files.
    tx.set_memory_budget(1 << 30);
    tx.write_spilling(&SLACK_USERS, day(1), users(&["U1", "U2"])).await.unwrap();
    tx.write_spilling(&SLACK_USERS, day(2), users(&["U3"])).await.unwrap();
    tx.write_spilling(&SLACK_ACCESS_LOGS, day(1), logs(&[("U1", "ip", ts(1, 0), ts(1, 5))], 0)).await.unwrap();
    assert_eq!(tx.spill_count(), 0);
    let staged = tx.staged_table(&SLACK_USERS).await.unwrap();
    // Only the asked table was spilled, one file per partition.
    assert_eq!(tx.spill_count(), 2);
    let ctx = SessionContext::new();
    ctx.register_object_store(lake.store_url().as_ref(), Arc::clone(lake.store()));
    ctx.register_table("staged", Arc::new(staged)).unwrap();
    let b = ctx
        .sql("SELECT user_id, CAST(dt AS VARCHAR) FROM staged ORDER BY user_id")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let rows: Vec<String> = datafusion::arrow::util::pretty::pretty_format_batches(&b)
        .unwrap()
        .to_string()
        .lines()
        .filter(|l| l.starts_with("| U"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(rows, ["| U1 | 2026-03-01 |", "| U2 | 2026-03-01 |", "| U3 | 2026-03-02 |"]);
    // Staging files are LZ4 (no codec context to make per column chunk); lake files zstd.
    let staged_files = parquet_files(&lake).await;
    assert_eq!(staged_files.len(), 2);
    for f in &staged_files {
        assert_eq!(codecs(&lake, f).await, ["LZ4_RAW"], "{f}");
    }
    // Nothing is published yet; the commit still publishes every staged row exactly once.
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 0);
    tx.commit().await.unwrap();
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 3);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_access_logs").await, 1);
    let lake_files = parquet_files(&lake).await;
    assert_eq!(lake_files.len(), 3, "{lake_files:?}");
    for f in &lake_files {
        assert_eq!(codecs(&lake, f).await, ["ZSTD"], "{f}");
    }
}

/// The compression codecs of the column chunks of the Parquet file at object path `path`, each
/// once, in the order first met. By name only: a footer does not record a zstd level (a reader
/// reports the default).
async fn codecs(lake: &Lake, path: &str) -> Vec<String> {
    let bytes = lake.store().get(&object_store::path::Path::from(path)).await.unwrap().bytes().await.unwrap();
    let meta = datafusion::parquet::file::metadata::ParquetMetaDataReader::new().parse_and_finish(&bytes).unwrap();
    let mut out: Vec<String> = Vec::new();
    for c in meta.row_groups().iter().flat_map(|rg| rg.columns().iter().map(|c| c.compression())) {
        let name = match c {
            Compression::ZSTD(_) => "ZSTD".to_string(),
            other => format!("{other:?}"),
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
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

// ---- Concurrency, crashes and operator mistakes (issue 13) ----------------------------------

mod wrappers {
    //! Object stores that misbehave on purpose, below the lake: real stores (in memory) with one
    //! operation gated, broken or made ambiguous.

    use std::fmt;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use futures::StreamExt;
    use futures::stream::BoxStream;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
        PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    };
    use tokio::sync::oneshot;

    /// What a wrapper does to a write (put or delete) of a matching path.
    #[derive(Default)]
    pub struct Faults {
        /// Path substring whose writes are affected.
        pub matching: String,
        /// The first write for which `gate_when(path, is_delete)` holds waits here: it reports on
        /// `reached`, then waits for `open`.
        pub gate: Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>,
        pub gate_when: Option<fn(&str, bool) -> bool>,
        /// Every create-only put is applied as a plain overwrite (a server ignoring If-None-Match).
        pub ignore_create: bool,
        /// The first matching create-only put is applied, then answered `AlreadyExists` (a 5xx
        /// retried by the client whose retry meets its own object).
        pub ambiguous_create: bool,
        /// Matching create-only puts are refused with `AlreadyExists` without writing.
        pub refuse_create: bool,
        /// Matching puts fail.
        pub fail_put: bool,
        /// Counts aborted multipart uploads.
        pub aborts: Arc<std::sync::atomic::AtomicUsize>,
        /// Every read (get) of a matching path, in order.
        pub reads: Arc<Mutex<Vec<String>>>,
    }

    #[derive(Debug)]
    pub struct Wrapped {
        pub inner: Arc<dyn ObjectStore>,
        faults: Arc<Mutex<Faults>>,
    }

    impl fmt::Debug for Faults {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Faults").field("matching", &self.matching).finish()
        }
    }

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Wrapped({})", self.inner)
        }
    }

    impl Wrapped {
        pub fn new(inner: Arc<dyn ObjectStore>, faults: Faults) -> Arc<Self> {
            Arc::new(Wrapped { inner, faults: Arc::new(Mutex::new(faults)) })
        }
    }

    fn err(what: &str) -> object_store::Error {
        object_store::Error::Generic { store: "Wrapped", source: what.to_string().into() }
    }

    async fn pass_gate(faults: &Mutex<Faults>, location: &Path, delete: bool) {
        let gate = {
            let mut f = faults.lock().unwrap();
            if f.gate_when.is_some_and(|when| when(location.as_ref(), delete)) { f.gate.take() } else { None }
        };
        if let Some((reached, open)) = gate {
            let _ = reached.send(());
            let _ = open.await;
        }
    }

    #[derive(Debug)]
    struct CountingUpload {
        inner: Box<dyn MultipartUpload>,
        aborts: Arc<std::sync::atomic::AtomicUsize>,
    }

    #[async_trait]
    impl MultipartUpload for CountingUpload {
        fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
            self.inner.put_part(data)
        }

        async fn complete(&mut self) -> object_store::Result<PutResult> {
            self.inner.complete().await
        }

        async fn abort(&mut self) -> object_store::Result<()> {
            self.aborts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.abort().await
        }
    }

    #[async_trait]
    impl ObjectStore for Wrapped {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            mut opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            pass_gate(&self.faults, location, false).await;
            let (ignore, ambiguous, refuse, fail) = {
                let mut f = self.faults.lock().unwrap();
                let m = location.as_ref().contains(&f.matching);
                let create = matches!(opts.mode, PutMode::Create);
                let ambiguous = m && create && std::mem::take(&mut f.ambiguous_create);
                (f.ignore_create, ambiguous, m && create && f.refuse_create, m && f.fail_put)
            };
            if fail {
                return Err(err("injected put failure"));
            }
            if refuse {
                return Err(object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: "refused".into(),
                });
            }
            if ignore && matches!(opts.mode, PutMode::Create) {
                opts.mode = PutMode::Overwrite;
            }
            let r = self.inner.put_opts(location, payload, opts).await?;
            if ambiguous {
                return Err(object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: "retried".into(),
                });
            }
            Ok(r)
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            let inner = self.inner.put_multipart_opts(location, opts).await?;
            Ok(Box::new(CountingUpload { inner, aborts: Arc::clone(&self.faults.lock().unwrap().aborts) }))
        }

        async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
            {
                let f = self.faults.lock().unwrap();
                if location.as_ref().contains(&f.matching) {
                    f.reads.lock().unwrap().push(location.to_string());
                }
            }
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            let inner = Arc::clone(&self.inner);
            let faults = Arc::clone(&self.faults);
            locations
                .then(move |loc| {
                    let inner = Arc::clone(&inner);
                    let faults = Arc::clone(&faults);
                    async move {
                        let loc = loc?;
                        pass_gate(&faults, &loc, true).await;
                        inner.delete(&loc).await.map(|()| loc)
                    }
                })
                .boxed()
        }

        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }
}

use wrappers::{Faults, Wrapped};

fn mem_url() -> url::Url {
    url::Url::parse("memory:///lake").unwrap()
}

/// A lake over `store` (the same objects as every other lake over it).
fn lake_over(store: Arc<dyn object_store::ObjectStore>) -> Lake {
    Lake::with_store(&mem_url(), store).unwrap()
}

async fn commit_day(lake: &Lake, lease: &crate::LockGuard, dt: NaiveDate, ids: &[&str]) -> crate::Result<u64> {
    let mut tx = lake.begin(lease).await?;
    tx.write(&SLACK_USERS, dt, users(ids))?;
    Ok(tx.commit().await?.version)
}

#[tokio::test]
async fn two_contenders_racing_for_a_stale_lease_end_with_one_holder() {
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let plain = lake_over(Arc::clone(&store));
    // A run that died: its lease expired at once.
    drop(plain.acquire_lock("dead-run", Duration::ZERO).await.unwrap());

    // B's takeover write (before generations: the delete of the stale lease; now: the create
    // of the next generation) waits at a gate until A is done.
    let (reached_tx, reached_rx) = tokio::sync::oneshot::channel();
    let (open_tx, open_rx) = tokio::sync::oneshot::channel();
    let takeover: fn(&str, bool) -> bool =
        |path, delete| (delete && path.contains("_lastseen/lock")) || (!delete && path.contains("_lastseen/lease/"));
    let gated = Wrapped::new(
        Arc::clone(&store),
        Faults { gate: Some((reached_tx, open_rx)), gate_when: Some(takeover), ..Default::default() },
    );
    let lake_b = lake_over(gated);
    let b = tokio::spawn(async move { lake_b.acquire_lock("run-b", Duration::from_secs(60)).await });
    reached_rx.await.unwrap();
    // A, ungated, judges the same lease stale and takes over.
    let a = plain.acquire_lock("run-a", Duration::from_secs(60)).await;
    open_tx.send(()).unwrap();
    let b = b.await.unwrap();
    let holders: Vec<&str> = [&a, &b].iter().filter_map(|r| r.as_ref().ok().map(|g| g.run_id())).collect();
    assert_eq!(holders, vec!["run-a"], "exactly one holder; B got {:?}", b.as_ref().err());
    assert!(matches!(&b, Err(LakeError::Locked { holder, .. }) if holder.contains("run-a")), "{b:?}");
}

#[tokio::test]
async fn a_holder_whose_lease_was_taken_over_cannot_publish() {
    let (_dir, lake) = file_lake();
    // A's lease lapsed (its heartbeat stalled; here a zero TTL): B takes it over and commits.
    let a = lake.acquire_lock("run-a", Duration::ZERO).await.unwrap();
    let b = lake.acquire_lock("run-b", Duration::from_secs(60)).await.unwrap();
    commit_day(&lake, &b, day(1), &["U1"]).await.unwrap();
    // A, still holding its guard, tries to publish.
    let before = lake.snapshot().await.unwrap();
    match commit_day(&lake, &a, day(2), &["U2"]).await {
        Err(LakeError::LeaseLost { run_id, reason, .. }) => {
            assert_eq!(run_id, "run-a");
            assert!(reason.contains("run-b"), "{reason}");
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert_eq!(lake.snapshot().await.unwrap(), before, "nothing published by the run that lost the lease");
    assert!(a.ensure_held().await.is_err());
    b.ensure_held().await.unwrap();
    assert_eq!(lake.snapshot().await.unwrap().lease_generation, Some(b.generation()));
    b.release().await.unwrap();
}

#[tokio::test]
async fn the_heartbeat_renews_the_lease_and_stops_once_it_is_taken_over() {
    let (dir, lake) = file_lake();
    let a = lake.acquire_lock("run-a", Duration::from_secs(60)).await.unwrap();
    let rec_path = dir.path().join(format!("_lastseen/lease/{:020}.json", a.generation()));
    let read = || serde_json::from_slice::<serde_json::Value>(&std::fs::read(&rec_path).unwrap()).unwrap();
    let expires = || read()["expires_at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let first = expires();
    a.renew().await.unwrap();
    let renewed = expires();
    assert!(renewed > first, "{renewed} after {first}");
    // Another host judged A's record expired (A's clock or heartbeat stalled) and took over.
    let mut rec = read();
    rec["expires_at"] = serde_json::json!("2000-01-01T00:00:00Z");
    std::fs::write(&rec_path, rec.to_string()).unwrap();
    let b = lake.acquire_lock("run-b", Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.generation(), a.generation() + 1);
    assert!(matches!(a.renew().await, Err(LakeError::LeaseLost { .. })));
    assert!(matches!(a.ensure_held().await, Err(LakeError::LeaseLost { .. })));
    // A's release leaves B's lease alone.
    a.release().await.unwrap();
    assert!(matches!(lake.acquire_lock("run-c", Duration::from_secs(60)).await, Err(LakeError::Locked { .. })));
    b.release().await.unwrap();
}

#[tokio::test]
async fn a_store_that_ignores_create_only_is_refused_before_the_lease() {
    let store = Wrapped::new(
        Arc::new(object_store::memory::InMemory::new()),
        Faults { ignore_create: true, ..Default::default() },
    );
    let lake = lake_over(store);
    let err = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(err, LakeError::CreateOnlyIgnored { .. }), "{err:?}");
    let msg = err.to_string();
    for needle in ["memory:///lake", "If-None-Match", "_lastseen/probe/", "nothing was written"] {
        assert!(msg.contains(needle), "{needle} missing from: {msg}");
    }
    // A store that honours it passes, and the probe leaves nothing behind.
    let (_dir, good) = file_lake();
    good.verify_create_only().await.unwrap();
    let left: Vec<_> = good.store().list(Some(&good.path("_lastseen/probe"))).try_collect().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn an_ambiguous_create_only_put_that_succeeded_counts_as_ours() {
    for what in ["_lastseen/log/", "_lastseen/lease/"] {
        let store = Wrapped::new(
            Arc::new(object_store::memory::InMemory::new()),
            Faults { matching: what.into(), ambiguous_create: true, ..Default::default() },
        );
        let lake = lake_over(store);
        let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(commit_day(&lake, &lease, day(1), &["U1"]).await.unwrap(), 1, "{what}");
        lease.release().await.unwrap();
    }
}

#[tokio::test]
async fn a_publish_that_keeps_losing_gives_up_with_a_conflict() {
    let store = Wrapped::new(
        Arc::new(object_store::memory::InMemory::new()),
        Faults { matching: "_lastseen/log/".into(), refuse_create: true, ..Default::default() },
    );
    let lake = lake_over(store);
    let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
    let err = commit_day(&lake, &lease, day(1), &["U1"]).await.unwrap_err();
    assert!(matches!(err, LakeError::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("lost races"), "{err}");
}

#[tokio::test]
async fn a_reader_holding_a_version_keeps_reading_while_the_next_commits_and_vacuum_runs() {
    let (_dir, lake) = file_lake();
    let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
    commit_day(&lake, &lease, day(1), &["U1", "U2", "U3"]).await.unwrap();
    // A long report, an open shell or another engine: planned on version 1.
    let ctx = SessionContext::new();
    LakeTable::register_all(&ctx, &lake, &lake.snapshot().await.unwrap()).unwrap();
    // Version 2 replaces the day, and the daily vacuum runs with a window.
    commit_day(&lake, &lease, day(1), &["U4"]).await.unwrap();
    let report = lake.vacuum(&lease, Duration::from_secs(3600), false).await.unwrap();
    assert!(report.superseded_files.is_empty(), "{report:?}");
    let rows = ctx.sql("SELECT count(*) FROM slack_users").await.unwrap().collect().await.unwrap();
    assert_eq!(
        datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(rows[0].column(0))
            .value(0),
        3,
        "the reader of version 1 still reads version 1"
    );
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 1);
    assert_eq!(parquet_files(&lake).await.len(), 2, "the superseded file waits out the window");

    // Past the window (here: none), vacuum deletes it and forgets it.
    let dry = lake.vacuum(&lease, Duration::ZERO, true).await.unwrap();
    assert_eq!(dry.superseded_files.len(), 1);
    assert_eq!(parquet_files(&lake).await.len(), 2, "a dry run deletes nothing");
    let report = lake.vacuum(&lease, Duration::ZERO, false).await.unwrap();
    assert_eq!(report.superseded_files, dry.superseded_files);
    assert_eq!(parquet_files(&lake).await.len(), 1);
    let snap = lake.snapshot().await.unwrap();
    assert!(snap.superseded.is_empty(), "{:?}", snap.superseded);
    assert_eq!(Some(snap.version), report.version);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 1);
    assert_eq!(lake.vacuum(&lease, Duration::ZERO, false).await.unwrap(), crate::VacuumReport::default());
}

#[tokio::test]
async fn files_of_a_commit_that_never_published_are_vacuumed_through_its_marker_only() {
    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let lake = Lake::open(&url, &BTreeMap::new()).unwrap();
    let lease = lake.acquire_lock("r1", Duration::from_secs(60)).await.unwrap();
    commit_day(&lake, &lease, day(1), &["U1"]).await.unwrap();
    lease.release().await.unwrap();

    // A run that died after writing its files into dt=1 and dt=2, before publishing: here its
    // log put fails.
    let broken = Wrapped::new(
        Arc::clone(lake.store()),
        Faults { matching: "_lastseen/log/".into(), fail_put: true, ..Default::default() },
    );
    let dead = Lake::with_store(&url, broken).unwrap();
    let lease = dead.acquire_lock("dead-run", Duration::from_secs(60)).await.unwrap();
    let mut tx = dead.begin(&lease).await.unwrap();
    tx.write(&SLACK_USERS, day(1), users(&["U7", "U8"])).unwrap();
    tx.write(&SLACK_USERS, day(2), users(&["U9"])).unwrap();
    assert!(tx.commit().await.is_err());
    lease.release().await.unwrap();
    // And a stray file no marker accounts for (not lastseen's, or from an older version).
    let rows = crate::writer::prepare(&lake, &SLACK_USERS, &[], vec![users(&["X"])]).await.unwrap();
    crate::writer::write_files(&lake, &SLACK_USERS, day(1), "unknown", &rows).await.unwrap();
    assert_eq!(parquet_files(&lake).await.len(), 4);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 1, "unpublished files are not data");

    // The next run commits only dt=3; vacuum then removes the dead run's files in dt=1 and dt=2.
    let lease = lake.acquire_lock("r2", Duration::from_secs(60)).await.unwrap();
    commit_day(&lake, &lease, day(3), &["U1"]).await.unwrap();
    let within = lake.vacuum(&lease, Duration::from_secs(3600), false).await.unwrap();
    assert!(within.orphan_files.is_empty(), "within the window nothing goes: {within:?}");
    let report = lake.vacuum(&lease, Duration::ZERO, false).await.unwrap();
    assert_eq!(report.orphan_files.len(), 2, "{report:?}");
    assert!(report.orphan_files.iter().all(|f| f.contains("part-dead-run-")), "{report:?}");
    let files = parquet_files(&lake).await;
    assert!(!files.iter().any(|f| f.contains("dead-run")), "{files:?}");
    assert!(files.iter().any(|f| f.contains("part-unknown-")), "an unaccounted file is never deleted: {files:?}");
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 2);
    let markers: Vec<_> = lake.store().list(Some(&lake.path("_lastseen/inflight"))).try_collect().await.unwrap();
    assert!(markers.is_empty(), "settled markers are removed: {markers:?}");
}

#[tokio::test]
async fn a_commit_removes_only_its_own_staging_folder() {
    let (_dir, lake) = file_lake();
    // Another run's spill files (a live writer elsewhere, or a dead run vacuum has not reached).
    let other = lake.path("_lastseen/staging/other-run/slack_users/dt=2026-03-01/spill-000000.parquet");
    lake.store().put(&other, bytes::Bytes::from_static(b"x").into()).await.unwrap();
    let lease = lake.acquire_lock("spill", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.set_memory_budget(1);
    tx.write_spilling(&SLACK_USERS, day(1), users(&["U1"])).await.unwrap();
    assert!(tx.spill_count() > 0);
    tx.commit().await.unwrap();
    let left: Vec<String> = lake
        .store()
        .list(Some(&lake.path("_lastseen/staging")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(left, vec![other.to_string()], "only this run's staging is removed");
    // Vacuum takes the other run's folder once the window has passed.
    assert_eq!(lake.vacuum(&lease, Duration::from_secs(3600), false).await.unwrap().staging_files, 0);
    assert_eq!(lake.vacuum(&lease, Duration::ZERO, false).await.unwrap().staging_files, 1);
}

#[tokio::test]
async fn a_truncated_newest_log_version_is_skipped_and_the_next_commit_repairs_the_log() {
    let (dir, lake) = file_lake();
    let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
    commit_day(&lake, &lease, day(1), &["U1"]).await.unwrap();
    commit_day(&lake, &lease, day(2), &["U1", "U2"]).await.unwrap();
    // A power cut: the newest version survived with zero length.
    std::fs::write(dir.path().join("_lastseen/log/00000000000000000002.json"), b"").unwrap();
    let snap = lake.snapshot().await.unwrap();
    assert_eq!(snap.version, 1, "the newest readable version");
    assert_eq!(snap.dates("slack_users"), vec![day(1)]);
    // The next commit publishes above the damaged one.
    assert_eq!(commit_day(&lake, &lease, day(3), &["U3"]).await.unwrap(), 3);
    let snap = lake.snapshot().await.unwrap();
    assert_eq!((snap.version, snap.dates("slack_users")), (3, vec![day(1), day(3)]));
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, 2);
    // Half a version (torn mid-write) is as unreadable as an empty one.
    let v3 = dir.path().join("_lastseen/log/00000000000000000003.json");
    let body = std::fs::read(&v3).unwrap();
    std::fs::write(&v3, &body[..body.len() / 2]).unwrap();
    assert_eq!(lake.snapshot().await.unwrap().version, 1);
}

#[tokio::test]
async fn an_unfinished_multipart_upload_is_aborted_and_a_finished_one_is_not() {
    use datafusion::parquet::arrow::async_writer::AsyncFileWriter;
    let aborts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let store = Wrapped::new(
        Arc::new(object_store::memory::InMemory::new()),
        Faults { aborts: Arc::clone(&aborts), ..Default::default() },
    );
    let lake = lake_over(store);
    let count = || aborts.load(std::sync::atomic::Ordering::SeqCst);
    // Past the writer's 10 MiB buffer, so a multipart upload is under way; then the write fails
    // (here: the writer is dropped unfinished, as on any error path).
    let mut w = crate::writer::AbortingWriter::new(&lake, "t/dt=2026-03-01/part-x-00000.parquet");
    w.write(bytes::Bytes::from(vec![7u8; 11 << 20])).await.unwrap();
    drop(w);
    for _ in 0..1000 {
        if count() > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(count(), 1, "the abandoned upload is aborted");
    let mut w = crate::writer::AbortingWriter::new(&lake, "t/dt=2026-03-01/part-y-00000.parquet");
    w.write(bytes::Bytes::from(vec![7u8; 11 << 20])).await.unwrap();
    w.complete().await.unwrap();
    drop(w);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(count(), 1, "a completed upload is not aborted");
    assert!(lake.store().head(&lake.path("t/dt=2026-03-01/part-y-00000.parquet")).await.is_ok());
}

/// `slack_users` rows `(team_id, user_id, workspace_ids)`, collected at `collected`.
fn users_in(rows: &[(&str, &str, Option<&[&str]>)], collected: i64) -> RecordBatch {
    use datafusion::arrow::array::{ListBuilder, StringBuilder};
    let ids: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let base = users(&ids);
    let mut cols = base.columns().to_vec();
    cols[0] = Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()));
    cols[21] = utc(vec![collected; rows.len()]);
    let mut ws = ListBuilder::new(StringBuilder::new()).with_field(crate::catalog::utf8_list_item());
    for r in rows {
        match r.2 {
            Some(list) => ws.append_value(list.iter().map(|w| Some(*w))),
            None => ws.append_null(),
        }
    }
    cols[23] = Arc::new(ws.finish());
    RecordBatch::try_new(SLACK_USERS.schema(), cols).unwrap()
}

async fn commit_skipping(
    lake: &Lake,
    dt: NaiveDate,
    batch: RecordBatch,
    skipped: &[&str],
    max_drop: Option<f64>,
    spill: bool,
) -> crate::Result<()> {
    let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.guard_snapshots(max_drop);
    if spill {
        // Every staged row goes to a staging file: the carried rows are checked against those.
        tx.set_memory_budget(1);
        tx.write_spilling(&SLACK_USERS, dt, batch).await.unwrap();
        assert!(tx.spill_count() > 0);
    } else {
        tx.write(&SLACK_USERS, dt, batch).unwrap();
    }
    tx.carry_forward_skipped(&SLACK_USERS, dt, skipped.iter().map(|s| (*s).to_owned()));
    let result = tx.commit().await.map(|_| ());
    lease.release().await.unwrap();
    result
}

#[tokio::test]
async fn rows_of_skipped_workspaces_are_carried_forward_and_count_for_the_guard() {
    let (_dir, lake) = file_lake();
    let yesterday: &[(&str, &str, Option<&[&str]>)] = &[
        ("T1", "U1", Some(&["T1"])),
        ("T2", "U2", Some(&["T2"])),
        ("T2", "U3", Some(&["T1", "T2"])),
        ("T2", "U4", None),
        ("T3", "U5", Some(&["T3"])),
        ("T2", "U6", Some(&["T2"])),
        ("T1", "U7", Some(&["T1"])),
    ];
    commit_skipping(&lake, day(1), users_in(yesterday, ts(1, 5)), &[], Some(0.2), false).await.unwrap();
    // Today T2 is skipped. U6 joined T1 and is listed there; U5 (T3) and U7 (T1) are gone.
    let today: &[(&str, &str, Option<&[&str]>)] =
        &[("T1", "U1", Some(&["T1"])), ("T2", "U3", Some(&["T1", "T2"])), ("T2", "U6", Some(&["T1", "T2"]))];
    // 7 → 5 with the carried rows (28.6%): over 20%, refused; without them it would be 3.
    let err = commit_skipping(&lake, day(2), users_in(today, ts(2, 5)), &["T2"], Some(0.2), false).await.unwrap_err();
    assert!(matches!(err, LakeError::SnapshotDrop { rows: 5, previous_rows: 7, .. }), "{err:?}");
    commit_skipping(&lake, day(2), users_in(today, ts(2, 5)), &["T2"], Some(0.3), false).await.unwrap();
    let b = query(
        &lake,
        "SELECT team_id || '/' || user_id || '@' || CAST(CAST(collected_at AS BIGINT) AS VARCHAR) AS r \
         FROM slack_users WHERE dt = DATE '2026-03-02' ORDER BY r",
    )
    .await;
    let got: Vec<String> = b
        .iter()
        .flat_map(|b| {
            // The concatenation may come back as a string view: read it as plain Utf8.
            let col =
                datafusion::arrow::compute::cast(b.column(0), &datafusion::arrow::datatypes::DataType::Utf8).unwrap();
            let c = datafusion::arrow::array::AsArray::as_string::<i32>(&col);
            (0..datafusion::arrow::array::Array::len(c)).map(|i| c.value(i).to_owned()).collect::<Vec<_>>()
        })
        .collect();
    let (old, new) = (ts(1, 5), ts(2, 5));
    // U2 and U4 (only in T2, U4 by its team_id) carried unchanged; U6 once, as collected today;
    // U5 and U7 were in collected workspaces and are gone.
    let want = vec![
        format!("T1/U1@{new}"),
        format!("T2/U2@{old}"),
        format!("T2/U3@{new}"),
        format!("T2/U4@{old}"),
        format!("T2/U6@{new}"),
    ];
    assert_eq!(got, want);
    // The same with today's rows spilled to staging files: U6 still once.
    commit_skipping(&lake, day(2), users_in(today, ts(2, 5)), &["T2"], Some(0.3), true).await.unwrap();
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users WHERE dt = DATE '2026-03-02'").await, 5);
    assert_eq!(
        scalar(&lake, "SELECT count(*) FROM slack_users WHERE dt = DATE '2026-03-02' AND user_id = 'U6'").await,
        1
    );
    // Nothing skipped: nothing carried.
    commit_skipping(&lake, day(3), users_in(today, ts(3, 5)), &[], None, false).await.unwrap();
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users WHERE dt = DATE '2026-03-03'").await, 3);
}

/// The files (relative to the table), `txn` version and Delta version of a table's Delta log.
async fn delta_view(lake: &Lake, table: &str) -> (BTreeSet<String>, Option<i64>, u64, Vec<serde_json::Value>) {
    let log_store = lake.delta_log_store(table).unwrap();
    let st = lake.delta_state(table, &log_store).await.unwrap().expect("a Delta log");
    let files = st.log_data().iter().map(|f| f.path().to_string()).collect();
    let stats = st.log_data().iter().map(|f| serde_json::from_str(&f.stats().unwrap()).unwrap()).collect();
    let txn = st.transaction_version(log_store.as_ref(), crate::DELTA_APP_ID).await.unwrap();
    (files, txn, st.version(), stats)
}

/// The files lastseen lists for `table`, relative to the table.
async fn listed(lake: &Lake, table: &str) -> BTreeSet<String> {
    let snap = lake.snapshot().await.unwrap();
    snap.table(table)
        .unwrap()
        .partitions
        .values()
        .flat_map(|p| p.files.iter().map(|f| f.path.strip_prefix(&format!("{table}/")).unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn each_commit_publishes_the_changed_tables_to_their_delta_logs_idempotently() {
    let (_dir, lake) = file_lake();
    for ids in [&["U1", "U2", "U3"][..], &["U2", "U4"][..]] {
        let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
        let mut tx = lake.begin(&lease).await.unwrap();
        tx.write(&SLACK_USERS, day(1), users(ids)).unwrap();
        tx.commit().await.unwrap();
        lease.release().await.unwrap();
    }
    let (files, txn, version, stats) = delta_view(&lake, "slack_users").await;
    assert_eq!(files, listed(&lake, "slack_users").await, "Delta lists exactly lastseen's files");
    assert_eq!((txn, version), (Some(2), 1), "one Delta commit per lastseen version, txn = lake version");
    assert_eq!(stats[0]["numRecords"], 2);
    assert_eq!(stats[0]["minValues"]["user_id"], "U2");
    assert_eq!(stats[0]["maxValues"]["user_id"], "U4");
    assert_eq!(stats[0]["nullCount"]["email"], 2);

    // Idempotent: taking the lease again publishes nothing (the txn is current).
    let lease = lake.acquire_lock("again", Duration::from_secs(60)).await.unwrap();
    let sync = lake.sync_delta(&lease.state()).await.unwrap();
    assert!(sync.committed.is_empty(), "{sync:?}");
    assert_eq!(delta_view(&lake, "slack_users").await.2, 1);

    // The replaced file is referenced by the Delta log within the keep window, not after it.
    let snap = lake.snapshot().await.unwrap();
    let old = &snap.superseded[0].path;
    let inside = lake.delta_referenced(&snap, chrono::Utc::now() - chrono::Duration::hours(1)).await.unwrap();
    assert!(inside.contains(old), "{inside:?}");
    let after = lake.delta_referenced(&snap, chrono::Utc::now() + chrono::Duration::seconds(1)).await.unwrap();
    assert!(!after.contains(old));
    assert_eq!(after.len(), 1);
    lease.release().await.unwrap();
}

#[tokio::test]
async fn a_lake_without_delta_logs_is_converted_when_the_lease_is_taken() {
    let (dir, lake) = file_lake();
    let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.write(&SLACK_USERS, day(1), users(&["U1", "U2"])).unwrap();
    tx.write(&SLACK_USERS, day(2), users(&["U1"])).unwrap();
    tx.commit().await.unwrap();
    lease.release().await.unwrap();
    // As a lake written before Delta logs existed (or one whose Delta log was moved away).
    std::fs::remove_dir_all(dir.path().join("slack_users/_delta_log")).unwrap();
    let parquet_before = parquet_files(&lake).await;

    let lease = lake.acquire_lock("next", Duration::from_secs(60)).await.unwrap();
    let (files, txn, version, _) = delta_view(&lake, "slack_users").await;
    assert_eq!(files, listed(&lake, "slack_users").await);
    assert_eq!((txn, version), (Some(1), 0));
    assert_eq!(parquet_files(&lake).await, parquet_before, "no data is copied");
    lease.release().await.unwrap();
}

#[tokio::test]
async fn a_version_whose_files_were_vacuumed_cannot_be_read() {
    let (_dir, lake) = file_lake();
    for ids in [&["U1"][..], &["U2"][..]] {
        let lease = lake.acquire_lock("r", Duration::from_secs(60)).await.unwrap();
        let mut tx = lake.begin(&lease).await.unwrap();
        tx.write(&SLACK_USERS, day(1), users(ids)).unwrap();
        tx.commit().await.unwrap();
        lease.release().await.unwrap();
    }
    assert_eq!(lake.snapshot_at(1).await.unwrap().version, 1);
    let lease = lake.acquire_lock("v", Duration::from_secs(60)).await.unwrap();
    lake.vacuum(&lease, Duration::ZERO, false).await.unwrap();
    lease.release().await.unwrap();
    let err = lake.snapshot_at(1).await.unwrap_err().to_string();
    assert!(err.contains("lake version 1 cannot be read") && err.contains("deleted by vacuum"), "{err}");
    let err = lake.snapshot_at(99).await.unwrap_err().to_string();
    assert!(err.contains("not in the commit log"), "{err}");
}

#[tokio::test]
async fn vacuum_keeps_a_superseded_file_while_a_delta_log_still_references_it() {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let healthy = lake_over(Arc::clone(&inner));
    // Delta writes fail on this one: its commits publish lastseen's version only.
    let no_delta = lake_over(Wrapped::new(
        Arc::clone(&inner),
        Faults { matching: "_delta_log/".into(), fail_put: true, ..Default::default() },
    ));
    let lease = healthy.acquire_lock("r1", Duration::from_secs(60)).await.unwrap();
    commit_day(&healthy, &lease, day(1), &["U1"]).await.unwrap();
    lease.release().await.unwrap();
    let v1_files = delta_view(&healthy, "slack_users").await.0;
    assert_eq!(v1_files, listed(&healthy, "slack_users").await);

    let lease = no_delta.acquire_lock("r2", Duration::from_secs(60)).await.unwrap();
    commit_day(&no_delta, &lease, day(1), &["U2"]).await.unwrap();
    assert_eq!(delta_view(&no_delta, "slack_users").await.0, v1_files, "the Delta view stayed behind");
    let old = format!("slack_users/{}", v1_files.iter().next().unwrap());
    // lastseen's log alone would let vacuum delete the replaced file at once; the Delta log
    // still lists it, so it stays.
    let report = no_delta.vacuum(&lease, Duration::ZERO, false).await.unwrap();
    assert!(report.superseded_files.is_empty(), "{report:?}");
    assert!(inner.head(&healthy.path(&old)).await.is_ok());
    lease.release().await.unwrap();

    // Once the Delta log has caught up (removed it) and the window has passed, it goes.
    let lease = healthy.acquire_lock("r3", Duration::from_secs(60)).await.unwrap();
    assert_eq!(delta_view(&healthy, "slack_users").await.0, listed(&healthy, "slack_users").await);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = healthy.vacuum(&lease, Duration::ZERO, false).await.unwrap();
    assert_eq!(report.superseded_files, vec![old.clone()]);
    assert!(inner.head(&healthy.path(&old)).await.is_err());
    lease.release().await.unwrap();
}

/// Rows of one Parquet file in file order, rendered as text, one string per row.
async fn file_rows(lake: &Lake, rel: &str) -> Vec<String> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bytes = lake.store().get(&lake.path(rel)).await.unwrap().bytes().await.unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    rows_text(&batches)
}

fn rows_text(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let fmt: Vec<_> = b
            .columns()
            .iter()
            .map(|c| {
                datafusion::arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default()).unwrap()
            })
            .collect();
        for r in 0..b.num_rows() {
            out.push(fmt.iter().map(|f| f.value(r).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    out
}

#[tokio::test]
async fn a_multi_partition_commit_writes_the_files_a_plan_per_partition_would() {
    let (_dir, lake) = file_lake();
    let lease = lake.acquire_lock("multi", Duration::from_secs(60)).await.unwrap();
    // A committed base: days 1..=4 (the merge reads their files).
    let mut tx = lake.begin(&lease).await.unwrap();
    let base: Vec<(String, String, i64, i64)> = (0..40)
        .map(|i| (format!("U{:02}", i % 13), format!("ip{i}"), ts(1, i), ts(1 + (i as u32 % 4), i * 7)))
        .collect();
    let refs: Vec<(&str, &str, i64, i64)> = base.iter().map(|r| (r.0.as_str(), r.1.as_str(), r.2, r.3)).collect();
    tx.write(&SLACK_ACCESS_LOGS, day(9), logs(&refs, ts(9, 0))).unwrap();
    tx.commit().await.unwrap();
    let before = lake.snapshot().await.unwrap();

    // The next commit: days 2..=7, some rows moved later (merge), some new, pages read twice,
    // half of them spilled to staging files, and users (a second table) in the same commit.
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.set_memory_budget(4096);
    let mut by_day: BTreeMap<NaiveDate, Vec<RecordBatch>> = BTreeMap::new();
    for page in 0..6i64 {
        let rows: Vec<(String, String, i64, i64)> = (0..30)
            .map(|i| {
                let d = 2 + ((i + page) % 6) as u32;
                (
                    format!("U{:02}", (i * 7 + page) % 17),
                    format!("ip{}", (i + page * 3) % 40),
                    ts(1, i),
                    ts(d, i * 11 + page),
                )
            })
            .collect();
        let refs: Vec<(&str, &str, i64, i64)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str(), r.2, r.3)).collect();
        let batch = logs(&refs, ts(10, page));
        tx.write_spilling(&SLACK_ACCESS_LOGS, day(9), batch.clone()).await.unwrap();
        // The reference input: the same rows split by day (what the transaction stages).
        for r in &rows {
            let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
                + chrono::Days::new(((r.3 / 1_000_000 - ts(1, 0) / 1_000_000) / 86_400) as u64);
            by_day.entry(d).or_default().push(logs(&[(r.0.as_str(), r.1.as_str(), r.2, r.3)], ts(10, page)));
        }
    }
    tx.write(&SLACK_USERS, day(9), users(&["U3", "U1", "U2"])).unwrap();
    assert!(tx.spill_count() > 0, "part of the rows must come from staging files");
    let summary = tx.commit().await.unwrap();
    let after = lake.snapshot().await.unwrap();

    // Reference: the per-partition plan over each day's committed files and its new rows.
    let mut checked = 0;
    for (dt, new) in by_day {
        let existing = before.partition(SLACK_ACCESS_LOGS.name, dt).map(|p| p.files.clone()).unwrap_or_default();
        let expected = rows_text(&crate::writer::prepare(&lake, &SLACK_ACCESS_LOGS, &existing, new).await.unwrap());
        let part = after.partition(SLACK_ACCESS_LOGS.name, dt).unwrap();
        assert_eq!(part.files.len(), 1, "one file per partition on {dt}");
        let file = &part.files[0];
        let dir = Lake::partition_dir(SLACK_ACCESS_LOGS.name, dt);
        assert!(
            file.path.starts_with(&format!("{dir}/part-multi-")) && file.path.ends_with("-00000.parquet"),
            "{}",
            file.path
        );
        assert_eq!(file.rows as usize, expected.len());
        // Same rows in the same order (the sort key is unique in this data, so the order is fixed).
        assert_eq!(file_rows(&lake, &file.path).await, expected, "partition {dt}");
        checked += 1;
    }
    assert_eq!(checked, 6);
    // Days the commit did not touch keep their files; users is its own partition.
    assert_eq!(after.partition(SLACK_ACCESS_LOGS.name, day(1)), before.partition(SLACK_ACCESS_LOGS.name, day(1)));
    let users_file = &after.partition(SLACK_USERS.name, day(9)).unwrap().files[0];
    let ids: Vec<String> =
        file_rows(&lake, &users_file.path).await.iter().map(|r| r.split('|').nth(1).unwrap().to_string()).collect();
    assert_eq!(ids, vec!["U1", "U2", "U3"]);
    assert_eq!(summary.partitions.len(), 7);
}

#[tokio::test]
async fn a_large_partition_is_written_in_row_groups_a_scan_can_share_out() {
    // One row group is decoded by one thread; a snapshot of 500,000 accounts written as one
    // group kept every report on one core (bench/RESULTS.md).
    let (dir, lake) = file_lake();
    let n = crate::writer::ROW_GROUP_ROWS + 10;
    let names: Vec<String> = (0..n).map(|i| format!("U{i:07}")).collect();
    let ids: Vec<&str> = names.iter().map(String::as_str).collect();
    commit_users(&lake, day(1), &ids, None).await.unwrap();
    let snapshot = lake.snapshot().await.unwrap();
    let files = &snapshot.tables["slack_users"].partitions[&day(1)].files;
    assert_eq!(files.len(), 1);
    let bytes = std::fs::read(dir.path().join(&files[0].path)).unwrap();
    let reader = datafusion::parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    let meta = datafusion::parquet::file::reader::FileReader::metadata(&reader);
    let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(groups, [crate::writer::ROW_GROUP_ROWS as i64, 10]);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM slack_users").await, n as i64);
}

// ---- Run manifests: a report reads one, not the lake's history -------------------------------

#[tokio::test]
async fn a_reports_manifest_lookups_read_one_manifest_of_a_years_runs_not_all() {
    let reads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = Wrapped::new(
        Arc::new(object_store::memory::InMemory::new()),
        Faults { matching: "_lastseen/runs/".into(), reads: Arc::clone(&reads), ..Default::default() },
    );
    let lake = lake_over(store);
    // A year of daily runs, each started the morning after the day it collects; the last one
    // published nothing (it failed).
    let first = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
    let mut ids = Vec::new();
    for i in 0..365u32 {
        let date = first + chrono::Days::new(u64::from(i));
        let started = (date + chrono::Days::new(1)).and_hms_opt(0, 30, 0).unwrap().and_utc();
        let id = crate::new_run_id(started);
        let mut m = crate::RunManifest::start(&id, date, started);
        m.lake_version = (i < 364).then_some(u64::from(i) + 1);
        lake.write_run_manifest(&m).await.unwrap();
        ids.push(id);
    }
    let taken = |reads: &std::sync::Mutex<Vec<String>>| std::mem::take(&mut *reads.lock().unwrap());

    // Provenance: the run that published the version read, by id.
    let m = lake.run_manifest(&ids[200]).await.unwrap().unwrap();
    assert_eq!((m.run_id.as_str(), m.date), (ids[200].as_str(), first + chrono::Days::new(200)));
    assert_eq!(taken(&reads).len(), 1);
    assert!(lake.run_manifest("20250101T000000Z-nothere").await.unwrap().is_none());
    assert!(lake.run_manifest("../log/1").await.unwrap().is_none());
    assert_eq!(taken(&reads).len(), 1, "only the well-formed missing id is looked up");

    // The run that wrote the newest published day: the newest manifest is read, then the one
    // before it, which is the answer.
    let newest_day = first + chrono::Days::new(363);
    let m = lake.newest_run_manifest(|r| r.date == newest_day && r.lake_version.is_some()).await.unwrap().unwrap();
    assert_eq!(m.run_id, ids[363]);
    let read = taken(&reads);
    assert_eq!(read.len(), 2, "{read:?}");
    assert!(
        read[0].ends_with(&format!("{}.json", ids[364])) && read[1].ends_with(&format!("{}.json", ids[363])),
        "{read:?}"
    );
    // A day nobody ran: every manifest is read once, none twice, and the answer is none.
    let missing = first - chrono::Days::new(1);
    assert!(lake.newest_run_manifest(|r| r.date == missing).await.unwrap().is_none());
    assert_eq!(taken(&reads).len(), 365);
}

#[tokio::test]
async fn first_per_key_keeps_the_first_row_of_each_run_of_equal_keys_across_batches() {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("n", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    // (k, n) runs, sorted; `v` numbers the rows. Runs span batches (one of them three batches,
    // with an empty batch in between), NULL keys form one run, and "" is not NULL.
    let pages: Vec<Vec<(Option<&str>, i64)>> = vec![
        vec![(Some(""), 1), (Some("a"), 1), (Some("a"), 1)],
        vec![(Some("a"), 1)],
        vec![],
        vec![(Some("a"), 1), (Some("a"), 2)],
        vec![(None, 1), (None, 1)],
        vec![(None, 1), (Some("b"), 2)],
        vec![(Some("b"), 2)],
        vec![(Some("b"), 3)],
    ];
    let mut v = 0;
    let mut batches = Vec::new();
    for page in pages {
        let k: Vec<Option<&str>> = page.iter().map(|r| r.0).collect();
        let n: Vec<i64> = page.iter().map(|r| r.1).collect();
        let vs: Vec<i64> = (v..v + page.len() as i64).collect();
        v += page.len() as i64;
        batches.push(Ok(RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(StringArray::from(k)), Arc::new(Int64Array::from(n)), Arc::new(Int64Array::from(vs))],
        )
        .unwrap()));
    }
    let input = Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&schema), futures::stream::iter(batches)));
    let out: Vec<RecordBatch> = crate::writer::first_per_key(input, vec![0, 1]).try_collect().await.unwrap();
    let kept: Vec<i64> = out
        .iter()
        .flat_map(|b| {
            datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(b.column(2))
                .values()
                .to_vec()
        })
        .collect();
    // "" (row 0), a/1 (1; its copies 2, 3, 4 span three batches), a/2 (5), NULL/1 (6; 7 and 8
    // in the next batch), b/2 (9; 10 in the next), b/3 (11).
    assert_eq!(kept, vec![0, 1, 5, 6, 9, 11]);
}

#[tokio::test]
async fn a_first_run_of_many_duplicated_pages_commits_the_rows_of_the_per_partition_plan() {
    // Enough rows that the commit plan's sorted stream comes in several batches (8,192 rows
    // each): every key is read on each of 6 pages (different `date_last` within its day,
    // `collected_at` and order), so its 6 copies are adjacent in the sorted stream and most batch
    // boundaries cut through a run of one key's copies.
    let (_dir, lake) = file_lake();
    let lease = lake.acquire_lock("dups", Duration::from_secs(60)).await.unwrap();
    let mut tx = lake.begin(&lease).await.unwrap();
    tx.set_memory_budget(256 * 1024);
    let mut by_day: BTreeMap<NaiveDate, Vec<RecordBatch>> = BTreeMap::new();
    const KEYS: i64 = 6_000;
    for page in 0..6i64 {
        let rows: Vec<(String, String, i64, i64)> = (0..KEYS)
            .map(|i| {
                let k = (i * 7 + page * 1_000) % KEYS;
                let d = 2 + (k % 3) as u32;
                // Pages 2 and 5 tie on the newest date_last: the earlier `collected_at` (page 5) wins.
                (format!("U{:04}", k % 2_500), format!("ip{}", k / 2_500), ts(1, k), ts(d, k * 8 + page % 3))
            })
            .collect();
        let refs: Vec<(&str, &str, i64, i64)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str(), r.2, r.3)).collect();
        let batch = logs(&refs, ts(10, 5 - page));
        tx.write_spilling(&SLACK_ACCESS_LOGS, day(9), batch.clone()).await.unwrap();
        for (i, r) in rows.iter().enumerate() {
            let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
                + chrono::Days::new(((r.3 / 1_000_000 - ts(1, 0) / 1_000_000) / 86_400) as u64);
            by_day.entry(d).or_default().push(batch.slice(i, 1));
        }
    }
    tx.commit().await.unwrap();
    let after = lake.snapshot().await.unwrap();
    let mut total = 0;
    for (dt, new) in by_day {
        let expected = rows_text(&crate::writer::prepare(&lake, &SLACK_ACCESS_LOGS, &[], new).await.unwrap());
        let part = after.partition(SLACK_ACCESS_LOGS.name, dt).unwrap();
        let mut got = Vec::new();
        for f in &part.files {
            got.extend(file_rows(&lake, &f.path).await);
        }
        // Same rows, same order: the sort key (team, user, date_last) ties only between rows of
        // one user on one day, so compare as sorted text within those.
        let (mut g, mut e) = (got.clone(), expected.clone());
        g.sort();
        e.sort();
        assert_eq!(g, e, "partition {dt}");
        total += got.len();
    }
    // Each key once in the lake.
    assert_eq!(total, KEYS as usize);
}
