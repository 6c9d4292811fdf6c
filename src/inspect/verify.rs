//! `inspect verify`: does the store agree with the disk?
//!
//! Checked: every record decodes; every live space and every checkpoint has
//! its tree and every tree has its record; lineage points to recorded
//! objects; aliases point to recorded spaces and mirror `space_uses`;
//! nothing is left in `staging/`.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::datadir::{read_dir_if_exists, DataDir};
use crate::store::{Store, Tree};

use super::InspectError;

/// One inconsistency, with where it is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// What is affected: `spaces/<key>`, a path, …
    pub at: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

pub fn verify(data: &DataDir, store: &Store) -> Result<Vec<Problem>, InspectError> {
    let mut problems = Vec::new();
    let mut problem = |at: String, message: String| problems.push(Problem { at, message });

    // Decode everything first; a corrupt record is a problem, not a failure.
    let mut spaces = Vec::new();
    let mut checkpoints = Vec::new();
    for tree in Tree::ALL {
        for e in store.raw_entries(tree)? {
            match e.value {
                Err(err) => problem(format!("{}/{}", tree.name(), e.key), format!("corrupt record: {err}")),
                Ok(v) => match tree {
                    Tree::Spaces => match serde_json::from_value::<crate::store::SpaceRecord>(v) {
                        Ok(r) if r.id.as_str() == e.key => spaces.push(r),
                        Ok(r) => problem(format!("spaces/{}", e.key), format!("record is for {}", r.id)),
                        Err(err) => problem(format!("spaces/{}", e.key), format!("corrupt record: {err}")),
                    },
                    Tree::Checkpoints => match serde_json::from_value::<crate::store::CheckpointRecord>(v) {
                        Ok(r) if r.id.as_str() == e.key => checkpoints.push(r),
                        Ok(r) => problem(format!("checkpoints/{}", e.key), format!("record is for {}", r.id)),
                        Err(err) => problem(format!("checkpoints/{}", e.key), format!("corrupt record: {err}")),
                    },
                    _ => {}
                },
            }
        }
    }

    let space_ids: BTreeSet<String> = spaces.iter().map(|s| s.id.to_string()).collect();
    let ckpt_ids: BTreeSet<String> = checkpoints.iter().map(|c| c.id.to_string()).collect();

    for s in &spaces {
        let tree = data.space_tree(&s.id);
        if !s.deleted && !tree.is_dir() {
            problem(
                format!("spaces/{}", s.id),
                format!("record has no tree at {}", tree.display()),
            );
        }
        if let Some(f) = &s.forked_from {
            if let Some(from) = f.space.as_ref().filter(|id| !space_ids.contains(id.as_str())) {
                problem(format!("spaces/{}", s.id), format!("forked from unknown space {from}"));
            }
            if let Some(from) = f.checkpoint.as_ref().filter(|id| !ckpt_ids.contains(id.as_str())) {
                problem(
                    format!("spaces/{}", s.id),
                    format!("forked from unknown checkpoint {from}"),
                );
            }
        }
    }
    for c in &checkpoints {
        let tree = data.checkpoint_tree(&c.id);
        if !tree.is_dir() {
            problem(
                format!("checkpoints/{}", c.id),
                format!("record has no tree at {}", tree.display()),
            );
        }
        if !space_ids.contains(c.space.as_str()) {
            problem(
                format!("checkpoints/{}", c.id),
                format!("checkpoint of unknown space {}", c.space),
            );
        }
        if let Some(p) = c.parent.as_ref().filter(|p| !ckpt_ids.contains(p.as_str())) {
            problem(
                format!("checkpoints/{}", c.id),
                format!("parent checkpoint {p} is unknown"),
            );
        }
    }

    for (dir, known) in [(data.spaces(), &space_ids), (data.checkpoints(), &ckpt_ids)] {
        for entry in read_dir_if_exists(&dir).map_err(|e| InspectError::NotFound(e.to_string()))? {
            let name = entry
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !known.contains(&name) {
                problem(entry.display().to_string(), "directory without a record".into());
            }
        }
    }
    for entry in read_dir_if_exists(&data.staging()).map_err(|e| InspectError::NotFound(e.to_string()))? {
        problem(
            entry.display().to_string(),
            "leftover in staging/ (an interrupted copy)".into(),
        );
    }

    // Aliases and their reverse index.
    let aliases = store.list_aliases().unwrap_or_default();
    let mut from_aliases = BTreeSet::new();
    for (u, a) in &aliases {
        if !space_ids.contains(a.space.as_str()) {
            problem(
                format!("aliases/{}", u.viewspec),
                format!("slot {} points to unknown space {}", u.slot, a.space),
            );
        }
        from_aliases.insert((a.space.to_string(), u.viewspec.clone(), u.slot.clone()));
    }
    let from_index: BTreeSet<_> = store
        .list_space_uses()?
        .into_iter()
        .map(|(s, u)| (s, u.viewspec, u.slot))
        .collect();
    for (s, v, slot) in from_aliases.difference(&from_index) {
        problem(format!("space_uses/{s}"), format!("missing entry for {v} slot {slot}"));
    }
    for (s, v, slot) in from_index.difference(&from_aliases) {
        problem(
            format!("space_uses/{s}"),
            format!("entry for {v} slot {slot} has no alias"),
        );
    }
    Ok(problems)
}
