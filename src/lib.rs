//! Substrate hosts web services on demand.
//!
//! A request for `/foo/bar` starts a container for service `foo` (defined in
//! the CUE files of `defs/`) when none runs, waits until it listens on its
//! `PORT`, and reverse-proxies to it. Services keep persistent data in
//! *spaces*: directories that can be created, checkpointed and forked.
//!
//! A tour of the crate, one module per concern:
//!
//! - [`ids`]: space and checkpoint identifiers, validated strictly.
//! - [`store`]: the durable state — sled trees, the record codec, migrations.
//! - [`datadir`]: the layout of the data directory and start-up cleanup.
//! - [`runtime`]: the container engine (Docker through bollard).
//! - [`admin`]: the JSON API under `/substrate/v1`.
//! - [`daemon`]: `substrate serve` — listener, shutdown, wiring.
//! - [`inspect`]: the offline inspection tool over a stopped daemon's store.
//! - [`config`]: layered settings (flags > environment > TOML > defaults).
//!
//! `main.rs` only wires the command line to these.

pub mod admin;
pub mod catalog;
pub mod config;
pub mod daemon;
pub mod datadir;
pub mod defs;
pub mod ids;
pub mod images;
pub mod inspect;
pub mod lineage;
pub mod metrics;
pub mod proxy;
pub mod runtime;
pub mod space;
pub mod store;
pub mod viewspec;
