//! How the UI writes numbers: metrics, values in a target's unit, a version's held-out quality.

use crate::model::{HeldOutMetrics, Manifest};

/// A metric in [0, 1] or near it (accuracy, R²), to three decimals.
pub(super) fn format_metric(value: f64) -> String {
    format!("{value:.3}")
}

/// A version's held-out quality in a few words: accuracy and ROC AUC for a classifier, R² and
/// RMSE for a regressor; `None` when it was not evaluated (an import).
pub(super) fn held_out_quality(manifest: &Manifest) -> Option<String> {
    match manifest.metrics.as_ref()? {
        HeldOutMetrics::Classification(m) => Some(match m.roc_auc {
            Some(auc) => format!(
                "accuracy {} · ROC AUC {}",
                format_metric(m.accuracy),
                format_metric(auc)
            ),
            None => format!("accuracy {}", format_metric(m.accuracy)),
        }),
        HeldOutMetrics::Regression(m) => Some(format!(
            "R² {} · RMSE {}",
            format_metric(m.r2),
            format_value(m.rmse)
        )),
    }
}

/// A value with about four significant digits, without exponent for everyday magnitudes.
pub(super) fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-3..1e9).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    let digits = if magnitude == 0.0 {
        0
    } else {
        (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize
    };
    format!("{value:.digits$}")
}
