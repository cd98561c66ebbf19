//! The schema of a model version's logged rows, stored once per version in `log_schemas`,
//! and the reading of rows back by it: inputs by feature name, typed as the API answers them,
//! labels, probabilities.

use super::policy::{InputPolicy, Kept};
use super::record::{Raw, decode_doubles, fnv1a, json_number, read_raw};
use crate::data::ColumnKind;
use crate::model::FeatureSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    /// Whether the log keeps its value, nothing, or a hash of it.
    #[serde(default, skip_serializing_if = "Kept::is_value")]
    pub kept: Kept,
}

impl LogFeature {
    /// How its value is written: its kind, text for a hash, nothing when excluded.
    pub fn kind_as_written(&self) -> Option<ColumnKind> {
        match self.kept {
            Kept::Value => Some(self.kind),
            Kept::Hashed => Some(ColumnKind::String),
            Kept::Excluded => None,
        }
    }
}

/// What a model version's rows need to be read: its features and labels, stored once per
/// version in the `log_schemas` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogSchema {
    /// The features, in the order the inputs are written.
    pub features: Vec<LogFeature>,
    /// The class labels, in the order label indexes and probabilities refer to.
    pub labels: Vec<String>,
}

impl LogSchema {
    /// The schema of a model version's rows as `policy` writes them.
    pub fn of(features: &[FeatureSchema], labels: &[String], policy: &InputPolicy) -> LogSchema {
        LogSchema {
            features: features
                .iter()
                .map(|f| LogFeature {
                    name: f.name.clone(),
                    kind: f.kind,
                    categories: (f.kind == ColumnKind::Categorical)
                        .then(|| f.categories.clone().unwrap_or_default()),
                    kept: policy.kept(&f.name),
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
            let value = match feature.kind_as_written() {
                None => continue,
                Some(kind) => decode_value(feature, kind, &mut bytes)?,
            };
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

fn decode_value(feature: &LogFeature, kind: ColumnKind, bytes: &mut &[u8]) -> Option<Value> {
    let categories = feature.categories.as_deref().unwrap_or_default();
    Some(match read_raw(kind, categories.len(), bytes)? {
        Raw::Missing => Value::Null,
        Raw::Number(number) => match kind {
            ColumnKind::Boolean => Value::Bool(number != 0.0),
            ColumnKind::Integer => Value::from(number as i64),
            _ => json_number(number),
        },
        Raw::Category(index) => Value::String(categories.get(index)?.clone()),
        Raw::Text(text) => Value::String(text.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExampleValue, FeatureValue};
    use crate::store::policy::InputPolicy;
    use crate::store::record::{encode_doubles, encode_inputs};
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
        let schema = LogSchema::of(
            &features,
            &["a".into(), "b".into()],
            &InputPolicy::default(),
        );
        let bytes = encode_inputs(&features, &values, &InputPolicy::default());
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
        let schema = LogSchema::of(&features, &[], &InputPolicy::default());
        let bytes = encode_inputs(
            &features,
            &[FeatureValue::Category("zz".into())],
            &InputPolicy::default(),
        );
        assert_eq!(
            Value::Object(schema.decode_inputs(&bytes).unwrap()),
            json!({"c": "zz"})
        );
    }

    #[test]
    fn probabilities_and_digests() {
        let schema = LogSchema::of(&[], &["no".into(), "yes".into()], &InputPolicy::default());
        let bytes = encode_doubles(&[0.25, 0.75]);
        assert_eq!(
            Value::Object(schema.decode_probabilities(&bytes).unwrap()),
            json!({"no": 0.25, "yes": 0.75})
        );
        assert!(schema.decode_probabilities(&bytes[..8]).is_none());
        let other = LogSchema::of(&[], &["no".into(), "maybe".into()], &InputPolicy::default());
        assert_ne!(schema.stored().1, other.stored().1);
        assert_eq!(schema.stored(), schema.clone().stored());
    }

    #[test]
    fn excluded_features_are_left_out_and_hashed_ones_read_back_as_their_hash() {
        let features = vec![
            feature("age", ColumnKind::Integer, None),
            feature("name", ColumnKind::String, None),
            feature("ssn", ColumnKind::String, None),
            feature("plan", ColumnKind::Categorical, Some(&["a", "b"])),
        ];
        let policy = InputPolicy::new(
            &["name".into()],
            &["ssn".into(), "plan".into()],
            "0123456789abcdef",
        );
        let values = vec![
            FeatureValue::Number(41.0),
            FeatureValue::Text("Ada Lovelace".into()),
            FeatureValue::Text("123-45-6789".into()),
            FeatureValue::Missing,
        ];
        let schema = LogSchema::of(&features, &[], &policy);
        let bytes = encode_inputs(&features, &values, &policy);
        // The name is nowhere in what is written.
        assert!(!bytes.windows(3).any(|w| w == b"Ada"));
        assert_eq!(
            Value::Object(schema.decode_inputs(&bytes).unwrap()),
            json!({"age": 41, "ssn": policy.hash("ssn", "123-45-6789"), "plan": null})
        );
        // The policy is part of the version's stored schema, so rows read back as written.
        let plain = LogSchema::of(&features, &[], &InputPolicy::default());
        assert_ne!(schema.stored().1, plain.stored().1);
    }
}
