//! The small pages the front door answers with itself: errors, "starting…",
//! redirects. HTML for browsers, plain text for everything else.

use axum::body::Body;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

/// Whether the client prefers HTML (a browser).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An error page: a title line, one line of reason, optionally the last
/// lines of the container's output.
pub fn error(status: StatusCode, reason: &str, logs: Option<&str>, html: bool) -> Response<Body> {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let body = if html {
        let logs = logs
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                format!(
                    "<h2>Last lines of the container's output</h2>\n<pre>{}</pre>\n",
                    escape(l)
                )
            })
            .unwrap_or_default();
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
             <body><h1>{title}</h1>\n<p>{}</p>\n{logs}<p><small>Substrate</small></p></body></html>\n",
            escape(reason)
        )
    } else {
        let logs = logs
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("\nLast lines of the container's output:\n{l}"))
            .unwrap_or_default();
        format!("{title}\n{reason}\n{logs}")
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let ctype = if html {
        "text/html; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Shown to browsers while an instance starts; reloads itself.
pub fn starting(service: &str) -> Response<Body> {
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"1\">\
         <title>Starting {0}…</title></head>\n<body><h1>Starting {0}…</h1>\
         <p>This page reloads itself until the service is ready.</p></body></html>\n",
        escape(service)
    );
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// 307 to `location` (method and body kept by the client).
pub fn redirect(location: &str) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            "cannot redirect to an invalid location",
            None,
            false,
        ),
    }
}
