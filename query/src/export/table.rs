//! The terminal table: Arrow's aligned pretty-printer, header included when there are no rows,
//! with every control character shown as a visible escape. Cells carry attacker-chosen text (a
//! User-Agent from the access logs, a display name, an HR field); printed raw, an escape
//! sequence in one could write the admin's clipboard (OSC 52), plant a link (OSC 8) or move
//! the cursor to hide rows.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;

use super::{Format, ResultSet, stringify};
use crate::{QueryError, Result};

pub(super) fn write(data: &ResultSet, out: &mut dyn Write) -> Result<()> {
    // Every column is printed as its display text anyway (the printer left-aligns it all), so
    // turning each into escaped text changes nothing else; nested values (lists, structs) are
    // covered too, since their text is escaped as a whole.
    let fields: Vec<Field> =
        data.schema.fields().iter().map(|f| Field::new(escape_controls(f.name()), DataType::Utf8, true)).collect();
    let schema = Arc::new(Schema::new(fields));
    let mut batches = Vec::with_capacity(data.batches.len());
    for batch in &data.batches {
        let columns = batch
            .columns()
            .iter()
            .map(|col| {
                let text = stringify(col, Format::Table)?;
                let escaped: StringArray = text.iter().map(|v| v.map(escape_controls)).collect();
                Ok(Arc::new(escaped) as ArrayRef)
            })
            .collect::<Result<Vec<_>>>()?;
        batches.push(
            RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| QueryError::output(Format::Table, e))?,
        );
    }
    let t = pretty_format_batches_with_schema(schema, &batches).map_err(|e| QueryError::output(Format::Table, e))?;
    writeln!(out, "{t}").map_err(|e| QueryError::write(Format::Table, e))
}

/// `s` with C0 controls (tab excepted), DEL and C1 controls replaced by visible escapes: `\n`,
/// `\r`, `\x1b`, `\u{9b}`. Text without them is returned unchanged.
pub(crate) fn escape_controls(s: &str) -> String {
    let is_control = |c: char| (c.is_control() && c != '\t') || matches!(c, '\u{80}'..='\u{9f}');
    if !s.chars().any(is_control) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_control(c) && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn controls_become_visible() {
        assert_eq!(escape_controls("plain\ttext é"), "plain\ttext é");
        assert_eq!(escape_controls("a\x1b]52;c;ZXZpbA==\x07b"), "a\\x1b]52;c;ZXZpbA==\\x07b");
        assert_eq!(escape_controls("x\u{9b}2Jy\u{7f}\r\n"), "x\\u{9b}2Jy\\x7f\\r\\n");
    }
}
