//! Graphs built by hand, field by field, as skl2onnx writes them and as it does not.

use super::nodes::MAX_CONSTANT_VALUES;
use super::trace::MAX_DEPTH;
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

/// The ONNX-ML operators used here; every other one is ONNX's own (domain "").
const ML_OPS: [&str; 4] = [
    "OneHotEncoder",
    "Imputer",
    "ArrayFeatureExtractor",
    "Scaler",
];

/// A node: inputs, outputs, op type and attributes (already encoded), in its usual domain.
fn node(inputs: &[&str], outputs: &[&str], op: &str, attributes: &[Vec<u8>]) -> Vec<u8> {
    let domain = if ML_OPS.contains(&op) {
        "ai.onnx.ml"
    } else {
        ""
    };
    node_in(domain, inputs, outputs, op, attributes)
}

fn node_in(
    domain: &str,
    inputs: &[&str],
    outputs: &[&str],
    op: &str,
    attributes: &[Vec<u8>],
) -> Vec<u8> {
    let mut body = Vec::new();
    inputs.iter().for_each(|i| body.extend(text(1, i)));
    outputs.iter().for_each(|o| body.extend(text(2, o)));
    body.extend(text(4, op));
    attributes.iter().for_each(|a| body.extend(field(5, 2, a)));
    body.extend(text(7, domain));
    field(1, 2, &body)
}

/// An integer attribute, such as an axis.
fn int(name: &str, value: i64) -> Vec<u8> {
    let mut attribute = text(1, name);
    attribute.extend(field(3, 0, &varint(value as u64)));
    attribute
}

/// Concat along the columns, as skl2onnx writes it.
fn concat(inputs: &[&str], output: &str) -> Vec<u8> {
    node(inputs, &[output], "Concat", &[int("axis", 1)])
}

/// Gather along the columns with the indices of initializer `indices`.
fn gather(data: &str, indices: &str, output: &str) -> Vec<u8> {
    node(&[data, indices], &[output], "Gather", &[int("axis", 1)])
}

/// A OneHotEncoder of strings with these categories.
fn encoder(input: &str, categories: &[&str]) -> Vec<u8> {
    let mut attribute = text(1, "cats_strings");
    categories.iter().for_each(|c| attribute.extend(text(9, c)));
    node(
        &[input],
        &[&format!("{input}_encoded")],
        "OneHotEncoder",
        &[attribute],
    )
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

/// An INT64 initializer of one axis (a list), its values packed in int64_data.
fn initializer(name: &str, values: &[i64]) -> Vec<u8> {
    let packed: Vec<u8> = values.iter().flat_map(|&v| varint(v as u64)).collect();
    tensor(name, Some(values.len()), 7, &field(7, 2, &packed))
}

/// A TensorProto: its name, its one dimension (none for a scalar), type and data fields.
fn tensor(name: &str, length: Option<usize>, data_type: u64, data: &[u8]) -> Vec<u8> {
    let mut body = length.map_or_else(Vec::new, |n| field(1, 0, &varint(n as u64)));
    body.extend(field(2, 0, &varint(data_type)));
    body.extend(text(8, name));
    body.extend_from_slice(data);
    body
}

fn model(nodes: Vec<Vec<u8>>, initializers: &[Vec<u8>], inputs: &[&str]) -> Vec<u8> {
    let mut graph: Vec<u8> = nodes.concat();
    for initializer in initializers {
        graph.extend(field(5, 2, initializer));
    }
    for input in inputs {
        graph.extend(field(11, 2, &text(1, input)));
    }
    let mut bytes = text(2, "test");
    bytes.extend(field(7, 2, &graph));
    bytes
}

/// The facts of a graph whose inputs have these widths.
fn facts(nodes: Vec<Vec<u8>>, initializers: &[Vec<u8>], widths: &[(&str, usize)]) -> GraphFacts {
    let names: Vec<&str> = widths.iter().map(|(name, _)| *name).collect();
    let widths: HashMap<String, usize> = widths.iter().map(|(n, w)| (n.to_string(), *w)).collect();
    Graph::parse(&model(nodes, initializers, &names))
        .unwrap()
        .facts(&widths)
}

/// The categories found, as (input, column, first category).
fn found(facts: &GraphFacts) -> Vec<(&str, usize, &str)> {
    facts
        .categories
        .iter()
        .map(|((input, column), categories)| (input.as_str(), *column, categories[0].as_str()))
        .collect()
}

#[test]
fn a_gather_of_a_one_column_input_traces_to_that_input() {
    // skl2onnx with one text column: Gather(color, [0], axis=1) -> OneHotEncoder.
    let facts = facts(
        vec![
            gather("color", "color0", "color01"),
            encoder("color01", &["blue", "green", "red"]),
        ],
        &[initializer("color0", &[0])],
        &[("age", 1), ("color", 1)],
    );
    assert_eq!(
        facts.categories[&("color".to_string(), 0)],
        ["blue", "green", "red"]
    );
    assert_eq!(facts.categories.len(), 1);
}

#[test]
fn encoders_of_a_wide_input_give_each_column_its_own_categories() {
    // text is [N, 3]: a Gather per column (one counting from the end), and an
    // ArrayFeatureExtractor of columns [2, 0] whose column 1 (text's column 0) is encoded too.
    let facts = facts(
        vec![
            gather("text", "zero", "first"),
            gather("text", "last", "third"),
            node(
                &["text", "two_zero"],
                &["picked"],
                "ArrayFeatureExtractor",
                &[],
            ),
            gather("picked", "one", "picked1"),
            encoder("first", &["a"]),
            encoder("third", &["c"]),
            encoder("picked1", &["a"]),
        ],
        &[
            initializer("zero", &[0]),
            initializer("one", &[1]),
            initializer("last", &[-1]),
            initializer("two_zero", &[2, 0]),
        ],
        &[("numbers", 2), ("text", 3)],
    );
    assert_eq!(found(&facts), [("text", 0, "a"), ("text", 2, "c")]);
    // The columns of two inputs side by side: index 2 is the second input's first column.
    let facts = self::facts(
        vec![
            concat(&["a", "b"], "ab"),
            gather("ab", "two", "b0"),
            encoder("b0", &["b"]),
        ],
        &[initializer("two", &[2])],
        &[("a", 2), ("b", 2)],
    );
    assert_eq!(found(&facts), [("b", 0, "b")]);
}

#[test]
fn a_gather_whose_indices_are_not_constant_is_not_followed() {
    let widths = [("text", 3), ("indices", 1)];
    // Each case: what the indices are, the nodes before the encoder, the initializers.
    type Case = (&'static str, Vec<Vec<u8>>, Vec<Vec<u8>>);
    let cases: Vec<Case> = vec![
        // The indices are fed like any input.
        (
            "a graph input",
            vec![gather("text", "indices", "g")],
            vec![],
        ),
        // An initializer that is also a graph input is only a default a feed replaces.
        (
            "an overridable initializer",
            vec![gather("text", "indices", "g")],
            vec![initializer("indices", &[0])],
        ),
        // The indices are computed.
        (
            "a computed tensor",
            vec![
                node(&["text"], &["computed"], "Shape", &[]),
                gather("text", "computed", "g"),
            ],
            vec![],
        ),
        // Axis 0, the default, picks rows.
        (
            "rows",
            vec![node(&["text", "zero"], &["g"], "Gather", &[])],
            vec![initializer("zero", &[0])],
        ),
        // A scalar index drops the column axis.
        (
            "a scalar",
            vec![gather("text", "scalar", "g")],
            vec![tensor("scalar", None, 7, &field(7, 0, &varint(0)))],
        ),
        (
            "an index past the end",
            vec![gather("text", "far", "g")],
            vec![initializer("far", &[3])],
        ),
        (
            "a Gather of another domain",
            vec![node_in(
                "com.example",
                &["text", "zero"],
                &["g"],
                "Gather",
                &[int("axis", 1)],
            )],
            vec![initializer("zero", &[0])],
        ),
    ];
    for (case, mut nodes, initializers) in cases {
        nodes.push(encoder("g", &["a"]));
        let facts = facts(nodes, &initializers, &widths);
        assert!(
            facts.categories.is_empty(),
            "{case}: {:?}",
            facts.categories
        );
    }
}

#[test]
fn cast_identity_reshape_and_concat_pass_columns_through_and_nothing_else_does() {
    let chain = |reshape: &[i64], axis: i64| {
        facts(
            vec![
                node(&["text"], &["cast"], "Cast", &[int("to", 8)]),
                node(&["cast"], &["same"], "Identity", &[]),
                node(&["same", "shape"], &["reshaped"], "Reshape", &[]),
                node(&["reshaped"], &["joined"], "Concat", &[int("axis", axis)]),
                encoder("joined", &["a"]),
            ],
            &[initializer("shape", reshape)],
            &[("text", 1)],
        )
    };
    assert_eq!(found(&chain(&[-1, 1], 1)), [("text", 0, "a")]);
    assert_eq!(found(&chain(&[-1, 1], -1)), [("text", 0, "a")]);
    // Rows stacked, or a shape that moves values between rows and columns: not followed.
    assert!(chain(&[-1, 1], 0).categories.is_empty());
    assert!(chain(&[1, -1], 1).categories.is_empty());
    // A computed tensor on the way.
    let facts = facts(
        vec![
            node(&["text"], &["normal"], "StringNormalizer", &[]),
            encoder("normal", &["a"]),
        ],
        &[],
        &[("text", 1)],
    );
    assert!(facts.categories.is_empty());
}

#[test]
fn an_encoder_of_several_columns_or_a_disputed_column_gives_no_categories() {
    // One encoder over both columns of a wide input: its list is no column's own.
    let facts = facts(vec![encoder("text", &["a"])], &[], &[("text", 2)]);
    assert!(facts.categories.is_empty());
    // Two encoders of one column: the same list is kept, two different lists are dropped.
    let twice = |second: &str| {
        self::facts(
            vec![
                gather("text", "zero", "one"),
                gather("text", "zero", "other"),
                encoder("one", &["a"]),
                encoder("other", &[second]),
            ],
            &[initializer("zero", &[0])],
            &[("text", 2)],
        )
    };
    assert_eq!(found(&twice("a")), [("text", 0, "a")]);
    assert!(twice("b").categories.is_empty());
}

#[test]
fn integer_initializers_are_read_packed_raw_or_as_int32() {
    let raw: Vec<u8> = [2i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let int32: Vec<u8> = [4u64, (-2i64) as u64]
        .iter()
        .flat_map(|&v| varint(v))
        .collect();
    let cases = [
        (initializer("packed", &[0, -1]), vec![0, -1]),
        (tensor("raw", Some(2), 7, &field(9, 2, &raw)), vec![2, -1]),
        (
            tensor("int32", Some(2), 6, &field(5, 2, &int32)),
            vec![4, -2],
        ),
    ];
    for (bytes, values) in cases {
        let (_, constant) = Constant::parse(&bytes).unwrap();
        assert_eq!(constant.values, values);
        assert_eq!(constant.dims, [2]);
    }
    // Raw data of the wrong length, floats, external data and too many values: not read.
    let short = tensor("short", Some(2), 7, &field(9, 2, &[0; 12]));
    let floats = tensor("floats", Some(1), 1, &field(4, 5, &1f32.to_le_bytes()));
    let mut external = initializer("external", &[0]);
    external.extend(field(14, 0, &[1]));
    let huge = tensor("huge", Some(MAX_CONSTANT_VALUES + 1), 7, &[]);
    for bytes in [short, floats, external, huge] {
        assert_eq!(Constant::parse(&bytes), None);
    }
}

#[test]
fn an_imputer_fills_every_column_of_the_inputs_it_reads() {
    // A matrix input: each of its three columns gets its own value.
    let facts = facts(
        vec![imputer("input", &[1.0, 2.0, 3.0])],
        &[],
        &[("input", 3)],
    );
    let filled: Vec<Option<f64>> = (0..4).map(|c| facts.imputed("input", c)).collect();
    assert_eq!(filled, [Some(1.0), Some(2.0), Some(3.0), None]);
    // Two inputs concatenated: the values follow the columns end to end.
    let widths = [("a", 2), ("b", 1)];
    let facts = self::facts(
        vec![concat(&["a", "b"], "ab"), imputer("ab", &[1.0, 2.0, 3.0])],
        &[],
        &widths,
    );
    assert_eq!(facts.imputed("a", 0), Some(1.0));
    assert_eq!(facts.imputed("a", 1), Some(2.0));
    assert_eq!(facts.imputed("b", 0), Some(3.0));
    // Columns picked from a wide input: only those are filled; one value fills them all.
    let facts = self::facts(
        vec![
            node(&["a", "picked"], &["some"], "ArrayFeatureExtractor", &[]),
            imputer("some", &[5.0]),
        ],
        &[initializer("picked", &[1])],
        &widths,
    );
    assert_eq!(facts.imputed("a", 0), None);
    assert_eq!(facts.imputed("a", 1), Some(5.0));
    // A computed tensor in the concatenation: its columns cannot be placed, so nothing is.
    let facts = self::facts(
        vec![
            node(&["a"], &["scaled"], "Scaler", &[]),
            concat(&["scaled", "b"], "ab"),
            imputer("ab", &[1.0, 2.0, 3.0]),
        ],
        &[],
        &widths,
    );
    assert_eq!(facts.imputed("b", 0), None);
    // An Imputer that puts NaN back makes nothing valid when missing.
    let facts = self::facts(vec![imputer("b", &[f32::NAN])], &[], &widths);
    assert_eq!(facts.imputed("b", 0), None);
}

#[test]
fn nested_concatenations_cannot_make_tracing_explode() {
    // 40 levels, each concatenating the level below with itself: 2^40 paths.
    let mut nodes = Vec::new();
    let mut below = "x".to_string();
    for level in 0..40 {
        let name = format!("c{level}");
        nodes.push(concat(&[&below, &below], &name));
        below = name;
    }
    nodes.push(imputer(&below, &[0.0]));
    nodes.push(gather(&below, "zero", "first"));
    nodes.push(encoder("first", &["a"]));
    let facts = facts(nodes, &[initializer("zero", &[0])], &[("x", 1)]);
    assert_eq!(facts.imputed("x", 0), None, "given up on, quickly");
    assert!(facts.categories.is_empty());
}

#[test]
fn long_chains_and_many_picked_columns_exhaust_the_budget() {
    // A chain deeper than any converter writes stops before it could exhaust the stack.
    let chain = |length: usize| {
        let mut nodes = Vec::new();
        let mut below = "x".to_string();
        for step in 0..length {
            let name = format!("i{step}");
            nodes.push(node(&[&below], &[&name], "Identity", &[]));
            below = name;
        }
        nodes.push(encoder(&below, &["a"]));
        facts(nodes, &[], &[("x", 1)])
    };
    assert_eq!(found(&chain(MAX_DEPTH)), [("x", 0, "a")]);
    assert!(chain(MAX_DEPTH + 1).categories.is_empty());
    // Each column picked counts: Gathers of many indices, over and over, run out.
    let many = initializer("many", &vec![0; MAX_CONSTANT_VALUES]);
    let mut nodes = Vec::new();
    for k in 0..20 {
        nodes.push(gather("x", "many", &format!("g{k}")));
        nodes.push(encoder(&format!("g{k}"), &["a"]));
    }
    nodes.push(gather("x", "zero", "late"));
    nodes.push(encoder("late", &["a"]));
    let facts = facts(nodes, &[many, initializer("zero", &[0])], &[("x", 1)]);
    assert!(
        facts.categories.is_empty(),
        "the budget is spent by then: {:?}",
        facts.categories
    );
}
