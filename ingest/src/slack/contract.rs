//! Contract-test helpers: Slack's recorded answer shapes (`tests/contract/samples/`, from
//! Slack's Java SDK, recorded against live Slack) made vivid and parsed with the collectors'
//! own models. Each model's test asserts that every field it reads comes out of the sample with
//! the typed value the vivid sample holds, so renaming or retyping a model field (or Slack
//! dropping one from its answers, once the samples are refreshed) fails a test.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The vivid string every masked `""` becomes.
pub(crate) const TEXT: &str = "vivid";

/// The recorded sample `file` (for example `api__users.list.json`).
pub(crate) fn sample(file: &str) -> Value {
    let path = format!("{}/../tests/contract/samples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The sample with its masked values made readable: `""` becomes [`TEXT`], `false` becomes
/// `true`; other strings and numbers (`U00000000`, `12345`) stay. Keys and types are the
/// sample's.
pub(crate) fn vivid(v: Value) -> Value {
    match v {
        Value::String(s) if s.is_empty() => Value::String(TEXT.into()),
        Value::Bool(_) => Value::Bool(true),
        Value::Array(a) => Value::Array(a.into_iter().map(vivid).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, vivid(v))).collect()),
        other => other,
    }
}

/// The vivid sample `file` parsed as `T`.
pub(crate) fn parse<T: DeserializeOwned>(file: &str) -> T {
    let v = vivid(sample(file));
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{file} does not parse with the model: {e}"))
}

/// The vivid sample `file` at JSON pointer `pointer`, parsed as `T`.
pub(crate) fn parse_at<T: DeserializeOwned>(file: &str, pointer: &str) -> T {
    let v = vivid(sample(file));
    let at = v.pointer(pointer).unwrap_or_else(|| panic!("{file} has nothing at {pointer}")).clone();
    serde_json::from_value(at).unwrap_or_else(|e| panic!("{file}{pointer} does not parse with the model: {e}"))
}
