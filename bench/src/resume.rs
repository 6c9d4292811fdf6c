//! Resume from the paused tier (SPEC §4 "Idle tiers", §9): request → first
//! byte for an instance whose container is paused, beside the same request
//! to it running.
//!
//! The bench's definitions add a service `echopause` (the echo image, its
//! `pause_after` set to [`PAUSE_AFTER`]); the daemon pauses it once idle
//! that long. Each run waits until Docker reports the container paused,
//! then times a GET on a fresh connection, as the cold start does.
//!
//! The floor beside it: a bare container of the same image, paused through
//! the Docker API, then unpaused and sent the same GET directly
//! (`resume_raw_ms`), and the unpause call alone (`unpause_raw_ms`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bollard::query_parameters::InspectContainerOptions;
use bollard::Docker;
use hyper::{Method, StatusCode};

use crate::cold;
use crate::daemon::Daemon;
use crate::util::{http, median, ms, time_to_first_byte};

pub const SERVICE: &str = "echopause";
pub const PAUSE_AFTER: &str = "1s";
pub const RUNS: usize = 9;

pub struct ResumeResult {
    pub resume_paused_ms: f64,
    /// The same request right after, the container running.
    pub running_ttfb_ms: f64,
    pub resume_samples: Vec<f64>,
    pub running_samples: Vec<f64>,
    /// Unpause + GET of a bare container, directly.
    pub raw_resume_ms: f64,
    /// The unpause API call alone.
    pub raw_unpause_ms: f64,
    pub raw_samples: Vec<f64>,
}

/// Writes the `echopause` service into the bench's copy of `defs/`.
pub fn write_defs(defs: &Path) -> Result<()> {
    let file = defs.join("zz_bench_pause.cue");
    let text = format!(
        r#"package defs

// Written by substrate-bench: the echo image with a short pause_after, for
// the resume measurement.
enable: "{SERVICE}": true

services: "{SERVICE}": {{
	description: "echo, paused after {PAUSE_AFTER} idle (benchmark)"
	instances: [string]: {{
		image:       imagespecs.echo.image
		pause_after: "{PAUSE_AFTER}"
	}}
}}
"#
    );
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))
}

async fn container_id(daemon: &Daemon, token: &str) -> Result<String> {
    let path = format!("/substrate/v1/instances/{SERVICE}");
    let (status, body) = http(daemon.addr, Method::GET, &path, Some(token)).await?;
    if status != StatusCode::OK {
        bail!("GET {path} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).context("instance JSON")?;
    v.get("container_id")
        .and_then(|c| c.as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the {SERVICE} instance has no container_id: {v}"))
}

/// Waits until Docker says the container is paused (`.State.Paused`).
async fn wait_paused(docker: &Docker, id: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let inspected = docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .with_context(|| format!("inspecting {id}"))?;
        if inspected.state.and_then(|s| s.paused) == Some(true) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the container {id} was not paused within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_ms(daemon: &Daemon) -> Result<f64> {
    let (elapsed, status) = time_to_first_byte(daemon.addr, &format!("/{SERVICE}/")).await?;
    if status != StatusCode::OK {
        bail!("GET /{SERVICE}/ answered {status}");
    }
    Ok(ms(elapsed))
}

/// Bare: pause a container of the same image through the API, unpause it and
/// time unpause → first byte of a GET sent to it directly.
async fn raw(docker: &Docker, namespace: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    let network = format!("substrate-{namespace}");
    let name = format!("substrate-bench-raw-{namespace}-pause");
    let (id, addr) = cold::raw_container(docker, &network, "substrate-echo", &name).await?;
    let result = async {
        let addr = addr?;
        let (mut total, mut unpause) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            docker
                .pause_container(&id)
                .await
                .context("pausing the bare container")?;
            wait_paused(docker, &id).await?;
            let began = Instant::now();
            docker
                .unpause_container(&id)
                .await
                .context("unpausing the bare container")?;
            unpause.push(ms(began.elapsed()));
            let (_, status) = time_to_first_byte(addr, "/").await?;
            if status != StatusCode::OK {
                bail!("GET / of the bare container answered {status}");
            }
            total.push(ms(began.elapsed()));
        }
        Ok((total, unpause))
    }
    .await;
    cold::remove_container(docker, &id).await;
    result
}

pub async fn run(daemon: &Daemon, token: &str, docker: &Docker, namespace: &str) -> Result<ResumeResult> {
    // The first request starts it (a cold start, not measured here).
    get_ms(daemon).await?;
    let id = container_id(daemon, token).await?;
    let mut resume = Vec::new();
    let mut running = Vec::new();
    for _ in 0..RUNS {
        wait_paused(docker, &id).await?;
        resume.push(get_ms(daemon).await?);
        running.push(get_ms(daemon).await?);
        let now = container_id(daemon, token).await?;
        if now != id {
            bail!("the {SERVICE} instance changed container ({id} → {now}): it was stopped, not paused");
        }
    }
    let (raw_samples, mut unpause) = raw(docker, namespace).await?;
    Ok(ResumeResult {
        raw_resume_ms: median(&mut raw_samples.clone()),
        raw_unpause_ms: median(&mut unpause),
        raw_samples,
        resume_paused_ms: median(&mut resume.clone()),
        running_ttfb_ms: median(&mut running.clone()),
        resume_samples: resume,
        running_samples: running,
    })
}
