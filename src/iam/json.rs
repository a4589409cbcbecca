//! Small helpers for reading AWS JSON (`serde_json::Value`) without panics.

use serde_json::Value;

/// The string at `path` (object keys), if every step exists and the last
/// is a non-empty string.
pub(crate) fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// [`str_at`] as an owned string.
pub(crate) fn string_at(v: &Value, path: &[&str]) -> Option<String> {
    str_at(v, path).map(str::to_owned)
}

/// A string or an array of strings (IAM `Action`, `Resource`) as a list.
pub(crate) fn one_or_many(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The array at `key`, or an empty slice.
pub(crate) fn array<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}
