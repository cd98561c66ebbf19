//! The web UI over plain HTTP: what a browser without JavaScript, or a forger, can send.
//! CSRF refusals, error pages, escaping, upload limits, headers and static assets.

mod common;

use common::forms::{open_form, post_form};
use common::{TestServer, demo_repository, test_settings};
use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::multipart::{Form, Part};

const ROW: [(&str, &str); 4] = [
    ("sepal_length", "6.9"),
    ("sepal_width", "3.1"),
    ("petal_length", "5.4"),
    ("petal_width", "2.1"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_form_post_needs_the_page_token_and_cookie() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let (token, cookie) = open_form(&server, "/ui/models/iris").await;
    let with_token: Vec<(&str, &str)> = std::iter::once(("_csrf", token.as_str()))
        .chain(ROW)
        .collect();

    let (status, _, html) = post_form(&server, "/ui/models/iris", Some(&cookie), &with_token).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<strong id=\"predicted-label\">virginica</strong>"),
        "{html}"
    );

    let (status, _, html) = post_form(&server, "/ui/models/iris", None, &with_token).await;
    assert_eq!(status, 403);
    assert!(html.contains("security cookie is missing"), "{html}");

    let (status, _, html) = post_form(&server, "/ui/models/iris", Some(&cookie), &ROW).await;
    assert_eq!(status, 403);
    assert!(html.contains("does not match"), "{html}");
    assert!(!html.contains("predicted-label"));

    let other_token: Vec<(&str, &str)> =
        std::iter::once(("_csrf", "00000000000000000000000000000000"))
            .chain(ROW)
            .collect();
    let (status, _, _) = post_form(&server, "/ui/models/iris", Some(&cookie), &other_token).await;
    assert_eq!(status, 403);

    let response = server
        .client
        .post(server.url("/ui/models/iris"))
        .header(COOKIE, &cookie)
        .header("origin", "https://evil.example")
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("another site"));

    // The upload form is protected the same way.
    let form = Form::new()
        .text("_csrf", "00000000000000000000000000000000")
        .part("file", Part::bytes(b"a\n1\n".to_vec()).file_name("x.csv"));
    let response = server
        .client
        .post(server.url("/ui/models/iris/batch"))
        .header(COOKIE, &cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_rows_keep_what_was_typed_and_name_every_problem() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let (token, cookie) = open_form(&server, "/ui/models/churn").await;
    let (status, _, html) = post_form(
        &server,
        "/ui/models/churn",
        Some(&cookie),
        &[
            ("_csrf", &token),
            ("tenure", "a <b>year</b>"),
            ("plan", "gold"),
            ("senior", "maybe"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("3 problems need fixing"), "{html}");
    // What was typed comes back, escaped, in the input and in the message.
    assert!(
        html.contains("value=\"a &#60;b&#62;year&#60;/b&#62;\""),
        "{html}"
    );
    assert!(!html.contains("<b>year</b>"));
    assert!(
        html.contains("unknown category &#34;gold&#34;: expected one of"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"gold\" selected>gold</option>"),
        "{html}"
    );
    assert!(html.contains("aria-invalid=\"true\""));

    let (status, _, html) = post_form(
        &server,
        "/ui/models/churn",
        Some(&cookie),
        &[("_csrf", &token), ("tenure", "12"), ("plan", "pro")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("senior</a>: missing"), "{html}");

    let (status, _, html) = post_form(
        &server,
        "/ui/models/churn",
        Some(&cookie),
        &[
            ("_csrf", &token),
            ("tenure", "400"),
            ("plan", "pro"),
            ("senior", "true"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Outside the training range"), "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_models_and_wrong_requests_get_pages_with_the_right_status() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    for (path, status, text) in [
        ("/ui/models/nope", 404, "no model named &#39;nope&#39;"),
        (
            "/ui/models/iris/versions/9",
            404,
            "has no version &#39;9&#39;",
        ),
        ("/ui/models/nope/batch", 404, "no model named"),
        ("/ui/models/nope/card", 404, "no model named"),
        ("/ui/downloads/0123", 404, "no longer kept"),
    ] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let html = response.text().await.unwrap();
        assert!(html.contains(text), "{path}: {html}");
        // The page names the request, for finding it in the log.
        assert!(
            html.contains(&format!("Request {request_id}")),
            "{path}: {html}"
        );
    }
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/ui", "/ui/models"] {
        let response = no_redirects.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/");
    }
    let response = server
        .client
        .get(server.url("/ui/nothing/here"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("there is no such page")
    );

    let (token, cookie) = open_form(&server, "/ui/models/iris").await;
    // Behind a proxy that rewrites Host, a browser's Sec-Fetch-Site still tells same-origin posts.
    let fields: Vec<(&str, &str)> = std::iter::once(("_csrf", token.as_str()))
        .chain(ROW)
        .collect();
    let response = server
        .client
        .post(server.url("/ui/models/iris"))
        .header(COOKIE, &cookie)
        .header("origin", "https://models.example.com")
        .header("sec-fetch-site", "same-origin")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .client
        .post(server.url("/ui/models/iris"))
        .header(COOKIE, &cookie)
        .json(&serde_json::json!({"_csrf": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = server
        .client
        .post(server.url("/ui/models/iris/batch"))
        .header(COOKIE, &cookie)
        .form(&[("_csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415, "the upload takes multipart");
}

#[tokio::test(flavor = "multi_thread")]
async fn pinned_versions_have_their_own_pages() {
    let repo = demo_repository();
    common::train_into(
        repo.path(),
        mlserve::data::BundledDataset::Iris,
        mlserve::train::Algorithm::LogisticRegression,
        "iris",
        3,
    );
    let server = TestServer::start(test_settings(repo.path())).await;
    let second_is_default = common::eventually(std::time::Duration::from_secs(10), async || {
        let (_, _, info) = server.get("/api/models/iris").await;
        info["version"] == "2"
    })
    .await;
    assert!(second_is_default);
    let html = server
        .client
        .get(server.url("/ui/models/iris/versions/1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("iris <span class=\"version\">version 1</span>"));
    assert!(html.contains("random-forest"));
    assert!(html.contains("action=\"/ui/models/iris/versions/1\""));
    assert!(
        html.contains("<a href=\"/ui/models/iris/versions/2\">2</a>"),
        "{html}"
    );
    let (token, cookie) = open_form(&server, "/ui/models/iris/versions/1").await;
    let fields: Vec<(&str, &str)> = std::iter::once(("_csrf", token.as_str()))
        .chain(ROW)
        .collect();
    let (status, _, html) = post_form(
        &server,
        "/ui/models/iris/versions/1",
        Some(&cookie),
        &fields,
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Model iris version 1"), "{html}");
    let (_, _, html) = post_form(&server, "/ui/models/iris", Some(&cookie), &fields).await;
    assert!(html.contains("Model iris version 2"), "{html}");
}

async fn upload(
    server: &TestServer,
    cookie: &str,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (u16, String) {
    let form = Form::new()
        .text("_csrf", token.to_string())
        .part("file", Part::bytes(bytes).file_name(name.to_string()));
    let response = server
        .client
        .post(server.url("/ui/models/iris/batch"))
        .header(COOKIE, cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_that_cannot_be_predicted_say_why() {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.max_upload_bytes = 4096;
    let server = TestServer::start(settings).await;
    let (token, cookie) = open_form(&server, "/ui/models/iris/batch").await;

    let (status, html) = upload(&server, &cookie, &token, "a.csv", b"x,y\n1,2\n".to_vec()).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("a.csv: the header lacks the feature column(s) sepal_length, sepal_width"),
        "{html}"
    );
    let (status, html) = upload(&server, &cookie, &token, "e.csv", Vec::new()).await;
    assert_eq!(status, 422);
    assert!(html.contains("Choose a CSV file"), "{html}");
    // Short rows and undecodable text are bad rows, listed; the rest is predicted.
    let mut ragged =
        b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n1,2\n".to_vec();
    ragged.extend_from_slice(b"5.0,3.4,1.5,0.\xff2\n6.9,3.1,5.4,2.1\n");
    let (status, html) = upload(&server, &cookie, &token, "ragged.csv", ragged).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<strong>2</strong> rows predicted, <strong>2</strong> skipped."),
        "{html}"
    );
    assert!(
        html.contains(
            "<td class=\"num\">3</td><td>row: the row has 2 cells; the header has 4</td>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"num\">4</td><td>row: cell 4 is not valid UTF-8 text</td>"),
        "{html}"
    );
    let clash = b"sepal_length,sepal_width,petal_length,petal_width,label\n1,2,3,4,x\n".to_vec();
    let (status, html) = upload(&server, &cookie, &token, "c.csv", clash).await;
    assert_eq!(status, 422);
    assert!(
        html.contains("already has a column named &#39;label&#39;"),
        "{html}"
    );

    let mut big = b"sepal_length,sepal_width,petal_length,petal_width\n".to_vec();
    while big.len() <= 4096 {
        big.extend_from_slice(b"5.1,3.5,1.4,0.2\n");
    }
    let (status, html) = upload(&server, &cookie, &token, "big.csv", big).await;
    assert_eq!(status, 413);
    assert!(html.contains("larger than the upload limit"), "{html}");

    // Every row bad: nothing to download, and the page says so.
    let all_bad = b"sepal_length,sepal_width,petal_length,petal_width\nx,1,1,1\n".to_vec();
    let (status, html) = upload(&server, &cookie, &token, "bad.csv", all_bad).await;
    assert_eq!(status, 200);
    assert!(html.contains("<strong>0</strong> rows predicted, <strong>1</strong> skipped."));
    assert!(!html.contains("id=\"download\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_csv_round_trips_through_the_upload() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let response = server
        .client
        .get(server.url("/ui/models/breast_cancer/batch/example.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"breast_cancer-example.csv\""
    );
    let example = response.bytes().await.unwrap().to_vec();
    let text = String::from_utf8(example.clone()).unwrap();
    let (_, _, info) = server.get("/api/models/breast_cancer").await;
    let names: Vec<&str> = info["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(text.lines().next().unwrap(), names.join(","));
    assert_eq!(text.lines().count(), 6);

    let (token, cookie) = open_form(&server, "/ui/models/breast_cancer/batch").await;
    let form = Form::new()
        .text("_csrf", token)
        .part("file", Part::bytes(example).file_name("ex.csv"));
    let response = server
        .client
        .post(server.url("/ui/models/breast_cancer/batch"))
        .header(COOKIE, &cookie)
        .header("x-request-id", "upload-1")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<strong>5</strong> rows predicted, <strong>0</strong> skipped."),
        "{html}"
    );
    // Uploaded rows are predictions too: each is in the prediction log.
    let store = mlserve::store::Store::open(&test_settings(repo.path()).database_url)
        .await
        .unwrap();
    for row in 0..5 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store
            .find_prediction("upload-1", row)
            .await
            .unwrap()
            .is_none()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "upload row {row} logged"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    // And counted, as every predict path counts.
    let counted = server
        .metric(
            "mlserve_rows_predicted_total",
            &[("model", "breast_cancer")],
        )
        .await;
    assert_eq!(counted, 5.0);
    let link = html
        .split("id=\"download\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let response = server.client.get(server.url(link)).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"ex-predictions.csv\""
    );
    let csv = response.text().await.unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(",label,probability_malignant,probability_benign")
    );
    // The first row is the example row; its label equals the API's answer for it.
    let (_, _, answer) = server
        .post_json("/api/models/breast_cancer/predict", &info["example"])
        .await;
    let first = lines.next().unwrap();
    let label = first.split(',').nth(names.len()).unwrap();
    assert_eq!(label, answer["label"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_and_assets_carry_security_and_cache_headers() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let response = server
        .client
        .get(server.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    for name in ["breast_cancer", "iris", "churn"] {
        assert!(
            html.contains(&format!("<a href=\"/ui/models/{name}\">{name}</a>")),
            "{html}"
        );
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no outside assets"
    );
    let css = html
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let response = server.client.get(server.url(css)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/css; charset=utf-8"
    );
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let etag = response.headers()["etag"].clone();
    let response = server
        .client
        .get(server.url("/static/mlserve.css"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let response = server
        .client
        .get(server.url("/static/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn markup_in_a_schema_is_shown_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("odd.csv");
    let mut text = String::from("<i>size</i>,colour,target\n");
    for i in 0..60 {
        let colour = ["red", "<script>alert(1)</script>"][i % 2];
        text.push_str(&format!("{},{colour},{}\n", i, ["a", "b"][(i / 2) % 2]));
    }
    std::fs::write(&csv, text).unwrap();
    let data = mlserve::data::load_csv(
        &csv,
        &mlserve::data::CsvOptions {
            target: "target".into(),
            categorical: vec![],
            task: None,
            missing_values: false,
        },
    )
    .unwrap();
    let options = mlserve::train::TrainOptions {
        params: mlserve::train::AlgorithmParams::from_flags(
            mlserve::train::Algorithm::NaiveBayes,
            &mlserve::train::HyperParameterFlags::default(),
        )
        .unwrap(),
        test_size: 0.2,
        seed: 1,
        cv: None,
    };
    let models = dir.path().join("models");
    mlserve::train::train(&data, &options, &mlserve::train::NoProgress)
        .unwrap()
        .save(&models, "odd")
        .unwrap();
    let server = TestServer::start(test_settings(&models)).await;
    for path in [
        "/ui/models/odd",
        "/ui/models/odd/card",
        "/ui/models/odd/batch",
    ] {
        let html = server
            .client
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("<script>alert"), "{path} is escaped");
        assert!(!html.contains("<i>size"), "{path} is escaped");
        assert!(
            html.contains("&#60;i&#62;size") || html.contains("&lt;i&gt;size"),
            "{path}: {html}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_monitoring_page_shows_live_metrics_and_drift() {
    let repo = demo_repository();
    let server = TestServer::start(test_settings(repo.path())).await;
    let rows: Vec<serde_json::Value> = (0..60)
        .map(|i| {
            serde_json::json!({
                "sepal_length": 5.0 + f64::from(i % 10) / 10.0,
                "sepal_width": 3.4,
                "petal_length": 1.5,
                "petal_width": 0.2,
            })
        })
        .collect();
    let response = server
        .client
        .post(server.url("/api/models/iris/predict"))
        .header("x-request-id", "mon")
        .json(&serde_json::json!({ "instances": rows }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Feedback on two rows: one right, one wrong.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for (row, label) in [(0, "setosa"), (1, "virginica")] {
        loop {
            let (status, _, _) = server
                .post_json(
                    "/api/predictions/mon/feedback",
                    &serde_json::json!({"label": label, "row": row}),
                )
                .await;
            if status == 200 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "feedback accepted");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let html = server
        .client
        .get(server.url("/ui/models/iris/monitoring?window=1h"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<th scope=\"row\">1</th><td class=\"num\">60</td><td class=\"num\">2</td><td class=\"num\">0.500</td>"),
        "{html}"
    );
    assert!(html.contains("Drift of version 1"));
    // petal_length never moved from 1.5: far from the training spread, and 60 values.
    assert!(
        html.contains("<tr data-feature=\"petal_length\"><th scope=\"row\">petal_length</th>"),
        "{html}"
    );
    assert!(html.contains("status failed\">drifted</span>"), "{html}");
    assert!(
        html.contains(
            "<a href=\"/ui/models/iris/monitoring?window=1h\" aria-current=\"page\">1h</a>"
        )
    );
}
