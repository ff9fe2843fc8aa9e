//! A memory cgroup for one sandbox, made below the helper's own cgroup (v2, or v1's memory
//! hierarchy). The helper moves itself in before it forks, so the whole sandbox is charged.
//! When the sandbox is over, [`Cgroup::leave_to_parent`] hands the group's path to kiln, which
//! removes it once the helper has exited ([`remove`]); dropping the value instead (on an
//! error) moves the helper back and removes the group itself.

use std::path::{Path, PathBuf};

pub struct Cgroup {
    dir: PathBuf,
    home: PathBuf,
    v2: bool,
}

const ROOT: &str = "/sys/fs/cgroup";

impl Cgroup {
    /// A new group limited to `limit` bytes, with this process in it.
    pub fn create(limit: u64) -> std::io::Result<Cgroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup")?;
        let pure_v2 = Path::new(ROOT).join("cgroup.controllers").exists();
        let (home, v2) = if pure_v2 {
            let rel = own
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .ok_or_else(|| missing("no cgroup v2 entry"))?;
            (Path::new(ROOT).join(rel.trim_start_matches('/')), true)
        } else {
            let rel = own
                .lines()
                .find_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    let _ = parts.next()?;
                    let controllers = parts.next()?;
                    let path = parts.next()?;
                    controllers
                        .split(',')
                        .any(|c| c == "memory")
                        .then_some(path)
                })
                .ok_or_else(|| missing("no memory cgroup"))?;
            (
                Path::new(ROOT)
                    .join("memory")
                    .join(rel.trim_start_matches('/')),
                false,
            )
        };
        sweep(&home);
        let dir = home.join(format!("kiln-sandbox-{}", std::process::id()));
        std::fs::create_dir(&dir)?;
        let group = Cgroup { dir, home, v2 };
        if v2 {
            std::fs::write(group.dir.join("memory.max"), limit.to_string())?;
            let _ = std::fs::write(group.dir.join("memory.swap.max"), "0");
        } else {
            std::fs::write(group.dir.join("memory.limit_in_bytes"), limit.to_string())?;
            let _ = std::fs::write(
                group.dir.join("memory.memsw.limit_in_bytes"),
                limit.to_string(),
            );
        }
        std::fs::write(
            group.dir.join("cgroup.procs"),
            std::process::id().to_string(),
        )?;
        Ok(group)
    }

    /// Whether a process of the group was killed for the limit.
    pub fn hit_limit(&self) -> bool {
        let count = |file: &str, key: &str| {
            std::fs::read_to_string(self.dir.join(file))
                .ok()
                .and_then(|t| {
                    t.lines().find_map(|l| {
                        let (k, v) = l.split_once(' ')?;
                        (k == key).then(|| v.trim().parse::<u64>().ok())?
                    })
                })
                .unwrap_or(0)
        };
        if self.v2 {
            count("memory.events", "oom_kill") > 0
        } else {
            count("memory.oom_control", "oom_kill") > 0
        }
    }
}

fn missing(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, what.to_string())
}

impl Cgroup {
    /// Give up the group without moving out: its path, for [`remove`] once this process is
    /// gone.
    pub fn leave_to_parent(self) -> PathBuf {
        let dir = self.dir.clone();
        std::mem::forget(self);
        dir
    }
}

/// Remove the empty groups of sandboxes whose helper is gone and whose kiln did not get to
/// remove them (killed, say). A group with a process in it cannot be removed, so this never
/// disturbs a running sandbox.
fn sweep(home: &Path) {
    let Ok(entries) = std::fs::read_dir(home) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("kiln-sandbox-"))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if super::process_gone(pid) {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// Remove a sandbox's group once every process of it has exited (the kernel may take a
/// moment to see the last one leave). Only `kiln-sandbox-*` directories are touched.
pub fn remove(dir: &Path) {
    let named = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("kiln-sandbox-"));
    if !named || !dir.starts_with(ROOT) {
        return;
    }
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            _ => return,
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(
            self.home.join("cgroup.procs"),
            std::process::id().to_string(),
        );
        let _ = std::fs::remove_dir(&self.dir);
    }
}
