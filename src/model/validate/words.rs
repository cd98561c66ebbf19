//! Values and expectations in words, for validation's messages.

use super::FieldError;
use crate::data::ColumnKind;
use crate::model::manifest::FeatureSchema;

/// The error of a feature the row leaves out.
pub(super) fn missing(feature: &FeatureSchema, prefix: &str) -> FieldError {
    FieldError {
        field: format!("{prefix}{}", feature.name),
        message: if feature.nullable {
            format!(
                "missing: expected {}, or null for a missing value",
                expected(feature)
            )
        } else {
            format!("missing: expected {}", expected(feature))
        },
    }
}

/// The feature's type in words, for messages.
pub fn expected(feature: &FeatureSchema) -> String {
    match feature.kind {
        ColumnKind::Number => "a finite number".to_string(),
        ColumnKind::Integer => "an integer".to_string(),
        ColumnKind::Boolean => "a boolean (true or false)".to_string(),
        ColumnKind::Categorical => match &feature.categories {
            Some(categories) => format!("one of {}", quoted_list(categories)),
            None => "a category".to_string(),
        },
        ColumnKind::String => "a string".to_string(),
        ColumnKind::Date => "an RFC 3339 date (YYYY-MM-DD)".to_string(),
        ColumnKind::DateTime => {
            "an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SSZ or with an offset)".to_string()
        }
    }
}

pub(super) fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("\"{item}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a JSON value is, in words.
pub(super) fn json_kind(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".to_string(),
        serde_json::Value::Bool(b) => format!("the boolean {b}"),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(v) => format!("the number {}", readable(v)),
            None => format!("the number {n}"),
        },
        serde_json::Value::String(s) => format!("the string \"{}\"", truncate(s)),
        serde_json::Value::Array(_) => "an array".to_string(),
        serde_json::Value::Object(_) => "an object".to_string(),
    }
}

/// Echoed input is cut short, so a huge string does not make a huge error.
pub fn truncate(text: &str) -> String {
    const LIMIT: usize = 40;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(LIMIT).collect::<String>())
    }
}

/// [`expected`], put in words only when a message is written: a valid value costs nothing.
pub(super) struct Expected<'a>(pub(super) &'a FeatureSchema);

impl std::fmt::Display for Expected<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&expected(self.0))
    }
}

/// A number as a person reads it: 42 or 0.5, but 1e300 rather than three hundred digits.
pub(crate) fn readable(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else if value != 0.0 && !(1e-6..1e15).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}
