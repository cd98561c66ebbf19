//! A gradient-boosted model's pages in a real headless Chromium: its form takes a category from
//! a list and leaves a nullable number empty (a missing value, which the trees route), its
//! answer equals the REST API's, and its pages pass the axe accessibility rules.

mod common;

use common::browser::Browser;
use common::{TestServer, test_settings};
use fantoccini::Locator;
use mlserve::data::{CsvOptions, Task, load_csv};
use mlserve::train::boosting::pipeline::train_boosted;
use mlserve::train::{Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress, TrainOptions};
use serde_json::json;
use std::path::Path;

/// 400 visits: the outcome is `yes` at the north and west clinics; `dose` is missing in a
/// quarter of the rows.
fn train_visits(dir: &Path, models: &Path) {
    let clinics = ["north", "south", "east", "west"];
    let mut text = String::from("clinic,dose,outcome\n");
    for i in 0..400 {
        let clinic = clinics[i % 4];
        let dose = if i % 8 < 2 {
            String::new()
        } else {
            format!("{}", (i * 37 % 100) as f64 / 20.0)
        };
        let outcome = if matches!(clinic, "north" | "west") {
            "yes"
        } else {
            "no"
        };
        text.push_str(&format!("{clinic},{dose},{outcome}\n"));
    }
    let csv = dir.join("visits.csv");
    std::fs::write(&csv, text).unwrap();
    let options = CsvOptions {
        target: "outcome".into(),
        missing_values: true,
        ..CsvOptions::default()
    };
    let data = load_csv(&csv, &options).unwrap();
    let options = TrainOptions {
        params: AlgorithmParams::from_flags_for(
            Task::Classification,
            Algorithm::GradientBoosting,
            &HyperParameterFlags::default(),
        )
        .unwrap(),
        test_size: 0.2,
        seed: 42,
        cv: None,
    };
    train_boosted(&data, &options, &NoProgress)
        .unwrap()
        .save(models, "visits")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_boosted_model_takes_a_category_and_a_missing_value_from_its_form() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    train_visits(dir.path(), &models);
    let server = TestServer::start(test_settings(&models)).await;
    let (status, _, answer) = server
        .post_json(
            "/api/models/visits/predict",
            &json!({"clinic": "west", "dose": null}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["label"], "yes");
    let api_yes = answer["probabilities"]["yes"].as_f64().unwrap();

    let browser = Browser::start(true).await;
    browser
        .client
        .goto(&server.url("/ui/models/visits"))
        .await
        .unwrap();
    let mut failures = Vec::new();
    for violation in browser.accessibility_violations().await {
        failures.push(format!("form: {violation}"));
    }
    let select = browser.find("#predict-form select[name=\"clinic\"]").await;
    let options = select.find_all(Locator::Css("option")).await.unwrap().len();
    assert!(
        options >= 4,
        "the four clinics are offered: {options} options"
    );
    select.select_by_value("west").await.unwrap();
    // The dose is nullable: left empty, it is a missing value.
    browser.type_into("#predict-form [name=\"dose\"]", "").await;
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let label = browser.client.find(Locator::Css("#predicted-label")).await;
        if let Ok(label) = label
            && label.text().await.is_ok_and(|t| t == "yes")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer 'yes' shown"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let meter = browser
        .find("#result table.probabilities tr[data-class=\"yes\"] meter")
        .await;
    let shown: f64 = meter.attr("value").await.unwrap().unwrap().parse().unwrap();
    assert!((shown - api_yes).abs() < 1e-12, "{shown} vs {api_yes}");
    browser.screenshot("boosted-answer").await;
    for violation in browser.accessibility_violations().await {
        failures.push(format!("answer: {violation}"));
    }
    browser
        .client
        .goto(&server.url("/ui/models/visits/card"))
        .await
        .unwrap();
    let card = browser.text("main").await;
    assert!(card.contains("gradient-boosting"), "{card}");
    assert!(card.contains("Confusion matrix"), "{card}");
    for violation in browser.accessibility_violations().await {
        failures.push(format!("card: {violation}"));
    }
    browser.close().await;
    assert!(
        failures.is_empty(),
        "accessibility problems:\n{}",
        failures.join("\n")
    );
    server.server.shutdown().await.unwrap();
}
