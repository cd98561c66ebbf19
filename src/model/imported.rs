//! ONNX models in the repository: how a version's validated features become the graph's input
//! tensors, and the checks that a graph fits its manifest before it serves.
//!
//! The manifest's `[onnx]` section names, for every graph input, the features that are its
//! columns. At load the binding is checked against the graph (every input bound once, widths
//! and element types that fit the features) and the example row is scored, so a version that
//! loads is a version that runs.

use super::manifest::{FeatureSchema, Manifest, OnnxBinding};
use super::native::FeatureValue;
use super::onnx::{Column, GraphSignature, InputKind, OnnxError, OnnxModel};
use super::validate::{RawValue, UnknownFields, Validator};
use crate::data::ColumnKind;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where ONNX Runtime is and how many sessions each model gets.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxSettings {
    /// The runtime library, before `ORT_DYLIB_PATH` and the set-up script's folder.
    pub library: Option<PathBuf>,
    /// Sessions per model: a session runs one request at a time.
    pub sessions: usize,
}

impl Default for OnnxSettings {
    fn default() -> Self {
        OnnxSettings {
            library: None,
            sessions: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        }
    }
}

static SETTINGS: OnceLock<OnnxSettings> = OnceLock::new();

/// Sets the process's ONNX settings; the first call wins (the runtime library is loaded once
/// per process), and models loaded before any call use the defaults.
pub fn configure(settings: OnnxSettings) {
    if SETTINGS.set(settings.clone()).is_err() && SETTINGS.get() != Some(&settings) {
        tracing::warn!("ONNX settings were already set; the new ones are ignored");
    }
}

fn settings() -> &'static OnnxSettings {
    SETTINGS.get_or_init(OnnxSettings::default)
}

/// The features feeding one graph input, by position in the schema.
#[derive(Debug)]
struct BoundInput {
    kind: InputKind,
    features: Vec<usize>,
}

/// An ONNX graph with the binding of its inputs to the schema's features.
#[derive(Debug)]
pub struct OnnxRunner {
    model: OnnxModel,
    inputs: Vec<BoundInput>,
    /// Scores per row: the classes, or 1 for a model that predicts a number.
    width: usize,
}

impl OnnxRunner {
    /// Loads the graph in `bytes` (the checked contents of `path`) for `manifest`, checks the
    /// binding and scores the example row.
    pub fn load(path: &Path, bytes: &[u8], manifest: &Manifest) -> Result<OnnxRunner, String> {
        let settings = settings();
        let model = OnnxModel::from_bytes(
            path,
            bytes,
            settings.library.as_deref(),
            settings.sessions,
            Some(manifest.task),
        )
        .map_err(|error| error.to_string())?;
        OnnxRunner::bind(model, manifest)
    }

    /// Binds a loaded graph to `manifest`'s features, checks the binding and scores the
    /// example row.
    pub fn bind(model: OnnxModel, manifest: &Manifest) -> Result<OnnxRunner, String> {
        let binding = manifest
            .onnx
            .as_ref()
            .ok_or("the manifest has no [onnx] section naming the features of each graph input")?;
        // The graph was read as the manifest's task says (or its load failed saying why).
        let graph_task = model.signature().task;
        match graph_task {
            super::Task::Regression if !manifest.labels.is_empty() => {
                return Err("a regression model's manifest has no labels".to_string());
            }
            super::Task::Classification if manifest.target.is_some() => {
                return Err("a classifier's manifest has no [target]".to_string());
            }
            _ => {}
        }
        let inputs = bind(&manifest.features, binding, model.signature())?;
        let runner = OnnxRunner {
            model,
            inputs,
            width: match graph_task {
                super::Task::Classification => manifest.labels.len(),
                super::Task::Regression => 1,
            },
        };
        runner.score_example(manifest)?;
        Ok(runner)
    }

    /// The scores of validated rows (values in schema order), in one run of the graph: each
    /// row's class probabilities, or its one value for a model that predicts a number.
    pub fn scores(&self, rows: &[&[FeatureValue]]) -> Result<Vec<Vec<f64>>, OnnxError> {
        let columns: Vec<Vec<Column>> = self
            .inputs
            .iter()
            .map(|input| {
                input
                    .features
                    .iter()
                    .map(|&feature| column(input.kind, rows, feature))
                    .collect()
            })
            .collect();
        let scores = self.model.scores(rows.len(), &columns)?;
        if scores.len() != rows.len() || scores.iter().any(|p| p.len() != self.width) {
            return Err(OnnxError::Run(format!(
                "the graph answered {} rows of {} scores for {} rows of {} scores each",
                scores.len(),
                scores.first().map_or(0, Vec::len),
                rows.len(),
                self.width
            )));
        }
        Ok(scores)
    }

    fn score_example(&self, manifest: &Manifest) -> Result<(), String> {
        let example = manifest.example_row();
        let mut errors = Vec::new();
        let row = Validator::new(&manifest.features)
            .validate(
                example.iter().map(|(k, v)| (k.as_str(), RawValue::Json(v))),
                UnknownFields::Reject,
                "",
                &mut errors,
            )
            .ok_or_else(|| {
                let problems: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect();
                format!(
                    "the manifest's example row is not valid: {}",
                    problems.join("; ")
                )
            })?;
        self.scores(&[&row.values])
            .map(drop)
            .map_err(|error| format!("the graph cannot score the example row: {error}"))
    }
}

/// One column of a graph input: a feature's values across the rows.
fn column(kind: InputKind, rows: &[&[FeatureValue]], feature: usize) -> Column {
    match kind {
        InputKind::Text => Column::Texts(
            rows.iter()
                .map(|row| match &row[feature] {
                    FeatureValue::Category(text) | FeatureValue::Text(text) => text.clone(),
                    FeatureValue::Number(number) => number.to_string(),
                    FeatureValue::Missing => String::new(),
                })
                .collect(),
        ),
        // NaN is what scikit-learn's SimpleImputer (and so the exported Imputer) reads as missing.
        _ => Column::Numbers(
            rows.iter()
                .map(|row| match &row[feature] {
                    FeatureValue::Number(number) => *number,
                    _ => f64::NAN,
                })
                .collect(),
        ),
    }
}

/// Checks the binding against the graph and the schema; the bound inputs in graph order.
fn bind(
    features: &[FeatureSchema],
    binding: &OnnxBinding,
    signature: &GraphSignature,
) -> Result<Vec<BoundInput>, String> {
    for bound in &binding.inputs {
        if !signature.inputs.iter().any(|i| i.name == bound.name) {
            return Err(format!(
                "the manifest binds features to '{}', which is not an input of the graph (its inputs: {})",
                bound.name,
                input_names(signature)
            ));
        }
    }
    let mut used = vec![false; features.len()];
    let mut inputs = Vec::with_capacity(signature.inputs.len());
    for graph_input in &signature.inputs {
        let mut bound = binding.inputs.iter().filter(|b| b.name == graph_input.name);
        let (Some(bound), None) = (bound.next(), bound.next()) else {
            return Err(format!(
                "graph input '{}' must be bound to its features exactly once in [onnx]",
                graph_input.name
            ));
        };
        if let Some(width) = graph_input.width
            && width != bound.features.len()
        {
            return Err(format!(
                "graph input '{}' takes {width} columns, the manifest gives it {} features",
                graph_input.name,
                bound.features.len()
            ));
        }
        let mut positions = Vec::with_capacity(bound.features.len());
        for name in &bound.features {
            let position = features
                .iter()
                .position(|f| &f.name == name)
                .ok_or_else(|| {
                    format!(
                        "graph input '{}' is bound to '{name}', which is not a feature",
                        graph_input.name
                    )
                })?;
            if std::mem::replace(&mut used[position], true) {
                return Err(format!("feature '{name}' is bound to more than one column"));
            }
            check_kind(&features[position], graph_input.kind, &graph_input.name)?;
            positions.push(position);
        }
        inputs.push(BoundInput {
            kind: graph_input.kind,
            features: positions,
        });
    }
    if let Some(unused) = used.iter().position(|u| !u) {
        return Err(format!(
            "feature '{}' is not bound to any graph input",
            features[unused].name
        ));
    }
    Ok(inputs)
}

/// Whether a feature's type can fill a column of a graph input's element type.
fn check_kind(feature: &FeatureSchema, kind: InputKind, input: &str) -> Result<(), String> {
    let text_feature = matches!(
        feature.kind,
        ColumnKind::Categorical | ColumnKind::String | ColumnKind::Date | ColumnKind::DateTime
    );
    match kind {
        InputKind::Text if !text_feature => Err(format!(
            "feature '{}' is {}, but graph input '{input}' takes strings",
            feature.name,
            feature.kind.name()
        )),
        // A string input has no missing value the graph would recognise.
        InputKind::Text if feature.nullable => Err(format!(
            "feature '{}' is nullable, but graph input '{input}' takes strings, which cannot be missing",
            feature.name
        )),
        InputKind::Float | InputKind::Double | InputKind::Int64 if text_feature => Err(format!(
            "feature '{}' is {}, but graph input '{input}' takes numbers",
            feature.name,
            feature.kind.name()
        )),
        InputKind::Int64 if feature.nullable => Err(format!(
            "feature '{}' is nullable, but graph input '{input}' takes integers, which cannot be missing",
            feature.name
        )),
        _ => Ok(()),
    }
}

fn input_names(signature: &GraphSignature) -> String {
    signature
        .inputs
        .iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
