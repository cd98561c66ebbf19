//! Histogram binning for gradient boosting, as scikit-learn's `_BinMapper` does it: each
//! numeric feature is cut into at most `max_bins` bins at thresholds between distinct training
//! values (midpoints when there are few enough distinct values, quantiles otherwise), each
//! category is its own bin, and missing values have a bin of their own.
//!
//! Thresholds are f32 and a value goes below a threshold when `(x as f32) < t`: XGBoost's
//! comparison, which the served trees make (`model::boosted::tree`), so a training row is
//! binned exactly as the served model routes it.

use crate::data::{ColumnValues, Dataset};

/// The bin of a missing value.
pub const MISSING_BIN: u8 = u8::MAX;

/// How one feature's values are binned.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureBins {
    /// A number: bin `b` holds `t[b-1] <= x < t[b]` (as f32), with `thresholds.len() + 1` bins.
    Numeric {
        /// Ascending f32 cut points.
        thresholds: Vec<f32>,
    },
    /// A category: bin `c` is the category of code `c` (`categories` of them).
    Categorical {
        /// The categories, sorted; a category's code is its position.
        categories: Vec<String>,
    },
}

impl FeatureBins {
    /// Bins of present values (the missing bin not counted).
    pub fn bins(&self) -> usize {
        match self {
            FeatureBins::Numeric { thresholds } => thresholds.len() + 1,
            FeatureBins::Categorical { categories } => categories.len(),
        }
    }

    /// The bin of a value as the trees read it (NaN for missing, a category as its code).
    pub fn bin_of(&self, x: f64) -> u8 {
        if x.is_nan() {
            return MISSING_BIN;
        }
        match self {
            FeatureBins::Numeric { thresholds } => {
                let x = x as f32;
                thresholds.partition_point(|&t| t <= x) as u8
            }
            // Codes are below the number of categories, at most 254.
            FeatureBins::Categorical { .. } => x as u8,
        }
    }
}

/// Dataset rows as the trees read them: per feature (column-major), one number per row, NaN
/// for missing, a category as its code among the training categories (an unseen one missing).
#[derive(Debug, Clone)]
pub struct RawColumns {
    /// `columns[f][i]` is feature `f` of row `i`.
    pub columns: Vec<Vec<f64>>,
}

impl RawColumns {
    /// The rows `rows` of `data`, categories coded by `bins`.
    pub fn of(data: &Dataset, rows: &[usize], bins: &[FeatureBins]) -> RawColumns {
        let columns = data
            .columns
            .iter()
            .zip(bins)
            .map(|(column, feature)| match (&column.values, feature) {
                (ColumnValues::Numeric(values), _) => rows.iter().map(|&r| values[r]).collect(),
                (ColumnValues::Text(values), FeatureBins::Categorical { categories }) => rows
                    .iter()
                    .map(|&r| code_of(categories, &values[r]))
                    .collect(),
                (ColumnValues::Text(_), FeatureBins::Numeric { .. }) => vec![f64::NAN; rows.len()],
            })
            .collect();
        RawColumns { columns }
    }

    /// Row `i`, one value per feature.
    pub fn row(&self, i: usize) -> Vec<f64> {
        self.columns.iter().map(|column| column[i]).collect()
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }
}

fn code_of(categories: &[String], value: &str) -> f64 {
    categories
        .binary_search_by(|c| c.as_str().cmp(value))
        .map_or(f64::NAN, |code| code as f64)
}

/// Learns each feature's bins from the training rows.
///
/// Errors: a categorical feature with more categories than `max_bins` (named, as scikit-learn
/// refuses it).
pub fn fit_bins(
    data: &Dataset,
    rows: &[usize],
    max_bins: usize,
) -> Result<Vec<FeatureBins>, String> {
    data.columns
        .iter()
        .map(|column| match &column.values {
            ColumnValues::Numeric(values) => {
                let present: Vec<f32> = rows
                    .iter()
                    .map(|&r| values[r])
                    .filter(|x| !x.is_nan())
                    .map(|x| x as f32)
                    .collect();
                Ok(FeatureBins::Numeric {
                    thresholds: thresholds_of(present, max_bins),
                })
            }
            ColumnValues::Text(values) => {
                let mut categories: Vec<String> = rows
                    .iter()
                    .map(|&r| values[r].clone())
                    .filter(|v| !v.is_empty())
                    .collect();
                categories.sort();
                categories.dedup();
                if categories.len() > max_bins {
                    return Err(format!(
                        "feature '{}' has {} categories; gradient-boosting takes at most \
                         --max-bins ({max_bins}) per feature",
                        column.name,
                        categories.len()
                    ));
                }
                Ok(FeatureBins::Categorical { categories })
            }
        })
        .collect()
}

/// Cut points between distinct values: one between each pair when there are at most
/// `max_bins` distinct values, otherwise at `max_bins − 1` quantiles of the values.
fn thresholds_of(mut values: Vec<f32>, max_bins: usize) -> Vec<f32> {
    values.sort_by(f32::total_cmp);
    let mut distinct = values.clone();
    distinct.dedup();
    let mut thresholds: Vec<f32> = if distinct.len() <= max_bins {
        distinct.windows(2).map(|w| between(w[0], w[1])).collect()
    } else {
        (1..max_bins)
            .filter_map(|k| {
                let value = values[k * values.len() / max_bins];
                let position = distinct.partition_point(|&d| d < value);
                (position > 0).then(|| between(distinct[position - 1], distinct[position]))
            })
            .collect()
    };
    thresholds.dedup();
    thresholds
}

/// A cut point `t` with `a < t <= b` in f32, so `a` goes below it and `b` does not.
fn between(a: f32, b: f32) -> f32 {
    let middle = ((f64::from(a) + f64::from(b)) / 2.0) as f32;
    if middle <= a { b } else { middle }
}

/// Every training row's bin per feature, column-major: `bins[f * rows + i]`.
#[derive(Debug, Clone)]
pub struct BinnedRows {
    /// The bins.
    pub bins: Vec<u8>,
    /// Number of rows.
    pub rows: usize,
}

impl BinnedRows {
    /// Bins `raw` with `features`.
    pub fn of(raw: &RawColumns, features: &[FeatureBins]) -> BinnedRows {
        let rows = raw.rows();
        let mut bins = Vec::with_capacity(rows * features.len());
        for (column, feature) in raw.columns.iter().zip(features) {
            bins.extend(column.iter().map(|&x| feature.bin_of(x)));
        }
        BinnedRows { bins, rows }
    }

    /// Feature `f`'s bins, one per row.
    pub fn column(&self, f: usize) -> &[u8] {
        &self.bins[f * self.rows..(f + 1) * self.rows]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_are_cut_between_each_pair() {
        let t = thresholds_of(vec![3.0, 1.0, 2.0, 2.0, 1.0], 255);
        assert_eq!(t, vec![1.5, 2.5]);
        let bins = FeatureBins::Numeric { thresholds: t };
        assert_eq!(
            [1.0, 2.0, 3.0, f64::NAN].map(|x| bins.bin_of(x)),
            [0, 1, 2, MISSING_BIN]
        );
    }

    #[test]
    fn many_distinct_values_are_cut_at_quantiles() {
        let values: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let t = thresholds_of(values, 4);
        assert_eq!(t, vec![249.5, 499.5, 749.5]);
    }

    #[test]
    fn adjacent_floats_keep_the_lower_below_the_cut() {
        let a = 1.0f32;
        let b = f32::from_bits(a.to_bits() + 1);
        let t = between(a, b);
        assert!(a < t && t <= b);
    }
}
