//! Reconciliation at start (SPEC §4 "Restart"): the store's instance
//! records against the engine's containers of our namespace.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use super::activator::{idle_timeout, pause_after, Slot};
use super::{rw_spaces, Activator, Clock, Instance};
use crate::runtime::RuntimeError;
use crate::store::InstanceState;

impl Activator {
    /// Re-attaches what survived a daemon restart (SPEC §4 "Restart"):
    /// running containers of `ready` records are adopted as they are;
    /// records whose container is gone are dropped; containers of the
    /// namespace with no record are removed.
    pub async fn reconcile(&self) -> Result<ReconcileReport, RuntimeError> {
        let containers = self.engine.list().await?;
        let records = self.store.list_instances().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read instance records");
            Vec::new()
        });
        let defs = self.catalog.current();
        let mut report = ReconcileReport::default();
        let mut claimed = std::collections::HashSet::new();
        for (key, record) in records {
            let found = containers
                .iter()
                .find(|c| record.container_id.as_deref() == Some(c.id.as_str()) || c.name == record.container_name);
            let adoptable = match (found, record.state) {
                (Some(c), InstanceState::Ready | InstanceState::Paused) if c.running && c.address.is_some() => Some(c),
                _ => None,
            };
            let Some(c) = adoptable else {
                if let Some(c) = found {
                    claimed.insert(c.id.clone());
                    let _ = self.engine.remove(&c.id).await;
                }
                self.drop_record(&key).await;
                report.dropped.push(key);
                continue;
            };
            claimed.insert(c.id.clone());
            // Paused while idle (its record says so): it stays paused, and
            // the next request resumes it; a restart wakes no idle
            // container. Any other pause (a checkpoint a crash cut short)
            // is undone. A record that says paused of a container that is
            // not costs the next request a failed unpause, nothing more.
            let paused = record.state == InstanceState::Paused;
            if !paused {
                let _ = self.engine.unpause(&c.id).await;
            }
            let injected = match (
                crate::viewspec::Viewspec::parse(&key),
                defs.services.get(&record.service),
            ) {
                (Ok(v), Some(service)) => {
                    let origin = c
                        .labels
                        .get(crate::runtime::LABEL_ORIGIN)
                        .map(String::as_str)
                        .unwrap_or_default();
                    super::injection(&v, service, origin)
                }
                _ => serde_json::json!({}),
            };
            let (idle, pause, url_prefix) = match defs.resolve(&record.service, &key, &injected) {
                Ok(s) => (
                    idle_timeout(&s, self.settings.default_idle_timeout),
                    pause_after(&s, self.settings.default_pause_after),
                    s.url_prefix,
                ),
                Err(_) => (Some(self.settings.default_idle_timeout), None, String::new()),
            };
            let Some(ip) = c.address else { continue };
            // Its idle timers count from now; its last request stays the
            // recorded one until it serves another.
            let attached_at = Clock(self.origin).now();
            let instance = Arc::new(Instance {
                rw_spaces: rw_spaces(&key),
                key: key.clone(),
                service: record.service.clone(),
                container_id: c.id.clone(),
                container_name: c.name.clone(),
                addr: SocketAddr::new(ip, record.port),
                url_prefix,
                digest: record.definition_digest.clone(),
                idle_timeout: idle,
                pause_after: pause,
                injected,
                last_activity: AtomicU64::new(attached_at),
                recorded_last_request: Some((attached_at, record.last_request_at)),
                open: AtomicUsize::new(0),
                paused: std::sync::atomic::AtomicBool::new(paused),
                cannot_pause: Default::default(),
                pause_lock: Default::default(),
            });
            self.slots_write().insert(key.clone(), Slot::Ready(instance));
            report.reattached.push(key);
        }
        for c in containers.iter().filter(|c| !claimed.contains(&c.id)) {
            tracing::info!(container = %c.name, "removing a container of our namespace with no record");
            let _ = self.engine.remove(&c.id).await;
            report.removed.push(c.name.clone());
        }
        Ok(report)
    }
}

/// What [`Activator::reconcile`] did.
#[derive(Debug, Default)]
pub struct ReconcileReport {
    pub reattached: Vec<String>,
    pub dropped: Vec<String>,
    pub removed: Vec<String>,
}
