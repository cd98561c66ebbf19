//! The model layer's one predict path: resolve a model and version, score validated rows into
//! task-generic predictions, and the one error a prediction request can end in
//! ([`PredictFailure`]), which each wire format maps once (problem details, the Open Inference
//! Protocol's `{"error"}`, a web page, a command-line message).

use super::explain::{Cancel, Explanation};
use super::explained::with_explanations;
use super::native::FeatureValue;
use super::repository::{Catalog, LoadedModel, ModelEntry};
use super::scoring::Outcome;
use super::validate::{FieldError, ValidRow};
use std::sync::Arc;

/// The class with the highest probability; the first one on a tie, as `numpy.argmax` (which
/// scikit-learn's `predict` applies to `predict_proba`).
pub fn argmax(probabilities: &[f64]) -> usize {
    let mut best = 0;
    for (class, &p) in probabilities.iter().enumerate() {
        if p > probabilities[best] {
            best = class;
        }
    }
    best
}

/// One row's prediction.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// What the model answered: a class and its probabilities, or a value.
    pub outcome: Outcome,
    /// Values outside the training range.
    pub warnings: Vec<crate::model::validate::RangeWarning>,
    /// The validated inputs it was made from, for the prediction log.
    pub values: Vec<FeatureValue>,
    /// Each feature's contribution, when the request asked for explanations.
    pub explanation: Option<Explanation>,
}

impl Prediction {
    /// The predicted label of a classifier; `None` for a model that predicts a number.
    pub fn label<'a>(&self, model: &'a LoadedModel) -> Option<&'a str> {
        match self.outcome {
            Outcome::Class { class, .. } => Some(
                model
                    .artifact
                    .manifest
                    .labels
                    .get(class)
                    .map_or("", String::as_str),
            ),
            Outcome::Value(_) => None,
        }
    }
}

/// Why a prediction request got no answer: what every protocol maps to its own wire format.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PredictFailure {
    /// No model has this name (404).
    #[error("no model named '{name}'; the models are: {}", list_or_none(.available))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The models there are.
        available: Vec<String>,
    },
    /// The model has no such version (404).
    #[error("model '{name}' has no version '{version}'; its versions are {}", .known.join(", "))]
    UnknownVersion {
        /// The model.
        name: String,
        /// The version asked for.
        version: String,
        /// The versions there are.
        known: Vec<String>,
    },
    /// The model or version exists but failed to load (503, try again later).
    #[error("{detail}")]
    NotLoaded {
        /// The model.
        name: String,
        /// Which version failed and why.
        detail: String,
    },
    /// Rows the validator or the model refused (422), every problem listed.
    #[error("{}", describe_invalid(.0))]
    Invalid(Vec<FieldError>),
    /// The request asked for explanations the model cannot give (422), with the reason.
    #[error("{0}")]
    CannotExplain(String),
    /// More rows than `max_batch_rows` (413).
    #[error("the batch has {rows} rows; the limit is {limit} (setting max_batch_rows)")]
    TooManyRows {
        /// Rows sent.
        rows: usize,
        /// The setting.
        limit: usize,
    },
    /// Explanations of more rows than `max_batch_rows` allows at their method's weight (413).
    #[error("{}", too_many_explained(*.rows, .method, *.weight, *.limit))]
    TooManyExplained {
        /// Rows sent.
        rows: usize,
        /// The explanation method's name.
        method: &'static str,
        /// What one explained row counts for.
        weight: usize,
        /// The setting.
        limit: usize,
    },
    /// A fault of the server, never of the request (500); the cause is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

fn too_many_explained(rows: usize, method: &str, weight: usize, limit: usize) -> String {
    let rows_text = if rows == 1 {
        "1 row".to_string()
    } else {
        format!("{rows} rows")
    };
    let counted = format!(
        "explaining {rows_text} counts as {} rows against the limit ({method} explanations \
         count {weight} a row); the limit is {limit} (setting max_batch_rows)",
        rows.saturating_mul(weight)
    );
    match limit / weight.max(1) {
        0 => format!("{counted}: not even one row fits; raise max_batch_rows to at least {weight}"),
        fits => format!("{counted}: send at most {fits} rows a request"),
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// "1 problem with the input: field: message", or "N problems with the input; see errors".
fn describe_invalid(errors: &[FieldError]) -> String {
    match errors {
        [one] => format!("1 problem with the input: {}: {}", one.field, one.message),
        many => format!("{} problems with the input; see errors", many.len()),
    }
}

impl Catalog {
    /// The model version a request names: the default (highest loaded) version, or a pinned one.
    pub fn resolve(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<LoadedModel>, PredictFailure> {
        let entry = self
            .models
            .get(name)
            .ok_or_else(|| PredictFailure::UnknownModel {
                name: name.to_string(),
                available: self.models.keys().cloned().collect(),
            })?;
        let Some(text) = version else {
            return entry
                .default_model()
                .cloned()
                .ok_or_else(|| no_loaded_version(name, entry));
        };
        let slot = text
            .parse::<u32>()
            .ok()
            .and_then(|v| entry.versions.get(&v))
            .ok_or_else(|| PredictFailure::UnknownVersion {
                name: name.to_string(),
                version: text.to_string(),
                known: entry.versions.keys().map(u32::to_string).collect(),
            })?;
        slot.loaded
            .clone()
            .ok_or_else(|| PredictFailure::NotLoaded {
                name: name.to_string(),
                detail: format!(
                    "model '{name}' version {text} failed to load: {}",
                    slot.error.as_deref().unwrap_or("unknown error")
                ),
            })
    }
}

fn no_loaded_version(name: &str, entry: &ModelEntry) -> PredictFailure {
    let reasons: Vec<String> = entry
        .versions
        .iter()
        .filter_map(|(v, slot)| slot.error.as_ref().map(|e| format!("version {v}: {e}")))
        .collect();
    PredictFailure::NotLoaded {
        name: name.to_string(),
        detail: format!(
            "model '{name}' has no version that loads ({})",
            reasons.join("; ")
        ),
    }
}

impl LoadedModel {
    /// Scores validated rows: one prediction per row, in order. A row the model cannot score
    /// (arithmetic overflow far outside the training data, a value an ONNX graph refuses) is
    /// [`PredictFailure::Invalid`], named `instances[i]` when `batch`; every such row is listed.
    /// With `explain` (and the request's [`Cancel`], which stops the work when the request is
    /// gone), each prediction carries its explanation; a model that cannot explain is
    /// [`PredictFailure::CannotExplain`], before anything is scored.
    pub fn predict(
        &self,
        rows: Vec<ValidRow>,
        batch: bool,
        explain: Option<&Cancel>,
    ) -> Result<Vec<Prediction>, PredictFailure> {
        let explaining = match explain {
            Some(cancel) => Some((
                self.explainer().map_err(PredictFailure::CannotExplain)?,
                cancel,
            )),
            None => None,
        };
        let (scored, explained) = {
            let values: Vec<&[FeatureValue]> =
                rows.iter().map(|row| row.values.as_slice()).collect();
            let scored = self
                .outcomes_of_rows(&values)
                .map_err(|error| PredictFailure::Internal(error.to_string()))?;
            let explained = match explaining {
                Some((explainer, cancel)) => Some(
                    self.explain_answered(explainer, &values, &scored, cancel)
                        .map_err(|error| PredictFailure::Internal(error.to_string()))?,
                ),
                None => None,
            };
            (scored, explained)
        };
        // A probability outside [0, 1] or a sum off 1 fails the whole run above: the model is
        // broken, not the row (500, logged with the model and version).
        let mut unscorable = Vec::new();
        let mut predictions = Vec::with_capacity(rows.len());
        let answers = rows.into_iter().zip(with_explanations(scored, explained));
        for (index, (row, answered)) in answers.enumerate() {
            match answered {
                Ok((outcome, explanation)) => predictions.push(Prediction {
                    outcome,
                    warnings: row.warnings,
                    values: row.values,
                    explanation,
                }),
                Err(error) if error.is_about_the_row() => unscorable.push(FieldError {
                    field: if batch {
                        format!("instances[{index}]")
                    } else {
                        String::new()
                    },
                    message: error.to_string(),
                }),
                Err(error) => return Err(PredictFailure::Internal(error.to_string())),
            }
        }
        if unscorable.is_empty() {
            Ok(predictions)
        } else {
            Err(PredictFailure::Invalid(unscorable))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_first_of_ties() {
        assert_eq!(argmax(&[0.2, 0.4, 0.4]), 1);
        assert_eq!(argmax(&[1.0]), 0);
    }

    #[test]
    fn an_unknown_model_names_the_models_there_are() {
        let catalog = Catalog::default();
        let failure = catalog.resolve("titanic", None).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "no model named 'titanic'; the models are: none"
        );
    }
}
