//! The copy engine on a real reflink filesystem (a loop-mounted XFS image)
//! and on the plain data directory: the probed method, shared extents, and
//! faithful copies (contents, modes, symlinks as links, mtimes).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use substrate::datadir::DataDir;
use substrate::space::copy::{copy_tree, snapshot};
use substrate::space::{ForkSource, Spaces};
use substrate::store::{CopyMethod, SpaceOrigin, Store, StoreOptions};

/// A loop-mounted XFS image with reflink, unmounted on drop.
struct Xfs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl Xfs {
    fn mount() -> Result<Xfs, String> {
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).map_err(|e| e.to_string())?;
        let img = dir.path().join("xfs.img");
        let mnt = dir.path().join("mnt");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(512 << 20))
            .map_err(|e| e.to_string())?;
        std::fs::create_dir(&mnt).map_err(|e| e.to_string())?;
        let run = |cmd: &mut Command| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
            }
        };
        run(Command::new("mkfs.xfs").args(["-q", "-m", "reflink=1"]).arg(&img))?;
        run(Command::new("mount").args(["-o", "loop"]).arg(&img).arg(&mnt))?;
        Ok(Xfs { _dir: dir, mnt })
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}

/// A tree with what copies get wrong: modes, an executable, symlinks that
/// are absolute, relative, dangling and pointing out of the tree, an empty
/// directory, nested files, and a file large enough to have real extents.
fn varied_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let big: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.join("a/b/c/secret"), "s").unwrap();
    std::fs::set_permissions(root.join("a/b/c/secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
    std::os::unix::fs::symlink("../../outside", root.join("a/out")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    std::os::unix::fs::symlink("big.bin", root.join("rel")).unwrap();
    // Ownership is kept when running as root (the tests do).
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::lchown(root.join("a/b/c/secret"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(root.join("dangling"), Some(4321), Some(8765)).unwrap();
    }
}

fn open_spaces(root: &Path) -> (DataDir, std::sync::Arc<Spaces>) {
    let data = DataDir::new(root);
    data.create().unwrap();
    let store = Store::open(&data.db(), &StoreOptions::default()).unwrap();
    let spaces = Spaces::new(data.clone(), store);
    (data, spaces)
}

/// Forks a varied space and checks the copy; returns the fork's method.
async fn fork_faithfully(root: &Path) -> (CopyMethod, PathBuf) {
    let (data, spaces) = open_spaces(root);
    let space = spaces.create(SpaceOrigin::Api, None).await.unwrap();
    varied_tree(&data.space_tree(&space.id));
    let fork = spaces
        .fork(&ForkSource::Tip(space.id.clone()), SpaceOrigin::Api, None)
        .await
        .unwrap();
    assert_eq!(fork.method, spaces.method());
    let (a, b) = (data.space_tree(&space.id), data.space_tree(&fork.space.id));
    assert_eq!(snapshot(&a).unwrap(), snapshot(&b).unwrap());
    assert_eq!(std::fs::read_link(b.join("etc-link")).unwrap(), Path::new("/etc"));

    let ckpt = spaces.checkpoint(&space.id, Some("one".into())).await.unwrap();
    assert_eq!(ckpt.method, spaces.method());
    assert_eq!(
        snapshot(&data.checkpoint_tree(&ckpt.id)).unwrap(),
        snapshot(&a).unwrap()
    );
    (fork.method, b.join("big.bin"))
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_data_dir_copies() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (method, _) = fork_faithfully(tmp.path()).await;
    assert_eq!(
        method,
        CopyMethod::Copy,
        "the target dir's filesystem (ext4 here) does not clone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn xfs_data_dir_clones_with_shared_extents() {
    let xfs = match Xfs::mount() {
        Ok(x) => x,
        Err(why) => {
            println!("SKIPPED the XFS reflink test: cannot mount a loop XFS image: {why}");
            return;
        }
    };
    println!("XFS reflink test: running on {}", xfs.mnt.display());
    let (method, clone) = fork_faithfully(&xfs.mnt.join("data")).await;
    assert_eq!(method, CopyMethod::Reflink);
    let out = Command::new("filefrag").arg("-v").arg(&clone).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("shared"), "the clone's extents are not shared:\n{text}");
}

#[derive(Debug, Clone)]
enum Node {
    File(Vec<u8>, u32),
    Link(String),
    Dir(Vec<(String, Node)>),
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        (
            proptest::collection::vec(any::<u8>(), 0..5000),
            prop_oneof![Just(0o644u32), Just(0o755), Just(0o600), Just(0o444)]
        )
            .prop_map(|(c, m)| Node::File(c, m)),
        prop_oneof![
            Just("/etc/passwd".to_owned()),
            Just("../../x".to_owned()),
            Just("gone".to_owned())
        ]
        .prop_map(Node::Link),
    ];
    leaf.prop_recursive(3, 20, 4, |inner| {
        proptest::collection::btree_map("[a-z]{1,5}", inner, 0..4).prop_map(|m| Node::Dir(m.into_iter().collect()))
    })
}

fn build(path: &Path, node: &Node) {
    match node {
        Node::File(c, m) => {
            std::fs::write(path, c).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*m)).unwrap();
        }
        Node::Link(t) => std::os::unix::fs::symlink(t, path).unwrap(),
        Node::Dir(children) => {
            std::fs::create_dir(path).unwrap();
            for (name, child) in children {
                build(&path.join(name), child);
            }
        }
    }
}

/// Random trees copy to identical trees with `method`, under `root`.
fn random_trees_copy_faithfully(root: &Path, method: CopyMethod) {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let counter = std::cell::Cell::new(0);
    runner
        .run(
            &proptest::collection::btree_map("[a-z]{1,5}", node(), 0..5),
            |children| {
                counter.set(counter.get() + 1);
                let case = root.join(format!("case{}", counter.get()));
                std::fs::create_dir(&case).unwrap();
                let src = case.join("src");
                build(&src, &Node::Dir(children.into_iter().collect()));
                let dst = case.join("dst");
                copy_tree(&src, &dst, method).unwrap();
                prop_assert_eq!(snapshot(&src).unwrap(), snapshot(&dst).unwrap());
                std::fs::remove_dir_all(&case).unwrap();
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn random_trees_copy_faithfully_on_the_plain_dir() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    random_trees_copy_faithfully(tmp.path(), CopyMethod::Copy);
}

#[test]
fn random_trees_clone_faithfully_on_xfs() {
    match Xfs::mount() {
        Ok(xfs) => {
            random_trees_copy_faithfully(&xfs.mnt, CopyMethod::Reflink);
            println!(
                "XFS property test: random trees cloned faithfully on {}",
                xfs.mnt.display()
            );
        }
        Err(why) => println!("SKIPPED the XFS property test: {why}"),
    }
}
