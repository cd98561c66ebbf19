//! Checked against scikit-learn 1.9.1 on the diabetes data (Efron et al. 2004, as
//! `sklearn.datasets.load_diabetes(scaled=False)` ships it), its columns standardized with
//! the population standard deviation as `StandardScaler` does. The reference values were
//! printed by scikit-learn with the same inputs.

use super::*;
use crate::model::native::KnnWeights;
use crate::train::NoProgress;
use crate::train::params::MaxFeatures;

/// The diabetes data: 442 rows of 10 features, and the disease progression a year later.
fn diabetes() -> (Vec<Vec<f64>>, Vec<f64>) {
    let data = crate::data::load_bundled(crate::data::BundledDataset::Diabetes);
    let columns: Vec<&[f64]> = data
        .columns
        .iter()
        .map(|column| match &column.values {
            crate::data::ColumnValues::Numeric(values) => values.as_slice(),
            crate::data::ColumnValues::Text(_) => panic!("numeric columns expected"),
        })
        .collect();
    let rows = (0..data.n_rows())
        .map(|row| columns.iter().map(|column| column[row]).collect())
        .collect();
    let crate::data::Target::Values(targets) = data.target else {
        panic!("a regression target expected")
    };
    (rows, targets)
}

/// `rows` standardized by the mean and population standard deviation of `fit_rows`.
fn standardized(fit_rows: &[Vec<f64>], rows: &[Vec<f64>]) -> Matrix {
    let cols = fit_rows[0].len();
    let n = fit_rows.len() as f64;
    let mean: Vec<f64> = (0..cols)
        .map(|c| fit_rows.iter().map(|r| r[c]).sum::<f64>() / n)
        .collect();
    let std: Vec<f64> = (0..cols)
        .map(|c| {
            (fit_rows
                .iter()
                .map(|r| (r[c] - mean[c]).powi(2))
                .sum::<f64>()
                / n)
                .sqrt()
        })
        .collect();
    Matrix {
        rows: rows.len(),
        cols,
        data: rows
            .iter()
            .flat_map(|r| {
                (0..cols)
                    .map(|c| (r[c] - mean[c]) / std[c])
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

fn assert_close(got: &[f64], want: &[f64], tolerance: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tolerance * w.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

fn linear_parts(regressor: &Regressor) -> (Vec<f64>, f64) {
    match regressor {
        Regressor::LinearRegression {
            coefficients,
            intercept,
        } => (coefficients.clone(), *intercept),
        other => panic!("not linear: {other:?}"),
    }
}

fn predictions(regressor: &Regressor, x: &Matrix) -> Vec<f64> {
    (0..x.rows)
        .map(|row| regressor.predict(x.row(row)))
        .collect()
}

#[test]
fn least_squares_match_linear_regression() {
    let (rows, y) = diabetes();
    let x = standardized(&rows, &rows);
    let (coefficients, intercept) = linear_parts(&linear::fit(&x, &y, 0.0).unwrap());
    let want = [
        -0.47612078617916104,
        -11.406866923440976,
        24.726548860402158,
        15.429404131395613,
        -37.67995261101585,
        22.676162766290098,
        4.806138136897864,
        8.422039355820813,
        35.73444577133109,
        3.216673718190539,
    ];
    assert_close(&coefficients, &want, 1e-8);
    assert_close(&[intercept], &[152.13348416289597], 1e-12);
}

#[test]
fn an_l2_penalty_matches_ridge() {
    let (rows, y) = diabetes();
    let x = standardized(&rows, &rows);
    let (coefficients, intercept) = linear_parts(&linear::fit(&x, &y, 10.0).unwrap());
    let want = [
        -0.2579490012114576,
        -10.93635667389768,
        24.60009446481721,
        15.094382577753896,
        -11.29561826948357,
        1.808767764115398,
        -6.561805154981145,
        5.6004002987808645,
        25.332096092046488,
        3.5229121177934903,
    ];
    assert_close(&coefficients, &want, 1e-8);
    assert_close(&[intercept], &[152.13348416289602], 1e-12);
}

#[test]
fn collinear_columns_get_the_minimum_norm_solution() {
    let (rows, y) = diabetes();
    // Age, sex, BMI and BMI again: LAPACK's least squares splits BMI's weight in two.
    let doubled: Vec<Vec<f64>> = rows.iter().map(|r| vec![r[0], r[1], r[2], r[2]]).collect();
    let x = standardized(&doubled, &doubled);
    let (coefficients, intercept) = linear_parts(&linear::fit(&x, &y, 0.0).unwrap());
    let want = [
        6.606985266681089,
        -1.7187793636760027,
        22.04435417572856,
        22.044354175728582,
    ];
    assert_close(&coefficients, &want, 1e-8);
    assert_close(&[intercept], &[152.13348416289614], 1e-12);
}

#[test]
fn linear_regression_refuses_a_negative_penalty_and_mismatched_targets() {
    let (rows, y) = diabetes();
    let x = standardized(&rows, &rows);
    assert!(matches!(
        linear::fit(&x, &y, -1.0),
        Err(TrainError::Parameter(_))
    ));
    assert!(matches!(
        linear::fit(&x, &y[1..], 0.0),
        Err(TrainError::Fit(_))
    ));
}

fn tree_params(max_depth: Option<usize>, min_samples_leaf: usize) -> AlgorithmParams {
    AlgorithmParams::DecisionTree {
        max_depth,
        min_samples_split: 2,
        min_samples_leaf,
    }
}

#[test]
fn a_regression_tree_matches_decision_tree_regressor() {
    let (rows, y) = diabetes();
    let x = standardized(&rows, &rows);
    let tree = fit(&tree_params(Some(3), 1), &x, &y, 0, &NoProgress).unwrap();
    let predicted = predictions(&tree, &x);
    let mut leaves: Vec<f64> = predicted.iter().map(|p| (p * 1e6).round() / 1e6).collect();
    leaves.sort_by(f64::total_cmp);
    leaves.dedup();
    let want = [
        83.369048, 108.804598, 137.690476, 154.666667, 176.864865, 208.571429, 268.870968, 274.0,
    ];
    assert_close(&leaves, &want, 1e-9);
}

#[test]
fn nearest_neighbours_average_their_targets() {
    let (rows, y) = diabetes();
    let x = standardized(&rows, &rows);
    let uniform = AlgorithmParams::Knn {
        k: 5,
        weights: KnnWeights::Uniform,
    };
    let knn = fit(&uniform, &x, &y, 0, &NoProgress).unwrap();
    let first_four = Matrix {
        rows: 4,
        cols: x.cols,
        data: x.data[..4 * x.cols].to_vec(),
    };
    assert_close(
        &predictions(&knn, &first_four),
        &[181.4, 80.8, 150.8, 203.4],
        1e-12,
    );
    // Distance weights, fitted without the rows asked about.
    let rest = Matrix {
        rows: x.rows - 10,
        cols: x.cols,
        data: x.data[10 * x.cols..].to_vec(),
    };
    let distance = AlgorithmParams::Knn {
        k: 5,
        weights: KnnWeights::Distance,
    };
    let knn = fit(&distance, &rest, &y[10..], 0, &NoProgress).unwrap();
    assert_close(
        &predictions(&knn, &first_four),
        &[
            202.27797214855144,
            81.95495176415925,
            163.78444046256584,
            182.0814133124992,
        ],
        1e-9,
    );
}

/// Held-out R² on the first 342 rows / last 100 rows, against scikit-learn's on that split.
#[test]
fn held_out_r2_is_within_003_of_scikit_learn() {
    let (rows, y) = diabetes();
    let (train_rows, test_rows) = rows.split_at(342);
    let (train_y, test_y) = y.split_at(342);
    let train = standardized(train_rows, train_rows);
    let test = standardized(train_rows, test_rows);
    let forest = AlgorithmParams::RandomForest {
        n_trees: 100,
        max_depth: None,
        min_samples_split: 2,
        min_samples_leaf: 1,
        max_features: MaxFeatures::All,
    };
    let svr = AlgorithmParams::Svm {
        c: 100.0,
        gamma: crate::train::Gamma::Scale,
        epsilon: None,
    };
    let cases: [(&str, Option<AlgorithmParams>, f64); 5] = [
        ("linear regression", None, 0.5552372891452861),
        (
            "tree, depth 5, 5 a leaf",
            Some(tree_params(Some(5), 5)),
            0.3050068677507084,
        ),
        ("random forest", Some(forest), 0.4534606766969119),
        (
            "knn",
            Some(AlgorithmParams::Knn {
                k: 5,
                weights: KnnWeights::Uniform,
            }),
            0.4366512282173194,
        ),
        ("ε-SVR, C 100", Some(svr), 0.5047817120649558),
    ];
    for (name, params, sklearn_r2) in cases {
        let model = match params {
            None => linear::fit(&train, train_y, 0.0).unwrap(),
            Some(params) => fit(&params, &train, train_y, 0, &NoProgress).unwrap(),
        };
        let r2 = RegressionMetrics::of(test_y, &predictions(&model, &test))
            .unwrap()
            .r2;
        assert!(
            (r2 - sklearn_r2).abs() <= 0.03,
            "{name}: R² {r2} vs scikit-learn's {sklearn_r2}"
        );
    }
}

#[test]
fn classifiers_have_no_regression_form() {
    let (rows, y) = diabetes();
    let x = standardized(&rows, &rows);
    let error = fit(
        &AlgorithmParams::NaiveBayes {
            var_smoothing: 1e-9,
        },
        &x,
        &y,
        0,
        &NoProgress,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "naive-bayes has no regression form; for a number use one of: \
         linear-regression, decision-tree, random-forest, knn, svm, gradient-boosting"
    );
    let mut bad = y.clone();
    bad[7] = f64::NAN;
    assert!(fit(&tree_params(None, 1), &x, &bad, 0, &NoProgress).is_err());
}

#[test]
fn metrics_match_scikit_learn() {
    let actual = [3.0, -0.5, 2.0, 7.0, 4.2];
    let predicted = [2.5, 0.0, 2.0, 8.0, 3.9];
    let metrics = RegressionMetrics::of(&actual, &predicted).unwrap();
    assert_close(&[metrics.r2], &[0.9480256276150627], 1e-12);
    assert_close(&[metrics.rmse], &[0.5639148871948674], 1e-12);
    assert_close(&[metrics.mae], &[0.4600000000000001], 1e-12);
    assert_close(&[metrics.mape.unwrap()], &[0.2761904761904762], 1e-12);
    assert_close(&[metrics.median_absolute_error], &[0.5], 1e-12);
    assert_eq!(metrics.mape_note(), None);
    // A true value of 0: MAPE is left out, with the reason.
    let with_zero = RegressionMetrics::of(&[0.0, 1.0], &[0.5, 1.0]).unwrap();
    assert_eq!(with_zero.mape, None);
    assert!(with_zero.mape_note().is_some());
    // Constant true values: 1 when exact, 0 otherwise (scikit-learn's force_finite).
    assert_eq!(
        RegressionMetrics::of(&[2.0, 2.0], &[2.0, 2.0]).unwrap().r2,
        1.0
    );
    assert_eq!(
        RegressionMetrics::of(&[2.0, 2.0], &[2.0, 3.0]).unwrap().r2,
        0.0
    );
    assert!(RegressionMetrics::of(&[], &[]).is_none());
}

/// ε-SVR with scikit-learn's defaults (ε 0.1, gamma "scale"), weakly (C 1) and strongly (C 100)
/// fitted; SMO stops at libsvm's tolerance, so predictions agree to about 1e-4 of the target.
#[test]
fn epsilon_svr_matches_svr() {
    let (rows, y) = diabetes();
    let x = standardized(&rows, &rows);
    let first_five = Matrix {
        rows: 5,
        cols: x.cols,
        data: x.data[..5 * x.cols].to_vec(),
    };
    let cases = [
        (
            1.0,
            [
                154.5529648991535,
                113.21789706210701,
                146.2724367427671,
                144.1596589237069,
                127.32212144445995,
            ],
        ),
        (
            100.0,
            [
                224.6176616077541,
                75.09985803007216,
                184.28851428583283,
                206.09975016577437,
                100.66331033446525,
            ],
        ),
    ];
    for (c, want) in cases {
        let params = AlgorithmParams::Svm {
            c,
            gamma: crate::train::Gamma::Scale,
            epsilon: None,
        };
        let svr = fit(&params, &x, &y, 0, &NoProgress).unwrap();
        assert_close(&predictions(&svr, &first_five), &want, 1e-4);
    }
}
