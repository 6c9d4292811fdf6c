//! The copy engine: copies a directory tree as faithfully as `cp -a`,
//! cloning file contents with reflink (`FICLONE`) where the filesystem
//! supports it and copying only their data ranges otherwise.
//!
//! What a copy keeps: directories, regular files, symlinks (as links, never
//! followed: nothing outside the source is ever read through one), fifos and
//! unix sockets (made anew as `cp -a` makes them: the node, not a peer or a
//! listener), hard links within the tree (one inode in the copy per inode in
//! the source, so the link count is kept, whatever the inode's kind),
//! permission bits with setuid/setgid/sticky (set explicitly —
//! a clone does not carry them), atimes and mtimes, ownership when running as
//! root, extended attributes (`user.*`; as root also `trusted.*` and
//! `security.*` such as file capabilities; POSIX ACLs, which are the
//! `system.posix_acl_*` attributes) and holes: a sparse file stays sparse.
//!
//! What it does not keep, and says so: device nodes are skipped (unlike
//! `cp -a`: a space is data handed to containers, not a place for devices),
//! and an attribute the target filesystem refuses is left out; each is
//! counted and described in [`CopyStats::warnings`]. Ctimes and inode
//! numbers cannot be kept by any copy.
//!
//! Which method works is a property of the filesystem, so it is probed once
//! per data directory ([`probe`]) rather than tried and failed per file.
//!
//! Durability is not this module's job: the copy issues no fsync; the caller
//! makes the whole copy durable at once ([`sync_filesystem`]).
//!
//! Terms: an **entry** is one name in the tree; an **inode** may have several
//! entries (hard links). A **refusal** is an attribute the target would not
//! take (`EPERM`, `EOPNOTSUPP`, `ENOSPC`, …): the copy goes on without it.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use serde::Serialize;
use xattr::FileExt as _;

use crate::store::CopyMethod;

/// How many warnings a copy describes in words; the counts stay exact.
pub const MAX_WARNINGS: usize = 20;

/// What a copy did. Counts are of the source tree; `bytes` is the logical
/// size of the regular files (each inode once), not what they occupy.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct CopyStats {
    /// Regular-file inodes copied.
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Fifos and unix sockets made (each inode once).
    pub specials: u64,
    /// Extra names made as hard links to an inode already copied.
    pub hard_links: u64,
    /// Logical bytes of the regular files copied.
    pub bytes: u64,
    /// Extended attributes copied (ACLs included).
    pub xattrs: u64,
    /// Device nodes left out (each name once).
    pub skipped: u64,
    /// Extended attributes the target refused or that could not be read.
    pub refused: u64,
    /// Up to [`MAX_WARNINGS`] descriptions of what was skipped or refused,
    /// each naming the path relative to the tree's root.
    pub warnings: Vec<String>,
}

impl CopyStats {
    fn warn(&mut self, message: String) {
        tracing::warn!("{message}");
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(message);
        }
    }

    fn merge(&mut self, o: CopyStats) {
        self.files += o.files;
        self.dirs += o.dirs;
        self.symlinks += o.symlinks;
        self.specials += o.specials;
        self.hard_links += o.hard_links;
        self.bytes += o.bytes;
        self.xattrs += o.xattrs;
        self.skipped += o.skipped;
        self.refused += o.refused;
        let room = MAX_WARNINGS.saturating_sub(self.warnings.len());
        self.warnings.extend(o.warnings.into_iter().take(room));
    }
}

/// Finds out whether files in `dir` can be cloned: clones a small file
/// within it. `dir` must exist and be writable.
pub fn probe(dir: &Path) -> CopyMethod {
    let src = dir.join(format!(".reflink-probe-{}", std::process::id()));
    let dst = dir.join(format!(".reflink-probe-{}.clone", std::process::id()));
    let method = match fs::write(&src, b"substrate reflink probe") {
        Ok(()) => match reflink_copy::reflink(&src, &dst) {
            Ok(()) => CopyMethod::Reflink,
            Err(_) => CopyMethod::Copy,
        },
        Err(_) => CopyMethod::Copy,
    };
    let _ = fs::remove_file(&src);
    let _ = fs::remove_file(&dst);
    method
}

/// How many threads copy a tree: the machine's cores, at most 4 (the work is
/// system calls on one filesystem). On a busy 2-core machine, 2 threads and 1
/// took the same time within noise on 10 000 small files; idle cores were
/// not available to measure.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Copies the tree at `src` to `dst` (which must not exist; its parent
/// must). Errors: `src` is not a directory, or any I/O error other than a
/// refused attribute; on error `dst` is left partly written for the caller
/// to remove.
pub fn copy_tree(src: &Path, dst: &Path, method: CopyMethod) -> io::Result<CopyStats> {
    copy_tree_with(src, dst, method, workers())
}

/// [`copy_tree`] with a given number of threads (at least one).
pub fn copy_tree_with(src: &Path, dst: &Path, method: CopyMethod, threads: usize) -> io::Result<CopyStats> {
    let meta = fs::symlink_metadata(src)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", src.display()),
        ));
    }
    fs::create_dir(dst)?;
    let copier = Copier {
        src_root: src,
        method,
        as_root: unsafe { libc::geteuid() } == 0,
    };
    let root = DirJob {
        rel: PathBuf::new(),
        meta,
    };
    // Pass 1, in parallel: directories, single-linked files, symlinks.
    let mut work = copier.walk(root, dst, threads.max(1))?;
    // Pass 2: inodes with several names, so each is copied once and linked.
    work.linked.sort_by(|a, b| a.0.cmp(&b.0));
    let mut first: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for (rel, m) in std::mem::take(&mut work.linked) {
        let to = dst.join(&rel);
        match first.get(&(m.dev(), m.ino())) {
            Some(existing) => {
                fs::hard_link(existing, &to)?;
                work.stats.hard_links += 1;
            }
            None => {
                if copier.copy_entry(&rel, &to, &m, &mut work.stats)? {
                    first.insert((m.dev(), m.ino()), to);
                }
            }
        }
    }
    // Pass 3: directories' attributes, deepest first, since adding entries
    // changed their mtimes and a read-only parent must be written last.
    work.dirs
        .sort_by_key(|(rel, _)| std::cmp::Reverse(rel.components().count()));
    for (rel, m) in &work.dirs {
        copier.finish_dir(rel, &dst.join(rel), m, &mut work.stats)?;
    }
    Ok(work.stats)
}

/// The settings of one copy.
struct Copier<'a> {
    src_root: &'a Path,
    method: CopyMethod,
    as_root: bool,
}

/// A source directory to list, relative to the source root.
struct DirJob {
    rel: PathBuf,
    meta: fs::Metadata,
}

/// What pass 1 leaves for the passes after it.
#[derive(Default)]
struct Walked {
    stats: CopyStats,
    /// Every directory (relative path, source metadata), to finish last.
    dirs: Vec<(PathBuf, fs::Metadata)>,
    /// Entries whose inode has more than one name.
    linked: Vec<(PathBuf, fs::Metadata)>,
}

/// The directories waiting to be listed, shared by the threads of pass 1.
struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

struct QueueState {
    jobs: Vec<DirJob>,
    /// Threads listing a directory now (they may add jobs).
    busy: usize,
    failed: Option<io::Error>,
}

/// Wakes the other threads if one panics while it holds a job, so they do
/// not wait for it forever.
struct PanicGuard<'q>(&'q Queue);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        s.busy -= 1;
        s.failed
            .get_or_insert_with(|| io::Error::other("a copy thread panicked"));
        self.0.changed.notify_all();
    }
}

impl Copier<'_> {
    /// Pass 1: lists every directory from `root` down, on `threads` threads.
    fn walk(&self, root: DirJob, dst_root: &Path, threads: usize) -> io::Result<Walked> {
        let queue = Queue {
            state: Mutex::new(QueueState {
                jobs: vec![root],
                busy: 0,
                failed: None,
            }),
            changed: Condvar::new(),
        };
        let results: Vec<Walked> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| self.work(&queue, dst_root)))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let state = queue
            .state
            .into_inner()
            .map_err(|_| io::Error::other("a copy thread panicked"))?;
        if let Some(e) = state.failed {
            return Err(e);
        }
        if results.len() != threads {
            return Err(io::Error::other("a copy thread panicked"));
        }
        let mut all = Walked::default();
        for w in results {
            all.stats.merge(w.stats);
            all.dirs.extend(w.dirs);
            all.linked.extend(w.linked);
        }
        Ok(all)
    }

    /// One thread of pass 1: takes directories until none is left or one failed.
    fn work(&self, queue: &Queue, dst_root: &Path) -> Walked {
        let mut out = Walked::default();
        loop {
            let job = {
                let Ok(mut s) = queue.state.lock() else { return out };
                loop {
                    if s.failed.is_some() {
                        return out;
                    }
                    if let Some(job) = s.jobs.pop() {
                        s.busy += 1;
                        break job;
                    }
                    if s.busy == 0 {
                        return out;
                    }
                    s = match queue.changed.wait(s) {
                        Ok(s) => s,
                        Err(_) => return out,
                    };
                }
            };
            let guard = PanicGuard(queue);
            let mut found = Vec::new();
            let result = self.list_dir(&job, dst_root, &mut found, &mut out);
            std::mem::forget(guard);
            out.dirs.push((job.rel, job.meta));
            let Ok(mut s) = queue.state.lock() else { return out };
            s.busy -= 1;
            match result {
                Ok(()) => s.jobs.extend(found),
                Err(e) => {
                    s.failed.get_or_insert(e);
                }
            }
            queue.changed.notify_all();
        }
    }

    /// Copies the entries of one directory; subdirectories are created and
    /// queued in `found`, multi-linked entries are left for pass 2.
    fn list_dir(&self, job: &DirJob, dst_root: &Path, found: &mut Vec<DirJob>, out: &mut Walked) -> io::Result<()> {
        out.stats.dirs += 1;
        let src_dir = self.src_root.join(&job.rel);
        for entry in fs::read_dir(&src_dir)? {
            let entry = entry?;
            let rel = job.rel.join(entry.file_name());
            let m = fs::symlink_metadata(entry.path())?;
            let to = dst_root.join(&rel);
            if m.is_dir() {
                fs::create_dir(&to)?;
                found.push(DirJob { rel, meta: m });
            } else if m.nlink() > 1 {
                out.linked.push((rel, m));
            } else {
                self.copy_entry(&rel, &to, &m, &mut out.stats)?;
            }
        }
        Ok(())
    }

    /// Copies one non-directory entry (a file, a symlink, a fifo or a socket)
    /// or skips a device node; says whether it made `to`.
    fn copy_entry(&self, rel: &Path, to: &Path, m: &fs::Metadata, stats: &mut CopyStats) -> io::Result<bool> {
        let from = self.src_root.join(rel);
        let ft = m.file_type();
        if ft.is_file() {
            self.copy_file(rel, &from, to, m, stats)?;
            stats.files += 1;
            stats.bytes += m.len();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, to)?;
            let c = cpath(to)?;
            if self.as_root {
                check(unsafe { libc::lchown(c.as_ptr(), m.uid(), m.gid()) })?;
            }
            copy_xattrs(rel, &Attrs::Path(&from), &Attrs::Path(to), stats)?;
            set_times(Target::Path(&c), m)?;
            stats.symlinks += 1;
        } else if ft.is_fifo() || ft.is_socket() {
            self.copy_special(rel, &from, to, m, stats)?;
            stats.specials += 1;
        } else {
            stats.skipped += 1;
            stats.warn(format!("skipped {}: a device node is not copied", rel.display()));
            return Ok(false);
        }
        Ok(true)
    }

    /// Makes a fifo or a socket like the source's (`mknod`, as `cp -a`
    /// does), then its owner, attributes, mode and times. Nothing opens it:
    /// opening a fifo would wait for a writer.
    fn copy_special(
        &self,
        rel: &Path,
        from: &Path,
        to: &Path,
        m: &fs::Metadata,
        stats: &mut CopyStats,
    ) -> io::Result<()> {
        let c = cpath(to)?;
        check(unsafe { libc::mknod(c.as_ptr(), (m.mode() & libc::S_IFMT) | 0o600, 0) })?;
        self.finish_by_path(rel, from, to, m, stats)
    }

    /// Copies a regular file: contents, then owner, attributes, mode and
    /// times — in that order, since a chown clears setuid bits and file
    /// capabilities.
    fn copy_file(&self, rel: &Path, from: &Path, to: &Path, m: &fs::Metadata, stats: &mut CopyStats) -> io::Result<()> {
        let src = open_source(from)?;
        let dst = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(to)?;
        let cloned = self.method == CopyMethod::Reflink
            && unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) } == 0;
        if !cloned {
            copy_data(&src, &dst, m)?;
        }
        let fd = dst.as_raw_fd();
        if self.as_root {
            check(unsafe { libc::fchown(fd, m.uid(), m.gid()) })?;
        }
        copy_xattrs(rel, &Attrs::File(&src), &Attrs::File(&dst), stats)?;
        check(unsafe { libc::fchmod(fd, m.mode() & 0o7777) })?;
        set_times(Target::Fd(fd), m)
    }

    /// Owner, attributes, mode and times of a copied directory.
    fn finish_dir(&self, rel: &Path, to: &Path, m: &fs::Metadata, stats: &mut CopyStats) -> io::Result<()> {
        self.finish_by_path(rel, &self.src_root.join(rel), to, m, stats)
    }

    /// Owner, attributes, mode and times of `to` (a directory, fifo or
    /// socket: nothing to open), in the order [`Self::copy_file`] keeps.
    fn finish_by_path(
        &self,
        rel: &Path,
        from: &Path,
        to: &Path,
        m: &fs::Metadata,
        stats: &mut CopyStats,
    ) -> io::Result<()> {
        let c = cpath(to)?;
        if self.as_root {
            check(unsafe { libc::lchown(c.as_ptr(), m.uid(), m.gid()) })?;
        }
        copy_xattrs(rel, &Attrs::Path(from), &Attrs::Path(to), stats)?;
        check(unsafe { libc::chmod(c.as_ptr(), m.mode() & 0o7777) })?;
        set_times(Target::Path(&c), m)
    }
}

/// Opens a source file for reading without updating its atime where the
/// kernel allows (`O_NOATIME` needs ownership or `CAP_FOWNER`): reading a
/// tree to copy it should not dirty every inode of it.
fn open_source(path: &Path) -> io::Result<File> {
    let open = |flags| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | flags)
            .open(path)
    };
    match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        r => r,
    }
}

/// Copies the data ranges of `src` into the empty `dst` and gives it
/// `src`'s length, so holes stay holes. A file with as many blocks as bytes
/// has no holes and is copied in one range without seeking.
fn copy_data(src: &File, dst: &File, m: &fs::Metadata) -> io::Result<()> {
    let len = m.len();
    if len == 0 {
        return Ok(());
    }
    if m.blocks().saturating_mul(512) >= len {
        copy_range(src, dst, 0, len)?;
        return Ok(());
    }
    let (s, mut pos) = (src.as_raw_fd(), 0u64);
    while pos < len {
        let data = match seek(s, pos, libc::SEEK_DATA) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
            // A filesystem without SEEK_DATA: copy the rest as it reads.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                copy_range(src, dst, pos, len - pos)?;
                break;
            }
            Err(e) => return Err(e),
        };
        let hole = seek(s, data, libc::SEEK_HOLE)?.min(len);
        if hole > data {
            copy_range(src, dst, data, hole - data)?;
        }
        pos = hole.max(data + 1);
    }
    dst.set_len(len)
}

fn seek(fd: RawFd, offset: u64, whence: libc::c_int) -> io::Result<u64> {
    let r = unsafe { libc::lseek(fd, offset as libc::off_t, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as u64)
    }
}

/// Copies `len` bytes at `offset` of `src` to the same offset of `dst`, in
/// the kernel (`copy_file_range`, which may clone) or, where the kernel
/// cannot, through a buffer. Stops early if `src` ends sooner.
fn copy_range(src: &File, dst: &File, offset: u64, len: u64) -> io::Result<()> {
    let (mut off_in, mut off_out) = (offset as libc::loff_t, offset as libc::loff_t);
    let end = offset + len;
    while (off_in as u64) < end {
        let want = (end - off_in as u64).min(1 << 30) as usize;
        let n = unsafe { libc::copy_file_range(src.as_raw_fd(), &mut off_in, dst.as_raw_fd(), &mut off_out, want, 0) };
        if n == 0 {
            return Ok(());
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOSYS | libc::EXDEV | libc::EOPNOTSUPP | libc::EINVAL) => {
                    copy_range_buffered(src, dst, off_in as u64, end)
                }
                Some(libc::EINTR) => continue,
                _ => Err(e),
            };
        }
    }
    Ok(())
}

fn copy_range_buffered(src: &File, dst: &File, mut pos: u64, end: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 1 << 20];
    while pos < end {
        let want = ((end - pos) as usize).min(buf.len());
        let n = src.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            break;
        }
        dst.write_all_at(&buf[..n], pos)?;
        pos += n as u64;
    }
    Ok(())
}

/// Where extended attributes are read or written: an open file, or a path
/// that is not followed if it is a symlink.
enum Attrs<'a> {
    File(&'a File),
    Path(&'a Path),
}

impl Attrs<'_> {
    fn list(&self) -> io::Result<xattr::XAttrs> {
        match self {
            Attrs::File(f) => f.list_xattr(),
            Attrs::Path(p) => xattr::list(p),
        }
    }
    fn get(&self, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
        match self {
            Attrs::File(f) => f.get_xattr(name),
            Attrs::Path(p) => xattr::get(p, name),
        }
    }
    fn set(&self, name: &OsStr, value: &[u8]) -> io::Result<()> {
        match self {
            Attrs::File(f) => f.set_xattr(name, value),
            Attrs::Path(p) => xattr::set(p, name, value),
        }
    }
}

/// Whether an error setting an attribute is the target refusing that one
/// attribute (the copy goes on) rather than a failing disk.
fn is_refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EACCES | libc::EOPNOTSUPP | libc::E2BIG | libc::ERANGE | libc::ENOSPC | libc::EINVAL)
    )
}

/// Copies every extended attribute the source lists (which, for a process
/// that is not root, is `user.*`, `security.*` and ACLs). Refusals are
/// counted and described; other errors fail the copy.
fn copy_xattrs(rel: &Path, from: &Attrs, to: &Attrs, stats: &mut CopyStats) -> io::Result<()> {
    let names = match from.list() {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in names {
        let value = match from.get(&name) {
            Ok(Some(v)) => v,
            Ok(None) => continue,
            Err(e) => {
                stats.refused += 1;
                stats.warn(format!(
                    "{}: could not read attribute {}: {e}",
                    rel.display(),
                    name.to_string_lossy()
                ));
                continue;
            }
        };
        match to.set(&name, &value) {
            Ok(()) => stats.xattrs += 1,
            Err(e) if is_refusal(&e) => {
                stats.refused += 1;
                stats.warn(format!(
                    "{}: the target refused attribute {}: {e}",
                    rel.display(),
                    name.to_string_lossy()
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

enum Target<'a> {
    Fd(RawFd),
    /// Not followed if it is a symlink.
    Path(&'a CString),
}

/// Sets atime and mtime from `m`.
fn set_times(target: Target, m: &fs::Metadata) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: m.atime() as libc::time_t,
            tv_nsec: m.atime_nsec() as _,
        },
        libc::timespec {
            tv_sec: m.mtime() as libc::time_t,
            tv_nsec: m.mtime_nsec() as _,
        },
    ];
    check(match target {
        Target::Fd(fd) => unsafe { libc::futimens(fd, times.as_ptr()) },
        Target::Path(c) => unsafe {
            libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW)
        },
    })
}

/// Makes everything written under `path`'s filesystem durable: one
/// `syncfs(2)` for a whole copy instead of an fsync per file.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    check(unsafe { libc::syncfs(f.as_raw_fd()) })
}

/// Makes a directory's entries durable (after a rename into it).
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// A tree as what a faithful copy must keep: per relative path, the kind
/// (with a device's numbers), the contents' SHA-256 or the link target,
/// mode, mtime to the nanosecond, owner, extended attributes and, for an
/// inode with several names, its first name (in walk order) and link count. Allocation is left out: it is compared with
/// a tolerance by [`allocated`]. Tests compare copies with it.
pub fn snapshot(root: &Path) -> io::Result<BTreeMap<String, String>> {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    for e in walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
    {
        let e = e.map_err(io::Error::other)?;
        let rel = e.path().strip_prefix(root).unwrap_or(e.path()).display().to_string();
        let m = fs::symlink_metadata(e.path())?;
        let owner = format!("owner {}:{}", m.uid(), m.gid());
        let mut names: Vec<_> = match xattr::list(e.path()) {
            Ok(l) => l.collect(),
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Vec::new(),
            Err(e) => return Err(e),
        };
        names.sort();
        let mut attrs = String::new();
        for n in names {
            let v = xattr::get(e.path(), &n)?.unwrap_or_default();
            attrs.push_str(&format!(" xattr {}={:?}", n.to_string_lossy(), v));
        }
        let first = inodes.entry((m.dev(), m.ino())).or_insert_with(|| rel.clone()).clone();
        let inode = if !m.is_dir() && m.nlink() > 1 {
            format!(" inode of {first} nlink {}", m.nlink())
        } else {
            String::new()
        };
        let mode = m.mode() & 0o7777;
        let ft = m.file_type();
        let desc = if ft.is_symlink() {
            let target = fs::read_link(e.path())?;
            format!(
                "link {} mtime {}.{} {owner}{attrs}{inode}",
                target.display(),
                m.mtime(),
                m.mtime_nsec()
            )
        } else if ft.is_fifo() || ft.is_socket() || ft.is_char_device() || ft.is_block_device() {
            let kind = match () {
                _ if ft.is_fifo() => "fifo".to_owned(),
                _ if ft.is_socket() => "socket".to_owned(),
                _ => format!(
                    "{} device {}:{}",
                    if ft.is_char_device() { "char" } else { "block" },
                    libc::major(m.rdev()),
                    libc::minor(m.rdev())
                ),
            };
            format!(
                "{kind} {mode:o} mtime {}.{} {owner}{attrs}{inode}",
                m.mtime(),
                m.mtime_nsec()
            )
        } else if m.is_dir() {
            format!("dir {mode:o} mtime {}.{} {owner}{attrs}", m.mtime(), m.mtime_nsec())
        } else {
            // Zero chunks are left out of the digest (their offsets are in
            // it), so a hole and written zeros compare equal and a 1 GiB
            // hole is cheap to describe.
            let mut hash = Sha256::new();
            let (mut f, mut buf, mut offset) = (File::open(e.path())?, vec![0u8; 1 << 20], 0u64);
            let zeros = vec![0u8; buf.len()];
            loop {
                // Whole chunks, so two files chunk alike whatever `read` returns.
                let mut n = 0;
                while n < buf.len() {
                    match io::Read::read(&mut f, &mut buf[n..])? {
                        0 => break,
                        k => n += k,
                    }
                }
                if n == 0 {
                    break;
                }
                if buf[..n] != zeros[..n] {
                    hash.update(offset.to_le_bytes());
                    hash.update(&buf[..n]);
                }
                offset += n as u64;
            }
            format!(
                "file {mode:o} mtime {}.{} {owner}{attrs}{inode} len {} sha256 {:x}",
                m.mtime(),
                m.mtime_nsec(),
                m.len(),
                hash.finalize()
            )
        };
        out.insert(rel, desc);
    }
    Ok(out)
}

/// Per relative path of each regular file under `root`, the bytes it
/// occupies on disk (`st_blocks` × 512).
pub fn allocated(root: &Path) -> io::Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let e = e.map_err(io::Error::other)?;
        let m = fs::symlink_metadata(e.path())?;
        if m.is_file() {
            let rel = e.path().strip_prefix(root).unwrap_or(e.path()).display().to_string();
            out.insert(rel, m.blocks() * 512);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mknod(path: &Path, kind: libc::mode_t, dev: libc::dev_t) {
        let c = cpath(path).unwrap();
        let r = unsafe { libc::mknod(c.as_ptr(), kind | 0o640, dev) };
        assert_eq!(r, 0, "mknod {}: {}", path.display(), io::Error::last_os_error());
    }

    #[test]
    fn fifos_and_sockets_are_made_with_their_links_and_devices_are_skipped_and_described() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("kept"), "x").unwrap();
        mknod(&src.join("pipe"), libc::S_IFIFO, 0);
        fs::hard_link(src.join("pipe"), src.join("sub/pipe-again")).unwrap();
        mknod(&src.join("sock"), libc::S_IFSOCK, 0);
        let as_root = unsafe { libc::geteuid() } == 0;
        if as_root {
            mknod(&src.join("null"), libc::S_IFCHR, libc::makedev(1, 3));
        } else {
            println!("not root: no device node in this tree");
        }
        let dst = tmp.path().join("dst");
        let stats = copy_tree(&src, &dst, CopyMethod::Copy).unwrap();
        assert_eq!((stats.files, stats.specials, stats.hard_links), (1, 2, 1));
        let pipe = fs::symlink_metadata(dst.join("pipe")).unwrap();
        assert!(pipe.file_type().is_fifo());
        assert_eq!((pipe.mode() & 0o7777, pipe.nlink()), (0o640, 2));
        assert_eq!(
            pipe.ino(),
            fs::symlink_metadata(dst.join("sub/pipe-again")).unwrap().ino()
        );
        assert!(fs::symlink_metadata(dst.join("sock")).unwrap().file_type().is_socket());
        if as_root {
            assert_eq!(stats.skipped, 1);
            assert_eq!(stats.warnings.len(), 1);
            assert!(stats.warnings[0].contains("null"), "{:?}", stats.warnings);
            assert!(fs::symlink_metadata(dst.join("null")).is_err());
            fs::remove_file(src.join("null")).unwrap();
        } else {
            assert_eq!((stats.skipped, stats.warnings.len()), (0, 0));
        }
        assert_eq!(snapshot(&src).unwrap(), snapshot(&dst).unwrap());
    }

    #[test]
    fn probe_on_a_plain_filesystem_says_copy_or_reflink_and_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        let m = probe(tmp.path());
        assert!(matches!(m, CopyMethod::Copy | CopyMethod::Reflink));
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn one_thread_and_many_threads_make_the_same_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        for d in 0..6 {
            let dir = src.join(format!("d{d}/e{d}"));
            fs::create_dir_all(&dir).unwrap();
            for f in 0..5 {
                fs::write(dir.join(format!("f{f}")), format!("{d}/{f}")).unwrap();
            }
        }
        fs::hard_link(src.join("d0/e0/f0"), src.join("d5/linked")).unwrap();
        for threads in [1, 3] {
            let dst = tmp.path().join(format!("dst{threads}"));
            let stats = copy_tree_with(&src, &dst, CopyMethod::Copy, threads).unwrap();
            assert_eq!((stats.files, stats.hard_links, stats.dirs), (30, 1, 13));
            assert_eq!(snapshot(&src).unwrap(), snapshot(&dst).unwrap());
        }
    }
}
