//! The ONNX messages read here (onnx.proto's field numbers): nodes with their attributes, and
//! the small integer initializers that hold a Gather's or Reshape's constant operands.

use super::protobuf::{Message, Value};

/// A node of the graph, with the attributes read here.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub op_type: String,
    domain: String,
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Default)]
pub(super) struct Attribute {
    pub name: String,
    pub float: Option<f32>,
    pub int: Option<i64>,
    pub floats: Vec<f32>,
    pub ints: Vec<i64>,
    pub strings: Vec<String>,
}

impl Node {
    pub fn parse(bytes: &[u8]) -> Result<Node, String> {
        let message = Message::parse(bytes)?;
        Ok(Node {
            inputs: message.strings(1),
            outputs: message.strings(2),
            op_type: message.string(4).unwrap_or_default(),
            domain: message.string(7).unwrap_or_default(),
            attributes: message
                .bytes(5)
                .map(Attribute::parse)
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The operator, when the node is one of ONNX's own (its operators are what the tracing
    /// knows the meaning of; an operator of another domain may share the name, not the meaning).
    pub fn onnx_op(&self) -> Option<&str> {
        matches!(self.domain.as_str(), "" | "ai.onnx").then_some(self.op_type.as_str())
    }

    /// The operator, when the node is one of ONNX-ML's (OneHotEncoder, Imputer, ...).
    pub fn ml_op(&self) -> Option<&str> {
        (self.domain == "ai.onnx.ml").then_some(self.op_type.as_str())
    }

    /// An integer attribute (such as an axis), when the node sets it.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.attribute(name).and_then(|a| a.int)
    }
}

impl Attribute {
    fn parse(bytes: &[u8]) -> Result<Attribute, String> {
        let message = Message::parse(bytes)?;
        let mut floats = Vec::new();
        let mut ints = Vec::new();
        for field in &message.fields {
            match (field.number, &field.value) {
                (7, Value::Fixed32(bits)) => floats.push(f32::from_bits(*bits)),
                (7, Value::Bytes(packed)) => floats.extend(
                    packed
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                ),
                (8, Value::Varint(v)) => ints.push(*v as i64),
                (8, Value::Bytes(packed)) => {
                    ints.extend(Message::varints(packed)?.into_iter().map(|v| v as i64))
                }
                _ => {}
            }
        }
        Ok(Attribute {
            name: message.string(1).unwrap_or_default(),
            float: message
                .fields
                .iter()
                .find_map(|f| match (f.number, &f.value) {
                    (2, Value::Fixed32(bits)) => Some(f32::from_bits(*bits)),
                    _ => None,
                }),
            // Protobuf writes a negative int64 as its two's complement.
            int: message.varint(3).map(|v| v as i64),
            floats,
            ints,
            strings: message.strings(9),
        })
    }
}

/// Most values read from one integer initializer: column indices are few, and tracing would
/// give up on more than this many anyway, so a larger tensor is not worth its memory.
pub(super) const MAX_CONSTANT_VALUES: usize = 10_000;

/// A small integer tensor stored in the file (an initializer).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Constant {
    pub dims: Vec<i64>,
    pub values: Vec<i64>,
}

impl Constant {
    /// An initializer's name and values, when it is an INT64 or INT32 tensor of at most
    /// [`MAX_CONSTANT_VALUES`] values held in the file itself; `None` for anything else.
    pub fn parse(bytes: &[u8]) -> Option<(String, Constant)> {
        let message = Message::parse(bytes).ok()?;
        let name = message.string(8)?;
        // A segment (3) or external data (13, 14 = EXTERNAL) is only part of the values here.
        if message.has(3) || message.has(13) || message.varint(14).unwrap_or(0) != 0 {
            return None;
        }
        let dims: Vec<i64> = message
            .repeated_varints(1)
            .ok()?
            .into_iter()
            .map(|d| d as i64)
            .collect();
        let count = dims.iter().try_fold(1usize, |count, &d| {
            count.checked_mul(usize::try_from(d).ok()?)
        })?;
        if count > MAX_CONSTANT_VALUES {
            return None;
        }
        // data_type INT64 (7) keeps its values in int64_data (7), INT32 (6) in int32_data (5);
        // either may be in raw_data (9) instead, little-endian.
        let int64 = match message.varint(2)? {
            7 => true,
            6 => false,
            _ => return None,
        };
        let values: Vec<i64> = match message.bytes(9).next() {
            Some(raw) if int64 && raw.len() == count * 8 => raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            Some(raw) if !int64 && raw.len() == count * 4 => raw
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            Some(_) => return None,
            None if int64 => message
                .repeated_varints(7)
                .ok()?
                .into_iter()
                .map(|v| v as i64)
                .collect(),
            None => message
                .repeated_varints(5)
                .ok()?
                .into_iter()
                .map(|v| i64::from(v as i32))
                .collect(),
        };
        (values.len() == count).then_some((name, Constant { dims, values }))
    }
}
