//! Crash safety at store level: a child process makes acknowledged writes
//! (it prints each id only after the call returned) and is killed with
//! SIGKILL at a random moment. The reopened store must hold every
//! acknowledged record and pass `verify`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rand::Rng;
use substrate::datadir::DataDir;
use substrate::ids::SpaceId;
use substrate::store::*;

const CHILD_ENV: &str = "SUBSTRATE_CRASH_CHILD_DATA";

/// The writer. Runs only when re-executed by the test below.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let data = DataDir::new(dir);
    data.create().unwrap();
    let store = Store::open(&data.db(), &StoreOptions::default()).unwrap();
    data.recover(&store).unwrap();
    let mut out = std::io::stdout().lock();
    loop {
        // The space layer's order: copy under staging/, rename into place,
        // then write the record; acknowledge only after the flush.
        let id = SpaceId::generate();
        let staged = data.staging().join(id.as_str());
        std::fs::create_dir_all(staged.join("tree")).unwrap();
        std::fs::write(staged.join("tree/file"), id.as_str()).unwrap();
        std::fs::rename(&staged, data.spaces().join(id.as_str())).unwrap();
        store
            .put_space(&SpaceRecord {
                id: id.clone(),
                created_at: now_millis(),
                forked_from: None,
                name: None,
                size_hint: 0,
                origin: SpaceOrigin::Api,
                deleted: false,
            })
            .unwrap();
        store.bind_alias(&format!("notes;data={id}"), "data", &id).unwrap();
        use std::io::Write;
        writeln!(out, "{id}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acknowledged: Vec<SpaceId> = Vec::new();
    let mut rng = rand::thread_rng();
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args(["crash_child_writer", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("sp-") && tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the first acknowledgement, then kill at a random moment.
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child never acknowledged a write");
        acknowledged.push(first.parse().unwrap());
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        reader.join().unwrap();
        acknowledged.extend(rx.try_iter().filter_map(|l| l.parse().ok()));

        let data = DataDir::new(tmp.path());
        let store = Store::open(&data.db(), &StoreOptions::default()).unwrap();
        data.recover(&store).unwrap();
        for id in &acknowledged {
            assert!(
                store.space(id).unwrap().is_some(),
                "round {round}: acknowledged space {id} lost"
            );
            assert!(
                data.space_tree(id).join("file").is_file(),
                "round {round}: tree of {id} lost"
            );
            assert_eq!(store.uses_of(id).unwrap().len(), 1, "round {round}: alias of {id} lost");
        }
        let problems = substrate::inspect::verify(&data, &store).unwrap();
        assert!(problems.is_empty(), "round {round}: verify found {problems:?}");
    }
    assert!(acknowledged.len() >= 20);
}
