//! The web UI in a real headless Chromium: forms, inline errors, random rows, batch upload
//! and download, with JavaScript on and off, at desktop and phone width, by keyboard.
//! Screenshots of each page are kept in target/ui-screenshots.

mod common;

use common::browser::Browser;
use common::{TestServer, demo_repository, test_settings};
use fantoccini::key::Key;
use serde_json::{Value, json};

const SETOSA: [(&str, &str); 4] = [
    ("sepal_length", "5.1"),
    ("sepal_width", "3.5"),
    ("petal_length", "1.4"),
    ("petal_width", "0.2"),
];

async fn fill_iris(browser: &Browser, row: &[(&str, &str)]) {
    for (name, value) in row {
        browser
            .type_into(&format!("#predict-form [name=\"{name}\"]"), value)
            .await;
    }
}

/// The probabilities the REST API gives for a row: the independent check of the page.
async fn api_probabilities(server: &TestServer, row: &[(&str, &str)]) -> (String, Vec<f64>) {
    let body: serde_json::Map<String, Value> = row
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.parse::<f64>().unwrap())))
        .collect();
    let (status, _, answer) = server
        .post_json("/api/models/iris/predict", &Value::Object(body))
        .await;
    assert_eq!(status, 200, "{answer}");
    let probabilities = ["setosa", "versicolor", "virginica"]
        .iter()
        .map(|label| answer["probabilities"][label].as_f64().unwrap())
        .collect();
    (answer["label"].as_str().unwrap().to_string(), probabilities)
}

/// The bars on the page: (class, meter value) in order.
async fn bars(browser: &Browser) -> Vec<(String, f64)> {
    let rows = browser
        .client
        .find_all(fantoccini::Locator::Css("#result table.probabilities tr"))
        .await
        .unwrap();
    let mut bars = Vec::new();
    for row in rows {
        let class = row.attr("data-class").await.unwrap().unwrap();
        let meter = row.find(fantoccini::Locator::Css("meter")).await.unwrap();
        let value: f64 = meter.attr("value").await.unwrap().unwrap().parse().unwrap();
        bars.push((class, value));
    }
    bars
}

async fn wait_for_label(browser: &Browser, expected: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = browser
            .client
            .find(fantoccini::Locator::Css("#predicted-label"))
            .await;
        if let Ok(element) = found
            && element.text().await.is_ok_and(|t| t == expected)
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the label {expected} did not appear"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn field_error(browser: &Browser, field: &str) -> String {
    browser
        .text(&format!(".field[data-field=\"{field}\"] .error-text"))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_iris_form_predicts_in_place_with_javascript() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let browser = Browser::start(true).await;
    browser.client.goto(&server.url("/")).await.unwrap();
    browser.screenshot("models").await;
    browser
        .find("a[href=\"/ui/models/iris\"]")
        .await
        .click()
        .await
        .unwrap();
    assert_eq!(browser.text("h1").await, "iris version 1");
    // A marker that survives only if the page is not reloaded.
    browser
        .client
        .execute("window.mlserveMarker = 42; return 1;", vec![])
        .await
        .unwrap();

    fill_iris(&browser, &SETOSA).await;
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let (label, expected) = api_probabilities(&server, &SETOSA).await;
    wait_for_label(&browser, &label).await;
    let shown = bars(&browser).await;
    let classes: Vec<&str> = shown.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(classes, ["setosa", "versicolor", "virginica"]);
    for ((_, value), expected) in shown.iter().zip(&expected) {
        assert!(
            (value - expected).abs() < 1e-12,
            "bar {value} vs API {expected}"
        );
    }
    let marker = browser
        .client
        .execute("return window.mlserveMarker === 42;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!(true), "the answer came without a page reload");
    browser.screenshot("iris-prediction").await;

    // A second row, of another class, replaces the answer.
    let virginica = [
        ("sepal_length", "6.9"),
        ("sepal_width", "3.1"),
        ("petal_length", "5.4"),
        ("petal_width", "2.1"),
    ];
    fill_iris(&browser, &virginica).await;
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let (label, _) = api_probabilities(&server, &virginica).await;
    assert_eq!(label, "virginica");
    wait_for_label(&browser, "virginica").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_value_is_shown_beside_its_field_and_kept() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let browser = Browser::start(true).await;
    browser
        .client
        .goto(&server.url("/ui/models/iris"))
        .await
        .unwrap();
    fill_iris(&browser, &SETOSA).await;
    browser.type_into("[name=\"sepal_width\"]", "wide").await;
    browser.type_into("[name=\"petal_length\"]", "").await;
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find(".error-summary").await;
    let error = field_error(&browser, "sepal_width").await;
    assert!(
        error.contains("expected a finite number, got \"wide\""),
        "{error}"
    );
    let missing = field_error(&browser, "petal_length").await;
    assert!(missing.contains("expected a finite number"), "{missing}");
    assert_eq!(field_error(&browser, "sepal_length").await, "");
    let input = browser.find("[name=\"sepal_width\"]").await;
    assert_eq!(input.prop("value").await.unwrap().as_deref(), Some("wide"));
    assert_eq!(
        input.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    let focused = browser
        .client
        .execute("return document.activeElement.name;", vec![])
        .await
        .unwrap();
    assert_eq!(
        focused,
        json!("sepal_width"),
        "focus moves to the first bad field"
    );
    assert_eq!(
        browser
            .client
            .find_all(fantoccini::Locator::Css("#predicted-label"))
            .await
            .unwrap()
            .len(),
        0,
        "no prediction is shown for a refused row"
    );
    browser.screenshot("iris-errors").await;

    // Fixing the values clears the errors and answers.
    browser.type_into("[name=\"sepal_width\"]", "3.5").await;
    browser.type_into("[name=\"petal_length\"]", "1.4").await;
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_for_label(&browser, "setosa").await;
    assert_eq!(field_error(&browser, "sepal_width").await, "");
    let input = browser.find("[name=\"sepal_width\"]").await;
    assert_eq!(input.attr("aria-invalid").await.unwrap(), None);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn random_rows_stay_in_the_training_range_and_reset_restores_the_example() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let (_, _, info) = server.get("/api/models/iris").await;
    let browser = Browser::start(true).await;
    browser
        .client
        .goto(&server.url("/ui/models/iris"))
        .await
        .unwrap();
    let read_values = || async {
        let mut values = Vec::new();
        for feature in info["features"].as_array().unwrap() {
            let name = feature["name"].as_str().unwrap();
            let input = browser.find(&format!("[name=\"{name}\"]")).await;
            values.push(input.prop("value").await.unwrap().unwrap());
        }
        values
    };
    let example = read_values().await;
    let expected_example: Vec<String> = info["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["example"].as_f64().unwrap().to_string())
        .collect();
    assert_eq!(example, expected_example);
    let mut rows = std::collections::BTreeSet::new();
    for _ in 0..4 {
        browser
            .find("a[data-fill][href$=\"fill=random\"]")
            .await
            .click()
            .await
            .unwrap();
        // The values change in place; wait until they differ from what was there.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let values = loop {
            let values = read_values().await;
            if !rows.contains(&values) && values != example {
                break values;
            }
            assert!(std::time::Instant::now() < deadline, "no new random row");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        for (value, feature) in values.iter().zip(info["features"].as_array().unwrap()) {
            let number: f64 = value.parse().unwrap();
            let (min, max) = (
                feature["min"].as_f64().unwrap(),
                feature["max"].as_f64().unwrap(),
            );
            assert!(
                (min..=max).contains(&number),
                "{value} outside {min}..{max}"
            );
        }
        rows.insert(values);
    }
    browser
        .find("a[data-fill]:not([href*=\"random\"])")
        .await
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while read_values().await != example {
        assert!(
            std::time::Instant::now() < deadline,
            "reset did not restore the example"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A random row is a valid row: the page answers it as the API does.
    browser
        .find("a[data-fill][href$=\"fill=random\"]")
        .await
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let values = loop {
        let values = read_values().await;
        if values != example {
            break values;
        }
        assert!(std::time::Instant::now() < deadline, "no random row");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let names = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
    let row: Vec<(&str, &str)> = names
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .collect();
    let (label, _) = api_probabilities(&server, &row).await;
    wait_for_label(&browser, &label).await;
    browser.close().await;
}

fn write_upload(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("flowers.csv");
    std::fs::write(
        &path,
        "id,sepal_length,sepal_width,petal_length,petal_width\n\
         a,5.1,3.5,1.4,0.2\n\
         b,6.9,3.1,5.4,2.1\n\
         c,tall,3.0,4.0,1.0\n\
         d,5.9,3.0,4.2,1.5\n",
    )
    .unwrap();
    path
}

async fn upload_and_check(browser: &Browser, server: &TestServer, upload: &std::path::Path) {
    browser
        .client
        .goto(&server.url("/ui/models/iris"))
        .await
        .unwrap();
    browser
        .find("nav.tabs a[href=\"/ui/models/iris/batch\"]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .find("input#file")
        .await
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    browser
        .find("form.upload button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let summary = browser.text("#batch-summary").await;
    assert_eq!(summary, "3 rows predicted, 1 skipped.");
    let bad = browser.text("table.bad-rows tbody").await;
    assert!(bad.starts_with("4"), "line 4 is the bad row: {bad}");
    assert!(
        bad.contains("sepal_length: expected a finite number, got \"tall\""),
        "{bad}"
    );
    let table = browser.text("table.predictions tbody").await;
    let labels: Vec<&str> = table
        .lines()
        .map(|line| line.split_whitespace().nth(5).unwrap())
        .collect();
    assert_eq!(labels, ["setosa", "virginica", "versicolor"]);

    browser.find("#download").await.click().await.unwrap();
    let csv = browser.downloaded("flowers-predictions.csv").await;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,sepal_length,sepal_width,petal_length,petal_width,label,probability_setosa,probability_versicolor,probability_virginica"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3);
    for (row, (id, label)) in
        rows.iter()
            .zip([("a", "setosa"), ("b", "virginica"), ("d", "versicolor")])
    {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!((cells[0], cells[5]), (id, label), "{row}");
        let sum: f64 = cells[6..].iter().map(|c| c.parse::<f64>().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{row}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_upload_shows_predictions_and_bad_rows_and_downloads() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let browser = Browser::start(true).await;
    let upload = write_upload(repo.path());
    upload_and_check(&browser, &server, &upload).await;
    browser.screenshot("iris-batch").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn everything_works_with_javascript_off() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let browser = Browser::start(false).await;
    browser
        .client
        .goto(&server.url("/ui/models/iris"))
        .await
        .unwrap();
    // The marker is set by the driver, which works with page scripts off; a reload clears it.
    browser
        .client
        .execute("window.mlserveMarker = 42; return 1;", vec![])
        .await
        .unwrap();
    fill_iris(&browser, &SETOSA).await;
    browser.type_into("[name=\"petal_width\"]", "thin").await;
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find(".error-summary").await;
    let error = field_error(&browser, "petal_width").await;
    assert!(error.contains("got \"thin\""), "{error}");
    let input = browser.find("[name=\"petal_width\"]").await;
    assert_eq!(input.prop("value").await.unwrap().as_deref(), Some("thin"));
    let marker = browser
        .client
        .execute("return window.mlserveMarker === 42;", vec![])
        .await
        .unwrap();
    assert_eq!(
        marker,
        json!(false),
        "without JavaScript the post loads a new page"
    );

    browser.type_into("[name=\"petal_width\"]", "0.2").await;
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_for_label(&browser, "setosa").await;
    let shown = bars(&browser).await;
    assert_eq!(shown.len(), 3);
    let (_, expected) = api_probabilities(&server, &SETOSA).await;
    for ((_, value), expected) in shown.iter().zip(&expected) {
        assert!((value - expected).abs() < 1e-12);
    }
    browser.screenshot("iris-prediction-no-js").await;

    // The random-row link is a plain link to a server-filled form.
    browser
        .find("a[data-fill][href$=\"fill=random\"]")
        .await
        .click()
        .await
        .unwrap();
    assert!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("?fill=random")
    );

    let upload = write_upload(repo.path());
    upload_and_check(&browser, &server, &upload).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_card_is_one_click_from_the_model_page() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let browser = Browser::start(true).await;
    browser
        .client
        .goto(&server.url("/ui/models/breast_cancer"))
        .await
        .unwrap();
    browser
        .find("nav.tabs a[href$=\"/card\"]")
        .await
        .click()
        .await
        .unwrap();
    let card = browser.text("article.card").await;
    for heading in [
        "Data and training",
        "Metrics on the held-out split",
        "Confusion matrix and ROC curve",
        "Features",
    ] {
        assert!(card.contains(heading), "the card has {heading}");
    }
    assert!(
        card.contains("86abafa0d5a78e22763d04a8ac6a8cf82de38afc648f396da59cea94e70dc4ba"),
        "provenance: dataset hash"
    );
    browser
        .find("article.card svg[aria-label=\"Confusion matrix\"]")
        .await;
    browser
        .find("article.card svg[aria-label=\"ROC curve\"]")
        .await;
    browser.screenshot("breast-cancer-card").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_fit_a_phone_and_work_by_keyboard() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let browser = Browser::start(true).await;
    browser.resize(390, 844).await;
    for path in [
        "/",
        "/ui/models/breast_cancer",
        "/ui/models/iris/batch",
        "/ui/models/iris/card",
    ] {
        browser.client.goto(&server.url(path)).await.unwrap();
        browser.find("main").await;
        let overflow = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, json!(0), "{path} scrolls sideways at phone width");
    }
    browser
        .client
        .goto(&server.url("/ui/models/iris"))
        .await
        .unwrap();
    browser.screenshot("iris-phone").await;

    // Keyboard only: the first Tab reaches the skip link; typing and Enter submit the form.
    browser
        .find("body")
        .await
        .send_keys(&Key::Tab.to_string())
        .await
        .unwrap();
    let active = browser
        .client
        .execute("return document.activeElement.className;", vec![])
        .await
        .unwrap();
    assert_eq!(active, json!("skip"));
    // Tab moves from field to field: type each value, select it all first, then Enter.
    let first = browser.find("[name=\"sepal_length\"]").await;
    first.clear().await.unwrap();
    let mut keys = String::new();
    for (index, (_, value)) in SETOSA.iter().enumerate() {
        if index > 0 {
            keys.push_str(&Key::Tab.to_string());
            keys.push_str(&format!("{}a", Key::Control));
            keys.push_str(&Key::Null.to_string());
        }
        keys.push_str(value);
    }
    keys.push_str(&Key::Enter.to_string());
    first.send_keys(&keys).await.unwrap();
    wait_for_label(&browser, "setosa").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_passes_the_axe_accessibility_rules() {
    let repo = demo_repository();
    train_diabetes(repo.path());
    let server = TestServer::start(test_settings(repo.path())).await;
    let browser = Browser::start(true).await;
    // The checker itself works: a page with an unlabelled input fails it.
    browser
        .client
        .goto("data:text/html,<!doctype html><html lang=en><title>x</title><input>")
        .await
        .unwrap();
    let found = browser.accessibility_violations().await;
    assert!(found.iter().any(|v| v.starts_with("label ")), "{found:?}");
    let mut failures = Vec::new();
    let mut check = async |label: &str| {
        for violation in browser.accessibility_violations().await {
            failures.push(format!("{label}: {violation}"));
        }
    };
    for path in [
        "/",
        "/ui/models/churn",
        "/ui/models/iris/batch",
        "/ui/models/breast_cancer/card",
        "/ui/models/iris/monitoring",
        "/ui/models/diabetes/card",
        "/ui/models/diabetes/monitoring",
        "/ui/models/nope",
    ] {
        browser.client.goto(&server.url(path)).await.unwrap();
        browser.find("main").await;
        check(path).await;
    }
    // The answer and the error states too.
    browser
        .client
        .goto(&server.url("/ui/models/iris"))
        .await
        .unwrap();
    fill_iris(&browser, &SETOSA).await;
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_for_label(&browser, "setosa").await;
    check("iris answer").await;
    browser.type_into("[name=\"sepal_width\"]", "wide").await;
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find(".error-summary").await;
    check("iris errors").await;
    let upload = write_upload(repo.path());
    browser
        .client
        .goto(&server.url("/ui/models/iris/batch"))
        .await
        .unwrap();
    browser
        .find("input#file")
        .await
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    browser
        .find("form.upload button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#batch-summary").await;
    check("batch result").await;
    // A model that predicts a number: its answer on the training target's range.
    browser
        .client
        .goto(&server.url("/ui/models/diabetes"))
        .await
        .unwrap();
    browser
        .find("#predict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.find("#predicted-value").await;
    browser.find("svg.range-bar").await;
    browser.screenshot("diabetes-answer").await;
    check("diabetes answer").await;
    browser.close().await;
    assert!(
        failures.is_empty(),
        "accessibility problems:\n{}",
        failures.join("\n")
    );
}

/// Trains the bundled diabetes data (a model that predicts a number) into `models`.
fn train_diabetes(models: &std::path::Path) {
    use mlserve::train::{Algorithm, AlgorithmParams, HyperParameterFlags, NoProgress};
    let options = mlserve::train::TrainOptions {
        params: AlgorithmParams::from_flags_for(
            mlserve::data::Task::Regression,
            Algorithm::LinearRegression,
            &HyperParameterFlags::default(),
        )
        .unwrap(),
        test_size: 0.2,
        seed: 42,
        cv: None,
    };
    let data = mlserve::data::load_bundled(mlserve::data::BundledDataset::Diabetes);
    mlserve::train::regression::train_regressor(&data, &options, &NoProgress)
        .unwrap()
        .save(models, "diabetes")
        .unwrap();
}
