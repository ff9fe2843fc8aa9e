//! What a test needs from the machine (shared by the crates' integration tests through
//! `#[path]`). A test whose tool is missing says so and returns; under `CI=true` it fails
//! instead, so a suite cannot pass in CI by skipping what it was meant to check.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether this run is CI (`CI=true`, as CI services set it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A tool is missing: panic under CI, else say the test is skipped. The caller returns.
pub fn missing(test: &str, what: &str) {
    if in_ci() {
        panic!("{test}: {what} (CI=true: a missing tool fails the test; scripts/test installs it)");
    }
    eprintln!("SKIPPED {test}: {what}");
}

/// The static busybox, if installed (scripts/test installs busybox-static).
pub fn busybox(test: &str) -> Option<PathBuf> {
    let found = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf);
    if found.is_none() {
        missing(test, "busybox is not installed");
    }
    found
}

/// A small tmpfs mounted on `dir` (needs root), unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mount a tmpfs of `size` (as `mount -o size=`) on `dir`, or say why not.
    pub fn mount(test: &str, dir: &Path, size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            missing(test, "mounting a tmpfs needs root");
            return None;
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stdout(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_owned())),
            Ok(o) => {
                missing(
                    test,
                    &format!("mount tmpfs: {}", String::from_utf8_lossy(&o.stderr).trim()),
                );
                None
            }
            Err(e) => {
                missing(test, &format!("mount: {e}"));
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A program the sandbox's host builder can run (it sees the host's `/usr` only): its path
/// under `/usr/bin`, if installed (scripts/test installs the Debian packages named).
pub fn host_program(test: &str, name: &str, package: &str) -> Option<PathBuf> {
    let p = Path::new("/usr/bin").join(name);
    if p.is_file() {
        Some(p)
    } else {
        missing(
            test,
            &format!(
                "{} is not installed (Debian package {package})",
                p.display()
            ),
        );
        None
    }
}
