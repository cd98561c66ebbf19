//! Authentication, roles, per-key rate limits and load shedding.
//!
//! Off by default; `auth = true` turns it on. Credentials: an API key in
//! `Authorization: Bearer …` or `X-API-Key`, or HTTP Basic; the web UI also takes them from
//! its sign-in cookie. Every route's required access is in [`required_access`], one table to
//! audit. A credential is checked against its argon2id hash once; the result is cached under
//! the credential's SHA-256, so later requests cost a hash-map lookup, not 20 ms of argon2.

pub mod check;
pub mod keys;
pub mod slots;

pub use check::{AuthState, Authenticator, Credential, Principal, RateLimiter, Refusal};
pub use slots::{Slot, take_slot};

use super::middleware::Caller;
use super::problem::Problem;
use super::state::App;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use keys::{KeysFile, Role};
use std::sync::Arc;

/// The cookie that keeps a web UI sign-in (the credential itself, HttpOnly and SameSite=Strict).
pub const SESSION_COOKIE: &str = "mlserve_session";

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health probes, static files, API docs, sign-in.
    Open,
    /// `/metrics`: anyone, unless `metrics_auth` is on.
    Metrics,
    /// A key or user of any role.
    Predict,
    /// An admin key or user.
    Admin,
}

/// The access each route needs. Reloading, loading and unloading models, and reading or erasing
/// the raw prediction log (which holds every input), are for admins.
pub fn required_access(method: &Method, path: &str) -> Access {
    let open = super::health::is_probe(path)
        || path.starts_with("/static/")
        || path == "/docs"
        || path.starts_with("/docs/")
        || path == "/openapi.json"
        || path == "/ui/login"
        || path == "/ui/logout";
    if open {
        return Access::Open;
    }
    if path == "/metrics" {
        return Access::Metrics;
    }
    let admin =
        (method == Method::POST && path.starts_with("/api/models/") && path.ends_with("/reload"))
            || path == "/api/predictions"
            || (method == Method::DELETE && path.starts_with("/api/predictions/"))
            || path.starts_with("/v2/repository/");
    if admin {
        Access::Admin
    } else {
        Access::Predict
    }
}

/// The credential of a request: a header, or (for the web UI) the sign-in cookie.
pub fn credential(headers: &HeaderMap, ui: bool) -> Result<Option<Credential>, Refusal> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| Refusal::Malformed)?;
        let (scheme, rest) = text.split_once(' ').ok_or(Refusal::Malformed)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Ok(Some(Credential::Key(rest.to_string())));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| Refusal::Malformed)?;
            let text = String::from_utf8(decoded).map_err(|_| Refusal::Malformed)?;
            let (user, password) = text.split_once(':').ok_or(Refusal::Malformed)?;
            return Ok(Some(Credential::Basic(
                user.to_string(),
                password.to_string(),
            )));
        }
        return Err(Refusal::Malformed);
    }
    if let Some(value) = headers.get("x-api-key") {
        let key = value.to_str().map_err(|_| Refusal::Malformed)?;
        return Ok(Some(Credential::Key(key.trim().to_string())));
    }
    if ui && let Some(value) = super::cookies::cookie_value(headers, SESSION_COOKIE) {
        return Credential::from_cookie_value(value)
            .map(Some)
            .ok_or(Refusal::Malformed);
    }
    Ok(None)
}

/// A 401 for a web UI page: the UI answers it with its sign-in form, returning to `next`.
#[derive(Debug, Clone)]
pub struct SignInRequired {
    /// The page to return to after signing in.
    pub next: String,
    /// Why the request was refused.
    pub detail: String,
}

/// Whether a path is a web UI page (signed in by cookie, answered with a sign-in page).
pub fn is_ui_path(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/") || path == "/ui"
}

fn challenge(app: &App) -> HeaderValue {
    let basic = app
        .auth
        .as_ref()
        .is_some_and(|auth| auth.authenticator().has_users());
    HeaderValue::from_static(if basic {
        "Bearer realm=\"mlserve\", Basic realm=\"mlserve\", charset=\"UTF-8\""
    } else {
        "Bearer realm=\"mlserve\""
    })
}

fn unauthorized(app: &App, detail: &str, path: &str, ui_path: Option<&str>) -> Response {
    let mut response = match ui_path {
        // The web UI turns this into its sign-in page (ui::sign_in::offer_sign_in).
        Some(path) => {
            let mut response = Problem::new(StatusCode::UNAUTHORIZED, detail).into_response();
            response.extensions_mut().insert(SignInRequired {
                next: path.to_string(),
                detail: detail.to_string(),
            });
            response
        }
        None => Problem::new(StatusCode::UNAUTHORIZED, detail).answer_for(path),
    };
    // A Bearer-only challenge on UI pages: browsers then show our sign-in form rather than
    // their own Basic dialog.
    let value = if ui_path.is_some() {
        HeaderValue::from_static("Bearer realm=\"mlserve\"")
    } else {
        challenge(app)
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
    response
}

/// How often the keys file is checked for changes (revoked or added keys apply within this).
pub const KEYS_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// The keys file's contents as a fingerprint (None when it cannot be read).
pub async fn keys_fingerprint(path: &std::path::Path) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    tokio::fs::read(path)
        .await
        .ok()
        .map(|bytes| Sha256::digest(bytes).into())
}

/// Re-reads the keys file whenever its contents change, so `mlserve keys revoke` (or a new
/// Kubernetes Secret) applies within [`KEYS_CHECK_INTERVAL`] without a restart. `seen` is the
/// fingerprint taken before the keys in force were read. A file that is gone, cannot be read or
/// parsed, or holds no key at all (start-up refuses that too) leaves the keys in force as they
/// are, with an error in the log: an editor's save or a half-done copy must not lock everyone out.
pub async fn watch_keys_file(
    auth: Arc<AuthState>,
    path: std::path::PathBuf,
    mut seen: Option<[u8; 32]>,
) {
    let mut ticks = tokio::time::interval(KEYS_CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = keys_fingerprint(&path).await;
        if now == seen {
            continue;
        }
        seen = now;
        if now.is_none() {
            tracing::error!(file = %path.display(), "keys file cannot be read; the previous keys stay in force");
            continue;
        }
        let file = path.clone();
        // Parsing checks every hash, and a new authenticator hashes its decoy: off the async threads.
        let loaded = tokio::task::spawn_blocking(move || {
            KeysFile::load(&file).map(|keys| {
                let authenticator = Authenticator::new(&keys);
                (keys.keys.len(), keys.users.len(), authenticator)
            })
        })
        .await;
        match loaded {
            Ok(Ok((0, 0, _))) => tracing::error!(
                file = %path.display(),
                "keys file holds no key and no user; the previous keys stay in force"
            ),
            Ok(Ok((keys, users, authenticator))) => {
                auth.replace_authenticator(authenticator);
                tracing::info!(keys, users, file = %path.display(), "keys file changed: keys and users reloaded");
            }
            Ok(Err(error)) => tracing::error!(
                %error,
                "keys file changed but cannot be loaded; the previous keys stay in force"
            ),
            Err(error) => tracing::error!(%error, "keys file reload failed"),
        }
    }
}

/// Why [`admit`] refused a request, with the message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credential, or one that is not valid (401 / UNAUTHENTICATED).
    Unauthenticated(&'static str),
    /// A valid credential whose role does not allow the call (403 / PERMISSION_DENIED).
    Forbidden(String),
    /// Over the caller's rate limit, and the seconds until a request is allowed again
    /// (429 / RESOURCE_EXHAUSTED).
    RateLimited(String, u32),
}

/// Who a request is and whether it may go on, for every transport (REST's headers, gRPC's
/// metadata): the credential in `headers` (or, with `ui`, the sign-in cookie), the role
/// `access` needs, and the caller's rate limit. Refusals are counted and logged (the reason
/// and `what` was asked, never the secret).
pub async fn admit(
    auth: &AuthState,
    headers: &HeaderMap,
    ui: bool,
    access: Access,
    request_id: &str,
    what: &str,
) -> Result<Principal, Denied> {
    let outcome = match credential(headers, ui) {
        Ok(Some(credential)) => auth.authenticator().authenticate(&credential).await,
        Ok(None) => Err(Refusal::Missing),
        Err(refusal) => Err(refusal),
    };
    let principal = match outcome {
        Ok(principal) => principal,
        Err(refusal) => {
            metrics::counter!("mlserve_auth_failures_total", "reason" => refusal.reason())
                .increment(1);
            if refusal != Refusal::Missing {
                tracing::warn!(
                    request_id,
                    path = what,
                    reason = refusal.reason(),
                    "authentication failed"
                );
            }
            return Err(Denied::Unauthenticated(match refusal {
                Refusal::Missing => {
                    "credentials are required: an API key (Authorization: Bearer, or X-API-Key) or HTTP Basic"
                }
                _ => "the credentials are not valid",
            }));
        }
    };
    if access == Access::Admin && principal.role != Role::Admin {
        metrics::counter!("mlserve_auth_failures_total", "reason" => "forbidden").increment(1);
        tracing::warn!(
            request_id,
            path = what,
            caller = &*principal.name,
            "role does not allow the route"
        );
        return Err(Denied::Forbidden(format!(
            "'{}' has the {} role; this needs the admin role",
            principal.name,
            principal.role.name()
        )));
    }
    if let Some(limiter) = &auth.rate_limiter
        && let Err(retry_after) = limiter.check(&principal.name)
    {
        metrics::counter!("mlserve_rate_limited_total").increment(1);
        return Err(Denied::RateLimited(
            format!(
                "'{}' is over its rate limit; retry in {retry_after} s",
                principal.name
            ),
            retry_after,
        ));
    }
    Ok(principal)
}

/// Checks who a request is and whether it may do what it asks.
pub async fn authorize(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let Some(auth) = app.auth.clone() else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_string();
    let access = if super::middleware::is_root_liveness(&request) {
        Access::Open
    } else {
        required_access(request.method(), &path)
    };
    if access == Access::Open || (access == Access::Metrics && !auth.metrics_auth) {
        return next.run(request).await;
    }
    let request_id = super::middleware::current_request_id().unwrap_or_default();
    let ui = is_ui_path(&path);
    let ui_target = (ui && request.method() == Method::GET).then_some(path.as_str());
    let principal = match admit(&auth, request.headers(), ui, access, &request_id, &path).await {
        Ok(principal) => principal,
        Err(Denied::Unauthenticated(detail)) => {
            return unauthorized(&app, detail, &path, ui_target);
        }
        Err(Denied::Forbidden(detail)) => {
            return Problem::new(StatusCode::FORBIDDEN, detail).answer_for(&path);
        }
        Err(Denied::RateLimited(detail, retry_after)) => {
            return Problem::too_many_requests(detail, retry_after).answer_for(&path);
        }
    };
    request
        .extensions_mut()
        .insert(Caller(principal.name.clone()));
    if ui {
        // Pages show who is signed in, with a way out.
        return super::middleware::SIGNED_IN
            .scope(Some(principal.name.clone()), next.run(request))
            .await;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests;
