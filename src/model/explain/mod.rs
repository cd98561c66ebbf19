//! Explanations: each feature's contribution to one prediction, plus a base value, summing to
//! the model's output (SHAP values). Exact where the model allows it:
//!
//! - linear models ([`linear`]): coefficient × (encoded value − training mean), summed over a
//!   feature's encoded columns, in log-odds (a multinomial model: each class's raw score before
//!   the softmax) or the target's unit, as shap's `LinearExplainer` with independent features;
//! - trees ([`trees`]): path-dependent TreeSHAP (Lundberg, Erion and Lee 2018, Algorithm 2,
//!   `model::boosted::shap`) with each node's training cover: boosted trees in their raw margin,
//!   as XGBoost's `pred_contribs` and LightGBM's `pred_contrib`; mlserve's decision trees and
//!   random forests in class probability (or the target's unit), as shap's `TreeExplainer`
//!   gives them for scikit-learn's.
//!
//! - every other model (k-NN, SVM, naive Bayes, ONNX graphs) by KernelSHAP ([`kernel`]) against
//!   the version's background set ([`background`]), or says why it cannot explain.

pub mod background;
pub mod kernel;
pub mod linear;
pub mod trees;

use super::artifact::Model;
use super::native::{FeatureValue, ModelError};

/// Why a validated row could not be explained: a fault of the server, never of the request.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The row does not fit the model's encoding.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The explainer was given another model than the one it was built from.
    #[error("the explainer does not belong to this model")]
    OtherModel,
    /// The model failed on KernelSHAP's rows.
    #[error("the model failed on the explanation's rows: {0}")]
    Scoring(String),
    /// The request that asked is gone (it timed out, or its client left): the work stopped.
    #[error("the explanation was stopped: its request is gone")]
    Cancelled,
}

/// How contributions are computed, as answers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exact, for linear models under feature independence.
    Linear,
    /// Exact path-dependent TreeSHAP (shap's `feature_perturbation="tree_path_dependent"`).
    TreePathDependent,
    /// KernelSHAP against a background set: approximate unless the budget covers every
    /// coalition.
    Kernel,
}

impl Method {
    /// The name in answers: `linear`, `tree_path_dependent`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Linear => "linear",
            Method::TreePathDependent => "tree_path_dependent",
            Method::Kernel => "kernel",
        }
    }
}

/// What the contributions and the base value are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Log-odds of the second class.
    LogOdds,
    /// A class's raw score before the link: the softmax's input of a multiclass model, a
    /// one-vs-rest margin, a margin with a sigmoid scale other than 1.
    RawScore,
    /// The log of the predicted number (Poisson, gamma, Tweedie objectives).
    LogValue,
    /// Class probability.
    Probability,
    /// The predicted number itself, in the target's unit.
    Value,
}

impl Unit {
    /// The name in answers: `log_odds`, `raw_score`, `log_value`, `probability`, `value`.
    pub fn name(self) -> &'static str {
        match self {
            Unit::LogOdds => "log_odds",
            Unit::RawScore => "raw_score",
            Unit::LogValue => "log_value",
            Unit::Probability => "probability",
            Unit::Value => "value",
        }
    }
}

/// One output's contributions for one row: base value + Σ features = the output.
#[derive(Debug, Clone, PartialEq)]
pub struct Contributions {
    /// The expected output over the training data.
    pub base_value: f64,
    /// One contribution per schema feature, in schema order.
    pub features: Vec<f64>,
}

impl Explanation {
    /// Whether every contribution and base value is a finite number.
    pub fn is_finite(&self) -> bool {
        self.outputs.iter().all(|output| {
            output.base_value.is_finite() && output.features.iter().all(|v| v.is_finite())
        })
    }
}

/// One row's explanation: one [`Contributions`] for a model that predicts a number or a
/// binary classifier (towards the second class), one per class, in label order, for a
/// multiclass model.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// How they were computed.
    pub method: Method,
    /// Their unit.
    pub unit: Unit,
    /// Whether they are the exact Shapley values: always for linear and tree models; for
    /// KernelSHAP when its budget covered every coalition.
    pub exact: bool,
    /// Per output.
    pub outputs: Vec<Contributions>,
}

/// A request's wish that its explanations stop, set when the request is gone (timed out, or
/// its client left): explanations run on the blocking pool, which a dropped request does not
/// stop by itself. Checked between rows, and between KernelSHAP's batches of coalitions.
#[derive(Debug, Clone, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// Asks the work to stop.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the work should stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A model version's explainer, built on first use and kept with the version.
#[derive(Debug)]
pub struct Explainer {
    method: Method,
    unit: Unit,
    /// Each output's base value, the same for every row (KernelSHAP's are the model's mean
    /// over the background, computed with the explanations).
    bases: Vec<f64>,
    engine: Engine,
}

#[derive(Debug)]
enum Engine {
    Linear(linear::LinearExplainer),
    NativeTrees(trees::NativeTrees),
    Boosted(crate::model::boosted::shap_tables::EnsembleTables),
    Kernel(kernel::KernelExplainer),
}

/// What KernelSHAP needs besides the model: the version's background set (or why it has
/// none) and its number of classes (0 for a model that predicts a number).
pub struct KernelInputs {
    /// The background set, `None` when the version has none.
    pub background: Option<Result<background::Background, String>>,
    /// Classes of a classifier; 0 for a model that predicts a number.
    pub classes: usize,
}

static SAMPLES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(DEFAULT_SAMPLES);

/// Most features KernelSHAP explains: its least squares have one unknown per feature.
pub const MAX_KERNEL_FEATURES: usize = 200;

/// KernelSHAP's default budget: coalitions evaluated a row.
pub const DEFAULT_SAMPLES: usize = 1000;

/// Sets KernelSHAP's budget (setting `explain_samples`) for explainers built from now on.
pub fn set_kernel_samples(samples: usize) {
    SAMPLES.store(samples.max(2), std::sync::atomic::Ordering::Relaxed);
}

impl Explainer {
    /// How contributions are computed.
    pub fn method(&self) -> Method {
        self.method
    }

    /// What contributions are measured in.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// What an explained row counts for against `max_batch_rows`, so that one request cannot
    /// hold the blocking pool for long: 1 for linear SHAP (as cheap as a prediction), 10 for
    /// TreeSHAP (it walks every path of every tree), and for KernelSHAP the predictions it makes
    /// (its coalitions, at most `explain_samples`, × background rows) per thousand: 100 at the
    /// defaults.
    pub fn row_weight(&self) -> usize {
        match &self.engine {
            Engine::Linear(_) => 1,
            Engine::NativeTrees(_) | Engine::Boosted(_) => 10,
            Engine::Kernel(kernel) => (kernel
                .coalitions_per_row()
                .saturating_mul(kernel.background.rows.len())
                / 1000)
                .max(1),
        }
    }

    /// How many outputs each row has: 1, or the number of classes of a multiclass model.
    pub fn outputs(&self) -> usize {
        match &self.engine {
            Engine::Kernel(kernel) => kernel.outputs,
            _ => self.bases.len(),
        }
    }

    /// The explainer of `model`, or why it has none (a sentence for the client): exact where
    /// the model allows it, else KernelSHAP when the version has a background set.
    pub fn of(model: &Model, name: &str, kernel: KernelInputs) -> Result<Explainer, String> {
        // The plan decides the method and unit; this builds the engine it names.
        let plan = Plan::of(model, name, kernel.classes, kernel.background.is_some())?;
        let built = match (plan.method, model) {
            (Method::Kernel, _) => return Explainer::kernel(name, plan.unit, kernel),
            (Method::Linear, Model::Native(native)) => {
                linear::LinearExplainer::of_classifier(native)
                    .map(|(linear, bases)| (Engine::Linear(linear), bases))
            }
            (Method::Linear, Model::NativeRegressor(regressor)) => {
                linear::LinearExplainer::of_regressor(regressor)
                    .map(|(linear, bases)| (Engine::Linear(linear), bases))
            }
            (Method::TreePathDependent, Model::Native(native)) => {
                trees::NativeTrees::of_classifier(native)
                    .map(|(trees, bases)| (Engine::NativeTrees(trees), bases))
            }
            (Method::TreePathDependent, Model::NativeRegressor(regressor)) => {
                trees::NativeTrees::of_regressor(regressor)
                    .map(|(trees, bases)| (Engine::NativeTrees(trees), bases))
            }
            (Method::TreePathDependent, Model::Boosted(boosted)) => Some((
                Engine::Boosted(boosted.shap_tables()),
                trees::boosted_bases(boosted),
            )),
            _ => None,
        };
        let (engine, bases) = built.ok_or_else(|| {
            format!(
                "model '{name}' cannot be explained: its {} explainer does not fit it",
                plan.method.name()
            )
        })?;
        Ok(Explainer {
            method: plan.method,
            unit: plan.unit,
            bases,
            engine,
        })
    }

    fn kernel(name: &str, unit: Unit, inputs: KernelInputs) -> Result<Explainer, String> {
        let background = match inputs.background {
            Some(Ok(background)) => background,
            Some(Err(reason)) => {
                return Err(format!(
                    "model '{name}' explains by KernelSHAP, but its background set cannot be \
                     read: {reason}"
                ));
            }
            None => return Err(no_background(name)),
        };
        let features = background.rows.first().map_or(0, Vec::len);
        if features > MAX_KERNEL_FEATURES {
            return Err(format!(
                "model '{name}' has {features} features: KernelSHAP solves a system of one \
                 unknown per feature for every row, and explains at most \
                 {MAX_KERNEL_FEATURES}"
            ));
        }
        let (first, outputs) = match inputs.classes {
            0 => (0, 1),
            2 => (1, 1),
            classes => (0, classes),
        };
        Ok(Explainer {
            method: Method::Kernel,
            unit,
            bases: Vec::new(),
            engine: Engine::Kernel(kernel::KernelExplainer {
                background,
                samples: SAMPLES.load(std::sync::atomic::Ordering::Relaxed),
                first,
                outputs,
            }),
        })
    }

    /// The explanation of each validated row, in order. `model` is the model the explainer
    /// was built from; `score` runs it (KernelSHAP's coalitions), answering every output of
    /// each row (class probabilities, or the value).
    pub fn explain_rows(
        &self,
        model: &Model,
        rows: &[&[FeatureValue]],
        score: &kernel::Scorer<'_>,
        cancel: &Cancel,
    ) -> Result<Vec<Explanation>, ExplainError> {
        let stopped = |error: String| {
            if cancel.is_cancelled() {
                ExplainError::Cancelled
            } else {
                ExplainError::Scoring(error)
            }
        };
        if let Engine::Kernel(kernel) = &self.engine {
            let bases = kernel.base_values(score).map_err(stopped)?;
            return rows
                .iter()
                .map(|row| {
                    if cancel.is_cancelled() {
                        return Err(ExplainError::Cancelled);
                    }
                    let (outputs, exact) = kernel.explain(row, &bases, score).map_err(stopped)?;
                    Ok(Explanation {
                        method: self.method,
                        unit: self.unit,
                        exact,
                        outputs,
                    })
                })
                .collect();
        }
        rows.iter()
            .map(|row| {
                if cancel.is_cancelled() {
                    return Err(ExplainError::Cancelled);
                }
                self.explain_row(model, row)
            })
            .collect()
    }

    fn explain_row(
        &self,
        model: &Model,
        row: &[FeatureValue],
    ) -> Result<Explanation, ExplainError> {
        let features = row.len();
        let mut phi = vec![0.0; self.outputs() * features];
        match (&self.engine, model) {
            (Engine::Linear(linear), _) => linear.add_contributions(row, &mut phi)?,
            (Engine::NativeTrees(trees), _) => trees.add_contributions(model, row, &mut phi)?,
            (Engine::Boosted(tables), Model::Boosted(boosted)) => {
                trees::add_boosted_contributions(boosted, tables, row, &mut phi)
            }
            (Engine::Boosted(_) | Engine::Kernel(_), _) => return Err(ExplainError::OtherModel),
        }
        let outputs = phi
            .chunks(features.max(1))
            .zip(&self.bases)
            .map(|(values, &base_value)| Contributions {
                base_value,
                features: values.to_vec(),
            })
            .collect();
        Ok(Explanation {
            method: self.method,
            unit: self.unit,
            exact: true,
            outputs,
        })
    }
}

/// What a model's explanations will be, told without building its explainer (no TreeSHAP
/// tables, no background file read): for documents such as the OpenAPI one.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The method.
    pub method: Method,
    /// The unit.
    pub unit: Unit,
    /// What an explained row counts for against `max_batch_rows` (KernelSHAP's, at the most
    /// background rows a set keeps).
    pub row_weight: usize,
}

impl Plan {
    /// The plan of `model`, or why it cannot explain; `classes` is 0 for a model that predicts a
    /// number, `has_background` whether the version keeps a background set (read on first use).
    pub fn of(
        model: &Model,
        name: &str,
        classes: usize,
        has_background: bool,
    ) -> Result<Plan, String> {
        use super::native::stored::WithTrees;
        use super::native::{Estimator, Regressor};
        let exact = |method, unit| {
            let row_weight = if method == Method::Linear { 1 } else { 10 };
            Ok(Plan {
                method,
                unit,
                row_weight,
            })
        };
        let kernel = || {
            if !has_background {
                return Err(no_background(name));
            }
            let samples = SAMPLES.load(std::sync::atomic::Ordering::Relaxed);
            Ok(Plan {
                method: Method::Kernel,
                unit: if classes == 0 {
                    Unit::Value
                } else {
                    Unit::Probability
                },
                row_weight: (samples.saturating_mul(background::MAX_ROWS) / 1000).max(1),
            })
        };
        match model {
            Model::Native(native) if lacks_covers(native.trees()) => Err(without_covers(name)),
            Model::NativeRegressor(regressor) if lacks_covers(regressor.trees()) => {
                Err(without_covers(name))
            }
            Model::Native(native) => match &native.estimator {
                Estimator::LogisticRegression { intercepts, .. } if intercepts.len() == 1 => {
                    exact(Method::Linear, Unit::LogOdds)
                }
                Estimator::LogisticRegression { .. } => exact(Method::Linear, Unit::RawScore),
                Estimator::DecisionTree(_) | Estimator::RandomForest(_) => {
                    exact(Method::TreePathDependent, Unit::Probability)
                }
                _ => kernel(),
            },
            Model::NativeRegressor(regressor) => match &regressor.regressor {
                Regressor::LinearRegression { .. } => exact(Method::Linear, Unit::Value),
                Regressor::DecisionTree(_) | Regressor::RandomForest(_) => {
                    exact(Method::TreePathDependent, Unit::Value)
                }
                _ => kernel(),
            },
            Model::Boosted(boosted) => trees::boosted_unit(boosted, name)
                .and_then(|unit| exact(Method::TreePathDependent, unit)),
            Model::Onnx(_) => kernel(),
        }
    }
}

/// Trees without node covers: trained before model.bin kept them.
fn lacks_covers(trees: Vec<&super::native::Tree>) -> bool {
    !trees.is_empty() && !trees.iter().all(|tree| tree.covers_fit())
}

fn without_covers(name: &str) -> String {
    format!(
        "model '{name}' was trained by an mlserve release that did not keep its trees' node \
         covers, which TreeSHAP weighs with: train it again to explain it"
    )
}

fn no_background(name: &str) -> String {
    format!(
        "model '{name}' has no exact explanation (those are for linear models and trees) and no \
         background set for KernelSHAP: train it again (native models keep one), or import it \
         again with --background CSV (rows standing for the training data)"
    )
}
