//! Which columns of which graph inputs a tensor holds, followed back through the nodes that
//! only move columns: the ones skl2onnx places between an input and its OneHotEncoder or
//! Imputer (Identity, Cast, Reshape, Concat, and Gather or ArrayFeatureExtractor with
//! constant indices to pick columns). Any other node computes new values, so a tensor that
//! depends on one is not traced: knowing nothing is better than a wrong category list.

use super::nodes::{Constant, Node};
use std::collections::HashMap;

/// Most node visits (and picked columns) in all the tracing of one graph: a crafted graph of
/// nested concatenations that reuse their inputs must not make the import take exponential
/// time, and what tracing keeps is bounded by it too.
pub(super) const TRACE_BUDGET: usize = 100_000;

/// Most nodes between a tensor and a graph input: skl2onnx puts a handful, and a deeper chain
/// must not overflow the stack of the recursion that follows it.
pub(super) const MAX_DEPTH: usize = 64;

/// Columns `start..end` of graph input `input`, a run of a tensor's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span<'g> {
    pub input: &'g str,
    pub start: usize,
    pub end: usize,
}

/// Follows tensors back to the graph inputs, within one budget for the whole graph.
pub(super) struct Tracer<'g> {
    producers: HashMap<&'g str, &'g Node>,
    widths: &'g HashMap<String, usize>,
    constants: &'g HashMap<String, Constant>,
    budget: usize,
}

impl<'g> Tracer<'g> {
    /// A tracer over `nodes`; `widths` gives the column count of each graph input, and
    /// `constants` the integer initializers that no feed can replace.
    pub fn new(
        nodes: &'g [Node],
        widths: &'g HashMap<String, usize>,
        constants: &'g HashMap<String, Constant>,
    ) -> Tracer<'g> {
        let producers = nodes
            .iter()
            .flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n)))
            .collect();
        Tracer {
            producers,
            widths,
            constants,
            budget: TRACE_BUDGET,
        }
    }

    /// The graph-input columns tensor `name` holds, in its column order; `None` when any of
    /// them is computed, or cannot be placed, or the budget has run out.
    pub fn columns(&mut self, name: &str) -> Option<Vec<Span<'g>>> {
        self.trace(name, 0)
    }

    fn trace(&mut self, name: &str, depth: usize) -> Option<Vec<Span<'g>>> {
        self.spend(1)?;
        if depth > MAX_DEPTH {
            return None;
        }
        if let Some((input, &width)) = self.widths.get_key_value(name) {
            return Some(vec![Span {
                input,
                start: 0,
                end: width,
            }]);
        }
        let node = *self.producers.get(name)?;
        let first = || node.inputs.first().map(String::as_str);
        if let Some(op) = node.onnx_op() {
            return match op {
                "Identity" | "Cast" | "CastLike" => self.trace(first()?, depth + 1),
                // Flatten keeps [N, C] as it is only at axis 1, its default.
                "Flatten" if node.int("axis").unwrap_or(1) == 1 => self.trace(first()?, depth + 1),
                // The tensors traced are [N, C]; axis 1 (or -1) puts columns side by side.
                "Concat" if matches!(node.int("axis"), Some(1 | -1)) => {
                    let mut all: Vec<Span<'g>> = Vec::new();
                    for input in &node.inputs {
                        for span in self.trace(input, depth + 1)? {
                            push(&mut all, span);
                        }
                    }
                    Some(all)
                }
                // A reshape to [-1, C] of C columns leaves them where they are; any other
                // shape moves values between rows and columns.
                "Reshape" => {
                    let spans = self.trace(first()?, depth + 1)?;
                    let shape = self.constant(node.inputs.get(1)?)?;
                    let width = i64::try_from(width(&spans)?).ok()?;
                    (shape.values == [-1, width]).then_some(spans)
                }
                // Gather along axis 1 with a list of indices picks those columns; a negative
                // index counts from the end. (The default axis, 0, picks rows.)
                "Gather" if matches!(node.int("axis"), Some(1 | -1)) => {
                    self.pick(node, depth, true)
                }
                _ => None,
            };
        }
        match node.ml_op()? {
            // ArrayFeatureExtractor picks columns of the last axis, and takes no negatives.
            "ArrayFeatureExtractor" => self.pick(node, depth, false),
            _ => None,
        }
    }

    /// The columns a Gather or ArrayFeatureExtractor picks with its constant indices.
    fn pick(&mut self, node: &Node, depth: usize, negatives: bool) -> Option<Vec<Span<'g>>> {
        let indices: &'g [i64] = &self.constant(node.inputs.get(1)?)?.values;
        // A list of indices gives [N, K]; a single index (a scalar) would drop the axis.
        let spans = self.trace(node.inputs.first()?, depth + 1)?;
        self.spend(indices.len())?;
        let total = width(&spans)?;
        // Where each span starts among the tensor's columns, to find an index's span.
        let starts: Vec<usize> = spans
            .iter()
            .scan(0, |at, span| {
                let start = *at;
                *at += span.end - span.start;
                Some(start)
            })
            .collect();
        let mut picked = Vec::new();
        for &index in indices {
            let index = if index < 0 && negatives {
                index.checked_add(i64::try_from(total).ok()?)?
            } else {
                index
            };
            let index = usize::try_from(index).ok().filter(|&i| i < total)?;
            let which = starts.partition_point(|&start| start <= index) - 1;
            let span = spans.get(which)?;
            let column = span.start + (index - starts.get(which)?);
            push(
                &mut picked,
                Span {
                    input: span.input,
                    start: column,
                    end: column + 1,
                },
            );
        }
        Some(picked)
    }

    /// Takes `cost` from the budget; once it cannot, it is spent, and all tracing stops.
    fn spend(&mut self, cost: usize) -> Option<()> {
        self.budget = self.budget.saturating_sub(cost);
        (self.budget > 0).then_some(())
    }

    /// A constant operand's values: an integer initializer of one axis (a list), as skl2onnx
    /// writes indices and shapes.
    fn constant(&self, name: &str) -> Option<&'g Constant> {
        self.constants.get(name).filter(|c| c.dims.len() == 1)
    }
}

/// The number of columns of the spans (`None` past `usize`, which only a crafted graph reaches).
pub(super) fn width(spans: &[Span<'_>]) -> Option<usize> {
    spans.iter().try_fold(0usize, |total, span| {
        total.checked_add(span.end - span.start)
    })
}

/// Appends a span, joining it to the last one when it continues it, so that the columns of a
/// whole input picked one by one stay one span.
fn push<'g>(spans: &mut Vec<Span<'g>>, span: Span<'g>) {
    match spans.last_mut() {
        Some(last) if last.input == span.input && last.end == span.start => last.end = span.end,
        _ => spans.push(span),
    }
}
