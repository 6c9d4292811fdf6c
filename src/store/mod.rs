//! The durable state of a daemon: one sled database with typed trees (SPEC §6).
//!
//! Everything outside this module speaks in records and ids; keys and bytes
//! stay here. Each tree holds one record type, encoded by [`codec`]:
//!
//! | tree         | key                          | value               |
//! |--------------|------------------------------|---------------------|
//! | `meta`       | name                         | schema version, namespace, created at |
//! | `instances`  | canonical viewspec           | [`InstanceRecord`]  |
//! | `spaces`     | space id                     | [`SpaceRecord`]     |
//! | `checkpoints`| checkpoint id                | [`CheckpointRecord`]|
//! | `aliases`    | viewspec `\0` slot           | [`AliasRecord`]     |
//! | `space_uses` | space id `\0` viewspec `\0` slot | `()` (reverse index of `aliases`) |
//!
//! **Durability.** Every method that mutates returns only after sled has
//! flushed the change to disk, so whatever a caller acknowledges survives a
//! crash. Updates spanning trees run in one sled transaction.
//!
//! **Schema.** `meta/schema_version` says which layout the trees use; opening
//! an older database runs the steps in `migrations/` first, opening a newer
//! one fails.

pub mod codec;
#[path = "../../migrations/mod.rs"]
pub mod migrations;
pub mod records;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

pub use codec::CodecError;
pub use records::*;

use crate::ids::{CheckpointId, SpaceId};

/// The schema version this build writes.
pub fn current_schema_version() -> u32 {
    migrations::current_version()
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database at {path} is locked by another process")]
    Locked { path: PathBuf },
    #[error("no database at {0}")]
    Missing(PathBuf),
    #[error(
        "the database at {path} has schema version {found}, newer than this build supports ({supported}); \
         use a newer substrate binary"
    )]
    NewerSchema { path: PathBuf, found: u32, supported: u32 },
    #[error("the database at {path} has schema version {found}; this build needs {wanted}: run `substrate migrate`")]
    NeedsMigration { path: PathBuf, found: u32, wanted: u32 },
    #[error("corrupt record in tree {tree} at key {key:?}: {source}")]
    Corrupt {
        tree: &'static str,
        key: String,
        source: CodecError,
    },
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("migration to schema version {to} ({name}) failed: {message}")]
    Migration {
        to: u32,
        name: &'static str,
        message: String,
    },
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
}

/// What [`Store::bind_alias`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasBinding {
    Bound,
    /// No record of the space: nothing was bound.
    NoSuchSpace,
    /// The space is deleted: nothing was bound.
    SpaceDeleted,
}

/// The trees of the store, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    Meta,
    Instances,
    Spaces,
    Checkpoints,
    Aliases,
    SpaceUses,
}

impl Tree {
    pub const ALL: [Tree; 6] = [
        Tree::Meta,
        Tree::Instances,
        Tree::Spaces,
        Tree::Checkpoints,
        Tree::Aliases,
        Tree::SpaceUses,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Instances => "instances",
            Tree::Spaces => "spaces",
            Tree::Checkpoints => "checkpoints",
            Tree::Aliases => "aliases",
            Tree::SpaceUses => "space_uses",
        }
    }

    /// Decodes a value of this tree into JSON, for dumps.
    fn value_json(self, key: &str, bytes: &[u8]) -> Result<serde_json::Value, CodecError> {
        fn json<T: DeserializeOwned + Serialize>(b: &[u8]) -> Result<serde_json::Value, CodecError> {
            let v: T = codec::decode(b)?;
            serde_json::to_value(v).map_err(|e| CodecError::Decode(e.to_string()))
        }
        match self {
            Tree::Meta => match key {
                META_SCHEMA_VERSION => json::<u32>(bytes),
                META_NAMESPACE => json::<String>(bytes),
                _ => json::<u64>(bytes),
            },
            Tree::Instances => json::<InstanceRecord>(bytes),
            Tree::Spaces => json::<SpaceRecord>(bytes),
            Tree::Checkpoints => json::<CheckpointRecord>(bytes),
            Tree::Aliases => json::<AliasRecord>(bytes),
            Tree::SpaceUses => json::<()>(bytes),
        }
    }
}

const META_SCHEMA_VERSION: &str = "schema_version";
const META_NAMESPACE: &str = "namespace";
const META_CREATED_AT: &str = "created_at";

/// Separates the parts of composite keys; never valid inside a viewspec,
/// slot name or id.
const SEP: u8 = 0;

/// Tunables for opening the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled's page cache. sled defaults to 1 GiB; a daemon holding a few
    /// thousand small records needs a few MiB.
    pub cache_bytes: u64,
    /// Namespace recorded in `meta` when the database is created.
    pub namespace: String,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 8 * 1024 * 1024,
            namespace: "default".into(),
        }
    }
}

/// An entry read back without trusting it, for inspection.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub key: String,
    pub value: Result<serde_json::Value, String>,
}

/// Who uses a space: one slot of one viewspec.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SpaceUse {
    pub viewspec: String,
    pub slot: String,
}

/// The open database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    meta: sled::Tree,
    instances: sled::Tree,
    spaces: sled::Tree,
    checkpoints: sled::Tree,
    aliases: sled::Tree,
    space_uses: sled::Tree,
}

/// How long a held lock is waited out before it is reported. sled lets go of
/// its file lock from background threads a moment after the last handle of a
/// closed database is dropped; a daemon really holding it stays locked.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Opens sled, telling a held lock apart from other failures.
fn open_db(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_GRACE;
    loop {
        let result = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::LowSpace)
            .open();
        match result {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(io))
                if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") =>
            {
                if std::time::Instant::now() >= deadline {
                    return Err(StoreError::Locked { path: path.to_owned() });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(StoreError::Sled(e)),
        }
    }
}

impl Store {
    /// Opens (creating when missing) the database at `path` and brings its
    /// schema up to date.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let db = open_db(path, options.cache_bytes)?;
        let found = read_schema_version(&db)?;
        match found {
            None => {
                let meta = db.open_tree(Tree::Meta.name())?;
                meta.insert(META_SCHEMA_VERSION, codec::encode(&current_schema_version())?)?;
                meta.insert(META_NAMESPACE, codec::encode(&options.namespace)?)?;
                meta.insert(META_CREATED_AT, codec::encode(&now_millis())?)?;
                db.flush()?;
            }
            Some(v) => migrations::run_pending(&db, path, v)?,
        }
        Self::from_db(db, path)
    }

    /// Opens an existing database without changing it: no creation, no
    /// migration. For offline inspection.
    pub fn open_existing(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        if !path.join("conf").exists() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        let db = open_db(path, options.cache_bytes)?;
        let wanted = current_schema_version();
        match read_schema_version(&db)? {
            Some(v) if v == wanted => Self::from_db(db, path),
            Some(v) if v > wanted => Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: v,
                supported: wanted,
            }),
            Some(v) => Err(StoreError::NeedsMigration {
                path: path.to_owned(),
                found: v,
                wanted,
            }),
            None => Err(StoreError::Missing(path.to_owned())),
        }
    }

    fn from_db(db: sled::Db, path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            meta: db.open_tree(Tree::Meta.name())?,
            instances: db.open_tree(Tree::Instances.name())?,
            spaces: db.open_tree(Tree::Spaces.name())?,
            checkpoints: db.open_tree(Tree::Checkpoints.name())?,
            aliases: db.open_tree(Tree::Aliases.name())?,
            space_uses: db.open_tree(Tree::SpaceUses.name())?,
            path: path.to_owned(),
            db,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        match tree {
            Tree::Meta => &self.meta,
            Tree::Instances => &self.instances,
            Tree::Spaces => &self.spaces,
            Tree::Checkpoints => &self.checkpoints,
            Tree::Aliases => &self.aliases,
            Tree::SpaceUses => &self.space_uses,
        }
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn put<T: Serialize>(&self, tree: Tree, key: &[u8], value: &T) -> Result<(), StoreError> {
        self.tree(tree).insert(key, codec::encode(value)?)?;
        self.flush()
    }

    fn get<T: DeserializeOwned>(&self, tree: Tree, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.tree(tree).get(key)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes).map(Some).map_err(|source| StoreError::Corrupt {
                tree: tree.name(),
                key: key_text(key),
                source,
            }),
        }
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<bool, StoreError> {
        let existed = self.tree(tree).remove(key)?.is_some();
        self.flush()?;
        Ok(existed)
    }

    /// Every record of a tree, in key order; the first corrupt one is an error.
    fn list<T: DeserializeOwned>(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        self.tree(tree)
            .scan_prefix(prefix)
            .map(|entry| {
                let (k, v) = entry?;
                let value = codec::decode(&v).map_err(|source| StoreError::Corrupt {
                    tree: tree.name(),
                    key: key_text(&k),
                    source,
                })?;
                Ok((k.to_vec(), value))
            })
            .collect()
    }

    // ---- meta -------------------------------------------------------------

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(read_schema_version(&self.db)?.unwrap_or(0))
    }

    pub fn namespace(&self) -> Result<Option<String>, StoreError> {
        self.get(Tree::Meta, META_NAMESPACE.as_bytes())
    }

    pub fn created_at(&self) -> Result<Option<Millis>, StoreError> {
        self.get(Tree::Meta, META_CREATED_AT.as_bytes())
    }

    // ---- instances --------------------------------------------------------

    pub fn put_instance(&self, viewspec: &str, record: &InstanceRecord) -> Result<(), StoreError> {
        self.put(Tree::Instances, viewspec.as_bytes(), record)
    }

    pub fn instance(&self, viewspec: &str) -> Result<Option<InstanceRecord>, StoreError> {
        self.get(Tree::Instances, viewspec.as_bytes())
    }

    pub fn list_instances(&self) -> Result<Vec<(String, InstanceRecord)>, StoreError> {
        Ok(self
            .list(Tree::Instances, b"")?
            .into_iter()
            .map(|(k, v)| (key_text(&k), v))
            .collect())
    }

    /// Forgets an instance; true when there was one.
    pub fn remove_instance(&self, viewspec: &str) -> Result<bool, StoreError> {
        self.remove(Tree::Instances, viewspec.as_bytes())
    }

    // ---- spaces -----------------------------------------------------------

    pub fn put_space(&self, record: &SpaceRecord) -> Result<(), StoreError> {
        self.put(Tree::Spaces, record.id.as_str().as_bytes(), record)
    }

    pub fn space(&self, id: &SpaceId) -> Result<Option<SpaceRecord>, StoreError> {
        self.get(Tree::Spaces, id.as_str().as_bytes())
    }

    pub fn list_spaces(&self) -> Result<Vec<SpaceRecord>, StoreError> {
        Ok(self.list(Tree::Spaces, b"")?.into_iter().map(|(_, v)| v).collect())
    }

    /// Removes a space record together with every alias bound to it, in one
    /// transaction. Its checkpoints stay: they are objects of their own.
    pub fn remove_space(&self, id: &SpaceId) -> Result<bool, StoreError> {
        let uses = self.uses_of(id)?;
        let result = (&self.spaces, &self.aliases, &self.space_uses).transaction(|(spaces, aliases, space_uses)| {
            let existed = spaces.remove(id.as_str().as_bytes())?.is_some();
            for u in &uses {
                aliases.remove(alias_key(&u.viewspec, &u.slot))?;
                space_uses.remove(use_key(id, &u.viewspec, &u.slot))?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(existed)
        });
        let existed = unwrap_tx(result)?;
        self.flush()?;
        Ok(existed)
    }

    /// Marks a space deleted (a tombstone that keeps lineage whole) and drops
    /// every alias bound to it, in one transaction.
    pub fn mark_space_deleted(&self, record: &SpaceRecord) -> Result<(), StoreError> {
        let id = &record.id;
        let uses = self.uses_of(id)?;
        let value = codec::encode(record)?;
        let result = (&self.spaces, &self.aliases, &self.space_uses).transaction(|(spaces, aliases, space_uses)| {
            spaces.insert(id.as_str().as_bytes(), value.as_slice())?;
            for u in &uses {
                aliases.remove(alias_key(&u.viewspec, &u.slot))?;
                space_uses.remove(use_key(id, &u.viewspec, &u.slot))?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        });
        unwrap_tx(result)?;
        // An alias bound after `uses` was read and before the mark: gone
        // too (none can be bound once the mark is in, see `bind_alias`).
        for late in self.uses_of(id)? {
            self.unbind_alias(&late.viewspec, &late.slot)?;
        }
        self.flush()
    }

    // ---- checkpoints ------------------------------------------------------

    pub fn put_checkpoint(&self, record: &CheckpointRecord) -> Result<(), StoreError> {
        self.put(Tree::Checkpoints, record.id.as_str().as_bytes(), record)
    }

    pub fn checkpoint(&self, id: &CheckpointId) -> Result<Option<CheckpointRecord>, StoreError> {
        self.get(Tree::Checkpoints, id.as_str().as_bytes())
    }

    /// All checkpoints, oldest first (ids are ULIDs, so key order is time order).
    pub fn list_checkpoints(&self) -> Result<Vec<CheckpointRecord>, StoreError> {
        Ok(self.list(Tree::Checkpoints, b"")?.into_iter().map(|(_, v)| v).collect())
    }

    /// The checkpoints of one space, oldest first.
    pub fn checkpoints_of(&self, space: &SpaceId) -> Result<Vec<CheckpointRecord>, StoreError> {
        Ok(self
            .list_checkpoints()?
            .into_iter()
            .filter(|c| &c.space == space)
            .collect())
    }

    pub fn remove_checkpoint(&self, id: &CheckpointId) -> Result<bool, StoreError> {
        self.remove(Tree::Checkpoints, id.as_str().as_bytes())
    }

    // ---- aliases ----------------------------------------------------------

    /// Binds `space` to `slot` of `viewspec`, updating the reverse index in
    /// the same transaction. Rebinding a slot moves it. A space with no
    /// record, or a deleted one, is not bound (the outcome says which).
    pub fn bind_alias(&self, viewspec: &str, slot: &str, space: &SpaceId) -> Result<AliasBinding, StoreError> {
        let record = AliasRecord {
            space: space.clone(),
            first_used_at: now_millis(),
        };
        let value = codec::encode(&record)?;
        let unit = codec::encode(&())?;
        let key = alias_key(viewspec, slot);
        let result = (&self.spaces, &self.aliases, &self.space_uses).transaction(|(spaces, aliases, space_uses)| {
            // Read in the transaction, so a delete marking the space
            // (`mark_space_deleted`) is either seen here or sees this alias.
            let Some(bytes) = spaces.get(space.as_str().as_bytes())? else {
                return Ok(AliasBinding::NoSuchSpace);
            };
            let target: SpaceRecord =
                codec::decode(&bytes).map_err(|e| ConflictableTransactionError::Abort(e.into()))?;
            if target.deleted {
                return Ok(AliasBinding::SpaceDeleted);
            }
            if let Some(old) = aliases.insert(key.as_slice(), value.as_slice())? {
                let old: AliasRecord =
                    codec::decode(&old).map_err(|e| ConflictableTransactionError::Abort(e.into()))?;
                space_uses.remove(use_key(&old.space, viewspec, slot))?;
            }
            space_uses.insert(use_key(space, viewspec, slot), unit.as_slice())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(AliasBinding::Bound)
        });
        let outcome = unwrap_tx(result)?;
        if outcome == AliasBinding::Bound {
            self.flush()?;
        }
        Ok(outcome)
    }

    /// Removes one binding and its reverse entry; true when there was one.
    pub fn unbind_alias(&self, viewspec: &str, slot: &str) -> Result<bool, StoreError> {
        let key = alias_key(viewspec, slot);
        let result = (&self.aliases, &self.space_uses).transaction(|(aliases, space_uses)| {
            let Some(old) = aliases.remove(key.as_slice())? else {
                return Ok(false);
            };
            let old: AliasRecord = codec::decode(&old).map_err(|e| ConflictableTransactionError::Abort(e.into()))?;
            space_uses.remove(use_key(&old.space, viewspec, slot))?;
            Ok::<_, ConflictableTransactionError<StoreError>>(true)
        });
        let existed = unwrap_tx(result)?;
        self.flush()?;
        Ok(existed)
    }

    pub fn alias(&self, viewspec: &str, slot: &str) -> Result<Option<AliasRecord>, StoreError> {
        self.get(Tree::Aliases, &alias_key(viewspec, slot))
    }

    /// Every binding: (viewspec, slot, record).
    pub fn list_aliases(&self) -> Result<Vec<(SpaceUse, AliasRecord)>, StoreError> {
        self.list(Tree::Aliases, b"")?
            .into_iter()
            .map(|(k, v)| {
                let mut parts = k.splitn(2, |b| *b == SEP);
                let viewspec = key_text(parts.next().unwrap_or_default());
                let slot = key_text(parts.next().unwrap_or_default());
                Ok((SpaceUse { viewspec, slot }, v))
            })
            .collect()
    }

    /// Who uses a space, from the reverse index.
    pub fn uses_of(&self, space: &SpaceId) -> Result<Vec<SpaceUse>, StoreError> {
        let mut prefix = space.as_str().as_bytes().to_vec();
        prefix.push(SEP);
        self.space_uses
            .scan_prefix(&prefix)
            .keys()
            .map(|k| {
                let k = k?;
                let rest = &k[prefix.len()..];
                let mut parts = rest.splitn(2, |b| *b == SEP);
                let viewspec = key_text(parts.next().unwrap_or_default());
                let slot = key_text(parts.next().unwrap_or_default());
                Ok(SpaceUse { viewspec, slot })
            })
            .collect()
    }

    /// Every (space, use) pair of the reverse index, for consistency checks.
    pub fn list_space_uses(&self) -> Result<Vec<(String, SpaceUse)>, StoreError> {
        self.space_uses
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                let mut parts = k.splitn(3, |b| *b == SEP);
                let space = key_text(parts.next().unwrap_or_default());
                let viewspec = key_text(parts.next().unwrap_or_default());
                let slot = key_text(parts.next().unwrap_or_default());
                Ok((space, SpaceUse { viewspec, slot }))
            })
            .collect()
    }

    // ---- inspection -------------------------------------------------------

    /// Every entry of a tree, decoded where possible; a value that does not
    /// decode is reported with its error instead of failing the whole scan.
    pub fn raw_entries(&self, tree: Tree) -> Result<Vec<RawEntry>, StoreError> {
        self.tree(tree)
            .iter()
            .map(|entry| {
                let (k, v) = entry?;
                let key = key_text(&k);
                let value = tree.value_json(&key, &v).map_err(|e| e.to_string());
                Ok(RawEntry { key, value })
            })
            .collect()
    }

    /// Number of entries in a tree.
    pub fn count(&self, tree: Tree) -> usize {
        self.tree(tree).len()
    }

    /// Writes raw bytes under a key. Only for tests that need a corrupt record.
    #[doc(hidden)]
    pub fn put_raw_for_test(&self, tree: Tree, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.tree(tree).insert(key.as_bytes(), value)?;
        self.flush()
    }
}

fn read_schema_version(db: &sled::Db) -> Result<Option<u32>, StoreError> {
    let meta = db.open_tree(Tree::Meta.name())?;
    match meta.get(META_SCHEMA_VERSION)? {
        None => Ok(None),
        Some(b) => Ok(Some(codec::decode(&b).map_err(|source| StoreError::Corrupt {
            tree: "meta",
            key: META_SCHEMA_VERSION.into(),
            source,
        })?)),
    }
}

fn alias_key(viewspec: &str, slot: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(viewspec.len() + slot.len() + 1);
    k.extend_from_slice(viewspec.as_bytes());
    k.push(SEP);
    k.extend_from_slice(slot.as_bytes());
    k
}

fn use_key(space: &SpaceId, viewspec: &str, slot: &str) -> Vec<u8> {
    let mut k = space.as_str().as_bytes().to_vec();
    k.push(SEP);
    k.extend_from_slice(&alias_key(viewspec, slot));
    k
}

/// Keys are UTF-8 by construction; anything else is shown escaped.
fn key_text(k: &[u8]) -> String {
    match std::str::from_utf8(k) {
        Ok(s) => s.replace('\0', "\u{241f}"),
        Err(_) => k.escape_ascii().to_string(),
    }
}

fn unwrap_tx<T>(r: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    })
}

#[cfg(test)]
mod tests;
