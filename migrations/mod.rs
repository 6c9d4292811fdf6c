//! Store migrations: the ordered steps that bring a database written by an
//! older release up to the schema this build uses.
//!
//! Each step moves the schema from `to - 1` to `to`. Steps must be idempotent:
//! the version is written only after a step has finished and flushed, so a
//! crash mid-step runs the whole step again on the next open.
//!
//! Old record layouts a step reads are frozen inside the step's own file;
//! they never change after release.
//!
//! To add a step: write `vNNNN_what.rs` with `pub fn run(db: &sled::Db)`,
//! append it to [`STEPS`], and add a test that builds a database in the old
//! layout and opens it.

use std::path::Path;

use super::{codec, StoreError, META_SCHEMA_VERSION};

#[path = "v0002_space_uses.rs"]
mod v0002_space_uses;

/// One migration step.
pub struct Step {
    /// The schema version this step produces.
    pub to: u32,
    pub name: &'static str,
    pub run: fn(&sled::Db) -> Result<(), StoreError>,
}

/// Every step, in order. Version 1 is the first released layout.
pub const STEPS: &[Step] = &[Step {
    to: 2,
    name: "build the space_uses reverse index from aliases",
    run: v0002_space_uses::run,
}];

/// The schema version after every step has run.
pub fn current_version() -> u32 {
    STEPS.last().map_or(1, |s| s.to)
}

/// Runs every step above `found`, recording the version after each one.
pub(super) fn run_pending(db: &sled::Db, path: &Path, found: u32) -> Result<(), StoreError> {
    let supported = current_version();
    if found > supported {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found,
            supported,
        });
    }
    let meta = db.open_tree("meta")?;
    for step in STEPS.iter().filter(|s| s.to > found) {
        tracing::info!(to = step.to, step = step.name, "migrating store");
        (step.run)(db)?;
        db.flush()?;
        meta.insert(META_SCHEMA_VERSION, codec::encode(&step.to)?)?;
        db.flush()?;
    }
    Ok(())
}
