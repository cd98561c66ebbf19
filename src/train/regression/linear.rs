//! Least squares with an optional L2 penalty, solved through the eigen-decomposition of the
//! centred Gram matrix (the decomposition is smartcore's; the solution and its rank cut-off
//! are ours): the minimum-norm solution when columns are collinear (one-hot columns
//! always are, beside the intercept), as scikit-learn's `LinearRegression` (LAPACK `gelsd`)
//! gives; with `alpha > 0` it is scikit-learn's `Ridge` objective `|y − Xw|² + alpha·|w|²`.

use crate::model::native::Regressor;
use crate::train::TrainError;
use crate::train::preprocess::Matrix;

/// Eigenvalues below this share of the largest are taken as exact zeros (collinear columns).
/// The Gram matrix squares the condition number, so this keeps every direction of a matrix
/// whose condition number is below 10⁶; the columns are standardized first, which keeps
/// ordinary data far from it.
const RANK_CUTOFF: f64 = 1e-12;

/// Fits `y ≈ intercept + x·w`, minimising `|y − intercept − x·w|² + alpha·|w|²` (the intercept
/// is not penalised: both sides are centred first, as scikit-learn does).
///
/// Errors: no rows, a length mismatch, a negative or non-finite `alpha`, or non-finite values.
pub fn fit(x: &Matrix, y: &[f64], alpha: f64) -> Result<Regressor, TrainError> {
    if x.rows == 0 || y.len() != x.rows {
        return Err(TrainError::Fit(format!(
            "linear regression needs one target per row; got {} rows and {} targets",
            x.rows,
            y.len()
        )));
    }
    if !(alpha >= 0.0 && alpha.is_finite()) {
        return Err(TrainError::Parameter(format!(
            "alpha must be zero or a positive number, got {alpha}"
        )));
    }
    let (p, n) = (x.cols, x.rows as f64);
    let x_mean: Vec<f64> = (0..p)
        .map(|col| (0..x.rows).map(|row| x.row(row)[col]).sum::<f64>() / n)
        .collect();
    let y_mean = y.iter().sum::<f64>() / n;
    let mut gram = vec![0.0; p * p];
    let mut moment = vec![0.0; p];
    let mut centred = vec![0.0; p];
    for (row, target) in y.iter().enumerate() {
        for (c, (value, mean)) in centred.iter_mut().zip(x.row(row).iter().zip(&x_mean)) {
            *c = value - mean;
        }
        let target = target - y_mean;
        for i in 0..p {
            moment[i] += centred[i] * target;
            for j in i..p {
                gram[i * p + j] += centred[i] * centred[j];
            }
        }
    }
    for i in 0..p {
        for j in 0..i {
            gram[i * p + j] = gram[j * p + i];
        }
    }
    if gram.iter().chain(&moment).any(|v| !v.is_finite()) {
        return Err(TrainError::Fit(
            "linear regression: the data has values too large to fit".to_string(),
        ));
    }
    let (eigenvalues, eigenvectors) = symmetric_eigen(gram, p)?;
    let largest = eigenvalues.iter().copied().fold(0.0, f64::max);
    let mut coefficients = vec![0.0; p];
    for (k, &lambda) in eigenvalues.iter().enumerate() {
        if lambda <= largest * RANK_CUTOFF {
            continue;
        }
        let along: f64 = (0..p).map(|i| eigenvectors[i * p + k] * moment[i]).sum();
        let step = along / (lambda + alpha);
        for (i, w) in coefficients.iter_mut().enumerate() {
            *w += eigenvectors[i * p + k] * step;
        }
    }
    let intercept = y_mean
        - coefficients
            .iter()
            .zip(&x_mean)
            .map(|(w, m)| w * m)
            .sum::<f64>();
    Ok(Regressor::LinearRegression {
        coefficients,
        intercept,
    })
}

/// Eigenvalues and eigenvectors of a symmetric `p × p` matrix (row-major), by Householder
/// tridiagonalisation and the implicit QL method (smartcore's `evd`, a port of JAMA's
/// `tred2`/`tql2`; O(p³)): the eigenvectors are the columns of the returned row-major matrix.
fn symmetric_eigen(a: Vec<f64>, p: usize) -> Result<(Vec<f64>, Vec<f64>), TrainError> {
    use smartcore::linalg::basic::arrays::Array;
    use smartcore::linalg::basic::matrix::DenseMatrix;
    use smartcore::linalg::traits::evd::EVDDecomposable;
    let failed = |error: smartcore::error::Failed| {
        TrainError::Fit(format!(
            "linear regression: eigen-decomposition failed: {error}"
        ))
    };
    let matrix = DenseMatrix::new(p, p, a, false).map_err(failed)?;
    let evd = matrix.evd(true).map_err(failed)?;
    let mut vectors = vec![0.0; p * p];
    for i in 0..p {
        for k in 0..p {
            vectors[i * p + k] = *evd.V.get((i, k));
        }
    }
    Ok((evd.d, vectors))
}
