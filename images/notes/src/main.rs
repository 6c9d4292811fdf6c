//! `substrate-notes`: the example service for Substrate's spaces.
//!
//! A small web app that keeps notes as files in a directory — by default
//! `/spaces/data/tree/notes`, where Substrate mounts the instance's `data`
//! space — so checkpointing or forking the space checkpoints or forks the
//! notes. Pages:
//!
//! - `GET /` — the notes, newest first, and a form to add one;
//! - `POST /notes` — adds the note in the urlencoded field `text`, then
//!   redirects (303) back to the list;
//! - `GET /notes.json` — the notes as `[{"name", "text"}]`.
//!
//! Substrate serves the app under a prefix (`/notes;data=sp-…/`) that it
//! strips before forwarding, so every link and form here is relative.
//! Environment: `PORT` (default 8080), `NOTES_DIR`, `SUBSTRATE_URL_PREFIX`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;

const DEFAULT_NOTES_DIR: &str = "/spaces/data/tree/notes";
/// Largest form accepted by `POST /notes`.
const MAX_FORM: usize = 64 * 1024;

struct App {
    dir: PathBuf,
    url_prefix: String,
    /// Makes note names unique when two arrive in the same nanosecond.
    counter: AtomicU64,
}

struct Note {
    name: String,
    text: String,
}

#[tokio::main]
async fn main() {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .unwrap_or_else(|_| fail(&format!("PORT is not a port number: {p:?}"))),
        Err(_) => 8080,
    };
    let app = Arc::new(App {
        dir: std::env::var_os("NOTES_DIR").map_or_else(|| PathBuf::from(DEFAULT_NOTES_DIR), PathBuf::from),
        url_prefix: std::env::var("SUBSTRATE_URL_PREFIX").unwrap_or_default(),
        counter: AtomicU64::new(0),
    });
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen on {addr}: {e}")));
    eprintln!("notes: listening on {addr}, notes in {}", app.dir.display());

    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("notes: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, app.clone()));
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn fail(message: &str) -> ! {
    eprintln!("notes: {message}");
    std::process::exit(1);
}

async fn handle(req: Request<Incoming>, app: Arc<App>) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/") => match list(&app.dir).await {
            Ok(notes) => respond(
                StatusCode::OK,
                "text/html; charset=utf-8",
                page(&app.url_prefix, &notes),
            ),
            Err(e) => storage_error(&app.dir, &e),
        },
        (&Method::GET | &Method::HEAD, "/notes.json") => match list(&app.dir).await {
            Ok(notes) => {
                let notes: Vec<_> = notes
                    .iter()
                    .map(|n| json!({ "name": n.name, "text": n.text }))
                    .collect();
                respond(
                    StatusCode::OK,
                    "application/json",
                    serde_json::Value::from(notes).to_string(),
                )
            }
            Err(e) => storage_error(&app.dir, &e),
        },
        (&Method::POST, "/notes") => add(req, &app).await,
        (_, "/" | "/notes.json" | "/notes") => respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed\n".into(),
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found\n".into()),
    };
    Ok(response)
}

/// `POST /notes`: store the note, then send the browser back to the list.
async fn add(req: Request<Incoming>, app: &App) -> Response<Full<Bytes>> {
    let form = match Limited::new(req.into_body(), MAX_FORM).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return respond(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain; charset=utf-8",
                format!("a note may hold at most {MAX_FORM} bytes\n"),
            )
        }
    };
    let text = form_urlencoded::parse(&form)
        .find(|(key, _)| key == "text")
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    if text.is_empty() {
        return respond(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            "the form field `text` is missing or empty\n".into(),
        );
    }
    if let Err(e) = write_note(app, &text).await {
        return storage_error(&app.dir, &e);
    }
    let mut response = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "added\n".into());
    // Relative, so it lands on the list under whatever prefix we are served.
    response.headers_mut().insert(LOCATION, HeaderValue::from_static("./"));
    response
}

/// Writes the note under a temporary name and renames it into place, so a
/// reader (or a checkpoint) never sees half a note.
async fn write_note(app: &App, text: &str) -> std::io::Result<()> {
    tokio::fs::create_dir_all(&app.dir).await?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let seq = app.counter.fetch_add(1, Ordering::Relaxed);
    // Zero-padded so names sort by creation time.
    let name = format!("{nanos:020}-{seq:04}.txt");
    let temp = app.dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&temp, text).await?;
    tokio::fs::rename(&temp, app.dir.join(&name)).await
}

/// The notes in `dir`, newest first; a missing directory holds no notes.
async fn list(dir: &Path) -> std::io::Result<Vec<Note>> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let metadata = entry.metadata().await?;
        if name.starts_with('.') || !metadata.is_file() {
            continue;
        }
        let modified = metadata.modified().unwrap_or(UNIX_EPOCH);
        found.push((modified, name, entry.path()));
    }
    found.sort_unstable_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));

    let mut notes = Vec::with_capacity(found.len());
    for (_, name, path) in found {
        match tokio::fs::read(&path).await {
            Ok(bytes) => notes.push(Note {
                name,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            }),
            // Deleted between listing and reading: it is simply gone.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(notes)
}

fn page(url_prefix: &str, notes: &[Note]) -> String {
    let mut items = String::new();
    for note in notes {
        items.push_str(&format!(
            "<li><pre>{}</pre><small>{}</small></li>\n",
            escape(&note.text),
            escape(&note.name)
        ));
    }
    if notes.is_empty() {
        items.push_str("<li><em>No notes yet.</em></li>\n");
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Notes</title>
<style>
body {{ font-family: sans-serif; max-width: 40em; margin: 2em auto; }}
ul {{ list-style: none; padding: 0; }}
li {{ border-bottom: 1px solid #ddd; padding: .5em 0; }}
pre {{ white-space: pre-wrap; margin: 0; font-family: inherit; }}
small {{ color: #888; }}
</style>
</head>
<body>
<h1>Notes</h1>
<p>Served at <code>{prefix}/</code> &middot; <a href="notes.json">notes.json</a></p>
<form method="post" action="notes">
<textarea name="text" rows="3" cols="60" required></textarea><br>
<button type="submit">Add note</button>
</form>
<ul>
{items}</ul>
</body>
</html>
"#,
        prefix = escape(url_prefix),
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn storage_error(dir: &Path, e: &std::io::Error) -> Response<Full<Bytes>> {
    eprintln!("notes: {}: {e}", dir.display());
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain; charset=utf-8",
        format!("cannot use the notes directory {}: {e}\n", dir.display()),
    )
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralizes_markup() {
        assert_eq!(escape(r#"<b a="1">&'"#), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn page_links_are_relative() {
        let html = page("/notes;data=sp-X", &[]);
        assert!(html.contains(r#"action="notes""#));
        assert!(html.contains(r#"href="notes.json""#));
        assert!(!html.contains("href=\"/") && !html.contains("action=\"/"));
    }
}
