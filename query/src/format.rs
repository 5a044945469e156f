//! Result exporters: a terminal table, CSV (with formula-injection guard) and JSON lines.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;

use crate::{QueryError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            other => Err(format!("unknown format `{other}` (expected table, csv or json)")),
        }
    }
}

fn out_err(format: &str, e: impl std::fmt::Display) -> QueryError {
    QueryError::Output { format: format.into(), message: e.to_string() }
}

/// Spreadsheet apps run cells starting with these as formulas; user-controlled text (Slack
/// display names) must not become one.
fn guard_formula(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Text columns with the formula guard applied; other columns unchanged.
fn guarded(batch: &RecordBatch) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            let s = cast(c, &DataType::Utf8).map_err(|e| out_err("csv", e))?;
            let s = s.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
            let g: StringArray = s.iter().map(|v| v.map(|v| guard_formula(v).into_owned())).collect();
            fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
            cols.push(Arc::new(g));
        } else {
            fields.push(f.as_ref().clone());
            cols.push(Arc::clone(c));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| out_err("csv", e))
}

/// Write `batches` to `out` in `format`.
pub fn write(batches: &[RecordBatch], format: OutputFormat, out: &mut dyn Write) -> Result<()> {
    match format {
        OutputFormat::Table => {
            let t = datafusion::arrow::util::pretty::pretty_format_batches(batches).map_err(|e| out_err("table", e))?;
            writeln!(out, "{t}").map_err(|e| out_err("table", e))?;
        }
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(out);
            for b in batches {
                w.write(&guarded(b)?).map_err(|e| out_err("csv", e))?;
            }
        }
        OutputFormat::Json => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b).map_err(|e| out_err("json", e))?;
            }
            w.finish().map_err(|e| out_err("json", e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_guards_formulas_but_keeps_plain_text() {
        let schema = Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, true)]));
        let col: ArrayRef =
            Arc::new(StringArray::from(vec![Some("=HYPERLINK(\"http://x\")"), Some("alice"), None, Some("-1")]));
        let batch = RecordBatch::try_new(schema, vec![col]).unwrap();
        let mut out = Vec::new();
        write(&[batch], OutputFormat::Csv, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        // A lone empty cell is written as `""` so the row is not a blank line.
        assert_eq!(text, "name\n\"'=HYPERLINK(\"\"http://x\"\")\"\nalice\n\"\"\n'-1\n");
    }
}
