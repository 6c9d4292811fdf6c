//! The layout of a data directory, and what start-up does to it.
//!
//! ```text
//! <data>/db/                          sled database
//! <data>/spaces/<space-id>/tree/      live space contents
//! <data>/checkpoints/<ckpt-id>/tree/  immutable checkpoint contents
//! <data>/staging/                     copies in progress (cleaned at start)
//! <data>/admin.token                  bearer token for the admin API (0600)
//! <data>/daemon.pid                   pid of the daemon holding the database
//! ```
//!
//! Objects become visible by renaming a finished copy out of `staging/`, and
//! their record is written after the rename. A crash in between leaves a tree
//! with no record; [`DataDir::recover`] removes those (nobody was told about
//! them) together with everything left in `staging/`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::ids::{CheckpointId, SpaceId};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_owned(),
        source,
    }
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn db(&self) -> PathBuf {
        self.root.join("db")
    }
    pub fn spaces(&self) -> PathBuf {
        self.root.join("spaces")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }
    pub fn token_file(&self) -> PathBuf {
        self.root.join("admin.token")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("daemon.pid")
    }
    /// Where a space's live contents are.
    pub fn space_tree(&self, id: &SpaceId) -> PathBuf {
        self.spaces().join(id.as_str()).join("tree")
    }
    pub fn checkpoint_tree(&self, id: &CheckpointId) -> PathBuf {
        self.checkpoints().join(id.as_str()).join("tree")
    }

    /// Creates the directories a daemon needs.
    pub fn create(&self) -> Result<(), DataDirError> {
        for dir in [self.root.clone(), self.spaces(), self.checkpoints(), self.staging()] {
            std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        }
        Ok(())
    }

    /// The admin token, created (0600, random) when missing.
    pub fn admin_token(&self) -> Result<String, DataDirError> {
        let path = self.token_file();
        match std::fs::read_to_string(&path) {
            Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&path)(e)),
        }
        let token: String = {
            use rand::Rng;
            let bytes: [u8; 32] = rand::thread_rng().gen();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_at(&path))?;
        writeln!(f, "{token}")
            .and_then(|_| f.sync_all())
            .map_err(io_at(&path))?;
        Ok(token)
    }

    /// Records which process holds the database, for tools that find it locked.
    pub fn write_pid(&self) -> Result<(), DataDirError> {
        let path = self.pid_file();
        std::fs::write(&path, format!("{}\n", std::process::id())).map_err(io_at(&path))
    }

    /// The pid of the daemon holding the database, if it left one that is alive.
    pub fn holder_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    pub fn remove_pid(&self) {
        let _ = std::fs::remove_file(self.pid_file());
    }

    /// Start-up cleanup: empties `staging/` and removes space and checkpoint
    /// trees that have no record (copies renamed into place just before a
    /// crash, never acknowledged) or whose space was deleted (a crash during
    /// the deletion). Returns what it removed.
    pub fn recover(&self, store: &Store) -> Result<Vec<PathBuf>, DataDirError> {
        let mut removed = Vec::new();
        let staging = self.staging();
        for entry in read_dir_if_exists(&staging)? {
            remove_any(&entry)?;
            removed.push(entry);
        }
        removed.extend(
            self.remove_orphans(&self.spaces(), |name| match name.parse::<SpaceId>() {
                // A deleted space's tree is removed after its record is marked.
                Ok(id) => Ok(store.space(&id)?.is_some_and(|r| !r.deleted)),
                Err(_) => Ok(false),
            })?,
        );
        removed.extend(
            self.remove_orphans(&self.checkpoints(), |name| match name.parse::<CheckpointId>() {
                Ok(id) => Ok(store.checkpoint(&id)?.is_some()),
                Err(_) => Ok(false),
            })?,
        );
        Ok(removed)
    }

    /// Removes the entries of `dir` whose name `is_known` does not vouch for.
    fn remove_orphans(
        &self,
        dir: &Path,
        is_known: impl Fn(&str) -> Result<bool, StoreError>,
    ) -> Result<Vec<PathBuf>, DataDirError> {
        let mut removed = Vec::new();
        for entry in read_dir_if_exists(dir)? {
            let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !is_known(name)? {
                remove_any(&entry)?;
                removed.push(entry);
            }
        }
        Ok(removed)
    }
}

/// Entries of a directory; none when it does not exist.
pub fn read_dir_if_exists(dir: &Path) -> Result<Vec<PathBuf>, DataDirError> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map(|e| e.path()).map_err(io_at(dir))).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_at(dir)(e)),
    }
}

fn remove_any(path: &Path) -> Result<(), DataDirError> {
    let meta = std::fs::symlink_metadata(path).map_err(io_at(path))?;
    if meta.is_dir() {
        std::fs::remove_dir_all(path).map_err(io_at(path))
    } else {
        std::fs::remove_file(path).map_err(io_at(path))
    }
}
