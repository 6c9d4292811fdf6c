//! Forwarding one request to a ready instance and its response back.
//!
//! HTTP/1.1 to the container whatever the client spoke, over the pooled
//! connections of [`super::upstream`]. Hop-by-hop headers are removed both
//! ways. Forwarded headers follow the trust boundary (SPEC §4): from a peer
//! outside `trusted_proxies`, `X-Forwarded-For` is the peer alone and
//! `X-Forwarded-Proto/-Host/-Prefix` are ours, and client-sent `Forwarded`
//! and `X-Real-IP` are removed; from a trusted peer the peer is appended to
//! its `X-Forwarded-For` chain (every header line, in order) and its proto
//! and host are kept. Bodies stream both ways. An upgrade (WebSocket) is passed through: once
//! both sides have switched protocols the two connections are spliced, and
//! the splice holds an [`ActivityGuard`] so an open WebSocket keeps its
//! instance from idling.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;

use super::upstream::Checkout;
use crate::instance::{ActivityGuard, Instance};

/// The client end of one connection, described once per connection.
#[derive(Debug, Clone)]
pub struct ClientConnection {
    pub peer: SocketAddr,
    /// How the client reached us.
    pub scheme: super::Scheme,
    /// The peer's address as `X-Forwarded-For` writes it: IPv4-mapped
    /// addresses as IPv4, IPv6 without brackets (as nginx does).
    pub forwarded_for: HeaderValue,
}

impl ClientConnection {
    pub fn new(peer: SocketAddr, scheme: super::Scheme) -> Self {
        let ip = peer.ip().to_canonical().to_string();
        // An IP address is always a valid header value.
        let forwarded_for = HeaderValue::from_maybe_shared(Bytes::from(ip)).unwrap_or(HeaderValue::from_static(""));
        Self {
            peer,
            scheme,
            forwarded_for,
        }
    }
}

/// Where the request came from and how it addressed us.
pub struct Downstream {
    /// The peer's address, formatted ([`ClientConnection::forwarded_for`]).
    pub peer: HeaderValue,
    /// The path segment the client used for the viewspec, e.g. `notes;sp-X`.
    pub prefix: String,
    /// The peer is a trusted proxy: its forwarded headers are believed.
    pub trusted: bool,
    /// How the client reached us: `http` or `https`.
    pub scheme: &'static str,
    /// The host the client asked for ([`request_host`]).
    pub host: Option<HeaderValue>,
}

/// The CIDRs whose forwarded headers are believed (`trusted_proxies`).
///
/// Peers are compared in canonical form: an IPv4 client of a dual-stack
/// socket arrives as `::ffff:a.b.c.d` and is taken for `a.b.c.d`. So a CIDR
/// written in that IPv4-mapped form (`::ffff:10.0.0.0/104`) is kept as the
/// IPv4 CIDR it names (`10.0.0.0/8`). A wider IPv6 CIDR (`::/0`) names IPv6
/// peers only: trusting IPv4 peers takes an IPv4 CIDR.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<ipnet::IpNet>) -> Self {
        Self(nets.into_iter().map(canonical_net).collect())
    }

    /// Whether `peer` (an IPv4-mapped IPv6 address counts as IPv4) is in
    /// one of the CIDRs.
    pub fn contains(&self, peer: std::net::IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|net| net.contains(&peer))
    }
}

/// `net`, or the IPv4 CIDR it names when it lies within the IPv4-mapped
/// range `::ffff:0:0/96`.
fn canonical_net(net: ipnet::IpNet) -> ipnet::IpNet {
    let ipnet::IpNet::V6(v6) = net else { return net };
    let mapped = v6.network().to_ipv4_mapped();
    match (mapped, v6.prefix_len().checked_sub(96)) {
        (Some(ip), Some(prefix)) => ipnet::Ipv4Net::new(ip, prefix).map_or(net, ipnet::IpNet::V4),
        _ => net,
    }
}

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Whether `name` is hop-by-hop whatever `Connection` says.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::UPGRADE || HOP_BY_HOP.contains(name)
}

/// Removes hop-by-hop headers, including those the Connection header names.
/// `Upgrade` is removed too unless the exchange is an upgrade.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none: one pass over the names, no lookups.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        if keep_upgrade && name == header::UPGRADE {
            continue;
        }
        headers.remove(name);
    }
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    }
}

/// Whether a request asks to switch protocols.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// The host the client asked for: its `Host` header, or (HTTP/2) the URI's
/// authority.
pub fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<HeaderValue> {
    headers
        .get(header::HOST)
        .cloned()
        .or_else(|| uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()))
}

/// Builds the request to send to `instance`: path with the viewspec
/// stripped and `url_prefix` added, forwarded headers set.
pub fn upstream_request(
    parts: &http::request::Parts,
    rest: &str,
    body: Body,
    instance: &Instance,
    down: &Downstream,
    upgrade: bool,
) -> Result<Request<Body>, http::Error> {
    // Origin-form (RFC 9112 §3.2.1): the container is the origin server.
    let query = parts.uri.query();
    let mut target = String::with_capacity(instance.url_prefix.len() + rest.len() + query.map_or(0, |q| q.len() + 1));
    target.push_str(instance.url_prefix.trim_end_matches('/'));
    target.push_str(rest);
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    let uri = Uri::try_from(target)?;
    // Room for the forwarded headers: a clone is full, and growing a map
    // rehashes it.
    // (A map that large cannot be made: HTTP/2 with a huge header limit.)
    let mut headers = HeaderMap::try_with_capacity(parts.headers.len() + FORWARDED_HEADERS).unwrap_or_default();
    headers.extend(parts.headers.iter().map(|(n, v)| (n.clone(), v.clone())));
    strip_hop_by_hop(&mut headers, upgrade);
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    // HTTP/1.1 requires a Host (RFC 9112 §3.2): the client's, or for a
    // client that sent none (HTTP/1.0) the container's own address, as the
    // readiness probe sends. The request target is origin-form and says none.
    let upstream_host = match &down.host {
        Some(h) => Some(h.clone()),
        None => HeaderValue::from_str(&instance.addr.to_string()).ok(),
    };
    if let Some(h) = upstream_host {
        headers.insert(header::HOST, h);
    }
    set_forwarded(&mut headers, down);
    let mut req = Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .version(http::Version::HTTP_11)
        .body(body)?;
    *req.headers_mut() = headers;
    Ok(req)
}

/// How many headers [`upstream_request`] may add: `Host`, `Connection` and
/// the four `X-Forwarded-*`.
const FORWARDED_HEADERS: usize = 6;
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Sets the forwarded headers by the trust boundary (SPEC §4).
fn set_forwarded(headers: &mut HeaderMap, down: &Downstream) {
    let chain = if down.trusted {
        let prior: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        let peer = down.peer.to_str().unwrap_or_default();
        if prior.is_empty() {
            Some(down.peer.clone())
        } else {
            HeaderValue::from_str(&format!("{}, {peer}", prior.join(", "))).ok()
        }
    } else {
        if headers.contains_key(header::FORWARDED) {
            headers.remove(header::FORWARDED);
        }
        if headers.contains_key(&X_REAL_IP) {
            headers.remove(&X_REAL_IP);
        }
        Some(down.peer.clone())
    };
    if let Some(v) = chain {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !(down.trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(down.scheme));
    }
    if !(down.trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        match down.host.clone() {
            Some(h) => headers.insert(X_FORWARDED_HOST, h),
            None => headers.remove(&X_FORWARDED_HOST),
        };
    }
    let mut prefix = Vec::with_capacity(down.prefix.len() + 1);
    prefix.push(b'/');
    prefix.extend_from_slice(down.prefix.as_bytes());
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(prefix)) {
        headers.insert(X_FORWARDED_PREFIX, v);
    }
}

/// Turns the container's response into ours: hop-by-hop headers removed,
/// the body streamed while holding `guard`.
/// The connection goes back to the pool once the body has been read whole.
pub fn downstream_response(resp: Response<Incoming>, guard: ActivityGuard, checkout: Checkout) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    let mut guarded = GuardedBody {
        inner: body,
        _guard: guard,
        checkout,
    };
    guarded.note_end();
    Response::from_parts(parts, Body::new(guarded))
}

/// Splices an upgraded client connection to the upgraded container
/// connection, in the background, holding `guard` until both close.
pub fn splice_upgrade(
    client_side: hyper::upgrade::OnUpgrade,
    mut upstream: Response<Incoming>,
    guard: ActivityGuard,
) -> Response<Body> {
    let upstream_side = hyper::upgrade::on(&mut upstream);
    tokio::spawn(async move {
        let _guard = guard;
        let (client, container) = match tokio::try_join!(client_side, upstream_side) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut container = TokioIo::new(container);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut container).await {
            tracing::debug!(error = %e, "upgraded connection ended");
        }
    });
    let (parts, _) = upstream.into_parts();
    Response::from_parts(parts, Body::empty())
}

/// A response body that keeps its instance marked busy until it is done,
/// and releases its upstream connection for reuse once read to its end.
struct GuardedBody {
    inner: Incoming,
    _guard: ActivityGuard,
    checkout: Checkout,
}

impl GuardedBody {
    fn note_end(&mut self) {
        if hyper::body::Body::is_end_stream(&self.inner) {
            self.checkout.reusable = true;
        }
    }
}

impl hyper::body::Body for GuardedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => self.checkout.reusable = true,
            Poll::Ready(Some(Ok(_))) => self.note_end(),
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_including_those_connection_names() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn ipv4_mapped_cidrs_trust_the_ipv4_peers_they_name() {
        let nets = ["::ffff:127.0.0.1", "::ffff:10.0.0.0/104", "::1/128", "::/0"].map(|n| {
            n.parse()
                .unwrap_or_else(|_| ipnet::IpNet::from(n.parse::<std::net::IpAddr>().unwrap()))
        });
        let trusted = TrustedProxies::new(nets.to_vec());
        for peer in [
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "10.1.2.3",
            "::ffff:10.1.2.3",
            "::1",
            "2001:db8::1",
        ] {
            assert!(trusted.contains(peer.parse().unwrap()), "{peer} is not trusted");
        }
        for peer in ["127.0.0.2", "::ffff:11.0.0.1", "11.0.0.1"] {
            assert!(!trusted.contains(peer.parse().unwrap()), "{peer} is trusted");
        }
    }

    #[test]
    fn upgrade_requests_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
        h.remove(header::CONNECTION);
        assert!(!is_upgrade(&h));
    }
}
