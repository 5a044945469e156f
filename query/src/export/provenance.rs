//! Provenance: what an auditor needs to reproduce an export (parameters, lake version and the
//! run that published it, generation time, lastseen version, the SQL).

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use lastseen_lake::{Lake, Snapshot};
use serde::Serialize;

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parameter {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    /// Human title, e.g. "Dormant Slack accounts" or "SQL query".
    pub title: String,
    /// The report's name, for report exports.
    pub report: Option<String>,
    pub as_of: Option<NaiveDate>,
    /// Every value bound to the SQL's `$name` placeholders, as text, in declaration order.
    pub parameters: Vec<Parameter>,
    /// The commit-log version the query read.
    pub lake_version: Option<u64>,
    /// The run that published that version, its day and status (from its run manifest).
    pub run_id: Option<String>,
    pub run_date: Option<NaiveDate>,
    pub run_status: Option<String>,
    pub generated_at: DateTime<Utc>,
    pub lastseen_version: String,
    pub sql: String,
}

impl Provenance {
    pub fn new(title: impl Into<String>, sql: impl Into<String>, generated_at: DateTime<Utc>) -> Provenance {
        Provenance {
            title: title.into(),
            report: None,
            as_of: None,
            parameters: Vec::new(),
            lake_version: None,
            run_id: None,
            run_date: None,
            run_status: None,
            generated_at,
            lastseen_version: env!("CARGO_PKG_VERSION").into(),
            sql: sql.into(),
        }
    }

    /// Fill in the lake version `snapshot` is and the run that published it.
    pub async fn with_lake(mut self, lake: &Lake, snapshot: &Snapshot) -> Result<Provenance> {
        self.lake_version = Some(snapshot.version);
        self.run_id.clone_from(&snapshot.run_id);
        if let Some(run_id) = &snapshot.run_id
            && let Some(run) = lake.run_manifest(run_id).await?
        {
            self.run_date = Some(run.date);
            self.run_status = serde_json::to_value(run.status).ok().and_then(|v| v.as_str().map(String::from));
        }
        Ok(self)
    }

    pub fn param(mut self, name: impl Into<String>, value: impl std::fmt::Display) -> Provenance {
        self.parameters.push(Parameter { name: name.into(), value: value.to_string() });
        self
    }

    /// Labelled fields for human-readable forms (HTML footer, XLSX "About" sheet), SQL apart.
    pub fn fields(&self, rows: usize) -> Vec<(String, String)> {
        let mut out = vec![("Title".to_string(), self.title.clone())];
        if let Some(r) = &self.report {
            out.push(("Report".into(), r.clone()));
        }
        if let Some(d) = self.as_of {
            out.push(("As of".into(), d.to_string()));
        }
        for p in &self.parameters {
            out.push((format!("Parameter {}", p.name), p.value.clone()));
        }
        out.push(("Rows".into(), rows.to_string()));
        let or_none = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        out.push(("Lake version".into(), or_none(self.lake_version.map(|v| v.to_string()))));
        out.push(("Run id".into(), or_none(self.run_id.clone())));
        if let Some(d) = self.run_date {
            out.push(("Run date".into(), d.to_string()));
        }
        if let Some(s) = &self.run_status {
            out.push(("Run status".into(), s.clone()));
        }
        out.push(("Generated at".into(), self.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true)));
        out.push(("lastseen version".into(), self.lastseen_version.clone()));
        out
    }

    /// The side-file / metadata form: this struct as pretty JSON plus the row count.
    pub fn to_json(&self, rows: usize) -> String {
        #[derive(Serialize)]
        struct WithRows<'a> {
            #[serde(flatten)]
            p: &'a Provenance,
            rows: usize,
        }
        // Serialising plain strings, numbers and dates cannot fail.
        serde_json::to_string_pretty(&WithRows { p: self, rows }).unwrap_or_default() + "\n"
    }
}
