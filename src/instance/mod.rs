//! Instances and their lifecycle (SPEC §4 "Instances", "One container per
//! space at a time", "Idle tiers", "Restart").
//!
//! Terms: an **instance** is one container serving one canonical viewspec
//! (its **key**). Its lifecycle, as the activator's in-memory **slot** for
//! the key:
//!
//! ```text
//!   (none) ──ensure──▶ starting ──ready──▶ ready ──stop──▶ stopping ──▶ (none)
//!                         │                                  ▲
//!                         └──────── stop (cancels) ──────────┘
//! ```
//!
//! - [`activator`] turns "a request for key K" into a ready container: one
//!   start per key however many requests arrive; requests for a key that is
//!   stopping wait for the stop, then start anew.
//! - [`stop`] is the one way an instance ends — reaped, deleted through the
//!   API, restarted by a reload, its space force-deleted, or its container
//!   found dead. The slot is `stopping` until the container is gone, so no
//!   second container mounts the same space meanwhile.
//! - [`readiness`] waits until a fresh container accepts connections;
//!   [`reaper`] stops idle instances and follows the engine's events;
//!   [`reconcile`] re-attaches what survived a daemon restart.
//!
//! The store is the durable truth: a `starting` record is flushed before a
//! container is created, `ready` once it answers, `stopping` before it is
//! stopped; the slots are rebuilt from it at start.

pub mod activator;
pub mod pause;
pub mod readiness;
pub mod reaper;
pub mod reconcile;
pub mod space_users;
pub mod stop;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use activator::{Activator, ActivatorSettings, StartError};
pub use stop::StopOutcome;

use crate::ids::SpaceId;
use crate::runtime::Bind;

/// Time since the activator started, in milliseconds: cheap to store in an
/// atomic and compare.
#[derive(Clone, Copy)]
pub(crate) struct Clock(pub(crate) Instant);

impl Clock {
    pub(crate) fn now(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// A ready instance.
#[derive(Debug)]
pub struct Instance {
    pub key: String,
    pub service: String,
    pub container_id: String,
    pub container_name: String,
    pub addr: SocketAddr,
    /// Prepended to the forwarded path.
    pub url_prefix: String,
    pub digest: String,
    /// `None` never reaps.
    pub idle_timeout: Option<Duration>,
    /// Idle time before its container is paused; `None` never pauses.
    pub pause_after: Option<Duration>,
    /// What the definition was resolved with, to re-check it on reload.
    pub injected: serde_json::Value,
    /// Spaces its container mounts read-write: no other container may
    /// mount them read-write while it lives.
    pub rw_spaces: Vec<SpaceId>,
    /// Activator-clock milliseconds of the last request start or end.
    pub(crate) last_activity: AtomicU64,
    /// For an instance re-attached after a restart: its `last_activity` at
    /// re-attach and the record's `last_request_at` (wall-clock), which
    /// stays its last request until it serves another.
    pub(crate) recorded_last_request: Option<(u64, crate::store::Millis)>,
    /// Requests in flight plus upgraded connections open.
    pub(crate) open: AtomicUsize,
    /// Its container is paused (idle tier); read on every request.
    pub(crate) paused: std::sync::atomic::AtomicBool,
    /// The engine said it cannot pause this instance's container: the
    /// pause tier leaves it running until its idle timeout.
    pub(crate) cannot_pause: std::sync::atomic::AtomicBool,
    /// Serializes pausing and resuming (and a checkpoint's pause) so a
    /// request never finds its container paused under it.
    pub(crate) pause_lock: tokio::sync::Mutex<()>,
}

impl Instance {
    /// When it last served a request, in wall-clock milliseconds since the
    /// Unix epoch (as records keep times), read on the activator's `clock`:
    /// activity is tracked in memory on the daemon's monotonic clock, and
    /// written when a record is rewritten (pause, resume, stop).
    pub(crate) fn last_request_at(&self, clock: Clock) -> crate::store::Millis {
        let last = self.last_activity.load(Ordering::Relaxed);
        if let Some((attached_at, recorded)) = self.recorded_last_request {
            if last == attached_at && self.open.load(Ordering::Relaxed) == 0 {
                return recorded;
            }
        }
        let since = clock.now().saturating_sub(last);
        crate::store::now_millis().saturating_sub(since)
    }

    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Whether its container is paused while idle.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }
}

/// Held while a request or an upgraded connection uses an instance: such an
/// instance is never idle.
pub struct ActivityGuard {
    instance: Arc<Instance>,
    clock: Clock,
}

impl ActivityGuard {
    pub fn new(instance: Arc<Instance>, clock_origin: Instant) -> Self {
        let clock = Clock(clock_origin);
        instance.open.fetch_add(1, Ordering::Relaxed);
        instance.last_activity.store(clock.now(), Ordering::Relaxed);
        Self { instance, clock }
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.instance.last_activity.store(self.clock.now(), Ordering::Relaxed);
        self.instance.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a request knows about the instance it wants.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Canonical viewspec.
    pub key: String,
    pub service: String,
    /// Values unified into the instance template (environment, parameters).
    pub injected: serde_json::Value,
    /// Space directories to bind, already resolved.
    pub binds: Vec<Bind>,
    /// External origin of the request that started it (`ORIGIN`,
    /// `SUBSTRATE_ORIGIN`; also in `injected`), kept in a container label
    /// so a re-attached instance resolves its definition the same way.
    pub origin: String,
}

/// The spaces an instance key names: every parameter value that names a
/// space (`sp-X`, `sp-X:ro`, or a comma-separated list of them), with
/// whether it is mounted read-only. Derived from the key alone, so a
/// re-attached instance knows them too.
pub fn spaces_of(key: &str) -> Vec<(SpaceId, bool)> {
    let Ok(viewspec) = crate::viewspec::Viewspec::parse(key) else {
        return Vec::new();
    };
    viewspec
        .params()
        .iter()
        .flat_map(|(_, value)| value.split(','))
        .filter_map(|v| {
            let (id, read_only) = match v.strip_suffix(":ro") {
                Some(id) => (id, true),
                None => (v, false),
            };
            id.parse::<SpaceId>().ok().map(|id| (id, read_only))
        })
        .collect()
}

/// The spaces an instance key mounts read-write (see [`spaces_of`]).
pub fn rw_spaces(key: &str) -> Vec<SpaceId> {
    spaces_of(key)
        .into_iter()
        .filter(|(_, ro)| !ro)
        .map(|(id, _)| id)
        .collect()
}

/// What an instance's definition is unified with: the environment Substrate
/// always injects (SPEC §3: `SUBSTRATE_URL_PREFIX`, `SUBSTRATE_VIEWSPEC`,
/// `SUBSTRATE_ORIGIN` and `ORIGIN`, `SUBSTRATE_PARAM_<NAME>`) and the
/// parameter values of the viewspec. Derived from the viewspec and the
/// origin of the request that started the instance (kept in a container
/// label), so an instance's digest can be recomputed at any time.
pub fn injection(
    viewspec: &crate::viewspec::Viewspec,
    service: &crate::defs::ServiceDef,
    origin: &str,
) -> serde_json::Value {
    let key = viewspec.canonical();
    let mut env = serde_json::Map::new();
    env.insert("SUBSTRATE_ORIGIN".into(), origin.into());
    env.insert("ORIGIN".into(), origin.into());
    env.insert("SUBSTRATE_URL_PREFIX".into(), format!("/{key}").into());
    env.insert("SUBSTRATE_VIEWSPEC".into(), key.into());
    let mut params = serde_json::Map::new();
    // Every declared parameter gets a value: "" when the URL has none.
    for (name, def) in &service.parameters {
        let value = viewspec.param(name).unwrap_or_default();
        if def.kind == crate::defs::ParamType::String {
            let var = format!("SUBSTRATE_PARAM_{}", name.to_ascii_uppercase().replace('-', "_"));
            env.insert(var, value.into());
        }
        params.insert(name.clone(), serde_json::json!({ "value": value }));
    }
    serde_json::json!({ "environment": env, "parameters": params })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rw_spaces_are_the_writable_space_values() {
        let a = "sp-01J00000000000000000000000";
        let b = "sp-01J00000000000000000000001";
        let key = format!("notes;data={a};ref={b}:ro;x=plain");
        let found: Vec<String> = super::rw_spaces(&key).iter().map(|s| s.to_string()).collect();
        assert_eq!(found, vec![a.to_owned()]);
        let key = format!("multi;all={a}%2C{b}");
        assert_eq!(super::rw_spaces(&key).len(), 2, "{key}");
        assert!(super::rw_spaces("echo").is_empty());
    }
}
