//! Scoring validated rows with a loaded version: class probabilities for a classifier, a value
//! for a model that predicts a number, each row's failure its own, and the checks that keep a
//! broken model's answer (probabilities that are no distribution, a value that is not finite)
//! from ever leaving the server.

use super::artifact::Model;
use super::counters::{Tally, value_bin};
use super::manifest::Task;
use super::native::FeatureValue;
use super::repository::LoadedModel;

/// What a model answers for one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A classifier's answer.
    Class {
        /// Index of the predicted class in the model's labels: the argmax of the
        /// probabilities, the first one on a tie (as scikit-learn's `predict`).
        class: usize,
        /// Probability of each class, in label order; each in [0, 1], summing to 1.
        probabilities: Vec<f64>,
    },
    /// A regressor's answer, in the unit of the training target; always finite.
    Value(f64),
}

impl Outcome {
    /// A classifier's outcome from its probabilities.
    pub fn of_probabilities(probabilities: Vec<f64>) -> Outcome {
        Outcome::Class {
            class: super::argmax(&probabilities),
            probabilities,
        }
    }

    /// The predicted value of a regressor; `None` for a classifier.
    pub fn value(&self) -> Option<f64> {
        match self {
            Outcome::Value(value) => Some(*value),
            Outcome::Class { .. } => None,
        }
    }
}

/// Why a validated row got no prediction.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// The model's arithmetic overflowed: the values are far outside anything it was trained on.
    #[error("the model cannot score this row: its values are too far outside the training range")]
    Unscorable,
    /// The row does not fit the model (a validator bug, never user input).
    #[error(transparent)]
    Model(#[from] super::native::ModelError),
    /// The graph refused this one validated row (a value it cannot take, such as a category
    /// its encoder does not know when it was exported to refuse those).
    #[error("the model refused this row: {0}")]
    Refused(String),
    /// The model answered probabilities outside [0, 1] or not summing to 1: the model is
    /// broken, not the row, and such an answer never leaves the server.
    #[error(
        "model '{model}' version {version} answered {probabilities:?}, which is not a probability distribution"
    )]
    NotADistribution {
        /// The model.
        model: String,
        /// Its version.
        version: String,
        /// What it answered.
        probabilities: Vec<f64>,
    },
    /// A model that predicts a number was asked for class probabilities (a caller's fault:
    /// ask [`LoadedModel::outcomes_of_rows`], which answers both tasks).
    #[error("model '{0}' predicts a number; it has no class probabilities")]
    NoClasses(String),
    /// A classifier's artifact under a manifest that says it predicts a number (the load
    /// checks make this impossible).
    #[error("model '{0}' is a classifier; it predicts no number")]
    NoValues(String),
}

impl PredictError {
    /// Whether the row itself is the cause (answered 422, a skipped CSV row), not the server.
    pub fn is_about_the_row(&self) -> bool {
        matches!(self, PredictError::Unscorable | PredictError::Refused(_))
    }
}

/// Each row's outcome or its own error, or an error of the whole run.
pub type Scored<T> = Result<Vec<Result<T, PredictError>>, PredictError>;

impl LoadedModel {
    /// The model's name.
    pub fn name(&self) -> &str {
        &self.artifact.manifest.name
    }

    /// What the model does: classify, or predict a number.
    pub fn task(&self) -> Task {
        self.artifact.manifest.task
    }

    /// An empty tally of this version's predictions, for [`LoadedModel::count_predictions`].
    pub fn new_tally(&self) -> Tally {
        Tally::new(&self.artifact.manifest)
    }

    /// Counts one row's outcome in `tally`: its class, or its value's bin of the training
    /// target's deciles.
    pub fn tally(&self, tally: &mut Tally, outcome: &Outcome) {
        tally.count(match outcome {
            Outcome::Class { class, .. } => Some(*class),
            Outcome::Value(value) => value_bin(&self.artifact.manifest, *value),
        });
    }

    /// Adds what `tally` counted to this version's counters in `/metrics`.
    pub fn count_predictions(&self, tally: &Tally) {
        self.counters
            .add(&self.artifact.manifest, &self.version_label, tally);
    }

    /// The outcome of each validated row, in order: what every predict path scores with.
    /// Errors as [`LoadedModel::probabilities_of_rows`] for a classifier; a regressor's value
    /// that is not finite is [`PredictError::Unscorable`] for its row.
    pub fn outcomes_of_rows(&self, rows: &[&[FeatureValue]]) -> Scored<Outcome> {
        let outcomes = match self.task() {
            Task::Regression => self
                .values_of_rows(rows)?
                .into_iter()
                .map(|row| row.map(Outcome::Value))
                .collect(),
            Task::Classification => self
                .probabilities_of_rows(rows)?
                .into_iter()
                .map(|row| row.map(Outcome::of_probabilities))
                .collect(),
        };
        Ok(outcomes)
    }

    /// The predicted value of each validated row of a model that predicts a number, each
    /// finite or [`PredictError::Unscorable`].
    fn values_of_rows(&self, rows: &[&[FeatureValue]]) -> Scored<f64> {
        let finite_value = |value: f64| {
            if value.is_finite() {
                Ok(value)
            } else {
                Err(PredictError::Unscorable)
            }
        };
        match &self.artifact.model {
            Model::NativeRegressor(model) => Ok(rows
                .iter()
                .map(|row| model.predict(row).map_err(PredictError::from))
                .map(|value| value.and_then(finite_value))
                .collect()),
            Model::Onnx(runner) => Ok(onnx_rows(runner, rows)
                .into_iter()
                .map(|row| {
                    row.and_then(|scores| finite_value(scores.first().copied().unwrap_or(f64::NAN)))
                })
                .collect()),
            Model::Boosted(model) => Ok(boosted_rows(model, rows)
                .into_iter()
                .map(|answer| finite_value(answer.first().copied().unwrap_or(f64::NAN)))
                .collect()),
            Model::Native(_) => Err(PredictError::NoValues(self.name().to_string())),
        }
    }

    /// Class probabilities of a validated row of a classifier; every one finite, or an error.
    pub fn probabilities(&self, values: &[FeatureValue]) -> Result<Vec<f64>, PredictError> {
        self.probabilities_of_rows(&[values])?
            .pop()
            .unwrap_or(Err(PredictError::Unscorable))
    }

    /// Class probabilities of several validated rows of a classifier, each finite or an error
    /// of its own; an ONNX graph runs once for them all. The outer error is a failure of the
    /// whole run, which is also what an answer that is not a probability distribution is
    /// (within 1e-6 for native models, 1e-4 for single-precision graphs), and what a model that
    /// predicts a number answers ([`PredictError::NoClasses`]).
    pub fn probabilities_of_rows(&self, rows: &[&[FeatureValue]]) -> Scored<Vec<f64>> {
        let scored = self.unchecked_probabilities_of_rows(rows)?;
        let tolerance = match self.artifact.model {
            Model::Native(_) | Model::NativeRegressor(_) | Model::Boosted(_) => 1e-6,
            Model::Onnx(_) => 1e-4,
        };
        for probabilities in scored.iter().flatten() {
            if !super::native::is_distribution(probabilities, tolerance) {
                return Err(PredictError::NotADistribution {
                    model: self.name().to_string(),
                    version: self.version_label.clone(),
                    probabilities: probabilities.clone(),
                });
            }
        }
        Ok(scored)
    }

    fn unchecked_probabilities_of_rows(&self, rows: &[&[FeatureValue]]) -> Scored<Vec<f64>> {
        if self.task() == Task::Regression {
            return Err(PredictError::NoClasses(self.name().to_string()));
        }
        match &self.artifact.model {
            Model::NativeRegressor(_) => Err(PredictError::NoClasses(self.name().to_string())),
            Model::Native(model) => Ok(rows
                .iter()
                .map(|row| {
                    model
                        .predict_proba(row)
                        .map_err(PredictError::from)
                        .and_then(finite)
                })
                .collect()),
            Model::Onnx(runner) => Ok(onnx_rows(runner, rows)
                .into_iter()
                .map(|row| row.and_then(finite))
                .collect()),
            Model::Boosted(model) => {
                Ok(boosted_rows(model, rows).into_iter().map(finite).collect())
            }
        }
    }
}

/// The tree engine's answers for validated rows, in one pass over the trees.
fn boosted_rows(model: &super::boosted::BoostedTrees, rows: &[&[FeatureValue]]) -> Vec<Vec<f64>> {
    let rows: Vec<Vec<f64>> = rows.iter().map(|row| model.row(row)).collect();
    model.predict_rows(&rows)
}

/// A graph's scores of each row. One row the graph cannot take fails the whole run: then the
/// rows are scored one by one, so only that row is refused.
fn onnx_rows(
    runner: &super::imported::OnnxRunner,
    rows: &[&[FeatureValue]],
) -> Vec<Result<Vec<f64>, PredictError>> {
    match runner.scores(rows) {
        Ok(all) => all.into_iter().map(Ok).collect(),
        Err(_) if rows.len() > 1 => rows
            .iter()
            .map(|row| match runner.scores(&[row]) {
                Ok(mut one) => Ok(one.pop().unwrap_or_default()),
                Err(error) => Err(PredictError::Refused(error.to_string())),
            })
            .collect(),
        Err(error) => vec![Err(PredictError::Refused(error.to_string()))],
    }
}

fn finite(probabilities: Vec<f64>) -> Result<Vec<f64>, PredictError> {
    if probabilities.iter().all(|p| p.is_finite()) {
        Ok(probabilities)
    } else {
        Err(PredictError::Unscorable)
    }
}
