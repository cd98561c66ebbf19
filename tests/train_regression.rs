//! Training a model that predicts a number, through the library: the diabetes data, every
//! regression algorithm, the artifact written and read back, and the card. Serving them is
//! tested in serve_regression.rs.

use mlserve::data::{BundledDataset, load_bundled};
use mlserve::model::native::Regressor;
use mlserve::model::{HeldOutMetrics, Model, Task, load_version};
use mlserve::train::regression::{RegressionMetricsFile, train_regressor};
use mlserve::train::{Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions};

fn options(algorithm: Algorithm, cv: Option<usize>) -> TrainOptions {
    TrainOptions {
        params: AlgorithmParams::from_flags_for(
            Task::Regression,
            algorithm,
            &HyperParameterFlags::default(),
        )
        .unwrap(),
        test_size: 0.2,
        seed: 42,
        cv,
    }
}

#[test]
fn every_regression_algorithm_writes_a_model_that_reproduces_its_held_out_predictions() {
    let data = load_bundled(BundledDataset::Diabetes);
    let models = tempfile::tempdir().unwrap();
    // The lowest held-out R² each may have on this split (seed 42, 89 rows held out) with its
    // defaults. On the same rows, scikit-learn's StandardScaler pipelines get: LinearRegression
    // 0.353, KNeighborsRegressor 0.363 and SVR 0.187, as ours; RandomForestRegressor
    // 0.26-0.30 across seeds (ours 0.256); an unlimited DecisionTreeRegressor -0.23 to -0.49
    // (ours -0.60: an unlimited tree overfits diabetes, and which of several equal splits it
    // takes differs).
    for (algorithm, least_r2) in [
        (Algorithm::LinearRegression, 0.3),
        (Algorithm::DecisionTree, -1.0),
        (Algorithm::RandomForest, 0.2),
        (Algorithm::Knn, 0.3),
        (Algorithm::Svm, 0.1),
    ] {
        let trained = train_regressor(&data, &options(algorithm, None), &NoProgress).unwrap();
        let name = algorithm.cli_name().replace('-', "_");
        let (version, dir) = trained.save(models.path(), &name).unwrap();
        assert_eq!(version, 1);

        let artifact = load_version(&dir).unwrap();
        let manifest = &artifact.manifest;
        assert_eq!(manifest.task, Task::Regression);
        assert!(manifest.labels.is_empty());
        let target = manifest.target.as_ref().unwrap();
        assert_eq!(target.name, "disease_progression");
        assert!(target.min <= target.quartiles[0] && target.quartiles[2] <= target.max);
        let Model::NativeRegressor(model) = &artifact.model else {
            panic!("{name}: a native regressor expected")
        };

        // metrics.json: the held-out rows' predictions, which the stored model reproduces.
        let metrics: RegressionMetricsFile =
            serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
        assert_eq!(
            metrics.split.test_rows.len(),
            89,
            "scikit-learn rounds up: 442 × 0.2 = 88.4"
        );
        for (i, &row) in metrics.split.test_rows.iter().enumerate() {
            let values: Vec<mlserve::model::FeatureValue> = data
                .columns
                .iter()
                .map(|column| match &column.values {
                    mlserve::data::ColumnValues::Numeric(v) => {
                        mlserve::model::FeatureValue::Number(v[row])
                    }
                    mlserve::data::ColumnValues::Text(_) => unreachable!("diabetes is numeric"),
                })
                .collect();
            let predicted = model.predict(&values).unwrap();
            assert_eq!(
                predicted, metrics.evaluation.test_predicted[i],
                "{name} row {row}"
            );
        }
        let Some(HeldOutMetrics::Regression(summary)) = &manifest.metrics else {
            panic!("{name}: regression metrics expected in the manifest")
        };
        assert_eq!(summary, &metrics.evaluation.metrics);
        assert!(
            summary.r2 > least_r2 && summary.r2 < 0.7,
            "{name}: R² {}",
            summary.r2
        );
        assert!(summary.mape.is_some(), "no true value of diabetes is 0");

        let card = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(card.contains("aria-label=\"predicted against true values\""));
        assert!(card.contains("aria-label=\"histogram of residuals\""));
        assert!(card.contains(&format!("{:.4}", summary.rmse)));
        assert!(card.contains("disease_progression"));
    }
}

#[test]
fn a_regression_forest_tries_every_column_as_scikit_learn_does() {
    let params = options(Algorithm::RandomForest, None).params;
    let AlgorithmParams::RandomForest { max_features, .. } = params else {
        panic!("forest parameters expected")
    };
    assert_eq!(max_features, mlserve::train::MaxFeatures::All);
}

#[test]
fn an_svr_records_its_tube_and_a_classifier_refuses_one() {
    let AlgorithmParams::Svm { epsilon, .. } = options(Algorithm::Svm, None).params else {
        panic!("SVM parameters expected")
    };
    assert_eq!(epsilon, Some(0.1), "scikit-learn's SVR default");
    let flags = HyperParameterFlags {
        epsilon: Some(0.5),
        ..Default::default()
    };
    let error = AlgorithmParams::from_flags(Algorithm::Svm, &flags).unwrap_err();
    assert_eq!(
        error.to_string(),
        "--epsilon does not apply to svm for classification (it is the regression svm's); its flags are: --c, --gamma"
    );
    let negative = HyperParameterFlags {
        epsilon: Some(-1.0),
        ..Default::default()
    };
    let error =
        AlgorithmParams::from_flags_for(Task::Regression, Algorithm::Svm, &negative).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("--epsilon must be zero or a positive number")
    );
}

#[test]
fn least_squares_cross_validate_on_the_training_split() {
    let data = load_bundled(BundledDataset::Diabetes);
    let trained = train_regressor(
        &data,
        &options(Algorithm::LinearRegression, Some(5)),
        &NoProgress,
    )
    .unwrap();
    let Regressor::LinearRegression { coefficients, .. } = &trained.model.regressor else {
        panic!("linear coefficients expected")
    };
    assert_eq!(coefficients.len(), 10);
    let cv = trained.metrics.cv.as_ref().unwrap();
    assert_eq!(cv.r2.folds.len(), 5);
    assert!(cv.r2.mean > 0.3 && cv.r2.mean < 0.6, "CV R² {}", cv.r2.mean);
    assert!(
        cv.rmse
            .folds
            .iter()
            .all(|rmse| *rmse > 40.0 && *rmse < 70.0)
    );
}

#[test]
fn classifiers_and_class_targets_are_refused_with_the_reason() {
    let diabetes = load_bundled(BundledDataset::Diabetes);
    let error = train_regressor(
        &diabetes,
        &options(Algorithm::LogisticRegression, None),
        &NoProgress,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "logistic-regression has no regression form; for a number use one of: \
         linear-regression, decision-tree, random-forest, knn, svm, gradient-boosting"
    );
    let iris = load_bundled(BundledDataset::Iris);
    let error = train_regressor(&iris, &options(Algorithm::Knn, None), &NoProgress).unwrap_err();
    assert!(error.to_string().contains("holds classes"), "{error}");
    let error = mlserve::train::train(
        &diabetes,
        &options(Algorithm::LinearRegression, None),
        &NoProgress,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("a classifier needs classes"),
        "{error}"
    );
}

#[test]
fn too_few_held_out_rows_for_r2_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("tiny.csv");
    std::fs::write(&csv, "x,y\n1,1.5\n2,2.5\n3,2.0\n4,4.5\n5,5.0\n").unwrap();
    let data = mlserve::data::load_csv(
        &csv,
        &mlserve::data::CsvOptions {
            target: "y".into(),
            categorical: vec![],
            task: Some(Task::Regression),
            missing_values: false,
        },
    )
    .unwrap();
    // 5 × 0.2 holds out one row, where R² is undefined.
    let error = train_regressor(
        &data,
        &options(Algorithm::LinearRegression, None),
        &NoProgress,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "1 held-out row: R² needs at least 2; hold out more rows (--test-size) or use fewer folds"
    );
}

/// `mlserve train` as a user runs it: the task inferred from the target (and said why) or
/// asked for, and what cannot be trained refused with exit code 2 and nothing written.
#[test]
fn the_command_line_infers_or_takes_the_task_and_refuses_what_cannot_be_learned() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
            .arg("train")
            .arg("--models")
            .arg(&models)
            .args(args)
            .output()
            .unwrap()
    };
    let mut prices = String::from("rooms,area,garden,price\n");
    for i in 0..60 {
        let price = 50_000.0 + 1234.5 * f64::from(i) + f64::from(i % 7) * 310.25;
        prices.push_str(&format!(
            "{},{},{},{price}\n",
            1 + i % 5,
            40 + i,
            i % 2 == 0
        ));
    }
    let csv = dir.path().join("prices.csv");
    std::fs::write(&csv, &prices).unwrap();
    let csv = csv.to_str().unwrap();

    let inferred = run(&[
        "--csv",
        csv,
        "--target",
        "price",
        "--algorithm",
        "linear-regression",
    ]);
    let stdout = String::from_utf8_lossy(&inferred.stdout);
    assert!(
        inferred.status.success(),
        "{}",
        String::from_utf8_lossy(&inferred.stderr)
    );
    assert!(
        stdout.contains("Task: regression (the target 'price' holds numbers"),
        "{stdout}"
    );
    assert!(stdout.contains("R²"), "{stdout}");
    let manifest = std::fs::read_to_string(models.join("prices/1/model.toml")).unwrap();
    assert!(manifest.contains("task = \"regression\""), "{manifest}");

    // The same whole-number column read as classes when asked: rooms has 5 values.
    let asked = run(&[
        "--csv",
        csv,
        "--target",
        "rooms",
        "--task",
        "classification",
        "--algorithm",
        "knn",
        "--name",
        "rooms",
    ]);
    assert!(
        asked.status.success(),
        "{}",
        String::from_utf8_lossy(&asked.stderr)
    );
    assert!(
        String::from_utf8_lossy(&asked.stdout).contains("Task: classification (as --task says)")
    );

    let refused: [(&[&str], &str); 6] = [
        (
            // A model keeps its task: its clients read one kind of answer.
            &[
                "--csv",
                csv,
                "--target",
                "rooms",
                "--task",
                "classification",
                "--algorithm",
                "knn",
            ],
            "model 'prices' version 1 is for regression; a version for classification needs a \
             model name of its own",
        ),
        (
            // A classifier-only algorithm on a target read as a number says how to get classes.
            &[
                "--csv",
                csv,
                "--target",
                "price",
                "--algorithm",
                "naive-bayes",
            ],
            "naive-bayes has no regression form, and the target was read as a number (the \
             target 'price' holds numbers",
        ),
        (
            &[
                "--csv",
                csv,
                "--target",
                "garden",
                "--task",
                "regression",
                "--algorithm",
                "knn",
            ],
            "'garden'",
        ),
        (
            &["--dataset", "diabetes", "--algorithm", "naive-bayes"],
            "naive-bayes has no regression form; for a number use one of: linear-regression, \
             decision-tree, random-forest, knn, svm, gradient-boosting",
        ),
        (
            &[
                "--dataset",
                "iris",
                "--task",
                "regression",
                "--algorithm",
                "knn",
            ],
            "the bundled dataset iris is for classification",
        ),
        (
            &[
                "--dataset",
                "breast-cancer",
                "--algorithm",
                "linear-regression",
            ],
            "linear-regression predicts a number; for classes use logistic-regression",
        ),
    ];
    for (args, expected) in refused {
        let before = std::fs::read_dir(&models).unwrap().count();
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(
            std::fs::read_dir(&models).unwrap().count(),
            before,
            "{args:?} wrote a model"
        );
    }
}
