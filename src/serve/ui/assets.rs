//! The web UI's static files, compiled into the binary: nothing is fetched from a CDN.
//!
//! Pages link them with `?v=<hash of the contents>`, so a browser may keep them for a year
//! and still gets the new ones after an upgrade.

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "mlserve.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../../static/mlserve.css"),
    },
    Asset {
        name: "mlserve.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../static/mlserve.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../../static/favicon.svg"),
    },
];

static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    for asset in ASSETS {
        hasher.update(asset.body);
    }
    let digest = hasher.finalize();
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
});

/// The assets' version: a short hash of their contents.
pub fn version() -> &'static str {
    &VERSION
}

/// The `v` query parameter of an asset link.
#[derive(serde::Deserialize)]
pub struct AssetQuery {
    v: Option<String>,
}

/// GET /static/{file}
pub async fn serve(
    Path(file): Path<String>,
    Query(query): Query<AssetQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let etag = format!("\"{}\"", version());
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == etag.as_bytes());
    // Only a link with the current hash may be cached for good; anything else is revalidated.
    let cache = if query.v.as_deref() == Some(version()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
