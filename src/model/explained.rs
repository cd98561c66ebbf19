//! A loaded version's explanations: its explainer, built once on first use (and its background
//! set read and checked then), the plan the documents describe without building it, and the
//! explanations of scored rows.

use super::explain::background::{self, BACKGROUND_FILE, Background};
use super::explain::{Cancel, ExplainError, Explainer, Explanation, KernelInputs, Plan};
use super::native::FeatureValue;
use super::repository::LoadedModel;
use super::scoring::{Outcome, PredictError};
use super::validate::{RawValue, UnknownFields};
use sha2::Digest;

/// Why a background set could not be had: for good (a damaged or foreign file), or for now (a
/// read that may work next time, such as running out of file handles).
enum BackgroundError {
    Damaged(String),
    Unreadable(String),
}

impl LoadedModel {
    /// The version's explainer, built on first use, or why it cannot explain (422 before any
    /// prediction is made). A background file that cannot be read for now is tried again on the
    /// next request rather than remembered.
    pub fn explainer(&self) -> Result<&Explainer, String> {
        if let Some(built) = self.explainer.get() {
            return built.as_ref().map_err(Clone::clone);
        }
        let background = match self.background() {
            Some(Err(BackgroundError::Unreadable(reason))) => {
                return Err(format!(
                    "model '{}' explains by KernelSHAP, but its background set cannot be read \
                     now ({reason}); try again",
                    self.name()
                ));
            }
            Some(Err(BackgroundError::Damaged(reason))) => Some(Err(reason)),
            Some(Ok(background)) => Some(Ok(background)),
            None => None,
        };
        let kernel = KernelInputs {
            background,
            classes: self.artifact.manifest.labels.len(),
        };
        let built = Explainer::of(&self.artifact.model, self.name(), kernel);
        self.explainer
            .get_or_init(|| built)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// What the version's explanations are (method, unit, weight), or why it has none, without
    /// building the explainer: what the OpenAPI document says.
    pub fn explanation_plan(&self) -> Result<Plan, String> {
        if let Some(built) = self.explainer.get() {
            return built.as_ref().map_err(Clone::clone).map(|explainer| Plan {
                method: explainer.method(),
                unit: explainer.unit(),
                row_weight: explainer.row_weight(),
            });
        }
        let manifest = &self.artifact.manifest;
        Plan::of(
            &self.artifact.model,
            self.name(),
            manifest.labels.len(),
            manifest.artifact.background_sha256.is_some(),
        )
    }

    /// The version's background set, read and checked against its manifest and schema;
    /// `None` when it has none.
    fn background(&self) -> Option<Result<Background, BackgroundError>> {
        let expected = self.artifact.manifest.artifact.background_sha256.as_ref()?;
        let path = self.artifact.dir.join(BACKGROUND_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Some(Err(BackgroundError::Damaged(format!(
                    "{BACKGROUND_FILE} is missing from the version folder"
                ))));
            }
            Err(error) => {
                return Some(Err(BackgroundError::Unreadable(format!(
                    "{}: {error}",
                    path.display()
                ))));
            }
        };
        let actual = format!("{:x}", sha2::Sha256::digest(&bytes));
        if &actual != expected {
            return Some(Err(BackgroundError::Damaged(format!(
                "{BACKGROUND_FILE} does not match its checksum"
            ))));
        }
        Some(
            self.validated_background(&bytes)
                .map_err(BackgroundError::Damaged),
        )
    }

    fn validated_background(&self, bytes: &[u8]) -> Result<Background, String> {
        let background::ParsedBackground {
            rows,
            weights,
            source,
        } = background::parse(bytes)?;
        let mut errors = Vec::new();
        let rows = rows
            .iter()
            .enumerate()
            .map(|(index, fields)| {
                self.validator.validate(
                    fields.iter().map(|(k, v)| (k.as_str(), RawValue::Json(v))),
                    UnknownFields::Reject,
                    &format!("{BACKGROUND_FILE}: rows[{index}]."),
                    &mut errors,
                )
            })
            .collect::<Option<Vec<_>>>();
        match rows {
            Some(rows) => Ok(Background {
                rows: rows.into_iter().map(|row| row.values).collect(),
                weights,
                source,
            }),
            None => Err(errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ")),
        }
    }

    /// The explanations of the rows the model answered (the `Ok`s of `scored`, row by row), in
    /// their order: rows it could not score are not explained. A row whose contributions are
    /// not finite (values so far outside the training data that the arithmetic overflows) is
    /// [`PredictError::Unscorable`], as such a prediction is. Join them to the outcomes with
    /// [`with_explanations`].
    pub fn explain_answered(
        &self,
        explainer: &Explainer,
        rows: &[&[FeatureValue]],
        scored: &[Result<Outcome, PredictError>],
        cancel: &Cancel,
    ) -> Result<Vec<Result<Explanation, PredictError>>, ExplainError> {
        let answered: Vec<&[FeatureValue]> = rows
            .iter()
            .zip(scored)
            .filter(|(_, outcome)| outcome.is_ok())
            .map(|(row, _)| *row)
            .collect();
        Ok(self
            .explain_rows(explainer, &answered, cancel)?
            .into_iter()
            .map(|e| {
                if e.is_finite() {
                    Ok(e)
                } else {
                    Err(PredictError::Unscorable)
                }
            })
            .collect())
    }

    /// Explanations of validated rows by `explainer`, scoring KernelSHAP's rows through
    /// [`LoadedModel::outcomes_of_rows`]; stopped when `cancel` is set.
    pub fn explain_rows(
        &self,
        explainer: &Explainer,
        rows: &[&[FeatureValue]],
        cancel: &Cancel,
    ) -> Result<Vec<Explanation>, ExplainError> {
        let score = |rows: &[&[FeatureValue]]| -> Result<Vec<Vec<f64>>, String> {
            if cancel.is_cancelled() {
                return Err("cancelled".to_string());
            }
            let outcomes = self.outcomes_of_rows(rows).map_err(|e| e.to_string())?;
            outcomes
                .into_iter()
                .map(|outcome| match outcome {
                    Ok(Outcome::Class { probabilities, .. }) => Ok(probabilities),
                    Ok(Outcome::Value(value)) => Ok(vec![value]),
                    Err(error) => Err(error.to_string()),
                })
                .collect()
        };
        explainer.explain_rows(&self.artifact.model, rows, &score, cancel)
    }
}

/// Each scored row with its explanation, when `explained` (from
/// [`LoadedModel::explain_answered`] on the same rows) is given: a row's failure, or its
/// explanation's, is the row's.
pub fn with_explanations(
    scored: Vec<Result<Outcome, PredictError>>,
    explained: Option<Vec<Result<Explanation, PredictError>>>,
) -> impl Iterator<Item = Result<(Outcome, Option<Explanation>), PredictError>> {
    let mut explained = explained.map(Vec::into_iter);
    scored.into_iter().map(move |outcome| {
        let outcome = outcome?;
        match explained.as_mut().and_then(Iterator::next) {
            Some(explanation) => Ok((outcome, Some(explanation?))),
            None => Ok((outcome, None)),
        }
    })
}
