//! `mlserve import` of gradient-boosted trees: an XGBoost model saved as JSON or UBJSON, or a
//! LightGBM text model, read into mlserve's tree form ([`crate::model::boosted`]) and written
//! as a new version with the file kept beside it (`source.json`, `.ubj`, `.txt`). Every feature
//! is nullable: the trees route missing values as the library does.

use super::sample::{Sample, add_statistics, set_examples_from_sample};
use super::{FeatureNames, ImportError, ImportOptions, Imported};
use crate::data::ColumnKind;
use crate::model::boosted::BoostedTrees;
use crate::model::{
    ArtifactFiles, ArtifactInfo, Backend, ExampleValue, FeatureSchema, ImportProvenance, Manifest,
    ModelFile, Task, write_new_version,
};
use sha2::{Digest, Sha256};

/// What kind of model file the bytes are, told by their content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// XGBoost `save_model` as JSON.
    XgboostJson,
    /// XGBoost `save_model` as UBJSON (`.ubj`).
    XgboostUbj,
    /// LightGBM `save_model` text.
    LightGbm,
}

/// The boosted-tree file kind of `bytes`, if they are one.
pub fn kind_of(bytes: &[u8]) -> Option<FileKind> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let head = &bytes[start..bytes.len().min(start + 64)];
    if head.starts_with(b"{L") {
        Some(FileKind::XgboostUbj)
    } else if head.starts_with(b"{") && bytes.windows(9).take(4096).any(|w| w == b"\"learner\"") {
        Some(FileKind::XgboostJson)
    } else if head.starts_with(b"tree\n") || head.starts_with(b"tree\r\n") {
        Some(FileKind::LightGbm)
    } else {
        None
    }
}

/// Imports a boosted-tree file of `kind` as the next version of `options.name`.
pub fn import(
    options: &ImportOptions,
    bytes: &[u8],
    kind: FileKind,
) -> Result<Imported, ImportError> {
    let refused = |message: String| ImportError::Unreadable {
        path: options.graph.clone(),
        message,
    };
    let (model, names, types, producer) = match kind {
        FileKind::XgboostJson | FileKind::XgboostUbj => {
            let (document, format) = if kind == FileKind::XgboostJson {
                let document: serde_json::Value = serde_json::from_slice(bytes)
                    .map_err(|e| refused(format!("not valid JSON: {e}")))?;
                (document, "JSON")
            } else {
                let document = super::ubjson::parse(bytes)
                    .map_err(|e| refused(format!("not valid UBJSON: {e}")))?;
                (document, "UBJSON")
            };
            let read = super::xgboost::read(&document, options.all_trees).map_err(refused)?;
            let version: Vec<String> = document["version"]
                .as_array()
                .map(|v| v.iter().map(|n| n.to_string()).collect())
                .unwrap_or_default();
            let producer = format!("xgboost {} ({format})", version.join("."));
            (read.trees, read.feature_names, read.feature_types, producer)
        }
        FileKind::LightGbm => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| refused("a LightGBM model is text, and this is not UTF-8".into()))?;
            let read = super::lightgbm::read(text).map_err(refused)?;
            let version = text
                .lines()
                .find_map(|l| l.strip_prefix("version="))
                .unwrap_or("?");
            (
                read.trees,
                read.feature_names,
                Vec::new(),
                format!("lightgbm (model {version})"),
            )
        }
    };
    // The served form: the baseline and the evaluation below score through it.
    let model = model.compiled();
    let task = if model.link.classifies() {
        Task::Classification
    } else {
        Task::Regression
    };
    let labels = labels_of(&model, options.labels.as_deref())?;
    let (names, sample) = feature_names(&model, names, options)?;
    let mut features = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let categories = model.category_codes.get(index).and_then(Option::as_ref);
        features.push(feature_schema(
            name,
            types.get(index).map(String::as_str),
            categories.map(|codes| codes.iter().map(|(name, _)| name.clone()).collect()),
            &sample,
        )?);
    }
    set_examples_from_sample(&mut features, &sample);
    let mut target = super::target_of(options, task, &sample)?;
    if let Some(target) = target.as_mut() {
        target.predictions = super::target::prediction_baseline(&features, &sample, |rows| {
            let rows: Vec<Vec<f64>> = rows.iter().map(|row| model.row(row)).collect();
            let answers = model.predict_rows(&rows);
            answers.iter().filter_map(|a| a.first().copied()).collect()
        });
    }
    let iterations = model.source.iterations;
    let manifest_for = |version: u32| Manifest {
        format: 1,
        name: options.name.clone(),
        version,
        task,
        backend: Backend::Boosted,
        created_at: jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or(jiff::Timestamp::now())
            .to_string(),
        labels: labels.clone(),
        artifact: ArtifactInfo {
            file: String::new(),
            sha256: String::new(),
            background_sha256: None,
        },
        training: None,
        imported: Some(ImportProvenance {
            source: options.graph.file_name().map_or_else(
                || options.graph.display().to_string(),
                |n| n.to_string_lossy().into(),
            ),
            source_sha256: format!("{:x}", Sha256::digest(bytes)),
            producer: producer.clone(),
            opsets: format!(
                "objective {}; {} of {} iterations",
                model.source.objective, iterations.0, iterations.1
            ),
            mlserve_version: env!("CARGO_PKG_VERSION").to_string(),
        }),
        metrics: None,
        target: target.clone(),
        onnx: None,
        prediction_log: None,
        features: features.clone(),
    };
    model.check_against(&manifest_for(1)).map_err(refused)?;
    let evaluated = super::evaluated(
        options,
        manifest_for(1),
        crate::model::Model::Boosted(model.clone()),
    )?;
    let (version, dir) = write_new_version(&options.models, &options.name, |version| {
        let manifest = super::with_metrics(manifest_for(version), evaluated.as_ref());
        ArtifactFiles {
            extra: super::extra_files(
                &manifest,
                evaluated.as_ref(),
                vec![(source_name(kind), bytes.to_vec())],
            ),
            manifest,
            model: ModelFile::Boosted(model.clone()),
        }
    })?;
    Ok(Imported {
        version,
        manifest: super::with_metrics(manifest_for(version), evaluated.as_ref()),
        dir,
    })
}

/// The name the original file is kept under in the version folder.
fn source_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::XgboostJson => "source.json",
        FileKind::XgboostUbj => "source.ubj",
        FileKind::LightGbm => "source.txt",
    }
}

/// Class labels: `--labels` (one per class, in class order) or `0 … K−1`, as the library's
/// scikit-learn wrapper numbers them; none for a regressor.
fn labels_of(model: &BoostedTrees, given: Option<&[String]>) -> Result<Vec<String>, ImportError> {
    let classes = model.classes();
    match given {
        Some(_) if classes == 0 => Err(ImportError::Labels(
            "the model predicts a number: --labels is for classifiers".to_string(),
        )),
        Some(given) if given.len() != classes => Err(ImportError::Labels(format!(
            "--labels names {} classes, but the model has {classes}",
            given.len()
        ))),
        Some(given) => super::checked_labels(given),
        None => Ok((0..classes).map(|c| c.to_string()).collect()),
    }
}

/// The features' names: `--features FILE`, the header of `--training-data CSV`, or the
/// file's own; `f0, f1, …` (XGBoost's names) when none says. With their CSV rows, if any.
///
/// A CSV header names the features in order when the file names none of its columns (a
/// model trained from arrays: XGBoost keeps no names, LightGBM `Column_0, …`); when the file
/// names its features, the header must have them all, and its other columns (the target
/// among them) are left out. A header with some of the file's names but not all is refused:
/// reading it in order would feed features from the wrong columns.
fn feature_names(
    model: &BoostedTrees,
    from_file: Vec<String>,
    options: &ImportOptions,
) -> Result<(Vec<String>, Sample), ImportError> {
    let wanted = model.features;
    let given = &options.features;
    if let Some(target) = options.target.as_ref().filter(|t| from_file.contains(t)) {
        return Err(ImportError::Features(format!(
            "--target {target} is one of the model's features; name the column that holds what \
             it predicts"
        )));
    }
    let (given_names, sample) = super::feature_names(given)?;
    let names = match (given_names, given) {
        (Some(header), FeatureNames::Csv(path)) => {
            let header: Vec<String> = header
                .into_iter()
                .filter(|name| Some(name) != options.target.as_ref())
                .collect();
            let absent: Vec<&str> = from_file
                .iter()
                .filter(|name| !header.contains(name))
                .map(String::as_str)
                .collect();
            if absent.is_empty() && !from_file.is_empty() {
                from_file
            } else if absent.len() == from_file.len() {
                header
            } else {
                return Err(ImportError::Features(format!(
                    "{}: the model names its features, and the header lacks {}; give every \
                     one a column, or name them in order with --features FILE",
                    path.display(),
                    absent.join(", ")
                )));
            }
        }
        (Some(names), _) => names,
        (None, _) => from_file,
    };
    let names = if names.is_empty() {
        (0..wanted).map(|i| format!("f{i}")).collect()
    } else {
        names
    };
    if names.len() != wanted {
        return Err(ImportError::Features(format!(
            "the model reads {wanted} features, but {} names were given",
            names.len()
        )));
    }
    Ok((names, sample))
}

/// One feature's schema: categorical with its categories, or its type from the file (`int` a
/// whole number, `i` an indicator, anything else a number); nullable, with the CSV's
/// statistics when there are some.
fn feature_schema(
    name: &str,
    file_type: Option<&str>,
    categories: Option<Vec<String>>,
    sample: &Sample,
) -> Result<FeatureSchema, ImportError> {
    let (kind, example) = match file_type {
        _ if categories.is_some() => (
            ColumnKind::Categorical,
            ExampleValue::Text(
                categories
                    .as_ref()
                    .and_then(|c| c.first().cloned())
                    .unwrap_or_default(),
            ),
        ),
        // A categorical feature whose names the file does not keep (trained from numpy codes,
        // or saved before XGBoost 3.1): clients send the codes.
        Some("int" | "c") => (ColumnKind::Integer, ExampleValue::Integer(0)),
        Some("i") => (ColumnKind::Boolean, ExampleValue::Bool(false)),
        _ => (ColumnKind::Number, ExampleValue::Number(0.0)),
    };
    let mut feature = FeatureSchema::new(name, kind, example);
    feature.nullable = true;
    feature.categories = categories;
    if let Some(cells) = sample.get(name) {
        add_statistics(&mut feature, cells)?;
    }
    Ok(feature)
}
