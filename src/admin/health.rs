//! `GET /substrate/v1/health`: is the daemon able to do its job?

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::AdminState;

#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok` when every dependency is, `degraded` otherwise.
    pub status: &'static str,
    /// `ok`, or `unavailable: <reason>`.
    pub docker: String,
    /// `ok`, or `error: <reason>`.
    pub store: String,
    /// `ok`, or the errors of the last reload (the last good definitions
    /// are still in force).
    pub defs: String,
}

pub async fn health(State(state): State<AdminState>) -> Json<Health> {
    let docker = match state.engine.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!(
            "unavailable: {}",
            e.to_string().trim_start_matches("the Docker Engine is unavailable: ")
        ),
    };
    let store = match state.store.schema_version() {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let defs = match state.catalog.last_error() {
        None => "ok".to_owned(),
        Some(e) => format!("reload failed, serving the last good definitions: {e}"),
    };
    let status = if docker == "ok" && store == "ok" && defs == "ok" {
        "ok"
    } else {
        "degraded"
    };
    Json(Health {
        status,
        docker,
        store,
        defs,
    })
}
