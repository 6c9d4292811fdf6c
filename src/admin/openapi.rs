//! `GET /substrate/v1/openapi.json`: the OpenAPI 3 description of this API.
//! A test checks that every route the router serves is described here.

use axum::Json;
use serde_json::{json, Value};

fn op(summary: &str, ok: &str) -> Value {
    json!({
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            ok: {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
            "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
    })
}

fn with_body(mut op: Value, schema: Value) -> Value {
    op["requestBody"] = json!({"content": {"application/json": {"schema": schema}}});
    op
}

fn path_param(name: &str) -> Value {
    json!([{"name": name, "in": "path", "required": true, "schema": {"type": "string"}}])
}

pub fn spec() -> Value {
    let mut health = op("Daemon health: docker, store and definitions", "200");
    health["security"] = json!([]);
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Substrate admin API", "version": env!("CARGO_PKG_VERSION")},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "object", "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"}}}}
                }
            }
        },
        "paths": {
            "/substrate/v1/health": {"get": health},
            "/substrate/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
            "/substrate/v1/reload": {"post": op("Reload defs/; 422 with the errors when they do not load", "200")},
            "/substrate/v1/services": {"get": op("Service definitions", "200")},
            "/substrate/v1/services/{name}": {"parameters": path_param("name"), "get": op("One service definition", "200")},
            "/substrate/v1/instances": {
                "get": op("Instance records with live state", "200"),
                "post": with_body(op("Ensure an instance runs (allocating spaces as the URL flow would)", "200"),
                    json!({"type": "object", "required": ["service"], "properties": {
                        "service": {"type": "string"},
                        "parameters": {"type": "object", "additionalProperties": {"type": "string"}}}}))
            },
            "/substrate/v1/instances/{viewspec}": {
                "parameters": path_param("viewspec"),
                "get": op("One instance", "200"),
                "delete": op("Stop and forget an instance", "200")
            },
            "/substrate/v1/spaces": {
                "get": op("Spaces", "200"),
                "post": with_body(op("Create an empty space, or fork one (from: sp-X, sp-X@ckpt-Y, ckpt-Y)", "201"),
                    json!({"type": "object", "properties": {"from": {"type": "string"}, "name": {"type": "string"}}}))
            },
            "/substrate/v1/spaces/{id}": {
                "parameters": path_param("id"),
                "get": op("One space with its checkpoints and uses", "200"),
                "patch": with_body(op("Rename a space", "200"),
                    json!({"type": "object", "properties": {"name": {"type": "string", "nullable": true}}})),
                "delete": {
                    "summary": "Delete a space; 409 while a running instance uses it unless force=true",
                    "security": [{"bearer": []}],
                    "parameters": [{"name": "force", "in": "query", "schema": {"type": "boolean"}}],
                    "responses": {"200": {"description": "deleted"}, "409": {"description": "in use"}}
                }
            },
            "/substrate/v1/spaces/{id}/checkpoints": {
                "parameters": path_param("id"),
                "get": op("Checkpoints of a space", "200"),
                "post": with_body(op("Checkpoint a space (pausing its containers unless pause=false)", "201"),
                    json!({"type": "object", "properties": {"message": {"type": "string"}, "pause": {"type": "boolean"}}}))
            },
            "/substrate/v1/spaces/{id}/lineage": {"parameters": path_param("id"), "get": op("Lineage of a space", "200")},
            "/substrate/v1/checkpoints/{id}": {"parameters": path_param("id"), "get": op("One checkpoint", "200")}
        }
    })
}

pub async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_described() {
        let spec = super::spec();
        let source = include_str!("mod.rs");
        let routes: Vec<&str> = source
            .split(".route(")
            .skip(1)
            .filter_map(|r| r.split('"').nth(1))
            .collect();
        assert!(routes.len() >= 12, "{routes:?}");
        for r in routes {
            assert!(spec["paths"].get(r).is_some(), "route {r} missing from openapi.json");
        }
    }
}
