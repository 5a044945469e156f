//! `[identities]` and `[correlation]`: where the HR/IdP identity export lives and how its columns
//! are named, and the ordered rules that tie Slack accounts to those identities.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use url::Url;

/// The file formats an identity export may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityFormat {
    Csv,
    /// One JSON object per line.
    Jsonl,
    Parquet,
}

impl IdentityFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityFormat::Csv => "csv",
            IdentityFormat::Jsonl => "jsonl",
            IdentityFormat::Parquet => "parquet",
        }
    }

    /// The format a file name implies, if its extension says.
    pub fn from_extension(path: &str) -> Option<IdentityFormat> {
        let lower = path.to_ascii_lowercase();
        let ext = lower.rsplit('.').next()?;
        match ext {
            "csv" | "tsv" | "txt" => Some(IdentityFormat::Csv),
            "jsonl" | "ndjson" | "json" => Some(IdentityFormat::Jsonl),
            "parquet" | "pq" => Some(IdentityFormat::Parquet),
            _ => None,
        }
    }
}

impl fmt::Display for IdentityFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which column of the export holds each identity attribute. `None` = the export has no such
/// column. Only `identity_id` is mandatory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityColumns {
    pub identity_id: String,
    pub email: Option<String>,
    /// Several addresses in one cell, separated by `identities.list_separator` (CSV) or a JSON
    /// array (JSONL).
    pub alternate_emails: Option<String>,
    pub username: Option<String>,
    pub employee_id: Option<String>,
    pub display_name: Option<String>,
    pub department: Option<String>,
    /// A manager's identity id, or their email address (a value containing `@`).
    pub manager: Option<String>,
    pub status: Option<String>,
    pub termination_date: Option<String>,
    pub employee_type: Option<String>,
}

impl IdentityColumns {
    /// (config key, column name) of every mapped column, `identity_id` first.
    pub fn mapped(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![("identity_id", self.identity_id.as_str())];
        let optional = [
            ("email", &self.email),
            ("alternate_emails", &self.alternate_emails),
            ("username", &self.username),
            ("employee_id", &self.employee_id),
            ("display_name", &self.display_name),
            ("department", &self.department),
            ("manager", &self.manager),
            ("status", &self.status),
            ("termination_date", &self.termination_date),
            ("employee_type", &self.employee_type),
        ];
        out.extend(optional.into_iter().filter_map(|(k, v)| v.as_deref().map(|v| (k, v))));
        out
    }
}

/// Validated `[identities]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitiesConfig {
    /// The export's location; `None` = no identity source (correlation is skipped).
    pub url: Option<Url>,
    /// `None` = decided by the file extension when the file is read.
    pub format: Option<IdentityFormat>,
    pub delimiter: u8,
    pub list_separator: char,
    /// chrono format of `termination_date` (ISO dates and RFC 3339 timestamps are also accepted).
    pub date_format: String,
    pub columns: IdentityColumns,
}

impl IdentitiesConfig {
    /// The format to read `url` with: the configured one, else the extension's.
    pub fn effective_format(&self, url: &Url) -> Option<IdentityFormat> {
        self.format.or_else(|| IdentityFormat::from_extension(url.path()))
    }
}

/// A Slack account attribute a correlation rule can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccountAttr {
    Email,
    Username,
    DisplayName,
    /// SCIM `userName`.
    ScimUserName,
    /// SCIM `externalId` (usually the IdP's id of the person).
    ScimExternalId,
    ScimEmail,
    /// SCIM enterprise extension `employeeNumber`.
    EmployeeId,
}

/// An identity attribute a correlation rule can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdentityAttr {
    IdentityId,
    Email,
    AlternateEmails,
    Username,
    EmployeeId,
    DisplayName,
}

/// Normalisation applied to both sides of a rule before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Normalize {
    /// Lower-case.
    Case,
    /// Trim, and collapse inner runs of whitespace to one space.
    Whitespace,
    /// `local+tag@domain` → `local@domain`.
    PlusAddressing,
    /// Rewrite alias domains (`[correlation.domain_aliases]`) to their canonical domain.
    DomainAliases,
}

macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s.trim() {
                    $($name => Ok($ty::$variant),)*
                    other => Err(format!(
                        "unknown value `{other}`; expected one of: {}",
                        $ty::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    )),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(AccountAttr {
    Email => "email",
    Username => "username",
    DisplayName => "display_name",
    ScimUserName => "scim_user_name",
    ScimExternalId => "scim_external_id",
    ScimEmail => "scim_email",
    EmployeeId => "employee_id",
});

names!(IdentityAttr {
    IdentityId => "identity_id",
    Email => "email",
    AlternateEmails => "alternate_emails",
    Username => "username",
    EmployeeId => "employee_id",
    DisplayName => "display_name",
});

names!(Normalize {
    Case => "case",
    Whitespace => "whitespace",
    PlusAddressing => "plus_addressing",
    DomainAliases => "domain_aliases",
});

/// One ordered rule: account attribute ⇄ identity attribute after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationRule {
    pub account: AccountAttr,
    pub identity: IdentityAttr,
    pub normalize: Vec<Normalize>,
}

impl CorrelationRule {
    /// The name recorded with every match: `account_attr=identity_attr`.
    pub fn name(&self) -> String {
        format!("{}={}", self.account, self.identity)
    }
}

/// Validated `[correlation]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationConfig {
    /// Tried in order; the first rule that matches an account decides it.
    pub rules: Vec<CorrelationRule>,
    /// alias domain → canonical domain, both lower-case.
    pub domain_aliases: BTreeMap<String, String>,
    /// The manual overrides file (CSV: `account_id,identity_id,service_owner_id,reason`).
    pub overrides: Option<Url>,
}

pub(crate) mod defaults {
    pub const FORMAT: &str = "auto";
    pub const DELIMITER: &str = ",";
    pub const LIST_SEPARATOR: &str = ";";
    pub const DATE_FORMAT: &str = "%Y-%m-%d";
    /// (config key, default column name; "" = not mapped). Matches the simulator's HR export.
    pub const COLUMNS: &[(&str, &str)] = &[
        ("identity_id", "identity_id"),
        ("email", "email"),
        ("alternate_emails", "alternate_email"),
        ("username", ""),
        ("employee_id", "employee_id"),
        ("display_name", "display_name"),
        ("department", "department"),
        ("manager", "manager_email"),
        ("status", "status"),
        ("termination_date", "termination_date"),
        ("employee_type", "employee_type"),
    ];
    /// (account, identity, normalisation) in order.
    pub const RULES: &[(&str, &str, &[&str])] = &[
        ("scim_external_id", "identity_id", &["whitespace", "case"]),
        ("employee_id", "employee_id", &["whitespace", "case"]),
        ("email", "email", &["whitespace", "case", "plus_addressing", "domain_aliases"]),
        ("email", "alternate_emails", &["whitespace", "case", "plus_addressing", "domain_aliases"]),
    ];
}

use crate::error::Result;
use crate::overrides::Origins;
use crate::raw::{RawCorrelation, RawIdentities};

pub(crate) fn validate_identities(raw: RawIdentities, o: &Origins) -> Result<IdentitiesConfig> {
    let url = match raw.url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(crate::storage::storage_url(s).map_err(|m| o.invalid("identities.url", m))?),
    };
    let format = match raw.format.as_deref().unwrap_or(defaults::FORMAT).trim() {
        "auto" => None,
        "csv" => Some(IdentityFormat::Csv),
        "jsonl" | "ndjson" => Some(IdentityFormat::Jsonl),
        "parquet" => Some(IdentityFormat::Parquet),
        other => {
            return Err(o.invalid(
                "identities.format",
                format!("unknown format `{other}`; expected auto, csv, jsonl or parquet"),
            ));
        }
    };
    if let (Some(url), None) = (&url, format)
        && IdentityFormat::from_extension(url.path()).is_none()
    {
        return Err(o.invalid(
            "identities.format",
            "the file name of identities.url has no .csv, .jsonl or .parquet extension; set \
             identities.format to csv, jsonl or parquet",
        ));
    }
    let delimiter = single_char(o, "identities.delimiter", raw.delimiter.as_deref(), defaults::DELIMITER)?;
    if !delimiter.is_ascii() || delimiter == '"' || delimiter == '\n' {
        return Err(o.invalid("identities.delimiter", "must be one ASCII character other than a quote or newline"));
    }
    let list_separator =
        single_char(o, "identities.list_separator", raw.list_separator.as_deref(), defaults::LIST_SEPARATOR)?;
    let date_format = raw.date_format.unwrap_or_else(|| defaults::DATE_FORMAT.to_owned());
    if date_format.trim().is_empty() {
        return Err(o.invalid("identities.date_format", "must not be empty (e.g. \"%Y-%m-%d\")"));
    }

    let c = raw.columns.unwrap_or_default();
    let given = [
        c.identity_id,
        c.email,
        c.alternate_emails,
        c.username,
        c.employee_id,
        c.display_name,
        c.department,
        c.manager,
        c.status,
        c.termination_date,
        c.employee_type,
    ];
    let mut cols: Vec<Option<String>> = Vec::with_capacity(given.len());
    for ((key, default), value) in defaults::COLUMNS.iter().zip(given) {
        let v = value.unwrap_or_else(|| (*default).to_owned());
        let v = v.trim().to_owned();
        if v.is_empty() && *key == "identity_id" {
            return Err(o.invalid("identities.columns.identity_id", "must name the column holding each identity's id"));
        }
        cols.push((!v.is_empty()).then_some(v));
    }
    let mut it = cols.into_iter();
    let mut next = || it.next().flatten();
    let identity_id = next().unwrap_or_default();
    let columns = IdentityColumns {
        identity_id,
        email: next(),
        alternate_emails: next(),
        username: next(),
        employee_id: next(),
        display_name: next(),
        department: next(),
        manager: next(),
        status: next(),
        termination_date: next(),
        employee_type: next(),
    };
    let mut seen = BTreeMap::new();
    for (key, col) in columns.mapped() {
        if let Some(other) = seen.insert(col.to_owned(), key) {
            return Err(o.invalid(
                &format!("identities.columns.{key}"),
                format!("column `{col}` is already mapped to identities.columns.{other}"),
            ));
        }
    }
    Ok(IdentitiesConfig { url, format, delimiter: delimiter as u8, list_separator, date_format, columns })
}

fn single_char(o: &Origins, field: &str, value: Option<&str>, default: &str) -> Result<char> {
    let v = value.unwrap_or(default);
    let v = if v == "\\t" { "\t" } else { v };
    let mut chars = v.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(o.invalid(field, format!("must be exactly one character (got {v:?}); write \"\\t\" for a tab"))),
    }
}

pub(crate) fn validate_correlation(raw: RawCorrelation, o: &Origins) -> Result<CorrelationConfig> {
    let rules = match raw.rules {
        None => defaults::RULES
            .iter()
            .map(|(a, i, n)| CorrelationRule {
                account: a.parse().expect("default rule"),
                identity: i.parse().expect("default rule"),
                normalize: n.iter().map(|n| n.parse().expect("default rule")).collect(),
            })
            .collect(),
        Some(raw_rules) => {
            let mut rules = Vec::with_capacity(raw_rules.len());
            for (i, r) in raw_rules.into_iter().enumerate() {
                let field = format!("correlation.rules[{i}]");
                let account = r.account.parse().map_err(|e| o.invalid(&format!("{field}.account"), e))?;
                let identity = r.identity.parse().map_err(|e| o.invalid(&format!("{field}.identity"), e))?;
                let mut normalize = Vec::new();
                for (j, n) in r.normalize.unwrap_or_default().iter().enumerate() {
                    let n: Normalize = n.parse().map_err(|e| o.invalid(&format!("{field}.normalize[{j}]"), e))?;
                    if !normalize.contains(&n) {
                        normalize.push(n);
                    }
                }
                let rule = CorrelationRule { account, identity, normalize };
                if rules.contains(&rule) {
                    return Err(o.invalid(&field, format!("rule `{}` is listed twice", rule.name())));
                }
                rules.push(rule);
            }
            rules
        }
    };
    let mut domain_aliases = BTreeMap::new();
    for (alias, canonical) in raw.domain_aliases.unwrap_or_default() {
        let field = format!("correlation.domain_aliases.\"{alias}\"");
        let (a, c) = (alias.trim().to_ascii_lowercase(), canonical.trim().to_ascii_lowercase());
        let domain_like = |d: &str| !d.is_empty() && !d.contains(['@', ' ', '\'']) && d.contains('.');
        if !domain_like(&a) || !domain_like(&c) {
            return Err(
                o.invalid(&field, "both sides must be email domains such as \"corp.example\" = \"example.com\"")
            );
        }
        if a == c {
            return Err(o.invalid(&field, "an alias of itself"));
        }
        domain_aliases.insert(a, c);
    }
    for (a, c) in &domain_aliases {
        if domain_aliases.contains_key(c) {
            return Err(o.invalid(
                &format!("correlation.domain_aliases.\"{a}\""),
                format!("`{c}` is itself an alias; map every alias straight to the canonical domain"),
            ));
        }
    }
    let overrides = match raw.overrides.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(crate::storage::storage_url(s).map_err(|m| o.invalid("correlation.overrides", m))?),
    };
    Ok(CorrelationConfig { rules, domain_aliases, overrides })
}
