//! The short form for callers that only print batches (demo, `tables`): the exporters with a
//! bare provenance and default options.

use std::io::Write;

use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;

use crate::Result;
use crate::export::{Document, ExportOptions, Format, Provenance, ResultSet};

/// The exporters' format, under the name callers have used so far.
pub type OutputFormat = Format;

/// Write `batches` to `out` in `format`. Without a batch there is no schema, so nothing but an
/// empty table is written; use [`Document`] with a [`ResultSet`] to keep the header.
pub fn write(batches: &[RecordBatch], format: Format, out: &mut dyn Write) -> Result<()> {
    let schema = batches.first().map_or_else(|| std::sync::Arc::new(Schema::empty()), RecordBatch::schema);
    let data = ResultSet::new(schema, batches.to_vec());
    let provenance = Provenance::new("lastseen output", "", chrono::Utc::now());
    let doc = Document { data: &data, provenance: &provenance, charts: &[], options: &ExportOptions::default() };
    doc.write(format, out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;

    #[test]
    fn csv_guards_formulas_but_keeps_plain_text() {
        let schema = Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, true)]));
        let col: ArrayRef =
            Arc::new(StringArray::from(vec![Some("=HYPERLINK(\"http://x\")"), Some("alice"), None, Some("-1")]));
        let batch = RecordBatch::try_new(schema, vec![col]).unwrap();
        let mut out = Vec::new();
        write(&[batch], Format::Csv, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        // A lone empty cell is written as `""` so the row is not a blank line.
        assert_eq!(text, "name\n\"'=HYPERLINK(\"\"http://x\"\")\"\nalice\n\"\"\n'-1\n");
    }

    #[test]
    fn unknown_formats_name_the_choices() {
        assert_eq!("xlsx".parse::<Format>(), Ok(Format::Xlsx));
        assert_eq!(
            "pdf".parse::<Format>(),
            Err("unknown format `pdf` (expected table, csv, json, parquet, xlsx or html)".to_string())
        );
    }
}
