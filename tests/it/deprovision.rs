//! The access-review loop against the simulator over real HTTP: daily run → review export →
//! filled-in decisions → import → plan (guards read live) → approve → apply (journaled,
//! resumable) → the next daily run sees exactly those accounts deactivated; undo; the guards
//! one by one; the cap; an edited or expired plan; the write budget under Slack's real limits.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::NaiveDate;
use lastseen_slack_sim::{FaultKind, FaultRule, FaultWhen, OrgSpec, Plan, RateLimits, SimConfig};
use serde_json::Value;

use crate::support::{Env, end_of, http_get, parse_json_lines, today};

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The deployment's environment for one plan: the simulator's Web API (or GovSlack's) and the
/// token that may write SCIM (on Grid, the org-wide install's).
struct Ctx<'a> {
    env: &'a Env,
    token: String,
    extra: Vec<(&'static str, String)>,
}

impl<'a> Ctx<'a> {
    fn new(env: &'a Env) -> Ctx<'a> {
        let token = env.sim().org_token().unwrap_or(env.sim().user_token()).to_owned();
        Ctx { env, token, extra: Vec::new() }
    }

    fn cmd(&self) -> assert_cmd::Command {
        let mut c = self.env.cmd();
        c.env("SLACK_TOKEN", &self.token);
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    fn path(&self, name: &str) -> PathBuf {
        self.env.dir.path().join(name)
    }

    fn run_day(&self, d: NaiveDate) {
        self.env.sim().set_now(end_of(d));
        let out = self.cmd().args(["run", "--date", &d.to_string()]).output().unwrap();
        ok(&out, &format!("run {d}"));
    }

    /// `report review` as CSV (with its provenance side file); returns the rows.
    fn export_review(&self, days: u32, file: &str) -> (PathBuf, Vec<BTreeMap<String, String>>) {
        let path = self.path(file);
        let out = self
            .cmd()
            .args(["report", "review", "--days", &days.to_string(), "--include-bots", "--format", "csv", "--output"])
            .arg(&path)
            .output()
            .unwrap();
        ok(&out, "review export");
        let rows = read_csv(&path);
        (path, rows)
    }

    /// `report review` as JSON on day `d`, by account.
    fn review_rows(&self, d: NaiveDate) -> BTreeMap<String, Value> {
        let out = self
            .cmd()
            .args(["report", "review", "--days", "30", "--as-of", &d.to_string(), "--format", "json"])
            .output()
            .unwrap();
        parse_json_lines(ok(&out, "review").as_bytes())
            .into_iter()
            .map(|r| (r["account_id"].as_str().unwrap().to_owned(), r))
            .collect()
    }

    fn import(&self, file: &Path) -> Output {
        self.cmd().args(["review", "import"]).arg(file).output().unwrap()
    }

    fn plan(&self, args: &[&str]) -> (Output, PathBuf) {
        let path = self.path("plan.json");
        let out = self.cmd().args(["deprovision", "plan", "--out"]).arg(&path).args(args).output().unwrap();
        (out, path)
    }

    fn approve(&self, plan: &Path, approver: &str) -> PathBuf {
        let out =
            self.cmd().args(["deprovision", "approve"]).arg(plan).args(["--approver", approver]).output().unwrap();
        ok(&out, "approve");
        plan.with_file_name(format!("{}.approved.json", plan.file_stem().unwrap().to_string_lossy()))
    }

    fn apply(&self, verb: &str, approved: &Path, args: &[&str]) -> (Output, Vec<Value>) {
        let out = self.cmd().args(["deprovision", verb]).arg(approved).args(args).output().unwrap();
        let lines = parse_json_lines(&out.stdout);
        (out, lines)
    }

    fn sql(&self, q: &str) -> Vec<Value> {
        let out = self.cmd().args(["sql", q, "--format", "json"]).output().unwrap();
        parse_json_lines(ok(&out, "sql").as_bytes())
    }

    fn deactivated(&self, d: NaiveDate) -> BTreeSet<String> {
        let q = format!("SELECT account_id FROM accounts WHERE dt = DATE '{d}' AND status = 'deactivated'");
        self.sql(&q).iter().map(|r| r["account_id"].as_str().unwrap().to_owned()).collect()
    }
}

fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    r.records().map(|rec| header.iter().cloned().zip(rec.unwrap().iter().map(str::to_owned)).collect()).collect()
}

/// Writes the reviewer's decisions into the export in place: `decisions` maps an account to
/// (decision, decided_by); every other row keeps the proposal.
fn fill(path: &Path, decisions: &BTreeMap<String, (&str, &str)>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let records: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let (acc, dec, by) = (
        header.iter().position(|h| h == "account_id").unwrap(),
        header.iter().position(|h| h == "decision").unwrap(),
        header.iter().position(|h| h == "decided_by").unwrap(),
    );
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(&header).unwrap();
    for rec in records {
        let mut cells: Vec<String> = rec.iter().map(str::to_owned).collect();
        if let Some((d, who)) = decisions.get(&cells[acc]) {
            cells[dec] = (*d).to_owned();
            cells[by] = (*who).to_owned();
        }
        w.write_record(&cells).unwrap();
    }
    w.flush().unwrap();
}

fn ids_of(
    rows: &[BTreeMap<String, String>],
    pred: impl Fn(&BTreeMap<String, String>) -> bool,
    n: usize,
) -> Vec<String> {
    rows.iter().filter(|r| pred(r)).map(|r| r["account_id"].clone()).take(n).collect()
}

fn revoke_all(ids: &[String]) -> BTreeMap<String, (&'static str, &'static str)> {
    ids.iter().map(|id| (id.clone(), ("revoke", "alice@example.com"))).collect()
}

fn plan_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Per account in the plan: planned or not, and the guards that refused or warned.
fn verdicts(plan: &Value) -> BTreeMap<String, (bool, BTreeSet<String>, BTreeSet<String>)> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let of = |v: &str| -> BTreeSet<String> {
                a["guards"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|g| g["verdict"] == v)
                    .map(|g| g["guard"].as_str().unwrap().to_owned())
                    .collect()
            };
            (a["account_id"].as_str().unwrap().to_owned(), (a["planned"].as_bool().unwrap(), of("refuse"), of("warn")))
        })
        .collect()
}

fn outcomes(lines: &[Value]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter(|l| l.get("account_id").is_some())
        .map(|l| (l["account_id"].as_str().unwrap().to_owned(), l["outcome"].as_str().unwrap().to_owned()))
        .collect()
}

fn is_revoke_member(r: &BTreeMap<String, String>) -> bool {
    r["recommendation"] == "revoke" && r["account_type"] == "member" && r["status"] == "active"
}

fn external_id(env: &Env, token: &str, id: &str) -> String {
    let (status, body) = http_get(env.sim().addr(), &format!("/scim/v2/Users/{id}"), Some(token));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["externalId"].as_str().unwrap_or_default().to_owned()
}

/// The review's plan joins the imported decisions (and journal) to the day's accounts by
/// building the hash table from the decisions alone: no hash repartition of the accounts' ~40
/// columns (what a `Partitioned` join does; with 500,000 accounts a copy of every row). That
/// `CollectLeft` right join is then the query engine's `LookupJoinExec`, which passes the
/// accounts' columns through instead of copying them (query/src/lookup.rs).
fn assert_review_joins_from_the_small_side(ctx: &Ctx<'_>, day: NaiveDate) {
    let mut sql = lastseen_query::reports::find("review").unwrap().query;
    for (name, value) in [
        ("$as_of", format!("DATE '{day}'")),
        ("$cutoff", format!("DATE '{}'", day - chrono::Duration::days(30))),
        ("$days", "30".into()),
        ("$app", "CAST(NULL AS VARCHAR)".into()),
        ("$workspace", "CAST(NULL AS VARCHAR)".into()),
        ("$department", "CAST(NULL AS VARCHAR)".into()),
        ("$exclude_guests", "false".into()),
        ("$include_bots", "false".into()),
    ] {
        sql = sql.replace(name, &value);
    }
    let rows = ctx.sql(&format!("EXPLAIN {sql}"));
    let plan = rows
        .iter()
        .find(|r| r["plan_type"] == "physical_plan")
        .and_then(|r| r["plan"].as_str())
        .expect("EXPLAIN shows the physical plan")
        .to_owned();
    assert!(plan.contains("LookupJoinExec: join_type=Right, on=[(history_account_id@0, account_id@"), "{plan}");
    assert!(!plan.contains("HashJoinExec"), "{plan}");
}

/// The whole loop on one plan: Business+ or Grid.
fn whole_loop(plan: Plan, seed: u64) {
    let env = Env::start(300, plan, seed);
    let ctx = Ctx::new(&env);
    let (day, next) = (today().pred_opt().unwrap(), today());
    ctx.run_day(day);
    let (csv, rows) = ctx.export_review(30, "review.csv");
    let chosen = ids_of(&rows, is_revoke_member, 8);
    assert_eq!(chosen.len(), 8, "the organisation has dormant members to revoke");
    let keep = ids_of(&rows, |r| r["recommendation"] == "keep", 2);
    let mut decisions = revoke_all(&chosen);
    for k in &keep {
        decisions.insert(k.clone(), ("keep", "bob"));
    }
    fill(&csv, &decisions);
    let imported = ok(&ctx.import(&csv), "import");
    assert!(imported.contains("imported 10 decision(s)") && imported.contains("8 revoke, 2 keep"), "{imported}");
    let stored =
        ctx.sql("SELECT account_id, decision, decided_by, source_line FROM review_decisions ORDER BY account_id");
    assert_eq!(stored.len(), 10);
    assert!(stored.iter().all(|r| r["source_line"].as_i64().unwrap() > 1));
    // The review now shows the decisions as pending.
    let review = ctx.review_rows(day);
    assert_review_joins_from_the_small_side(&ctx, day);
    for id in &chosen {
        let prev = review[id]["previous_decision"].as_str().unwrap();
        assert!(prev.starts_with("revoke by alice@example.com (imported "), "{prev}");
        assert!(review[id]["action_status"].is_null());
    }

    let (out, plan_path) = ctx.plan(&[]);
    ok(&out, "plan");
    let plan_v = plan_json(&plan_path);
    let v = verdicts(&plan_v);
    assert_eq!(v.keys().cloned().collect::<BTreeSet<_>>(), chosen.iter().cloned().collect());
    for id in &chosen {
        let (planned, refused, warned) = &v[id];
        assert!(*planned && refused.is_empty(), "{id}: {refused:?}");
        // Warned exactly when the IdP manages the account.
        let idp = !external_id(&env, &ctx.token, id).is_empty();
        assert_eq!(warned.contains("not_idp_managed"), idp, "{id}");
    }
    assert_eq!(plan_v["actions"][0]["call"]["body"]["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:PatchOp");
    // Planning wrote nothing to Slack.
    assert!(env.sim().scim_write_log().is_empty());

    let approved = ctx.approve(&plan_path, "carol");
    // Dry-run by default: reads only.
    let (out, lines) = ctx.apply("apply", &approved, &[]);
    ok(&out, "dry-run");
    assert_eq!(outcomes(&lines).values().filter(|o| *o == "would_apply").count(), 8);
    assert!(env.sim().scim_write_log().is_empty());

    // Killed right after Slack answered the 3rd call, before its outcome was journaled.
    let mut child = ctx
        .env
        .std_cmd()
        .env("SLACK_TOKEN", &ctx.token)
        .env("LASTSEEN_TEST_FAILPOINT", "deprovision_after_call:pause")
        .args(["deprovision", "apply", "--execute"])
        .arg(&approved)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let reached =
        stderr.lines().map_while(Result::ok).any(|l| l.contains("failpoint `deprovision_after_call` reached"));
    assert!(reached);
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    assert_eq!(env.sim().scim_write_log().len(), 1, "the first call went out, then the process died");

    let (out, lines) = ctx.apply("apply", &approved, &["--execute"]);
    ok(&out, "apply after the crash");
    // The token is in no file and no output of the loop.
    for text in [
        std::fs::read_to_string(&plan_path).unwrap(),
        std::fs::read_to_string(&approved).unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ] {
        assert!(!text.contains(&ctx.token), "the token leaked");
    }
    let o = outcomes(&lines);
    assert_eq!(o.values().filter(|x| *x == "done").count(), 8, "{o:?}");
    // Exactly one write per account, the interrupted one settled by a read.
    for id in &chosen {
        assert_eq!(env.sim().scim_writes(id), 1, "{id}");
    }
    assert_eq!(env.sim().scim_write_log().len(), 8);
    // A third run changes nothing.
    let (out, lines) = ctx.apply("apply", &approved, &["--execute"]);
    ok(&out, "re-apply");
    assert!(outcomes(&lines).values().all(|x| x == "already_done"));
    assert_eq!(env.sim().scim_write_log().len(), 8);

    // The review of that day shows them applied.
    let review = ctx.review_rows(day);
    for id in &chosen {
        let status = review[id]["action_status"].as_str().unwrap();
        assert!(status.starts_with("deactivate: done ("), "{status}");
    }
    // The next daily run: exactly those accounts newly deactivated, and no longer billable.
    let before = ctx.deactivated(day);
    ctx.run_day(next);
    let after = ctx.deactivated(next);
    let newly: BTreeSet<String> = after.difference(&before).cloned().collect();
    assert_eq!(newly, chosen.iter().cloned().collect());
    // Deactivated accounts stay listed (users.list `deleted: true`): the users snapshot does not
    // shrink, so the mass-change guard (a row-count drop) has nothing to refuse.
    let users =
        |d: NaiveDate| ctx.sql(&format!("SELECT count(*) AS n FROM slack_users WHERE dt = DATE '{d}'"))[0]["n"].clone();
    assert_eq!(users(day), users(next));
    let billable = ctx.sql(&format!(
        "SELECT count(*) AS n FROM accounts WHERE dt = DATE '{next}' AND billable AND account_id IN ({})",
        chosen.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(",")
    ));
    assert_eq!(billable[0]["n"], 0);

    // The audit report lists each once, done, with the approver and the reviewer's decision.
    let out = ctx.cmd().args(["report", "deprovisioned", "--format", "json"]).output().unwrap();
    let report = parse_json_lines(ok(&out, "deprovisioned report").as_bytes());
    assert_eq!(report.len(), 8);
    for r in &report {
        assert_eq!(r["outcome"], "done");
        assert_eq!(r["approvers"], "carol");
        assert!(r["evidence"].as_str().unwrap().contains("alice@example.com"), "{r}");
    }

    // Undo restores them, once each.
    let (out, lines) = ctx.apply("undo", &approved, &["--execute"]);
    ok(&out, "undo");
    assert_eq!(outcomes(&lines).values().filter(|x| *x == "done").count(), 8);
    for id in &chosen {
        assert_eq!(env.sim().scim_writes(id), 2, "{id}");
        let (_, body) = http_get(env.sim().addr(), &format!("/scim/v2/Users/{id}"), Some(&ctx.token));
        assert!(body.contains("\"active\":true"), "{body}");
    }
    let writes = env.sim().scim_write_log();
    assert!(writes[8..].iter().all(|w| w.active && w.method == "PATCH" && w.version == "v2"));
}

#[test]
fn business_plus_review_to_deactivation_survives_a_kill_and_undoes() {
    whole_loop(Plan::BusinessPlus, 1501);
}

#[test]
fn grid_review_to_deactivation_with_the_org_install() {
    whole_loop(Plan::Enterprise, 1502);
}

/// A Business+ lake with one daily run and a filled-in review: the plan command's output.
fn planned(seed: u64, pick: impl Fn(&[BTreeMap<String, String>]) -> Vec<String>, plan_args: &[&str]) -> (Env, Value) {
    let env = Env::start(300, Plan::BusinessPlus, seed);
    let plan = {
        let ctx = Ctx::new(&env);
        ctx.run_day(today().pred_opt().unwrap());
        let (csv, rows) = ctx.export_review(30, "review.csv");
        let ids = pick(&rows);
        assert!(!ids.is_empty());
        fill(&csv, &revoke_all(&ids));
        ok(&ctx.import(&csv), "import");
        let (out, path) = ctx.plan(plan_args);
        ok(&out, "plan");
        plan_json(&path)
    };
    (env, plan)
}

fn refused_by(plan: &Value, id: &str) -> BTreeSet<String> {
    let v = verdicts(plan);
    let (planned, refused, _) = &v[id];
    assert!(!planned, "{id} must not be planned");
    refused.clone()
}

#[test]
fn guard_refuses_owners_and_admins_unless_allowed() {
    let pick = |rows: &[BTreeMap<String, String>]| {
        let mut ids = ids_of(rows, |r| r["account_type"] == "owner", 1);
        ids.extend(ids_of(rows, |r| r["account_type"] == "admin", 1));
        ids
    };
    let (_env, plan) = planned(1503, pick, &[]);
    for a in plan["actions"].as_array().unwrap() {
        let id = a["account_id"].as_str().unwrap();
        assert!(refused_by(&plan, id).contains("not_privileged"), "{a}");
    }
    // Allowed: planned, but marked for a second approver.
    let (env, plan) = planned(1503, pick, &["--allow-privileged"]);
    for a in plan["actions"].as_array().unwrap() {
        assert_eq!(a["planned"], true, "{a}");
        assert_eq!(a["privileged"], true);
    }
    let ctx = Ctx::new(&env);
    let approved = ctx.approve(&ctx.path("plan.json"), "carol");
    let (out, lines) = ctx.apply("apply", &approved, &["--execute"]);
    ok(&out, "apply with one approver");
    assert!(outcomes(&lines).values().all(|o| o == "skipped"), "{lines:?}");
    assert!(env.sim().scim_write_log().is_empty());
    // The same person cannot approve twice; a second person can.
    let again =
        ctx.cmd().args(["deprovision", "approve"]).arg(&approved).args(["--approver", "Carol"]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    let out = ctx
        .cmd()
        .args(["deprovision", "approve"])
        .arg(&approved)
        .args(["--approver", "dave", "-o"])
        .arg(ctx.path("two.json"))
        .output()
        .unwrap();
    ok(&out, "second approval");
    // Skipped actions are re-checked on the next apply: now both approvals are there.
    let (out, lines) = ctx.apply("apply", &ctx.path("two.json"), &["--execute"]);
    // Slack itself refuses to deactivate an owner over SCIM: that one fails (exit 3), the
    // admin is deactivated.
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let o = outcomes(&lines);
    let role = |who: &str| {
        let a = plan["actions"].as_array().unwrap().iter().find(|a| a["guards"].to_string().contains(who)).unwrap();
        a["account_id"].as_str().unwrap().to_owned()
    };
    let (owner, admin) = (role("an owner"), role("an admin"));
    let (owner, admin) = (owner.as_str(), admin.as_str());
    assert_eq!((o[owner].as_str(), o[admin].as_str()), ("failed", "done"), "{lines:?}");
    assert!(lines.iter().any(|l| l["detail"].as_str().is_some_and(|d| d.contains("cannot_modify_owner"))), "{lines:?}");
    assert_eq!(env.sim().scim_writes(admin), 1);
}

#[test]
fn guard_refuses_the_primary_owner_and_the_tokens_own_user() {
    let (env, plan) = planned(1504, |rows| ids_of(rows, |r| r["account_type"] == "primary_owner", 1), &[]);
    let token_user = plan["target"]["token_user"].as_str().unwrap().to_owned();
    let id = plan["actions"][0]["account_id"].as_str().unwrap().to_owned();
    let refused = refused_by(&plan, &id);
    assert!(refused.contains("not_primary_owner"), "{refused:?}");
    // The simulator's owner token belongs to the primary owner: both guards hold.
    assert_eq!(token_user, id);
    assert!(refused.contains("not_token_user"), "{refused:?}");
    assert!(env.sim().scim_write_log().is_empty());
}

#[test]
fn guard_refuses_bots() {
    let (_env, plan) = planned(1505, |rows| ids_of(rows, |r| r["account_type"] == "bot", 2), &[]);
    for a in plan["actions"].as_array().unwrap() {
        let id = a["account_id"].as_str().unwrap();
        assert!(refused_by(&plan, id).contains("not_a_bot"), "{a}");
    }
}

#[test]
fn guard_refuses_a_decision_made_stale_by_later_use() {
    // Reviewed on a day with a 7-day threshold, decided, then a later daily run shows use after it.
    let env = Env::start(300, Plan::BusinessPlus, 1506);
    let ctx = Ctx::new(&env);
    let reviewed = today().checked_sub_days(chrono::Days::new(10)).unwrap();
    ctx.run_day(reviewed);
    let (csv, rows) = ctx.export_review(7, "review.csv");
    let candidates = ids_of(&rows, is_revoke_member, usize::MAX);
    // Ground truth: which of them used Slack between the review and today.
    let truth = env.sim().org().ground_truth(end_of(today()));
    let used_after: BTreeSet<String> = truth
        .accounts
        .iter()
        .filter(|a| a.last_access.is_some_and(|t| t > end_of(reviewed)))
        .map(|a| a.id.clone())
        .collect();
    let stale: Vec<String> = candidates.iter().filter(|c| used_after.contains(*c)).take(3).cloned().collect();
    let still: Vec<String> = candidates.iter().filter(|c| !used_after.contains(*c)).take(3).cloned().collect();
    assert!(!stale.is_empty() && !still.is_empty(), "the organisation has both kinds");
    fill(&csv, &revoke_all(&[stale.clone(), still.clone()].concat()));
    ok(&ctx.import(&csv), "import");
    ctx.run_day(today());
    let (out, path) = ctx.plan(&[]);
    ok(&out, "plan");
    let plan = plan_json(&path);
    for id in &stale {
        assert!(refused_by(&plan, id).contains("no_activity_after_as_of"), "{id}");
    }
    let v = verdicts(&plan);
    for id in &still {
        assert!(v[id].0, "{id} is still dormant: planned");
    }
}

#[test]
fn an_edited_or_expired_plan_is_refused() {
    let (env, _) = planned(1507, |rows| ids_of(rows, is_revoke_member, 3), &[]);
    let ctx = Ctx::new(&env);
    let plan_path = ctx.path("plan.json");
    let approved = ctx.approve(&plan_path, "carol");
    // Edited: one more account slipped into the approved plan.
    let mut v: Value = plan_json(&approved);
    let mut extra = v["plan"]["actions"][0].clone();
    extra["account_id"] = Value::from("U0000000001");
    v["plan"]["actions"].as_array_mut().unwrap().push(extra);
    let edited = ctx.path("edited.approved.json");
    std::fs::write(&edited, serde_json::to_vec(&v).unwrap()).unwrap();
    let (out, _) = ctx.apply("apply", &edited, &["--execute"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("changed after it was made"));
    // Expired: the approval's expiry moved into the past (and its hash with it is wrong too).
    let mut v: Value = plan_json(&approved);
    v["expires_at"] = Value::from("2020-01-01T00:00:00Z");
    let expired = ctx.path("expired.approved.json");
    std::fs::write(&expired, serde_json::to_vec(&v).unwrap()).unwrap();
    let (out, _) = ctx.apply("apply", &expired, &["--execute"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("approval was edited"));
    assert!(env.sim().scim_write_log().is_empty());
    // Stale: a daily run collected newer evidence after the plan was made.
    ctx.run_day(today());
    let (out, _) = ctx.apply("apply", &approved, &["--execute"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the plan is stale"));
    assert!(env.sim().scim_write_log().is_empty());
    // The untouched approval applies once the guards may re-check the newest evidence.
    let (out, lines) = ctx.apply("apply", &approved, &["--execute", "--allow-stale"]);
    ok(&out, "apply");
    assert_eq!(outcomes(&lines).values().filter(|o| *o == "done").count(), 3);
}

#[test]
fn the_cap_refuses_a_plan_over_its_share() {
    let env = Env::start(300, Plan::BusinessPlus, 1508);
    let ctx = Ctx::new(&env);
    ctx.run_day(today());
    let (out, _) = ctx.plan(&["--dormant-days", "30", "--max-share", "0.01"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("over the cap"));
    let (out, _) = ctx.plan(&["--dormant-days", "30", "--max-actions", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!ctx.path("plan.json").exists(), "no plan is written over the cap");
}

#[test]
fn govslack_sends_the_v1_body() {
    let env = Env::start(300, Plan::BusinessPlus, 1509);
    let mut ctx = Ctx::new(&env);
    ctx.extra = vec![("LASTSEEN_SLACK__GOV", "true".into()), ("LASTSEEN_SLACK__API_URL", env.sim().gov_api_url())];
    ctx.run_day(today());
    let (out, plan_path) = ctx.plan(&["--dormant-days", "30", "--max-share", "1", "--max-actions", "3"]);
    // More than 3 dormant accounts: over the count cap. Take the decision route instead.
    assert_eq!(out.status.code(), Some(2));
    let (csv, rows) = ctx.export_review(30, "review.csv");
    let chosen = ids_of(&rows, is_revoke_member, 2);
    fill(&csv, &revoke_all(&chosen));
    ok(&ctx.import(&csv), "import");
    let (out, _) = ctx.plan(&[]);
    ok(&out, "plan");
    let plan = plan_json(&plan_path);
    assert_eq!(plan["target"]["scim_version"], "v1.1");
    assert_eq!(
        plan["actions"][0]["call"]["body"],
        serde_json::json!({"schemas": ["urn:scim:schemas:core:1.0"], "active": false})
    );
    let approved = ctx.approve(&plan_path, "carol");
    let (out, lines) = ctx.apply("apply", &approved, &["--execute"]);
    ok(&out, "apply");
    assert_eq!(outcomes(&lines).values().filter(|o| *o == "done").count(), 2);
    let log = env.sim().scim_write_log();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|w| w.version == "v1" && !w.active), "{log:?}");
}

#[test]
fn single_account_disable_and_enable_go_through_the_guards_and_journal() {
    let env = Env::start(300, Plan::BusinessPlus, 1510);
    let ctx = Ctx::new(&env);
    ctx.run_day(today());
    let (_, rows) = ctx.export_review(30, "review.csv");
    let id = ids_of(&rows, is_revoke_member, 1).remove(0);
    let owner = ids_of(&rows, |r| r["account_type"] == "owner", 1).remove(0);
    let run = |verb: &str, who: &str, extra: &[&str]| {
        let out = ctx.cmd().args(["account", verb, who, "--reason", "left the company"]).args(extra).output().unwrap();
        (out.status.code(), outcomes(&parse_json_lines(&out.stdout)))
    };
    assert_eq!(run("disable", &id, &[]).1[&id], "would_apply");
    assert!(env.sim().scim_write_log().is_empty(), "dry-run by default");
    assert_eq!(run("disable", &id, &["--execute"]).1[&id], "done");
    assert_eq!(run("disable", &id, &["--execute"]).1[&id], "already_done");
    assert_eq!(run("disable", &owner, &["--execute"]).1[&owner], "skipped");
    assert_eq!(run("enable", &id, &["--execute"]).1[&id], "done");
    assert_eq!(env.sim().scim_writes(&id), 2);
    assert_eq!(env.sim().scim_writes(&owner), 0);
    let journal = ctx.sql("SELECT account_id, action, phase, outcome, reason FROM deprovision_actions ORDER BY at");
    assert!(journal.iter().all(|r| r["reason"] == "left the company"), "{journal:?}");
    assert_eq!(journal.iter().filter(|r| r["phase"] == "intent").count(), 2);
}

#[test]
fn the_write_budget_draws_no_429_under_slacks_real_limits() {
    let env = Env::start_with(SimConfig {
        org: OrgSpec::new(1511, 300, Plan::BusinessPlus, today(), 120),
        rate_limits: RateLimits::Tiers { scale: 1.0 },
        faults: Vec::new(),
        conditions: Default::default(),
    });
    let mut ctx = Ctx::new(&env);
    // The client paces itself to Slack's tiers for the daily run too.
    ctx.extra = vec![("LASTSEEN_SLACK__RATE_LIMITS__ENABLED", "true".into())];
    ctx.run_day(today());
    let (csv, rows) = ctx.export_review(30, "review.csv");
    let chosen = ids_of(&rows, is_revoke_member, 30);
    assert!(chosen.len() >= 25, "{}", chosen.len());
    fill(&csv, &revoke_all(&chosen));
    ok(&ctx.import(&csv), "import");
    let (out, plan_path) = ctx.plan(&["--max-share", "0.5"]);
    ok(&out, "plan");
    let approved = ctx.approve(&plan_path, "carol");
    let (out, lines) = ctx.apply("apply", &approved, &["--execute", "--rate", "120"]);
    ok(&out, "apply");
    let totals = lines.last().unwrap();
    assert_eq!(totals["done"], chosen.len());
    assert_eq!(totals["rate_limited"], 0, "{totals}");
    assert_eq!(env.sim().scim_write_log().len(), chosen.len());
}

#[test]
fn an_xlsx_review_is_read_back_with_its_provenance_and_bad_rows_are_named() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let env = Env::start(300, Plan::BusinessPlus, 1512);
    let ctx = Ctx::new(&env);
    ctx.run_day(today());
    let export = ctx.path("review.xlsx");
    let out = ctx
        .cmd()
        .args(["report", "review", "--days", "30", "--format", "xlsx", "--output"])
        .arg(&export)
        .output()
        .unwrap();
    ok(&out, "xlsx export");
    let mut wb: Xlsx<_> = open_workbook(&export).unwrap();
    let data: Vec<Vec<Data>> = wb.worksheet_range("Data").unwrap().rows().map(<[Data]>::to_vec).collect();
    let about: Vec<Vec<Data>> = wb.worksheet_range("About").unwrap().rows().map(<[Data]>::to_vec).collect();
    let text = |c: &Data| c.to_string();
    let col = |name: &str| data[0].iter().position(|c| text(c) == name).unwrap();
    let (acc, typ, rec, dec, by, email) = (
        col("account_id"),
        col("account_type"),
        col("recommendation"),
        col("decision"),
        col("decided_by"),
        col("email"),
    );
    assert!(data[1][dec].to_string().starts_with("proposed: "), "the proposal is marked undecided");
    let members: Vec<usize> = (1..data.len())
        .filter(|&i| text(&data[i][rec]) == "revoke" && text(&data[i][typ]) == "member")
        .take(3)
        .collect();
    assert_eq!(members.len(), 3);
    let mut filled = data.clone();
    let (good, unknown, edited) = (members[0], members[1], members[2]);
    filled[good][dec] = Data::String("revoke".into());
    filled[good][by] = Data::String("dan".into());
    filled[unknown][dec] = Data::String("maybe".into());
    filled[unknown][by] = Data::String("dan".into());
    filled[edited][dec] = Data::String("revoke".into());
    filled[edited][by] = Data::String("dan".into());
    filled[edited][email] = Data::String("someone.else@example.com".into());

    let path = ctx.path("filled.xlsx");
    let mut out_wb = rust_xlsxwriter::Workbook::new();
    for (name, rows) in [("Data", &filled), ("About", &about)] {
        let ws = out_wb.add_worksheet();
        ws.set_name(name).unwrap();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match cell {
                    Data::Empty => {}
                    Data::Float(f) => drop(ws.write_number(r, c, *f).unwrap()),
                    Data::Int(i) => drop(ws.write_number(r, c, *i as f64).unwrap()),
                    Data::Bool(b) => drop(ws.write_boolean(r, c, *b).unwrap()),
                    Data::DateTime(d) => drop(ws.write_number(r, c, d.as_f64()).unwrap()),
                    other => drop(ws.write_string(r, c, other.to_string()).unwrap()),
                }
            }
        }
    }
    out_wb.save(&path).unwrap();

    // Unusable rows are named by file and line (the spreadsheet's row number), nothing imported.
    let out = ctx.import(&path);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let at = |i: usize| format!("filled.xlsx:{}: account {}", i + 1, data[i][acc]);
    assert!(
        err.contains(&format!("{}: decision \"maybe\" is not one of revoke, keep, investigate", at(unknown))),
        "{err}"
    );
    assert!(err.contains(&format!("{}: email edited", at(edited))), "{err}");
    assert!(ctx.sql("SELECT count(*) AS n FROM review_decisions")[0]["n"] == 0);
    // With --skip-bad-rows the good one is imported, the rest still listed (exit 3).
    let out = ctx.cmd().args(["review", "import", "--skip-bad-rows"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let stored = ctx.sql("SELECT account_id, decision, decided_by, source_line, report FROM review_decisions");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["account_id"], data[good][acc].to_string());
    assert_eq!(stored[0]["decided_by"], "dan");
    assert_eq!(stored[0]["source_line"], good as i64 + 1);
    // Importing the same file again adds nothing.
    let out = ctx.cmd().args(["review", "import", "--skip-bad-rows"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(ctx.sql("SELECT count(*) AS n FROM review_decisions")[0]["n"], 1);
    // A CSV without its provenance file is refused, naming what is missing.
    let (csv, _) = ctx.export_review(30, "other.csv");
    std::fs::remove_file(lastseen_deprovision_side(&csv)).unwrap();
    let out = ctx.import(&csv);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("provenance file"));
}

fn lastseen_deprovision_side(csv: &Path) -> PathBuf {
    let mut name = csv.as_os_str().to_owned();
    name.push(".provenance.json");
    PathBuf::from(name)
}

#[test]
fn a_5xx_is_retried_only_after_a_read_and_a_cut_answer_is_settled_by_one() {
    // The 1st write answers 503 without being made; the 3rd is made but its answer is cut short.
    let faults = vec![
        FaultRule::new("scim.Users.write", FaultWhen::Nth(1), FaultKind::Status(503)),
        FaultRule::new("scim.Users.write", FaultWhen::Nth(3), FaultKind::Truncated),
    ];
    let env = Env::start_with(SimConfig {
        org: OrgSpec::new(1513, 300, Plan::BusinessPlus, today(), 120),
        rate_limits: RateLimits::Off,
        faults,
        conditions: Default::default(),
    });
    let ctx = Ctx::new(&env);
    ctx.run_day(today());
    let (csv, rows) = ctx.export_review(30, "review.csv");
    let chosen = ids_of(&rows, is_revoke_member, 2);
    fill(&csv, &revoke_all(&chosen));
    ok(&ctx.import(&csv), "import");
    let (out, plan_path) = ctx.plan(&[]);
    ok(&out, "plan");
    let approved = ctx.approve(&plan_path, "carol");
    let (out, lines) = ctx.apply("apply", &approved, &["--execute"]);
    ok(&out, "apply");
    assert_eq!(outcomes(&lines).values().filter(|o| *o == "done").count(), 2, "{lines:?}");
    // Three write requests reached Slack; each account was changed by exactly one accepted write.
    assert_eq!(env.sim().call_count("scim.Users.write"), 3);
    for id in &chosen {
        assert_eq!(env.sim().scim_writes(id), 1, "{id}");
    }
    let details: Vec<&str> = lines.iter().filter_map(|l| l["detail"].as_str()).collect();
    assert!(details.iter().any(|d| d.contains("unreadably; a read shows active:false")), "{details:?}");
}

/// With Okta configured next to Slack, the lake's reports list both apps' accounts, but
/// deprovisioning acts on Slack only: neither a dormant plan nor a plan from a review whose
/// reviewer revoked Okta accounts lists an Okta account, and the share cap counts Slack's active
/// accounts, not Okta's.
#[test]
fn a_plan_on_a_lake_with_okta_lists_and_counts_slack_accounts_only() {
    use lastseen_okta_sim::{OktaOrgSpec, OktaSimConfig, OktaSimulator};

    let env = Env::start(150, Plan::BusinessPlus, 47);
    let okta = env
        .rt
        .block_on(OktaSimulator::start(
            OktaSimConfig::new(OktaOrgSpec::from_slack(env.sim().org(), 3)),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    // Okta's users only: its System Log is read by the wall clock, which these fixed dates are not.
    std::fs::write(
        env.dir.path().join("lastseen.toml"),
        format!("[okta]\norg_url = {:?}\nsources = [\"users\"]\n", okta.org_url()),
    )
    .unwrap();
    let mut ctx = Ctx::new(&env);
    ctx.extra.push(("OKTA_API_TOKEN", okta.api_token().to_owned()));
    let d = today().pred_opt().unwrap();
    ctx.run_day(d);
    let ids = |app: &str, extra: &str| -> BTreeSet<String> {
        ctx.sql(&format!("SELECT account_id FROM accounts WHERE dt = DATE '{d}' AND app = '{app}' {extra}"))
            .iter()
            .map(|r| r["account_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let okta_ids = ids("okta", "");
    assert!(okta_ids.len() > 100, "{} Okta accounts", okta_ids.len());
    let slack_active = ids("slack", "AND status = 'active'").len();

    // From the dormant report (both apps' dormant accounts): Slack's only.
    let (out, path) = ctx.plan(&["--dormant-days", "30", "--max-share", "1", "--max-actions", "100000"]);
    ok(&out, "plan --dormant-days");
    let plan = plan_json(&path);
    let listed: BTreeSet<String> = verdicts(&plan).into_keys().collect();
    assert!(!listed.is_empty());
    assert!(listed.is_disjoint(&okta_ids), "Okta accounts in a Slack plan: {:?}", listed.intersection(&okta_ids));
    assert_eq!(plan["cap"]["active_accounts"], slack_active, "the cap's base is Slack's active accounts");

    // From a review of every app where the reviewer revoked Okta accounts too.
    let (csv, rows) = ctx.export_review(30, "review.csv");
    let revoked: Vec<String> = rows.iter().map(|r| r["account_id"].clone()).collect();
    assert!(revoked.iter().any(|id| okta_ids.contains(id)), "the review lists Okta accounts");
    fill(&csv, &revoke_all(&revoked));
    ok(&ctx.import(&csv), "import");
    let (out, path) = ctx.plan(&["--max-share", "1", "--max-actions", "100000"]);
    ok(&out, "plan from decisions");
    let listed: BTreeSet<String> = verdicts(&plan_json(&path)).into_keys().collect();
    let slack_revoked: BTreeSet<String> = revoked.iter().filter(|id| !okta_ids.contains(*id)).cloned().collect();
    assert_eq!(listed, slack_revoked, "the plan lists exactly the revoked Slack accounts");
}
