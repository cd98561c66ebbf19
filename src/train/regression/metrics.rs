//! How well predicted numbers match true ones, as scikit-learn's `sklearn.metrics` computes
//! them: `r2_score`, `root_mean_squared_error`, `mean_absolute_error`,
//! `mean_absolute_percentage_error` and `median_absolute_error`.

pub use crate::model::RegressionMetrics;

impl RegressionMetrics {
    /// The metrics of `predicted` against `actual` (same length, at least one).
    /// Returns `None` when they are empty or of different lengths.
    pub fn of(actual: &[f64], predicted: &[f64]) -> Option<RegressionMetrics> {
        if actual.is_empty() || actual.len() != predicted.len() {
            return None;
        }
        let n = actual.len() as f64;
        let mean = actual.iter().sum::<f64>() / n;
        let total: f64 = actual.iter().map(|y| (y - mean).powi(2)).sum();
        let mut errors: Vec<f64> = actual
            .iter()
            .zip(predicted)
            .map(|(y, p)| (y - p).abs())
            .collect();
        let residual: f64 = errors.iter().map(|e| e * e).sum();
        let r2 = match (total == 0.0, residual == 0.0) {
            (false, _) => 1.0 - residual / total,
            (true, true) => 1.0,
            (true, false) => 0.0,
        };
        let mape = (!actual.contains(&0.0)).then(|| {
            errors
                .iter()
                .zip(actual)
                .map(|(e, y)| e / y.abs())
                .sum::<f64>()
                / n
        });
        let mae = errors.iter().sum::<f64>() / n;
        errors.sort_by(f64::total_cmp);
        let middle = errors.len() / 2;
        let median_absolute_error = if errors.len() % 2 == 1 {
            errors[middle]
        } else {
            (errors[middle - 1] + errors[middle]) / 2.0
        };
        Some(RegressionMetrics {
            r2,
            rmse: (residual / n).sqrt(),
            mae,
            mape,
            median_absolute_error,
        })
    }

    /// Why MAPE is missing, when it is.
    pub fn mape_note(&self) -> Option<&'static str> {
        self.mape
            .is_none()
            .then_some("MAPE is not defined: a true value is 0")
    }
}
