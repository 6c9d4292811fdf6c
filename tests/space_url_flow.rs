//! Spaces through URLs with the real notes container: a new space by
//! redirect, data that survives the container, forks that diverge, forks of
//! checkpoints, parallel forks, and ids that are refused before they reach
//! the filesystem.

mod common;

use common::*;
use serde_json::{json, Value};

struct Notes<'a> {
    daemon: &'a Daemon,
    client: reqwest::Client,
}

impl Notes<'_> {
    /// Follows the redirect of an incomplete URL; returns the new viewspec.
    async fn open(&self, viewspec: &str) -> String {
        let resp = self
            .client
            .get(self.daemon.url(&format!("/{viewspec}/")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 307, "{viewspec}");
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with("/notes;data=sp-") && location.ends_with('/'),
            "{location}"
        );
        location.trim_matches('/').to_owned()
    }

    async fn add(&self, viewspec: &str, text: &str) {
        let resp = self
            .client
            .post(self.daemon.url(&format!("/{viewspec}/notes")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("text={}", text.replace(' ', "+")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    }

    async fn list(&self, viewspec: &str) -> Vec<String> {
        let resp = self
            .client
            .get(self.daemon.url(&format!("/{viewspec}/notes.json")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let notes: Value = resp.json().await.unwrap();
        let mut texts: Vec<String> = notes
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["text"].as_str().unwrap().to_owned())
            .collect();
        texts.sort();
        texts
    }
}

fn space_of(viewspec: &str) -> &str {
    viewspec.trim_start_matches("notes;data=")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notes_live_in_spaces_that_fork_and_checkpoint() {
    example_images();
    let ns = Namespace::new("notes");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut daemon = Daemon::start(&data, &test_defs(tmp.path(), &[]), &ns.name);
    let notes = Notes {
        daemon: &daemon,
        client: http(),
    };
    let token = daemon.token();

    // A new space by redirect; the path rest and query are kept.
    let resp = notes
        .client
        .get(daemon.url("/notes/sub/page?q=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 307);
    let location = resp.headers()["location"].to_str().unwrap();
    assert!(location.ends_with("/sub/page?q=1"), "{location}");

    let mine = notes.open("notes").await;
    notes.add(&mine, "first note").await;
    assert_eq!(notes.list(&mine).await, vec!["first note"]);

    // The data outlives the container.
    let containers = ns.containers(false);
    assert_eq!(containers.len(), 1);
    assert!(docker(&["kill", &containers[0]]).status.success());
    assert_eq!(notes.list(&mine).await, vec!["first note"]);
    assert_ne!(ns.containers(false), containers);

    // A fork has the note; edits diverge.
    let fork = notes.open(&format!("notes;data=fork:{}", space_of(&mine))).await;
    assert_ne!(fork, mine);
    assert_eq!(notes.list(&fork).await, vec!["first note"]);
    notes.add(&fork, "only in the fork").await;
    notes.add(&mine, "only in the original").await;
    assert_eq!(notes.list(&fork).await, vec!["first note", "only in the fork"]);
    assert_eq!(notes.list(&mine).await, vec!["first note", "only in the original"]);

    // Checkpoint, change, fork the checkpoint: the state at the checkpoint.
    let resp = notes
        .client
        .post(daemon.url(&format!("/substrate/v1/spaces/{}/checkpoints", space_of(&mine))))
        .bearer_auth(&token)
        .json(&json!({"message": "two notes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let ckpt: Value = resp.json().await.unwrap();
    assert_eq!(ckpt["paused"], 1, "the running notes container was not paused");
    let ckpt = ckpt["checkpoint"]["id"].as_str().unwrap().to_owned();
    notes.add(&mine, "after the checkpoint").await;
    for from in [format!("{}@{ckpt}", space_of(&mine)), ckpt.clone()] {
        let at = notes.open(&format!("notes;data=fork:{from}")).await;
        assert_eq!(
            notes.list(&at).await,
            vec!["first note", "only in the original"],
            "fork of {from}"
        );
    }

    // Twenty parallel forks through the API: distinct ids, right contents.
    let forks = (0..20).map(|_| {
        let client = notes.client.clone();
        let url = daemon.url("/substrate/v1/spaces");
        let token = token.clone();
        let from = space_of(&mine).to_owned();
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"from": from}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
            resp.json::<Value>().await.unwrap()["space"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
    });
    let ids: std::collections::BTreeSet<String> = futures_util::future::join_all(forks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids.len(), 20);
    for id in &ids {
        let dir = data.join("spaces").join(id).join("tree/notes");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3, "{id}");
    }

    // A space in use cannot be deleted without force.
    let delete = |force: bool| {
        let url = daemon.url(&format!(
            "/substrate/v1/spaces/{}{}",
            space_of(&mine),
            if force { "?force=true" } else { "" }
        ));
        notes.client.delete(url).bearer_auth(&token).send()
    };
    let resp = delete(false).await.unwrap();
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "in_use");
    assert!(body["error"]["message"].as_str().unwrap().contains(&mine), "{body}");
    assert_eq!(delete(true).await.unwrap().status(), 200);
    let resp = notes.client.get(daemon.url(&format!("/{mine}/"))).send().await.unwrap();
    assert_eq!(resp.status(), 410, "a deleted space is gone");

    // The lineage is in the store for the offline tool.
    daemon
        .signal_and_wait(libc::SIGTERM, std::time::Duration::from_secs(10))
        .unwrap();
    let out = substrate(&["inspect", "--data", data.to_str().unwrap(), "lineage", space_of(&fork)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("ancestors: {}", space_of(&mine))),
        "{}",
        stdout(&out)
    );
    let out = substrate(&["inspect", "--data", data.to_str().unwrap(), "verify"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn traversal_shaped_ids_are_refused() {
    example_images();
    let ns = Namespace::new("badids");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let daemon = Daemon::start(&data, &test_defs(tmp.path(), &[]), &ns.name);
    let client = http();
    let long = format!("sp-{}", "A".repeat(300));
    for bad in [
        "notes;data=sp-..%2F..%2Fetc",
        "notes;data=%2e%2e",
        "notes;data=%2Fetc%2Fpasswd",
        "notes;data=sp-01J00000000000000000000000%2F..",
        "notes;data=fork:sp-..%2F..",
        "notes;data=fork:%2Fetc",
        &format!("notes;data={long}"),
    ] {
        let resp = client.get(daemon.url(&format!("/{bad}/"))).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
    for bad in ["sp-..%2F..%2Fetc", "sp-%2e%2e%2Fetc", &long] {
        let resp = daemon
            .api(reqwest::Method::GET, &format!("/substrate/v1/spaces/{bad}"), None)
            .await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
    let resp = daemon
        .api(
            reqwest::Method::POST,
            "/substrate/v1/spaces",
            Some(json!({"from": "../../etc"})),
        )
        .await;
    assert_eq!(resp.status(), 400);
    // An unknown (well-formed) space is a 404 page.
    let resp = client
        .get(daemon.url("/notes;data=sp-01J00000000000000000000000/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(ns.containers(true).is_empty(), "a container started for a refused id");
    assert_eq!(std::fs::read_dir(data.join("spaces")).unwrap().count(), 0);
}
