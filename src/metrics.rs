//! Prometheus metrics, served at `GET /metrics`: requests, proxy latency,
//! cold-start durations, instances by state, spaces, copies, errors.
//!
//! One process-wide set of families: metrics are counted where things
//! happen (front door, activator, space layer) without threading a handle
//! through every layer. Gauges that describe state are set at scrape time.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// `2xx`, `3xx`, `4xx`, `5xx`.
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// `reflink` or `copy`.
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `start` (an instance could not be started) or `upstream` (a started
    /// instance failed a request).
    pub kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<StatusLabels, Counter>,
    /// The counters of `requests` for 1xx..5xx, looked up once: counting a
    /// request is then one atomic add, not a locked map lookup.
    requests_by_class: [Counter; 5],
    pub proxy_latency: Histogram,
    pub cold_start: Histogram,
    pub instances: Family<StateLabels, Gauge>,
    pub spaces: Gauge,
    pub copies: Family<MethodLabels, Counter>,
    pub copy_bytes: Family<MethodLabels, Counter>,
    pub errors: Family<KindLabels, Counter>,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("substrate");
    let requests: Family<StatusLabels, Counter> = Family::default();
    let requests_by_class =
        ["1xx", "2xx", "3xx", "4xx", "5xx"].map(|class| requests.get_or_create(&StatusLabels { class }).clone());
    let m = Metrics {
        requests,
        requests_by_class,
        proxy_latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 18)),
        cold_start: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
        instances: Family::default(),
        spaces: Gauge::default(),
        copies: Family::default(),
        copy_bytes: Family::default(),
        errors: Family::default(),
        registry: Registry::default(),
    };
    registry.register("requests", "Front-door requests by status class", m.requests.clone());
    registry.register(
        "proxy_latency_seconds",
        "Time from forwarding a request to the container's response head",
        m.proxy_latency.clone(),
    );
    registry.register(
        "cold_start_seconds",
        "Time to start an instance until it accepts connections",
        m.cold_start.clone(),
    );
    registry.register("instances", "Instances by state", m.instances.clone());
    registry.register(
        "spaces",
        "Space records (including deleted tombstones)",
        m.spaces.clone(),
    );
    registry.register(
        "copies",
        "Space copies (forks and checkpoints) by method",
        m.copies.clone(),
    );
    registry.register(
        "copy_bytes",
        "Bytes copied or cloned for spaces by method",
        m.copy_bytes.clone(),
    );
    registry.register("errors", "Failures by kind", m.errors.clone());
    Metrics { registry, ..m }
});

impl Metrics {
    /// Counts one front-door response.
    pub fn count_request(&self, status: u16) {
        let i = (status / 100).clamp(1, 5) as usize - 1;
        self.requests_by_class[i].inc();
    }
}

pub fn method_label(method: crate::store::CopyMethod) -> &'static str {
    match method {
        crate::store::CopyMethod::Reflink => "reflink",
        crate::store::CopyMethod::Copy => "copy",
    }
}

/// The text exposition of every metric.
pub fn render() -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &METRICS.registry) {
        out = format!("# encoding failed: {e}\n");
    }
    out
}
