//! Extractors of the admin API whose rejections are the API's JSON error,
//! not axum's plain-text ones, and say what was wrong and where.
//!
//! | what                                              | status | code                     |
//! | ------------------------------------------------- | ------ | ------------------------ |
//! | body over the limit (axum's default, 2 MiB)       | 413    | `payload_too_large`      |
//! | body present, not `application/json`             | 415    | `unsupported_media_type` |
//! | body missing where one is required                | 400    | `bad_request`            |
//! | body is not JSON                                  | 400    | `malformed_json`         |
//! | JSON, not an object, or unknown/missing/mistyped field | 422 | `invalid_body`         |
//! | path parameter not of its pattern                 | 400    | `bad_request`            |
//! | query string not of its schema                    | 400    | `bad_request`            |

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{code_for, ApiError};
use crate::ids::{CheckpointId, SpaceId};
use crate::viewspec::Viewspec;

/// A required JSON request body.
pub struct Body<T>(pub T);

/// An optional JSON request body: an empty body means `T::default()`.
pub struct OptionalBody<T>(pub T);

fn is_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let unsupported = |m: String| ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", m);
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(unsupported(
            "request body: no Content-Type header; send 'Content-Type: application/json'".into(),
        ));
    };
    let text = value.to_str().unwrap_or_default();
    let essence = text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(unsupported(format!(
            "request body: Content-Type {text:?} is not supported; send 'Content-Type: application/json'"
        )))
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<(HeaderMap, Bytes), ApiError> {
    let headers = req.headers().clone();
    let bytes = Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from_status(r.status(), "request body is larger than the limit of 2 MiB")
        } else {
            ApiError::from_status(r.status(), format!("request body: {}", r.body_text()))
        }
    })?;
    Ok((headers, bytes))
}

/// Parses a body that must be a JSON object: a syntax error is a 400, JSON
/// of another shape a 422. (serde would take a struct from an array too.)
fn parse<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    is_json(headers)?;
    let malformed = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("request body is not JSON: {e}"),
        )
    };
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", m);
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(malformed)?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first != Some(b'{') {
        let got = match first {
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b'n') => "null",
            Some(b't' | b'f') => "a boolean",
            _ => "a number",
        };
        return Err(invalid(format!("request body: expected a JSON object, got {got}")));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            invalid(format!("request body: {e}"))
        } else {
            malformed(e)
        }
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (headers, bytes) = read_body(req, state).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "request body is empty: this endpoint takes a JSON object",
            ));
        }
        parse(&headers, &bytes).map(Body)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (headers, bytes) = read_body(req, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalBody(T::default()));
        }
        parse(&headers, &bytes).map(OptionalBody)
    }
}

/// The query string, deserialized; unknown parameters are ignored.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(q)) => Ok(QueryParams(q)),
            Err(r) => {
                let text = r.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                Err(ApiError::bad_request(format!("query string: {detail}")))
            }
        }
    }
}

/// The one path parameter of a route, percent-decoded.
async fn segment<S: Send + Sync>(parts: &mut Parts, state: &S, name: &str) -> Result<String, ApiError> {
    Path::<String>::from_request_parts(parts, state)
        .await
        .map(|Path(s)| s)
        .map_err(|r| ApiError::from_status(r.status(), format!("path parameter {name}: {}", r.body_text())))
}

/// `{id}` of a space: `sp-` and a 26-character Crockford ULID, upper case.
pub struct SpacePath(pub SpaceId);

impl<S: Send + Sync> FromRequestParts<S> for SpacePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = segment(parts, state, "id").await?;
        raw.parse()
            .map(SpacePath)
            .map_err(|e| ApiError::bad_request(format!("path parameter id: {e}")))
    }
}

/// `{id}` of a checkpoint: `ckpt-` and a 26-character Crockford ULID.
pub struct CheckpointPath(pub CheckpointId);

impl<S: Send + Sync> FromRequestParts<S> for CheckpointPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = segment(parts, state, "id").await?;
        raw.parse()
            .map(CheckpointPath)
            .map_err(|e| ApiError::bad_request(format!("path parameter id: {e}")))
    }
}

/// `{viewspec}` of an instance, as its canonical key.
pub struct ViewspecPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ViewspecPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = segment(parts, state, "viewspec").await?;
        Viewspec::parse(&raw)
            .map(|v| ViewspecPath(v.canonical()))
            .map_err(|e| ApiError::bad_request(format!("path parameter viewspec: {e}")))
    }
}

/// `{name}` of a service (any name; an unknown one is a 404).
pub struct NamePath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for NamePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        segment(parts, state, "name").await.map(NamePath)
    }
}

/// Answers a request whose path exists but whose method does not.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code_for(StatusCode::METHOD_NOT_ALLOWED),
        format!(
            "{method} is not allowed on {}; the Allow header lists the methods that are",
            uri.path()
        ),
    )
}
