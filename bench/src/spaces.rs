//! The copy engine: forks and checkpoints of a 1 GiB file and of 10 000
//! small files, vs `cp -a --reflink=auto` of the same tree on the same
//! filesystem, and the allocated size of a fork of a sparse 1 GiB file; on
//! the plain data dir and on a loop-mounted XFS image. Also how long a
//! running instance stays paused while its 10 000-file space is
//! checkpointed through the admin API ([`checkpoint_pause`]).
//!
//! Every timed copy starts from the same state: the filesystem synced and
//! no mass deletion just before it (on a `discard`-mounted ext4, deleting
//! 10 000 files makes the next journal commits wait for the discards, which
//! once made whichever copy came after a deletion look several times
//! slower). The 10 000-file copies are kept until every round is over, the
//! order of fork, `cp -a` and checkpoint rotates between rounds, and the
//! pause is measured before any of this (the caller's order).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use substrate::datadir::DataDir;
use substrate::ids::SpaceId;
use substrate::space::{ForkSource, Spaces};
use substrate::store::{CopyMethod, SpaceOrigin, Store, StoreOptions};

use crate::util::{median, ms, run};

pub const SMALL_FILES: usize = 10_000;
pub const BIG_BYTES: usize = 1 << 30;
pub const SMALL_RUNS: usize = 5;

#[derive(Debug, Default, Clone)]
pub struct FsResult {
    pub method: Option<CopyMethod>,
    pub fork_big_ms: f64,
    pub cp_big_ms: f64,
    /// cp followed by `sync -f` (a fork syncs its copy before publishing it).
    pub cp_big_synced_ms: f64,
    pub fork_small_ms: f64,
    pub cp_small_ms: f64,
    pub cp_small_synced_ms: f64,
    pub checkpoint_small_ms: f64,
    /// The sparse file: logical size, and bytes allocated in the source and
    /// in its fork.
    pub sparse_len: u64,
    pub sparse_source_alloc: u64,
    pub sparse_fork_alloc: u64,
    pub fork_sparse_ms: f64,
}

/// Cheap pseudo-random bytes (xorshift), so nothing is sparse or compressible.
fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = x.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

fn write_big(tree: &Path) -> Result<()> {
    let path = tree.join("big.bin");
    let mut f = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut buf = vec![0u8; 1 << 20];
    fill(&mut buf, 0x5eed);
    for i in 0..(BIG_BYTES >> 20) {
        buf[..8].copy_from_slice(&(i as u64).to_le_bytes());
        f.write_all(&buf)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    f.flush()?;
    Ok(())
}

fn write_small(tree: &Path) -> Result<()> {
    let mut buf = vec![0u8; 4096];
    for i in 0..SMALL_FILES {
        let dir = tree.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let size = 1024 + (i * 7919) % 3073; // 1–4 KiB
        fill(&mut buf, i as u64 + 1);
        let path = dir.join(format!("f{i:05}.txt"));
        std::fs::write(&path, &buf[..size]).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A 1 GiB file that is all hole but 1 MiB of data in the middle and
/// 4 KiB at the end (a disk image, a database file).
fn write_sparse(tree: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let path = tree.join("disk.img");
    let f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    f.set_len(BIG_BYTES as u64)?;
    let mut buf = vec![0u8; 1 << 20];
    fill(&mut buf, 0xd15c);
    f.write_all_at(&buf, (BIG_BYTES / 2) as u64)?;
    f.write_all_at(&buf[..4096], (BIG_BYTES - 4096) as u64)?;
    Ok(())
}

fn allocated(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .blocks()
        * 512)
}

fn sync_fs(path: &Path) -> Result<()> {
    run(Command::new("sync").arg("-f").arg(path)).map(|_| ())
}

/// `cp -a --reflink=auto SRC DST`: its time, and with `sync -f` after. The
/// copy is left for the caller to remove once the round is over.
fn cp(src: &Path, dst: &Path) -> Result<(f64, f64)> {
    let began = Instant::now();
    run(Command::new("cp").arg("-a").arg("--reflink=auto").arg(src).arg(dst))?;
    let copied = ms(began.elapsed());
    sync_fs(dst)?;
    let synced = ms(began.elapsed());
    Ok((copied, synced))
}

/// Forks a space's tip: the time, and the fork (for the caller to delete
/// once the round is over).
async fn fork_ms(spaces: &Arc<Spaces>, id: &SpaceId) -> Result<(f64, SpaceId)> {
    let began = Instant::now();
    let forked = spaces
        .fork(&ForkSource::Tip(id.clone()), SpaceOrigin::Api, None)
        .await
        .with_context(|| format!("forking {id}"))?;
    Ok((ms(began.elapsed()), forked.space.id))
}

/// Deletes forks and `cp` copies of a finished round, then syncs.
async fn clear(spaces: &Arc<Spaces>, forks: Vec<SpaceId>, copies: Vec<PathBuf>, root: &Path) -> Result<()> {
    for f in forks {
        spaces
            .delete(&f)
            .await
            .with_context(|| format!("deleting the fork {f}"))?;
    }
    for c in copies {
        std::fs::remove_dir_all(&c).with_context(|| format!("removing {}", c.display()))?;
    }
    sync_fs(root)
}

/// Runs every measurement with the data directory `root` (created, then removed).
pub async fn measure(root: &Path) -> Result<FsResult> {
    let data = DataDir::new(root.join("data"));
    data.create()?;
    let store = Store::open(&data.db(), &StoreOptions::default())
        .with_context(|| format!("opening a store in {}", data.root().display()))?;
    let spaces = Spaces::new(data.clone(), store);
    let mut r = FsResult {
        method: Some(spaces.method()),
        ..FsResult::default()
    };

    let big = spaces
        .create(SpaceOrigin::Api, None)
        .await
        .context("creating a space")?;
    let small = spaces
        .create(SpaceOrigin::Api, None)
        .await
        .context("creating a space")?;
    let sparse = spaces
        .create(SpaceOrigin::Api, None)
        .await
        .context("creating a space")?;
    let (big_tree, small_tree, sparse_tree) = (spaces.tree(&big.id), spaces.tree(&small.id), spaces.tree(&sparse.id));
    {
        let (b, s, h) = (big_tree.clone(), small_tree.clone(), sparse_tree.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            write_big(&b)?;
            write_small(&s)?;
            write_sparse(&h)
        })
        .await??;
    }
    sync_fs(root)?;

    eprintln!("    1 GiB: fork");
    let (t, big_fork) = fork_ms(&spaces, &big.id).await?;
    r.fork_big_ms = t;
    sync_fs(root)?;
    eprintln!("    1 GiB: cp -a --reflink=auto");
    let big_cp = root.join("cp-big");
    (r.cp_big_ms, r.cp_big_synced_ms) = cp(&big_tree, &big_cp)?;

    eprintln!("    sparse 1 GiB: fork");
    let (t, sparse_fork) = fork_ms(&spaces, &sparse.id).await?;
    r.fork_sparse_ms = t;
    r.sparse_len = BIG_BYTES as u64;
    r.sparse_source_alloc = allocated(&sparse_tree.join("disk.img"))?;
    r.sparse_fork_alloc = allocated(&spaces.tree(&sparse_fork).join("disk.img"))?;

    let (mut forks, mut cps, mut cps_synced, mut ckpts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Nothing is deleted until every round is over (see the module's doc).
    let (mut made_forks, mut made_copies) = (vec![big_fork, sparse_fork], vec![big_cp]);
    for round in 0..SMALL_RUNS {
        for step in 0..3 {
            sync_fs(root)?;
            match (round + step) % 3 {
                0 => {
                    eprintln!("    10 000 files, round {}: fork", round + 1);
                    let (t, fork) = fork_ms(&spaces, &small.id).await?;
                    forks.push(t);
                    made_forks.push(fork);
                }
                1 => {
                    eprintln!("    10 000 files, round {}: cp -a --reflink=auto", round + 1);
                    let dst = root.join(format!("cp-small-{round}"));
                    let (c, s) = cp(&small_tree, &dst)?;
                    cps.push(c);
                    cps_synced.push(s);
                    made_copies.push(dst);
                }
                _ => {
                    eprintln!("    10 000 files, round {}: checkpoint", round + 1);
                    let began = Instant::now();
                    spaces
                        .checkpoint(&small.id, None)
                        .await
                        .with_context(|| format!("checkpointing {}", small.id))?;
                    ckpts.push(ms(began.elapsed()));
                }
            }
        }
    }
    clear(&spaces, made_forks, made_copies, root).await?;
    eprintln!(
        "    10 000 files: fork {forks:.0?} ms, cp -a {cps:.0?} ms, cp -a + sync {cps_synced:.0?} ms, checkpoint {ckpts:.0?} ms"
    );
    r.fork_small_ms = median(&mut forks);
    r.cp_small_ms = median(&mut cps);
    r.cp_small_synced_ms = median(&mut cps_synced);
    r.checkpoint_small_ms = median(&mut ckpts);
    drop(spaces);
    Ok(r)
}

/// A loop-mounted XFS image with reflink, unmounted and deleted on drop.
pub struct XfsMount {
    image: PathBuf,
    pub dir: PathBuf,
    mounted: bool,
}

impl XfsMount {
    pub fn create(parent: &Path) -> Result<XfsMount> {
        let image = parent.join("xfs.img");
        let dir = parent.join("xfs");
        let mut m = XfsMount {
            image: image.clone(),
            dir: dir.clone(),
            mounted: false,
        };
        // A mount left by an interrupted run.
        let _ = Command::new("umount").arg(&dir).output();
        let _ = std::fs::remove_file(&image);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        run(Command::new("truncate").arg("-s").arg("3G").arg(&image))?;
        run(Command::new("mkfs.xfs")
            .arg("-q")
            .arg("-m")
            .arg("reflink=1")
            .arg(&image))
        .map_err(|e| anyhow!("mkfs.xfs (apt-get install xfsprogs?): {e}"))?;
        run(Command::new("mount").arg("-o").arg("loop").arg(&image).arg(&dir))
            .map_err(|e| anyhow!("loop mount: {e}"))?;
        m.mounted = true;
        Ok(m)
    }
}

impl Drop for XfsMount {
    fn drop(&mut self) {
        if self.mounted {
            let ok = Command::new("umount")
                .arg(&self.dir)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                eprintln!("umount {} failed; detaching lazily", self.dir.display());
                let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_file(&self.image);
    }
}

/// How long a running instance is paused for a checkpoint of its space.
#[derive(Debug, Clone)]
pub struct PauseResult {
    /// `paused_ms` as the daemon answered it (first pause request to the end
    /// of the last unpause), median of the rounds.
    pub pause_ms: f64,
    /// The whole admin request, as the client saw it, median.
    pub request_ms: f64,
    pub method: String,
}

/// Starts a daemon on `data`, starts a `notes` instance (whose `data`
/// space gets 10 000 small files), and checkpoints that space through the
/// admin API [`SMALL_RUNS`] times. Needs the `substrate-notes` image.
pub async fn checkpoint_pause(o: crate::daemon::DaemonOptions<'_>) -> Result<PauseResult> {
    use crate::util::http_json;
    use hyper::{Method, StatusCode};
    use serde_json::json;

    let data = o.data.to_owned();
    let mut daemon = crate::daemon::Daemon::start(o).await?;
    let result = async {
        let token = daemon.token()?;
        let (status, ensured) = http_json(
            daemon.addr,
            Method::POST,
            "/substrate/v1/instances",
            &token,
            &json!({"service": "notes"}),
        )
        .await?;
        if status != StatusCode::OK {
            bail!("starting a notes instance answered {status}: {ensured}");
        }
        let viewspec = ensured["viewspec"].as_str().unwrap_or_default().to_owned();
        let space = viewspec
            .split(';')
            .find_map(|p| p.strip_prefix("data="))
            .ok_or_else(|| anyhow!("no data space in the viewspec {viewspec:?}"))?
            .to_owned();
        let tree = data.join("spaces").join(&space).join("tree").join("bench");
        std::fs::create_dir_all(&tree).with_context(|| format!("creating {}", tree.display()))?;
        let t = tree.clone();
        tokio::task::spawn_blocking(move || write_small(&t)).await??;
        let (mut pauses, mut requests, mut method) = (Vec::new(), Vec::new(), String::new());
        for round in 0..SMALL_RUNS {
            sync_fs(&data)?;
            let began = Instant::now();
            let (status, ckpt) = http_json(
                daemon.addr,
                Method::POST,
                &format!("/substrate/v1/spaces/{space}/checkpoints"),
                &token,
                &json!({"message": format!("pause round {round}")}),
            )
            .await?;
            requests.push(ms(began.elapsed()));
            if status != StatusCode::CREATED || ckpt["paused"] != 1 {
                bail!(
                    "the checkpoint answered {status} and paused {} containers: {ckpt}",
                    ckpt["paused"]
                );
            }
            pauses.push(ckpt["paused_ms"].as_f64().unwrap_or(f64::NAN));
            method = ckpt["method"].as_str().unwrap_or_default().to_owned();
        }
        eprintln!("    paused for {pauses:.0?} ms (requests {requests:.0?} ms)");
        let _ = crate::util::http(
            daemon.addr,
            Method::DELETE,
            &format!("/substrate/v1/instances/{viewspec}"),
            Some(&token),
        )
        .await;
        Ok(PauseResult {
            pause_ms: median(&mut pauses),
            request_ms: median(&mut requests),
            method,
        })
    }
    .await;
    daemon.stop();
    result
}
