//! A loop-mounted XFS image with reflink for the space tests, unmounted on
//! drop. Included by path (`#[path = "common/xfs.rs"] mod xfs;`) by the tests
//! that copy trees on a reflink filesystem.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub struct Xfs {
    _dir: tempfile::TempDir,
    pub mnt: PathBuf,
}

impl Xfs {
    /// Makes and mounts a 512 MiB image under the target's temporary
    /// directory; `Err` says why it cannot (not root, no mkfs.xfs, no loop
    /// devices), for the test to print.
    pub fn mount() -> Result<Xfs, String> {
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
