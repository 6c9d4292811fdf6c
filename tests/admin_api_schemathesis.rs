//! The admin API matches its OpenAPI document: schemathesis
//! (`st run … --checks all`) against a live daemon finds nothing (SPEC §8).
//!
//! `st` is taken from `$SCHEMATHESIS_ST`, else from the virtualenv that
//! `./dev.sh test` installs (`target/schemathesis-venv`). Without it this
//! test fails and says how to install it; it is never skipped. `./dev.sh
//! test` runs it on its own with `--nocapture`, so schemathesis's summary
//! shows.
//!
//! The number of generated cases per operation is bounded
//! (`SCHEMATHESIS_MAX_EXAMPLES`, default 100) so the run takes about a minute at
//! most. Generated service names do not exist, so no container is started in
//! practice; the daemon runs in a namespace of its own, whose containers are
//! removed when the test ends, whatever happened.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// Where the run's expectations differ from schemathesis's defaults, and why.
///
/// - A deleted space is remembered as a tombstone (`deleted: true`, SPEC §5
///   and §6: "a tombstone that keeps lineage whole"): PATCH, checkpoint and
///   fork of it answer 410 Gone, which answers a valid request as much as a
///   404 does, so 410 is an expected status for valid data.
/// - Every check of `--checks all` runs (`use_after_free` included: a
///   deleted space, its checkpoints and its lineage answer 410).
const CONFIG: &str = r#"
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "410", "429", "5xx"]
"#;

/// The longest a run may take; at 100 examples it takes 25–60 s here.
const LIMIT: Duration = Duration::from_secs(600);

fn st() -> PathBuf {
    match std::env::var_os("SCHEMATHESIS_ST") {
        Some(p) => PathBuf::from(p),
        None => repo_root().join("target/schemathesis-venv/bin/st"),
    }
}

#[test]
fn admin_api_matches_its_openapi_document_under_schemathesis() {
    let st = st();
    assert!(
        st.exists(),
        "schemathesis is not installed at {}: run `./dev.sh test` (it installs it), or \
         `python3 -m venv target/schemathesis-venv && target/schemathesis-venv/bin/pip install schemathesis`, \
         or set SCHEMATHESIS_ST to an `st` binary",
        st.display()
    );
    let max_examples = std::env::var("SCHEMATHESIS_MAX_EXAMPLES").unwrap_or_else(|_| "100".to_owned());
    let ns = Namespace::new("schemathesis");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    // st writes its Hypothesis database and reports into its working directory.
    let work = tmp.path().join("st");
    std::fs::create_dir_all(&work).unwrap();
    let config = work.join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();

    let started = Instant::now();
    let mut cmd = Command::new(&st);
    cmd.current_dir(&work)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(daemon.url("/substrate/v1/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {}", daemon.token())])
        .args(["--checks", "all"])
        .args(["--max-examples", &max_examples])
        .args(["--request-timeout", "30"])
        .env("NO_COLOR", "1");
    if let Ok(seed) = std::env::var("SCHEMATHESIS_SEED") {
        cmd.args(["--seed", &seed]);
    }
    // A watchdog, so a hung run fails the test instead of stalling CI.
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run schemathesis");
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(LIMIT) {
        Ok(out) => out.expect("schemathesis output"),
        Err(_) => {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("schemathesis did not finish within {} s", LIMIT.as_secs());
        }
    };
    let text = format!("{}{}", stdout(&out), stderr(&out));
    println!("{text}");
    println!(
        "schemathesis: {:.0} s, exit {:?}, max {max_examples} examples per operation",
        started.elapsed().as_secs_f64(),
        out.status.code()
    );
    drop(daemon);
    let left = ns.containers(true);
    assert!(
        out.status.success(),
        "schemathesis found failures (exit {:?}); its report is above",
        out.status.code()
    );
    // Namespace's drop removes these; say if the run started any.
    if !left.is_empty() {
        println!("the run started {} container(s); removing them", left.len());
    }
}
