//! Parquet through the data stack's own writer: zstd, the result's Arrow schema as is, and the
//! provenance as JSON in the file's key-value metadata (`lastseen.provenance`).

use std::io::Write;

use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;

use super::{Document, Format};
use crate::{QueryError, Result};

/// The key under which the provenance JSON is stored in the file's metadata.
pub const PROVENANCE_KEY: &str = "lastseen.provenance";

/// Write the file and hand back the sink (for the caller to flush).
pub(super) fn write<W: Write + Send>(doc: &Document<'_>, out: W) -> Result<W> {
    let err = |e: &dyn std::fmt::Display| QueryError::output(Format::Parquet, e);
    let level = ZstdLevel::try_new(3).map_err(|e| err(&e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            PROVENANCE_KEY.to_string(),
            doc.provenance.to_json(doc.data.rows()),
        )]))
        .build();
    let mut w = ArrowWriter::try_new(out, doc.data.schema.clone(), Some(props)).map_err(|e| err(&e))?;
    for b in &doc.data.batches {
        w.write(b).map_err(|e| err(&e))?;
    }
    w.into_inner().map_err(|e| err(&e))
}
