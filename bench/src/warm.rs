//! The warm path: Substrate vs the container directly vs nginx, one echo
//! container, the same load generator, in interleaved rounds (SPEC §9); then
//! peak memory under 256 connections.
//!
//! Each round runs, in turn, Substrate, nginx and the container directly:
//! first `wrk -c64` (req/s, p50/p99, and the CPU the proxy spent: user+sys
//! ticks of the daemon, or of nginx's master and workers, from
//! /proc/PID/stat, over the requests wrk counted), then `wrk -c1` (the
//! one-connection p50, whose difference to the direct one is the hop a proxy
//! adds). The report holds the medians over rounds: a single run's req/s
//! swings with whatever else the machine does, CPU per request much less.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hyper::{Method, StatusCode};

use crate::daemon::Daemon;
use crate::util::{
    children_of, clock_ticks_per_sec, free_port, http, log_tail, median, proc_cpu_ticks, proc_status_mib, spawn_logged,
    Guard, TempDir,
};
use crate::wrk::{self, WrkResult};

/// wrk threads: one, so that the load generator takes one core of two.
pub const THREADS: u32 = 1;
pub const CONNECTIONS: u32 = 64;
pub const LOAD_CONNECTIONS: u32 = 256;
pub const LOAD_THREADS: u32 = 2;

/// How long and how often; `substrate-bench --rounds N --seconds S`.
#[derive(Debug, Clone, Copy)]
pub struct WarmOptions {
    pub rounds: usize,
    /// Each `wrk -c64` run.
    pub seconds: u32,
    /// Each `wrk -c1` run.
    pub hop_seconds: u32,
}

impl Default for WarmOptions {
    fn default() -> Self {
        WarmOptions {
            rounds: 5,
            seconds: 5,
            hop_seconds: 3,
        }
    }
}

/// Medians over rounds for one path (Substrate, nginx or direct).
#[derive(Debug, Clone, Default)]
pub struct PathResult {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// CPU µs per request of the proxy's processes; NaN for direct.
    pub cpu_us_per_req: f64,
    /// p50 at one connection.
    pub c1_p50_us: f64,
    pub errors: f64,
    /// Per round, for the log.
    pub rps_samples: Vec<f64>,
    pub cpu_samples: Vec<f64>,
    pub c1_samples: Vec<f64>,
}

pub struct WarmResult {
    pub proxy: PathResult,
    pub direct: PathResult,
    pub nginx: PathResult,
    /// Median over rounds of (proxy c1 p50 − direct c1 p50) of the same round.
    pub proxy_hop_us: f64,
    pub nginx_hop_us: f64,
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
        # Like Substrate: /echo/… goes to the container as /…, over
        # keep-alive upstream connections, with the same request headers
        # (the client's Host and Substrate's forwarded headers), so the
        # echo container answers both with bodies of the same size.
        location /echo/ {{
            proxy_pass http://echo/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Prefix /echo;
            proxy_set_header X-Forwarded-Proto $scheme;
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
            if let Ok((StatusCode::OK, _)) = http(addr, Method::GET, "/echo/", None).await {
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

    /// The master and its workers.
    pub fn pids(&self) -> Vec<u32> {
        let master = self.guard.pid();
        let mut pids = vec![master];
        pids.extend(children_of(master));
        pids
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

/// One of the three paths the rounds take in turn.
struct Path3<'a> {
    name: &'static str,
    url: String,
    /// The processes whose CPU is the proxy's (none for direct).
    pids: Box<dyn Fn() -> Vec<u32> + 'a>,
    c64: Vec<WrkResult>,
    cpu: Vec<f64>,
    c1: Vec<f64>,
}

fn ticks_of(pids: &[u32]) -> Result<u64> {
    pids.iter().map(|&p| proc_cpu_ticks(p)).sum()
}

impl Path3<'_> {
    /// `wrk -c64`, with the CPU ticks of the proxy's processes around it.
    fn load(&mut self, threads: u32, seconds: u32, tick_us: f64) -> Result<()> {
        let pids = (self.pids)();
        let before = ticks_of(&pids)?;
        let r = wrk::run(&self.url, threads, CONNECTIONS, seconds)?;
        let after = ticks_of(&pids)?;
        if !pids.is_empty() && r.requests > 0.0 {
            self.cpu.push((after - before) as f64 * tick_us / r.requests);
        }
        self.c64.push(r);
        Ok(())
    }

    fn summary(&self) -> PathResult {
        let med = |f: &dyn Fn(&WrkResult) -> f64| median(&mut self.c64.iter().map(f).collect::<Vec<_>>());
        PathResult {
            rps: med(&|r| r.rps),
            p50_us: med(&|r| r.p50_us),
            p99_us: med(&|r| r.p99_us),
            cpu_us_per_req: median(&mut self.cpu.clone()),
            c1_p50_us: median(&mut self.c1.clone()),
            errors: self.c64.iter().map(|r| r.errors).sum(),
            rps_samples: self.c64.iter().map(|r| r.rps).collect(),
            cpu_samples: self.cpu.clone(),
            c1_samples: self.c1.clone(),
        }
    }
}

fn show(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:.1}")).collect();
    parts.join(" ")
}

pub async fn run(work: &Path, daemon: &Daemon, container: SocketAddr, o: WarmOptions) -> Result<WarmResult> {
    let nginx = Nginx::start(work, container).await?;
    let daemon_pid = daemon.pid();
    let tick_us = 1e6 / clock_ticks_per_sec();
    let mut paths = [
        Path3 {
            name: "substrate",
            url: format!("http://{}/echo/", daemon.addr),
            pids: Box::new(move || vec![daemon_pid]),
            c64: Vec::new(),
            cpu: Vec::new(),
            c1: Vec::new(),
        },
        Path3 {
            name: "nginx",
            url: format!("http://127.0.0.1:{}/echo/", nginx.port),
            pids: Box::new(|| nginx.pids()),
            c64: Vec::new(),
            cpu: Vec::new(),
            c1: Vec::new(),
        },
        Path3 {
            name: "direct",
            url: format!("http://{container}/"),
            pids: Box::new(Vec::new),
            c64: Vec::new(),
            cpu: Vec::new(),
            c1: Vec::new(),
        },
    ];

    // A short warm-up of each path so pools and caches are filled.
    for p in &paths {
        wrk::run(&p.url, 1, 8, 1)?;
    }
    let (secs, hop_secs) = (o.seconds, o.hop_seconds);
    for round in 1..=o.rounds {
        eprintln!(
            "  round {round}/{}: wrk -t{THREADS} -c{CONNECTIONS} -d{secs}s, then -t1 -c1 -d{hop_secs}s; substrate, nginx, direct",
            o.rounds
        );
        for p in paths.iter_mut() {
            p.load(THREADS, secs, tick_us)?;
        }
        for p in paths.iter_mut() {
            let r = wrk::run(&p.url, 1, 1, hop_secs)?;
            p.c1.push(r.p50_us);
        }
        let line: Vec<String> = paths
            .iter()
            .map(|p| {
                let r = p.c64.last().cloned().unwrap_or_default();
                let cpu = p.cpu.last().map(|c| format!(", {c:.1} µs CPU/req")).unwrap_or_default();
                let c1 = p.c1.last().copied().unwrap_or(f64::NAN);
                format!("{} {:.0} req/s{cpu}, c1 p50 {c1:.0} µs", p.name, r.rps)
            })
            .collect();
        eprintln!("    {}", line.join("; "));
    }
    let hops = |i: usize| {
        let mut v: Vec<f64> = paths[i].c1.iter().zip(&paths[2].c1).map(|(a, b)| a - b).collect();
        median(&mut v)
    };
    let (proxy_hop_us, nginx_hop_us) = (hops(0), hops(1));
    let [proxy, nginx_r, direct] = [paths[0].summary(), paths[1].summary(), paths[2].summary()];
    for (name, r) in [("substrate", &proxy), ("nginx", &nginx_r), ("direct", &direct)] {
        eprintln!(
            "  {name}: req/s [{}], CPU µs/req [{}], c1 p50 µs [{}]",
            show(&r.rps_samples),
            show(&r.cpu_samples),
            show(&r.c1_samples)
        );
    }
    drop(paths);

    eprintln!("  wrk -t{LOAD_THREADS} -c{LOAD_CONNECTIONS} -d{secs}s: proxy and nginx (memory under load)");
    let proxy_url = format!("http://{}/echo/", daemon.addr);
    let nginx_url = format!("http://127.0.0.1:{}/echo/", nginx.port);
    let proxy_load = wrk::run(&proxy_url, LOAD_THREADS, LOAD_CONNECTIONS, secs)?;
    let rss_load_mib = proc_status_mib(daemon.pid(), "VmHWM")?;
    let nginx_load = wrk::run(&nginx_url, LOAD_THREADS, LOAD_CONNECTIONS, secs)?;
    let nginx_rss_mib = nginx.hwm_mib()?;
    drop(nginx);
    Ok(WarmResult {
        proxy,
        direct,
        nginx: nginx_r,
        proxy_hop_us,
        nginx_hop_us,
        proxy_load,
        nginx_load,
        rss_load_mib,
        nginx_rss_mib,
    })
}
