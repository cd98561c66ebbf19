//! The compact form of a logged prediction: what a request hands the log, and how a row is laid
//! out in the database.
//!
//! A row keeps numbers only: the inputs in schema order in a small binary form, the label as
//! its index, the probabilities as doubles and the request id as 16 bytes. Names, kinds,
//! categories and labels are the model version's, stored once per version as a [`LogSchema`]
//! (so rows stay readable after the version's folder is gone) and joined back when the log is
//! read.
//!
//! Inputs, in schema order, each by its feature's kind:
//! - number, integer, boolean: 8 bytes, the IEEE 754 double, little-endian; any NaN is missing
//!   (the validator never lets a NaN through as a value);
//! - categorical: a LEB128 varint `v`: 0 missing, `1..=n` the category `v - 1`, `n + 1` a value
//!   outside the list (never from the validator; kept so nothing is lost) followed by it as text;
//! - text, date, date-time: a varint `v`: 0 missing, otherwise `v - 1` bytes of UTF-8.

use crate::data::ColumnKind;
use crate::model::{FeatureSchema, FeatureValue, LoadedModel};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use std::sync::Arc;

/// One logged prediction (one row of a batch), as the request hands it over: numbers, the
/// request's key, and the loaded model version, which knows the names and labels (see
/// [`super::record`]). No text is built on the request path.
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
    /// The validated inputs in the compact form ([`super::record::encode_inputs`]).
    pub inputs: Vec<u8>,
    /// The predicted class's index in the model's labels.
    pub label: Option<u32>,
    /// Probabilities in the model's label order.
    pub probabilities: Vec<f64>,
    /// Time spent answering the request, in microseconds.
    pub latency_us: u32,
    /// The API key or user that asked, when auth is on.
    pub key_name: Option<Arc<str>>,
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

/// One feature as the log reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogFeature {
    /// Feature name.
    pub name: String,
    /// Its type, which says how its value is written.
    pub kind: ColumnKind,
    /// The categories of a categorical feature, in the order their indexes refer to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
}

/// What a model version's rows need to be read: its features and labels, stored once per
/// version in the `log_schemas` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogSchema {
    /// The features, in the order the inputs are written.
    pub features: Vec<LogFeature>,
    /// The class labels, in the order label indexes and probabilities refer to.
    pub labels: Vec<String>,
}

impl LogSchema {
    /// The schema of a model version.
    pub fn of(features: &[FeatureSchema], labels: &[String]) -> LogSchema {
        LogSchema {
            features: features
                .iter()
                .map(|f| LogFeature {
                    name: f.name.clone(),
                    kind: f.kind,
                    categories: (f.kind == ColumnKind::Categorical)
                        .then(|| f.categories.clone().unwrap_or_default()),
                })
                .collect(),
            labels: labels.to_vec(),
        }
    }

    /// The schema as stored, and its digest (which tells versions re-saved with another schema
    /// under the same name apart).
    pub fn stored(&self) -> (String, String) {
        let text = serde_json::to_string(self).unwrap_or_default();
        let digest = format!("{:016x}", fnv1a(text.as_bytes()));
        (text, digest)
    }

    /// Reads the inputs of a row back as a JSON object by feature name, typed as the API
    /// answers them. `None` when the bytes do not fit the schema.
    pub fn decode_inputs(&self, mut bytes: &[u8]) -> Option<Map<String, Value>> {
        let mut object = Map::with_capacity(self.features.len());
        for feature in &self.features {
            let value = decode_value(feature, &mut bytes)?;
            object.insert(feature.name.clone(), value);
        }
        bytes.is_empty().then_some(object)
    }

    /// The label of an index, as text.
    pub fn label(&self, index: i64) -> Option<&str> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.labels.get(i))
            .map(String::as_str)
    }

    /// Probabilities by label, as a JSON object.
    pub fn decode_probabilities(&self, bytes: &[u8]) -> Option<Map<String, Value>> {
        let values = decode_doubles(bytes)?;
        (values.len() == self.labels.len()).then(|| {
            self.labels
                .iter()
                .zip(values)
                .map(|(label, p)| (label.clone(), json_number(p)))
                .collect()
        })
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

fn json_number(value: f64) -> Value {
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

/// Writes validated inputs, in schema order, in the compact form (see the module's docs).
pub fn encode_inputs(features: &[FeatureSchema], values: &[FeatureValue]) -> Vec<u8> {
    let mut out = Vec::with_capacity(features.len() * 8);
    for (feature, value) in features.iter().zip(values) {
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
                        Some(index) => push_varint(&mut out, index as u64 + 1),
                        None => {
                            push_varint(&mut out, categories.len() as u64 + 1);
                            push_text(&mut out, text);
                        }
                    }
                }
            },
            ColumnKind::String | ColumnKind::Date | ColumnKind::DateTime => match value {
                FeatureValue::Category(text) | FeatureValue::Text(text) => {
                    push_text(&mut out, text)
                }
                FeatureValue::Number(n) => push_text(&mut out, &n.to_string()),
                FeatureValue::Missing => out.push(0),
            },
        }
    }
    out
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

fn decode_value(feature: &LogFeature, bytes: &mut &[u8]) -> Option<Value> {
    let categories = feature.categories.as_deref().unwrap_or_default();
    Some(match read_raw(feature.kind, categories.len(), bytes)? {
        Raw::Missing => Value::Null,
        Raw::Number(number) => match feature.kind {
            ColumnKind::Boolean => Value::Bool(number != 0.0),
            ColumnKind::Integer => Value::from(number as i64),
            _ => json_number(number),
        },
        Raw::Category(index) => Value::String(categories.get(index)?.clone()),
        Raw::Text(text) => Value::String(text.to_string()),
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
    use crate::model::ExampleValue;
    use serde_json::json;

    fn feature(name: &str, kind: ColumnKind, categories: Option<&[&str]>) -> FeatureSchema {
        FeatureSchema {
            name: name.into(),
            kind,
            nullable: true,
            example: ExampleValue::Number(0.0),
            min: None,
            max: None,
            mean: None,
            std: None,
            categories: categories.map(|c| c.iter().map(|s| s.to_string()).collect()),
            frequencies: None,
            baseline: None,
        }
    }

    #[test]
    fn inputs_read_back_as_the_api_answers_them() {
        let features = vec![
            feature("x", ColumnKind::Number, None),
            feature("n", ColumnKind::Integer, None),
            feature("b", ColumnKind::Boolean, None),
            feature("c", ColumnKind::Categorical, Some(&["north", "south"])),
            feature("t", ColumnKind::String, None),
            feature("d", ColumnKind::Date, None),
            feature("m", ColumnKind::Number, None),
            feature("mc", ColumnKind::Categorical, Some(&["a"])),
            feature("mt", ColumnKind::String, None),
        ];
        let values = vec![
            FeatureValue::Number(0.1 + 0.2),
            FeatureValue::Number(-7.0),
            FeatureValue::Number(1.0),
            FeatureValue::Category("south".into()),
            FeatureValue::Text("héllo".into()),
            FeatureValue::Text("2024-05-17".into()),
            FeatureValue::Missing,
            FeatureValue::Missing,
            FeatureValue::Missing,
        ];
        let schema = LogSchema::of(&features, &["a".into(), "b".into()]);
        let bytes = encode_inputs(&features, &values);
        // 4 numbers of 8 bytes (one missing), a category index, 1 + 6 and 1 + 10 bytes of text,
        // a missing category and missing text of a byte each.
        assert_eq!(bytes.len(), 32 + 1 + 7 + 11 + 1 + 1);
        let object = schema.decode_inputs(&bytes).unwrap();
        assert_eq!(
            Value::Object(object),
            json!({"x": 0.1 + 0.2, "n": -7, "b": true, "c": "south", "t": "héllo",
                   "d": "2024-05-17", "m": null, "mc": null, "mt": null})
        );
        // Truncated or overlong bytes are refused, not misread.
        assert!(schema.decode_inputs(&bytes[..bytes.len() - 1]).is_none());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(schema.decode_inputs(&longer).is_none());
    }

    #[test]
    fn a_category_outside_the_list_is_kept_as_text() {
        let features = vec![feature("c", ColumnKind::Categorical, Some(&["a", "b"]))];
        let schema = LogSchema::of(&features, &[]);
        let bytes = encode_inputs(&features, &[FeatureValue::Category("zz".into())]);
        assert_eq!(
            Value::Object(schema.decode_inputs(&bytes).unwrap()),
            json!({"c": "zz"})
        );
    }

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

    #[test]
    fn probabilities_and_digests() {
        let schema = LogSchema::of(&[], &["no".into(), "yes".into()]);
        let bytes = encode_doubles(&[0.25, 0.75]);
        assert_eq!(
            Value::Object(schema.decode_probabilities(&bytes).unwrap()),
            json!({"no": 0.25, "yes": 0.75})
        );
        assert!(schema.decode_probabilities(&bytes[..8]).is_none());
        let other = LogSchema::of(&[], &["no".into(), "maybe".into()]);
        assert_ne!(schema.stored().1, other.stored().1);
        assert_eq!(schema.stored(), schema.clone().stored());
    }
}
