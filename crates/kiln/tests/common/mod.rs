//! Helpers shared by the integration tests: a fresh repository and the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Default for Repo {
    fn default() -> Self {
        Repo::new()
    }
}

impl Repo {
    pub fn new() -> Repo {
        Repo {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.env("KILN_HOME", self.home());
        // The user's own configuration (their identity) stays inside the test too.
        c.env("XDG_CONFIG_HOME", self.path("config"));
        c.env_remove("KILN_IDENTITY");
        c
    }

    /// Run and return the output, whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("spawn kiln")
    }

    /// Run, require success, return stdout as text.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "kiln {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stdout).expect("utf8 stdout")
    }

    /// Run, require success, return raw stdout.
    pub fn ok_bytes(&self, args: &[&str]) -> Vec<u8> {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "kiln {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }

    /// Run, require failure, return stderr (asserted to be one line).
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "kiln {args:?} unexpectedly succeeded");
        let err = String::from_utf8(o.stderr).expect("utf8 stderr");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "error is not one line: {err:?}"
        );
        err
    }

    /// `kiln add -Q` with extra args.
    pub fn add(&self, args: &[&str]) -> String {
        let mut a = vec!["add", "-Q"];
        a.extend_from_slice(args);
        self.ok(&a).trim().to_string()
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(path, data).expect("write");
}

pub mod daemon;

#[path = "../../../../tests/support/needs.rs"]
pub mod needs;

/// Bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run git in `dir` with no user or system configuration and a fixed identity; its trimmed
/// stdout (the command must succeed).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let o = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .expect("git is installed");
    assert!(o.status.success(), "git {args:?}: {}", text(&o.stderr));
    text(&o.stdout).trim().to_string()
}

/// Wait until `done` holds, polling every 20 ms; panics naming `what` after `secs` seconds.
pub fn eventually(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {secs} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Another person beside the repository's owner: an identity of their own (its own
/// configuration directory, `config-NAME`): their DID and that directory.
pub fn person(r: &Repo, name: &str) -> (String, PathBuf) {
    let config = r.path(&format!("config-{name}"));
    let o = r
        .cmd()
        .env("XDG_CONFIG_HOME", &config)
        .args(["identity", "new"])
        .output()
        .expect("spawn kiln");
    assert!(o.status.success());
    (text(&o.stdout).trim().to_string(), config)
}
