//! Exact SHAP values of linear models under feature independence (shap's `LinearExplainer`
//! with an independent masker): column j contributes `coefficient_j × (x_j − mean_j)`, the
//! training mean being the preprocessor's. mlserve's coefficients act on standardized columns
//! `(x − mean) / scale`, whose training mean is 0, so a column's contribution is its
//! coefficient times its standardized value, and the base value is the intercept. A feature's
//! contribution is the sum over its columns (a categorical feature's one-hot columns).

use super::super::native::{
    Estimator, FeatureValue, NativeModel, NativeRegressor, Preprocessor, Regressor,
};
use super::ExplainError;

/// A linear model's coefficients, one row per output, over the encoded columns.
#[derive(Debug)]
pub struct LinearExplainer {
    preprocessor: Preprocessor,
    /// `outputs × width` coefficients.
    coefficients: Vec<f64>,
    /// The schema feature of each encoded column.
    feature_of_column: Vec<usize>,
}

impl LinearExplainer {
    /// A logistic regression's explainer and base values (its intercepts: one for a binary
    /// model, towards the second class, one per class for a multinomial one); `None` for other
    /// estimators.
    pub fn of_classifier(model: &NativeModel) -> Option<(LinearExplainer, Vec<f64>)> {
        match &model.estimator {
            Estimator::LogisticRegression {
                coefficients,
                intercepts,
            } => Some((
                LinearExplainer::new(&model.preprocessor, coefficients.clone()),
                intercepts.clone(),
            )),
            _ => None,
        }
    }

    /// A linear regression's explainer and base value (its intercept); `None` for other
    /// regressors.
    pub fn of_regressor(model: &NativeRegressor) -> Option<(LinearExplainer, Vec<f64>)> {
        match &model.regressor {
            Regressor::LinearRegression {
                coefficients,
                intercept,
            } => Some((
                LinearExplainer::new(&model.preprocessor, coefficients.clone()),
                vec![*intercept],
            )),
            _ => None,
        }
    }

    fn new(preprocessor: &Preprocessor, coefficients: Vec<f64>) -> LinearExplainer {
        LinearExplainer {
            preprocessor: preprocessor.clone(),
            coefficients,
            feature_of_column: feature_of_column(preprocessor),
        }
    }

    /// Adds the row's contributions to `phi`, laid out `[outputs][features]`.
    pub fn add_contributions(
        &self,
        row: &[FeatureValue],
        phi: &mut [f64],
    ) -> Result<(), ExplainError> {
        let mut encoded = Vec::with_capacity(self.preprocessor.width());
        self.preprocessor.encode_into(row, &mut encoded)?;
        let width = encoded.len().max(1);
        let features = row.len();
        for (output, coefficients) in self.coefficients.chunks(width).enumerate() {
            let slots = &mut phi[output * features..(output + 1) * features];
            for ((&column_feature, &coefficient), &x) in self
                .feature_of_column
                .iter()
                .zip(coefficients)
                .zip(&encoded)
            {
                slots[column_feature] += coefficient * x;
            }
        }
        Ok(())
    }
}

/// The schema feature each encoded column comes from.
pub fn feature_of_column(preprocessor: &Preprocessor) -> Vec<usize> {
    preprocessor
        .inputs
        .iter()
        .enumerate()
        .flat_map(|(feature, encoding)| std::iter::repeat_n(feature, encoding.width()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::native::InputEncoding;

    /// One numeric feature (mean 10, scale 2) and a categorical one with three categories
    /// (their training shares as means, scale 0.5).
    fn model() -> NativeModel {
        NativeModel {
            preprocessor: Preprocessor {
                inputs: vec![
                    InputEncoding::Numeric,
                    InputEncoding::OneHot(vec!["a".into(), "b".into(), "c".into()]),
                ],
                mean: vec![10.0, 0.5, 0.3, 0.2],
                scale: vec![2.0, 0.5, 0.5, 0.5],
            },
            estimator: Estimator::LogisticRegression {
                coefficients: vec![0.8, -1.0, 2.0, 0.5],
                intercepts: vec![-0.25],
            },
            n_classes: 2,
        }
    }

    #[test]
    fn contributions_are_coefficient_times_distance_from_the_mean_per_feature() {
        let model = model();
        let (explainer, bases) = LinearExplainer::of_classifier(&model).unwrap();
        let row = [
            FeatureValue::Number(13.0),
            FeatureValue::Category("b".into()),
        ];
        let mut phi = vec![0.0; 2];
        explainer.add_contributions(&row, &mut phi).unwrap();
        // By hand: 0.8 × (13 − 10) / 2; the one-hot columns (0, 1, 0) against their means.
        let numeric = 0.8 * (13.0 - 10.0) / 2.0;
        let category = (0.5 - 0.0) / 0.5 + 2.0 * (1.0 - 0.3) / 0.5 + 0.5 * (0.0 - 0.2) / 0.5;
        assert!((phi[0] - numeric).abs() < 1e-12, "{phi:?}");
        assert!((phi[1] - category).abs() < 1e-12, "{phi:?}");
        assert_eq!(bases, [-0.25]);
        // Efficiency: base + contributions is the log-odds the model predicts from.
        let p = model.predict_proba(&row).unwrap()[1];
        let log_odds = (p / (1.0 - p)).ln();
        assert!((bases[0] + phi[0] + phi[1] - log_odds).abs() < 1e-9);
    }
}
