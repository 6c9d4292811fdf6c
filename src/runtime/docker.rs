//! Docker Engine through bollard: connection and API version negotiation,
//! the namespace's bridge network, containers, events and image builds.
//!
//! The same client drives Podman's Docker-compatible API; what Podman does
//! differently is decided in [`super::podman`], which wraps this engine.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, HostConfig, NetworkCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptions, EventsOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use futures_util::StreamExt;
use tokio::sync::OnceCell;

use super::{ContainerEvent, ContainerInfo, ContainerSpec, Engine, RuntimeError, LABEL_NAMESPACE};

/// A handle on the Docker Engine for one namespace. Cheap to clone.
///
/// The client is made on first use (and again after a failure to make it),
/// so a daemon starts while Docker is down and works once it is back.
#[derive(Clone)]
pub struct DockerEngine {
    client: std::sync::Arc<tokio::sync::RwLock<Option<bollard::Docker>>>,
    /// The API address; `None`: `DOCKER_HOST` or the local socket.
    host: Option<String>,
    namespace: String,
    network: String,
    network_ready: std::sync::Arc<OnceCell<()>>,
}

/// The options for the last `lines` lines of stdout and stderr.
pub(super) fn logs_tail_options(lines: usize) -> LogsOptions {
    LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    }
}

/// A log stream's chunks (stdout and stderr as they came) as one string.
pub(super) async fn collect_logs(
    stream: impl futures_util::Stream<Item = Result<bollard::container::LogOutput, BollardError>>,
) -> Result<String, RuntimeError> {
    let mut stream = std::pin::pin!(stream);
    let mut out = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => out.push_str(&String::from_utf8_lossy(&c.into_bytes())),
            Err(e) => return Err(map_err(e)),
        }
    }
    Ok(out)
}

/// Maps bollard's errors to ours: transport failures mean the engine is
/// unavailable; answers carry Docker's own message.
pub(super) fn map_err(e: BollardError) -> RuntimeError {
    match e {
        BollardError::DockerResponseServerError { status_code, message } => {
            // Docker says "No such image: X", Podman "no such image: X: image not known".
            const MISSING: &str = "no such image: ";
            if let (404, Some(at)) = (status_code, message.to_ascii_lowercase().find(MISSING)) {
                let image = &message[at + MISSING.len()..];
                RuntimeError::ImageMissing(image.trim_end_matches(": image not known").to_owned())
            } else if status_code == 404 {
                RuntimeError::NoSuchContainer(message)
            } else {
                RuntimeError::Docker(message)
            }
        }
        other => RuntimeError::Unavailable(other.to_string()),
    }
}

impl DockerEngine {
    /// A handle for `namespace` on the engine at `host` (`None`:
    /// `DOCKER_HOST` or the local socket); nothing is contacted yet.
    pub fn new(namespace: &str, host: Option<String>) -> Self {
        Self {
            client: Default::default(),
            host,
            namespace: namespace.to_owned(),
            network: format!("substrate-{namespace}"),
            network_ready: Default::default(),
        }
    }

    /// The client, made on first use with an API version both sides speak
    /// (Engine 20.10 and Podman 4.3 speak 1.41).
    pub async fn client(&self) -> Result<bollard::Docker, RuntimeError> {
        if let Some(c) = self.client.read().await.as_ref() {
            return Ok(c.clone());
        }
        let mut slot = self.client.write().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let client = match &self.host {
            Some(host) => bollard::Docker::connect_with_host(host),
            None => bollard::Docker::connect_with_defaults(),
        }
        .map_err(|e| RuntimeError::Unavailable(e.to_string()))?;
        let client = match client.clone().negotiate_version().await {
            Ok(negotiated) => negotiated,
            Err(e) => return Err(RuntimeError::Unavailable(e.to_string())),
        };
        *slot = Some(client.clone());
        Ok(client)
    }

    /// The bridge network of the namespace.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Creates the namespace's bridge network when missing.
    async fn ensure_network(&self) -> Result<(), RuntimeError> {
        self.network_ready
            .get_or_try_init(|| async {
                let client = self.client().await?;
                match client.inspect_network(&self.network, None).await {
                    Ok(_) => return Ok(()),
                    Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {}
                    Err(e) => return Err(map_err(e)),
                }
                let request = NetworkCreateRequest {
                    name: self.network.clone(),
                    driver: Some("bridge".into()),
                    labels: Some(HashMap::from([(LABEL_NAMESPACE.to_owned(), self.namespace.clone())])),
                    ..Default::default()
                };
                match client.create_network(request).await {
                    Ok(_) => {
                        tracing::info!(network = %self.network, "created network");
                        Ok(())
                    }
                    // Created concurrently by another daemon of the namespace:
                    // Docker answers 409, Podman 500 "network already exists".
                    Err(e @ BollardError::DockerResponseServerError { .. }) => {
                        match client.inspect_network(&self.network, None).await {
                            Ok(_) => Ok(()),
                            Err(_) => Err(map_err(e)),
                        }
                    }
                    Err(e) => Err(map_err(e)),
                }
            })
            .await
            .map(|_| ())
    }

    fn info_from(&self, c: ContainerInspectResponse) -> ContainerInfo {
        let state = c.state.unwrap_or_default();
        let address = c
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(&self.network))
            .and_then(|e| e.ip_address)
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c.name.unwrap_or_default().trim_start_matches('/').to_owned(),
            running: state.running.unwrap_or(false),
            address,
            labels: c
                .config
                .and_then(|c| c.labels)
                .map(|l| l.into_iter().collect())
                .unwrap_or_default(),
            exit_code: state.exit_code,
        }
    }

    fn namespace_filter(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_NAMESPACE}={}", self.namespace)],
        )])
    }
}

#[async_trait::async_trait]
impl Engine for DockerEngine {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        let client = self.client().await?;
        match tokio::time::timeout(Duration::from_secs(2), client.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(RuntimeError::Unavailable(e.to_string())),
            Err(_) => Err(RuntimeError::Unavailable("no answer within 2 s".into())),
        }
    }

    async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.client().await?.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
        self.ensure_network().await?;
        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.insert(LABEL_NAMESPACE.to_owned(), self.namespace.clone());
        let binds: Vec<String> = spec
            .binds
            .iter()
            .map(|b| {
                format!(
                    "{}:{}:{}",
                    b.source.display(),
                    b.destination,
                    if b.read_only { "ro" } else { "rw" }
                )
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            host_config: Some(HostConfig {
                init: Some(spec.init),
                binds: (!binds.is_empty()).then_some(binds),
                memory: spec.memory_bytes,
                nano_cpus: spec.nano_cpus,
                network_mode: Some(self.network.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let client = self.client().await?;
        let created = client.create_container(Some(options), body).await.map_err(map_err)?;
        if let Err(e) = client.start_container(&created.id, None).await {
            let _ = self.remove(&created.id).await;
            return Err(map_err(e));
        }
        let inspected = client.inspect_container(&created.id, None).await.map_err(map_err)?;
        Ok(self.info_from(inspected))
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        match self.client().await?.inspect_container(id, None).await {
            Ok(c) => Ok(Some(self.info_from(c))),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, RuntimeError> {
        let client = self.client().await?;
        collect_logs(client.logs(id, Some(logs_tail_options(lines)))).await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        // With an init process SIGTERM reaches the service at once; give it a
        // moment to flush before the kill.
        let stop = StopContainerOptions {
            t: Some(3),
            ..Default::default()
        };
        let client = self.client().await?;
        let mut stopped = client.stop_container(id, Some(stop.clone())).await;
        if let Err(BollardError::DockerResponseServerError { status_code: 500, .. }) = &stopped {
            // Podman refuses to stop a paused container (Docker does not):
            // resume it so the service still gets its SIGTERM.
            if client.unpause_container(id).await.is_ok() {
                stopped = client.stop_container(id, Some(stop)).await;
            }
        }
        match stopped {
            Ok(()) => {}
            Err(BollardError::DockerResponseServerError {
                status_code: 304 | 404, ..
            }) => {}
            Err(e) => tracing::debug!(container = id, error = %e, "stop failed; removing by force"),
        }
        let rm = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match client.remove_container(id, Some(rm)).await {
            Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            // Removal already in progress.
            Err(BollardError::DockerResponseServerError { status_code: 409, .. }) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(self.namespace_filter()),
            ..Default::default()
        };
        let summaries = self
            .client()
            .await?
            .list_containers(Some(options))
            .await
            .map_err(map_err)?;
        Ok(summaries
            .into_iter()
            .map(|s| {
                let address = s
                    .network_settings
                    .and_then(|n| n.networks)
                    .and_then(|mut n| n.remove(&self.network))
                    .and_then(|e| e.ip_address)
                    .and_then(|ip| ip.parse().ok());
                ContainerInfo {
                    id: s.id.unwrap_or_default(),
                    name: s
                        .names
                        .and_then(|n| n.into_iter().next())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_owned(),
                    // As `inspect` says: a paused container is running.
                    running: s
                        .state
                        .is_some_and(|st| matches!(st.to_string().as_str(), "running" | "paused")),
                    address,
                    labels: s
                        .labels
                        .map(|l| l.into_iter().collect::<BTreeMap<_, _>>())
                        .unwrap_or_default(),
                    exit_code: None,
                }
            })
            .collect())
    }

    async fn build_image(&self, spec: &super::build::BuildSpec) -> Result<(), RuntimeError> {
        self.build_with_docker(spec).await
    }

    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.client().await?.pause_container(id).await.map_err(map_err)
    }

    async fn unpause(&self, id: &str) -> Result<(), RuntimeError> {
        self.client().await?.unpause_container(id).await.map_err(map_err)
    }

    async fn events(&self) -> Result<futures_util::stream::BoxStream<'static, ContainerEvent>, RuntimeError> {
        self.gone_events(&["die", "destroy"]).await
    }
}

impl DockerEngine {
    /// The namespace's containers that die or are removed, filtered by the
    /// engine with `actions`: the names under which it files those events.
    pub(super) async fn gone_events(
        &self,
        actions: &[&str],
    ) -> Result<futures_util::stream::BoxStream<'static, ContainerEvent>, RuntimeError> {
        let mut filters = self.namespace_filter();
        filters.insert("type".into(), vec!["container".into()]);
        filters.insert("event".into(), actions.iter().map(|a| a.to_string()).collect());
        let options = EventsOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let client = self.client().await?;
        let stream = client
            .events(Some(options))
            .take_while(|e| futures_util::future::ready(e.is_ok()))
            .filter_map(|e| async move {
                let id = e.ok()?.actor?.id?;
                Some(ContainerEvent::Gone { id })
            })
            .boxed();
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_images_read_alike_from_docker_and_podman() {
        let answers = [
            ("No such image: substrate-echo:latest", "substrate-echo:latest"),
            (
                "no such image: docker.io/library/substrate-echo: image not known",
                "docker.io/library/substrate-echo",
            ),
        ];
        for (message, image) in answers {
            let e = map_err(BollardError::DockerResponseServerError {
                status_code: 404,
                message: message.to_owned(),
            });
            assert!(matches!(&e, RuntimeError::ImageMissing(i) if i == image), "{e:?}");
        }
        let e = map_err(BollardError::DockerResponseServerError {
            status_code: 404,
            message: "no container with name or ID \"x\" found: no such container".to_owned(),
        });
        assert!(matches!(e, RuntimeError::NoSuchContainer(_)), "{e:?}");
    }
}
