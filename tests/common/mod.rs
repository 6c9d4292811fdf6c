//! Helpers shared by the end-to-end tests: running the real `substrate`
//! binary against a temporary data directory.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_substrate")
}

/// Runs `substrate ARGS…` to completion.
pub fn substrate(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run substrate")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A namespace no other test (or daemon) uses.
pub fn unique_namespace(tag: &str) -> String {
    format!("t-{tag}-{}", &ulid::Ulid::new().to_string()[20..].to_lowercase())
}

fn free_port() -> u16 {
    free_port_on([127, 0, 0, 1].into())
}

/// A port free on `ip`.
fn free_port_on(ip: std::net::IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Why the IPv6 loopback cannot be tested here, or `None` when a socket
/// can listen on `[::1]`.
pub fn ipv6_loopback_missing() -> Option<String> {
    TcpListener::bind("[::1]:0")
        .err()
        .map(|e| format!("cannot listen on [::1] ({e}): this machine has no IPv6 loopback"))
}

/// The daemon's log goes next to its data directory (`<data>.log`), not into
/// the test output; a failing test prints where it is.
fn log_file(data: &Path) -> Stdio {
    let path = data.with_extension("log");
    match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::inherit(),
    }
}

/// A `substrate serve` child process, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub addr: String,
    pub data: PathBuf,
    pub namespace: String,
}

impl Daemon {
    /// Starts a daemon on a free port and waits until health answers.
    pub fn start(data: &Path, defs: &Path, namespace: &str) -> Daemon {
        Daemon::start_with(data, defs, namespace, &[])
    }

    /// Starts a daemon with extra `serve` flags.
    pub fn start_with(data: &Path, defs: &Path, namespace: &str, extra: &[&str]) -> Daemon {
        Daemon::start_env(data, defs, namespace, extra, &[])
    }

    /// Starts a daemon with extra `serve` flags and environment variables.
    pub fn start_env(data: &Path, defs: &Path, namespace: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let addr = format!("127.0.0.1:{}", free_port());
        Daemon::spawn(addr, data, defs, namespace, extra, env)
    }

    /// Starts a daemon listening on `ip` (IPv6 ones included, e.g. `::1`)
    /// with extra `serve` flags; `addr` is then `[ip]:port`.
    pub fn start_on(ip: std::net::IpAddr, data: &Path, defs: &Path, namespace: &str, extra: &[&str]) -> Daemon {
        let addr = std::net::SocketAddr::new(ip, free_port_on(ip)).to_string();
        Daemon::spawn(addr, data, defs, namespace, extra, &[])
    }

    fn spawn(addr: String, data: &Path, defs: &Path, namespace: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let child = Command::new(bin())
            .args(["serve", "--listen", &addr, "--namespace", namespace])
            .arg("--data")
            .arg(data)
            .arg("--defs")
            .arg(defs)
            .arg("--build-context")
            .arg(repo_root())
            .args(extra)
            .envs(env.iter().copied())
            // SUBSTRATE_TEST_LOG: the test daemons' RUST_LOG, for debugging.
            .env(
                "RUST_LOG",
                std::env::var("SUBSTRATE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log_file(data))
            .spawn()
            .expect("spawn substrate serve");
        let mut d = Daemon {
            child,
            addr,
            data: data.to_owned(),
            namespace: namespace.to_owned(),
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut delay = Duration::from_millis(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("substrate serve exited early: {status}");
            }
            // A connect to a free port in the ephemeral range can pick that
            // very port as its source and connect to itself (TCP
            // simultaneous open): that is not the daemon listening.
            if let Ok(s) = std::net::TcpStream::connect(&self.addr) {
                if s.local_addr().ok() != s.peer_addr().ok() {
                    return;
                }
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(100));
        }
        panic!("substrate serve did not listen on {} within 30 s", self.addr);
    }

    /// An admin API request with the daemon's token.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> reqwest::Response {
        let mut req = http().request(method, self.url(path)).bearer_auth(self.token());
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("admin request")
    }

    /// `GET` of an admin endpoint, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.api(reqwest::Method::GET, path, None)
            .await
            .json()
            .await
            .expect("JSON body")
    }

    /// Polls the admin instance list until it is empty: a stopped
    /// instance's record goes just after its container.
    pub async fn wait_no_instances(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let list = self.get_json("/substrate/v1/instances").await;
            if list["instances"].as_array().is_some_and(|a| a.is_empty()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "instances still listed after {timeout:?}: {list}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET` of a front-door path (no token), as JSON.
    pub async fn fetch_json(&self, path: &str) -> serde_json::Value {
        http()
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON body")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin.token"))
            .expect("admin.token")
            .trim()
            .to_owned()
    }

    /// Sends `signal` and waits for the process to exit (at most `timeout`).
    pub fn signal_and_wait(&mut self, signal: i32, timeout: Duration) -> Option<std::process::ExitStatus> {
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.data.with_extension("log");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            // SUBSTRATE_TEST_LOG_LINES: how much of the log a failure shows.
            let lines = std::env::var("SUBSTRATE_TEST_LOG_LINES")
                .ok()
                .and_then(|n| n.parse().ok());
            let tail: Vec<&str> = text.lines().rev().take(lines.unwrap_or(40)).collect();
            eprintln!("--- last lines of {} ---", log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the example images (echo, notes, gotty) once per test process:
/// the static binaries and gotty's files when missing, then the Docker images
/// from `defs/`.
pub fn example_images() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        example_binaries();
        let root = repo_root();
        let out = substrate(&["images", "build", "--defs", root.join("defs").to_str().unwrap()]);
        assert!(out.status.success(), "substrate images build failed: {}", stderr(&out));
    });
}

/// The example services' static binaries and gotty's files, built when missing.
fn example_binaries() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let root = repo_root();
        let built = [
            "images/echo/substrate-echo",
            "images/notes/substrate-notes",
            "images/gotty/rootfs/substrate-gotty",
        ];
        if !built.iter().all(|f| root.join(f).exists()) {
            let status = Command::new(root.join("images/build-binaries.sh"))
                .status()
                .expect("run build-binaries.sh");
            assert!(status.success(), "images/build-binaries.sh failed");
        }
    });
}

/// The example images built on Podman (under `localhost/`), once per test
/// process.
pub fn example_images_on_podman() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        example_binaries();
        let root = repo_root();
        let out = Command::new(bin())
            .args(["images", "build", "--engine", "podman", "--engine-host"])
            .arg(format!("unix://{PODMAN_SOCKET}"))
            .arg("--defs")
            .arg(root.join("defs"))
            .args(["echo", "notes"])
            .output()
            .expect("run substrate images build");
        assert!(
            out.status.success(),
            "substrate images build on podman failed: {}",
            stderr(&out)
        );
    });
}

/// A definitions directory for a test: the project's `substrate.cue`,
/// `echo.cue`, `notes.cue` and `gotty.cue` plus the test's own files.
pub fn test_defs(dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let defs = dir.join("defs");
    std::fs::create_dir_all(&defs).unwrap();
    for f in ["substrate.cue", "echo.cue", "notes.cue", "gotty.cue"] {
        std::fs::copy(repo_root().join("defs").join(f), defs.join(f)).unwrap();
    }
    for (name, text) in extra {
        std::fs::write(defs.join(name), text).unwrap();
    }
    defs
}

/// Where the Podman tests find `podman system service` (`./dev.sh test`
/// starts it there).
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

/// Why Podman cannot be tested here, or `None` when its API answers.
pub fn podman_missing() -> Option<String> {
    use std::io::{Read, Write};
    let why = |e: std::io::Error| {
        Some(format!(
            "Podman's API does not answer on {PODMAN_SOCKET} ({e}); `./dev.sh test` sets it up"
        ))
    };
    let mut s = match std::os::unix::net::UnixStream::connect(PODMAN_SOCKET) {
        Ok(s) => s,
        Err(e) => return why(e),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let mut answer = String::new();
    let asked = s
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
        .and_then(|_| s.read_to_string(&mut answer));
    match asked {
        Err(e) => why(e),
        Ok(_) if answer.ends_with("OK") => None,
        Ok(_) => Some(format!("{PODMAN_SOCKET} answered /_ping with {answer:?}")),
    }
}

/// The engine a test's daemon and containers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    /// The engine's command line tool (Podman's talks to the test's service).
    pub fn cli(self) -> Command {
        match self {
            Engine::Docker => Command::new("docker"),
            Engine::Podman => {
                let mut c = Command::new("podman");
                c.arg("--url").arg(format!("unix://{PODMAN_SOCKET}"));
                c
            }
        }
    }

    /// `--engine` and `--engine-host` for `substrate serve`.
    pub fn serve_flags(self) -> Vec<String> {
        match self {
            Engine::Docker => vec!["--engine".into(), "docker".into()],
            Engine::Podman => vec![
                "--engine".into(),
                "podman".into(),
                "--engine-host".into(),
                format!("unix://{PODMAN_SOCKET}"),
            ],
        }
    }

    /// Runs the engine's tool to completion.
    pub fn run(self, args: &[&str]) -> Output {
        self.cli()
            .args(args)
            .output()
            .expect("run the engine's command line tool")
    }
}

/// A namespace for one test; removes its containers and network on drop.
pub struct Namespace {
    pub name: String,
    pub engine: Engine,
}

impl Namespace {
    pub fn new(tag: &str) -> Namespace {
        Namespace::on(Engine::Docker, tag)
    }

    /// A namespace whose containers run on `engine`.
    pub fn on(engine: Engine, tag: &str) -> Namespace {
        Namespace {
            name: unique_namespace(tag),
            engine,
        }
    }

    /// Ids of the namespace's containers (running only, unless `all`).
    pub fn containers(&self, all: bool) -> Vec<String> {
        let filter = format!("label=substrate.namespace={}", self.name);
        let mut args = vec!["ps", "-q", "--no-trunc", "--filter", &filter];
        if all {
            args.push("-a");
        } else if self.engine == Engine::Podman {
            // `podman ps` leaves paused containers out; `docker ps` lists them.
            args.extend(["-a", "--filter", "status=running", "--filter", "status=paused"]);
        }
        let out = self.engine.cli().args(&args).output().expect("docker ps");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Polls until `cond` holds on the namespace's running containers.
    pub fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.containers(false);
            if cond(&c) {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; containers: {c:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let ids = self.containers(true);
        if !ids.is_empty() {
            let _ = self.engine.cli().arg("rm").arg("-f").args(&ids).output();
        }
        let _ = self
            .engine
            .cli()
            .args(["network", "rm", &format!("substrate-{}", self.name)])
            .output();
    }
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("run docker")
}

/// An HTTP client that does not follow redirects.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The viewspec a redirect leads to: its `Location` without slashes.
pub fn location_viewspec(resp: &reqwest::Response) -> String {
    resp.headers()["location"]
        .to_str()
        .expect("a Location header")
        .trim_matches('/')
        .to_owned()
}
