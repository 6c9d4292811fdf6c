//! Spaces and checkpoints: list, create or fork, get, rename, delete,
//! checkpoint, lineage.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{AdminResult, AdminState, ApiError, Authorized};
use crate::ids::{CheckpointId, SpaceId};
use crate::lineage::Graph;
use crate::runtime::Engine;
use crate::space::{ForkSource, SpaceError};
use crate::store::SpaceOrigin;

impl From<SpaceError> for ApiError {
    fn from(e: SpaceError) -> Self {
        ApiError::new(e.status(), e.code(), e.to_string())
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn space_id(raw: &str) -> Result<SpaceId, ApiError> {
    raw.parse().map_err(|e: crate::ids::IdError| bad(e.to_string()))
}

pub async fn list(_: Authorized, State(state): State<AdminState>) -> AdminResult<Value> {
    Ok(Json(json!({ "spaces": state.store.list_spaces()? })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    from: Option<String>,
    name: Option<String>,
}

pub async fn create(
    _: Authorized,
    State(state): State<AdminState>,
    body: Option<Json<CreateBody>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let value = match &body.from {
        Some(from) => {
            let source: ForkSource = from.parse().map_err(bad)?;
            let forked = state.spaces.fork(&source, SpaceOrigin::Api, body.name).await?;
            json!({
                "space": forked.space,
                "method": forked.method,
                "files": forked.copy.files,
                "bytes": forked.copy.bytes,
                "refused": forked.copy.refused,
                "warnings": forked.copy.warnings,
                "copy": forked.copy,
            })
        }
        None => json!({ "space": state.spaces.create(SpaceOrigin::Api, body.name).await? }),
    };
    Ok((StatusCode::CREATED, Json(value)))
}

pub async fn one(_: Authorized, State(state): State<AdminState>, Path(raw): Path<String>) -> AdminResult<Value> {
    let id = space_id(&raw)?;
    let record = state
        .store
        .space(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no space {id}")))?;
    Ok(Json(json!({
        "space": record,
        "checkpoints": state.store.checkpoints_of(&id)?,
        "uses": state.store.uses_of(&id)?,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameBody {
    name: Option<String>,
}

pub async fn rename(
    _: Authorized,
    State(state): State<AdminState>,
    Path(raw): Path<String>,
    Json(body): Json<RenameBody>,
) -> AdminResult<Value> {
    let id = space_id(&raw)?;
    Ok(Json(json!({ "space": state.spaces.rename(&id, body.name).await? })))
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

/// Running instances (ready or starting) whose viewspec uses the space.
fn running_users(state: &AdminState, id: &SpaceId) -> Result<Vec<String>, ApiError> {
    let starting = state.front.activator.starting();
    let mut keys: Vec<String> = state
        .store
        .uses_of(id)?
        .into_iter()
        .map(|u| u.viewspec)
        .filter(|k| state.front.activator.ready(k).is_some() || starting.contains(k))
        .collect();
    keys.dedup();
    Ok(keys)
}

pub async fn delete(
    _: Authorized,
    State(state): State<AdminState>,
    Path(raw): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> AdminResult<Value> {
    let id = space_id(&raw)?;
    let users = running_users(&state, &id)?;
    if !users.is_empty() {
        if !q.force {
            return Err(SpaceError::InUse {
                space: id,
                uses: users.join(", "),
            }
            .into());
        }
        for key in &users {
            state.front.activator.stop(key).await;
        }
    }
    let record = state.spaces.delete(&id).await?;
    Ok(Json(json!({ "deleted": record.id, "stopped": users })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckpointBody {
    message: Option<String>,
    pause: Option<bool>,
}

/// Checkpoints a space, pausing the containers that use it during the copy
/// (unless `pause: false`) so the copy is consistent; they resume as soon as
/// the tree is copied, before it is synced and recorded. The answer has the
/// record, the copy `method`, what the copy could not keep (`refused`,
/// `warnings`, and all counts under `copy`), how many containers were paused
/// and for how long (`paused_ms`: from the first pause request to the end of
/// the last unpause, so at least as long as any container was paused).
pub async fn checkpoint(
    _: Authorized,
    State(state): State<AdminState>,
    Path(raw): Path<String>,
    body: Option<Json<CheckpointBody>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = space_id(&raw)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let mut paused = Vec::new();
    let began = std::time::Instant::now();
    if body.pause.unwrap_or(true) {
        for key in running_users(&state, &id)? {
            if let Some(instance) = state.front.activator.ready(&key) {
                match state.engine.pause(&instance.container_id).await {
                    Ok(()) => paused.push(instance.container_id.clone()),
                    Err(e) => tracing::warn!(instance = %key, error = %e, "could not pause for a checkpoint"),
                }
            }
        }
    }
    // Writers wait only for the copy; making it durable and recording it
    // happen after they resume (the staged copy no longer reads the space).
    let staged = state.spaces.checkpoint_copy(&id, body.message).await;
    for container in &paused {
        if let Err(e) = state.engine.unpause(container).await {
            tracing::error!(container = %container, error = %e, "could not unpause after a checkpoint");
        }
    }
    let paused_ms = if paused.is_empty() {
        0.0
    } else {
        began.elapsed().as_secs_f64() * 1000.0
    };
    let result = match staged {
        Ok(staged) => staged.publish().await,
        Err(e) => Err(e),
    };
    let done = result?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "checkpoint": done.checkpoint,
            "method": done.method,
            "refused": done.copy.refused,
            "warnings": done.copy.warnings,
            "copy": done.copy,
            "paused": paused.len(),
            "paused_ms": paused_ms,
        })),
    ))
}

pub async fn checkpoints(
    _: Authorized,
    State(state): State<AdminState>,
    Path(raw): Path<String>,
) -> AdminResult<Value> {
    let id = space_id(&raw)?;
    if state.store.space(&id)?.is_none() {
        return Err(ApiError::not_found(format!("no space {id}")));
    }
    Ok(Json(json!({ "checkpoints": state.store.checkpoints_of(&id)? })))
}

pub async fn one_checkpoint(
    _: Authorized,
    State(state): State<AdminState>,
    Path(raw): Path<String>,
) -> AdminResult<Value> {
    let id: CheckpointId = raw.parse().map_err(|e: crate::ids::IdError| bad(e.to_string()))?;
    let record = state
        .store
        .checkpoint(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no checkpoint {id}")))?;
    Ok(Json(json!({ "checkpoint": record })))
}

pub async fn lineage(_: Authorized, State(state): State<AdminState>, Path(raw): Path<String>) -> AdminResult<Value> {
    let id = space_id(&raw)?;
    let graph = Graph::new(&state.store.list_spaces()?, &state.store.list_checkpoints()?);
    let lineage = graph
        .lineage(id.as_str())
        .ok_or_else(|| ApiError::not_found(format!("no space {id}")))?;
    Ok(Json(json!(lineage)))
}
