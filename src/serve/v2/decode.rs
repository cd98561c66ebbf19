//! Reading an inference request's input tensors: shapes, and elements from JSON `data` (flat,
//! or nested exactly as the shape says) or from binary tensor data (little-endian, row-major;
//! a BYTES element is a 4-byte little-endian length followed by its bytes).

use super::tensor::{DataType, Elements, InferRequest, RequestInput, Tensor};
use crate::model::validate::{non_finite_literal, truncate};
use serde_json::Value;

fn shape_of(input: &RequestInput) -> Result<Vec<usize>, String> {
    input
        .shape
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| format!("input '{}': dimension {d} is too large", input.name))
        })
        .collect()
}

pub(in crate::serve) fn element_count(name: &str, shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("input '{name}': the shape {shape:?} is too large"))
}

fn binary_size(input: &RequestInput) -> Result<Option<usize>, String> {
    match input
        .parameters
        .as_ref()
        .and_then(|p| p.get("binary_data_size"))
    {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "input '{}': binary_data_size must be a byte count, got {value}",
                    input.name
                )
            }),
    }
}

fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        other => out.push(other),
    }
}

/// JSON `data` is either flat (the elements in row-major order) or nested exactly as `shape`
/// says at every level (the protocol's "row-major, as nested arrays"): a nested tensor whose
/// rows have the wrong length is refused, naming the row, never re-cut into the shape.
fn check_nesting(name: &str, data: &Value, shape: &[usize]) -> Result<(), String> {
    let Value::Array(items) = data else {
        return Err(format!("input '{name}': data must be an array"));
    };
    if items.iter().all(|item| !item.is_array()) {
        return Ok(());
    }
    check_level(name, data, shape, 0, &mut String::from("data"))
}

fn check_level(
    name: &str,
    value: &Value,
    shape: &[usize],
    depth: usize,
    path: &mut String,
) -> Result<(), String> {
    match (value, shape.get(depth)) {
        (Value::Array(items), Some(&want)) => {
            if items.len() != want {
                return Err(format!(
                    "input '{name}': {path} has {} values, the shape {shape:?} asks for {want}",
                    items.len()
                ));
            }
            for (index, item) in items.iter().enumerate() {
                let length = path.len();
                path.push_str(&format!("[{index}]"));
                check_level(name, item, shape, depth + 1, path)?;
                path.truncate(length);
            }
            Ok(())
        }
        (Value::Array(_), None) => Err(format!(
            "input '{name}': {path} is nested deeper than the shape {shape:?}"
        )),
        (_, Some(_)) => Err(format!(
            "input '{name}': {path} is a single value where the shape {shape:?} asks for an array"
        )),
        (_, None) => Ok(()),
    }
}

fn json_elements(
    input: &RequestInput,
    datatype: DataType,
    data: &Value,
) -> Result<Elements, String> {
    let mut flat = Vec::new();
    flatten(data, &mut flat);
    let wrong = |value: &Value| {
        let shown = match value {
            Value::String(text) => match non_finite_literal(text) {
                Some((literal, _)) => literal.to_string(),
                None => format!("\"{}\"", truncate(text)),
            },
            other => truncate(&other.to_string()),
        };
        format!(
            "input '{}': element {shown} is not of datatype {}",
            input.name,
            datatype.name()
        )
    };
    Ok(match datatype {
        DataType::Bool => Elements::Bools(
            flat.iter()
                .map(|v| v.as_bool().ok_or_else(|| wrong(v)))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Bytes => Elements::Texts(
            flat.iter()
                .map(|v| match v.as_str() {
                    Some(text) if non_finite_literal(text).is_none() => Ok(text.to_string()),
                    _ => Err(wrong(v)),
                })
                .collect::<Result<_, _>>()?,
        ),
        DataType::Fp64 => Elements::Numbers(
            flat.iter()
                .map(|v| float_of(v).ok_or_else(|| wrong(v)))
                .collect::<Result<_, _>>()?,
        ),
        // A JSON number past FP32's largest finite value is not an FP32: refused, as integers
        // out of their type's range are, rather than read as a number the type cannot hold.
        DataType::Fp32 => Elements::Numbers(
            flat.iter()
                .map(|v| {
                    let n = float_of(v).ok_or_else(|| wrong(v))?;
                    if n.is_finite() && n.abs() > f64::from(f32::MAX) {
                        return Err(format!(
                            "input '{}': {v} is out of range for FP32 (largest {:e})",
                            input.name,
                            f32::MAX
                        ));
                    }
                    Ok(n)
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            let (low, high) = integer_range(datatype);
            Elements::Numbers(
                flat.iter()
                    .map(|v| {
                        // `null`: a missing value, as in an FP tensor (a nullable feature takes
                        // it; the validator refuses it for any other).
                        if v.is_null() {
                            return Ok(f64::NAN);
                        }
                        let n = v
                            .as_i64()
                            .map(i128::from)
                            .or_else(|| v.as_u64().map(i128::from))
                            .ok_or_else(|| wrong(v))?;
                        if n < low || n > high {
                            return Err(format!(
                                "input '{}': {n} is out of range for {}",
                                input.name,
                                datatype.name()
                            ));
                        }
                        exact_integer(&input.name, n)
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

/// An FP element: a JSON number; `NaN`, `Infinity`, `-Infinity` or a number too large for an
/// f64 (written bare by Python's json module, marked by the lenient reader); or `null`, a
/// missing value, read as NaN (which a nullable feature takes as missing, as it takes null in
/// the native API).
fn float_of(value: &Value) -> Option<f64> {
    match value {
        Value::Null => Some(f64::NAN),
        Value::String(word) => non_finite_literal(word).map(|(_, n)| n),
        other => other.as_f64(),
    }
}

/// The values an integer type holds.
pub(in crate::serve) fn integer_range(datatype: DataType) -> (i128, i128) {
    match datatype {
        DataType::Int8 => (i128::from(i8::MIN), i128::from(i8::MAX)),
        DataType::Int16 => (i128::from(i16::MIN), i128::from(i16::MAX)),
        DataType::Int32 => (i128::from(i32::MIN), i128::from(i32::MAX)),
        DataType::Uint8 => (0, i128::from(u8::MAX)),
        DataType::Uint16 => (0, i128::from(u16::MAX)),
        DataType::Uint32 => (0, i128::from(u32::MAX)),
        DataType::Uint64 => (0, i128::from(u64::MAX)),
        _ => (i128::from(i64::MIN), i128::from(i64::MAX)),
    }
}

/// The `count` elements of input `name` from binary data: little-endian, row-major, a BYTES
/// element a 4-byte little-endian length and its UTF-8 bytes (the binary tensor data extension's
/// layout, and gRPC's `raw_input_contents`).
pub(in crate::serve) fn binary_elements(
    name: &str,
    datatype: DataType,
    bytes: &[u8],
    count: usize,
) -> Result<Elements, String> {
    if let Some(width) = datatype.width() {
        let expected = count
            .checked_mul(width)
            .ok_or_else(|| format!("input '{name}': the tensor is too large"))?;
        if bytes.len() != expected {
            return Err(format!(
                "input byte size mismatch for input '{name}': expected {expected}, got {}",
                bytes.len()
            ));
        }
    }
    let chunks = |width: usize| bytes.chunks_exact(width);
    Ok(match datatype {
        DataType::Bool => Elements::Bools(
            bytes
                .iter()
                .map(|&b| match b {
                    0 | 1 => Ok(b == 1),
                    other => Err(format!(
                        "input '{name}': BOOL element {other} is not 0 or 1"
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        DataType::Uint8 => Elements::Numbers(bytes.iter().map(|&b| f64::from(b)).collect()),
        DataType::Int8 => Elements::Numbers(bytes.iter().map(|&b| f64::from(b as i8)).collect()),
        DataType::Uint16 => Elements::Numbers(
            chunks(2)
                .map(|c| f64::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        DataType::Int16 => Elements::Numbers(
            chunks(2)
                .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        DataType::Uint32 => Elements::Numbers(
            chunks(4)
                .map(|c| f64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        DataType::Int32 => Elements::Numbers(
            chunks(4)
                .map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        DataType::Fp32 => Elements::Numbers(
            chunks(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        DataType::Uint64 => Elements::Numbers(
            chunks(8)
                .map(|c| exact_integer(name, i128::from(u64::from_le_bytes(eight(c)))))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Int64 => Elements::Numbers(
            chunks(8)
                .map(|c| exact_integer(name, i128::from(i64::from_le_bytes(eight(c)))))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Fp64 => {
            Elements::Numbers(chunks(8).map(|c| f64::from_le_bytes(eight(c))).collect())
        }
        DataType::Bytes => Elements::Texts(length_prefixed(name, bytes, count)?),
    })
}

/// An integer element as the f64 a model takes, refused past 2^53 (where an f64 no longer holds
/// every integer) with the value as sent, before any rounding.
pub(in crate::serve) fn exact_integer(name: &str, n: i128) -> Result<f64, String> {
    if n.unsigned_abs() > 1 << 53 {
        return Err(format!(
            "input '{name}': {n} is beyond the integers a model can take exactly (2^53)"
        ));
    }
    Ok(n as f64)
}

fn eight(chunk: &[u8]) -> [u8; 8] {
    let mut array = [0u8; 8];
    array.copy_from_slice(chunk);
    array
}

/// BYTES elements, each a 4-byte little-endian length and its UTF-8 bytes; more than `count`
/// is refused as soon as it is seen, before the rest is decoded.
fn length_prefixed(name: &str, mut bytes: &[u8], count: usize) -> Result<Vec<String>, String> {
    let mut texts = Vec::new();
    while !bytes.is_empty() {
        if texts.len() == count {
            return Err(format!(
                "input '{name}': the shape holds {count} elements, the data has more"
            ));
        }
        if bytes.len() < 4 {
            return Err(format!("input '{name}': a BYTES element is cut short"));
        }
        let length = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let rest = &bytes[4..];
        if rest.len() < length {
            return Err(format!("input '{name}': a BYTES element is cut short"));
        }
        let text = std::str::from_utf8(&rest[..length])
            .map_err(|_| format!("input '{name}': a BYTES element is not UTF-8 text"))?;
        texts.push(text.to_string());
        bytes = &rest[length..];
    }
    Ok(texts)
}

/// Decodes every input, taking binary data in input order from `binary`.
pub fn decode_inputs(request: &InferRequest, mut binary: &[u8]) -> Result<Vec<Tensor>, String> {
    let mut tensors = Vec::with_capacity(request.inputs.len());
    for input in &request.inputs {
        let datatype = DataType::parse(&input.datatype).ok_or_else(|| {
            format!(
                "invalid datatype '{}' for input '{}': use BOOL, INT8 to INT64, UINT8 to UINT64, FP32, FP64 or BYTES",
                input.datatype, input.name
            )
        })?;
        let shape = shape_of(input)?;
        let count = element_count(&input.name, &shape)?;
        let elements = match (&input.data, binary_size(input)?) {
            (Some(data), None) => {
                check_nesting(&input.name, data, &shape)?;
                json_elements(input, datatype, data)?
            }
            (None, Some(size)) => {
                if size > binary.len() {
                    return Err(format!(
                        "unexpected size for input '{}', expecting {size} additional bytes; send the binary data after the JSON and its length in Inference-Header-Content-Length",
                        input.name
                    ));
                }
                let (bytes, rest) = binary.split_at(size);
                binary = rest;
                binary_elements(&input.name, datatype, bytes, count)?
            }
            (Some(_), Some(_)) | (None, None) => {
                return Err(format!(
                    "input '{}' must set exactly one of 'data' and 'binary_data_size' in 'parameters'",
                    input.name
                ));
            }
        };
        if elements.len() != count {
            return Err(format!(
                "input '{}': shape {:?} holds {count} elements, the data has {}",
                input.name,
                shape,
                elements.len()
            ));
        }
        tensors.push(Tensor {
            name: input.name.clone(),
            shape,
            datatype,
            elements,
        });
    }
    if !binary.is_empty() {
        return Err(format!(
            "unexpected additional input data: {} bytes after the last binary input",
            binary.len()
        ));
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: Value) -> InferRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn json_data_may_be_flat_or_nested_and_must_fill_the_shape() {
        let nested = request(
            json!({"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2.5], [3, 4]]}]}),
        );
        let tensors = decode_inputs(&nested, &[]).unwrap();
        assert_eq!(
            tensors[0].elements,
            Elements::Numbers(vec![1.0, 2.5, 3.0, 4.0])
        );
        let short = request(
            json!({"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}),
        );
        assert_eq!(
            decode_inputs(&short, &[]).unwrap_err(),
            "input 'input': shape [2, 2] holds 4 elements, the data has 3"
        );
        let typed = request(
            json!({"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1.5]}]}),
        );
        assert!(
            decode_inputs(&typed, &[])
                .unwrap_err()
                .contains("not of datatype INT64")
        );
        let half = request(
            json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP16", "data": [1]}]}),
        );
        assert!(
            decode_inputs(&half, &[])
                .unwrap_err()
                .starts_with("invalid datatype 'FP16'")
        );
    }

    #[test]
    fn nested_data_must_have_the_declared_shape_at_every_level() {
        let ragged = request(
            json!({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": [[1, 2, 3, 4, 5], [6, 7, 8]]}]}),
        );
        assert_eq!(
            decode_inputs(&ragged, &[]).unwrap_err(),
            "input 'input': data[0] has 5 values, the shape [2, 4] asks for 4"
        );
        let short_row = request(
            json!({"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3]]}]}),
        );
        assert!(
            decode_inputs(&short_row, &[])
                .unwrap_err()
                .starts_with("input 'input': data[1] has 1 values")
        );
        let mixed = request(
            json!({"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], 3, 4]}]}),
        );
        assert!(decode_inputs(&mixed, &[]).is_err());
        let flat = request(
            json!({"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}]}),
        );
        assert!(decode_inputs(&flat, &[]).is_ok());
        for big in [json!(1e300), json!(3.5e38), json!(-3.5e38)] {
            let out_of_range = request(
                json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [big]}]}),
            );
            let error = decode_inputs(&out_of_range, &[]).unwrap_err();
            assert!(error.contains("is out of range for FP32"), "{error}");
        }
        let largest = request(
            json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [3.4028234e38]}]}),
        );
        assert!(decode_inputs(&largest, &[]).is_ok());
    }

    #[test]
    fn binary_data_follows_the_json_in_input_order() {
        let json = json!({"inputs": [
            {"name": "a", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}},
            {"name": "b", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 11}},
            {"name": "c", "shape": [1], "datatype": "INT64", "data": [7]},
        ]});
        let mut binary = Vec::new();
        binary.extend_from_slice(&1.5f32.to_le_bytes());
        binary.extend_from_slice(&(-2.0f32).to_le_bytes());
        binary.extend_from_slice(&[2, 0, 0, 0, b'a', b'b', 1, 0, 0, 0, b'c']);
        let tensors = decode_inputs(&request(json.clone()), &binary).unwrap();
        assert_eq!(tensors[0].elements, Elements::Numbers(vec![1.5, -2.0]));
        assert_eq!(
            tensors[1].elements,
            Elements::Texts(vec!["ab".into(), "c".into()])
        );
        assert_eq!(tensors[2].elements, Elements::Numbers(vec![7.0]));
        let mut extra = binary.clone();
        extra.push(0);
        assert!(
            decode_inputs(&request(json.clone()), &extra)
                .unwrap_err()
                .contains("unexpected additional input data")
        );
        assert!(decode_inputs(&request(json), &binary[..10]).is_err());
        let mismatch = json!({"inputs": [{"name": "a", "shape": [3], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]});
        assert_eq!(
            decode_inputs(&request(mismatch), &binary[..8]).unwrap_err(),
            "input byte size mismatch for input 'a': expected 12, got 8"
        );
    }
}
