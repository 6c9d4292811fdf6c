//! The copy engine: copies a directory tree, cloning file contents with
//! reflink (`FICLONE`) where the filesystem supports it and copying them
//! otherwise.
//!
//! Fidelity: directories, regular files, symlinks (as links, never followed:
//! nothing outside the source is ever read through one), permission bits
//! (set explicitly — a clone does not carry them), mtimes, and ownership when
//! running as root. Fifos, sockets and devices are skipped with a warning.
//!
//! Which method works is a property of the filesystem, so it is probed once
//! per data directory ([`probe`]) rather than tried and failed per file.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::store::CopyMethod;

/// What a copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub skipped: u64,
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

/// Copies the tree at `src` to `dst` (which must not exist).
pub fn copy_tree(src: &Path, dst: &Path, method: CopyMethod) -> io::Result<CopyStats> {
    let meta = fs::symlink_metadata(src)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", src.display()),
        ));
    }
    let mut stats = CopyStats::default();
    let as_root = unsafe { libc::geteuid() } == 0;
    copy_dir(src, dst, &meta, method, as_root, &mut stats)?;
    Ok(stats)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    meta: &fs::Metadata,
    method: CopyMethod,
    as_root: bool,
    stats: &mut CopyStats,
) -> io::Result<()> {
    fs::create_dir(dst)?;
    stats.dirs += 1;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let m = fs::symlink_metadata(&from)?;
        let ft = m.file_type();
        if ft.is_dir() {
            copy_dir(&from, &to, &m, method, as_root, stats)?;
        } else if ft.is_file() {
            match method {
                CopyMethod::Reflink => reflink_copy::reflink(&from, &to)?,
                CopyMethod::Copy => {
                    fs::copy(&from, &to)?;
                }
            }
            fs::set_permissions(&to, fs::Permissions::from_mode(m.mode() & 0o7777))?;
            finish(&to, &m, as_root)?;
            stats.files += 1;
            stats.bytes += m.len();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
            finish(&to, &m, as_root)?;
            stats.symlinks += 1;
        } else {
            tracing::warn!(path = %from.display(), "skipping a special file (fifo, socket or device)");
            stats.skipped += 1;
        }
    }
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    // Last: adding entries above changed the directory's mtime.
    finish(dst, meta, as_root)
}

/// Sets ownership (as root) and mtime/atime without following symlinks.
fn finish(path: &Path, meta: &fs::Metadata, as_root: bool) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if as_root && unsafe { libc::lchown(c.as_ptr(), meta.uid(), meta.gid()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let times = [
        libc::timespec {
            tv_sec: meta.atime() as libc::time_t,
            tv_nsec: meta.atime_nsec() as _,
        },
        libc::timespec {
            tv_sec: meta.mtime() as libc::time_t,
            tv_nsec: meta.mtime_nsec() as _,
        },
    ];
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes everything written under `path`'s filesystem durable.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let f = fs::File::open(path)?;
    use std::os::fd::AsRawFd;
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A tree as what a faithful copy must keep: per relative path, the kind,
/// contents or link target, mode, mtime and owner. Tests compare copies
/// with it.
pub fn snapshot(root: &Path) -> io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let e = e.map_err(io::Error::other)?;
        let rel = e.path().strip_prefix(root).unwrap_or(e.path()).display().to_string();
        let m = fs::symlink_metadata(e.path())?;
        let owner = format!("owner {}:{}", m.uid(), m.gid());
        let desc = if m.file_type().is_symlink() {
            format!(
                "link {} mtime {} {owner}",
                fs::read_link(e.path())?.display(),
                m.mtime()
            )
        } else if m.is_dir() {
            let mode = m.mode() & 0o7777;
            format!("dir {mode:o} mtime {}.{} {owner}", m.mtime(), m.mtime_nsec())
        } else {
            let mode = m.mode() & 0o7777;
            let content = fs::read(e.path())?;
            format!(
                "file {mode:o} mtime {}.{} {owner} {content:?}",
                m.mtime(),
                m.mtime_nsec()
            )
        };
        out.insert(rel, desc);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_skipped_and_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("kept"), "x").unwrap();
        let fifo = std::ffi::CString::new(src.join("pipe").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let stats = copy_tree(&src, &tmp.path().join("dst"), CopyMethod::Copy).unwrap();
        assert_eq!((stats.files, stats.skipped), (1, 1));
        assert!(tmp.path().join("dst/kept").exists());
        assert!(fs::symlink_metadata(tmp.path().join("dst/pipe")).is_err());
    }

    #[test]
    fn probe_on_a_plain_filesystem_says_copy_or_reflink_and_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        let m = probe(tmp.path());
        assert!(matches!(m, CopyMethod::Copy | CopyMethod::Reflink));
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
