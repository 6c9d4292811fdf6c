//! The container engine behind a small trait, so the activator can be tested
//! with a fake and run on a real engine: the Docker Engine ([`docker`]) or
//! Podman through its Docker-compatible socket ([`podman`]). [`connect`] is
//! the one place that turns the `engine` setting into an engine; nothing
//! outside this module knows which one runs.
//!
//! Terms: a *container spec* is everything needed to create one container;
//! the engine owns the per-namespace bridge network and labels every object
//! `substrate.namespace=<namespace>`, and only ever lists, stops or removes
//! objects carrying its own namespace label.

pub mod build;
pub mod docker;
pub mod podman;
pub mod swarm;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use docker::DockerEngine;
pub use podman::PodmanEngine;
pub use swarm::{SwarmEngine, SwarmSettings};

/// Which container engine the daemon drives (the `engine` setting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EngineKind {
    /// The Docker Engine, at `DOCKER_HOST` or the local socket.
    #[default]
    Docker,
    /// Podman's Docker-compatible API (`podman system service`).
    Podman,
    /// Docker Swarm: instances as one-replica services.
    Swarm,
}

impl EngineKind {
    pub const NAMES: &'static str = "docker, podman or swarm";

    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Docker => "docker",
            EngineKind::Podman => "podman",
            EngineKind::Swarm => "swarm",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "docker" => Ok(EngineKind::Docker),
            "podman" => Ok(EngineKind::Podman),
            "swarm" => Ok(EngineKind::Swarm),
            _ => Err(format!("invalid engine {s:?}: expected {}", EngineKind::NAMES)),
        }
    }
}

/// How to reach the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineSettings {
    pub kind: EngineKind,
    /// The engine's API address (`unix:///…`, `tcp://…`); `None`: the
    /// engine's default (`DOCKER_HOST` or `/var/run/docker.sock` for Docker,
    /// [`podman::DEFAULT_SOCKET`] for Podman).
    pub host: Option<String>,
}

/// The engine the settings name, acting for `namespace`. Nothing is contacted
/// yet: a daemon starts while its engine is down and works once it is back.
pub fn connect(settings: &EngineSettings, namespace: &str) -> Result<Arc<dyn Engine>, RuntimeError> {
    match settings.kind {
        EngineKind::Docker => Ok(Arc::new(DockerEngine::new(namespace, settings.host.clone()))),
        EngineKind::Podman => Ok(Arc::new(PodmanEngine::new(namespace, settings.host.clone()))),
        EngineKind::Swarm => Ok(Arc::new(SwarmEngine::new(
            namespace,
            settings.host.clone(),
            SwarmSettings::from_env(),
        ))),
    }
}

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
