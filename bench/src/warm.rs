//! The warm path: Substrate vs the container directly vs nginx, one echo
//! container, the same load generator; then peak memory under 256 connections.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hyper::{Method, StatusCode};

use crate::daemon::Daemon;
use crate::util::{children_of, free_port, http, log_tail, proc_status_mib, spawn_logged, Guard, TempDir};
use crate::wrk::{self, WrkResult};

pub const THREADS: u32 = 2;
pub const CONNECTIONS: u32 = 64;
pub const LOAD_CONNECTIONS: u32 = 256;
pub const SECONDS: u32 = 5;

pub struct WarmResult {
    pub proxy: WrkResult,
    pub direct: WrkResult,
    pub nginx: WrkResult,
    pub proxy_load: WrkResult,
    pub nginx_load: WrkResult,
    pub rss_load_mib: f64,
    pub nginx_rss_mib: f64,
}

/// The address (`ip:port`) of the ready `echo` instance, from the admin API.
pub async fn echo_address(daemon: &Daemon, token: &str) -> Result<SocketAddr> {
    let (status, body) = http(daemon.addr, Method::GET, "/substrate/v1/instances/echo", Some(token)).await?;
    if status != StatusCode::OK {
        bail!(
            "GET /substrate/v1/instances/echo answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&body).context("instance JSON")?;
    let address = v
        .get("address")
        .and_then(|a| a.as_str())
        .ok_or_else(|| anyhow!("the echo instance has no address: {v}"))?;
    address
        .parse()
        .with_context(|| format!("parsing the instance address {address:?}"))
}

/// Starts the echo instance with one request through the proxy.
pub async fn warm_up(daemon: &Daemon) -> Result<()> {
    let (status, body) = http(daemon.addr, Method::GET, "/echo/", None).await?;
    if status != StatusCode::OK {
        bail!(
            "GET /echo/ answered {status}: {}\ndaemon log:\n{}",
            String::from_utf8_lossy(&body).chars().take(2000).collect::<String>(),
            log_tail(&daemon.log, 20)
        );
    }
    Ok(())
}

fn nginx_conf(dir: &Path, listen: u16, upstream: SocketAddr) -> String {
    let d = dir.display();
    format!(
        r#"worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream echo {{
        server {upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#
    )
}

/// nginx as a plain keep-alive reverse proxy to `upstream`.
pub struct Nginx {
    pub guard: Guard,
    pub port: u16,
    _dir: TempDir,
}

impl Nginx {
    pub async fn start(work: &Path, upstream: SocketAddr) -> Result<Nginx> {
        let dir = TempDir::new(work, "nginx")?;
        let port = free_port()?;
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_conf(dir.path(), port, upstream))
            .with_context(|| format!("writing {}", conf.display()))?;
        let log = dir.path().join("stderr.log");
        let mut cmd = Command::new("nginx");
        cmd.arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-g")
            .arg("daemon off;");
        let mut guard = spawn_logged(&mut cmd, &log, "nginx")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = guard.child.try_wait() {
                bail!(
                    "nginx exited ({status}): {}\n{}",
                    log_tail(&log, 10),
                    log_tail(&dir.path().join("error.log"), 10)
                );
            }
            if let Ok((StatusCode::OK, _)) = http(addr, Method::GET, "/", None).await {
                break;
            }
            if Instant::now() > deadline {
                guard.stop();
                bail!("nginx did not answer within 10 s: {}", log_tail(&log, 10));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Nginx { guard, port, _dir: dir })
    }

    /// Peak RSS of the master and its workers, summed.
    pub fn hwm_mib(&self) -> Result<f64> {
        let master = self.guard.pid();
        let mut total = proc_status_mib(master, "VmHWM")?;
        for w in children_of(master) {
            total += proc_status_mib(w, "VmHWM").unwrap_or(0.0);
        }
        Ok(total)
    }
}

pub async fn run(work: &Path, daemon: &Daemon, container: SocketAddr) -> Result<WarmResult> {
    let proxy_url = format!("http://{}/echo/", daemon.addr);
    let direct_url = format!("http://{container}/");
    let nginx = Nginx::start(work, container).await?;
    let nginx_url = format!("http://127.0.0.1:{}/", nginx.port);

    // A short warm-up of each path so pools and caches are filled.
    for url in [&proxy_url, &direct_url, &nginx_url] {
        wrk::run(url, 1, 8, 1)?;
    }
    eprintln!("  wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s: proxy");
    let proxy = wrk::run(&proxy_url, THREADS, CONNECTIONS, SECONDS)?;
    eprintln!("  wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s: direct");
    let direct = wrk::run(&direct_url, THREADS, CONNECTIONS, SECONDS)?;
    eprintln!("  wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s: nginx");
    let nginx_r = wrk::run(&nginx_url, THREADS, CONNECTIONS, SECONDS)?;
    eprintln!("  wrk -t{THREADS} -c{LOAD_CONNECTIONS} -d{SECONDS}s: proxy and nginx (memory under load)");
    let proxy_load = wrk::run(&proxy_url, THREADS, LOAD_CONNECTIONS, SECONDS)?;
    let rss_load_mib = proc_status_mib(daemon.pid(), "VmHWM")?;
    let nginx_load = wrk::run(&nginx_url, THREADS, LOAD_CONNECTIONS, SECONDS)?;
    let nginx_rss_mib = nginx.hwm_mib()?;
    drop(nginx);
    Ok(WarmResult {
        proxy,
        direct,
        nginx: nginx_r,
        proxy_load,
        nginx_load,
        rss_load_mib,
        nginx_rss_mib,
    })
}
