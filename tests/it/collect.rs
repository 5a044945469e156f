//! Collection per plan, compared with what the simulator's own API serves (read here with a
//! plain HTTP client, independent of lastseen's collectors): `check`'s works/skipped table,
//! the raw tables row for row, faults, a killed run, and incremental access logs.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use lastseen_slack_sim::{FaultKind, FaultRule, FaultWhen, OrgSpec, Plan, RateLimits, SimConfig};
use serde_json::Value;

use crate::support::{Env, end_of, today};

/// A naive client of the simulator: what Slack says, without lastseen in the way.
struct Api<'a> {
    env: &'a Env,
    token: String,
    http: reqwest::Client,
}

impl<'a> Api<'a> {
    fn new(env: &'a Env, token: &str) -> Api<'a> {
        Api { env, token: token.to_owned(), http: reqwest::Client::new() }
    }

    fn get_bytes(&self, url: &str) -> Vec<u8> {
        self.env.rt.block_on(async {
            let r = self.http.get(url).bearer_auth(&self.token).send().await.unwrap();
            assert!(r.status().is_success(), "{url}: {}", r.status());
            r.bytes().await.unwrap().to_vec()
        })
    }

    fn get(&self, url: &str) -> Value {
        serde_json::from_slice(&self.get_bytes(url)).unwrap()
    }

    fn method(&self, method: &str, params: &str) -> Value {
        self.get(&format!("{}/{method}?{params}", self.env.sim().api_url()))
    }

    /// Every element of `key` over a cursor-paged method.
    fn paged(&self, method: &str, params: &str, key: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let v = self.method(method, &format!("{params}&cursor={cursor}"));
            assert_eq!(v["ok"], true, "{method}: {v}");
            match &v[key] {
                Value::Array(a) => out.extend(a.iter().cloned()),
                Value::Object(m) => out.extend(m.iter().map(|(k, v)| serde_json::json!({"id": k, "v": v}))),
                other => panic!("{method}: {key} is {other}"),
            }
            cursor = v["response_metadata"]["next_cursor"].as_str().unwrap_or_default().to_owned();
            if cursor.is_empty() {
                return out;
            }
        }
    }

    fn scim(&self, version: &str, resource: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut start = 1;
        loop {
            let v =
                self.get(&format!("{}/{version}/{resource}?startIndex={start}&count=500", self.env.sim().scim_url()));
            let page = v["Resources"].as_array().unwrap().clone();
            if page.is_empty() {
                return out;
            }
            start += page.len();
            out.extend(page);
        }
    }

    fn audit(&self, action: &str, oldest: i64, latest: i64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let url = format!(
                "{}/logs?action={action}&oldest={oldest}&latest={latest}&limit=700&cursor={cursor}",
                self.env.sim().audit_url()
            );
            let v = self.get(&url);
            out.extend(v["entries"].as_array().unwrap().iter().cloned());
            cursor = v["response_metadata"]["next_cursor"].as_str().unwrap_or_default().to_owned();
            if cursor.is_empty() {
                return out;
            }
        }
    }

    /// The member analytics rows of one day.
    fn analytics(&self, day: NaiveDate) -> Vec<Value> {
        let gz =
            self.get_bytes(&format!("{}/admin.analytics.getFile?type=member&date={day}", self.env.sim().api_url()));
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut text).unwrap();
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Rows of `sql` as sorted `a|b|c` strings, columns in the order of the SELECT list's output
/// names (`x AS name` or a bare column); `*` keeps the JSON (alphabetical) order.
fn lake_rows(env: &Env, sql: &str) -> Vec<String> {
    let rows = env.sql(sql);
    let select = sql.trim_start().strip_prefix("SELECT ").unwrap();
    let list = &select[..select.find(" FROM ").unwrap()];
    let names: Option<Vec<String>> = (!list.starts_with('*'))
        .then(|| split_top_level(list).iter().map(|c| c.rsplit(" AS ").next().unwrap().trim().to_owned()).collect());
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            let o = r.as_object().unwrap();
            match &names {
                // The JSON output leaves null columns out.
                Some(n) => n.iter().map(|k| o.get(k).map(text).unwrap_or_default()).collect::<Vec<_>>().join("|"),
                None => o.values().map(text).collect::<Vec<_>>().join("|"),
            }
        })
        .collect();
    out.sort();
    out
}

/// Splits a SELECT list on commas outside parentheses.
fn split_top_level(list: &str) -> Vec<String> {
    let (mut out, mut depth, mut cur) = (Vec::new(), 0, String::new());
    for ch in list.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `lastseen check` as (source, status, first word of why) rows.
fn check(env: &Env, token: &str, extra: &[(&str, &str)]) -> (Option<i32>, Vec<(String, String, String)>, String) {
    let mut c = env.cmd();
    c.env("SLACK_TOKEN", token);
    for (k, v) in extra {
        c.env(k, v);
    }
    let out = c.arg("check").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let table: Vec<(String, String, String)> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("source"))
        .skip(1)
        // The table ends at a blank line (the access-log order note follows it).
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let (s, st) = (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned());
            (s, st, parts.collect::<Vec<_>>().join(" "))
        })
        .collect();
    (out.status.code(), table, stdout)
}

fn assert_check(table: &[(String, String, String)], source: &str, status: &str, why_contains: &str) {
    let row = table.iter().find(|r| r.0 == source).unwrap_or_else(|| panic!("{source} not in {table:?}"));
    assert_eq!(row.1, status, "{source}: {row:?}");
    assert!(row.2.contains(why_contains), "{source}: why `{}` lacks `{why_contains}`", row.2);
}

fn run(env: &Env, d: NaiveDate, token: &str, extra: &[(&str, &str)]) -> std::process::Output {
    env.sim().set_now(end_of(d));
    let mut c = env.cmd();
    c.env("SLACK_TOKEN", token);
    for (k, v) in extra {
        c.env(k, v);
    }
    c.args(["run", "--date", &d.to_string()]).output().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn free_plan_check_and_run_collect_what_the_plan_allows() {
    let env = Env::start(80, Plan::Free, 41);
    let token = env.sim().user_token().to_owned();
    let (code, table, stdout) = check(&env, &token, &[]);
    assert_eq!(code, Some(3), "access_logs cannot run on Free: {stdout}");
    assert!(stdout.contains("scopes:") && stdout.contains("users:read"), "{stdout}");
    assert_check(&table, "workspaces", "works", "");
    assert_check(&table, "users", "works", "");
    assert_check(&table, "access_logs", "skipped", "paid_only");
    assert_check(&table, "billing", "skipped", "paid_only");
    assert_check(&table, "usergroups", "skipped", "plan_upgrade_required");
    assert_check(&table, "scim", "skipped", "feature_not_enabled");
    assert_check(&table, "analytics", "skipped", "feature_not_available");
    assert_check(&table, "audit", "skipped", "feature_not_enabled");

    let out = run(&env, today(), &token, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let m = env.last_manifest();
    assert_eq!(m["sources"]["users"]["status"], "collected");
    assert_eq!(m["sources"]["scim"]["status"], "skipped");
    // Only users and access_logs are worth a warning under "auto".
    let warnings = m["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let ws = lake_rows(&env, "SELECT team_id, name, domain FROM slack_workspaces");
    let org = env.sim().org();
    assert_eq!(ws, vec![format!("{}|{}|{}", org.team_id(), org.team_name(), org.domain())]);
    assert_eq!(env.sql("SELECT count(*) AS n FROM slack_users")[0]["n"], org.accounts().len());
}

#[test]
fn pro_plan_workspace_billing_and_user_groups_equal_the_simulators_answers() {
    let env = Env::start(300, Plan::Pro, 42);
    let token = env.sim().user_token().to_owned();
    let (code, table, stdout) = check(&env, &token, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    for s in ["workspaces", "users", "billing", "usergroups", "access_logs"] {
        assert_check(&table, s, "works", "");
    }
    assert_check(&table, "scim", "skipped", "feature_not_enabled");
    // A bot token: the admin methods need a user token, SCIM refuses it; the table says so.
    let (code, bot, _) = check(&env, env.sim().bot_token(), &[]);
    assert_eq!(code, Some(3));
    assert_check(&bot, "access_logs", "skipped", "needs a user token");
    assert_check(&bot, "billing", "skipped", "needs a user token");
    // A member's token lacks `admin`: named.
    let (_, member, _) = check(&env, env.sim().member_token(), &[]);
    assert_check(&member, "access_logs", "skipped", "missing scope admin");

    let d = today();
    let out = run(&env, d, &token, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let api = Api::new(&env, &token);
    let team = env.sim().org().team_id().to_owned();

    let want: Vec<String> = api
        .paged("team.billableInfo", "limit=97", "billable_info")
        .iter()
        .map(|e| format!("{team}|{}|{}", text(&e["id"]), e["v"]["billing_active"]))
        .collect();
    assert!(want.len() > 200, "{}", want.len());
    let got =
        lake_rows(&env, &format!("SELECT team_id, user_id, billing_active FROM slack_billing WHERE dt = DATE '{d}'"));
    assert_eq!(got, sorted(want));

    let groups = api.method("usergroups.list", "include_disabled=true&include_count=true&include_users=true");
    let groups = groups["usergroups"].as_array().unwrap();
    let want: Vec<String> = groups
        .iter()
        .map(|g| {
            let disabled = g["date_delete"].as_i64().unwrap() > 0;
            format!(
                "{team}|{}|{}|{}|{}|{}",
                text(&g["id"]),
                text(&g["handle"]),
                text(&g["name"]),
                disabled,
                text(&g["user_count"])
            )
        })
        .collect();
    assert!(want.iter().any(|g| g.contains("|true|")), "a disabled group is collected too");
    let got = lake_rows(
        &env,
        &format!(
            "SELECT team_id, usergroup_id, handle, name, disabled, user_count FROM slack_usergroups WHERE dt = DATE '{d}'"
        ),
    );
    assert_eq!(got, sorted(want));
    let want: Vec<String> = groups
        .iter()
        .flat_map(|g| {
            let team = team.clone();
            g["users"].as_array().unwrap().iter().map(move |u| format!("{team}|{}|{}", text(&g["id"]), text(u)))
        })
        .collect();
    let got = lake_rows(
        &env,
        &format!("SELECT team_id, usergroup_id, user_id FROM slack_usergroup_members WHERE dt = DATE '{d}'"),
    );
    assert_eq!(got, sorted(want));

    let m = env.last_manifest();
    assert_eq!(m["status"], "succeeded");
    for s in ["workspaces", "users", "billing", "usergroups", "access_logs"] {
        let r = &m["sources"][s];
        assert_eq!(r["status"], "collected", "{s}: {r}");
        assert!(r["calls"].as_u64().unwrap() >= 1 && r["pages"].as_u64().unwrap() >= 1, "{s}: {r}");
    }
    assert_eq!(m["sources"]["billing"]["rows"].as_u64().unwrap() as usize, got_len(&env, "slack_billing"));
    assert_eq!(m["sources"]["analytics"]["status"], "skipped");
}

fn got_len(env: &Env, table: &str) -> usize {
    env.sql(&format!("SELECT count(*) AS n FROM {table}"))[0]["n"].as_u64().unwrap() as usize
}

#[test]
fn business_plus_scim_and_member_analytics_equal_the_simulators_answers_v2_and_govslack_v1() {
    let env = Env::start(250, Plan::BusinessPlus, 43);
    let token = env.sim().user_token().to_owned();
    let (code, table, stdout) = check(&env, &token, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    for s in ["scim", "analytics", "usergroups"] {
        assert_check(&table, s, "works", "");
    }
    assert_check(&table, "audit", "skipped", "feature_not_enabled");

    let d = today();
    let out = run(&env, d, &token, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let api = Api::new(&env, &token);
    let scim_users = |version: &str| -> Vec<String> {
        api.scim(version, "Users")
            .iter()
            .map(|u| {
                let email =
                    u["emails"].as_array().and_then(|e| e.first()).map(|e| text(&e["value"])).unwrap_or_default();
                format!("{}|{}|{}|{}", text(&u["id"]), text(&u["userName"]), u["active"], email)
            })
            .collect()
    };
    let want = scim_users("v2");
    assert!(want.len() > 200 && want.iter().any(|u| u.contains("|false|")), "deactivated users are listed");
    let got = lake_rows(
        &env,
        &format!("SELECT user_id, user_name, active, email FROM slack_scim_users WHERE dt = DATE '{d}'"),
    );
    assert_eq!(got, sorted(want.clone()));
    let dept = env.sql(&format!("SELECT count(*) AS n FROM slack_scim_users WHERE dt = DATE '{d}' AND department IS NOT NULL AND employee_number IS NOT NULL"));
    assert_eq!(dept[0]["n"].as_u64().unwrap() as usize, want.len(), "HR attributes from the enterprise extension");
    let want_groups: Vec<String> = api
        .scim("v2", "Groups")
        .iter()
        .flat_map(|g| {
            let id = text(&g["id"]);
            let members: Vec<String> = g["members"].as_array().unwrap().iter().map(|m| text(&m["value"])).collect();
            if members.is_empty() {
                vec![format!("{id}|")]
            } else {
                members.into_iter().map(|m| format!("{id}|{m}")).collect()
            }
        })
        .collect();
    let got = lake_rows(&env, &format!("SELECT group_id, member_user_id FROM slack_scim_groups WHERE dt = DATE '{d}'"));
    assert_eq!(got, sorted(want_groups));

    // The newest member file: the day before yesterday (yesterday's is not published yet).
    let newest = d - Days::new(2);
    let want: Vec<String> = api
        .analytics(newest)
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{}",
                text(&r["user_id"]),
                r["is_active"],
                text(&r["messages_posted_count"]),
                r["is_billable_seat"]
            )
        })
        .collect();
    assert!(want.len() > 150);
    let got =
        lake_rows(&env, "SELECT user_id, is_active, messages_posted, is_billable_seat FROM slack_member_analytics");
    assert_eq!(got, sorted(want));
    let dts =
        env.sql("SELECT DISTINCT CAST(dt AS VARCHAR) AS dt, CAST(date AS VARCHAR) AS d FROM slack_member_analytics");
    assert_eq!(dts.len(), 1);
    assert_eq!(dts[0]["dt"], newest.to_string());
    assert_eq!(dts[0]["d"], newest.to_string());

    // Three days later the missed days are read too, each once, and the watermark moves on.
    let later = d + Days::new(3);
    let out = run(&env, later, &token, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let per_day = env.sql("SELECT CAST(dt AS VARCHAR) AS dt, count(*) AS n, count(DISTINCT user_id) AS u FROM slack_member_analytics GROUP BY dt ORDER BY dt");
    let days: Vec<String> = per_day.iter().map(|r| text(&r["dt"])).collect();
    let expect: Vec<String> = (0..4).map(|k| (newest + Days::new(k)).to_string()).collect();
    assert_eq!(days, expect);
    for r in &per_day {
        assert_eq!(r["n"], r["u"], "one row per member per day: {r}");
    }
    let m = env.last_manifest();
    // The probe, yesterday's file (not yet published), then the newest and the two missed days.
    assert_eq!(m["sources"]["analytics"]["calls"], 1 + 1 + 3, "{}", m["sources"]["analytics"]);

    // GovSlack: the same organisation under /gov, SCIM v1.1.
    let gov = [("LASTSEEN_SLACK__GOV", "true"), ("LASTSEEN_SLACK__API_URL", &*env.sim().gov_api_url().leak())];
    let (code, table, stdout) = check(&env, &token, &gov);
    assert_eq!(code, Some(0), "{stdout}");
    assert_check(&table, "scim", "works", "");
    let out = run(&env, later, &token, &gov);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = lake_rows(
        &env,
        &format!("SELECT user_id, user_name, active, email FROM slack_scim_users WHERE dt = DATE '{later}'"),
    );
    assert_eq!(got, sorted(scim_users("v1")));
    assert!(env.sim().call_count("scim.Users") > 0);
}

#[test]
fn grid_org_token_collects_three_workspaces_deduplicated_with_admin_facts_and_audit_logins() {
    let env = Env::start(300, Plan::Enterprise, 44);
    let org_token = env.sim().org_token().unwrap().to_owned();
    let (code, table, stdout) = check(&env, &org_token, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("workspaces:  3"), "{stdout}");
    for s in ["workspaces", "users", "billing", "usergroups", "scim", "access_logs", "analytics", "audit"] {
        assert_check(&table, s, "works", "");
    }
    // A workspace-level token of the same Grid has no auditlogs:read.
    let (_, ws_table, _) = check(&env, env.sim().user_token(), &[]);
    assert_check(&ws_table, "audit", "skipped", "missing scope auditlogs:read");

    let d = today();
    let out = run(&env, d, &org_token, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let api = Api::new(&env, &org_token);
    let org = env.sim().org();
    let ids = org.workspace_ids();
    assert_eq!(ids.len(), 3);

    let got = lake_rows(&env, "SELECT team_id, enterprise_id FROM slack_workspaces");
    let ent = org.enterprise_id().unwrap().to_owned();
    assert_eq!(got, sorted(ids.iter().map(|t| format!("{t}|{ent}")).collect()));

    // users.list of each workspace, merged: one row per user, every workspace kept.
    // Users without `enterprise_user` (Slackbot) belong to the workspaces that list them.
    let mut listed: std::collections::BTreeMap<String, (String, Vec<String>)> = Default::default();
    for t in &ids {
        for u in api.paged("users.list", &format!("team_id={t}&limit=150"), "members") {
            let teams: Vec<String> = match u["enterprise_user"]["teams"].as_array() {
                Some(a) => a.iter().map(text).collect(),
                None => vec![t.clone()],
            };
            let e = listed.entry(text(&u["id"])).or_insert_with(|| (text(&u["team_id"]), Vec::new()));
            if u["enterprise_user"].is_null() {
                e.1.extend(teams);
            } else {
                e.1 = teams;
            }
        }
    }
    assert_eq!(listed["USLACKBOT"].1, ids, "Slackbot is in every workspace");
    let want: BTreeSet<String> =
        listed.iter().map(|(id, (team, teams))| format!("{id}|{team}|{}", teams.join(","))).collect();
    assert_eq!(want.len(), org.accounts().len());
    let got = lake_rows(
        &env,
        &format!(
            "SELECT user_id, team_id, array_to_string(workspace_ids, ',') AS ws FROM slack_users WHERE dt = DATE '{d}'"
        ),
    );
    assert_eq!(got, want.into_iter().collect::<Vec<_>>());
    assert!(got.iter().any(|r| r.split('|').nth(2).unwrap().contains(',')), "someone belongs to several workspaces");

    // admin.users.list facts (org-wide view), active and deactivated.
    let mut want = Vec::new();
    for active in ["true", "false"] {
        for u in api.paged("admin.users.list", &format!("limit=100&is_active={active}"), "users") {
            let last = u["last_active_ts"].as_i64().unwrap();
            want.push(format!(
                "{}|{}|{}",
                text(&u["id"]),
                if last > 0 { last.to_string() } else { String::new() },
                u["has_sso"]
            ));
        }
    }
    let got = lake_rows(
        &env,
        &format!(
            "SELECT user_id, CAST(to_unixtime(last_active_at) AS BIGINT) AS t, has_sso FROM slack_users \
             WHERE dt = DATE '{d}' AND has_sso IS NOT NULL"
        ),
    );
    assert_eq!(got, sorted(want));

    // Audit logins: the first run reads 30 days back to the end of the run day.
    let oldest = (d - Days::new(30)).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    let latest = end_of(d).timestamp();
    let mut want = Vec::new();
    for action in ["user_login", "user_logout", "user_login_failed"] {
        for e in api.audit(action, oldest, latest) {
            want.push(format!(
                "{}|{}|{}|{}|{}",
                text(&e["id"]),
                e["date_create"],
                action,
                text(&e["actor"]["user"]["id"]),
                text(&e["context"]["location"]["id"])
            ));
        }
    }
    assert!(want.len() > 1000, "{}", want.len());
    let got = lake_rows(
        &env,
        "SELECT id, CAST(to_unixtime(date_create) AS BIGINT) AS t, action, user_id, team_id FROM slack_audit_logins",
    );
    assert_eq!(got, sorted(want));

    // Access logs per workspace, each with its watermark; billing and groups per workspace.
    let per_ws = env.sql("SELECT team_id, count(*) AS n FROM slack_access_logs GROUP BY team_id");
    assert_eq!(per_ws.len(), 3, "{per_ws:?}");
    let m = env.last_manifest();
    assert_eq!(m["sources"]["billing"]["workspaces"], 3);
    let groups = env.sql("SELECT count(DISTINCT team_id) AS n FROM slack_usergroups");
    assert_eq!(groups[0]["n"], 3);

    // The next day reads audit events from the watermark on: nothing twice.
    let next = d + Days::new(1);
    let out = run(&env, next, &org_token, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dup = env.sql("SELECT count(*) AS n, count(DISTINCT id) AS u FROM slack_audit_logins");
    assert_eq!(dup[0]["n"], dup[0]["u"]);
    let last_day = env.sql(&format!("SELECT count(*) AS n FROM slack_audit_logins WHERE dt = DATE '{next}'"));
    let want_next = ["user_login", "user_logout", "user_login_failed"]
        .iter()
        .map(|a| api.audit(a, end_of(d).timestamp() + 1, end_of(next).timestamp()).len())
        .sum::<usize>();
    assert_eq!(last_day[0]["n"].as_u64().unwrap() as usize, want_next);
}

/// Access-log key columns as rows.
fn access_log_rows(env: &Env) -> Vec<String> {
    lake_rows(
        env,
        "SELECT team_id, user_id, ip, user_agent, CAST(to_unixtime(date_first) AS BIGINT) AS f, \
         CAST(to_unixtime(date_last) AS BIGINT) AS l, count FROM slack_access_logs",
    )
}

fn users_rows(env: &Env) -> Vec<String> {
    lake_rows(env, "SELECT dt, user_id, team_id FROM slack_users")
}

#[test]
fn a_second_daily_run_reads_only_new_access_log_pages() {
    let env = Env::start(400, Plan::Pro, 45);
    let token = env.sim().user_token().to_owned();
    let small_pages = [("LASTSEEN_SLACK__ACCESS_LOGS_PAGE_SIZE", "10"), ("LASTSEEN_SLACK__ACCESS_LOGS_OVERLAP", "1h")];
    let d = today();
    let out = run(&env, d - Days::new(1), &token, &small_pages);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = env.last_manifest()["sources"]["access_logs"].clone();
    let out = run(&env, d, &token, &small_pages);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = env.last_manifest()["sources"]["access_logs"].clone();
    let (c1, c2) = (first["calls"].as_u64().unwrap(), second["calls"].as_u64().unwrap());
    eprintln!("team.accessLogs calls: first run {c1}, second run {c2} (each includes one probe call)");
    assert!(c1 > 20, "the first run reads the whole history: {first}");
    // Newest first, down to the watermark minus the overlap (1h before the run day here):
    // the pages holding entries used since then, plus the page that crosses the boundary.
    let since = (d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp() - 3600) * 1_000_000;
    let fresh_entries = env
        .sql(&format!("SELECT count(*) AS n FROM slack_access_logs WHERE CAST(date_last AS BIGINT) >= {since}"))[0]["n"]
        .as_u64()
        .unwrap();
    let pages = fresh_entries.div_ceil(10) + 1;
    assert!(c2 <= 1 + pages, "second run: {c2} calls for {fresh_entries} fresh entries ({pages} pages + probe)");
    assert!(c2 < c1, "{c1} then {c2}");
    // And the result equals a single fresh collection of the same history.
    let fresh = Env::start(400, Plan::Pro, 45);
    let out = run(&fresh, d, fresh.sim().user_token(), &small_pages);
    assert!(out.status.success(), "{}", stderr(&out));
    let want: BTreeSet<String> = access_log_rows(&fresh).into_iter().collect();
    let got: BTreeSet<String> = access_log_rows(&env).into_iter().collect();
    // Entries that moved forward keep only their newest state; the two-run lake may hold an
    // entry's older state only if it was on an earlier day partition, which the merge keys
    // by day. Every entry the fresh run sees is in the incremental lake.
    assert!(want.is_subset(&got), "missing: {:?}", want.difference(&got).take(5).collect::<Vec<_>>());
    let dups = env.sql(
        "SELECT count(*) AS n FROM (SELECT dt, team_id, user_id, ip, user_agent, date_first FROM slack_access_logs \
         GROUP BY dt, team_id, user_id, ip, user_agent, date_first HAVING count(*) > 1)",
    );
    assert_eq!(dups[0]["n"], 0);
}

fn faulty(plan: Plan, seed: u64, faults: Vec<FaultRule>) -> Env {
    Env::start_with(SimConfig {
        org: OrgSpec::new(seed, 250, plan, today(), 120),
        rate_limits: RateLimits::Off,
        faults,
        conditions: Default::default(),
    })
}

#[test]
fn faults_are_retried_and_the_data_arrives_exactly_once() {
    let p = |x| FaultWhen::Probability(x);
    let faults = vec![
        FaultRule::new("*", p(0.08), FaultKind::RateLimited { retry_after_secs: 1 }),
        FaultRule::new("*", p(0.08), FaultKind::Status(503)),
        FaultRule::new("*", p(0.05), FaultKind::Truncated),
        FaultRule::new("*", p(0.05), FaultKind::Malformed),
        FaultRule::new("*", p(0.05), FaultKind::Slow { millis: 150 }),
        FaultRule::new("scim.Users", p(0.2), FaultKind::Status(502)),
        FaultRule::new("admin.analytics.getFile", FaultWhen::Nth(2), FaultKind::Truncated),
    ];
    let env = faulty(Plan::BusinessPlus, 46, faults);
    let clean = faulty(Plan::BusinessPlus, 46, Vec::new());
    // Retry-After 1s is honoured as is (the floor); keep the run short.
    let fast = [("LASTSEEN_SLACK__RETRY__MIN_RETRY_AFTER", "1s"), ("LASTSEEN_SLACK__RETRY__MAX_ATTEMPTS", "12")];
    let d = today();
    let out = run(&env, d, env.sim().user_token(), &fast);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&clean, d, clean.sim().user_token(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = env.last_manifest();
    let retries: u64 = m["sources"].as_object().unwrap().values().map(|s| s["retries"].as_u64().unwrap()).sum();
    let limited: u64 = m["sources"].as_object().unwrap().values().map(|s| s["rate_limited"].as_u64().unwrap()).sum();
    assert!(retries >= 3 && limited >= 1, "faults were met and retried: {}", m["sources"]);
    for t in [
        "slack_users",
        "slack_billing",
        "slack_usergroup_members",
        "slack_scim_users",
        "slack_scim_groups",
        "slack_member_analytics",
        "slack_access_logs",
        "slack_workspaces",
    ] {
        let q = format!("SELECT * EXCEPT (collected_at) FROM {t}");
        assert_eq!(lake_rows(&env, &q), lake_rows(&clean, &q), "{t} differs from a clean collection");
    }
}

#[test]
fn a_source_that_keeps_failing_fails_the_run_naming_it_and_the_next_run_is_exact() {
    // Call 1 is the probe; calls 2 and 3 (the first page and its retry) fail: with 2 attempts
    // per call, the page gives up.
    let faults = vec![
        FaultRule::new("team.billableInfo", FaultWhen::Nth(2), FaultKind::Status(500)),
        FaultRule::new("team.billableInfo", FaultWhen::Nth(3), FaultKind::Status(500)),
    ];
    let env = faulty(Plan::Pro, 47, faults);
    let clean = faulty(Plan::Pro, 47, Vec::new());
    let two = [("LASTSEEN_SLACK__RETRY__MAX_ATTEMPTS", "2"), ("LASTSEEN_SLACK__USERS_PAGE_SIZE", "50")];
    let d = today();
    let small = [("LASTSEEN_SLACK__RETRY__MAX_ATTEMPTS", "2")];
    let out = run(&env, d, env.sim().user_token(), &[two[0], two[1]]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("billing") && err.contains("team.billableInfo") && err.contains("HTTP 500"), "{err}");
    assert!(env.sql("SELECT count(*) AS n FROM slack_users")[0]["n"] == 0, "nothing was published");
    assert_eq!(env.last_manifest()["status"], "failed");

    let out = run(&env, d, env.sim().user_token(), &small);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&clean, d, clean.sim().user_token(), &small);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for t in ["slack_users", "slack_billing", "slack_access_logs"] {
        let q = format!("SELECT * EXCEPT (collected_at) FROM {t}");
        assert_eq!(lake_rows(&env, &q), lake_rows(&clean, &q), "{t}");
    }
}

#[test]
fn a_run_killed_mid_collection_is_followed_by_a_run_without_gaps_or_duplicates() {
    let slow = vec![FaultRule::new("team.accessLogs", FaultWhen::EveryNth(1), FaultKind::Slow { millis: 120 })];
    let env = faulty(Plan::Pro, 48, slow);
    let clean = faulty(Plan::Pro, 48, Vec::new());
    let d = today();
    env.sim().set_now(end_of(d));
    // Small pages and a tiny staging budget: the killed run has spilled staging files.
    let mut child = env
        .std_cmd()
        .env("LASTSEEN_SLACK__ACCESS_LOGS_PAGE_SIZE", "50")
        .env("LASTSEEN_LAKE__STAGE_MEMORY_MB", "1")
        .env("LASTSEEN_LAKE__LEASE_TTL", "1s")
        .args(["run", "--date", &d.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while env.sim().call_count("team.accessLogs") < 12 {
        assert!(start.elapsed() < Duration::from_secs(60), "the run never reached the access logs");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!env.lake().join("_lastseen/log").exists(), "nothing was committed by the killed run");
    // The killed run's lease expires one TTL after its last renewal; its staging files go to
    // the next run's vacuum (no keep window here).
    crate::lake_safety::wait_out_lease(&env);

    let small = [
        ("LASTSEEN_SLACK__ACCESS_LOGS_PAGE_SIZE", "200"),
        ("LASTSEEN_LAKE__STAGE_MEMORY_MB", "1"),
        ("LASTSEEN_LAKE__KEEP_SUPERSEDED", "0s"),
    ];
    let out = run(&env, d, env.sim().user_token(), &small);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&clean, d, clean.sim().user_token(), &small);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(access_log_rows(&env), access_log_rows(&clean));
    assert_eq!(users_rows(&env), users_rows(&clean));
    let staging = crate::support::files_under(&env.lake().join("_lastseen/staging"));
    assert!(staging.is_empty(), "staging files of the killed run are removed: {staging:?}");
}
