//! Space operations that involve the instances using a space: a checkpoint
//! pauses them for the copy (SPEC §5 "Consistency"), a delete is refused
//! while they run unless forced, and a forced delete stops them first
//! (through [`Activator::stop`], the one way an instance ends). The admin
//! API and the home page both call these.

use std::sync::Arc;

use std::time::Instant;

use super::Activator;
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
    pub fn users_of(&self, space: &SpaceId) -> Result<Vec<String>, SpaceError> {
        let slots = self.slots_read();
        let mut keys: Vec<String> = self
            .store
            .uses_of(space)?
            .into_iter()
            .map(|u| u.viewspec)
            .filter(|k| slots.contains_key(k))
            .collect();
        keys.dedup();
        Ok(keys)
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
        let users: Vec<_> = self.users_of(space)?.iter().filter_map(|k| self.ready(k)).collect();
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
    /// use it, unless `force`, which stops them first. Returns the record
    /// and the keys stopped.
    pub async fn delete_space(
        &self,
        spaces: &Arc<Spaces>,
        space: &SpaceId,
        force: bool,
    ) -> Result<(SpaceRecord, Vec<String>), SpaceError> {
        let users = self.users_of(space)?;
        if !users.is_empty() {
            if !force {
                return Err(SpaceError::InUse {
                    space: space.clone(),
                    uses: users.join(", "),
                });
            }
            let stops = users.iter().map(|key| self.stop(key));
            futures_util::future::join_all(stops).await;
        }
        Ok((spaces.delete(space).await?, users))
    }
}
