//! The compact form of a logged prediction: what a request hands the log, and how a row is laid
//! out in the database.
//!
//! A row keeps numbers only: the inputs in schema order in a small binary form, the label as
//! its index, the probabilities as doubles and the request id as 16 bytes. Names, kinds,
//! categories and labels are the model version's, stored once per version as a
//! schema (`log_schema.rs`; so rows stay readable after the version's folder is gone)
//! and joined back when the log is read.
//!
//! Inputs, in schema order, each by its feature's kind (a feature the operator excludes is not
//! written; one they hash is written as text, its hash: see [`super::policy`]):
//! - number, integer, boolean: 8 bytes, the IEEE 754 double, little-endian; any NaN is missing
//!   (the validator never lets a NaN through as a value);
//! - categorical: a LEB128 varint `v`: 0 missing, `1..=n` the category `v - 1`, `n + 1` a value
//!   outside the list (never from the validator; kept so nothing is lost) followed by it as text;
//! - text, date, date-time: a varint `v`: 0 missing, otherwise `v - 1` bytes of UTF-8.

use super::policy::{InputPolicy, Kept};
use crate::data::ColumnKind;
use crate::model::{FeatureSchema, FeatureValue, LoadedModel, Outcome};
use serde_json::{Number, Value};
use std::sync::Arc;

/// One logged prediction (one row of a batch), as the request hands it over: numbers, the
/// request's key, and the loaded model version, which knows the names and labels. No text is
/// built on the request path, and the inputs and probabilities share one allocation.
#[derive(Debug, Clone)]
pub struct PredictionRecord {
    /// The model version that answered.
    pub model: Arc<LoadedModel>,
    /// The request id.
    pub request_id: RequestKey,
    /// The row's index in its request (0 for a single row).
    pub row_index: u32,
    /// When it was answered, in milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The inputs in the compact form ([`encode_inputs`]), then the probabilities as
    /// little-endian doubles.
    payload: Box<[u8]>,
    /// Where the probabilities start in `payload`.
    inputs_len: usize,
    /// The predicted class's index in the model's labels (a classifier).
    pub label: Option<u32>,
    /// The predicted value (a model that predicts a number).
    pub value: Option<f64>,
    /// Time spent answering the request, in microseconds.
    pub latency_us: u32,
    /// The API key or user that asked, when auth is on.
    pub key_name: Option<Arc<str>>,
}

/// One answered row, as [`PredictionRecord::new`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    /// The row's index in its request.
    pub row_index: usize,
    /// Its validated inputs, in schema order.
    pub values: &'a [FeatureValue],
    /// What the model answered.
    pub outcome: &'a Outcome,
}

impl PredictionRecord {
    /// The record of an answered row of `model`, its inputs written as `policy` keeps them.
    pub fn new(
        model: &Arc<LoadedModel>,
        request_id: &RequestKey,
        answered: Answered<'_>,
        policy: &InputPolicy,
        latency_us: u32,
        key_name: Option<Arc<str>>,
    ) -> PredictionRecord {
        let features = &model.artifact.manifest.features;
        let (label, probabilities, value) = match answered.outcome {
            Outcome::Class {
                class,
                probabilities,
            } => (u32::try_from(*class).ok(), probabilities.as_slice(), None),
            Outcome::Value(value) => (None, &[][..], Some(*value)),
        };
        let mut payload = Vec::with_capacity(features.len() * 8 + probabilities.len() * 8);
        encode_inputs_into(&mut payload, features, answered.values, policy);
        let inputs_len = payload.len();
        for p in probabilities {
            payload.extend_from_slice(&p.to_le_bytes());
        }
        PredictionRecord {
            model: model.clone(),
            request_id: request_id.clone(),
            row_index: u32::try_from(answered.row_index).unwrap_or(u32::MAX),
            created_at_ms: now_ms(),
            payload: payload.into_boxed_slice(),
            inputs_len,
            label,
            value,
            latency_us,
            key_name,
        }
    }

    /// The inputs in the compact form.
    pub fn inputs(&self) -> &[u8] {
        &self.payload[..self.inputs_len]
    }

    /// The probabilities, as little-endian doubles; `None` for a model that predicts a
    /// number.
    pub fn probabilities(&self) -> Option<&[u8]> {
        self.label.map(|_| &self.payload[self.inputs_len..])
    }

    /// The same record, answered at another time (for tests and tools that write the past).
    pub fn at(mut self, created_at_ms: i64) -> PredictionRecord {
        self.created_at_ms = created_at_ms;
        self
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The request id of a logged row: 16 bytes when it is a UUID in its canonical lowercase text
/// (the ids the server makes), the text otherwise (an id a client sent in `x-request-id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestKey {
    /// A UUID, written as 16 bytes.
    Uuid([u8; 16]),
    /// Any other id, written as its text behind a 0xFF byte.
    Text(Arc<str>),
}

/// Marks a text id in the database, where a 16-byte value is always a UUID: 0xFF never occurs
/// in UTF-8, and a text id that would come to 16 bytes gets a second one at its end.
const TEXT_MARK: u8 = 0xFF;

impl RequestKey {
    /// The key of a request id.
    pub fn of(request_id: &str) -> RequestKey {
        if request_id.len() == 36
            && let Ok(uuid) = uuid::Uuid::try_parse(request_id)
            && uuid
                .hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer())
                == request_id
        {
            return RequestKey::Uuid(*uuid.as_bytes());
        }
        RequestKey::Text(Arc::from(request_id))
    }

    /// The bytes stored in the `request_id` column, borrowed when they are the UUID's.
    pub fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            RequestKey::Uuid(bytes) => std::borrow::Cow::Borrowed(bytes),
            RequestKey::Text(_) => std::borrow::Cow::Owned(self.to_bytes()),
        }
    }

    /// The bytes stored in the `request_id` column.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            RequestKey::Uuid(bytes) => bytes.to_vec(),
            RequestKey::Text(text) => {
                let mut bytes = Vec::with_capacity(text.len() + 2);
                bytes.push(TEXT_MARK);
                bytes.extend_from_slice(text.as_bytes());
                if bytes.len() == 16 {
                    bytes.push(TEXT_MARK);
                }
                bytes
            }
        }
    }

    /// The request id of stored bytes, as text (`None` for bytes no key was written as).
    pub fn text_of(bytes: &[u8]) -> Option<String> {
        if let Ok(uuid) = <[u8; 16]>::try_from(bytes) {
            return Some(uuid::Uuid::from_bytes(uuid).hyphenated().to_string());
        }
        let text = bytes.strip_prefix(&[TEXT_MARK])?;
        let text = text.strip_suffix(&[TEXT_MARK]).unwrap_or(text);
        String::from_utf8(text.to_vec()).ok()
    }
}

/// The 64-bit FNV-1a hash.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &byte in bytes {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

pub(super) fn json_number(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn push_text(out: &mut Vec<u8>, text: &str) {
    push_varint(out, text.len() as u64 + 1);
    out.extend_from_slice(text.as_bytes());
}

/// A text value as written (see the module's docs).
pub fn text_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    push_text(&mut out, text);
    out
}

fn read_str<'a>(bytes: &mut &'a [u8], length: u64) -> Option<&'a str> {
    let length = usize::try_from(length).ok()?;
    if bytes.len() < length {
        return None;
    }
    let (text, rest) = bytes.split_at(length);
    *bytes = rest;
    std::str::from_utf8(text).ok()
}

/// Writes validated inputs, in schema order, in the compact form (see the module's docs):
/// features `policy` excludes are left out, those it hashes written as their hash's text.
pub fn encode_inputs(
    features: &[FeatureSchema],
    values: &[FeatureValue],
    policy: &InputPolicy,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(features.len() * 8);
    encode_inputs_into(&mut out, features, values, policy);
    out
}

fn encode_inputs_into(
    out: &mut Vec<u8>,
    features: &[FeatureSchema],
    values: &[FeatureValue],
    policy: &InputPolicy,
) {
    let plain = policy.keeps_everything();
    for (feature, value) in features.iter().zip(values) {
        let kept = if plain {
            Kept::Value
        } else {
            policy.kept(&feature.name)
        };
        match kept {
            Kept::Value => encode_value(out, feature, value),
            Kept::Excluded => {}
            Kept::Hashed => match value_text(feature, value) {
                Some(text) => push_text(out, &policy.hash(&feature.name, &text)),
                None => out.push(0),
            },
        }
    }
}

/// A value as the text its hash is taken of: numbers as JSON writes them, booleans as
/// `true`/`false`, text as it is; `None` when missing.
fn value_text(feature: &FeatureSchema, value: &FeatureValue) -> Option<String> {
    match value {
        FeatureValue::Missing => None,
        FeatureValue::Number(n) => Some(match feature.kind {
            ColumnKind::Boolean => (*n != 0.0).to_string(),
            ColumnKind::Integer => (*n as i64).to_string(),
            _ => json_number(*n).to_string(),
        }),
        FeatureValue::Category(text) | FeatureValue::Text(text) => Some(text.clone()),
    }
}

fn encode_value(out: &mut Vec<u8>, feature: &FeatureSchema, value: &FeatureValue) {
    match feature.kind {
        ColumnKind::Number | ColumnKind::Integer | ColumnKind::Boolean => {
            let number = match value {
                FeatureValue::Number(n) => *n,
                _ => f64::NAN,
            };
            out.extend_from_slice(&number.to_le_bytes());
        }
        ColumnKind::Categorical => match value {
            FeatureValue::Missing | FeatureValue::Number(_) => out.push(0),
            FeatureValue::Category(text) | FeatureValue::Text(text) => {
                let categories = feature.categories.as_deref().unwrap_or_default();
                match categories.iter().position(|c| c == text) {
                    Some(index) => push_varint(out, index as u64 + 1),
                    None => {
                        push_varint(out, categories.len() as u64 + 1);
                        push_text(out, text);
                    }
                }
            }
        },
        ColumnKind::String | ColumnKind::Date | ColumnKind::DateTime => match value {
            FeatureValue::Category(text) | FeatureValue::Text(text) => push_text(out, text),
            FeatureValue::Number(n) => push_text(out, &n.to_string()),
            FeatureValue::Missing => out.push(0),
        },
    }
}

/// One input as written, before it is named or typed for an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Raw<'a> {
    /// A number, integer or boolean.
    Number(f64),
    /// The index of a category in its feature's list.
    Category(usize),
    /// Text: free text, a date, or a category outside the list.
    Text(&'a str),
    /// No value.
    Missing,
}

/// Reads the next input of a feature of `kind` with `categories` categories.
pub fn read_raw<'a>(kind: ColumnKind, categories: usize, bytes: &mut &'a [u8]) -> Option<Raw<'a>> {
    Some(match kind {
        ColumnKind::Number | ColumnKind::Integer | ColumnKind::Boolean => {
            let (head, rest) = bytes.split_first_chunk::<8>()?;
            *bytes = rest;
            let number = f64::from_le_bytes(*head);
            if number.is_nan() {
                Raw::Missing
            } else {
                Raw::Number(number)
            }
        }
        ColumnKind::Categorical => match read_varint(bytes)? {
            0 => Raw::Missing,
            v if v <= categories as u64 => Raw::Category(usize::try_from(v - 1).ok()?),
            _ => {
                let length = read_varint(bytes)?.checked_sub(1)?;
                Raw::Text(read_str(bytes, length)?)
            }
        },
        ColumnKind::String | ColumnKind::Date | ColumnKind::DateTime => match read_varint(bytes)? {
            0 => Raw::Missing,
            v => Raw::Text(read_str(bytes, v - 1)?),
        },
    })
}

/// Doubles, little-endian, back to back.
pub fn encode_doubles(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The doubles of [`encode_doubles`]; `None` when the length is not a multiple of 8.
pub fn decode_doubles(bytes: &[u8]) -> Option<Vec<f64>> {
    let (chunks, rest) = bytes.as_chunks::<8>();
    rest.is_empty()
        .then(|| chunks.iter().map(|c| f64::from_le_bytes(*c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_16_bytes_when_they_are_uuids_and_text_otherwise() {
        let uuid = "01a2297a-c2d3-7013-9ee3-00000000002a";
        let key = RequestKey::of(uuid);
        assert!(matches!(key, RequestKey::Uuid(_)));
        assert_eq!(key.to_bytes().len(), 16);
        assert_eq!(RequestKey::text_of(&key.to_bytes()).as_deref(), Some(uuid));
        // Not canonical text: kept exactly as sent.
        for text in [
            "01A2297A-C2D3-7013-9EE3-00000000002A",
            "01a2297ac2d370139ee300000000002a",
            "order-17",
            "fifteen-bytes!!",
            "",
        ] {
            let key = RequestKey::of(text);
            assert!(matches!(key, RequestKey::Text(_)), "{text}");
            let bytes = key.to_bytes();
            assert_ne!(bytes.len(), 16, "{text}");
            assert_eq!(RequestKey::text_of(&bytes).as_deref(), Some(text));
        }
    }
}
