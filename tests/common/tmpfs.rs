//! A small tmpfs of its own for tests that fill a real filesystem: mounted
//! with `mount -t tmpfs` (so root is needed) and unmounted when the guard
//! drops, also when the test fails. Without root or `mount` it says so
//! loudly (a SKIP banner past the test harness's capture) or, under CI
//! (`CI` set), fails, as [`super::python`] does for python3.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

/// A mounted tmpfs; unmounted (lazily, so a handle still open cannot keep
/// it) when dropped.
pub struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_mib` MiB (mode 0700) on a fresh temporary
    /// directory, or returns `None` after a loud SKIP banner when it cannot
    /// be mounted and `CI` is not set. `test` names the test file, `what`
    /// what goes untested.
    pub fn mount(test: &str, what: &str, size_mib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size_mib}m,mode=0700"))
            .arg("tmpfs")
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(out) if out.status.success() => return Some(Tmpfs { dir }),
            Ok(out) => format!(
                "`mount -t tmpfs` failed (exit {:?}: {}); it needs root",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => format!("`mount` cannot be run ({e})"),
        };
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {why}: CI must run {test} (as root, with mount)"
        );
        // Straight to the stderr stream, past the test harness's capture,
        // so the skip shows in a plain `cargo test` too.
        let banner = format!(
            "\n{bar}\n!! SKIPPED {test}: {why}.\n\
             !! {what} was NOT tested. Run the tests as root with `mount`\n\
             !! to run it; under CI (CI set) this is a failure, not a skip.\n{bar}\n",
            bar = "!".repeat(76)
        );
        let _ = std::io::stderr().lock().write_all(banner.as_bytes());
        None
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the filesystem with `name` until a write fails for want of
    /// space; returns its path and the bytes written.
    pub fn fill(&self, name: &str) -> (PathBuf, u64) {
        let path = self.path().join(name);
        let mut f = std::fs::File::create(&path).expect("create ballast");
        let chunk = vec![0x5a_u8; 64 << 10];
        let mut written = 0;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("ballast write failed: {e}"),
            }
        }
        (path, written)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let out = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            let _ = writeln!(
                std::io::stderr(),
                "could not unmount the test tmpfs at {}: {out:?}",
                self.dir.path().display()
            );
        }
    }
}
