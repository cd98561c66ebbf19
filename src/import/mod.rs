//! `mlserve import`: a model exported as ONNX (scikit-learn through skl2onnx) becomes a new
//! version in the model repository, with a manifest that binds the schema's features to the
//! graph's inputs.
//!
//! What the graph says is used first: input names, element types and widths (from ONNX
//! Runtime), class labels, one-hot categories and imputed inputs (from the graph's nodes, see
//! [`graph`]). The feature names of a matrix input come from a file or a CSV header; the rows
//! of that CSV, when it has some, give the training statistics the web UI and drift use. The
//! version is written only once the graph has scored the example row with this binding.

mod background;
pub mod boosted;
pub mod evaluate;
pub mod graph;
pub mod lightgbm;
pub mod mlflow;
mod sample;
mod target;
pub mod ubjson;
pub mod xgboost;

use crate::data::ColumnKind;
use crate::model::imported::OnnxRunner;
use crate::model::onnx::{GraphInput, InputKind, OnnxModel};
use crate::model::{
    ArtifactError, ArtifactFiles, ArtifactInfo, Backend, FeatureSchema, ImportProvenance, Manifest,
    ModelFile, OnnxBinding, OnnxInput, Task, validate_model_name, write_new_version,
};
use graph::GraphFacts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;

/// Where the feature names come from.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureNames {
    /// The graph's input names (one input per column).
    FromGraph,
    /// A text file with one feature name a line.
    File(PathBuf),
    /// A CSV file: its header row names the features, its rows (if any) give their statistics.
    Csv(PathBuf),
    /// Names given in order (an MLflow signature's inputs).
    Given(Vec<String>),
}

/// What to import, and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The ONNX file.
    pub graph: PathBuf,
    /// The model's name in the repository.
    pub name: String,
    /// The repository folder.
    pub models: PathBuf,
    /// Where the feature names come from.
    pub features: FeatureNames,
    /// Class labels, in the order of the graph's classes, replacing the graph's own.
    pub labels: Option<Vec<String>>,
    /// An early-stopped XGBoost model: use every tree the file holds (as `Booster.predict`
    /// does), not those up to its `best_iteration` (as the scikit-learn wrapper does).
    pub all_trees: bool,
    /// What the graph does, when its outputs do not tell (or tell wrong): read as a classifier
    /// (a ZipMap or a float `[N, C]` output) or as a regressor (a float `[N, 1]` output).
    pub task: Option<Task>,
    /// The column of the training CSV ([`FeatureNames::Csv`]) and of `test_data` that holds
    /// the target (a class label, or the number predicted), left out of the features. In the
    /// training CSV of a model that predicts a number, its values give the target's training
    /// distribution.
    pub target: Option<String>,
    /// A CSV of held-out rows (the features' columns and `target`'s) on which the model is
    /// evaluated, as a trained model is on its held-out split.
    pub test_data: Option<PathBuf>,
    /// ONNX Runtime's library, before `ORT_DYLIB_PATH` and the set-up script's folder.
    pub onnxruntime: Option<PathBuf>,
    /// A CSV of rows standing for the training data (the features' columns), which KernelSHAP
    /// explains the graph's predictions against; without it an ONNX graph cannot explain.
    /// XGBoost and LightGBM models explain exactly and refuse it.
    pub background: Option<PathBuf>,
}

/// A version written by an import.
#[derive(Debug)]
pub struct Imported {
    /// Its version number.
    pub version: u32,
    /// Its folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not an ONNX model.
    #[error("{path}: {message}")]
    NotOnnx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A boosted-tree file that is damaged, or holds what mlserve does not evaluate (named).
    #[error("{path}: {message}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// ONNX Runtime cannot load or run the graph.
    #[error("{path}: the graph cannot run: {message}")]
    Unrunnable {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The feature names do not fit the graph, or the CSV cannot be read.
    #[error("{0}")]
    Features(String),
    /// The labels are missing or do not fit the graph.
    #[error("{0}")]
    Labels(String),
    /// The version could not be written.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

/// Imports a model file as the next version of `options.name`, recognised by its content: an
/// XGBoost model (JSON or UBJSON), a LightGBM text model or an ONNX graph; or an MLflow model
/// folder that keeps one of them (its signature naming the features unless the options do).
pub fn import_model(options: &ImportOptions) -> Result<Imported, ImportError> {
    validate_model_name(&options.name)?;
    if options.graph.is_dir() {
        let folder = mlflow::read(&options.graph)?;
        let features = match (&options.features, folder.inputs) {
            (FeatureNames::FromGraph, Some(names)) => FeatureNames::Given(names),
            (given, _) => given.clone(),
        };
        return import_model(&ImportOptions {
            graph: folder.file,
            features,
            ..options.clone()
        });
    }
    let bytes = std::fs::read(&options.graph).map_err(|source| ImportError::Read {
        path: options.graph.clone(),
        source,
    })?;
    if let Some(kind) = boosted::kind_of(&bytes) {
        if options.background.is_some() {
            return Err(ImportError::Features(
                "--background is for ONNX graphs, which KernelSHAP explains against it; \
                 XGBoost and LightGBM trees are explained exactly from their node covers"
                    .to_string(),
            ));
        }
        return boosted::import(options, &bytes, kind);
    }
    if let Err(error) = graph::Graph::parse(&bytes) {
        return Err(ImportError::NotOnnx {
            path: options.graph.clone(),
            message: format!(
                "{error}; nor is it an XGBoost model (JSON or UBJSON) or a LightGBM text \
                 model. An XGBoost file in the legacy binary format: load it in XGBoost and \
                 re-save it with booster.save_model(\"model.json\"); a pickle: save the \
                 library's own file the same way"
            ),
        });
    }
    import_onnx(options)
}

/// Imports an ONNX graph as the next version of `options.name`.
pub fn import_onnx(options: &ImportOptions) -> Result<Imported, ImportError> {
    validate_model_name(&options.name)?;
    let path = &options.graph;
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: path.clone(),
        source,
    })?;
    let not_onnx = |message: String| ImportError::NotOnnx {
        path: path.clone(),
        message,
    };
    // Is it ONNX at all? (ONNX Runtime's own message for a file that is not is less clear.)
    let graph = graph::Graph::parse(&bytes).map_err(not_onnx)?;
    let unrunnable = |message: String| ImportError::Unrunnable {
        path: path.clone(),
        message,
    };
    let model = OnnxModel::from_bytes(
        path,
        &bytes,
        options.onnxruntime.as_deref(),
        1,
        options.task,
    )
    .map_err(|error| unrunnable(error.to_string()))?;
    let graph_inputs = model.signature().inputs.clone();
    let widths: HashMap<String, usize> = graph_inputs
        .iter()
        .filter_map(|input| Some((input.name.clone(), input.width?)))
        .collect();
    let facts = graph.facts(&widths);
    let task = model.signature().task;
    // What the graph does decides which flags apply: checked before the features.
    let labels = match task {
        Task::Classification => labels(&facts, options.labels.as_deref())?,
        Task::Regression if options.labels.is_some() => {
            return Err(ImportError::Labels(
                "the graph predicts a number: --labels is for classifiers".to_string(),
            ));
        }
        Task::Regression => Vec::new(),
    };
    let (mut names, sample) = feature_names(&options.features)?;
    let mut target = target_of(options, task, &sample)?;
    if let (Some(column), Some(names)) = (&options.target, names.as_mut()) {
        names.retain(|name| name != column);
    }
    let binding = bind_names(&graph_inputs, names)?;
    let features = feature_schemas(&graph_inputs, &binding, &facts, &sample)?;
    let created_at = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::now())
        .to_string();
    let manifest_for = |version: u32, target: &Option<crate::model::TargetSchema>| Manifest {
        format: 1,
        name: options.name.clone(),
        version,
        task,
        backend: Backend::Onnx,
        created_at: created_at.clone(),
        labels: labels.clone(),
        artifact: ArtifactInfo {
            file: String::new(),
            sha256: String::new(),
            background_sha256: None,
        },
        training: None,
        imported: Some(ImportProvenance {
            source: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            ),
            source_sha256: format!("{:x}", Sha256::digest(&bytes)),
            producer: facts.producer.clone(),
            opsets: facts.opsets.clone(),
            mlserve_version: env!("CARGO_PKG_VERSION").to_string(),
        }),
        metrics: None,
        target: target.clone(),
        onnx: Some(binding.clone()),
        prediction_log: None,
        features: features.clone(),
    };
    // The same check the server makes at load: the binding fits and the example row scores.
    let runner = OnnxRunner::bind(model, &manifest_for(1, &target)).map_err(unrunnable)?;
    if let Some(target) = target.as_mut() {
        target.predictions = target::prediction_baseline(&features, &sample, |rows| {
            target::graph_values(&runner, rows)
        });
    }
    let evaluated = evaluated(
        options,
        manifest_for(1, &target),
        crate::model::Model::Onnx(std::sync::Arc::new(runner)),
    )?;
    let background = match &options.background {
        Some(path) => Some(background::read_background(path, &features)?),
        None => None,
    };
    let (version, dir) = write_new_version(&options.models, &options.name, |version| {
        let manifest = with_metrics(manifest_for(version, &target), evaluated.as_ref());
        let kept = crate::train::with_background(Vec::new(), background.as_ref(), &features);
        ArtifactFiles {
            extra: extra_files(&manifest, evaluated.as_ref(), kept),
            manifest,
            model: ModelFile::Onnx(bytes.clone()),
        }
    })?;
    Ok(Imported {
        version,
        manifest: with_metrics(manifest_for(version, &target), evaluated.as_ref()),
        dir,
    })
}

/// The evaluation on `--test-data`, when given, of the model `manifest` describes.
fn evaluated(
    options: &ImportOptions,
    manifest: Manifest,
    model: crate::model::Model,
) -> Result<Option<evaluate::Evaluated>, ImportError> {
    let (Some(path), Some(target)) = (&options.test_data, &options.target) else {
        return Ok(None);
    };
    let loaded = crate::model::LoadedModel {
        validator: crate::model::Validator::new(&manifest.features),
        version_label: manifest.version.to_string(),
        artifact: crate::model::Artifact {
            manifest,
            model,
            dir: options.models.clone(),
        },
        counters: Default::default(),
        explainer: Default::default(),
    };
    evaluate::evaluate(&loaded, path, target).map(Some)
}

/// `manifest` with the held-out metrics of `evaluated`, if any.
fn with_metrics(mut manifest: Manifest, evaluated: Option<&evaluate::Evaluated>) -> Manifest {
    manifest.metrics = evaluated.map(evaluate::Evaluated::summary);
    manifest
}

/// The files beside an imported model: `kept` (the source file), metrics.json when it was
/// evaluated, and the card.
fn extra_files(
    manifest: &Manifest,
    evaluated: Option<&evaluate::Evaluated>,
    mut kept: Vec<(&'static str, Vec<u8>)>,
) -> Vec<(&'static str, Vec<u8>)> {
    let card = match evaluated {
        Some(evaluated) => {
            kept.push(("metrics.json", evaluated.json()));
            evaluated.card(manifest)
        }
        None => crate::train::report::model_card(manifest, None),
    };
    kept.push(("report.html", card.into_bytes()));
    kept
}

use sample::{Sample, add_statistics, default_example, read_sample, set_examples_from_sample};

/// The `[target]` of a model that predicts a number, from `--target` and the training CSV;
/// none for a classifier (its target column is only left out of the features).
///
/// Errors: `--target` with neither `--training-data` nor `--test-data` to find it in.
fn target_of(
    options: &ImportOptions,
    task: Task,
    sample: &Sample,
) -> Result<Option<crate::model::TargetSchema>, ImportError> {
    let Some(column) = &options.target else {
        return Ok(None);
    };
    match (&options.features, task) {
        (FeatureNames::Csv(path), Task::Regression) => {
            target::target_from_csv(column, path, sample).map(Some)
        }
        (FeatureNames::Csv(path), Task::Classification) if !sample.contains_key(column) => {
            Err(ImportError::Features(format!(
                "{}: --target names '{column}', which is not a column of its header",
                path.display()
            )))
        }
        (FeatureNames::Csv(_), Task::Classification) => Ok(None),
        _ if options.test_data.is_some() => Ok(None),
        _ => Err(ImportError::Features(format!(
            "--target {column} names a column of --training-data or --test-data CSV, and \
             neither was given"
        ))),
    }
}

/// The feature names given, and the CSV's rows by column when a CSV gave them.
fn feature_names(source: &FeatureNames) -> Result<(Option<Vec<String>>, Sample), ImportError> {
    match source {
        FeatureNames::FromGraph => Ok((None, Sample::new())),
        FeatureNames::Given(names) => Ok((Some(names.clone()), Sample::new())),
        FeatureNames::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
                path: path.clone(),
                source,
            })?;
            let names: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_string)
                .collect();
            if names.is_empty() {
                return Err(ImportError::Features(format!(
                    "{}: no feature names (one a line)",
                    path.display()
                )));
            }
            Ok((Some(names), Sample::new()))
        }
        FeatureNames::Csv(path) => read_sample(path).map(|(names, sample)| (Some(names), sample)),
    }
}

/// Binds feature names to the graph inputs: by name when every input is one column and the
/// names include them all (other CSV columns, such as the target, are left out), else in
/// order across the inputs' columns.
fn bind_names(
    inputs: &[GraphInput],
    names: Option<Vec<String>>,
) -> Result<OnnxBinding, ImportError> {
    let one_column_each = inputs.iter().all(|i| i.width == Some(1));
    let Some(names) = names else {
        if one_column_each {
            return Ok(column_per_input(inputs));
        }
        return Err(ImportError::Features(format!(
            "the graph's inputs ({}) take several columns each: name the features with --features FILE or --training-data CSV",
            describe_inputs(inputs)
        )));
    };
    let mut seen = std::collections::BTreeSet::new();
    if let Some(repeated) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(ImportError::Features(format!(
            "feature '{repeated}' is named twice"
        )));
    }
    if one_column_each && inputs.iter().all(|i| names.contains(&i.name)) {
        return Ok(column_per_input(inputs));
    }
    let widths: Option<Vec<usize>> = inputs.iter().map(|i| i.width).collect();
    let Some(widths) = widths else {
        return Err(ImportError::Features(format!(
            "the graph's inputs ({}) have no fixed column count, so the features cannot be matched to them",
            describe_inputs(inputs)
        )));
    };
    let total: usize = widths.iter().sum();
    if total != names.len() {
        let missing: Vec<&str> = inputs
            .iter()
            .map(|i| i.name.as_str())
            .filter(|name| !names.iter().any(|n| n == name))
            .collect();
        let hint = if one_column_each {
            format!(
                "; the graph's inputs are named {}, and {} of them are not among the names given",
                describe_inputs(inputs),
                missing.join(", ")
            )
        } else {
            String::new()
        };
        return Err(ImportError::Features(format!(
            "the graph takes {total} columns ({}), but {} feature names were given{hint}",
            describe_inputs(inputs),
            names.len()
        )));
    }
    let mut names = names.into_iter();
    Ok(OnnxBinding {
        inputs: inputs
            .iter()
            .zip(widths)
            .map(|(input, width)| OnnxInput {
                name: input.name.clone(),
                features: names.by_ref().take(width).collect(),
            })
            .collect(),
    })
}

/// Each graph input takes the feature of its own name.
fn column_per_input(inputs: &[GraphInput]) -> OnnxBinding {
    OnnxBinding {
        inputs: inputs
            .iter()
            .map(|i| OnnxInput {
                name: i.name.clone(),
                features: vec![i.name.clone()],
            })
            .collect(),
    }
}

fn describe_inputs(inputs: &[GraphInput]) -> String {
    inputs
        .iter()
        .map(|i| {
            let kind = match i.kind {
                InputKind::Float => "float",
                InputKind::Double => "double",
                InputKind::Int64 => "int64",
                InputKind::Text => "string",
            };
            let width = i.width.map_or("?".to_string(), |w| w.to_string());
            format!("{} {kind}[N, {width}]", i.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The schema of every bound feature, in binding order.
fn feature_schemas(
    inputs: &[GraphInput],
    binding: &OnnxBinding,
    facts: &GraphFacts,
    sample: &Sample,
) -> Result<Vec<FeatureSchema>, ImportError> {
    let mut features = Vec::new();
    for (input, bound) in inputs.iter().zip(&binding.inputs) {
        for (column, name) in bound.features.iter().enumerate() {
            // Each column has its own encoder's categories, one input per column or many.
            let categories = match input.kind {
                InputKind::Text => facts.categories.get(&(input.name.clone(), column)).cloned(),
                _ => None,
            };
            let kind = match (input.kind, &categories) {
                (InputKind::Text, Some(_)) => ColumnKind::Categorical,
                (InputKind::Text, None) => ColumnKind::String,
                (InputKind::Int64, _) => ColumnKind::Integer,
                (InputKind::Float | InputKind::Double, _) => ColumnKind::Number,
            };
            let imputed_value = facts.imputed(&input.name, column);
            let mut feature = FeatureSchema::new(
                name.clone(),
                kind,
                default_example(kind, categories.as_deref(), imputed_value),
            );
            feature.nullable = imputed_value.is_some() && kind == ColumnKind::Number;
            feature.categories = categories;
            if let Some(cells) = sample.get(name) {
                add_statistics(&mut feature, cells)?;
            }
            features.push(feature);
        }
    }
    set_examples_from_sample(&mut features, sample);
    Ok(features)
}

/// `--labels` trimmed, each one named once and none empty.
fn checked_labels(given: &[String]) -> Result<Vec<String>, ImportError> {
    let given: Vec<String> = given.iter().map(|l| l.trim().to_string()).collect();
    let mut seen = std::collections::BTreeSet::new();
    if let Some(repeated) = given.iter().find(|l| !seen.insert(l.as_str())) {
        return Err(ImportError::Labels(format!(
            "label '{repeated}' is given twice in --labels"
        )));
    }
    if given.iter().any(String::is_empty) {
        return Err(ImportError::Labels(
            "--labels has an empty label".to_string(),
        ));
    }
    Ok(given)
}

/// The class labels: the graph's, renamed by `--labels` when given.
fn labels(facts: &GraphFacts, given: Option<&[String]>) -> Result<Vec<String>, ImportError> {
    match (given, &facts.labels) {
        (Some(given), Some(graph)) if given.len() != graph.len() => Err(ImportError::Labels(
            format!(
                "--labels names {} classes, but the graph has {} ({})",
                given.len(),
                graph.len(),
                graph.join(", ")
            ),
        )),
        (Some(given), _) => checked_labels(given),
        (None, Some(graph)) => Ok(graph.clone()),
        (None, None) => Err(ImportError::Labels(
            "the graph does not name its classes (it has no ZipMap or classifier node that lists them): give them, in the order of the classifier's classes, with --labels a,b,c".to_string(),
        )),
    }
}
