//! Unit tests of `src/serve/auth/mod.rs`.

use super::*;

#[test]
fn routes_need_what_the_table_says() {
    let get = Method::GET;
    let post = Method::POST;
    assert_eq!(required_access(&get, "/health/ready"), Access::Open);
    assert_eq!(required_access(&get, "/docs/index.html"), Access::Open);
    assert_eq!(required_access(&get, "/metrics"), Access::Metrics);
    assert_eq!(
        required_access(&post, "/api/models/iris/predict"),
        Access::Predict
    );
    assert_eq!(required_access(&get, "/ui/models/iris"), Access::Predict);
    assert_eq!(required_access(&get, "/"), Access::Predict);
    assert_eq!(
        required_access(&post, "/api/models/iris/reload"),
        Access::Admin
    );
    assert_eq!(required_access(&get, "/api/predictions"), Access::Admin);
    assert_eq!(
        required_access(&post, "/api/predictions/abc/feedback"),
        Access::Predict
    );
    assert_eq!(
        required_access(&post, "/v2/repository/models/iris/load"),
        Access::Admin
    );
}

#[test]
fn credentials_come_from_headers_or_the_ui_cookie() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer mls_x"),
    );
    assert_eq!(
        credential(&headers, false),
        Ok(Some(Credential::Key("mls_x".into())))
    );
    let mut headers = HeaderMap::new();
    // "alice:pw:with:colons"
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic YWxpY2U6cHc6d2l0aDpjb2xvbnM="),
    );
    assert_eq!(
        credential(&headers, false),
        Ok(Some(Credential::Basic(
            "alice".into(),
            "pw:with:colons".into()
        )))
    );
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_static("mls_y"));
    assert_eq!(
        credential(&headers, false),
        Ok(Some(Credential::Key("mls_y".into())))
    );
    let cookie = format!(
        "{SESSION_COOKIE}={}",
        Credential::Key("mls_z".into()).to_cookie_value()
    );
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    assert_eq!(
        credential(&headers, false),
        Ok(None),
        "the cookie is for UI pages only"
    );
    assert_eq!(
        credential(&headers, true),
        Ok(Some(Credential::Key("mls_z".into())))
    );
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Digest x"));
    assert_eq!(credential(&headers, false), Err(Refusal::Malformed));
}

#[test]
fn the_rate_limit_allows_a_burst_then_asks_to_wait() {
    let limiter = RateLimiter::new(1.0, 3.0);
    let name: Arc<str> = "ci".into();
    for _ in 0..3 {
        assert_eq!(limiter.check(&name), Ok(()));
    }
    assert_eq!(limiter.check(&name), Err(1));
    assert_eq!(
        limiter.check(&"other".into()),
        Ok(()),
        "buckets are per key"
    );
}

#[tokio::test]
async fn a_checked_credential_is_remembered_and_a_wrong_one_refused() {
    let mut file = KeysFile::default();
    let key = file.create_key("ci", Role::Predict).unwrap();
    file.add_user("alice", Role::Admin, "correct horse battery")
        .unwrap();
    let auth = Authenticator::new(&file);
    let principal = auth
        .authenticate(&Credential::Key(key.clone()))
        .await
        .unwrap();
    assert_eq!((&*principal.name, principal.role), ("ci", Role::Predict));
    assert_eq!(auth.cache.read().unwrap().len(), 1);
    let mut wrong = key.clone();
    wrong.replace_range(key.len() - 4.., "0000");
    assert_eq!(
        auth.authenticate(&Credential::Key(wrong)).await,
        Err(Refusal::WrongKey)
    );
    assert_eq!(
        auth.authenticate(&Credential::Key("mls_nope".into())).await,
        Err(Refusal::UnknownKey)
    );
    let alice = Credential::Basic("alice".into(), "correct horse battery".into());
    assert_eq!(auth.authenticate(&alice).await.unwrap().role, Role::Admin);
    let bob = Credential::Basic("bob".into(), "correct horse battery".into());
    assert_eq!(auth.authenticate(&bob).await, Err(Refusal::UnknownUser));
    let cookie = alice.to_cookie_value();
    assert_eq!(Credential::from_cookie_value(&cookie), Some(alice));
}
