//! `mlserve import … --background CSV`: rows standing for the training data, which KernelSHAP
//! explains an imported graph's predictions against (written as the version's
//! `background.json`; see `model::explain::background`). Up to 100 rows are kept as they are,
//! with equal weights; more are summarised by k-means over the features standardized by the
//! schema's training statistics (categories one-hot).

use super::ImportError;
use super::sample::read_csv;
use crate::data::ColumnKind;
use crate::model::explain::background::{Background, summarize};
use crate::model::native::FeatureValue;
use crate::model::{FeatureSchema, RawValue, UnknownFields, Validator};
use std::path::Path;

/// Most rows a background CSV may have: more would only be summarised, slowly.
const MAX_BACKGROUND_ROWS: usize = 100_000;

/// The background set of the CSV at `path`, each row validated against `features`.
///
/// Errors, naming the file and line: a missing feature column, a row the schema refuses, no
/// rows, more than 100,000.
pub fn read_background(path: &Path, features: &[FeatureSchema]) -> Result<Background, ImportError> {
    let (csv, more) = read_csv(path, MAX_BACKGROUND_ROWS)?;
    if more {
        return Err(ImportError::Features(format!(
            "{}: more than {MAX_BACKGROUND_ROWS} rows; a background set needs a few hundred \
             rows standing for the training data",
            path.display()
        )));
    }
    let missing: Vec<&str> = features
        .iter()
        .map(|f| f.name.as_str())
        .filter(|name| !csv.header.iter().any(|h| h == name))
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::Features(format!(
            "{}: --background needs the features' columns; it has no {}",
            path.display(),
            missing.join(", ")
        )));
    }
    let validator = Validator::new(features);
    let count = features
        .first()
        .and_then(|f| csv.sample.get(&f.name))
        .map_or(0, Vec::len);
    let mut rows = Vec::with_capacity(count);
    for row in 0..count {
        let cells = features.iter().filter_map(|feature| {
            let cell = csv.sample.get(&feature.name)?.get(row)?;
            Some((feature.name.as_str(), RawValue::Text(cell)))
        });
        let mut errors = Vec::new();
        match validator.validate(cells, UnknownFields::Ignore, "", &mut errors) {
            Some(valid) => rows.push(valid.values),
            None => {
                let line = csv.lines.get(row).copied().unwrap_or(0);
                let first = errors.first();
                return Err(ImportError::Features(format!(
                    "{}:{line}: column '{}': {}",
                    path.display(),
                    first.map_or("", |e| e.field.as_str()),
                    first.map_or("refused", |e| e.message.as_str())
                )));
            }
        }
    }
    let mut background =
        summarize(&rows, |row| Some(encode(features, row)), 0).ok_or_else(|| {
            ImportError::Features(format!(
                "{}: no rows for the background set",
                path.display()
            ))
        })?;
    background.source = format!(
        "{} ({})",
        background.source.replace("training rows", "rows"),
        path.display()
    );
    Ok(background)
}

/// A row as k-means compares rows: numbers standardized by the schema's training mean and
/// standard deviation (missing as the mean), categories one-hot, text left out.
fn encode(features: &[FeatureSchema], row: &[FeatureValue]) -> Vec<f64> {
    let mut out = Vec::new();
    for (feature, value) in features.iter().zip(row) {
        match (feature.kind, value) {
            (ColumnKind::Categorical, value) => {
                for category in feature.categories.iter().flatten() {
                    out.push(f64::from(
                        matches!(value, FeatureValue::Category(c) if c == category),
                    ));
                }
            }
            (_, FeatureValue::Number(x)) => {
                let mean = feature.mean.unwrap_or(0.0);
                let std = feature.std.filter(|s| *s > 0.0).unwrap_or(1.0);
                out.push((x - mean) / std);
            }
            (ColumnKind::Number | ColumnKind::Integer | ColumnKind::Boolean, _) => out.push(0.0),
            _ => {}
        }
    }
    out
}
