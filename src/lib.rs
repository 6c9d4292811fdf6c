//! Substrate hosts web services on demand.
//!
//! A request for `/foo/bar` starts a container for service `foo` (defined in
//! the CUE files of `defs/`) when none runs, waits until it listens on its
//! `PORT`, and reverse-proxies to it. Services keep persistent data in
//! *spaces*: directories that can be created, checkpointed and forked.
//!
//! A tour of the crate, one module per concern, in the order a request
//! meets them:
//!
//! - [`daemon`]: `substrate serve` — listener, background tasks, shutdown.
//! - [`proxy`]: the front door. [`proxy::params`] plans an instance from the
//!   URL, [`proxy::forward`] proxies to it over [`proxy::upstream`]
//!   connections, [`proxy::retry`] decides what a failure may retry,
//!   [`proxy::timeouts`] bounds what clients control.
//! - [`instance`]: the instance lifecycle. [`instance::activator`] starts one
//!   container per instance key and waits for [`instance::readiness`];
//!   [`instance::stop`] is the one way an instance ends; [`instance::reaper`]
//!   stops idle ones; [`instance::reconcile`] re-attaches after a restart.
//! - [`viewspec`]: the URL grammar (`notes;data=sp-…`).
//! - [`catalog`] and [`defs`]: the service definitions — our evaluator for a
//!   subset of CUE, loaded from `defs/` and reloaded on change.
//! - [`runtime`]: the container engine behind a trait; Docker via bollard,
//!   Podman through the same client (its Docker-compatible API).
//! - [`space`]: spaces — the copy engine, checkpoints, forks.
//! - [`store`]: the durable state — sled trees, the record codec, migrations;
//!   [`datadir`] is the layout of the data directory around it.
//! - [`admin`]: the JSON API under `/substrate/v1`; [`metrics`]: `/metrics`;
//!   [`home`]: the home page at `/`; [`tls`]: HTTPS.
//! - [`inspect`] and [`lineage`]: the offline tool and the lineage DAG.
//! - [`config`], [`ids`], [`images`]: settings, identifiers, image builds.
//! - [`workers`]: the per-core runtimes that serve client connections.
//!
//! `main.rs` only wires the command line to these.

pub mod admin;
pub mod alloc;
pub mod catalog;
pub mod config;
pub mod daemon;
pub mod datadir;
pub mod defs;
pub mod home;
pub mod ids;
pub mod images;
pub mod inspect;
pub mod instance;
pub mod lineage;
pub mod metrics;
pub mod proxy;
pub mod runtime;
pub mod space;
pub mod store;
pub mod tls;
pub mod viewspec;
pub mod workers;
