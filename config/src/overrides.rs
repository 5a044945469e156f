//! Environment overrides: `LASTSEEN_<SECTION>__<KEY>` variables merged into the parsed TOML
//! table before deserialization, plus the bookkeeping that lets errors name the variable that
//! supplied a bad value.

use toml::{Table, Value};

use crate::error::{ConfigError, Result};

const PREFIX: &str = "LASTSEEN_";
const SEPARATOR: &str = "__";

/// One applied override: the dotted config path it set and the variable it came from.
#[derive(Debug, Clone)]
pub(crate) struct Override {
    pub path: String,
    pub var: String,
}

/// Where values came from, so a field error can be attributed to the file or to a variable.
#[derive(Debug, Clone)]
pub(crate) struct Origins {
    pub file: String,
    pub overrides: Vec<Override>,
}

impl Origins {
    /// The origin to report for `field`: the env var that set it (or set a table containing
    /// it, or a key inside it) when there is one, else the file.
    pub fn for_field(&self, field: &str) -> String {
        self.overrides
            .iter()
            .filter(|o| covers(&o.path, field) || covers(field, &o.path))
            .max_by_key(|o| o.path.len())
            .map(|o| env_origin(&o.var))
            .unwrap_or_else(|| self.file.clone())
    }

    /// The environment variable that set `field` (or a table holding it), if one did.
    pub fn env_var_for(&self, field: &str) -> Option<&str> {
        self.overrides
            .iter()
            .filter(|o| covers(&o.path, field) || covers(field, &o.path))
            .max_by_key(|o| o.path.len())
            .map(|o| o.var.as_str())
    }

    pub fn invalid(&self, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { origin: self.for_field(field), field: field.to_owned(), message: message.into() }
    }
}

pub(crate) fn env_origin(var: &str) -> String {
    format!("environment variable {var}")
}

/// True when `inner` is `outer` or lies beneath it (`slack.sources[1]` under `slack.sources`).
fn covers(outer: &str, inner: &str) -> bool {
    match inner.strip_prefix(outer) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

/// Merges every `LASTSEEN_…__…` variable in `env` into `table`. Variables without a `__` are
/// not overrides (the CLI owns `LASTSEEN_CONFIG`, `LASTSEEN_LOG*`, `LASTSEEN_LAKE`).
///
/// Variables are applied in name order so that conflicting ones (`LASTSEEN_SLACK__RETRY` and
/// `LASTSEEN_SLACK__RETRY__MAX_ATTEMPTS`) fail the same way on every run.
pub(crate) fn apply(table: &mut Table, env: impl IntoIterator<Item = (String, String)>) -> Result<Vec<Override>> {
    let mut vars: Vec<(String, String)> = env.into_iter().filter(|(k, _)| is_override(k)).collect();
    vars.sort();

    let mut applied = Vec::with_capacity(vars.len());
    for (var, raw) in vars {
        let segments = key_segments(&var)?;
        set_path(table, &segments, parse_value(&raw)).map_err(|at| ConfigError::Invalid {
            origin: env_origin(&var),
            field: at,
            message: "is not a table, so it cannot hold the key this variable sets".to_owned(),
        })?;
        applied.push(Override { path: segments.join("."), var });
    }
    Ok(applied)
}

pub(crate) fn is_override(name: &str) -> bool {
    name.strip_prefix(PREFIX).is_some_and(|rest| rest.contains(SEPARATOR))
}

fn key_segments(var: &str) -> Result<Vec<String>> {
    let rest = &var[PREFIX.len()..];
    let segments: Vec<String> = rest.split(SEPARATOR).map(str::to_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err(ConfigError::Invalid {
            origin: env_origin(var),
            field: segments.join("."),
            message: format!(
                "empty key in variable name; overrides look like {PREFIX}<SECTION>__<KEY>, \
                 e.g. LASTSEEN_STORAGE__URL"
            ),
        });
    }
    Ok(segments)
}

/// Sets `path` in `table`, creating intermediate tables. On conflict returns the dotted path of
/// the existing non-table value.
fn set_path(table: &mut Table, path: &[String], value: Value) -> std::result::Result<(), String> {
    let (last, parents) = path.split_last().expect("key_segments never returns an empty path");
    let mut current = table;
    for (i, key) in parents.iter().enumerate() {
        let entry = current.entry(key.clone()).or_insert_with(|| Value::Table(Table::new()));
        current = match entry {
            Value::Table(t) => t,
            _ => return Err(path[..=i].join(".")),
        };
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// Env values are TOML when they parse as a number, bool, string or array, else plain text;
/// so `30` is an integer, `true` a bool, `["users"]` an array, and `s3://b/p` or `60s` strings.
/// Dates and inline tables stay text: no field takes them, and text gives the clearer error.
fn parse_value(raw: &str) -> Value {
    // A newline would let the value smuggle extra keys into the one-line document below.
    if !raw.contains(['\n', '\r'])
        && let Ok(mut doc) = format!("v = {raw}").parse::<Table>()
        && doc.len() == 1
        && let Some(v @ (Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::String(_) | Value::Array(_))) =
            doc.remove("v")
    {
        return v;
    }
    Value::String(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_toml_scalars_or_stay_text() {
        assert_eq!(parse_value("30"), Value::Integer(30));
        assert_eq!(parse_value("true"), Value::Boolean(true));
        assert_eq!(parse_value("\"quoted\""), Value::String("quoted".into()));
        assert_eq!(
            parse_value(r#"["a", "b"]"#),
            Value::Array(vec![Value::String("a".into()), Value::String("b".into())])
        );
        assert_eq!(parse_value("s3://b/p"), Value::String("s3://b/p".into()));
        assert_eq!(parse_value("60s"), Value::String("60s".into()));
        assert_eq!(parse_value("2024-01-01"), Value::String("2024-01-01".into()));
        assert_eq!(parse_value("1\nx = 2"), Value::String("1\nx = 2".into()));
        assert_eq!(parse_value(""), Value::String(String::new()));
    }

    #[test]
    fn only_double_underscore_names_are_overrides() {
        assert!(is_override("LASTSEEN_STORAGE__URL"));
        assert!(!is_override("LASTSEEN_CONFIG"));
        assert!(!is_override("LASTSEEN_LOG_FORMAT"));
        assert!(!is_override("LASTSEEN_LAKE"));
        assert!(!is_override("OTHER_STORAGE__URL"));
    }

    #[test]
    fn conflicting_overrides_fail_naming_the_variable() {
        let mut t = Table::new();
        let err = apply(
            &mut t,
            [
                ("LASTSEEN_SLACK__RETRY".to_owned(), "5".to_owned()),
                ("LASTSEEN_SLACK__RETRY__MAX_ATTEMPTS".to_owned(), "3".to_owned()),
            ],
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("slack.retry"));
        assert!(err.to_string().contains("LASTSEEN_SLACK__RETRY__MAX_ATTEMPTS"));
    }

    #[test]
    fn empty_segments_are_rejected() {
        let mut t = Table::new();
        let err = apply(&mut t, [("LASTSEEN_SLACK____X".to_owned(), "1".to_owned())]).unwrap_err();
        assert!(err.to_string().contains("LASTSEEN_SLACK____X"), "{err}");
    }

    #[test]
    fn origin_prefers_the_most_specific_override() {
        let o = Origins {
            file: "lastseen.toml".into(),
            overrides: vec![Override { path: "slack.sources".into(), var: "LASTSEEN_SLACK__SOURCES".into() }],
        };
        assert!(o.for_field("slack.sources[1]").contains("LASTSEEN_SLACK__SOURCES"));
        assert_eq!(o.for_field("slack.sources_x"), "lastseen.toml");
        assert_eq!(o.for_field("slack.api_url"), "lastseen.toml");
    }
}
