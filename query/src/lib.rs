//! lastseen's query side: a DataFusion session over the committed lake, the canned reports (SQL
//! files in `query/reports/`), and the exporters that turn results into tables, CSV and JSON.

mod engine;
mod error;
pub mod format;
pub mod reports;

pub use engine::QueryEngine;
pub use error::{QueryError, Result};
pub use format::OutputFormat;
pub use reports::{DormantParams, Report};
