//! Explanations where people and programs meet them besides the API: `mlserve predict
//! --explain`, the OpenAPI document, the web form's chart and the model card's global
//! importance.

mod common;

use common::explain::{repository, rows};
use common::{TestServer, test_settings};
use mlserve::data::{BundledDataset, load_bundled};
use serde_json::{Value, json};
use std::path::Path;

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
    // Without --quiet, stderr says what the columns hold; the CSV has no room for the unit.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let row = &rows(BundledDataset::BreastCancer, 1)[0];
    let names: Vec<&String> = row.as_object().unwrap().keys().collect();
    let cells: Vec<String> = names.iter().map(|n| row[n.as_str()].to_string()).collect();
    let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    std::fs::write(
        &input,
        format!("{}\n{}\n", names.join(","), cells.join(",")),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
            .args(["predict", "--models"])
            .arg(repo.path())
            .args(["--model", "cancer_linear", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(dir.path().join("out.csv"))
            .args(extra)
            .output()
            .unwrap()
    };
    let told = run(&["--explain"]);
    let stderr = String::from_utf8_lossy(&told.stderr);
    assert!(told.status.success(), "{stderr}");
    assert!(
        stderr.contains("explanations: linear SHAP values in log_odds, towards benign"),
        "{stderr}"
    );
    // A budget without --explain is a usage error, not silently ignored.
    let refused = run(&["--explain-samples", "50"]);
    assert_eq!(refused.status.code(), Some(2));
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
