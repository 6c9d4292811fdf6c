//! Planning an instance from a viewspec: the service's parameters are
//! checked and filled (SPEC §4 "Space parameter values").
//!
//! | value of a `space` parameter | plan |
//! |---|---|
//! | missing or empty | create a space, redirect to the URL naming it |
//! | `fork:sp-X`, `fork:sp-X@ckpt-Y`, `fork:ckpt-Y` | fork, redirect to the URL naming the fork |
//! | `sp-X` / `sp-X:ro` | bind its tree at `/spaces/<name>/tree` (read-only) |
//!
//! A `spaces` parameter takes a comma-separated list of `sp-…` ids, each
//! bound at `/spaces/<name>/<id>/tree`. A `string` parameter is passed as
//! `SUBSTRATE_PARAM_<NAME>`. Ids are validated strictly before anything
//! touches the filesystem.

use std::sync::Arc;

use http::StatusCode;

use crate::defs::{ParamType, ServiceDef};
use crate::ids::SpaceId;
use crate::runtime::Bind;
use crate::space::{ForkSource, SpaceError, Spaces};
use crate::store::SpaceOrigin;
use crate::viewspec::Viewspec;

/// What a request for a viewspec turns into.
pub enum Plan {
    Instance(InstancePlan),
    /// The URL was incomplete (a space was created or forked): the completed
    /// viewspec to redirect to.
    Redirect(Viewspec),
}

pub struct InstancePlan {
    pub key: String,
    pub injected: serde_json::Value,
    pub binds: Vec<Bind>,
}

/// A request the plan refuses, with its status.
#[derive(Debug)]
pub struct PlanError {
    pub status: StatusCode,
    pub message: String,
}

fn bad(message: String) -> PlanError {
    PlanError {
        status: StatusCode::BAD_REQUEST,
        message,
    }
}

impl From<SpaceError> for PlanError {
    fn from(e: SpaceError) -> Self {
        PlanError {
            status: e.status(),
            message: e.to_string(),
        }
    }
}

/// `sp-X` or `sp-X:ro`.
pub fn parse_space_value(value: &str) -> Result<(SpaceId, bool), PlanError> {
    let (id, ro) = match value.strip_suffix(":ro") {
        Some(id) => (id, true),
        None => (value, false),
    };
    let id = id.parse::<SpaceId>().map_err(|e| bad(e.to_string()))?;
    Ok((id, ro))
}

pub struct Planner {
    spaces: Arc<Spaces>,
}

impl Planner {
    pub fn new(spaces: Arc<Spaces>) -> Self {
        Self { spaces }
    }

    /// `origin`: the external origin of the request (injected as `ORIGIN`).
    pub async fn plan(&self, viewspec: &Viewspec, service: &ServiceDef, origin: &str) -> Result<Plan, PlanError> {
        for (name, _) in viewspec.params() {
            if !service.parameters.contains_key(name) {
                let known: Vec<_> = service.parameters.keys().map(String::as_str).collect();
                return Err(bad(format!(
                    "service {:?} has no parameter {name:?} (it has: {})",
                    service.name,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        let mut completed = viewspec.clone();
        let mut redirect = false;
        let mut binds = Vec::new();
        let mut slots = Vec::new();
        for (name, def) in &service.parameters {
            let value = viewspec.param(name);
            match def.kind {
                ParamType::String => {
                    if value.is_none() && !def.optional {
                        return Err(bad(format!("parameter {name:?} of {:?} is required", service.name)));
                    }
                }
                ParamType::Space => match value {
                    None if def.optional => {}
                    None | Some("") => {
                        let space = self.spaces.create(SpaceOrigin::Redirect, None).await?;
                        completed = completed.with_param(name, space.id.as_str());
                        redirect = true;
                    }
                    Some(v) if v.starts_with("fork:") => {
                        let source: ForkSource = v["fork:".len()..].parse().map_err(bad)?;
                        let fork = self.spaces.fork(&source, SpaceOrigin::Redirect, None).await?;
                        completed = completed.with_param(name, fork.space.id.as_str());
                        redirect = true;
                    }
                    Some(v) => {
                        let (id, read_only) = parse_space_value(v)?;
                        self.spaces.require_live(&id)?;
                        binds.push(Bind {
                            source: self.spaces.tree(&id),
                            destination: format!("/spaces/{name}/tree"),
                            read_only,
                        });
                        slots.push((name.clone(), id));
                    }
                },
                ParamType::Spaces => {
                    for v in value.unwrap_or_default().split(',').filter(|v| !v.is_empty()) {
                        let (id, read_only) = parse_space_value(v)?;
                        self.spaces.require_live(&id)?;
                        binds.push(Bind {
                            source: self.spaces.tree(&id),
                            destination: format!("/spaces/{name}/{id}/tree"),
                            read_only,
                        });
                        slots.push((format!("{name}/{id}"), id));
                    }
                }
            }
        }
        if redirect {
            return Ok(Plan::Redirect(completed));
        }
        let key = viewspec.canonical();
        for (slot, id) in &slots {
            self.spaces.bind_slot(&key, slot, id).await?;
        }
        Ok(Plan::Instance(InstancePlan {
            injected: crate::instance::injection(viewspec, service, origin),
            key,
            binds,
        }))
    }
}
