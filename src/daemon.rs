//! `substrate serve`: opens the data directory, binds the listener, serves
//! HTTP/1.1 and HTTP/2, and shuts down cleanly on SIGTERM or SIGINT.
//!
//! Requests under `/substrate/` go to the admin API; everything else is the
//! front door. Shutdown stops accepting, lets open connections finish (for a
//! bounded time), and flushes the store. Containers are never stopped here:
//! they outlive the daemon and are re-attached at the next start.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use http::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::datadir::DataDir;
use crate::runtime::DockerEngine;
use crate::store::{Store, StoreError, StoreOptions};

/// How long open connections get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the store of a data directory for a daemon, explaining a held lock.
pub fn open_store(data: &DataDir, namespace: &str, cache_bytes: u64) -> anyhow::Result<Store> {
    data.create()?;
    let options = StoreOptions {
        cache_bytes,
        namespace: namespace.to_owned(),
    };
    match Store::open(&data.db(), &options) {
        Ok(s) => Ok(s),
        Err(StoreError::Locked { .. }) => Err(anyhow::anyhow!(in_use_message(data))),
        Err(e) => Err(e.into()),
    }
}

/// The message every tool prints when a daemon holds the database.
pub fn in_use_message(data: &DataDir) -> String {
    let pid = data.holder_pid().map(|p| format!(" (pid {p})")).unwrap_or_default();
    format!(
        "the database at {} is in use by a running daemon{pid}; use the admin API or stop it",
        data.db().display()
    )
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let data = DataDir::new(&config.data);
    let store = open_store(&data, &config.namespace, config.store_cache_bytes)?;
    data.write_pid()?;
    let removed = data.recover(&store)?;
    if !removed.is_empty() {
        tracing::info!(count = removed.len(), "removed leftovers of interrupted copies");
    }
    let token = data.admin_token()?;

    let (docker, docker_error) = match DockerEngine::connect(&config.namespace) {
        Ok(d) => (Some(d.negotiate().await), None),
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach the Docker Engine; will report it in health");
            (None, Some(e))
        }
    };

    let admin = admin::router(AdminState {
        store: store.clone(),
        docker,
        docker_error,
        token: Arc::from(token),
    });

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, data = %data.root().display(), namespace = %config.namespace, "serving");

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let admin = admin.clone();
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(dispatch(admin, req.map(Body::new)).await) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }

    tracing::info!("shutting down: draining connections");
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {:?}; closing them", DRAIN_TIMEOUT);
    }
    drop(admin);
    tokio::task::spawn_blocking(move || {
        let flushed = store.flush();
        drop(store);
        flushed
    })
    .await??;
    data.remove_pid();
    tracing::info!("stopped");
    Ok(())
}

async fn dispatch(admin: axum::Router, req: Request<Body>) -> Response<Body> {
    if req.uri().path().starts_with("/substrate/") {
        return match admin.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
    }
    let mut resp = Response::new(Body::from(format!(
        "no service answers {}: the front door is not wired yet\n",
        req.uri().path()
    )));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
