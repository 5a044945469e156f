//! Reader tests: the simulator's export, every kind of bad file, and the three formats.

use chrono::{NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Date32Type, Int64Type};
use lastseen_config::{Config, IdentitiesConfig, IdentityFormat};

use super::*;

fn cfg(extra: &str) -> IdentitiesConfig {
    Config::from_toml_str(extra, "test", Vec::<(String, String)>::new()).unwrap().identities
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 30, 12, 0, 0).unwrap()
}

fn csv_load(text: &str) -> Result<IdentityLoad> {
    parse_identities(text.as_bytes(), &cfg(""), "hr.csv", Some(IdentityFormat::Csv), now())
}

fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let c = b.column_by_name(col).unwrap();
    c.as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect()
}

const HEADER: &str = "identity_id,email,alternate_email,employee_id,display_name,department,manager_email,status,termination_date,employee_type\n";

#[test]
fn the_simulators_export_reads_completely() {
    let org = lastseen_slack_sim::Org::generate(&lastseen_slack_sim::OrgSpec::new(
        5,
        800,
        lastseen_slack_sim::Plan::Pro,
        NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
        90,
    ));
    let csv = org.identities_csv();
    let load = csv_load(&csv).unwrap();
    let rows = csv.lines().count() - 1;
    assert_eq!(load.records, rows);
    assert_eq!(load.identities.num_rows(), rows);
    assert_eq!(load.quarantine.num_rows(), 0, "{:?}", load.problems);
    // Line numbers are file lines: the first record is on line 2.
    let lines = load.identities.column_by_name("source_line").unwrap().as_primitive::<Int64Type>();
    assert_eq!(lines.value(0), 2);
    // Terminated people carry their date, and the status is kept lower-case.
    let status = strings(&load.identities, "status");
    let term = load.identities.column_by_name("termination_date").unwrap().as_primitive::<Date32Type>();
    for (i, s) in status.iter().enumerate() {
        assert_eq!(s.as_deref() == Some("terminated"), !term.is_null(i), "row {i}");
    }
    // The manager column holds emails, so they land in manager_email.
    assert!(strings(&load.identities, "manager_email").iter().skip(1).any(Option::is_some));
    assert!(strings(&load.identities, "manager_id").iter().all(Option::is_none));
}

#[test]
fn wrong_delimiter_is_named() {
    let text = HEADER.replace(',', ";") + "HR1;a@x.example;;1;A;Eng;;active;;employee\n";
    let e = csv_load(&text).unwrap_err().to_string();
    assert!(e.contains("hr.csv") && e.contains("delimited by `;`") && e.contains("identities.delimiter"), "{e}");
    // With the delimiter configured, the same file reads.
    let c = cfg("[identities]\ndelimiter = \";\"\n");
    let load = parse_identities(text.as_bytes(), &c, "hr.csv", Some(IdentityFormat::Csv), now()).unwrap();
    assert_eq!(load.identities.num_rows(), 1);
}

#[test]
fn missing_required_column_is_named_with_its_setting() {
    let text = HEADER.replace("employee_id,", "emp,") + "HR1,a@x.example,,1,A,Eng,,active,,employee\n";
    let e = csv_load(&text).unwrap_err().to_string();
    assert!(e.contains("`employee_id`") && e.contains("identities.columns.employee_id") && e.contains("emp"), "{e}");
    // Unmapping it is the documented fix.
    let c = cfg("[identities.columns]\nemployee_id = \"\"\n");
    assert!(parse_identities(text.as_bytes(), &c, "hr.csv", Some(IdentityFormat::Csv), now()).is_ok());
}

#[test]
fn duplicate_ids_missing_ids_and_bad_dates_are_quarantined_with_lines() {
    let text = format!(
        "{HEADER}HR1,a@x.example,,1,A,Eng,,active,,employee\n\
         HR2,b@x.example,,2,B,Eng,,terminated,31/12/2025,employee\n\
         HR1,c@x.example,,3,C,Eng,,active,,employee\n\
         ,d@x.example,,4,D,Eng,,active,,employee\n\
         HR5,e@x.example,,5,E,Eng,,terminated,2026-01-15,employee\n\
         HR6,f@x.example\n"
    );
    let load = csv_load(&text).unwrap();
    assert_eq!(strings(&load.identities, "identity_id"), [Some("HR5".to_string())]);
    let q = &load.quarantine;
    let lines: Vec<i64> = q.column_by_name("source_line").unwrap().as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(lines, [2, 3, 4, 5, 7]);
    let reasons = strings(q, "reason");
    assert!(reasons[0].as_deref().unwrap().contains("appears on several lines (2, 4)"), "{reasons:?}");
    assert!(reasons[1].as_deref().unwrap().contains("`31/12/2025` is not a date"), "{reasons:?}");
    assert!(reasons[3].as_deref().unwrap().contains("no identity id"), "{reasons:?}");
    assert!(reasons[4].as_deref().unwrap().contains("2 fields, the header has 10"), "{reasons:?}");
    assert_eq!(load.problems.len(), 5);
    assert!(load.problems[1].starts_with("hr.csv:3: "), "{:?}", load.problems);
    // The bad row itself is kept so it can be fixed at the source.
    assert_eq!(strings(q, "record")[1].as_deref(), Some("HR2,b@x.example,,2,B,Eng,,terminated,31/12/2025,employee"));
    // A configured date format makes the same date good.
    let c = cfg("[identities]\ndate_format = \"%d/%m/%Y\"\n");
    let load = parse_identities(text.as_bytes(), &c, "hr.csv", Some(IdentityFormat::Csv), now()).unwrap();
    assert!(strings(&load.identities, "identity_id").contains(&Some("HR2".into())));
}

#[test]
fn empty_files_and_files_without_a_usable_row_fail() {
    let e = csv_load("").unwrap_err().to_string();
    assert!(e.contains("hr.csv") && e.contains("empty"), "{e}");
    let e = csv_load(HEADER).unwrap_err().to_string();
    assert!(e.contains("no usable identity: 0 record(s)"), "{e}");
    let e = csv_load(&format!("{HEADER},a@x.example,,1,A,Eng,,active,,employee\n")).unwrap_err().to_string();
    assert!(e.contains("1 quarantined") && e.contains("hr.csv:2: no identity id"), "{e}");
}

#[test]
fn jsonl_takes_arrays_and_reports_bad_lines() {
    let c = cfg("[identities.columns]\nalternate_emails = \"aliases\"\nmanager = \"manager\"\n");
    let text = r#"{"identity_id": "HR1", "email": "a@x.example", "aliases": ["a@old.example", "a2@x.example"], "employee_id": 7, "display_name": "A", "department": "Eng", "manager": "HR9", "status": "Active", "termination_date": null, "employee_type": "employee"}
not json

{"identity_id": "HR2", "email": "b@x.example", "status": "terminated", "termination_date": "2026-02-01T10:00:00Z"}
[1, 2]
"#;
    let load = parse_identities(text.as_bytes(), &c, "hr.jsonl", Some(IdentityFormat::Jsonl), now()).unwrap();
    assert_eq!(strings(&load.identities, "identity_id"), [Some("HR1".into()), Some("HR2".into())]);
    assert_eq!(strings(&load.identities, "employee_id")[0].as_deref(), Some("7"));
    assert_eq!(strings(&load.identities, "manager_id")[0].as_deref(), Some("HR9"));
    assert_eq!(strings(&load.identities, "status")[0].as_deref(), Some("active"));
    let alts = load.identities.column_by_name("alternate_emails").unwrap().as_list::<i32>().value(0);
    let alts: Vec<&str> = alts.as_string::<i32>().iter().flatten().collect();
    assert_eq!(alts, ["a@old.example", "a2@x.example"]);
    let term = load.identities.column_by_name("termination_date").unwrap().as_primitive::<Date32Type>();
    assert_eq!(lastseen_lake::catalog::from_date32(term.value(1)), NaiveDate::from_ymd_opt(2026, 2, 1));
    assert_eq!(
        load.problems,
        [
            "hr.jsonl:2: the line is not valid JSON: expected ident at line 1 column 2",
            "hr.jsonl:5: the line is JSON but not an object"
        ]
    );

    let e = parse_identities(b"{\"id\": 1}\n", &c, "hr.jsonl", Some(IdentityFormat::Jsonl), now()).unwrap_err();
    assert!(e.to_string().contains("`identity_id` (identities.columns.identity_id) appears in no line"), "{e}");
}

#[test]
fn parquet_exports_read_through_the_same_mapping() {
    use datafusion::arrow::array::{ArrayRef, ListBuilder, StringArray, StringBuilder};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let c = cfg(
        "[identities.columns]\nidentity_id = \"id\"\nemail = \"mail\"\nalternate_emails = \"alts\"\nemployee_id = \"\"\n\
         display_name = \"\"\ndepartment = \"\"\nmanager = \"\"\nstatus = \"\"\ntermination_date = \"term\"\nemployee_type = \"\"\n",
    );
    let mut alts = ListBuilder::new(StringBuilder::new());
    alts.values().append_value("x@old.example");
    alts.append(true);
    alts.append(false);
    alts.append(true);
    let alts = alts.finish();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("mail", DataType::Utf8, true),
        Field::new("alts", alts.data_type().clone(), true),
        Field::new("term", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![Some("P1"), None, Some("P3")])),
        Arc::new(StringArray::from(vec![Some("x@x.example"), Some("y@x.example"), None])),
        Arc::new(alts),
        Arc::new(StringArray::from(vec![None, None, Some("never")])),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols).unwrap();
    let mut buf = Vec::new();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let load = parse_identities(&buf, &c, "hr.parquet", Some(IdentityFormat::Parquet), now()).unwrap();
    assert_eq!(strings(&load.identities, "identity_id"), [Some("P1".into())]);
    assert_eq!(load.problems.len(), 2);
    assert!(load.problems[0].starts_with("hr.parquet:2: no identity id"), "{:?}", load.problems);
    assert!(load.problems[1].contains("`never` is not a date"), "{:?}", load.problems);
    let e = parse_identities(b"PAR1 nope", &c, "hr.parquet", Some(IdentityFormat::Parquet), now()).unwrap_err();
    assert!(e.to_string().contains("not a readable Parquet file"), "{e}");
}

#[tokio::test]
async fn reads_from_a_storage_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.csv");
    std::fs::write(&path, format!("{HEADER}HR1,a@x.example,b@x.example;c@x.example,1,A,Eng,,active,,employee\n"))
        .unwrap();
    let c = cfg(&format!("[identities]\nurl = {:?}\n", path.display().to_string()));
    let load = read_identities(&c, &BTreeMap::new(), now()).await.unwrap();
    assert_eq!(load.identities.num_rows(), 1);
    assert_eq!(strings(&load.identities, "source_file")[0].as_deref(), Some(path.to_str().unwrap()));
    let alts = load.identities.column_by_name("alternate_emails").unwrap().as_list::<i32>().value(0);
    assert_eq!(alts.len(), 2);
    let missing = cfg(&format!("[identities]\nurl = {:?}\n", dir.path().join("nope.csv").display().to_string()));
    let e = read_identities(&missing, &BTreeMap::new(), now()).await.unwrap_err().to_string();
    assert!(e.contains("nope.csv") && e.contains("cannot read it"), "{e}");
}

#[test]
fn overrides_parse_and_refuse_duplicates() {
    let b = read_overrides_from(
        b"account_id,identity_id,service_owner_id,reason\nU1,HR7,,merged account\nU2,,HR3,deploy bot\nU3,,,shared mailbox\n",
        "owners.csv",
    )
    .unwrap();
    assert_eq!(b.num_rows(), 3);
    assert_eq!(strings(&b, "identity_id"), [Some("HR7".into()), None, None]);
    assert_eq!(strings(&b, "service_owner_id"), [None, Some("HR3".into()), None]);
    let e = read_overrides_from(b"account_id,identity_id\nU1,HR1\nU1,HR2\n", "owners.csv").unwrap_err();
    assert!(e.to_string().contains("line 3: account `U1` is already overridden on line 2"), "{e}");
    let e = read_overrides_from(b"user,owner\nU1,HR1\n", "owners.csv").unwrap_err();
    assert!(e.to_string().contains("must name `account_id`"), "{e}");
}

#[tokio::test]
async fn an_oversized_export_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.csv");
    // Sparse: the size says 1 GiB and a byte, the disk holds nothing.
    std::fs::File::create(&path).unwrap().set_len(super::MAX_IDENTITY_FILE + 1).unwrap();
    let c = cfg(&format!("[identities]\nurl = {:?}\n", path.display().to_string()));
    let e = read_identities(&c, &BTreeMap::new(), now()).await.unwrap_err().to_string();
    assert!(e.contains("huge.csv") && e.contains("more than the 1024 MiB"), "{e}");
}

const BIG_EXPORT_CHILD: &str = "LASTSEEN_TEST_BIG_EXPORT_CHILD";
const BIG_ROWS: usize = 20_000;
const NOTES: usize = 10_000;

/// Run in a child process by [`a_large_export_is_streamed_not_read_whole`], so its peak memory
/// is its own: writes a 200 MB CSV export, most of it in a column no mapping reads, and loads it.
#[test]
fn big_export_child() {
    let Some(dir) = std::env::var_os(BIG_EXPORT_CHILD) else { return };
    let path = std::path::Path::new(&dir).join("big.csv");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(w, "{},notes", HEADER.trim_end()).unwrap();
        let notes = "n".repeat(NOTES);
        for i in 0..BIG_ROWS {
            writeln!(w, "HR{i},p{i}@x.example,,{i},Person {i},Eng,,active,,employee,{notes}").unwrap();
        }
        w.flush().unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    println!("SIZE={size}");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let c = cfg(&format!("[identities]\nurl = {:?}\n", path.display().to_string()));
    let load = rt.block_on(read_identities(&c, &BTreeMap::new(), now())).unwrap();
    println!("ROWS={}", load.identities.num_rows());
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    println!("PEAK {}", status.lines().find(|l| l.starts_with("VmHWM:")).unwrap());
}

#[test]
fn a_large_export_is_streamed_not_read_whole() {
    if !std::path::Path::new("/proc/self/status").exists() {
        return; // peak RSS is read from procfs (Linux)
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "identities::tests::big_export_child", "--nocapture", "--test-threads=1"])
        .env(BIG_EXPORT_CHILD, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("ROWS={BIG_ROWS}\n")), "{stdout}");
    // The harness prints the test's name on the line the first output continues.
    let size: u64 = stdout.lines().find_map(|l| l.split_once("SIZE=")).unwrap().1.parse().unwrap();
    assert!(size > 200_000_000, "{size}");
    let kb: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PEAK VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in {stdout}"));
    // The rows kept are a few MB; the file is 200 MB. Reading it whole (or keeping each row's
    // text) would be at least the file's size.
    println!("peak RSS {kb} kB for a {size}-byte export");
    assert!(kb < 100 * 1024, "peak RSS {kb} kB for a {size}-byte export");
}

#[tokio::test]
async fn parquet_jsonl_and_empty_exports_stream_from_a_storage_url() {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| cfg(&format!("[identities]\nurl = {:?}\n", dir.path().join(name).display().to_string()));

    // Several row groups, read with ranged reads: rows are numbered across them.
    let schema = Arc::new(Schema::new(vec![
        Field::new("identity_id", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
    ]));
    let props =
        datafusion::parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(2)).build();
    let mut buf = Vec::new();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(&mut buf, Arc::clone(&schema), Some(props)).unwrap();
    let ids = vec![Some("P1"), Some("P2"), None, Some("P4"), Some("P5")];
    let cols: Vec<ArrayRef> =
        vec![Arc::new(StringArray::from(ids)), Arc::new(StringArray::from(vec![Some("a@x.example"); 5]))];
    w.write(&RecordBatch::try_new(schema, cols).unwrap()).unwrap();
    w.close().unwrap();
    std::fs::write(dir.path().join("hr.parquet"), &buf).unwrap();
    let only = "[identities.columns]\nemployee_id = \"\"\ndisplay_name = \"\"\ndepartment = \"\"\nmanager = \"\"\nstatus = \"\"\n\
                termination_date = \"\"\nemployee_type = \"\"\nalternate_emails = \"\"\nusername = \"\"\n";
    let mut c = cfg(only);
    c.url = at("hr.parquet").url;
    let load = read_identities(&c, &BTreeMap::new(), now()).await.unwrap();
    assert_eq!(strings(&load.identities, "identity_id"), ["P1", "P2", "P4", "P5"].map(|s| Some(s.to_owned())));
    assert_eq!(load.problems.len(), 1);
    assert!(
        load.problems[0].ends_with("hr.parquet:3: no identity id (column `identity_id` is empty)"),
        "{:?}",
        load.problems
    );

    // A JSONL line over the cap is quarantined by line number, the lines around it still read.
    let long = format!("{{\"identity_id\": \"X\", \"pad\": \"{}\"}}", "p".repeat(parse::MAX_JSONL_LINE));
    std::fs::write(
        dir.path().join("hr.jsonl"),
        format!("{{\"identity_id\": \"A\", \"email\": \"a@x.example\"}}\n{long}\n{{\"identity_id\": \"B\"}}\n"),
    )
    .unwrap();
    let mut c = cfg(only);
    c.url = at("hr.jsonl").url;
    let load = read_identities(&c, &BTreeMap::new(), now()).await.unwrap();
    assert_eq!(strings(&load.identities, "identity_id"), [Some("A".into()), Some("B".into())]);
    assert_eq!(load.problems.len(), 1);
    assert!(
        load.problems[0].ends_with("hr.jsonl:2: the line is longer than 1024 KiB; it was skipped"),
        "{:?}",
        load.problems
    );

    for (name, body) in [("empty.csv", "\n \n"), ("empty.jsonl", ""), ("empty.parquet", "")] {
        std::fs::write(dir.path().join(name), body).unwrap();
        let e = read_identities(&at(name), &BTreeMap::new(), now()).await.unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("the file is empty"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_fails_or_passes_the_cap_mid_stream_fails_the_file() {
    use futures::StreamExt;
    let first = bytes::Bytes::from(format!("{HEADER}A,a@x.example,,1,A,Eng,,active,,employee\n"));
    let cap = first.len() as u64 + 1;
    let chunks =
        move |last: object_store::Result<bytes::Bytes>| futures::stream::iter(vec![Ok(first.clone()), last]).boxed();
    // More bytes than the cap (a file that grew after its size was checked).
    let (reader, task) = stream::pump(chunks.clone()(Ok(bytes::Bytes::from_static(b"B,b@x.example\n"))), cap);
    let read = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        parse::csv(&mut reader, &cfg(""), &mut |_| {})
    });
    let e = read.await.unwrap().unwrap_err();
    assert!(e.contains("the read stopped"), "{e}");
    assert!(matches!(task.await.unwrap(), Err(stream::PumpError::TooLarge)));

    // A store error mid-read stops the parser (never a quarantined row) and is reported.
    let failure = object_store::Error::Generic { store: "test", source: "connection reset".into() };
    let (reader, task) = stream::pump(chunks(Err(failure)), MAX_IDENTITY_FILE);
    let mut rows = 0;
    let read = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let r = parse::csv(&mut reader, &cfg(""), &mut |_| rows += 1);
        (r, rows)
    });
    let (r, rows) = read.await.unwrap();
    assert!(r.unwrap_err().contains("the read stopped"));
    assert_eq!(rows, 1);
    assert!(matches!(task.await.unwrap(), Err(stream::PumpError::Store(_))));
}

#[test]
fn an_identity_export_that_shrank_past_the_share_is_refused_naming_both_counts() {
    use lastseen_lake::{PartitionState, Snapshot, TableState};
    let day = |n: u32| NaiveDate::from_ymd_opt(2026, 1, n).unwrap();
    let part =
        |rows: u64| PartitionState { files: Vec::new(), rows, run_id: "r".into(), committed_at: now(), version: 1 };
    let mut snap = Snapshot::default();
    snap.tables.insert(
        "identities".into(),
        TableState { schema_version: 1, partitions: BTreeMap::from([(day(1), part(1000)), (day(3), part(10))]) },
    );
    // Day 3 is compared with day 1 (the newest before it), not with itself.
    let err = check_identity_drop(&snap, day(3), 100, 0.2).unwrap_err();
    assert!(
        matches!(err, IngestError::IdentityDrop { rows: 100, previous_rows: 1000, previous_dt, .. } if previous_dt == day(1)),
        "{err:?}"
    );
    let msg = err.to_string();
    for needle in ["100 usable rows", "1000 rows", "90.0%", "20.0%", "lake.max_snapshot_drop", "--force"] {
        assert!(msg.contains(needle), "{needle} missing from {msg}");
    }
    // Within the share, growth, a first export, and a re-run of the only day against itself.
    check_identity_drop(&snap, day(3), 800, 0.2).unwrap();
    check_identity_drop(&snap, day(2), 5000, 0.0).unwrap();
    check_identity_drop(&Snapshot::default(), day(3), 1, 0.2).unwrap();
    assert!(check_identity_drop(&snap, day(1), 10, 0.5).is_err());
}
