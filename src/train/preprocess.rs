//! Fitting the preprocessing (one-hot encoding and standardization) on training rows, and
//! turning dataset rows into the dense matrix the algorithms take.

use crate::data::{ColumnValues, Dataset};
use crate::model::FeatureValue;
use crate::model::native::{InputEncoding, Preprocessor};
use std::collections::BTreeSet;

/// A dense row-major matrix of preprocessed rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows × cols` values, row after row.
    pub data: Vec<f64>,
}

impl Matrix {
    /// One row.
    pub fn row(&self, index: usize) -> &[f64] {
        &self.data[index * self.cols..(index + 1) * self.cols]
    }

    /// The matrix made of the given rows.
    pub fn select(&self, rows: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(rows.len() * self.cols);
        for &row in rows {
            data.extend_from_slice(self.row(row));
        }
        Matrix {
            rows: rows.len(),
            cols: self.cols,
            data,
        }
    }
}

/// The raw feature values of one dataset row, as a served request would give them.
pub fn raw_row(data: &Dataset, row: usize) -> Vec<FeatureValue> {
    data.columns
        .iter()
        .map(|column| match &column.values {
            ColumnValues::Numeric(values) => FeatureValue::Number(values[row]),
            ColumnValues::Text(values) => FeatureValue::Category(values[row].clone()),
        })
        .collect()
}

/// Learns the categories and column statistics from `rows` only, so nothing of the test split leaks into the model.
pub fn fit_preprocessor(data: &Dataset, rows: &[usize]) -> Preprocessor {
    let inputs: Vec<InputEncoding> = data
        .columns
        .iter()
        .map(|column| match &column.values {
            ColumnValues::Numeric(_) => InputEncoding::Numeric,
            ColumnValues::Text(values) => {
                // An empty text is a missing value (for algorithms that take them), not a category.
                let categories: BTreeSet<&String> = rows
                    .iter()
                    .map(|&row| &values[row])
                    .filter(|value| !value.is_empty())
                    .collect();
                InputEncoding::OneHot(categories.into_iter().cloned().collect())
            }
        })
        .collect();
    let width: usize = inputs.iter().map(InputEncoding::width).sum();
    let unscaled = Preprocessor {
        inputs,
        mean: vec![0.0; width],
        scale: vec![1.0; width],
    };
    let encoded = transform(&unscaled, data, rows);
    let (mean, scale) = column_mean_and_scale(&encoded);
    Preprocessor {
        mean,
        scale,
        ..unscaled
    }
}

/// Mean and population standard deviation of each column over its present (not NaN)
/// values; a constant column gets scale 1.
fn column_mean_and_scale(matrix: &Matrix) -> (Vec<f64>, Vec<f64>) {
    let mut count = vec![0usize; matrix.cols];
    let mut mean = vec![0.0; matrix.cols];
    for row in 0..matrix.rows {
        for ((sum, n), value) in mean.iter_mut().zip(&mut count).zip(matrix.row(row)) {
            if !value.is_nan() {
                *sum += value;
                *n += 1;
            }
        }
    }
    mean.iter_mut()
        .zip(&count)
        .for_each(|(m, &n)| *m /= n.max(1) as f64);
    let mut variance = vec![0.0; matrix.cols];
    for row in 0..matrix.rows {
        for ((sum, value), m) in variance.iter_mut().zip(matrix.row(row)).zip(&mean) {
            if !value.is_nan() {
                *sum += (value - m) * (value - m);
            }
        }
    }
    let scale = variance
        .iter()
        .zip(&count)
        .map(|(v, &n)| {
            let std = (v / n.max(1) as f64).sqrt();
            if std > 1e-12 * (1.0 + std) && std.is_finite() {
                std
            } else {
                1.0
            }
        })
        .collect();
    (mean, scale)
}

/// Encodes and standardizes the given dataset rows.
pub fn transform(preprocessor: &Preprocessor, data: &Dataset, rows: &[usize]) -> Matrix {
    let cols = preprocessor.width();
    let mut matrix = Vec::with_capacity(rows.len() * cols);
    for &row in rows {
        // Dataset columns always match the preprocessor fitted on them.
        if let Err(error) = preprocessor.encode_into(&raw_row(data, row), &mut matrix) {
            unreachable!("preprocessor fitted on this dataset refused a row: {error}");
        }
    }
    Matrix {
        rows: rows.len(),
        cols,
        data: matrix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Column, ColumnKind};

    fn dataset() -> Dataset {
        Dataset {
            source: "test".into(),
            sha256: String::new(),
            columns: vec![
                Column {
                    name: "x".into(),
                    kind: ColumnKind::Number,
                    values: ColumnValues::Numeric(vec![1.0, 3.0, 100.0]),
                },
                Column {
                    name: "c".into(),
                    kind: ColumnKind::Categorical,
                    values: ColumnValues::Text(vec!["b".into(), "a".into(), "zzz".into()]),
                },
            ],
            target_name: "y".into(),
            target: crate::data::Target::Classes {
                classes: vec![0, 1, 0],
                labels: vec!["n".into(), "y".into()],
            },
            task_reason: None,
        }
    }

    #[test]
    fn statistics_and_categories_come_from_training_rows_only() {
        let data = dataset();
        let preprocessor = fit_preprocessor(&data, &[0, 1]);
        assert_eq!(
            preprocessor.inputs[1],
            InputEncoding::OneHot(vec!["a".into(), "b".into()])
        );
        assert_eq!(preprocessor.mean, [2.0, 0.5, 0.5]);
        assert_eq!(preprocessor.scale, [1.0, 0.5, 0.5]);
        let test = transform(&preprocessor, &data, &[2]);
        // The unseen category encodes as all zeros before scaling.
        assert_eq!(test.data, [98.0, -1.0, -1.0]);
    }
}
