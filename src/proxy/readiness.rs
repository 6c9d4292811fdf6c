//! Waiting until a fresh container accepts connections.
//!
//! TCP connect to the container's address and `PORT` by default, or an HTTP
//! GET of `readiness.path` expecting a status below 500. Polling starts at
//! 1 ms and backs off to 25 ms, so a service that is up in 30 ms is seen in
//! about 30 ms. Meanwhile the container is inspected every 100 ms: one that
//! exits fails the start at once, with its last lines of output.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper_util::rt::TokioIo;

use super::activator::StartError;
use crate::defs::Readiness;
use crate::runtime::Engine;

const FIRST_DELAY: Duration = Duration::from_millis(1);
const MAX_DELAY: Duration = Duration::from_millis(25);
const INSPECT_EVERY: Duration = Duration::from_millis(100);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn wait(
    engine: &dyn Engine,
    container: &str,
    addr: SocketAddr,
    readiness: &Readiness,
) -> Result<(), StartError> {
    let started = Instant::now();
    let deadline = started + readiness.timeout;
    let mut delay = FIRST_DELAY;
    let mut last_inspect = Instant::now();
    loop {
        if probe(addr, readiness.path.as_deref()).await {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(StartError::Timeout {
                port: addr.port(),
                timeout: readiness.timeout,
                logs: last_logs(engine, container).await,
            });
        }
        if now.duration_since(last_inspect) >= INSPECT_EVERY {
            last_inspect = now;
            match engine.inspect(container).await {
                Ok(Some(c)) if c.running => {}
                Ok(Some(c)) => {
                    return Err(StartError::Exited {
                        code: c.exit_code,
                        logs: last_logs(engine, container).await,
                    })
                }
                Ok(None) => {
                    return Err(StartError::Exited {
                        code: None,
                        logs: String::new(),
                    })
                }
                Err(e) if e.is_unavailable() => return Err(StartError::EngineUnavailable(e.to_string())),
                Err(_) => {}
            }
        }
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(now))).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

async fn probe(addr: SocketAddr, path: Option<&str>) -> bool {
    let connect = tokio::time::timeout(ATTEMPT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await;
    let Ok(Ok(stream)) = connect else { return false };
    let Some(path) = path else { return true };
    tokio::time::timeout(ATTEMPT_TIMEOUT, http_probe(stream, addr, path))
        .await
        .unwrap_or(false)
}

async fn http_probe(stream: tokio::net::TcpStream, addr: SocketAddr, path: &str) -> bool {
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
        return false;
    };
    tokio::spawn(conn);
    let Ok(req) = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<bytes::Bytes>::new())
    else {
        return false;
    };
    match sender.send_request(req).await {
        Ok(resp) => resp.status().as_u16() < 500,
        Err(_) => false,
    }
}

/// The container's last lines of output, or why they could not be read.
pub async fn last_logs(engine: &dyn Engine, container: &str) -> String {
    match engine.logs_tail(container, 20).await {
        Ok(l) => l,
        Err(e) => format!("(logs unavailable: {e})"),
    }
}
