//! Explanations over HTTP: `?explain=true` on the native API, the V2 `explain` parameter and
//! KServe V1's `:explain`, for every model family. Each answer's base value and contributions
//! add up to the model's output in the answer's unit (efficiency), checked here against the
//! prediction the same server gives; KernelSHAP against the exact Shapley values.

mod common;

use common::explain::{repository, rows};
use common::{TestServer, assert_problem, test_settings};
use mlserve::data::BundledDataset;
use serde_json::{Value, json};

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
    // Exact methods say so; KernelSHAP over 4 features covers every coalition, over 30 not.
    let exact = method != "kernel" || features == 4;
    assert_eq!(output["exact"], exact, "{output}");
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
        // One output, towards the second class, which it names.
        assert_eq!(&contributions["class"], &json!(labels[1]), "{answer}");
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
    (
        "iris_linear",
        BundledDataset::Iris,
        "linear",
        "raw_score",
        4,
    ),
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
    for (query, message) in [
        ("explain=true&explain=false", "explain is given twice"),
        ("explian=true", "unknown query parameter 'explian'"),
    ] {
        let (status, _, body) = server
            .post_json(&format!("/api/models/iris_forest/predict?{query}"), &row)
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(message), "{body}");
    }
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
        "explaining 5 rows counts as 50 rows against the limit (tree_path_dependent explanations \
         count 10 a row); the limit is 40 (setting max_batch_rows): send at most 4 rows a request"
    );
    let (status, _, _) = server
        .post_json(
            "/api/models/iris_forest/predict?explain=true",
            &json!({ "instances": &instances[..4] }),
        )
        .await;
    assert_eq!(status, 200);
    let labels = [("model", "iris_forest"), ("method", "tree_path_dependent")];
    assert_eq!(
        server.metric("mlserve_explained_rows_total", &labels).await,
        4.0
    );
    // A setting so low that not one explained row fits says what to raise, and the document
    // offers no :explain it could not answer.
    let mut tight = test_settings(repo.path());
    tight.max_batch_rows = 5;
    let tight = TestServer::start(tight).await;
    let (status, _, body) = tight
        .post_json(
            "/api/models/iris_forest/predict?explain=true",
            &instances[0],
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .ends_with("not even one row fits; raise max_batch_rows to at least 10"),
        "{body}"
    );
    let (_, _, document) = tight.get("/openapi.json").await;
    assert!(document["paths"]["/v1/models/iris_forest:explain"].is_null());
    assert!(document["paths"]["/v1/models/iris_linear:explain"].is_object());
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
    // Named outputs are the answer: they must agree with the parameter.
    for (parameters, output, message) in [
        (json!({"explain": true}), "label", "name it among them"),
        (
            json!({"explain": false}),
            "contributions",
            "with parameter explain false",
        ),
    ] {
        let request =
            json!({"inputs": inputs, "parameters": parameters, "outputs": [{"name": output}]});
        let (status, _, answer) = server
            .post_json("/v2/models/iris_forest/infer", &request)
            .await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(message),
            "{answer}"
        );
    }
    let request = json!({"inputs": inputs, "outputs": [{"name": "contributions"}]});
    let (status, _, answer) = server
        .post_json("/v2/models/iris_forest/infer", &request)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["outputs"].as_array().unwrap().len(),
        1,
        "only what was asked: {answer}"
    );
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

/// A row the model cannot score is refused the same way with or without explanations: the
/// explanation is made only of rows the model answered.
#[tokio::test(flavor = "multi_thread")]
async fn a_row_the_model_cannot_score_is_refused_alike_when_explained() {
    let repo = repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    for name in ["cancer_bayes", "cancer_linear", "cancer_boosted"] {
        // Each value just inside what the validator lets through (a billion times the training
        // range), where models' arithmetic is strained.
        let (_, _, described) = server.get(&format!("/api/models/{name}")).await;
        let mut row = rows(BundledDataset::BreastCancer, 1).remove(0);
        for feature in described["features"].as_array().unwrap() {
            let max = feature["max"].as_f64().unwrap();
            row[feature["name"].as_str().unwrap()] = json!(max * 9.9e8);
        }
        let (plain, _, without) = server
            .post_json(&format!("/api/models/{name}/predict"), &row)
            .await;
        let (explained, _, with) = server
            .post_json(&format!("/api/models/{name}/predict?explain=true"), &row)
            .await;
        assert_ne!(explained, 500, "{name}: {with}");
        assert_eq!(plain, explained, "{name}: {without} / {with}");
        if plain == 200 {
            // Answered: the explanation is finite and adds up, or the row is refused.
            let output = &with["contributions"];
            assert!(output["base_value"].is_number(), "{name}: {with}");
        } else {
            assert_eq!(without["detail"], with["detail"], "{name}");
        }
    }
}
