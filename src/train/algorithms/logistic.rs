//! Logistic regression fitted by smartcore's L-BFGS, kept as plain coefficients.

use crate::model::native::Estimator;
use crate::train::TrainError;
use crate::train::preprocess::Matrix;
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};

/// Fits an L2-regularised logistic regression; `c` is scikit-learn's inverse regularisation strength.
///
/// smartcore's `alpha` defaults to 0 (no regularisation) and penalises `alpha/2·|w|²` against
/// the summed log-loss, so `alpha = 1/c` is scikit-learn's objective.
pub fn fit(x: &Matrix, y: &[usize], n_classes: usize, c: f64) -> Result<Estimator, TrainError> {
    let fit_error =
        |error: smartcore::error::Failed| TrainError::Fit(format!("logistic regression: {error}"));
    let matrix = DenseMatrix::new(x.rows, x.cols, x.data.clone(), false).map_err(fit_error)?;
    let classes: Vec<i32> = y.iter().map(|&class| class as i32).collect();
    let parameters = LogisticRegressionParameters::default().with_alpha(1.0 / c);
    let fitted = LogisticRegression::fit(&matrix, &classes, parameters).map_err(fit_error)?;
    // smartcore numbers the classes it saw in sorted order; every class is in every training
    // set we build (stratified splits and folds guarantee it), so its classes are ours.
    if fitted.classes().len() != n_classes {
        return Err(TrainError::Fit(format!(
            "logistic regression saw {} of the {n_classes} classes",
            fitted.classes().len()
        )));
    }
    let rows = if n_classes == 2 { 1 } else { n_classes };
    let mut coefficients = Vec::with_capacity(rows * x.cols);
    let mut intercepts = Vec::with_capacity(rows);
    for row in 0..rows {
        coefficients.extend((0..x.cols).map(|col| *fitted.coefficients().get((row, col))));
        intercepts.push(*fitted.intercept().get((row, 0)));
    }
    Ok(Estimator::LogisticRegression {
        coefficients,
        intercepts,
    })
}
