//! The HTML report: one self-contained file (inline CSS, inline SVG charts, no script, no font,
//! no external request, and a Content-Security-Policy that forbids them) that opens from disk:
//! title and parameters, charts, the rows, and a provenance footer with the SQL. All text from
//! the data is escaped.

use std::fmt::Write as _;
use std::io::Write;

use chrono::SecondsFormat;
use datafusion::arrow::array::Array;

use super::{Document, Format, stringify};
use crate::{QueryError, Result};

/// HTML-escape text for element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
:root{--fg:#1b1f24;--muted:#5c6570;--line:#d8dee4;--head:#1f4e78;--band:#f5f7f9}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:var(--fg);margin:0;padding:24px 32px;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;color:var(--head)}
.meta{color:var(--muted);margin:0}
.params{display:flex;flex-wrap:wrap;gap:6px 18px;margin:10px 0 0;padding:0;list-style:none}
.params li{background:var(--band);border:1px solid var(--line);border-radius:4px;padding:2px 8px}
.charts{display:flex;flex-wrap:wrap;gap:16px;margin-top:16px}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:10px 12px;max-width:100%;overflow-x:auto}
figcaption{font-weight:600;margin-bottom:6px}
svg.chart{max-width:100%;height:auto;font-size:12px}
svg .grid{stroke:#e6eaee;stroke-width:1}svg .axis{stroke:#8a949e;stroke-width:1}
svg .series{fill:none;stroke-width:2.2}svg .tick,svg .muted{fill:var(--muted)}svg .label{fill:var(--fg)}
svg .value{fill:var(--fg);font-weight:600}
.scroll{overflow:auto;max-height:70vh;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{position:sticky;top:0;background:var(--head);color:#fff;text-align:left;padding:6px 8px;white-space:nowrap}
td{padding:4px 8px;border-top:1px solid var(--line);white-space:nowrap;max-width:28em;overflow:hidden;text-overflow:ellipsis}
tr:nth-child(even) td{background:var(--band)}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.null{color:#aab}
.note{color:var(--muted)}
footer{margin-top:32px;border-top:2px solid var(--line);padding-top:8px;color:var(--muted)}
footer dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
footer dt{font-weight:600;color:var(--fg)}footer dd{margin:0}
pre{background:var(--band);border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;font-size:12px;color:var(--fg)}
@media print{.scroll{max-height:none;overflow:visible}th{position:static}}
";

pub(super) fn write(doc: &Document<'_>, out: &mut dyn Write) -> Result<()> {
    let html = render(doc)?;
    out.write_all(html.as_bytes()).map_err(|e| QueryError::write(Format::Html, e))
}

fn render(doc: &Document<'_>) -> Result<String> {
    let p = doc.provenance;
    let rows = doc.data.rows();
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"lastseen {}\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&p.lastseen_version),
        escape(&p.title)
    );
    let _ = write!(h, "<header><h1>{}</h1><p class=\"meta\">", escape(&p.title));
    if let Some(d) = p.as_of {
        let _ = write!(h, "As of {d} · ");
    }
    let _ = write!(
        h,
        "{} row{} · generated {}</p>",
        super::chart::number(rows as f64),
        if rows == 1 { "" } else { "s" },
        p.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    if !p.parameters.is_empty() {
        h.push_str("<ul class=\"params\">");
        for par in &p.parameters {
            let _ = write!(h, "<li>{}: <b>{}</b></li>", escape(&par.name), escape(&par.value));
        }
        h.push_str("</ul>");
    }
    h.push_str("</header>\n");

    if !doc.charts.is_empty() {
        h.push_str("<section class=\"charts\">");
        for c in doc.charts {
            let _ = write!(h, "<figure><figcaption>{}</figcaption>{}</figure>", escape(&c.title), c.svg()?);
        }
        h.push_str("</section>\n");
    }

    table(&mut h, doc)?;

    h.push_str("<footer><h2>Provenance</h2><dl>");
    for (k, v) in p.fields(rows) {
        let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", escape(&k), escape(&v));
    }
    let _ = write!(
        h,
        "</dl><p>Run the SQL below with these parameters over the same lake version to reproduce this \
         report.</p><pre><code>{}</code></pre></footer>\n</body></html>\n",
        escape(&p.sql)
    );
    Ok(h)
}

/// A plain file name next to this one (no path, no scheme, nothing a URL would need to escape):
/// the only links the report makes, so a cell can never point anywhere else.
fn is_sibling_file(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with('.')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '-'))
}

fn table(h: &mut String, doc: &Document<'_>) -> Result<()> {
    let rows = doc.data.rows();
    let limit = doc.options.html_max_rows;
    h.push_str("<section><h2>Rows</h2>");
    if rows > limit {
        let _ = write!(
            h,
            "<p class=\"note\">The first {} of {} rows; the CSV, XLSX or Parquet export has them all.</p>",
            super::chart::number(limit as f64),
            super::chart::number(rows as f64)
        );
    }
    if rows == 0 {
        h.push_str("<p class=\"note\">No rows.</p></section>\n");
        return Ok(());
    }
    h.push_str("<div class=\"scroll\"><table><thead><tr>");
    for f in doc.data.schema.fields() {
        let _ = write!(h, "<th>{}</th>", escape(f.name()));
    }
    h.push_str("</tr></thead><tbody>\n");
    let numeric: Vec<bool> = doc.data.schema.fields().iter().map(|f| f.data_type().is_numeric()).collect();
    let link: Vec<bool> = doc
        .data
        .schema
        .fields()
        .iter()
        .map(|f| doc.options.link_column.as_deref() == Some(f.name().as_str()))
        .collect();
    let mut left = limit;
    for b in &doc.data.batches {
        if left == 0 {
            break;
        }
        let take = left.min(b.num_rows());
        let b = b.slice(0, take);
        let cols = b.columns().iter().map(|c| stringify(c, Format::Html)).collect::<Result<Vec<_>>>()?;
        for r in 0..take {
            h.push_str("<tr>");
            for (c, col) in cols.iter().enumerate() {
                if col.is_null(r) {
                    h.push_str("<td class=\"null\"></td>");
                } else if link[c] && is_sibling_file(col.value(r)) {
                    let v = escape(col.value(r));
                    let _ = write!(h, "<td><a href=\"{v}\">{v}</a></td>");
                } else {
                    let class = if numeric[c] { " class=\"num\"" } else { "" };
                    let _ = write!(h, "<td{class}>{}</td>", escape(col.value(r)));
                }
            }
            h.push_str("</tr>\n");
        }
        left -= take;
    }
    h.push_str("</tbody></table></div></section>\n");
    Ok(())
}
