//! Cold start through Substrate vs a bare create+start+ready through the
//! Docker API, and coalescing of concurrent cold requests.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, ListContainersOptions, RemoveContainerOptions};
use bollard::Docker;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::daemon::Daemon;
use crate::util::{http, median, ms, time_to_first_byte};

pub const RUNS: usize = 10;
pub const COALESCE_REQUESTS: usize = 200;
/// Marks the bare containers of the raw-start measurement (not the
/// namespace label: the daemon owns those).
pub const RAW_LABEL: &str = "substrate-bench.raw";

pub struct ColdResult {
    pub cold_start_ms: f64,
    pub raw_start_ms: f64,
    pub cold_samples: Vec<f64>,
    pub raw_samples: Vec<f64>,
}

pub struct CoalesceResult {
    pub containers: usize,
    pub errors: usize,
    pub wall_ms: f64,
}

/// Containers carrying `label=value`; running ones only unless `all`.
pub async fn containers_with(docker: &Docker, label: &str, value: &str, all: bool) -> Result<Vec<String>> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{label}={value}")])]);
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .context("listing containers")?;
    Ok(list.into_iter().filter_map(|c| c.id).collect())
}

/// Stops the echo instance through the admin API and waits until no
/// container of the namespace is left.
pub async fn stop_echo(daemon: &Daemon, token: &str, docker: &Docker, namespace: &str) -> Result<()> {
    stop_instance(daemon, token, docker, namespace, "echo").await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = containers_with(docker, "substrate.namespace", namespace, true).await?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} containers of the namespace were left 30 s after stopping echo",
                left.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stops instance `name` through the admin API and waits until it and its
/// container are gone.
pub async fn stop_instance(daemon: &Daemon, token: &str, docker: &Docker, namespace: &str, name: &str) -> Result<()> {
    let path = format!("/substrate/v1/instances/{name}");
    let (status, body) = http(daemon.addr, Method::DELETE, &path, Some(token)).await?;
    if status != StatusCode::OK && status != StatusCode::NOT_FOUND {
        bail!("DELETE {path} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![
            format!("substrate.namespace={namespace}"),
            format!("substrate.instance={name}"),
        ],
    )]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters.clone()),
                ..Default::default()
            }))
            .await
            .context("listing containers")?;
        let (status, _) = http(daemon.addr, Method::GET, &path, Some(token)).await?;
        if left.is_empty() && status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the {name} instance was still there 30 s after DELETE ({} containers)",
                left.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cold_once(daemon: &Daemon) -> Result<f64> {
    let (elapsed, status) = time_to_first_byte(daemon.addr, "/echo/").await?;
    if status != StatusCode::OK {
        bail!("cold GET /echo/ answered {status}");
    }
    Ok(ms(elapsed))
}

/// Create + start + inspect + TCP ready, like the daemon's activator does.
async fn raw_once(docker: &Docker, network: &str, image: &str, name: &str) -> Result<f64> {
    let began = Instant::now();
    let (id, result) = raw_container(docker, network, image, name).await?;
    let result = result.map(|_| ms(began.elapsed()));
    remove_container(docker, &id).await;
    result
}

/// Creates and starts a bare container of `image` on `network` (labelled
/// [`RAW_LABEL`]) and waits until it accepts connections on 8080. Returns
/// its id (remove it even on error) and its address.
pub async fn raw_container(
    docker: &Docker,
    network: &str,
    image: &str,
    name: &str,
) -> Result<(String, Result<SocketAddr>)> {
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        env: Some(vec!["PORT=8080".into(), "SUBSTRATE_URL_PREFIX=/echo".into()]),
        labels: Some(HashMap::from([(RAW_LABEL.to_owned(), network.to_owned())])),
        host_config: Some(HostConfig {
            init: Some(true),
            network_mode: Some(network.to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_owned()),
                ..Default::default()
            }),
            body,
        )
        .await
        .with_context(|| format!("creating {name} from {image}"))?;
    let result = async {
        docker
            .start_container(&created.id, None)
            .await
            .with_context(|| format!("starting {name}"))?;
        let inspected = docker
            .inspect_container(&created.id, None)
            .await
            .with_context(|| format!("inspecting {name}"))?;
        let ip: IpAddr = inspected
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.ip_address)
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| anyhow!("{name} has no address on {network}"))?;
        let addr = SocketAddr::new(ip, 8080);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut delay = Duration::from_millis(1);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("{name} did not accept connections on {addr} within 30 s");
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(25));
        }
        Ok(addr)
    }
    .await;
    Ok((created.id, result))
}

pub async fn remove_container(docker: &Docker, id: &str) {
    let _ = docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
}

/// Alternates cold starts through the daemon and bare starts, `RUNS` each.
pub async fn run(daemon: &Daemon, token: &str, docker: &Docker, namespace: &str) -> Result<ColdResult> {
    let network = format!("substrate-{namespace}");
    let image = "substrate-echo";
    let mut cold = Vec::new();
    let mut raw = Vec::new();
    for i in 0..RUNS {
        stop_echo(daemon, token, docker, namespace).await?;
        cold.push(cold_once(daemon).await?);
        // The bare start runs while the daemon's instance is up, like the
        // daemon's start runs while nothing else starts: stop it first.
        stop_echo(daemon, token, docker, namespace).await?;
        let name = format!("substrate-bench-raw-{namespace}-{i}");
        raw.push(raw_once(docker, &network, image, &name).await?);
    }
    Ok(ColdResult {
        cold_start_ms: median(&mut cold.clone()),
        raw_start_ms: median(&mut raw.clone()),
        cold_samples: cold,
        raw_samples: raw,
    })
}

/// 200 concurrent first requests for a stopped instance.
pub async fn coalesce(daemon: &Daemon, token: &str, docker: &Docker, namespace: &str) -> Result<CoalesceResult> {
    stop_echo(daemon, token, docker, namespace).await?;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(COALESCE_REQUESTS)
        .build_http();
    let uri: hyper::Uri = format!("http://{}/echo/", daemon.addr)
        .parse()
        .context("coalescing URL")?;
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..COALESCE_REQUESTS {
        let (client, uri) = (client.clone(), uri.clone());
        tasks.spawn(async move {
            let req = hyper::Request::get(uri)
                .header("accept", "*/*")
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            let resp = tokio::time::timeout(Duration::from_secs(60), client.request(req))
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            if status == StatusCode::OK {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        });
    }
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let wall_ms = ms(began.elapsed());
    if let Some(e) = first_error {
        eprintln!("  coalescing: {errors} errors, the first: {e}");
    }
    let containers = containers_with(docker, "substrate.namespace", namespace, false)
        .await?
        .len();
    Ok(CoalesceResult {
        containers,
        errors,
        wall_ms,
    })
}
