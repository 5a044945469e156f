//! The daily rollups `account_report` and `usage_daily`: the reports that read them return
//! exactly the rows of their oracles (the same reports over the raw tables,
//! query/reports/oracle/) on the simulator's organisation, for several parameter sets; `usage`'s
//! guard sends a trend whose population changed to the oracle; re-running a day and a backfill
//! that re-derives a day rewrite the day's rollups, equal to computing them from the committed
//! tables.

use chrono::{Duration, NaiveDate};
use datafusion::arrow::record_batch::RecordBatch;
use lastseen_lake::Lake;
use lastseen_query::reports::{self, Param, ReportParams, rows_as_text};
use lastseen_query::{QueryEngine, QueryError};
use lastseen_slack_sim::Plan;

use crate::support::{Env, end_of, today};

fn open_lake(env: &Env) -> Lake {
    Lake::open(&url::Url::from_file_path(env.lake()).unwrap(), &Default::default()).unwrap()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn first_value(env: &Env, sql: &str) -> String {
    let rows = env.sql(sql);
    rows[0].as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string()
}

/// Every rollup report against its oracle for every combination of the parameter values given,
/// each report binding the parameters it takes. Returns how many comparisons ran per report
/// (a comparison the rollups cannot answer, `usage` over days without rollups, is not counted).
fn compare_all(
    env: &Env,
    as_of: &[NaiveDate],
    workspaces: &[Option<String>],
    departments: &[Option<String>],
) -> std::collections::BTreeMap<String, usize> {
    let lake = open_lake(env);
    let engine = block_on(QueryEngine::open(&lake)).unwrap();
    let mut compared = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    for r in reports::builtin().unwrap().into_iter().filter(|r| !r.rollups.is_empty()) {
        for &d in as_of {
            assert!(engine.dates("account_report").contains(&d), "the run wrote account_report for {d}");
            for days in [7u32, 30] {
                for ws in workspaces {
                    for dep in departments {
                        for (exclude_guests, include_bots) in
                            [(false, false), (true, false), (false, true), (true, true)]
                        {
                            let p = ReportParams {
                                as_of: Some(d),
                                days: r.takes(Param::Days).then_some(days),
                                app: None,
                                workspace: ws.clone().filter(|_| r.takes(Param::Workspace)),
                                department: dep.clone().filter(|_| r.takes(Param::Department)),
                                exclude_guests: exclude_guests && r.takes(Param::ExcludeGuests),
                                include_bots: include_bots && r.takes(Param::IncludeBots),
                            };
                            match block_on(r.oracle_difference(&engine, &p)) {
                                Ok(None) => *compared.entry(r.name.clone()).or_insert(0) += 1,
                                Ok(Some(diff)) => failures.push(format!("{} {p:?}: {diff}", r.name)),
                                Err(QueryError::NoData(_)) => {}
                                Err(e) => panic!("{} {p:?}: {e}", r.name),
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} differences, first: {:#?}", failures.len(), &failures[..failures.len().min(5)]);
    compared
}

#[test]
fn rollup_reports_return_exactly_their_oracles_rows() {
    let env = Env::start(300, Plan::Pro, 23);
    env.configure_identities(|c| c, "");
    for k in (0..3).rev() {
        env.run_day_ok(today() - Duration::days(k));
    }
    let ws = first_value(&env, "SELECT min(workspace_id) AS w FROM accounts");
    let dep = first_value(&env, "SELECT min(department) AS d FROM identities WHERE department IS NOT NULL");
    let compared = compare_all(
        &env,
        &[today(), today() - Duration::days(1)],
        &[None, Some(ws), Some("T-none".into())],
        // The department filter is case-insensitive: the upper-cased name selects the same rows.
        &[None, Some(dep.clone()), Some(dep.to_uppercase())],
    );
    for name in ["dormant", "seats", "orphans", "terminated", "review"] {
        assert!(compared.get(name).copied().unwrap_or(0) >= 2 * 3 * 4, "{name}: {compared:?}");
    }
    // The comparisons are not vacuous: the reports have rows.
    let dormant = env.sql(&format!(
        "SELECT count(*) AS n FROM account_report WHERE dt = DATE '{}' AND last_seen_at IS NOT NULL AND identity_id IS NOT NULL",
        today()
    ));
    assert!(dormant[0]["n"].as_i64().unwrap() > 10, "{dormant:?}");
}

#[test]
fn rollup_reports_return_exactly_their_oracles_rows_on_grid() {
    let env = Env::start(250, Plan::Enterprise, 29);
    env.configure_identities(|c| c, "");
    let token = env.sim().org_token().expect("a Grid simulator has an org token").to_owned();
    for k in (0..2).rev() {
        env.run_day_ok_as(today() - Duration::days(k), &token);
    }
    // A workspace some accounts are members of without it being their home.
    let ws = first_value(
        &env,
        "SELECT min(w) AS w FROM (SELECT workspace_id, unnest(workspace_ids) AS w FROM accounts) WHERE w <> workspace_id",
    );
    let compared = compare_all(&env, &[today()], &[None, Some(ws)], &[None]);
    assert!(compared.get("dormant").copied().unwrap_or(0) > 0, "{compared:?}");
}

type Rows = Vec<Vec<Option<String>>>;

/// The committed rollups of `d` (account_report, usage_daily) and the same day computed from the
/// committed tables (no earlier rollup day in these tests: nothing to fold from).
fn committed_and_recomputed(env: &Env, d: NaiveDate) -> ([Rows; 2], [Rows; 2]) {
    let lake = open_lake(env);
    let sorted = |b: Vec<RecordBatch>| {
        let mut rows = rows_as_text(&b).unwrap();
        rows.sort();
        rows
    };
    let engine = block_on(QueryEngine::open(&lake)).unwrap();
    let committed = |t: &str| {
        sorted(block_on(engine.sql(&format!("SELECT * EXCEPT (dt) FROM {t} WHERE dt = DATE '{d}'"))).unwrap())
    };
    let recomputed = block_on(lastseen_transform::rollups::from_lake(&lake, d, None)).unwrap();
    (
        [committed("account_report"), committed("usage_daily")],
        [sorted(recomputed.account_report), sorted(recomputed.usage_daily)],
    )
}

fn seen(env: &Env, d: NaiveDate) -> i64 {
    env.sql(&format!("SELECT count(last_seen_at) AS n FROM account_report WHERE dt = DATE '{d}'"))[0]["n"]
        .as_i64()
        .unwrap()
}

#[test]
fn rerunning_a_day_rewrites_its_rollup() {
    let env = Env::start(150, Plan::Pro, 31);
    env.configure_identities(|c| c, "");
    let d = today();
    // First without access logs: nobody is seen yet.
    env.sim().set_now(end_of(d));
    let out =
        env.cmd().env("LASTSEEN_SLACK__SOURCES", "users").args(["run", "--date", &d.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(seen(&env, d), 0);
    // The same day again with every source: last_seen changes, and so must its rollup.
    env.run_day_ok(d);
    assert!(seen(&env, d) > 20, "the re-run's evidence is in the rollup");
    let (committed, recomputed) = committed_and_recomputed(&env, d);
    assert!(!committed[0].is_empty() && !committed[1].is_empty());
    assert_eq!(committed, recomputed);
}

#[test]
fn a_backfill_that_rederives_a_day_rewrites_its_rollup() {
    let env = Env::start(150, Plan::Pro, 37);
    let d = today();
    env.sim().set_now(end_of(d));
    let out =
        env.cmd().env("LASTSEEN_SLACK__SOURCES", "users").args(["run", "--date", &d.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(seen(&env, d), 0);
    let out = env
        .cmd()
        .args([
            "backfill",
            "--from",
            &(d - Duration::days(10)).to_string(),
            "--to",
            &(d - Duration::days(3)).to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(seen(&env, d) > 20, "the backfilled evidence is in today's rollup");
    let (committed, recomputed) = committed_and_recomputed(&env, d);
    assert!(!committed[0].is_empty() && !committed[1].is_empty());
    assert_eq!(committed, recomputed);
}

/// Commit `rows` (cast column by column to the file schema) as the `def` snapshot of `d`.
fn commit_snapshot(lake: &Lake, def: &'static lastseen_lake::catalog::TableDef, d: NaiveDate, rows: Vec<RecordBatch>) {
    use datafusion::arrow::compute::cast;
    let schema = def.schema();
    block_on(async {
        let lease = lake.acquire_lock("test", std::time::Duration::from_secs(60)).await.unwrap();
        let mut tx = lake.begin(&lease).await.unwrap();
        tx.declare_snapshot(def, d);
        for b in rows {
            let cols = schema
                .fields()
                .iter()
                .map(|f| cast(b.column_by_name(f.name()).unwrap(), f.data_type()).unwrap())
                .collect();
            tx.write(def, d, RecordBatch::try_new(schema.clone(), cols).unwrap()).unwrap();
        }
        tx.commit().await.unwrap();
        lease.release().await.unwrap();
    });
}

#[test]
fn a_day_without_a_rollup_is_answered_by_the_oracle_with_the_same_rows() {
    use lastseen_lake::catalog::{
        ACCOUNT_IDENTITY, ACCOUNT_REPORT, ACCOUNTS, IDENTITIES, LAST_SEEN, SLACK_SCIM_GROUPS, SLACK_USERGROUP_MEMBERS,
        SLACK_USERGROUPS, SLACK_WORKSPACES,
    };
    let env = Env::start(120, Plan::Pro, 41);
    env.configure_identities(|c| c, "");
    let d = today();
    env.run_day_ok(d);
    // An older day as a lake written before rollups existed has it: its snapshots, no rollup.
    let old = d - Duration::days(20);
    let lake = open_lake(&env);
    // The groups too: that day's `accounts.groups` were derived from that day's group tables,
    // which the oracle (review's user_groups and idp_groups) reads.
    for def in [
        &ACCOUNTS,
        &LAST_SEEN,
        &SLACK_WORKSPACES,
        &IDENTITIES,
        &ACCOUNT_IDENTITY,
        &SLACK_USERGROUPS,
        &SLACK_USERGROUP_MEMBERS,
        &SLACK_SCIM_GROUPS,
    ] {
        let engine = block_on(QueryEngine::open(&lake)).unwrap();
        let rows = block_on(engine.sql(&format!("SELECT * FROM {} WHERE dt = DATE '{d}'", def.name))).unwrap();
        commit_snapshot(&lake, def, old, rows);
    }
    let engine = block_on(QueryEngine::open(&lake)).unwrap();
    assert!(engine.dates("last_seen").contains(&old) && !engine.dates("account_report").contains(&old));
    let run = |name: &str, extra: &[&str]| {
        let out = env
            .cmd()
            .args(["report", name, "--as-of", &old.to_string(), "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let names = ["dormant", "seats", "orphans", "terminated", "review"];
    let before: Vec<Vec<u8>> =
        names.iter().map(|n| run(n, if *n == "terminated" { &[] } else { &["--days", "7"] })).collect();
    assert!(before[0].len() > 100, "dormant has rows");
    // Now the rollup of that day, computed from the same tables: the same rows, read from it.
    let rows = block_on(lastseen_transform::rollups::from_lake(&lake, old, None)).unwrap().account_report;
    commit_snapshot(&lake, &ACCOUNT_REPORT, old, rows);
    let after: Vec<Vec<u8>> =
        names.iter().map(|n| run(n, if *n == "terminated" { &[] } else { &["--days", "7"] })).collect();
    for ((n, b), a) in names.iter().zip(&before).zip(&after) {
        assert_eq!(String::from_utf8_lossy(b), String::from_utf8_lossy(a), "{n}");
    }
}

/// Sorted-free rows of a report as `lastseen report` runs it (rollups or oracle, whichever
/// answers) and of its oracle.
fn report_and_oracle_rows(lake: &Lake, name: &str, p: &ReportParams) -> (Rows, Rows) {
    let engine = block_on(QueryEngine::open(lake)).unwrap();
    let r = reports::find(name).unwrap();
    let ran = block_on(r.run(&engine, p)).unwrap();
    let oracle = block_on(r.oracle().unwrap().unwrap().run(&engine, p)).unwrap();
    (rows_as_text(&ran.data.batches).unwrap(), rows_as_text(&oracle.data.batches).unwrap())
}

#[test]
fn usage_reads_its_rollup_when_the_population_held_and_the_oracle_when_it_changed() {
    let env = Env::start(200, Plan::Pro, 43);
    let csv = env.configure_identities(|c| c, "");
    for k in (1..9).rev() {
        env.run_day_ok(today() - Duration::days(k));
    }
    let y = today() - Duration::days(1);
    // Eight days of rollups: a 7-day trend as of yesterday is read from usage_daily, exactly.
    let dep = first_value(&env, "SELECT min(department) AS d FROM identities WHERE department IS NOT NULL");
    let compared = compare_all(&env, &[y], &[None, Some("T-none".into())], &[None, Some(dep.to_uppercase())]);
    assert_eq!(compared.get("usage").copied(), Some(2 * 2 * 4), "--days 7 only: {compared:?}");
    // A 30-day trend reaches before the first run: the oracle answers, with its rows.
    let lake = open_lake(&env);
    let p30 = ReportParams { as_of: Some(y), days: Some(30), ..Default::default() };
    let (ran, oracle) = report_and_oracle_rows(&lake, "usage", &p30);
    assert!(!ran.is_empty());
    assert_eq!(ran, oracle);

    // Today some owners move department: the population's groups changed within the trend.
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replacen(",sales,", ",legal,", 6)).unwrap();
    env.run_day_ok(today());
    let p7 = ReportParams { as_of: Some(today()), days: Some(7), ..Default::default() };
    let usage = reports::find("usage").unwrap();
    let engine = block_on(QueryEngine::open(&lake)).unwrap();
    assert!(
        matches!(block_on(usage.oracle_difference(&engine, &p7)), Err(QueryError::NoData(_))),
        "the guard refuses the rollup"
    );
    // Without the guard the rollup would be wrong (the moved accounts count in their old
    // department on the earlier days); with it, the report gives the oracle's rows.
    let mut unguarded = usage.clone();
    unguarded.guard = None;
    assert!(block_on(unguarded.oracle_difference(&engine, &p7)).unwrap().is_some());
    let (ran, oracle) = report_and_oracle_rows(&lake, "usage", &p7);
    assert_eq!(ran, oracle);
}

#[test]
fn a_usage_trend_over_a_day_rolled_up_before_usage_daily_had_app_is_answered_by_the_oracle() {
    let env = Env::start(150, Plan::Pro, 47);
    env.configure_identities(|c| c, "");
    for k in (1..9).rev() {
        env.run_day_ok(today() - Duration::days(k));
    }
    let y = today() - Duration::days(1);
    let lake = open_lake(&env);
    let usage = reports::find("usage").unwrap();
    let p7 = ReportParams { as_of: Some(y), days: Some(7), app: Some("slack".into()), ..Default::default() };
    let engine = block_on(QueryEngine::open(&lake)).unwrap();
    assert_eq!(block_on(usage.oracle_difference(&engine, &p7)).unwrap(), None, "the rollup answers first");
    // One day of the trend as a lake written before usage_daily had `app` holds it: app null.
    let old = y - Duration::days(3);
    let rows = block_on(engine.sql(&format!(
        "SELECT CAST(NULL AS VARCHAR) AS app, * EXCLUDE (app) FROM usage_daily WHERE dt = DATE '{old}'"
    )))
    .unwrap();
    assert!(rows.iter().map(|b| b.num_rows()).sum::<usize>() > 0);
    commit_snapshot(&lake, &lastseen_lake::catalog::USAGE_DAILY, old, rows);
    let engine = block_on(QueryEngine::open(&lake)).unwrap();
    assert!(
        matches!(block_on(usage.oracle_difference(&engine, &p7)), Err(QueryError::NoData(_))),
        "the guard refuses a trend with a day whose rollup rows name no app"
    );
    // Without the guard, --app slack would drop that day's accounts; with it, the oracle's rows.
    let mut unguarded = usage.clone();
    unguarded.guard = None;
    assert!(block_on(unguarded.oracle_difference(&engine, &p7)).unwrap().is_some());
    let (ran, oracle) = report_and_oracle_rows(&lake, "usage", &p7);
    assert!(!ran.is_empty());
    assert_eq!(ran, oracle);
}

/// `account_report` is stored in the `dormant` report's order, and scans of committed files say
/// so: the report merges what it reads instead of sorting it (the sort was a sixth of its time
/// at 500,000 accounts), and still returns its oracle's rows in the oracle's order.
#[test]
fn dormant_reads_its_rollup_in_stored_order_without_a_sort() {
    use datafusion::physical_plan::displayable;
    let env = Env::start(150, Plan::Pro, 47);
    env.configure_identities(|c| c, "");
    env.run_day_ok(today());
    let lake = open_lake(&env);
    let engine = block_on(QueryEngine::open(&lake)).unwrap();
    let dormant = reports::find("dormant").unwrap();
    let p = ReportParams { as_of: Some(today()), days: Some(1), ..ReportParams::default() };
    let (df, _) = block_on(dormant.plan(&engine, &p)).unwrap();
    let plan = block_on(df.create_physical_plan()).unwrap();
    let shown = displayable(plan.as_ref()).indent(true).to_string();
    assert!(shown.contains("account_report"), "{shown}");
    assert!(!shown.contains("SortExec"), "the rollup is read in its stored order, unsorted:\n{shown}");
    assert_eq!(block_on(dormant.oracle_difference(&engine, &p)).unwrap(), None);
    let rows = block_on(dormant.run(&engine, &p)).unwrap().data.batches.iter().map(|b| b.num_rows()).sum::<usize>();
    assert!(rows > 20, "--days 1 lists every account not seen today: {rows}");
}

/// A day's rollup derived before `account_report` had `risk` and `days_since_last_seen` (and
/// so stored in another order) does not answer `dormant`: its guard sends the report to the
/// oracle, with the oracle's rows.
#[test]
fn a_rollup_day_without_the_dormant_order_is_answered_by_the_oracle() {
    use lastseen_lake::catalog::ACCOUNT_REPORT;
    let env = Env::start(120, Plan::Pro, 53);
    env.configure_identities(|c| c, "");
    let d = today();
    env.run_day_ok(d);
    let lake = open_lake(&env);
    let p = ReportParams { as_of: Some(d), days: Some(1), ..ReportParams::default() };
    let dormant = reports::find("dormant").unwrap();
    let engine = block_on(QueryEngine::open(&lake)).unwrap();
    let (as_derived, oracle) = report_and_oracle_rows(&lake, "dormant", &p);
    assert!(as_derived.len() > 20 && as_derived == oracle);
    assert_eq!(block_on(dormant.oracle_difference(&engine, &p)).unwrap(), None, "today's rollup answers");
    // The same rows as an older version of lastseen wrote them: without the two columns.
    let cols: Vec<String> = ACCOUNT_REPORT
        .schema()
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "risk" => "CAST(NULL AS BIGINT) AS risk".to_string(),
            "days_since_last_seen" => "CAST(NULL AS INT) AS days_since_last_seen".to_string(),
            n => format!("\"{n}\""),
        })
        .collect();
    let rows =
        block_on(engine.sql(&format!("SELECT {} FROM account_report WHERE dt = DATE '{d}'", cols.join(", ")))).unwrap();
    commit_snapshot(&lake, &ACCOUNT_REPORT, d, rows);
    let engine = block_on(QueryEngine::open(&lake)).unwrap();
    assert!(matches!(block_on(dormant.oracle_difference(&engine, &p)), Err(QueryError::NoData(_))), "the guard fails");
    let (ran, oracle_again) = report_and_oracle_rows(&lake, "dormant", &p);
    assert_eq!(ran, oracle);
    assert_eq!(oracle_again, oracle);
}
