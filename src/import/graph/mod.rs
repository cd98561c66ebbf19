//! What an ONNX file says about itself beyond what ONNX Runtime reports: who wrote it, its
//! operator sets, the class labels its classifier or ZipMap node carries, the categories of
//! one-hot encoded string columns, and which columns an Imputer fills when missing.
//!
//! A small reader of the protobuf wire format (`protobuf.rs`) over the few fields of onnx.proto
//! needed here (`nodes.rs`); a full ONNX crate (with its generated code and a protoc build step)
//! would be far heavier. Columns are followed from an encoder or imputer back to the graph
//! inputs by `trace.rs`.

mod nodes;
mod protobuf;
#[cfg(test)]
mod tests;
mod trace;

use nodes::{Constant, Node};
use protobuf::Message;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use trace::{Span, Tracer};

/// Facts read from the graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphFacts {
    /// `producer_name producer_version`, such as `skl2onnx 1.20.0`.
    pub producer: String,
    /// IR version and operator sets, such as `ir 8; ai.onnx 17, ai.onnx.ml 1`.
    pub opsets: String,
    /// The classes, in the order of the probabilities, when a node names them.
    pub labels: Option<Vec<String>>,
    /// The categories of string columns that a OneHotEncoder reads, by graph input and column
    /// index: each encoder skl2onnx writes reads one column, picked from its input through
    /// nodes that only move columns.
    pub categories: BTreeMap<(String, usize), Vec<String>>,
    /// The Imputers of NaN whose columns are graph-input columns (see [`GraphFacts::imputed`]).
    imputers: Vec<Imputation>,
}

/// An Imputer of NaN: the graph-input columns it reads, in order, and the values it puts in.
#[derive(Debug, Clone, PartialEq)]
struct Imputation {
    columns: Vec<(String, std::ops::Range<usize>)>,
    values: Vec<f64>,
}

impl GraphFacts {
    /// The value an Imputer puts in column `column` of graph input `input` when it holds NaN
    /// (that is, when the value is missing); `None` when no Imputer fills it with a number.
    pub fn imputed(&self, input: &str, column: usize) -> Option<f64> {
        self.imputers.iter().find_map(|imputer| {
            let mut position = 0;
            for (name, range) in &imputer.columns {
                if name == input && range.contains(&column) {
                    let at = position + (column - range.start);
                    // One value fills every column; otherwise each column has its own.
                    let value = match imputer.values.as_slice() {
                        [one] => Some(*one),
                        values => values.get(at).copied(),
                    };
                    return value.filter(|v| v.is_finite());
                }
                position += range.len();
            }
            None
        })
    }
}

/// An ONNX model, read as far as the facts need.
#[derive(Debug)]
pub struct Graph {
    producer: String,
    opsets: String,
    nodes: Vec<Node>,
    /// Small integer initializers that no feed can replace (a Gather's indices, a shape).
    constants: HashMap<String, Constant>,
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
        // An initializer that is also a graph input is only a default: a feed replaces it.
        let inputs: BTreeSet<String> = graph
            .bytes(11)
            .filter_map(|input| Message::parse(input).ok()?.string(1))
            .collect();
        let constants = graph
            .bytes(5)
            .filter_map(Constant::parse)
            .filter(|(name, _)| !inputs.contains(name))
            .collect();
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
            constants,
        })
    }

    /// The facts; `widths` gives the column count of each graph input (from ONNX Runtime), to
    /// place encoders and imputers on their columns.
    pub fn facts(&self, widths: &HashMap<String, usize>) -> GraphFacts {
        let mut tracer = Tracer::new(&self.nodes, widths, &self.constants);
        GraphFacts {
            producer: self.producer.clone(),
            opsets: self.opsets.clone(),
            labels: class_labels(&self.nodes),
            categories: categories(&self.nodes, &mut tracer),
            imputers: imputers(&self.nodes, &mut tracer),
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

/// The categories of each graph-input column that a OneHotEncoder of strings reads alone. A
/// column two encoders read with different categories gets none: either list would be wrong.
fn categories(nodes: &[Node], tracer: &mut Tracer<'_>) -> BTreeMap<(String, usize), Vec<String>> {
    let mut found: BTreeMap<(String, usize), Vec<String>> = BTreeMap::new();
    let mut disputed = BTreeSet::new();
    for node in nodes.iter().filter(|n| n.ml_op() == Some("OneHotEncoder")) {
        let Some(categories) = node
            .attribute("cats_strings")
            .map(|a| a.strings.clone())
            .filter(|c| !c.is_empty())
        else {
            continue;
        };
        let Some(input) = node.inputs.first() else {
            continue;
        };
        // One column only: an encoder of several columns has one list for all of them, which
        // is no column's own (skl2onnx writes one encoder per column).
        let Some(&[Span { input, start, end }]) = tracer.columns(input).as_deref() else {
            continue;
        };
        if end != start + 1 {
            continue;
        }
        let column = (input.to_string(), start);
        match found.get(&column) {
            Some(known) if *known != categories => {
                disputed.insert(column);
            }
            Some(_) => {}
            None => {
                found.insert(column, categories);
            }
        }
    }
    found.retain(|column, _| !disputed.contains(column));
    found
}

/// The Imputers of NaN whose columns all come from graph inputs, with the values they put in.
fn imputers(nodes: &[Node], tracer: &mut Tracer<'_>) -> Vec<Imputation> {
    let mut found = Vec::new();
    for node in nodes.iter().filter(|n| n.ml_op() == Some("Imputer")) {
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
        let Some(spans) = tracer.columns(input) else {
            continue;
        };
        found.push(Imputation {
            columns: spans
                .iter()
                .map(|s| (s.input.to_string(), s.start..s.end))
                .collect(),
            values: node
                .attribute("imputed_value_floats")
                .map(|a| a.floats.iter().map(|&v| f64::from(v)).collect())
                .unwrap_or_default(),
        });
    }
    found
}
