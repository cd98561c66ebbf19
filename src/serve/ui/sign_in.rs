//! Signing in and out of the web UI when auth is on.

use super::form::*;
use super::pages::Frame;
use super::render::*;
use super::{csrf, pages};
use crate::serve::auth::SignInRequired;
use crate::serve::body::parse_query;
use crate::serve::middleware::RequestId;
use crate::serve::state::App;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A local page to return to after signing in; anything else goes to `/`.
pub(super) fn safe_next(next: &str) -> String {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.starts_with("/ui/login");
    if local {
        next.to_string()
    } else {
        "/".to_string()
    }
}

pub(super) fn sign_in_response(
    status: StatusCode,
    headers: Option<&HeaderMap>,
    next: &str,
    text: &str,
    request_id: &str,
) -> Response {
    let token = csrf::token_for(headers.unwrap_or(&HeaderMap::new()));
    let page = pages::SignInPage {
        frame: Frame::new("Sign in", ""),
        csrf: token.value,
        next: safe_next(next),
        message: text.to_string(),
        request_id: request_id.to_string(),
    };
    render(status, &page, token.set_cookie)
}

/// Answers the auth layer's 401 for a UI page ([`SignInRequired`]) with the sign-in form,
/// returning to that page, keeping the status and the challenge.
pub async fn offer_sign_in(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let request_id = crate::serve::middleware::current_request_id().unwrap_or_default();
    let response = next.run(request).await;
    let Some(asked) = response.extensions().get::<SignInRequired>().cloned() else {
        return response;
    };
    let mut page = sign_in_response(
        StatusCode::UNAUTHORIZED,
        None,
        &asked.next,
        &asked.detail,
        &request_id,
    );
    if let Some(challenge) = response.headers().get(header::WWW_AUTHENTICATE) {
        page.headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge.clone());
    }
    page
}

#[derive(serde::Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// GET /ui/login
pub(super) async fn sign_in_form(headers: HeaderMap, Query(query): Query<NextQuery>) -> Response {
    let next = query.next.unwrap_or_else(|| "/".to_string());
    sign_in_response(StatusCode::OK, Some(&headers), &next, "", "")
}

/// POST /ui/login: checks the credentials and keeps them in an HttpOnly, SameSite=Strict
/// cookie, sent back only to UI pages.
pub(super) async fn sign_in(
    State(app): State<App>,
    rid: RequestId,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = parse_query(&String::from_utf8_lossy(&body)).unwrap_or_default();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_string())
            .unwrap_or_default()
    };
    let next = safe_next(&field("next"));
    if let Err(error) = csrf::verify(&headers, Some(&field(csrf::FIELD))) {
        return refused_post(error, "/ui/login");
    }
    let Some(auth) = &app.auth else {
        return axum::response::Redirect::to(&next).into_response();
    };
    let credential = if !field("key").is_empty() {
        crate::serve::auth::Credential::Key(field("key"))
    } else {
        crate::serve::auth::Credential::Basic(field("user"), field("password"))
    };
    match auth.authenticator().authenticate(&credential).await {
        Ok(principal) => {
            tracing::info!(
                request_id = rid.0.as_str(),
                caller = &*principal.name,
                "signed in to the web UI"
            );
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200",
                crate::serve::auth::SESSION_COOKIE,
                credential.to_cookie_value()
            );
            let mut response = axum::response::Redirect::to(&next).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(refusal) => {
            metrics::counter!("mlserve_auth_failures_total", "reason" => "ui_sign_in").increment(1);
            tracing::warn!(
                request_id = rid.0.as_str(),
                ?refusal,
                "web UI sign-in failed"
            );
            sign_in_response(
                StatusCode::UNAUTHORIZED,
                Some(&headers),
                &next,
                "Those credentials are not valid.",
                &rid.0,
            )
        }
    }
}

/// GET /ui/logout: forgets the sign-in.
pub(super) async fn sign_out() -> Response {
    let mut response = axum::response::Redirect::to("/ui/login").into_response();
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        crate::serve::auth::SESSION_COOKIE
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
