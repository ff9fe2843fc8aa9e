//! kiln's own sandbox: one command run in fresh user, mount, pid, network, ipc and uts
//! namespaces, on a root file system assembled read-only from directories the caller prepared
//! (a materialized root fs, or the host's `/usr` for the impure host builder), with read-only
//! inputs, a writable work directory and `/tmp`, no network unless asked (and then a user-mode
//! one that cannot reach the host's loopback, see `usernet`), a time limit that
//! kills the whole process tree, and a memory limit (a cgroup where one can be made, an
//! address-space rlimit otherwise).
//!
//! A multi-threaded process cannot `unshare` a user namespace, so the work is done by a
//! helper: the kiln executable run again with [`HELPER_ARG`] as its only argument, which
//! must call [`helper_main`] before it starts any thread. [`run`] starts the helper, sends it
//! the [`Spec`] as JSON on its stdin, streams the command's output (stdout and stderr, in
//! order) to a callback, and reads the [`Outcome`] from a status pipe (the helper's stdout,
//! which it moves to fd 3).
//!
//! Inside, the helper forks an init process (pid 1 of the new pid namespace) that builds the
//! root, pivots into it and forks the command. When the command exits, init exits, and the
//! kernel kills whatever the command left running; at the time limit the helper kills init,
//! with the same effect. The helper and init die with their parent (`PR_SET_PDEATHSIG`).

mod cgroup;
mod inside;
mod usernet;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use inside::{DEFAULT_PATH, helper_main};

/// The argument that makes the kiln executable act as the sandbox helper.
pub const HELPER_ARG: &str = "__sandbox";

/// The user and group ID commands run as inside the sandbox.
pub const SANDBOX_UID: u32 = 1000;

/// What the sandbox's root file system is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Root {
    /// The impure host builder: the host's `/usr` (and its `/bin`, `/lib*` links or
    /// directories) read-only, `/etc/alternatives` and `/etc/ld.so.cache` read-only.
    Host,
    /// A directory on the host holding a root file system (every top-level entry is bound
    /// read-only, except `dev`, `proc` and `tmp`, which the sandbox makes).
    Dir(PathBuf),
}

/// A host path bound into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// The host file or directory.
    pub host: PathBuf,
    /// Where it appears: an absolute path in the sandbox. Its mount point must exist when it
    /// lies inside another mount (the caller creates it), otherwise the sandbox makes it.
    pub at: String,
    /// Writable (the work directory) or read-only (inputs).
    pub writable: bool,
}

/// Everything the helper needs to run one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The root file system.
    pub root: Root,
    /// Binds, in order (a bind inside an earlier one comes after it).
    pub mounts: Vec<Mount>,
    /// The command's working directory in the sandbox.
    pub cwd: String,
    /// Program and arguments; a program without `/` is looked up in the sandbox's `PATH`.
    pub argv: Vec<String>,
    /// The whole environment.
    pub env: Vec<(String, String)>,
    /// Reach the network through slirp4netns, never the host's loopback (fixed-output steps
    /// only; without it a step has nothing but its own loopback).
    pub network: bool,
    /// Wall-clock limit.
    pub timeout: Option<Duration>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// An empty host directory the new root is mounted on (only inside the sandbox's mount
    /// namespace; the host never sees anything in it).
    pub scratch: PathBuf,
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal, when a signal ended it.
    pub signal: Option<i32>,
    /// Killed at its time limit.
    pub timed_out: bool,
    /// The memory cgroup saw the limit hit (only known where a cgroup was made).
    pub out_of_memory: bool,
    /// How the memory limit was enforced: `"cgroup"`, `"rlimit"` or `"none"`.
    pub memory_limit: String,
    /// Wall-clock time from the helper's fork to the command's end.
    pub elapsed: Duration,
    /// Stopped because the build was cancelled (everything it started was killed).
    pub cancelled: bool,
}

impl Outcome {
    /// Exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out && !self.cancelled
    }

    /// A short description: `exit status 2`, `killed by signal 9`, `timed out`.
    pub fn describe(&self) -> String {
        if self.cancelled {
            return "cancelled".into();
        }
        if self.timed_out {
            return "killed at its time limit".into();
        }
        if self.out_of_memory {
            return "killed at its memory limit".into();
        }
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "ended without a status".into(),
        }
    }
}

/// One line the helper, init or the command's launcher writes on the status pipe.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Report {
    /// Setting up the sandbox failed (nothing of the command ran).
    Setup(String),
    /// The command exited.
    Exit(i32),
    /// A signal ended the command.
    Signal(i32),
    /// The helper's summary once init is gone.
    Done {
        /// The memory cgroup kiln removes once the helper has exited.
        #[serde(default)]
        cgroup: Option<PathBuf>,
        timed_out: bool,
        out_of_memory: bool,
        memory_limit: String,
        elapsed_ms: u64,
    },
}

/// Extra time the caller gives the helper beyond the command's own limit before it kills the
/// helper itself.
const HELPER_GRACE: Duration = Duration::from_secs(10);

/// Whether no process `pid` exists any more (a PID that exists but is not ours counts as
/// there).
pub(crate) fn process_gone(pid: i32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

fn sandbox_err(message: impl Into<String>) -> Error {
    Error::Sandbox {
        message: message.into(),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(sandbox_err(format!(
            "cannot make a pipe: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Run `spec` in a sandbox through the helper executable `helper` (normally the running kiln
/// executable). The command's output goes to `output` as it arrives. Blocks until the command
/// and everything it started are gone; call it from a thread that lives that long (the helper
/// dies with the thread that started it).
pub fn run(helper: &Path, spec: &Spec, output: &mut dyn FnMut(&[u8])) -> Result<Outcome> {
    run_cancellable(helper, spec, output, None)
}

/// [`run`], stopped early (the helper, and with it everything the command started, killed)
/// once `cancel` is set: the outcome is then `cancelled`.
pub fn run_cancellable(
    helper: &Path,
    spec: &Spec,
    output: &mut dyn FnMut(&[u8]),
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> Result<Outcome> {
    let json = serde_json::to_vec(spec).map_err(|e| sandbox_err(format!("spec: {e}")))?;
    let (log_r, log_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    // The helper's stdout is the status pipe and its stderr the log; it moves the status pipe
    // to fd 3 and points its stdout at the log. No `pre_exec`, so the standard library can
    // use posix_spawn rather than fork a copy of a large, multi-threaded kiln.
    let mut cmd = Command::new(helper);
    cmd.arg(HELPER_ARG)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::from(status_w))
        .stderr(Stdio::from(log_w));
    let mut child = cmd.spawn().map_err(|e| {
        sandbox_err(format!(
            "cannot start the sandbox helper {}: {e}",
            helper.display()
        ))
    })?;
    drop(cmd);
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that died at once shows up below, from its status.
        let _ = stdin.write_all(&json);
    }
    let deadline = spec.timeout.map(|t| Instant::now() + t + HELPER_GRACE);
    let mut status_bytes = Vec::new();
    let ended = pump(log_r, status_r, deadline, cancel, output, &mut status_bytes);
    let killed = ended == Pumped::TimedOut;
    if ended != Pumped::Finished {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| sandbox_err(format!("waiting for the sandbox helper: {e}")))?;
    if ended == Pumped::Cancelled {
        return Ok(Outcome {
            cancelled: true,
            ..Outcome::default()
        });
    }
    let mut outcome = Outcome::default();
    let mut done = false;
    let mut setup = None;
    for line in status_bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        match serde_json::from_slice::<Report>(line) {
            Ok(Report::Setup(message)) => {
                setup.get_or_insert(message);
            }
            Ok(Report::Exit(c)) => outcome.code = Some(c),
            Ok(Report::Signal(s)) => outcome.signal = Some(s),
            Ok(Report::Done {
                cgroup,
                timed_out,
                out_of_memory,
                memory_limit,
                elapsed_ms,
            }) => {
                if let Some(dir) = cgroup {
                    cgroup::remove(&dir);
                }
                outcome.timed_out = timed_out;
                outcome.out_of_memory = out_of_memory;
                outcome.memory_limit = memory_limit;
                outcome.elapsed = Duration::from_millis(elapsed_ms);
                done = true;
            }
            Err(_) => {}
        }
    }
    if let Some(message) = setup {
        return Err(sandbox_err(message));
    }
    if killed {
        return Err(sandbox_err(
            "the sandbox helper did not finish in time and was killed",
        ));
    }
    if !done {
        let how = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (_, Some(s)) => format!("signal {s}"),
            _ => "no status".into(),
        };
        return Err(sandbox_err(format!(
            "the sandbox helper ended ({how}) without reporting"
        )));
    }
    Ok(outcome)
}

/// Copy the log pipe to `output` and the status pipe to `status` until both close. Returns
/// true when `deadline` passed first.
/// How [`pump`] ended.
#[derive(Debug, PartialEq, Eq)]
enum Pumped {
    Finished,
    TimedOut,
    Cancelled,
}

fn pump(
    log: OwnedFd,
    status: OwnedFd,
    deadline: Option<Instant>,
    cancel: Option<&std::sync::atomic::AtomicBool>,
    output: &mut dyn FnMut(&[u8]),
    status_bytes: &mut Vec<u8>,
) -> Pumped {
    let mut log = Some(std::fs::File::from(log));
    let mut status = Some(std::fs::File::from(status));
    let mut buf = vec![0u8; 64 << 10];
    while log.is_some() || status.is_some() {
        let mut fds: Vec<libc::pollfd> = [&log, &status]
            .iter()
            .filter_map(|f| f.as_ref())
            .map(|f| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst)) {
            return Pumped::Cancelled;
        }
        let mut wait_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Pumped::TimedOut;
                }
                left.as_millis().min(i32::MAX as u128) as i32
            }
        };
        // A cancellable run looks at its flag at least every 100 ms.
        if cancel.is_some() && !(0..=100).contains(&wait_ms) {
            wait_ms = 100;
        }
        // SAFETY: `fds` is a valid, initialised array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Pumped::Finished;
        }
        for p in &fds {
            if p.revents == 0 {
                continue;
            }
            let is_log = log.as_ref().is_some_and(|f| f.as_raw_fd() == p.fd);
            let slot = if is_log { &mut log } else { &mut status };
            let Some(f) = slot.as_mut() else { continue };
            match f.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(0) | Err(_) => *slot = None,
                Ok(k) if is_log => output(&buf[..k]),
                Ok(k) => status_bytes.extend_from_slice(&buf[..k]),
            }
        }
    }
    Pumped::Finished
}
