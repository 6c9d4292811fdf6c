//! `substrate inspect`: reads a stopped daemon's database and data directory
//! and prints what is there, as tables or `--json` (SPEC §7).
//!
//! It never writes: no creation, no migration. While a daemon holds the
//! database every command fails with [`InspectError::InUse`] (exit 2).

mod table;
mod verify;

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::datadir::DataDir;
use crate::ids::SpaceId;
use crate::lineage::Graph;
use crate::store::{Store, StoreError, StoreOptions, Tree};

pub use verify::{verify, Problem};

/// What to print.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum InspectCommand {
    /// Schema version, counts per tree, data dir size
    Summary,
    /// Instance records
    Instances,
    /// Space records
    Spaces,
    /// One space with its checkpoints and uses
    Space { id: String },
    /// Ancestors and descendants of a space or checkpoint
    Lineage { id: String },
    /// Every tree as JSON
    Dump,
    /// Consistency of store and disk; exit 1 listing each problem
    Verify,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// A daemon holds the database.
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The result of a command that ran: `Problems` makes the tool exit 1.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Clean,
    Problems(usize),
}

/// Opens the database of `data` for reading.
pub fn open(data: &DataDir) -> Result<Store, InspectError> {
    match Store::open_existing(&data.db(), &StoreOptions::default()) {
        Err(StoreError::Locked { .. }) => Err(InspectError::InUse(crate::daemon::in_use_message(data))),
        other => Ok(other?),
    }
}

pub fn run(
    data_root: &Path,
    command: &InspectCommand,
    as_json: bool,
    out: &mut dyn Write,
) -> Result<Outcome, InspectError> {
    let data = DataDir::new(data_root);
    let store = open(&data)?;
    match command {
        InspectCommand::Summary => summary(&data, &store, as_json, out)?,
        InspectCommand::Instances => instances(&store, as_json, out)?,
        InspectCommand::Spaces => spaces(&store, as_json, out)?,
        InspectCommand::Space { id } => space(&store, id, as_json, out)?,
        InspectCommand::Lineage { id } => lineage(&store, id, as_json, out)?,
        InspectCommand::Dump => dump(&store, out)?,
        InspectCommand::Verify => {
            let problems = verify(&data, &store)?;
            if as_json {
                writeln!(out, "{}", pretty(&json!({ "problems": problems })))?;
            } else if problems.is_empty() {
                writeln!(out, "ok: store and disk agree")?;
            } else {
                for p in &problems {
                    writeln!(out, "{p}")?;
                }
                writeln!(out, "{} problem(s)", problems.len())?;
            }
            if !problems.is_empty() {
                return Ok(Outcome::Problems(problems.len()));
            }
        }
    }
    Ok(Outcome::Clean)
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn when(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn summary(data: &DataDir, store: &Store, as_json: bool, out: &mut dyn Write) -> Result<(), InspectError> {
    let counts: Vec<(&str, usize)> = Tree::ALL
        .iter()
        .filter(|t| **t != Tree::Meta)
        .map(|t| (t.name(), store.count(*t)))
        .collect();
    let size: u64 = walkdir::WalkDir::new(data.root())
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let version = store.schema_version()?;
    let namespace = store.namespace()?.unwrap_or_default();
    let created = store.created_at()?;
    if as_json {
        let counts: serde_json::Map<_, _> = counts.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let v = json!({
            "schema_version": version,
            "namespace": namespace,
            "created_at": created,
            "counts": counts,
            "data_dir_bytes": size,
        });
        writeln!(out, "{}", pretty(&v))?;
        return Ok(());
    }
    writeln!(out, "schema version: {version}")?;
    writeln!(out, "namespace:      {namespace}")?;
    if let Some(c) = created {
        writeln!(out, "created at:     {}", when(c))?;
    }
    writeln!(
        out,
        "data dir:       {} ({} bytes in files)",
        data.root().display(),
        size
    )?;
    let mut t = table::Table::new(&["TREE", "RECORDS"]);
    for (name, n) in counts {
        t.row(vec![name.to_owned(), n.to_string()]);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

fn instances(store: &Store, as_json: bool, out: &mut dyn Write) -> Result<(), InspectError> {
    let all = store.list_instances()?;
    if as_json {
        let v: Vec<_> = all.iter().map(|(k, r)| json!({"viewspec": k, "record": r})).collect();
        writeln!(out, "{}", pretty(&json!(v)))?;
        return Ok(());
    }
    let mut t = table::Table::new(&["VIEWSPEC", "SERVICE", "STATE", "CONTAINER", "ADDRESS", "LAST REQUEST"]);
    for (k, r) in all {
        t.row(vec![
            k,
            r.service,
            format!("{:?}", r.state).to_lowercase(),
            r.container_name,
            r.address
                .map(|a| format!("{a}:{}", r.port))
                .unwrap_or_else(|| "-".into()),
            when(r.last_request_at),
        ]);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

fn spaces(store: &Store, as_json: bool, out: &mut dyn Write) -> Result<(), InspectError> {
    let all = store.list_spaces()?;
    if as_json {
        writeln!(out, "{}", pretty(&json!(all)))?;
        return Ok(());
    }
    let mut t = table::Table::new(&["ID", "NAME", "CREATED", "FORKED FROM", "STATE"]);
    for s in all {
        let from = s
            .forked_from
            .map(|f| match (f.space, f.checkpoint) {
                (Some(s), Some(c)) => format!("{s}@{c}"),
                (None, Some(c)) => c.to_string(),
                (Some(s), None) => s.to_string(),
                (None, None) => "-".into(),
            })
            .unwrap_or_else(|| "-".into());
        t.row(vec![
            s.id.to_string(),
            s.name.unwrap_or_else(|| "-".into()),
            when(s.created_at),
            from,
            if s.deleted { "deleted".into() } else { "live".into() },
        ]);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

fn space(store: &Store, id: &str, as_json: bool, out: &mut dyn Write) -> Result<(), InspectError> {
    let sid: SpaceId = id
        .parse()
        .map_err(|e: crate::ids::IdError| InspectError::NotFound(e.to_string()))?;
    let record = store
        .space(&sid)?
        .ok_or_else(|| InspectError::NotFound(format!("no space {sid} in the store")))?;
    let checkpoints = store.checkpoints_of(&sid)?;
    let uses = store.uses_of(&sid)?;
    if as_json {
        let v = json!({"space": record, "checkpoints": checkpoints, "uses": uses});
        writeln!(out, "{}", pretty(&v))?;
        return Ok(());
    }
    writeln!(out, "space:       {}", record.id)?;
    writeln!(out, "name:        {}", record.name.as_deref().unwrap_or("-"))?;
    writeln!(out, "created at:  {}", when(record.created_at))?;
    writeln!(out, "origin:      {:?}", record.origin)?;
    if let Some(f) = &record.forked_from {
        let s = f.space.as_ref().map(|s| s.to_string()).unwrap_or_default();
        let c = f.checkpoint.as_ref().map(|c| format!("@{c}")).unwrap_or_default();
        writeln!(out, "forked from: {s}{c}")?;
    }
    writeln!(out, "deleted:     {}", record.deleted)?;
    writeln!(out, "checkpoints: {}", checkpoints.len())?;
    for c in &checkpoints {
        writeln!(
            out,
            "  {}  {}  {:?}  {}",
            c.id,
            when(c.created_at),
            c.method,
            c.message.as_deref().unwrap_or("")
        )?;
    }
    writeln!(out, "uses:        {}", uses.len())?;
    for u in &uses {
        writeln!(out, "  {} (slot {})", u.viewspec, u.slot)?;
    }
    Ok(())
}

fn lineage(store: &Store, id: &str, as_json: bool, out: &mut dyn Write) -> Result<(), InspectError> {
    let graph = Graph::new(&store.list_spaces()?, &store.list_checkpoints()?);
    let l = graph
        .lineage(id)
        .ok_or_else(|| InspectError::NotFound(format!("no space or checkpoint {id:?} in the store")))?;
    if as_json {
        writeln!(out, "{}", pretty(&json!(l)))?;
    } else {
        write!(out, "{}", l.render())?;
    }
    Ok(())
}

fn dump(store: &Store, out: &mut dyn Write) -> Result<(), InspectError> {
    let mut trees = serde_json::Map::new();
    for tree in Tree::ALL {
        let entries: Vec<_> = store
            .raw_entries(tree)?
            .into_iter()
            .map(|e| match e.value {
                Ok(v) => json!({"key": e.key, "value": v}),
                Err(err) => json!({"key": e.key, "error": err}),
            })
            .collect();
        trees.insert(tree.name().to_owned(), json!(entries));
    }
    writeln!(out, "{}", pretty(&serde_json::Value::Object(trees)))?;
    Ok(())
}
