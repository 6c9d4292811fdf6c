//! Instances: list, one, ensure, stop.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{Body, ViewspecPath};
use super::{AdminResult, AdminState, ApiError, Authorized};
use crate::instance::StopOutcome;
use crate::proxy::Route;
use crate::viewspec::Viewspec;

fn describe(state: &AdminState, key: &str, record: &crate::store::InstanceRecord) -> Value {
    let live = state.front.activator.ready(key);
    json!({
        "viewspec": key,
        "url": format!("/{key}/"),
        "service": record.service,
        // Live state where the daemon knows better than the last write.
        "state": match &live {
            Some(i) if i.is_paused() => serde_json::json!("paused"),
            Some(_) => serde_json::json!("ready"),
            None => serde_json::json!(record.state),
        },
        "container_id": record.container_id,
        "container_name": record.container_name,
        "address": record.address.as_ref().map(|a| format!("{a}:{}", record.port)),
        "definition_digest": record.definition_digest,
        "created_at": record.created_at,
        "last_request_at": live.as_ref().map_or(record.last_request_at, |i| state.front.activator.last_request_at(i)),
        "open_connections": live.as_ref().map(|i| i.open_connections()),
        "attached": live.is_some(),
    })
}

pub async fn list(_: Authorized, State(state): State<AdminState>) -> AdminResult<Value> {
    let records = state.store.list_instances()?;
    let mut all: Vec<Value> = records.iter().map(|(k, r)| describe(&state, k, r)).collect();
    for key in state.front.activator.starting() {
        if !records.iter().any(|(k, _)| *k == key) {
            // No container yet: what a record would say is not known.
            all.push(json!({ "viewspec": key, "url": format!("/{key}/"), "state": "starting", "attached": false }));
        }
    }
    Ok(Json(json!({ "instances": all })))
}

pub async fn one(
    _: Authorized,
    State(state): State<AdminState>,
    ViewspecPath(key): ViewspecPath,
) -> AdminResult<Value> {
    let record = state
        .store
        .instance(&key)?
        .ok_or_else(|| ApiError::not_found(format!("no instance {key}")))?;
    Ok(Json(describe(&state, &key, &record)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsureBody {
    service: String,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

/// Ensures an instance runs, allocating spaces as the URL flow would.
pub async fn ensure(
    _: Authorized,
    State(state): State<AdminState>,
    Body(body): Body<EnsureBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let bad = |m: String| ApiError::bad_request(format!("request body: {m}"));
    let mut viewspec = Viewspec::for_service(&body.service).map_err(|e| bad(e.to_string()))?;
    for (k, v) in &body.parameters {
        viewspec = viewspec.with_param(k, v);
    }
    // Re-parse so names are validated like a URL's.
    let viewspec = Viewspec::parse(&viewspec.canonical()).map_err(|e| bad(e.to_string()))?;
    let defs = state.catalog.current();
    let service = defs
        .services
        .get(viewspec.service())
        .ok_or_else(|| ApiError::not_found(format!("no service named {:?}", body.service)))?;
    if !service.enabled {
        return Err(ApiError::not_found(format!(
            "service {:?} is defined but not enabled",
            service.name
        )));
    }
    let mut route = Route {
        key: viewspec.canonical(),
        viewspec,
        defs: defs.clone(),
        host: None,
        scheme: crate::proxy::Scheme::Http,
        start: None,
    };
    // At most one completion: the completed viewspec plans to an instance.
    let start = loop {
        match state.front.plan(&route).await {
            Ok(Ok(start)) => break start,
            Ok(Err(completed)) if completed != route.viewspec => {
                route.key = completed.canonical();
                route.viewspec = completed;
            }
            Ok(Err(_)) => return Err(ApiError::internal("the viewspec could not be completed")),
            Err(e) => return Err(ApiError::from_status(e.status, e.message)),
        }
    };
    let key = start.key.clone();
    state.front.activator.ensure(start).await.map_err(|e| {
        let mut message = e.to_string();
        if let Some(logs) = e.logs().filter(|l| !l.trim().is_empty()) {
            message.push_str("\nlast lines of the container's output:\n");
            message.push_str(logs);
        }
        ApiError::new(e.status(), "start_failed", message)
    })?;
    Ok((
        StatusCode::OK,
        Json(json!({ "viewspec": key, "url": format!("/{key}/") })),
    ))
}

pub async fn stop(
    _: Authorized,
    State(state): State<AdminState>,
    ViewspecPath(key): ViewspecPath,
) -> AdminResult<Value> {
    match state.front.activator.stop(&key).await {
        StopOutcome::Stopped => return Ok(Json(json!({ "stopped": key }))),
        StopOutcome::CancelledStart => return Ok(Json(json!({ "stopped": key, "cancelled_start": true }))),
        StopOutcome::NotFound => {}
    }
    if state.store.remove_instance(&key)? {
        Ok(Json(json!({ "forgotten": key })))
    } else {
        Err(ApiError::not_found(format!("no instance {key}")))
    }
}
