//! JSON lines: one object per row, every column present (null when empty) so each line has the
//! same keys.

use std::io::Write;

use datafusion::arrow::json::writer::{LineDelimited, WriterBuilder};

use super::{Format, ResultSet};
use crate::{QueryError, Result};

pub(super) fn write(data: &ResultSet, out: &mut dyn Write) -> Result<()> {
    let mut w = WriterBuilder::new().with_explicit_nulls(true).build::<_, LineDelimited>(out);
    for b in &data.batches {
        w.write(b).map_err(|e| QueryError::arrow_output(Format::Json, e))?;
    }
    w.finish().map_err(|e| QueryError::arrow_output(Format::Json, e))
}
