//! The kill -9 crash-consistency loop (SPEC §10): cycles of mixed admin
//! operations and proxied requests, the daemon killed with SIGKILL at a
//! random moment, restarted; every acknowledged operation must be present
//! and `inspect verify` clean. `./dev.sh crash-test N` runs N cycles; the
//! regular suite runs a few.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rand::Rng;
use serde_json::{json, Value};

/// What the daemon acknowledged, by object id: `true` while live, `false`
/// once its deletion was acknowledged.
#[derive(Default)]
struct Acked {
    spaces: BTreeMap<String, bool>,
    checkpoints: Vec<String>,
}

async fn workload(daemon_url: String, token: String, acked: std::sync::Arc<std::sync::Mutex<Acked>>) {
    let client = http();
    let mut rng = rand::rngs::StdRng::from_entropy();
    use rand::SeedableRng;
    loop {
        let live: Vec<String> = {
            let a = acked.lock().unwrap();
            a.spaces.iter().filter(|(_, l)| **l).map(|(k, _)| k.clone()).collect()
        };
        let pick = |rng: &mut rand::rngs::StdRng| live.get(rng.gen_range(0..live.len().max(1))).cloned();
        let op = rng.gen_range(0..6);
        let result: Result<(), reqwest::Error> = async {
            match op {
                0 | 1 => {
                    let body = match (op, pick(&mut rng)) {
                        (1, Some(from)) => json!({ "from": from }),
                        _ => json!({}),
                    };
                    let r = client
                        .post(format!("{daemon_url}/substrate/v1/spaces"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?;
                    if r.status() == 201 {
                        let v: Value = r.json().await?;
                        let id = v["space"]["id"].as_str().unwrap_or_default().to_owned();
                        acked.lock().unwrap().spaces.insert(id, true);
                    }
                }
                2 => {
                    if let Some(id) = pick(&mut rng) {
                        let url = format!("{daemon_url}/substrate/v1/spaces/{id}/checkpoints");
                        let r = client
                            .post(url)
                            .bearer_auth(&token)
                            .json(&json!({"message": "c"}))
                            .send()
                            .await?;
                        if r.status() == 201 {
                            let v: Value = r.json().await?;
                            acked
                                .lock()
                                .unwrap()
                                .checkpoints
                                .push(v["checkpoint"]["id"].as_str().unwrap_or_default().to_owned());
                        }
                    }
                }
                3 => {
                    if let Some(id) = pick(&mut rng) {
                        let url = format!("{daemon_url}/substrate/v1/spaces/{id}?force=true");
                        let r = client.delete(url).bearer_auth(&token).send().await?;
                        if r.status() == 200 {
                            acked.lock().unwrap().spaces.insert(id, false);
                        }
                    }
                }
                4 => {
                    client.get(format!("{daemon_url}/echo/crash-loop")).send().await?;
                }
                _ => {
                    // A redirect allocates a space; following it binds the alias.
                    let r = client.get(format!("{daemon_url}/notes/")).send().await?;
                    if let Some(loc) = r.headers().get("location").and_then(|l| l.to_str().ok()) {
                        let id = loc.trim_matches('/').trim_start_matches("notes;data=").to_owned();
                        acked.lock().unwrap().spaces.insert(id, true);
                        client.get(format!("{daemon_url}{loc}notes.json")).send().await?;
                    }
                }
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            return; // the daemon is gone
        }
    }
}

async fn run_cycles(cycles: usize) {
    example_images();
    let ns = Namespace::new("crashloop");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let defs = test_defs(tmp.path(), &[]);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Acked::default()));
    let (mut failures, mut lost) = (0usize, 0usize);
    for cycle in 0..cycles {
        let mut daemon = Daemon::start(&data, &defs, &ns.name);
        let worker = tokio::spawn(workload(daemon.url(""), daemon.token(), acked.clone()));
        let delay = rand::thread_rng().gen_range(150..900);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        daemon.signal_and_wait(libc::SIGKILL, Duration::from_secs(10)).unwrap();
        let _ = worker.await;

        // Restart (start-up recovery runs), check every acknowledgement.
        let mut daemon = Daemon::start(&data, &defs, &ns.name);
        let (spaces, checkpoints) = {
            let a = acked.lock().unwrap();
            (a.spaces.clone(), a.checkpoints.clone())
        };
        for (id, live) in &spaces {
            let r = daemon
                .api(reqwest::Method::GET, &format!("/substrate/v1/spaces/{id}"), None)
                .await;
            // A live space answers 200; a deleted one is a tombstone: 410
            // (an unknown one would be 404).
            let ok = match (r.status().as_u16(), live) {
                (200, true) => {
                    let v: Value = r.json().await.unwrap();
                    v["space"]["deleted"] == json!(false)
                }
                (410, false) => true,
                _ => false,
            };
            if !ok {
                eprintln!("cycle {cycle}: acknowledged space {id} (live: {live}) lost");
                lost += 1;
            }
        }
        for id in &checkpoints {
            let r = daemon
                .api(reqwest::Method::GET, &format!("/substrate/v1/checkpoints/{id}"), None)
                .await;
            if r.status() != 200 {
                eprintln!("cycle {cycle}: acknowledged checkpoint {id} lost");
                lost += 1;
            }
        }
        daemon.signal_and_wait(libc::SIGTERM, Duration::from_secs(15)).unwrap();
        let out = substrate(&["inspect", "--data", data.to_str().unwrap(), "verify"]);
        if !out.status.success() {
            eprintln!("cycle {cycle}: verify failed:\n{}", stdout(&out));
            failures += 1;
        }
    }
    let a = acked.lock().unwrap();
    println!(
        "crash loop: cycles {cycles}, failures {failures}, lost {lost} ({} spaces, {} checkpoints acknowledged)",
        a.spaces.len(),
        a.checkpoints.len()
    );
    assert_eq!((failures, lost), (0, 0));
    assert!(!a.spaces.is_empty(), "the workload acknowledged nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_loop_few() {
    run_cycles(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: run by ./dev.sh crash-test N"]
async fn crash_loop_many() {
    let cycles = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20);
    run_cycles(cycles).await;
}
