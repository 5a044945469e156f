//! Exporters: a query result written as a terminal table, CSV, JSON lines, Parquet, XLSX or a
//! self-contained HTML report (one module per format), each carrying its provenance.

mod chart;
mod csv;
mod direct;
mod html;
mod json;
mod parquet;
mod provenance;
mod table;
mod xlsx;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::DataFrame;

pub use chart::{Chart, ChartKind};
pub use provenance::{Parameter, Provenance};

use crate::sort::GatherSortExec;
use crate::{QueryError, Result};

/// Data rows an Excel sheet can hold below its header row (Excel's limit is 1,048,576 rows).
pub const XLSX_MAX_DATA_ROWS: usize = 1_048_575;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
    Xlsx,
    Html,
}

impl Format {
    pub const ALL: [Format; 6] =
        [Format::Table, Format::Csv, Format::Json, Format::Parquet, Format::Xlsx, Format::Html];

    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Parquet => "parquet",
            Format::Xlsx => "xlsx",
            Format::Html => "html",
        }
    }

    /// The file extension an export in this format gets.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Csv => "csv",
            Format::Json => "jsonl",
            Format::Parquet => "parquet",
            Format::Xlsx => "xlsx",
            Format::Html => "html",
        }
    }

    /// Whether an export in this format can be written as the query produces its rows
    /// ([`save_stream`]): CSV and JSON lines need no row before the first is written; a table
    /// sizes its columns, HTML draws charts, XLSX and Parquet are written whole.
    pub fn streams(self) -> bool {
        matches!(self, Format::Csv | Format::Json)
    }

    /// Binary formats are not written to a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Parquet | Format::Xlsx)
    }

    /// Formats with room for their provenance inside the file (Parquet key-value metadata, the
    /// XLSX "About" sheet, the HTML footer); the others get a side file.
    pub fn embeds_provenance(self) -> bool {
        matches!(self, Format::Parquet | Format::Xlsx | Format::Html)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format `{s}` (expected table, csv, json, parquet, xlsx or html)"))
    }
}

/// A query result with its schema, kept even when there are no rows so headers still print.
#[derive(Debug, Clone)]
pub struct ResultSet {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl ResultSet {
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> ResultSet {
        ResultSet { schema, batches }
    }

    /// Run `df` and keep its schema.
    pub async fn collect(df: DataFrame) -> Result<ResultSet> {
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        // Execution may refine nullability or metadata; the batches' own schema is the truth.
        let schema = batches.first().map_or(schema, RecordBatch::schema);
        Ok(ResultSet { schema, batches })
    }

    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Format-specific knobs; the defaults are what the command line uses.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Start CSV output with a UTF-8 byte-order mark (what Excel on Windows needs to read UTF-8).
    pub bom: bool,
    /// Data rows per XLSX sheet before the next sheet starts.
    pub xlsx_max_rows: usize,
    /// Rows shown in the HTML report's table; the charts and the provenance cover all rows.
    pub html_max_rows: usize,
    /// A column holding the file names of sibling exports (a split report's index): the HTML
    /// report links them.
    pub link_column: Option<String>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { bom: false, xlsx_max_rows: XLSX_MAX_DATA_ROWS, html_max_rows: 5_000, link_column: None }
    }
}

/// Everything one export needs: the rows, their provenance, the charts (HTML only), options.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub data: &'a ResultSet,
    pub provenance: &'a Provenance,
    pub charts: &'a [Chart],
    pub options: &'a ExportOptions,
}

impl Document<'_> {
    /// The export itself (no side file) to `out`.
    pub fn write(&self, format: Format, out: &mut dyn Write) -> Result<()> {
        match format {
            Format::Table => table::write(self.data, out),
            Format::Csv => csv::write(self.data, self.options.bom, out),
            Format::Json => json::write(self.data, out),
            Format::Parquet => {
                // The Parquet writer wants an owned `Send` sink; a buffer is one.
                let buf = parquet::write(self, Vec::new())?;
                out.write_all(&buf).map_err(|e| QueryError::write(format, e))
            }
            Format::Xlsx => {
                let buf = xlsx::to_bytes(self)?;
                out.write_all(&buf).map_err(|e| QueryError::write(format, e))
            }
            Format::Html => html::write(self, out),
        }
    }

    /// Write the export to `path` (through a temporary file renamed into place, so a failed
    /// export never leaves a half-written file under the wanted name), plus the provenance side
    /// file `<path>.provenance.json` for formats without room inside. Returns the paths written.
    pub fn save(&self, format: Format, path: &Path) -> Result<Vec<PathBuf>> {
        let mut written = vec![path.to_path_buf()];
        write_atomically(path, |file| match format {
            Format::Parquet => {
                let mut w = parquet::write(self, std::io::BufWriter::new(file))?;
                w.flush().map_err(|e| QueryError::io(path, e))
            }
            _ => write_synced(file, path, |w| self.write(format, w)),
        })?;
        if !format.embeds_provenance() {
            written.push(save_provenance(path, self.provenance, self.data.rows() as u64)?);
        }
        Ok(written)
    }
}

/// The provenance side file `<path>.provenance.json` of an export of `rows` rows at `path`.
fn save_provenance(path: &Path, provenance: &Provenance, rows: u64) -> Result<PathBuf> {
    let side = side_file(path);
    let json = provenance.to_json(usize::try_from(rows).unwrap_or(usize::MAX));
    write_atomically(&side, |file| {
        let mut w = std::io::BufWriter::new(file);
        w.write_all(json.as_bytes()).and_then(|()| w.flush()).map_err(|e| QueryError::io(&side, e))
    })?;
    Ok(side)
}

/// Batches a streamed export holds between the query and the encoder: enough for the CSV
/// encoder's window (see `csv::write_batches`) plus one being filled, so the query keeps
/// producing while a window is encoded.
const STREAM_BATCHES: usize = 16;

/// An export of a query's rows in `format` (CSV or JSON lines, the formats that need no row
/// before the first is written: [`Format::streams`]) written as the query produces them, to
/// `path` (through a temporary file renamed into place, with the provenance side file, as
/// [`Document::save`]) or to standard output when `path` is `None`. The bytes are those of
/// [`Document::save`] over the collected rows; what streaming changes is when they are written:
/// the rows are never all held, and encoding overlaps the query (`lastseen report review`,
/// 470,000 rows × 40 columns, held every row and then encoded them on the same cores
/// afterwards; its CSV now goes through [`save_plan`], which encodes before the sort's copies).
/// A query error mid-way leaves no file. Returns the rows and the files written.
pub async fn save_stream(
    mut stream: datafusion::execution::SendableRecordBatchStream,
    format: Format,
    provenance: &Provenance,
    options: &ExportOptions,
    path: Option<&Path>,
) -> Result<(u64, Vec<PathBuf>)> {
    use futures::StreamExt;
    if !format.streams() {
        return Err(QueryError::Usage(format!("{format} exports are written from all the rows, not streamed")));
    }
    let schema = stream.schema();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(STREAM_BATCHES);
    let bom = options.bom;
    let target = path.map(Path::to_path_buf);
    let writer = tokio::task::spawn_blocking(move || {
        let batches = std::iter::from_fn(move || rx.blocking_recv());
        write_export(target.as_deref(), format, |w| match format {
            Format::Json => json::write_batches(batches, w),
            _ => csv::write_batches(&schema, batches, bom, w),
        })
    });
    while let Some(batch) = stream.next().await {
        let failed = batch.is_err();
        // A send fails when the writer has stopped (its error is what the join returns).
        if tx.send(batch.map_err(QueryError::from)).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    let rows = writer.await.map_err(|e| QueryError::output(format, e))??;
    with_side_file(path, provenance, rows)
}

/// An export of a query's rows in a format that [`streams`](Format::streams), as
/// [`save_stream`] writes it from the query's stream. Where a CSV's query ends in a full sort
/// of its rows ([`GatherSortExec`]), each batch of the sort's input is encoded as it arrives and
/// the records are written in the sort's order (`csv::encode_sorted`) instead of sorting the
/// rows as Arrow batches first: the same bytes with two copies of every row fewer. A query error
/// leaves no file either way.
pub async fn save_plan(
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    context: Arc<datafusion::execution::TaskContext>,
    format: Format,
    provenance: &Provenance,
    options: &ExportOptions,
    path: Option<&Path>,
) -> Result<(u64, Vec<PathBuf>)> {
    let schema = plan.schema();
    let sort = plan.downcast_ref::<GatherSortExec>().filter(|_| format == Format::Csv && !schema.fields().is_empty());
    let Some(sort) = sort else {
        let stream = datafusion::physical_plan::execute_stream(plan, context)?;
        return save_stream(stream, format, provenance, options, path).await;
    };
    let sorted = csv::encode_sorted(sort, context).await?;
    let bom = options.bom;
    let target = path.map(Path::to_path_buf);
    let rows = tokio::task::spawn_blocking(move || {
        let rows = write_export(target.as_deref(), Format::Csv, |w| csv::write_sorted(&schema, &sorted, bom, w));
        // Freed here, off the query's thread.
        drop(sorted);
        rows
    })
    .await
    .map_err(|e| QueryError::output(Format::Csv, e))??;
    with_side_file(path, provenance, rows)
}

/// A streamed export's rows and files: the export and its provenance side file, written here,
/// when it went to a file.
fn with_side_file(path: Option<&Path>, provenance: &Provenance, rows: u64) -> Result<(u64, Vec<PathBuf>)> {
    let mut written = Vec::new();
    if let Some(path) = path {
        written.push(path.to_path_buf());
        written.push(save_provenance(path, provenance, rows)?);
    }
    Ok((rows, written))
}

/// A streamed export's bytes, from `body`, to `path` (through a temporary file renamed into
/// place, as [`Document::save`]) or to standard output when `path` is `None`; returns `body`'s
/// rows.
fn write_export(path: Option<&Path>, format: Format, body: impl FnOnce(&mut dyn Write) -> Result<u64>) -> Result<u64> {
    match path {
        Some(path) => {
            let mut rows = 0;
            write_atomically(path, |file| {
                write_synced(file, path, |w| {
                    rows = body(w)?;
                    Ok(())
                })
            })?;
            Ok(rows)
        }
        None => {
            // Standard output is line-buffered: without a buffer of its own, a writer that
            // writes record by record would make a system call per row.
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            let rows = body(&mut out)?;
            out.flush().map_err(|e| QueryError::write(format, e))?;
            Ok(rows)
        }
    }
}

/// `body`'s bytes into an export's `file` (at `path`): with direct I/O where the file system
/// has it ([`direct::DirectFile`]), otherwise buffered and synced as they go ([`SyncingFile`]).
fn write_synced(file: &mut std::fs::File, path: &Path, body: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    if let Some(direct) = direct::open(file) {
        let mut w = direct::DirectFile::new(file, direct).map_err(|e| QueryError::io(path, e))?;
        body(&mut w)?;
        return w.finish().map_err(|e| QueryError::io(path, e));
    }
    let mut w = std::io::BufWriter::new(SyncingFile { file, unsynced: 0, syncer: None });
    body(&mut w)?;
    w.flush().map_err(|e| QueryError::io(path, e))?;
    let file = w.into_inner().map_err(|e| QueryError::io(path, e.into_error()))?;
    file.finish().map_err(|e| QueryError::io(path, e))
}

/// Bytes written to an export between two `sync_data` calls.
const SYNC_EVERY: usize = 16 * 1024 * 1024;

/// An export's file, handed to disk as it is written rather than all at the final `fsync`: a
/// 180 MB CSV export waited about 0.09 s in that fsync after everything else was done. Every
/// [`SYNC_EVERY`] bytes a thread of its own calls `sync_data` (on a clone of the descriptor),
/// so the writer does not wait for the disk either: on the writer's thread these syncs took
/// 25–35 ms each, during which it neither wrote nor took the next batches from the query (a
/// 55 MB `report dormant` waited 0.06 s in them, bench/RESULTS.md). A request made while a
/// sync runs waits for it; one made while another is waiting is dropped (the waiting one
/// covers its bytes).
struct SyncingFile<'a> {
    file: &'a mut std::fs::File,
    unsynced: usize,
    syncer: Option<Syncer>,
}

struct Syncer {
    requests: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Syncer {
    /// A thread that syncs (a clone of) `file` on each request.
    fn start(file: &std::fs::File) -> std::io::Result<Syncer> {
        let file = file.try_clone()?;
        let (requests, pending) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new().name("export-sync".into()).spawn(move || {
            for () in pending {
                file.sync_data()?;
            }
            Ok(())
        })?;
        Ok(Syncer { requests, thread })
    }

    /// Wait for the last requested sync; its error if one failed.
    fn finish(self) -> std::io::Result<()> {
        drop(self.requests);
        self.thread.join().map_err(|_| std::io::Error::other("the export's syncing thread panicked"))?
    }
}

impl SyncingFile<'_> {
    /// Ask for a sync of what is written so far, starting the syncing thread the first time.
    fn request_sync(&mut self) -> std::io::Result<()> {
        use std::sync::mpsc::TrySendError;
        let syncer = match self.syncer.take() {
            Some(syncer) => syncer,
            None => Syncer::start(self.file)?,
        };
        match syncer.requests.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {
                self.syncer = Some(syncer);
                Ok(())
            }
            // The thread stopped: its sync failed, and joining it returns why.
            Err(TrySendError::Disconnected(())) => syncer.finish(),
        }
    }

    /// All requested syncs done (the caller's own `sync_all` follows).
    fn finish(self) -> std::io::Result<()> {
        self.syncer.map_or(Ok(()), Syncer::finish)
    }
}

impl Write for SyncingFile<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n;
        if self.unsynced >= SYNC_EVERY {
            self.request_sync()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Write `bytes` to `path` the way exports are written (new owner-only temporary file renamed
/// into place, a symlink at `path` refused): for command output that is not a [`Document`].
pub fn save_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically(path, |file| file.write_all(bytes).map_err(|e| QueryError::io(path, e)))
}

/// Where the provenance of a CSV, JSON-lines or table export to `path` goes.
pub fn side_file(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".provenance.json");
    path.with_file_name(name)
}

/// Writes through `<name>.<pid>.tmp` renamed onto `path`. The temporary file is created new
/// (`O_EXCL`, which never follows a symlink) and owner-only (0600): exports hold personal data,
/// and a file or symlink planted at the temporary name makes the export fail instead of
/// truncating whatever the link points to. The rename replaces `path` itself, never a link's
/// target.
fn write_atomically(path: &Path, body: impl FnOnce(&mut std::fs::File) -> Result<()>) -> Result<()> {
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    // A symlink where the export goes is someone else's redirect, not a place to write.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(QueryError::io(
            path,
            std::io::Error::other("it is a symbolic link; lastseen neither writes through nor replaces one"),
        ));
    }
    // A device, FIFO or socket (`--output /dev/null`) would be replaced by the rename: run as
    // root, that deletes the system's /dev/null. Refused like a symlink.
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file() && !m.file_type().is_dir()) {
        return Err(QueryError::io(
            path,
            std::io::Error::other(
                "it is not a regular file (a device, FIFO or socket), which the export's rename would replace; \
                 write to a file, or leave --output out to print to standard output",
            ),
        ));
    }
    let mut file = create_private(&tmp).map_err(|e| QueryError::io(&tmp, e))?;
    let result = body(&mut file)
        .and_then(|()| file.sync_all().map_err(|e| QueryError::io(&tmp, e)))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| QueryError::io(path, e)));
    if result.is_err() {
        // Ours to remove: it was created new above.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A new file only the owner can read and write; fails if anything (a symlink included)
/// already has the name.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// A new folder only the owner can enter; fails if the name is taken.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// A column as display strings (nulls stay null): how lists, structs and other types without a
/// native cell type in a format are shown. Timestamps print as RFC 3339.
pub(crate) fn stringify(col: &ArrayRef, format: Format) -> Result<StringArray> {
    let options = FormatOptions::default();
    let f = ArrayFormatter::try_new(col.as_ref(), &options).map_err(|e| QueryError::output(format, e))?;
    Ok((0..col.len()).map(|i| (!col.is_null(i)).then(|| f.value(i).to_string())).collect())
}

#[cfg(test)]
mod tests;
