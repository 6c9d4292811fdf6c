//! Waiting until a fresh container accepts connections (SPEC §3 `readiness`).
//!
//! TCP connect to the container's address and `PORT` by default, or an HTTP
//! GET of `readiness.path` expecting a status below 500. Polling starts at
//! 1 ms and backs off to 25 ms, so a service that is up in 30 ms is seen in
//! about 30 ms. Each attempt is bounded by [`ATTEMPT_TIMEOUT`]. Meanwhile the
//! container is inspected every 100 ms: one that exits fails the start at
//! once, with its last lines of output. When the deadline passes, the error
//! names what the last attempt saw ([`ProbeFailure`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper_util::rt::TokioIo;

use super::StartError;
use crate::defs::Readiness;
use crate::runtime::Engine;

const FIRST_DELAY: Duration = Duration::from_millis(1);
const MAX_DELAY: Duration = Duration::from_millis(25);
const INSPECT_EVERY: Duration = Duration::from_millis(100);
/// The longest one connect or one HTTP probe may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a failed readiness attempt saw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeFailure {
    /// Nothing listens on the port yet (connection refused or reset).
    #[error("nothing accepted connections on the port ({0})")]
    Refused(String),
    /// The TCP connect itself did not finish within the attempt limit.
    #[error("connecting took longer than {}s", ATTEMPT_TIMEOUT.as_secs())]
    ConnectTimedOut,
    /// The connection was accepted but the HTTP probe got no answer within
    /// the attempt limit.
    #[error("the container accepted the connection but the readiness probe GET {path} did not answer within {}s", ATTEMPT_TIMEOUT.as_secs())]
    ProbeTimedOut { path: String },
    /// The HTTP probe was answered with a server error.
    #[error("the readiness probe GET {path} answered {status}")]
    ServerError { path: String, status: u16 },
    /// The HTTP exchange failed after connecting.
    #[error("the readiness probe GET {path} failed: {message}")]
    Http { path: String, message: String },
}

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
        let failure = match probe(addr, readiness.path.as_deref()).await {
            Ok(()) => return Ok(()),
            Err(f) => f,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(StartError::Timeout {
                port: addr.port(),
                timeout: readiness.timeout,
                cause: failure,
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

/// One readiness attempt.
pub async fn probe(addr: SocketAddr, path: Option<&str>) -> Result<(), ProbeFailure> {
    let stream = match tokio::time::timeout(ATTEMPT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(ProbeFailure::Refused(e.to_string())),
        Err(_) => return Err(ProbeFailure::ConnectTimedOut),
    };
    let Some(path) = path else { return Ok(()) };
    match tokio::time::timeout(ATTEMPT_TIMEOUT, http_probe(stream, addr, path)).await {
        Ok(result) => result,
        Err(_) => Err(ProbeFailure::ProbeTimedOut { path: path.to_owned() }),
    }
}

async fn http_probe(stream: tokio::net::TcpStream, addr: SocketAddr, path: &str) -> Result<(), ProbeFailure> {
    let http = |message: String| ProbeFailure::Http {
        path: path.to_owned(),
        message,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http(e.to_string()))?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| http(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(|e| http(e.to_string()))?;
    match resp.status().as_u16() {
        s if s < 500 => Ok(()),
        status => Err(ProbeFailure::ServerError {
            path: path.to_owned(),
            status,
        }),
    }
}

/// The container's last lines of output, or why they could not be read.
pub async fn last_logs(engine: &dyn Engine, container: &str) -> String {
    match engine.logs_tail(container, 20).await {
        Ok(l) => l,
        Err(e) => format!("(logs unavailable: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(matches!(probe(addr, None).await, Err(ProbeFailure::Refused(_))));
    }

    #[tokio::test]
    async fn a_server_error_names_its_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let svc = hyper::service::service_fn(|_| async {
                let mut r = http::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
                *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                Ok::<_, std::convert::Infallible>(r)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
        let got = probe(addr, Some("/health")).await;
        assert_eq!(
            got,
            Err(ProbeFailure::ServerError {
                path: "/health".into(),
                status: 503
            })
        );
    }
}
