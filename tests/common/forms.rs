//! The web UI's forms as a browser without JavaScript posts them: page token and cookie.

use super::TestServer;
use reqwest::header::{COOKIE, HeaderMap};

/// A page's CSRF token and the cookie that goes with it.
pub async fn open_form(server: &TestServer, path: &str) -> (String, String) {
    let response = server.client.get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let html = response.text().await.unwrap();
    let token = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    assert_eq!(cookie, format!("mlserve_csrf={token}"));
    (token, cookie)
}

pub async fn post_form(
    server: &TestServer,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let mut request = server.client.post(server.url(path)).form(fields);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}
