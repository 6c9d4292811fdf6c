//! Crash safety of space operations: the daemon is made to abort at each
//! step of fork, checkpoint and delete (fail points). After a restart no
//! half-made object is visible through the API and `inspect verify` is
//! clean.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

struct Setup {
    tmp: tempfile::TempDir,
    ns: Namespace,
}

impl Setup {
    fn data(&self) -> std::path::PathBuf {
        self.tmp.path().join("data")
    }
    fn defs(&self) -> std::path::PathBuf {
        self.tmp.path().join("defs")
    }
}

async fn api(
    daemon: &Daemon,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = http().request(method, daemon.url(path)).bearer_auth(daemon.token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await
}

/// Runs `op` against a daemon that aborts at `step`, restarts, and returns
/// the space the operation was applied to, with the restarted daemon.
async fn crash_at(setup: &Setup, step: &str, op: &str) -> (String, Daemon) {
    // A space with contents, made by a healthy daemon.
    let mut daemon = Daemon::start(&setup.data(), &setup.defs(), &setup.ns.name);
    let created: Value = api(&daemon, reqwest::Method::POST, "/substrate/v1/spaces", Some(json!({})))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["space"]["id"].as_str().unwrap().to_owned();
    std::fs::write(setup.data().join("spaces").join(&id).join("tree/file.txt"), "contents").unwrap();
    daemon.signal_and_wait(libc::SIGTERM, Duration::from_secs(10)).unwrap();

    let mut failing = Daemon::start_env(
        &setup.data(),
        &setup.defs(),
        &setup.ns.name,
        &[],
        &[("SUBSTRATE_FAIL_AT", step)],
    );
    let result = match op {
        "fork" => {
            api(
                &failing,
                reqwest::Method::POST,
                "/substrate/v1/spaces",
                Some(json!({"from": id})),
            )
            .await
        }
        "checkpoint" => {
            let path = format!("/substrate/v1/spaces/{id}/checkpoints");
            api(&failing, reqwest::Method::POST, &path, Some(json!({"message": "m"}))).await
        }
        "delete" => {
            api(
                &failing,
                reqwest::Method::DELETE,
                &format!("/substrate/v1/spaces/{id}"),
                None,
            )
            .await
        }
        _ => unreachable!(),
    };
    assert!(
        result.is_err(),
        "{op} at {step} was acknowledged: {:?}",
        result.map(|r| r.status())
    );
    let status = failing
        .signal_and_wait(0, Duration::from_secs(10))
        .expect("the daemon did not abort at the fail point");
    assert!(!status.success());
    (id, Daemon::start(&setup.data(), &setup.defs(), &setup.ns.name))
}

fn verify_clean(data: &std::path::Path) {
    let out = substrate(&["inspect", "--data", data.to_str().unwrap(), "verify"]);
    assert!(out.status.success(), "verify: {}{}", stdout(&out), stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_half_made_object_survives_a_crash_at_any_step() {
    for (op, step) in [
        ("fork", "copied"),
        ("fork", "renamed"),
        ("checkpoint", "copied"),
        ("checkpoint", "renamed"),
        ("delete", "marked"),
    ] {
        let setup = Setup {
            tmp: tempfile::tempdir().unwrap(),
            ns: Namespace::new("crash"),
        };
        test_defs(setup.tmp.path(), &[]);
        let (id, mut daemon) = crash_at(&setup, step, op).await;
        let spaces: Value = api(&daemon, reqwest::Method::GET, "/substrate/v1/spaces", None)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let spaces = spaces["spaces"].as_array().unwrap().clone();
        match op {
            "fork" => assert_eq!(spaces.len(), 1, "{op} at {step}: a fork is visible: {spaces:?}"),
            "checkpoint" => {
                let path = format!("/substrate/v1/spaces/{id}/checkpoints");
                let c: Value = api(&daemon, reqwest::Method::GET, &path, None)
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(c["checkpoints"], json!([]), "{op} at {step}: a checkpoint is visible");
            }
            _ => {
                // The deletion was recorded before the crash: it completes.
                assert_eq!(spaces[0]["deleted"], true, "{spaces:?}");
                assert!(
                    !setup.data().join("spaces").join(&id).exists(),
                    "the deleted tree is still there"
                );
            }
        }
        daemon.signal_and_wait(libc::SIGTERM, Duration::from_secs(10)).unwrap();
        verify_clean(&setup.data());
    }
}
