//! Explanations over HTTP: `?explain=true` on the native API, the V2 `explain` parameter and
//! KServe V1's `:explain`, for every model family that explains exactly. Each answer's base
//! value and contributions add up to the model's output in the answer's unit (efficiency),
//! checked here against the prediction the same server gives.

mod common;

use common::{TestServer, assert_problem, test_settings, train_into};
use mlserve::data::{BundledDataset, Dataset, load_bundled};
use mlserve::model::{FeatureValue, Task};
use mlserve::train::boosting::pipeline::train_boosted;
use mlserve::train::preprocess::raw_row;
use mlserve::train::regression::train_regressor;
use mlserve::train::{Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions};
use serde_json::{Map, Value, json};
use std::path::Path;

fn options(task: Task, algorithm: Algorithm) -> TrainOptions {
    TrainOptions {
        params: AlgorithmParams::from_flags_for(task, algorithm, &HyperParameterFlags::default())
            .unwrap(),
        test_size: 0.2,
        seed: 7,
        cv: None,
    }
}

/// Every model this file asks: classifiers and regressors, linear, trees and boosted trees, one
/// that cannot explain (k-NN), and a forest as a release without node covers stored it.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path();
    use Algorithm::*;
    use BundledDataset::{BreastCancer, Iris};
    train_into(models, BreastCancer, LogisticRegression, "cancer_linear", 7);
    train_into(models, Iris, LogisticRegression, "iris_linear", 7);
    train_into(models, Iris, RandomForest, "iris_forest", 7);
    train_into(models, BreastCancer, DecisionTree, "cancer_tree", 7);
    train_into(models, Iris, Knn, "iris_knn", 7);
    train_into(models, BreastCancer, NaiveBayes, "cancer_bayes", 7);
    let diabetes = load_bundled(BundledDataset::Diabetes);
    for (algorithm, name) in [
        (LinearRegression, "diabetes_linear"),
        (RandomForest, "diabetes_forest"),
    ] {
        train_regressor(
            &diabetes,
            &options(Task::Regression, algorithm),
            &NoProgress,
        )
        .unwrap()
        .save(models, name)
        .unwrap();
    }
    train_boosted(
        &diabetes,
        &options(Task::Regression, GradientBoosting),
        &NoProgress,
    )
    .unwrap()
    .save(models, "diabetes_boosted")
    .unwrap();
    for (dataset, name) in [(BreastCancer, "cancer_boosted"), (Iris, "iris_boosted")] {
        train_boosted(
            &load_bundled(dataset),
            &options(Task::Classification, GradientBoosting),
            &NoProgress,
        )
        .unwrap()
        .save(models, name)
        .unwrap();
    }
    save_without_covers(models);
    save_without_background(models);
    dir
}

/// A k-NN model saved as releases before background sets were kept saved it.
fn save_without_background(models: &Path) {
    let options = options(Task::Classification, Algorithm::Knn);
    let mut trained =
        mlserve::train::train(&load_bundled(BundledDataset::Iris), &options, &NoProgress).unwrap();
    assert!(trained.background.is_some(), "k-NN keeps a background set");
    trained.background = None;
    trained.save(models, "old_knn").unwrap();
}

/// A forest saved as releases before node covers were kept saved it: no covers section.
fn save_without_covers(models: &Path) {
    let options = options(Task::Classification, Algorithm::RandomForest);
    let mut trained =
        mlserve::train::train(&load_bundled(BundledDataset::Iris), &options, &NoProgress).unwrap();
    match &mut trained.model.estimator {
        mlserve::model::native::Estimator::RandomForest(trees) => {
            trees.iter_mut().for_each(|tree| tree.covers.clear())
        }
        other => panic!("a forest expected, got {other:?}"),
    }
    trained.save(models, "old_forest").unwrap();
}

/// Rows of a bundled dataset as JSON objects of features.
fn rows(dataset: BundledDataset, take: usize) -> Vec<Value> {
    let data: Dataset = load_bundled(dataset);
    (0..data.n_rows())
        .step_by(data.n_rows() / take)
        .take(take)
        .map(|row| {
            let values = raw_row(&data, row);
            let fields: Map<String, Value> = data
                .columns
                .iter()
                .zip(values)
                .map(|(column, value)| {
                    let value = match value {
                        FeatureValue::Number(x) => json!(x),
                        FeatureValue::Category(text) | FeatureValue::Text(text) => json!(text),
                        FeatureValue::Missing => Value::Null,
                    };
                    (column.name.clone(), value)
                })
                .collect();
            Value::Object(fields)
        })
        .collect()
}

fn softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// base_value + Σ contributions of one output object, after checking its fields.
fn total(output: &Value, method: &str, unit: &str, features: usize) -> f64 {
    assert_eq!(output["method"], method, "{output}");
    assert_eq!(output["unit"], unit, "{output}");
    let values = output["features"].as_object().unwrap();
    assert_eq!(values.len(), features, "{output}");
    output["base_value"].as_f64().unwrap()
        + values.values().map(|v| v.as_f64().unwrap()).sum::<f64>()
}

/// What an answer's outputs add up to in `unit`, turned back into what the model answers:
/// probabilities by label, or the value.
fn check_answer(answer: &Value, method: &str, unit: &str, features: usize) {
    let contributions = &answer["contributions"];
    if let Some(value) = answer["prediction"].as_f64() {
        let sum = total(contributions, method, unit, features);
        let predicted = if unit == "log_value" { sum.exp() } else { sum };
        assert!(
            (predicted - value).abs() < 1e-9 * value.abs().max(1.0),
            "{answer}"
        );
        return;
    }
    let probabilities = answer["probabilities"].as_object().unwrap();
    let labels: Vec<&String> = probabilities.keys().collect();
    let wanted: Vec<f64> = probabilities
        .values()
        .map(|p| p.as_f64().unwrap())
        .collect();
    let got: Vec<f64> = if labels.len() == 2 {
        // One output, towards the second class.
        let sum = total(contributions, method, unit, features);
        let p = match unit {
            "log_odds" => 1.0 / (1.0 + (-sum).exp()),
            _ => sum,
        };
        vec![1.0 - p, p]
    } else {
        let sums: Vec<f64> = labels
            .iter()
            .map(|label| total(&contributions[label.as_str()], method, unit, features))
            .collect();
        match unit {
            "log_odds" | "raw_score" => softmax(&sums),
            _ => sums,
        }
    };
    for (got, wanted) in got.iter().zip(&wanted) {
        assert!(
            (got - wanted).abs() < 1e-9,
            "{answer}: {got:?} vs {wanted:?}"
        );
    }
}

const EXPLAINED: [(&str, BundledDataset, &str, &str, usize); 11] = [
    ("iris_knn", BundledDataset::Iris, "kernel", "probability", 4),
    (
        "cancer_bayes",
        BundledDataset::BreastCancer,
        "kernel",
        "probability",
        30,
    ),
    (
        "cancer_linear",
        BundledDataset::BreastCancer,
        "linear",
        "log_odds",
        30,
    ),
    ("iris_linear", BundledDataset::Iris, "linear", "log_odds", 4),
    (
        "iris_forest",
        BundledDataset::Iris,
        "tree_path_dependent",
        "probability",
        4,
    ),
    (
        "cancer_tree",
        BundledDataset::BreastCancer,
        "tree_path_dependent",
        "probability",
        30,
    ),
    (
        "diabetes_linear",
        BundledDataset::Diabetes,
        "linear",
        "value",
        10,
    ),
    (
        "diabetes_forest",
        BundledDataset::Diabetes,
        "tree_path_dependent",
        "value",
        10,
    ),
    (
        "diabetes_boosted",
        BundledDataset::Diabetes,
        "tree_path_dependent",
        "value",
        10,
    ),
    (
        "cancer_boosted",
        BundledDataset::BreastCancer,
        "tree_path_dependent",
        "log_odds",
        30,
    ),
    (
        "iris_boosted",
        BundledDataset::Iris,
        "tree_path_dependent",
        "raw_score",
        4,
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn every_exact_explanation_adds_up_to_what_the_model_answers() {
    let repo = repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    for (name, dataset, method, unit, features) in EXPLAINED {
        // KernelSHAP rows count 100 each against max_batch_rows (1,000).
        let instances = rows(dataset, 8);
        let path = format!("/api/models/{name}/predict?explain=true");
        let (status, _, batch) = server
            .post_json(&path, &json!({ "instances": instances }))
            .await;
        assert_eq!(status, 200, "{name}: {batch}");
        let predictions = batch["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), instances.len());
        for answer in predictions {
            check_answer(answer, method, unit, features);
        }
        // One row alone is explained the same as in a batch.
        let (status, _, single) = server.post_json(&path, &instances[3]).await;
        assert_eq!(status, 200, "{name}: {single}");
        check_answer(&single, method, unit, features);
        assert_eq!(
            single["contributions"], predictions[3]["contributions"],
            "{name}"
        );
        // Without explain, answers are as they were.
        let plain = format!("/api/models/{name}/predict");
        let (_, _, unexplained) = server.post_json(&plain, &instances[3]).await;
        assert!(unexplained.get("contributions").is_none(), "{unexplained}");
        for field in ["label", "probabilities", "prediction"] {
            assert_eq!(unexplained.get(field), single.get(field), "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_cannot_explain_says_why_before_predicting() {
    let repo = repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let row = rows(BundledDataset::Iris, 1).remove(0);
    for (name, reason) in [
        ("old_knn", "no background set for KernelSHAP"),
        ("old_forest", "did not keep its trees' node covers"),
    ] {
        let path = format!("/api/models/{name}/predict?explain=true");
        let (status, headers, body) = server.post_json(&path, &row).await;
        assert_problem(status, &headers, &body, 422);
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(name) && detail.contains(reason), "{detail}");
        // Refused before the body is even read: a broken body gets the same answer.
        let (status, _) = server.post_text(&path, "{not json".to_string()).await;
        assert_eq!(status, 422);
        // The model still predicts.
        let (status, _, answer) = server
            .post_json(&format!("/api/models/{name}/predict"), &row)
            .await;
        assert_eq!(status, 200, "{answer}");
        let (status, _, v1) = server
            .post_json(
                &format!("/v1/models/{name}:explain"),
                &json!({"instances": [row]}),
            )
            .await;
        assert_eq!(status, 400, "{v1}");
        assert!(v1["error"].as_str().unwrap().contains(reason), "{v1}");
    }
    let (status, headers, body) = server
        .post_json("/api/models/iris_forest/predict?explain=perhaps", &row)
        .await;
    assert_problem(status, &headers, &body, 400);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("explain must be true or false")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explained_rows_count_against_max_batch_rows_at_their_weight() {
    let repo = repository();
    let mut settings = test_settings(repo.path());
    settings.max_batch_rows = 40;
    let server = TestServer::start(settings).await;
    let instances = rows(BundledDataset::Iris, 5);
    let (status, headers, body) = server
        .post_json(
            "/api/models/iris_forest/predict?explain=true",
            &json!({ "instances": instances }),
        )
        .await;
    assert_problem(status, &headers, &body, 413);
    assert_eq!(
        body["detail"],
        "explaining 5 rows counts as 50 predictions (tree_path_dependent explanations count 10 \
         a row); the limit is 40 (setting max_batch_rows): send at most 4 rows a request"
    );
    let (status, _, _) = server
        .post_json(
            "/api/models/iris_forest/predict?explain=true",
            &json!({ "instances": &instances[..4] }),
        )
        .await;
    assert_eq!(status, 200);
    // Linear explanations count one a row.
    let (status, _, body) = server
        .post_json(
            "/api/models/iris_linear/predict?explain=true",
            &json!({ "instances": rows(BundledDataset::Iris, 30) }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The V2 output `contributions` is the native API's numbers laid out as XGBoost's
/// `pred_contribs`: `[N, F + 1]`, or `[N, C, F + 1]` for a multiclass model.
#[tokio::test(flavor = "multi_thread")]
async fn v2_contributions_are_the_native_numbers_in_pred_contribs_layout() {
    let repo = repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    for (name, dataset, features, classes) in [
        (
            "iris_forest",
            BundledDataset::Iris,
            4,
            Some(["setosa", "versicolor", "virginica"]),
        ),
        ("cancer_boosted", BundledDataset::BreastCancer, 30, None),
        ("diabetes_linear", BundledDataset::Diabetes, 10, None),
    ] {
        let instances = rows(dataset, 3);
        let (_, _, native) = server
            .post_json(
                &format!("/api/models/{name}/predict?explain=true"),
                &json!({ "instances": instances }),
            )
            .await;
        let inputs: Vec<Value> = instances[0]
            .as_object()
            .unwrap()
            .keys()
            .map(|feature| {
                let data: Vec<&Value> = instances.iter().map(|row| &row[feature]).collect();
                json!({"name": feature, "datatype": "FP64", "shape": [3, 1], "data": data})
            })
            .collect();
        let request = json!({"inputs": inputs, "parameters": {"explain": true}});
        let (status, _, answer) = server
            .post_json(&format!("/v2/models/{name}/infer"), &request)
            .await;
        assert_eq!(status, 200, "{name}: {answer}");
        let output = answer["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "contributions")
            .unwrap_or_else(|| panic!("{answer}"));
        assert_eq!(output["datatype"], "FP64");
        let data: Vec<f64> = output["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let feature_names: Vec<&String> = instances[0].as_object().unwrap().keys().collect();
        let mut expected = Vec::new();
        for prediction in native["predictions"].as_array().unwrap() {
            let per_output: Vec<&Value> = match classes {
                Some(labels) => labels
                    .iter()
                    .map(|l| &prediction["contributions"][l])
                    .collect(),
                None => vec![&prediction["contributions"]],
            };
            for output in per_output {
                expected.extend(
                    feature_names
                        .iter()
                        .map(|f| output["features"][f.as_str()].as_f64().unwrap()),
                );
                expected.push(output["base_value"].as_f64().unwrap());
            }
        }
        assert_eq!(data, expected, "{name}");
        let shape = match classes {
            Some(labels) => json!([3, labels.len(), features + 1]),
            None => json!([3, features + 1]),
        };
        assert_eq!(output["shape"], shape, "{name}");
    }
    // A bad parameter and a model that cannot explain are client errors.
    let row = rows(BundledDataset::Iris, 1).remove(0);
    let inputs: Vec<Value> = row
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| json!({"name": name, "datatype": "FP64", "shape": [1, 1], "data": [value]}))
        .collect();
    for (model, parameters, message) in [
        (
            "iris_forest",
            json!({"explain": "yes"}),
            "parameter explain must be true or false",
        ),
        ("old_knn", json!({"explain": true}), "no background set"),
    ] {
        let (status, _, answer) = server
            .post_json(
                &format!("/v2/models/{model}/infer"),
                &json!({"inputs": inputs, "parameters": parameters}),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(message),
            "{answer}"
        );
    }
}

/// Runs `mlserve predict --explain` on `rows` of features; returns the exit code, stderr and
/// the output's header and rows of cells.
fn predict_explained(
    models: &Path,
    model: &str,
    rows: &[Value],
) -> (i32, String, Vec<Vec<String>>) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.csv"), dir.path().join("out.csv"));
    let features: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    let mut text = format!(
        "id,{}\n",
        features
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = features
            .iter()
            .map(|f| row[f.as_str()].to_string())
            .collect();
        text.push_str(&format!("r{i},{}\n", cells.join(",")));
    }
    std::fs::write(&input, text).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(["predict", "--quiet", "--explain", "--models"])
        .arg(models)
        .args(["--model", model, "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let written = std::fs::read_to_string(&output).unwrap_or_default();
    let table = written
        .lines()
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect();
    (
        run.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&run.stderr).into_owned(),
        table,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_writes_the_served_explanations_as_columns() {
    let repo = repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    for (name, dataset, labels) in [
        (
            "iris_forest",
            BundledDataset::Iris,
            vec!["setosa", "versicolor", "virginica"],
        ),
        ("cancer_linear", BundledDataset::BreastCancer, vec![]),
        ("diabetes_boosted", BundledDataset::Diabetes, vec![]),
    ] {
        let instances = rows(dataset, 4);
        let (code, stderr, table) = predict_explained(repo.path(), name, &instances);
        assert_eq!(code, 0, "{stderr}");
        let (_, _, served) = server
            .post_json(
                &format!("/api/models/{name}/predict?explain=true"),
                &json!({ "instances": instances }),
            )
            .await;
        let features: Vec<&String> = instances[0].as_object().unwrap().keys().collect();
        let header = &table[0];
        for (row, answer) in table[1..]
            .iter()
            .zip(served["predictions"].as_array().unwrap())
        {
            let cell = |column: &str| -> f64 {
                let at = header
                    .iter()
                    .position(|h| h == column)
                    .unwrap_or_else(|| panic!("{column} in {header:?}"));
                row[at].parse().unwrap()
            };
            let outputs: Vec<(String, &Value)> = if labels.is_empty() {
                vec![(String::new(), &answer["contributions"])]
            } else {
                labels
                    .iter()
                    .map(|l| (format!("_{l}"), &answer["contributions"][l]))
                    .collect()
            };
            for (suffix, output) in outputs {
                assert_eq!(
                    cell(&format!("base_value{suffix}")),
                    output["base_value"].as_f64().unwrap()
                );
                for feature in &features {
                    assert_eq!(
                        cell(&format!("contribution{suffix}_{feature}")),
                        output["features"][feature.as_str()].as_f64().unwrap(),
                        "{name} {feature}"
                    );
                }
            }
        }
    }
    let (code, stderr, table) =
        predict_explained(repo.path(), "old_knn", &rows(BundledDataset::Iris, 2));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no background set"), "{stderr}");
    assert!(table.is_empty(), "no output file is written");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_says_which_models_explain_and_how() {
    let repo = repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let (status, _, document) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    let paths = &document["paths"];
    let explain_parameter = |name: &str| {
        paths[format!("/api/models/{name}/predict")]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "explain")
            .unwrap_or_else(|| panic!("{name} has no explain parameter"))["description"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        explain_parameter("iris_forest").contains("tree_path_dependent SHAP values in probability")
    );
    assert!(explain_parameter("cancer_linear").contains("linear SHAP values in log_odds"));
    assert!(explain_parameter("old_knn").contains("cannot explain"));
    assert!(explain_parameter("iris_knn").contains("kernel SHAP values in probability"));
    assert!(paths["/v1/models/iris_forest:explain"]["post"].is_object());
    assert!(
        paths["/v1/models/old_knn:explain"].is_null(),
        "only models that explain have :explain"
    );
    let schemas = &document["components"]["schemas"];
    let per_class = &schemas["iris_forest.Contributions"]["properties"];
    assert_eq!(
        per_class["virginica"]["properties"]["features"]["required"],
        json!(["sepal_length", "sepal_width", "petal_length", "petal_width"])
    );
    assert_eq!(
        schemas["iris_forest.BatchPrediction"]["properties"]["predictions"]["items"]["properties"]
            ["contributions"],
        json!({"$ref": "#/components/schemas/iris_forest.Contributions"})
    );
}

/// The table rows of the form's explanation: (feature, contribution text, direction).
fn explanation_rows(html: &str) -> Vec<(String, String, String)> {
    let Some(table) = html.split("<table class=\"contributions-table\">").nth(1) else {
        return Vec::new();
    };
    let body = table.split("</table>").next().unwrap();
    body.split("<tr><th scope=\"row\">")
        .skip(1)
        .map(|row| {
            let feature = row.split("</th>").next().unwrap().to_string();
            let cells: Vec<&str> = row
                .split("<td")
                .skip(1)
                .map(|cell| {
                    cell.split('>')
                        .nth(1)
                        .unwrap()
                        .split("</td")
                        .next()
                        .unwrap()
                })
                .collect();
            (feature, cells[0].to_string(), cells[1].to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_form_shows_the_largest_contributions_towards_the_answer() {
    let repo = repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let instances = rows(BundledDataset::BreastCancer, 40);
    let name = "cancer_linear";
    let mut seen = Vec::new();
    for row in &instances {
        let (_, _, answer) = server
            .post_json(&format!("/api/models/{name}/predict?explain=true"), row)
            .await;
        let label = answer["label"].as_str().unwrap().to_string();
        if seen.contains(&label) {
            continue;
        }
        seen.push(label.clone());
        // The one output is towards the second class (benign): a malignant answer turns it.
        let sign = if label == "malignant" { -1.0 } else { 1.0 };
        let page = format!("/ui/models/{name}");
        let (token, cookie) = common::forms::open_form(&server, &page).await;
        let texts: Vec<(String, String)> = row
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let fields: Vec<(&str, &str)> = std::iter::once(("_csrf", token.as_str()))
            .chain(texts.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect();
        let (status, _, html) =
            common::forms::post_form(&server, &page, Some(&cookie), &fields).await;
        assert_eq!(status, 200);
        assert!(html.contains(&format!("Why {label}:")), "{html}");
        assert!(html.contains("<svg class=\"contributions\""), "{html}");
        let shown = explanation_rows(&html);
        assert_eq!(shown.len(), 10, "the ten largest of 30");
        assert!(html.contains("20 other features:"), "{html}");
        let mut expected: Vec<(&String, f64)> = answer["contributions"]["features"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k, sign * v.as_f64().unwrap()))
            .collect();
        expected.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        for ((feature, text, direction), (want, value)) in shown.iter().zip(&expected) {
            assert_eq!(feature, *want);
            let shown_value: f64 = text.trim_start_matches('+').parse().unwrap();
            assert!(
                (shown_value - value).abs() <= 5e-4 * value.abs().max(1e-3),
                "{text} vs {value}"
            );
            let towards = if *value >= 0.0 {
                "towards"
            } else {
                "away from"
            };
            assert_eq!(direction, &format!("{towards} {label}"));
        }
    }
    assert_eq!(seen.len(), 2, "both classes' answers were shown: {seen:?}");
    // A model that cannot explain answers as before, without the chart.
    let page = "/ui/models/old_knn";
    let (token, cookie) = common::forms::open_form(&server, page).await;
    let fields = [
        ("_csrf", token.as_str()),
        ("sepal_length", "5.1"),
        ("sepal_width", "3.5"),
        ("petal_length", "1.4"),
        ("petal_width", "0.2"),
    ];
    let (status, _, html) = common::forms::post_form(&server, page, Some(&cookie), &fields).await;
    assert_eq!(status, 200);
    assert!(html.contains("predicted-label"), "{html}");
    assert!(!html.contains("contributions-table"), "{html}");
}

/// The model card's global importance is the mean absolute served contribution over the
/// held-out rows (summed over a multiclass model's classes).
#[tokio::test(flavor = "multi_thread")]
async fn the_model_card_shows_mean_absolute_contributions_over_the_held_out_rows() {
    let repo = repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    for (name, dataset, labels) in [
        (
            "iris_forest",
            BundledDataset::Iris,
            vec!["setosa", "versicolor", "virginica"],
        ),
        ("diabetes_linear", BundledDataset::Diabetes, vec![]),
        ("cancer_boosted", BundledDataset::BreastCancer, vec![]),
    ] {
        let dir = repo.path().join(name).join("1");
        let metrics: Value =
            serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
        let importance = &metrics["importance"];
        let held_out: Vec<usize> = metrics["test_rows"]
            .as_array()
            .or_else(|| metrics["split"]["test_rows"].as_array())
            .unwrap_or_else(|| panic!("{metrics}"))
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let all = rows(dataset, load_bundled(dataset).n_rows());
        let instances: Vec<&Value> = held_out.iter().map(|&row| &all[row]).collect();
        assert_eq!(importance["rows"], instances.len(), "{importance}");
        let mut predictions = Vec::new();
        for chunk in instances.chunks(50) {
            let (status, _, answer) = server
                .post_json(
                    &format!("/api/models/{name}/predict?explain=true"),
                    &json!({ "instances": chunk }),
                )
                .await;
            assert_eq!(status, 200, "{answer}");
            predictions.extend(answer["predictions"].as_array().unwrap().clone());
        }
        let mut sums: std::collections::HashMap<String, f64> = Default::default();
        for prediction in &predictions {
            let outputs: Vec<&Value> = if labels.is_empty() {
                vec![&prediction["contributions"]]
            } else {
                labels
                    .iter()
                    .map(|l| &prediction["contributions"][l])
                    .collect()
            };
            for output in outputs {
                for (feature, value) in output["features"].as_object().unwrap() {
                    *sums.entry(feature.clone()).or_default() += value.as_f64().unwrap().abs();
                }
            }
        }
        let features = importance["features"].as_array().unwrap();
        assert_eq!(features.len(), sums.len());
        let mut previous = f64::INFINITY;
        for entry in features {
            let value = entry["mean_abs_contribution"].as_f64().unwrap();
            let expected = sums[entry["feature"].as_str().unwrap()] / instances.len() as f64;
            assert!(
                (value - expected).abs() <= 1e-9 * expected.max(1.0),
                "{name}: {entry}"
            );
            assert!(value <= previous, "largest first");
            previous = value;
        }
        let card = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(card.contains("<h2>Global importance</h2>"), "{name}");
        let top = features[0]["feature"].as_str().unwrap();
        assert!(
            card.contains(&format!("<tr><td class=\"l\">{top}</td>")),
            "{name}"
        );
    }
}

/// With every coalition within the budget (4 features: 14), KernelSHAP's answer is the exact
/// Shapley value of the game "features outside the coalition take the background rows'
/// values": computed here from the model's own predictions of every mixed row and the
/// version's background.json.
#[tokio::test(flavor = "multi_thread")]
async fn kernel_explanations_are_the_exact_shapley_values_when_the_budget_covers_every_coalition() {
    let repo = repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let background: Value = serde_json::from_slice(
        &std::fs::read(repo.path().join("iris_knn/1/background.json")).unwrap(),
    )
    .unwrap();
    let background_rows = background["rows"].as_array().unwrap();
    let weights: Vec<f64> = background["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap())
        .collect();
    assert!(background_rows.len() <= 100 && background_rows.len() > 10);
    assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let features = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
    let labels = ["setosa", "versicolor", "virginica"];
    for row in rows(BundledDataset::Iris, 3) {
        // v(S) per class: the weighted mean prediction over the background with S from the row.
        let mut value = vec![[0.0; 3]; 16];
        for (subset, slot) in value.iter_mut().enumerate() {
            let mixed: Vec<Value> = background_rows
                .iter()
                .map(|b| {
                    let mut m = b.clone();
                    for (i, f) in features.iter().enumerate() {
                        if subset >> i & 1 == 1 {
                            m[*f] = row[*f].clone();
                        }
                    }
                    m
                })
                .collect();
            let (status, _, answer) = server
                .post_json(
                    "/api/models/iris_knn/predict",
                    &json!({ "instances": mixed }),
                )
                .await;
            assert_eq!(status, 200, "{answer}");
            for (prediction, weight) in answer["predictions"]
                .as_array()
                .unwrap()
                .iter()
                .zip(&weights)
            {
                for (k, label) in labels.iter().enumerate() {
                    slot[k] += weight * prediction["probabilities"][label].as_f64().unwrap();
                }
            }
        }
        let factorial = |n: usize| (1..=n).product::<usize>() as f64;
        let (status, _, explained) = server
            .post_json("/api/models/iris_knn/predict?explain=true", &row)
            .await;
        assert_eq!(status, 200, "{explained}");
        for (k, label) in labels.iter().enumerate() {
            let output = &explained["contributions"][label];
            assert_eq!(output["method"], "kernel");
            assert!((output["base_value"].as_f64().unwrap() - value[0][k]).abs() < 1e-12);
            for (i, feature) in features.iter().enumerate() {
                let exact: f64 = (0..16usize)
                    .filter(|s| s >> i & 1 == 0)
                    .map(|s| {
                        let size = s.count_ones() as usize;
                        factorial(size) * factorial(3 - size) / factorial(4)
                            * (value[s | 1 << i][k] - value[s][k])
                    })
                    .sum();
                let ours = output["features"][feature].as_f64().unwrap();
                assert!(
                    (ours - exact).abs() < 1e-9,
                    "{label} {feature}: {ours} vs {exact}"
                );
            }
        }
    }
}
