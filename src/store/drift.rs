//! Data drift: how far recent inputs have moved from the training distribution, per feature,
//! as the population stability index (PSI) over the training bins.
//!
//! PSI = Σ (actual − expected) · ln(actual / expected) over the bins. Common readings: below 0.1
//! no shift, 0.1–0.2 a moderate shift, above 0.2 a shift worth acting on (the default
//! threshold). Numeric features use the training deciles stored in the manifest; categorical
//! features their training shares; booleans the share of `true`.

use super::log_schema::LogSchema;
use super::policy::Kept;
use super::record::{Raw, read_raw};
use crate::data::ColumnKind;
use crate::model::{FeatureSchema, Histogram};
use serde::Serialize;

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

/// The training shares of a feature's bins, when it has a baseline: the training deciles of
/// a number, the share of `true` of a boolean, the frequencies of a categorical feature's
/// categories. Text, dates and models trained before baselines were kept have none.
pub fn expected_shares(feature: &FeatureSchema) -> Option<Vec<f64>> {
    match feature.kind {
        ColumnKind::Number | ColumnKind::Integer => Some(feature.baseline.as_ref()?.shares.clone()),
        ColumnKind::Boolean => {
            let share = feature.mean?;
            Some(vec![1.0 - share, share])
        }
        ColumnKind::Categorical => {
            let categories = feature.categories.as_ref()?;
            let frequencies = feature.frequencies.as_ref()?;
            Some(
                categories
                    .iter()
                    .map(|c| frequencies.get(c).copied().unwrap_or(0.0))
                    .collect(),
            )
        }
        ColumnKind::String | ColumnKind::Date | ColumnKind::DateTime => None,
    }
}

/// The bin of one logged value among [`expected_shares`]'s bins; `None` for a missing value,
/// or when the feature has no bins.
pub fn bin_of(feature: &FeatureSchema, value: Raw<'_>) -> Option<usize> {
    counted_as(feature).bin(value)
}

/// How a model version's logged inputs are counted in drift bins ([`bin_of`]'s bins),
/// worked out once per version from its features and the schema its rows are written in, so
/// that counting a row only decodes its values and finds their bins: about 3,600 instructions
/// for a 30-feature row, where looking up each feature's kind, policy and baseline as well
/// cost about 3,900.
#[derive(Debug, Clone, Default)]
pub struct DriftBins {
    /// One step per written value, in the order the row holds them.
    steps: Vec<Step>,
    /// The number of bins of each feature (0 for a feature without a baseline).
    sizes: Vec<usize>,
}

/// One written value: how to read it and, if it is counted, where.
#[derive(Debug, Clone)]
struct Step {
    kind: ColumnKind,
    categories: usize,
    /// The feature's place in the counts.
    feature: usize,
    counted: Counted,
}

#[derive(Debug, Clone)]
enum Counted {
    /// Read past only: no baseline, or kept as a hash.
    Not,
    /// A number, binned by its training histogram.
    Number(Histogram),
    /// A boolean: bin 0 false, 1 true.
    Boolean,
    /// A category index below this many categories.
    Category(usize),
}

impl DriftBins {
    /// The binning of rows written as `schema` says, by the baselines of `features` (which
    /// the schema was made from, in the same order). No features: nothing is counted.
    pub fn of(features: &[FeatureSchema], schema: &LogSchema) -> DriftBins {
        let mut steps = Vec::with_capacity(features.len());
        for (feature, (written, logged)) in features.iter().zip(&schema.features).enumerate() {
            let Some(kind) = logged.kind_as_written() else {
                continue;
            };
            let counted = if logged.kept == Kept::Value {
                counted_as(written)
            } else {
                Counted::Not
            };
            steps.push(Step {
                kind,
                categories: logged.categories.as_ref().map_or(0, Vec::len),
                feature,
                counted,
            });
        }
        DriftBins {
            steps,
            sizes: features
                .iter()
                .map(|f| expected_shares(f).map_or(0, |e| e.len()))
                .collect(),
        }
    }

    /// Whether no feature is counted (rows are counted as predictions only).
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Zero counts, one list per feature.
    pub fn zeros(&self) -> Vec<Vec<i64>> {
        self.sizes.iter().map(|&n| vec![0; n]).collect()
    }

    /// Adds the bins of one row's inputs (written as [`super::record`] says) to `counts`
    /// ([`DriftBins::zeros`]'s shape). Missing values are not counted; bytes that do not
    /// fit stop the counting there.
    pub fn count(&self, counts: &mut [Vec<i64>], mut inputs: &[u8]) {
        for step in &self.steps {
            let Some(raw) = read_raw(step.kind, step.categories, &mut inputs) else {
                break;
            };
            let Some(bin) = step.counted.bin(raw) else {
                continue;
            };
            if let Some(count) = counts.get_mut(step.feature).and_then(|c| c.get_mut(bin)) {
                *count += 1;
            }
        }
    }
}

impl Counted {
    /// The bin of a value; `None` for a missing value or one not counted.
    fn bin(&self, value: Raw<'_>) -> Option<usize> {
        match (self, value) {
            (Counted::Number(histogram), Raw::Number(v)) => Some(histogram.bin(v)),
            (Counted::Boolean, Raw::Number(v)) => Some(usize::from(v != 0.0)),
            (Counted::Category(n), Raw::Category(index)) => (index < *n).then_some(index),
            _ => None,
        }
    }
}

/// How a feature's values are binned: its training histogram's edges for a number, false and
/// true for a boolean, the categories of a categorical feature; nothing without a baseline.
fn counted_as(feature: &FeatureSchema) -> Counted {
    match feature.kind {
        ColumnKind::Number | ColumnKind::Integer => feature
            .baseline
            .as_ref()
            .map_or(Counted::Not, |b| Counted::Number(b.clone())),
        ColumnKind::Boolean if feature.mean.is_some() => Counted::Boolean,
        ColumnKind::Categorical => match (&feature.categories, &feature.frequencies) {
            (Some(categories), Some(_)) => Counted::Category(categories.len()),
            _ => Counted::Not,
        },
        _ => Counted::Not,
    }
}

/// The drift of every feature between its training baseline and the counts of recent values
/// in its bins (`counts[i]` for `features[i]`, as [`bin_of`] places them; an empty or
/// mismatched list counts as no values).
pub fn feature_drift(
    features: &[FeatureSchema],
    counts: &[Vec<i64>],
    threshold: f64,
) -> Vec<FeatureDrift> {
    features
        .iter()
        .enumerate()
        .map(|(i, feature)| {
            let expected = expected_shares(feature);
            drift_of(
                &feature.name,
                expected.as_deref(),
                counts.get(i).map(Vec::as_slice),
                threshold,
            )
        })
        .collect()
}

/// The drift of a regressor's outputs: its predicted values counted in the bins of its
/// held-out predictions' deciles (`counts`), against their shares of them
/// ([`crate::model::TargetSchema::predictions`]). Named `prediction`; no index when the version
/// keeps no such baseline (an import without a features CSV, an earlier release's model).
pub fn prediction_drift(
    target: Option<&crate::model::TargetSchema>,
    counts: &[i64],
    threshold: f64,
) -> FeatureDrift {
    let expected = target
        .and_then(|t| t.predictions.as_ref())
        .map(|b| b.shares.as_slice());
    drift_of("prediction", expected, Some(counts), threshold)
}

/// The drift of counts in bins against expected shares; counts of another number of bins
/// count as no values.
fn drift_of(
    name: &str,
    expected: Option<&[f64]>,
    counts: Option<&[i64]>,
    threshold: f64,
) -> FeatureDrift {
    let counts = counts.filter(|c| expected.is_some_and(|e| e.len() == c.len()));
    let total: i64 = counts.map_or(0, |c| c.iter().map(|&n| n.max(0)).sum());
    let index = expected
        .zip(counts)
        .filter(|_| total > 0)
        .map(|(expected, counts)| {
            let actual: Vec<f64> = counts
                .iter()
                .map(|&c| c.max(0) as f64 / total as f64)
                .collect();
            psi(expected, &actual)
        });
    let values = usize::try_from(total).unwrap_or(0);
    FeatureDrift {
        feature: name.to_string(),
        drifted: values >= MIN_VALUES && index.is_some_and(|p| p > threshold),
        psi: index,
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExampleValue, Histogram};

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

    fn counted(feature: &FeatureSchema, values: impl Iterator<Item = f64>) -> Vec<i64> {
        let mut counts = vec![0; expected_shares(feature).unwrap().len()];
        for v in values {
            counts[bin_of(feature, Raw::Number(v)).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn identical_distributions_have_no_drift_and_shifted_ones_do() {
        assert!(psi(&[0.5, 0.5], &[0.5, 0.5]).abs() < 1e-12);
        assert!(psi(&[0.5, 0.5], &[0.9, 0.1]) > 0.2);
        let training: Vec<f64> = (0..1000).map(|i| f64::from(i) / 10.0).collect();
        let feature = number("x", &training);
        let same = counted(&feature, (0..500).map(|i| f64::from(i * 2) / 10.0));
        let shifted = counted(&feature, (0..500).map(|i| 60.0 + f64::from(i) / 10.0));
        let calm = &feature_drift(std::slice::from_ref(&feature), &[same], 0.2)[0];
        assert!(calm.psi.unwrap() < 0.05 && !calm.drifted, "{calm:?}");
        assert_eq!(calm.values, 500);
        let moved = &feature_drift(std::slice::from_ref(&feature), &[shifted], 0.2)[0];
        assert!(moved.psi.unwrap() > 1.0 && moved.drifted, "{moved:?}");
    }

    #[test]
    fn rows_are_counted_in_the_bins_bin_of_gives_each_value() {
        use crate::model::FeatureValue;
        use crate::store::policy::InputPolicy;
        use crate::store::record::encode_inputs;
        let training: Vec<f64> = (0..100).map(f64::from).collect();
        let mut flag = number("flag", &[]);
        (flag.kind, flag.mean) = (ColumnKind::Boolean, Some(0.3));
        let mut plan = number("plan", &[]);
        plan.kind = ColumnKind::Categorical;
        plan.categories = Some(vec!["a".into(), "b".into(), "c".into()]);
        plan.frequencies = Some([("a".into(), 0.5), ("b".into(), 0.5)].into());
        let mut note = number("note", &[]);
        note.kind = ColumnKind::String;
        let mut unbinned = number("unbinned", &[]);
        unbinned.baseline = None;
        let mut secret = plan.clone();
        secret.name = "secret".into();
        let features = vec![
            number("x", &training),
            flag,
            plan,
            note,
            number("dropped", &training),
            unbinned,
            secret,
            number("y", &training),
        ];
        let policy = InputPolicy::new(&["dropped".into()], &["secret".into()], "key");
        let schema = LogSchema::of(&features, &[], &policy);
        let bins = DriftBins::of(&features, &schema);
        let rows = [
            [
                FeatureValue::Number(42.5),
                FeatureValue::Number(1.0),
                FeatureValue::Category("c".into()),
                FeatureValue::Text("hello".into()),
                FeatureValue::Number(7.0),
                FeatureValue::Number(3.0),
                FeatureValue::Category("b".into()),
                FeatureValue::Number(99.0),
            ],
            [
                FeatureValue::Missing,
                FeatureValue::Number(0.0),
                FeatureValue::Category("a".into()),
                FeatureValue::Missing,
                FeatureValue::Missing,
                FeatureValue::Missing,
                FeatureValue::Missing,
                FeatureValue::Number(-5.0),
            ],
        ];
        let mut counts = bins.zeros();
        for row in &rows {
            bins.count(&mut counts, &encode_inputs(&features, row, &policy));
        }
        // The same counts, value by value through bin_of; the excluded and hashed features
        // and those without a baseline count nothing.
        let mut expected: Vec<Vec<i64>> = features
            .iter()
            .map(|f| vec![0; expected_shares(f).map_or(0, |e| e.len())])
            .collect();
        for row in &rows {
            for (i, (feature, value)) in features.iter().zip(row).enumerate() {
                let raw = match value {
                    FeatureValue::Number(v) => Raw::Number(*v),
                    FeatureValue::Category(c) => {
                        let categories = feature.categories.as_ref().unwrap();
                        Raw::Category(categories.iter().position(|x| x == c).unwrap())
                    }
                    _ => Raw::Missing,
                };
                if ["dropped", "secret"].contains(&feature.name.as_str()) {
                    continue;
                }
                if let Some(bin) = bin_of(feature, raw) {
                    expected[i][bin] += 1;
                }
            }
        }
        assert_eq!(counts, expected);
        assert_eq!(counts[0].iter().sum::<i64>(), 1, "one x, one missing");
        assert_eq!(counts[1], vec![1, 1]);
        assert_eq!(counts[2], vec![1, 0, 1]);
        assert!(counts[4].iter().all(|&n| n == 0) && counts[5].is_empty());
        assert!(counts[6].iter().all(|&n| n == 0));
        assert_eq!(counts[7].iter().sum::<i64>(), 2);
        // No features: nothing to count in bins.
        assert!(DriftBins::default().is_empty());
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
        assert_eq!(bin_of(&feature, Raw::Number(1.0)), None);
        let result = &feature_drift(&[feature], &[vec![]], 0.2)[0];
        assert_eq!(
            (result.psi, result.drifted, result.values),
            (None, false, 0)
        );
        // A handful of values far off gives a large index, but too few to flag.
        let feature = number("x", &(0..100).map(f64::from).collect::<Vec<_>>());
        let few = counted(&feature, std::iter::repeat_n(1000.0, 10));
        let result = &feature_drift(&[feature], &[few], 0.2)[0];
        assert!(result.psi.unwrap() > 1.0 && !result.drifted);
    }
}
