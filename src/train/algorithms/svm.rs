//! RBF-kernel support vector machines: SMO training (maximal violating pair, as in libsvm),
//! one machine per class against the rest, and Platt scaling fitted on out-of-fold decision
//! values for probabilities.
//!
//! Our own trainer: smartcore's SVC gives no probabilities and cannot predict after being
//! reloaded (see shared/notes/native-training.md).

use crate::data::stratified_kfold;
use crate::model::Gamma;
use crate::model::native::{Estimator, SvmMachine};
use crate::train::Progress;
use crate::train::preprocess::Matrix;
use std::collections::BTreeMap;

/// Stopping tolerance on the KKT violation, libsvm's default.
const TOLERANCE: f64 = 1e-3;
/// Largest training set whose kernel matrix is kept in memory (4000² × 8 bytes = 128 MB).
const MAX_CACHED_ROWS: usize = 4000;
/// Folds for the out-of-fold decision values that Platt scaling is fitted on, as libsvm.
const PLATT_FOLDS: usize = 5;

/// A trained binary machine, its support vectors as row indices of its training matrix.
struct BinaryMachine {
    support: Vec<usize>,
    dual_coef: Vec<f64>,
    rho: f64,
}

impl BinaryMachine {
    fn decision(&self, x: &Matrix, gamma: f64, point: &[f64]) -> f64 {
        self.support
            .iter()
            .zip(&self.dual_coef)
            .map(|(&sv, coef)| coef * rbf(gamma, x.row(sv), point))
            .sum::<f64>()
            - self.rho
    }
}

fn rbf(gamma: f64, a: &[f64], b: &[f64]) -> f64 {
    let squared: f64 = a.iter().zip(b).map(|(a, b)| (a - b) * (a - b)).sum();
    (-gamma * squared).exp()
}

/// Kernel rows, from a precomputed matrix for small sets or computed on demand.
pub(in crate::train) struct Kernel<'a> {
    x: &'a Matrix,
    gamma: f64,
    cached: Option<Vec<f64>>,
}

impl<'a> Kernel<'a> {
    /// The RBF kernel of `x`'s rows with width `gamma`.
    pub fn new(x: &'a Matrix, gamma: f64) -> Self {
        let cached = (x.rows <= MAX_CACHED_ROWS).then(|| {
            let n = x.rows;
            let mut k = vec![0.0; n * n];
            for i in 0..n {
                for j in i..n {
                    let value = rbf(gamma, x.row(i), x.row(j));
                    k[i * n + j] = value;
                    k[j * n + i] = value;
                }
            }
            k
        });
        Kernel { x, gamma, cached }
    }

    fn row(&self, i: usize) -> std::borrow::Cow<'_, [f64]> {
        let n = self.x.rows;
        match &self.cached {
            Some(k) => std::borrow::Cow::Borrowed(&k[i * n..(i + 1) * n]),
            None => std::borrow::Cow::Owned(
                (0..n)
                    .map(|j| rbf(self.gamma, self.x.row(i), self.x.row(j)))
                    .collect(),
            ),
        }
    }
}

/// Solves the C-SVC dual for labels `y` (±1) with SMO.
fn fit_binary(x: &Matrix, y: &[f64], c: f64, gamma: f64) -> BinaryMachine {
    let kernel = Kernel::new(x, gamma);
    let dual = solve_dual(&kernel, &vec![-1.0; x.rows], y, c);
    let rho = offset(&dual.alpha, &dual.gradient, y, c);
    let support: Vec<usize> = (0..x.rows).filter(|&t| dual.alpha[t] > 0.0).collect();
    let dual_coef = support.iter().map(|&t| dual.alpha[t] * y[t]).collect();
    BinaryMachine {
        support,
        dual_coef,
        rho,
    }
}

/// A solved dual problem: the variables and the objective's gradient at them.
pub(in crate::train) struct Dual {
    /// One variable per entry of `p`, each in [0, C].
    pub alpha: Vec<f64>,
    /// `Qα + p`.
    pub gradient: Vec<f64>,
}

/// Solves libsvm's dual form `min ½αᵀQα + pᵀα` subject to `yᵀα = 0` and `0 ≤ α ≤ C`, with
/// `Q_st = y_s·y_t·K(x_(s mod n), x_(t mod n))` for the kernel's `n` rows, by SMO on the
/// maximal violating pair, to libsvm's tolerance (Chang & Lin, LIBSVM, 2011, §4.1). The C-SVC
/// has one variable per row (`p = −1`); the ε-SVR two (Chang & Lin §2.4).
pub(in crate::train) fn solve_dual(kernel: &Kernel<'_>, p: &[f64], y: &[f64], c: f64) -> Dual {
    let (n, points) = (p.len(), kernel.x.rows);
    let mut alpha = vec![0.0; n];
    let mut gradient = p.to_vec();
    let max_iterations = (100 * n).max(10_000_000);
    let in_up = |a: f64, label: f64| (label > 0.0 && a < c) || (label < 0.0 && a > 0.0);
    let in_low = |a: f64, label: f64| (label > 0.0 && a > 0.0) || (label < 0.0 && a < c);
    for _ in 0..max_iterations {
        let (mut i, mut max_up) = (usize::MAX, f64::NEG_INFINITY);
        let (mut j, mut min_low) = (usize::MAX, f64::INFINITY);
        for t in 0..n {
            let value = -y[t] * gradient[t];
            if in_up(alpha[t], y[t]) && value > max_up {
                (i, max_up) = (t, value);
            }
            if in_low(alpha[t], y[t]) && value < min_low {
                (j, min_low) = (t, value);
            }
        }
        if i == usize::MAX || j == usize::MAX || max_up - min_low < TOLERANCE {
            break;
        }
        let (k_i, k_j) = (kernel.row(i % points), kernel.row(j % points));
        let (old_i, old_j) = (alpha[i], alpha[j]);
        let pair_kernel = [k_i[i % points], k_j[j % points], k_i[j % points]];
        update_pair(&mut alpha, &gradient, y, c, (i, j), pair_kernel);
        let (delta_i, delta_j) = (alpha[i] - old_i, alpha[j] - old_j);
        for t in 0..n {
            let point = t % points;
            gradient[t] += y[t] * (y[i] * k_i[point] * delta_i + y[j] * k_j[point] * delta_j);
        }
    }
    Dual { alpha, gradient }
}

/// The analytic solution of the two-variable sub-problem, clipped to the box [0, C] (libsvm's
/// update); `kernel` is `[K_ii, K_jj, K_ij]`.
fn update_pair(
    alpha: &mut [f64],
    gradient: &[f64],
    y: &[f64],
    c: f64,
    (i, j): (usize, usize),
    [k_ii, k_jj, k_ij]: [f64; 3],
) {
    const TAU: f64 = 1e-12;
    let q_ij = y[i] * y[j] * k_ij;
    if y[i] != y[j] {
        let quad = (k_ii + k_jj + 2.0 * q_ij).max(TAU);
        let delta = (-gradient[i] - gradient[j]) / quad;
        let diff = alpha[i] - alpha[j];
        alpha[i] += delta;
        alpha[j] += delta;
        if diff > 0.0 {
            if alpha[j] < 0.0 {
                alpha[j] = 0.0;
                alpha[i] = diff;
            }
        } else if alpha[i] < 0.0 {
            alpha[i] = 0.0;
            alpha[j] = -diff;
        }
        if diff > 0.0 {
            if alpha[i] > c {
                alpha[i] = c;
                alpha[j] = c - diff;
            }
        } else if alpha[j] > c {
            alpha[j] = c;
            alpha[i] = c + diff;
        }
    } else {
        let quad = (k_ii + k_jj - 2.0 * q_ij).max(TAU);
        let delta = (gradient[i] - gradient[j]) / quad;
        let sum = alpha[i] + alpha[j];
        alpha[i] -= delta;
        alpha[j] += delta;
        if sum > c {
            if alpha[i] > c {
                alpha[i] = c;
                alpha[j] = sum - c;
            }
        } else if alpha[j] < 0.0 {
            alpha[j] = 0.0;
            alpha[i] = sum;
        }
        if sum > c {
            if alpha[j] > c {
                alpha[j] = c;
                alpha[i] = sum - c;
            }
        } else if alpha[i] < 0.0 {
            alpha[i] = 0.0;
            alpha[j] = sum;
        }
    }
}

/// ρ: the mean of y·∇ over free support vectors, or the middle of the feasible interval without any.
pub(in crate::train) fn offset(alpha: &[f64], gradient: &[f64], y: &[f64], c: f64) -> f64 {
    let (mut upper, mut lower) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut free_sum, mut free_count) = (0.0, 0usize);
    for t in 0..alpha.len() {
        let value = y[t] * gradient[t];
        let at_upper = alpha[t] >= c;
        let at_lower = alpha[t] <= 0.0;
        if (at_upper && y[t] < 0.0) || (at_lower && y[t] > 0.0) {
            upper = upper.min(value);
        } else if at_upper || at_lower {
            lower = lower.max(value);
        } else {
            free_sum += value;
            free_count += 1;
        }
    }
    if free_count > 0 {
        free_sum / free_count as f64
    } else {
        (upper + lower) / 2.0
    }
}

/// Platt's sigmoid `P(y = 1 | f) = 1 / (1 + exp(a·f + b))`, fitted by Newton's method with
/// backtracking on regularised targets (Lin, Lin and Weng's formulation).
fn fit_platt(decisions: &[f64], positive: &[bool]) -> (f64, f64) {
    let prior_positive = positive.iter().filter(|&&p| p).count() as f64;
    let prior_negative = positive.len() as f64 - prior_positive;
    let high = (prior_positive + 1.0) / (prior_positive + 2.0);
    let low = 1.0 / (prior_negative + 2.0);
    let targets: Vec<f64> = positive
        .iter()
        .map(|&p| if p { high } else { low })
        .collect();
    let objective = |a: f64, b: f64| -> f64 {
        decisions
            .iter()
            .zip(&targets)
            .map(|(f, t)| {
                let z = f * a + b;
                if z >= 0.0 {
                    t * z + (-z).exp().ln_1p()
                } else {
                    (t - 1.0) * z + z.exp().ln_1p()
                }
            })
            .sum()
    };
    let (mut a, mut b) = (0.0, ((prior_negative + 1.0) / (prior_positive + 1.0)).ln());
    let mut value = objective(a, b);
    for _ in 0..100 {
        let (mut h11, mut h22, mut h21, mut g1, mut g2) = (1e-12, 1e-12, 0.0, 0.0, 0.0);
        for (f, t) in decisions.iter().zip(&targets) {
            let z = f * a + b;
            let (p, q) = if z >= 0.0 {
                let e = (-z).exp();
                (e / (1.0 + e), 1.0 / (1.0 + e))
            } else {
                let e = z.exp();
                (1.0 / (1.0 + e), e / (1.0 + e))
            };
            let d2 = p * q;
            h11 += f * f * d2;
            h22 += d2;
            h21 += f * d2;
            let d1 = t - p;
            g1 += f * d1;
            g2 += d1;
        }
        if g1.abs() < 1e-5 && g2.abs() < 1e-5 {
            break;
        }
        let det = h11 * h22 - h21 * h21;
        let (da, db) = (-(h22 * g1 - h21 * g2) / det, -(-h21 * g1 + h11 * g2) / det);
        let slope = g1 * da + g2 * db;
        let mut step = 1.0;
        while step >= 1e-10 {
            let (new_a, new_b) = (a + step * da, b + step * db);
            let new_value = objective(new_a, new_b);
            if new_value < value + 1e-4 * step * slope {
                (a, b, value) = (new_a, new_b, new_value);
                break;
            }
            step /= 2.0;
        }
        if step < 1e-10 {
            break;
        }
    }
    (a, b)
}

/// Out-of-fold decision values for Platt scaling; the training decisions of a machine would be
/// over-confident. Falls back to those when a class is too small to fold.
fn out_of_fold_decisions(
    x: &Matrix,
    y: &[f64],
    c: f64,
    gamma: f64,
    seed: u64,
    full: &BinaryMachine,
) -> Vec<f64> {
    let classes: Vec<usize> = y.iter().map(|&label| usize::from(label > 0.0)).collect();
    let rows: Vec<usize> = (0..x.rows).collect();
    let smallest_class = classes
        .iter()
        .filter(|&&c| c == 1)
        .count()
        .min(classes.iter().filter(|&&c| c == 0).count());
    let folds = PLATT_FOLDS.min(smallest_class);
    let Ok(partition) = stratified_kfold(&rows, &classes, 2, folds, seed) else {
        return (0..x.rows)
            .map(|row| full.decision(x, gamma, x.row(row)))
            .collect();
    };
    let mut decisions = vec![0.0; x.rows];
    for (train, validation) in partition {
        let fold_x = x.select(&train);
        let fold_y: Vec<f64> = train.iter().map(|&row| y[row]).collect();
        let machine = fit_binary(&fold_x, &fold_y, c, gamma);
        for row in validation {
            decisions[row] = machine.decision(&fold_x, gamma, x.row(row));
        }
    }
    decisions
}

/// Fits one machine for a binary problem (class 1 positive) or one per class against the rest.
pub fn fit(
    x: &Matrix,
    y: &[usize],
    n_classes: usize,
    c: f64,
    gamma: f64,
    seed: u64,
    progress: &dyn Progress,
) -> Estimator {
    let positives: Vec<usize> = if n_classes == 2 {
        vec![1]
    } else {
        (0..n_classes).collect()
    };
    let mut shared_rows: BTreeMap<usize, u32> = BTreeMap::new();
    let mut machines = Vec::with_capacity(positives.len());
    for positive_class in positives {
        let labels: Vec<f64> = y
            .iter()
            .map(|&class| if class == positive_class { 1.0 } else { -1.0 })
            .collect();
        let machine = fit_binary(x, &labels, c, gamma);
        let decisions = out_of_fold_decisions(x, &labels, c, gamma, seed, &machine);
        let is_positive: Vec<bool> = labels.iter().map(|&label| label > 0.0).collect();
        let (platt_a, platt_b) = fit_platt(&decisions, &is_positive);
        let support = machine
            .support
            .iter()
            .map(|&row| {
                let next = shared_rows.len() as u32;
                *shared_rows.entry(row).or_insert(next)
            })
            .collect();
        machines.push(SvmMachine {
            support,
            dual_coef: machine.dual_coef,
            rho: machine.rho,
            platt_a,
            platt_b,
        });
        progress.advance(1);
    }
    let mut by_index: Vec<(u32, usize)> = shared_rows
        .into_iter()
        .map(|(row, index)| (index, row))
        .collect();
    by_index.sort_unstable();
    let support_vectors = by_index
        .iter()
        .flat_map(|&(_, row)| x.row(row).iter().copied())
        .collect();
    Estimator::SupportVectorMachine {
        gamma,
        support_vectors,
        machines,
    }
}

/// The RBF kernel width `gamma` settles to on the standardized matrix `x`.
pub fn resolve_gamma(gamma: Gamma, x: &Matrix) -> f64 {
    match gamma {
        Gamma::Scale => scale_gamma(x),
        Gamma::Auto => 1.0 / x.cols.max(1) as f64,
        Gamma::Value(value) => value,
    }
}

/// scikit-learn's `gamma='scale'`: 1 / (columns × variance of all values).
fn scale_gamma(x: &Matrix) -> f64 {
    let n = x.data.len().max(1) as f64;
    let mean = x.data.iter().sum::<f64>() / n;
    let variance = x.data.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    if variance > 0.0 {
        1.0 / (x.cols as f64 * variance)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::NoProgress;

    #[test]
    fn separates_two_clusters_with_confident_probabilities() {
        let points = [
            -2.0, -1.8, -2.2, -1.9, -2.1, -2.05, 2.0, 1.8, 2.2, 1.9, 2.1, 2.05,
        ];
        let x = Matrix {
            rows: points.len(),
            cols: 1,
            data: points.to_vec(),
        };
        let y: Vec<usize> = (0..points.len()).map(|i| usize::from(i >= 6)).collect();
        let estimator = fit(&x, &y, 2, 1.0, 0.5, 0, &NoProgress);
        let left = estimator.predict_proba(&[-2.0], 2);
        let right = estimator.predict_proba(&[2.0], 2);
        assert!(left[0] > 0.8, "{left:?}");
        assert!(right[1] > 0.8, "{right:?}");
        assert!((left[0] + left[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn platt_sigmoid_is_decreasing_in_decision_for_positives() {
        let decisions = [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0];
        let positive = [false, false, false, true, true, true];
        let (a, _) = fit_platt(&decisions, &positive);
        assert!(a < 0.0, "a = {a}");
    }
}
