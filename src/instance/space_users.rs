//! Space operations that involve the instances using a space: a checkpoint
//! pauses them for the copy (SPEC §5 "Consistency"), a delete is refused
//! while they run unless forced, and a forced delete stops them first
//! (through [`Activator::stop`], the one way an instance ends). The admin
//! API and the home page both call these.
//!
//! A space's **users** are the live instances (starting, ready or stopping)
//! whose key names it. While a delete is under way the space is marked
//! deleting in the activator, so no start mounts it meanwhile — not even one
//! that was waiting for a user's stop to finish.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::activator::Slot;
use super::{spaces_of, Activator};
use crate::ids::SpaceId;
use crate::space::{Checkpointed, SpaceError, Spaces};
use crate::store::SpaceRecord;

/// A checkpoint made by [`Activator::checkpoint_space`].
pub struct SpaceCheckpoint {
    pub done: Checkpointed,
    /// Containers paused for the copy (an instance already paused while
    /// idle is not counted).
    pub paused: usize,
    /// How long they were paused, from the first pause to the last unpause.
    pub paused_ms: f64,
}

impl Activator {
    /// Live instances (starting, ready or stopping) whose viewspec uses
    /// `space`, by key.
    pub fn users_of(&self, space: &SpaceId) -> Vec<String> {
        users_in(&self.slots_read(), space)
    }

    /// Checkpoints `space`, pausing the containers of its ready users for
    /// the copy when `pause`. They resume as soon as the staged copy is
    /// made; making it durable and recording it happen after (the staged
    /// copy no longer reads the space).
    pub async fn checkpoint_space(
        &self,
        spaces: &Arc<Spaces>,
        space: &SpaceId,
        message: Option<String>,
        pause: bool,
    ) -> Result<SpaceCheckpoint, SpaceError> {
        // Each user's pause lock is held for the copy: an instance paused
        // while idle stays paused (no extra pause), and no request resumes
        // one mid-copy.
        let users: Vec<_> = self.users_of(space).iter().filter_map(|k| self.ready(k)).collect();
        let began = Instant::now();
        let mut locks = Vec::new();
        let mut paused = Vec::new();
        if pause {
            for instance in &users {
                locks.push(instance.pause_lock.lock().await);
                if instance.is_paused() {
                    continue;
                }
                match self.engine.pause(&instance.container_id).await {
                    Ok(()) => paused.push(instance.container_id.clone()),
                    Err(e) => tracing::warn!(instance = %instance.key, error = %e, "could not pause for a checkpoint"),
                }
            }
        }
        let staged = spaces.checkpoint_copy(space, message).await;
        for container in &paused {
            if let Err(e) = self.engine.unpause(container).await {
                tracing::error!(container = %container, error = %e, "could not unpause after a checkpoint");
            }
        }
        drop(locks);
        let paused_ms = if paused.is_empty() {
            0.0
        } else {
            began.elapsed().as_secs_f64() * 1000.0
        };
        Ok(SpaceCheckpoint {
            done: staged?.publish().await?,
            paused: paused.len(),
            paused_ms,
        })
    }

    /// Deletes `space`: refused with [`SpaceError::InUse`] while instances
    /// use it, unless `force`, which stops them first — waiting for those
    /// already stopping and cancelling those starting. From the moment the
    /// users are known until the space is marked deleted, no start mounts
    /// it. Returns the record and the keys stopped.
    pub async fn delete_space(
        &self,
        spaces: &Arc<Spaces>,
        space: &SpaceId,
        force: bool,
    ) -> Result<(SpaceRecord, Vec<String>), SpaceError> {
        spaces.require_live(space)?;
        let (users, _deleting) = {
            let slots = self.slots_read();
            let users = users_in(&slots, space);
            if !users.is_empty() && !force {
                return Err(SpaceError::InUse {
                    space: space.clone(),
                    uses: users.join(", "),
                });
            }
            (users, Deleting::enter(self, space))
        };
        let stops = users.iter().map(|key| self.stop(key));
        futures_util::future::join_all(stops).await;
        Ok((spaces.delete(space).await?, users))
    }
}

/// The keys in `slots` whose viewspec names `space`, sorted.
fn users_in(slots: &HashMap<String, Slot>, space: &SpaceId) -> Vec<String> {
    let mut keys: Vec<String> = slots
        .keys()
        .filter(|key| spaces_of(key).iter().any(|(s, _)| s == space))
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// A space marked deleting in the activator for as long as it lives.
struct Deleting<'a> {
    activator: &'a Activator,
    space: SpaceId,
}

impl<'a> Deleting<'a> {
    fn enter(activator: &'a Activator, space: &SpaceId) -> Self {
        let mut deleting = activator.deleting_spaces.lock().unwrap_or_else(|p| p.into_inner());
        *deleting.entry(space.clone()).or_default() += 1;
        Self {
            activator,
            space: space.clone(),
        }
    }
}

impl Drop for Deleting<'_> {
    fn drop(&mut self) {
        let mut deleting = self.activator.deleting_spaces.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = deleting.get_mut(&self.space) {
            *n -= 1;
            if *n == 0 {
                deleting.remove(&self.space);
            }
        }
    }
}
