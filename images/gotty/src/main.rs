//! `substrate-gotty`: the web terminal example service for Substrate.
//!
//! This binary owns the HTTP side of the `gotty` image: it serves the
//! terminal page and its assets (our own `index.html`, `app.js`,
//! `style.css`, and xterm.js from npm — all files of one directory read at
//! start, nothing from a CDN) and checks where WebSocket upgrades come from.
//! The PTY, the shell sessions and the WebSocket wire protocol are the
//! `tty-web` crate's: `GET <base>/ws` is handed to its router.
//!
//! Substrate serves an instance under a prefix (`/gotty;data=sp-…/`) that it
//! strips, and the definition adds `url_prefix: "/gotty"`, so this server
//! answers under a base path (`GOTTY_PATH`, default `/`). The page uses only
//! relative URLs and computes its WebSocket URL from `location`, so it works
//! under any prefix and over `wss://` behind TLS.
//!
//! Environment:
//! - `GOTTY_PORT` (else `PORT`, else 8080): the port to listen on;
//! - `GOTTY_PATH`: the base path requests arrive under (default `/`);
//! - `GOTTY_WS_ORIGIN`: one more `Origin` a WebSocket may come from, besides
//!   the page's own (Substrate injects the external origin as `ORIGIN`);
//! - `GOTTY_DIR`: the shell's working directory (default `/spaces/data/tree`,
//!   the instance's `data` space; `/` when that does not exist);
//! - `GOTTY_SHELL` (default `/bin/sh`), `GOTTY_WWW` (the page's directory,
//!   default `/usr/share/substrate-gotty/www`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;

const DEFAULT_DIR: &str = "/spaces/data/tree";
const DEFAULT_WWW: &str = "/usr/share/substrate-gotty/www";
/// Scrollback kept per shell for a page that reconnects (bytes).
const SCROLLBACK: usize = 256 * 1024;
/// A shell nobody is attached to is ended after this long.
const ORPHAN_TIMEOUT: Duration = Duration::from_secs(600);

/// The page's files, read once at start: name → (content type, bytes).
type Assets = HashMap<String, (&'static str, Vec<u8>)>;

struct App {
    /// The base path without its trailing slash (`""` for `/`).
    base: String,
    assets: Assets,
    /// An extra `Origin` accepted on the WebSocket (`GOTTY_WS_ORIGIN`).
    ws_origin: Option<String>,
    /// tty-web's router; only its `/ws` route is used.
    terminal: Router,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .init();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let port: u16 = match env("GOTTY_PORT").or_else(|| env("PORT")) {
        Some(p) => p
            .parse()
            .unwrap_or_else(|_| fail(&format!("the port is not a port number: {p:?}"))),
        None => 8080,
    };
    let base = env("GOTTY_PATH").unwrap_or_default();
    let base = format!("/{}", base.trim_matches('/')).trim_end_matches('/').to_owned();
    let www = env("GOTTY_WWW").map_or_else(|| PathBuf::from(DEFAULT_WWW), PathBuf::from);
    let assets = load_assets(&www).unwrap_or_else(|e| fail(&format!("reading {}: {e}", www.display())));
    if !assets.contains_key("index.html") {
        fail(&format!("{} has no index.html", www.display()));
    }
    let dir = env("GOTTY_DIR").map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from);
    let dir = if dir.is_dir() {
        dir
    } else {
        tracing::warn!("{} is not a directory; shells start in /", dir.display());
        PathBuf::from("/")
    };
    let shell = env("GOTTY_SHELL").unwrap_or_else(|| "/bin/sh".to_owned());
    let terminal = tty_web::web::router(
        shell,
        Some(dir.clone()),
        SCROLLBACK,
        tty_web::session::SessionStore::new(),
        ORPHAN_TIMEOUT,
    );
    let app = Arc::new(App {
        base,
        assets,
        ws_origin: env("GOTTY_WS_ORIGIN").map(|o| o.trim_end_matches('/').to_owned()),
        terminal,
    });
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(&format!("binding {addr}: {e}")));
    tracing::info!(
        "substrate-gotty on {addr}, base path {:?}, shells in {}",
        format!("{}/", app.base),
        dir.display()
    );
    let router = Router::new().fallback(handle).with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            term.recv().await;
        })
        .await
        .unwrap_or_else(|e| fail(&format!("serving: {e}")));
}

fn fail(msg: &str) -> ! {
    eprintln!("substrate-gotty: {msg}");
    std::process::exit(1)
}

/// Every regular file directly in `dir`, with its content type.
fn load_assets(dir: &Path) -> std::io::Result<Assets> {
    let mut assets = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let kind = content_type(&name);
        assets.insert(name, (kind, std::fs::read(entry.path())?));
    }
    Ok(assets)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Routes one request: the page and its files, or the terminal WebSocket.
async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(&app.base) else {
        return not_found();
    };
    match rest {
        // `<base>` without its slash: relative URLs need the slash.
        "" => {
            let last = app.base.rsplit('/').next().unwrap_or_default();
            let location = format!("{last}/");
            (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, location)]).into_response()
        }
        "/" => asset(&app, "index.html"),
        "/ws" => terminal(&app, req).await,
        _ => match rest.strip_prefix('/') {
            Some(name) if !name.contains('/') => asset(&app, name),
            _ => not_found(),
        },
    }
}

fn asset(app: &App, name: &str) -> Response {
    let Some((kind, bytes)) = app.assets.get(name) else {
        return not_found();
    };
    let mut resp = Response::new(Body::from(bytes.clone()));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Hands an allowed WebSocket request to tty-web as `GET /ws?…`.
async fn terminal(app: &App, mut req: Request) -> Response {
    if let Err(why) = origin_allowed(req.headers(), app.ws_origin.as_deref()) {
        tracing::warn!("refused a WebSocket: {why}");
        return (StatusCode::FORBIDDEN, format!("{why}\n")).into_response();
    }
    let uri = match req.uri().query() {
        Some(q) => format!("/ws?{q}"),
        None => "/ws".to_owned(),
    };
    *req.uri_mut() = uri.parse::<Uri>().expect("a path and query that parsed before");
    match app.terminal.clone().oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// A browser's WebSocket must come from the page's own origin (as the client
/// saw it: `X-Forwarded-Proto` and `X-Forwarded-Host`, which Substrate sets,
/// else `Host`) or from `GOTTY_WS_ORIGIN`; otherwise any web page could type
/// into this shell. Clients that send no `Origin` (not browsers) are let in.
fn origin_allowed(headers: &HeaderMap, extra: Option<&str>) -> Result<(), String> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let proto = header("x-forwarded-proto").unwrap_or_else(|| "http".to_owned());
    let host = header("x-forwarded-host").or_else(|| header(HOST.as_str()));
    let own = host.map(|h| format!("{proto}://{h}"));
    if own.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(origin))
        || extra.is_some_and(|o| o.eq_ignore_ascii_case(origin))
    {
        Ok(())
    } else {
        Err(format!(
            "Origin {origin:?} is neither this page's ({}) nor GOTTY_WS_ORIGIN ({})",
            own.as_deref().unwrap_or("unknown"),
            extra.unwrap_or("unset")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_through_the_proxy_is_allowed() {
        let h = headers(&[
            ("origin", "https://substrate.home.arpa:8443"),
            ("host", "substrate.home.arpa:8443"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "substrate.home.arpa:8443"),
        ]);
        assert_eq!(origin_allowed(&h, None), Ok(()));
        let h = headers(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")]);
        assert_eq!(origin_allowed(&h, None), Ok(()));
    }

    #[test]
    fn a_foreign_origin_is_refused_unless_configured() {
        let h = headers(&[("origin", "http://evil.example"), ("host", "127.0.0.1:8080")]);
        assert!(origin_allowed(&h, None).is_err());
        assert!(origin_allowed(&h, Some("http://other.example")).is_err());
        assert_eq!(origin_allowed(&h, Some("http://evil.example")), Ok(()));
        // The scheme counts: an http page may not drive an https terminal.
        let h = headers(&[
            ("origin", "http://substrate.home.arpa:8443"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "substrate.home.arpa:8443"),
        ]);
        assert!(origin_allowed(&h, None).is_err());
    }

    #[test]
    fn no_origin_is_not_a_browser() {
        assert_eq!(origin_allowed(&headers(&[("host", "x")]), None), Ok(()));
    }

    #[test]
    fn content_types() {
        assert!(content_type("index.html").starts_with("text/html"));
        assert!(content_type("xterm.js").starts_with("text/javascript"));
        assert!(content_type("xterm.css").starts_with("text/css"));
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }
}
