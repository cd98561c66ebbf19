//! An inference response's output tensors, as JSON or as binary tensor data.

use serde::Serialize;
use serde_json::{Map, Value};

/// An output tensor of a response.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseOutput {
    /// Name.
    pub name: String,
    /// Element type.
    pub datatype: &'static str,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// `binary_data_size` when the data follows the JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// Elements, flat, when sent as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// Output elements before encoding.
#[derive(Debug, Clone)]
pub enum OutputData {
    /// INT64.
    Int64(Vec<i64>),
    /// FP64.
    Fp64(Vec<f64>),
    /// BYTES.
    Texts(Vec<String>),
}

impl OutputData {
    /// The protocol type.
    pub fn datatype(&self) -> &'static str {
        match self {
            OutputData::Int64(_) => "INT64",
            OutputData::Fp64(_) => "FP64",
            OutputData::Texts(_) => "BYTES",
        }
    }

    /// The elements as a flat JSON array.
    pub fn to_json(&self) -> Value {
        match self {
            OutputData::Int64(v) => Value::from(v.clone()),
            OutputData::Fp64(v) => Value::Array(
                v.iter()
                    .map(|x| serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number))
                    .collect(),
            ),
            OutputData::Texts(v) => Value::from(v.clone()),
        }
    }

    /// The elements as binary data, appended to `out`.
    pub fn write_binary(&self, out: &mut Vec<u8>) {
        match self {
            OutputData::Int64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            OutputData::Fp64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            OutputData::Texts(v) => v.iter().for_each(|text| {
                let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&length.to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_encode_little_endian_with_length_prefixed_text() {
        let mut out = Vec::new();
        OutputData::Texts(vec!["ab".into()]).write_binary(&mut out);
        OutputData::Int64(vec![1]).write_binary(&mut out);
        assert_eq!(out, [2, 0, 0, 0, b'a', b'b', 1, 0, 0, 0, 0, 0, 0, 0]);
    }
}
