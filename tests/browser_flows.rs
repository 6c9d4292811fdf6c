//! What a person sees in a real browser (SPEC §11, §12): headless Chromium
//! (Debian's package) driven by playwright-core runs the flows of
//! `tests/browser/flows.js` against a real daemon and real containers.
//! Each step saves a screenshot under `target/browser/`.
//!
//! `./dev.sh test` installs Chromium, `certutil` and playwright-core.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const SLOW: &str = r#"
package defs

enable: "slowweb": true
services: "slowweb": instances: [string]: {
    image: "substrate-echo"
    environment: ECHO_START_DELAY_MS: "3000"
}
"#;

fn browser_dir() -> PathBuf {
    repo_root().join("tests/browser")
}

/// Makes the daemon create its Docker network (by starting echo) before a
/// browser runs: a network appearing on the host makes Chromium abort the
/// navigation in flight with ERR_NETWORK_CHANGED.
async fn create_network_first(daemon: &Daemon) {
    let warm = daemon.fetch_json("/echo/").await;
    assert!(warm["hostname"].is_string(), "{warm}");
}

/// One browser test at a time, from its daemon's start to its end: a
/// test's container starts add network interfaces to the host, which a
/// browser running beside it sees as ERR_NETWORK_CHANGED.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn one_browser() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_BROWSER.lock().await
}

/// Runs one flow of flows.js; panics with its output when it fails.
fn run_flow(flow: &str, env: &[(&str, String)]) {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in tests/browser: run ./dev.sh test (it installs chromium and playwright-core)"
    );
    let out = Command::new("node")
        .arg(dir.join("flows.js"))
        .arg(flow)
        .env("SHOTS", repo_root().join("target/browser"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run node");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    println!("{text}");
    assert!(out.status.success(), "browser flow {flow} failed:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notes_redirect_fork_and_diverge_in_a_browser() {
    let _one = one_browser().await;
    example_images();
    let ns = Namespace::new("brnotes");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    create_network_first(&daemon).await;
    run_flow("notes", &[("BASE", daemon.url(""))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_start_shows_starting_then_the_app() {
    let _one = one_browser().await;
    example_images();
    let ns = Namespace::new("brslow");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &tmp.path().join("data"),
        &test_defs(tmp.path(), &[("slow.cue", SLOW)]),
        &ns.name,
    );
    create_network_first(&daemon).await;
    run_flow("starting", &[("BASE", daemon.url(""))]);
}

/// A space and a fork of it, made through the admin API.
async fn space_and_fork(daemon: &Daemon) -> (String, String) {
    let made: serde_json::Value = daemon
        .api(
            reqwest::Method::POST,
            "/substrate/v1/spaces",
            Some(serde_json::json!({"name": "origin"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let space = made["space"]["id"].as_str().unwrap().to_owned();
    let forked: serde_json::Value = daemon
        .api(
            reqwest::Method::POST,
            "/substrate/v1/spaces",
            Some(serde_json::json!({"from": space})),
        )
        .await
        .json()
        .await
        .unwrap();
    (space, forked["space"]["id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn home_page_shows_the_lineage_and_takes_a_checkpoint() {
    let _one = one_browser().await;
    let ns = Namespace::new("brhome");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let (space, fork) = space_and_fork(&daemon).await;
    run_flow(
        "home",
        &[
            ("BASE", daemon.url("")),
            ("TOKEN", daemon.token()),
            ("SPACE", space),
            ("FORK", fork),
        ],
    );
}

/// A HOME whose NSS database (what Chromium trusts on Linux) holds `ca`.
fn browser_home_trusting(dir: &Path, ca: &Path) -> PathBuf {
    let home = dir.join("browser-home");
    let nss = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nss).unwrap();
    let db = format!("sql:{}", nss.display());
    let run = |args: &[&str]| {
        let out = Command::new("certutil")
            .args(args)
            .output()
            .expect("certutil (libnss3-tools)");
        assert!(out.status.success(), "certutil {args:?}: {}", stderr(&out));
    };
    run(&["-N", "-d", &db, "--empty-password"]);
    run(&[
        "-A",
        "-d",
        &db,
        "-t",
        "C,,",
        "-n",
        "substrate-local-ca",
        "-i",
        ca.to_str().unwrap(),
    ]);
    home
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn home_page_over_https_on_substrate_home_arpa() {
    let _one = one_browser().await;
    let ns = Namespace::new("brtls");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let daemon = Daemon::start_with(
        &data,
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--tls-listen", &format!("127.0.0.1:{port}")],
    );
    let (space, fork) = space_and_fork(&daemon).await;
    let home = browser_home_trusting(tmp.path(), &data.join("tls/ca.crt"));
    run_flow(
        "home",
        &[
            ("BASE", format!("https://substrate.home.arpa:{port}")),
            ("RESOLVE", "substrate.home.arpa".into()),
            ("BROWSER_HOME", home.display().to_string()),
            ("TOKEN", daemon.token()),
            ("SPACE", space),
            ("FORK", fork),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gotty_terminal_keeps_its_files_across_a_kill() {
    let _one = one_browser().await;
    example_images();
    let ns = Namespace::new("brgotty");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    create_network_first(&daemon).await;
    run_flow("gotty", &[("BASE", daemon.url("")), ("NAMESPACE", ns.name.clone())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gotty_over_https_on_substrate_home_arpa() {
    let _one = one_browser().await;
    example_images();
    let ns = Namespace::new("brgottytls");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let daemon = Daemon::start_with(
        &data,
        &test_defs(tmp.path(), &[]),
        &ns.name,
        &["--tls-listen", &format!("127.0.0.1:{port}")],
    );
    create_network_first(&daemon).await;
    let home = browser_home_trusting(tmp.path(), &data.join("tls/ca.crt"));
    run_flow(
        "gotty",
        &[
            ("BASE", format!("https://substrate.home.arpa:{port}")),
            ("RESOLVE", "substrate.home.arpa".into()),
            ("BROWSER_HOME", home.display().to_string()),
            ("NAMESPACE", ns.name.clone()),
        ],
    );
}
