//! Stopping: the one way an instance ends (SPEC §4 "One container per space
//! at a time").
//!
//! Every path — idle reaping, `DELETE /substrate/v1/instances/…`, a reload
//! that changed the definition, a forced space delete, a container found
//! dead — goes through [`Activator::stop`]. The key's slot turns `stopping`
//! (and its record too, flushed) before the engine is asked to stop the
//! container, and is cleared only once the container is gone; requests for
//! the key wait on it meanwhile, and a start that wants one of its spaces
//! read-write waits too. Stopping a key that is still starting cancels the
//! start: its container is removed as soon as it exists.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use super::activator::Slot;
use super::{Activator, Clock, Instance};
use crate::store::InstanceState;

/// Why an instance is being stopped; logged, and `Idle` re-checks idleness
/// under the slot lock so a request that just arrived keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Asked for through the API (or a forced space delete).
    Requested,
    /// Idle for its idle timeout.
    Idle,
    /// Its resolved definition changed on reload.
    DefinitionChanged,
    /// Its container is no longer running (it exited or was killed).
    ContainerGone,
}

/// What [`Activator::stop`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// A ready instance was stopped (or a stop already in progress finished).
    Stopped,
    /// A start in progress was cancelled; its container, if it got one, is
    /// removed.
    CancelledStart,
    /// Nothing to stop: no such instance, or (for `ContainerGone` and
    /// `Idle`) it is no longer the one meant.
    NotFound,
}

/// A key's `stopping` slot, cleared (and its waiters told) on drop.
struct StoppingSlot<'a> {
    activator: &'a Activator,
    key: &'a str,
    done: watch::Sender<bool>,
}

impl Drop for StoppingSlot<'_> {
    fn drop(&mut self) {
        {
            let mut slots = self.activator.slots_write();
            if matches!(slots.get(self.key), Some(Slot::Stopping { .. })) {
                slots.remove(self.key);
            }
        }
        let _ = self.done.send(true);
    }
}

/// What the slot table told a stop to do.
enum Step {
    Stop(Arc<Instance>, watch::Sender<bool>),
    AwaitStart(watch::Receiver<Option<super::activator::StartResult>>),
    AwaitStop(watch::Receiver<bool>),
}

impl Activator {
    /// Stops the instance of `key` as asked (API, forced space delete) and
    /// waits until its container is gone; cancels a start in progress.
    pub async fn stop(&self, key: &str) -> StopOutcome {
        self.stop_for(key, StopReason::Requested, None).await
    }

    /// Stops the instance of `key` for `reason` and waits until its
    /// container is gone. `container`: stop only if the instance still runs
    /// that container (a stale observation must not stop its successor).
    pub async fn stop_for(&self, key: &str, reason: StopReason, container: Option<&str>) -> StopOutcome {
        let step = {
            let mut slots = self.slots_write();
            match slots.get(key) {
                Some(Slot::Ready(i)) => {
                    let wrong_container = container.is_some_and(|c| c != i.container_id);
                    let busy = reason == StopReason::Idle && !self.is_idle(i);
                    if wrong_container || busy {
                        return StopOutcome::NotFound;
                    }
                    let instance = i.clone();
                    let (tx, rx) = watch::channel(false);
                    slots.insert(
                        key.to_owned(),
                        Slot::Stopping {
                            done: rx,
                            rw_spaces: instance.rw_spaces.clone(),
                        },
                    );
                    Step::Stop(instance, tx)
                }
                Some(Slot::Starting(p)) if container.is_none() && reason != StopReason::Idle => {
                    p.cancel.cancel();
                    Step::AwaitStart(p.outcome.clone())
                }
                Some(Slot::Stopping { done, .. }) if container.is_none() => Step::AwaitStop(done.clone()),
                _ => return StopOutcome::NotFound,
            }
        };
        match step {
            Step::Stop(instance, done) => {
                // On a task of its own: a caller that goes away (a request
                // whose client hung up) must not leave the key `stopping`
                // for good, with its container half-stopped.
                match self.this.upgrade() {
                    Some(this) => {
                        let key = key.to_owned();
                        let stopping =
                            tokio::spawn(async move { this.finish_stop(&key, &instance, reason, done).await });
                        if let Err(e) = stopping.await {
                            tracing::error!(error = %e, "a stop failed");
                        }
                    }
                    None => self.finish_stop(key, &instance, reason, done).await,
                }
                StopOutcome::Stopped
            }
            Step::AwaitStart(mut outcome) => {
                let _ = outcome.wait_for(Option::is_some).await;
                StopOutcome::CancelledStart
            }
            Step::AwaitStop(mut done) => {
                let _ = done.wait_for(|d| *d).await;
                StopOutcome::Stopped
            }
        }
    }

    /// Stops `instance`'s container, then clears the key's `stopping` slot
    /// and tells those waiting on it — also if the stop panics or its task
    /// is cancelled, so that no request waits on the key for good (the
    /// record, still `stopping`, has the next start's reconciliation remove
    /// a container left behind).
    async fn finish_stop(&self, key: &str, instance: &Instance, reason: StopReason, done: watch::Sender<bool>) {
        let _clear = StoppingSlot {
            activator: self,
            key,
            done,
        };
        self.stop_container(instance, reason).await;
    }

    /// Records `stopping`, stops and removes the container, drops the
    /// record. When the engine cannot remove it, the `stopping` record stays
    /// so the next reconciliation removes the container.
    async fn stop_container(&self, instance: &Instance, reason: StopReason) {
        tracing::info!(instance = %instance.key, container = %instance.container_name, ?reason, "stopping instance");
        if let Ok(Some(mut record)) = self.store.instance(&instance.key) {
            record.state = InstanceState::Stopping;
            record.last_request_at = self.last_request_at(instance);
            if let Err(e) = self.put_record(&instance.key, &record).await {
                tracing::warn!(instance = %instance.key, error = %e, "could not record the stop");
            }
        }
        if instance.is_paused() {
            // A paused process cannot take SIGTERM's grace period.
            let _transition = instance.pause_lock.lock().await;
            if let Err(e) = self.engine.unpause(&instance.container_id).await {
                tracing::debug!(container = %instance.container_name, error = %e, "unpause before stop failed");
            }
            instance.paused.store(false, Ordering::Release);
        }
        match self.engine.remove(&instance.container_id).await {
            Ok(()) => self.drop_record(&instance.key).await,
            Err(e) => {
                tracing::warn!(container = %instance.container_name, error = %e, "could not remove the container; it is removed at the next start")
            }
        }
    }

    /// A container of ours stopped running: stop (clean up) the instance it
    /// served, if it still serves it.
    pub async fn container_gone(&self, container_id: &str) {
        let found = self.instances().into_iter().find(|i| i.container_id == container_id);
        if let Some(instance) = found {
            self.stop_for(&instance.key, StopReason::ContainerGone, Some(container_id))
                .await;
        }
    }

    /// When `i` last served a request ([`Instance::last_request_at`]).
    pub fn last_request_at(&self, i: &Instance) -> crate::store::Millis {
        i.last_request_at(Clock(self.origin))
    }

    fn is_idle(&self, i: &Instance) -> bool {
        let Some(timeout) = i.idle_timeout else { return false };
        let now = Clock(self.origin).now();
        i.open.load(Ordering::Relaxed) == 0
            && now.saturating_sub(i.last_activity.load(Ordering::Relaxed)) >= timeout.as_millis() as u64
    }

    /// How long until `i` is reaped if nothing happens; `None`: never (no
    /// idle timeout). Zero while it is busy counts as its full timeout.
    pub fn idle_left(&self, i: &Instance) -> Option<std::time::Duration> {
        let timeout = i.idle_timeout?;
        if i.open.load(Ordering::Relaxed) > 0 {
            return Some(timeout);
        }
        let idle = Clock(self.origin)
            .now()
            .saturating_sub(i.last_activity.load(Ordering::Relaxed));
        Some(timeout.saturating_sub(std::time::Duration::from_millis(idle)))
    }

    /// Instances idle for longer than their timeout, with nothing open.
    pub fn idle_instances(&self) -> Vec<Arc<Instance>> {
        self.instances().into_iter().filter(|i| self.is_idle(i)).collect()
    }

    /// After a reload: stops instances whose resolved definition changed
    /// (or no longer resolves, or whose service was disabled).
    pub async fn stop_changed(&self) -> usize {
        let defs = self.catalog.current();
        let changed: Vec<Arc<Instance>> = self
            .instances()
            .into_iter()
            .filter(|instance| {
                let still = defs.services.get(&instance.service).is_some_and(|s| s.enabled)
                    && defs
                        .resolve(&instance.service, &instance.key, &instance.injected)
                        .is_ok_and(|spec| spec.digest() == instance.digest);
                !still
            })
            .collect();
        // Concurrently: each stop waits for its container's grace period.
        let stops = changed
            .iter()
            .map(|i| self.stop_for(&i.key, StopReason::DefinitionChanged, Some(&i.container_id)));
        futures_util::future::join_all(stops)
            .await
            .into_iter()
            .filter(|o| *o == StopOutcome::Stopped)
            .count()
    }
}
