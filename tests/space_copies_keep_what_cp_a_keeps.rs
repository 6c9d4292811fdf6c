//! Regression tests, one per row of the table that showed copies losing
//! what `cp -a` keeps: a sparse file, a hard link, an extended attribute,
//! and a sticky directory with relative and absolute symlinks; then fifos
//! and sockets (which copies used to skip) and device nodes (which they
//! skip on purpose, and say so); and one tree of odd cases that copies
//! already kept — owners, setuid bits, unusual modes, timestamps to the
//! nanosecond, odd names, a hard link into a later directory — so that they
//! stay kept. Each row is
//! tried as it was found — through the admin API of a running daemon (create
//! a space, put files in its tree, fork and checkpoint it) — on the plain
//! data directory (method `copy`) and on a loop-mounted XFS data directory
//! (method `reflink`), and the copy is compared with `cp -a` of the same
//! tree.

mod common;
#[path = "common/xfs.rs"]
mod xfs;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};
use substrate::space::copy::snapshot;

/// What one row puts in the source tree.
type Row = fn(&Path);

/// A daemon on `data`, a space filled by `row`; returns the space's tree and
/// the trees of a fork and a checkpoint of it, after checking both answers
/// name `method`, report nothing refused and exactly `skipped` entries left
/// out, each with a warning.
async fn fork_and_checkpoint(
    data: &Path,
    ns: &str,
    row: Row,
    method: &str,
    skipped: u64,
) -> (PathBuf, PathBuf, PathBuf) {
    let defs = test_defs(data.parent().unwrap(), &[]);
    let daemon = Daemon::start(data, &defs, ns);
    let resp = daemon
        .api(reqwest::Method::POST, "/substrate/v1/spaces", Some(json!({})))
        .await;
    assert_eq!(resp.status(), 201);
    let space: Value = resp.json().await.unwrap();
    let id = space["space"]["id"].as_str().unwrap().to_owned();
    let tree = data.join("spaces").join(&id).join("tree");
    row(&tree);

    let resp = daemon
        .api(reqwest::Method::POST, "/substrate/v1/spaces", Some(json!({"from": id})))
        .await;
    assert_eq!(resp.status(), 201);
    let fork: Value = resp.json().await.unwrap();
    assert_eq!(fork["method"], method, "{fork}");
    assert_eq!(fork["refused"], 0, "{fork}");
    assert_eq!(fork["copy"]["skipped"], skipped, "{fork}");
    assert_eq!(fork["warnings"].as_array().unwrap().len() as u64, skipped, "{fork}");
    let fork_tree = data
        .join("spaces")
        .join(fork["space"]["id"].as_str().unwrap())
        .join("tree");

    let resp = daemon
        .api(
            reqwest::Method::POST,
            &format!("/substrate/v1/spaces/{id}/checkpoints"),
            Some(json!({"message": "row"})),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let ckpt: Value = resp.json().await.unwrap();
    assert_eq!(ckpt["method"], method, "{ckpt}");
    assert_eq!(ckpt["checkpoint"]["method"], method, "{ckpt}");
    assert_eq!(ckpt["refused"], 0, "{ckpt}");
    assert_eq!(ckpt["copy"]["skipped"], skipped, "{ckpt}");
    assert_eq!(ckpt["warnings"].as_array().unwrap().len() as u64, skipped, "{ckpt}");
    let ckpt_tree = data
        .join("checkpoints")
        .join(ckpt["checkpoint"]["id"].as_str().unwrap())
        .join("tree");
    (tree, fork_tree, ckpt_tree)
}

/// `cp -a` of `tree` next to it, for comparison.
fn cp_a(tree: &Path) -> PathBuf {
    let dst = tree.parent().unwrap().join("cp-a");
    let out = Command::new("cp").arg("-a").arg(tree).arg(&dst).output().unwrap();
    assert!(out.status.success(), "cp -a: {}", String::from_utf8_lossy(&out.stderr));
    dst
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn allocated(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).unwrap().blocks() * 512
}

fn sparse_row(tree: &Path) {
    sh(tree, "truncate -s 1G sparse.img");
}

fn check_sparse(copy: &Path) {
    let m = std::fs::metadata(copy.join("sparse.img")).unwrap();
    assert_eq!(m.len(), 1 << 30);
    assert!(
        allocated(&copy.join("sparse.img")) <= 64 << 10,
        "the copy of a 1 GiB hole occupies {} bytes",
        allocated(&copy.join("sparse.img"))
    );
}

fn hard_link_row(tree: &Path) {
    sh(tree, "echo a > a.txt && ln a.txt hardlink.txt");
}

fn check_hard_link(copy: &Path) {
    let (a, b) = (
        std::fs::metadata(copy.join("a.txt")).unwrap(),
        std::fs::metadata(copy.join("hardlink.txt")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "two separate files, not one inode");
    assert_eq!(a.nlink(), 2);
}

/// `setfattr -n user.note -v hello a.txt`, through the same system call.
fn xattr_row(tree: &Path) {
    sh(tree, "echo a > a.txt");
    xattr::set(tree.join("a.txt"), "user.note", b"hello").unwrap();
}

fn check_xattr(copy: &Path) {
    assert_eq!(
        xattr::get(copy.join("a.txt"), "user.note").unwrap().as_deref(),
        Some(&b"hello"[..]),
        "attribute lost"
    );
}

fn sticky_and_symlinks_row(tree: &Path) {
    sh(
        tree,
        "mkdir shared && chmod 1777 shared && echo t > shared/t && ln -s shared/t rel && ln -s /etc/hostname abs",
    );
}

fn check_sticky_and_symlinks(copy: &Path) {
    let mode = std::fs::metadata(copy.join("shared")).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o1777);
    assert_eq!(std::fs::read_link(copy.join("rel")).unwrap(), Path::new("shared/t"));
    assert_eq!(
        std::fs::read_link(copy.join("abs")).unwrap(),
        Path::new("/etc/hostname")
    );
}

fn as_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn mknod(path: &Path, kind: libc::mode_t, dev: libc::dev_t) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let r = unsafe { libc::mknod(c.as_ptr(), kind | 0o644, dev) };
    assert_eq!(r, 0, "mknod {}: {}", path.display(), std::io::Error::last_os_error());
}

/// A fifo (owned by someone else when root, mode 0604, a second name in a
/// directory listed later) and a unix socket, as `mkfifo`, `ln` and a
/// program that binds a socket make them.
fn specials_row(tree: &Path) {
    sh(
        tree,
        "mkfifo fifo && chmod 0604 fifo && mkdir sub && ln fifo sub/fifo-again",
    );
    if as_root() {
        sh(tree, "chown 1234:5678 fifo");
    }
    drop(std::os::unix::net::UnixListener::bind(tree.join("sock")).unwrap());
    sh(
        tree,
        "touch -h -d '2001-02-03 04:05:06.123456789' fifo sock && touch -d '2002-01-01 00:00:00.5' sub",
    );
}

fn check_specials(copy: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let fifo = std::fs::symlink_metadata(copy.join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo(), "fifo skipped or made as something else");
    assert_eq!((fifo.mode() & 0o7777, fifo.nlink()), (0o604, 2));
    assert_eq!((fifo.mtime(), fifo.mtime_nsec()), (981_173_106, 123_456_789));
    if as_root() {
        assert_eq!((fifo.uid(), fifo.gid()), (1234, 5678));
    }
    let again = std::fs::symlink_metadata(copy.join("sub/fifo-again")).unwrap();
    assert_eq!(again.ino(), fifo.ino(), "two fifos, not one inode");
    let sock = std::fs::symlink_metadata(copy.join("sock")).unwrap();
    assert!(sock.file_type().is_socket(), "socket skipped or made as something else");
}

/// A character and a block device node beside a file (root only).
fn devices_row(tree: &Path) {
    sh(tree, "echo kept > kept");
    mknod(&tree.join("null"), libc::S_IFCHR, libc::makedev(1, 3));
    mknod(&tree.join("loop"), libc::S_IFBLK, libc::makedev(7, 200));
}

/// Every other case probed against `cp -a`: owners of a file, a directory
/// and a symlink (root only); setuid and setgid with a foreign owner (a
/// chown after the chmod would clear them); modes 0000 and 0200 on a file
/// and on directories with contents; timestamps to the nanosecond on a file,
/// a symlink and directories (set after their contents); an empty file and
/// directory; a file whose size is not a block multiple, data then a hole to
/// its end; a 255-byte name; names with a newline and with bytes that are
/// not UTF-8; a hard link whose other name is in a directory listed later; a
/// 3 000-entry directory.
fn odd_tree_row(tree: &Path) {
    let owners = if as_root() {
        "chown 1001:1002 owned && chown 1003:1004 odir && chown -h 1005:1006 olink && chown 1007:1008 suid && chown 1009:1010 sgdir"
    } else {
        "true"
    };
    sh(
        tree,
        &format!(
            r#"echo o > owned && mkdir odir && ln -s owned olink && echo s > suid && mkdir sgdir && {owners}
             chmod 6755 suid && chmod 2775 sgdir
             echo z > m0000 && chmod 0000 m0000
             mkdir -p d0200/sub && echo in > d0200/sub/f && chmod 0200 d0200
             mkdir d0000 && echo in > d0000/f && chmod 0000 d0000
             : > empty && mkdir emptydir
             printf abc > tail.bin && truncate -s 1000001 tail.bin
             echo long > $(printf 'L%.0s' $(seq 255))
             echo nl > "$(printf 'new\nline')" && echo bad > "$(printf 'bad\377\376')"
             mkdir z_later && echo hl > z_later/target && ln z_later/target a_first
             mkdir big && (cd big && seq 1 3000 | xargs touch)
             echo t > ts && touch -d '2001-02-03 04:05:06.123456789' ts
             touch -h -d '2003-02-03 04:05:06.555555555' olink
             touch -d '2002-02-03 04:05:06.987654321' odir big z_later emptydir"#
        ),
    );
}

fn check_odd_tree(copy: &Path) {
    let m = |p: &str| std::fs::symlink_metadata(copy.join(p)).unwrap();
    assert_eq!(m("suid").mode() & 0o7777, 0o6755);
    assert_eq!(m("sgdir").mode() & 0o7777, 0o2775);
    assert_eq!(m("m0000").mode() & 0o7777, 0);
    assert_eq!(m("d0200").mode() & 0o7777, 0o200);
    assert_eq!(m("d0000").mode() & 0o7777, 0);
    if as_root() {
        assert_eq!((m("olink").uid(), m("olink").gid()), (1005, 1006));
        assert_eq!((m("suid").uid(), m("odir").uid()), (1007, 1003));
        assert_eq!(std::fs::read(copy.join("d0200/sub/f")).unwrap(), b"in\n");
    }
    assert_eq!(
        (m("olink").mtime(), m("olink").mtime_nsec()),
        (1_044_245_106, 555_555_555)
    );
    assert_eq!((m("big").mtime(), m("big").mtime_nsec()), (1_012_709_106, 987_654_321));
    assert_eq!((m("ts").mtime(), m("ts").mtime_nsec()), (981_173_106, 123_456_789));
    assert_eq!(m("tail.bin").len(), 1_000_001);
    assert_eq!(m("a_first").ino(), m("z_later/target").ino());
    assert_eq!(std::fs::read_dir(copy.join("big")).unwrap().count(), 3000);
}

/// Runs `row` on the data directory `data`, checks fork and checkpoint with
/// `check`, and compares both with `cp -a`.
async fn row_holds(data: &Path, tag: &str, row: Row, check: fn(&Path), method: &str) {
    let ns = Namespace::new(tag);
    let (tree, fork, ckpt) = fork_and_checkpoint(data, &ns.name, row, method, 0).await;
    let reference = cp_a(&tree);
    check(&reference);
    for copy in [&fork, &ckpt] {
        check(copy);
        assert_eq!(
            snapshot(copy).unwrap(),
            snapshot(&reference).unwrap(),
            "{}",
            copy.display()
        );
    }
}

/// The device row: `cp -a` makes the nodes, the copies leave them out, count
/// them and name each in a warning; everything else is as `cp -a` made it.
async fn devices_are_skipped_and_reported(data: &Path, tag: &str, method: &str) {
    if !as_root() {
        println!("SKIPPED the device row {tag}: only root makes device nodes");
        return;
    }
    let ns = Namespace::new(tag);
    let (tree, fork, ckpt) = fork_and_checkpoint(data, &ns.name, devices_row, method, 2).await;
    let reference = cp_a(&tree);
    for node in ["null", "loop"] {
        assert!(
            std::fs::symlink_metadata(reference.join(node)).is_ok(),
            "cp -a made {node}"
        );
        std::fs::remove_file(reference.join(node)).unwrap();
    }
    for copy in [&fork, &ckpt] {
        for node in ["null", "loop"] {
            assert!(
                std::fs::symlink_metadata(copy.join(node)).is_err(),
                "{node} in {}",
                copy.display()
            );
        }
        assert_eq!(
            snapshot(copy).unwrap(),
            snapshot(&reference).unwrap(),
            "{}",
            copy.display()
        );
    }
}

async fn on_plain(tag: &str, row: Row, check: fn(&Path)) {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    row_holds(&tmp.path().join("data"), tag, row, check, "copy").await;
}

async fn on_xfs(tag: &str, row: Row, check: fn(&Path)) {
    match xfs::Xfs::mount() {
        Ok(x) => {
            row_holds(&x.mnt.join("data"), tag, row, check, "reflink").await;
            println!("XFS row {tag}: ran on {}", x.mnt.display());
        }
        Err(why) => println!("SKIPPED the XFS row {tag}: cannot mount a loop XFS image: {why}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_1g_hole_stays_a_hole_with_copy() {
    on_plain("sparse", sparse_row, check_sparse).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_1g_hole_stays_a_hole_with_reflink() {
    on_xfs("sparse-x", sparse_row, check_sparse).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hard_link_stays_one_inode_with_copy() {
    on_plain("hardlink", hard_link_row, check_hard_link).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hard_link_stays_one_inode_with_reflink() {
    on_xfs("hardlink-x", hard_link_row, check_hard_link).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_attribute_is_kept_with_copy() {
    on_plain("xattr", xattr_row, check_xattr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_attribute_is_kept_with_reflink() {
    on_xfs("xattr-x", xattr_row, check_xattr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sticky_dir_and_symlinks_are_kept_with_copy() {
    on_plain("sticky", sticky_and_symlinks_row, check_sticky_and_symlinks).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sticky_dir_and_symlinks_are_kept_with_reflink() {
    on_xfs("sticky-x", sticky_and_symlinks_row, check_sticky_and_symlinks).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifos_and_sockets_are_made_with_their_hard_links_with_copy() {
    on_plain("specials", specials_row, check_specials).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifos_and_sockets_are_made_with_their_hard_links_with_reflink() {
    on_xfs("specials-x", specials_row, check_specials).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn device_nodes_are_skipped_counted_and_named_with_copy() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    devices_are_skipped_and_reported(&tmp.path().join("data"), "devices", "copy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn device_nodes_are_skipped_counted_and_named_with_reflink() {
    match xfs::Xfs::mount() {
        Ok(x) => devices_are_skipped_and_reported(&x.mnt.join("data"), "devices-x", "reflink").await,
        Err(why) => println!("SKIPPED the XFS device row: cannot mount a loop XFS image: {why}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn owners_modes_times_and_odd_names_are_kept_with_copy() {
    on_plain("odd", odd_tree_row, check_odd_tree).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn owners_modes_times_and_odd_names_are_kept_with_reflink() {
    on_xfs("odd-x", odd_tree_row, check_odd_tree).await;
}
