//! Turning pages into responses: the security headers of every page, rendering, and the
//! pages that only say something (errors, refused posts).

use super::pages::{Frame, MessagePage};
use crate::serve::problem::Problem;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Headers of every UI page: no caching (pages hold CSRF tokens and predictions), and a
/// content security policy that allows only our own scripts and styles.
pub(super) fn secure(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Some(cookie) = cookie {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

/// Renders a page with its status, or a plain 500 when the template fails.
pub(super) fn render(
    status: StatusCode,
    page: &impl Template,
    cookie: Option<HeaderValue>,
) -> Response {
    match page.render() {
        Ok(html) => secure(
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            cookie,
        ),
        Err(error) => {
            tracing::error!(%error, "cannot render a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page cannot be shown; the server log has the cause",
            )
                .into_response()
        }
    }
}

/// A page that only says something: an error, or a refused post.
pub(super) fn message(
    status: StatusCode,
    heading: &str,
    text: &str,
    link: Option<(&str, &str)>,
) -> Response {
    // Every page is made inside its request's scope, which knows the id to show.
    let request_id = crate::serve::request_scope::current_request_id().unwrap_or_default();
    let (link_href, link_text) = link.unwrap_or(("", ""));
    let page = MessagePage {
        frame: Frame::new(heading, ""),
        heading: heading.to_string(),
        message: text.to_string(),
        link_href: link_href.to_string(),
        link_text: link_text.to_string(),
        request_id,
    };
    let mut response = render(status, &page, None);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// An error as a page, with a way back to the models: for browsers that reach a route that
/// does not exist.
pub fn error_page(status: StatusCode, heading: &str, text: &str) -> Response {
    message(status, heading, text, Some(("/", "Back to the models")))
}

/// A failure of a page's handler, already rendered as a page: what `?` makes of a [`Problem`]
/// or a [`PredictFailure`] in a UI handler (with the request id of the request's scope).
pub(super) struct PageError(pub(super) Response);

impl From<Problem> for PageError {
    fn from(problem: Problem) -> Self {
        PageError(problem_page(&problem))
    }
}

impl From<crate::model::PredictFailure> for PageError {
    fn from(failure: crate::model::PredictFailure) -> Self {
        PageError::from(Problem::from(failure))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0
    }
}

/// A problem from the shared API code, shown as a page.
pub(super) fn problem_page(problem: &Problem) -> Response {
    let status = problem.status;
    let heading = status.canonical_reason().unwrap_or("Error");
    message(
        status,
        heading,
        &problem.detail,
        Some(("/", "Back to the models")),
    )
}
