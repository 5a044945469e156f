//! The terminal table: Arrow's aligned pretty-printer, header included when there are no rows.

use std::io::Write;

use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;

use super::{Format, ResultSet};
use crate::{QueryError, Result};

pub(super) fn write(data: &ResultSet, out: &mut dyn Write) -> Result<()> {
    let t = pretty_format_batches_with_schema(data.schema.clone(), &data.batches)
        .map_err(|e| QueryError::output(Format::Table, e))?;
    writeln!(out, "{t}").map_err(|e| QueryError::output(Format::Table, e))
}
