//! Benchmarks over a generated lake of N accounts with a year of history: the `last_seen`
//! update (one daily update folded incrementally from yesterday's snapshot against a full
//! rebuild from the whole history) and the canned reports (`dormant`, `usage`, … run as
//! `lastseen report` runs them). Each mode is its own process so `/usr/bin/time -v` reports its
//! peak RSS. See bench/RESULTS.md for how to run it and the recorded numbers, and
//! bench/reports/duckdb_side_by_side.py for the same report SQL run by DuckDB.
//!
//! ```text
//! lastseen-bench-last-seen generate DIR [ACCOUNTS] [DAYS] [SNAPSHOT_DAYS]
//!     write the lake: DAYS of activity_daily; accounts and slack_workspaces snapshots for the
//!     last SNAPSHOT_DAYS days (90), with identities and account_identity; last_seen of the
//!     last two days; the daily rollups account_report and usage_daily of every snapshot day,
//!     by the transform crate's own derivation (the days before yesterday have no last_seen:
//!     their account_report rows have none, their usage_daily counts are complete); and as of
//!     today, what the review reads: user groups and SCIM groups (in `accounts.groups` too),
//!     two imported reviews' decisions and a deprovisioning journal
//! lastseen-bench-last-seen incremental DIR                  fold today from yesterday
//! lastseen-bench-last-seen full DIR                         rebuild today from every day
//! lastseen-bench-last-seen report NAME DIR [RUNS] [DAYS] [oracle]
//!     run a report RUNS times (5), --days DAYS (90); `oracle`: its oracle over the raw tables
//! lastseen-bench-last-seen oracle DIR [DAYS]              every report that reads a rollup against
//!     its oracle (the same report over the raw tables) as of today, default and filtered
//!     parameters; exits non-zero on any difference
//! lastseen-bench-last-seen history DIR [DAYS]               add what DAYS (365) daily runs leave:
//!     a slack_users and a last_seen snapshot per day (the re-derivation's chain)
//! lastseen-bench-last-seen rederive DIR                     late evidence for the first history
//!     day, then `derive_all` for today: re-derives that day and re-folds every day after it
//! lastseen-bench-last-seen rollups DIR                      derive today's rollups again (from
//!     yesterday's): how an existing bench lake gets the current rollup columns and file layout
//!     without being generated again
//! lastseen-bench-last-seen entitlements DIR [ACCOUNTS]      add today's groups, decisions and
//!     journal (as `generate` now writes them) to a lake generated before, and derive today's
//!     rollups again
//! ```

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{Days, NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, new_null_array,
};
use datafusion::prelude::SessionContext;
use lastseen_lake::catalog::{
    ACCOUNT_IDENTITY, ACCOUNT_REPORT, ACCOUNTS, ACTIVITY_DAILY, DEPROVISION_ACTIONS, IDENTITIES, LAST_SEEN,
    REVIEW_DECISIONS, SLACK_ACCESS_LOGS, SLACK_SCIM_GROUPS, SLACK_USERGROUP_MEMBERS, SLACK_USERGROUPS, SLACK_USERS,
    SLACK_WORKSPACES, TableDef, USAGE_DAILY,
};
use lastseen_lake::{Lake, LakeTable};
use lastseen_query::QueryEngine;
use lastseen_query::reports::{self, ReportParams};
use lastseen_transform::last_seen::{Sources, Step, fold};

const TODAY: (i32, u32, u32) = (2026, 6, 30);

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).expect("valid date")
}

/// splitmix64: a cheap deterministic hash, so the data is the same on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The chance (in %) that account `a` is active on day `n` of a history of `days` days: 40%
/// daily users (70% of days), 20% occasional (10%), 10% lapsed (daily users who stopped on a
/// day of the year and became dormant), 30% never active.
fn rate(a: u64, n: u64, days: u64) -> u64 {
    match mix(a) % 10 {
        0..=3 => 70,
        4..=5 => 10,
        9 if n < mix(a ^ 0x1A95) % days.max(1) => 70,
        _ => 0,
    }
}

/// Never active on any day (bots, apps and unaccepted invitations are among these).
fn never_active(a: u64) -> bool {
    matches!(mix(a) % 10, 6..=8)
}

fn activity_day(accounts: u64, d: NaiveDate, n: u64, days: u64) -> anyhow::Result<Option<RecordBatch>> {
    let start = d.and_hms_opt(0, 0, 0).expect("valid").and_utc().timestamp_micros();
    let (mut ids, mut ws, mut first, mut last) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in 0..accounts {
        let h = mix(a.wrapping_mul(1_000_003) ^ n);
        if h % 100 >= rate(a, n, days) {
            continue;
        }
        ids.push(format!("U{a:010}"));
        ws.push("T0000001");
        let t = start + ((h >> 8) % 86_400) as i64 * 1_000_000;
        first.push(t - ((h >> 32) % (30 * 86_400)) as i64 * 1_000_000);
        last.push(t);
    }
    if ids.is_empty() {
        return Ok(None);
    }
    let k = ids.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["slack"; k])),
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from(ws)),
        Arc::new(BooleanArray::from(vec![true; k])),
        Arc::new(StringArray::from(vec!["access_logs"; k])),
        Arc::new(TimestampMicrosecondArray::from(first).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from(last).with_timezone("UTC")),
        Arc::new(StringArray::from(vec!["access_logs"; k])),
        Arc::new(Int64Array::from(vec![None; k])),
        Arc::new(Int64Array::from(vec![None; k])),
        Arc::new(TimestampMicrosecondArray::from(vec![0; k]).with_timezone("UTC")),
    ];
    Ok(Some(RecordBatch::try_new(ACTIVITY_DAILY.schema(), cols)?))
}

/// The home workspace of account `a` (four workspaces).
fn workspace(a: u64) -> String {
    format!("T000000{}", 1 + mix(a ^ 0x5157) % 4)
}

/// The account type of account `a`: one primary owner, a few owners and admins, 12% guests, and
/// bots and apps among the never-active accounts (their use is not observable).
fn account_type(a: u64) -> &'static str {
    if a == 0 {
        return "primary_owner";
    }
    let h = mix(a ^ 0x7E7E) % 1000;
    match h {
        0..=1 => "owner",
        2..=6 => "admin",
        7..=86 => "guest_multi",
        87..=126 => "guest_single",
        127..=156 if never_active(a) => "bot",
        157..=161 if never_active(a) => "app",
        _ => "member",
    }
}

/// active, or 5% deactivated, or 1% invited and never joined (the never-active accounts).
fn status(a: u64) -> &'static str {
    match mix(a ^ 0x5747) % 100 {
        0..=4 => "deactivated",
        5 if never_active(a) => "invited",
        _ => "active",
    }
}

fn service(a: u64) -> bool {
    matches!(account_type(a), "bot" | "app" | "slackbot")
}

/// How the account correlates: service accounts, 8% orphans, 0.5% ambiguous, the rest matched
/// to identity `I<a>`.
fn match_status(a: u64) -> &'static str {
    if service(a) {
        return "service";
    }
    match mix(a ^ 0x1D1D) % 1000 {
        0..=79 => "orphan",
        80..=84 => "ambiguous",
        _ => "matched",
    }
}

const DEPARTMENTS: [&str; 12] = [
    "Engineering",
    "Sales",
    "Marketing",
    "Support",
    "Finance",
    "Legal",
    "People",
    "Operations",
    "Product",
    "Design",
    "Security",
    "Research",
];

fn email(a: u64) -> String {
    format!("user{a}@example.com")
}

fn micros(d: NaiveDate, hour: u32) -> i64 {
    d.and_hms_opt(hour, 0, 0).expect("valid").and_utc().timestamp_micros()
}

/// A batch of `def` with `n` rows: the named columns from `fill`, every other column null.
fn batch_of(
    def: &'static TableDef,
    n: usize,
    mut fill: impl FnMut(&str) -> Option<ArrayRef>,
) -> anyhow::Result<RecordBatch> {
    let schema = def.schema();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for f in schema.fields() {
        cols.push(fill(f.name()).unwrap_or_else(|| new_null_array(f.data_type(), n)));
    }
    Ok(RecordBatch::try_new(schema, cols)?)
}

fn strings(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn timestamps(v: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
}

fn string_lists(v: impl Iterator<Item = Option<String>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for s in v {
        match s {
            Some(s) => {
                b.values().append_value(s);
                b.append(true);
            }
            None => b.append(true),
        }
    }
    Arc::new(b.finish())
}

/// Slack user groups per workspace; every 25th is disabled (`usergroups.list` with
/// `include_disabled`, as the collector asks for them).
const USERGROUPS: u64 = 250;
/// SCIM groups the IdP pushes; the last one has no members (one row with a null member).
const SCIM_GROUPS: u64 = 41;

fn usergroup_disabled(k: u64) -> bool {
    k.is_multiple_of(25)
}

/// The user groups account `a` is in, by index in its home workspace: up to 3.
fn account_usergroups(a: u64) -> Vec<u64> {
    let mut ks: Vec<u64> = (0..mix(a ^ 0x6A6A) % 4).map(|i| mix(a ^ (0x100 + i)) % USERGROUPS).collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// The SCIM group of account `a`: people with an e-mail (not bots or apps) are in one.
fn account_scim_group(a: u64) -> Option<u64> {
    (!service(a)).then(|| mix(a ^ 0x5C1) % (SCIM_GROUPS - 1))
}

fn usergroup_handle(w: &str, k: u64) -> String {
    format!("team-{}-{k:03}", w.trim_start_matches("T000000"))
}

/// `accounts.groups` of account `a` as transform/sql/accounts/slack.sql builds it: the handles of
/// its enabled user groups and `scim:<name>` of its SCIM groups, distinct and sorted; NULL when none.
fn account_groups(a: u64) -> Option<Vec<String>> {
    let w = workspace(a);
    let mut g: Vec<String> = account_usergroups(a)
        .into_iter()
        .filter(|&k| !usergroup_disabled(k))
        .map(|k| usergroup_handle(&w, k))
        .chain(account_scim_group(a).map(|k| format!("scim:IdP group {k:02}")))
        .collect();
    g.sort();
    g.dedup();
    (!g.is_empty()).then_some(g)
}

fn group_lists(v: impl Iterator<Item = Option<Vec<String>>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for g in v {
        match g {
            Some(g) => {
                for s in g {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

/// The entitlement tables of snapshot day `d` that the review reads raw: `slack_usergroups`,
/// `slack_usergroup_members` and `slack_scim_groups` (the memberships of [`account_groups`]).
fn entitlements_batches(accounts: u64, d: NaiveDate) -> anyhow::Result<[(&'static TableDef, RecordBatch); 3]> {
    let teams: Vec<String> = (1..=4).map(|w| format!("T000000{w}")).collect();
    let groups: Vec<(&String, u64)> = teams.iter().flat_map(|t| (0..USERGROUPS).map(move |k| (t, k))).collect();
    let members: Vec<(u64, u64)> =
        (0..accounts).flat_map(|a| account_usergroups(a).into_iter().map(move |k| (a, k))).collect();
    let count = |t: &str, k: u64| members.iter().filter(|&&(a, g)| g == k && workspace(a) == t).count() as i64;
    let n = groups.len();
    let usergroups = batch_of(&SLACK_USERGROUPS, n, |name| {
        Some(match name {
            "team_id" => strings(groups.iter().map(|(t, _)| t.to_string()).collect()),
            "usergroup_id" => {
                strings(groups.iter().map(|(t, k)| format!("S{}{k:05}", t.trim_start_matches('T'))).collect())
            }
            "handle" => strings(groups.iter().map(|(t, k)| usergroup_handle(t, *k)).collect()),
            "name" => strings(groups.iter().map(|(t, k)| format!("Team {k} of {t}")).collect()),
            "disabled" => Arc::new(BooleanArray::from(
                groups.iter().map(|(_, k)| Some(usergroup_disabled(*k))).collect::<Vec<_>>(),
            )),
            "user_count" => Arc::new(Int64Array::from(groups.iter().map(|(t, k)| count(t, *k)).collect::<Vec<_>>())),
            "collected_at" => timestamps(vec![micros(d, 1); n]),
            _ => return None,
        })
    })?;
    let m = members.len();
    let usergroup_members = batch_of(&SLACK_USERGROUP_MEMBERS, m, |name| {
        Some(match name {
            "team_id" => strings(members.iter().map(|&(a, _)| workspace(a)).collect()),
            "usergroup_id" => strings(
                members.iter().map(|&(a, k)| format!("S{}{k:05}", workspace(a).trim_start_matches('T'))).collect(),
            ),
            "user_id" => strings(members.iter().map(|(a, _)| format!("U{a:010}")).collect()),
            "collected_at" => timestamps(vec![micros(d, 1); m]),
            _ => return None,
        })
    })?;
    // One row per member, and the last group (no members) as one row with a null member.
    let scim: Vec<(u64, Option<u64>)> = (0..accounts)
        .filter_map(|a| account_scim_group(a).map(|k| (k, Some(a))))
        .chain([(SCIM_GROUPS - 1, None)])
        .collect();
    let s = scim.len();
    let scim_groups = batch_of(&SLACK_SCIM_GROUPS, s, |name| {
        Some(match name {
            "group_id" => strings(scim.iter().map(|(k, _)| format!("G{k:04}")).collect()),
            "display_name" => strings(scim.iter().map(|(k, _)| format!("IdP group {k:02}")).collect()),
            "member_user_id" => Arc::new(StringArray::from(
                scim.iter().map(|(_, a)| a.map(|a| format!("U{a:010}"))).collect::<Vec<_>>(),
            )),
            "collected_at" => timestamps(vec![micros(d, 1); s]),
            _ => return None,
        })
    })?;
    Ok([
        (&SLACK_USERGROUPS, usergroups),
        (&SLACK_USERGROUP_MEMBERS, usergroup_members),
        (&SLACK_SCIM_GROUPS, scim_groups),
    ])
}

/// The decisions of two earlier reviews imported into `review_decisions` (`lastseen review
/// import`): one 20 days before today for 4% of the accounts, and one 5 days before today that
/// decides a fifth of those again (the review shows the newer one).
fn decisions_batch(accounts: u64) -> anyhow::Result<RecordBatch> {
    let decided: Vec<u64> = (0..accounts).filter(|&a| mix(a ^ 0xDEC).is_multiple_of(25)).collect();
    let rows: Vec<(u64, u64)> = decided
        .iter()
        .map(|&a| (a, 20))
        .chain(decided.iter().filter(|&&a| mix(a ^ 0xDED).is_multiple_of(5)).map(|&a| (a, 5)))
        .collect();
    let n = rows.len();
    let day = |ago: u64| today() - Days::new(ago);
    let decision = |a: u64, ago: u64| ["revoke", "keep", "investigate"][(mix(a ^ ago) % 3) as usize].to_string();
    batch_of(&REVIEW_DECISIONS, n, |name| {
        Some(match name {
            "review_id" => strings(rows.iter().map(|(_, ago)| format!("review-{}", day(*ago + 1))).collect()),
            "report" => strings(vec!["review".into(); n]),
            "review_as_of" => Arc::new(Date32Array::from(
                rows.iter().map(|(_, ago)| lastseen_lake::catalog::date32(day(*ago + 1))).collect::<Vec<_>>(),
            )),
            "review_lake_version" => Arc::new(Int64Array::from(vec![1; n])),
            "source_file" => strings(rows.iter().map(|(_, ago)| format!("review-{}.csv", day(*ago + 1))).collect()),
            "file_sha256" => strings(rows.iter().map(|(_, ago)| format!("{:064x}", mix(*ago))).collect()),
            "source_line" => Arc::new(Int64Array::from(rows.iter().map(|(a, _)| *a as i64 + 2).collect::<Vec<_>>())),
            "workspace_id" => strings(rows.iter().map(|(a, _)| workspace(*a)).collect()),
            "account_id" => strings(rows.iter().map(|(a, _)| format!("U{a:010}")).collect()),
            "decision" => strings(rows.iter().map(|&(a, ago)| decision(a, ago)).collect()),
            "decided_by" => {
                strings(rows.iter().map(|(a, _)| format!("reviewer{}@example.com", mix(*a) % 40)).collect())
            }
            "imported_at" => timestamps(rows.iter().map(|(_, ago)| micros(day(*ago), 9)).collect()),
            _ => return None,
        })
    })
}

/// The deprovisioning journal of one earlier plan: an intent and an outcome per account for
/// 0.5% of the accounts, 10 days before today (`deprovision apply`).
fn journal_batch(accounts: u64) -> anyhow::Result<RecordBatch> {
    let acted: Vec<u64> = (0..accounts).filter(|&a| mix(a ^ 0xAC7).is_multiple_of(200)).collect();
    let rows: Vec<(u64, &str)> = acted.iter().flat_map(|&a| [(a, "intent"), (a, "outcome")]).collect();
    let n = rows.len();
    let at = micros(today() - Days::new(10), 14);
    batch_of(&DEPROVISION_ACTIONS, n, |name| {
        Some(match name {
            "entry_id" => strings(rows.iter().map(|(a, phase)| format!("E{a:010}-{phase}")).collect()),
            "plan_id" => strings(vec!["plan-bench".into(); n]),
            "account_id" => strings(rows.iter().map(|(a, _)| format!("U{a:010}")).collect()),
            "workspace_id" => strings(rows.iter().map(|(a, _)| workspace(*a)).collect()),
            "action" => strings(vec!["deactivate".into(); n]),
            "phase" => strings(rows.iter().map(|(_, p)| p.to_string()).collect()),
            "outcome" => Arc::new(StringArray::from(
                rows.iter().map(|(_, p)| (*p == "outcome").then(|| "done".to_string())).collect::<Vec<_>>(),
            )),
            "at" => timestamps(vec![at; n]),
            _ => return None,
        })
    })
}

/// Stage today's entitlement tables, the imported decisions and the deprovisioning journal.
fn write_entitlements(tx: &mut lastseen_lake::Transaction, accounts: u64) -> anyhow::Result<()> {
    for (def, batch) in entitlements_batches(accounts, today())? {
        tx.declare_snapshot(def, today());
        tx.write(def, today(), batch)?;
    }
    tx.write(&REVIEW_DECISIONS, today(), decisions_batch(accounts)?)?;
    tx.write(&DEPROVISION_ACTIONS, today(), journal_batch(accounts)?)?;
    Ok(())
}

/// The `accounts` snapshot of day `d`: every column the reports read is filled.
fn accounts_batch(accounts: u64, d: NaiveDate) -> anyhow::Result<RecordBatch> {
    let n = accounts as usize;
    let ids = 0..accounts;
    batch_of(&ACCOUNTS, n, |name| {
        Some(match name {
            "app" => strings(vec!["slack".into(); n]),
            "workspace_id" => strings(ids.clone().map(workspace).collect()),
            // The home workspace's name from the same day's `slack_workspaces` (workspaces_batch),
            // as transform/sql/accounts/slack.sql joins it.
            "workspace_name" => strings(
                ids.clone().map(|a| format!("Workspace {}", workspace(a).trim_start_matches("T000000"))).collect(),
            ),
            "account_id" => strings(ids.clone().map(|a| format!("U{a:010}")).collect()),
            "username" => strings(ids.clone().map(|a| format!("user{a}")).collect()),
            "display_name" => strings(ids.clone().map(|a| format!("User {a}")).collect()),
            "email" => {
                Arc::new(StringArray::from(ids.clone().map(|a| (!service(a)).then(|| email(a))).collect::<Vec<_>>()))
            }
            "account_type" => strings(ids.clone().map(|a| account_type(a).to_string()).collect()),
            "status" => strings(ids.clone().map(|a| status(a).to_string()).collect()),
            "billable" => Arc::new(BooleanArray::from(
                ids.clone()
                    .map(|a| Some(status(a) == "active" && !service(a) && account_type(a) != "guest_single"))
                    .collect::<Vec<_>>(),
            )),
            // Today's snapshot carries the groups of `entitlements` (the tables the review reads
            // raw); the older snapshots have none, as before groups were collected.
            "groups" if d == today() => group_lists(ids.clone().map(account_groups)),
            "groups" => string_lists(ids.clone().map(|_| None)),
            "has_2fa" => Arc::new(BooleanArray::from(
                ids.clone().map(|a| Some(mix(a ^ 2).is_multiple_of(2))).collect::<Vec<_>>(),
            )),
            "created_at" => {
                timestamps(ids.clone().map(|a| micros(d, 0) - (mix(a ^ 3) % 1000) as i64 * 86_400_000_000).collect())
            }
            "workspace_ids" => string_lists(ids.clone().map(|a| Some(workspace(a)))),
            "collected_at" => timestamps(vec![micros(d, 1); n]),
            _ => return None,
        })
    })
}

fn workspaces_batch(d: NaiveDate) -> anyhow::Result<RecordBatch> {
    batch_of(&SLACK_WORKSPACES, 4, |name| {
        Some(match name {
            "team_id" => strings((1..=4).map(|w| format!("T000000{w}")).collect()),
            "name" => strings((1..=4).map(|w| format!("Workspace {w}")).collect()),
            "domain" => strings((1..=4).map(|w| format!("ws{w}")).collect()),
            "collected_at" => timestamps(vec![micros(d, 1); 4]),
            _ => return None,
        })
    })
}

/// The identity export of day `d`: one identity per matched or ambiguous account (orphans and
/// service accounts have none); 3% terminated; a manager per 50 identities.
fn identities_batch(accounts: u64, d: NaiveDate) -> anyhow::Result<RecordBatch> {
    let ids: Vec<u64> = (0..accounts).filter(|&a| matches!(match_status(a), "matched" | "ambiguous")).collect();
    let n = ids.len();
    let terminated = |a: u64| mix(a ^ 0x7E57) % 100 < 3;
    batch_of(&IDENTITIES, n, |name| {
        Some(match name {
            "identity_id" => strings(ids.iter().map(|a| format!("I{a:010}")).collect()),
            "email" => strings(ids.iter().map(|&a| email(a)).collect()),
            "employee_id" => strings(ids.iter().map(|a| format!("E{a}")).collect()),
            "display_name" => strings(ids.iter().map(|a| format!("Person {a}")).collect()),
            "department" => {
                strings(ids.iter().map(|&a| DEPARTMENTS[(mix(a ^ 0xDE) % 12) as usize].to_string()).collect())
            }
            "manager_email" => {
                strings(ids.iter().map(|&a| email(ids[(ids.partition_point(|&x| x < a) / 50) * 50])).collect())
            }
            "status" => {
                strings(ids.iter().map(|&a| if terminated(a) { "terminated" } else { "active" }.to_string()).collect())
            }
            "termination_date" => Arc::new(Date32Array::from(
                ids.iter()
                    .map(|&a| {
                        terminated(a).then(|| {
                            (d - Days::new(mix(a ^ 9) % 200) - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch"))
                                .num_days() as i32
                        })
                    })
                    .collect::<Vec<_>>(),
            )),
            "employee_type" => strings(vec!["employee".into(); n]),
            "source_file" => strings(vec!["bench-identities.csv".into(); n]),
            "source_line" => {
                Arc::new(Int64Array::from(ids.iter().enumerate().map(|(i, _)| i as i64 + 2).collect::<Vec<_>>()))
            }
            "loaded_at" => timestamps(vec![micros(d, 1); n]),
            _ => return None,
        })
    })
}

fn account_identity_batch(accounts: u64, d: NaiveDate) -> anyhow::Result<RecordBatch> {
    let n = accounts as usize;
    let ids = 0..accounts;
    let owner = |a: u64| (match_status(a) == "matched").then(|| format!("I{a:010}"));
    batch_of(&ACCOUNT_IDENTITY, n, |name| {
        Some(match name {
            "app" => strings(vec!["slack".into(); n]),
            "workspace_id" => strings(ids.clone().map(workspace).collect()),
            "account_id" => strings(ids.clone().map(|a| format!("U{a:010}")).collect()),
            "account_type" => strings(ids.clone().map(|a| account_type(a).to_string()).collect()),
            "match_status" => strings(ids.clone().map(|a| match_status(a).to_string()).collect()),
            "identity_id" => Arc::new(StringArray::from(ids.clone().map(owner).collect::<Vec<_>>())),
            "rule" => Arc::new(StringArray::from(
                ids.clone().map(|a| owner(a).map(|_| "email ⇄ email".to_string())).collect::<Vec<_>>(),
            )),
            "matched_value" => {
                Arc::new(StringArray::from(ids.clone().map(|a| owner(a).map(|_| email(a))).collect::<Vec<_>>()))
            }
            "candidates" => Arc::new(StringArray::from(
                ids.clone()
                    .map(|a| (match_status(a) == "ambiguous").then(|| format!("I{a:010},I{:010}", a + 1)))
                    .collect::<Vec<_>>(),
            )),
            "computed_at" => timestamps(vec![micros(d, 2); n]),
            _ => return None,
        })
    })
}

async fn open(dir: &str) -> anyhow::Result<Lake> {
    std::fs::create_dir_all(dir)?;
    let path = std::fs::canonicalize(dir)?;
    let url = url::Url::from_file_path(&path).map_err(|()| anyhow::anyhow!("bad path {dir}"))?;
    Ok(Lake::open(&url, &Default::default())?)
}

fn rows(b: &[RecordBatch]) -> usize {
    b.iter().map(RecordBatch::num_rows).sum()
}

async fn generate(dir: &str, accounts: u64, days: u64, snapshot_days: u64) -> anyhow::Result<()> {
    let lake = open(dir).await?;
    let lease = lake.acquire_lock("bench-generate", std::time::Duration::from_secs(3600)).await?;
    let t = Instant::now();
    let mut total = 0;
    // A commit per month keeps the generator's memory at a month of rows.
    let first = today().checked_sub_days(Days::new(days - 1)).context("date")?;
    let mut d = first;
    while d <= today() {
        let mut tx = lake.begin(&lease).await?;
        for _ in 0..30 {
            if d > today() {
                break;
            }
            let n = (d - first).num_days() as u64;
            tx.declare_snapshot(&ACTIVITY_DAILY, d);
            if let Some(b) = activity_day(accounts, d, n, days)? {
                total += b.num_rows();
                tx.write(&ACTIVITY_DAILY, d, b)?;
            }
            d = d.succ_opt().context("date")?;
        }
        tx.commit().await?;
        eprintln!("activity_daily up to {d}: {total} rows, {:.1}s", t.elapsed().as_secs_f64());
    }
    let yesterday = today().pred_opt().context("date")?;
    // The snapshots a daily run writes, for the last `snapshot_days` days (lastseen has run
    // daily for that long; the year of activity before was backfilled): `accounts` and
    // `slack_workspaces`, the identity export and correlation every day.
    let first_snapshot = today().checked_sub_days(Days::new(snapshot_days.max(2) - 1)).context("date")?;
    let mut day = first_snapshot;
    while day <= today() {
        let mut tx = lake.begin(&lease).await?;
        for _ in 0..10 {
            if day > today() {
                break;
            }
            tx.declare_snapshot(&ACCOUNTS, day);
            tx.write(&ACCOUNTS, day, accounts_batch(accounts, day)?)?;
            tx.declare_snapshot(&SLACK_WORKSPACES, day);
            tx.write(&SLACK_WORKSPACES, day, workspaces_batch(day)?)?;
            tx.declare_snapshot(&IDENTITIES, day);
            tx.write(&IDENTITIES, day, identities_batch(accounts, day)?)?;
            tx.declare_snapshot(&ACCOUNT_IDENTITY, day);
            tx.write(&ACCOUNT_IDENTITY, day, account_identity_batch(accounts, day)?)?;
            day = day.succ_opt().context("date")?;
        }
        tx.commit().await?;
        eprintln!("accounts snapshots up to {day}: {:.1}s", t.elapsed().as_secs_f64());
    }
    let mut tx = lake.begin(&lease).await?;
    write_entitlements(&mut tx, accounts)?;
    tx.commit().await?;
    eprintln!("groups, review decisions and journal: {:.1}s", t.elapsed().as_secs_f64());
    // Yesterday's last_seen (the incremental run's base), rebuilt from the whole history; then
    // today's, folded from it as `lastseen run` does: the snapshot the reports read.
    let base = lastseen_transform::rebuild_last_seen(&lake, yesterday, 90, Utc::now()).await?;
    let mut tx = lake.begin(&lease).await?;
    tx.declare_snapshot(&LAST_SEEN, yesterday);
    for b in base {
        tx.write(&LAST_SEEN, yesterday, b)?;
    }
    tx.commit().await?;
    eprintln!("last_seen {yesterday} (full rebuild): {:.1}s", t.elapsed().as_secs_f64());
    let snapshot = lake.snapshot().await?;
    let ctx = SessionContext::new();
    LakeTable::register_all(&ctx, &lake, &snapshot)?;
    let src = Sources { activity: "activity_daily", accounts: "accounts", last_seen: "last_seen" };
    let folded = fold(&ctx, src, step(true)).await?;
    let mut tx = lake.begin(&lease).await?;
    tx.declare_snapshot(&LAST_SEEN, today());
    for b in folded {
        tx.write(&LAST_SEEN, today(), b)?;
    }
    tx.commit().await?;
    eprintln!("last_seen {} (incremental): {:.1}s", today(), t.elapsed().as_secs_f64());
    // The daily rollups of every snapshot day, in order (each folds from the day before), by
    // the derivation `lastseen run` uses, from the tables committed above.
    let mut base = None;
    let mut day = first_snapshot;
    while day <= today() {
        commit_rollups(&lake, &lease, day, base).await?;
        base = Some(day);
        day = day.succ_opt().context("date")?;
    }
    eprintln!("rollups of {snapshot_days} days: {:.1}s", t.elapsed().as_secs_f64());
    lease.release().await?;
    println!(
        "generated {accounts} accounts, {days} days, {total} activity_daily rows in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Derive day `day`'s rollups from the committed tables (folded from `base`'s) and commit them,
/// as `lastseen run` writes them.
async fn commit_rollups(
    lake: &Lake,
    lease: &lastseen_lake::LockGuard,
    day: NaiveDate,
    base: Option<NaiveDate>,
) -> anyhow::Result<()> {
    let rollups = lastseen_transform::rollups::from_lake(lake, day, base).await?;
    let mut tx = lake.begin(lease).await?;
    tx.declare_snapshot(&ACCOUNT_REPORT, day);
    for b in rollups.account_report {
        tx.write(&ACCOUNT_REPORT, day, b)?;
    }
    tx.declare_snapshot(&USAGE_DAILY, day);
    for b in rollups.usage_daily {
        tx.write(&USAGE_DAILY, day, b)?;
    }
    tx.commit().await?;
    Ok(())
}

/// Every report that reads a rollup, against its oracle as of the newest day: with `--days DAYS`
/// and no filter, then filtered to a workspace and a department, without guests and with bots.
/// Prints one line per comparison; fails on the first report whose rows differ.
async fn oracle(dir: &str, days: u32) -> anyhow::Result<()> {
    let lake = open(dir).await?;
    let engine = QueryEngine::open(&lake).await?;
    let mut differences = 0;
    for def in reports::builtin()?.into_iter().filter(|r| !r.rollups.is_empty()) {
        let takes = |p| def.takes(p);
        let plain = ReportParams { days: takes(reports::Param::Days).then_some(days), ..ReportParams::default() };
        let filtered = ReportParams {
            workspace: takes(reports::Param::Workspace).then(|| "T0000002".to_string()),
            department: takes(reports::Param::Department).then(|| "sales".to_string()),
            exclude_guests: takes(reports::Param::ExcludeGuests),
            include_bots: takes(reports::Param::IncludeBots),
            ..plain.clone()
        };
        for (label, p) in [("default", plain), ("filtered", filtered)] {
            let t = Instant::now();
            match def.oracle_difference(&engine, &p).await {
                Ok(None) => {
                    println!("{} ({label}): same rows as its oracle ({:.1}s)", def.name, t.elapsed().as_secs_f64())
                }
                Ok(Some(diff)) => {
                    differences += 1;
                    println!("{} ({label}): DIFFERS from its oracle: {diff}", def.name);
                }
                // `usage` over a trend longer than the lake's rollup days: the report itself
                // answers from the oracle then, so there is nothing to compare.
                Err(lastseen_query::QueryError::NoData(why)) => println!("{} ({label}): not compared: {why}", def.name),
                Err(e) => return Err(e.into()),
            }
        }
    }
    anyhow::ensure!(differences == 0, "{differences} report(s) differ from their oracle");
    Ok(())
}

/// Today's fold: from yesterday's snapshot (incremental) or from every day (full rebuild).
fn step(incremental: bool) -> Step<'static> {
    // The generated lake has access logs, which cover Slack.
    static COVERED: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| vec!["slack".to_string()]);
    Step {
        as_of: today(),
        base: incremental.then(|| today().pred_opt().expect("date")),
        dormant_days: 90,
        covered: &COVERED,
        computed_at: Utc.with_ymd_and_hms(TODAY.0, TODAY.1, TODAY.2, 23, 0, 0).single().expect("valid"),
    }
}

async fn update(dir: &str, incremental: bool) -> anyhow::Result<()> {
    let lake = open(dir).await?;
    let snapshot = lake.snapshot().await?;
    let ctx = SessionContext::new();
    LakeTable::register_all(&ctx, &lake, &snapshot)?;
    let t = Instant::now();
    let src = Sources { activity: "activity_daily", accounts: "accounts", last_seen: "last_seen" };
    let out = fold(&ctx, src, step(incremental)).await?;
    let secs = t.elapsed().as_secs_f64();
    let mode = if incremental { "incremental" } else { "full rebuild" };
    println!("{mode}: {} last_seen rows in {secs:.2}s", rows(&out));
    Ok(())
}

/// Run report `name` (`dormant`, `usage`, …) `runs` times, each with a fresh `QueryEngine`
/// over the newest lake version, bound as `lastseen report NAME --days DAYS` binds it (as-of =
/// the newest `last_seen` snapshot). Prints one line per run and a summary with min and median.
async fn report(name: &str, dir: &str, runs: usize, days: u32, oracle: bool) -> anyhow::Result<()> {
    let lake = open(dir).await?;
    let def = reports::find(name)?;
    // The oracle: the same report over the raw tables, as it ran before the rollups.
    let def = if oracle { def.oracle()?.with_context(|| format!("report {name} has no oracle"))? } else { def };
    let takes_days = def.takes(reports::Param::Days);
    let params = ReportParams { days: takes_days.then_some(days), ..ReportParams::default() };
    let mut times = Vec::new();
    for run in 1..=runs {
        let t = Instant::now();
        let engine = QueryEngine::open(&lake).await?;
        let opened = t.elapsed().as_secs_f64();
        // As `lastseen report` runs it: the query, its charts and its provenance.
        let out = def.run(&engine, &params).await?;
        let secs = t.elapsed().as_secs_f64();
        let as_of = out.as_of.map_or_else(|| "-".to_string(), |d| d.to_string());
        println!(
            "{name} run {run}: {} rows and {} charts as of {as_of} in {secs:.3}s (lake open {opened:.3}s)",
            rows(&out.data.batches),
            out.charts.len()
        );
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{{\"report\":\"{name}\",\"days\":{days},\"runs\":{runs},\"min_s\":{:.3},\"median_s\":{median:.3},\"max_s\":{:.3}}}",
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

/// The `slack_users` snapshot of day `d` for the same organisation as [`accounts_batch`].
fn users_batch(accounts: u64, d: NaiveDate) -> anyhow::Result<RecordBatch> {
    let n = accounts as usize;
    let ids = 0..accounts;
    let flag = |f: fn(u64) -> bool| -> ArrayRef {
        Arc::new(BooleanArray::from(ids.clone().map(|a| Some(f(a))).collect::<Vec<_>>()))
    };
    batch_of(&SLACK_USERS, n, |name| {
        Some(match name {
            "team_id" => strings(ids.clone().map(workspace).collect()),
            "user_id" => strings(ids.clone().map(|a| format!("U{a:010}")).collect()),
            "name" => strings(ids.clone().map(|a| format!("user{a}")).collect()),
            "real_name" => strings(ids.clone().map(|a| format!("User {a}")).collect()),
            "email" => {
                Arc::new(StringArray::from(ids.clone().map(|a| (!service(a)).then(|| email(a))).collect::<Vec<_>>()))
            }
            "deleted" => flag(|a| status(a) == "deactivated"),
            "is_admin" => flag(|a| account_type(a) == "admin"),
            "is_owner" => flag(|a| matches!(account_type(a), "owner" | "primary_owner")),
            "is_primary_owner" => flag(|a| account_type(a) == "primary_owner"),
            "is_restricted" => flag(|a| account_type(a).starts_with("guest")),
            "is_ultra_restricted" => flag(|a| account_type(a) == "guest_single"),
            "is_bot" => flag(|a| account_type(a) == "bot"),
            "is_app_user" => flag(|a| account_type(a) == "app"),
            "is_invited_user" => flag(|a| status(a) == "invited"),
            "is_stranger" => flag(|_| false),
            "has_2fa" => flag(|a| mix(a ^ 2).is_multiple_of(2)),
            "collected_at" => timestamps(vec![micros(d, 1); n]),
            _ => return None,
        })
    })
}

/// What a year of daily runs leaves besides activity: a `slack_users` and a `last_seen`
/// snapshot per day for the last `days` days. The `last_seen` rows are today's (the
/// re-derivation recomputes them; only their existence puts a day in the chain).
async fn history(dir: &str, accounts: u64, days: u64) -> anyhow::Result<()> {
    let lake = open(dir).await?;
    let lease = lake.acquire_lock("bench-history", std::time::Duration::from_secs(3600)).await?;
    let t = Instant::now();
    let ctx = SessionContext::new();
    LakeTable::register_all(&ctx, &lake, &lake.snapshot().await?)?;
    let sql = format!("SELECT * EXCEPT (dt) FROM last_seen WHERE dt = DATE '{}'", today());
    let ls = ctx.sql(&sql).await?.collect().await?;
    anyhow::ensure!(rows(&ls) > 0, "no last_seen for {}: run `generate` first", today());
    let mut day = today().checked_sub_days(Days::new(days - 1)).context("date")?;
    while day <= today() {
        let mut tx = lake.begin(&lease).await?;
        for _ in 0..10 {
            if day > today() {
                break;
            }
            tx.declare_snapshot(&SLACK_USERS, day);
            tx.write(&SLACK_USERS, day, users_batch(accounts, day)?)?;
            if day < today() {
                tx.declare_snapshot(&LAST_SEEN, day);
                for b in &ls {
                    tx.write(&LAST_SEEN, day, b.clone())?;
                }
            }
            day = day.succ_opt().context("date")?;
        }
        tx.commit().await?;
        eprintln!("slack_users and last_seen snapshots up to {day}: {:.1}s", t.elapsed().as_secs_f64());
    }
    lease.release().await?;
    Ok(())
}

/// Today's rollups derived again from the committed tables, folded from yesterday's, as
/// `generate` derives them: an existing bench lake gets the current rollup columns and file
/// layout (row groups, sort order) without being generated again. The lake's `accounts` must
/// carry every column the derivation reads (a lake generated before `workspace_name` existed
/// gets NULLs there: generate it again).
async fn rewrite_rollups(dir: &str) -> anyhow::Result<()> {
    let lake = open(dir).await?;
    let lease = lake.acquire_lock("bench-rollups", std::time::Duration::from_secs(3600)).await?;
    let t = Instant::now();
    let day = today();
    commit_rollups(&lake, &lease, day, day.pred_opt()).await?;
    lease.release().await?;
    let rows = lake.snapshot().await?.partition(ACCOUNT_REPORT.name, day).map_or(0, |p| p.rows);
    println!("derived {rows} account_report rows of {day} again in {:.1}s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Add to a lake generated before the generator wrote them today's user groups and SCIM groups
/// (with today's `accounts` again, now carrying its `groups`), the imported review decisions
/// and the deprovisioning journal, then derive today's rollups again from yesterday's, as
/// `generate` does: the review's raw tables, so DuckDB can run its oracle on this lake.
async fn add_entitlements(dir: &str, accounts: u64) -> anyhow::Result<()> {
    let lake = open(dir).await?;
    let lease = lake.acquire_lock("bench-entitlements", std::time::Duration::from_secs(3600)).await?;
    let t = Instant::now();
    let day = today();
    let mut tx = lake.begin(&lease).await?;
    tx.declare_snapshot(&ACCOUNTS, day);
    tx.write(&ACCOUNTS, day, accounts_batch(accounts, day)?)?;
    write_entitlements(&mut tx, accounts)?;
    tx.commit().await?;
    commit_rollups(&lake, &lease, day, day.pred_opt()).await?;
    lease.release().await?;
    println!(
        "added groups, decisions and journal for {accounts} accounts as of {day} in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Late evidence for the first day that has a `slack_users` snapshot (one access-log entry, as a
/// backfill of that day commits), then `derive_all` for today with the default configuration:
/// what `lastseen backfill` does after collecting. Run under `/usr/bin/time -v`.
async fn rederive(dir: &str) -> anyhow::Result<()> {
    let lake = open(dir).await?;
    let lease = lake.acquire_lock("bench-rederive", std::time::Duration::from_secs(3600)).await?;
    let snapshot = lake.snapshot().await?;
    let first = *snapshot.dates(SLACK_USERS.name).first().context("no slack_users: run `history` first")?;
    let chain = snapshot.dates(LAST_SEEN.name).iter().filter(|d| **d >= first).count();
    let mut tx = lake.begin(&lease).await?;
    let at = micros(first, 12);
    let entry = batch_of(&SLACK_ACCESS_LOGS, 1, |name| {
        Some(match name {
            "team_id" => strings(vec!["T0000001".into()]),
            "user_id" => strings(vec![format!("U{:010}", 1)]),
            "date_first" | "date_last" | "collected_at" => timestamps(vec![at]),
            "count" => Arc::new(Int64Array::from(vec![1])),
            _ => return None,
        })
    })?;
    tx.write(&SLACK_ACCESS_LOGS, first, entry)?;
    tx.commit().await?;
    let config = lastseen_config::Config::load(None)?;
    let t = Instant::now();
    let options = lastseen_transform::DeriveOptions::from_config(&config);
    let derived = lastseen_transform::derive_all(&lake, &lease, &[today()], Utc::now(), &options).await?;
    let secs = t.elapsed().as_secs_f64();
    lease.release().await?;
    let by_table = derived.summary.rows_by_table();
    println!(
        "re-derived from {first}: {chain} last_seen days in {secs:.1}s (lake version {}): {by_table:?}",
        derived.summary.version
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") => {
            let dir = args.get(2).context("generate DIR [ACCOUNTS] [DAYS]")?;
            let accounts = args.get(3).map_or(Ok(500_000), |s| s.parse())?;
            let days = args.get(4).map_or(Ok(365), |s| s.parse())?;
            let snapshot_days = args.get(5).map_or(Ok(90), |s| s.parse())?;
            generate(dir, accounts, days, snapshot_days).await
        }
        Some("incremental") => update(args.get(2).context("incremental DIR")?, true).await,
        Some("full") => update(args.get(2).context("full DIR")?, false).await,
        Some("report") => {
            let name = args.get(2).context("report NAME DIR [RUNS] [DAYS]")?;
            let dir = args.get(3).context("report NAME DIR [RUNS] [DAYS]")?;
            let runs = args.get(4).map_or(Ok(5), |s| s.parse())?;
            let days = args.get(5).map_or(Ok(90), |s| s.parse())?;
            report(name, dir, runs, days, args.get(6).is_some_and(|a| a == "oracle")).await
        }
        Some("history") => {
            let dir = args.get(2).context("history DIR [ACCOUNTS] [DAYS]")?;
            let accounts = args.get(3).map_or(Ok(500_000), |s| s.parse())?;
            let days = args.get(4).map_or(Ok(365), |s| s.parse())?;
            history(dir, accounts, days).await
        }
        Some("rederive") => rederive(args.get(2).context("rederive DIR")?).await,
        Some("rollups") => rewrite_rollups(args.get(2).context("rollups DIR")?).await,
        Some("entitlements") => {
            let dir = args.get(2).context("entitlements DIR [ACCOUNTS]")?;
            let accounts = args.get(3).map_or(Ok(500_000), |s| s.parse())?;
            add_entitlements(dir, accounts).await
        }
        Some("oracle") => {
            let dir = args.get(2).context("oracle DIR [DAYS]")?;
            let days = args.get(3).map_or(Ok(90), |s| s.parse())?;
            oracle(dir, days).await
        }
        _ => bail!(
            "usage: lastseen-bench-last-seen generate DIR [ACCOUNTS] [DAYS] [SNAPSHOT_DAYS] | incremental DIR | \
             full DIR | report NAME DIR [RUNS] [DAYS] [oracle] | oracle DIR [DAYS] | history DIR [ACCOUNTS] [DAYS] | rederive DIR | \
             rollups DIR | entitlements DIR [ACCOUNTS]"
        ),
    }
}
