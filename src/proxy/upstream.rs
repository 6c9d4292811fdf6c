//! Connections to containers: keep-alive HTTP/1.1 connections pooled per
//! container, and the error that says how far a failed request got.
//!
//! Pooled per container id, not per address: a new container may get the
//! address of one that died, and a connection to the dead one must never
//! carry its successor's requests.
//!
//! Each connection is a hyper `client::conn::http1` sender driven by its own
//! task. A connection is checked out for one exchange and checked back in
//! when the response body has been read to its end; a connection the
//! container closed is dropped at checkout. Upgrades (WebSocket) take their
//! connection for good.
//!
//! [`UpstreamError`] carries what the retry decision needs, as Pingora's
//! errors do: whether the request may have reached the container
//! ([`UpstreamError::sent`]), and whether it failed on a reused connection.
//! A request that provably never left the daemon comes back inside the
//! error, body included, so it can be sent again whatever its method.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustc_hash::FxHashMap;

use super::retry::FailurePhase;

/// Tunables of the pool.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// A TCP connect to a container must finish within this.
    pub connect_timeout: Duration,
    /// The response head must arrive within this; `None` waits as long as
    /// the container takes (long polls, server-sent events).
    pub response_timeout: Option<Duration>,
    /// Idle connections kept per container address.
    pub max_idle_per_addr: usize,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            response_timeout: None,
            max_idle_per_addr: 256,
        }
    }
}

/// How an upstream exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamFailure {
    /// No connection. `unreachable`: refused, no route, or the connect
    /// timed out — the sign that the container may be gone; otherwise (a
    /// reset during the handshake, say) the connection merely failed.
    #[error("cannot connect to the container at {addr}: {message}")]
    Connect {
        addr: SocketAddr,
        message: String,
        unreachable: bool,
    },
    /// The connection failed during the exchange.
    #[error("the connection to the container failed: {}", with_causes(.0))]
    Exchange(#[source] hyper::Error),
    /// The response head did not arrive within the response timeout.
    #[error("the container did not answer within {}s", .0.as_secs_f64())]
    ResponseTimeout(Duration),
}

/// `e` and its causes: hyper's own message ("connection error") says
/// little without the I/O error under it.
fn with_causes(e: &hyper::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A failed upstream exchange and how far the request got.
#[derive(Debug)]
pub struct UpstreamError {
    pub failure: UpstreamFailure,
    /// The request may have reached the container (some of it was written).
    /// False only when it provably never left the daemon.
    pub sent: bool,
    /// It failed on a pooled (reused) connection, not a fresh one.
    pub reused: bool,
    /// The request, given back when it was not sent.
    pub request: Option<Request<Body>>,
}

impl UpstreamError {
    /// Where the exchange failed, for [`super::retry::after_failure`].
    pub fn phase(&self) -> FailurePhase {
        match self.failure {
            UpstreamFailure::Connect { unreachable: true, .. } => FailurePhase::Connect,
            UpstreamFailure::Connect { .. } | UpstreamFailure::Exchange(_) => FailurePhase::Exchange,
            UpstreamFailure::ResponseTimeout(_) => FailurePhase::ResponseTimeout,
        }
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.failure.fmt(f)
    }
}

/// Idle connections by container id. Container ids come from the engine,
/// not from clients: a fast hasher needs no protection from chosen keys.
type IdleConnections = Mutex<FxHashMap<String, Vec<SendRequest<Body>>>>;

/// The pool of connections to containers, one shard per connection worker
/// ([`crate::workers`]): a connection is driven by a task on the worker
/// that opened it and lent only to requests on that worker, so an exchange
/// never wakes another thread.
#[derive(Clone)]
pub struct UpstreamPool {
    shards: Arc<[IdleConnections]>,
    settings: Arc<UpstreamSettings>,
}

/// A connection lent out for one exchange; returned to the pool on drop
/// when the exchange finished cleanly.
pub struct Checkout {
    sender: Option<SendRequest<Body>>,
    container: String,
    pool: UpstreamPool,
    /// Set once the response body was read to its end.
    pub(super) reusable: bool,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if !self.reusable {
            return;
        }
        if let Some(sender) = self.sender.take().filter(|s| !s.is_closed()) {
            self.pool.check_in(&self.container, sender);
        }
    }
}

impl UpstreamPool {
    pub fn new(settings: UpstreamSettings) -> Self {
        Self {
            shards: (0..crate::workers::slots_per_core())
                .map(|_| Mutex::new(FxHashMap::default()))
                .collect(),
            settings: Arc::new(settings),
        }
    }

    /// The idle connections of the current worker.
    fn idle(&self) -> std::sync::MutexGuard<'_, FxHashMap<String, Vec<SendRequest<Body>>>> {
        let shard = &self.shards[crate::workers::current_slot() % self.shards.len()];
        shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_in(&self, container: &str, sender: SendRequest<Body>) {
        let mut idle = self.idle();
        match idle.get_mut(container) {
            Some(list) if list.len() < self.settings.max_idle_per_addr => list.push(sender),
            Some(_) => {}
            None => {
                // A container's first connection here: forget containers
                // whose connections have all closed (stopped ones; `evict`
                // only hears of containers found gone by a request).
                idle.retain(|_, list| {
                    list.retain(|s| !s.is_closed());
                    !list.is_empty()
                });
                idle.insert(container.to_owned(), vec![sender]);
            }
        }
    }

    /// A pooled connection to `container` that can take a request now.
    fn check_out(&self, container: &str) -> Option<SendRequest<Body>> {
        let mut idle = self.idle();
        let list = idle.get_mut(container)?;
        while let Some(sender) = list.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
            // Closed, or still finishing its previous exchange: let it go.
        }
        None
    }

    /// Forgets every idle connection to `container` (it is gone).
    pub fn evict(&self, container: &str) {
        for shard in self.shards.iter() {
            shard.lock().unwrap_or_else(|p| p.into_inner()).remove(container);
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<SendRequest<Body>, UpstreamFailure> {
        let connect_failed = |message: String, unreachable: bool| UpstreamFailure::Connect {
            addr,
            message,
            unreachable,
        };
        let connecting = tokio::time::timeout(self.settings.connect_timeout, tokio::net::TcpStream::connect(addr));
        let stream = match connecting.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                use std::io::ErrorKind::*;
                let unreachable = matches!(
                    e.kind(),
                    ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable | TimedOut
                );
                return Err(connect_failed(e.to_string(), unreachable));
            }
            Err(_) => {
                let message = format!("no connection within {}s", self.settings.connect_timeout.as_secs_f64());
                return Err(connect_failed(message, true));
            }
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_failed(e.to_string(), false))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Sends `req` to `container` at `addr`: on a pooled connection unless
    /// `fresh`.
    pub async fn send(
        &self,
        container: &str,
        addr: SocketAddr,
        req: Request<Body>,
        fresh: bool,
    ) -> Result<(Response<Incoming>, Checkout), UpstreamError> {
        let pooled = if fresh { None } else { self.check_out(container) };
        let reused = pooled.is_some();
        let mut sender = match pooled {
            Some(s) => s,
            None => match self.connect(addr).await {
                Ok(s) => s,
                Err(failure) => {
                    return Err(UpstreamError {
                        failure,
                        sent: false,
                        reused: false,
                        request: Some(req),
                    })
                }
            },
        };
        let exchange = sender.try_send_request(req);
        let result = match self.settings.response_timeout {
            None => exchange.await,
            Some(limit) => match tokio::time::timeout(limit, exchange).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(UpstreamError {
                        failure: UpstreamFailure::ResponseTimeout(limit),
                        sent: true,
                        reused,
                        request: None,
                    })
                }
            },
        };
        match result {
            Ok(resp) => Ok((
                resp,
                Checkout {
                    sender: Some(sender),
                    container: container.to_owned(),
                    pool: self.clone(),
                    reusable: false,
                },
            )),
            Err(mut e) => {
                let request = e.take_message();
                Err(UpstreamError {
                    sent: request.is_none(),
                    failure: UpstreamFailure::Exchange(e.into_error()),
                    reused,
                    request,
                })
            }
        }
    }
}
