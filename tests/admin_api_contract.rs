//! The admin API answers every error with its JSON error object and a status
//! its OpenAPI document lists: malformed JSON, unknown fields, a missing
//! body, the wrong content type, a wrong method, a bad query parameter and
//! path ids that are not of their pattern (issue 8, fault 9).

mod common;

use common::*;
use reqwest::Method;
use serde_json::Value;

/// A space id that is valid and names no space.
const NO_SUCH_SPACE: &str = "sp-01J00000000000000000000000";

struct Case {
    what: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: String,
    status: u16,
    code: &'static str,
    /// Words the message must contain: it says what was wrong and where.
    says: &'static [&'static str],
}

fn case(what: &'static str, method: Method, path: &str, status: u16, code: &'static str) -> Case {
    Case {
        what,
        method,
        path: path.to_owned(),
        content_type: None,
        body: String::new(),
        status,
        code,
        says: &[],
    }
}

impl Case {
    fn json(mut self, body: impl Into<String>) -> Case {
        self.content_type = Some("application/json");
        self.body = body.into();
        self
    }
    fn typed(mut self, content_type: &'static str, body: &'static str) -> Case {
        self.content_type = Some(content_type);
        self.body = body.to_owned();
        self
    }
    fn says(mut self, words: &'static [&'static str]) -> Case {
        self.says = words;
        self
    }
}

/// The document's template path for a concrete path.
fn template_of(doc: &Value, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"].as_object()?.keys().find_map(|t| {
        let ts: Vec<&str> = t.split('/').collect();
        let same = ts.len() == segments.len()
            && ts
                .iter()
                .zip(&segments)
                .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')));
        same.then(|| t.clone())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_error_is_the_documented_json_error() {
    let ns = Namespace::new("contract");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let token = daemon.token();
    let doc: Value = daemon.fetch_json("/substrate/v1/openapi.json").await;
    let space = format!("/substrate/v1/spaces/{NO_SUCH_SPACE}");

    let cases = [
        case(
            "malformed JSON",
            Method::POST,
            "/substrate/v1/instances",
            400,
            "malformed_json",
        )
        .json(r#"{"service": "echo""#)
        .says(&["request body", "line 1 column"]),
        case(
            "unknown field",
            Method::POST,
            "/substrate/v1/instances",
            422,
            "invalid_body",
        )
        .json(r#"{"service": "echo", "foo": 1}"#)
        .says(&["request body", "unknown field `foo`", "line 1 column"]),
        case(
            "missing field",
            Method::POST,
            "/substrate/v1/instances",
            422,
            "invalid_body",
        )
        .json("{}")
        .says(&["request body", "missing field `service`"]),
        case("wrong type", Method::POST, "/substrate/v1/spaces", 422, "invalid_body")
            .json(r#"{"name": 7}"#)
            .says(&["request body", "invalid type: integer `7`"]),
        case(
            "unknown field in an optional body",
            Method::POST,
            &format!("{space}/checkpoints"),
            422,
            "invalid_body",
        )
        .json(r#"{"pause": false, "paws": 1}"#)
        .says(&["unknown field `paws`"]),
        case(
            "not an object",
            Method::POST,
            "/substrate/v1/spaces",
            422,
            "invalid_body",
        )
        .json("[null, null]")
        .says(&["request body", "expected a JSON object, got an array"]),
        // axum's default limit is 2 MiB; the answer closes the connection.
        case(
            "body over the limit",
            Method::POST,
            "/substrate/v1/spaces",
            413,
            "payload_too_large",
        )
        .json(format!(r#"{{"name": "{}"}}"#, "x".repeat(3 << 20)))
        .says(&["request body", "2 MiB"]),
        case(
            "no body where one is required",
            Method::PATCH,
            &space,
            400,
            "bad_request",
        )
        .says(&["request body is empty"]),
        case(
            "wrong content type",
            Method::POST,
            "/substrate/v1/spaces",
            415,
            "unsupported_media_type",
        )
        .typed("text/plain", r#"{"name": "x"}"#)
        .says(&["Content-Type", "text/plain", "application/json"]),
        case(
            "wrong method on a collection",
            Method::PUT,
            "/substrate/v1/instances",
            405,
            "method_not_allowed",
        )
        .says(&["PUT", "/substrate/v1/instances"]),
        case(
            "wrong method on an item",
            Method::POST,
            &space,
            405,
            "method_not_allowed",
        ),
        case(
            "bad query parameter",
            Method::DELETE,
            &format!("{space}?force=maybe"),
            400,
            "bad_request",
        )
        .says(&["query string", "force"]),
        case(
            "space id off its pattern",
            Method::GET,
            "/substrate/v1/spaces/sp-nope",
            400,
            "bad_request",
        )
        .says(&["path parameter id", "sp-nope"]),
        case(
            "checkpoint id off its pattern",
            Method::GET,
            &format!("/substrate/v1/checkpoints/{NO_SUCH_SPACE}"),
            400,
            "bad_request",
        )
        .says(&["path parameter id", "checkpoint"]),
        case(
            "malformed viewspec",
            Method::GET,
            "/substrate/v1/instances/echo;a=1;a=2",
            400,
            "bad_request",
        )
        .says(&["path parameter viewspec", "given twice"]),
        case("valid id of nothing", Method::GET, &space, 404, "not_found").says(&[NO_SUCH_SPACE]),
        case(
            "unknown path",
            Method::GET,
            "/substrate/v1/nothing-here",
            404,
            "not_found",
        ),
    ];

    let client = http();
    for c in &cases {
        let mut req = client
            .request(c.method.clone(), daemon.url(&c.path))
            .bearer_auth(&token);
        if let Some(t) = c.content_type {
            req = req.header("content-type", t);
        }
        let resp = req.body(c.body.clone()).send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let allow = resp.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
        if status == 413 {
            assert_eq!(resp.headers().get("connection").unwrap(), "close", "{}", c.what);
        }
        let text = resp.text().await.unwrap();
        assert_eq!(status, c.status, "{}: {} {} answered {text}", c.what, c.method, c.path);
        assert_eq!(content_type.as_deref(), Some("application/json"), "{}: {text}", c.what);
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", c.what));
        let error = body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: {text}", c.what));
        assert_eq!(body.as_object().unwrap().len(), 1, "{}: {text}", c.what);
        assert_eq!(error.len(), 2, "{}: {text}", c.what);
        assert_eq!(error["code"], c.code, "{}: {text}", c.what);
        let message = error["message"].as_str().unwrap();
        for word in c.says {
            assert!(message.contains(word), "{}: {message:?} does not say {word:?}", c.what);
        }
        if status == 405 {
            let allow = allow.unwrap_or_else(|| panic!("{}: 405 without Allow", c.what));
            assert!(!allow.contains(c.method.as_str()), "{}: Allow: {allow}", c.what);
            continue;
        }
        // The status is one the document lists for the operation.
        let Some(template) = template_of(&doc, c.path.split('?').next().unwrap()) else {
            assert_eq!(status, 404, "{}: undocumented path", c.what);
            continue;
        };
        let method = c.method.as_str().to_lowercase();
        let responses = &doc["paths"][&template][&method]["responses"];
        assert!(
            responses.get(status.to_string()).is_some(),
            "{}: {status} is not documented for {method} {template}: {responses}",
            c.what
        );
    }

    // Without the token: 401, documented, with the challenge.
    let resp = client.get(daemon.url("/substrate/v1/spaces")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(doc["paths"]["/substrate/v1/spaces"]["get"]["responses"]["401"].is_object());
}

/// A path id of the documented pattern reaches the handler: a 404 for an
/// object that does not exist, never a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_of_the_documented_patterns_are_accepted() {
    let ns = Namespace::new("contract-ids");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let doc: Value = daemon.fetch_json("/substrate/v1/openapi.json").await;
    let space_pattern = doc["paths"]["/substrate/v1/spaces/{id}"]["parameters"][0]["schema"]["pattern"]
        .as_str()
        .unwrap();
    assert_eq!(space_pattern, "^sp-[0-9A-HJKMNP-TV-Z]{26}$");
    let ckpt_pattern = doc["paths"]["/substrate/v1/checkpoints/{id}"]["parameters"][0]["schema"]["pattern"]
        .as_str()
        .unwrap();
    assert_eq!(ckpt_pattern, "^ckpt-[0-9A-HJKMNP-TV-Z]{26}$");
    // The extremes of the pattern: all zeros and the largest ULID.
    for ulid in ["00000000000000000000000000", "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"] {
        for path in [
            format!("/substrate/v1/spaces/sp-{ulid}"),
            format!("/substrate/v1/spaces/sp-{ulid}/checkpoints"),
            format!("/substrate/v1/spaces/sp-{ulid}/lineage"),
            format!("/substrate/v1/checkpoints/ckpt-{ulid}"),
        ] {
            let resp = daemon.api(Method::GET, &path, None).await;
            assert_eq!(resp.status(), 404, "{path}");
        }
    }
    // Viewspecs of the documented grammar, percent-encoded as a client of
    // the document sends them.
    for viewspec in ["echo", "notes;sp-X", "svc;q=a%3Bb;z=", "a;b=%7E;c=é"] {
        let encoded: String = viewspec
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let resp = daemon
            .api(Method::GET, &format!("/substrate/v1/instances/{encoded}"), None)
            .await;
        assert_eq!(resp.status(), 404, "{viewspec}");
    }
}
