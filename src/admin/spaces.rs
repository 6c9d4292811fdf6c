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
            json!({ "space": forked.space, "method": forked.method, "files": forked.files, "bytes": forked.bytes })
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

pub async fn delete(
    _: Authorized,
    State(state): State<AdminState>,
    Path(raw): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> AdminResult<Value> {
    let id = space_id(&raw)?;
    let (record, users) = state.front.activator.delete_space(&state.spaces, &id, q.force).await?;
    Ok(Json(json!({ "deleted": record.id, "stopped": users })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckpointBody {
    message: Option<String>,
    pause: Option<bool>,
}

/// Checkpoints a space, pausing the containers that use it during the copy
/// (unless `pause: false`) so the copy is consistent.
pub async fn checkpoint(
    _: Authorized,
    State(state): State<AdminState>,
    Path(raw): Path<String>,
    body: Option<Json<CheckpointBody>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = space_id(&raw)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let (record, paused) = state
        .front
        .activator
        .checkpoint_space(&state.spaces, &id, body.message, body.pause.unwrap_or(true))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "checkpoint": record, "paused": paused })),
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
