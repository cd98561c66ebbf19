//! The feature schema of a trained model: each feature's type, training statistics and an
//! example value taken from one real, typical training row.

use super::preprocess::transform;
use crate::data::{ColumnKind, ColumnValues, Dataset};
use crate::model::native::{InputEncoding, Preprocessor};
use crate::model::{ExampleValue, FeatureSchema};
use std::collections::BTreeMap;

/// Schemas of every feature, from the training rows.
pub fn feature_schemas(
    data: &Dataset,
    train_rows: &[usize],
    preprocessor: &Preprocessor,
) -> Vec<FeatureSchema> {
    let example_row = most_typical_row(data, train_rows, preprocessor);
    data.columns
        .iter()
        .zip(&preprocessor.inputs)
        .map(|(column, encoding)| {
            let mut schema =
                FeatureSchema::new(column.name.clone(), column.kind, ExampleValue::Number(0.0));
            match (&column.values, encoding) {
                (ColumnValues::Numeric(values), _) => {
                    // Missing values (NaN, for algorithms that take them) are left out.
                    let training: Vec<f64> = train_rows
                        .iter()
                        .map(|&row| values[row])
                        .filter(|value| !value.is_nan())
                        .collect();
                    // A feature missing in every training row has no statistics to give.
                    if !training.is_empty() {
                        let n = training.len() as f64;
                        let mean = training.iter().sum::<f64>() / n;
                        schema.min = training.iter().copied().reduce(f64::min);
                        schema.max = training.iter().copied().reduce(f64::max);
                        schema.mean = Some(mean);
                        schema.std = Some(
                            (training.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt(),
                        );
                    }
                    let example = Some(values[example_row])
                        .filter(|value| !value.is_nan())
                        .unwrap_or(training.get(training.len() / 2).copied().unwrap_or(0.0));
                    schema.example = numeric_example(column.kind, example);
                    if column.kind != ColumnKind::Boolean {
                        schema.baseline = crate::model::Histogram::deciles(&training);
                    }
                }
                (ColumnValues::Text(values), InputEncoding::OneHot(categories)) => {
                    let mut counts: BTreeMap<String, f64> =
                        categories.iter().map(|c| (c.clone(), 0.0)).collect();
                    for &row in train_rows {
                        if let Some(count) = counts.get_mut(&values[row]) {
                            *count += 1.0;
                        }
                    }
                    let n = train_rows.len().max(1) as f64;
                    counts.values_mut().for_each(|count| *count /= n);
                    let example = Some(&values[example_row])
                        .filter(|value| !value.is_empty())
                        .or_else(|| categories.first())
                        .cloned()
                        .unwrap_or_default();
                    schema.categories = Some(categories.clone());
                    schema.frequencies = Some(counts);
                    schema.example = ExampleValue::Text(example);
                }
                (ColumnValues::Text(values), InputEncoding::Numeric) => {
                    schema.example = ExampleValue::Text(values[example_row].clone());
                }
            }
            schema
        })
        .collect()
}

fn numeric_example(kind: ColumnKind, value: f64) -> ExampleValue {
    match kind {
        ColumnKind::Boolean => ExampleValue::Bool(value != 0.0),
        ColumnKind::Integer => ExampleValue::Integer(value as i64),
        _ => ExampleValue::Number(value),
    }
}

/// The training row nearest the centre of the standardized training data: a real combination
/// of values, so the example never pairs values that never occur together.
fn most_typical_row(data: &Dataset, train_rows: &[usize], preprocessor: &Preprocessor) -> usize {
    let x = transform(preprocessor, data, train_rows);
    // A row with a missing value (NaN) is never the most typical.
    let distance = |i: usize| {
        let d = x.row(i).iter().map(|v| v * v).sum::<f64>();
        if d.is_nan() { f64::INFINITY } else { d }
    };
    (0..x.rows)
        .min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
        .map_or(0, |i| train_rows[i])
}
