//! The small pages the front door answers with itself: errors, "starting…",
//! redirects. HTML for browsers, plain text for everything else.

use axum::body::Body;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

/// The look shared by the home page and the pages below.
pub const STYLE: &str = "\
:root{--fg:#1d2330;--muted:#667085;--line:#d8dde6;--bg:#f6f7f9;--card:#fff;--accent:#2456c7;--bad:#b42318}\
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:var(--bg)}\
header{display:flex;align-items:center;gap:1rem;padding:.6rem 1.2rem;background:#1d2330;color:#fff}\
header .brand{color:#fff;font-weight:700;text-decoration:none;letter-spacing:.02em}header .right{margin-left:auto}\
main{max-width:1100px;margin:1.2rem auto;padding:0 1rem}\
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.2rem;margin-bottom:1rem}\
.card.narrow{max-width:420px;margin:3rem auto}h1{font-size:1.4rem;margin:.2rem 0 .8rem}h2{font-size:1.1rem;margin:0 0 .6rem}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}\
th{color:var(--muted);font-weight:600;font-size:.85rem}a{color:var(--accent)}code,pre{font-family:ui-monospace,monospace;font-size:.9em}\
pre{background:#111827;color:#e5e7eb;padding:.8rem;border-radius:6px;overflow:auto}\
form.inline{display:inline-flex;gap:.3rem;align-items:center;margin:0 .3rem .2rem 0}\
input{font:inherit;padding:.25rem .4rem;border:1px solid var(--line);border-radius:5px}\
button{font:inherit;padding:.25rem .7rem;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:5px;cursor:pointer}\
button.delete,button.stop{background:#fff;color:var(--bad);border-color:var(--bad)}\
.hint{color:var(--muted);font-size:.9rem}.error{color:var(--bad)}.notice{background:#ecfdf3;border:1px solid #abefc6;padding:.5rem .8rem;border-radius:6px}\
.svg{overflow:auto}svg.lineage text{font-size:11px;text-anchor:middle;fill:var(--fg)}\
svg.lineage .space rect{fill:#e8efff;stroke:var(--accent)}svg.lineage .space.deleted rect{fill:#f2f4f7;stroke:#98a2b3;stroke-dasharray:3 2}\
svg.lineage .checkpoint circle{fill:#fff7e6;stroke:#b54708}svg.lineage .edge{stroke:#667;stroke-width:1.4}svg.lineage .edge.fork{stroke-dasharray:5 3}\
.spinner{width:28px;height:28px;border:3px solid var(--line);border-top-color:var(--accent);border-radius:50%;animation:spin 1s linear infinite}\
@keyframes spin{to{transform:rotate(360deg)}}header form.right{margin-left:auto}";

/// A page in the shared look: `title`, then `body` (HTML).
fn page(title: &str, head_extra: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{head_extra}<title>{title}</title><style>{STYLE}</style></head>\n\
         <body><header><a class=\"brand\" href=\"/\">Substrate</a></header><main><section class=\"card\">\n{body}</section></main></body></html>\n",
        title = escape(title),
    )
}

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
        page(
            &title,
            "",
            &format!("<h1>{}</h1>\n<p>{}</p>\n{logs}", escape(&title), escape(reason)),
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
    let body = page(
        &format!("Starting {service}…"),
        "<meta http-equiv=\"refresh\" content=\"1\">",
        &format!(
            "<div class=\"spinner\"></div><h1>Starting {}…</h1>\n<p>This page reloads itself until the service is ready.</p>\n",
            escape(service)
        ),
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
