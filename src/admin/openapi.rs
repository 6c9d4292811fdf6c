//! `GET /substrate/v1/openapi.json`: the OpenAPI 3.1 description of this API.
//!
//! It is the contract the implementation keeps: path parameters carry the
//! patterns the handlers check (so a value valid by the document is never a
//! 400), each operation lists every status it can answer, request bodies are
//! closed (`additionalProperties: false`) like the handlers' structs
//! (`deny_unknown_fields`), and the response schemas are the shapes the
//! handlers build. A test checks that every route the router serves is
//! described; `./dev.sh test` runs schemathesis against a live daemon.

use axum::Json;
use serde_json::{json, Map, Value};

/// A space id: `sp-` and 26 Crockford base32 characters, upper case
/// (`crate::ids`).
pub const SPACE_ID: &str = "^sp-[0-9A-HJKMNP-TV-Z]{26}$";
/// A checkpoint id: `ckpt-` and 26 Crockford base32 characters.
pub const CHECKPOINT_ID: &str = "^ckpt-[0-9A-HJKMNP-TV-Z]{26}$";
/// What `POST /spaces` forks: `sp-X`, `sp-X@ckpt-Y` or `ckpt-Y`.
const FORK_SOURCE: &str = "^(sp-[0-9A-HJKMNP-TV-Z]{26}(@ckpt-[0-9A-HJKMNP-TV-Z]{26})?|ckpt-[0-9A-HJKMNP-TV-Z]{26})$";
/// A service name (`crate::viewspec`).
const SERVICE: &str = "[a-z0-9][a-z0-9-]{0,62}";
/// A parameter name (`crate::viewspec`).
const PARAM_NAME: &str = "[A-Za-z_][A-Za-z0-9_-]{0,62}";

/// The viewspec grammar of `crate::viewspec`, as the handler checks it:
/// `service(;name=value|;value)*`, where a value has no `;`, `=` or control
/// character, and no parameter is given twice (a bare value is `data`): the
/// negative lookahead rules out the same name twice, two bare values, and a
/// bare value with `data=`.
///
/// The parser also takes `%` escapes in values (`q=a%3Bb`); the pattern
/// leaves them out, so it is narrower than the handler, never wider. A `%XX`
/// in a path parameter is ambiguous to clients: some send it as it is, and
/// the daemon then decodes it once more than the client meant.
fn viewspec_pattern() -> String {
    let value_char = r"[^;=%\x00-\x1f\x7f-\x9f]";
    let no_duplicates =
        format!(r"(?!.*;({PARAM_NAME})=.*;\1=|.*;[^;=]*;(?:.*;)?[^;=]*(?:;|$)|(?=.*;[^;=]*(?:;|$)).*;data=)");
    format!("^{SERVICE}{no_duplicates}(?:;(?:{PARAM_NAME}=)?{value_char}*)*$")
}

/// The longest viewspec the document allows, in characters. The parser's
/// limit is 2048 bytes, raw and canonical: a character is at most 4 bytes
/// and canonical form adds at most `data=`, so 510 characters always fit.
const VIEWSPEC_MAX_CHARS: usize = 510;

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok_response(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// What each error status means, wherever it is listed.
fn error_meaning(status: u16) -> &'static str {
    match status {
        400 => "bad_request or malformed_json: a path parameter, query parameter or the body is malformed",
        401 => "unauthorized: the bearer token is missing or wrong",
        404 => "not_found: no such object",
        409 => "conflict or in_use: the object is in use",
        410 => "gone: the space was deleted",
        413 => "payload_too_large: the body is over the limit",
        415 => "unsupported_media_type: the body is not application/json",
        422 => "invalid_body: JSON of the wrong shape (unknown or missing field, wrong type)",
        500 => "internal: the store or the daemon failed",
        502 => "bad_gateway: the container did not become ready",
        503 => "unavailable: the Docker Engine could not start the container",
        _ => "error",
    }
}

/// An authenticated operation answering `ok` with `schema`, and the
/// listed error statuses (401 is added).
fn op(summary: &str, ok: (u16, &str), errors: &[u16]) -> Value {
    let mut responses = Map::new();
    responses.insert(ok.0.to_string(), ok_response("success", ok.1));
    let mut all: Vec<u16> = errors.to_vec();
    all.push(401);
    all.sort_unstable();
    all.dedup();
    for status in all {
        responses.insert(status.to_string(), error_response(error_meaning(status)));
    }
    json!({
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": responses,
    })
}

/// A JSON request body of `schema`; 413, 415 and 422 are added to the
/// answers, and 400 (not JSON).
fn with_body(mut op: Value, required: bool, schema: Value) -> Value {
    op["requestBody"] = json!({"required": required, "content": {"application/json": {"schema": schema}}});
    for status in [400u16, 413, 415, 422] {
        op["responses"][status.to_string()] = error_response(error_meaning(status));
    }
    op
}

fn path_param(name: &str, schema: Value) -> Value {
    json!([{"name": name, "in": "path", "required": true, "schema": schema}])
}

fn space_id_param() -> Value {
    path_param("id", json!({"type": "string", "pattern": SPACE_ID}))
}

fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

fn schemas() -> Value {
    let space_ref = json!({"$ref": "#/components/schemas/Space"});
    let checkpoint_ref = json!({"$ref": "#/components/schemas/Checkpoint"});
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": false,
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": false,
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}
            }}
        },
        "Health": {
            "type": "object",
            "required": ["status", "docker", "store", "defs"],
            "additionalProperties": false,
            "properties": {
                "status": {"enum": ["ok", "degraded"]},
                "docker": {"type": "string", "description": "`ok`, or `unavailable: <reason>`"},
                "store": {"type": "string", "description": "`ok`, or `error: <reason>`"},
                "defs": {"type": "string", "description": "`ok`, or the errors of the last reload"}
            }
        },
        "Service": {
            "type": "object",
            "required": ["name", "enabled", "image", "parameters"],
            "properties": {
                "name": {"type": "string"},
                "enabled": {"type": "boolean"},
                "image": nullable("string"),
                "parameters": {"type": "object", "additionalProperties": {
                    "type": "object",
                    "required": ["type", "optional"],
                    "additionalProperties": false,
                    "properties": {"type": {"enum": ["space", "spaces", "string"]}, "optional": {"type": "boolean"}}
                }},
                "template": {"description": "the template with defaults applied (only for one service)"}
            }
        },
        "Services": {
            "type": "object",
            "required": ["services"],
            "additionalProperties": false,
            "properties": {"services": {"type": "array", "items": {"$ref": "#/components/schemas/Service"}}}
        },
        "Instance": {
            "type": "object",
            "description": "An instance record with its live state. A starting instance has no record yet: it shows only viewspec, url, state and attached.",
            "required": ["viewspec", "url", "state", "attached"],
            "additionalProperties": false,
            "properties": {
                "viewspec": {"type": "string"},
                "url": {"type": "string"},
                "service": {"type": "string"},
                "state": {"enum": ["starting", "ready", "paused", "stopping"]},
                "container_id": nullable("string"),
                "container_name": {"type": "string"},
                "address": nullable("string"),
                "definition_digest": {"type": "string"},
                "created_at": {"type": "integer", "minimum": 0, "description": "milliseconds since the Unix epoch"},
                "last_request_at": {"type": "integer", "minimum": 0, "description": "when it last served a request, milliseconds since the Unix epoch"},
                "open_connections": {"type": ["integer", "null"], "minimum": 0},
                "attached": {"type": "boolean"}
            }
        },
        "Instances": {
            "type": "object",
            "required": ["instances"],
            "additionalProperties": false,
            "properties": {"instances": {"type": "array", "items": {"anyOf": [
                {"$ref": "#/components/schemas/Instance"},
                {
                    "description": "a start in progress with no record yet",
                    "type": "object",
                    "required": ["viewspec", "state"],
                    "additionalProperties": false,
                    "properties": {"viewspec": {"type": "string"}, "state": {"const": "starting"}}
                }
            ]}}}
        },
        "Ensured": {
            "type": "object",
            "required": ["viewspec", "url"],
            "additionalProperties": false,
            "properties": {"viewspec": {"type": "string"}, "url": {"type": "string"}}
        },
        "Stopped": {
            "description": "`stopped` when a container was stopped (with `cancelled_start` when the DELETE cancelled a start in progress), `forgotten` when only a record was",
            "type": "object",
            "minProperties": 1,
            "maxProperties": 2,
            "additionalProperties": false,
            "properties": {
                "stopped": {"type": "string"},
                "cancelled_start": {"type": "boolean"},
                "forgotten": {"type": "string"}
            }
        },
        "Space": {
            "type": "object",
            "required": ["id", "created_at", "forked_from", "name", "size_hint", "origin", "deleted"],
            "additionalProperties": false,
            "properties": {
                "id": {"type": "string", "pattern": SPACE_ID},
                "created_at": {"type": "integer", "minimum": 0},
                "forked_from": {"oneOf": [{"type": "null"}, {
                    "type": "object",
                    "required": ["space", "checkpoint"],
                    "additionalProperties": false,
                    "properties": {
                        "space": {"type": ["string", "null"], "pattern": SPACE_ID},
                        "checkpoint": {"type": ["string", "null"], "pattern": CHECKPOINT_ID}
                    }
                }]},
                "name": nullable("string"),
                "size_hint": {"type": "integer", "minimum": 0},
                "origin": {"enum": ["api", "redirect"]},
                "deleted": {"type": "boolean"}
            }
        },
        "Checkpoint": {
            "type": "object",
            "required": ["id", "space", "parent", "message", "created_at", "method"],
            "additionalProperties": false,
            "properties": {
                "id": {"type": "string", "pattern": CHECKPOINT_ID},
                "space": {"type": "string", "pattern": SPACE_ID},
                "parent": {"type": ["string", "null"], "pattern": CHECKPOINT_ID},
                "message": nullable("string"),
                "created_at": {"type": "integer", "minimum": 0},
                "method": {"enum": ["reflink", "copy"]}
            }
        },
        "Spaces": {
            "type": "object",
            "required": ["spaces"],
            "additionalProperties": false,
            "properties": {"spaces": {"type": "array", "items": space_ref}}
        },
        "SpaceCreated": {
            "description": "a new empty space, or a fork with how its tree was copied",
            "type": "object",
            "required": ["space"],
            "additionalProperties": false,
            "properties": {
                "space": space_ref,
                "method": {"enum": ["reflink", "copy"]},
                "files": {"type": "integer", "minimum": 0},
                "bytes": {"type": "integer", "minimum": 0},
                "refused": {"type": "integer", "minimum": 0, "description": "extended attributes the target refused"},
                "warnings": {"type": "array", "items": {"type": "string"}},
                "copy": {"$ref": "#/components/schemas/CopyStats"}
            }
        },
        "SpaceOnly": {
            "type": "object",
            "required": ["space"],
            "additionalProperties": false,
            "properties": {"space": space_ref}
        },
        "SpaceDetail": {
            "type": "object",
            "required": ["space", "checkpoints", "uses"],
            "additionalProperties": false,
            "properties": {
                "space": space_ref,
                "checkpoints": {"type": "array", "items": checkpoint_ref},
                "uses": {"type": "array", "items": {
                    "type": "object",
                    "required": ["viewspec", "slot"],
                    "additionalProperties": false,
                    "properties": {"viewspec": {"type": "string"}, "slot": {"type": "string"}}
                }}
            }
        },
        "SpaceDeleted": {
            "type": "object",
            "required": ["deleted", "stopped"],
            "additionalProperties": false,
            "properties": {
                "deleted": {"type": "string", "pattern": SPACE_ID},
                "stopped": {"type": "array", "items": {"type": "string"}, "description": "instances stopped (force=true)"}
            }
        },
        "CheckpointCreated": {
            "type": "object",
            "required": ["checkpoint", "paused"],
            "additionalProperties": false,
            "properties": {
                "checkpoint": checkpoint_ref,
                "method": {"enum": ["reflink", "copy"]},
                "refused": {"type": "integer", "minimum": 0, "description": "extended attributes the target refused"},
                "warnings": {"type": "array", "items": {"type": "string"}},
                "copy": {"$ref": "#/components/schemas/CopyStats"},
                "paused": {"type": "integer", "minimum": 0, "description": "containers paused for the copy"},
                "paused_ms": {"type": "number", "minimum": 0, "description": "how long they were paused, ms"}
            }
        },
        "CopyStats": {
            "description": "what a copy did: counts of the source tree, and what the target refused (SPEC §5 Copying)",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "files": {"type": "integer", "minimum": 0},
                "dirs": {"type": "integer", "minimum": 0},
                "symlinks": {"type": "integer", "minimum": 0},
                "specials": {"type": "integer", "minimum": 0, "description": "fifos and unix sockets made"},
                "hard_links": {"type": "integer", "minimum": 0},
                "bytes": {"type": "integer", "minimum": 0},
                "xattrs": {"type": "integer", "minimum": 0},
                "skipped": {"type": "integer", "minimum": 0, "description": "device nodes left out"},
                "refused": {"type": "integer", "minimum": 0},
                "warnings": {"type": "array", "items": {"type": "string"}}
            }
        },
        "CheckpointOnly": {
            "type": "object",
            "required": ["checkpoint"],
            "additionalProperties": false,
            "properties": {"checkpoint": checkpoint_ref}
        },
        "Checkpoints": {
            "type": "object",
            "required": ["checkpoints"],
            "additionalProperties": false,
            "properties": {"checkpoints": {"type": "array", "items": checkpoint_ref}}
        },
        "LineageNode": {
            "type": "object",
            "required": ["id", "kind", "children"],
            "additionalProperties": false,
            "properties": {
                "id": {"type": "string"},
                "kind": {"enum": ["space", "checkpoint"]},
                "label": {"type": "string", "description": "the space's name or the checkpoint's message"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/LineageNode"}}
            }
        },
        "Lineage": {
            "type": "object",
            "required": ["id", "ancestors", "tree"],
            "additionalProperties": false,
            "properties": {
                "id": {"type": "string"},
                "ancestors": {"type": "array", "items": {"type": "string"}, "description": "root first"},
                "tree": {"$ref": "#/components/schemas/LineageNode"}
            }
        },
        "Reloaded": {
            "type": "object",
            "required": ["status", "services"],
            "additionalProperties": false,
            "properties": {"status": {"const": "reloaded"}, "services": {"type": "integer", "minimum": 0}}
        }
    })
}

pub fn spec() -> Value {
    let viewspec_param = path_param(
        "viewspec",
        json!({
            "type": "string",
            "minLength": 1,
            "maxLength": VIEWSPEC_MAX_CHARS,
            "pattern": viewspec_pattern(),
            "description": "an instance's viewspec as in its URL (`notes;data=sp-…`), percent-encoded as a path parameter"
        }),
    );
    let service_param = path_param(
        "name",
        json!({"type": "string", "pattern": format!("^{SERVICE}$"), "description": "an unknown name is a 404"}),
    );
    let ensure_body = json!({
        "type": "object",
        "required": ["service"],
        "additionalProperties": false,
        "properties": {
            "service": {"type": "string", "pattern": format!("^{SERVICE}$")},
            "parameters": {
                "type": "object",
                "description": "viewspec parameters by name; the canonical viewspec must fit in 2048 bytes",
                "maxProperties": 8,
                "propertyNames": {"pattern": format!("^{PARAM_NAME}$")},
                "additionalProperties": {"type": "string", "maxLength": 45, "pattern": r"^[^\x00-\x1f\x7f-\x9f]*$"}
            }
        }
    });
    let create_body = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "from": {"type": ["string", "null"], "pattern": FORK_SOURCE,
                     "description": "fork this: sp-X (its tip), sp-X@ckpt-Y or ckpt-Y; null or absent creates an empty space"},
            "name": {"type": ["string", "null"]}
        }
    });
    let rename_body = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {"name": {"type": ["string", "null"], "description": "null or absent removes the name"}}
    });
    let checkpoint_body = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "message": {"type": ["string", "null"]},
            "pause": {"type": ["boolean", "null"], "description": "pause the space's containers during the copy (null or absent: true)"}
        }
    });

    let health = json!({
        "summary": "Daemon health: docker, store and definitions (no token needed)",
        "security": [],
        "responses": {"200": ok_response("health, also when degraded", "Health")}
    });
    let document = json!({
        "summary": "This document (no token needed)",
        "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}
    });
    let mut delete_space = op(
        "Delete a space; 409 while a running instance uses it unless force=true",
        (200, "SpaceDeleted"),
        &[400, 404, 409, 410, 500],
    );
    delete_space["parameters"] = json!([{
        "name": "force", "in": "query", "required": false,
        "schema": {"type": "boolean"},
        "description": "stop the instances that use the space first"
    }]);

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Substrate admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every error is `{\"error\": {\"code\", \"message\"}}`. A method a path does not have is a 405 with `Allow`; an unknown path is a 404."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas()
        },
        "security": [{"bearer": []}],
        "paths": {
            "/substrate/v1/health": {"get": health},
            "/substrate/v1/openapi.json": {"get": document},
            "/substrate/v1/reload": {"post": op("Reload defs/; 422 with the errors when they do not load", (200, "Reloaded"), &[422, 500])},
            "/substrate/v1/services": {"get": op("Service definitions", (200, "Services"), &[])},
            "/substrate/v1/services/{name}": {
                "parameters": service_param,
                "get": op("One service definition, with its template", (200, "Service"), &[400, 404])
            },
            "/substrate/v1/instances": {
                "get": op("Instance records with live state", (200, "Instances"), &[500]),
                "post": with_body(
                    op("Ensure an instance runs (allocating spaces as the URL flow would)", (200, "Ensured"),
                       &[400, 404, 409, 410, 500, 502, 503]),
                    true, ensure_body)
            },
            "/substrate/v1/instances/{viewspec}": {
                "parameters": viewspec_param,
                "get": op("One instance", (200, "Instance"), &[400, 404, 500]),
                "delete": op("Stop and forget an instance", (200, "Stopped"), &[400, 404, 500])
            },
            "/substrate/v1/spaces": {
                "get": op("Spaces", (200, "Spaces"), &[500]),
                "post": with_body(
                    op("Create an empty space, or fork one (from: sp-X, sp-X@ckpt-Y, ckpt-Y)", (201, "SpaceCreated"),
                       &[400, 404, 410, 500]),
                    false, create_body)
            },
            "/substrate/v1/spaces/{id}": {
                "parameters": space_id_param(),
                "get": op("One space with its checkpoints and uses", (200, "SpaceDetail"), &[400, 404, 410, 500]),
                "patch": with_body(op("Rename a space", (200, "SpaceOnly"), &[400, 404, 410, 500]), true, rename_body),
                "delete": delete_space
            },
            "/substrate/v1/spaces/{id}/checkpoints": {
                "parameters": space_id_param(),
                "get": op("Checkpoints of a space", (200, "Checkpoints"), &[400, 404, 410, 500]),
                "post": with_body(
                    op("Checkpoint a space (pausing its containers unless pause=false)", (201, "CheckpointCreated"),
                       &[400, 404, 410, 500]),
                    false, checkpoint_body)
            },
            "/substrate/v1/spaces/{id}/lineage": {
                "parameters": space_id_param(),
                "get": op("Lineage of a space: its ancestors and descendants", (200, "Lineage"), &[400, 404, 410, 500])
            },
            "/substrate/v1/checkpoints/{id}": {
                "parameters": path_param("id", json!({"type": "string", "pattern": CHECKPOINT_ID})),
                "get": op("One checkpoint", (200, "CheckpointOnly"), &[400, 404, 500])
            }
        }
    })
}

pub async fn document() -> Json<Value> {
    Json(spec())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::ids::{CheckpointId, SpaceId};

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

    /// Every operation lists its statuses, and every `$ref` resolves.
    #[test]
    fn operations_list_statuses_and_refs_resolve() {
        let spec = super::spec();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.get("default").is_none(), "{method} {path}");
                let secured = op.get("security") != Some(&serde_json::json!([]));
                assert_eq!(responses.contains_key("401"), secured, "{method} {path}: 401");
                if op.get("requestBody").is_some() || item.get("parameters").is_some() {
                    assert!(responses.contains_key("400"), "{method} {path}: 400");
                }
            }
        }
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&spec, &mut all);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(spec["components"]["schemas"].get(name).is_some(), "{r}");
        }
    }

    /// The id patterns are the parser's: both ends of the character range
    /// parse, and what the pattern leaves out does not.
    #[test]
    fn id_patterns_follow_the_parser() {
        for ulid in ["0".repeat(26), "Z".repeat(26), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ".to_owned()] {
            assert!(format!("sp-{ulid}").parse::<SpaceId>().is_ok(), "{ulid}");
            assert!(format!("ckpt-{ulid}").parse::<CheckpointId>().is_ok(), "{ulid}");
        }
        for off in ["I", "L", "O", "U", "a", "-"] {
            let id = format!("sp-{off}{}", "0".repeat(25));
            assert!(id.parse::<SpaceId>().is_err(), "{id}");
        }
        assert!(super::SPACE_ID.contains("[0-9A-HJKMNP-TV-Z]{26}"));
        assert!(super::CHECKPOINT_ID.contains("[0-9A-HJKMNP-TV-Z]{26}"));
    }
}
