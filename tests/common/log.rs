//! Prediction-log records as the server hands them over, for tests that drive the log directly.

use mlserve::model::{FeatureValue, LoadedModel, Outcome, Repository};
use mlserve::store::PredictionRecord;
use mlserve::store::policy::InputPolicy;
use mlserve::store::record::{Answered, RequestKey};
use std::sync::{Arc, OnceLock};

/// The demo breast-cancer model (30 numeric features, two labels), trained and loaded once.
pub fn cancer_model() -> Arc<LoadedModel> {
    static MODEL: OnceLock<(tempfile::TempDir, Arc<LoadedModel>)> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            mlserve::train::train_demo_models_if_empty(dir.path()).unwrap();
            let repository = Repository::new(dir.path());
            repository.reload_all(false);
            let model = repository.catalog().resolve("breast_cancer", None).unwrap();
            (dir, model)
        })
        .1
        .clone()
}

/// Valid inputs of `model`: each number its training mean plus `i` thousandths, the
/// categories and booleans in turn.
pub fn inputs(model: &LoadedModel, i: usize) -> Vec<FeatureValue> {
    use mlserve::data::ColumnKind;
    model
        .artifact
        .manifest
        .features
        .iter()
        .map(|f| match f.kind {
            ColumnKind::Number => FeatureValue::Number(f.mean.unwrap_or(0.0) + i as f64 * 1e-3),
            ColumnKind::Integer | ColumnKind::Boolean => FeatureValue::Number((i % 2) as f64),
            ColumnKind::Categorical => {
                let categories = f.categories.clone().unwrap_or_default();
                FeatureValue::Category(categories[i % categories.len()].clone())
            }
            _ => FeatureValue::Text(format!("text {i}")),
        })
        .collect()
}

/// The record of request `request_id`'s row 0, answered at `created_at_ms`, predicting the
/// first label.
pub fn record(
    model: &Arc<LoadedModel>,
    request_id: &str,
    i: usize,
    created_at_ms: i64,
) -> PredictionRecord {
    let labels = model.artifact.manifest.labels.len();
    let mut probabilities = vec![0.0; labels];
    probabilities[0] = 0.75;
    probabilities[labels - 1] += 0.25;
    let values = inputs(model, i);
    let outcome = Outcome::Class {
        class: 0,
        probabilities,
    };
    let answered = Answered {
        row_index: 0,
        values: &values,
        outcome: &outcome,
    };
    PredictionRecord::new(
        model,
        &RequestKey::of(request_id),
        answered,
        &InputPolicy::default(),
        100,
        None,
    )
    .at(created_at_ms)
}
