//! Data drift: how far recent inputs have moved from the training distribution, per feature,
//! as the population stability index (PSI) over the training bins.
//!
//! PSI = Σ (actual − expected) · ln(actual / expected) over the bins. Common readings: below 0.1
//! no shift, 0.1–0.2 a moderate shift, above 0.2 a shift worth acting on (the default
//! threshold). Numeric features use the training deciles stored in the manifest; categorical
//! features their training shares; booleans the share of `true`.

use crate::data::ColumnKind;
use crate::model::FeatureSchema;
use serde::Serialize;
use serde_json::{Map, Value};

/// Shares below this count as this, so an empty bin does not make the index infinite.
const FLOOR: f64 = 1e-4;
/// Fewer recent values than this give an index too noisy to flag a feature on.
pub const MIN_VALUES: usize = 50;

/// The population stability index between two distributions over the same bins.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(FLOOR), a.max(FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// The drift of one feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub feature: String,
    /// Population stability index, or `None` when the feature has no baseline (text, dates,
    /// or a model trained before baselines were kept) or no recent values.
    pub psi: Option<f64>,
    /// Whether the index is above the threshold (never with fewer than [`MIN_VALUES`] values).
    pub drifted: bool,
    /// Recent values that were counted (missing values are not).
    pub values: usize,
}

/// Expected shares, and a function from a logged value to its bin.
type Bins<'a> = (Vec<f64>, Box<dyn Fn(&Value) -> Option<usize> + 'a>);

fn bins(feature: &FeatureSchema) -> Option<Bins<'_>> {
    match feature.kind {
        ColumnKind::Number | ColumnKind::Integer => {
            let histogram = feature.baseline.as_ref()?;
            Some((
                histogram.shares.clone(),
                Box::new(move |value: &Value| value.as_f64().map(|v| histogram.bin(v))),
            ))
        }
        ColumnKind::Boolean => {
            let share = feature.mean?;
            Some((
                vec![1.0 - share, share],
                Box::new(|value: &Value| match value {
                    Value::Bool(b) => Some(usize::from(*b)),
                    Value::Number(n) => n.as_f64().map(|v| usize::from(v != 0.0)),
                    _ => None,
                }),
            ))
        }
        ColumnKind::Categorical => {
            let categories = feature.categories.as_ref()?;
            let frequencies = feature.frequencies.as_ref()?;
            let expected = categories
                .iter()
                .map(|c| frequencies.get(c).copied().unwrap_or(0.0))
                .collect();
            Some((
                expected,
                Box::new(move |value: &Value| {
                    value
                        .as_str()
                        .and_then(|text| categories.iter().position(|c| c == text))
                }),
            ))
        }
        ColumnKind::String | ColumnKind::Date | ColumnKind::DateTime => None,
    }
}

/// The drift of every feature between its training baseline and `recent` inputs (logged
/// input objects).
pub fn feature_drift(
    features: &[FeatureSchema],
    recent: &[Map<String, Value>],
    threshold: f64,
) -> Vec<FeatureDrift> {
    features
        .iter()
        .map(|feature| {
            let Some((expected, bin_of)) = bins(feature) else {
                return FeatureDrift {
                    feature: feature.name.clone(),
                    psi: None,
                    drifted: false,
                    values: 0,
                };
            };
            let mut counts = vec![0usize; expected.len()];
            for row in recent {
                if let Some(bin) = row.get(&feature.name).and_then(&bin_of)
                    && let Some(count) = counts.get_mut(bin)
                {
                    *count += 1;
                }
            }
            let total: usize = counts.iter().sum();
            let index = (total > 0).then(|| {
                let actual: Vec<f64> = counts.iter().map(|&c| c as f64 / total as f64).collect();
                psi(&expected, &actual)
            });
            FeatureDrift {
                feature: feature.name.clone(),
                drifted: total >= MIN_VALUES && index.is_some_and(|p| p > threshold),
                psi: index,
                values: total,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExampleValue, Histogram};
    use serde_json::json;

    fn number(name: &str, training: &[f64]) -> FeatureSchema {
        FeatureSchema {
            name: name.into(),
            kind: ColumnKind::Number,
            nullable: false,
            example: ExampleValue::Number(0.0),
            min: None,
            max: None,
            mean: None,
            std: None,
            categories: None,
            frequencies: None,
            baseline: Histogram::deciles(training),
        }
    }

    #[test]
    fn identical_distributions_have_no_drift_and_shifted_ones_do() {
        assert!(psi(&[0.5, 0.5], &[0.5, 0.5]).abs() < 1e-12);
        assert!(psi(&[0.5, 0.5], &[0.9, 0.1]) > 0.2);
        let training: Vec<f64> = (0..1000).map(|i| f64::from(i) / 10.0).collect();
        let feature = number("x", &training);
        let same: Vec<Map<String, Value>> = (0..500)
            .map(|i| {
                json!({"x": f64::from(i * 2) / 10.0})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect();
        let shifted: Vec<Map<String, Value>> = (0..500)
            .map(|i| {
                json!({"x": 60.0 + f64::from(i) / 10.0})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect();
        let calm = &feature_drift(std::slice::from_ref(&feature), &same, 0.2)[0];
        assert!(calm.psi.unwrap() < 0.05 && !calm.drifted, "{calm:?}");
        assert_eq!(calm.values, 500);
        let moved = &feature_drift(std::slice::from_ref(&feature), &shifted, 0.2)[0];
        assert!(moved.psi.unwrap() > 1.0 && moved.drifted, "{moved:?}");
    }

    #[test]
    fn deciles_split_the_training_values_evenly() {
        let training: Vec<f64> = (0..100).map(f64::from).collect();
        let histogram = Histogram::deciles(&training).unwrap();
        assert_eq!(histogram.edges.len(), 9);
        for share in &histogram.shares {
            assert!((share - 0.1).abs() < 0.011, "{histogram:?}");
        }
        let few = Histogram::deciles(&[0.0, 0.0, 1.0, 1.0]).unwrap();
        assert_eq!(few.edges, vec![0.0]);
        assert_eq!(few.shares, vec![0.5, 0.5]);
    }

    #[test]
    fn features_without_a_baseline_are_reported_as_such() {
        let mut feature = number("x", &[1.0, 2.0]);
        feature.baseline = None;
        let rows = vec![json!({"x": 1.0}).as_object().unwrap().clone()];
        let result = &feature_drift(&[feature], &rows, 0.2)[0];
        assert_eq!((result.psi, result.drifted), (None, false));
        // A handful of values far off gives a large index, but too few to flag.
        let feature = number("x", &(0..100).map(f64::from).collect::<Vec<_>>());
        let few: Vec<Map<String, Value>> = (0..10)
            .map(|_| json!({"x": 1000.0}).as_object().unwrap().clone())
            .collect();
        let result = &feature_drift(&[feature], &few, 0.2)[0];
        assert!(result.psi.unwrap() > 1.0 && !result.drifted);
    }
}
