//! Tensors of the Open Inference Protocol: the JSON inference request, decoded input tensors,
//! and the binary tensor data extension's split of a body (`Inference-Header-Content-Length`).
//! Inputs are read in `decode.rs`, outputs written in `outputs.rs`.

use serde::Deserialize;
use serde_json::{Map, Value};

/// A tensor element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// 1 byte, 0 or 1.
    Bool,
    /// Unsigned integers.
    Uint8,
    /// Unsigned integers.
    Uint16,
    /// Unsigned integers.
    Uint32,
    /// Unsigned integers.
    Uint64,
    /// Signed integers.
    Int8,
    /// Signed integers.
    Int16,
    /// Signed integers.
    Int32,
    /// Signed integers.
    Int64,
    /// IEEE 754 single precision.
    Fp32,
    /// IEEE 754 double precision.
    Fp64,
    /// Byte strings (text).
    Bytes,
}

impl DataType {
    /// The type named in a request; FP16 and BF16 are not supported.
    pub fn parse(name: &str) -> Option<DataType> {
        Some(match name {
            "BOOL" => DataType::Bool,
            "UINT8" => DataType::Uint8,
            "UINT16" => DataType::Uint16,
            "UINT32" => DataType::Uint32,
            "UINT64" => DataType::Uint64,
            "INT8" => DataType::Int8,
            "INT16" => DataType::Int16,
            "INT32" => DataType::Int32,
            "INT64" => DataType::Int64,
            "FP32" => DataType::Fp32,
            "FP64" => DataType::Fp64,
            "BYTES" => DataType::Bytes,
            _ => return None,
        })
    }

    /// The protocol's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// Bytes per element in binary data (`None` for BYTES, which vary).
    pub(super) fn width(self) -> Option<usize> {
        match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => Some(1),
            DataType::Uint16 | DataType::Int16 => Some(2),
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => Some(4),
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => Some(8),
            DataType::Bytes => None,
        }
    }
}

/// An inference request, as sent.
#[derive(Debug, Deserialize)]
pub struct InferRequest {
    /// Echoed in the response.
    #[serde(default)]
    pub id: Option<String>,
    /// Request parameters (`binary_data_output`).
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// The input tensors.
    pub inputs: Vec<RequestInput>,
    /// The outputs wanted; all when absent.
    #[serde(default)]
    pub outputs: Option<Vec<RequestOutput>>,
}

/// An input tensor, as sent.
#[derive(Debug, Deserialize)]
pub struct RequestInput {
    /// Name.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Element type.
    pub datatype: String,
    /// Tensor parameters (`binary_data_size`).
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// Elements, flat or nested; absent when they come as binary data.
    #[serde(default)]
    pub data: Option<Value>,
}

/// A requested output.
#[derive(Debug, Deserialize)]
pub struct RequestOutput {
    /// Name.
    pub name: String,
    /// `binary_data`, `classification`.
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
}

/// Decoded elements of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Elements {
    /// Integer and floating-point types.
    Numbers(Vec<f64>),
    /// BOOL.
    Bools(Vec<bool>),
    /// BYTES, as text.
    Texts(Vec<String>),
}

impl Elements {
    pub(in crate::serve) fn len(&self) -> usize {
        match self {
            Elements::Numbers(v) => v.len(),
            Elements::Bools(v) => v.len(),
            Elements::Texts(v) => v.len(),
        }
    }
}

/// A decoded input tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Name.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Element type.
    pub datatype: DataType,
    /// Elements, row-major.
    pub elements: Elements,
}

/// The header of the binary tensor data extension.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// Splits a body into its JSON part and its binary part.
pub fn split_body<'a>(
    body: &'a [u8],
    header_length: Option<&str>,
) -> Result<(&'a [u8], &'a [u8]), String> {
    let Some(text) = header_length else {
        return Ok((body, &[]));
    };
    let length: usize = text.trim().parse().map_err(|_| {
        format!("Inference-Header-Content-Length must be a byte count, got '{text}'")
    })?;
    if length == 0 || length > body.len() {
        return Err(format!(
            "inference header size should be in range (0, {}], got: {length}",
            body.len()
        ));
    }
    Ok(body.split_at(length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_length_splits_the_body() {
        let body = b"{\"x\":1}abcd";
        assert_eq!(
            split_body(body, Some("7")).unwrap(),
            (&body[..7], &body[7..])
        );
        assert_eq!(split_body(body, None).unwrap().1.len(), 0);
        assert!(split_body(body, Some("99")).is_err());
        assert!(split_body(body, Some("x")).is_err());
    }
}
