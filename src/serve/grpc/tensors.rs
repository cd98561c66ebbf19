//! gRPC's tensors to and from the protocol's decoded form: a `ModelInferRequest`'s inputs
//! (typed `contents` or `raw_input_contents`, never both) into [`Tensor`]s and its outputs and
//! parameters into an [`InferRequest`], so both transports share one inference
//! ([`crate::serve::v2::answer`]); the answer's outputs always as `raw_output_contents`, which
//! every client reads (tritonclient reads no typed FP64 output).

use super::pb::infer_parameter::ParameterChoice;
use super::pb::model_infer_request::InferInputTensor;
use super::pb::model_infer_response::InferOutputTensor;
use super::pb::{InferParameter, InferTensorContents, ModelInferRequest, ModelInferResponse};
use crate::model::validate::non_finite_literal;
use crate::serve::v2::answer::AnsweredOutput;
use crate::serve::v2::decode::{binary_elements, element_count, exact_integer, integer_range};
use crate::serve::v2::tensor::{DataType, Elements, InferRequest, RequestOutput, Tensor};
use prost::bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The request's outputs and parameters in the protocol's decoded form (its inputs are
/// decoded by [`input_tensors`]).
pub fn request_header(request: &ModelInferRequest) -> Result<InferRequest, String> {
    let outputs = (!request.outputs.is_empty())
        .then(|| {
            request
                .outputs
                .iter()
                .map(|output| {
                    Ok(RequestOutput {
                        name: output.name.clone(),
                        parameters: parameters(&output.parameters)?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .transpose()?;
    Ok(InferRequest {
        id: (!request.id.is_empty()).then(|| request.id.clone()),
        parameters: parameters(&request.parameters)?,
        inputs: Vec::new(),
        outputs,
    })
}

/// Parameters as the JSON values REST's requests carry; a double that is not finite has no
/// JSON form and is refused.
fn parameters(
    given: &HashMap<String, InferParameter>,
) -> Result<Option<Map<String, Value>>, String> {
    if given.is_empty() {
        return Ok(None);
    }
    let mut map = Map::with_capacity(given.len());
    for (name, parameter) in given {
        let value = match &parameter.parameter_choice {
            None => Value::Null,
            Some(ParameterChoice::BoolParam(b)) => Value::Bool(*b),
            Some(ParameterChoice::Int64Param(n)) => Value::from(*n),
            Some(ParameterChoice::Uint64Param(n)) => Value::from(*n),
            Some(ParameterChoice::StringParam(text)) => Value::from(text.as_str()),
            Some(ParameterChoice::DoubleParam(x)) => serde_json::Number::from_f64(*x)
                .map(Value::Number)
                .ok_or_else(|| format!("parameter {name} must be a finite number, got {x}"))?,
        };
        map.insert(name.clone(), value);
    }
    Ok(Some(map))
}

/// The input tensors, from `raw_input_contents` (one entry per input, in input order) or from
/// each input's typed `contents`.
pub fn input_tensors(request: &ModelInferRequest) -> Result<Vec<Tensor>, String> {
    let raw = &request.raw_input_contents;
    if !raw.is_empty() {
        if let Some(typed) = request.inputs.iter().find(|i| i.contents.is_some()) {
            return Err(format!(
                "input '{}' has typed contents while the request uses raw_input_contents: send \
                 every input one way",
                typed.name
            ));
        }
        if raw.len() != request.inputs.len() {
            return Err(format!(
                "raw_input_contents has {} entries for {} inputs: send one per input, in input \
                 order",
                raw.len(),
                request.inputs.len()
            ));
        }
    }
    request
        .inputs
        .iter()
        .enumerate()
        .map(|(index, input)| input_tensor(input, raw.get(index)))
        .collect()
}

fn input_tensor(input: &InferInputTensor, raw: Option<&Bytes>) -> Result<Tensor, String> {
    let name = input.name.as_str();
    let datatype = DataType::parse(&input.datatype).ok_or_else(|| {
        format!(
            "invalid datatype '{}' for input '{name}': use BOOL, INT8 to INT64, UINT8 to UINT64, \
             FP32, FP64 or BYTES",
            input.datatype
        )
    })?;
    let shape = input
        .shape
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| format!("input '{name}': dimension {d} is not a size (negative)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let count = element_count(name, &shape)?;
    let elements = match (raw, &input.contents) {
        (Some(bytes), _) => binary_elements(name, datatype, bytes, count)?,
        (None, Some(contents)) => {
            let given = typed_count(name, datatype, contents)?;
            if given != count {
                // Before converting anything: the message's size, not the shape, bounds work.
                return Err(format!(
                    "input '{name}': shape {shape:?} holds {count} elements, the contents have {given}"
                ));
            }
            typed_elements(name, datatype, contents)?
        }
        (None, None) => {
            return Err(format!(
                "input '{name}' has no data: set its contents or send raw_input_contents"
            ));
        }
    };
    if elements.len() != count {
        return Err(format!(
            "input '{name}': shape {shape:?} holds {count} elements, the contents have {}",
            elements.len()
        ));
    }
    Ok(Tensor {
        name: name.to_string(),
        shape,
        datatype,
        elements,
    })
}

/// The field of `contents` a datatype is carried in, as the protocol names it.
fn contents_field(datatype: DataType) -> &'static str {
    match datatype {
        DataType::Bool => "bool_contents",
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "int_contents",
        DataType::Int64 => "int64_contents",
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 => "uint_contents",
        DataType::Uint64 => "uint64_contents",
        DataType::Fp32 => "fp32_contents",
        DataType::Fp64 => "fp64_contents",
        DataType::Bytes => "bytes_contents",
    }
}

/// Each field of `contents` and how many elements it holds.
fn field_lengths(contents: &InferTensorContents) -> [(&'static str, usize); 8] {
    [
        ("bool_contents", contents.bool_contents.len()),
        ("int_contents", contents.int_contents.len()),
        ("int64_contents", contents.int64_contents.len()),
        ("uint_contents", contents.uint_contents.len()),
        ("uint64_contents", contents.uint64_contents.len()),
        ("fp32_contents", contents.fp32_contents.len()),
        ("fp64_contents", contents.fp64_contents.len()),
        ("bytes_contents", contents.bytes_contents.len()),
    ]
}

/// How many elements the datatype's field holds, refusing elements in any other field.
fn typed_count(
    name: &str,
    datatype: DataType,
    contents: &InferTensorContents,
) -> Result<usize, String> {
    let field = contents_field(datatype);
    let lengths = field_lengths(contents);
    if let Some((other, _)) = lengths.iter().find(|(f, n)| *f != field && *n > 0) {
        return Err(format!(
            "input '{name}' of datatype {} takes its elements in {field}, not {other}",
            datatype.name()
        ));
    }
    Ok(lengths
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(0, |(_, n)| *n))
}

fn typed_elements(
    name: &str,
    datatype: DataType,
    contents: &InferTensorContents,
) -> Result<Elements, String> {
    let in_range = |n: i128| {
        let (low, high) = integer_range(datatype);
        if n < low || n > high {
            return Err(format!(
                "input '{name}': {n} is out of range for {}",
                datatype.name()
            ));
        }
        exact_integer(name, n)
    };
    Ok(match datatype {
        DataType::Bool => Elements::Bools(contents.bool_contents.clone()),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Elements::Numbers(
            contents
                .int_contents
                .iter()
                .map(|&n| in_range(i128::from(n)))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Int64 => Elements::Numbers(
            contents
                .int64_contents
                .iter()
                .map(|&n| in_range(i128::from(n)))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Uint8 | DataType::Uint16 | DataType::Uint32 => Elements::Numbers(
            contents
                .uint_contents
                .iter()
                .map(|&n| in_range(i128::from(n)))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Uint64 => Elements::Numbers(
            contents
                .uint64_contents
                .iter()
                .map(|&n| in_range(i128::from(n)))
                .collect::<Result<_, _>>()?,
        ),
        DataType::Fp32 => Elements::Numbers(
            contents
                .fp32_contents
                .iter()
                .map(|&x| f64::from(x))
                .collect(),
        ),
        DataType::Fp64 => Elements::Numbers(contents.fp64_contents.clone()),
        DataType::Bytes => Elements::Texts(
            contents
                .bytes_contents
                .iter()
                .map(|bytes| text_element(name, bytes))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// A BYTES element as text: UTF-8, and not a spelling of a non-finite number (which REST
/// refuses in a BYTES tensor too, so a text feature never takes "NaN" for a value).
fn text_element(name: &str, bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("input '{name}': a BYTES element is not UTF-8 text"))?;
    if let Some((literal, _)) = non_finite_literal(text) {
        return Err(format!(
            "input '{name}': element {literal} is not of datatype BYTES"
        ));
    }
    Ok(text.to_string())
}

/// The answer: every output's metadata in `outputs` and its elements in
/// `raw_output_contents`, in the same order.
pub fn response(
    model_name: &str,
    model_version: &str,
    id: Option<&str>,
    answered: Vec<AnsweredOutput<'_>>,
) -> ModelInferResponse {
    let mut outputs = Vec::with_capacity(answered.len());
    let mut raw = Vec::with_capacity(answered.len());
    for output in answered {
        let mut bytes = Vec::new();
        output.data.write_binary(&mut bytes);
        raw.push(Bytes::from(bytes));
        outputs.push(InferOutputTensor {
            name: output.name,
            datatype: output.data.datatype().to_string(),
            shape: output
                .shape
                .iter()
                .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
                .collect(),
            parameters: HashMap::new(),
            contents: None,
        });
    }
    ModelInferResponse {
        model_name: model_name.to_string(),
        model_version: model_version.to_string(),
        id: id.unwrap_or_default().to_string(),
        parameters: HashMap::new(),
        outputs,
        raw_output_contents: raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, datatype: &str, shape: Vec<i64>) -> InferInputTensor {
        InferInputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape,
            parameters: HashMap::new(),
            contents: None,
        }
    }

    #[test]
    fn raw_and_typed_contents_decode_to_the_same_tensor() {
        let mut typed = input("input", "FP32", vec![1, 2]);
        typed.contents = Some(InferTensorContents {
            fp32_contents: vec![1.5, -2.0],
            ..Default::default()
        });
        let typed_request = ModelInferRequest {
            inputs: vec![typed],
            ..Default::default()
        };
        let mut bytes = 1.5f32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&(-2.0f32).to_le_bytes());
        let raw_request = ModelInferRequest {
            inputs: vec![input("input", "FP32", vec![1, 2])],
            raw_input_contents: vec![Bytes::from(bytes)],
            ..Default::default()
        };
        let typed = input_tensors(&typed_request).unwrap();
        assert_eq!(typed, input_tensors(&raw_request).unwrap());
        assert_eq!(typed[0].elements, Elements::Numbers(vec![1.5, -2.0]));
        assert_eq!(typed[0].shape, [1, 2]);
    }

    #[test]
    fn contents_in_the_wrong_field_or_mixed_with_raw_are_refused() {
        let mut wrong = input("x", "FP64", vec![1]);
        wrong.contents = Some(InferTensorContents {
            fp32_contents: vec![1.0],
            ..Default::default()
        });
        let request = ModelInferRequest {
            inputs: vec![wrong.clone()],
            ..Default::default()
        };
        assert_eq!(
            input_tensors(&request).unwrap_err(),
            "input 'x' of datatype FP64 takes its elements in fp64_contents, not fp32_contents"
        );
        let mixed = ModelInferRequest {
            inputs: vec![wrong],
            raw_input_contents: vec![Bytes::from_static(&[0; 8])],
            ..Default::default()
        };
        assert!(
            input_tensors(&mixed)
                .unwrap_err()
                .contains("typed contents")
        );
        let short = ModelInferRequest {
            inputs: vec![input("x", "FP64", vec![2])],
            raw_input_contents: vec![Bytes::from_static(&[0; 8])],
            ..Default::default()
        };
        assert_eq!(
            input_tensors(&short).unwrap_err(),
            "input byte size mismatch for input 'x': expected 16, got 8"
        );
        let negative = ModelInferRequest {
            inputs: vec![input("x", "FP64", vec![-1])],
            raw_input_contents: vec![Bytes::new()],
            ..Default::default()
        };
        assert!(input_tensors(&negative).unwrap_err().contains("negative"));
    }

    #[test]
    fn typed_integers_are_checked_against_their_datatype() {
        let mut small = input("x", "INT8", vec![1]);
        small.contents = Some(InferTensorContents {
            int_contents: vec![300],
            ..Default::default()
        });
        let request = ModelInferRequest {
            inputs: vec![small],
            ..Default::default()
        };
        assert_eq!(
            input_tensors(&request).unwrap_err(),
            "input 'x': 300 is out of range for INT8"
        );
    }

    #[test]
    fn parameters_become_the_json_values_rest_carries() {
        let mut given = HashMap::new();
        given.insert(
            "explain".to_string(),
            InferParameter {
                parameter_choice: Some(ParameterChoice::BoolParam(true)),
            },
        );
        given.insert(
            "k".to_string(),
            InferParameter {
                parameter_choice: Some(ParameterChoice::Int64Param(3)),
            },
        );
        let map = parameters(&given).unwrap().unwrap();
        assert_eq!(map["explain"], Value::Bool(true));
        assert_eq!(map["k"], Value::from(3));
        given.insert(
            "bad".to_string(),
            InferParameter {
                parameter_choice: Some(ParameterChoice::DoubleParam(f64::NAN)),
            },
        );
        assert!(parameters(&given).is_err());
    }
}
