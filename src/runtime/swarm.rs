//! Docker Swarm through bollard's services API (SPEC §13, `docs/scale-out.md`).
//!
//! Terms: an instance is a Swarm **service** with one replica — its id is what
//! [`ContainerInfo::id`] names here — whose one **task** is a container on
//! some **node**. Services carry the labels containers carry on Docker
//! (namespace, instance, service, origin), sit on the attachable overlay
//! network `substrate-<namespace>`, are placed by a constraint on the node
//! that holds their spaces, and have restart policy `none`: the activator,
//! not Swarm, decides when an instance starts again (a restarted task would
//! be a second writer of its space behind the activator's back).
//!
//! The daemon runs on the host, where the overlay is not routable. It
//! reaches a task at the task container's address on its node's
//! `docker_gwbridge` (the bridge every overlay-attached container also
//! joins), read from that node's engine: the local one, or one named in
//! [`SwarmSettings::node_engines`]. Swarm has no pause and no task events:
//! pausing goes to the task's node engine (unsupported where the daemon has
//! none), and events are the local engine's container events plus a poll of
//! the namespace's tasks and the nodes' states.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, Limit, LocalNodeState, Mount, MountType, NetworkAttachmentConfig,
    NetworkCreateRequest, NodeState, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, Task, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{EventsOptions, InspectServiceOptions, ListServicesOptions, ListTasksOptions};
use futures_util::stream::{self, BoxStream};
use futures_util::StreamExt;
use tokio::sync::OnceCell;

use super::docker::map_err;
use super::{ContainerEvent, ContainerInfo, ContainerSpec, DockerEngine, Engine, RuntimeError, LABEL_NAMESPACE};

/// The image name a service was started from (its spec names the image id).
const LABEL_IMAGE: &str = "substrate.image";
/// The bridge through which a node's host reaches its overlay-attached containers.
const GATEWAY_BRIDGE: &str = "docker_gwbridge";
/// How often the event stream looks at the namespace's tasks and the nodes.
const TASK_POLL: Duration = Duration::from_secs(2);
/// How long a task gets to stop before Swarm kills it (with an init process,
/// SIGTERM reaches the service at once).
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long `remove` waits for the task's container to be gone.
const REMOVE_WAIT: Duration = Duration::from_secs(15);

/// Where instances run and how the daemon reaches nodes other than its own.
#[derive(Debug, Clone)]
pub struct SwarmSettings {
    /// The placement constraint of every instance, in Swarm's syntax
    /// (`node.labels.substrate.spaces==a`, `node.hostname==b`). `None`: the
    /// node of the daemon's own engine (`node.id==<its id>` from `docker info`),
    /// which is where the data directory and so the spaces are.
    pub constraint: Option<String>,
    /// Engine endpoints of other nodes, keyed by node id or hostname:
    /// `unix:///path/docker.sock`, `tcp://host:port` or `http://host:port`.
    /// A task on a node listed here is reached at its `docker_gwbridge`
    /// address (the host needs a route to that node's bridge subnet) and can
    /// be paused; a task on a node not listed cannot be reached.
    pub node_engines: BTreeMap<String, String>,
    /// How long a new service's task may take to be running (pending while no
    /// node satisfies the constraint, preparing, starting) before the start
    /// fails and the service is removed.
    pub start_timeout: Duration,
}

impl Default for SwarmSettings {
    fn default() -> Self {
        Self {
            constraint: None,
            node_engines: BTreeMap::new(),
            start_timeout: Duration::from_secs(30),
        }
    }
}

impl SwarmSettings {
    /// The settings from the environment: `SUBSTRATE_SWARM_CONSTRAINT`,
    /// `SUBSTRATE_SWARM_NODE_ENGINES` as `NODE=ENDPOINT,…` and
    /// `SUBSTRATE_SWARM_START_TIMEOUT` in seconds (default 30); unset or
    /// unparsable values keep their defaults.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
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
            settings.start_timeout = Duration::from_secs(secs);
        }
        settings
    }
}

/// A handle on a Docker Swarm (through a manager's engine, the local one) for
/// one namespace. Cheap to clone.
#[derive(Clone)]
pub struct SwarmEngine {
    /// The local engine: the manager's API, images, and the engine of tasks
    /// placed on this node.
    local: DockerEngine,
    namespace: String,
    network: String,
    settings: Arc<SwarmSettings>,
    network_ready: Arc<OnceCell<()>>,
    local_node: Arc<OnceCell<String>>,
    /// Clients of other nodes' engines, by node id.
    remotes: Arc<tokio::sync::Mutex<HashMap<String, bollard::Docker>>>,
    /// Service id → (task id, container id, node id, gateway address) of its
    /// running task, so inspecting a ready instance costs one task list.
    placed: Arc<Mutex<HashMap<String, Placed>>>,
}

#[derive(Debug, Clone)]
struct Placed {
    task: String,
    container: String,
    node: String,
    address: IpAddr,
}

/// What one task says about its service's container.
#[derive(Debug, Clone)]
struct TaskView {
    id: String,
    service: String,
    node: Option<String>,
    state: TaskState,
    desired: TaskState,
    container: Option<String>,
    exit_code: Option<i64>,
    /// Swarm's error or status message.
    message: String,
    created: String,
}

impl TaskView {
    fn of(t: Task) -> Option<TaskView> {
        let status = t.status.unwrap_or_default();
        let container = status.container_status.clone().unwrap_or_default();
        Some(TaskView {
            id: t.id?,
            service: t.service_id?,
            node: t.node_id.filter(|n| !n.is_empty()),
            state: status.state.unwrap_or(TaskState::NEW),
            desired: t.desired_state.unwrap_or(TaskState::NEW),
            container: container.container_id.filter(|c| !c.is_empty()),
            exit_code: container.exit_code,
            message: status
                .err
                .filter(|e| !e.is_empty())
                .or(status.message)
                .unwrap_or_default(),
            created: t.created_at.unwrap_or_default(),
        })
    }

    fn running(&self) -> bool {
        self.state == TaskState::RUNNING && self.desired == TaskState::RUNNING && self.container.is_some()
    }

    /// The task ended (or was refused) and will not run again.
    fn ended(&self) -> bool {
        matches!(
            self.state,
            TaskState::COMPLETE
                | TaskState::SHUTDOWN
                | TaskState::FAILED
                | TaskState::REJECTED
                | TaskState::REMOVE
                | TaskState::ORPHANED
        )
    }
}

/// The task that speaks for a service: the one Swarm wants running, else the newest.
fn current(tasks: &[TaskView], service: &str) -> Option<TaskView> {
    let mine = tasks.iter().filter(|t| t.service == service);
    let wanted = mine.clone().find(|t| t.desired == TaskState::RUNNING && !t.ended());
    wanted
        .or_else(|| mine.max_by(|a, b| a.created.cmp(&b.created)))
        .cloned()
}

/// A client for an engine endpoint (`unix://…`, `tcp://…`, `http://…`).
async fn connect(endpoint: &str) -> Result<bollard::Docker, RuntimeError> {
    let unavailable = |e: BollardError| RuntimeError::Unavailable(format!("{endpoint}: {e}"));
    let client = if let Some(path) = endpoint.strip_prefix("unix://") {
        bollard::Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION).map_err(unavailable)?
    } else {
        let url = endpoint.replacen("tcp://", "http://", 1);
        bollard::Docker::connect_with_http(&url, 120, bollard::API_DEFAULT_VERSION).map_err(unavailable)?
    };
    client.negotiate_version().await.map_err(unavailable)
}

impl SwarmEngine {
    /// A handle for `namespace` on the swarm the local engine (`DOCKER_HOST` or
    /// the local socket) belongs to; nothing is contacted yet.
    /// `host`: the local engine's API address (`None`: `DOCKER_HOST` or the
    /// local socket), the engine of the node the daemon runs on.
    pub fn new(namespace: &str, host: Option<String>, settings: SwarmSettings) -> Self {
        Self {
            local: DockerEngine::new(namespace, host),
            namespace: namespace.to_owned(),
            network: format!("substrate-{namespace}"),
            settings: Arc::new(settings),
            network_ready: Default::default(),
            local_node: Default::default(),
            remotes: Default::default(),
            placed: Default::default(),
        }
    }

    /// The overlay network of the namespace.
    pub fn network(&self) -> &str {
        &self.network
    }

    async fn client(&self) -> Result<bollard::Docker, RuntimeError> {
        self.local.client().await
    }

    /// The swarm node id of the local engine; an error when it is not in a swarm.
    pub async fn local_node_id(&self) -> Result<String, RuntimeError> {
        self.local_node
            .get_or_try_init(|| async {
                let info = self.client().await?.info().await.map_err(map_err)?;
                let swarm = info.swarm.unwrap_or_default();
                match (swarm.local_node_state, swarm.node_id) {
                    (Some(LocalNodeState::ACTIVE), Some(id)) if !id.is_empty() => Ok(id),
                    (state, _) => Err(RuntimeError::Docker(format!(
                        "the Docker Engine is not an active swarm node (state {}); run `docker swarm init` or join a swarm",
                        state.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into())
                    ))),
                }
            })
            .await
            .cloned()
    }

    /// The engine of `node`: the local one, or a configured endpoint (by
    /// node id or hostname); `None` when the daemon has no way to it.
    async fn node_client(&self, node: &str) -> Result<Option<bollard::Docker>, RuntimeError> {
        if node == self.local_node_id().await? {
            return self.client().await.map(Some);
        }
        if self.settings.node_engines.is_empty() {
            return Ok(None);
        }
        if let Some(c) = self.remotes.lock().await.get(node) {
            return Ok(Some(c.clone()));
        }
        let endpoint = match self.settings.node_engines.get(node) {
            Some(e) => Some(e.clone()),
            None => {
                let hostname = self
                    .client()
                    .await?
                    .inspect_node(node)
                    .await
                    .ok()
                    .and_then(|n| n.description)
                    .and_then(|d| d.hostname);
                hostname.and_then(|h| self.settings.node_engines.get(&h).cloned())
            }
        };
        let Some(endpoint) = endpoint else { return Ok(None) };
        let client = connect(&endpoint).await?;
        self.remotes.lock().await.insert(node.to_owned(), client.clone());
        Ok(Some(client))
    }

    /// The address of `container` on its node's `docker_gwbridge`.
    async fn gateway_address(client: &bollard::Docker, container: &str) -> Result<Option<IpAddr>, RuntimeError> {
        let bridge = match client.inspect_network(GATEWAY_BRIDGE, None).await {
            Ok(b) => b,
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
            Err(e) => return Err(map_err(e)),
        };
        Ok(bridge
            .containers
            .and_then(|mut c| c.remove(container))
            .and_then(|e| e.ipv4_address)
            .and_then(|a| a.split('/').next().and_then(|ip| ip.parse().ok())))
    }

    /// Where a running task can be reached, remembered per service.
    async fn locate(&self, task: &TaskView) -> Result<Option<IpAddr>, RuntimeError> {
        let (Some(node), Some(container)) = (&task.node, &task.container) else {
            return Ok(None);
        };
        if let Some(p) = self.placed_of(&task.service) {
            if p.task == task.id {
                return Ok(Some(p.address));
            }
        }
        let Some(client) = self.node_client(node).await? else {
            return Ok(None);
        };
        // The gateway endpoint can trail the task's running state by a moment.
        let mut delay = Duration::from_millis(5);
        for _ in 0..8 {
            if let Some(address) = Self::gateway_address(&client, container).await? {
                self.lock_placed().insert(
                    task.service.clone(),
                    Placed {
                        task: task.id.clone(),
                        container: container.clone(),
                        node: node.clone(),
                        address,
                    },
                );
                return Ok(Some(address));
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Ok(None)
    }

    fn lock_placed(&self) -> std::sync::MutexGuard<'_, HashMap<String, Placed>> {
        // The map holds plain values: one poisoned by a panic is still sound.
        self.placed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn placed_of(&self, service: &str) -> Option<Placed> {
        self.lock_placed().get(service).cloned()
    }

    fn namespace_filter(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_NAMESPACE}={}", self.namespace)],
        )])
    }

    /// Tasks, of one service or (with `None`) of every service.
    async fn tasks(&self, service: Option<&str>) -> Result<Vec<TaskView>, RuntimeError> {
        let filters = service.map(|s| HashMap::from([("service".to_owned(), vec![s.to_owned()])]));
        let options = ListTasksOptions { filters };
        let tasks = self.client().await?.list_tasks(Some(options)).await.map_err(map_err)?;
        let mut views: Vec<TaskView> = tasks.into_iter().filter_map(TaskView::of).collect();
        // A service filter by name also matches services whose name starts with it.
        if let Some(s) = service {
            views.retain(|t| t.service == s);
        }
        Ok(views)
    }

    /// Creates the namespace's attachable overlay network when missing.
    async fn ensure_network(&self) -> Result<(), RuntimeError> {
        self.network_ready
            .get_or_try_init(|| async {
                let client = self.client().await?;
                match client.inspect_network(&self.network, None).await {
                    Ok(n) if n.driver.as_deref() == Some("overlay") => return Ok(()),
                    Ok(n) => {
                        return Err(RuntimeError::Docker(format!(
                            "network {} exists with driver {}, but Swarm services need an attachable overlay of that name; \
                             remove it (docker network rm {}) once nothing uses it",
                            self.network,
                            n.driver.unwrap_or_default(),
                            self.network
                        )))
                    }
                    Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {}
                    Err(e) => return Err(map_err(e)),
                }
                let request = NetworkCreateRequest {
                    name: self.network.clone(),
                    driver: Some("overlay".into()),
                    attachable: Some(true),
                    labels: Some(HashMap::from([(LABEL_NAMESPACE.to_owned(), self.namespace.clone())])),
                    ..Default::default()
                };
                match client.create_network(request).await {
                    Ok(_) => {
                        tracing::info!(network = %self.network, "created overlay network");
                        Ok(())
                    }
                    Err(BollardError::DockerResponseServerError { status_code: 409, .. }) => Ok(()),
                    Err(e) => Err(map_err(e)),
                }
            })
            .await
            .map(|_| ())
    }

    /// The service spec of one instance.
    /// The service spec of one instance; `image` is the image's id (see [`Engine::start`]).
    fn service_spec(&self, spec: &ContainerSpec, image: &str, constraint: String) -> ServiceSpec {
        let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        labels.insert(LABEL_NAMESPACE.to_owned(), self.namespace.clone());
        labels.insert(LABEL_IMAGE.to_owned(), spec.image.clone());
        let mounts = spec
            .binds
            .iter()
            .map(|b| Mount {
                source: Some(b.source.display().to_string()),
                target: Some(b.destination.clone()),
                typ: Some(MountType::BIND),
                read_only: Some(b.read_only),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        let limits = (spec.memory_bytes.is_some() || spec.nano_cpus.is_some()).then(|| Limit {
            memory_bytes: spec.memory_bytes,
            nano_cpus: spec.nano_cpus,
            ..Default::default()
        });
        ServiceSpec {
            name: Some(spec.name.clone()),
            labels: Some(labels.clone()),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                ..Default::default()
            }),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(image.to_owned()),
                    // Swarm's `command` is Docker's entrypoint; `args` its CMD.
                    args: (!spec.command.is_empty()).then(|| spec.command.clone()),
                    env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    // On the container too, so the local engine's events
                    // and `docker ps` filter by namespace as on Docker.
                    labels: Some(labels),
                    mounts: (!mounts.is_empty()).then_some(mounts),
                    init: Some(spec.init),
                    stop_grace_period: Some(STOP_GRACE.as_nanos() as i64),
                    ..Default::default()
                }),
                resources: limits.map(|l| TaskSpecResources {
                    limits: Some(l),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    constraints: Some(vec![constraint]),
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some(self.network.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            // No virtual IP: nothing reaches an instance by its service name.
            endpoint_spec: Some(EndpointSpec {
                mode: Some(EndpointSpecModeEnum::DNSRR),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Waits until the service's task runs (or ended, or was refused).
    async fn wait_for_task(&self, service: &str) -> Result<TaskView, RuntimeError> {
        let deadline = tokio::time::Instant::now() + self.settings.start_timeout;
        let mut delay = Duration::from_millis(5);
        let mut last: Option<TaskView> = None;
        loop {
            let tasks = self.tasks(Some(service)).await?;
            if let Some(t) = current(&tasks, service) {
                if t.running() || matches!(t.state, TaskState::COMPLETE | TaskState::FAILED) {
                    return Ok(t);
                }
                if t.ended() {
                    return Err(RuntimeError::Docker(format!(
                        "the service's task was {}: {}",
                        t.state, t.message
                    )));
                }
                last = Some(t);
            }
            if tokio::time::Instant::now() >= deadline {
                let state = last
                    .map(|t| format!("{} ({})", t.state, t.message))
                    .unwrap_or_else(|| "no task".into());
                return Err(RuntimeError::Docker(format!(
                    "the service's task did not run within {} s: {state}",
                    self.settings.start_timeout.as_secs()
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    async fn info_of(
        &self,
        id: String,
        name: String,
        labels: BTreeMap<String, String>,
        task: Option<TaskView>,
    ) -> ContainerInfo {
        let running = task.as_ref().is_some_and(TaskView::running);
        let address = match &task {
            Some(t) if running => self.locate(t).await.unwrap_or_else(|e| {
                tracing::debug!(service = %id, error = %e, "cannot read the task's address");
                None
            }),
            _ => None,
        };
        ContainerInfo {
            id,
            name,
            running,
            address,
            labels,
            exit_code: task.and_then(|t| t.exit_code),
        }
    }

    /// Where the service's task container is, and a client of its node's engine.
    async fn task_container(&self, service: &str) -> Result<(TaskView, Option<bollard::Docker>), RuntimeError> {
        let task = match current(&self.tasks(Some(service)).await?, service) {
            Some(t) => t,
            None => return Err(RuntimeError::NoSuchContainer(format!("service {service} has no task"))),
        };
        let client = match &task.node {
            Some(node) => self.node_client(node).await?,
            None => None,
        };
        Ok((task, client))
    }

    async fn set_paused(&self, service: &str, pause: bool) -> Result<(), RuntimeError> {
        let (node, container) = match self.placed_of(service) {
            Some(p) => (p.node, p.container),
            None => {
                let task = match current(&self.tasks(Some(service)).await?, service) {
                    Some(t) => t,
                    None => return Err(RuntimeError::NoSuchContainer(format!("service {service} has no task"))),
                };
                match (task.node, task.container) {
                    (Some(n), Some(c)) => (n, c),
                    _ => {
                        return Err(RuntimeError::NoSuchContainer(format!(
                            "service {service} has no container"
                        )))
                    }
                }
            }
        };
        let Some(client) = self.node_client(&node).await? else {
            return Err(RuntimeError::Unsupported(format!(
                "Swarm has no pause, and the task of service {service} runs on node {node} whose engine the daemon cannot reach"
            )));
        };
        let result = if pause {
            client.pause_container(&container).await
        } else {
            client.unpause_container(&container).await
        };
        result.map_err(map_err)
    }

    /// Waits until a removed service's container is gone (bounded), so no
    /// second container mounts its spaces meanwhile.
    async fn wait_gone(&self, service: &str, task: Option<(TaskView, Option<bollard::Docker>)>) {
        let deadline = tokio::time::Instant::now() + REMOVE_WAIT;
        let mut delay = Duration::from_millis(10);
        loop {
            let gone = match &task {
                Some((TaskView { container: Some(c), .. }, Some(client))) => {
                    match client.inspect_container(c, None).await {
                        Ok(i) => !i.state.and_then(|s| s.running).unwrap_or(false),
                        Err(_) => true,
                    }
                }
                // No engine of that node: the manager's view of the tasks.
                _ => self
                    .tasks(Some(service))
                    .await
                    .map(|ts| ts.iter().all(TaskView::ended))
                    .unwrap_or(true),
            };
            if gone || tokio::time::Instant::now() >= deadline {
                if !gone {
                    tracing::warn!(service, "the removed service's container is still running");
                }
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
        }
    }

    /// Services of the namespace that are gone or whose task ended or sits on
    /// a node that is down, seen from the manager.
    async fn poll_gone(&self, alive: &mut HashSet<String>) -> Result<Vec<String>, RuntimeError> {
        let client = self.client().await?;
        let options = ListServicesOptions {
            filters: Some(self.namespace_filter()),
            ..Default::default()
        };
        let services: HashSet<String> = client
            .list_services(Some(options))
            .await
            .map_err(map_err)?
            .into_iter()
            .filter_map(|s| s.id)
            .collect();
        let tasks = self.tasks(None).await?;
        let down: HashSet<String> = client
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await
            .map_err(map_err)?
            .into_iter()
            .filter(|n| n.status.as_ref().and_then(|s| s.state) == Some(NodeState::DOWN))
            .filter_map(|n| n.id)
            .collect();
        let mut gone: Vec<String> = alive.difference(&services).cloned().collect();
        let mut now_alive = HashSet::new();
        for service in services {
            match current(&tasks, &service) {
                Some(t) if t.ended() || t.node.as_ref().is_some_and(|n| down.contains(n)) => {
                    if alive.contains(&service) {
                        gone.push(service);
                    }
                }
                // Starting (or not yet scheduled) counts as alive.
                _ => {
                    now_alive.insert(service);
                }
            }
        }
        *alive = now_alive;
        Ok(gone)
    }
}

#[async_trait::async_trait]
impl Engine for SwarmEngine {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.local.ping().await
    }

    /// Looks on the local engine: a single node uses its images; more nodes
    /// need the image on each (a registry, or `docker save | docker load`).
    async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        self.local.image_exists(image).await
    }

    /// Creates the instance's service — its image named by the local
    /// image's id, which Swarm uses as it is where a name would first be
    /// pulled — and waits until its task runs (bounded by
    /// [`SwarmSettings::start_timeout`]). Returns the service id, its name,
    /// and the task container's address on its node's `docker_gwbridge`.
    /// A task that exited at once is returned not running, with its exit
    /// code. Errors: [`RuntimeError::ImageMissing`] when the local engine has
    /// no such image; [`RuntimeError::Docker`] when the task was rejected,
    /// did not run in time (with Swarm's reason, e.g. "no suitable node"), or
    /// runs on a node the daemon cannot reach — the service is then removed;
    /// [`RuntimeError::Unavailable`] when the engine cannot be reached.
    async fn start(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
        self.ensure_network().await?;
        let constraint = match &self.settings.constraint {
            Some(c) => c.clone(),
            None => format!("node.id=={}", self.local_node_id().await?),
        };
        // By image id: a task pulls a named image before it runs (seconds
        // without a registry); an id it takes from its node as it is.
        let image = match self.client().await?.inspect_image(&spec.image).await {
            Ok(i) => i.id.unwrap_or_else(|| spec.image.clone()),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {
                return Err(RuntimeError::ImageMissing(spec.image.clone()))
            }
            Err(e) => return Err(map_err(e)),
        };
        let service_spec = self.service_spec(spec, &image, constraint);
        let labels = service_spec.labels.clone().unwrap_or_default().into_iter().collect();
        let created = self
            .client()
            .await?
            .create_service(service_spec, None)
            .await
            .map_err(map_err)?;
        let Some(id) = created.id else {
            return Err(RuntimeError::Docker("the service was created without an id".into()));
        };
        let task = match self.wait_for_task(&id).await {
            Ok(t) => t,
            Err(e) => {
                let _ = self.remove(&id).await;
                return Err(e);
            }
        };
        let info = self
            .info_of(id.clone(), spec.name.clone(), labels, Some(task.clone()))
            .await;
        if info.running && info.address.is_none() {
            let _ = self.remove(&id).await;
            return Err(RuntimeError::Docker(format!(
                "the task runs on node {} but the daemon cannot reach it there: name that node's engine in the Swarm settings",
                task.node.unwrap_or_default()
            )));
        }
        Ok(info)
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        let client = self.client().await?;
        let service = match client.inspect_service(id, None::<InspectServiceOptions>).await {
            Ok(s) => s,
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Ok(None),
            Err(e) => return Err(map_err(e)),
        };
        let Some(service_id) = service.id else { return Ok(None) };
        let spec = service.spec.unwrap_or_default();
        let tasks = self.tasks(Some(&service_id)).await?;
        let task = current(&tasks, &service_id);
        Ok(Some(
            self.info_of(
                service_id,
                spec.name.unwrap_or_default(),
                spec.labels.unwrap_or_default().into_iter().collect(),
                task,
            )
            .await,
        ))
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, RuntimeError> {
        let client = self.client().await?;
        super::docker::collect_logs(client.service_logs(id, Some(super::docker::logs_tail_options(lines)))).await
    }

    /// Removes the service and waits (at most 15 s) until its container is
    /// gone; an absent service is fine.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let task = self.task_container(id).await.ok();
        self.lock_placed().remove(id);
        // Stopped through its node's engine first: Swarm alone takes seconds
        // longer to get to it after the service is deleted.
        if let Some((TaskView { container: Some(c), .. }, Some(client))) = &task {
            let stop = bollard::query_parameters::StopContainerOptions {
                t: Some(STOP_GRACE.as_secs() as i32),
                ..Default::default()
            };
            if let Err(e) = client.stop_container(c, Some(stop)).await {
                tracing::debug!(service = id, error = %e, "could not stop the task's container; Swarm will");
            }
        }
        match self.client().await?.delete_service(id).await {
            Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => return Err(map_err(e)),
        }
        self.wait_gone(id, task).await;
        Ok(())
    }

    /// Every service of the namespace, with its current task's state.
    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let options = ListServicesOptions {
            filters: Some(self.namespace_filter()),
            ..Default::default()
        };
        let services = self
            .client()
            .await?
            .list_services(Some(options))
            .await
            .map_err(map_err)?;
        let tasks = self.tasks(None).await?;
        let mut out = Vec::new();
        for s in services {
            let Some(id) = s.id else { continue };
            let spec = s.spec.unwrap_or_default();
            let task = current(&tasks, &id);
            out.push(
                self.info_of(
                    id,
                    spec.name.unwrap_or_default(),
                    spec.labels.unwrap_or_default().into_iter().collect(),
                    task,
                )
                .await,
            );
        }
        Ok(out)
    }

    /// Builds on the local engine (see [`SwarmEngine::image_exists`]).
    async fn build_image(&self, spec: &super::build::BuildSpec) -> Result<(), RuntimeError> {
        self.local.build_image(spec).await
    }

    /// Pauses the task's container through its node's engine;
    /// [`RuntimeError::Unsupported`] when the daemon has none for that node.
    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.set_paused(id, true).await
    }

    async fn unpause(&self, id: &str) -> Result<(), RuntimeError> {
        self.set_paused(id, false).await
    }

    /// `Gone` with the service id when its task's container dies on the local
    /// engine (at once), or when the manager shows its task ended, its node
    /// down or the service removed (within [`TASK_POLL`]). Ends when the local
    /// engine's event stream or the manager's API fails.
    async fn events(&self) -> Result<BoxStream<'static, ContainerEvent>, RuntimeError> {
        let mut filters = self.namespace_filter();
        filters.insert("type".into(), vec!["container".into()]);
        filters.insert("event".into(), vec!["die".into(), "destroy".into()]);
        let options = EventsOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let client = self.client().await?;
        let local = client
            .events(Some(options))
            .take_while(|e| futures_util::future::ready(e.is_ok()))
            .filter_map(|e| async move {
                let service = e.ok()?.actor?.attributes?.remove("com.docker.swarm.service.id")?;
                Some(Some(ContainerEvent::Gone { id: service }))
            })
            // The end of the engine's stream ends the whole.
            .chain(stream::once(async { None }));
        let mut alive = HashSet::new();
        // The first poll only learns what is alive.
        self.poll_gone(&mut alive).await?;
        let engine = self.clone();
        let polled = stream::unfold((engine, alive), |(engine, mut alive)| async move {
            tokio::time::sleep(TASK_POLL).await;
            match engine.poll_gone(&mut alive).await {
                Ok(gone) => Some((
                    stream::iter(gone.into_iter().map(|id| Some(ContainerEvent::Gone { id }))).boxed(),
                    (engine, alive),
                )),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the swarm's tasks");
                    Some((stream::iter([None]).boxed(), (engine, alive)))
                }
            }
        })
        .flatten();
        Ok(stream::select(local, polled)
            .take_while(|e| futures_util::future::ready(e.is_some()))
            .filter_map(futures_util::future::ready)
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, state: TaskState, desired: TaskState, created: &str) -> TaskView {
        TaskView {
            id: id.into(),
            service: "s".into(),
            node: Some("n".into()),
            state,
            desired,
            container: Some(format!("c-{id}")),
            exit_code: None,
            message: String::new(),
            created: created.into(),
        }
    }

    #[test]
    fn the_current_task_is_the_wanted_one_else_the_newest() {
        let old = task("old", TaskState::FAILED, TaskState::SHUTDOWN, "2026-01-01T00:00:01Z");
        let new = task("new", TaskState::STARTING, TaskState::RUNNING, "2026-01-01T00:00:02Z");
        assert_eq!(current(&[old.clone(), new.clone()], "s").unwrap().id, "new");
        let newer_failed = task("nf", TaskState::FAILED, TaskState::SHUTDOWN, "2026-01-01T00:00:03Z");
        assert_eq!(current(&[old.clone(), newer_failed], "s").unwrap().id, "nf");
        assert!(current(&[old], "other").is_none());
        assert!(new.running() || new.state != TaskState::RUNNING);
    }

    #[test]
    fn a_service_spec_has_one_replica_no_restart_and_the_constraint() {
        let engine = SwarmEngine::new("t", None, SwarmSettings::default());
        let spec = ContainerSpec {
            name: "substrate-echo-x".into(),
            image: "substrate-echo".into(),
            command: vec!["serve".into()],
            binds: vec![super::super::Bind {
                source: "/data/spaces/sp-1/tree".into(),
                destination: "/spaces/data/tree".into(),
                read_only: false,
            }],
            init: true,
            ..Default::default()
        };
        let s = engine.service_spec(&spec, "sha256:0123", "node.id==abc".into());
        assert_eq!(s.labels.as_ref().unwrap()[LABEL_NAMESPACE], "t");
        let mode = s.mode.unwrap().replicated.unwrap();
        assert_eq!(mode.replicas, Some(1));
        let t = s.task_template.unwrap();
        assert_eq!(
            t.restart_policy.unwrap().condition,
            Some(TaskSpecRestartPolicyConditionEnum::NONE)
        );
        assert_eq!(t.placement.unwrap().constraints.unwrap(), vec!["node.id==abc"]);
        let c = t.container_spec.unwrap();
        assert_eq!(c.image.as_deref(), Some("sha256:0123"));
        assert_eq!(c.args.unwrap(), vec!["serve"]);
        assert!(c.command.is_none(), "the image's entrypoint is kept");
        assert_eq!(c.mounts.unwrap()[0].target.as_deref(), Some("/spaces/data/tree"));
        assert_eq!(t.networks.unwrap()[0].target.as_deref(), Some("substrate-t"));
    }
}
