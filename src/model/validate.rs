//! Validation of input rows against a model's schema: the one place that decides what a
//! feature value may be. JSON bodies, query strings and CSV cells all come through here.

mod warning;
mod words;

pub use warning::{Bound, RangeWarning};
pub(crate) use words::readable;
use words::{Expected, json_kind, missing, quoted_list};
pub use words::{expected, truncate};

use super::manifest::FeatureSchema;
use super::native::FeatureValue;
use crate::data::ColumnKind;
use serde::Serialize;
use std::collections::HashMap;

/// What to do with fields that are not features of the model.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFields {
    /// Refuse the row (the default: a typo in a field name must not go unnoticed).
    #[default]
    Reject,
    /// Ignore them.
    Ignore,
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, prefixed by its row in a batch (`instances[2].mean_radius`).
    pub field: String,
    /// What is wrong, saying what was expected and what came.
    pub message: String,
}

/// A raw input value before validation.
#[derive(Debug, Clone, Copy)]
pub enum RawValue<'a> {
    /// A JSON value: types must match exactly (a number is not a string).
    Json(&'a serde_json::Value),
    /// Text from a query string or a CSV cell, parsed by the feature's type.
    Text(&'a str),
    /// A number from a typed tensor (the V2 protocol): for number, integer and boolean
    /// (0 or 1) features; NaN stands for a missing value of a nullable feature.
    Number(f64),
    /// A boolean from a typed tensor.
    Bool(bool),
}

/// FNV-1a: field names are short, and SipHash's per-lookup cost showed on the predict path.
/// Flooding is no concern: the table is built from the model's own feature names and
/// requests only look names up.
#[derive(Debug, Clone, Copy)]
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Checks rows against the features of one model version.
#[derive(Debug, Clone)]
pub struct Validator {
    features: Vec<FeatureSchema>,
    /// The features' names, shared by every warning that names one.
    names: Vec<std::sync::Arc<str>>,
    positions: HashMap<String, usize, std::hash::BuildHasherDefault<Fnv1a>>,
    /// Each feature's [`accepted_range`], worked out once.
    ranges: Vec<Option<(f64, f64)>>,
}

/// A validated row and the warnings it raised.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRow {
    /// One value per feature, in schema order.
    pub values: Vec<FeatureValue>,
    /// Values outside the training range.
    pub warnings: Vec<RangeWarning>,
}

impl Validator {
    /// A validator for these features.
    pub fn new(features: &[FeatureSchema]) -> Self {
        Validator {
            ranges: features.iter().map(accepted_range).collect(),
            names: features.iter().map(|f| f.name.as_str().into()).collect(),
            features: features.to_vec(),
            positions: features
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name.clone(), i))
                .collect(),
        }
    }

    /// The features, in order.
    pub fn features(&self) -> &[FeatureSchema] {
        &self.features
    }

    /// Validates one row given as (field, value) pairs. Every problem is pushed to `errors`,
    /// each field name prefixed by `prefix`; the row comes back only when it has none.
    pub fn validate<'a>(
        &self,
        fields: impl IntoIterator<Item = (&'a str, RawValue<'a>)>,
        unknown: UnknownFields,
        prefix: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<ValidRow> {
        let errors_before = errors.len();
        let mut values: Vec<Option<FeatureValue>> = vec![None; self.features.len()];
        let mut warnings = Vec::new();
        for (index, (name, raw)) in fields.into_iter().enumerate() {
            let field = || format!("{prefix}{name}");
            let Some(position) = self.position_of(index, name) else {
                if unknown == UnknownFields::Reject {
                    errors.push(FieldError {
                        field: field(),
                        message: "unknown field: not a feature of this model".to_string(),
                    });
                }
                continue;
            };
            if values[position].is_some() {
                errors.push(FieldError {
                    field: field(),
                    message: "given more than once".to_string(),
                });
                continue;
            }
            match self.checked(position, raw, &mut warnings) {
                Ok(value) => values[position] = Some(value),
                Err(message) => {
                    errors.push(FieldError {
                        field: field(),
                        message,
                    });
                    // Mark as seen, so it is not also reported missing.
                    values[position] = Some(FeatureValue::Number(0.0));
                }
            }
        }
        for (feature, value) in self.features.iter().zip(&values) {
            if value.is_none() {
                errors.push(missing(feature, prefix));
            }
        }
        if errors.len() > errors_before {
            return None;
        }
        Some(ValidRow {
            // Every value is there (checked above); mapping, unlike flattening, lets the
            // vector be reused in place.
            values: values
                .into_iter()
                .map(|value| value.unwrap_or(FeatureValue::Missing))
                .collect(),
            warnings,
        })
    }

    /// The schema position of the field `name`, given as the `index`-th field of its row.
    /// Clients mostly send features in schema order (the model's example, a pandas row), so
    /// the name at that position is compared first and the hash table consulted only when
    /// it differs.
    fn position_of(&self, index: usize, name: &str) -> Option<usize> {
        match self.names.get(index) {
            Some(expected) if **expected == *name => Some(index),
            _ => self.positions.get(name).copied(),
        }
    }
}

impl Validator {
    /// Validates one row whose values come in schema order, one per feature (a V2 `input`
    /// matrix): as [`Validator::validate`], without looking names up.
    pub fn validate_in_order<'a>(
        &self,
        raws: impl IntoIterator<Item = RawValue<'a>>,
        prefix: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<ValidRow> {
        let errors_before = errors.len();
        let mut values = Vec::with_capacity(self.features.len());
        let mut warnings = Vec::new();
        for (position, raw) in raws.into_iter().take(self.features.len()).enumerate() {
            match self.checked(position, raw, &mut warnings) {
                Ok(value) => values.push(value),
                Err(message) => {
                    errors.push(FieldError {
                        field: format!("{prefix}{}", self.features[position].name),
                        message,
                    });
                    values.push(FeatureValue::Number(0.0));
                }
            }
        }
        for feature in &self.features[values.len()..] {
            errors.push(missing(feature, prefix));
        }
        (errors.len() == errors_before).then_some(ValidRow { values, warnings })
    }

    /// The value of feature `position`, checked, its range warning pushed to `warnings`.
    fn checked(
        &self,
        position: usize,
        raw: RawValue<'_>,
        warnings: &mut Vec<RangeWarning>,
    ) -> Result<FeatureValue, String> {
        let feature = &self.features[position];
        let value = check_value(feature, raw)
            .and_then(|value| within_scorable_range(feature, self.ranges[position], value))?;
        if let Some((given, bound)) = range_warning(feature, &value) {
            warnings.push(RangeWarning {
                feature: self.names[position].clone(),
                value: given,
                bound,
            });
        }
        Ok(value)
    }
}

fn check_value(feature: &FeatureSchema, raw: RawValue<'_>) -> Result<FeatureValue, String> {
    let expected = Expected(feature);
    // A literal JSON cannot hold, passed on by the lenient readers: a number like any other.
    let raw = match raw {
        RawValue::Json(serde_json::Value::String(s)) => match non_finite_literal(s) {
            Some((literal, n)) if !(n.is_nan() && feature.nullable) => {
                return Err(format!(
                    "expected {expected}, got {literal}: not a finite number"
                ));
            }
            Some((_, n)) => RawValue::Number(n),
            None => raw,
        },
        other => other,
    };
    match (feature.kind, raw) {
        (_, RawValue::Json(serde_json::Value::Null)) if feature.nullable => {
            Ok(FeatureValue::Missing)
        }
        (_, RawValue::Text(text)) if feature.nullable && text.trim().is_empty() => {
            Ok(FeatureValue::Missing)
        }
        (_, RawValue::Number(n)) if feature.nullable && n.is_nan() => Ok(FeatureValue::Missing),
        // `NaN` as pandas writes a missing value into JSON text, or as text in a CSV cell or a
        // query: missing, the same as null, unless it is one of the feature's own categories.
        (_, RawValue::Json(serde_json::Value::String(s))) if is_missing_word(feature, s) => {
            Ok(FeatureValue::Missing)
        }
        (_, RawValue::Text(text)) if is_missing_word(feature, text.trim()) => {
            Ok(FeatureValue::Missing)
        }
        (_, RawValue::Number(n)) if !n.is_finite() => Err(format!(
            "expected {expected}, got {}: not a finite number",
            readable(n)
        )),
        (ColumnKind::Number, RawValue::Number(n)) => Ok(FeatureValue::Number(n)),
        (ColumnKind::Integer, RawValue::Number(n)) => whole_number(n)
            .map(FeatureValue::Number)
            .ok_or_else(|| format!("expected an integer, got {}", readable(n))),
        (ColumnKind::Boolean, RawValue::Number(n)) if n == 0.0 || n == 1.0 => {
            Ok(FeatureValue::Number(n))
        }
        (ColumnKind::Boolean, RawValue::Bool(b)) => {
            Ok(FeatureValue::Number(f64::from(u8::from(b))))
        }
        (_, RawValue::Number(n)) => Err(format!(
            "expected {expected}, got the number {}",
            readable(n)
        )),
        (_, RawValue::Bool(b)) => Err(format!("expected {expected}, got the boolean {b}")),
        (
            kind @ (ColumnKind::String
            | ColumnKind::Date
            | ColumnKind::DateTime
            | ColumnKind::Categorical),
            RawValue::Json(serde_json::Value::String(s)),
        ) => check_text(feature, kind, carried_text(kind, s), &expected),
        (ColumnKind::Number, RawValue::Json(serde_json::Value::Number(n))) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(FeatureValue::Number)
            .ok_or_else(|| format!("expected {expected}, got {n}")),
        (ColumnKind::Integer, RawValue::Json(serde_json::Value::Number(n))) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            whole_number(n)
                .map(FeatureValue::Number)
                .ok_or_else(|| format!("expected an integer, got {}", readable(n)))
        }
        (ColumnKind::Boolean, RawValue::Json(serde_json::Value::Bool(b))) => {
            Ok(FeatureValue::Number(f64::from(u8::from(*b))))
        }
        (_, RawValue::Json(serde_json::Value::String(s))) if non_finite_word(s) => {
            Err(format!("expected {expected}, got {s}: not a finite number"))
        }
        (_, RawValue::Json(other)) => Err(format!("expected {expected}, got {}", json_kind(other))),
        (kind, RawValue::Text(text)) => {
            check_text(feature, kind, carried_text(kind, text), &expected)
        }
    }
}

/// The text a value carries: free text exactly as sent, everything else (numbers, booleans,
/// categories, dates) without the spaces around it, whichever protocol carried it.
fn carried_text(kind: ColumnKind, text: &str) -> &str {
    if kind == ColumnKind::String {
        text
    } else {
        text.trim()
    }
}

/// How the lenient JSON readers pass on a number literal that JSON cannot hold (`NaN`,
/// `Infinity`, `-Infinity`, or one too large for an f64, such as `1e999`): as a string of this
/// character and the literal. No text a client sends holds it (text with a NUL is refused), so
/// it is never taken for text, and a free-text feature refuses it as not a finite number.
pub const NON_FINITE_LITERAL: char = '\u{0}';

/// The literal and its value, for a string marked with [`NON_FINITE_LITERAL`].
pub fn non_finite_literal(text: &str) -> Option<(&str, f64)> {
    let literal = text.strip_prefix(NON_FINITE_LITERAL)?;
    let value = match literal {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        number => number.parse::<f64>().ok()?,
    };
    Some((literal, value))
}

/// A whole number (its size is checked by [`accepted_range`]). `3.0` counts: JSON and CSV do not
/// tell integers from floats that happen to be whole.
fn whole_number(value: f64) -> Option<f64> {
    (value.is_finite() && value.fract() == 0.0).then_some(value)
}

/// Whether `text` is the `NaN` that stands for a missing value of a nullable feature.
fn is_missing_word(feature: &FeatureSchema, text: &str) -> bool {
    feature.nullable
        && text == "NaN"
        && !feature
            .categories
            .as_ref()
            .is_some_and(|categories| categories.iter().any(|c| c == text))
}

fn non_finite_word(text: &str) -> bool {
    let lower = text.trim().to_ascii_lowercase();
    matches!(
        lower.trim_start_matches(['+', '-']),
        "nan" | "inf" | "infinity"
    )
}

fn check_text(
    feature: &FeatureSchema,
    kind: ColumnKind,
    text: &str,
    expected: &Expected<'_>,
) -> Result<FeatureValue, String> {
    let got = || format!("expected {expected}, got \"{}\"", truncate(text));
    if text.is_empty() {
        return Err(format!("expected {expected}, got an empty value"));
    }
    // No runtime takes a NUL inside a string (ONNX Runtime's string tensors are C strings).
    if text.contains('\0') {
        return Err(format!(
            "expected {expected}, got text with a NUL character"
        ));
    }
    let numeric = matches!(
        kind,
        ColumnKind::Number | ColumnKind::Integer | ColumnKind::Boolean
    );
    if numeric && non_finite_word(text) {
        return Err(format!(
            "expected {expected}, got {text}: not a finite number"
        ));
    }
    match kind {
        ColumnKind::Number => match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(FeatureValue::Number(v)),
            Ok(_) => Err(format!(
                "expected {expected}, got {text}: not a finite number"
            )),
            Err(_) => Err(got()),
        },
        ColumnKind::Integer => match text.parse::<f64>() {
            Ok(v) => whole_number(v)
                .map(FeatureValue::Number)
                .ok_or_else(|| format!("expected an integer, got {text}")),
            Err(_) => Err(got()),
        },
        ColumnKind::Boolean => {
            if text.eq_ignore_ascii_case("true") {
                Ok(FeatureValue::Number(1.0))
            } else if text.eq_ignore_ascii_case("false") {
                Ok(FeatureValue::Number(0.0))
            } else {
                Err(got())
            }
        }
        ColumnKind::Categorical => category(feature, text),
        ColumnKind::String => Ok(FeatureValue::Text(text.to_string())),
        ColumnKind::Date => match text.parse::<jiff::civil::Date>() {
            Ok(_) if text.len() == 10 => Ok(FeatureValue::Text(text.to_string())),
            _ => Err(format!(
                "expected {expected}, got \"{}\": not an RFC 3339 date",
                truncate(text)
            )),
        },
        ColumnKind::DateTime => match text.parse::<jiff::Timestamp>() {
            Ok(_) if is_rfc3339_date_time(text) => Ok(FeatureValue::Text(text.to_string())),
            _ => Err(format!(
                "expected {expected}, got \"{}\": not an RFC 3339 date-time",
                truncate(text)
            )),
        },
    }
}

/// jiff also reads ISO 8601 forms that RFC 3339 does not allow (a space instead of `T` is
/// allowed by both; week dates and bracketed zones are not RFC 3339).
fn is_rfc3339_date_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && !text.contains('[')
}

fn category(feature: &FeatureSchema, value: &str) -> Result<FeatureValue, String> {
    match &feature.categories {
        Some(categories) if categories.iter().any(|c| c == value) => {
            Ok(FeatureValue::Category(value.to_string()))
        }
        Some(categories) => Err(format!(
            "unknown category \"{}\": expected one of {}",
            truncate(value),
            quoted_list(categories)
        )),
        None => Ok(FeatureValue::Category(value.to_string())),
    }
}

/// How far outside its training range a number may lie and still be scored: up to this many
/// times the largest magnitude seen in training. Well past any unit mistake (a factor of 1,000
/// or 1,000,000), and small enough that no native model's arithmetic (squared distances,
/// standardised values times coefficients, Gaussian log-likelihoods) can overflow, so a value
/// in range always gets an answer and one beyond is refused naming its feature.
pub const SCORABLE_MAGNITUDE_FACTOR: f64 = 1e9;

/// The largest integer an f64 holds exactly, and so the largest an integer feature takes.
pub const LARGEST_EXACT_INTEGER: f64 = 9_007_199_254_740_991.0;

/// The numbers a numeric feature takes, `(lowest, highest)`: within
/// [`SCORABLE_MAGNITUDE_FACTOR`] times the largest training magnitude, and for integers within
/// ±[`LARGEST_EXACT_INTEGER`]. `None` when any finite number is taken (a number feature without
/// training statistics) or the feature is not numeric.
pub fn accepted_range(feature: &FeatureSchema) -> Option<(f64, f64)> {
    let trained = match (feature.min, feature.max) {
        (Some(min), Some(max)) if min.is_finite() && max.is_finite() => {
            let magnitude = min.abs().max(max.abs()).max(1.0) * SCORABLE_MAGNITUDE_FACTOR;
            Some(magnitude.min(f64::MAX))
        }
        _ => None,
    };
    let limit = match feature.kind {
        ColumnKind::Number => trained?,
        ColumnKind::Integer => trained.map_or(LARGEST_EXACT_INTEGER, |t| {
            t.min(LARGEST_EXACT_INTEGER).floor()
        }),
        _ => return None,
    };
    Some((-limit, limit))
}

/// Refuses a number outside [`accepted_range`], saying why and what is taken.
fn within_scorable_range(
    feature: &FeatureSchema,
    range: Option<(f64, f64)>,
    value: FeatureValue,
) -> Result<FeatureValue, String> {
    let FeatureValue::Number(v) = value else {
        return Ok(value);
    };
    match range {
        Some((lowest, highest)) if !(lowest..=highest).contains(&v) => {
            let why = match (feature.min, feature.max) {
                (Some(min), Some(max)) => format!(
                    "too far outside the training range {} to {} to be scored",
                    readable(min),
                    readable(max)
                ),
                _ => "larger than an integer can be held exactly".to_string(),
            };
            Err(format!(
                "{} is {why}: expected {} from {} to {}",
                readable(v),
                if feature.kind == ColumnKind::Integer {
                    "an integer"
                } else {
                    "a number"
                },
                readable(lowest),
                readable(highest)
            ))
        }
        _ => Ok(value),
    }
}

/// A warning when a numeric value lies outside the range seen in training: the model still
/// answers, but it is extrapolating.
/// The number and the training bound it crosses, if it crosses one.
fn range_warning(feature: &FeatureSchema, value: &FeatureValue) -> Option<(f64, Bound)> {
    let FeatureValue::Number(v) = value else {
        return None;
    };
    if feature.kind == ColumnKind::Boolean {
        return None;
    }
    match (feature.min, feature.max) {
        (Some(min), _) if *v < min => Some((*v, Bound::Below(min))),
        (_, Some(max)) if *v > max => Some((*v, Bound::Above(max))),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
