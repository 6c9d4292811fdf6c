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
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
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
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(bin())
            .args(["serve", "--listen", &addr, "--namespace", namespace])
            .arg("--data")
            .arg(data)
            .arg("--defs")
            .arg(defs)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
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
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(100));
        }
        panic!("substrate serve did not listen on {} within 30 s", self.addr);
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
