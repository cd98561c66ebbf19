//! ε-support vector regression with an RBF kernel (scikit-learn's `SVR`, which is libsvm's
//! ε-SVR): the same SMO solver as the classifier, on libsvm's doubled variables.

use crate::model::native::Regressor;
use crate::train::algorithms::svm::{Kernel, offset, solve_dual};
use crate::train::preprocess::Matrix;

/// The half-width of the tube in which errors cost nothing, scikit-learn's default, in the
/// target's unit.
pub const DEFAULT_EPSILON: f64 = 0.1;

/// Fits `f(x) = Σ coefᵢ·K(xᵢ, x) + intercept` minimising `½|w|² + C·Σ max(0, |yᵢ − f(xᵢ)| − ε)`
/// (Chang & Lin, LIBSVM, §2.4): variables `α` (rows above the tube, `p = ε − y`, label +1)
/// then `α*` (below it, `p = ε + y`, label −1); each row's coefficient is `α − α*`.
pub fn fit(x: &Matrix, y: &[f64], c: f64, gamma: f64, epsilon: f64) -> Regressor {
    let n = x.rows;
    let kernel = Kernel::new(x, gamma);
    let p: Vec<f64> = y
        .iter()
        .map(|target| epsilon - target)
        .chain(y.iter().map(|target| epsilon + target))
        .collect();
    let labels: Vec<f64> = (0..2 * n).map(|t| if t < n { 1.0 } else { -1.0 }).collect();
    let dual = solve_dual(&kernel, &p, &labels, c);
    let rho = offset(&dual.alpha, &dual.gradient, &labels, c);
    let mut support_vectors = Vec::new();
    let mut dual_coef = Vec::new();
    for row in 0..n {
        let coefficient = dual.alpha[row] - dual.alpha[row + n];
        if coefficient != 0.0 {
            support_vectors.extend_from_slice(x.row(row));
            dual_coef.push(coefficient);
        }
    }
    Regressor::SupportVectorMachine {
        gamma,
        support_vectors,
        dual_coef,
        intercept: -rho,
    }
}
