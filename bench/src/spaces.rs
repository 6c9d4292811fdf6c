//! The copy engine: forks and checkpoints of a 1 GiB file and of 10 000
//! small files, vs `cp -a --reflink=auto` of the same tree on the same
//! filesystem; on the plain data dir and on a loop-mounted XFS image.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use substrate::datadir::DataDir;
use substrate::ids::SpaceId;
use substrate::space::{ForkSource, Spaces};
use substrate::store::{CopyMethod, SpaceOrigin, Store, StoreOptions};

use crate::util::{median, ms, run};

pub const SMALL_FILES: usize = 10_000;
pub const BIG_BYTES: usize = 1 << 30;
pub const SMALL_RUNS: usize = 3;

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

fn sync_fs(path: &Path) -> Result<()> {
    run(Command::new("sync").arg("-f").arg(path)).map(|_| ())
}

/// `cp -a --reflink=auto SRC DST`: its time, and with `sync -f` after.
fn cp(src: &Path, dst: &Path) -> Result<(f64, f64)> {
    let began = Instant::now();
    run(Command::new("cp").arg("-a").arg("--reflink=auto").arg(src).arg(dst))?;
    let copied = ms(began.elapsed());
    sync_fs(dst)?;
    let synced = ms(began.elapsed());
    std::fs::remove_dir_all(dst).with_context(|| format!("removing {}", dst.display()))?;
    Ok((copied, synced))
}

async fn fork_ms(spaces: &Arc<Spaces>, id: &SpaceId) -> Result<f64> {
    let began = Instant::now();
    let forked = spaces
        .fork(&ForkSource::Tip(id.clone()), SpaceOrigin::Api, None)
        .await
        .with_context(|| format!("forking {id}"))?;
    let t = ms(began.elapsed());
    spaces
        .delete(&forked.space.id)
        .await
        .with_context(|| format!("deleting the fork {}", forked.space.id))?;
    Ok(t)
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
    let (big_tree, small_tree) = (spaces.tree(&big.id), spaces.tree(&small.id));
    {
        let (b, s) = (big_tree.clone(), small_tree.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            write_big(&b)?;
            write_small(&s)
        })
        .await??;
    }
    sync_fs(root)?;
    let cp_dst: PathBuf = root.join("cp-copy");

    eprintln!("    1 GiB: fork");
    r.fork_big_ms = fork_ms(&spaces, &big.id).await?;
    sync_fs(root)?;
    eprintln!("    1 GiB: cp -a --reflink=auto");
    (r.cp_big_ms, r.cp_big_synced_ms) = cp(&big_tree, &cp_dst)?;
    sync_fs(root)?;

    let (mut forks, mut cps, mut cps_synced, mut ckpts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..SMALL_RUNS {
        eprintln!("    10 000 files: fork, cp, checkpoint");
        forks.push(fork_ms(&spaces, &small.id).await?);
        sync_fs(root)?;
        let (c, s) = cp(&small_tree, &cp_dst)?;
        cps.push(c);
        cps_synced.push(s);
        sync_fs(root)?;
        let began = Instant::now();
        spaces
            .checkpoint(&small.id, None)
            .await
            .with_context(|| format!("checkpointing {}", small.id))?;
        ckpts.push(ms(began.elapsed()));
        sync_fs(root)?;
    }
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
