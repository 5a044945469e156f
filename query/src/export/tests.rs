//! Exporter tests on a small fixed result: snapshots of the text formats, XLSX and Parquet read
//! back, the HTML's escaping and self-containment, the formula guard.

use std::io::Cursor;
use std::sync::Arc;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::{NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Int64Array, ListBuilder, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use super::*;

const FORMULA: &str = "=HYPERLINK(\"http://x\")";

fn ts(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, mi, s).unwrap().timestamp_micros()
}

fn day(y: i32, m: u32, d: u32) -> i32 {
    lastseen_lake::catalog::date32(NaiveDate::from_ymd_opt(y, m, d).unwrap())
}

/// Four accounts covering every cell type the reports produce, nulls, hostile text and a list.
fn fixture() -> ResultSet {
    let mut roles = ListBuilder::new(StringBuilder::new());
    for r in [Some(vec!["admin", "owner"]), Some(vec![]), None, Some(vec!["=cmd|' /C calc'!A0"])] {
        match r {
            Some(v) => {
                for x in v {
                    roles.values().append_value(x);
                }
                roles.append(true);
            }
            None => roles.append(false),
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("display_name", DataType::Utf8, true),
        Field::new("cost_center", DataType::Utf8View, true),
        Field::new("days_since_last_seen", DataType::Int64, true),
        Field::new("billable", DataType::Boolean, true),
        Field::new("last_seen_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("dt", DataType::Date32, false),
        Field::new("roles", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["U001", "U002", "U003", "U004"])),
        Arc::new(StringArray::from(vec![Some("Ada Lovelace"), Some(FORMULA), Some("@ops <admin> & \"co\""), None])),
        Arc::new(datafusion::arrow::array::StringViewArray::from(vec![
            Some("00123"),
            Some("+44 20"),
            None,
            Some("1e5"),
        ])),
        Arc::new(Int64Array::from(vec![Some(120), Some(45), None, Some(7)])),
        Arc::new(BooleanArray::from(vec![Some(true), Some(false), None, Some(true)])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(ts(2026, 3, 2, 8, 15, 30)),
                Some(ts(2026, 5, 16, 23, 59, 59)),
                None,
                Some(ts(2026, 6, 23, 0, 0, 0)),
            ])
            .with_timezone("UTC"),
        ),
        Arc::new(Date32Array::from(vec![day(2026, 6, 30); 4])),
        Arc::new(roles.finish()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    // Two batches, so exporters that walk batches are exercised across a boundary.
    ResultSet::new(schema, vec![batch.slice(0, 3), batch.slice(3, 1)])
}

fn provenance() -> Provenance {
    let mut p = Provenance::new(
        "Dormant Slack accounts",
        "-- @title Dormant Slack accounts\nSELECT *\nFROM slack_users\nWHERE dt = $as_of;\n",
        Utc.with_ymd_and_hms(2026, 7, 1, 6, 0, 0).unwrap(),
    )
    .param("as_of", "2026-06-30")
    .param("days", 30)
    .param("workspace", "all");
    p.report = Some("dormant".into());
    p.as_of = NaiveDate::from_ymd_opt(2026, 6, 30);
    p.lake_version = Some(7);
    p.run_id = Some("20260630T000500Z-1a2b3c4d".into());
    p.run_date = NaiveDate::from_ymd_opt(2026, 6, 30);
    p.run_status = Some("succeeded".into());
    p.lastseen_version = "0.1.0".into();
    p
}

fn charts() -> Vec<Chart> {
    let line = Arc::new(Schema::new(vec![
        Field::new("day", DataType::Date32, false),
        Field::new("dormant", DataType::Int64, false),
        Field::new("never_seen", DataType::Int64, false),
    ]));
    let line = RecordBatch::try_new(
        line.clone(),
        vec![
            Arc::new(Date32Array::from((0..30).map(|i| day(2026, 6, 1) + i).collect::<Vec<_>>())),
            Arc::new(Int64Array::from((0..30).map(|i| 400 + (i * 37) % 90).collect::<Vec<_>>())),
            Arc::new(Int64Array::from((0..30).map(|i| 120 - i).collect::<Vec<_>>())),
        ],
    )
    .unwrap();
    let bar = Arc::new(Schema::new(vec![
        Field::new("department", DataType::Utf8, true),
        Field::new("accounts", DataType::Int64, false),
    ]));
    let bar = RecordBatch::try_new(
        bar.clone(),
        vec![
            Arc::new(StringArray::from(vec![Some("Engineering"), Some("Sales <EMEA>"), None])),
            Arc::new(Int64Array::from(vec![212, 97, 12])),
        ],
    )
    .unwrap();
    vec![
        Chart {
            kind: ChartKind::Line,
            title: "Dormant accounts per day".into(),
            data: ResultSet::new(line.schema(), vec![line]),
        },
        Chart { kind: ChartKind::Bar, title: "By department".into(), data: ResultSet::new(bar.schema(), vec![bar]) },
    ]
}

fn render(format: Format, options: &ExportOptions) -> Vec<u8> {
    let (data, p, c) = (fixture(), provenance(), charts());
    let doc = Document { data: &data, provenance: &p, charts: &c, options };
    let mut out = Vec::new();
    doc.write(format, &mut out).unwrap();
    out
}

fn text(format: Format) -> String {
    String::from_utf8(render(format, &ExportOptions::default())).unwrap()
}

#[test]
fn csv_snapshot() {
    insta::assert_snapshot!("csv", text(Format::Csv));
}

#[test]
fn json_lines_snapshot() {
    insta::assert_snapshot!("json", text(Format::Json));
}

#[test]
fn table_snapshot() {
    insta::assert_snapshot!("table", text(Format::Table));
}

#[test]
fn provenance_side_file_snapshot() {
    insta::assert_snapshot!("provenance", provenance().to_json(4));
}

#[test]
fn csv_guards_every_formula_lead_and_can_start_with_a_bom() {
    let csv = text(Format::Csv);
    // Text starting with a formula lead is guarded; a list's text starts with `[`, which no
    // spreadsheet runs; number-like text is not touched.
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{csv}");
    assert!(csv.contains(",'+44 20,") && csv.contains("\"'@ops <admin>") && csv.contains(",[=cmd|"), "{csv}");
    assert!(csv.contains(",00123,"), "{csv}");
    let with_bom = render(Format::Csv, &ExportOptions { bom: true, ..Default::default() });
    assert_eq!(&with_bom[..3], b"\xEF\xBB\xBF");
    assert_eq!(&with_bom[3..], csv.as_bytes());
    for lead in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
        assert!(csv::guard_formula(lead).starts_with('\''), "{lead:?}");
    }
    assert_eq!(csv::guard_formula("alice"), "alice");
}

#[test]
fn empty_results_keep_their_header() {
    let full = fixture();
    let data = ResultSet::new(full.schema.clone(), Vec::new());
    let p = provenance();
    let doc = Document { data: &data, provenance: &p, charts: &[], options: &ExportOptions::default() };
    let mut out = Vec::new();
    doc.write(Format::Csv, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "account_id,display_name,cost_center,days_since_last_seen,billable,last_seen_at,dt,roles\n"
    );
    let mut out = Vec::new();
    doc.write(Format::Table, &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("| account_id | display_name |"));
}

fn workbook(options: &ExportOptions) -> Xlsx<Cursor<Vec<u8>>> {
    open_workbook_from_rs(Cursor::new(render(Format::Xlsx, options))).unwrap()
}

/// Excel's serial day number of a UTC instant.
fn serial(micros: i64) -> f64 {
    25_569.0 + micros as f64 / 86_400e6
}

#[test]
fn xlsx_reads_back_with_typed_cells_and_text_kept_as_text() {
    let mut wb = workbook(&ExportOptions::default());
    assert_eq!(wb.sheet_names(), ["Data", "About"]);
    let data = wb.worksheet_range("Data").unwrap();
    assert_eq!(data.get_size(), (5, 8), "header + 4 rows, 8 columns");
    let header: Vec<String> = data.rows().next().unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(header, fixture().schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>());
    let row = |r: usize| data.rows().nth(r).unwrap().to_vec();

    assert_eq!(row(1)[0], Data::String("U001".into()));
    // The formula stays a plain string cell, unguarded (a string cell never runs).
    assert_eq!(row(2)[1], Data::String(FORMULA.into()));
    assert_eq!(row(3)[1], Data::String("@ops <admin> & \"co\"".into()));
    assert_eq!(row(4)[1], Data::Empty);
    // Text that looks like a number stays text.
    assert_eq!(row(1)[2], Data::String("00123".into()));
    assert_eq!(row(4)[2], Data::String("1e5".into()));
    assert_eq!(row(1)[3], Data::Float(120.0));
    assert_eq!(row(3)[3], Data::Empty);
    assert_eq!(row(1)[4], Data::Bool(true));
    assert_eq!(row(2)[4], Data::Bool(false));
    match &row(1)[5] {
        Data::DateTime(d) => assert!((d.as_f64() - serial(ts(2026, 3, 2, 8, 15, 30))).abs() < 1e-6, "{d:?}"),
        other => panic!("last_seen_at should be an Excel date, got {other:?}"),
    }
    match &row(1)[6] {
        Data::DateTime(d) => assert_eq!(d.as_f64(), 25_569.0 + f64::from(day(2026, 6, 30))),
        other => panic!("dt should be an Excel date, got {other:?}"),
    }
    assert_eq!(row(1)[7], Data::String("[admin, owner]".into()));
    // No cell anywhere holds a formula.
    let formulas = wb.worksheet_formula("Data").unwrap();
    assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()), "formulas: {formulas:?}");

    let about = wb.worksheet_range("About").unwrap();
    let pairs: Vec<(String, String)> =
        about.rows().map(|r| (r[0].to_string(), r.get(1).map(ToString::to_string).unwrap_or_default())).collect();
    let get = |k: &str| pairs.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    assert_eq!(get("Report").as_deref(), Some("dormant"));
    assert_eq!(get("As of").as_deref(), Some("2026-06-30"));
    assert_eq!(get("Parameter days").as_deref(), Some("30"));
    assert_eq!(get("Rows").as_deref(), Some("4"));
    assert_eq!(get("Lake version").as_deref(), Some("7"));
    assert_eq!(get("Run id").as_deref(), Some("20260630T000500Z-1a2b3c4d"));
    assert_eq!(get("Generated at").as_deref(), Some("2026-07-01T06:00:00Z"));
    let sql: Vec<&str> = pairs.iter().skip_while(|(f, _)| f != "SQL").skip(1).map(|(_, v)| v.as_str()).collect();
    assert_eq!(sql, ["-- @title Dormant Slack accounts", "SELECT *", "FROM slack_users", "WHERE dt = $as_of;"]);
}

#[test]
fn xlsx_splits_sheets_past_the_row_limit() {
    let mut wb = workbook(&ExportOptions { xlsx_max_rows: 3, ..Default::default() });
    assert_eq!(wb.sheet_names(), ["Data", "Data 2", "About"]);
    let ids = |wb: &mut Xlsx<_>, sheet: &str| -> Vec<String> {
        wb.worksheet_range(sheet).unwrap().rows().map(|r| r[0].to_string()).collect()
    };
    assert_eq!(ids(&mut wb, "Data"), ["account_id", "U001", "U002", "U003"]);
    assert_eq!(ids(&mut wb, "Data 2"), ["account_id", "U004"]);
    let about = wb.worksheet_range("About").unwrap();
    let notes: Vec<String> =
        about.rows().filter(|r| r[0].to_string().starts_with("Sheet ")).map(|r| r[1].to_string()).collect();
    assert_eq!(notes, ["rows 1 to 3", "rows 4 to 4"]);
}

#[test]
fn parquet_round_trips_with_zstd_and_provenance_metadata() {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use datafusion::parquet::basic::Compression;

    let bytes = bytes::Bytes::from(render(Format::Parquet, &ExportOptions::default()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    let meta = builder.metadata().clone();
    let kv = meta.file_metadata().key_value_metadata().unwrap();
    let prov = kv.iter().find(|k| k.key == parquet::PROVENANCE_KEY).and_then(|k| k.value.clone()).unwrap();
    let prov: serde_json::Value = serde_json::from_str(&prov).unwrap();
    assert_eq!(prov["lake_version"], 7);
    assert_eq!(prov["rows"], 4);
    assert!(matches!(meta.row_group(0).column(0).compression(), Compression::ZSTD(_)));
    let batches: Vec<RecordBatch> = builder.build().unwrap().collect::<std::result::Result<_, _>>().unwrap();
    let want = fixture();
    let got = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let want = datafusion::arrow::compute::concat_batches(&want.schema, &want.batches).unwrap();
    assert_eq!(got.num_rows(), 4);
    for (i, f) in want.schema().fields().iter().enumerate() {
        let g = got.column_by_name(f.name()).unwrap();
        let g = datafusion::arrow::compute::cast(g, f.data_type()).unwrap();
        assert_eq!(&g, want.column(i), "column {}", f.name());
    }
}

#[test]
fn html_is_self_contained_escaped_and_has_its_charts_and_provenance() {
    let html = text(Format::Html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    for banned in ["<script", "<link", " src=", "href=", "url(", "@import"] {
        assert!(!html.contains(banned), "the report must not load anything: found {banned:?}");
    }
    // Data text is escaped: no raw markup or attribute-breaking quote from a display name.
    assert!(html.contains("<td>@ops &lt;admin&gt; &amp; &quot;co&quot;</td>"), "escaped cell");
    assert!(html.contains("=HYPERLINK(&quot;http://x&quot;)"));
    assert!(!html.contains("<admin>") && !html.contains("\"http://x\""));
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(html.contains("<figcaption>Dormant accounts per day</figcaption>"));
    assert!(html.contains("<title>Sales &lt;EMEA&gt;: 97</title>"), "bar tooltip");
    assert_eq!(html.matches("<path class=\"series\"").count(), 2, "one line per series");
    assert!(html.contains("<dt>Run id</dt><dd>20260630T000500Z-1a2b3c4d</dd>"));
    assert!(html.contains("WHERE dt = $as_of;"));
    assert!(html.contains("4 rows"));
}

#[test]
fn html_caps_its_table_but_says_so() {
    let out = render(Format::Html, &ExportOptions { html_max_rows: 2, ..Default::default() });
    let html = String::from_utf8(out).unwrap();
    assert_eq!(html.matches("<tr><td>U00").count(), 2);
    assert!(html.contains("The first 2 of 4 rows"));
}

#[test]
fn save_writes_the_export_and_its_side_file_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (data, p) = (fixture(), provenance());
    let doc = Document { data: &data, provenance: &p, charts: &[], options: &ExportOptions::default() };
    for format in Format::ALL {
        let path = dir.path().join(format!("out.{format}"));
        let written = doc.save(format, &path).unwrap();
        if format.embeds_provenance() {
            assert_eq!(written, std::slice::from_ref(&path));
        } else {
            let side = dir.path().join(format!("out.{format}.provenance.json"));
            assert_eq!(written, [path.clone(), side.clone()]);
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(side).unwrap()).unwrap();
            assert_eq!(v["run_id"], "20260630T000500Z-1a2b3c4d");
        }
    }
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "out.csv",
            "out.csv.provenance.json",
            "out.html",
            "out.json",
            "out.json.provenance.json",
            "out.parquet",
            "out.table",
            "out.table.provenance.json",
            "out.xlsx"
        ]
    );
    let e = doc.save(Format::Csv, &dir.path().join("missing/out.csv")).unwrap_err();
    assert!(e.to_string().contains("missing/out.csv") && e.to_string().contains("writable"), "{e}");
}

#[cfg(unix)]
#[test]
fn exports_are_owner_only_and_never_follow_a_planted_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (data, p) = (fixture(), provenance());
    let doc = Document { data: &data, provenance: &p, charts: &[], options: &ExportOptions::default() };
    let out = dir.path().join("out.csv");
    doc.save(Format::Csv, &out).unwrap();
    for f in [out.clone(), side_file(&out)] {
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
    }

    // A symlink planted at the temporary name: the export fails, the link's target is intact.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let next = dir.path().join("next.csv");
    let tmp = dir.path().join(format!("next.csv.{}.tmp", std::process::id()));
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    let e = doc.save(Format::Csv, &next).unwrap_err();
    assert!(e.to_string().contains("next.csv"), "{e}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!next.exists() && std::fs::symlink_metadata(&tmp).unwrap().file_type().is_symlink());

    // A symlink as the export's own name: refused, the target intact.
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let e = doc.save(Format::Csv, &link).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// `--output` naming a FIFO or device (`/dev/null`) is refused: the rename into place would
/// replace the node itself (as root, the system's /dev/null became a regular file).
#[cfg(unix)]
#[test]
fn an_export_onto_a_fifo_or_device_is_refused_and_leaves_it_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let (data, p) = (fixture(), provenance());
    let doc = Document { data: &data, provenance: &p, charts: &[], options: &ExportOptions::default() };
    let fifo = dir.path().join("pipe.csv");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let e = doc.save(Format::Csv, &fifo).unwrap_err();
    assert!(e.to_string().contains("pipe.csv") && e.to_string().contains("not a regular file"), "{e}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO is still a FIFO");
    assert!(!side_file(&fifo).exists(), "no provenance next to it");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
}

#[test]
fn table_output_carries_no_terminal_escape_sequences() {
    let schema = Arc::new(Schema::new(vec![Field::new("cell", DataType::Utf8, true)]));
    let hostile = "a\x1b]52;c;ZXZpbA==\x07b";
    let col: ArrayRef = Arc::new(StringArray::from(vec![Some(hostile), Some("x\u{9b}2J"), None]));
    let data = ResultSet::new(schema.clone(), vec![RecordBatch::try_new(schema, vec![col]).unwrap()]);
    let p = provenance();
    let doc = Document { data: &data, provenance: &p, charts: &[], options: &ExportOptions::default() };
    let mut out = Vec::new();
    doc.write(Format::Table, &mut out).unwrap();
    assert!(!out.iter().any(|b| *b == 0x1b || *b == 0x07), "{out:?}");
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("a\\x1b]52;c;ZXZpbA==\\x07b") && text.contains("x\\u{9b}2J"), "{text}");
    assert!(!text.contains('\u{9b}'));
}

#[test]
fn xlsx_truncates_overlong_cells_and_writes_out_of_range_dates_as_text() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("note", DataType::Utf8, true),
        Field::new("dt", DataType::Date32, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
    ]));
    let long = "é".repeat(40_000);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![Some(long.as_str()), Some("short")])),
        Arc::new(Date32Array::from(vec![Some(day(1850, 1, 1)), Some(day(2026, 6, 30))])),
        Arc::new(TimestampMicrosecondArray::from(vec![Some(ts(1800, 6, 1, 12, 0, 0)), None]).with_timezone("UTC")),
    ];
    let data = ResultSet::new(schema.clone(), vec![RecordBatch::try_new(schema, cols).unwrap()]);
    let p = provenance();
    let doc = Document { data: &data, provenance: &p, charts: &[], options: &ExportOptions::default() };
    let mut buf = Vec::new();
    doc.write(Format::Xlsx, &mut buf).unwrap();
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(buf)).unwrap();
    let sheet = wb.worksheet_range("Data").unwrap();
    let note = sheet.get((1, 0)).unwrap().to_string();
    assert_eq!(note.chars().count(), 32_767);
    assert!(
        note.starts_with("éé") && note.ends_with(" … [truncated: 40000 characters]"),
        "{}",
        &note[note.len() - 60..]
    );
    assert_eq!(sheet.get((2, 0)), Some(&Data::String("short".into())));
    assert_eq!(sheet.get((1, 1)), Some(&Data::String("1850-01-01".into())));
    assert_eq!(sheet.get((1, 2)), Some(&Data::String("1800-06-01T12:00:00Z".into())));
    assert!(matches!(sheet.get((2, 1)), Some(Data::DateTime(_))), "{:?}", sheet.get((2, 1)));
}

/// The fixture's rows `times` over, as a query stream, with an error after them when `fail`.
fn stream_of(data: &ResultSet, times: usize, fail: bool) -> datafusion::execution::SendableRecordBatchStream {
    let mut items: Vec<datafusion::error::Result<RecordBatch>> =
        (0..times).flat_map(|_| data.batches.iter().cloned().map(Ok)).collect();
    if fail {
        items.push(Err(datafusion::error::DataFusionError::Execution("the query failed half-way".into())));
    }
    Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
        data.schema.clone(),
        futures::stream::iter(items),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_export_is_byte_for_byte_the_saved_one_and_a_failed_one_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let (one, p) = (fixture(), provenance());
    // Many batches: several of the CSV encoder's windows, and more than the channel holds.
    let times = 40;
    let data = ResultSet::new(one.schema.clone(), (0..times).flat_map(|_| one.batches.clone()).collect());
    for (format, bom) in [(Format::Csv, false), (Format::Csv, true), (Format::Json, false)] {
        let options = ExportOptions { bom, ..Default::default() };
        let doc = Document { data: &data, provenance: &p, charts: &[], options: &options };
        let saved = dir.path().join(format!("saved-{bom}.{}", format.extension()));
        doc.save(format, &saved).unwrap();
        let streamed = dir.path().join(format!("streamed-{bom}.{}", format.extension()));
        let (rows, written) =
            save_stream(stream_of(&one, times, false), format, &p, &options, Some(&streamed)).await.unwrap();
        assert_eq!(rows, data.rows() as u64);
        assert_eq!(written, [streamed.clone(), side_file(&streamed)]);
        assert_eq!(std::fs::read(&streamed).unwrap(), std::fs::read(&saved).unwrap(), "{format}");
        assert_eq!(std::fs::read(side_file(&streamed)).unwrap(), std::fs::read(side_file(&saved)).unwrap());

        // A query error after rows were written: the error, and neither the file, its side file
        // nor the temporary file.
        let failed = dir.path().join(format!("failed.{}", format.extension()));
        let e = save_stream(stream_of(&one, times, true), format, &p, &options, Some(&failed)).await.unwrap_err();
        assert!(e.to_string().contains("the query failed half-way"), "{e}");
        let names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(names.iter().all(|n| !n.starts_with("failed")), "{names:?}");
        // An export the writer refuses (a FIFO) fails before the query is read to the end.
        #[cfg(unix)]
        {
            let fifo = dir.path().join(format!("fifo-{bom}.{}", format.extension()));
            assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
            let e = save_stream(stream_of(&one, times, false), format, &p, &options, Some(&fifo)).await.unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
    }
    // The formats written whole are refused, not half-streamed.
    for format in Format::ALL.into_iter().filter(|f| !f.streams()) {
        let e = save_stream(stream_of(&one, 1, false), format, &p, &ExportOptions::default(), None).await.unwrap_err();
        assert!(matches!(e, QueryError::Usage(_)), "{format}: {e}");
    }
}

/// An export of several sync intervals, written through the syncing thread: every byte, in order.
#[test]
fn an_export_past_several_sync_intervals_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let line: Vec<u8> = (0..=254u8).chain([b'\n']).collect();
    let lines = 3 * SYNC_EVERY / line.len() + 7;
    write_atomically(&path, |file| {
        write_synced(file, &path, |w| {
            for i in 0..lines {
                w.write_all(&line).unwrap();
                w.write_all(format!("{i}\n").as_bytes()).unwrap();
            }
            Ok(())
        })
    })
    .unwrap();
    let mut expected = Vec::new();
    for i in 0..lines {
        expected.extend_from_slice(&line);
        expected.extend_from_slice(format!("{i}\n").as_bytes());
    }
    let written = std::fs::read(&path).unwrap();
    assert_eq!(written.len(), expected.len());
    assert!(written == expected, "the export's bytes differ from what was written");
}

/// A sync that fails on the syncing thread fails the export (here the descriptor is a pipe,
/// which `fdatasync` refuses), instead of being lost with the thread.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_background_sync_fails_the_export() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let drain = std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()).unwrap());
    let mut file = std::fs::File::from(std::os::fd::OwnedFd::from(writer));
    let path = Path::new("pipe.csv");
    let chunk = vec![b'x'; 1024 * 1024];
    let e = write_synced(&mut file, path, |w| {
        for _ in 0..(3 * SYNC_EVERY / chunk.len()) {
            w.write_all(&chunk).map_err(|e| QueryError::io(path, e))?;
        }
        Ok(())
    })
    .unwrap_err();
    assert!(e.to_string().contains("pipe.csv") && e.to_string().contains("Invalid argument"), "{e}");
    drop(file);
    drain.join().unwrap();
}

/// `rows` distinct rows of every kind of cell a sorted export meets (text that needs quoting or
/// guarding, NULLs, timestamps, dates, booleans, lists), dealt round-robin to `partitions`
/// partitions in batches of `chunk` rows.
fn sortable(rows: usize, partitions: usize, chunk: usize) -> datafusion::datasource::MemTable {
    let texts = ["plain", "=SUM(A1)", "a,b", "say \"hi\"", "two\nlines", "", "@ops", "é ünï"];
    let mut roles = ListBuilder::new(StringBuilder::new());
    for i in 0..rows {
        if i % 5 == 0 {
            roles.append(false);
        } else {
            for r in 0..i % 3 {
                roles.values().append_value(texts[(i + r) % texts.len()]);
            }
            roles.append(true);
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("seen", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("dt", DataType::Date32, false),
        Field::new("billable", DataType::Boolean, true),
        Field::new("roles", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
    ]));
    let ids = 0..rows as i64;
    let all = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(Int64Array::from_iter(ids.clone().map(|i| (i % 11 != 0).then_some(i % 7)))),
            Arc::new(StringArray::from_iter(
                ids.clone().map(|i| (i % 13 != 0).then(|| texts[i as usize % texts.len()])),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter(
                    ids.clone().map(|i| (i % 4 != 0).then(|| ts(2026, 1, 1, 0, 0, 0) + i * 3_600_000_017)),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Date32Array::from_iter_values(ids.clone().map(|i| day(2026, 6, 30) - (i % 400) as i32))),
            Arc::new(BooleanArray::from_iter(ids.clone().map(|i| (i % 6 != 0).then_some(i % 2 == 0)))),
            Arc::new(roles.finish()),
        ],
    )
    .unwrap();
    let mut parts = vec![Vec::new(); partitions];
    for (n, start) in (0..rows).step_by(chunk).enumerate() {
        parts[n % partitions].push(all.slice(start, chunk.min(rows - start)));
    }
    datafusion::datasource::MemTable::try_new(schema, parts).unwrap()
}

fn sort_session(gather: bool, batch_size: usize) -> datafusion::prelude::SessionContext {
    let config = datafusion::prelude::SessionConfig::new().with_target_partitions(3).with_batch_size(batch_size);
    let mut state =
        datafusion::execution::session_state::SessionStateBuilder::new().with_config(config).with_default_features();
    if gather {
        state = state.with_physical_optimizer_rule(Arc::new(crate::sort::GatherSort));
    }
    datafusion::prelude::SessionContext::new_with_state(state.build())
}

/// A sorted export written from the sort's runs (`save_plan` over a [`GatherSortExec`]) is
/// byte for byte what `Document::save` writes of DataFusion's own sort of the same rows: over
/// several partitions and batch sizes, with and without a BOM, with a one-column result (whose
/// empty cell is written differently), and with no rows. A query that fails after rows were
/// sorted leaves no file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sorted_csv_export_is_byte_for_byte_the_saved_sort() {
    let dir = tempfile::tempdir().unwrap();
    let p = provenance();
    let queries = [
        "SELECT * FROM t ORDER BY k DESC NULLS FIRST, s, id",
        "SELECT s FROM t ORDER BY s NULLS FIRST",
        "SELECT id, seen, roles FROM t WHERE id < 0 ORDER BY seen",
    ];
    // The last also written through a `Write`, as to standard output.
    let cases = [(1, 1, 1, 7), (300, 1, 64, 50), (5000, 3, 700, 8192), (5000, 2, 33, 1000), (30_000, 3, 4000, 8192)];
    for (rows, partitions, chunk, batch_size) in cases {
        for (q, sql) in queries.iter().enumerate() {
            for bom in [false, true] {
                let options = ExportOptions { bom, ..Default::default() };
                let ours = sort_session(true, batch_size);
                ours.register_table("t", Arc::new(sortable(rows, partitions, chunk))).unwrap();
                let df = ours.sql(sql).await.unwrap();
                let context = Arc::new(df.task_ctx());
                let plan = df.create_physical_plan().await.unwrap();
                assert!(plan.downcast_ref::<crate::sort::GatherSortExec>().is_some(), "{sql}: not a gathered sort");
                let name = format!("{rows}-{partitions}-{chunk}-{batch_size}-{q}-{bom}");
                let sorted = dir.path().join(format!("sorted-{name}.csv"));
                let (n, written) = save_plan(plan, context, Format::Csv, &p, &options, Some(&sorted)).await.unwrap();
                assert_eq!(written, [sorted.clone(), side_file(&sorted)]);

                let theirs = sort_session(false, batch_size);
                theirs.register_table("t", Arc::new(sortable(rows, partitions, chunk))).unwrap();
                let df = theirs.sql(sql).await.unwrap();
                let schema = Arc::new(df.schema().as_arrow().clone());
                let data = ResultSet::new(schema, df.collect().await.unwrap());
                let saved = dir.path().join(format!("saved-{name}.csv"));
                Document { data: &data, provenance: &p, charts: &[], options: &options }
                    .save(Format::Csv, &saved)
                    .unwrap();
                assert_eq!(n, data.rows() as u64, "{name}");
                let (a, b) = (std::fs::read(&sorted).unwrap(), std::fs::read(&saved).unwrap());
                assert!(
                    a == b,
                    "{name}: the sorted export differs from the saved one ({} and {} bytes)",
                    a.len(),
                    b.len()
                );
                assert_eq!(std::fs::read(side_file(&sorted)).unwrap(), std::fs::read(side_file(&saved)).unwrap());
                if rows < 30_000 {
                    continue;
                }
                // The other way sorted records are written: through a `Write` (standard output).
                let df = ours.sql(sql).await.unwrap();
                let context = Arc::new(df.task_ctx());
                let plan = df.create_physical_plan().await.unwrap();
                let sort = plan.downcast_ref::<crate::sort::GatherSortExec>().unwrap();
                let records = csv::encode_sorted(sort, context).await.unwrap();
                let mut out = Vec::new();
                let n = csv::write_sorted(&plan.schema(), &records, bom, &mut out).unwrap();
                assert_eq!(n, data.rows() as u64);
                assert!(out == b, "{name}: the sorted export through a `Write` differs from the saved one");
            }
        }
    }
    // Division by zero at id 4000, below the sort: the error, and no file of that name.
    let ctx = sort_session(true, 512);
    ctx.register_table("t", Arc::new(sortable(5000, 3, 100))).unwrap();
    let df = ctx.sql("SELECT id, s, 100 / (id - 4000) AS x FROM t ORDER BY s, id").await.unwrap();
    let context = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await.unwrap();
    assert!(plan.downcast_ref::<crate::sort::GatherSortExec>().is_some());
    let failed = dir.path().join("failed.csv");
    let e = save_plan(plan, context, Format::Csv, &p, &ExportOptions::default(), Some(&failed)).await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("divide by zero"), "{e}");
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| !n.starts_with("failed")), "{names:?}");
}
