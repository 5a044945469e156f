//! The derived side of Okta on a hand-built lake (Slack users and access logs, the HR export,
//! Okta users of every status, System Log events), derived in-process by `derive_all` and read
//! through the reports: Okta accounts and their last use (failed sign-ins and non-User actors
//! prove nothing), the last SSO per user and app instance (`sso_last_seen`), Slack accounts whose
//! use only Okta proves, two apps' accounts with one id kept apart, the cross-app `identities`
//! report, every rollup report equal to its oracle with `--app okta`, and a late System Log event
//! that re-derives an earlier day rewriting its `sso_last_seen`.

use chrono::{NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{RecordBatch, new_null_array};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::prelude::SessionContext;
use lastseen_lake::Lake;
use lastseen_lake::catalog::{
    IDENTITIES, OKTA_LOG_EVENTS, OKTA_USERS, Partitioning, SLACK_ACCESS_LOGS, SLACK_USERS, TableDef,
};
use lastseen_query::QueryEngine;
use lastseen_query::reports::{self, ReportParams, rows_as_text};

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn d1() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 29).unwrap()
}

fn d() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
}

/// The rows `sql` yields, as a batch of `def`'s file schema: columns by name, cast; a column the
/// SQL does not name is NULL.
fn rows(def: &'static TableDef, sql: &str) -> RecordBatch {
    let ctx = SessionContext::new();
    let batches = block_on(async { ctx.sql(sql).await.unwrap().collect().await.unwrap() });
    let b = concat_batches(&batches[0].schema(), &batches).unwrap();
    let schema = def.schema();
    let cols = schema
        .fields()
        .iter()
        .map(|f| match b.column_by_name(f.name()) {
            Some(c) => cast(c, f.data_type()).unwrap(),
            None => new_null_array(f.data_type(), b.num_rows()),
        })
        .collect();
    RecordBatch::try_new(schema, cols).unwrap_or_else(|e| panic!("{}: {e}", def.name))
}

/// Commit `batches` as one raw commit (snapshot tables as `dt`'s snapshot; event tables by date).
fn commit(lake: &Lake, dt: NaiveDate, batches: Vec<(&'static TableDef, RecordBatch)>) {
    block_on(async {
        let lease = lake.acquire_lock("test", std::time::Duration::from_secs(60)).await.unwrap();
        let mut tx = lake.begin(&lease).await.unwrap();
        for (def, b) in batches {
            if def.partitioning == Partitioning::Snapshot {
                tx.declare_snapshot(def, dt);
            }
            tx.write(def, dt, b).unwrap();
        }
        tx.commit().await.unwrap();
        lease.release().await.unwrap();
    });
}

fn derive(lake: &Lake, dt: NaiveDate) {
    let cfg = lastseen_config::Config::from_toml_str("", "test", Vec::<(String, String)>::new()).unwrap();
    let mut options = lastseen_transform::DeriveOptions::from_config(&cfg);
    options.dormant_days = 7;
    let now = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
    block_on(async {
        let lease = lake.acquire_lock("derive", std::time::Duration::from_secs(60)).await.unwrap();
        lastseen_transform::derive_all(lake, &lease, &[dt], now, &options).await.unwrap();
        lease.release().await.unwrap();
    });
}

/// Slack: U1 (alice) with access logs, U2 (bob), U3 (carol, whose Slack email is her HR
/// alternate address), U4 (dave), U5 (erin), U6 (grace: the id an Okta user also has) and a bot.
fn slack_users(dt: NaiveDate) -> RecordBatch {
    rows(
        &SLACK_USERS,
        &format!(
            "SELECT 'T1' AS team_id, user_id, name, email, is_bot, false AS deleted, false AS is_admin,
                    false AS is_owner, false AS is_primary_owner, false AS is_restricted,
                    false AS is_ultra_restricted, false AS is_app_user, false AS is_invited_user,
                    false AS is_stranger, '{dt}T23:00:00Z' AS collected_at
             FROM (VALUES ('U1', 'alice', 'alice@x.example', false), ('U2', 'bob', 'Bob@X.example', false),
                          ('U3', 'carol', 'carol.slack@x.example', false), ('U4', 'dave', 'dave@x.example', false),
                          ('U5', 'erin', 'erin@x.example', false), ('U6', 'grace', 'grace@x.example', false),
                          ('UB', 'bot', NULL, true)) AS t (user_id, name, email, is_bot)"
        ),
    )
}

fn identities(dt: NaiveDate) -> RecordBatch {
    rows(
        &IDENTITIES,
        &format!(
            "SELECT identity_id, email,
                    CASE WHEN alt = '' THEN NULL ELSE string_to_array(alt, ';') END AS alternate_emails,
                    display_name, 'Eng' AS department, 'active' AS status, 'hr.csv' AS source_file,
                    n AS source_line, '{dt}T23:00:00Z' AS loaded_at
             FROM (VALUES ('HR1', 'alice@x.example', '', 'Alice', 1), ('HR2', 'bob@x.example', '', 'Bob', 2),
                          ('HR3', 'carol@x.example', 'carol.slack@x.example', 'Carol', 3),
                          ('HR4', 'dave@x.example', '', 'Dave', 4), ('HR5', 'erin@x.example', '', 'Erin', 5),
                          ('HR6', 'frank@x.example', '', 'Frank', 6), ('HR7', 'grace@x.example', '', 'Grace', 7),
                          ('HR8', 'gina@x.example', '', 'Gina', 8), ('HR9', 'hank@x.example', '', 'Hank', 9))
                  AS t (identity_id, email, alt, display_name, n)"
        ),
    )
}

/// Okta users of every status; U6 (frank) shares its id with a Slack account of someone else.
fn okta_users(dt: NaiveDate) -> RecordBatch {
    rows(
        &OKTA_USERS,
        &format!(
            "SELECT user_id, status, '2025-01-01T00:00:00Z' AS created, login, login AS email, user_type,
                    last_login, '{dt}T23:00:00Z' AS collected_at
             FROM (VALUES ('00uA', 'ACTIVE', 'alice@x.example', 'employee', NULL),
                          ('00uB', 'ACTIVE', 'bob@x.example', 'employee', NULL),
                          ('00uC', 'LOCKED_OUT', 'carol@x.example', 'employee', NULL),
                          ('00uD', 'PASSWORD_EXPIRED', 'dave@x.example', 'employee', NULL),
                          ('00uE', 'ACTIVE', 'erin@x.example', 'contractor', '2026-03-01T10:00:00Z'),
                          ('U6', 'ACTIVE', 'frank@x.example', 'employee', NULL),
                          ('00uG', 'STAGED', 'gina@x.example', 'employee', NULL),
                          ('00uH', 'SUSPENDED', 'hank@x.example', 'employee', NULL),
                          ('00uI', 'DEPROVISIONED', 'ivan@x.example', 'employee', NULL),
                          ('00uP', 'PROVISIONED', 'pat@x.example', 'employee', NULL),
                          ('00uR', 'RECOVERY', 'rita@x.example', 'employee', NULL),
                          ('00uS', 'ACTIVE', 'svc-provisioning@x.example', 'Service', NULL))
                  AS t (user_id, status, login, user_type, last_login)"
        ),
    )
}

const SLACK_APP: &str = "0oaSLACK";
const ZOOM_APP: &str = "0oaZOOM";

/// A System Log event: (uuid, published, event type, actor id, actor type, outcome, app instance).
type Event<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str, Option<&'a str>);

fn events(list: &[Event<'_>]) -> RecordBatch {
    let values: Vec<String> = list
        .iter()
        .map(|(uuid, at, ty, actor, actor_type, outcome, app)| {
            let (id, label, mapped) = match *app {
                Some(SLACK_APP) => (format!("'{SLACK_APP}'"), "'Slack'", "'slack'"),
                Some(ZOOM_APP) => (format!("'{ZOOM_APP}'"), "'Zoom'", "NULL"),
                _ => ("NULL".to_string(), "NULL", "NULL"),
            };
            format!("('{uuid}', '{at}', '{ty}', '{actor}', '{actor_type}', '{outcome}', {id}, {label}, {mapped})")
        })
        .collect();
    rows(
        &OKTA_LOG_EVENTS,
        &format!(
            "SELECT uuid, published, event_type, actor_id, actor_type, outcome_result, target_app_id,
                    target_app_label, mapped_app, '2026-06-30T23:30:00Z' AS collected_at
             FROM (VALUES {}) AS t (uuid, published, event_type, actor_id, actor_type, outcome_result,
                                    target_app_id, target_app_label, mapped_app)",
            values.join(", ")
        ),
    )
}

const START: &str = "user.session.start";
const SSO: &str = "user.authentication.sso";

/// A lake with two days (`d1`, `d`) collected and derived, one day at a time as the daily run does.
fn build() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(&url::Url::from_directory_path(dir.path()).unwrap(), &Default::default()).unwrap();
    let access = rows(
        &SLACK_ACCESS_LOGS,
        "SELECT 'T1' AS team_id, 'U1' AS user_id, '2026-06-20T10:00:00Z' AS date_first,
                '2026-06-29T10:00:00Z' AS date_last, 3 AS count, '2026-06-29T23:00:00Z' AS collected_at",
    );
    let day1 = events(&[
        ("e01", "2026-06-29T07:00:00Z", SSO, "00uA", "User", "SUCCESS", Some(SLACK_APP)),
        ("e02", "2026-06-29T09:00:00Z", START, "00uB", "User", "SUCCESS", None),
        ("e03", "2026-06-29T09:10:00Z", SSO, "00uB", "User", "SUCCESS", Some(SLACK_APP)),
        ("e04", "2026-06-29T09:20:00Z", SSO, "00uB", "User", "SUCCESS", Some(ZOOM_APP)),
        ("e05", "2026-06-29T07:00:00Z", START, "00uC", "User", "SUCCESS", None),
        ("e06", "2026-06-29T08:00:00Z", START, "00uH", "User", "SUCCESS", None),
        ("e07", "2026-06-29T13:00:00Z", SSO, "00uE", "User", "SUCCESS", Some(ZOOM_APP)),
    ]);
    commit(
        &lake,
        d1(),
        vec![
            (&SLACK_USERS, slack_users(d1())),
            (&IDENTITIES, identities(d1())),
            (&OKTA_USERS, okta_users(d1())),
            (&SLACK_ACCESS_LOGS, access),
            (&OKTA_LOG_EVENTS, day1),
        ],
    );
    derive(&lake, d1());
    let day = events(&[
        ("e11", "2026-06-30T08:00:00Z", START, "00uA", "User", "SUCCESS", None),
        ("e12", "2026-06-30T08:05:00Z", SSO, "00uA", "User", "SUCCESS", Some(SLACK_APP)),
        // A failed sign-in and a failed SSO prove nothing.
        ("e13", "2026-06-30T10:00:00Z", START, "00uB", "User", "FAILURE", None),
        ("e14", "2026-06-30T10:00:00Z", START, "00uD", "User", "FAILURE", None),
        ("e15", "2026-06-30T10:01:00Z", SSO, "00uD", "User", "FAILURE", Some(SLACK_APP)),
        ("e16", "2026-06-30T11:00:00Z", SSO, "00uC", "User", "SUCCESS", Some(SLACK_APP)),
        ("e17", "2026-06-30T12:00:00Z", START, "U6", "User", "SUCCESS", None),
        // Okta acting on a user's behalf is not the user signing in, whatever id it carries.
        ("e18", "2026-06-30T12:30:00Z", START, "00uG", "SystemPrincipal", "SUCCESS", None),
        ("e19", "2026-06-30T12:31:00Z", SSO, "00uG", "SystemPrincipal", "SUCCESS", Some(SLACK_APP)),
    ]);
    commit(
        &lake,
        d(),
        vec![
            (&SLACK_USERS, slack_users(d())),
            (&IDENTITIES, identities(d())),
            (&OKTA_USERS, okta_users(d())),
            (&OKTA_LOG_EVENTS, day),
        ],
    );
    derive(&lake, d());
    (dir, lake)
}

type Rows = Vec<Vec<Option<String>>>;

fn query(lake: &Lake, sql: &str) -> Rows {
    let engine = block_on(QueryEngine::open(lake)).unwrap();
    rows_as_text(&block_on(engine.sql(sql)).unwrap()).unwrap()
}

fn text(rows: &[&[&str]]) -> Rows {
    rows.iter().map(|r| r.iter().map(|v| (*v != "NULL").then(|| v.to_string())).collect()).collect()
}

/// `cols` of report `name`'s rows (in the report's order).
fn report(lake: &Lake, name: &str, p: &ReportParams, cols: &[&str]) -> Rows {
    let engine = block_on(QueryEngine::open(lake)).unwrap();
    let out = block_on(reports::find(name).unwrap().run(&engine, p)).unwrap();
    let idx: Vec<usize> = cols.iter().map(|c| out.data.schema.index_of(c).unwrap()).collect();
    rows_as_text(&out.data.batches).unwrap().into_iter().map(|r| idx.iter().map(|&i| r[i].clone()).collect()).collect()
}

fn params(app: &str, days: u32) -> ReportParams {
    ReportParams { as_of: Some(d()), days: Some(days), app: Some(app.into()), ..Default::default() }
}

#[test]
fn okta_accounts_sso_last_seen_and_slack_use_proven_only_by_okta_are_exact() {
    let (_dir, lake) = build();

    // Okta accounts: status mapped, the service user typed as one, last use from successful
    // User session starts (and lastLogin), never from failures or SystemPrincipal events.
    let okta = query(
        &lake,
        "SELECT a.account_id, a.account_type, a.status, ls.last_seen_at, ls.last_seen_source, ls.state
         FROM accounts AS a JOIN last_seen AS ls ON ls.dt = a.dt AND ls.app = a.app AND ls.account_id = a.account_id
         WHERE a.dt = DATE '2026-06-30' AND a.app = 'okta' ORDER BY a.account_id",
    );
    assert_eq!(
        okta,
        text(&[
            &["00uA", "member", "active", "2026-06-30T08:00:00Z", "okta_sessions", "active"],
            &["00uB", "member", "active", "2026-06-29T09:00:00Z", "okta_sessions", "active"],
            &["00uC", "member", "active", "2026-06-29T07:00:00Z", "okta_sessions", "active"],
            &["00uD", "member", "active", "NULL", "NULL", "never_seen"],
            &["00uE", "member", "active", "2026-03-01T10:00:00Z", "okta_last_login", "dormant"],
            &["00uG", "member", "invited", "NULL", "NULL", "never_seen"],
            &["00uH", "member", "deactivated", "2026-06-29T08:00:00Z", "okta_sessions", "active"],
            &["00uI", "member", "deactivated", "NULL", "NULL", "never_seen"],
            &["00uP", "member", "invited", "NULL", "NULL", "never_seen"],
            &["00uR", "member", "active", "NULL", "NULL", "never_seen"],
            &["00uS", "app", "active", "NULL", "NULL", "never_seen"],
            &["U6", "member", "active", "2026-06-30T12:00:00Z", "okta_sessions", "active"],
        ])
    );

    // Okta dormant users, through the dormant report with --app okta.
    let cols = ["account_id", "status", "state", "identity_id", "recommended_action"];
    assert_eq!(
        report(&lake, "dormant", &params("okta", 7), &cols),
        text(&[
            // Nobody owns pat's and rita's Okta users (orphans: riskier, listed first).
            &["00uP", "invited", "never_seen", "NULL", "revoke"],
            &["00uR", "active", "never_seen", "NULL", "revoke"],
            &["00uD", "active", "never_seen", "HR4", "revoke"],
            &["00uG", "invited", "never_seen", "HR8", "revoke"],
            &["00uE", "active", "dormant", "HR5", "revoke"],
        ])
    );

    // The last SSO per Okta user and app instance, with the Slack account it maps to.
    let sso = |dt: &str| {
        query(
            &lake,
            &format!(
                "SELECT idp, idp_user_id, app_instance_id, app_instance_label, mapped_app, mapped_account_id,
                        CAST(mapped_accounts AS VARCHAR), first_sso_at, last_sso_at
                 FROM sso_last_seen WHERE dt = DATE '{dt}' ORDER BY idp_user_id, app_instance_id"
            ),
        )
    };
    assert_eq!(
        sso("2026-06-30"),
        text(&[
            &["okta", "00uA", "0oaSLACK", "Slack", "slack", "U1", "1", "2026-06-29T07:00:00Z", "2026-06-30T08:05:00Z"],
            &["okta", "00uB", "0oaSLACK", "Slack", "slack", "U2", "1", "2026-06-29T09:10:00Z", "2026-06-29T09:10:00Z"],
            &[
                "okta",
                "00uB",
                "0oaZOOM",
                "Zoom",
                "NULL",
                "NULL",
                "NULL",
                "2026-06-29T09:20:00Z",
                "2026-06-29T09:20:00Z"
            ],
            &["okta", "00uC", "0oaSLACK", "Slack", "slack", "U3", "1", "2026-06-30T11:00:00Z", "2026-06-30T11:00:00Z"],
            &[
                "okta",
                "00uE",
                "0oaZOOM",
                "Zoom",
                "NULL",
                "NULL",
                "NULL",
                "2026-06-29T13:00:00Z",
                "2026-06-29T13:00:00Z"
            ],
        ])
    );
    assert_eq!(
        sso("2026-06-29"),
        text(&[
            &["okta", "00uA", "0oaSLACK", "Slack", "slack", "U1", "1", "2026-06-29T07:00:00Z", "2026-06-29T07:00:00Z"],
            &["okta", "00uB", "0oaSLACK", "Slack", "slack", "U2", "1", "2026-06-29T09:10:00Z", "2026-06-29T09:10:00Z"],
            &[
                "okta",
                "00uB",
                "0oaZOOM",
                "Zoom",
                "NULL",
                "NULL",
                "NULL",
                "2026-06-29T09:20:00Z",
                "2026-06-29T09:20:00Z"
            ],
            &[
                "okta",
                "00uE",
                "0oaZOOM",
                "Zoom",
                "NULL",
                "NULL",
                "NULL",
                "2026-06-29T13:00:00Z",
                "2026-06-29T13:00:00Z"
            ],
        ])
    );

    // Slack: the SSO is a use of the person's Slack account (carol's through her HR alternate
    // address); Slack U6 (grace) is not Okta's U6 (frank); a failed SSO and a Zoom SSO prove nothing.
    let slack = query(
        &lake,
        "SELECT account_id, last_seen_at, last_seen_source, state FROM last_seen
         WHERE dt = DATE '2026-06-30' AND app = 'slack' ORDER BY account_id",
    );
    assert_eq!(
        slack,
        text(&[
            &["U1", "2026-06-30T08:05:00Z", "okta_sso", "active"],
            &["U2", "2026-06-29T09:10:00Z", "okta_sso", "active"],
            &["U3", "2026-06-30T11:00:00Z", "okta_sso", "active"],
            &["U4", "NULL", "NULL", "never_seen"],
            &["U5", "NULL", "NULL", "never_seen"],
            &["U6", "NULL", "NULL", "never_seen"],
            &["UB", "NULL", "NULL", "never_seen"],
        ])
    );
    // The Slack accounts whose use only Okta proves: no other source ever spoke for them.
    let only_okta = query(
        &lake,
        "SELECT account_id FROM activity_daily WHERE app = 'slack' AND dt <= DATE '2026-06-30'
         GROUP BY account_id HAVING bool_and(sources = 'okta_sso') ORDER BY account_id",
    );
    assert_eq!(only_okta, text(&[&["U2"], &["U3"]]));

    // Each account is its app's: the two U6 are correlated to different people.
    let owners = query(
        &lake,
        "SELECT app, account_id, match_status, identity_id FROM account_identity
         WHERE dt = DATE '2026-06-30' AND account_id IN ('U6', '00uS', '00uC', 'U3') ORDER BY app, account_id",
    );
    assert_eq!(
        owners,
        text(&[
            &["okta", "00uC", "matched", "HR3"],
            &["okta", "00uS", "service", "NULL"],
            &["okta", "U6", "matched", "HR6"],
            &["slack", "U3", "matched", "HR3"],
            &["slack", "U6", "matched", "HR7"],
        ])
    );

    // Across apps: who is dormant everywhere, and who only in some apps.
    let cols = ["identity_id", "apps", "accounts", "active_apps", "dormant_apps", "state", "last_seen_app"];
    let everyone = ReportParams { as_of: Some(d()), days: Some(7), ..Default::default() };
    assert_eq!(
        report(&lake, "identities", &everyone, &cols),
        text(&[
            &["HR4", "okta,slack", "2", "NULL", "okta,slack", "dormant_everywhere", "NULL"],
            &["HR5", "okta,slack", "2", "NULL", "okta,slack", "dormant_everywhere", "okta"],
            &["HR7", "slack", "1", "NULL", "slack", "dormant_everywhere", "NULL"],
            &["HR8", "okta", "1", "NULL", "okta", "dormant_everywhere", "NULL"],
            &["HR1", "okta,slack", "2", "okta,slack", "NULL", "active_everywhere", "slack"],
            &["HR2", "okta,slack", "2", "okta,slack", "NULL", "active_everywhere", "slack"],
            &["HR3", "okta,slack", "2", "okta,slack", "NULL", "active_everywhere", "slack"],
            &["HR6", "okta", "1", "okta", "NULL", "active_everywhere", "okta"],
        ])
    );

    // Every rollup report answers --app okta (and the others) exactly as its oracle does.
    let engine = block_on(QueryEngine::open(&lake)).unwrap();
    let mut compared = 0;
    for r in reports::builtin().unwrap().into_iter().filter(|r| !r.rollups.is_empty()) {
        for app in [Some("okta"), Some("slack"), None] {
            for include_bots in [false, true] {
                let p = ReportParams {
                    as_of: Some(d()),
                    days: r.takes(reports::Param::Days).then_some(7),
                    app: app.map(String::from),
                    include_bots: include_bots && r.takes(reports::Param::IncludeBots),
                    ..Default::default()
                };
                match block_on(r.oracle_difference(&engine, &p)) {
                    Ok(None) => compared += 1,
                    Ok(Some(diff)) => panic!("{} {p:?}: {diff}", r.name),
                    Err(lastseen_query::QueryError::NoData(_)) => {}
                    Err(e) => panic!("{} {p:?}: {e}", r.name),
                }
            }
        }
    }
    assert!(compared >= 6 * 6, "{compared}");
}

#[test]
fn a_late_sso_that_rederives_an_earlier_day_rewrites_sso_last_seen() {
    let (_dir, lake) = build();
    let erin = |dt: &str| {
        query(
            &lake,
            &format!(
                "SELECT app_instance_id, mapped_account_id, last_sso_at FROM sso_last_seen
                 WHERE dt = DATE '{dt}' AND idp_user_id = '00uE' ORDER BY app_instance_id"
            ),
        )
    };
    assert_eq!(erin("2026-06-30"), text(&[&["0oaZOOM", "NULL", "2026-06-29T13:00:00Z"]]));
    // Erin's SSO into Slack on day 1 is read late, on day 2's run: the System Log merge commits
    // it into day 1's partition, and the re-run of day 2 re-derives day 1 and re-folds day 2.
    commit(
        &lake,
        d(),
        vec![(
            &OKTA_LOG_EVENTS,
            events(&[("e08", "2026-06-29T15:00:00Z", SSO, "00uE", "User", "SUCCESS", Some(SLACK_APP))]),
        )],
    );
    derive(&lake, d());
    for dt in ["2026-06-29", "2026-06-30"] {
        assert_eq!(
            erin(dt),
            text(&[&["0oaSLACK", "U5", "2026-06-29T15:00:00Z"], &["0oaZOOM", "NULL", "2026-06-29T13:00:00Z"]]),
            "{dt}"
        );
    }
    let u5 = query(
        &lake,
        "SELECT CAST(dt AS VARCHAR) AS day, last_seen_at, last_seen_source FROM last_seen
         WHERE app = 'slack' AND account_id = 'U5' ORDER BY dt",
    );
    assert_eq!(
        u5,
        text(&[
            &["2026-06-29", "2026-06-29T15:00:00Z", "okta_sso"],
            &["2026-06-30", "2026-06-29T15:00:00Z", "okta_sso"]
        ])
    );
    // Erin is now dormant only in Okta.
    let cols = ["identity_id", "active_apps", "dormant_apps", "state"];
    let everyone = ReportParams { as_of: Some(d()), days: Some(7), ..Default::default() };
    let rows = report(&lake, "identities", &everyone, &cols);
    assert!(rows.contains(&text(&[&["HR5", "slack", "okta", "dormant_in_some"]])[0]), "{rows:?}");
}
