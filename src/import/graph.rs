//! What an ONNX file says about itself beyond what ONNX Runtime reports: who wrote it, its
//! operator sets, the class labels its classifier or ZipMap node carries, the categories of
//! one-hot encoded string inputs, and which inputs an Imputer fills when missing.
//!
//! A small reader of the protobuf wire format over the few fields of onnx.proto needed here;
//! a full ONNX crate (with its generated code and a protoc build step) would be far heavier
//! than these ~250 lines.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Facts read from the graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphFacts {
    /// `producer_name producer_version`, such as `skl2onnx 1.20.0`.
    pub producer: String,
    /// IR version and operator sets, such as `ir 8; ai.onnx 17, ai.onnx.ml 1`.
    pub opsets: String,
    /// The classes, in the order of the probabilities, when a node names them.
    pub labels: Option<Vec<String>>,
    /// Known categories of string inputs one-hot encoded straight from the graph input.
    pub categories: BTreeMap<String, Vec<String>>,
    /// Graph inputs whose NaNs an Imputer replaces, with the value it puts in per column.
    pub imputed: BTreeMap<String, Vec<f64>>,
}

/// An ONNX model, read as far as the facts need.
#[derive(Debug)]
pub struct Graph {
    producer: String,
    opsets: String,
    nodes: Vec<Node>,
}

impl Graph {
    /// Reads the bytes of an ONNX model; an error says why they are not one.
    pub fn parse(bytes: &[u8]) -> Result<Graph, String> {
        let model = Message::parse(bytes).map_err(|e| format!("not an ONNX model: {e}"))?;
        let graph_bytes = model
            .bytes(7)
            .next()
            .ok_or("not an ONNX model: it has no graph")?;
        let graph = Message::parse(graph_bytes).map_err(|e| format!("not an ONNX model: {e}"))?;
        let nodes: Vec<Node> = graph
            .bytes(1)
            .map(Node::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("not an ONNX model: {e}"))?;
        let producer = format!(
            "{} {}",
            model.string(2).unwrap_or_else(|| "unknown".to_string()),
            model.string(3).unwrap_or_default()
        )
        .trim()
        .to_string();
        Ok(Graph {
            producer,
            opsets: opsets(&model),
            nodes,
        })
    }

    /// The facts; `widths` gives the column count of each graph input (from ONNX Runtime), to
    /// place an imputer's values on its columns.
    pub fn facts(&self, widths: &HashMap<String, usize>) -> GraphFacts {
        let inputs: BTreeSet<String> = widths.keys().cloned().collect();
        GraphFacts {
            producer: self.producer.clone(),
            opsets: self.opsets.clone(),
            labels: class_labels(&self.nodes),
            categories: categories(&self.nodes, &inputs),
            imputed: imputed(&self.nodes, widths),
        }
    }
}

fn opsets(model: &Message<'_>) -> String {
    let sets: Vec<String> = model
        .bytes(8)
        .filter_map(|set| {
            let set = Message::parse(set).ok()?;
            let domain = set.string(1).filter(|d| !d.is_empty());
            let version = set.varint(2)?;
            Some(format!(
                "{} {version}",
                domain.unwrap_or_else(|| "ai.onnx".to_string())
            ))
        })
        .collect();
    format!("ir {}; {}", model.varint(1).unwrap_or(0), sets.join(", "))
}

/// The labels of a ZipMap node (it maps probabilities to classes), or else of a classifier
/// node (LinearClassifier, TreeEnsembleClassifier, SVMClassifier).
fn class_labels(nodes: &[Node]) -> Option<Vec<String>> {
    let labels_of = |node: &Node| {
        node.attributes.iter().find_map(|a| match a.name.as_str() {
            "classlabels_strings" if !a.strings.is_empty() => Some(a.strings.clone()),
            "classlabels_int64s" | "classlabels_ints" if !a.ints.is_empty() => {
                Some(a.ints.iter().map(i64::to_string).collect())
            }
            _ => None,
        })
    };
    nodes
        .iter()
        .filter(|n| n.op_type == "ZipMap")
        .find_map(labels_of)
        .or_else(|| nodes.iter().find_map(labels_of))
}

/// Ops that pass a tensor's columns through unchanged (for tracing an input to its use).
const PASS_THROUGH: [&str; 5] = ["Cast", "Identity", "Reshape", "Flatten", "CastLike"];

/// Most nodes visited tracing one tensor back: a crafted graph of nested concatenations that
/// reuse their inputs must not make the import take exponential time.
const TRACE_BUDGET: usize = 10_000;

/// The graph inputs whose columns a tensor holds, in column order, through pass-through ops and
/// concatenations; `None` when any part of it comes from elsewhere (a computed tensor), since
/// its columns could then not be placed.
fn sources(
    name: &str,
    producers: &HashMap<&str, &Node>,
    inputs: &BTreeSet<String>,
    budget: &mut usize,
) -> Option<Vec<String>> {
    *budget = budget.checked_sub(1)?;
    if inputs.contains(name) {
        return Some(vec![name.to_string()]);
    }
    let node = producers.get(name)?;
    match node.op_type.as_str() {
        "Concat" => {
            let mut all = Vec::new();
            for input in &node.inputs {
                all.extend(sources(input, producers, inputs, budget)?);
            }
            Some(all)
        }
        op if PASS_THROUGH.contains(&op) => {
            sources(node.inputs.first()?, producers, inputs, budget)
        }
        _ => None,
    }
}

fn producers(nodes: &[Node]) -> HashMap<&str, &Node> {
    nodes
        .iter()
        .flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n)))
        .collect()
}

/// Categories of string inputs that a OneHotEncoder reads directly.
fn categories(nodes: &[Node], inputs: &BTreeSet<String>) -> BTreeMap<String, Vec<String>> {
    let producers = producers(nodes);
    let mut found = BTreeMap::new();
    for node in nodes.iter().filter(|n| n.op_type == "OneHotEncoder") {
        let Some(input) = node.inputs.first() else {
            continue;
        };
        let origin =
            sources(input, &producers, inputs, &mut TRACE_BUDGET.clone()).unwrap_or_default();
        let categories = node.attribute("cats_strings").map(|a| a.strings.clone());
        if let ([origin], Some(categories)) = (origin.as_slice(), categories)
            && !categories.is_empty()
        {
            found.insert(origin.clone(), categories);
        }
    }
    found
}

/// Graph inputs an Imputer fills when they hold NaN, with the value it puts in each column.
fn imputed(nodes: &[Node], widths: &HashMap<String, usize>) -> BTreeMap<String, Vec<f64>> {
    let producers = producers(nodes);
    let inputs: BTreeSet<String> = widths.keys().cloned().collect();
    let mut found = BTreeMap::new();
    for node in nodes.iter().filter(|n| n.op_type == "Imputer") {
        // Only an Imputer of NaN makes a missing value (sent to the graph as NaN) valid.
        let replaces_nan = node
            .attribute("replaced_value_float")
            .is_some_and(|a| a.float.is_some_and(f32::is_nan));
        let Some(input) = node.inputs.first() else {
            continue;
        };
        if !replaces_nan {
            continue;
        }
        let values: Vec<f64> = node
            .attribute("imputed_value_floats")
            .map(|a| a.floats.iter().map(|&v| f64::from(v)).collect())
            .unwrap_or_default();
        let Some(origins) = sources(input, &producers, &inputs, &mut TRACE_BUDGET.clone()) else {
            continue;
        };
        // The imputer's columns are the inputs' columns end to end; one value fills them all.
        let mut column = 0;
        for origin in origins {
            let width = widths.get(&origin).copied().unwrap_or(1);
            let filled: Vec<f64> = (column..column + width)
                .map(|c| {
                    values
                        .get(c)
                        .or(values.first().filter(|_| values.len() == 1))
                        .copied()
                        .unwrap_or(f64::NAN)
                })
                .collect();
            column += width;
            found.insert(origin, filled);
        }
    }
    found
}

/// A node of the graph, with the attributes read here.
#[derive(Debug, Default)]
struct Node {
    inputs: Vec<String>,
    outputs: Vec<String>,
    op_type: String,
    attributes: Vec<Attribute>,
}

#[derive(Debug, Default)]
struct Attribute {
    name: String,
    float: Option<f32>,
    floats: Vec<f32>,
    ints: Vec<i64>,
    strings: Vec<String>,
}

impl Node {
    fn parse(bytes: &[u8]) -> Result<Node, String> {
        let message = Message::parse(bytes)?;
        Ok(Node {
            inputs: message.strings(1),
            outputs: message.strings(2),
            op_type: message.string(4).unwrap_or_default(),
            attributes: message
                .bytes(5)
                .map(Attribute::parse)
                .collect::<Result<_, _>>()?,
        })
    }

    fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
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
            floats,
            ints,
            strings: message.strings(9),
        })
    }
}

/// One field of a protobuf message.
#[derive(Debug)]
struct Field<'a> {
    number: u64,
    value: Value<'a>,
}

#[derive(Debug)]
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// A protobuf message split into its fields (not decoded further).
#[derive(Debug)]
struct Message<'a> {
    fields: Vec<Field<'a>>,
}

impl<'a> Message<'a> {
    fn parse(mut bytes: &'a [u8]) -> Result<Message<'a>, String> {
        let mut fields = Vec::new();
        while !bytes.is_empty() {
            let key = read_varint(&mut bytes)?;
            let number = key >> 3;
            let value = match key & 7 {
                0 => Value::Varint(read_varint(&mut bytes)?),
                1 => {
                    take(&mut bytes, 8)?;
                    Value::Fixed64
                }
                2 => {
                    let length = usize::try_from(read_varint(&mut bytes)?)
                        .map_err(|_| "a field longer than memory".to_string())?;
                    Value::Bytes(take(&mut bytes, length)?)
                }
                5 => {
                    let raw = take(&mut bytes, 4)?;
                    Value::Fixed32(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
                }
                wire => return Err(format!("unsupported protobuf wire type {wire}")),
            };
            fields.push(Field { number, value });
        }
        Ok(Message { fields })
    }

    fn varints(mut bytes: &[u8]) -> Result<Vec<u64>, String> {
        let mut values = Vec::new();
        while !bytes.is_empty() {
            values.push(read_varint(&mut bytes)?);
        }
        Ok(values)
    }

    fn bytes(&self, number: u64) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.fields.iter().filter_map(move |f| match f.value {
            Value::Bytes(b) if f.number == number => Some(b),
            _ => None,
        })
    }

    fn string(&self, number: u64) -> Option<String> {
        self.bytes(number)
            .next()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    fn strings(&self, number: u64) -> Vec<String> {
        self.bytes(number)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    fn varint(&self, number: u64) -> Option<u64> {
        self.fields.iter().find_map(|f| match f.value {
            Value::Varint(v) if f.number == number => Some(v),
            _ => None,
        })
    }
}

fn read_varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or("truncated protobuf varint")?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("protobuf varint longer than 10 bytes".to_string())
}

fn take<'a>(bytes: &mut &'a [u8], length: usize) -> Result<&'a [u8], String> {
    if bytes.len() < length {
        return Err("truncated protobuf field".to_string());
    }
    let (head, rest) = bytes.split_at(length);
    *bytes = rest;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_an_onnx_model() {
        assert!(Graph::parse(b"hello world").is_err());
        assert!(
            Graph::parse(&[0x3a, 0x05, 0x01]).is_err(),
            "truncated graph"
        );
        assert!(Graph::parse(b"").unwrap_err().contains("no graph"));
    }

    /// A protobuf field: key then value (length-delimited for bytes, fixed32 for floats).
    fn field(number: u64, wire: u64, body: &[u8]) -> Vec<u8> {
        let mut out = varint((number << 3) | wire);
        if wire == 2 {
            out.extend(varint(body.len() as u64));
        }
        out.extend_from_slice(body);
        out
    }

    fn varint(mut value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn text(number: u64, value: &str) -> Vec<u8> {
        field(number, 2, value.as_bytes())
    }

    /// A node: inputs, outputs, op type and attributes (already encoded).
    fn node(inputs: &[&str], outputs: &[&str], op: &str, attributes: &[Vec<u8>]) -> Vec<u8> {
        let mut body = Vec::new();
        inputs.iter().for_each(|i| body.extend(text(1, i)));
        outputs.iter().for_each(|o| body.extend(text(2, o)));
        body.extend(text(4, op));
        attributes.iter().for_each(|a| body.extend(field(5, 2, a)));
        field(1, 2, &body)
    }

    /// An Imputer of NaN with these values.
    fn imputer(input: &str, values: &[f32]) -> Vec<u8> {
        let mut replaced = text(1, "replaced_value_float");
        replaced.extend(field(2, 5, &f32::NAN.to_le_bytes()));
        let mut imputed = text(1, "imputed_value_floats");
        let packed: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        imputed.extend(field(7, 2, &packed));
        node(&[input], &["filled"], "Imputer", &[replaced, imputed])
    }

    fn model(graph_nodes: Vec<Vec<u8>>, inputs: &[&str]) -> Vec<u8> {
        let mut graph: Vec<u8> = graph_nodes.concat();
        for input in inputs {
            graph.extend(field(11, 2, &text(1, input)));
        }
        let mut bytes = text(2, "test");
        bytes.extend(field(7, 2, &graph));
        bytes
    }

    #[test]
    fn an_imputer_fills_every_column_of_the_inputs_it_reads() {
        // A matrix input: each of its three columns gets its own value.
        let widths = HashMap::from([("input".to_string(), 3)]);
        let bytes = model(vec![imputer("input", &[1.0, 2.0, 3.0])], &["input"]);
        let facts = Graph::parse(&bytes).unwrap().facts(&widths);
        assert_eq!(facts.imputed["input"], [1.0, 2.0, 3.0]);
        // Two inputs concatenated: the values follow the columns end to end.
        let widths = HashMap::from([("a".to_string(), 2), ("b".to_string(), 1)]);
        let bytes = model(
            vec![
                node(&["a", "b"], &["ab"], "Concat", &[]),
                imputer("ab", &[1.0, 2.0, 3.0]),
            ],
            &["a", "b"],
        );
        let facts = Graph::parse(&bytes).unwrap().facts(&widths);
        assert_eq!(facts.imputed["a"], [1.0, 2.0]);
        assert_eq!(facts.imputed["b"], [3.0]);
        // A computed tensor in the concatenation: its columns cannot be placed, so nothing is.
        let bytes = model(
            vec![
                node(&["a"], &["scaled"], "Scaler", &[]),
                node(&["scaled", "b"], &["ab"], "Concat", &[]),
                imputer("ab", &[1.0, 2.0, 3.0]),
            ],
            &["a", "b"],
        );
        assert!(
            Graph::parse(&bytes)
                .unwrap()
                .facts(&widths)
                .imputed
                .is_empty()
        );
    }

    #[test]
    fn nested_concatenations_cannot_make_tracing_explode() {
        // 40 levels, each concatenating the level below with itself: 2^40 paths.
        let mut nodes = Vec::new();
        let mut below = "x".to_string();
        for level in 0..40 {
            let name = format!("c{level}");
            nodes.push(node(&[&below, &below], &[&name], "Concat", &[]));
            below = name;
        }
        nodes.push(imputer(&below, &[0.0]));
        let widths = HashMap::from([("x".to_string(), 1)]);
        let facts = Graph::parse(&model(nodes, &["x"])).unwrap().facts(&widths);
        assert!(facts.imputed.is_empty(), "given up on, quickly");
    }

    #[test]
    fn varints_read_as_protobuf_writes_them() {
        let mut bytes: &[u8] = &[0xac, 0x02, 0x01];
        assert_eq!(read_varint(&mut bytes).unwrap(), 300);
        assert_eq!(bytes, [0x01]);
        assert!(read_varint(&mut &[0x80u8][..]).is_err());
    }
}
