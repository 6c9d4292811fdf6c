//! Spaces and checkpoints: list, create or fork, get, rename, delete,
//! checkpoint, lineage.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Body, CheckpointPath, OptionalBody, QueryParams, SpacePath};
use super::{AdminResult, AdminState, ApiError, Authorized};
use crate::lineage::Graph;
use crate::space::{ForkSource, SpaceError};
use crate::store::SpaceOrigin;

impl From<SpaceError> for ApiError {
    fn from(e: SpaceError) -> Self {
        ApiError::new(e.status(), e.code(), e.to_string())
    }
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
    OptionalBody(body): OptionalBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let value = match &body.from {
        Some(from) => {
            let source: ForkSource = from
                .parse()
                .map_err(|e| ApiError::bad_request(format!("request body: from: {e}")))?;
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

/// One space; a deleted one is gone (410), though its tombstone stays in
/// the list and in lineage.
pub async fn one(_: Authorized, State(state): State<AdminState>, SpacePath(id): SpacePath) -> AdminResult<Value> {
    let record = state.spaces.require_live(&id)?;
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
    SpacePath(id): SpacePath,
    Body(body): Body<RenameBody>,
) -> AdminResult<Value> {
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
    SpacePath(id): SpacePath,
    QueryParams(q): QueryParams<DeleteQuery>,
) -> AdminResult<Value> {
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
/// (unless `pause: false`) so the copy is consistent; they resume as soon as
/// the tree is copied, before it is synced and recorded. The answer has the
/// record, the copy `method`, what the copy could not keep (`refused`,
/// `warnings`, and all counts under `copy`), how many containers were paused
/// and for how long (`paused_ms`: from the first pause request to the end of
/// the last unpause, so at least as long as any container was paused).
pub async fn checkpoint(
    _: Authorized,
    State(state): State<AdminState>,
    SpacePath(id): SpacePath,
    OptionalBody(body): OptionalBody<CheckpointBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let made = state
        .front
        .activator
        .checkpoint_space(&state.spaces, &id, body.message, body.pause.unwrap_or(true))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "checkpoint": made.done.checkpoint,
            "method": made.done.method,
            "refused": made.done.copy.refused,
            "warnings": made.done.copy.warnings,
            "copy": made.done.copy,
            "paused": made.paused,
            "paused_ms": made.paused_ms,
        })),
    ))
}

pub async fn checkpoints(
    _: Authorized,
    State(state): State<AdminState>,
    SpacePath(id): SpacePath,
) -> AdminResult<Value> {
    // A deleted space's checkpoints went with it (410, like its other
    // sub-resources); its tombstone record stays readable for lineage.
    state.spaces.require_live(&id)?;
    Ok(Json(json!({ "checkpoints": state.store.checkpoints_of(&id)? })))
}

pub async fn one_checkpoint(
    _: Authorized,
    State(state): State<AdminState>,
    CheckpointPath(id): CheckpointPath,
) -> AdminResult<Value> {
    let record = state
        .store
        .checkpoint(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no checkpoint {id}")))?;
    Ok(Json(json!({ "checkpoint": record })))
}

/// The lineage around a live space; a deleted one answers 410 (it still
/// shows, marked deleted, in the lineage of its relatives).
pub async fn lineage(_: Authorized, State(state): State<AdminState>, SpacePath(id): SpacePath) -> AdminResult<Value> {
    state.spaces.require_live(&id)?;
    let graph = Graph::new(&state.store.list_spaces()?, &state.store.list_checkpoints()?);
    let lineage = graph
        .lineage(id.as_str())
        .ok_or_else(|| ApiError::not_found(format!("no space {id}")))?;
    Ok(Json(json!(lineage)))
}
