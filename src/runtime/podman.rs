//! Podman through its Docker-compatible API (`podman system service`): the
//! Docker engine's client, with what Podman does differently decided here.
//!
//! Checked against podman 4.3.1 (Debian 12), rootful, on cgroups v1:
//!
//! - **Image names.** Podman keeps an image without a registry in its name
//!   under `localhost/` (`podman build -t substrate-echo`, and
//!   `docker save substrate-echo | podman load`, give
//!   `localhost/substrate-echo`), while its Docker API files a short name
//!   built through it under `docker.io/library/`. Here every local image is
//!   built, looked up and started as `localhost/NAME` ([`local_image_name`]),
//!   falling back to the name as written (Podman resolves short names) for
//!   an image that came from elsewhere.
//! - **Events.** The API reports `die` and `remove` (Docker: `die`,
//!   `destroy`), but its `event` filter matches Podman's own names: `died`,
//!   not `die`. A filter of `die` silently matches nothing.
//! - **Networks.** Creating a network that exists answers 500 ("network
//!   already exists"), not 409; the Docker engine re-inspects on any refusal.
//!   Bridge networks made through the API get Podman's DNS (aardvark-dns).
//! - **Pause.** Works rootful (cgroups v1 freezer; v2 has its own freezer,
//!   not checked here). Stopping a
//!   paused container is refused (500, "container state improper"), where
//!   Docker stops it: the Docker engine resumes it and stops again.
//! - **`init: true`** needs the `catatonit` package ("container-init binary
//!   not found" without it); **logs** come multiplexed as from Docker.
//! - **Missing images** answer "no such image: X: image not known" (Docker:
//!   "No such image: X"); the error mapping reads both.

use futures_util::stream::BoxStream;

use super::build::BuildSpec;
use super::{ContainerEvent, ContainerInfo, ContainerSpec, DockerEngine, Engine, RuntimeError};

/// Where `podman system service` listens when run as root.
pub const DEFAULT_SOCKET: &str = "unix:///run/podman/podman.sock";

/// A handle on Podman for one namespace. Cheap to clone.
#[derive(Clone)]
pub struct PodmanEngine {
    api: DockerEngine,
}

impl PodmanEngine {
    /// A handle for `namespace` on the service at `host` (`None`:
    /// [`DEFAULT_SOCKET`]); nothing is contacted yet.
    pub fn new(namespace: &str, host: Option<String>) -> Self {
        let host = host.unwrap_or_else(|| DEFAULT_SOCKET.to_owned());
        Self {
            api: DockerEngine::new(namespace, Some(host)),
        }
    }
}

/// The name Podman stores a local image under: a reference without a
/// registry (no `.` or `:` in its first component, and not `localhost`)
/// goes under `localhost/`, as `podman build` and `podman load` name it.
pub fn local_image_name(image: &str) -> String {
    let first = image.split('/').next().unwrap_or(image);
    let has_registry = image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry || image.contains('@') || image.starts_with("sha256:") {
        image.to_owned()
    } else {
        format!("localhost/{image}")
    }
}

#[async_trait::async_trait]
impl Engine for PodmanEngine {
    fn namespace(&self) -> &str {
        self.api.namespace()
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.api.ping().await
    }

    async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        let local = local_image_name(image);
        if self.api.image_exists(&local).await? {
            return Ok(true);
        }
        if local == image {
            return Ok(false);
        }
        self.api.image_exists(image).await
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
        let local = local_image_name(&spec.image);
        if local == spec.image {
            return self.api.start(spec).await;
        }
        let qualified = ContainerSpec {
            image: local,
            ..spec.clone()
        };
        match self.api.start(&qualified).await {
            // Not ours: an image Podman finds by its short name.
            Err(RuntimeError::ImageMissing(_)) => self.api.start(spec).await,
            other => other,
        }
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        self.api.inspect(id).await
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, RuntimeError> {
        self.api.logs_tail(id, lines).await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.api.remove(id).await
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.api.list().await
    }

    async fn build_image(&self, spec: &BuildSpec) -> Result<(), RuntimeError> {
        let local = BuildSpec {
            image: local_image_name(&spec.image),
            ..spec.clone()
        };
        self.api.build_image(&local).await
    }

    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.api.pause(id).await
    }

    async fn unpause(&self, id: &str) -> Result<(), RuntimeError> {
        self.api.unpause(id).await
    }

    async fn events(&self) -> Result<BoxStream<'static, ContainerEvent>, RuntimeError> {
        self.api.gone_events(&["died", "remove"]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_images_go_under_localhost() {
        assert_eq!(local_image_name("substrate-echo"), "localhost/substrate-echo");
        assert_eq!(local_image_name("substrate-echo:v2"), "localhost/substrate-echo:v2");
        assert_eq!(local_image_name("team/app"), "localhost/team/app");
        assert_eq!(local_image_name("localhost/substrate-echo"), "localhost/substrate-echo");
        assert_eq!(
            local_image_name("docker.io/library/busybox"),
            "docker.io/library/busybox"
        );
        assert_eq!(local_image_name("registry:5000/app"), "registry:5000/app");
        assert_eq!(local_image_name("app@sha256:abcd"), "app@sha256:abcd");
        assert_eq!(local_image_name("sha256:abcd"), "sha256:abcd");
    }
}
