//! Reading request bodies and query strings, with a clear problem for each way they go wrong.

use super::problem::Problem;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use serde::de::DeserializeSeed;

/// The request's `Content-Type`, taken alone (extracting the whole `HeaderMap` copies every
/// header, on every prediction).
pub struct ContentType(pub Option<HeaderValue>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ContentType {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ContentType(
            parts.headers.get(header::CONTENT_TYPE).cloned(),
        ))
    }
}

/// Checks the content type and the size of a JSON request body and returns its bytes.
pub fn json_bytes(
    content_type: &ContentType,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Problem> {
    require_json_content_type(content_type.0.as_ref())?;
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is larger than the limit (setting max_body_bytes)",
            )
        } else {
            Problem::bad_request(format!("the request body could not be read: {rejection}"))
        }
    })
}

fn require_json_content_type(value: Option<&HeaderValue>) -> Result<(), Problem> {
    let unsupported = |detail: String| Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, detail);
    let Some(value) = value else {
        return Err(unsupported(
            "no Content-Type header; send the body as application/json".to_string(),
        ));
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim().as_bytes();
    let starts = |prefix: &[u8]| {
        essence.len() >= prefix.len() && essence[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    let ends = |suffix: &[u8]| {
        essence.len() >= suffix.len()
            && essence[essence.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    if essence.eq_ignore_ascii_case(b"application/json")
        || (starts(b"application/") && ends(b"+json"))
    {
        Ok(())
    } else {
        Err(unsupported(format!(
            "Content-Type '{text}' is not supported; send application/json"
        )))
    }
}

/// Parses JSON with `seed`, borrowing from `bytes`. Bodies with bare `NaN` or `Infinity` (which
/// Python's json module writes) are not JSON, but the intent is clear: they are re-read with
/// those words quoted (into `quoted`), so validation can name the field and answer 422
/// instead of a bare syntax error.
pub fn parse_lenient<'a, S: DeserializeSeed<'a> + Copy>(
    bytes: &'a [u8],
    quoted: &'a mut Option<Vec<u8>>,
    seed: S,
) -> Result<S::Value, Problem> {
    let error = match parse_with(bytes, seed) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    *quoted = quote_non_finite_literals(bytes);
    let quoted: &'a Option<Vec<u8>> = quoted;
    if let Some(Ok(value)) = quoted.as_deref().map(|q| parse_with(q, seed)) {
        return Ok(value);
    }
    Err(Problem::bad_request(format!(
        "the body is not valid JSON: {error}"
    )))
}

/// Reads `bytes` with `seed`. A body that is valid UTF-8 (nearly every one) is checked once
/// as a whole and read as text: read as bytes, serde_json checks each string on its own (about
/// 4,000 instructions for a 30-feature row's names against 600 for the whole body at once).
/// Other bodies are read as bytes, so their error says where the bad bytes are.
fn parse_with<'a, S: DeserializeSeed<'a>>(
    bytes: &'a [u8],
    seed: S,
) -> serde_json::Result<S::Value> {
    match std::str::from_utf8(bytes) {
        Ok(text) => read_whole(serde_json::Deserializer::from_str(text), seed),
        Err(_) => read_whole(serde_json::Deserializer::from_slice(bytes), seed),
    }
}

fn read_whole<'a, R: serde_json::de::Read<'a>, S: DeserializeSeed<'a>>(
    mut deserializer: serde_json::Deserializer<R>,
    seed: S,
) -> serde_json::Result<S::Value> {
    let value = seed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Parses JSON into `T`; bare `NaN`, `Infinity` and `-Infinity` (which Python's json module
/// writes) and numbers too large for an f64 are read as marked strings (see
/// [`crate::model::validate::NON_FINITE_LITERAL`]). A body that is not JSON either way gets the strict
/// parse's error.
pub fn from_slice_lenient<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(bytes).or_else(|error| {
        quote_non_finite_literals(bytes)
            .and_then(|quoted| serde_json::from_slice(&quoted).ok())
            .ok_or(error)
    })
}

/// Marks `NaN`, `Infinity`, `-Infinity` and numbers too large for an f64 (`1e999`) where a JSON
/// value starts, as strings the validator reads back as those numbers (see
/// [`crate::model::validate::NON_FINITE_LITERAL`]); `None` if there are none.
fn quote_non_finite_literals(bytes: &[u8]) -> Option<Vec<u8>> {
    const WORDS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut last_significant = b' ';
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let at_value_start = matches!(last_significant, b':' | b'[' | b',' | b' ');
        let literal = if !at_value_start {
            None
        } else if let Some(word) = WORDS.iter().find(|w| bytes[i..].starts_with(w)) {
            Some(*word)
        } else {
            out_of_range_number(&bytes[i..])
        };
        if let Some(literal) = literal {
            out.extend_from_slice(b"\"\\u0000");
            out.extend_from_slice(literal);
            out.push(b'"');
            i += literal.len();
            last_significant = b'"';
            changed = true;
            continue;
        }
        if b == b'"' {
            in_string = true;
        }
        if !b.is_ascii_whitespace() {
            last_significant = b;
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

/// The number token at the start of `bytes` when it is one an f64 cannot hold (it reads as
/// infinite), such as `1e999`.
fn out_of_range_number(bytes: &[u8]) -> Option<&[u8]> {
    let length = bytes
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .unwrap_or(bytes.len());
    let token = &bytes[..length];
    let value: f64 = std::str::from_utf8(token).ok()?.parse().ok()?;
    value.is_infinite().then_some(token)
}

/// Checks that no JSON object in `bytes` names a key twice, at any depth: RFC 8259 leaves the
/// meaning of a repeated name to the reader, and serde_json keeps the last one silently, so
/// `{"instances": [a], "instances": [b]}` would be answered for `b` alone. The error names the
/// field by its path, as the validator names fields: `instances[0].sepal_length: given more
/// than once`. Bodies that are not JSON pass: their parse says why.
pub fn refuse_duplicate_keys(bytes: &[u8]) -> Result<(), String> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde::de::DeserializeSeed::deserialize(FieldPath(String::new()), &mut deserializer) {
        // serde_json adds where in the text; the path already says where in the document.
        Err(error) if error.is_data() => {
            let message = error.to_string();
            Err(message
                .rsplit_once(" at line ")
                .map_or(message.clone(), |(head, _)| head.to_string()))
        }
        _ => Ok(()),
    }
}

/// The path of the JSON value being read (`instances[0].sepal_length`): reads it only to find
/// a key given twice in one object.
struct FieldPath(String);

impl FieldPath {
    fn key(&self, key: &str) -> FieldPath {
        if self.0.is_empty() {
            FieldPath(key.to_string())
        } else {
            FieldPath(format!("{}.{key}", self.0))
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for FieldPath {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldPath {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while items
            .next_element_seed(FieldPath(format!("{}[{index}]", self.0)))?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = entries.next_key::<String>()? {
            let path = self.key(&key);
            if !seen.insert(key) {
                return Err(serde::de::Error::custom(format!(
                    "{}: given more than once",
                    path.0
                )));
            }
            entries.next_value_seed(path)?;
        }
        Ok(())
    }
}

/// Decodes a query string into (name, value) pairs.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, Problem> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).map_err(|error| {
        Problem::bad_request(format!("the query string cannot be decoded: {error}"))
    })
}

/// Path parameters, with a problem-details 400 (carrying the request id) when they cannot be
/// decoded, for example `%FF`, instead of axum's plain-text rejection.
pub struct PathParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(PathParams(value)),
            Err(rejection) => Err(Problem::bad_request(format!(
                "the path cannot be decoded: {}",
                rejection.body_text()
            ))
            .into_response()),
        }
    }
}

/// The model a path names: `{name}`, with `{version}` when the route pins one, so one handler
/// serves both `/…/{name}/…` and `/…/{name}/versions/{version}/…`. Undecodable segments are a
/// problem-details 400, as with [`PathParams`].
pub struct ModelPath {
    /// The model's name.
    pub name: String,
    /// The version the path pins, if any.
    pub version: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ModelPath {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        // The raw parameters, not a map deserialized from them: every predict request
        // extracts this, and the map cost it two allocations more per segment.
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                Problem::bad_request(format!(
                    "the path cannot be decoded: {}",
                    rejection.body_text()
                ))
                .into_response()
            })?;
        let mut path = ModelPath {
            name: String::new(),
            version: None,
        };
        for (key, value) in &params {
            match key {
                "name" => path.name = value.to_string(),
                "version" => path.version = Some(value.to_string()),
                _ => {}
            }
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse_json(bytes: &[u8]) -> Result<Value, Problem> {
        parse_lenient(bytes, &mut None, std::marker::PhantomData::<Value>)
    }

    #[test]
    fn text_and_bytes_are_read_alike_and_bad_utf8_is_refused_where_it_is() {
        let body = br#"{"a": "caf\u00e9", "b\"c": [1, 2.5, -3e2, true, null], "d": {"e": ""}}"#;
        let as_text = parse_json(body).unwrap();
        let as_bytes: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(as_text, as_bytes);
        assert_eq!(as_text["a"], "caf\u{e9}");
        let problem = parse_json(b"{\"a\": \"x\xff\"}").unwrap_err();
        assert!(
            problem.detail.contains("line 1 column"),
            "{}",
            problem.detail
        );
    }

    #[test]
    fn numbers_json_cannot_hold_become_marked_strings() {
        let value = parse_json(
            br#"{"a": NaN, "b": [Infinity, -Infinity, 1e999, -2E+400, 1e300], "c": "NaN inside", "d": "NaN"}"#,
        )
        .unwrap();
        assert_eq!(value["a"], "\u{0}NaN");
        assert_eq!(value["b"][1], "\u{0}-Infinity");
        assert_eq!(value["b"][2], "\u{0}1e999");
        assert_eq!(value["b"][3], "\u{0}-2E+400");
        assert_eq!(
            value["b"][4], 1e300,
            "a number a double holds stays a number"
        );
        // Text that merely says NaN stays text: only the bare literal is marked.
        assert_eq!(value["c"], "NaN inside");
        assert_eq!(value["d"], "NaN");
    }

    #[test]
    fn a_key_given_twice_is_named_by_its_path() {
        assert_eq!(
            refuse_duplicate_keys(br#"{"instances": [{"a": 1}, {"a": 1, "b": 2, "a": 3}]}"#),
            Err("instances[1].a: given more than once".to_string())
        );
        assert_eq!(
            refuse_duplicate_keys(br#"{"instances": [], "instances": []}"#),
            Err("instances: given more than once".to_string())
        );
        assert_eq!(refuse_duplicate_keys(br#"{"a": {"a": 1}}"#), Ok(()));
        assert_eq!(refuse_duplicate_keys(b"not json"), Ok(()));
    }

    #[test]
    fn other_syntax_errors_stay_400_with_position() {
        let problem = parse_json(b"{\"a\": 1,,}").unwrap_err();
        assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        assert!(problem.detail.contains("line 1"), "{}", problem.detail);
        assert!(parse_json(b"{\"a\": NaNa}").is_err());
    }

    #[test]
    fn content_type_must_be_json() {
        let check =
            |text: &str| require_json_content_type(Some(&HeaderValue::from_str(text).unwrap()));
        assert_eq!(require_json_content_type(None).unwrap_err().status, 415);
        assert_eq!(check("text/plain").unwrap_err().status, 415);
        assert_eq!(check("application/jsonx").unwrap_err().status, 415);
        assert_eq!(check("application/+jsonx").unwrap_err().status, 415);
        assert!(check("application/json; charset=utf-8").is_ok());
        assert!(check("Application/JSON").is_ok());
        assert!(check("application/vnd.api+json").is_ok());
        assert!(check("APPLICATION/VND.API+JSON ; x=y").is_ok());
    }
}
