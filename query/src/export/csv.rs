//! CSV: UTF-8 (optionally with a byte-order mark), a header row, text cells guarded against
//! formula injection, and columns CSV has no form for (lists, structs) written as their display
//! text.

use std::borrow::Cow;
use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;

use super::{Format, ResultSet, is_text, stringify};
use crate::{QueryError, Result};

/// Spreadsheet apps run a cell starting with one of these as a formula (tab and CR too, which
/// some strip before looking); user-controlled text such as a Slack display name must not
/// become one, so it gets a leading `'`, which they show as text.
pub(crate) fn guard_formula(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { Cow::Owned(format!("'{s}")) } else { Cow::Borrowed(s) }
}

pub(super) fn write(data: &ResultSet, bom: bool, out: &mut dyn Write) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| QueryError::output(Format::Csv, e);
    if bom {
        out.write_all("\u{feff}".as_bytes()).map_err(|e| err(&e))?;
    }
    let mut w = WriterBuilder::new().with_header(true).build(out);
    // An empty batch still writes the header.
    let empty = [RecordBatch::new_empty(data.schema.clone())];
    let batches = if data.batches.is_empty() { &empty[..] } else { &data.batches[..] };
    for b in batches {
        w.write(&csv_ready(b)?).map_err(|e| err(&e))?;
    }
    Ok(())
}

/// Text columns guarded; nested and other non-CSV types as display text (also guarded, since a
/// list's text can start with a user's `=`); numbers, booleans, dates and times unchanged.
fn csv_ready(batch: &RecordBatch) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let text = if is_text(f.data_type()) {
            let s = cast(c, &DataType::Utf8).map_err(|e| QueryError::output(Format::Csv, e))?;
            Some(s.as_any().downcast_ref::<StringArray>().cloned().unwrap_or_else(|| StringArray::new_null(c.len())))
        } else if f.data_type().is_nested() || matches!(f.data_type(), DataType::Binary | DataType::LargeBinary) {
            Some(stringify(c, Format::Csv)?)
        } else {
            None
        };
        match text {
            Some(s) => {
                let g: StringArray = s.iter().map(|v| v.map(|v| guard_formula(v).into_owned())).collect();
                fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
                cols.push(Arc::new(g));
            }
            None => {
                fields.push(f.as_ref().clone());
                cols.push(Arc::clone(c));
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| QueryError::output(Format::Csv, e))
}
