//! CSRF protection for the web UI's form posts: a double-submit token.
//!
//! Every page with a form carries a random token in a hidden field, and the same token in an
//! HttpOnly, SameSite=Strict cookie. A post is accepted only when the two agree; another site
//! can make a browser post, but cannot read or set our cookie, so it cannot make them agree.
//! The check needs no server-side state, so it works the same behind a load balancer. The
//! `Origin` and `Sec-Fetch-Site` headers, when a browser sends them, are checked as well.

use crate::serve::cookies::cookie_value;
use axum::http::{HeaderMap, HeaderValue, header};

/// Name of the cookie that holds the token.
pub const COOKIE: &str = "mlserve_csrf";
/// Name of the hidden form field that echoes it.
pub const FIELD: &str = "_csrf";

/// The token for the page being rendered, and the cookie to set when the browser has none.
pub struct CsrfToken {
    /// The token to put in the form.
    pub value: String,
    /// A `Set-Cookie` value, when the browser's cookie is missing or malformed.
    pub set_cookie: Option<HeaderValue>,
}

/// Why a post was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    /// The browser sent no token cookie (cookies off, or the page was not loaded first).
    #[error("the form's security cookie is missing: cookies may be blocked for this site")]
    NoCookie,
    /// The form's token does not match the cookie (an old page, or a forged post).
    #[error("the form's security token does not match; the page may be out of date")]
    Mismatch,
    /// The post came from another site.
    #[error("the form was posted from another site")]
    CrossSite,
}

fn is_well_formed(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    cookie_value(headers, COOKIE).filter(|value| is_well_formed(value))
}

/// The token for a page: the browser's, when it has a well-formed one, or a new one.
pub fn token_for(headers: &HeaderMap) -> CsrfToken {
    if let Some(existing) = cookie_token(headers) {
        return CsrfToken {
            value: existing.to_string(),
            set_cookie: None,
        };
    }
    let value = uuid::Uuid::new_v4().simple().to_string();
    let cookie = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict");
    CsrfToken {
        set_cookie: HeaderValue::from_str(&cookie).ok(),
        value,
    }
}

/// Compares in time that does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request's `Origin` names a different host than its `Host` header.
fn from_another_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    match (origin, host) {
        // Some privacy settings send "null"; the token check still applies.
        (Some("null") | None, _) => false,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, origin_host)| !origin_host.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
    }
}

/// Checks a form post: same site, and the submitted token equal to the cookie's.
pub fn verify(headers: &HeaderMap, submitted: Option<&str>) -> Result<(), CsrfError> {
    // Browsers that send Sec-Fetch-Site say where the post came from themselves; a proxy that
    // rewrites Host cannot confuse it. Older browsers are checked by Origin against Host.
    let other_site = match headers.get("sec-fetch-site").map(|site| site.as_bytes()) {
        Some(b"same-origin" | b"none") => false,
        Some(b"cross-site") => true,
        _ => from_another_origin(headers),
    };
    if other_site {
        return Err(CsrfError::CrossSite);
    }
    let cookie = cookie_token(headers).ok_or(CsrfError::NoCookie)?;
    match submitted {
        Some(token) if constant_time_eq(token.as_bytes(), cookie.as_bytes()) => Ok(()),
        _ => Err(CsrfError::Mismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_new_token_comes_with_its_cookie_and_an_existing_one_is_kept() {
        let fresh = token_for(&HeaderMap::new());
        assert!(is_well_formed(&fresh.value));
        let cookie = fresh.set_cookie.unwrap();
        assert!(
            cookie
                .to_str()
                .unwrap()
                .contains("HttpOnly; SameSite=Strict")
        );
        let kept = token_for(&headers(&[("cookie", &format!("a=b; {COOKIE}={TOKEN}"))]));
        assert_eq!(kept.value, TOKEN);
        assert!(kept.set_cookie.is_none());
    }

    #[test]
    fn posts_need_the_matching_token_from_the_same_site() {
        let cookie = format!("{COOKIE}={TOKEN}");
        let same = headers(&[
            ("cookie", &cookie),
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(verify(&same, Some(TOKEN)), Ok(()));
        assert_eq!(
            verify(&same, Some("0123456789abcdef0123456789abcdee")),
            Err(CsrfError::Mismatch)
        );
        assert_eq!(verify(&same, None), Err(CsrfError::Mismatch));
        assert_eq!(
            verify(&headers(&[("host", "x")]), Some(TOKEN)),
            Err(CsrfError::NoCookie)
        );
        let other = headers(&[
            ("cookie", &cookie),
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(verify(&other, Some(TOKEN)), Err(CsrfError::CrossSite));
        let fetch_meta = headers(&[("cookie", &cookie), ("sec-fetch-site", "cross-site")]);
        assert_eq!(verify(&fetch_meta, Some(TOKEN)), Err(CsrfError::CrossSite));
        // Behind a proxy that rewrites Host, the browser's own word counts.
        let proxied = headers(&[
            ("cookie", &cookie),
            ("host", "127.0.0.1:8080"),
            ("origin", "https://models.example.com"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(verify(&proxied, Some(TOKEN)), Ok(()));
    }
}
