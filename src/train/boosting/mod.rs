//! Histogram-based gradient boosting: scikit-learn's `HistGradientBoostingClassifier` and
//! `HistGradientBoostingRegressor` (after LightGBM, Ke et al. 2017), trained natively into the
//! same [`BoostedTrees`] that imported XGBoost and LightGBM files become, so they share one
//! evaluator.
//!
//! Each iteration fits one tree per output to the loss's gradients and hessians (Friedman
//! 2001, with Newton leaf values as XGBoost's): the log loss for classes (one output for two
//! classes, one per class with the softmax for more) and half the squared error for numbers.
//! Missing values are learned a direction at each split; categorical features split natively.
//! With early stopping, a seeded share of the training rows is held out, training stops when
//! its loss has not improved for `n_iter_no_change` iterations (scikit-learn's rule) and the
//! model keeps the iterations up to the best one (as XGBoost's and LightGBM's early stopping).

mod bins;
mod grow;
pub mod pipeline;
mod split;

use super::{Progress, TrainError};
use crate::data::{Dataset, Target, shuffled_split, stratified_split};
use crate::model::AlgorithmParams;
use crate::model::boosted::{BoostedSource, BoostedTrees, Link, Routing, Tree};
use bins::{BinnedRows, FeatureBins, RawColumns, fit_bins};
use grow::{GrowData, Growth, grow};
use split::{Layout, Limits};

/// scikit-learn's `tol` for early stopping.
const TOLERANCE: f64 = 1e-7;

/// What the trees learn: the loss and its number of outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Loss {
    /// Two classes: one margin, the log loss of its sigmoid.
    Binary,
    /// This many classes: a margin each, the log loss of their softmax.
    Multiclass(usize),
    /// A number: half the squared error.
    Squared,
}

impl Loss {
    fn outputs(self) -> usize {
        match self {
            Loss::Multiclass(k) => k,
            Loss::Binary | Loss::Squared => 1,
        }
    }

    fn link(self) -> Link {
        match self {
            Loss::Binary => Link::BinarySigmoid { scale: 1.0 },
            Loss::Multiclass(_) => Link::Softmax,
            Loss::Squared => Link::Identity,
        }
    }

    /// scikit-learn's name of the loss.
    fn name(self) -> &'static str {
        match self {
            Loss::Binary | Loss::Multiclass(_) => "log_loss",
            Loss::Squared => "squared_error",
        }
    }

    /// The constant margins that minimise the loss on `y` (scikit-learn's
    /// `fit_intercept_only`): the log-odds, the log of each class's share, or the mean.
    fn baseline(self, y: &[f64]) -> Vec<f64> {
        let n = y.len().max(1) as f64;
        match self {
            Loss::Binary => {
                let p = (y.iter().sum::<f64>() / n).clamp(1e-15, 1.0 - 1e-15);
                vec![(p / (1.0 - p)).ln()]
            }
            Loss::Multiclass(k) => {
                let mut shares = vec![0.0; k];
                y.iter()
                    .for_each(|&class| shares[class as usize] += 1.0 / n);
                let logs: Vec<f64> = shares.iter().map(|p| p.clamp(1e-15, 1.0).ln()).collect();
                let mean = logs.iter().sum::<f64>() / k as f64;
                logs.iter().map(|l| l - mean).collect()
            }
            Loss::Squared => vec![y.iter().sum::<f64>() / n],
        }
    }

    /// Gradients and hessians of every output for every row, from the margins (`outputs`
    /// per row): output `k`'s are at `k * rows..(k + 1) * rows` of `g` and `h`.
    fn gradients(self, margins: &[f64], y: &[f64], g: &mut [f64], h: &mut [f64]) {
        let k = self.outputs();
        let rows = y.len();
        for (i, &target) in y.iter().enumerate() {
            let row = &margins[i * k..(i + 1) * k];
            match self {
                Loss::Binary => {
                    let p = sigmoid(row[0]);
                    g[i] = p - target;
                    h[i] = p * (1.0 - p);
                }
                Loss::Multiclass(_) => {
                    for (output, p) in softmax(row).into_iter().enumerate() {
                        let truth = f64::from(u8::from(target as usize == output));
                        g[output * rows + i] = p - truth;
                        h[output * rows + i] = p * (1.0 - p);
                    }
                }
                Loss::Squared => {
                    g[i] = row[0] - target;
                    h[i] = 1.0;
                }
            }
        }
    }

    /// The mean loss over rows.
    fn mean_loss(self, margins: &[f64], y: &[f64]) -> f64 {
        let k = self.outputs();
        let total: f64 = y
            .iter()
            .enumerate()
            .map(|(i, &target)| {
                let row = &margins[i * k..(i + 1) * k];
                match self {
                    Loss::Binary => {
                        let p = sigmoid(row[0]).clamp(1e-15, 1.0 - 1e-15);
                        -(target * p.ln() + (1.0 - target) * (1.0 - p).ln())
                    }
                    Loss::Multiclass(_) => -softmax(row)[target as usize].max(1e-15).ln(),
                    Loss::Squared => 0.5 * (row[0] - target).powi(2),
                }
            })
            .sum();
        total / y.len().max(1) as f64
    }
}

fn sigmoid(m: f64) -> f64 {
    1.0 / (1.0 + (-m).exp())
}

fn softmax(margins: &[f64]) -> Vec<f64> {
    let top = margins.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = margins.iter().map(|m| (m - top).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// The settled hyper-parameters of gradient boosting.
struct Settings {
    n_trees: usize,
    growth: Growth,
    max_bins: usize,
    early_stopping: bool,
    validation_fraction: f64,
    n_iter_no_change: usize,
}

impl Settings {
    fn of(params: &AlgorithmParams, train_rows: usize) -> Result<Settings, TrainError> {
        let AlgorithmParams::GradientBoosting {
            n_trees,
            learning_rate,
            max_leaves,
            max_depth,
            min_samples_leaf,
            l2,
            max_bins,
            early_stopping,
            validation_fraction,
            n_iter_no_change,
        } = params
        else {
            return Err(TrainError::Parameter(format!(
                "{} is not gradient boosting",
                params.algorithm().cli_name()
            )));
        };
        Ok(Settings {
            n_trees: *n_trees,
            growth: Growth {
                max_leaves: *max_leaves,
                max_depth: *max_depth,
                learning_rate: *learning_rate,
                limits: Limits {
                    min_samples_leaf: u32::try_from(*min_samples_leaf).unwrap_or(u32::MAX),
                    l2: *l2,
                },
            },
            max_bins: *max_bins,
            early_stopping: early_stopping.applies(train_rows),
            validation_fraction: *validation_fraction,
            n_iter_no_change: *n_iter_no_change,
        })
    }
}

/// The loss and each row's target as a number (a class as its index).
fn loss_and_targets(data: &Dataset) -> (Loss, Vec<f64>) {
    match &data.target {
        Target::Classes { classes, labels } => {
            let loss = if labels.len() == 2 {
                Loss::Binary
            } else {
                Loss::Multiclass(labels.len())
            };
            (loss, classes.iter().map(|&c| c as f64).collect())
        }
        Target::Values(values) => (Loss::Squared, values.clone()),
    }
}

/// The rows trees are grown on and the rows that decide early stopping (none without it):
/// stratified by class for classifiers, as scikit-learn splits them.
fn fit_and_validation_rows(
    data: &Dataset,
    rows: &[usize],
    settings: &Settings,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), TrainError> {
    if !settings.early_stopping {
        return Ok((rows.to_vec(), Vec::new()));
    }
    let split = match data.classes() {
        Some((classes, labels)) => {
            let subset: Vec<usize> = rows.iter().map(|&r| classes[r]).collect();
            stratified_split(&subset, labels.len(), settings.validation_fraction, seed)
        }
        None => shuffled_split(rows.len(), settings.validation_fraction, seed),
    };
    let (fit, validation) = split.map_err(|_| {
        TrainError::Parameter(format!(
            "--validation-fraction {} of {} training rows leaves no rows to grow trees on or \
             none to decide early stopping with; change it, or --early-stopping off",
            settings.validation_fraction,
            rows.len()
        ))
    })?;
    let pick = |positions: Vec<usize>| positions.into_iter().map(|p| rows[p]).collect();
    Ok((pick(fit), pick(validation)))
}

/// Fits gradient-boosted trees to `rows` of `data` with the `GradientBoosting` parameters;
/// one progress step per iteration.
///
/// Errors: parameters of another algorithm, a categorical feature with more categories than
/// `max_bins`, an early-stopping split that leaves no rows.
pub fn fit(
    params: &AlgorithmParams,
    data: &Dataset,
    rows: &[usize],
    seed: u64,
    progress: &dyn Progress,
) -> Result<BoostedTrees, TrainError> {
    let settings = Settings::of(params, rows.len())?;
    let (loss, targets) = loss_and_targets(data);
    let (fit_rows, validation_rows) = fit_and_validation_rows(data, rows, &settings, seed)?;
    let features = fit_bins(data, &fit_rows, settings.max_bins).map_err(TrainError::Parameter)?;
    let raw = RawColumns::of(data, &fit_rows, &features);
    let binned = BinnedRows::of(&raw, &features);
    let layout = Layout::new(&features);
    let grow_data = GrowData {
        binned: &binned,
        features: &features,
        layout: &layout,
    };
    let y: Vec<f64> = fit_rows.iter().map(|&r| targets[r]).collect();
    let validation = Validation::new(data, &validation_rows, &features, &targets);
    let base_margin = loss.baseline(&y);
    let mut boosting = Boosting::new(loss, &base_margin, y.len(), &validation);
    if validation.len() > 0 {
        // The constant model's loss comes first, as scikit-learn scores it: trees that never
        // beat it are not kept.
        let constant = loss.mean_loss(&boosting.validation_margins, &validation.y);
        boosting.validation_losses.push(constant);
    }
    for _ in 0..settings.n_trees {
        boosting.iterate(&grow_data, &y, settings.growth, &validation);
        progress.advance(1);
        if validation.len() > 0 && boosting.should_stop(settings.n_iter_no_change) {
            break;
        }
    }
    let iterations = boosting.best_iterations();
    let k = loss.outputs();
    let trees: Vec<Tree> = boosting.trees.into_iter().take(iterations * k).collect();
    let model = BoostedTrees {
        tree_output: (0..trees.len()).map(|t| (t % k) as u32).collect(),
        trees,
        base_margin,
        link: loss.link(),
        routing: Routing::Xgboost,
        features: features.len(),
        average_over: None,
        source: BoostedSource {
            library: crate::model::boosted::NATIVE_LIBRARY.to_string(),
            objective: loss.name().to_string(),
            iterations: (iterations, settings.n_trees),
        },
        category_codes: category_codes(&features),
        fast: None,
        fast64: None,
    };
    model
        .check()
        .map_err(|error| TrainError::Fit(format!("the grown trees are inconsistent: {error}")))?;
    Ok(model.compiled())
}

fn category_codes(features: &[FeatureBins]) -> Vec<Option<crate::model::boosted::CategoryCodes>> {
    features
        .iter()
        .map(|feature| match feature {
            FeatureBins::Categorical { categories } => Some(
                categories
                    .iter()
                    .enumerate()
                    .map(|(code, name)| (name.clone(), code as f64))
                    .collect(),
            ),
            FeatureBins::Numeric { .. } => None,
        })
        .collect()
}

/// The held-out rows that decide early stopping, as the trees read them.
struct Validation {
    rows: Vec<Vec<f64>>,
    y: Vec<f64>,
}

impl Validation {
    fn new(data: &Dataset, rows: &[usize], features: &[FeatureBins], targets: &[f64]) -> Self {
        let raw = RawColumns::of(data, rows, features);
        Validation {
            rows: (0..rows.len()).map(|i| raw.row(i)).collect(),
            y: rows.iter().map(|&r| targets[r]).collect(),
        }
    }

    fn len(&self) -> usize {
        self.y.len()
    }
}

/// The state of a boosting run: the trees so far, the margins of the fit and validation rows,
/// and the validation loss after each iteration.
struct Boosting {
    loss: Loss,
    trees: Vec<Tree>,
    margins: Vec<f64>,
    validation_margins: Vec<f64>,
    validation_losses: Vec<f64>,
    g: Vec<f64>,
    h: Vec<f64>,
    order: Vec<u32>,
}

impl Boosting {
    fn new(loss: Loss, base: &[f64], rows: usize, validation: &Validation) -> Self {
        let repeat = |n: usize| base.iter().copied().cycle().take(n * base.len()).collect();
        Boosting {
            loss,
            trees: Vec::new(),
            margins: repeat(rows),
            validation_margins: repeat(validation.len()),
            validation_losses: Vec::new(),
            g: vec![0.0; rows * base.len()],
            h: vec![0.0; rows * base.len()],
            order: (0..rows as u32).collect(),
        }
    }

    /// Grows one tree per output on the current gradients and adds their leaves to the
    /// margins.
    fn iterate(&mut self, data: &GrowData, y: &[f64], growth: Growth, validation: &Validation) {
        let k = self.loss.outputs();
        // Every output's gradients come from the margins before this iteration.
        self.loss
            .gradients(&self.margins, y, &mut self.g, &mut self.h);
        let rows = y.len();
        for output in 0..k {
            // Rows in order at the root, so its histogram reads the columns as slices.
            self.order
                .iter_mut()
                .enumerate()
                .for_each(|(i, row)| *row = i as u32);
            let (g, h) = (
                &self.g[output * rows..(output + 1) * rows],
                &self.h[output * rows..(output + 1) * rows],
            );
            let grown = grow(data, &mut self.order, g, h, growth);
            for (range, value) in &grown.leaves {
                for &row in &self.order[range.clone()] {
                    self.margins[row as usize * k + output] += value;
                }
            }
            for (i, row) in validation.rows.iter().enumerate() {
                self.validation_margins[i * k + output] +=
                    grown.tree.leaf_value(row, Routing::Xgboost);
            }
            self.trees.push(grown.tree);
        }
        if validation.len() > 0 {
            let loss = self.loss.mean_loss(&self.validation_margins, &validation.y);
            self.validation_losses.push(loss);
        }
    }

    /// scikit-learn's `_should_stop`: none of the last `n` losses beat the one before them
    /// by more than the tolerance.
    fn should_stop(&self, n: usize) -> bool {
        let losses = &self.validation_losses;
        if losses.len() <= n {
            return false;
        }
        let reference = losses[losses.len() - n - 1];
        losses[losses.len() - n..]
            .iter()
            .all(|&loss| loss >= reference - TOLERANCE)
    }

    /// The iterations to keep: up to the lowest validation loss (the first of the losses is
    /// the constant model's, after no iteration), or all of them.
    fn best_iterations(&self) -> usize {
        self.validation_losses
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map_or(self.trees.len() / self.loss.outputs(), |(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_minimise_the_loss_of_a_constant() {
        let binary = Loss::Binary.baseline(&[1.0, 1.0, 1.0, 0.0]);
        assert!((binary[0] - 3f64.ln()).abs() < 1e-12, "log-odds of 3/4");
        let classes = Loss::Multiclass(3).baseline(&[0.0, 1.0, 1.0, 2.0]);
        let shares = softmax(&classes);
        for (share, want) in shares.iter().zip([0.25, 0.5, 0.25]) {
            assert!((share - want).abs() < 1e-12, "{shares:?}");
        }
        assert_eq!(Loss::Squared.baseline(&[1.0, 2.0, 6.0]), [3.0]);
    }

    #[test]
    fn gradients_are_those_of_the_losses() {
        let (mut g, mut h) = (vec![0.0; 2], vec![0.0; 2]);
        Loss::Binary.gradients(&[0.0, 0.0], &[1.0, 0.0], &mut g, &mut h);
        assert_eq!(
            (g.as_slice(), h.as_slice()),
            ([-0.5, 0.5].as_slice(), [0.25, 0.25].as_slice())
        );
        let (mut g, mut h) = (vec![0.0; 2], vec![0.0; 2]);
        Loss::Multiclass(2).gradients(&[0.0, 0.0], &[1.0], &mut g, &mut h);
        assert_eq!(g, [0.5, -0.5]);
        Loss::Squared.gradients(&[3.0], &[1.0], &mut g, &mut h);
        assert_eq!((g[0], h[0]), (2.0, 1.0));
    }

    #[test]
    fn stopping_waits_for_n_iterations_without_improvement() {
        let mut boosting = Boosting {
            loss: Loss::Squared,
            trees: Vec::new(),
            margins: Vec::new(),
            validation_margins: Vec::new(),
            validation_losses: vec![5.0, 4.0, 3.0, 3.5, 3.2],
            g: Vec::new(),
            h: Vec::new(),
            order: Vec::new(),
        };
        assert!(!boosting.should_stop(3), "3.0 beat 4.0 within the last 3");
        boosting.validation_losses.push(3.1);
        assert!(boosting.should_stop(3), "none of the last 3 beat 3.0");
        // 5.0 is the constant model's loss: 3.0 came after two iterations.
        assert_eq!(boosting.best_iterations(), 2);
    }
}
