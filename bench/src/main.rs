//! `substrate-bench`: the benchmark suite of SPEC §9.
//!
//! Runs every measurement side by side with its comparison, prints a table
//! and writes a flat JSON object of numbers (`--out`, default
//! `target/bench/report.json`). Meant to be run by `bench/run.sh`
//! (`./dev.sh bench`), which builds the release binaries and the images first.
//!
//! `--only defs,warm,resume,cold,coalesce,memory,spaces` runs a subset;
//! `--rounds N --seconds S --hop-seconds S` shorten or lengthen the warm path
//! (defaults: 5 rounds, 5 s at 64 connections, 3 s at one).

mod cold;
mod daemon;
mod defs_load;
mod memory;
mod resume;
mod spaces;
mod util;
mod warm;
mod wrk;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
use bollard::Docker;
use serde_json::{Map, Value};

use crate::daemon::{Daemon, DaemonOptions};
use crate::util::TempDir;

const ALL: [&str; 7] = ["defs", "warm", "resume", "cold", "coalesce", "memory", "spaces"];

struct Args {
    out: PathBuf,
    root: PathBuf,
    binary: PathBuf,
    only: BTreeSet<String>,
    warm: warm::WarmOptions,
}

fn parse_args() -> Result<Args> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut out = None;
    let mut binary = None;
    let mut root_arg = None;
    let mut only: BTreeSet<String> = ALL.iter().map(|s| s.to_string()).collect();
    let mut warm = warm::WarmOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--root" => root_arg = Some(PathBuf::from(value("--root")?)),
            "--substrate" => binary = Some(PathBuf::from(value("--substrate")?)),
            "--rounds" => warm.rounds = value("--rounds")?.parse().context("--rounds: a number")?,
            "--seconds" => warm.seconds = value("--seconds")?.parse().context("--seconds: a number")?,
            "--hop-seconds" => warm.hop_seconds = value("--hop-seconds")?.parse().context("--hop-seconds: a number")?,
            "--only" => {
                only = value("--only")?.split(',').map(|s| s.trim().to_owned()).collect();
                if let Some(bad) = only.iter().find(|s| !ALL.contains(&s.as_str())) {
                    bail!("unknown benchmark {bad:?}; known: {}", ALL.join(","));
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: substrate-bench [--out FILE] [--root REPO] [--substrate BINARY] [--only {}] \
                     [--rounds N] [--seconds S] [--hop-seconds S]",
                    ALL.join(",")
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let root = root_arg.unwrap_or(root);
    let root = root
        .canonicalize()
        .with_context(|| format!("the repository root {}", root.display()))?;
    Ok(Args {
        out: out.unwrap_or_else(|| root.join("target/bench/report.json")),
        binary: binary.unwrap_or_else(|| root.join("target/release/substrate")),
        root,
        only,
        warm,
    })
}

/// The report: a flat JSON object of numbers, in insertion order.
#[derive(Default)]
struct Report {
    values: Map<String, Value>,
    notes: Vec<String>,
}

impl Report {
    fn set(&mut self, key: &str, v: f64) {
        let rounded = (v * 1000.0).round() / 1000.0;
        let value = serde_json::Number::from_f64(rounded)
            .map(Value::Number)
            .unwrap_or(Value::Null);
        self.values.insert(key.to_owned(), value);
    }
    fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).and_then(Value::as_f64)
    }
    fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("  note: {s}");
        self.notes.push(s);
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

struct Ctx {
    args: Args,
    docker: Docker,
    namespace: String,
    work: TempDir,
}

#[tokio::main]
async fn main() {
    let code = match real_main().await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("substrate-bench: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

async fn real_main() -> Result<()> {
    let args = parse_args()?;
    if !args.binary.exists() {
        bail!(
            "{} is missing; build it with cargo build --release -p substrate",
            args.binary.display()
        );
    }
    let bench_dir = args.root.join("target/bench");
    std::fs::create_dir_all(&bench_dir).with_context(|| format!("creating {}", bench_dir.display()))?;
    let docker = Docker::connect_with_local_defaults()
        .context("connecting to the Docker Engine")?
        .negotiate_version()
        .await
        .context("negotiating the Docker API version (is dockerd running?)")?;
    let namespace = format!("bench-{}", util::random_suffix());
    let work = TempDir::new(&bench_dir, "work")?;
    let ctx = Ctx {
        args,
        docker,
        namespace,
        work,
    };
    eprintln!("namespace {}, work dir {}", ctx.namespace, ctx.work.path().display());
    let mut report = Report::default();
    let outcome = tokio::select! {
        r = run_all(&ctx, &mut report) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; cleaning up")),
    };
    cleanup(&ctx).await;
    print_table(&report);
    let out = &ctx.args.out;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let json = serde_json::to_string_pretty(&Value::Object(report.values.clone()))?;
    std::fs::write(out, json + "\n").with_context(|| format!("writing {}", out.display()))?;
    println!("\nwrote {}", out.display());
    outcome
}

async fn run_all(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let only = &ctx.args.only;
    let root = &ctx.args.root;
    let defs = root.join("defs");
    if only.contains("defs") {
        eprintln!("== defs: loading 200 generated service files");
        let r = defs_load::run(ctx.work.path(), &defs.join("substrate.cue"))?;
        eprintln!(
            "  {} services loaded, ~{} lines per file, median {:.2} ms",
            r.services, r.lines, r.load_ms
        );
        report.set("defs_load_ms", r.load_ms);
    }

    if ["warm", "resume", "cold", "coalesce"].iter().any(|b| only.contains(*b)) {
        let data = ctx.work.path().join("serve-data");
        let log = ctx.work.path().join("serve.log");
        // The project's definitions plus the resume benchmark's service.
        let bench_defs = ctx.work.path().join("defs");
        util::copy_tree(&defs, &bench_defs)?;
        resume::write_defs(&bench_defs)?;
        let mut daemon = Daemon::start(DaemonOptions {
            binary: &ctx.args.binary,
            data: &data,
            defs: &bench_defs,
            namespace: &ctx.namespace,
            build_context: root,
            log: &log,
            // No default pause: the echo instance sits idle (for the daemon)
            // while nginx and direct take their turns in the warm rounds,
            // and a paused container would stall them. The resume service
            // sets its own pause_after.
            extra_args: &["--pause-after", "0"],
        })
        .await?;
        let token = daemon.token()?;
        let result = front_door(ctx, report, &daemon, &token).await;
        daemon.stop();
        result?;
    }

    if only.contains("memory") {
        eprintln!(
            "== memory and restart: {} instance and {} space records",
            memory::INSTANCES,
            memory::SPACES
        );
        let ns = format!("{}-mem", ctx.namespace);
        let r = memory::run(ctx.work.path(), &ctx.args.binary, &defs, root, &ns).await?;
        eprintln!(
            "  starts: {:?} ms; VmHWM: {:?} MiB",
            r.restart_samples.iter().map(|v| v.round()).collect::<Vec<_>>(),
            r.rss_samples
                .iter()
                .map(|v| (v * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
        report.set("rss_idle_mib", r.rss_idle_mib);
        report.set("restart_ms", r.restart_ms);
        report.set("instances_after_reconcile", r.instances_after_reconcile as f64);
        report.note(format!(
            "the {n} instance records point at containers that do not exist: reconciliation at start drops them \
             ({} left after the first start), so every start was given the {n} records again",
            r.instances_after_reconcile,
            n = memory::INSTANCES
        ));
    }

    if only.contains("spaces") {
        spaces_bench(ctx, report).await?;
    }
    Ok(())
}

async fn front_door(ctx: &Ctx, report: &mut Report, daemon: &Daemon, token: &str) -> Result<()> {
    let only = &ctx.args.only;
    if only.contains("warm") {
        eprintln!("== warm path");
        warm::warm_up(daemon).await?;
        let container = warm::echo_address(daemon, token).await?;
        eprintln!("  echo container at {container}");
        let r = warm::run(ctx.work.path(), daemon, container, ctx.args.warm).await?;
        report.set("warm_rounds", ctx.args.warm.rounds as f64);
        report.set("proxy_rps", r.proxy.rps);
        report.set("direct_rps", r.direct.rps);
        report.set("nginx_rps", r.nginx.rps);
        report.set("proxy_p50_us", r.proxy.p50_us);
        report.set("proxy_p99_us", r.proxy.p99_us);
        report.set("direct_p50_us", r.direct.p50_us);
        report.set("direct_p99_us", r.direct.p99_us);
        report.set("nginx_p50_us", r.nginx.p50_us);
        report.set("nginx_p99_us", r.nginx.p99_us);
        report.set("proxy_vs_nginx_rps", ratio(r.proxy.rps, r.nginx.rps));
        report.set("proxy_cpu_us_per_req", r.proxy.cpu_us_per_req);
        report.set("nginx_cpu_us_per_req", r.nginx.cpu_us_per_req);
        report.set("cpu_vs_nginx", ratio(r.proxy.cpu_us_per_req, r.nginx.cpu_us_per_req));
        report.set("proxy_c1_p50_us", r.proxy.c1_p50_us);
        report.set("nginx_c1_p50_us", r.nginx.c1_p50_us);
        report.set("direct_c1_p50_us", r.direct.c1_p50_us);
        report.set("proxy_hop_us", r.proxy_hop_us);
        report.set("nginx_hop_us", r.nginx_hop_us);
        report.set("proxy_overhead_p50_us", r.proxy.p50_us - r.direct.p50_us);
        report.set("nginx_overhead_p50_us", r.nginx.p50_us - r.direct.p50_us);
        report.set("proxy_errors", r.proxy.errors);
        report.set("nginx_errors", r.nginx.errors);
        report.set("proxy_c256_rps", r.proxy_load.rps);
        report.set("proxy_c256_p99_us", r.proxy_load.p99_us);
        report.set("nginx_c256_rps", r.nginx_load.rps);
        report.set("nginx_c256_p99_us", r.nginx_load.p99_us);
        report.set("rss_load_mib", r.rss_load_mib);
        report.set("nginx_rss_mib", r.nginx_rss_mib);
        let errors = r.proxy.errors + r.direct.errors + r.nginx.errors + r.proxy_load.errors + r.nginx_load.errors;
        if errors > 0.0 {
            report.note(format!(
                "wrk saw {errors} non-2xx responses or socket errors in the warm path"
            ));
        }
    }
    if only.contains("resume") {
        eprintln!(
            "== resume from paused: {} runs, service {} with pause_after {}",
            resume::RUNS,
            resume::SERVICE,
            resume::PAUSE_AFTER
        );
        let r = resume::run(daemon, token, &ctx.docker, &ctx.namespace).await;
        // The cold start and coalescing want no other container of the
        // namespace: stop the resume service whatever happened.
        let stopped = cold::stop_instance(daemon, token, &ctx.docker, &ctx.namespace, resume::SERVICE).await;
        let r = r?;
        stopped?;
        let show = |v: &[f64]| v.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>();
        eprintln!("  paused:  {:?} ms", show(&r.resume_samples));
        eprintln!("  running: {:?} ms", show(&r.running_samples));
        eprintln!("  bare unpause + GET: {:?} ms", show(&r.raw_samples));
        report.set("resume_paused_ms", r.resume_paused_ms);
        report.set("resume_running_ttfb_ms", r.running_ttfb_ms);
        report.set("resume_raw_ms", r.raw_resume_ms);
        report.set("unpause_raw_ms", r.raw_unpause_ms);
        report.set("resume_vs_raw", ratio(r.resume_paused_ms, r.raw_resume_ms));
    }
    if only.contains("cold") {
        eprintln!("== cold start vs bare Docker start, {} runs each", cold::RUNS);
        let r = cold::run(daemon, token, &ctx.docker, &ctx.namespace).await?;
        let show = |v: &[f64]| v.iter().map(|x| (x * 10.0).round() / 10.0).collect::<Vec<_>>();
        eprintln!("  cold: {:?} ms", show(&r.cold_samples));
        eprintln!("  raw:  {:?} ms", show(&r.raw_samples));
        report.set("cold_start_ms", r.cold_start_ms);
        report.set("raw_start_ms", r.raw_start_ms);
        report.set("cold_vs_raw", ratio(r.cold_start_ms, r.raw_start_ms));
    }
    if only.contains("coalesce") {
        eprintln!("== coalescing: {} concurrent cold requests", cold::COALESCE_REQUESTS);
        let r = cold::coalesce(daemon, token, &ctx.docker, &ctx.namespace).await?;
        eprintln!(
            "  {} containers, {} errors, {:.0} ms",
            r.containers, r.errors, r.wall_ms
        );
        report.set("coalesce_containers", r.containers as f64);
        report.set("coalesce_errors", r.errors as f64);
        report.set("coalesce_wall_ms", r.wall_ms);
    }
    Ok(())
}

async fn spaces_bench(ctx: &Ctx, report: &mut Report) -> Result<()> {
    let bench_dir = ctx.args.root.join("target/bench");
    // First, before the measurements below delete their copies (see spaces.rs).
    eprintln!("== checkpoint pause: a running notes instance, 10 000 files in its space (plain data dir)");
    if ctx.docker.inspect_image("substrate-notes").await.is_err() {
        report.note("checkpoint_pause_ms skipped: the image substrate-notes is missing (bench/run.sh builds it)");
    } else {
        let data = ctx.work.path().join("pause-data");
        let log = ctx.work.path().join("pause.log");
        let defs = ctx.args.root.join("defs");
        let r = spaces::checkpoint_pause(DaemonOptions {
            binary: &ctx.args.binary,
            data: &data,
            defs: &defs,
            namespace: &ctx.namespace,
            build_context: &ctx.args.root,
            log: &log,
            // The checkpoint's pause is what is measured, not the idle tier's.
            extra_args: &["--pause-after", "0"],
        })
        .await;
        // Its data goes with the work dir at the end: no deletion before the copies below.
        let r = r?;
        report.set("checkpoint_pause_ms", r.pause_ms);
        report.set("checkpoint_request_ms", r.request_ms);
        if r.method != "copy" {
            report.note(format!("the pause was measured with method {}", r.method));
        }
    }

    eprintln!("== spaces on the plain data dir");
    let plain = bench_dir.join("plain");
    let _ = std::fs::remove_dir_all(&plain);
    std::fs::create_dir_all(&plain).with_context(|| format!("creating {}", plain.display()))?;
    let r = spaces::measure(&plain).await;
    let r = r?;
    if r.method != Some(substrate::store::CopyMethod::Copy) {
        report.note(format!(
            "the plain data dir copies with {:?}, not a naive copy",
            r.method
        ));
    }
    report.set("fork_1gib_copy_ms", r.fork_big_ms);
    report.set("fork_1gib_plain_cp_ms", r.cp_big_ms);
    report.set("fork_1gib_plain_cp_sync_ms", r.cp_big_synced_ms);
    report.set("fork_10k_files_copy_ms", r.fork_small_ms);
    report.set("fork_10k_files_plain_cp_ms", r.cp_small_ms);
    report.set("fork_10k_files_plain_cp_sync_ms", r.cp_small_synced_ms);
    report.set("checkpoint_10k_files_copy_ms", r.checkpoint_small_ms);
    report.set("copy_10k_vs_cp", ratio(r.fork_small_ms, r.cp_small_ms));
    report.set("checkpoint_copy_10k_vs_cp", ratio(r.checkpoint_small_ms, r.cp_small_ms));
    report.set("copy_1gib_vs_cp", ratio(r.fork_big_ms, r.cp_big_ms));
    report.set("fork_sparse_1gib_copy_ms", r.fork_sparse_ms);
    report.set("sparse_1gib_source_alloc_bytes", r.sparse_source_alloc as f64);
    report.set("sparse_1gib_fork_alloc_bytes", r.sparse_fork_alloc as f64);

    eprintln!("== spaces on a loop-mounted XFS (reflink)");
    match spaces::XfsMount::create(&bench_dir) {
        Err(e) => report.note(format!("XFS keys skipped: {e:#}")),
        Ok(mount) => {
            let r = spaces::measure(&mount.dir.join("bench")).await;
            drop(mount);
            let r = r?;
            let reflink = r.method == Some(substrate::store::CopyMethod::Reflink);
            if !reflink {
                report.note(format!("the XFS data dir probed as {:?}, not reflink", r.method));
            }
            report.set("xfs_method_is_reflink", if reflink { 1.0 } else { 0.0 });
            report.set("fork_1gib_reflink_ms", r.fork_big_ms);
            report.set("fork_1gib_cp_ms", r.cp_big_ms);
            report.set("fork_1gib_cp_sync_ms", r.cp_big_synced_ms);
            report.set("fork_10k_files_ms", r.fork_small_ms);
            report.set("fork_10k_files_cp_ms", r.cp_small_ms);
            report.set("fork_10k_files_cp_sync_ms", r.cp_small_synced_ms);
            report.set("checkpoint_10k_files_ms", r.checkpoint_small_ms);
            report.set("fork_10k_vs_cp", ratio(r.fork_small_ms, r.cp_small_ms));
            report.set("checkpoint_10k_vs_cp", ratio(r.checkpoint_small_ms, r.cp_small_ms));
            report.set("fork_1gib_vs_cp", ratio(r.fork_big_ms, r.cp_big_ms));
            report.set("fork_sparse_1gib_reflink_ms", r.fork_sparse_ms);
            report.set("sparse_1gib_source_alloc_bytes_xfs", r.sparse_source_alloc as f64);
            report.set("sparse_1gib_fork_alloc_bytes_xfs", r.sparse_fork_alloc as f64);
        }
    }
    // Last: removing it earlier would slow the XFS measurements (see spaces.rs).
    let _ = std::fs::remove_dir_all(&plain);

    Ok(())
}

/// Removes every container and network the run created.
async fn cleanup(ctx: &Ctx) {
    let namespaces = [ctx.namespace.clone(), format!("{}-mem", ctx.namespace)];
    let mut filters: Vec<(String, String)> = namespaces
        .iter()
        .map(|ns| ("substrate.namespace".to_owned(), ns.clone()))
        .collect();
    filters.extend(
        namespaces
            .iter()
            .map(|ns| (cold::RAW_LABEL.to_owned(), format!("substrate-{ns}"))),
    );
    for (label, value) in filters {
        let list = ctx
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([("label".to_owned(), vec![format!("{label}={value}")])])),
                ..Default::default()
            }))
            .await
            .unwrap_or_default();
        for c in list.into_iter().filter_map(|c| c.id) {
            cold::remove_container(&ctx.docker, &c).await;
        }
    }
    for ns in &namespaces {
        let name = format!("substrate-{ns}");
        let exists = ctx
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(HashMap::from([("name".to_owned(), vec![name.clone()])])),
            }))
            .await
            .map(|n| n.iter().any(|n| n.name.as_deref() == Some(name.as_str())))
            .unwrap_or(false);
        if exists {
            if let Err(e) = ctx.docker.remove_network(&name).await {
                eprintln!("could not remove network {name}: {e}");
            }
        }
    }
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.is_nan() => "-".into(),
        Some(v) if v.abs() >= 1000.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// A block of the table, printed only when something in it was measured.
struct Section {
    title: String,
    cols: Vec<String>,
    rows: Vec<(String, Vec<Option<f64>>)>,
}

impl Section {
    fn new(title: &str, cols: &[&str]) -> Section {
        Section {
            title: title.to_owned(),
            cols: cols.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    fn row(mut self, label: &str, cells: &[Option<f64>]) -> Section {
        self.rows.push((label.to_owned(), cells.to_vec()));
        self
    }
    fn print(&self) {
        if !self.rows.iter().any(|(_, c)| c.first().copied().flatten().is_some()) {
            return;
        }
        let cols: Vec<String> = self.cols.iter().map(|c| format!("{c:>12}")).collect();
        println!("\n{:<36}{}", self.title, cols.join(""));
        for (label, cells) in &self.rows {
            let cells: Vec<String> = cells.iter().map(|c| format!("{:>12}", fmt(*c))).collect();
            println!("  {label:<34}{}", cells.join(""));
        }
    }
}

fn print_table(r: &Report) {
    let g = |k: &str| r.get(k);
    let div = |a: &str, b: &str| g(a).zip(g(b)).map(|(a, b)| ratio(a, b));

    Section::new("definitions", &["value", "target"])
        .row("defs_load_ms (200 files)", &[g("defs_load_ms"), Some(50.0)])
        .print();
    let title = format!(
        "warm path, medians of {} rounds",
        g("warm_rounds").map(|n| n.to_string()).unwrap_or_default()
    );
    Section::new(&title, &["substrate", "direct", "nginx", "subst/nginx"])
        .row(
            "requests/s (wrk -t1 -c64)",
            &[g("proxy_rps"), g("direct_rps"), g("nginx_rps"), g("proxy_vs_nginx_rps")],
        )
        .row(
            "CPU µs per request (-c64)",
            &[
                g("proxy_cpu_us_per_req"),
                None,
                g("nginx_cpu_us_per_req"),
                g("cpu_vs_nginx"),
            ],
        )
        .row(
            "p50 µs",
            &[
                g("proxy_p50_us"),
                g("direct_p50_us"),
                g("nginx_p50_us"),
                div("proxy_p50_us", "nginx_p50_us"),
            ],
        )
        .row(
            "p99 µs",
            &[
                g("proxy_p99_us"),
                g("direct_p99_us"),
                g("nginx_p99_us"),
                div("proxy_p99_us", "nginx_p99_us"),
            ],
        )
        .row(
            "p50 overhead over direct, µs",
            &[g("proxy_overhead_p50_us"), None, g("nginx_overhead_p50_us"), None],
        )
        .row(
            "p50 µs at one connection (-c1)",
            &[
                g("proxy_c1_p50_us"),
                g("direct_c1_p50_us"),
                g("nginx_c1_p50_us"),
                div("proxy_c1_p50_us", "nginx_c1_p50_us"),
            ],
        )
        .row(
            "hop µs (-c1 p50 minus direct)",
            &[
                g("proxy_hop_us"),
                None,
                g("nginx_hop_us"),
                div("proxy_hop_us", "nginx_hop_us"),
            ],
        )
        .row(
            "requests/s at -c256",
            &[
                g("proxy_c256_rps"),
                None,
                g("nginx_c256_rps"),
                div("proxy_c256_rps", "nginx_c256_rps"),
            ],
        )
        .row(
            "p99 µs at -c256",
            &[
                g("proxy_c256_p99_us"),
                None,
                g("nginx_c256_p99_us"),
                div("proxy_c256_p99_us", "nginx_c256_p99_us"),
            ],
        )
        .row(
            "peak RSS MiB after -c256",
            &[
                g("rss_load_mib"),
                None,
                g("nginx_rss_mib"),
                div("rss_load_mib", "nginx_rss_mib"),
            ],
        )
        .print();
    Section::new(
        "cold start (median of 10)",
        &["substrate", "bare docker", "ratio", "target"],
    )
    .row(
        "to first byte / to ready, ms",
        &[g("cold_start_ms"), g("raw_start_ms"), g("cold_vs_raw"), Some(1.15)],
    )
    .print();
    Section::new(
        "resume from paused, medians, ms",
        &["substrate", "bare docker", "ratio", "target"],
    )
    .row(
        "paused: request to first byte",
        &[
            g("resume_paused_ms"),
            g("resume_raw_ms"),
            g("resume_vs_raw"),
            Some(15.0),
        ],
    )
    .row("  the unpause API call alone", &[None, g("unpause_raw_ms"), None, None])
    .row(
        "running: request to first byte",
        &[g("resume_running_ttfb_ms"), None, None, None],
    )
    .row(
        "cold start: request to first byte",
        &[g("cold_start_ms"), None, None, None],
    )
    .print();
    Section::new("coalescing (200 cold requests)", &["value", "must be"])
        .row("containers", &[g("coalesce_containers"), Some(1.0)])
        .row("errors", &[g("coalesce_errors"), Some(0.0)])
        .print();
    Section::new("memory and restart", &["value", "target"])
        .row("rss_idle_mib (1k inst, 10k spaces)", &[g("rss_idle_mib"), Some(48.0)])
        .row("rss_load_mib (-c256)", &[g("rss_load_mib"), Some(128.0)])
        .row("restart_ms (spawn to health 200)", &[g("restart_ms"), None])
        .print();
    Section::new("spaces, loop-mounted XFS", &["fork", "cp -a", "cp+sync", "fork/cp"])
        .row(
            "1 GiB file (reflink), ms",
            &[
                g("fork_1gib_reflink_ms"),
                g("fork_1gib_cp_ms"),
                g("fork_1gib_cp_sync_ms"),
                g("fork_1gib_vs_cp"),
            ],
        )
        .row(
            "10 000 files, ms",
            &[
                g("fork_10k_files_ms"),
                g("fork_10k_files_cp_ms"),
                g("fork_10k_files_cp_sync_ms"),
                g("fork_10k_vs_cp"),
            ],
        )
        .row(
            "checkpoint of 10 000 files, ms",
            &[
                g("checkpoint_10k_files_ms"),
                g("fork_10k_files_cp_ms"),
                g("fork_10k_files_cp_sync_ms"),
                div("checkpoint_10k_files_ms", "fork_10k_files_cp_ms"),
            ],
        )
        .print();
    Section::new(
        "spaces, plain data dir (ext4)",
        &["fork", "cp -a", "cp+sync", "fork/cp"],
    )
    .row(
        "1 GiB file (naive copy), ms",
        &[
            g("fork_1gib_copy_ms"),
            g("fork_1gib_plain_cp_ms"),
            g("fork_1gib_plain_cp_sync_ms"),
            g("copy_1gib_vs_cp"),
        ],
    )
    .row(
        "10 000 files, ms",
        &[
            g("fork_10k_files_copy_ms"),
            g("fork_10k_files_plain_cp_ms"),
            g("fork_10k_files_plain_cp_sync_ms"),
            g("copy_10k_vs_cp"),
        ],
    )
    .row(
        "checkpoint of 10 000 files, ms",
        &[
            g("checkpoint_10k_files_copy_ms"),
            g("fork_10k_files_plain_cp_ms"),
            g("fork_10k_files_plain_cp_sync_ms"),
            div("checkpoint_10k_files_copy_ms", "fork_10k_files_plain_cp_ms"),
        ],
    )
    .print();
    let mib = |k: &str| g(k).map(|b| b / 1048576.0);
    Section::new(
        "sparse 1 GiB file (1 MiB + 4 KiB data)",
        &["fork ms", "fork MiB", "source MiB"],
    )
    .row(
        "plain data dir (copy)",
        &[
            g("fork_sparse_1gib_copy_ms"),
            mib("sparse_1gib_fork_alloc_bytes"),
            mib("sparse_1gib_source_alloc_bytes"),
        ],
    )
    .row(
        "loop-mounted XFS (reflink)",
        &[
            g("fork_sparse_1gib_reflink_ms"),
            mib("sparse_1gib_fork_alloc_bytes_xfs"),
            mib("sparse_1gib_source_alloc_bytes_xfs"),
        ],
    )
    .print();
    Section::new("checkpoint pause (running instance)", &["value", "request"])
        .row(
            "checkpoint_pause_ms (10 000 files)",
            &[g("checkpoint_pause_ms"), g("checkpoint_request_ms")],
        )
        .print();

    if !r.notes.is_empty() {
        println!("\nnotes:");
        for n in &r.notes {
            println!("  - {n}");
        }
    }
}
