//! The activator: turns "a request for instance K" into a ready container.
//!
//! Terms: an **instance** is one container serving one canonical viewspec
//! (its key). A **slot** is the activator's in-memory view of a key: either
//! a start in progress, which every concurrent request for the key waits on
//! (one container per key, however many requests arrive), or a ready
//! instance. The store is the durable truth — a `starting` record is flushed
//! before the container is created and a `ready` record once it answers —
//! and the slots are rebuilt from it at start by [`Activator::reconcile`].
//!
//! A start runs in its own task, so a client that gives up does not cancel
//! it for the others. A failed start is not cached: the next request tries
//! again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::readiness;
use crate::catalog::Catalog;
use crate::defs::InstanceSpec;
use crate::runtime::{Bind, ContainerSpec, Engine, RuntimeError, LABEL_INSTANCE, LABEL_SERVICE};
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
    #[error("the container did not accept connections on port {port} within {}s", timeout.as_secs())]
    Timeout { port: u16, timeout: Duration, logs: String },
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

fn engine_error(e: RuntimeError) -> StartError {
    match e {
        RuntimeError::Unavailable(m) => StartError::EngineUnavailable(m),
        RuntimeError::ImageMissing(image) => StartError::ImageMissing { image },
        RuntimeError::Build { image, message } => StartError::Build { image, message },
        other => StartError::Engine(other.to_string()),
    }
}

/// Time since the activator started, in milliseconds: cheap to store in an
/// atomic and compare.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// A ready instance.
#[derive(Debug)]
pub struct Instance {
    pub key: String,
    pub service: String,
    pub container_id: String,
    pub container_name: String,
    pub addr: SocketAddr,
    /// Prepended to the forwarded path.
    pub url_prefix: String,
    pub digest: String,
    /// `None` never reaps.
    pub idle_timeout: Option<Duration>,
    /// What the definition was resolved with, to re-check it on reload.
    pub injected: serde_json::Value,
    /// Activator-clock milliseconds of the last request start or end.
    last_activity: AtomicU64,
    /// Requests in flight plus upgraded connections open.
    open: AtomicUsize,
}

impl Instance {
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// Held while a request or an upgraded connection uses an instance: such an
/// instance is never idle.
pub struct ActivityGuard {
    instance: Arc<Instance>,
    clock: Clock,
}

impl ActivityGuard {
    pub fn new(instance: Arc<Instance>, clock_origin: Instant) -> Self {
        let clock = Clock(clock_origin);
        instance.open.fetch_add(1, Ordering::Relaxed);
        instance.last_activity.store(clock.now(), Ordering::Relaxed);
        Self { instance, clock }
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.instance.last_activity.store(self.clock.now(), Ordering::Relaxed);
        self.instance.open.fetch_sub(1, Ordering::Relaxed);
    }
}

type StartResult = Result<Arc<Instance>, Arc<StartError>>;

enum Slot {
    Starting(watch::Receiver<Option<StartResult>>),
    Ready(Arc<Instance>),
}

/// What a request knows about the instance it wants.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Canonical viewspec.
    pub key: String,
    pub service: String,
    /// Values unified into the instance template (environment, parameters).
    pub injected: serde_json::Value,
    /// Space directories to bind, already resolved.
    pub binds: Vec<Bind>,
    /// External origin of the request that started it (`SUBSTRATE_ORIGIN`).
    /// Not part of the definition digest: it differs between clients.
    pub origin: String,
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct ActivatorSettings {
    /// Idle timeout for instances whose definition does not set one.
    pub default_idle_timeout: Duration,
    /// Build context for imagespecs: the repository root.
    pub build_context: std::path::PathBuf,
}

pub struct Activator {
    engine: Arc<dyn Engine>,
    store: Store,
    catalog: Catalog,
    settings: ActivatorSettings,
    slots: RwLock<HashMap<String, Slot>>,
    /// One image build at a time; a second request for the same image finds
    /// it built.
    builds: tokio::sync::Mutex<()>,
    origin: Instant,
}

impl Activator {
    pub fn new(engine: Arc<dyn Engine>, store: Store, catalog: Catalog, settings: ActivatorSettings) -> Arc<Self> {
        Arc::new(Self {
            engine,
            store,
            catalog,
            settings,
            slots: RwLock::new(HashMap::new()),
            builds: tokio::sync::Mutex::new(()),
            origin: Instant::now(),
        })
    }

    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    pub fn clock_origin(&self) -> Instant {
        self.origin
    }

    /// The ready instance for `key`, if any. The warm path: no await, no I/O.
    pub fn ready(&self, key: &str) -> Option<Arc<Instance>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        match slots.get(key) {
            Some(Slot::Ready(i)) => Some(i.clone()),
            _ => None,
        }
    }

    /// Every ready instance.
    pub fn instances(&self) -> Vec<Arc<Instance>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .values()
            .filter_map(|s| match s {
                Slot::Ready(i) => Some(i.clone()),
                Slot::Starting(_) => None,
            })
            .collect()
    }

    /// Keys with a start in progress.
    pub fn starting(&self) -> Vec<String> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Starting(_)))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The instance for the request's key: the ready one, the one starting,
    /// or a new one started now.
    pub async fn ensure(self: &Arc<Self>, req: StartRequest) -> StartResult {
        let mut rx = {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            match slots.get(&req.key) {
                Some(Slot::Ready(i)) => return Ok(i.clone()),
                Some(Slot::Starting(rx)) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    slots.insert(req.key.clone(), Slot::Starting(rx.clone()));
                    let this = self.clone();
                    tokio::spawn(async move {
                        let key = req.key.clone();
                        let result = this.start(req).await.map_err(Arc::new);
                        this.finish_start(&key, &result);
                        let _ = tx.send(Some(result));
                    });
                    rx
                }
            }
        };
        let outcome = rx.wait_for(Option::is_some).await;
        match outcome.as_deref() {
            Ok(Some(result)) => result.clone(),
            _ => Err(Arc::new(StartError::Engine("the start was abandoned".into()))),
        }
    }

    /// Publishes a start's outcome in the slot table.
    fn finish_start(&self, key: &str, result: &StartResult) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(instance) => {
                slots.insert(key.to_owned(), Slot::Ready(instance.clone()));
            }
            Err(_) => {
                slots.remove(key);
            }
        }
    }

    async fn start(&self, req: StartRequest) -> Result<Arc<Instance>, StartError> {
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
            let _ = self.engine.remove(&info.id).await;
            self.drop_record(&req.key).await;
            e
        };
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
        if let Err(e) = readiness::wait(self.engine.as_ref(), &info.id, addr, &spec.readiness).await {
            return Err(fail(e).await);
        }

        record.container_id = Some(info.id.clone());
        record.address = Some(ip.to_string());
        record.state = InstanceState::Ready;
        if let Err(e) = self.put_record(&req.key, &record).await {
            return Err(fail(e).await);
        }
        crate::metrics::METRICS
            .cold_start
            .observe(began.elapsed().as_secs_f64());
        tracing::info!(instance = %req.key, container = %info.name, %addr, ms = began.elapsed().as_millis() as u64, "instance ready");
        Ok(Arc::new(Instance {
            key: req.key,
            service: req.service,
            container_id: info.id,
            container_name: info.name,
            addr,
            url_prefix: spec.url_prefix.clone(),
            digest: record.definition_digest,
            idle_timeout: idle_timeout(&spec, self.settings.default_idle_timeout),
            injected: req.injected,
            last_activity: AtomicU64::new(Clock(self.origin).now()),
            open: AtomicUsize::new(0),
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

    async fn put_record(&self, key: &str, record: &InstanceRecord) -> Result<(), StartError> {
        let store = self.store.clone();
        let key = key.to_owned();
        let record = record.clone();
        tokio::task::spawn_blocking(move || store.put_instance(&key, &record))
            .await
            .map_err(|e| StartError::Store(e.to_string()))?
            .map_err(|e| StartError::Store(e.to_string()))
    }

    async fn drop_record(&self, key: &str) {
        let store = self.store.clone();
        let owned = key.to_owned();
        match tokio::task::spawn_blocking(move || store.remove_instance(&owned)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(instance = %key, error = %e, "could not drop an instance record"),
            Err(e) => tracing::warn!(instance = %key, error = %e, "could not drop an instance record"),
        }
    }

    /// "Pretend we never had one": forgets `instance` if it is still the
    /// one recorded for its key, removes its record and its container.
    pub async fn forget(&self, instance: &Instance) {
        let removed = {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            match slots.get(&instance.key) {
                Some(Slot::Ready(i)) if i.container_id == instance.container_id => {
                    slots.remove(&instance.key);
                    true
                }
                _ => false,
            }
        };
        if removed {
            tracing::info!(instance = %instance.key, container = %instance.container_name, "forgetting instance");
            self.drop_record(&instance.key).await;
            if let Err(e) = self.engine.remove(&instance.container_id).await {
                tracing::warn!(container = %instance.container_name, error = %e, "could not remove container");
            }
        }
    }

    /// Stops and forgets the instance of `key`; false when there is none.
    pub async fn stop(&self, key: &str) -> bool {
        let Some(instance) = self.ready(key) else {
            return false;
        };
        let mut record = self.store.instance(key).ok().flatten();
        if let Some(r) = record.as_mut() {
            r.state = InstanceState::Stopping;
            let _ = self.put_record(key, r).await;
        }
        self.forget(&instance).await;
        true
    }

    /// A container of ours died: forget the instance it served.
    pub async fn container_gone(&self, container_id: &str) {
        let found = self.instances().into_iter().find(|i| i.container_id == container_id);
        if let Some(instance) = found {
            tracing::info!(instance = %instance.key, "container stopped");
            self.forget(&instance).await;
        }
    }

    /// Instances idle for longer than their timeout, with nothing open.
    pub fn idle_instances(&self) -> Vec<Arc<Instance>> {
        let now = Clock(self.origin).now();
        self.instances()
            .into_iter()
            .filter(|i| {
                let Some(timeout) = i.idle_timeout else { return false };
                i.open.load(Ordering::Relaxed) == 0
                    && now.saturating_sub(i.last_activity.load(Ordering::Relaxed)) >= timeout.as_millis() as u64
            })
            .collect()
    }

    /// After a reload: stops instances whose resolved definition changed
    /// (or no longer resolves, or whose service was disabled).
    pub async fn stop_changed(&self) -> usize {
        let defs = self.catalog.current();
        let mut stopped = 0;
        for instance in self.instances() {
            let still = defs.services.get(&instance.service).is_some_and(|s| s.enabled)
                && defs
                    .resolve(&instance.service, &instance.key, &instance.injected)
                    .is_ok_and(|spec| spec.digest() == instance.digest);
            if !still {
                tracing::info!(instance = %instance.key, "definition changed: stopping instance");
                self.stop(&instance.key).await;
                stopped += 1;
            }
        }
        stopped
    }

    /// Re-attaches what survived a daemon restart (SPEC §4 "Restart"):
    /// running containers of `ready` records are adopted as they are;
    /// records whose container is gone are dropped; containers of the
    /// namespace with no record are removed.
    pub async fn reconcile(&self) -> Result<ReconcileReport, RuntimeError> {
        let containers = self.engine.list().await?;
        let records = self.store.list_instances().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read instance records");
            Vec::new()
        });
        let defs = self.catalog.current();
        let mut report = ReconcileReport::default();
        let mut claimed = std::collections::HashSet::new();
        for (key, record) in records {
            let found = containers
                .iter()
                .find(|c| record.container_id.as_deref() == Some(c.id.as_str()) || c.name == record.container_name);
            let adoptable = match (found, record.state) {
                (Some(c), InstanceState::Ready) if c.running && c.address.is_some() => Some(c),
                _ => None,
            };
            let Some(c) = adoptable else {
                if let Some(c) = found {
                    claimed.insert(c.id.clone());
                    let _ = self.engine.remove(&c.id).await;
                }
                self.drop_record(&key).await;
                report.dropped.push(key);
                continue;
            };
            claimed.insert(c.id.clone());
            // A crash during a checkpoint can leave it paused.
            let _ = self.engine.unpause(&c.id).await;
            let injected = match (
                crate::viewspec::Viewspec::parse(&key),
                defs.services.get(&record.service),
            ) {
                (Ok(v), Some(service)) => super::injection(&v, service),
                _ => serde_json::json!({}),
            };
            let idle = defs
                .resolve(&record.service, &key, &injected)
                .ok()
                .map(|s| (idle_timeout(&s, self.settings.default_idle_timeout), s.url_prefix))
                .unwrap_or((Some(self.settings.default_idle_timeout), String::new()));
            let Some(ip) = c.address else { continue };
            let instance = Arc::new(Instance {
                key: key.clone(),
                service: record.service.clone(),
                container_id: c.id.clone(),
                container_name: c.name.clone(),
                addr: SocketAddr::new(ip, record.port),
                url_prefix: idle.1,
                digest: record.definition_digest.clone(),
                idle_timeout: idle.0,
                injected,
                last_activity: AtomicU64::new(Clock(self.origin).now()),
                open: AtomicUsize::new(0),
            });
            self.slots
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.clone(), Slot::Ready(instance));
            report.reattached.push(key);
        }
        for c in containers.iter().filter(|c| !claimed.contains(&c.id)) {
            tracing::info!(container = %c.name, "removing a container of our namespace with no record");
            let _ = self.engine.remove(&c.id).await;
            report.removed.push(c.name.clone());
        }
        Ok(report)
    }
}

/// What [`Activator::reconcile`] did.
#[derive(Debug, Default)]
pub struct ReconcileReport {
    pub reattached: Vec<String>,
    pub dropped: Vec<String>,
    pub removed: Vec<String>,
}

fn idle_timeout(spec: &InstanceSpec, default: Duration) -> Option<Duration> {
    match spec.idle_timeout {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
        None if default.is_zero() => None,
        None => Some(default),
    }
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
        env: spec
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(std::iter::once(("SUBSTRATE_ORIGIN".to_owned(), req.origin.clone())))
            .collect(),
        binds,
        labels: [
            (LABEL_INSTANCE.to_owned(), req.key.clone()),
            (LABEL_SERVICE.to_owned(), req.service.clone()),
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
    use crate::runtime::{build::BuildSpec, ContainerEvent, ContainerInfo};
    use std::sync::atomic::AtomicBool;

    /// An engine whose containers are a local listener: counts starts, and
    /// fails the first one when asked to.
    struct FakeEngine {
        starts: AtomicUsize,
        fail_first: AtomicBool,
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
            Ok(())
        }
        async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
            Ok(Vec::new())
        }
        async fn build_image(&self, _: &BuildSpec) -> Result<(), RuntimeError> {
            Ok(())
        }
        async fn pause(&self, _: &str) -> Result<(), RuntimeError> {
            Ok(())
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
        });
        let settings = ActivatorSettings {
            default_idle_timeout: Duration::from_secs(60),
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

    #[test]
    fn memory_sizes_parse() {
        assert_eq!(parse_bytes("256m"), Some(256 << 20));
        assert_eq!(parse_bytes("1G"), Some(1 << 30));
        assert_eq!(parse_bytes("512Mi"), Some(512 << 20));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("lots"), None);
    }
}
