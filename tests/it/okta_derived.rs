//! The derived side of Okta on a hand-built lake (Slack users and access logs, the HR export,
//! Okta users of every status, System Log events), derived in-process by `derive_all` and read
//! through the reports: Okta accounts and their last use (failed sign-ins and non-User actors
//! prove nothing), the last SSO per user and app instance (`sso_last_seen`), Slack accounts whose
//! use only Okta proves, two apps' accounts with one id kept apart, the cross-app `identities`
//! report, every rollup report equal to its oracle with `--app okta`, and a late System Log event
//! that re-derives an earlier day rewriting its `sso_last_seen`. And the Okta simulator's
//! organisation (the people of a Free-plan slack-sim organisation), its users and System Log read
//! over HTTP and staged as the collectors stage them: Okta last use and dormant users, the last SSO
//! per user and app instance, and the Slack accounts whose use only Okta proves equal its ground truth.

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
    derive_with(lake, dt, "");
}

/// `derive_all` of `dt` with the configuration `toml` (its `[correlation]`), dormant after 7 days.
fn derive_with(lake: &Lake, dt: NaiveDate, toml: &str) {
    let cfg = lastseen_config::Config::from_toml_str(toml, "test", Vec::<(String, String)>::new()).unwrap();
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
        // Older than every users snapshot (a System Log backfill): mapped with the oldest one.
        ("e00", "2026-06-20T09:00:00Z", SSO, "00uB", "User", "SUCCESS", Some(SLACK_APP)),
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
            &["okta", "00uB", "0oaSLACK", "Slack", "slack", "U2", "1", "2026-06-20T09:00:00Z", "2026-06-29T09:10:00Z"],
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
            &["okta", "00uB", "0oaSLACK", "Slack", "slack", "U2", "1", "2026-06-20T09:00:00Z", "2026-06-29T09:10:00Z"],
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
    // The backfilled SSO, older than every snapshot, proves bob's Slack use that day.
    let backfilled = query(
        &lake,
        "SELECT CAST(dt AS VARCHAR) AS day, account_id, sources, last_at FROM activity_daily
         WHERE app = 'slack' AND dt < DATE '2026-06-29'",
    );
    assert_eq!(backfilled, text(&[&["2026-06-20", "U2", "okta_sso", "2026-06-20T09:00:00Z"]]));

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

// ---------------------------------------------------------------- the Okta simulator's ground truth

/// A batch of `def`'s file schema from text columns (each cast to its field's type); a column
/// not given is NULL.
fn text_batch(def: &'static TableDef, cols: Vec<(&str, Vec<Option<String>>)>) -> RecordBatch {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    let n = cols.first().map_or(0, |(_, v)| v.len());
    let schema = def.schema();
    let arrays: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match cols.iter().find(|(name, _)| *name == f.name()) {
            Some((_, v)) => cast(&StringArray::from(v.clone()), f.data_type()).unwrap(),
            None => new_null_array(f.data_type(), n),
        })
        .collect();
    RecordBatch::try_new(schema, arrays).unwrap_or_else(|e| panic!("{}: {e}", def.name))
}

/// Every page of `GET {url}` (following `Link: <…>; rel="next"`), as JSON values.
async fn pages(client: &reqwest::Client, token: &str, mut url: String) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    loop {
        let resp = client.get(&url).header("Authorization", format!("SSWS {token}")).send().await.unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        let next = resp.headers().get_all("link").iter().filter_map(|h| h.to_str().ok()).find_map(|h| {
            h.split(',').find(|l| l.contains("rel=\"next\"")).and_then(|l| {
                let (a, b) = (l.find('<')?, l.find('>')?);
                Some(l[a + 1..b].to_string())
            })
        });
        let body: Vec<serde_json::Value> = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        let empty = body.is_empty();
        out.extend(body);
        match next {
            Some(n) if !empty && n != url => url = n,
            _ => return out,
        }
    }
}

fn s(v: &serde_json::Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().map(str::to_string)
}

#[test]
fn okta_known_answers_equal_the_okta_simulators_ground_truth() {
    use std::collections::BTreeMap;

    use crate::support::{Env, end_of, today};
    use lastseen_okta_sim::{OktaOrgSpec, OktaSimConfig, OktaSimulator, UserStatus};

    // A Slack organisation on the Free plan (no Slack source proves use: only Okta can), its HR
    // export, and one daily run; then an Okta organisation of the same people.
    let env = Env::start(150, lastseen_slack_sim::Plan::Free, 53);
    env.configure_identities(|c| c, "");
    // Exit 3: the paid-only Slack sources are skipped with a warning, as on any Free workspace.
    assert_eq!(env.run_day(today()).status.code(), Some(3));
    let mut spec = OktaOrgSpec::from_slack(env.sim().org(), 11);
    // Late events are the collectors' problem (the okta branch's tests); here every event
    // published by `now` is readable at `now`, as the ground truth counts it.
    spec.late_fraction = 0.0;
    let slack_label = spec.slack_app_label.clone();
    let okta = env.rt.block_on(OktaSimulator::start(OktaSimConfig::new(spec), "127.0.0.1:0".parse().unwrap())).unwrap();
    let now = end_of(today());
    okta.set_now(now);
    let truth = okta.ground_truth();
    let since = truth.since.unwrap();
    let client = reqwest::Client::new();
    let base = okta.org_url();
    let fmt = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (users, events) = env.rt.block_on(async {
        // listUsers leaves DEPROVISIONED users out unless a filter asks for them.
        let mut users = pages(&client, okta.api_token(), format!("{base}/api/v1/users?limit=200")).await;
        let filter = "status%20eq%20%22DEPROVISIONED%22";
        users.extend(pages(&client, okta.api_token(), format!("{base}/api/v1/users?limit=200&filter={filter}")).await);
        let events = pages(
            &client,
            okta.api_token(),
            format!(
                "{base}/api/v1/logs?since={}&until={}&limit=1000",
                fmt(since),
                fmt(now + chrono::Duration::seconds(1))
            ),
        )
        .await;
        (users, events)
    });
    assert_eq!(users.len(), truth.users.len());
    assert!(events.len() > 1000, "{}", events.len());

    // The rows the Okta collectors write (lake/src/catalog.rs), from the API's answers.
    let collected = Some(fmt(now));
    let col = |f: &dyn Fn(&serde_json::Value) -> Option<String>, rows: &[serde_json::Value]| -> Vec<Option<String>> {
        rows.iter().map(f).collect()
    };
    let okta_users = text_batch(
        &OKTA_USERS,
        vec![
            ("user_id", col(&|u| s(u, &["id"]), &users)),
            ("status", col(&|u| s(u, &["status"]), &users)),
            ("created", col(&|u| s(u, &["created"]), &users)),
            ("activated", col(&|u| s(u, &["activated"]), &users)),
            ("status_changed", col(&|u| s(u, &["statusChanged"]), &users)),
            ("last_login", col(&|u| s(u, &["lastLogin"]), &users)),
            ("last_updated", col(&|u| s(u, &["lastUpdated"]), &users)),
            ("login", col(&|u| s(u, &["profile", "login"]), &users)),
            ("email", col(&|u| s(u, &["profile", "email"]), &users)),
            ("first_name", col(&|u| s(u, &["profile", "firstName"]), &users)),
            ("last_name", col(&|u| s(u, &["profile", "lastName"]), &users)),
            ("employee_number", col(&|u| s(u, &["profile", "employeeNumber"]), &users)),
            ("department", col(&|u| s(u, &["profile", "department"]), &users)),
            ("user_type", col(&|u| s(u, &["profile", "userType"]), &users)),
            ("collected_at", vec![collected.clone(); users.len()]),
        ],
    );
    let target = |e: &serde_json::Value, ty: &str| -> Option<serde_json::Value> {
        e.get("target")?.as_array()?.iter().find(|t| t.get("type").and_then(|v| v.as_str()) == Some(ty)).cloned()
    };
    let app = |e: &serde_json::Value, k: &str| target(e, "AppInstance").and_then(|t| s(&t, &[k]));
    let okta_events = text_batch(
        &OKTA_LOG_EVENTS,
        vec![
            ("uuid", col(&|e| s(e, &["uuid"]), &events)),
            ("published", col(&|e| s(e, &["published"]), &events)),
            ("event_type", col(&|e| s(e, &["eventType"]), &events)),
            ("actor_id", col(&|e| s(e, &["actor", "id"]), &events)),
            ("actor_type", col(&|e| s(e, &["actor", "type"]), &events)),
            ("actor_alternate_id", col(&|e| s(e, &["actor", "alternateId"]), &events)),
            ("outcome_result", col(&|e| s(e, &["outcome", "result"]), &events)),
            ("target_app_id", col(&|e| app(e, "id"), &events)),
            ("target_app_label", col(&|e| app(e, "displayName"), &events)),
            // `okta.apps` maps the Slack instance to the app `slack`; the others to none.
            (
                "mapped_app",
                col(&|e| app(e, "displayName").filter(|l| *l == slack_label).map(|_| "slack".into()), &events),
            ),
            ("target_user_id", col(&|e| target(e, "User").and_then(|t| s(&t, &["id"])), &events)),
            ("collected_at", vec![collected.clone(); events.len()]),
        ],
    );
    let lake = Lake::open(&url::Url::from_file_path(env.lake()).unwrap(), &Default::default()).unwrap();
    commit(&lake, today(), vec![(&OKTA_USERS, okta_users), (&OKTA_LOG_EVENTS, okta_events)]);
    let toml = std::fs::read_to_string(env.dir.path().join("lastseen.toml")).unwrap();
    derive_with(&lake, today(), &toml);

    let micros = |t: Option<chrono::DateTime<Utc>>| t.map(|t| t.timestamp_micros().to_string());
    let day = today().to_string();

    // The last SSO per Okta user and app instance, and the Slack account it maps to.
    let slack_of: BTreeMap<&str, Option<&str>> =
        truth.users.iter().map(|u| (u.id.as_str(), u.slack_user_id.as_deref())).collect();
    let mut expected: Rows = truth
        .sso
        .iter()
        .map(|t| {
            let slack = t.app_label == slack_label;
            vec![
                Some(t.user_id.clone()),
                Some(t.app_id.clone()),
                Some(t.app_label.clone()),
                slack.then(|| "slack".to_string()),
                if slack { slack_of[t.user_id.as_str()].map(str::to_string) } else { None },
                micros(Some(t.last_sso)),
            ]
        })
        .collect();
    expected.sort();
    let got = query(
        &lake,
        &format!(
            "SELECT idp_user_id, app_instance_id, app_instance_label, mapped_app, mapped_account_id,
                    CAST(CAST(last_sso_at AS BIGINT) AS VARCHAR) AS t
             FROM sso_last_seen WHERE dt = DATE '{day}' AND idp = 'okta' ORDER BY 1, 2, 3, 4, 5, 6"
        ),
    );
    assert!(expected.len() > 100, "{}", expected.len());
    assert_eq!(got, expected);

    // Slack accounts whose last use only Okta proves (the Free plan has no Slack evidence): each
    // person's last SSO into the Slack instance, for their Slack account.
    let mut slack_expected: BTreeMap<String, i64> = BTreeMap::new();
    for t in truth.slack_sso.values() {
        let id = t.slack_user_id.clone().expect("only people with a Slack account SSO into it");
        let e = slack_expected.entry(id).or_insert(i64::MIN);
        *e = (*e).max(t.last_sso.timestamp_micros());
    }
    let slack_got: BTreeMap<String, i64> = query(
        &lake,
        &format!(
            "SELECT account_id, CAST(CAST(last_seen_at AS BIGINT) AS VARCHAR) AS t, last_seen_source FROM last_seen
             WHERE dt = DATE '{day}' AND app = 'slack' AND last_seen_at IS NOT NULL"
        ),
    )
    .into_iter()
    .map(|r| {
        assert_eq!(r[2].as_deref(), Some("okta_sso"), "{r:?}");
        (r[0].clone().unwrap(), r[1].as_ref().unwrap().parse().unwrap())
    })
    .collect();
    assert!(slack_expected.len() > 20, "{}", slack_expected.len());
    assert_eq!(slack_got, slack_expected);

    // Okta users: last use is the last successful session start in the window, or lastLogin
    // when older; dormant users are the live, human ones not seen in 30 days.
    let last_use: BTreeMap<String, Option<String>> =
        truth.users.iter().map(|u| (u.id.clone(), micros(u.last_session_start.max(u.last_login)))).collect();
    let okta_got: BTreeMap<String, Option<String>> = query(
        &lake,
        &format!(
            "SELECT account_id, CAST(CAST(last_seen_at AS BIGINT) AS VARCHAR) AS t FROM last_seen
             WHERE dt = DATE '{day}' AND app = 'okta' AND listed"
        ),
    )
    .into_iter()
    .map(|r| (r[0].clone().unwrap(), r[1].clone()))
    .collect();
    assert_eq!(okta_got, last_use);
    let cutoff = today() - chrono::Duration::days(30);
    let mut dormant_expected: Vec<String> = truth
        .users
        .iter()
        .filter(|u| !matches!(u.status, UserStatus::Suspended | UserStatus::Deprovisioned) && u.kind != "service")
        .filter(|u| u.last_session_start.max(u.last_login).is_none_or(|t| t.date_naive() <= cutoff))
        .map(|u| u.id.clone())
        .collect();
    dormant_expected.sort();
    let mut dormant_got: Vec<String> =
        report(&lake, "dormant", &ReportParams { days: Some(30), ..params("okta", 30) }, &["account_id"])
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
    dormant_got.sort();
    assert!(dormant_expected.len() > 5, "{dormant_expected:?}");
    assert_eq!(dormant_got, dormant_expected);
}
