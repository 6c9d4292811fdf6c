//! Schema 1 → 2: version 1 kept only `aliases` (viewspec `\0` slot → alias);
//! version 2 adds the `space_uses` reverse index (space `\0` viewspec `\0`
//! slot → `()`) so "who uses this space" is a prefix scan, not a full one.

use serde::{Deserialize, Serialize};

use super::super::{codec, StoreError};

/// The alias record as schema 1 wrote it. Frozen.
#[derive(Debug, Serialize, Deserialize)]
pub struct AliasV1 {
    pub space: String,
    pub first_used_at: u64,
}

pub fn run(db: &sled::Db) -> Result<(), StoreError> {
    let aliases = db.open_tree("aliases")?;
    let uses = db.open_tree("space_uses")?;
    let unit = codec::encode(&())?;
    for entry in aliases.iter() {
        let (key, value) = entry?;
        let alias: AliasV1 = codec::decode(&value).map_err(|e| StoreError::Migration {
            to: 2,
            name: "space_uses",
            message: format!("alias {:?}: {e}", String::from_utf8_lossy(&key)),
        })?;
        let mut use_key = alias.space.into_bytes();
        use_key.push(0);
        use_key.extend_from_slice(&key);
        uses.insert(use_key, unit.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SpaceId;
    use crate::store::{Store, StoreError, StoreOptions};

    /// Writes a database exactly as a schema-1 release left it.
    fn write_v1(path: &std::path::Path, aliases: &[(&str, &str, &SpaceId)]) {
        let db = sled::open(path).unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema_version", codec::encode(&1u32).unwrap()).unwrap();
        meta.insert("namespace", codec::encode(&"default".to_string()).unwrap())
            .unwrap();
        let tree = db.open_tree("aliases").unwrap();
        for (viewspec, slot, space) in aliases {
            let key = format!("{viewspec}\0{slot}");
            let v = AliasV1 {
                space: space.to_string(),
                first_used_at: 7,
            };
            tree.insert(key.as_bytes(), codec::encode(&v).unwrap()).unwrap();
        }
        db.flush().unwrap();
    }

    #[test]
    fn v1_database_opens_as_v2_with_the_reverse_index() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (SpaceId::generate(), SpaceId::generate());
        write_v1(
            dir.path(),
            &[
                ("notes;data=x", "data", &a),
                ("shell;data=y", "data", &a),
                ("echo;data=z", "data", &b),
            ],
        );

        // Before migrating, inspection refuses and says what to do.
        match Store::open_existing(dir.path(), &StoreOptions::default()) {
            Err(StoreError::NeedsMigration {
                found: 1, wanted: 2, ..
            }) => {}
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("opened a v1 database as current"),
        }

        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        assert_eq!(store.schema_version().unwrap(), 2);
        let uses_a: Vec<_> = store.uses_of(&a).unwrap().into_iter().map(|u| u.viewspec).collect();
        assert_eq!(uses_a, vec!["notes;data=x", "shell;data=y"]);
        assert_eq!(store.uses_of(&b).unwrap().len(), 1);
        // The migrated aliases read back as current records.
        assert_eq!(store.alias("echo;data=z", "data").unwrap().unwrap().space, b);
        drop(store);

        // Opening again is a no-op.
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        assert_eq!(store.uses_of(&a).unwrap().len(), 2);
    }

    #[test]
    fn newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("schema_version", codec::encode(&99u32).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let err = Store::open(dir.path(), &StoreOptions::default()).err().unwrap();
        assert!(matches!(
            err,
            StoreError::NewerSchema {
                found: 99,
                supported: 2,
                ..
            }
        ));
        assert!(err.to_string().contains("newer than this build supports"), "{err}");
    }
}
