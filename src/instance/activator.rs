//! The activator: turns "a request for instance K" into a ready container.
//!
//! One start per key, however many requests arrive: the first request
//! registers a `starting` slot and spawns the start in its own task (so a
//! client that gives up does not cancel it for the others); the rest wait on
//! it. A request for a key that is `stopping` waits for the stop to finish,
//! then starts anew. A failed start is not cached: the next request tries
//! again. A start that mounts a space read-write first waits for any other
//! container that mounts it read-write to be stopped, and is refused while
//! a live one does (one writer per space, SPEC §4). A start never creates a
//! container on a space that is deleted or being deleted (a request that
//! waited out a stop while the space was force-deleted is told it is gone).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{readiness, rw_spaces, spaces_of, Clock, Instance, StartRequest};
use crate::catalog::Catalog;
use crate::defs::InstanceSpec;
use crate::ids::SpaceId;
use crate::runtime::{Bind, ContainerSpec, Engine, RuntimeError, LABEL_INSTANCE, LABEL_ORIGIN, LABEL_SERVICE};
use crate::store::{now_millis, InstanceRecord, InstanceState, Store};

/// Why an instance could not be started. Shown to the client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StartError {
    #[error("the definition of {service} does not resolve: {message}")]
    Definition { service: String, message: String },
    #[error("image {image} is missing and no enabled imagespec builds it")]
    ImageMissing { image: String },
    #[error("building image {image} failed: {message}")]
    Build { image: String, message: String },
    #[error("the container exited during start-up{}", code.map(|c| format!(" (exit code {c})")).unwrap_or_default())]
    Exited { code: Option<i64>, logs: String },
    /// The readiness deadline passed; `cause` says what the last probe saw.
    #[error("the container was not ready on port {port} within {}s: {cause}", timeout.as_secs())]
    Timeout {
        port: u16,
        timeout: Duration,
        cause: readiness::ProbeFailure,
        logs: String,
    },
    #[error("space {space} is mounted read-write by the running instance {holder}; one container writes a space at a time: stop that instance, or mount the space read-only ({space}:ro)")]
    SpaceInUse { space: String, holder: String },
    #[error("the instance was stopped while it was starting")]
    Cancelled,
    /// A space the instance mounts was deleted (or is being deleted).
    #[error("space {space} was deleted")]
    SpaceDeleted { space: String },
    #[error("the Docker Engine is unavailable: {0}")]
    EngineUnavailable(String),
    #[error("docker refused to start the container: {0}")]
    Engine(String),
    #[error("store: {0}")]
    Store(String),
}

impl StartError {
    /// The HTTP status a client gets for this failure.
    pub fn status(&self) -> http::StatusCode {
        match self {
            StartError::ImageMissing { .. } | StartError::Build { .. } | StartError::Engine(_) => {
                http::StatusCode::BAD_GATEWAY
            }
            StartError::Store(_) | StartError::Definition { .. } => http::StatusCode::INTERNAL_SERVER_ERROR,
            StartError::SpaceInUse { .. } => http::StatusCode::CONFLICT,
            StartError::SpaceDeleted { .. } => http::StatusCode::GONE,
            _ => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The container's last lines of output, when it got that far.
    pub fn logs(&self) -> Option<&str> {
        match self {
            StartError::Exited { logs, .. } | StartError::Timeout { logs, .. } => Some(logs),
            _ => None,
        }
    }
}

pub(super) fn engine_error(e: RuntimeError) -> StartError {
    match e {
        RuntimeError::Unavailable(m) => StartError::EngineUnavailable(m),
        RuntimeError::ImageMissing(image) => StartError::ImageMissing { image },
        RuntimeError::Build { image, message } => StartError::Build { image, message },
        other => StartError::Engine(other.to_string()),
    }
}

pub type StartResult = Result<Arc<Instance>, Arc<StartError>>;

/// A start in progress.
pub(super) struct Pending {
    pub(super) outcome: watch::Receiver<Option<StartResult>>,
    /// Cancelled by a stop: the start removes its container as soon as it
    /// exists and fails with [`StartError::Cancelled`].
    pub(super) cancel: CancellationToken,
    /// Order of registration: of two starts wanting one space, the earlier
    /// one goes ahead.
    pub(super) seq: u64,
    pub(super) rw_spaces: Vec<SpaceId>,
}

/// The activator's view of one key.
pub(super) enum Slot {
    Starting(Pending),
    Ready(Arc<Instance>),
    /// Its container is being stopped; `done` turns true once it is gone.
    Stopping {
        done: watch::Receiver<bool>,
        rw_spaces: Vec<SpaceId>,
    },
}

impl Slot {
    fn rw_spaces(&self) -> &[SpaceId] {
        match self {
            Slot::Starting(p) => &p.rw_spaces,
            Slot::Ready(i) => &i.rw_spaces,
            Slot::Stopping { rw_spaces, .. } => rw_spaces,
        }
    }
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct ActivatorSettings {
    /// Idle timeout for instances whose definition does not set one.
    pub default_idle_timeout: Duration,
    /// Idle time before pausing, for definitions that set none; zero never
    /// pauses.
    pub default_pause_after: Duration,
    /// Build context for imagespecs: the repository root.
    pub build_context: std::path::PathBuf,
}

pub struct Activator {
    pub(super) engine: Arc<dyn Engine>,
    pub(super) store: Store,
    pub(super) catalog: Catalog,
    pub(super) settings: ActivatorSettings,
    pub(super) slots: RwLock<HashMap<String, Slot>>,
    /// Spaces a delete is under way for, with how many deletes: no start
    /// mounts them ([`Activator::deleted_space`]). Entered under the slots
    /// lock, together with the look for the space's users, so a start
    /// either is among those users or finds its space here.
    pub(super) deleting_spaces: Mutex<HashMap<SpaceId, usize>>,
    /// One image build at a time; a second request for the same image finds
    /// it built.
    builds: tokio::sync::Mutex<()>,
    pub(super) origin: Instant,
    next_seq: AtomicU64,
    /// This activator, for work that must finish even if its caller goes
    /// away (a stop begun for a request whose client hung up).
    pub(super) this: std::sync::Weak<Activator>,
}

/// What a request for a key waits on.
enum Wait {
    Start(watch::Receiver<Option<StartResult>>),
    Stop(watch::Receiver<bool>),
}

impl Activator {
    pub fn new(engine: Arc<dyn Engine>, store: Store, catalog: Catalog, settings: ActivatorSettings) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            engine,
            store,
            catalog,
            settings,
            slots: RwLock::new(HashMap::new()),
            deleting_spaces: Mutex::new(HashMap::new()),
            builds: tokio::sync::Mutex::new(()),
            origin: Instant::now(),
            next_seq: AtomicU64::new(0),
            this: this.clone(),
        })
    }

    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    pub fn clock_origin(&self) -> Instant {
        self.origin
    }

    pub(super) fn slots_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Slot>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn slots_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Slot>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The ready instance for `key`, if any. The warm path: no await, no I/O.
    pub fn ready(&self, key: &str) -> Option<Arc<Instance>> {
        match self.slots_read().get(key) {
            Some(Slot::Ready(i)) => Some(i.clone()),
            _ => None,
        }
    }

    /// Every ready instance.
    pub fn instances(&self) -> Vec<Arc<Instance>> {
        self.slots_read()
            .values()
            .filter_map(|s| match s {
                Slot::Ready(i) => Some(i.clone()),
                _ => None,
            })
            .collect()
    }

    /// Keys with a start in progress.
    pub fn starting(&self) -> Vec<String> {
        self.keys_where(|s| matches!(s, Slot::Starting(_)))
    }

    /// Keys whose container is being stopped.
    pub fn stopping(&self) -> Vec<String> {
        self.keys_where(|s| matches!(s, Slot::Stopping { .. }))
    }

    fn keys_where(&self, pick: impl Fn(&Slot) -> bool) -> Vec<String> {
        self.slots_read()
            .iter()
            .filter(|(_, s)| pick(s))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The instance for the request's key: the ready one, the one starting,
    /// or a new one started now (after a stop in progress has finished).
    pub async fn ensure(self: &Arc<Self>, req: StartRequest) -> StartResult {
        loop {
            let wait = {
                let mut slots = self.slots_write();
                match slots.get(&req.key) {
                    Some(Slot::Ready(i)) => return Ok(i.clone()),
                    Some(Slot::Starting(p)) => Wait::Start(p.outcome.clone()),
                    Some(Slot::Stopping { done, .. }) => Wait::Stop(done.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        let pending = Pending {
                            outcome: rx.clone(),
                            cancel: CancellationToken::new(),
                            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
                            rw_spaces: rw_spaces(&req.key),
                        };
                        let cancel = pending.cancel.clone();
                        slots.insert(req.key.clone(), Slot::Starting(pending));
                        let this = self.clone();
                        let req = req.clone();
                        tokio::spawn(async move {
                            let key = req.key.clone();
                            let result = this.start(req, &cancel).await.map_err(|e| match e {
                                // Cancelled by a forced delete of its space: say so.
                                StartError::Cancelled => match this.deleted_space(&key) {
                                    Some(space) => StartError::SpaceDeleted {
                                        space: space.to_string(),
                                    },
                                    None => e,
                                },
                                e => e,
                            });
                            let result = result.map_err(Arc::new);
                            this.finish_start(&key, &result);
                            let _ = tx.send(Some(result));
                        });
                        Wait::Start(rx)
                    }
                }
            };
            match wait {
                Wait::Stop(mut done) => {
                    // Err: the stopper went away; its slot is gone either way.
                    let _ = done.wait_for(|d| *d).await;
                }
                Wait::Start(mut rx) => {
                    let outcome = rx.wait_for(Option::is_some).await;
                    return match outcome.as_deref() {
                        Ok(Some(result)) => result.clone(),
                        _ => Err(Arc::new(StartError::Engine("the start was abandoned".into()))),
                    };
                }
            }
        }
    }

    /// Publishes a start's outcome in the slot table.
    fn finish_start(&self, key: &str, result: &StartResult) {
        let mut slots = self.slots_write();
        match result {
            Ok(instance) => {
                slots.insert(key.to_owned(), Slot::Ready(instance.clone()));
            }
            Err(_) => {
                slots.remove(key);
            }
        }
    }

    /// A space `key` mounts that is deleted or being deleted: no container
    /// may mount it any more.
    pub(super) fn deleted_space(&self, key: &str) -> Option<SpaceId> {
        let spaces = spaces_of(key);
        if spaces.is_empty() {
            return None;
        }
        {
            let deleting = self.deleting_spaces.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((space, _)) = spaces.iter().find(|(s, _)| deleting.contains_key(s)) {
                return Some(space.clone());
            }
        }
        // A store that cannot answer counts as live: the plan just read it.
        spaces
            .into_iter()
            .map(|(space, _)| space)
            .find(|s| self.store.space(s).ok().flatten().is_some_and(|r| r.deleted))
    }

    /// Waits until no other container mounts `key`'s read-write spaces:
    /// stops in progress are waited out, an earlier start or a live instance
    /// holding one refuses this start.
    async fn wait_for_space_writers(&self, key: &str, cancel: &CancellationToken) -> Result<(), StartError> {
        loop {
            let blocker = {
                let slots = self.slots_read();
                let Some(Slot::Starting(mine)) = slots.get(key) else {
                    return Err(StartError::Cancelled);
                };
                let mut found = None;
                for (other, slot) in slots.iter().filter(|(k, _)| k.as_str() != key) {
                    let Some(space) = slot.rw_spaces().iter().find(|s| mine.rw_spaces.contains(s)) else {
                        continue;
                    };
                    found = match slot {
                        Slot::Stopping { done, .. } => Some(Ok(done.clone())),
                        Slot::Starting(p) if p.seq > mine.seq => continue,
                        _ => Some(Err(StartError::SpaceInUse {
                            space: space.to_string(),
                            holder: other.clone(),
                        })),
                    };
                    break;
                }
                found
            };
            match blocker {
                None => return Ok(()),
                Some(Err(e)) => return Err(e),
                Some(Ok(mut done)) => {
                    tracing::info!(instance = %key, "waiting for another container of its space to stop");
                    tokio::select! {
                        _ = done.wait_for(|d| *d) => {}
                        _ = cancel.cancelled() => return Err(StartError::Cancelled),
                    }
                }
            }
        }
    }

    async fn start(&self, req: StartRequest, cancel: &CancellationToken) -> Result<Arc<Instance>, StartError> {
        let began = Instant::now();
        let defs = self.catalog.current();
        let spec = defs
            .resolve(&req.service, &req.key, &req.injected)
            .map_err(|e| StartError::Definition {
                service: req.service.clone(),
                message: e.to_string(),
            })?;
        let port: u16 = spec
            .environment
            .get("PORT")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| StartError::Definition {
                service: req.service.clone(),
                message: "environment.PORT must be a port number".into(),
            })?;
        self.ensure_image(&spec).await?;
        self.wait_for_space_writers(&req.key, cancel).await?;
        if cancel.is_cancelled() {
            return Err(StartError::Cancelled);
        }
        // Planned while the space was live, perhaps before waiting out a
        // stop that a forced delete of the space was waiting for too.
        if let Some(space) = self.deleted_space(&req.key) {
            return Err(StartError::SpaceDeleted {
                space: space.to_string(),
            });
        }

        let name = format!(
            "substrate-{}-{}",
            req.service,
            ulid::Ulid::new().to_string()[18..].to_lowercase()
        );
        let mut record = InstanceRecord {
            service: req.service.clone(),
            container_id: None,
            container_name: name.clone(),
            address: None,
            port,
            state: InstanceState::Starting,
            definition_digest: spec.digest(),
            created_at: now_millis(),
            last_request_at: now_millis(),
        };
        self.put_record(&req.key, &record).await?;

        let container = container_spec(&req, &spec, name);
        let info = match self.engine.start(&container).await {
            Ok(info) => info,
            Err(e) => {
                self.drop_record(&req.key).await;
                return Err(engine_error(e));
            }
        };
        let fail = |e: StartError| async {
            if let Err(e) = self.engine.remove(&info.id).await {
                tracing::warn!(container = %info.name, error = %e, "could not remove the container of a failed start");
            }
            self.drop_record(&req.key).await;
            e
        };
        if cancel.is_cancelled() {
            return Err(fail(StartError::Cancelled).await);
        }
        let Some(ip) = info.address.filter(|_| info.running) else {
            // Exited already (an exited container has no address).
            let code = match self.engine.inspect(&info.id).await {
                Ok(Some(c)) => c.exit_code,
                _ => info.exit_code,
            };
            let logs = readiness::last_logs(self.engine.as_ref(), &info.id).await;
            return Err(fail(StartError::Exited { code, logs }).await);
        };
        let addr = SocketAddr::new(ip, port);
        let ready = tokio::select! {
            r = readiness::wait(self.engine.as_ref(), &info.id, addr, &spec.readiness) => r,
            _ = cancel.cancelled() => Err(StartError::Cancelled),
        };
        if let Err(e) = ready {
            return Err(fail(e).await);
        }

        record.container_id = Some(info.id.clone());
        record.address = Some(ip.to_string());
        record.state = InstanceState::Ready;
        if let Err(e) = self.put_record(&req.key, &record).await {
            return Err(fail(e).await);
        }
        if cancel.is_cancelled() {
            return Err(fail(StartError::Cancelled).await);
        }
        crate::metrics::METRICS
            .cold_start
            .observe(began.elapsed().as_secs_f64());
        tracing::info!(instance = %req.key, container = %info.name, %addr, ms = began.elapsed().as_millis() as u64, "instance ready");
        Ok(Arc::new(Instance {
            rw_spaces: rw_spaces(&req.key),
            key: req.key,
            service: req.service,
            container_id: info.id,
            container_name: info.name,
            addr,
            url_prefix: spec.url_prefix.clone(),
            digest: record.definition_digest,
            idle_timeout: idle_timeout(&spec, self.settings.default_idle_timeout),
            pause_after: pause_after(&spec, self.settings.default_pause_after),
            injected: req.injected,
            last_activity: AtomicU64::new(Clock(self.origin).now()),
            recorded_last_request: None,
            open: AtomicUsize::new(0),
            paused: Default::default(),
            cannot_pause: Default::default(),
            pause_lock: Default::default(),
        }))
    }

    /// Builds the instance's image when it is missing and an enabled
    /// imagespec names it.
    async fn ensure_image(&self, spec: &InstanceSpec) -> Result<(), StartError> {
        if self.engine.image_exists(&spec.image).await.map_err(engine_error)? {
            return Ok(());
        }
        let _one_build = self.builds.lock().await;
        if self.engine.image_exists(&spec.image).await.map_err(engine_error)? {
            return Ok(());
        }
        let defs = self.catalog.current();
        let Some(imagespec) = crate::images::buildable(&defs, &spec.image) else {
            return Err(StartError::ImageMissing {
                image: spec.image.clone(),
            });
        };
        tracing::info!(image = %spec.image, "image missing: building it");
        let build = crate::images::build_spec(imagespec, &self.settings.build_context);
        self.engine.build_image(&build).await.map_err(engine_error)
    }

    pub(super) async fn put_record(&self, key: &str, record: &InstanceRecord) -> Result<(), StartError> {
        let store = self.store.clone();
        let key = key.to_owned();
        let record = record.clone();
        tokio::task::spawn_blocking(move || store.put_instance(&key, &record))
            .await
            .map_err(|e| StartError::Store(e.to_string()))?
            .map_err(|e| StartError::Store(e.to_string()))
    }

    pub(super) async fn drop_record(&self, key: &str) {
        let store = self.store.clone();
        let owned = key.to_owned();
        match tokio::task::spawn_blocking(move || store.remove_instance(&owned)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(instance = %key, error = %e, "could not drop an instance record"),
            Err(e) => tracing::warn!(instance = %key, error = %e, "could not drop an instance record"),
        }
    }
}

/// An instance's idle timeout: its definition's, else the default; zero
/// means never.
pub(super) fn idle_timeout(spec: &InstanceSpec, default: Duration) -> Option<Duration> {
    match spec.idle_timeout {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
        None if default.is_zero() => None,
        None => Some(default),
    }
}

/// An instance's pause delay: its definition's, else the default; zero
/// means never.
pub(super) fn pause_after(spec: &InstanceSpec, default: Duration) -> Option<Duration> {
    Some(spec.pause_after.unwrap_or(default)).filter(|d| !d.is_zero())
}

/// The container for an instance.
fn container_spec(req: &StartRequest, spec: &InstanceSpec, name: String) -> ContainerSpec {
    let mut binds: Vec<Bind> = spec
        .mounts
        .iter()
        .map(|m| Bind {
            source: m.source.clone().into(),
            destination: m.destination.clone(),
            read_only: m.read_only,
        })
        .collect();
    binds.extend(req.binds.iter().cloned());
    ContainerSpec {
        name,
        image: spec.image.clone(),
        command: spec.command.clone(),
        env: spec.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        binds,
        labels: [
            (LABEL_INSTANCE.to_owned(), req.key.clone()),
            (LABEL_SERVICE.to_owned(), req.service.clone()),
            (LABEL_ORIGIN.to_owned(), req.origin.clone()),
        ]
        .into_iter()
        .collect(),
        init: spec.init,
        memory_bytes: spec.resources.memory.as_deref().and_then(parse_bytes),
        nano_cpus: spec.resources.cpus.map(|c| (c * 1e9) as i64),
    }
}

/// `"256m"`, `"1g"`, `"512k"`, `"1048576"` → bytes.
fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<f64>().ok().map(|n| (n * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::stop::StopReason;
    use crate::runtime::{build::BuildSpec, ContainerEvent, ContainerInfo};
    use std::sync::atomic::AtomicBool;

    /// An engine whose containers are a local listener: counts starts, and
    /// fails the first one when asked to.
    struct FakeEngine {
        starts: AtomicUsize,
        fail_first: AtomicBool,
        /// Pause attempts, each answered "not supported" (as Swarm does for
        /// a task on a node the daemon cannot reach).
        pauses: AtomicUsize,
        /// Each `remove` takes this long (a process's SIGTERM grace).
        remove_delay: Duration,
        removes: AtomicUsize,
        /// `remove` panics (a bug in a stop, as far as the activator knows).
        remove_panics: AtomicBool,
    }

    #[async_trait::async_trait]
    impl Engine for FakeEngine {
        fn namespace(&self) -> &str {
            "fake"
        }
        async fn ping(&self) -> Result<(), RuntimeError> {
            Ok(())
        }
        async fn image_exists(&self, _: &str) -> Result<bool, RuntimeError> {
            Ok(true)
        }
        async fn start(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
            let n = self.starts.fetch_add(1, Ordering::SeqCst);
            // Long enough for every concurrent request to arrive meanwhile.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if n == 0 && self.fail_first.load(Ordering::SeqCst) {
                return Err(RuntimeError::Docker("no such thing".into()));
            }
            Ok(ContainerInfo {
                id: format!("c{n}"),
                name: spec.name.clone(),
                running: true,
                address: Some([127, 0, 0, 1].into()),
                labels: spec.labels.clone(),
                exit_code: None,
            })
        }
        async fn inspect(&self, _: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
            Ok(None)
        }
        async fn logs_tail(&self, _: &str, _: usize) -> Result<String, RuntimeError> {
            Ok(String::new())
        }
        async fn remove(&self, _: &str) -> Result<(), RuntimeError> {
            tokio::time::sleep(self.remove_delay).await;
            assert!(!self.remove_panics.load(Ordering::SeqCst), "remove panicked, as asked");
            self.removes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
            Ok(Vec::new())
        }
        async fn build_image(&self, _: &BuildSpec) -> Result<(), RuntimeError> {
            Ok(())
        }
        async fn pause(&self, _: &str) -> Result<(), RuntimeError> {
            self.pauses.fetch_add(1, Ordering::SeqCst);
            Err(RuntimeError::Unsupported("no pause here".into()))
        }
        async fn unpause(&self, _: &str) -> Result<(), RuntimeError> {
            Ok(())
        }
        async fn events(&self) -> Result<futures_util::stream::BoxStream<'static, ContainerEvent>, RuntimeError> {
            Ok(Box::pin(futures_util::stream::empty()))
        }
    }

    /// An activator over the fake engine and a service listening on `port`.
    fn activator(dir: &std::path::Path, port: u16, fail_first: bool) -> (Arc<Activator>, Arc<FakeEngine>) {
        activator_pausing(dir, port, fail_first, Duration::ZERO, Duration::ZERO)
    }

    fn activator_pausing(
        dir: &std::path::Path,
        port: u16,
        fail_first: bool,
        pause_after: Duration,
        remove_delay: Duration,
    ) -> (Arc<Activator>, Arc<FakeEngine>) {
        let defs = dir.join("defs");
        std::fs::create_dir_all(&defs).unwrap();
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/defs/substrate.cue"),
            defs.join("substrate.cue"),
        )
        .unwrap();
        let svc = format!(
            "package defs\nenable: svc: true\nservices: svc: instances: [string]: {{\n image: \"img\"\n environment: PORT: \"{port}\"\n}}\n"
        );
        std::fs::write(defs.join("svc.cue"), svc).unwrap();
        let catalog = Catalog::load(&defs, Default::default()).unwrap();
        let store = Store::open(&dir.join("db"), &Default::default()).unwrap();
        let engine = Arc::new(FakeEngine {
            starts: AtomicUsize::new(0),
            fail_first: AtomicBool::new(fail_first),
            pauses: AtomicUsize::new(0),
            remove_delay,
            removes: AtomicUsize::new(0),
            remove_panics: AtomicBool::new(false),
        });
        let settings = ActivatorSettings {
            default_idle_timeout: Duration::from_secs(60),
            default_pause_after: pause_after,
            build_context: dir.to_owned(),
        };
        (Activator::new(engine.clone(), store, catalog, settings), engine)
    }

    fn request() -> StartRequest {
        StartRequest {
            key: "svc".into(),
            service: "svc".into(),
            injected: serde_json::json!({"environment": {"SUBSTRATE_URL_PREFIX": "/svc", "SUBSTRATE_VIEWSPEC": "svc"}}),
            binds: Vec::new(),
            origin: String::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_ensures_share_one_start() {
        let tmp = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (activator, engine) = activator(tmp.path(), listener.local_addr().unwrap().port(), false);
        let all = (0..50).map(|_| {
            let a = activator.clone();
            tokio::spawn(async move { a.ensure(request()).await })
        });
        let results = futures_util::future::join_all(all).await;
        let ids: std::collections::BTreeSet<String> = results
            .into_iter()
            .map(|r| r.unwrap().unwrap().container_id.clone())
            .collect();
        assert_eq!(engine.starts.load(Ordering::SeqCst), 1);
        assert_eq!(ids.len(), 1);
        assert!(activator.ready("svc").is_some());
        let record = activator.store.instance("svc").unwrap().unwrap();
        assert_eq!(record.state, InstanceState::Ready);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_start_is_shared_but_not_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (activator, engine) = activator(tmp.path(), listener.local_addr().unwrap().port(), true);
        let (a, b) = tokio::join!(activator.ensure(request()), activator.ensure(request()));
        assert!(a.is_err() && b.is_err());
        assert_eq!(engine.starts.load(Ordering::SeqCst), 1);
        assert!(
            activator.store.instance("svc").unwrap().is_none(),
            "a failed start left a record"
        );
        assert!(activator.ensure(request()).await.is_ok(), "the failure was cached");
        assert_eq!(engine.starts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_engine_that_cannot_pause_leaves_the_instance_running_and_is_not_asked_again() {
        let tmp = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (activator, engine) = activator_pausing(tmp.path(), port, false, Duration::from_millis(10), Duration::ZERO);
        let instance = activator.ensure(request()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        for _ in 0..3 {
            activator.pause_idle().await;
        }
        assert_eq!(engine.pauses.load(Ordering::SeqCst), 1);
        assert!(!instance.is_paused());
        assert!(activator.ready("svc").is_some());
    }

    /// A stop whose caller goes away (a request whose client hung up)
    /// still removes the container and clears the key: the next request
    /// starts a new instance instead of waiting on a stop nobody finishes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_finishes_when_its_caller_goes_away() {
        let tmp = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (activator, engine) =
            activator_pausing(tmp.path(), port, false, Duration::ZERO, Duration::from_millis(300));
        let first = activator.ensure(request()).await.unwrap();
        let stop = activator.stop_for("svc", StopReason::ContainerGone, Some(&first.container_id));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), stop).await.is_err(),
            "the stop finished before its caller went away"
        );
        let second = tokio::time::timeout(Duration::from_secs(5), activator.ensure(request()))
            .await
            .expect("a request after an abandoned stop waited for good")
            .unwrap();
        assert_eq!(
            engine.removes.load(Ordering::SeqCst),
            1,
            "the abandoned stop did not remove the container"
        );
        assert_ne!(second.container_id, first.container_id);
        assert_eq!(engine.starts.load(Ordering::SeqCst), 2);
    }

    /// A stop that panics still clears its key: the next request starts a
    /// new instance instead of waiting on a stop that will never finish.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_that_panics_does_not_leave_its_key_stopping() {
        let tmp = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (activator, engine) = activator(tmp.path(), port, false);
        let first = activator.ensure(request()).await.unwrap();
        engine.remove_panics.store(true, Ordering::SeqCst);
        activator.stop("svc").await;
        engine.remove_panics.store(false, Ordering::SeqCst);
        let second = tokio::time::timeout(Duration::from_secs(5), activator.ensure(request()))
            .await
            .expect("a request after a panicked stop waited for good")
            .unwrap();
        assert_ne!(second.container_id, first.container_id);
    }

    #[test]
    fn memory_sizes_parse() {
        assert_eq!(parse_bytes("256m"), Some(256 << 20));
        assert_eq!(parse_bytes("1G"), Some(1 << 30));
        assert_eq!(parse_bytes("512Mi"), Some(512 << 20));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("lots"), None);
    }
}
