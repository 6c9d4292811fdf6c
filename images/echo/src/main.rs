//! `substrate-echo`: the example service Substrate's tests and benchmarks run.
//!
//! It answers any request with a JSON description of what it received (method,
//! path, query, headers, body), the Substrate environment it was started with
//! and the container's hostname, so a test can see exactly what the proxy
//! forwarded and which container answered. A few paths exercise the proxy:
//!
//! - `/ws` — a WebSocket that echoes text and binary messages back;
//! - `/slow?ms=N` — waits N milliseconds, then answers the echo;
//! - `/crash` — exits the process (status 3) without answering;
//! - `/stream?n=N&ms=M` — answers headers at once, then N lines `data: i\n\n`,
//!   one every M milliseconds (server-sent events; plays a long poll).
//!
//! Knobs, so tests need no special images or sleeps of their own:
//!
//! - `ECHO_EXIT_AT_START=1` — exit at once with status 1 (a container that
//!   dies during start-up);
//! - `ECHO_START_DELAY_MS=N` — wait N ms before listening (a slow start);
//! - `ECHO_STOP_GRACE_MS=N` — on SIGTERM keep serving N ms, then exit (a
//!   process that is slow to stop; without it SIGTERM exits at once).
//!
//! It listens on `0.0.0.0:$PORT`
//! (default 8080), HTTP/1.1 with keep-alive: it is also the backend of the
//! proxy benchmark, so the common path does little more than serialize.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// Largest request body echoed back; larger ones get 413.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Longest wait `/slow` accepts, so a typo cannot park a connection for days.
const MAX_SLOW_MS: u64 = 10 * 60 * 1000;

/// What every echo reports besides the request itself; fixed at start.
struct Fixed {
    env: Value,
    hostname: String,
}

#[tokio::main]
async fn main() {
    if std::env::var("ECHO_EXIT_AT_START").as_deref() == Ok("1") {
        eprintln!("echo: exiting at start as asked");
        std::process::exit(1);
    }
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .unwrap_or_else(|_| fail(&format!("PORT is not a port number: {p:?}"))),
        Err(_) => 8080,
    };
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    if let Some(ms) = env_ms("ECHO_START_DELAY_MS") {
        eprintln!("echo: waiting {ms} ms before listening, as asked");
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    tokio::spawn(exit_on_sigterm(env_ms("ECHO_STOP_GRACE_MS").unwrap_or(0)));
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen on {addr}: {e}")));
    eprintln!("echo: listening on {addr}");

    let fixed = Arc::new(Fixed {
        env: selected_env(),
        hostname: hostname(),
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Usually EMFILE: back off briefly instead of spinning.
                eprintln!("echo: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let fixed = fixed.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, fixed.clone()));
            // Errors here are clients going away mid-request; nothing to do.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// A millisecond count from the environment; unset or malformed is `None`.
fn env_ms(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(ms) => Some(ms),
        Err(_) => fail(&format!("{name} must be a whole number of milliseconds, not {value:?}")),
    }
}

/// On SIGTERM, keeps serving `grace_ms`, then exits 0.
async fn exit_on_sigterm(grace_ms: u64) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return eprintln!("echo: cannot listen for SIGTERM");
    };
    term.recv().await;
    eprintln!("echo: SIGTERM: exiting in {grace_ms} ms");
    tokio::time::sleep(Duration::from_millis(grace_ms)).await;
    std::process::exit(0);
}

fn fail(message: &str) -> ! {
    eprintln!("echo: {message}");
    std::process::exit(1);
}

type EchoBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

async fn handle(req: Request<Incoming>, fixed: Arc<Fixed>) -> Result<Response<EchoBody>, Infallible> {
    if req.uri().path() == "/stream" {
        return Ok(match stream_params(req.uri().query()) {
            Ok((n, ms)) => stream(n, ms),
            Err(message) => error(StatusCode::BAD_REQUEST, &message).map(BodyExt::boxed_unsync),
        });
    }
    Ok(match req.uri().path() {
        "/ws" => websocket(req),
        "/crash" => {
            eprintln!("echo: crashing as asked");
            std::process::exit(3);
        }
        "/slow" => match slow_ms(req.uri().query()) {
            Ok(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                echo(req, &fixed).await
            }
            Err(message) => error(StatusCode::BAD_REQUEST, &message),
        },
        _ => echo(req, &fixed).await,
    }
    .map(BodyExt::boxed_unsync))
}

/// `n` and `ms` of `/stream`: defaults 10 lines, 100 ms apart.
fn stream_params(query: Option<&str>) -> Result<(u64, u64), String> {
    let get = |name: &str, default: u64, max: u64| -> Result<u64, String> {
        let found = query
            .unwrap_or("")
            .split('&')
            .find_map(|pair| pair.strip_prefix(name).and_then(|r| r.strip_prefix('=')));
        match found {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(x) if x <= max => Ok(x),
                _ => Err(format!("{name} must be a whole number up to {max}, not {v:?}")),
            },
        }
    };
    Ok((get("n", 10, 100_000)?, get("ms", 100, MAX_SLOW_MS)?))
}

/// Server-sent events: headers now, then `data: i` every `ms`.
fn stream(n: u64, ms: u64) -> Response<EchoBody> {
    let lines = futures_util::stream::unfold(0u64, move |i| async move {
        if i >= n {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let frame = hyper::body::Frame::data(Bytes::from(format!("data: {i}\n\n")));
        Some((Ok::<_, Infallible>(frame), i + 1))
    });
    let mut response = Response::new(http_body_util::StreamBody::new(lines).boxed_unsync());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response
}

/// The JSON description of `req`.
async fn echo(req: Request<Incoming>, fixed: &Fixed) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("body larger than {MAX_BODY} bytes"),
            )
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("cannot read body: {e}")),
    };

    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        // Repeated headers are joined the way HTTP allows folding them.
        match headers.get_mut(name.as_str()) {
            Some(Value::String(seen)) => {
                seen.push_str(", ");
                seen.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value.into_owned()));
            }
        }
    }
    let reply = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "env": fixed.env,
        "body": String::from_utf8_lossy(&body),
        "hostname": fixed.hostname,
    });
    let mut response = Response::new(Full::new(Bytes::from(reply.to_string())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The `ms` query parameter of `/slow`; absent means no wait.
fn slow_ms(query: Option<&str>) -> Result<u64, String> {
    let value = query.unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("ms="));
    match value {
        None => Ok(0),
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if ms <= MAX_SLOW_MS => Ok(ms),
            _ => Err(format!(
                "ms must be a whole number of milliseconds up to {MAX_SLOW_MS}, not {v:?}"
            )),
        },
    }
}

/// Accepts the WebSocket handshake and echoes messages on the upgraded
/// connection in a task of its own.
fn websocket(mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let wants_websocket = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).filter(|_| wants_websocket) else {
        return error(StatusCode::BAD_REQUEST, "/ws expects a WebSocket upgrade");
    };
    let accept = derive_accept_key(key.as_bytes());

    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => return eprintln!("echo: websocket upgrade failed: {e}"),
        };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        // tungstenite answers pings and close frames itself; we echo data.
        while let Some(Ok(message)) = ws.next().await {
            if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                break;
            }
        }
    });

    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = json!({ "error": message }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The environment variables a test may want to see: what Substrate injects
/// and what the example definition sets.
fn selected_env() -> Value {
    const NAMED: [&str; 6] = [
        "ORIGIN",
        "PORT",
        "SUBSTRATE_URL_PREFIX",
        "SUBSTRATE_VIEWSPEC",
        "SUBSTRATE_ORIGIN",
        "SOME_VARIABLE",
    ];
    let mut env = Map::new();
    for (name, value) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if NAMED.contains(&name.as_ref()) || name.starts_with("SUBSTRATE_PARAM_") {
            env.insert(name.into_owned(), Value::String(value.to_string_lossy().into_owned()));
        }
    }
    Value::Object(env)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_ms_reads_the_query() {
        assert_eq!(slow_ms(None), Ok(0));
        assert_eq!(slow_ms(Some("x=1&ms=250")), Ok(250));
        assert!(slow_ms(Some("ms=soon")).is_err());
        assert!(slow_ms(Some("ms=99999999999")).is_err());
    }
}
