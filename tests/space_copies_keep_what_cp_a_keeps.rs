//! Regression tests, one per row of the table that showed copies losing
//! what `cp -a` keeps: a sparse file, a hard link, an extended attribute,
//! and a sticky directory with relative and absolute symlinks. Each row is
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
/// name `method` and report nothing refused.
async fn fork_and_checkpoint(data: &Path, ns: &str, row: Row, method: &str) -> (PathBuf, PathBuf, PathBuf) {
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
    assert_eq!(fork["warnings"], json!([]), "{fork}");
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
        .arg("-c")
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

/// Runs `row` on the data directory `data`, checks fork and checkpoint with
/// `check`, and compares both with `cp -a`.
async fn row_holds(data: &Path, tag: &str, row: Row, check: fn(&Path), method: &str) {
    let ns = Namespace::new(tag);
    let (tree, fork, ckpt) = fork_and_checkpoint(data, &ns.name, row, method).await;
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
