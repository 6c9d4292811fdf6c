//! The Swarm engine on two nodes (`./dev.sh swarm-test`, which builds the
//! swarm with `tests/swarm_two_nodes.sh` and passes `NODE2_ID` and
//! `NODE2_ENGINE`): an instance placed on node 2 by a node label is reached
//! from the daemon on the host, sees its space, and is paused through node
//! 2's engine; when node 2 is lost the daemon forgets the instance, a new
//! start fails with Swarm's reason (no node may run it) instead of hanging,
//! and once node 2 is back the next request starts it there with its space
//! intact.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn script(arg: &str) {
    let status = Command::new(repo_root().join("tests/swarm_two_nodes.sh"))
        .arg(arg)
        .status()
        .expect("run tests/swarm_two_nodes.sh");
    assert!(status.success(), "tests/swarm_two_nodes.sh {arg} failed");
}

fn node2(args: &[&str]) -> String {
    let engine = std::env::var("NODE2_ENGINE").unwrap();
    stdout(
        &Command::new("docker")
            .arg("-H")
            .arg(&engine)
            .args(args)
            .output()
            .expect("docker -H node2"),
    )
}

async fn wait_no_instances(daemon: &Daemon, timeout: Duration) -> Duration {
    let began = Instant::now();
    loop {
        let list: Value = daemon.get_json("/substrate/v1/instances").await;
        if list["instances"].as_array().is_some_and(|a| a.is_empty()) {
            return began.elapsed();
        }
        assert!(began.elapsed() < timeout, "the instance is still listed: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const DEFS: &str = r#"
package defs

enable: "napper": true
services: "napper": instances: [string]: {
    image: "substrate-notes"
    parameters: data: {type: "space"}
    pause_after: "2s"
    idle_timeout: "10m"
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the two-node swarm of ./dev.sh swarm-test"]
async fn swarm_two_nodes_an_instance_on_node2_and_the_loss_of_node2() {
    let (Ok(node2_id), Ok(node2_engine)) = (std::env::var("NODE2_ID"), std::env::var("NODE2_ENGINE")) else {
        panic!("NODE2_ID and NODE2_ENGINE are not set: run ./dev.sh swarm-test");
    };
    let ns = Namespace::new("swarm2");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let engines = format!("{node2_id}={node2_engine}");
    let env: &[(&str, &str)] = &[
        ("SUBSTRATE_ENGINE", "swarm"),
        ("SUBSTRATE_SWARM_CONSTRAINT", "node.labels.substrate.spaces==node2"),
        ("SUBSTRATE_SWARM_NODE_ENGINES", &engines),
        ("SUBSTRATE_SWARM_START_TIMEOUT", "15"),
    ];
    let daemon = Daemon::start_env(&data, &test_defs(tmp.path(), &[("svc.cue", DEFS)]), &ns.name, &[], env);

    // Placed on node 2, reached from the host, its space mounted.
    let redirect = http().get(daemon.url("/napper/")).send().await.unwrap();
    assert_eq!(redirect.status(), 307);
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    let space = location.split("data=").nth(1).unwrap().trim_end_matches('/').to_owned();
    let notes = data.join("spaces").join(&space).join("tree").join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("00000000000000000001-0001.txt"), "kept on node 2").unwrap();
    let began = Instant::now();
    let listed: Value = daemon.fetch_json(&format!("{location}notes.json")).await;
    eprintln!("cold start on node 2: {} ms", began.elapsed().as_millis());
    assert!(listed.to_string().contains("kept on node 2"), "{listed}");
    let filter = format!("label=substrate.namespace={}", ns.name);
    let on_node2 = node2(&["ps", "-q", "--filter", &filter]);
    assert_eq!(on_node2.lines().count(), 1, "the task does not run on node 2");
    assert!(ns.containers(false).is_empty(), "a task runs on node 1");

    // Paused through node 2's engine when idle, resumed by a request.
    let container = on_node2.trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    while node2(&["inspect", "-f", "{{.State.Paused}}", &container]).trim() != "true" {
        assert!(Instant::now() < deadline, "the idle task on node 2 was not paused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again: Value = daemon.fetch_json(&format!("{location}notes.json")).await;
    assert_eq!(again, listed);

    // Node 2 is lost: the daemon forgets the instance once Swarm marks the node down.
    script("node-down");
    let forgot = wait_no_instances(&daemon, Duration::from_secs(90)).await;
    eprintln!(
        "node 2 lost: the daemon forgot its instance after {} ms",
        forgot.as_millis()
    );

    // A new start cannot be placed: it fails with Swarm's reason, in bounded time.
    let began = Instant::now();
    let failed = http()
        .get(daemon.url(&format!("{location}notes.json")))
        .send()
        .await
        .unwrap();
    let status = failed.status();
    let page = failed.text().await.unwrap_or_default();
    eprintln!(
        "a request while node 2 is down: {status} after {} ms: {}",
        began.elapsed().as_millis(),
        page.lines().find(|l| l.contains("did not run")).unwrap_or("").trim()
    );
    assert!(status.is_server_error(), "{status}: {page}");
    assert!(page.contains("did not run within 15 s"), "{page}");
    assert!(began.elapsed() < Duration::from_secs(40));

    // Node 2 is back: the next request starts the instance there, space intact.
    script("node-up");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let state = stdout(&docker(&["node", "inspect", "-f", "{{.Status.State}}", &node2_id]));
        if state.trim() == "ready" {
            break;
        }
        assert!(Instant::now() < deadline, "node 2 did not become ready again: {state}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let began = Instant::now();
    let back: Value = daemon.fetch_json(&format!("{location}notes.json")).await;
    eprintln!(
        "after node 2 came back: started there in {} ms",
        began.elapsed().as_millis()
    );
    assert!(back.to_string().contains("kept on node 2"), "{back}");
    assert_eq!(node2(&["ps", "-q", "--filter", &filter]).lines().count(), 1);
}
