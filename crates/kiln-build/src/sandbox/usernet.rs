//! The network a fixed-output step gets. Every step runs in its own network namespace; a
//! fixed-output step's is joined to the outside by slirp4netns, a user-mode TCP/IP stack that
//! runs on the host's side and makes the step's connections as ordinary sockets, with
//! `--disable-host-loopback`: the step can fetch what it declared from the network but cannot
//! reach anything listening on the host's loopback (kiln's own listeners among them), and it
//! shares no abstract Unix sockets with the host.
//!
//! The helper forks the slirp4netns launcher *before* it unshares, so the launcher stays in
//! the host's namespaces; once the helper is in its new ones it tells the launcher to go,
//! and waits for slirp4netns to report the interface configured. slirp4netns ends when the
//! helper's end of its exit pipe closes, that is when the helper exits.

use super::inside::{DEFAULT_PATH, cstr, os_err};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

type R<T> = std::result::Result<T, String>;

/// The program, looked up on [`DEFAULT_PATH`] (the helper runs with an empty environment).
pub const PROGRAM: &str = "slirp4netns";

/// The address the step's resolver is told to use (slirp4netns forwards it to the host's).
pub const NAMESERVER: &str = "10.0.2.3";

/// How long slirp4netns gets to configure the interface.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Where slirp4netns is installed, if it is.
pub fn find() -> Option<PathBuf> {
    DEFAULT_PATH
        .split(':')
        .map(|d| PathBuf::from(d).join(PROGRAM))
        .find(|p| {
            cstr(p).is_ok_and(|c| {
                // SAFETY: access on a valid C string.
                unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
            })
        })
}

/// The launcher forked and waiting for [`Pending::start`].
pub struct Pending {
    launcher: libc::pid_t,
    go: OwnedFd,
    ready: OwnedFd,
    exit: OwnedFd,
    log: OwnedFd,
}

/// slirp4netns serving the namespace; dropping it does nothing (it ends with the helper).
pub struct Running {
    _exit: OwnedFd,
}

fn pipe(cloexec_read: bool, cloexec_write: bool) -> R<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), 0) } < 0 {
        return Err(os_err("cannot make a pipe"));
    }
    for (fd, cloexec) in [(fds[0], cloexec_read), (fds[1], cloexec_write)] {
        if cloexec {
            // SAFETY: setting a flag on a descriptor just made.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    // SAFETY: pipe2 succeeded: two open descriptors nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Fork the launcher. Call before unsharing the network namespace, from the single-threaded
/// helper whose namespace slirp4netns will serve.
pub fn prepare() -> R<Pending> {
    let program = find().ok_or_else(|| {
        format!(
            "a fixed-output step needs {PROGRAM} for its network (which keeps it away from \
             the host's loopback), and none was found on {DEFAULT_PATH} \
             (Debian/Ubuntu: apt-get install {PROGRAM})"
        )
    })?;
    let program = cstr(&program)?;
    // SAFETY: getpid cannot fail.
    let target = unsafe { libc::getpid() };
    // The helper keeps `go`'s write end, `ready`'s read end and `exit`'s write end (closed on
    // exec, so the command never holds them); slirp4netns gets the other two across its exec.
    let (go_r, go_w) = pipe(true, true)?;
    let (ready_r, ready_w) = pipe(true, false)?;
    let (exit_r, exit_w) = pipe(false, true)?;
    let log_name = cstr("kiln-slirp4netns")?;
    // SAFETY: memfd_create with a valid name.
    let log = unsafe { libc::memfd_create(log_name.as_ptr(), libc::MFD_CLOEXEC) };
    if log < 0 {
        return Err(os_err("cannot make slirp4netns's log"));
    }
    // SAFETY: memfd_create returned an open descriptor nobody else owns.
    let log = unsafe { OwnedFd::from_raw_fd(log) };
    let args: Vec<CString> = [
        PROGRAM.to_string(),
        "--configure".into(),
        "--mtu=65520".into(),
        "--disable-host-loopback".into(),
        "--enable-sandbox".into(),
        format!("--ready-fd={}", ready_w.as_raw_fd()),
        format!("--exit-fd={}", exit_r.as_raw_fd()),
        target.to_string(),
        "tap0".into(),
    ]
    .iter()
    .map(cstr)
    .collect::<R<_>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: the helper is single-threaded, so the child may do anything after fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_err("cannot fork slirp4netns's launcher"));
    }
    if pid == 0 {
        // SAFETY: plain system calls on descriptors this process holds, then exec or exit.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let mut byte = 0u8;
            // Nothing comes when the helper gives up before its namespace is made.
            if libc::read(go_r.as_raw_fd(), (&raw mut byte).cast(), 1) != 1 {
                libc::_exit(0);
            }
            for fd in [ready_w.as_raw_fd(), exit_r.as_raw_fd()] {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            libc::dup2(log.as_raw_fd(), 1);
            libc::dup2(log.as_raw_fd(), 2);
            libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    drop((go_r, ready_w, exit_r));
    Ok(Pending {
        launcher: pid,
        go: go_w,
        ready: ready_r,
        exit: exit_w,
        log,
    })
}

impl Pending {
    /// Start slirp4netns on the helper's (now unshared) network namespace and wait until it
    /// has configured the interface.
    pub fn start(self) -> R<Running> {
        let byte = 1u8;
        // SAFETY: writing one byte from a valid buffer.
        let wrote = unsafe { libc::write(self.go.as_raw_fd(), (&raw const byte).cast(), 1) };
        if wrote != 1 {
            return Err(self.failed("its launcher is gone"));
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.failed(&format!(
                    "it did not configure the interface within {} s",
                    READY_TIMEOUT.as_secs()
                )));
            }
            let mut p = libc::pollfd {
                fd: self.ready.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut p, 1, ms) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(self.failed("polling its ready pipe failed"));
            }
            if n == 0 {
                continue;
            }
            let mut buf = [0u8; 8];
            // SAFETY: reading into a valid buffer.
            let got = unsafe { libc::read(self.ready.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
            if got > 0 {
                return Ok(Running { _exit: self.exit });
            }
            return Err(self.failed("it ended before configuring the interface"));
        }
    }

    /// Stop the launcher and describe the failure with what slirp4netns wrote.
    fn failed(&self, what: &str) -> String {
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(self.launcher, libc::SIGKILL);
            let mut st = 0;
            libc::waitpid(self.launcher, &mut st, 0);
        }
        let mut log = vec![0u8; 4096];
        // SAFETY: reading from the start of our own memfd into a valid buffer.
        let n = unsafe { libc::pread(self.log.as_raw_fd(), log.as_mut_ptr().cast(), log.len(), 0) };
        log.truncate(n.max(0) as usize);
        let said = String::from_utf8_lossy(&log);
        let said = said.trim();
        let tail = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        format!("the fixed-output step's network ({PROGRAM}) did not start: {what}{tail}")
    }
}
