//! The paused tier of idle instances (SPEC §4 "Idle tiers"), like Sablier's
//! pause strategy: an instance with nothing open for its `pause_after` has
//! its container paused (`docker pause`); the next request resumes it and is
//! served at once, without a cold start. After its `idle_timeout` it is
//! stopped as before.
//!
//! A request never finds its container paused under it: it counts itself
//! open (its [`super::ActivityGuard`]) before it looks at the paused flag,
//! the pauser sets the flag before pausing and re-checks the open count
//! after, undoing the pause if a request slipped in; both hold the
//! instance's `pause_lock` while they change the container's state.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Activator, Clock, Instance};
use crate::store::InstanceState;

impl Activator {
    /// Whether `i` has been idle long enough to pause.
    fn due_for_pause(&self, i: &Instance) -> bool {
        let Some(after) = i.pause_after else { return false };
        let idle = Clock(self.origin)
            .now()
            .saturating_sub(i.last_activity.load(Ordering::Relaxed));
        !i.is_paused()
            && !i.cannot_pause.load(Ordering::Relaxed)
            && i.open.load(Ordering::Relaxed) == 0
            && idle >= after.as_millis() as u64
    }

    /// Pauses every ready instance idle for its `pause_after`.
    pub async fn pause_idle(&self) {
        let due: Vec<Arc<Instance>> = self.instances().into_iter().filter(|i| self.due_for_pause(i)).collect();
        for instance in due {
            self.pause(&instance).await;
        }
    }

    async fn pause(&self, i: &Arc<Instance>) {
        let _transition = i.pause_lock.lock().await;
        if !self.due_for_pause(i) {
            return;
        }
        i.paused.store(true, Ordering::Release);
        if let Err(e) = self.engine.pause(&i.container_id).await {
            if e.is_unsupported() {
                // Kept running until its idle timeout; not asked again.
                tracing::info!(instance = %i.key, error = %e, "idle: cannot be paused, kept running");
                i.cannot_pause.store(true, Ordering::Relaxed);
            } else {
                tracing::warn!(instance = %i.key, error = %e, "could not pause an idle instance");
            }
            i.paused.store(false, Ordering::Release);
            return;
        }
        if i.open.load(Ordering::Acquire) > 0 {
            // A request arrived meanwhile: it is waiting on the lock.
            self.unpause_locked(i).await;
            return;
        }
        tracing::info!(instance = %i.key, "idle: paused");
        self.record_state(i);
    }

    /// Resumes `i` if it is paused; requests call this after counting
    /// themselves open.
    pub async fn resume(&self, i: &Arc<Instance>) {
        if !i.is_paused() {
            return;
        }
        let _transition = i.pause_lock.lock().await;
        if i.is_paused() {
            self.unpause_locked(i).await;
            tracing::info!(instance = %i.key, "resumed");
            self.record_state(i);
        }
    }

    async fn unpause_locked(&self, i: &Instance) {
        if let Err(e) = self.engine.unpause(&i.container_id).await {
            tracing::warn!(instance = %i.key, error = %e, "could not unpause");
        }
        i.paused.store(false, Ordering::Release);
    }

    /// Writes the instance's record with its state (paused or ready) and
    /// its last request, in the background: the request that resumed it
    /// does not wait for the flush.
    ///
    /// The write takes the instance's `pause_lock` and reads the state then:
    /// a pause and a resume in quick succession cannot land their writes in
    /// the wrong order, which would leave a running container recorded
    /// paused (and re-attached paused after a restart).
    fn record_state(&self, i: &Arc<Instance>) {
        let store = self.store.clone();
        let i = i.clone();
        let clock = Clock(self.origin);
        tokio::spawn(async move {
            let _transition = i.pause_lock.lock().await;
            let state = if i.is_paused() {
                InstanceState::Paused
            } else {
                InstanceState::Ready
            };
            let last_request_at = i.last_request_at(clock);
            let key = i.key.clone();
            let written = tokio::task::spawn_blocking(move || {
                if let Ok(Some(mut record)) = store.instance(&key) {
                    if record.state != InstanceState::Stopping {
                        record.state = state;
                        record.last_request_at = last_request_at;
                        if let Err(e) = store.put_instance(&key, &record) {
                            tracing::warn!(instance = %key, error = %e, "could not record the paused state");
                        }
                    }
                }
            });
            let _ = written.await;
        });
    }
}
