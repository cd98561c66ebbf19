//! The baseline of the serving benchmark: an axum endpoint that only parses the JSON body a
//! prediction request carries and answers a fixed small JSON. `scripts/bench-serve.sh` runs it
//! beside mlserve so that both are measured in the same conditions.

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;

async fn parse_only(body: Bytes) -> impl IntoResponse {
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(_) => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                "{}",
            );
        }
    };
    std::hint::black_box(parsed);
    (
        axum::http::StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"ok":true}"#,
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare endpoint listening on {}", listener.local_addr()?);
    axum::serve(listener, Router::new().route("/predict", post(parse_only))).await
}
