//! Idle memory and restart time of a daemon whose data directory holds
//! 1 000 instance records and 10 000 space records.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hyper::{Method, StatusCode};
use substrate::datadir::DataDir;
use substrate::ids::SpaceId;
use substrate::store::{now_millis, InstanceRecord, InstanceState, SpaceOrigin, SpaceRecord, Store, StoreOptions};

use crate::daemon::{Daemon, DaemonOptions};
use crate::util::{http, median, ms, proc_status_mib};

pub const INSTANCES: usize = 1_000;
pub const SPACES: usize = 10_000;
pub const STARTS: usize = 3;

pub struct MemoryResult {
    pub rss_idle_mib: f64,
    pub restart_ms: f64,
    pub restart_samples: Vec<f64>,
    pub rss_samples: Vec<f64>,
    /// Instance records left after the first start's reconciliation.
    pub instances_after_reconcile: usize,
}

fn open(data: &DataDir, namespace: &str) -> Result<Store> {
    Store::open(
        &data.db(),
        &StoreOptions {
            namespace: namespace.to_owned(),
            ..StoreOptions::default()
        },
    )
    .with_context(|| format!("opening the store in {}", data.root().display()))
}

/// Instance records pointing at containers that do not exist.
fn put_instances(store: &Store, namespace: &str) -> Result<()> {
    let now = now_millis();
    for i in 0..INSTANCES {
        let key = format!("echo;k=i{i:04}");
        let record = InstanceRecord {
            service: "echo".into(),
            container_id: Some(format!("{:064x}", 0xbe9c_0000_u64 + i as u64)),
            container_name: format!("substrate-{namespace}-echo-{i:04}"),
            address: Some(format!("172.31.{}.{}", i / 250, i % 250 + 2)),
            port: 8080,
            state: InstanceState::Ready,
            definition_digest: format!("{:016x}", i),
            created_at: now,
            last_request_at: now,
        };
        store
            .put_instance(&key, &record)
            .context("writing an instance record")?;
    }
    Ok(())
}

fn put_spaces(store: &Store, data: &DataDir) -> Result<()> {
    let now = now_millis();
    let mut previous: Option<SpaceId> = None;
    for i in 0..SPACES {
        let id = SpaceId::generate();
        let tree = data.space_tree(&id);
        std::fs::create_dir_all(&tree).with_context(|| format!("creating {}", tree.display()))?;
        let record = SpaceRecord {
            id: id.clone(),
            created_at: now,
            // Every tenth space is a fork of the one before, for some lineage.
            forked_from: previous.filter(|_| i % 10 == 0).map(|p| substrate::store::ForkedFrom {
                space: Some(p),
                checkpoint: None,
            }),
            name: (i % 3 == 0).then(|| format!("space {i}")),
            size_hint: 4096,
            origin: if i % 2 == 0 {
                SpaceOrigin::Api
            } else {
                SpaceOrigin::Redirect
            },
            deleted: false,
        };
        store.put_space(&record).context("writing a space record")?;
        previous = Some(id);
    }
    Ok(())
}

pub async fn run(
    work: &Path,
    binary: &Path,
    defs: &Path,
    build_context: &Path,
    namespace: &str,
) -> Result<MemoryResult> {
    let root = work.join("records-data");
    let data = DataDir::new(&root);
    data.create()?;
    let began = Instant::now();
    {
        let (ns, d) = (namespace.to_owned(), data.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let store = open(&d, &ns)?;
            put_instances(&store, &ns)?;
            put_spaces(&store, &d)?;
            store.flush()?;
            Ok(())
        })
        .await??;
    }
    let write_records_ms = ms(began.elapsed());
    eprintln!(
        "  wrote {INSTANCES} instance and {SPACES} space records in {:.0} ms",
        write_records_ms
    );

    let mut restarts = Vec::new();
    let mut rss = Vec::new();
    let mut instances_after_reconcile = 0;
    for start in 0..STARTS {
        if start > 0 {
            // Reconciliation dropped the records of missing containers: put
            // them back so every start sees 1 000 instance records.
            let (ns, d) = (namespace.to_owned(), data.clone());
            tokio::task::spawn_blocking(move || -> Result<()> {
                let store = open(&d, &ns)?;
                put_instances(&store, &ns)?;
                store.flush()?;
                Ok(())
            })
            .await??;
        }
        let log = work.join(format!("records-daemon-{start}.log"));
        let mut daemon = Daemon::start(DaemonOptions {
            binary,
            data: &root,
            defs,
            namespace,
            build_context,
            log: &log,
            extra_args: &[],
        })
        .await?;
        restarts.push(ms(daemon.ready_after));
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss.push(proc_status_mib(daemon.pid(), "VmHWM")?);
        if start == 0 {
            let token = daemon.token()?;
            let (status, body) = http(daemon.addr, Method::GET, "/substrate/v1/instances", Some(&token)).await?;
            if status == StatusCode::OK {
                let v: serde_json::Value = serde_json::from_slice(&body).context("instances JSON")?;
                instances_after_reconcile = v["instances"].as_array().map(|a| a.len()).unwrap_or(0);
            }
        }
        daemon.stop();
    }
    let result = MemoryResult {
        rss_idle_mib: median(&mut rss.clone()),
        restart_ms: median(&mut restarts.clone()),
        restart_samples: restarts,
        rss_samples: rss,
        instances_after_reconcile,
    };
    let _ = std::fs::remove_dir_all(&root);
    Ok(result)
}
