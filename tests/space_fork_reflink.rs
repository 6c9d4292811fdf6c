//! The copy engine on a real reflink filesystem (a loop-mounted XFS image)
//! and on the plain data directory: the probed method, shared extents, and
//! faithful copies (contents, modes, symlinks as links, mtimes, hard links,
//! extended attributes and ACLs, holes).

use std::collections::HashSet;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use substrate::datadir::DataDir;
use substrate::space::copy::{allocated, copy_tree, snapshot};
use substrate::space::{ForkSource, Spaces};
use substrate::store::{CopyMethod, SpaceOrigin, Store, StoreOptions};

#[path = "common/xfs.rs"]
mod xfs;
use xfs::Xfs;

/// A tree with what copies get wrong: modes, an executable, symlinks that
/// are absolute, relative, dangling and pointing out of the tree, an empty
/// directory, nested files, a file large enough to have real extents, a
/// hard link, an extended attribute and a sparse file.
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
    std::fs::hard_link(root.join("run.sh"), root.join("a/run-again.sh")).unwrap();
    xattr::set(root.join("run.sh"), "user.note", b"hello").unwrap();
    let sparse = std::fs::File::create(root.join("sparse.img")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    sparse.write_all_at(b"middle", 32 << 20).unwrap();
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
    assert_eq!(ckpt.checkpoint.method, spaces.method());
    assert_eq!((ckpt.copy.refused, ckpt.copy.hard_links), (0, 1));
    assert_eq!(
        snapshot(&data.checkpoint_tree(&ckpt.checkpoint.id)).unwrap(),
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

/// An extended attribute a generated tree carries. The root-only ones are
/// left out when the tests do not run as root.
#[derive(Debug, Clone, Copy)]
enum Attr {
    User(u8),
    Trusted,
    Capability,
    Acl,
    DefaultAcl,
}

fn is_root() -> bool {
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

/// `system.posix_acl_*` in the kernel's format: owner rw, user 1000 r,
/// group r, mask r, other none.
fn acl() -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (0x01u16, 6u16, u32::MAX),
        (0x02, 4, 1000),
        (0x04, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        v.extend(tag.to_le_bytes());
        v.extend(perm.to_le_bytes());
        v.extend(id.to_le_bytes());
    }
    v
}

/// A `security.capability` as `setcap cap_net_bind_service=ep` writes it.
fn capability() -> Vec<u8> {
    let mut v = Vec::new();
    for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        v.extend(word.to_le_bytes());
    }
    v
}

impl Attr {
    /// Name and value, or `None` where it does not apply (root-only
    /// attributes when not root, ones that only fit a file or a directory).
    fn item(self, dir: bool) -> Option<(String, Vec<u8>)> {
        match self {
            Attr::User(n) => Some((format!("user.k{n}"), vec![b'v'; n as usize * 7])),
            Attr::Trusted if is_root() => Some(("trusted.t".into(), b"tv".to_vec())),
            Attr::Capability if is_root() && !dir => Some(("security.capability".into(), capability())),
            Attr::Acl => Some(("system.posix_acl_access".into(), acl())),
            Attr::DefaultAcl if dir => Some(("system.posix_acl_default".into(), acl())),
            _ => None,
        }
    }
}

fn attrs() -> impl Strategy<Value = Vec<Attr>> {
    proptest::collection::vec(
        prop_oneof![
            (0u8..4).prop_map(Attr::User),
            Just(Attr::Trusted),
            Just(Attr::Capability),
            Just(Attr::Acl),
            Just(Attr::DefaultAcl),
        ],
        0..3,
    )
}

#[derive(Debug, Clone)]
enum Node {
    File(Vec<u8>, u32, Vec<Attr>),
    /// A sparse file of this many KiB with 8 KiB of data in the middle
    /// and/or at the very end (neither: all hole).
    Sparse {
        kib: u64,
        middle: bool,
        end: bool,
    },
    Link(String),
    Dir(Vec<(String, Node)>, Vec<Attr>),
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        (
            proptest::collection::vec(any::<u8>(), 0..5000),
            prop_oneof![Just(0o644u32), Just(0o755), Just(0o600), Just(0o444), Just(0o4755)],
            attrs()
        )
            .prop_map(|(c, m, a)| Node::File(c, m, a)),
        (256u64..8192, any::<bool>(), any::<bool>()).prop_map(|(kib, middle, end)| Node::Sparse { kib, middle, end }),
        prop_oneof![
            Just("/etc/passwd".to_owned()),
            Just("../../x".to_owned()),
            Just("gone".to_owned())
        ]
        .prop_map(Node::Link),
    ];
    leaf.prop_recursive(3, 20, 4, |inner| {
        (proptest::collection::btree_map("[a-z]{1,5}", inner, 0..4), attrs())
            .prop_map(|(m, a)| Node::Dir(m.into_iter().collect(), a))
    })
}

fn set_attrs(path: &Path, attrs: &[Attr], dir: bool) {
    for (name, value) in attrs.iter().filter_map(|a| a.item(dir)) {
        xattr::set(path, &name, &value).unwrap_or_else(|e| panic!("setting {name} on {}: {e}", path.display()));
    }
}

/// Builds `node` at `path`, noting every regular file and directory made.
fn build(path: &Path, node: &Node, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) {
    match node {
        Node::File(c, m, a) => {
            std::fs::write(path, c).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*m)).unwrap();
            set_attrs(path, a, false);
            files.push(path.to_owned());
        }
        Node::Sparse { kib, middle, end } => {
            let f = std::fs::File::create(path).unwrap();
            let len = kib << 10;
            f.set_len(len).unwrap();
            let chunk = vec![0xa5u8; 8 << 10];
            if *middle {
                f.write_all_at(&chunk, (len / 2) & !4095).unwrap();
            }
            if *end {
                f.write_all_at(&chunk, len - chunk.len() as u64).unwrap();
            }
            files.push(path.to_owned());
        }
        Node::Link(t) => std::os::unix::fs::symlink(t, path).unwrap(),
        Node::Dir(children, a) => {
            std::fs::create_dir(path).unwrap();
            dirs.push(path.to_owned());
            for (name, child) in children {
                build(&path.join(name), child, files, dirs);
            }
            // After the children, so they do not inherit a default ACL.
            set_attrs(path, a, true);
        }
    }
}

/// The tolerance on a copy's allocated size: a few 4 KiB blocks.
const ALLOCATION_SLACK: u64 = 16 << 12;

/// Random trees (with hard links, attributes and sparse files) copy to
/// identical trees with `method`, under `root`: same inode sharing, same
/// attributes, and each file's allocated size within a few blocks.
fn random_trees_copy_faithfully(root: &Path, method: CopyMethod) {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let counter = std::cell::Cell::new(0);
    let tree = (
        proptest::collection::btree_map("[a-z]{1,5}", node(), 0..5),
        attrs(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..4),
    );
    runner
        .run(&tree, |(children, root_attrs, links)| {
            counter.set(counter.get() + 1);
            let case = root.join(format!("case{}", counter.get()));
            std::fs::create_dir(&case).unwrap();
            let src = case.join("src");
            let (mut files, mut dirs) = (Vec::new(), Vec::new());
            build(
                &src,
                &Node::Dir(children.into_iter().collect(), root_attrs),
                &mut files,
                &mut dirs,
            );
            for (i, (file, dir)) in links.iter().enumerate() {
                if !files.is_empty() {
                    let name = dir.get(&dirs).join(format!("hardlink{i}"));
                    std::fs::hard_link(file.get(&files), name).unwrap();
                }
            }
            let dst = case.join("dst");
            let stats = copy_tree(&src, &dst, method).unwrap();
            prop_assert_eq!(snapshot(&src).unwrap(), snapshot(&dst).unwrap());

            let (mut inodes, mut extra_names) = (HashSet::new(), 0);
            for f in &files {
                let m = std::fs::metadata(f).unwrap();
                if inodes.insert(m.ino()) {
                    extra_names += m.nlink() - 1;
                }
            }
            prop_assert_eq!(stats.hard_links, extra_names);
            prop_assert_eq!(stats.files, inodes.len() as u64);
            prop_assert_eq!(stats.refused, 0, "{:?}", stats.warnings);

            let (a, b) = (allocated(&src).unwrap(), allocated(&dst).unwrap());
            prop_assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
            for (path, src_bytes) in &a {
                let dst_bytes = b[path];
                prop_assert!(
                    dst_bytes.abs_diff(*src_bytes) <= ALLOCATION_SLACK,
                    "{} occupies {} bytes in the source, {} in the copy",
                    path,
                    src_bytes,
                    dst_bytes
                );
            }
            std::fs::remove_dir_all(&case).unwrap();
            Ok(())
        })
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

/// An attribute the target filesystem cannot hold is left out, counted and
/// described, and the copy goes on: a 16 KiB value is fine on XFS (up to
/// 64 KiB) but not on ext4 with 4 KiB blocks (values fit in one block).
#[test]
fn an_attribute_the_target_refuses_is_reported_not_dropped_silently() {
    let xfs = match Xfs::mount() {
        Ok(x) => x,
        Err(why) => {
            println!("SKIPPED the refused-attribute test (needs an XFS source): {why}");
            return;
        }
    };
    let plain = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let src = xfs.mnt.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.txt"), "a").unwrap();
    xattr::set(src.join("a.txt"), "user.big", &vec![b'x'; 16 << 10]).unwrap();
    xattr::set(src.join("a.txt"), "user.small", b"kept").unwrap();
    let dst = plain.path().join("dst");
    let stats = copy_tree(&src, &dst, CopyMethod::Copy).unwrap();
    assert_eq!(stats.refused, 1, "{stats:?}");
    assert_eq!(stats.xattrs, 1);
    assert_eq!(stats.warnings.len(), 1);
    assert!(
        stats.warnings[0].contains("a.txt") && stats.warnings[0].contains("user.big"),
        "{:?}",
        stats.warnings
    );
    assert_eq!(std::fs::read(dst.join("a.txt")).unwrap(), b"a");
    assert_eq!(
        xattr::get(dst.join("a.txt"), "user.small").unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(xattr::get(dst.join("a.txt"), "user.big").unwrap(), None);
}
