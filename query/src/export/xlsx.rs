//! XLSX through rust_xlsxwriter: a styled, filterable header frozen in place; text written as
//! text cells (never parsed into a number or a formula); dates and timestamps as real Excel
//! dates (UTC); a new sheet every `xlsx_max_rows` rows (Excel stops at 1,048,576); and an
//! "About" sheet with the provenance and the SQL.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use rust_xlsxwriter::{Color, ExcelDateTime, Format as CellFormat, FormatBorder, Workbook, Worksheet, XlsxError};

use super::{Document, Format, is_text, stringify};
use crate::{QueryError, Result};

/// Days from Excel's epoch (1899-12-30, in the 1900 date system) to the Unix epoch.
const EXCEL_UNIX_EPOCH: f64 = 25_569.0;
const MICROS_PER_DAY: f64 = 86_400_000_000.0;
/// Characters of a column's content sampled to size it.
const WIDTH_SAMPLE_ROWS: usize = 200;

fn err(e: impl std::fmt::Display) -> QueryError {
    QueryError::output(Format::Xlsx, e)
}

/// One column of one batch in the cell type it is written as.
enum Cells {
    Text(StringArray),
    Number(Float64Array),
    Bool(BooleanArray),
    /// Days since the Unix epoch.
    Date(Int64Array),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(Int64Array),
}

fn cells(col: &ArrayRef) -> Result<Cells> {
    let t = col.data_type();
    Ok(match t {
        t if is_text(t) => Cells::Text(cast(col, &DataType::Utf8).map_err(err)?.as_string::<i32>().clone()),
        DataType::Boolean => Cells::Bool(col.as_boolean().clone()),
        t if t.is_numeric() => {
            Cells::Number(cast(col, &DataType::Float64).map_err(err)?.as_primitive::<Float64Type>().clone())
        }
        DataType::Date32 | DataType::Date64 => {
            let d = cast(col, &DataType::Date32).map_err(err)?;
            Cells::Date(cast(&d, &DataType::Int64).map_err(err)?.as_primitive::<Int64Type>().clone())
        }
        DataType::Timestamp(_, tz) => {
            let us = cast(col, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone())).map_err(err)?;
            Cells::Timestamp(cast(&us, &DataType::Int64).map_err(err)?.as_primitive::<Int64Type>().clone())
        }
        _ => Cells::Text(stringify(col, Format::Xlsx)?),
    })
}

struct Styles {
    header: CellFormat,
    text: CellFormat,
    date: CellFormat,
    timestamp: CellFormat,
}

impl Styles {
    fn new() -> Styles {
        Styles {
            header: CellFormat::new()
                .set_bold()
                .set_font_color(Color::White)
                .set_background_color(Color::RGB(0x1F4E78))
                .set_border_bottom(FormatBorder::Thin),
            // "@" is Excel's Text number format: the cell stays text even when a user edits it.
            text: CellFormat::new().set_num_format("@"),
            date: CellFormat::new().set_num_format("yyyy-mm-dd"),
            timestamp: CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        }
    }
}

pub(super) fn to_bytes(doc: &Document<'_>) -> Result<Vec<u8>> {
    let mut wb = Workbook::new();
    let styles = Styles::new();
    let total = doc.data.rows();
    let per_sheet = doc.options.xlsx_max_rows.max(1);
    let sheets = total.div_ceil(per_sheet).max(1);
    let mut rows = RowCursor::new(&doc.data.batches);
    let mut ranges = Vec::with_capacity(sheets);
    for s in 0..sheets {
        let name = if s == 0 { "Data".to_string() } else { format!("Data {}", s + 1) };
        let n = per_sheet.min(total - s * per_sheet);
        let ws = wb.add_worksheet_with_constant_memory().map_err(err)?;
        ws.set_name(&name).map_err(err)?;
        data_sheet(ws, doc, &styles, &mut rows, n)?;
        ranges.push((name, s * per_sheet + 1, s * per_sheet + n));
    }
    about_sheet(wb.add_worksheet(), doc, &styles, &ranges).map_err(err)?;
    wb.save_to_buffer().map_err(err)
}

/// Walks the result's rows across batches, converting each batch's columns once.
struct RowCursor<'a> {
    batches: &'a [RecordBatch],
    batch: usize,
    row: usize,
    cells: Option<Vec<Cells>>,
}

impl<'a> RowCursor<'a> {
    fn new(batches: &'a [RecordBatch]) -> Self {
        RowCursor { batches, batch: 0, row: 0, cells: None }
    }

    /// The current batch's columns and the row within it, moving past exhausted batches.
    fn next(&mut self) -> Result<Option<(&[Cells], usize)>> {
        while self.batch < self.batches.len() && self.row >= self.batches[self.batch].num_rows() {
            self.batch += 1;
            self.row = 0;
            self.cells = None;
        }
        let Some(b) = self.batches.get(self.batch) else { return Ok(None) };
        if self.cells.is_none() {
            self.cells = Some(b.columns().iter().map(cells).collect::<Result<_>>()?);
        }
        let row = self.row;
        self.row += 1;
        Ok(self.cells.as_deref().map(|c| (c, row)))
    }
}

fn data_sheet(ws: &mut Worksheet, doc: &Document<'_>, st: &Styles, rows: &mut RowCursor<'_>, n: usize) -> Result<()> {
    let fields = doc.data.schema.fields();
    let last_col = u16::try_from(fields.len().saturating_sub(1)).map_err(|_| err("more than 65,536 columns"))?;
    let mut widths: Vec<usize> = fields.iter().map(|f| f.name().chars().count() + 2).collect();
    for (c, f) in fields.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, &*fit_cell(f.name()), &st.header).map_err(err)?;
    }
    for i in 0..n {
        let Some((cols, r)) = rows.next()? else { break };
        let row = (i + 1) as u32;
        for (c, cells) in cols.iter().enumerate() {
            let col = c as u16;
            let w = match cells {
                Cells::Text(a) if a.is_valid(r) => {
                    let text = fit_cell(a.value(r));
                    ws.write_string_with_format(row, col, &*text, &st.text).map_err(err)?;
                    text.chars().count()
                }
                Cells::Number(a) if a.is_valid(r) => {
                    ws.write_number(row, col, a.value(r)).map_err(err)?;
                    12
                }
                Cells::Bool(a) if a.is_valid(r) => {
                    ws.write_boolean(row, col, a.value(r)).map_err(err)?;
                    6
                }
                Cells::Date(a) if a.is_valid(r) => match excel_date(EXCEL_UNIX_EPOCH + a.value(r) as f64) {
                    Some(d) => {
                        ws.write_datetime_with_format(row, col, &d, &st.date).map_err(err)?;
                        10
                    }
                    None => {
                        let text = date_text(a.value(r));
                        ws.write_string_with_format(row, col, &text, &st.text).map_err(err)?;
                        text.len()
                    }
                },
                Cells::Timestamp(a) if a.is_valid(r) => {
                    match excel_date(EXCEL_UNIX_EPOCH + a.value(r) as f64 / MICROS_PER_DAY) {
                        Some(d) => {
                            ws.write_datetime_with_format(row, col, &d, &st.timestamp).map_err(err)?;
                            19
                        }
                        None => {
                            let text = timestamp_text(a.value(r));
                            ws.write_string_with_format(row, col, &text, &st.text).map_err(err)?;
                            text.len()
                        }
                    }
                }
                _ => 0,
            };
            if i < WIDTH_SAMPLE_ROWS {
                widths[c] = widths[c].max(w + 2);
            }
        }
    }
    for (c, w) in widths.iter().enumerate() {
        ws.set_column_width(c as u16, (*w).clamp(8, 60) as f64).map_err(err)?;
    }
    ws.set_freeze_panes(1, 0).map_err(err)?;
    ws.autofilter(0, 0, n as u32, last_col).map_err(err)?;
    Ok(())
}

/// The Excel date of `serial`, or `None` outside Excel's range (1900-01-01 to 9999-12-31):
/// such a value is written as text rather than failing the whole export.
fn excel_date(serial: f64) -> Option<ExcelDateTime> {
    ExcelDateTime::from_serial_datetime(serial).ok()
}

fn date_text(days: i64) -> String {
    days.checked_mul(86_400)
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(|| format!("{days} days after 1970-01-01"), |d| d.date_naive().to_string())
}

fn timestamp_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map_or_else(|| format!("{micros} µs after 1970-01-01"), |d| d.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string())
}

/// Excel's limit on the characters of one cell.
pub(crate) const XLSX_MAX_CELL_CHARS: usize = 32_767;

/// `text` cut to fit one cell, ending with a marker that says how long it was; one long value
/// (an HR note, a pasted log) must not fail the whole export.
pub(crate) fn fit_cell(text: &str) -> std::borrow::Cow<'_, str> {
    let n = text.chars().count();
    if n <= XLSX_MAX_CELL_CHARS {
        return std::borrow::Cow::Borrowed(text);
    }
    let marker = format!(" … [truncated: {n} characters]");
    let keep = XLSX_MAX_CELL_CHARS - marker.chars().count();
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&marker);
    std::borrow::Cow::Owned(out)
}

fn about_sheet(
    ws: &mut Worksheet,
    doc: &Document<'_>,
    st: &Styles,
    ranges: &[(String, usize, usize)],
) -> std::result::Result<(), XlsxError> {
    ws.set_name("About")?;
    ws.set_column_width(0, 22)?;
    ws.set_column_width(1, 90)?;
    ws.write_string_with_format(0, 0, "Field", &st.header)?;
    ws.write_string_with_format(0, 1, "Value", &st.header)?;
    let mut row = 1u32;
    let mut put = |ws: &mut Worksheet, k: &str, v: &str| -> std::result::Result<(), XlsxError> {
        ws.write_string_with_format(row, 0, k, &st.text)?;
        ws.write_string_with_format(row, 1, &*fit_cell(v), &st.text)?;
        row += 1;
        Ok(())
    };
    for (k, v) in doc.provenance.fields(doc.data.rows()) {
        put(ws, &k, &v)?;
    }
    for (name, first, last) in ranges {
        put(ws, &format!("Sheet {name}"), &format!("rows {first} to {last}"))?;
    }
    put(ws, "Times", "dates and timestamps are UTC")?;
    // One line per row: a cell holds at most 32,767 characters and a report's SQL is read
    // line by line anyway.
    put(ws, "SQL", "")?;
    for line in doc.provenance.sql.lines() {
        put(ws, "", line)?;
    }
    Ok(())
}
