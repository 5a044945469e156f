//! JSON lines: one object per row, every column present (null when empty) so each line has the
//! same keys.

use std::io::Write;

use datafusion::arrow::json::writer::{LineDelimited, WriterBuilder};
use datafusion::arrow::record_batch::RecordBatch;

use super::{Format, ResultSet};
use crate::{QueryError, Result};

pub(super) fn write(data: &ResultSet, out: &mut dyn Write) -> Result<()> {
    write_batches(data.batches.iter().cloned().map(Ok), out).map(|_| ())
}

/// The JSON lines of `batches` as they come (a query's stream); returns the rows written. An
/// `Err` from `batches` stops the export with that error.
pub(super) fn write_batches(batches: impl Iterator<Item = Result<RecordBatch>>, out: &mut dyn Write) -> Result<u64> {
    let mut w = WriterBuilder::new().with_explicit_nulls(true).build::<_, LineDelimited>(out);
    let mut rows = 0u64;
    for b in batches {
        let b = b?;
        w.write(&b).map_err(|e| QueryError::arrow_output(Format::Json, e))?;
        rows += b.num_rows() as u64;
    }
    w.finish().map_err(|e| QueryError::arrow_output(Format::Json, e))?;
    Ok(rows)
}
