//! The container engine behind a small trait, so the activator can be tested
//! with a fake and run on Docker (or a Podman socket) for real.
//!
//! Terms: a *container spec* is everything needed to create one container;
//! the engine owns the per-namespace bridge network and labels every object
//! `substrate.namespace=<namespace>`, and only ever lists, stops or removes
//! objects carrying its own namespace label.

pub mod build;
pub mod docker;
pub mod swarm;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

pub use docker::DockerEngine;
pub use swarm::{SwarmEngine, SwarmSettings};

pub const LABEL_NAMESPACE: &str = "substrate.namespace";
pub const LABEL_INSTANCE: &str = "substrate.instance";
pub const LABEL_SERVICE: &str = "substrate.service";
/// The external origin of the request that started an instance, so a
/// re-attached instance resolves its definition as it was started.
pub const LABEL_ORIGIN: &str = "substrate.origin";

/// A host directory bound into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Replaces the image's CMD when not empty.
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub binds: Vec<Bind>,
    /// Extra labels; the namespace label is added by the engine.
    pub labels: BTreeMap<String, String>,
    /// Run an init process as PID 1 so a stop takes milliseconds.
    pub init: bool,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
}

/// A container of our namespace as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub running: bool,
    /// Its address on the namespace's network, when it has one.
    pub address: Option<IpAddr>,
    pub labels: BTreeMap<String, String>,
    pub exit_code: Option<i64>,
}

/// Something the engine reports about a container of our namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEvent {
    /// The container stopped (exited, was killed or removed).
    Gone { id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the Docker Engine is unavailable: {0}")]
    Unavailable(String),
    #[error("image {0} not found")]
    ImageMissing(String),
    #[error("building image {image} failed: {message}")]
    Build { image: String, message: String },
    #[error("container {0} not found")]
    NoSuchContainer(String),
    #[error("docker: {0}")]
    Docker(String),
    /// The engine cannot do this at all (e.g. pause a Swarm task on a node
    /// the daemon has no engine for); callers carry on without it.
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl RuntimeError {
    /// True when the engine itself could not be reached (as opposed to it
    /// refusing a request): such errors mean 503, and recovery once it is back.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RuntimeError::Unavailable(_))
    }

    /// True when the engine cannot do this at all, now or later.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, RuntimeError::Unsupported(_))
    }
}

/// What the activator and reconciliation need from a container engine.
#[async_trait::async_trait]
pub trait Engine: Send + Sync + 'static {
    /// The namespace this engine handle acts for.
    fn namespace(&self) -> &str;
    async fn ping(&self) -> Result<(), RuntimeError>;
    async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError>;
    /// Creates and starts a container on the namespace network; returns its
    /// id and address.
    async fn start(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError>;
    /// The container's current state; `None` when it no longer exists.
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError>;
    /// The last `lines` lines of the container's output (stdout and stderr).
    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, RuntimeError>;
    /// Stops (quickly) and removes a container; absent is fine.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;
    /// Every container of the namespace, running or not.
    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError>;
    /// Builds an image from a Dockerfile and a context directory.
    async fn build_image(&self, spec: &build::BuildSpec) -> Result<(), RuntimeError>;
    async fn pause(&self, id: &str) -> Result<(), RuntimeError>;
    async fn unpause(&self, id: &str) -> Result<(), RuntimeError>;
    /// Container events of the namespace, until the stream ends (engine gone).
    async fn events(&self) -> Result<futures_util::stream::BoxStream<'static, ContainerEvent>, RuntimeError>;
}

/// The engine the environment asks for, for the daemon of `namespace`:
/// `SUBSTRATE_ENGINE=swarm` gives a [`SwarmEngine`] (settings from
/// `SUBSTRATE_SWARM_CONSTRAINT`, `SUBSTRATE_SWARM_NODE_ENGINES` as
/// `NODE=ENDPOINT,…`, `SUBSTRATE_SWARM_START_TIMEOUT` in seconds); anything
/// else the Docker Engine. The one place that chooses an engine.
pub fn engine_from_env(namespace: &str) -> std::sync::Arc<dyn Engine> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if var("SUBSTRATE_ENGINE").as_deref() != Some("swarm") {
        return std::sync::Arc::new(DockerEngine::new(namespace));
    }
    let mut settings = SwarmSettings {
        constraint: var("SUBSTRATE_SWARM_CONSTRAINT"),
        ..Default::default()
    };
    for pair in var("SUBSTRATE_SWARM_NODE_ENGINES").unwrap_or_default().split(',') {
        if let Some((node, endpoint)) = pair.split_once('=') {
            settings
                .node_engines
                .insert(node.trim().to_owned(), endpoint.trim().to_owned());
        }
    }
    if let Some(secs) = var("SUBSTRATE_SWARM_START_TIMEOUT").and_then(|s| s.parse::<u64>().ok()) {
        settings.start_timeout = std::time::Duration::from_secs(secs);
    }
    std::sync::Arc::new(SwarmEngine::new(namespace, settings))
}
