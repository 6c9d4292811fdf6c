//! Spaces: directory trees owned by Substrate that can be created,
//! checkpointed, forked, renamed and deleted (SPEC §5).
//!
//! Terms: a space's **tip** is its live tree (`<data>/spaces/<id>/tree`); a
//! **checkpoint** is an immutable copy of a tip (`<data>/checkpoints/<id>/tree`),
//! chained to the previous checkpoint of the same space; a **fork** is a new
//! space copied from a tip or a checkpoint.
//!
//! Crash safety: every copy is made under `<data>/staging/`, synced, then
//! renamed into place; only then is the record written and flushed, and only
//! after that does the caller get an answer. A crash before the record leaves
//! a tree without a record, which start-up removes ([`crate::datadir`]).
//! Deletion goes the other way: the record is marked deleted (and its alias
//! slots dropped) first, then the tree is moved to `staging/` and removed. A
//! deleted space keeps its record as a tombstone so lineage stays whole.
//!
//! A checkpoint is taken in two steps so that writers paused for it wait only
//! for the copy: [`Spaces::checkpoint_copy`] copies the tip into `staging/`,
//! [`StagedCheckpoint::publish`] syncs, renames and records it. What a copy
//! keeps is [`copy`]'s business.
//!
//! Fail points: with the environment variable `SUBSTRATE_FAIL_AT` set to one
//! of `copied`, `renamed` or `marked`, the process aborts at that step — the
//! crash tests use it to stop at each step deterministically.

pub mod copy;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;

use crate::datadir::DataDir;
use crate::ids::{CheckpointId, SpaceId};
use crate::store::{
    now_millis, AliasBinding, CheckpointRecord, CopyMethod, ForkedFrom, SpaceOrigin, SpaceRecord, Store, StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error("no space {0}")]
    UnknownSpace(SpaceId),
    #[error("space {0} was deleted")]
    Deleted(SpaceId),
    #[error("no checkpoint {0}")]
    UnknownCheckpoint(CheckpointId),
    #[error("checkpoint {checkpoint} is not a checkpoint of {space}")]
    WrongSpace { space: SpaceId, checkpoint: CheckpointId },
    #[error("space {space} is in use by {uses}; stop those instances first or delete with force")]
    InUse { space: SpaceId, uses: String },
    #[error("copying {what} failed: {source}")]
    Copy { what: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl SpaceError {
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            SpaceError::UnknownSpace(_) | SpaceError::UnknownCheckpoint(_) => StatusCode::NOT_FOUND,
            SpaceError::Deleted(_) => StatusCode::GONE,
            SpaceError::WrongSpace { .. } => StatusCode::BAD_REQUEST,
            SpaceError::InUse { .. } => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SpaceError::UnknownSpace(_) | SpaceError::UnknownCheckpoint(_) => "not_found",
            SpaceError::Deleted(_) => "gone",
            SpaceError::WrongSpace { .. } => "bad_request",
            SpaceError::InUse { .. } => "in_use",
            _ => "internal",
        }
    }
}

/// What to fork: `sp-X` (its tip), `sp-X@ckpt-Y` or `ckpt-Y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForkSource {
    Tip(SpaceId),
    Checkpoint {
        space: Option<SpaceId>,
        checkpoint: CheckpointId,
    },
}

impl FromStr for ForkSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some((space, ckpt)) = s.split_once('@') {
            return Ok(ForkSource::Checkpoint {
                space: Some(space.parse().map_err(|e: crate::ids::IdError| e.to_string())?),
                checkpoint: ckpt.parse().map_err(|e: crate::ids::IdError| e.to_string())?,
            });
        }
        if s.starts_with(CheckpointId::PREFIX) {
            return Ok(ForkSource::Checkpoint {
                space: None,
                checkpoint: s.parse().map_err(|e: crate::ids::IdError| e.to_string())?,
            });
        }
        Ok(ForkSource::Tip(
            s.parse().map_err(|e: crate::ids::IdError| e.to_string())?,
        ))
    }
}

/// A fork and how its tree was copied.
#[derive(Debug, Clone, Serialize)]
pub struct Forked {
    pub space: SpaceRecord,
    pub method: CopyMethod,
    /// What the copy did, with what it could not keep.
    pub copy: copy::CopyStats,
}

/// A checkpoint copied into `staging/` but not yet durable, renamed or
/// recorded (see [`Spaces::checkpoint_copy`]). Dropped unpublished, its
/// copy is removed.
pub struct StagedCheckpoint {
    spaces: Arc<Spaces>,
    id: CheckpointId,
    space: SpaceId,
    message: Option<String>,
    /// The staged object directory; `None` once published or removed.
    staged: Option<PathBuf>,
    stats: copy::CopyStats,
    /// When the copy was made: the moment the checkpoint stands for.
    copied_at: crate::store::Millis,
}

impl StagedCheckpoint {
    /// Makes the copy durable (one `syncfs`), renames it into
    /// `checkpoints/`, then writes and flushes the record, chained to the
    /// space's latest checkpoint at that moment.
    pub async fn publish(mut self) -> Result<Checkpointed, SpaceError> {
        let Some(staged) = self.staged.take() else {
            return Err(SpaceError::Internal("a staged checkpoint was published twice".into()));
        };
        let this = self.spaces.clone();
        let (id, space, message, stats, created_at) = (
            self.id.clone(),
            self.space.clone(),
            self.message.take(),
            std::mem::take(&mut self.stats),
            self.copied_at,
        );
        blocking(move || {
            if let Err(e) = this.publish(&staged, this.data.checkpoints().join(id.as_str())) {
                let _ = std::fs::remove_dir_all(&staged);
                return Err(e);
            }
            let parent = this.store.checkpoints_of(&space)?.last().map(|c| c.id.clone());
            let record = CheckpointRecord {
                id,
                space,
                parent,
                message,
                created_at,
                method: this.method,
            };
            this.store.put_checkpoint(&record)?;
            Ok(Checkpointed {
                checkpoint: record,
                method: this.method,
                copy: stats,
            })
        })
        .await
    }
}

impl Drop for StagedCheckpoint {
    fn drop(&mut self) {
        if let Some(staged) = self.staged.take() {
            let remove = move || {
                if let Err(e) = std::fs::remove_dir_all(&staged) {
                    tracing::warn!(path = %staged.display(), error = %e, "could not remove an unpublished checkpoint");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(remove)),
                Err(_) => remove(),
            }
        }
    }
}

/// A checkpoint and how its tree was copied.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpointed {
    pub checkpoint: CheckpointRecord,
    pub method: CopyMethod,
    /// What the copy did, with what it could not keep.
    pub copy: copy::CopyStats,
}

pub struct Spaces {
    data: DataDir,
    store: Store,
    method: CopyMethod,
}

fn fail_point(step: &str) {
    if std::env::var("SUBSTRATE_FAIL_AT").is_ok_and(|v| v == step) {
        eprintln!("fail point {step}: aborting");
        std::process::abort();
    }
}

impl Spaces {
    /// Probes the data directory's copy method once.
    pub fn new(data: DataDir, store: Store) -> Arc<Self> {
        let method = copy::probe(&data.staging());
        tracing::info!(method = ?method, staging = %data.staging().display(), "space copy method");
        Arc::new(Self { data, store, method })
    }

    pub fn method(&self) -> CopyMethod {
        self.method
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A space's live tree.
    pub fn tree(&self, id: &SpaceId) -> PathBuf {
        self.data.space_tree(id)
    }

    /// The record of a live (not deleted) space.
    pub fn require_live(&self, id: &SpaceId) -> Result<SpaceRecord, SpaceError> {
        match self.store.space(id)? {
            None => Err(SpaceError::UnknownSpace(id.clone())),
            Some(r) if r.deleted => Err(SpaceError::Deleted(id.clone())),
            Some(r) => Ok(r),
        }
    }

    /// Records that `slot` of instance `key` uses `space` (once).
    pub async fn bind_slot(&self, key: &str, slot: &str, space: &SpaceId) -> Result<(), SpaceError> {
        if self.store.alias(key, slot)?.is_some_and(|a| &a.space == space) {
            return Ok(());
        }
        let (store, key, slot, space) = (self.store.clone(), key.to_owned(), slot.to_owned(), space.clone());
        blocking(move || match store.bind_alias(&key, &slot, &space)? {
            AliasBinding::Bound => Ok(()),
            AliasBinding::NoSuchSpace => Err(SpaceError::UnknownSpace(space)),
            AliasBinding::SpaceDeleted => Err(SpaceError::Deleted(space)),
        })
        .await
    }

    /// A new empty space.
    pub async fn create(
        self: &Arc<Self>,
        origin: SpaceOrigin,
        name: Option<String>,
    ) -> Result<SpaceRecord, SpaceError> {
        let this = self.clone();
        blocking(move || {
            let id = SpaceId::generate();
            let staged = this.data.staging().join(id.as_str());
            let io = |source| SpaceError::Copy {
                what: format!("new space {id}"),
                source,
            };
            std::fs::create_dir_all(staged.join("tree")).map_err(io)?;
            this.publish(&staged, this.data.spaces().join(id.as_str()))?;
            let record = SpaceRecord {
                id: id.clone(),
                created_at: now_millis(),
                forked_from: None,
                name,
                size_hint: 0,
                origin,
                deleted: false,
            };
            this.store.put_space(&record)?;
            Ok(record)
        })
        .await
    }

    /// Syncs a finished copy and renames it into place: one `syncfs` makes
    /// the whole staged tree durable, then an fsync of the target's parent
    /// makes the rename durable before the caller writes the record.
    fn publish(&self, staged: &std::path::Path, target: PathBuf) -> Result<(), SpaceError> {
        let io = |source| SpaceError::Copy {
            what: target.display().to_string(),
            source,
        };
        copy::sync_filesystem(staged).map_err(io)?;
        fail_point("copied");
        std::fs::rename(staged, &target).map_err(io)?;
        if let Some(parent) = target.parent() {
            copy::sync_dir(parent).map_err(io)?;
        }
        fail_point("renamed");
        Ok(())
    }

    /// Copies `source_tree` to a staged object named `id`; returns the stats.
    fn stage_copy(&self, source_tree: &std::path::Path, id: &str) -> Result<(PathBuf, copy::CopyStats), SpaceError> {
        let staged = self.data.staging().join(id);
        let io = |source| SpaceError::Copy {
            what: format!("{} into {id}", source_tree.display()),
            source,
        };
        std::fs::create_dir_all(&staged).map_err(io)?;
        match copy::copy_tree(source_tree, &staged.join("tree"), self.method) {
            Ok(stats) => {
                use crate::metrics::{method_label, MethodLabels, METRICS};
                let labels = MethodLabels {
                    method: method_label(self.method),
                };
                METRICS.copies.get_or_create(&labels).inc();
                METRICS.copy_bytes.get_or_create(&labels).inc_by(stats.bytes);
                Ok((staged, stats))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staged);
                Err(io(e))
            }
        }
    }

    /// Forks a tip or a checkpoint into a new space.
    pub async fn fork(
        self: &Arc<Self>,
        source: &ForkSource,
        origin: SpaceOrigin,
        name: Option<String>,
    ) -> Result<Forked, SpaceError> {
        let this = self.clone();
        let source = source.clone();
        blocking(move || {
            let (tree, forked_from) = match &source {
                ForkSource::Tip(space) => {
                    this.require_live(space)?;
                    (
                        this.data.space_tree(space),
                        ForkedFrom {
                            space: Some(space.clone()),
                            checkpoint: None,
                        },
                    )
                }
                ForkSource::Checkpoint { space, checkpoint } => {
                    let c = this
                        .store
                        .checkpoint(checkpoint)?
                        .ok_or_else(|| SpaceError::UnknownCheckpoint(checkpoint.clone()))?;
                    if let Some(s) = space.as_ref().filter(|s| **s != c.space) {
                        return Err(SpaceError::WrongSpace {
                            space: s.clone(),
                            checkpoint: checkpoint.clone(),
                        });
                    }
                    (
                        this.data.checkpoint_tree(checkpoint),
                        ForkedFrom {
                            space: Some(c.space),
                            checkpoint: Some(checkpoint.clone()),
                        },
                    )
                }
            };
            let id = SpaceId::generate();
            let (staged, stats) = this.stage_copy(&tree, id.as_str())?;
            this.publish(&staged, this.data.spaces().join(id.as_str()))?;
            let record = SpaceRecord {
                id,
                created_at: now_millis(),
                forked_from: Some(forked_from),
                name,
                size_hint: stats.bytes,
                origin,
                deleted: false,
            };
            this.store.put_space(&record)?;
            Ok(Forked {
                space: record,
                method: this.method,
                copy: stats,
            })
        })
        .await
    }

    /// An immutable copy of the space's tip, copied, made durable and
    /// recorded. The caller pauses writers; to pause them only while the
    /// tree is copied, use [`Spaces::checkpoint_copy`] and
    /// [`StagedCheckpoint::publish`] instead.
    pub async fn checkpoint(
        self: &Arc<Self>,
        space: &SpaceId,
        message: Option<String>,
    ) -> Result<Checkpointed, SpaceError> {
        self.checkpoint_copy(space, message).await?.publish().await
    }

    /// The part of a checkpoint that reads the space: copies its tip into
    /// `staging/`. Writers may resume as soon as this returns; the copy is
    /// neither durable nor visible until [`StagedCheckpoint::publish`].
    pub async fn checkpoint_copy(
        self: &Arc<Self>,
        space: &SpaceId,
        message: Option<String>,
    ) -> Result<StagedCheckpoint, SpaceError> {
        let this = self.clone();
        let space = space.clone();
        blocking(move || {
            this.require_live(&space)?;
            let id = CheckpointId::generate();
            let (staged, stats) = this.stage_copy(&this.data.space_tree(&space), id.as_str())?;
            Ok(StagedCheckpoint {
                spaces: this,
                id,
                space,
                message,
                staged: Some(staged),
                stats,
                copied_at: now_millis(),
            })
        })
        .await
    }

    pub async fn rename(&self, space: &SpaceId, name: Option<String>) -> Result<SpaceRecord, SpaceError> {
        let mut record = self.require_live(space)?;
        record.name = name;
        let (store, r) = (self.store.clone(), record.clone());
        blocking(move || Ok(store.put_space(&r)?)).await?;
        Ok(record)
    }

    /// Deletes a space's tree, keeping its record as a tombstone. The caller
    /// has made sure no running instance uses it.
    pub async fn delete(self: &Arc<Self>, space: &SpaceId) -> Result<SpaceRecord, SpaceError> {
        let this = self.clone();
        let space = space.clone();
        blocking(move || {
            let mut record = this.require_live(&space)?;
            record.deleted = true;
            this.store.mark_space_deleted(&record)?;
            fail_point("marked");
            let dir = this.data.spaces().join(space.as_str());
            let trash = this.data.staging().join(format!("deleted-{space}"));
            let io = |source| SpaceError::Copy {
                what: format!("removing {space}"),
                source,
            };
            match std::fs::rename(&dir, &trash) {
                Ok(()) => std::fs::remove_dir_all(&trash).map_err(io)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
            Ok(record)
        })
        .await
    }
}

impl Spaces {
    /// Deletes spaces made by a redirect whose URL was never requested: no
    /// alias slot uses them, they are still empty and older than `ttl`.
    /// Spaces created through the API are never collected.
    pub async fn collect_abandoned(self: &Arc<Self>, ttl: std::time::Duration) -> Result<Vec<SpaceId>, SpaceError> {
        let cutoff = now_millis().saturating_sub(ttl.as_millis() as u64);
        let mut collected = Vec::new();
        for space in self.store.list_spaces()? {
            let abandoned = space.origin == SpaceOrigin::Redirect
                && !space.deleted
                && space.created_at <= cutoff
                && self.store.uses_of(&space.id)?.is_empty()
                && std::fs::read_dir(self.tree(&space.id)).is_ok_and(|mut d| d.next().is_none());
            if abandoned {
                self.delete(&space.id).await?;
                tracing::info!(space = %space.id, "collected an abandoned space");
                collected.push(space.id);
            }
        }
        Ok(collected)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SpaceError> + Send + 'static,
) -> Result<T, SpaceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SpaceError::Internal(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[test]
    fn an_unpublished_checkpoint_leaves_nothing_and_published_ones_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::new(tmp.path().join("data"));
        data.create().unwrap();
        let store = Store::open(&data.db(), &StoreOptions::default()).unwrap();
        let spaces = Spaces::new(data.clone(), store.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (space, staged) = rt.block_on(async {
            let space = spaces.create(SpaceOrigin::Api, None).await.unwrap();
            std::fs::write(data.space_tree(&space.id).join("a.txt"), "a").unwrap();
            let staged = spaces.checkpoint_copy(&space.id, None).await.unwrap();
            (space, staged)
        });
        let staged_entries = || std::fs::read_dir(data.staging()).unwrap().count();
        assert_eq!(staged_entries(), 1);
        // Outside a runtime the copy is removed at once.
        drop(staged);
        assert_eq!(staged_entries(), 0);
        assert!(store.checkpoints_of(&space.id).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(data.checkpoints()).unwrap().count(), 0);

        let (first, second) = rt.block_on(async {
            let first = spaces.checkpoint(&space.id, Some("1".into())).await.unwrap();
            let staged = spaces.checkpoint_copy(&space.id, Some("2".into())).await.unwrap();
            (first, staged.publish().await.unwrap())
        });
        assert_eq!(first.checkpoint.parent, None);
        assert_eq!(second.checkpoint.parent, Some(first.checkpoint.id.clone()));
        assert_eq!(second.copy.files, 1);
        let copied = data.checkpoint_tree(&second.checkpoint.id).join("a.txt");
        assert_eq!(std::fs::read(copied).unwrap(), b"a");
        assert_eq!(staged_entries(), 0);
    }

    #[test]
    fn fork_sources_parse_strictly() {
        let s = SpaceId::generate();
        let c = CheckpointId::generate();
        assert_eq!(s.as_str().parse::<ForkSource>(), Ok(ForkSource::Tip(s.clone())));
        assert_eq!(
            format!("{s}@{c}").parse::<ForkSource>(),
            Ok(ForkSource::Checkpoint {
                space: Some(s.clone()),
                checkpoint: c.clone()
            })
        );
        assert_eq!(
            c.as_str().parse::<ForkSource>(),
            Ok(ForkSource::Checkpoint {
                space: None,
                checkpoint: c.clone()
            })
        );
        for bad in ["sp-../../etc", "", "/etc", "ckpt-x", &format!("{s}@{s}")] {
            assert!(bad.parse::<ForkSource>().is_err(), "{bad}");
        }
    }
}
