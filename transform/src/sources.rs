//! The derived layer's per-app SQL, discovered by `build.rs`: the evidence sources
//! (`sql/evidence/*.sql`, each with an `@app`, `@table` and `@priority` header) and each app's
//! account rows (`sql/accounts/<app>.sql`, with the `@table` of the app's account snapshot), and
//! each identity provider's single sign-ons (`sql/sso/<idp>.sql`, with the `@table` it reads).
//! Adding evidence, an app's accounts or an IdP's sign-ons is adding a file; no code names an app.

use chrono::NaiveDate;
use lastseen_lake::Snapshot;

/// One evidence source: the app whose accounts it speaks for, the raw table it reads and its SQL.
#[derive(Debug)]
pub struct EvidenceSource {
    /// The file name (`sql/evidence/<name>.sql`).
    pub name: &'static str,
    /// `-- @app`: the app whose accounts it covers (its rows carry their own `app` column).
    pub app: &'static str,
    /// `-- @table`: the raw table it reads; its partitions decide which days are re-derived.
    pub table: &'static str,
    /// `-- @snapshot` (optional): a snapshot table whose days the file maps its events through
    /// (e.g. an IdP's users snapshot, to find the person behind an event). The file then also
    /// gets `$snap_from` and `$snap_to`, static bounds for every snapshot table it reads: the
    /// newest day of that table on or before `$from` (else its oldest day) and the later of
    /// `$to` and that day, so it prunes partitions instead of scanning every snapshot; an empty
    /// range (`$snap_from` after `$snap_to`) when the table has no partition.
    pub snapshot: Option<&'static str>,
    pub sql: &'static str,
    /// `-- @priority`: breaks ties on the latest time within a day (finest-grained first).
    pub priority: i32,
}

impl EvidenceSource {
    /// The parameters of this source's SQL for the days `from ..= to`.
    pub fn params(
        &self,
        snapshot: &Snapshot,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<(&'static str, datafusion::common::ScalarValue)> {
        let date = lastseen_lake::catalog::date_scalar;
        let mut out = vec![("from", date(from)), ("to", date(to))];
        if let Some(table) = self.snapshot {
            let days =
                snapshot.table(table).map(|t| t.partitions.keys().copied().collect::<Vec<_>>()).unwrap_or_default();
            let (snap_from, snap_to) =
                match days.iter().copied().rfind(|d| *d <= from).or_else(|| days.first().copied()) {
                    Some(first) => (first, to.max(first)),
                    None => (to.succ_opt().unwrap_or(to), to),
                };
            out.push(("snap_from", date(snap_from)));
            out.push(("snap_to", date(snap_to)));
        }
        out
    }
}

/// One app's account rows for a snapshot day (`$dt`), in the column order of `accounts`.
#[derive(Debug)]
pub struct AccountSource {
    /// The file name (`sql/accounts/<app>.sql`), which is the app.
    pub app: &'static str,
    /// `-- @table`: the app's account snapshot table; a day without a partition of it has no
    /// accounts of the app.
    pub table: &'static str,
    pub sql: &'static str,
}

/// One identity provider's single sign-ons into app instances, per day of `$from ..= $to`, in
/// the column order of [`crate::sso::SSO_SCHEMA`] (`sso_last_seen` folds them).
#[derive(Debug)]
pub struct SsoSource {
    /// The file name (`sql/sso/<idp>.sql`), which is the IdP: an app whose accounts are its users.
    pub idp: &'static str,
    /// `-- @table`: the raw table it reads; its partitions decide which days are re-derived.
    pub table: &'static str,
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/sources.rs"));

/// The apps the lake has collected accounts of on or before `until`: their account snapshot
/// table has a partition then. Each run day needs a snapshot of every one of them.
pub fn present_apps(snapshot: &Snapshot, until: NaiveDate) -> Vec<&'static AccountSource> {
    ACCOUNT_SOURCES
        .iter()
        .filter(|a| snapshot.table(a.table).is_some_and(|t| t.partitions.range(..=until).next().is_some()))
        .collect()
}

/// The apps whose account snapshot has a partition on `d`.
pub fn apps_on(snapshot: &Snapshot, d: NaiveDate) -> Vec<&'static AccountSource> {
    ACCOUNT_SOURCES.iter().filter(|a| snapshot.partition(a.table, d).is_some()).collect()
}

/// The accounts SQL of `apps`: their files' rows, one after the other (`$dt` bound by the caller).
pub fn accounts_sql(apps: &[&AccountSource]) -> String {
    if let [one] = apps {
        return one.sql.to_string();
    }
    apps.iter().map(|a| format!("SELECT * FROM (\n{}\n)", a.sql)).collect::<Vec<_>>().join("\nUNION ALL\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_file_is_registered_with_its_header() {
        let files = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .map(|p| p.file_stem().unwrap().to_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(EVIDENCE.iter().map(|e| e.name.to_string()).collect::<Vec<_>>(), files("sql/evidence"));
        assert_eq!(ACCOUNT_SOURCES.iter().map(|a| a.app.to_string()).collect::<Vec<_>>(), files("sql/accounts"));
        assert_eq!(SSO_SOURCES.iter().map(|a| a.idp.to_string()).collect::<Vec<_>>(), files("sql/sso"));
        for s in SSO_SOURCES {
            assert!(
                lastseen_lake::catalog::table(s.table).is_ok(),
                "sso {}: @table {} is not a lake table",
                s.idp,
                s.table
            );
        }
        let access = EVIDENCE.iter().find(|e| e.name == "access_logs").unwrap();
        assert_eq!((access.app, access.table, access.priority), ("slack", "slack_access_logs", 1));
        for e in EVIDENCE {
            assert!(
                lastseen_lake::catalog::table(e.table).is_ok(),
                "{}: @table {} is not a lake table",
                e.name,
                e.table
            );
        }
        for a in ACCOUNT_SOURCES {
            assert!(
                lastseen_lake::catalog::table(a.table).is_ok(),
                "{}: @table {} is not a lake table",
                a.app,
                a.table
            );
        }
    }

    #[test]
    fn snapshot_bounds_cover_every_mapping_day_of_the_window() {
        use lastseen_lake::{PartitionState, TableState};
        let d = |n: u32| NaiveDate::from_ymd_opt(2026, 3, n).unwrap();
        let part = || PartitionState {
            files: Vec::new(),
            rows: 3,
            run_id: "r".into(),
            committed_at: chrono::DateTime::UNIX_EPOCH,
            version: 1,
        };
        let src = EVIDENCE.iter().find(|e| e.snapshot.is_some()).expect("okta_sso_slack declares @snapshot");
        let table = src.snapshot.unwrap();
        let bounds = |snap: &Snapshot, from: u32, to: u32| -> (String, String) {
            let p = src.params(snap, d(from), d(to));
            assert_eq!(p.len(), 4);
            (p[2].1.to_string(), p[3].1.to_string())
        };
        let s = |n: u32| lastseen_lake::catalog::date_scalar(d(n)).to_string();
        let mut snap = Snapshot::default();
        // No snapshot at all: an empty range.
        assert_eq!(bounds(&snap, 5, 6), (s(7), s(6)));
        snap.tables.insert(
            table.into(),
            TableState { schema_version: 1, partitions: [(d(10), part()), (d(20), part())].into_iter().collect() },
        );
        // Before every snapshot (a backfilled window): the oldest snapshot.
        assert_eq!(bounds(&snap, 1, 3), (s(10), s(10)));
        // A daily run, and a window spanning snapshots: from the newest one on or before $from.
        assert_eq!(bounds(&snap, 20, 20), (s(20), s(20)));
        assert_eq!(bounds(&snap, 15, 25), (s(10), s(25)));
    }

    #[test]
    fn an_app_is_needed_from_its_first_snapshot_on_and_apps_are_unioned() {
        use lastseen_lake::{PartitionState, TableState};
        let d = |n: u32| NaiveDate::from_ymd_opt(2026, 3, n).unwrap();
        let part = PartitionState {
            files: Vec::new(),
            rows: 3,
            run_id: "r".into(),
            committed_at: chrono::DateTime::UNIX_EPOCH,
            version: 1,
        };
        let mut snap = Snapshot::default();
        snap.tables.insert(
            "slack_users".into(),
            TableState { schema_version: 3, partitions: [(d(5), part)].into_iter().collect() },
        );
        assert!(present_apps(&snap, d(4)).is_empty(), "nothing collected before day 5");
        assert_eq!(present_apps(&snap, d(6)).iter().map(|a| a.app).collect::<Vec<_>>(), ["slack"]);
        assert!(apps_on(&snap, d(6)).is_empty(), "day 6 has no snapshot: the run day is refused");
        // One app: its file as it is; two: each file, one after the other.
        let slack = ACCOUNT_SOURCES.iter().find(|a| a.app == "slack").unwrap();
        assert_eq!(accounts_sql(&apps_on(&snap, d(5))), slack.sql);
        let other = AccountSource { app: "other", table: "other_users", sql: "SELECT 2 AS x -- a trailing comment" };
        let two = accounts_sql(&[slack, &other]);
        assert!(two.ends_with("SELECT * FROM (\nSELECT 2 AS x -- a trailing comment\n)"), "{two}");
        assert_eq!(two.matches("\nUNION ALL\n").count(), 1, "{two}");
    }
}
