//! Property tests of the transforms on in-memory tables: the incremental `last_seen` fold equals a
//! full rebuild on random histories, and correlation is independent of input order and never
//! gives one identity two accounts of a workspace without an override.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, ListArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use lastseen_lake::catalog::{ACCOUNTS, date32};
use proptest::prelude::*;

use crate::last_seen::{Sources, Step, fold};
use crate::session::{register_batches, ts};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn day0() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

fn day(n: u32) -> NaiveDate {
    day0().checked_add_days(Days::new(u64::from(n))).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap()
}

/// Batches as sorted JSON lines, without `computed_at` (it differs by design).
fn lines(batches: &[RecordBatch], drop: &str) -> Vec<String> {
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
        for b in batches {
            let keep: Vec<usize> = (0..b.num_columns()).filter(|&i| b.schema().field(i).name() != drop).collect();
            w.write(&b.project(&keep).unwrap()).unwrap();
        }
        w.finish().unwrap();
    }
    let mut out: Vec<String> = String::from_utf8(buf).unwrap().lines().map(str::to_owned).collect();
    out.sort();
    out
}

// ---------------------------------------------------------------- last_seen: incremental = full

#[derive(Debug, Clone)]
struct Evidence {
    account: usize,
    day: u32,
    active: bool,
    secs: i64,
    back: i64,
    source: usize,
}

#[derive(Debug, Clone)]
struct History {
    accounts: usize,
    evidence: Vec<Evidence>,
    runs: Vec<u32>,
    listed: Vec<u8>,
}

fn history() -> impl Strategy<Value = History> {
    (1usize..6).prop_flat_map(|accounts| {
        let ev = (0..accounts, 0u32..150, any::<bool>(), 0i64..86_400, 0i64..(200 * 86_400), 0usize..3).prop_map(
            |(account, day, active, secs, back, source)| Evidence { account, day, active, secs, back, source },
        );
        (
            Just(accounts),
            prop::collection::vec(ev, 0..60),
            prop::collection::btree_set(0u32..150, 2..7),
            prop::collection::vec(any::<u8>(), 7),
        )
            .prop_map(|(accounts, evidence, runs, listed)| History {
                accounts,
                evidence,
                runs: runs.into_iter().collect(),
                listed,
            })
    })
}

const SOURCES: [&str; 3] = ["access_logs", "analytics", "audit_logins"];

fn activity_batch(h: &History) -> RecordBatch {
    // One row per account and day, as activity_daily has.
    let mut rows: BTreeMap<(usize, u32), &Evidence> = BTreeMap::new();
    for e in &h.evidence {
        rows.entry((e.account, e.day)).or_insert(e);
    }
    let base = |d: u32| day(d).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros();
    let mut app = Vec::new();
    let mut acc = Vec::new();
    let mut ws = Vec::new();
    let mut active = Vec::new();
    let mut first = Vec::new();
    let mut last = Vec::new();
    let mut src = Vec::new();
    let mut dt = Vec::new();
    for ((a, d), e) in &rows {
        app.push(app_of(*a));
        acc.push(account_of(*a));
        ws.push(format!("T{}", a % 2));
        active.push(e.active);
        let t = base(*d) + e.secs * 1_000_000;
        first.push(e.active.then_some(t - e.back * 1_000_000));
        last.push(e.active.then_some(t));
        src.push(e.active.then_some(SOURCES[e.source]));
        dt.push(date32(day(*d)));
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("app", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("workspace_id", DataType::Utf8, true),
        Field::new("active", DataType::Boolean, false),
        Field::new("first_at", ts(), true),
        Field::new("last_at", ts(), true),
        Field::new("last_source", DataType::Utf8, true),
        Field::new("dt", DataType::Date32, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(app)),
        Arc::new(StringArray::from(acc)),
        Arc::new(StringArray::from(ws)),
        Arc::new(BooleanArray::from(active)),
        Arc::new(TimestampMicrosecondArray::from(first).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from(last).with_timezone("UTC")),
        Arc::new(StringArray::from(src)),
        Arc::new(Date32Array::from(dt)),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

/// Generated accounts `2k` and `2k + 1` share the id `U{k}` in two apps: an account is
/// (app, account_id), and the fold must never merge the two.
fn app_of(a: usize) -> &'static str {
    ["slack", "okta"][a % 2]
}

fn account_of(a: usize) -> String {
    format!("U{}", a / 2)
}

fn listed_batch(h: &History) -> RecordBatch {
    let (mut app, mut ws, mut acc, mut dt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (k, r) in h.runs.iter().enumerate() {
        for a in 0..h.accounts {
            if h.listed[k] & (1 << a) != 0 {
                app.push(app_of(a));
                ws.push(format!("T{}", a % 2));
                acc.push(account_of(a));
                dt.push(date32(day(*r)));
            }
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("app", DataType::Utf8, false),
        Field::new("workspace_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("dt", DataType::Date32, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(app)),
        Arc::new(StringArray::from(ws)),
        Arc::new(StringArray::from(acc)),
        Arc::new(Date32Array::from(dt)),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

async fn incremental_vs_full(h: &History) -> Vec<(NaiveDate, Vec<String>, Vec<String>)> {
    incremental_vs_full_covering(h, &["okta".to_string(), "slack".to_string()]).await
}

/// A session holding `h`'s activity (`act`) and accounts (`acc`), and an empty `last_seen` (`ls`)
/// with its schema: the fold's inputs.
fn fold_context(h: &History) -> (SessionContext, Sources<'static>, datafusion::arrow::datatypes::SchemaRef) {
    let ctx = SessionContext::new();
    let act = activity_batch(h);
    register_batches(&ctx, "act", act.schema(), vec![act]).unwrap();
    let listed = listed_batch(h);
    register_batches(&ctx, "acc", listed.schema(), vec![listed]).unwrap();
    let ls_schema = lastseen_lake::catalog::LAST_SEEN.table_schema();
    register_batches(&ctx, "ls", Arc::clone(&ls_schema), Vec::new()).unwrap();
    (ctx, Sources { activity: "act", accounts: "acc", last_seen: "ls" }, ls_schema)
}

async fn incremental_vs_full_covering(h: &History, covered: &[String]) -> Vec<(NaiveDate, Vec<String>, Vec<String>)> {
    let (ctx, src, ls_schema) = fold_context(h);
    let mut out = Vec::new();
    let mut base = None;
    for &r in &h.runs {
        let d = day(r);
        let step = Step { as_of: d, base, dormant_days: 30, covered, computed_at: now() };
        let inc = fold(&ctx, src, step).await.unwrap();
        let full = fold(&ctx, src, Step { base: None, ..step }).await.unwrap();
        out.push((d, lines(&inc, "computed_at"), lines(&full, "computed_at")));
        let with_dt: Vec<RecordBatch> = inc.iter().map(|b| crate::session::add_dt(b, &ls_schema, d).unwrap()).collect();
        register_batches(&ctx, "ls", Arc::clone(&ls_schema), with_dt).unwrap();
        base = Some(d);
    }
    out
}

/// The fold with `last_source` chosen by `first_value(… ORDER BY …)`, as it was written before it
/// became `min` of a sortable text: the oracle of the shipped SQL.
fn last_seen_oracle() -> String {
    let sql = crate::last_seen::LAST_SEEN_SQL;
    let start = sql.find("        -- The source of the latest use").expect("the shipped expression");
    let end = sql[start..].find("AS last_source,").expect("its alias") + start;
    format!(
        "{}first_value(last_source ORDER BY last_at DESC NULLS LAST, last_source ASC) FILTER (WHERE last_at IS NOT NULL) {}",
        &sql[..start],
        &sql[end..]
    )
}

async fn last_seen_vs_oracle(h: &History) -> Vec<(NaiveDate, Vec<String>, Vec<String>)> {
    let (ctx, src, _) = fold_context(h);
    let covered = ["okta".to_string(), "slack".to_string()];
    let oracle = last_seen_oracle();
    let mut out = Vec::new();
    for &r in &h.runs {
        let step = Step { as_of: day(r), base: None, dormant_days: 30, covered: &covered, computed_at: now() };
        let got = fold(&ctx, src, step).await.unwrap();
        let stream = crate::last_seen::fold_stream_with(&ctx, src, step, &oracle).await.unwrap();
        let want =
            crate::session::collect(stream, &lastseen_lake::catalog::LAST_SEEN.schema(), "oracle").await.unwrap();
        out.push((day(r), lines(&got, "computed_at"), lines(&want, "computed_at")));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn last_seen_equals_its_oracle(h in history()) {
        for (d, got, want) in rt().block_on(last_seen_vs_oracle(&h)) {
            prop_assert_eq!(got, want, "as of {}", d);
        }
    }

    #[test]
    fn incremental_last_seen_equals_a_full_rebuild(h in history()) {
        for (d, inc, full) in rt().block_on(incremental_vs_full(&h)) {
            prop_assert_eq!(inc, full, "as of {}", d);
        }
    }
}

#[test]
fn the_fold_counts_windows_and_states_as_documented() {
    // One account active on days 0, 40 and 95; folded on day 100 from a base on day 50.
    let h = History {
        accounts: 1,
        evidence: [0, 40, 95]
            .into_iter()
            .map(|d| Evidence { account: 0, day: d, active: true, secs: 3600, back: 0, source: 0 })
            .collect(),
        runs: vec![50, 100, 140],
        listed: vec![1, 1, 1, 0, 0, 0, 0],
    };
    let steps = rt().block_on(incremental_vs_full(&h));
    let row = |k: usize| -> serde_json::Value { serde_json::from_str(&steps[k].1[0]).unwrap() };
    // Day 50: days 40 (in 30) and 0, 40 (in 90).
    assert_eq!((row(0)["active_days_30"].as_i64(), row(0)["active_days_90"].as_i64()), (Some(1), Some(2)));
    assert_eq!(row(0)["state"], "active");
    // Day 100: 95 in 30; 40 and 95 in 90 (day 0 left).
    assert_eq!((row(1)["active_days_30"].as_i64(), row(1)["active_days_90"].as_i64()), (Some(1), Some(2)));
    // Day 140: 95 only in 90; last seen 45 days ago, dormant at 30 days.
    assert_eq!((row(2)["active_days_30"].as_i64(), row(2)["active_days_90"].as_i64()), (Some(0), Some(1)));
    assert_eq!(row(2)["state"], "dormant");
    assert_eq!(row(2)["first_seen_at"], "2026-01-01T01:00:00Z");
    assert_eq!(row(2)["last_seen_at"], "2026-04-06T01:00:00Z");
    for (_, inc, full) in &steps {
        assert_eq!(inc, full);
    }
}

#[test]
fn two_apps_accounts_with_the_same_id_are_folded_apart() {
    // Accounts 0 (slack U0) and 1 (okta U0): only the Slack one has evidence, on day 10.
    let h = History {
        accounts: 2,
        evidence: vec![Evidence { account: 0, day: 10, active: true, secs: 60, back: 0, source: 0 }],
        runs: vec![20],
        listed: vec![0b11, 0, 0, 0, 0, 0, 0],
    };
    let rows = |covered: &[&str]| -> Vec<(String, String, String)> {
        let covered: Vec<String> = covered.iter().map(|c| c.to_string()).collect();
        let steps = rt().block_on(incremental_vs_full_covering(&h, &covered));
        let mut out: Vec<(String, String, String)> = steps[0]
            .1
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                (s("app"), s("account_id"), s("state"))
            })
            .collect();
        out.sort();
        out
    };
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(rows(&["okta", "slack"]), vec![s("okta", "U0", "never_seen"), s("slack", "U0", "active")]);
    // An app no evidence source covers: its account without evidence is unknown, not never seen.
    assert_eq!(rows(&["slack"]), vec![s("okta", "U0", "unknown"), s("slack", "U0", "active")]);
}

// ---------------------------------------------------------------- correlation

/// (workspace, account, account type, email) of a generated account.
type AccountRow<'a> = (String, String, &'a str, Option<String>);

fn accounts_batch(rows: &[AccountRow<'_>]) -> RecordBatch {
    let n = rows.len();
    let s = |f: &dyn Fn(&AccountRow<'_>) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let nulls_s = || -> ArrayRef { Arc::new(StringArray::from(vec![None::<&str>; n])) };
    let nulls_b = || -> ArrayRef { Arc::new(BooleanArray::from(vec![None; n])) };
    let nulls_t = || -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(vec![None; n]).with_timezone("UTC")) };
    let list = || -> ArrayRef { Arc::new(ListArray::new_null(Arc::new(Field::new("item", DataType::Utf8, true)), n)) };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["slack"; n])),
        s(&|r| Some(r.0.clone())),
        s(&|r| Some(r.1.clone())),
        nulls_s(),
        s(&|r| Some(r.1.to_lowercase())),
        nulls_s(),
        s(&|r| r.3.clone()),
        s(&|r| Some(r.2.to_string())),
        Arc::new(StringArray::from(vec!["active"; n])),
        nulls_b(),
        list(),
        nulls_b(),
        nulls_b(),
        nulls_t(),
        nulls_t(),
        list(),
        Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC")),
        nulls_s(),
        nulls_s(),
        nulls_s(),
        nulls_s(),
        nulls_s(),
    ];
    RecordBatch::try_new(ACCOUNTS.schema(), cols).unwrap()
}

#[derive(Debug, Clone)]
struct Org {
    /// (workspace, account id, type, email)
    accounts: Vec<(String, String, &'static str, Option<String>)>,
    /// CSV lines of identities (without header)
    identities: Vec<String>,
    overrides: Vec<(String, String)>,
}

fn email(k: u8, variant: u8) -> String {
    let local = format!("p{k}");
    match variant % 4 {
        0 => format!("{local}@x.example"),
        1 => format!("{}@X.example", local.to_uppercase()),
        2 => format!("{local}+slack@x.example"),
        _ => format!("{local}@mail.x.example"),
    }
}

fn org() -> impl Strategy<Value = Org> {
    let account =
        (0u8..2, 0u8..8, 0u8..4, prop::sample::select(vec!["member", "member", "admin", "guest_multi", "bot"]));
    let identity = (0u8..8, 0u8..4, proptest::option::of((0u8..8, 0u8..4)));
    (
        prop::collection::vec(account, 1..14),
        prop::collection::vec(identity, 1..10),
        prop::collection::vec((0usize..14, 0usize..10), 0..3),
    )
        .prop_map(|(accounts, identities, overrides)| {
            let accounts: Vec<_> = accounts
                .into_iter()
                .enumerate()
                .map(|(i, (w, k, v, t))| (format!("T{w}"), format!("U{i:02}"), t, (t != "bot").then(|| email(k, v))))
                .collect();
            let identities: Vec<String> = identities
                .iter()
                .enumerate()
                .map(|(i, (k, v, alt))| {
                    let alt = alt.map(|(k, v)| email(k, v)).unwrap_or_default();
                    format!("HR{i},{},{alt},{i},P {i},Eng,,active,,employee", email(*k, *v))
                })
                .collect();
            let n_acc = accounts.len();
            let n_id = identities.len();
            let overrides =
                overrides.into_iter().map(|(a, i)| (format!("U{:02}", a % n_acc), format!("HR{}", i % n_id))).collect();
            Org { accounts, identities, overrides }
        })
}

const HEADER: &str = "identity_id,email,alternate_email,employee_id,display_name,department,manager_email,status,termination_date,employee_type";

fn mem(b: RecordBatch) -> Arc<dyn datafusion::catalog::TableProvider> {
    Arc::new(datafusion::datasource::MemTable::try_new(b.schema(), vec![vec![b]]).unwrap())
}

async fn correlate_org(o: &Org, reverse: bool) -> Vec<RecordBatch> {
    let cfg = lastseen_config::Config::from_toml_str(
        "[correlation.domain_aliases]\n\"mail.x.example\" = \"x.example\"\n",
        "test",
        Vec::<(String, String)>::new(),
    )
    .unwrap();
    let mut accounts = o.accounts.clone();
    let mut ids = o.identities.clone();
    if reverse {
        accounts.reverse();
        ids.reverse();
        let half = ids.len() / 2;
        ids.rotate_left(half);
    }
    let csv = format!("{HEADER}\n{}\n", ids.join("\n"));
    let load = lastseen_ingest::identities::parse_identities(
        csv.as_bytes(),
        &cfg.identities,
        "hr.csv",
        Some(lastseen_config::IdentityFormat::Csv),
        now(),
    )
    .unwrap();
    let mut seen = BTreeSet::new();
    let ov: String =
        o.overrides.iter().filter(|(a, _)| seen.insert(a.clone())).map(|(a, i)| format!("{a},{i},,manual\n")).collect();
    let ov = lastseen_ingest::identities::read_overrides_from(
        format!("account_id,identity_id,service_owner_id,reason\n{ov}").as_bytes(),
        "owners.csv",
    )
    .unwrap();
    let ctx = SessionContext::new();
    // The correlation SQL joins SCIM users (absent here: the rules under test are email rules).
    let scim = &lastseen_lake::catalog::SLACK_SCIM_USERS;
    crate::session::register_batches(&ctx, scim.name, scim.table_schema(), Vec::new()).unwrap();
    crate::correlation::correlate(
        &ctx,
        &cfg.correlation,
        std::sync::Arc::new(
            datafusion::datasource::MemTable::try_new(
                lastseen_lake::catalog::ACCOUNTS.schema(),
                vec![vec![accounts_batch(&accounts)]],
            )
            .unwrap(),
        ),
        mem(load.identities),
        mem(ov),
        day(0),
        now(),
    )
    .await
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn correlation_is_independent_of_input_order(o in org()) {
        let (a, b) = rt().block_on(async { (correlate_org(&o, false).await, correlate_org(&o, true).await) });
        prop_assert_eq!(lines(&a, "computed_at"), lines(&b, "computed_at"));
    }

    #[test]
    fn an_identity_never_owns_two_accounts_of_a_workspace_without_an_override(o in org()) {
        let rows = lines(&rt().block_on(correlate_org(&o, false)), "computed_at");
        prop_assert_eq!(rows.len(), o.accounts.len());
        let mut owned: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in &rows {
            let v: serde_json::Value = serde_json::from_str(r).unwrap();
            if v["match_status"] == "matched" && v["rule"] != "override" {
                *owned.entry((v["workspace_id"].to_string(), v["identity_id"].to_string())).or_default() += 1;
            }
            // Service accounts are never orphans, and ambiguity is never resolved by guessing.
            if v["account_type"] == "bot" && v["rule"] != "override" {
                prop_assert_eq!(&v["match_status"], "service");
            }
            if v["match_status"] == "ambiguous" {
                prop_assert!(v["identity_id"].is_null() && v["candidates"].is_string());
            }
        }
        for (k, n) in owned {
            prop_assert!(n <= 1, "{:?} owns {} accounts: {:?}", k, n, rows);
        }
    }
}

// ---------------------------------------------------------------- the identity export's guard

#[test]
fn a_day_recommitted_after_its_activity_is_stale_even_if_the_committing_clock_was_behind() {
    use lastseen_lake::{PartitionState, Snapshot, TableState};
    let part = |version: u64, committed_at: DateTime<Utc>| PartitionState {
        files: Vec::new(),
        rows: 5,
        run_id: "r".into(),
        committed_at,
        version,
    };
    let table = |p: PartitionState| TableState { schema_version: 1, partitions: BTreeMap::from([(day(1), p)]) };
    let mut snap = Snapshot::default();
    // The daemon (clock an hour ahead) derived activity_daily for day 1 in version 5; then a
    // backfill from a laptop re-wrote that day's access logs in version 6, stamped earlier.
    snap.tables.insert("activity_daily".into(), table(part(5, now() + chrono::Duration::hours(1))));
    snap.tables.insert("slack_access_logs".into(), table(part(6, now())));
    assert_eq!(crate::activity::dirty_days(&snap, day(1)), BTreeSet::from([day(1)]));
    // Derived after the evidence (a higher version) is fresh, whatever the clocks say.
    snap.tables.insert("activity_daily".into(), table(part(7, now() - chrono::Duration::hours(1))));
    assert!(crate::activity::dirty_days(&snap, day(1)).is_empty());
    // A log from before versions were stamped falls back to the timestamps.
    snap.tables.insert("activity_daily".into(), table(part(0, now() + chrono::Duration::hours(1))));
    snap.tables.insert("slack_access_logs".into(), table(part(0, now())));
    assert!(crate::activity::dirty_days(&snap, day(1)).is_empty());
}

/// A plan that outgrows the derivation's memory pool fails naming the setting that sizes it,
/// even when DataFusion wraps the error in context.
#[test]
fn running_out_of_the_memory_pool_names_the_setting() {
    use datafusion::error::DataFusionError;
    let exhausted = DataFusionError::ResourcesExhausted("Failed to allocate additional 8.0 MB for HashJoin".into());
    let wrapped = DataFusionError::Context("joining".into(), Box::new(exhausted));
    let e = crate::TransformError::df("deriving last_seen for 2026-03-01", wrapped);
    assert!(matches!(e, crate::TransformError::Memory { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("lake.derive_memory_mb") && text.contains("LASTSEEN_LAKE__DERIVE_MEMORY_MB"), "{text}");
    assert!(text.contains("deriving last_seen for 2026-03-01"), "{text}");
}

// ---------------------------------------------------------------- account_report's groups

/// `accounts` rows of day `d` whose `groups` are `groups[i]` (account `U<i>`), with `dt`.
fn accounts_with_groups(d: NaiveDate, groups: &[Option<Vec<Option<&str>>>]) -> RecordBatch {
    let rows: Vec<AccountRow<'_>> =
        (0..groups.len()).map(|i| ("T1".to_string(), format!("U{i}"), "member", None)).collect();
    let b = accounts_batch(&rows);
    let mut list = datafusion::arrow::array::ListBuilder::new(datafusion::arrow::array::StringBuilder::new());
    for g in groups {
        match g {
            Some(g) => {
                for s in g {
                    list.values().append_option(*s);
                }
                list.append(true);
            }
            None => list.append(false),
        }
    }
    let mut cols = b.columns().to_vec();
    cols[ACCOUNTS.schema().index_of("groups").unwrap()] = Arc::new(list.finish());
    let b = RecordBatch::try_new(ACCOUNTS.schema(), cols).unwrap();
    crate::session::add_dt(&b, &ACCOUNTS.table_schema(), d).unwrap()
}

/// `account_report` of `d` over in-memory `accounts` (every other source empty), in a session
/// whose memory pool is `pool` bytes: (account id, user_groups, idp_groups) sorted by account.
async fn report_groups(accounts: RecordBatch, d: NaiveDate, pool: usize) -> crate::Result<Vec<[Option<String>; 3]>> {
    use datafusion::arrow::array::Array;
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use lastseen_lake::catalog::{ACCOUNT_IDENTITY, ACCOUNT_REPORT, ACTIVITY_DAILY, IDENTITIES, LAST_SEEN};
    let runtime = RuntimeEnvBuilder::new().with_memory_pool(Arc::new(FairSpillPool::new(pool))).build_arc().unwrap();
    let ctx = SessionContext::new_with_config_rt(datafusion::prelude::SessionConfig::new(), runtime);
    for def in [&ACTIVITY_DAILY, &ACCOUNT_REPORT, &LAST_SEEN, &ACCOUNT_IDENTITY, &IDENTITIES] {
        register_batches(&ctx, def.name, def.table_schema(), Vec::new()).unwrap();
    }
    register_batches(&ctx, "accounts", ACCOUNTS.table_schema(), vec![accounts]).unwrap();
    let rollups = crate::rollups::derive_day(&ctx, d, None).await?;
    let mut out = Vec::new();
    for b in &rollups.account_report {
        let col = |name: &str| b.column_by_name(name).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let (id, user, idp) = (col("account_id"), col("user_groups"), col("idp_groups"));
        for r in 0..b.num_rows() {
            let v = |a: &StringArray| a.is_valid(r).then(|| a.value(r).to_string());
            out.push([v(&id), v(&user), v(&idp)]);
        }
    }
    out.sort();
    Ok(out)
}

/// Each account's groups are split per row into the app's groups and the IdP's (`scim:`), each
/// distinct, sorted and joined with '; ', as review's oracle builds them from the raw group tables.
#[test]
fn account_report_splits_each_accounts_groups_into_app_and_idp_groups() {
    let d = day(40);
    let groups = [
        Some(vec![Some("b"), Some("scim:Zeta"), Some("a"), Some("scim:Alpha"), Some("a")]),
        Some(vec![Some("scim:Only")]),
        Some(vec![Some("eng")]),
        None,
        Some(vec![]),
        Some(vec![Some("x"), None, Some("scim:")]),
        Some(vec![Some("scimless"), Some("scim:a; b"), Some("scim:Beta")]),
    ];
    let got = rt().block_on(report_groups(accounts_with_groups(d, &groups), d, 64 << 20)).unwrap();
    let row = |id: &str, user: Option<&str>, idp: Option<&str>| {
        [Some(id.to_string()), user.map(str::to_string), idp.map(str::to_string)]
    };
    assert_eq!(
        got,
        vec![
            row("U0", Some("a; b"), Some("Alpha; Zeta")),
            row("U1", None, Some("Only")),
            row("U2", Some("eng"), None),
            row("U3", None, None),
            row("U4", None, None),
            // An IdP group without a name adds nothing, as in the oracle (NULL, not an empty text).
            row("U5", Some("x"), None),
            row("U6", Some("scimless"), Some("Beta; a; b")),
        ]
    );
}

/// The split holds no account's groups in memory beyond its own row: 60,000 accounts with four
/// groups each derive in a 4 MiB pool (the aggregation it replaced, array_agg(DISTINCT) per
/// account, needed about 21 MB more than a 512 MiB pool had left at 500,000 accounts).
#[test]
fn account_report_groups_need_no_memory_per_account() {
    let d = day(40);
    let n = 60_000;
    let names: Vec<String> = (0..40).map(|k| format!("team-{k:02}")).collect();
    let groups: Vec<Option<Vec<Option<&str>>>> =
        (0..n).map(|i| Some((0..4).map(|j| Some(names[(i * 7 + j * 11) % 40].as_str())).collect())).collect();
    let got = rt().block_on(report_groups(accounts_with_groups(d, &groups), d, 4 << 20)).unwrap();
    assert_eq!(got.len(), n);
    let i = 12_345;
    let mut want: Vec<&str> = (0..4).map(|j| names[(i * 7 + j * 11) % 40].as_str()).collect();
    want.sort_unstable();
    assert!(got.contains(&[Some(format!("U{i}")), Some(want.join("; ")), None]));
}

// ---------------------------------------------------------------- activity_daily: = its oracle

/// activity_daily as it was written before it was made of two vectorised aggregations: the
/// oracle the shipped SQL (`sql/activity_daily.sql`) must equal row for row.
const ACTIVITY_DAILY_ORACLE: &str = "
SELECT
    app, account_id, min(workspace_id) AS workspace_id, bool_or(active) AS active,
    array_to_string(array_sort(array_agg(DISTINCT source)), ',') AS sources,
    min(first_at) AS first_at, max(last_at) AS last_at,
    first_value(source ORDER BY last_at DESC NULLS LAST, priority ASC)
        FILTER (WHERE last_at IS NOT NULL) AS last_source,
    sum(logins) AS logins, sum(messages) AS messages, $computed_at AS computed_at, day AS dt
FROM evidence
GROUP BY day, app, account_id
ORDER BY day";

/// One evidence row: app (0..2), account (0..3), day (0..3), source (0..3; its priority is fixed
/// per app and source, distinct within an app, as the evidence files declare), active,
/// whether it proves a time, a time (few values, so ties between sources are common), counts.
type EvidenceRow = (usize, usize, u32, usize, bool, bool, i64, Option<i64>, Option<i64>, bool);

fn evidence_rows() -> impl Strategy<Value = Vec<EvidenceRow>> {
    prop::collection::vec(
        (
            0usize..2,
            0usize..3,
            0u32..3,
            0usize..3,
            any::<bool>(),
            any::<bool>(),
            0i64..4,
            prop::option::of(0i64..5),
            prop::option::of(0i64..5),
            any::<bool>(),
        ),
        1..80,
    )
}

fn evidence_batch(rows: &[EvidenceRow]) -> RecordBatch {
    const NAMES: [&str; 3] = ["access_logs", "audit_logins", "analytics"];
    const PRIORITY: [[i32; 3]; 2] = [[1, 2, 4], [3, 1, 2]];
    let base = day(0).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros();
    let (mut apps, mut days, mut accounts, mut workspaces, mut sources, mut actives) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut first, mut last, mut logins, mut messages, mut prio) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &(app, account, d, source, active, timed, t, l, m, ws) in rows {
        apps.push(["slack", "okta"][app]);
        days.push(date32(day(d)));
        accounts.push(format!("U{account}"));
        workspaces.push(ws.then(|| format!("T{}", (account + source) % 2)));
        sources.push(NAMES[source]);
        actives.push(active);
        let at = base + i64::from(d) * 86_400_000_000 + t * 3_600_000_000;
        first.push(timed.then_some(at - 60_000_000 * i64::from(source as u8)));
        last.push(timed.then_some(at));
        logins.push(l);
        messages.push(m);
        prio.push(PRIORITY[app][source]);
    }
    let utc = |v: Vec<Option<i64>>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(apps)),
        Arc::new(Date32Array::from(days)),
        Arc::new(StringArray::from(accounts)),
        Arc::new(StringArray::from(workspaces)),
        Arc::new(StringArray::from(sources)),
        Arc::new(BooleanArray::from(actives)),
        utc(first),
        utc(last),
        Arc::new(datafusion::arrow::array::Int64Array::from(logins)),
        Arc::new(datafusion::arrow::array::Int64Array::from(messages)),
        Arc::new(datafusion::arrow::array::Int32Array::from(prio)),
    ];
    RecordBatch::try_new(Arc::clone(&crate::activity::EVIDENCE_SCHEMA), cols).unwrap()
}

async fn activity_daily_of(evidence: RecordBatch, sql: &str) -> Vec<String> {
    let ctx = SessionContext::new();
    // Two batches in two partitions: the aggregations' partial and final steps both run.
    let half = evidence.num_rows() / 2;
    let parts = vec![vec![evidence.slice(0, half)], vec![evidence.slice(half, evidence.num_rows() - half)]];
    let mem = datafusion::datasource::MemTable::try_new(evidence.schema(), parts).unwrap();
    ctx.register_table("evidence", Arc::new(mem)).unwrap();
    let params = datafusion::common::ParamValues::Map(
        [("computed_at".to_string(), crate::session::timestamp(now()).into())].into(),
    );
    let batches = ctx.sql(sql).await.unwrap().with_param_values(params).unwrap().collect().await.unwrap();
    lines(&batches, "computed_at")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn activity_daily_equals_its_oracle(rows in evidence_rows()) {
        let evidence = evidence_batch(&rows);
        let (got, want) = rt().block_on(async {
            (
                activity_daily_of(evidence.clone(), crate::activity::ACTIVITY_DAILY_SQL).await,
                activity_daily_of(evidence, ACTIVITY_DAILY_ORACLE).await,
            )
        });
        prop_assert_eq!(got, want);
    }
}
