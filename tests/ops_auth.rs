//! Auth, rate limits and load shedding over real HTTP: the auth matrix on every route (no
//! credentials, bad ones, a predict key, an admin key, a Basic user), the web UI sign-in,
//! `mlserve keys`, 429 and 503.

mod common;

use common::{TestServer, demo_repository, test_settings};
use mlserve::serve::auth::keys::{KeysFile, Role};
use reqwest::Method;
use serde_json::json;

struct Keys {
    predict: String,
    admin: String,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

const USER: (&str, &str) = ("alice", "correct horse battery");

fn make_keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    let mut file = KeysFile::default();
    let predict = file.create_key("ci", Role::Predict).unwrap();
    let admin = file.create_key("ops", Role::Admin).unwrap();
    file.add_user(USER.0, Role::Predict, USER.1).unwrap();
    file.save(&path).unwrap();
    Keys {
        predict,
        admin,
        path,
        _dir: dir,
    }
}

async fn auth_server(
    keys: &Keys,
    tweak: impl FnOnce(&mut mlserve::config::Settings),
) -> (TestServer, tempfile::TempDir) {
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.auth = true;
    settings.keys_file = keys.path.clone();
    tweak(&mut settings);
    (TestServer::start(settings).await, repo)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    Open,
    Predict,
    Admin,
}

/// Every route, with a request that succeeds when allowed.
fn routes() -> Vec<(Method, &'static str, Option<serde_json::Value>, Need)> {
    let row =
        json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    vec![
        (Method::GET, "/health/live", None, Need::Open),
        (Method::GET, "/health/ready", None, Need::Open),
        (Method::GET, "/api/readiness", None, Need::Open),
        (Method::GET, "/openapi.json", None, Need::Open),
        (Method::GET, "/metrics", None, Need::Open),
        (Method::GET, "/api/models", None, Need::Predict),
        (Method::GET, "/api/models/iris", None, Need::Predict),
        (
            Method::GET,
            "/api/models/iris/versions/1",
            None,
            Need::Predict,
        ),
        (
            Method::GET,
            "/api/models/iris/versions/1/report",
            None,
            Need::Predict,
        ),
        (
            Method::POST,
            "/api/models/iris/predict",
            Some(row.clone()),
            Need::Predict,
        ),
        (
            Method::POST,
            "/api/models/iris/versions/1/predict",
            Some(row),
            Need::Predict,
        ),
        (
            Method::GET,
            "/api/models/iris/predict?sepal_length=5.1&sepal_width=3.5&petal_length=1.4&petal_width=0.2",
            None,
            Need::Predict,
        ),
        (
            Method::GET,
            "/api/models/iris/monitoring",
            None,
            Need::Predict,
        ),
        (Method::GET, "/api/models/iris/drift", None, Need::Predict),
        (Method::POST, "/api/models/iris/reload", None, Need::Admin),
        (Method::GET, "/api/predictions", None, Need::Admin),
        (
            Method::DELETE,
            "/api/predictions/someone-s-request",
            None,
            Need::Admin,
        ),
        (Method::GET, "/v2/health/ready", None, Need::Open),
        (Method::GET, "/v2/models/iris", None, Need::Predict),
        (
            Method::POST,
            "/v2/models/iris/infer",
            Some(
                json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}),
            ),
            Need::Predict,
        ),
        (Method::POST, "/v2/repository/index", None, Need::Admin),
        (
            Method::POST,
            "/v1/models/iris:predict",
            Some(json!({"instances": [[5.1, 3.5, 1.4, 0.2]]})),
            Need::Predict,
        ),
        // A program's GET / is KServe V1's liveness check, open like every probe; a browser's
        // is the web UI (the_web_ui_asks_for_the_same_credentials).
        (Method::GET, "/", None, Need::Open),
        (Method::GET, "/ui/models/iris", None, Need::Predict),
        (Method::GET, "/ui/models/iris/card", None, Need::Predict),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Who<'a> {
    Nobody,
    BadKey,
    Bearer(&'a str),
    Header(&'a str),
    Basic(&'a str, &'a str),
}

async fn send(
    server: &TestServer,
    method: &Method,
    path: &str,
    body: &Option<serde_json::Value>,
    who: Who<'_>,
) -> reqwest::Response {
    let mut request = server.client.request(method.clone(), server.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    request = match who {
        Who::Nobody => request,
        Who::BadKey => request.bearer_auth(format!("mls_0000aaaa_{}", "0".repeat(64))),
        Who::Bearer(key) => request.bearer_auth(key),
        Who::Header(key) => request.header("x-api-key", key),
        Who::Basic(user, password) => request.basic_auth(user, Some(password)),
    };
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_the_auth_matrix() {
    let keys = make_keys();
    let (server, _repo) = auth_server(&keys, |_| {}).await;
    let mut failures = Vec::new();
    for (method, path, body, need) in routes() {
        let cases = [
            (Who::Nobody, "nobody"),
            (Who::BadKey, "a bad key"),
            (Who::Bearer(&keys.predict), "a predict key (Bearer)"),
            (Who::Header(&keys.predict), "a predict key (X-API-Key)"),
            (Who::Basic(USER.0, USER.1), "a predict user (Basic)"),
            (Who::Basic(USER.0, "wrong password!"), "a wrong password"),
            (Who::Bearer(&keys.admin), "an admin key"),
        ];
        for (who, label) in cases {
            let response = send(&server, &method, path, &body, who).await;
            let status = response.status().as_u16();
            let has_challenge = response.headers().contains_key("www-authenticate");
            let authenticated = matches!(who, Who::Bearer(_) | Who::Header(_))
                || matches!(who, Who::Basic(_, p) if p == USER.1);
            let admin = matches!(who, Who::Bearer(k) if k == keys.admin);
            let expected_ok = match need {
                Need::Open => true,
                Need::Predict => authenticated,
                Need::Admin => admin,
            };
            let ok = if expected_ok {
                (200..300).contains(&status)
            } else if need == Need::Admin && authenticated {
                status == 403
            } else {
                status == 401 && has_challenge
            };
            // A refusal comes in the route's error shape: {"error"} where Triton's and
            // KServe's clients read it, problem details elsewhere (pages for the UI).
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let shape_ok = if expected_ok || path.starts_with("/ui/") {
                true
            } else if path.starts_with("/v1/") || path.starts_with("/v2/") {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                content_type == "application/json" && body["error"].is_string()
            } else {
                content_type == "application/problem+json"
            };
            if !shape_ok {
                failures.push(format!(
                    "{method} {path} by {label}: refused as {content_type}"
                ));
            }
            if !ok {
                failures.push(format!("{method} {path} by {label}: {status}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let response = send(&server, &Method::GET, "/api/models", &None, Who::Nobody).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"mlserve\", Basic realm=\"mlserve\", charset=\"UTF-8\""
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 401);
    let forbidden = send(
        &server,
        &Method::GET,
        "/api/predictions",
        &None,
        Who::Bearer(&keys.predict),
    )
    .await;
    let problem: serde_json::Value = forbidden.json().await.unwrap();
    assert_eq!(
        problem["detail"],
        "'ci' has the predict role; this needs the admin role"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_can_be_protected_and_the_log_names_the_caller() {
    let keys = make_keys();
    let (server, repo) = auth_server(&keys, |s| s.metrics_auth = true).await;
    let response = send(&server, &Method::GET, "/metrics", &None, Who::Nobody).await;
    assert_eq!(response.status(), 401);
    let response = send(
        &server,
        &Method::GET,
        "/metrics",
        &None,
        Who::Bearer(&keys.predict),
    )
    .await;
    assert_eq!(response.status(), 200);
    let row =
        json!({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2});
    let response = server
        .client
        .post(server.url("/api/models/iris/predict"))
        .bearer_auth(&keys.predict)
        .header("x-request-id", "by-ci")
        .json(&row)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let store = mlserve::store::Store::open(&test_settings(repo.path()).database_url)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let logged = loop {
        let rows = store
            .predictions(&mlserve::store::PredictionQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        if let Some(row) = rows.into_iter().find(|r| r.request_id == "by-ci") {
            break row;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(logged.key_name.as_deref(), Some("ci"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_asks_for_the_same_credentials() {
    let keys = make_keys();
    let (server, _repo) = auth_server(&keys, |_| {}).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The model list asks a browser to sign in; a program asking for / gets the liveness answer.
    let index = no_redirects
        .get(server.url("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(index.status(), 401);
    assert!(index.text().await.unwrap().contains("<h1>Sign in</h1>"));
    let alive = no_redirects.get(server.url("/")).send().await.unwrap();
    assert_eq!(alive.status(), 200);
    assert_eq!(
        alive.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "alive"})
    );
    let response = no_redirects
        .get(server.url("/ui/models/iris"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"mlserve\""
    );
    let csrf_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = response.text().await.unwrap();
    assert!(html.contains("<h1>Sign in</h1>"), "{html}");
    assert!(html.contains("name=\"next\" value=\"/ui/models/iris\""));
    let token = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();

    let sign_in = |fields: Vec<(&'static str, String)>| {
        let request = no_redirects
            .post(server.url("/ui/login"))
            .header("cookie", &csrf_cookie)
            .form(&fields);
        async move { request.send().await.unwrap() }
    };
    let wrong = sign_in(vec![
        ("_csrf", token.clone()),
        ("next", "/ui/models/iris".into()),
        ("key", "mls_nope".into()),
    ])
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Those credentials are not valid.")
    );
    let forged = sign_in(vec![
        ("_csrf", "0".repeat(32)),
        ("key", keys.predict.clone()),
    ])
    .await;
    assert_eq!(forged.status(), 403, "sign-in is CSRF-protected too");
    let good = sign_in(vec![
        ("_csrf", token.clone()),
        ("next", "/ui/models/iris".into()),
        ("user", USER.0.into()),
        ("password", USER.1.into()),
    ])
    .await;
    assert_eq!(good.status(), 303);
    assert_eq!(good.headers()["location"], "/ui/models/iris");
    let session = good.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    let session = session.split(';').next().unwrap().to_string();
    let page = no_redirects
        .get(server.url("/ui/models/iris"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("Signed in as <strong>{}</strong>", USER.0))
            && html.contains("href=\"/ui/logout\""),
        "the header names the caller and offers a way out"
    );
    // The sign-in cookie opens UI pages only, never the API.
    let api = no_redirects
        .get(server.url("/api/models"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    let out = no_redirects
        .get(server.url("/ui/logout"))
        .send()
        .await
        .unwrap();
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // A next that leaves the site is not followed.
    let elsewhere = sign_in(vec![
        ("_csrf", token),
        ("next", "//evil.example/".into()),
        ("key", keys.predict.clone()),
    ])
    .await;
    assert_eq!(elsewhere.headers()["location"], "/");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let keys = make_keys();
    let (server, _repo) = auth_server(&keys, |s| {
        s.rate_limit_per_sec = 0.5;
        s.rate_limit_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = send(
            &server,
            &Method::GET,
            "/api/models",
            &None,
            Who::Bearer(&keys.predict),
        )
        .await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "2");
            let problem: serde_json::Value = response.json().await.unwrap();
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains("'ci' is over its rate limit")
            );
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // On V2 the refusal is the protocol's {"error"}, with the same Retry-After.
    let response = send(
        &server,
        &Method::GET,
        "/v2/models/iris",
        &None,
        Who::Bearer(&keys.predict),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("'ci' is over its rate limit"),
        "{error}"
    );
    // Another key has its own bucket.
    let response = send(
        &server,
        &Method::GET,
        "/api/models",
        &None,
        Who::Bearer(&keys.admin),
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_beyond_the_in_flight_limit_are_shed_with_503() {
    // One slow route behind the real shedding middleware, limit 2.
    let repo = demo_repository();
    let mut settings = test_settings(repo.path());
    settings.max_concurrent_requests = 2;
    let app = mlserve::serve::App::new(
        std::sync::Arc::new(mlserve::model::Repository::new(repo.path())),
        settings,
    );
    let router = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                "done"
            }),
        )
        .route("/health/live", axum::routing::get(|| async { "alive" }))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            mlserve::serve::middleware::request_context,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .get(format!("http://{addr}/slow"))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let shed = client
        .get(format!("http://{addr}/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    let probe = client
        .get(format!("http://{addr}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 200, "probes are always answered");
    for task in slow {
        assert_eq!(task.await.unwrap(), 200);
    }
    let after = client
        .get(format!("http://{addr}/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200, "the slots are given back");
    server.abort();
}

#[test]
fn keys_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.toml");
    let run = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
            .args(args)
            .arg("--keys-file")
            .arg(&file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (code, key, note) = run(&["keys", "create", "--name", "ci", "--role", "admin"], "");
    assert_eq!(code, Some(0), "{note}");
    assert!(note.contains("shown only now"));
    let key = key.trim();
    assert!(
        key.starts_with("mls_") && key.len() == 4 + 8 + 1 + 64,
        "{key}"
    );
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(!stored.contains(&key[13..]), "only the hash is stored");
    assert!(stored.contains("$argon2id$"));
    let (code, _, _) = run(&["keys", "create", "--name", "ci"], "");
    assert_eq!(code, Some(2), "names are unique");
    let (code, _, note) = run(
        &["keys", "add-user", "--name", "alice"],
        "correct horse battery\n",
    );
    assert_eq!(code, Some(0), "{note}");
    let (code, _, note) = run(&["keys", "add-user", "--name", "bob"], "short\n");
    assert_eq!(code, Some(2));
    assert!(note.contains("too short"));
    let (code, listing, _) = run(&["keys", "list"], "");
    assert_eq!(code, Some(0));
    assert!(listing.contains("ci") && listing.contains("admin") && listing.contains("alice"));
    assert!(!listing.contains(&key[13..]), "list never shows secrets");
    let (code, _, _) = run(&["keys", "revoke", "--name", "alice"], "");
    assert_eq!(code, Some(0));
    let (code, _, note) = run(&["keys", "revoke", "--name", "alice"], "");
    assert_eq!(code, Some(2));
    assert!(note.contains("no key or user named 'alice'"));

    // Auth on with no keys at all refuses to start.
    let empty = dir.path().join("none.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args([
            "serve",
            "--auth",
            "--addr",
            "127.0.0.1:0",
            "--prediction-log",
            "false",
            "--models",
        ])
        .arg(dir.path().join("models"))
        .arg("--keys-file")
        .arg(&empty)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("holds no key and no user"));
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_and_added_keys_apply_without_a_restart() {
    let keys = make_keys();
    let (server, _repo) = auth_server(&keys, |_| {}).await;
    let status = async |key: &str| {
        send(
            &server,
            &Method::GET,
            "/api/models",
            &None,
            Who::Bearer(key),
        )
        .await
        .status()
    };
    assert_eq!(status(&keys.predict).await, 200);
    assert_eq!(status(&keys.admin).await, 200);
    // `mlserve keys revoke` and `keys create` rewrite the file while the server runs.
    let mut file = KeysFile::load(&keys.path).unwrap();
    assert!(file.revoke("ci"));
    let added = file.create_key("new", Role::Predict).unwrap();
    file.save(&keys.path).unwrap();
    let limit = std::time::Duration::from_secs(10);
    assert!(
        common::eventually(limit, async || status(&keys.predict).await == 401).await,
        "the revoked key is refused"
    );
    assert_eq!(status(&added).await, 200, "the new key works");
    assert_eq!(status(&keys.admin).await, 200, "the other keys still work");
    // A broken, emptied or removed file leaves the keys in force.
    for broken in [Some("keys = [[["), Some(""), None] {
        match broken {
            Some(text) => std::fs::write(&keys.path, text).unwrap(),
            None => std::fs::remove_file(&keys.path).unwrap(),
        }
        tokio::time::sleep(mlserve::serve::auth::KEYS_CHECK_INTERVAL * 2).await;
        assert_eq!(status(&added).await, 200, "{broken:?}");
        assert_eq!(status(&keys.predict).await, 401, "{broken:?}");
    }
}
