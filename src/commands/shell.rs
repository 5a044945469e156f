//! The interactive SQL shell of `lastseen sql` (no query given): rustyline line editing with a
//! history file, statements that span lines until a `;`, and `\d` / `\d TABLE` / `\q`. Piped
//! stdin works too (rustyline reads it line by line without prompts), which is how it is tested.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use datafusion::common::ScalarValue;
use lastseen_query::{Document, ExportOptions, Format, Provenance, QueryEngine, ResultSet};
use rustyline::error::ReadlineError;

use crate::cli::SqlArgs;

const HELP: &str = "\
End a statement with `;` (it may span lines). Commands:
  \\d          list the tables
  \\d TABLE    a table's columns and types
  \\q          quit (also Ctrl-D)
  \\?          this help";

pub async fn run(engine: &QueryEngine, args: &SqlArgs) -> anyhow::Result<u8> {
    let format: Format = args.output.format.into();
    if args.output.output.is_some() || format.is_binary() {
        return Err(lastseen_query::QueryError::Usage(
            "the shell prints to the terminal as table, csv, json or html; to write a file, give the query \
             (or --file) with --output"
                .into(),
        )
        .into());
    }
    let interactive = std::io::stdin().is_terminal();
    let history =
        args.history.clone().or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".lastseen_history")));
    let mut rl = rustyline::DefaultEditor::new().context("starting the line editor")?;
    if let Some(h) = &history {
        // A missing history file is the first session, not an error.
        let _ = rl.load_history(h);
    }
    if interactive {
        outln!("lastseen SQL over lake version {}. \\d lists tables, \\? helps, \\q quits.", engine.snapshot().version);
    }
    let mut pending = String::new();
    let mut failed = false;
    // The session until its input ends, `\q`, or a closed standard output (`statement_failed`);
    // the history is saved whichever ends it.
    let session = async {
        loop {
            let prompt = if pending.trim().is_empty() { "lastseen> " } else { "     ...> " };
            let line = match rl.readline(prompt) {
                Ok(line) => line,
                Err(ReadlineError::Interrupted) => {
                    pending.clear();
                    continue;
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e).context("reading input"),
            };
            if pending.trim().is_empty() && line.trim_start().starts_with('\\') {
                let _ = rl.add_history_entry(line.trim());
                match meta(engine, line.trim(), format).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => statement_failed(e, &mut failed)?,
                }
                continue;
            }
            pending.push_str(&line);
            pending.push('\n');
            let (statements, rest) = split_statements(&pending);
            pending = rest;
            for stmt in statements {
                let _ = rl.add_history_entry(stmt.trim());
                if let Err(e) = execute(engine, &stmt, format).await {
                    statement_failed(e, &mut failed)?;
                }
            }
        }
        // Piped input may end without a final `;`.
        if !is_blank_sql(&pending)
            && let Err(e) = execute(engine, &pending, format).await
        {
            statement_failed(e, &mut failed)?;
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if let Some(h) = &history
        && let Err(e) = rl.save_history(h)
    {
        tracing::warn!(file = %h.display(), error = %e, "cannot save the shell history");
    }
    session?;
    // In a script, a failed statement fails the command; at a terminal the user has seen it.
    Ok(if failed && !interactive { crate::exit::FAILURE } else { crate::exit::OK })
}

/// A statement or command that failed: its error is printed and the session will exit 1 when
/// scripted. A closed standard output is returned instead: nobody reads the rest, so the session
/// stops there (and `main` exits quietly).
fn statement_failed(e: anyhow::Error, failed: &mut bool) -> anyhow::Result<()> {
    if crate::stdout::closed(&e) {
        return Err(e);
    }
    *failed = true;
    eprintln!("error: {}", crate::exit::render(&e));
    Ok(())
}

/// Run a backslash command; `Ok(true)` means quit.
async fn meta(engine: &QueryEngine, line: &str, format: Format) -> anyhow::Result<bool> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("\\q" | "\\quit"), _) => Ok(true),
        (Some("\\?" | "\\h" | "\\help"), _) => {
            outln!("{HELP}");
            Ok(false)
        }
        (Some("\\d"), None) => {
            let sql = "SELECT table_name AS \"table\", count(*) AS columns FROM information_schema.columns \
                       WHERE table_schema = 'public' GROUP BY table_name ORDER BY table_name";
            show(engine, sql, &[], format).await?;
            Ok(false)
        }
        (Some("\\d"), Some(table)) => {
            let sql = "SELECT column_name AS \"column\", data_type AS \"type\", is_nullable AS nullable \
                       FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $table \
                       ORDER BY ordinal_position";
            let rows = show(engine, sql, &[("table", ScalarValue::Utf8(Some(table.to_string())))], format).await?;
            if rows == 0 {
                anyhow::bail!("no table named `{table}`; \\d lists the tables");
            }
            Ok(false)
        }
        (Some(other), _) => anyhow::bail!("unknown command `{other}`; \\? lists the commands"),
        (None, _) => Ok(false),
    }
}

async fn execute(engine: &QueryEngine, sql: &str, format: Format) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let rows = show(engine, sql, &[], format).await?;
    if format == Format::Table {
        outln!("({rows} row{}, {:.3} s)", if rows == 1 { "" } else { "s" }, started.elapsed().as_secs_f64());
    }
    Ok(())
}

async fn show(
    engine: &QueryEngine,
    sql: &str,
    params: &[(&str, ScalarValue)],
    format: Format,
) -> anyhow::Result<usize> {
    let data = ResultSet::collect(engine.plan(sql, params).await?).await?;
    let provenance = Provenance::new("SQL shell", sql, chrono::Utc::now());
    let doc = Document { data: &data, provenance: &provenance, charts: &[], options: &ExportOptions::default() };
    let mut out = std::io::stdout().lock();
    doc.write(format, &mut out)?;
    out.flush().map_err(crate::stdout::error)?;
    Ok(data.rows())
}

/// The complete statements in `buf` (each ending at a `;` outside quotes and comments, the `;`
/// dropped) and the unfinished rest.
fn split_statements(buf: &str) -> (Vec<String>, String) {
    #[derive(PartialEq)]
    enum In {
        Code,
        Single,
        Double,
        LineComment,
        BlockComment,
    }
    let mut state = In::Code;
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = buf.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            In::Code => match (c, next) {
                (b'\'', _) => state = In::Single,
                (b'"', _) => state = In::Double,
                (b'-', Some(b'-')) => {
                    state = In::LineComment;
                    i += 1;
                }
                (b'/', Some(b'*')) => {
                    state = In::BlockComment;
                    i += 1;
                }
                (b';', _) => {
                    let stmt = &buf[start..i];
                    if !is_blank_sql(stmt) {
                        out.push(stmt.trim().to_string());
                    }
                    start = i + 1;
                }
                _ => {}
            },
            // A doubled quote inside a literal toggles out and straight back in.
            In::Single if c == b'\'' => state = In::Code,
            In::Double if c == b'"' => state = In::Code,
            In::LineComment if c == b'\n' => state = In::Code,
            In::BlockComment if c == b'*' && next == Some(b'/') => {
                state = In::Code;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let rest = &buf[start..];
    (out, if is_blank_sql(rest) { String::new() } else { rest.to_string() })
}

/// Whitespace and `--` comments only.
fn is_blank_sql(s: &str) -> bool {
    s.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with("--")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        let (s, rest) = split_statements("SELECT 1;\nSELECT ';' -- ; not yet\n, \"a;b\" /* ; */ FROM t;\nSELECT 2");
        assert_eq!(s, ["SELECT 1", "SELECT ';' -- ; not yet\n, \"a;b\" /* ; */ FROM t"]);
        assert_eq!(rest, "\nSELECT 2");
        let (s, rest) = split_statements("SELECT 'it''s';  -- done\n");
        assert_eq!(s, ["SELECT 'it''s'"]);
        assert_eq!(rest, "");
        let (s, rest) = split_statements("SELECT\n  count(*)\n");
        assert!(s.is_empty());
        assert_eq!(rest, "SELECT\n  count(*)\n");
    }
}
