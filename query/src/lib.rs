//! lastseen's query side: a DataFusion session over the committed lake, the report registry
//! (SQL files in `query/reports/`), splitting a report per manager, and the exporters (table, CSV, JSON lines, Parquet, XLSX,
//! HTML) that write results with their provenance.

pub mod concat;
mod engine;
mod error;
pub mod export;
pub mod format;
pub mod lookup;
pub mod reports;
pub mod sort;
pub mod split;

pub use engine::{QueryEngine, read_only, refused};
pub use error::{QueryError, Result};
pub use export::{Document, ExportOptions, Format, Provenance, ResultSet};
pub use format::OutputFormat;
pub use reports::{ReportDef, ReportOutput, ReportParams};
