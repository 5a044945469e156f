//! Known-answer tests of the reports (`query/reports/*.sql`): each report run by the binary over
//! daily runs against the simulator equals what the simulator's own model says (account ids,
//! flags, counts), at two thresholds and two as-of dates.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use lastseen_slack_sim::{GroundTruth, Plan};
use serde_json::Value;

use crate::support::{Env, end_of, parse_json_lines, today};

/// An organisation with the HR export configured (alias domain included), run on the three
/// days ending today.
fn env_with_runs(users: usize, seed: u64) -> Env {
    let env = Env::start(users, Plan::Pro, seed);
    env.configure_identities(|c| c, "");
    for k in (0..3).rev() {
        env.run_day_ok(today() - Duration::days(k));
    }
    env
}

fn report(env: &Env, name: &str, args: &[&str]) -> Vec<Value> {
    let out = env.cmd().args(["report", name, "--format", "json"]).args(args).output().unwrap();
    assert!(out.status.success(), "report {name} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    parse_json_lines(&out.stdout)
}

fn ids(rows: &[Value]) -> BTreeSet<String> {
    rows.iter().map(|r| r["account_id"].as_str().unwrap().to_string()).collect()
}

fn by_id(rows: &[Value]) -> BTreeMap<String, &Value> {
    rows.iter().map(|r| (r["account_id"].as_str().unwrap().to_string(), r)).collect()
}

fn kind<'a>(truth: &'a GroundTruth, id: &str) -> &'a str {
    truth.accounts.iter().find(|a| a.id == id).map(|a| a.kind.as_str()).unwrap()
}

fn is_service(kind: &str) -> bool {
    matches!(kind, "bot" | "app" | "slackbot")
}

fn is_guest(kind: &str) -> bool {
    matches!(kind, "guest_multi" | "guest_single")
}

fn is_privileged(kind: &str) -> bool {
    matches!(kind, "primary_owner" | "owner" | "admin")
}

/// The as-of dates and thresholds every known-answer test runs: (as_of, --as-of argument).
fn as_of_dates() -> [(NaiveDate, Vec<String>); 2] {
    let y = today() - Duration::days(1);
    [(today(), vec![]), (y, vec!["--as-of".into(), y.to_string()])]
}

const THRESHOLDS: [u32; 2] = [7, 30];

#[test]
fn dormant_orphans_and_terminated_equal_ground_truth() {
    let env = env_with_runs(500, 31);
    for (as_of, as_of_arg) in as_of_dates() {
        let truth = env.sim().org().ground_truth(end_of(as_of));
        assert!(!truth.orphans.is_empty() && !truth.terminated_active.is_empty());
        for days in THRESHOLDS {
            let mut args = as_of_arg.clone();
            args.extend(["--days".to_string(), days.to_string()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let want = truth.dormant(days);
            let what = format!("as of {as_of}, {days} days");

            // dormant: the ids, every flag, the owner, the department and the recommendation.
            let rows = report(&env, "dormant", &args);
            assert_eq!(ids(&rows), want, "dormant {what}");
            for r in &rows {
                let id = r["account_id"].as_str().unwrap();
                let k = kind(&truth, id);
                let terminated = truth.terminated_active.contains(id);
                assert_eq!(r["orphan"], truth.orphans.contains(id), "{id} {what}");
                assert_eq!(r["owner_terminated"], terminated, "{id} {what}");
                assert_eq!(r["privileged"], is_privileged(k), "{id} {what}");
                assert_eq!(r["guest"], is_guest(k), "{id} {what}");
                assert_eq!(r["identity_id"].as_str(), truth.owners.get(id).map(String::as_str), "{id}");
                assert_eq!(r["department"].as_str(), truth.departments.get(id).map(String::as_str), "{id}");
                // Access logs cover every day on Pro: a dormant account is always revoke.
                assert_eq!(r["recommended_action"], "revoke", "{id} {what}");
                let reason = r["reason"].as_str().unwrap();
                let acc = truth.accounts.iter().find(|a| a.id == id).unwrap();
                let want_reason = if terminated {
                    "owner "
                } else if acc.invited {
                    "invitation never accepted"
                } else if acc.last_access.is_none() {
                    "never seen"
                } else {
                    "no activity in "
                };
                assert!(reason.starts_with(want_reason), "{id}: {reason} (want {want_reason}…)");
            }
            // Sorted by risk, highest first; privileged terminated owners lead when present.
            let risks: Vec<i64> = rows.iter().map(|r| r["risk"].as_i64().unwrap()).collect();
            assert!(risks.windows(2).all(|w| w[0] >= w[1]), "{risks:?}");

            // orphans: the same set whatever the threshold; `dormant` follows it.
            let rows = report(&env, "orphans", &args);
            assert_eq!(ids(&rows), truth.orphans, "orphans {what}");
            for r in &rows {
                let id = r["account_id"].as_str().unwrap();
                assert_eq!(r["dormant"], want.contains(id), "{id} {what}");
                assert_eq!(r["match_status"], "orphan");
            }

            // terminated: owner terminated on or before as_of, account still live (it takes no
            // threshold: passing --days to it is a usage error).
            let as_of_only: Vec<&str> = as_of_arg.iter().map(String::as_str).collect();
            let rows = report(&env, "terminated", &as_of_only);
            assert_eq!(ids(&rows), truth.terminated_active, "terminated {what}");
            for r in &rows {
                let id = r["account_id"].as_str().unwrap();
                assert_eq!(r["identity_id"].as_str(), truth.owners.get(id).map(String::as_str));
                let term = r["termination_date"].as_str().unwrap();
                assert!(term <= as_of.to_string().as_str(), "{id}: {term}");
            }
        }
        // The thresholds select different accounts, so comparing at both proves something.
        assert!(truth.dormant(7).len() > truth.dormant(30).len());
    }
}

#[test]
fn dormant_filters_select_exactly_their_accounts() {
    let env = env_with_runs(400, 32);
    let truth = env.sim().org().ground_truth(end_of(today()));
    let want = truth.dormant(30);
    let guests: BTreeSet<String> = want.iter().filter(|id| is_guest(kind(&truth, id))).cloned().collect();
    assert!(!guests.is_empty());
    let got = ids(&report(&env, "dormant", &["--days", "30", "--exclude-guests"]));
    assert_eq!(got, want.difference(&guests).cloned().collect());

    let bots: BTreeSet<String> =
        truth.accounts.iter().filter(|a| is_service(&a.kind) && !a.deleted).map(|a| a.id.clone()).collect();
    let rows = report(&env, "dormant", &["--days", "30", "--include-bots"]);
    assert_eq!(ids(&rows), want.union(&bots).cloned().collect());
    for id in &bots {
        assert_eq!(by_id(&rows)[id]["recommended_action"], "investigate", "{id}");
    }

    for dept in ["engineering", "SALES"] {
        let in_dept: BTreeSet<String> = want
            .iter()
            .filter(|id| truth.departments.get(*id).is_some_and(|d| d.eq_ignore_ascii_case(dept)))
            .cloned()
            .collect();
        assert!(!in_dept.is_empty(), "{dept}");
        assert_eq!(ids(&report(&env, "dormant", &["--days", "30", "--department", dept])), in_dept);
    }
    let ws = truth.team_id.clone();
    assert_eq!(ids(&report(&env, "dormant", &["--days", "30", "--workspace", &ws])), want);
    assert!(report(&env, "dormant", &["--days", "30", "--workspace", "TNOSUCH"]).is_empty());
}

#[test]
fn usage_and_seats_equal_the_simulators_activity_and_billing() {
    let env = env_with_runs(500, 33);
    let org = env.sim().org();
    let accounts = org.accounts();
    let people: BTreeSet<String> = accounts.iter().filter(|a| !is_service(&a.kind)).map(|a| a.id.clone()).collect();
    let truth = org.ground_truth(end_of(today()));
    let department = |id: &str| truth.departments.get(id).cloned().unwrap_or_else(|| "(none)".into());
    let active = |d: NaiveDate, window: i64| -> BTreeSet<String> {
        (0..window).flat_map(|k| org.active_accounts(d - Duration::days(k))).filter(|id| people.contains(id)).collect()
    };

    for (as_of, as_of_arg) in as_of_dates() {
        // A trend of 2 days ending on as_of: both days were collected by a daily run.
        let mut args = as_of_arg.clone();
        args.extend(["--days".to_string(), "2".to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let rows = report(&env, "usage", &args);
        let day_truth = org.ground_truth(end_of(as_of));
        for d in [as_of - Duration::days(1), as_of] {
            let day = d.to_string();
            let (dau, wau, mau) = (active(d, 1), active(d, 7), active(d, 30));
            assert!(!dau.is_empty() && dau.len() < wau.len() && wau.len() < mau.len(), "{day}");
            let billed = org.billable_accounts(d);
            let row = |ws: &str, dept: &str| {
                rows.iter()
                    .find(|r| r["day"] == day && r["workspace_id"] == ws && r["department"] == dept)
                    .unwrap_or_else(|| panic!("no usage row {day} {ws} {dept}"))
            };
            for (ws, dept) in [("(all)", "(all)"), (truth.team_id.as_str(), "(all)")] {
                let r = row(ws, dept);
                assert_eq!(r["accounts"].as_u64(), Some(people.len() as u64), "{day} {ws}");
                assert_eq!(r["dau"].as_u64(), Some(dau.len() as u64), "dau {day} {ws}");
                assert_eq!(r["wau"].as_u64(), Some(wau.len() as u64), "wau {day} {ws}");
                assert_eq!(r["mau"].as_u64(), Some(mau.len() as u64), "mau {day} {ws}");
                assert_eq!(r["billable_seats"].as_u64(), Some(billed.intersection(&people).count() as u64), "{day}");
                assert_eq!(r["collected"], true);
            }
            for dept in ["engineering", "support", "(none)"] {
                let r = row("(all)", dept);
                let count = |s: &BTreeSet<String>| s.iter().filter(|id| department(id) == dept).count() as u64;
                assert_eq!(r["accounts"].as_u64(), Some(count(&people)), "{day} {dept}");
                assert_eq!(r["dau"].as_u64(), Some(count(&dau)), "dau {day} {dept}");
                assert_eq!(r["wau"].as_u64(), Some(count(&wau)), "wau {day} {dept}");
                assert_eq!(r["mau"].as_u64(), Some(count(&mau)), "mau {day} {dept}");
            }
        }

        // seats as of as_of at both thresholds.
        let live: BTreeSet<String> =
            day_truth.accounts.iter().filter(|a| !a.deleted && !is_service(&a.kind)).map(|a| a.id.clone()).collect();
        let billable: BTreeSet<String> = day_truth.billable.intersection(&live).cloned().collect();
        assert_eq!(day_truth.billable, org.billable_accounts(as_of));
        for days in THRESHOLDS {
            let mut args = as_of_arg.clone();
            args.extend(["--days".to_string(), days.to_string()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let rows = report(&env, "seats", &args);
            let dormant = day_truth.dormant(days);
            let reclaimable = billable.intersection(&dormant).count() as u64;
            let org_row = &rows[0];
            assert_eq!(
                (org_row["workspace_id"].as_str(), org_row["department"].as_str()),
                (Some("(all)"), Some("(all)"))
            );
            assert_eq!(org_row["live_accounts"].as_u64(), Some(live.len() as u64));
            assert_eq!(org_row["billable_seats"].as_u64(), Some(billable.len() as u64));
            assert_eq!(org_row["dormant_accounts"].as_u64(), Some(dormant.len() as u64), "{as_of} {days}");
            assert_eq!(org_row["used_seats"].as_u64(), Some((live.len() - dormant.len()) as u64));
            assert_eq!(org_row["reclaimable_seats"].as_u64(), Some(reclaimable), "{as_of} {days}");
            assert_eq!(org_row["terminated_seats"].as_u64(), Some(day_truth.terminated_active.len() as u64));
            if days == 7 {
                // Fair Billing stops billing after ~14 idle days: only a short threshold finds
                // paid-for idle seats, so this is where the comparison has teeth.
                assert!(reclaimable > 0, "{as_of}");
            }
            let eng = rows.iter().find(|r| r["workspace_id"] == "(all)" && r["department"] == "engineering").unwrap();
            let in_eng = |s: &BTreeSet<String>| s.iter().filter(|id| department(id) == "engineering").count() as u64;
            assert_eq!(eng["live_accounts"].as_u64(), Some(in_eng(&live)));
            assert_eq!(eng["dormant_accounts"].as_u64(), Some(in_eng(&dormant)));
        }
    }
}

#[test]
fn review_recommendations_follow_the_documented_rule() {
    let env = env_with_runs(400, 34);
    let org = env.sim().org();
    for (as_of, as_of_arg) in as_of_dates() {
        let truth = org.ground_truth(end_of(as_of));
        for days in THRESHOLDS {
            let mut args = as_of_arg.clone();
            args.extend(["--days".to_string(), days.to_string()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let rows = report(&env, "review", &args);
            let live: BTreeSet<String> =
                truth.accounts.iter().filter(|a| !a.deleted && !is_service(&a.kind)).map(|a| a.id.clone()).collect();
            assert_eq!(ids(&rows), live, "{as_of} {days}");
            let dormant = truth.dormant(days);
            let mut seen = BTreeMap::new();
            for r in &rows {
                let id = r["account_id"].as_str().unwrap();
                // The rule of review.sql, from the simulator's facts alone: a terminated owner
                // or no use since the cutoff revokes; an unowned account in use is investigated.
                let want = if truth.terminated_active.contains(id) || dormant.contains(id) {
                    "revoke"
                } else if truth.orphans.contains(id) || truth.ambiguous.contains(id) {
                    "investigate"
                } else {
                    "keep"
                };
                assert_eq!(r["recommendation"], want, "{id} as of {as_of}, {days} days: {r}");
                *seen.entry(want).or_insert(0) += 1;
                assert_eq!(r["owner_identity_id"].as_str(), truth.owners.get(id).map(String::as_str), "{id}");
                // Entitlements: the department's user group of an owned member, `admins` for
                // exactly the privileged.
                let groups: Vec<&str> = r["user_groups"].as_str().unwrap_or_default().split("; ").collect();
                let k = kind(&truth, id);
                assert_eq!(groups.contains(&"admins"), is_privileged(k), "{id}: {groups:?}");
                if let Some(dept) = truth.departments.get(id) {
                    assert!(groups.contains(&format!("{dept}-team").as_str()), "{id}: {groups:?}");
                    assert_eq!(r["department"].as_str(), Some(dept.as_str()));
                }
            }
            // Every outcome occurs, so a rule that always said one thing would fail.
            assert_eq!(seen.len(), 3, "{seen:?}");
            let order: Vec<&str> = rows.iter().map(|r| r["recommendation"].as_str().unwrap()).collect();
            let rank = |s: &str| ["revoke", "investigate", "keep"].iter().position(|x| *x == s).unwrap();
            assert!(order.windows(2).all(|w| rank(w[0]) <= rank(w[1])));
        }
    }
}

#[test]
fn every_report_prints_its_sql_and_unknown_names_are_usage_errors() {
    let env = Env::start(20, Plan::Pro, 1);
    for def in lastseen_query::reports::builtin().unwrap() {
        let name = def.name.as_str();
        let out = env.cmd().args(["report", name, "--show-sql"]).output().unwrap();
        assert!(out.status.success());
        let sql = String::from_utf8_lossy(&out.stdout);
        assert!(sql.starts_with(&format!("-- {name}:")), "{name}: the header names the report");
        assert!(sql.contains("Parameters") && sql.contains("Columns"), "{name}: the header documents it");
    }
    let out = env.cmd().args(["report", "nosuch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Files of a split pack (side files left out), by name.
fn pack_files(dir: &std::path::Path, ext: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(&format!(".{ext}")))
        .collect()
}

#[test]
fn review_split_by_manager_gives_each_manager_exactly_their_peoples_accounts() {
    let env = env_with_runs(400, 35);
    let org = env.sim().org();
    let truth = org.ground_truth(end_of(today()));
    // Identity → its manager's e-mail, read from the simulator's own HR export.
    let csv = org.identities_csv();
    let manager_of: BTreeMap<&str, String> =
        csv.lines().skip(1).map(|l| l.split(',').collect::<Vec<_>>()).map(|f| (f[0], f[6].to_lowercase())).collect();
    let mut want: BTreeMap<Option<String>, BTreeSet<String>> = BTreeMap::new();
    for a in truth.accounts.iter().filter(|a| !a.deleted && !is_service(&a.kind)) {
        let manager = truth.owners.get(&a.id).and_then(|i| manager_of.get(i.as_str())).filter(|m| !m.is_empty());
        want.entry(manager.cloned()).or_default().insert(a.id.clone());
    }
    assert!(want.len() > 10 && want.contains_key(&None), "a test org with managers and unmanaged accounts");

    let whole = report(&env, "review", &["--days", "30"]);
    let recommendation: BTreeMap<String, Value> =
        whole.iter().map(|r| (r["account_id"].as_str().unwrap().to_string(), r["recommendation"].clone())).collect();
    let dir = env.dir.path().join("pack");
    let out = env
        .cmd()
        .args(["report", "review", "--days", "30", "--split-by", "manager", "--format", "json", "--output"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let index = parse_json_lines(&std::fs::read(dir.join("index.jsonl")).unwrap());
    let files = pack_files(&dir, "jsonl");
    assert_eq!(files.len(), want.len() + 1, "one file per manager, one for no manager, and the index: {files:?}");
    let mut got: BTreeMap<Option<String>, BTreeSet<String>> = BTreeMap::new();
    for entry in &index {
        let file = entry["file"].as_str().unwrap();
        let key = entry["manager_email"].as_str().map(str::to_string);
        assert_eq!(file == "no-manager.jsonl", key.is_none(), "{entry}");
        let rows = parse_json_lines(&std::fs::read(dir.join(file)).unwrap());
        assert_eq!(entry["accounts"], rows.len(), "{file}");
        for rec in ["revoke", "investigate", "keep"] {
            assert_eq!(entry[rec], rows.iter().filter(|r| r["recommendation"] == rec).count(), "{file} {rec}");
        }
        for r in &rows {
            let id = r["account_id"].as_str().unwrap().to_string();
            assert_eq!(r["manager_email"].as_str().map(str::to_lowercase), key, "{file}: {r}");
            assert_eq!(r["recommendation"], recommendation[&id], "{id}: the part says what the whole report says");
        }
        // Each part keeps the report's order: revoke, investigate, keep.
        let rank = |r: &Value| ["revoke", "investigate", "keep"].iter().position(|x| r["recommendation"] == *x);
        assert!(rows.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])), "{file}");
        let provenance: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{file}.provenance.json"))).unwrap()).unwrap();
        let params = provenance["parameters"].as_array().unwrap();
        let manager_param = params.iter().find(|p| p["name"] == "manager_email").unwrap();
        assert_eq!(manager_param["value"].as_str(), Some(key.as_deref().unwrap_or("(none)")));
        got.insert(key, rows.iter().map(|r| r["account_id"].as_str().unwrap().to_string()).collect());
    }
    assert_eq!(got, want, "each manager's file lists exactly the accounts of the people they manage");
    assert_eq!(
        files,
        index.iter().map(|e| e["file"].as_str().unwrap().to_string()).chain(["index.jsonl".into()]).collect()
    );

    // A second pack into the same folder is refused before anything is written.
    let before = pack_files(&dir, "jsonl");
    let again = env
        .cmd()
        .args(["report", "review", "--days", "30", "--split-by", "manager", "--format", "csv", "--output"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
    assert_eq!(pack_files(&dir, "jsonl"), before);
    assert!(pack_files(&dir, "csv").is_empty());

    // The HTML pack's index links every part, and a report without managers cannot be split.
    let html = env.dir.path().join("html-pack");
    let out = env
        .cmd()
        .args(["report", "review", "--days", "30", "--split-by", "manager", "-f", "html", "-o"])
        .arg(&html)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let index_html = std::fs::read_to_string(html.join("index.html")).unwrap();
    for f in pack_files(&html, "html").iter().filter(|f| *f != "index.html") {
        assert!(index_html.contains(&format!("<a href=\"{f}\">")), "{f} not linked");
    }
    let out = env
        .cmd()
        .args(["report", "usage", "--split-by", "manager", "-o"])
        .arg(env.dir.path().join("u"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no `manager_email` column"));
    assert!(!env.dir.path().join("u").exists());
}
