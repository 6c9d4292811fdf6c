//! Service definitions: list, one, reload.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::extract::NamePath;
use super::{AdminResult, AdminState, ApiError, Authorized};

fn describe(s: &crate::defs::ServiceDef) -> Value {
    json!({
        "name": s.name,
        "enabled": s.enabled,
        "image": s.image,
        "parameters": s.parameters,
    })
}

pub async fn list(_: Authorized, State(state): State<AdminState>) -> AdminResult<Value> {
    let defs = state.catalog.current();
    Ok(Json(
        json!({ "services": defs.services.values().map(describe).collect::<Vec<_>>() }),
    ))
}

pub async fn one(_: Authorized, State(state): State<AdminState>, NamePath(name): NamePath) -> AdminResult<Value> {
    let defs = state.catalog.current();
    let s = defs
        .services
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("no service named {name:?}")))?;
    let mut v = describe(s);
    v["template"] = s.template.clone();
    Ok(Json(v))
}

/// Reloads `defs/`; on failure the last good definitions stay in force and
/// the errors are returned (422).
pub async fn reload(_: Authorized, State(state): State<AdminState>) -> AdminResult<Value> {
    let catalog = state.catalog.clone();
    let result = tokio::task::spawn_blocking(move || catalog.reload())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    match result {
        Ok(()) => Ok(Json(json!({
            "status": "reloaded",
            "services": state.catalog.current().services.len(),
        }))),
        Err(errors) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_definitions",
            format!("reload failed; the last good definitions stay in force:\n{errors}"),
        )),
    }
}
