//! The web UI, for people: the models at `/`, and for each model a prediction form, a batch
//! CSV upload and the model card under `/ui/models/{name}`.
//!
//! Pages are rendered on the server and work with JavaScript off: the form is a plain post
//! answered by a page. With JavaScript, `static/mlserve.js` posts the same form in the
//! background and swaps in the answer from the returned page, so there is one renderer.
//! Every input goes through the same validator as the REST API.

pub mod assets;
mod batch;
mod card;
pub mod csrf;
pub mod downloads;
mod explain;
mod form;
mod index;
mod model_ref;
mod monitoring;
mod numbers;
pub mod pages;
mod render;
mod sign_in;

pub use downloads::Downloads;
pub use index::index;
pub use model_ref::ModelRef;
pub use render::error_page;
pub use sign_in::offer_sign_in;

use card::card;
use form::{model_form, model_predict};
use monitoring::monitoring_page;
use render::message;
use sign_in::{sign_in, sign_in_form, sign_out};

use super::state::App;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

/// The UI's routes.
pub fn routes(upload_limit: usize) -> Router<App> {
    let model_routes = Router::new()
        .route("/", get(model_form).post(model_predict))
        .route(
            "/batch",
            get(batch::batch_form)
                .post(batch::batch_upload)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/batch/example.csv", get(batch::example_csv))
        .route("/card", get(card))
        .route("/monitoring", get(monitoring_page));
    Router::new()
        .nest("/ui/models/{name}", model_routes.clone())
        .nest("/ui/models/{name}/versions/{version}", model_routes)
        .route("/ui", get(to_index))
        .route("/ui/", get(to_index))
        .route("/ui/models", get(to_index))
        .route("/ui/models/", get(to_index))
        .route("/ui/login", get(sign_in_form).post(sign_in))
        .route("/ui/logout", get(sign_out))
        .route("/ui/{*rest}", get(no_such_page))
        .route("/ui/downloads/{id}", get(batch::download))
        .route("/static/{file}", get(assets::serve))
}

async fn to_index() -> axum::response::Redirect {
    axum::response::Redirect::to("/")
}

/// Unknown pages under /ui answer a page, not the API's problem document.
async fn no_such_page() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Not Found",
        "there is no such page",
        Some(("/", "Back to the models")),
    )
}

#[cfg(test)]
mod tests {
    use super::form::readable_number;
    use super::model_ref::encode_segment;
    use super::sign_in::safe_next;

    #[test]
    fn sign_in_returns_only_to_local_pages() {
        assert_eq!(safe_next("/ui/models/iris"), "/ui/models/iris");
        assert_eq!(safe_next("//evil.example/x"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/ui/login"), "/");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("iris"), "iris");
        assert_eq!(encode_segment("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[test]
    fn numbers_in_hints_are_short() {
        assert_eq!(readable_number(4.3), "4.3");
        assert_eq!(readable_number(0.052630001), "0.0526");
        assert_eq!(readable_number(2501.0), "2501");
    }
}
