//! The admin JSON API under `/substrate/v1` (SPEC §8).
//!
//! JSON in and out; every endpoint but `health` requires
//! `Authorization: Bearer <token>` (the token of `<data>/admin.token`).
//! Errors have one shape: `{"error": {"code": "...", "message": "..."}}`.

mod error;
mod health;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::get;
use axum::Router;

pub use error::ApiError;

use crate::runtime::DockerEngine;
use crate::store::Store;

/// What the admin handlers can reach.
#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    pub docker: Option<DockerEngine>,
    /// Why there is no Docker handle, when there is none.
    pub docker_error: Option<String>,
    pub token: Arc<str>,
}

/// The router for everything under `/substrate/`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/substrate/v1/health", get(health::health))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no admin endpoint at {}", uri.path()))
}

/// Proof that the request carried the admin token. Handlers that take it as
/// an argument are protected.
pub struct Authorized;

impl FromRequestParts<AdminState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(t) if constant_time_eq(t.trim().as_bytes(), state.token.as_bytes()) => Ok(Authorized),
            Some(_) => Err(ApiError::unauthorized(
                "the bearer token does not match <data>/admin.token",
            )),
            None => Err(ApiError::unauthorized(
                "missing 'Authorization: Bearer <token>' header; the token is in <data>/admin.token",
            )),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Shorthand used by handlers.
pub type AdminResult<T> = Result<axum::Json<T>, ApiError>;
