//! The admin JSON API under `/substrate/v1` (SPEC §8).
//!
//! JSON in and out; every endpoint but `health` requires
//! `Authorization: Bearer <token>` (the token of `<data>/admin.token`).
//! Errors have one shape: `{"error": {"code": "...", "message": "..."}}`,
//! also for what axum would answer itself (unknown path, wrong method,
//! rejected body, query or path parameter): see `extract`.

mod error;
mod extract;
mod health;
mod instances;
mod openapi;
mod services;
mod spaces;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;

use crate::catalog::Catalog;
use crate::proxy::FrontDoor;
use crate::runtime::Engine;
use crate::space::Spaces;
use crate::store::Store;

/// What the admin handlers can reach.
#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    pub engine: Arc<dyn Engine>,
    pub catalog: Catalog,
    pub front: Arc<FrontDoor>,
    pub spaces: Arc<Spaces>,
    pub token: Arc<str>,
}

/// The router for everything under `/substrate/`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/substrate/v1/health", get(health::health))
        .route("/substrate/v1/openapi.json", get(openapi::document))
        .route("/substrate/v1/reload", post(services::reload))
        .route("/substrate/v1/services", get(services::list))
        .route("/substrate/v1/services/{name}", get(services::one))
        .route("/substrate/v1/instances", get(instances::list).post(instances::ensure))
        .route(
            "/substrate/v1/instances/{viewspec}",
            get(instances::one).delete(instances::stop),
        )
        .route("/substrate/v1/spaces", get(spaces::list).post(spaces::create))
        .route(
            "/substrate/v1/spaces/{id}",
            get(spaces::one).patch(spaces::rename).delete(spaces::delete),
        )
        .route(
            "/substrate/v1/spaces/{id}/checkpoints",
            get(spaces::checkpoints).post(spaces::checkpoint),
        )
        .route("/substrate/v1/spaces/{id}/lineage", get(spaces::lineage))
        .route("/substrate/v1/checkpoints/{id}", get(spaces::one_checkpoint))
        .fallback(not_found)
        .method_not_allowed_fallback(extract::method_not_allowed)
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
