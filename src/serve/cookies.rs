//! Reading the cookies a browser sent (RFC 6265 §4.2: `name=value` pairs separated by `;`).

use axum::http::{HeaderMap, header};

/// The value of a cookie the browser sent, if any.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}
