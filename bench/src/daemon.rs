//! Running `substrate serve` as a child process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hyper::{Method, StatusCode};

use crate::util::{free_port, http, log_tail, spawn_logged, Guard};

pub struct Daemon {
    pub guard: Guard,
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub log: PathBuf,
    /// Time from spawn to the first 200 of `/substrate/v1/health`.
    pub ready_after: Duration,
}

pub struct DaemonOptions<'a> {
    pub binary: &'a Path,
    pub data: &'a Path,
    pub defs: &'a Path,
    pub namespace: &'a str,
    pub build_context: &'a Path,
    pub log: &'a Path,
    /// More `substrate serve` flags (e.g. `--pause-after 0`).
    pub extra_args: &'a [&'a str],
}

impl Daemon {
    pub async fn start(o: DaemonOptions<'_>) -> Result<Daemon> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = Command::new(o.binary);
        cmd.arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data")
            .arg(o.data)
            .arg("--defs")
            .arg(o.defs)
            .arg("--namespace")
            .arg(o.namespace)
            .arg("--build-context")
            .arg(o.build_context)
            .args(o.extra_args);
        // Flags win over the environment anyway; a config file or a
        // fail point inherited from the caller would skew the figures.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SUBSTRATE_") {
                cmd.env_remove(k);
            }
        }
        let began = Instant::now();
        let mut guard = spawn_logged(&mut cmd, o.log, "substrate serve")?;
        let deadline = began + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = guard.child.try_wait() {
                bail!(
                    "substrate serve exited ({status}) before answering health; its log ({}):\n{}",
                    o.log.display(),
                    log_tail(o.log, 20)
                );
            }
            if let Ok(Ok((StatusCode::OK, _))) = tokio::time::timeout(
                Duration::from_secs(2),
                http(addr, Method::GET, "/substrate/v1/health", None),
            )
            .await
            {
                break;
            }
            if Instant::now() > deadline {
                guard.stop();
                bail!(
                    "substrate serve did not answer health within 120 s; its log ({}):\n{}",
                    o.log.display(),
                    log_tail(o.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ready_after = began.elapsed();
        Ok(Daemon {
            guard,
            addr,
            data: o.data.to_owned(),
            log: o.log.to_owned(),
            ready_after,
        })
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    pub fn token(&self) -> Result<String> {
        let path = self.data.join("admin.token");
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned())
    }

    pub fn stop(&mut self) {
        self.guard.stop();
    }
}
