//! The front door: every request that is not for `/substrate/` or
//! `/metrics` is `/<viewspec>/<rest>` and goes to an instance (SPEC §4).
//!
//! The request path, in phases:
//!
//! 1. **route** — split the path, parse the viewspec (400), find the service
//!    (404 unknown, 404 disabled), plan its parameters ([`params`]; this may
//!    answer a redirect instead).
//! 2. **buffer** — read the body (up to the buffer limit) so it can be
//!    replayed once; a larger body with a `Content-Length` streams instead.
//!    A body that stalls for the body read timeout gets 408 ([`timeouts`]).
//! 3. **activate** — the ready instance, or wait for its start
//!    ([`crate::instance::activator`]); browsers waiting longer than a second
//!    get a "starting…" page (never an upgrade: it is held until ready).
//! 4. **forward** — send it on ([`forward`], over [`upstream`] connections).
//!    A failure goes to [`retry::after_failure`], the one place that decides
//!    whether to send again (SPEC §4 replay rules).

pub mod forward;
pub mod pages;
pub mod params;
pub mod retry;
pub mod timeouts;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;

use crate::catalog::Catalog;
use crate::instance::stop::StopReason;
use crate::instance::{Activator, ActivityGuard, Instance, StartRequest};
use crate::metrics::{KindLabels, METRICS};
use crate::viewspec::{split_path, PathSplit, Viewspec};
pub use forward::ClientConnection;
use forward::{Downstream, TrustedProxies};
use retry::{Attempts, FailurePhase, Next};
use upstream::{UpstreamPool, UpstreamSettings};

/// Tunables of the front door.
#[derive(Debug, Clone)]
pub struct FrontDoorSettings {
    /// Bodies up to this size are buffered (and can be replayed once).
    pub body_buffer_limit: usize,
    /// How long a browser waits for a start before getting "starting…".
    pub browser_wait: Duration,
    /// A request body that sends nothing for this long gets 408.
    pub body_read_timeout: Duration,
    /// Peers whose forwarded headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Connections to containers.
    pub upstream: UpstreamSettings,
}

impl Default for FrontDoorSettings {
    fn default() -> Self {
        Self {
            body_buffer_limit: 16 << 20,
            browser_wait: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(60),
            trusted_proxies: TrustedProxies::default(),
            upstream: UpstreamSettings::default(),
        }
    }
}

pub struct FrontDoor {
    pub activator: Arc<Activator>,
    catalog: Catalog,
    params: params::Planner,
    upstream: UpstreamPool,
    settings: FrontDoorSettings,
}

/// How a client reached the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A request routed to a service, before it has an instance.
pub struct Route {
    /// The canonical viewspec: the instance key.
    pub key: String,
    pub viewspec: Viewspec,
    /// The definitions the request was routed with; they hold the service.
    pub defs: Arc<crate::defs::Defs>,
    /// The `Host` the client used and how it connected, for the injected
    /// origin (`ORIGIN`, `SUBSTRATE_ORIGIN`).
    pub host: Option<http::HeaderValue>,
    pub scheme: Scheme,
    /// Planned already (on the cold path).
    pub start: Option<StartRequest>,
}

/// A request on its way to an instance, after routing and buffering.
struct Exchange {
    parts: http::request::Parts,
    body: RequestBody,
    /// The path after the viewspec.
    rest: String,
    down: Downstream,
    /// The client side of a protocol switch (WebSocket), when asked for.
    on_upgrade: Option<hyper::upgrade::OnUpgrade>,
    /// A browser's GET: may be answered with "starting…" instead of waiting.
    waits_visibly: bool,
    /// Error pages in HTML (the client accepts it).
    html: bool,
}

/// The request body, as far as it has been read.
enum RequestBody {
    /// Read whole: can be sent again.
    Buffered(Bytes),
    /// Too large to keep: sent once, as it arrives.
    Streaming(Option<Body>),
}

impl RequestBody {
    /// The body for one more attempt; a streaming body only once.
    fn for_attempt(&mut self) -> Body {
        match self {
            RequestBody::Buffered(b) => Body::from(b.clone()),
            RequestBody::Streaming(b) => b.take().unwrap_or_else(Body::empty),
        }
    }
}

impl FrontDoor {
    pub fn new(
        activator: Arc<Activator>,
        catalog: Catalog,
        params: params::Planner,
        settings: FrontDoorSettings,
    ) -> Self {
        Self {
            activator,
            catalog,
            params,
            upstream: UpstreamPool::new(settings.upstream.clone()),
            settings,
        }
    }

    pub async fn handle(&self, mut req: Request<Body>, client: &ClientConnection) -> Response<Body> {
        let scheme = client.scheme;
        let html = pages::wants_html(req.headers());
        let (raw, rest) = match split_path(req.uri().path()) {
            PathSplit::Root => {
                return pages::error(
                    StatusCode::NOT_FOUND,
                    "no service here: request /<service>/ (see /substrate/v1/services)",
                    None,
                    html,
                )
            }
            PathSplit::NeedsSlash { viewspec } => {
                let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
                return pages::redirect(&format!("/{viewspec}/{query}"));
            }
            PathSplit::Routed { viewspec, rest } => (viewspec.to_owned(), rest.to_owned()),
        };
        let viewspec = match Viewspec::parse(&raw) {
            Ok(v) => v,
            Err(e) => return pages::error(StatusCode::BAD_REQUEST, &e.to_string(), None, html),
        };
        let defs = self.catalog.current();
        let Some(service) = defs.services.get(viewspec.service()) else {
            let reason = format!("no service named {:?} is defined", viewspec.service());
            return pages::error(StatusCode::NOT_FOUND, &reason, None, html);
        };
        if !service.enabled {
            let reason = format!(
                "service {:?} is defined but not enabled (set enable: {:?}: true in defs/)",
                service.name, service.name
            );
            return pages::error(StatusCode::NOT_FOUND, &reason, None, html);
        }
        // Only a start needs it (SUBSTRATE_ORIGIN): keep the header, format later.
        let host = forward::request_host(req.headers(), req.uri());
        let mut route = Route {
            key: viewspec.canonical(),
            viewspec,
            defs: defs.clone(),
            host,
            scheme,
            start: None,
        };
        // The warm path skips planning: a ready instance was planned already.
        let ready = self.activator.ready(&route.key);
        if ready.is_none() {
            match self.plan(&route).await {
                Ok(Ok(start)) => route.start = Some(start),
                Ok(Err(completed)) => {
                    let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
                    return pages::redirect(&format!("/{}{rest}{query}", completed.canonical()));
                }
                Err(e) => return pages::error(e.status, &e.message, None, html),
            }
        }

        let upgrade = forward::is_upgrade(req.headers());
        let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let body = match self.buffer(&parts, body, upgrade).await {
            Ok(b) => b,
            Err(resp) => return resp,
        };
        let exchange = Exchange {
            // An upgrade is held until ready: a WebSocket client cannot
            // render a page.
            waits_visibly: html && parts.method == http::Method::GET && !upgrade,
            html,
            parts,
            body,
            rest,
            down: Downstream {
                peer: client.forwarded_for.clone(),
                prefix: raw,
                trusted: self.settings.trusted_proxies.contains(client.peer.ip()),
                scheme: scheme.as_str(),
                host: route.host.clone(),
            },
            on_upgrade,
        };
        self.proxy(exchange, route, ready).await
    }

    /// Plans the instance of a route: `Ok(Err(viewspec))` when the URL must
    /// be completed first (redirect there).
    pub async fn plan(&self, route: &Route) -> Result<Result<StartRequest, Viewspec>, params::PlanError> {
        let service = route
            .defs
            .services
            .get(route.viewspec.service())
            .ok_or_else(|| params::PlanError {
                status: StatusCode::NOT_FOUND,
                message: format!("no service named {:?} is defined", route.viewspec.service()),
            })?;
        // The external origin of this request, e.g. https://substrate.home.arpa:8443.
        let origin = route
            .host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("{}://{h}", route.scheme.as_str()))
            .unwrap_or_default();
        match self.params.plan(&route.viewspec, service, &origin).await? {
            params::Plan::Redirect(completed) => Ok(Err(completed)),
            params::Plan::Instance(p) => Ok(Ok(StartRequest {
                key: p.key,
                service: service.name.clone(),
                injected: p.injected,
                binds: p.binds,
                origin,
            })),
        }
    }

    async fn buffer(
        &self,
        parts: &http::request::Parts,
        body: Body,
        upgrade: bool,
    ) -> Result<RequestBody, Response<Body>> {
        let limit = self.settings.body_buffer_limit;
        let declared: Option<u64> = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        // Most requests have no body: nothing to read or keep.
        if !upgrade && hyper::body::Body::is_end_stream(&body) {
            return Ok(RequestBody::Buffered(Bytes::new()));
        }
        let body = timeouts::BodyReadTimeout::new(body, self.settings.body_read_timeout);
        if upgrade || declared.is_some_and(|n| n > limit as u64) {
            return Ok(RequestBody::Streaming(Some(Body::new(body))));
        }
        match http_body_util::Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(RequestBody::Buffered(collected.to_bytes())),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(pages::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body larger than {limit} bytes without a Content-Length; send one to stream it"),
                None,
                false,
            )),
            Err(e) if timeouts::is_body_stalled(e.as_ref()) => Err(body_stalled(&*e)),
            Err(e) => Err(pages::error(
                StatusCode::BAD_REQUEST,
                &format!("could not read the request body: {e}"),
                None,
                false,
            )),
        }
    }

    /// Activates and forwards; after a failure, [`retry::after_failure`]
    /// decides whether and where to send again.
    /// `ready`: the instance routing found, used for the first attempt.
    async fn proxy(&self, mut ex: Exchange, mut route: Route, mut ready: Option<Arc<Instance>>) -> Response<Body> {
        let html = ex.html;
        let replayable = matches!(ex.body, RequestBody::Buffered(_)) && ex.parts.method.is_idempotent();
        let mut attempts = Attempts::default();
        // A request that never left the daemon comes back to be sent again.
        let mut returned: Option<http::Request<Body>> = None;
        let mut fresh = false;
        let mut instance: Option<Arc<Instance>> = None;
        loop {
            let target = match instance
                .take()
                .or_else(|| ready.take())
                .or_else(|| self.activator.ready(&route.key))
            {
                Some(i) => i,
                None => match self.activate_route(&mut route, ex.waits_visibly, html).await {
                    Ok(i) => i,
                    Err(resp) => return resp,
                },
            };
            let body = match returned.take() {
                Some(req) => req.into_body(),
                None => ex.body.for_attempt(),
            };
            let upgrade = ex.on_upgrade.is_some();
            let upstream = match forward::upstream_request(&ex.parts, &ex.rest, body, &target, &ex.down, upgrade) {
                Ok(r) => r,
                Err(e) => return pages::error(StatusCode::BAD_REQUEST, &format!("cannot forward: {e}"), None, html),
            };
            let guard = ActivityGuard::new(target.clone(), self.activator.clock_origin());
            // Counted open first, then resumed: the pauser sees either.
            self.activator.resume(&target).await;
            let sent_at = std::time::Instant::now();
            let mut err = match self
                .upstream
                .send(&target.container_id, target.addr, upstream, fresh)
                .await
            {
                Ok((resp, checkout)) => {
                    METRICS.proxy_latency.observe(sent_at.elapsed().as_secs_f64());
                    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                        if let Some(client_side) = ex.on_upgrade.take() {
                            return forward::splice_upgrade(client_side, resp, guard);
                        }
                    }
                    return forward::downstream_response(resp, guard, checkout);
                }
                Err(err) => err,
            };
            drop(guard);
            METRICS.errors.get_or_create(&KindLabels { kind: "upstream" }).inc();
            if timeouts::is_body_stalled(&err.failure) {
                return body_stalled(&err);
            }
            let next = retry::after_failure(err.phase(), err.sent, replayable, &mut attempts);
            tracing::debug!(instance = %target.key, error = %err, sent = err.sent, reused = err.reused, ?next, "upstream failure");
            returned = err.request.take();
            match next {
                Next::FreshConnection => {
                    fresh = true;
                    instance = Some(target);
                }
                Next::AskEngine { may_replay } => {
                    if err.phase() != FailurePhase::Connect && self.container_running(&target).await {
                        // Say whether it may have been acted on: a client
                        // deciding whether to retry a POST needs to know.
                        let reach = match (err.sent, replayable) {
                            (false, _) => "the request did not reach it".to_owned(),
                            (true, true) => "the request may have reached it".to_owned(),
                            (true, false) => format!(
                                "the request may have reached it, and a {} request is not sent twice (RFC 9110 §9.2.2)",
                                ex.parts.method
                            ),
                        };
                        let reason = format!("the service did not answer: {}; {reach}", err.failure);
                        return pages::error(StatusCode::BAD_GATEWAY, &reason, None, html);
                    }
                    // Gone: pretend we never had one.
                    tracing::info!(instance = %target.key, error = %err, "the container is gone");
                    self.upstream.evict(&target.container_id);
                    self.activator
                        .stop_for(&target.key, StopReason::ContainerGone, Some(&target.container_id))
                        .await;
                    if !may_replay {
                        let reason = format!(
                            "the service's container went away after receiving the request; a {} request is not sent twice (RFC 9110 §9.2.2)",
                            ex.parts.method
                        );
                        return pages::error(StatusCode::BAD_GATEWAY, &reason, None, html);
                    }
                    fresh = false;
                }
                Next::Fail(status) => {
                    let reason = format!("the service did not answer: {}", err.failure);
                    return pages::error(status, &reason, None, html);
                }
            }
        }
    }

    /// Plans (if needed) and starts the route's instance.
    async fn activate_route(
        &self,
        route: &mut Route,
        waits_visibly: bool,
        html: bool,
    ) -> Result<Arc<Instance>, Response<Body>> {
        let start = match route.start.take() {
            Some(s) => s,
            None => match self.plan(route).await {
                Ok(Ok(s)) => s,
                Ok(Err(_)) => {
                    let reason = "the instance's spaces changed; reload the page";
                    return Err(pages::error(StatusCode::CONFLICT, reason, None, html));
                }
                Err(e) => return Err(pages::error(e.status, &e.message, None, html)),
            },
        };
        self.activate(start, waits_visibly, html).await
    }

    /// Waits for the instance to start; browsers get "starting…" after a second.
    async fn activate(
        &self,
        start: StartRequest,
        waits_visibly: bool,
        html: bool,
    ) -> Result<Arc<Instance>, Response<Body>> {
        let service = start.service.clone();
        let result = if waits_visibly {
            match tokio::time::timeout(self.settings.browser_wait, self.activator.ensure(start)).await {
                Ok(r) => r,
                Err(_) => return Err(pages::starting(&service)),
            }
        } else {
            self.activator.ensure(start).await
        };
        result.map_err(|e| {
            METRICS.errors.get_or_create(&KindLabels { kind: "start" }).inc();
            let reason = format!("{service} could not be started: {e}");
            pages::error(e.status(), &reason, e.logs(), html)
        })
    }

    /// Whether the engine says the instance's container still runs (an
    /// engine that cannot answer counts as running: nothing is replayed).
    async fn container_running(&self, instance: &Instance) -> bool {
        match self.activator.engine().inspect(&instance.container_id).await {
            Ok(Some(c)) => c.running,
            Ok(None) => false,
            Err(_) => true,
        }
    }
}

/// 408 for a request body that stalled; the connection is closed after it.
fn body_stalled(e: &dyn std::fmt::Display) -> Response<Body> {
    let mut resp = pages::error(
        StatusCode::REQUEST_TIMEOUT,
        &format!("request body timed out: {e}"),
        None,
        false,
    );
    resp.headers_mut()
        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    resp
}
