//! `substrate serve`: opens the data directory, loads the definitions,
//! reconciles with the container engine, serves HTTP/1.1 and HTTP/2, and shuts down cleanly
//! on SIGTERM or SIGINT.
//!
//! Requests under `/substrate/` go to the admin API; everything else is the
//! front door. Background tasks (idle reaper, Docker event follower, defs
//! watcher, reload follower, SIGHUP) are owned here and stopped through one
//! watch channel. Shutdown stops accepting, lets open connections finish
//! (for a bounded time), and flushes the store. Containers are never stopped
//! here: they outlive the daemon and are re-attached at the next start.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use http::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::admin::{self, AdminState};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::datadir::DataDir;
use crate::home::{self, HomeState};
use crate::instance::{reaper, Activator, ActivatorSettings};
use crate::metrics::{self, StateLabels, METRICS};
use crate::proxy::forward::TrustedProxies;
use crate::proxy::timeouts::SendTimeout;
use crate::proxy::upstream::UpstreamSettings;
use crate::proxy::{params, ClientConnection, FrontDoor, FrontDoorSettings, Scheme};
use crate::space::Spaces;
use crate::store::{Store, StoreError, StoreOptions};
use crate::tls::Tls;
use crate::workers::ConnectionWorkers;

/// How long open connections get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often idle instances are looked for.
const REAP_TICK: Duration = Duration::from_millis(250);
/// Edits arriving this close together make one reload.
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(200);

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

/// Everything a request can reach; shared by every connection.
struct Router {
    admin: axum::Router,
    /// The home page at `/` and its forms under `/substrate/ui/`.
    home: axum::Router,
    front: Arc<FrontDoor>,
    store: Store,
    /// The one header-size limit, checked here for every protocol.
    max_header_bytes: usize,
    /// The daemon's main (multi-threaded) runtime, which serves the admin
    /// API and the home page ([`on_main_runtime`]).
    main: tokio::runtime::Handle,
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let engine =
        crate::runtime::connect(&config.engine, &config.namespace).context("cannot set up the container engine")?;
    let catalog = Catalog::load(&config.defs, config.vars.clone()).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!(
            "cannot load the definitions in {}:\n{}",
            config.defs.display(),
            text.join("\n")
        )
    })?;
    let data = DataDir::new(&config.data);
    let store = open_store(&data, &config.namespace, config.store_cache_bytes)?;
    data.write_pid()?;
    let removed = data.recover(&store)?;
    if !removed.is_empty() {
        tracing::info!(count = removed.len(), "removed leftovers of interrupted copies");
    }
    let token = data.admin_token()?;
    let tls = match config.tls_listen {
        Some(_) => Some(Arc::new(
            Tls::load(config.tls_source.clone()).context("cannot set up HTTPS")?,
        )),
        None => None,
    };

    let spaces = Spaces::new(data.clone(), store.clone());
    let activator = Activator::new(
        engine.clone(),
        store.clone(),
        catalog.clone(),
        ActivatorSettings {
            default_idle_timeout: config.idle_timeout,
            default_pause_after: config.pause_after,
            build_context: config.build_context.clone(),
        },
    );
    match activator.reconcile().await {
        Ok(r) => tracing::info!(
            reattached = r.reattached.len(),
            dropped = r.dropped.len(),
            removed = r.removed.len(),
            "reconciled with the engine"
        ),
        Err(e) => tracing::warn!(error = %e, "could not reconcile with the engine; records kept for the next start"),
    }
    let front = Arc::new(FrontDoor::new(
        activator.clone(),
        catalog.clone(),
        params::Planner::new(spaces.clone()),
        FrontDoorSettings {
            body_buffer_limit: config.body_buffer_bytes,
            body_read_timeout: config.body_read_timeout,
            trusted_proxies: TrustedProxies::new(config.trusted_proxies.clone()),
            upstream: UpstreamSettings {
                connect_timeout: config.upstream_connect_timeout,
                response_timeout: config.upstream_response_timeout,
                ..UpstreamSettings::default()
            },
            ..FrontDoorSettings::default()
        },
    ));
    let token: Arc<str> = Arc::from(token);
    let admin = admin::router(AdminState {
        store: store.clone(),
        engine,
        catalog: catalog.clone(),
        front: front.clone(),
        spaces: spaces.clone(),
        token: token.clone(),
    });
    let home = home::router(HomeState::new(
        store.clone(),
        catalog.clone(),
        activator.clone(),
        spaces.clone(),
        token,
    ));

    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(reaper::run(activator.clone(), REAP_TICK, stop.clone()));
    tasks.spawn(reaper::follow_events(activator.clone(), stop.clone()));
    tasks.spawn(catalog.clone().watch(RELOAD_DEBOUNCE, stop.clone()));
    tasks.spawn(restart_changed_on_reload(
        catalog.clone(),
        activator.clone(),
        stop.clone(),
    ));
    tasks.spawn(reload_on_sighup(catalog.clone(), tls.clone(), stop.clone()));
    tasks.spawn(collect_abandoned_spaces(
        spaces,
        config.abandoned_space_ttl,
        stop.clone(),
    ));

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, data = %data.root().display(), namespace = %config.namespace, engine = %config.engine.kind, "serving");
    let tls = match (config.tls_listen, tls) {
        (Some(addr), Some(tls)) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for HTTPS"))?;
            tracing::info!(listen = %listener.local_addr()?, ca = ?tls.ca_file(), "serving HTTPS");
            Some(TlsListener { listener, tls })
        }
        _ => None,
    };
    serve(
        listener,
        tls,
        Arc::new(Router {
            admin,
            home,
            front,
            store: store.clone(),
            max_header_bytes: config.max_header_bytes,
            main: tokio::runtime::Handle::current(),
        }),
        ConnectionLimits {
            header_timeout: config.header_timeout,
            max_header_bytes: config.max_header_bytes,
            send_timeout: config.send_timeout,
        },
    )
    .await;

    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
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

/// What each client connection is held to (SPEC §4 "Timeouts and limits").
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    /// A client must send its request headers within this.
    header_timeout: Duration,
    /// Largest request header block, the same for HTTP/1.1 and HTTP/2 (the
    /// exact check is [`header_block_len`] in `dispatch`; the protocol
    /// limits sit above it as a backstop). Over it HTTP/1.1 gets 431, and
    /// HTTP/2 gets 431 on that stream only.
    max_header_bytes: usize,
    /// A write to the client may stay blocked this long.
    send_timeout: Duration,
}

/// An HTTPS listener and its certificate.
struct TlsListener {
    listener: TcpListener,
    tls: Arc<Tls>,
}

/// Accepts connections (HTTP, and HTTPS when configured) until a shutdown
/// signal, then drains them.
async fn serve(listener: TcpListener, tls: Option<TlsListener>, router: Arc<Router>, limits: ConnectionLimits) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // The read buffer must hold the whole head; a little room for the
        // request line beyond the header block.
        .max_buf_size(limits.max_header_bytes + 8 * 1024);
    // HPACK counts 32 bytes more per field than the wire size of HTTP/1.1:
    // twice the limit leaves the exact check to `dispatch`.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size((2 * limits.max_header_bytes).min(u32::MAX as usize) as u32);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let workers = ConnectionWorkers::per_core();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let (accepted, scheme) = tokio::select! {
            accepted = listener.accept() => (accepted, Scheme::Http),
            accepted = accept_tls(&tls) => (accepted, Scheme::Https),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Moved to a worker runtime's reactor below.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "cannot hand the connection to a worker");
                continue;
            }
        };
        let router = router.clone();
        let client = Arc::new(ClientConnection::new(peer, scheme));
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let router = router.clone();
            let client = client.clone();
            async move { Ok::<_, Infallible>(dispatch(router, req.map(Body::new), &client).await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = tls.as_ref().map(|t| t.tls.acceptor.clone());
        workers.spawn(async move {
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(s) => SendTimeout::new(s, limits.send_timeout),
                Err(e) => return tracing::debug!(%peer, error = %e, "cannot register the connection"),
            };
            let result = match (scheme, acceptor) {
                (Scheme::Https, Some(acceptor)) => {
                    // The handshake is part of the request head's time.
                    let stream = match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                _ => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: draining connections");
    drop(listener);
    drop(tls);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {:?}; closing them", DRAIN_TIMEOUT);
    }
}

/// The next connection on the HTTPS listener; never, without one.
async fn accept_tls(tls: &Option<TlsListener>) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match tls {
        Some(t) => t.listener.accept().await,
        None => std::future::pending().await,
    }
}

/// The size of a header block as HTTP/1.1 sends it: `name: value\r\n` per
/// field. Counted the same whatever protocol the request came in.
fn header_block_len(headers: &http::HeaderMap) -> usize {
    headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum()
}

async fn dispatch(router: Arc<Router>, req: Request<Body>, client: &ClientConnection) -> Response<Body> {
    let scheme = client.scheme;
    let header_bytes = header_block_len(req.headers());
    if header_bytes > router.max_header_bytes {
        let reason = format!(
            "request headers are {header_bytes} bytes, over the limit of {} (max_header_kib)",
            router.max_header_bytes
        );
        let html = crate::proxy::pages::wants_html(req.headers());
        return crate::proxy::pages::error(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &reason, None, html);
    }
    let path = req.uri().path();
    if path == "/" || path.starts_with("/substrate/ui/") {
        let mut req = req;
        req.extensions_mut().insert(scheme);
        return on_main_runtime(&router.main, router.home.clone(), req).await;
    }
    if req.uri().path().starts_with("/substrate/") {
        return on_main_runtime(&router.main, router.admin.clone(), req).await;
    }
    if req.uri().path() == "/metrics" {
        return metrics_response(&router).await;
    }
    let resp = router.front.handle(req, client).await;
    METRICS.count_request(resp.status().as_u16());
    resp
}

/// Serves `req` with `app` on the daemon's main runtime (`main`).
///
/// The admin API and the home page read and write the store synchronously,
/// and a write is flushed to disk before it is acknowledged (milliseconds).
/// A connection worker ([`crate::workers`]) runs every connection it holds
/// on one thread, and would hold them all up meanwhile; the main runtime's
/// threads are shared by background work that tolerates it. The request
/// finishes even if its client goes away: an admin change is not cut off
/// half-way.
async fn on_main_runtime(main: &tokio::runtime::Handle, app: axum::Router, req: Request<Body>) -> Response<Body> {
    match main.spawn(app.oneshot(req)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(never)) => match never {},
        Err(e) => {
            let reason = format!("the request's handler failed: {e}");
            crate::proxy::pages::error(http::StatusCode::INTERNAL_SERVER_ERROR, &reason, None, false)
        }
    }
}

/// `GET /metrics`, with state gauges refreshed first.
async fn metrics_response(router: &Router) -> Response<Body> {
    let activator = &router.front.activator;
    METRICS
        .instances
        .get_or_create(&StateLabels { state: "ready" })
        .set(activator.instances().iter().filter(|i| !i.is_paused()).count() as i64);
    METRICS
        .instances
        .get_or_create(&StateLabels { state: "paused" })
        .set(activator.instances().iter().filter(|i| i.is_paused()).count() as i64);
    METRICS
        .instances
        .get_or_create(&StateLabels { state: "starting" })
        .set(activator.starting().len() as i64);
    METRICS
        .instances
        .get_or_create(&StateLabels { state: "stopping" })
        .set(activator.stopping().len() as i64);
    METRICS
        .spaces
        .set(router.store.count(crate::store::Tree::Spaces) as i64);
    let mut resp = Response::new(Body::from(metrics::render()));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

/// After each successful reload, stops instances whose definition changed.
async fn restart_changed_on_reload(catalog: Catalog, activator: Arc<Activator>, mut stop: watch::Receiver<bool>) {
    let mut generation = catalog.subscribe();
    loop {
        tokio::select! {
            changed = generation.changed() => {
                if changed.is_err() { return; }
                let n = activator.stop_changed().await;
                if n > 0 {
                    tracing::info!(stopped = n, "stopped instances whose definition changed");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Deletes abandoned spaces (SPEC §5) every quarter of their TTL.
async fn collect_abandoned_spaces(spaces: Arc<Spaces>, ttl: Duration, mut stop: watch::Receiver<bool>) {
    if ttl.is_zero() {
        return;
    }
    let mut interval = tokio::time::interval((ttl / 4).max(Duration::from_millis(250)));
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if let Err(e) = spaces.collect_abandoned(ttl).await {
                    tracing::warn!(error = %e, "collecting abandoned spaces failed");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// SIGHUP reloads the definitions and the operator's TLS certificate.
async fn reload_on_sighup(catalog: Catalog, tls: Option<Arc<Tls>>, mut stop: watch::Receiver<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading definitions");
                let c = catalog.clone();
                let _ = tokio::task::spawn_blocking(move || c.reload()).await;
                if let Some(tls) = &tls {
                    match tls.reload() {
                        Ok(()) => tracing::info!("TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; keeping the one in force"),
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
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
