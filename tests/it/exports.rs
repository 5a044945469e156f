//! Reports and exports end to end: every format of `lastseen report` against the simulator's
//! ground truth with its provenance, the formula guard, the HTML report in headless Chromium,
//! `lastseen sql --file` and the interactive shell driven through stdin.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant};

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::Duration;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use lastseen_slack_sim::Plan;

use crate::support::{Env, end_of, parse_json_lines, today};

/// The run manifest of the run that published the lake's newest version: (run_id, version).
fn last_run(lake: &Path) -> (String, u64) {
    let mut best: Option<(String, u64)> = None;
    for f in std::fs::read_dir(lake.join("_lastseen/runs")).unwrap() {
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(f.unwrap().path()).unwrap()).unwrap();
        if let Some(v) = m["lake_version"].as_u64()
            && best.as_ref().is_none_or(|(_, b)| v > *b)
        {
            best = Some((m["run_id"].as_str().unwrap().to_string(), v));
        }
    }
    best.expect("a committed run")
}

fn run_ok(cmd: &mut assert_cmd::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn csv_column(path: &Path, col: &str) -> Vec<String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let i = r.headers().unwrap().iter().position(|h| h == col).unwrap_or_else(|| panic!("no {col} column"));
    r.records().map(|rec| rec.unwrap()[i].to_string()).collect()
}

fn xlsx(path: &Path) -> Xlsx<Cursor<Vec<u8>>> {
    open_workbook_from_rs(Cursor::new(std::fs::read(path).unwrap())).unwrap()
}

/// A sheet's column as strings, header excluded.
fn sheet_column(wb: &mut Xlsx<Cursor<Vec<u8>>>, sheet: &str, col: &str) -> Vec<String> {
    let range = wb.worksheet_range(sheet).unwrap();
    let mut rows = range.rows();
    let header = rows.next().unwrap();
    let i = header
        .iter()
        .position(|h| matches!(h, Data::String(s) if s == col))
        .unwrap_or_else(|| panic!("no {col} in {sheet}"));
    rows.map(|r| r[i].to_string()).collect()
}

/// The "About" sheet's value for `field`.
fn about(wb: &mut Xlsx<Cursor<Vec<u8>>>, field: &str) -> Option<String> {
    let range = wb.worksheet_range("About").unwrap();
    range.rows().find(|r| matches!(&r[0], Data::String(s) if s == field)).map(|r| r[1].to_string())
}

fn parquet_column(path: &Path, col: &str) -> (Vec<String>, serde_json::Value) {
    let file = std::fs::File::open(path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let kv = builder.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let prov = kv.iter().find(|k| k.key == "lastseen.provenance").and_then(|k| k.value.clone()).unwrap();
    let mut out = Vec::new();
    for b in builder.build().unwrap() {
        let b = b.unwrap();
        let c = cast(b.column_by_name(col).unwrap(), &DataType::Utf8).unwrap();
        out.extend(c.as_string::<i32>().iter().map(|v| v.unwrap().to_string()));
    }
    (out, serde_json::from_str(&prov).unwrap())
}

fn set(v: Vec<String>) -> BTreeSet<String> {
    v.into_iter().collect()
}

#[test]
fn every_report_format_lists_the_ground_truth_and_carries_provenance() {
    let env = Env::start(300, Plan::Pro, 5);
    env.run_day_ok(today() - Duration::days(1));
    env.run_day_ok(today());
    let want = env.sim().org().ground_truth(end_of(today())).dormant(30);
    assert!(want.len() > 10, "the organisation should have dormant accounts");
    let (run_id, version) = last_run(&env.lake());
    let out = |ext: &str| env.dir.path().join(format!("dormant.{ext}"));
    for f in ["csv", "json", "parquet", "xlsx", "html", "table"] {
        let path = out(f);
        run_ok(env.cmd().args(["report", "dormant", "--days", "30", "--format", f, "--output"]).arg(&path));
        assert!(path.is_file(), "{f}: no {}", path.display());
        assert!(
            !std::fs::read_dir(env.dir.path()).unwrap().any(|e| e.unwrap().path().to_string_lossy().ends_with(".tmp"))
        );
    }

    // CSV and its side file.
    assert_eq!(set(csv_column(&out("csv"), "account_id")), want);
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out("csv").with_file_name("dormant.csv.provenance.json")).unwrap())
            .unwrap();
    assert_eq!(side["report"], "dormant");
    assert_eq!(side["as_of"], today().to_string());
    assert_eq!(side["run_id"], run_id.as_str());
    assert_eq!(side["lake_version"], version);
    assert_eq!(side["rows"], want.len());
    assert_eq!(side["lastseen_version"], env!("CARGO_PKG_VERSION"));
    let params: Vec<(String, String)> = side["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().into(), p["value"].as_str().unwrap().into()))
        .collect();
    let cutoff = (today() - Duration::days(30)).to_string();
    assert!(
        params.contains(&("days".into(), "30".into())) && params.contains(&("cutoff".into(), cutoff)),
        "{params:?}"
    );
    // The SQL that ran: the dormant report reads the day's `account_report` rollup.
    assert!(side["sql"].as_str().unwrap().contains("FROM account_report"), "{}", side["sql"]);

    // JSON lines and its side file.
    let rows = parse_json_lines(&std::fs::read(out("json")).unwrap());
    assert_eq!(rows.iter().map(|r| r["account_id"].as_str().unwrap().to_string()).collect::<BTreeSet<_>>(), want);
    assert!(rows.iter().all(|r| r.as_object().unwrap().contains_key("last_seen_at")), "explicit nulls");
    // The flags against the simulator's own account kinds; no HR export here, so no owners.
    let truth = env.sim().org().ground_truth(end_of(today()));
    for r in &rows {
        let id = r["account_id"].as_str().unwrap();
        let kind = truth.accounts.iter().find(|a| a.id == id).unwrap().kind.as_str();
        assert_eq!(r["account_type"], kind, "{id}");
        assert_eq!(r["privileged"], matches!(kind, "primary_owner" | "owner" | "admin"), "{id}");
        assert_eq!(r["guest"], matches!(kind, "guest_multi" | "guest_single"), "{id}");
        assert!(r["identity_id"].is_null() && r["orphan"].is_null(), "{id}: no identity export");
        assert_eq!(r["recommended_action"], "revoke", "{id}");
    }
    assert!(out("json").with_file_name("dormant.json.provenance.json").is_file());

    // Parquet: the rows, and the provenance inside.
    let (ids, prov) = parquet_column(&out("parquet"), "account_id");
    assert_eq!(set(ids), want);
    assert_eq!(prov["run_id"], run_id.as_str());

    // XLSX: the rows, and the About sheet.
    let mut wb = xlsx(&out("xlsx"));
    assert_eq!(set(sheet_column(&mut wb, "Data", "account_id")), want);
    assert_eq!(about(&mut wb, "Run id"), Some(run_id.clone()));
    assert_eq!(about(&mut wb, "Lake version"), Some(version.to_string()));
    assert_eq!(about(&mut wb, "Parameter days").as_deref(), Some("30"));

    // HTML: every account, three charts, the provenance footer.
    let html = std::fs::read_to_string(out("html")).unwrap();
    for id in &want {
        assert!(html.contains(&format!("<td>{id}</td>")), "{id} missing from the HTML report");
    }
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.contains(&format!("<dt>Run id</dt><dd>{run_id}</dd>")));

    // The table export gets a side file too.
    let table = std::fs::read_to_string(out("table")).unwrap();
    assert!(want.iter().all(|id| table.contains(id.as_str())));
    assert!(out("table").with_file_name("dormant.table.provenance.json").is_file());
}

#[test]
fn every_report_runs_through_the_registry_in_every_format() {
    let env = Env::start(500, Plan::Pro, 31);
    // The HR export, so the identity reports (orphans, terminated) have rows.
    env.configure_identities(|c| c, "");
    env.run_day_ok(today() - Duration::days(1));
    env.run_day_ok(today());
    let truth = env.sim().org().ground_truth(end_of(today()));
    let (run_id, _) = last_run(&env.lake());

    let defs = lastseen_query::reports::builtin().unwrap();
    assert_eq!(defs.len(), 8);
    for def in &defs {
        let name = def.name.as_str();
        if name == "deprovisioned" {
            // Reads the deprovisioning journal, empty here: tests/it/deprovision.rs exports it.
            continue;
        }
        let mut args = vec!["report", name];
        if def.takes(lastseen_query::reports::Param::Days) {
            args.extend(["--days", "7"]);
        }
        let out = |ext: &str| env.dir.path().join(format!("{name}.{ext}"));
        for f in ["csv", "json", "parquet", "xlsx", "html", "table"] {
            run_ok(env.cmd().args(&args).args(["--format", f, "--output"]).arg(out(f)));
        }
        let json = parse_json_lines(&std::fs::read(out("json")).unwrap());
        assert!(!json.is_empty(), "{name}: no rows");
        let n = json.len();
        let first = json[0].as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(csv_column(&out("csv"), &first).len(), n, "{name} csv");
        let (col, prov) = parquet_column(&out("parquet"), &first);
        assert_eq!(col.len(), n, "{name} parquet");
        assert_eq!((prov["report"].as_str(), prov["run_id"].as_str()), (Some(name), Some(run_id.as_str())));
        assert_eq!(prov["as_of"], today().to_string());
        let mut wb = xlsx(&out("xlsx"));
        assert_eq!(sheet_column(&mut wb, "Data", &first).len(), n, "{name} xlsx");
        let html = std::fs::read_to_string(out("html")).unwrap();
        assert_eq!(html.matches("<svg").count(), def.charts.len(), "{name}: every chart drawn");
        for c in &def.charts {
            assert!(html.contains(&c.title), "{name}: chart {}", c.title);
        }
        // The account reports list the ground truth's accounts.
        let ids: BTreeSet<String> = json.iter().filter_map(|r| r["account_id"].as_str().map(String::from)).collect();
        match name {
            "dormant" => assert_eq!(ids, truth.dormant(7)),
            "orphans" => assert_eq!(ids, truth.orphans),
            "terminated" => assert_eq!(ids, truth.terminated_active),
            _ => {}
        }
    }
}

#[test]
fn report_filters_match_the_ground_truth() {
    let env = Env::start(300, Plan::Pro, 9);
    env.run_day_ok(today());
    let truth = env.sim().org().ground_truth(end_of(today()));
    let cutoff = today() - Duration::days(30);
    let dormant = |a: &lastseen_slack_sim::GroundTruthAccount| {
        !a.deleted && a.last_access.is_none_or(|t| t.date_naive() <= cutoff)
    };
    let ids = |args: &[&str]| -> BTreeSet<String> {
        let out = run_ok(env.cmd().args(["report", "dormant", "--days", "30", "--format", "json"]).args(args));
        parse_json_lines(&out.stdout).iter().map(|r| r["account_id"].as_str().unwrap().to_string()).collect()
    };
    let humans: BTreeSet<String> = truth
        .accounts
        .iter()
        .filter(|a| dormant(a) && !matches!(a.kind.as_str(), "bot" | "app" | "slackbot"))
        .map(|a| a.id.clone())
        .collect();
    assert_eq!(humans, truth.dormant(30), "the test's own rule agrees with the simulator's");
    let members: BTreeSet<String> = truth
        .accounts
        .iter()
        .filter(|a| {
            dormant(a) && !matches!(a.kind.as_str(), "bot" | "app" | "slackbot" | "guest_multi" | "guest_single")
        })
        .map(|a| a.id.clone())
        .collect();
    let with_bots: BTreeSet<String> = truth.accounts.iter().filter(|a| dormant(a)).map(|a| a.id.clone()).collect();
    assert!(members.len() < humans.len() && humans.len() < with_bots.len(), "the filters must discriminate");
    assert_eq!(ids(&["--exclude-guests"]), members);
    assert_eq!(ids(&["--include-bots"]), with_bots);
    assert_eq!(ids(&["--workspace", &truth.team_id]), humans);
    assert!(ids(&["--workspace", "TNOSUCHTEAM"]).is_empty());
}

#[test]
fn a_formula_display_name_is_harmless_in_csv_and_xlsx() {
    let env = Env::start(40, Plan::Pro, 2);
    env.run_day_ok(today());
    let q = "SELECT user_id, '=HYPERLINK(\"http://x\")' AS display_name FROM slack_users ORDER BY user_id LIMIT 2";
    let csv_path = env.dir.path().join("names.csv");
    let xlsx_path = env.dir.path().join("names.xlsx");
    run_ok(env.cmd().args(["sql", q, "--format", "csv", "--bom", "--output"]).arg(&csv_path));
    run_ok(env.cmd().args(["sql", q, "--format", "xlsx", "--output"]).arg(&xlsx_path));

    let bytes = std::fs::read(&csv_path).unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "--bom");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let second = text.lines().nth(1).unwrap();
    assert!(second.ends_with(",\"'=HYPERLINK(\"\"http://x\"\")\""), "{second}");
    let side = std::fs::read_to_string(csv_path.with_file_name("names.csv.provenance.json")).unwrap();
    assert!(side.contains("HYPERLINK"), "the side file records the SQL: {side}");

    let mut wb = xlsx(&xlsx_path);
    let range = wb.worksheet_range("Data").unwrap();
    assert_eq!(range.get((1, 1)), Some(&Data::String("=HYPERLINK(\"http://x\")".into())));
    let formulas = wb.worksheet_formula("Data").unwrap();
    assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()), "no formula cells: {formulas:?}");
}

/// Pixels of `png` that are not near-white, and those near `rgb`.
fn count_pixels(png_path: &Path, rgb: [u8; 3]) -> (usize, usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3 && info.bit_depth == png::BitDepth::Eight, "{:?} {:?}", info.color_type, info.bit_depth);
    let px = &buf[..info.buffer_size()];
    let (mut ink, mut near) = (0, 0);
    for p in px.chunks(channels) {
        if p[..3].iter().any(|c| *c < 235) {
            ink += 1;
        }
        if p[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) < 24) {
            near += 1;
        }
    }
    (px.len() / channels, ink, near)
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn the_html_report_shows_its_charts_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "CI must have chromium: .ci/run installs it with apt-get");
        eprintln!("SKIPPED: no chromium here (`apt-get install -y chromium`); the HTML screenshot test did not run");
        return;
    };
    let env = Env::start(200, Plan::Pro, 4);
    for back in (0..3).rev() {
        env.run_day_ok(today() - Duration::days(back));
    }
    let html = env.dir.path().join("dormant.html");
    run_ok(env.cmd().args(["report", "dormant", "--days", "30", "--format", "html", "--output"]).arg(&html));

    // The command a person can run to see the same picture:
    //   chromium --headless --no-sandbox --screenshot=shot.png --window-size=1280,1400 dormant.html
    let shot = env.dir.path().join("shot.png");
    let mut child = std::process::Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", env.dir.path().join("chromium-profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,1400")
        .arg(format!("file://{}", html.display()))
        .env("HOME", env.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > StdDuration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took over 90 s to take the screenshot");
        }
        std::thread::sleep(StdDuration::from_millis(100));
    };
    assert!(status.success() && shot.is_file(), "chromium failed: {status}");

    // The bar and line colour of the charts (#2f6fb0) must be on screen, not just text.
    let (total, ink, chart) = count_pixels(&shot, [0x2f, 0x6f, 0xb0]);
    assert!(ink * 50 > total, "the page looks blank: {ink} of {total} pixels are not white");
    assert!(chart > 2_000, "the charts did not render: {chart} pixels of the chart colour");
}

#[test]
fn sql_from_a_file_any_format_and_usage_errors() {
    let env = Env::start(50, Plan::Pro, 8);
    env.run_day_ok(today());
    let n = env.sim().org().accounts().len();
    let q = env.dir.path().join("q.sql");
    std::fs::write(&q, "-- accounts per day\nSELECT dt, count(*) AS accounts\nFROM slack_users\nGROUP BY dt;\n")
        .unwrap();
    let pq = env.dir.path().join("q.parquet");
    run_ok(env.cmd().arg("sql").arg("--file").arg(&q).args(["--format", "parquet", "--output"]).arg(&pq));
    let (accounts, prov) = parquet_column(&pq, "accounts");
    assert_eq!(accounts, [n.to_string()]);
    assert_eq!(prov["title"], "SQL query");
    assert!(prov["sql"].as_str().unwrap().starts_with("-- accounts per day"));
    // CSV is streamed, with the same provenance beside it.
    let csv = env.dir.path().join("q.csv");
    run_ok(env.cmd().arg("sql").arg("--file").arg(&q).args(["--format", "csv", "--output"]).arg(&csv));
    assert_eq!(csv_column(&csv, "accounts"), [n.to_string()]);
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.dir.path().join("q.csv.provenance.json")).unwrap()).unwrap();
    assert_eq!((&side["title"], &side["rows"], &side["sql"]), (&prov["title"], &serde_json::json!(1), &prov["sql"]));

    // Binary output to a pipe is allowed (a terminal is refused).
    let out = run_ok(env.cmd().args(["sql", "SELECT 1 AS one", "--format", "xlsx"]));
    assert_eq!(&out.stdout[..2], b"PK", "an XLSX is a zip file");

    let out = env.cmd().args(["report", "terminated", "--days", "30"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("report `terminated` does not take --days"));
    let out = env.cmd().args(["report", "orphans", "--department", "Sales"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("report `orphans` does not take --department"));
    let out = env.cmd().args(["report", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no report named `nope`; the reports are: deprovisioned, dormant")
    );
    let list = String::from_utf8(run_ok(env.cmd().args(["report", "--list"])).stdout).unwrap();
    assert!(list.starts_with("deprovisioned  Deprovisioned accounts\n") && list.contains("--exclude-guests"), "{list}");
    let sql = String::from_utf8(run_ok(env.cmd().args(["report", "dormant", "--show-sql"])).stdout).unwrap();
    assert_eq!(sql, include_str!("../../query/reports/dormant.sql"));
}

#[test]
fn the_sql_shell_reads_statements_and_commands_from_stdin() {
    let env = Env::start(50, Plan::Pro, 6);
    env.run_day_ok(today());
    let n = env.sim().org().accounts().len();
    let history = env.dir.path().join("history.txt");
    let input = "\\d\n\\d slack_users\nSELECT count(*) AS n,\n       count(DISTINCT user_id) AS ids\n  FROM slack_users;\n\
                 SELECT nope FROM slack_users;\n\\d no_such_table\nSELECT 41 + 1 AS answer\n";
    let out = env.cmd().args(["sql", "--history"]).arg(&history).write_stdin(input).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A failed statement fails a scripted session, after running the rest.
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    for table in ["slack_users", "slack_access_logs", "last_seen"] {
        assert!(stdout.contains(&format!("| {table}")), "\\d lists {table}: {stdout}");
    }
    assert!(stdout.contains("| user_id ") && stdout.contains("| dt "), "\\d slack_users: {stdout}");
    let counts = format!("| {n} | {n}");
    assert!(stdout.contains(&counts), "multi-line query result {counts}: {stdout}");
    assert!(stdout.contains("| 42 "), "a last statement without `;` still runs: {stdout}");
    assert!(stderr.contains("nope") && stderr.contains("no table named `no_such_table`"), "{stderr}");
    let h = std::fs::read_to_string(&history).unwrap();
    assert!(h.contains("\\d slack_users") && h.contains("count(DISTINCT user_id)"), "history: {h}");

    // Other formats print machine-readable rows, and `\q` ends the session.
    let out =
        run_ok(env.cmd().args(["sql", "--format", "json"]).write_stdin("SELECT 1 AS one;\n\\q\nSELECT 2 AS two;\n"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"one\":1}\n");
}

/// `cmd` with standard output a pipe whose reader is already gone (`lastseen … | head` once
/// `head` has its lines; closing the reader first makes every write fail, whatever the output's
/// size): its exit status and standard error. `stdin` is written to the command first.
fn with_closed_stdout(mut cmd: std::process::Command, stdin: &str) -> (Option<i32>, String) {
    use std::io::Write as _;
    use std::process::Stdio;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = cmd.stdin(Stdio::piped()).stdout(writer).stderr(Stdio::piped()).spawn().unwrap();
    // The command may stop before it reads its input: a failed write here is not the test's.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let deadline = Instant::now() + StdDuration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the command did not end within 60 s of its standard output closing");
        }
        std::thread::sleep(StdDuration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_standard_output_ends_the_command_quietly_and_a_full_one_fails() {
    let env = Env::start(60, Plan::Pro, 11);
    env.run_day_ok(today());
    let cmd = |args: &[&str]| {
        let mut c = env.std_cmd();
        c.arg("--quiet").args(args);
        c
    };
    let big = "SELECT value, repeat('x', 100) AS pad FROM generate_series(1, 5000) ORDER BY value DESC";
    let cases: [(&[&str], &str); 10] = [
        // The sorted CSV path (review ends in a full sort), the streamed one (dormant does not).
        (&["report", "review", "--format", "csv"], ""),
        (&["report", "dormant", "--format", "csv", "--days", "1"], ""),
        (&["report", "review", "--format", "json"], ""),
        (&["sql", big, "--format", "table"], ""),
        (&["sql", big, "--format", "xlsx"], ""),
        // `sql` streams CSV and JSON lines as `report` does: a query that would never end if its
        // rows were held before writing stops at its first write.
        (&["sql", "SELECT value FROM generate_series(1, 1000000000000)", "--format", "csv"], ""),
        (&["sql", "SELECT value FROM generate_series(1, 1000000000000)", "--format", "json"], ""),
        // The command's own lines.
        (&["report", "--list"], ""),
        (&["tables"], ""),
        (&["validate"], ""),
    ];
    for (args, stdin) in cases {
        let (code, stderr) = with_closed_stdout(cmd(args), stdin);
        assert_eq!(code, Some(0), "{args:?} with a closed stdout: {stderr}");
        assert!(!stderr.contains("pipe") && !stderr.contains("panicked"), "{args:?} printed: {stderr}");
    }

    // The shell stops at the first statement whose rows cannot be written, and still saves
    // its history.
    let history = env.dir.path().join("closed-stdout-history");
    let mut shell = cmd(&["sql", "--format", "csv", "--history"]);
    shell.arg(&history);
    let (code, stderr) = with_closed_stdout(shell, "SELECT 1 AS one;\nSELECT 2 AS two;\n");
    assert_eq!(code, Some(0), "the shell with a closed stdout: {stderr}");
    assert!(!stderr.contains("pipe") && !stderr.contains("error"), "the shell printed: {stderr}");
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("SELECT 1 AS one") && !saved.contains("SELECT 2 AS two"), "history: {saved}");

    // Any other failure to write standard output is still one: a full device.
    for args in [&["report", "review", "--format", "csv"][..], &["report", "--list"]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = cmd(args).stdout(full).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} to /dev/full: {stderr}");
        assert!(stderr.contains("No space left on device"), "{args:?} to /dev/full: {stderr}");
    }
}
