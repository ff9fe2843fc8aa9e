//! The helper's side of the sandbox. It runs in the re-executed kiln process, which has no
//! other thread, so it may `unshare` a user namespace and `fork` freely.

use super::{Report, Root, SANDBOX_UID, Spec, cgroup, usernet};
use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type R<T> = std::result::Result<T, String>;

/// The `PATH` a command gets when the step sets none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

pub(super) fn os_err(what: impl std::fmt::Display) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

pub(super) fn cstr(s: impl AsRef<OsStr>) -> R<CString> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| format!("{:?} contains a NUL byte", s.as_ref()))
}

/// Write one report line on the status pipe (fd 3). Lines are short, so each write is atomic.
fn report(r: &Report) {
    if let Ok(mut line) = serde_json::to_vec(r) {
        line.push(b'\n');
        // SAFETY: writing a valid buffer to a descriptor; a closed one just fails.
        unsafe { libc::write(3, line.as_ptr().cast(), line.len()) };
    }
}

/// The helper's entry point: `kiln __sandbox`, started by [`super::run`]. Must be called
/// before the process starts any thread. Never returns.
pub fn helper_main() -> ! {
    // SAFETY: isatty, dup2 and fcntl on plain descriptor numbers. The status pipe comes in
    // as stdout and moves to fd 3 (closed on exec, so the command never sees it); stdout then
    // joins stderr on the log pipe.
    unsafe {
        if libc::isatty(0) == 1 || libc::isatty(1) == 1 {
            eprintln!(
                "kiln {}: this is kiln's sandbox helper, run by kiln itself",
                super::HELPER_ARG
            );
            std::process::exit(2);
        }
        if libc::dup2(1, 3) < 0
            || libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) < 0
            || libc::dup2(2, 1) < 0
        {
            std::process::exit(2);
        }
    }
    let code = match helper() {
        Ok(()) => 0,
        Err(e) => {
            report(&Report::Setup(e));
            1
        }
    };
    std::process::exit(code)
}

fn helper() -> R<()> {
    close_from(4);
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| format!("reading the sandbox spec: {e}"))?;
    let spec: Spec =
        serde_json::from_slice(&input).map_err(|e| format!("bad sandbox spec: {e}"))?;
    check_spec(&spec)?;
    let null = cstr("/dev/null")?;
    // SAFETY: plain system calls on valid arguments.
    unsafe {
        let fd = libc::open(null.as_ptr(), libc::O_RDONLY);
        if fd < 0 || libc::dup2(fd, 0) < 0 {
            return Err(os_err("cannot open /dev/null"));
        }
        libc::close(fd);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() == 1 {
            return Err("kiln went away before the sandbox started".into());
        }
    }
    let mut group = None;
    let mut memory_limit = "none";
    if let Some(limit) = spec.memory {
        match cgroup::Cgroup::create(limit) {
            Ok(g) => {
                group = Some(g);
                memory_limit = "cgroup";
            }
            Err(_) => memory_limit = "rlimit",
        }
    }
    // SAFETY: plain system calls.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // The mount namespace is init's own (below): pivot_root moves every process of a mount
    // namespace into the new root, and the helper must stay outside.
    // Every step gets its own network namespace; a fixed-output step's is joined to the
    // outside by slirp4netns, whose launcher must be forked while still in the host's.
    let usernet = if spec.network {
        Some(usernet::prepare()?)
    } else {
        None
    };
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNET;
    // SAFETY: unshare on a single-threaded process.
    if unsafe { libc::unshare(flags) } < 0 {
        let e = os_err("cannot create the sandbox's namespaces");
        drop(group);
        return Err(format!(
            "{e} (kiln's sandbox needs unprivileged user namespaces: see \
             /proc/sys/user/max_user_namespaces and, on Debian/Ubuntu, \
             kernel.unprivileged_userns_clone / kernel.apparmor_restrict_unprivileged_userns)"
        ));
    }
    // Older kernels have no setgroups file; the maps then work without it.
    let _ = std::fs::write("/proc/self/setgroups", "deny");
    std::fs::write("/proc/self/uid_map", format!("{SANDBOX_UID} {uid} 1\n"))
        .map_err(|e| format!("cannot write the sandbox's uid map: {e}"))?;
    std::fs::write("/proc/self/gid_map", format!("{SANDBOX_UID} {gid} 1\n"))
        .map_err(|e| format!("cannot write the sandbox's gid map: {e}"))?;
    let _network = usernet.map(usernet::Pending::start).transpose()?;
    let host = b"kiln-build";
    // SAFETY: a valid buffer and length.
    unsafe { libc::sethostname(host.as_ptr().cast(), host.len()) };
    let rlimit_memory = if group.is_none() { spec.memory } else { None };
    let start = Instant::now();
    // SAFETY: the process is single-threaded, so the child may do anything after fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_err("cannot fork the sandbox's init"));
    }
    if pid == 0 {
        let e = match init(&spec, rlimit_memory) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        report(&Report::Setup(e));
        // SAFETY: ending the child without running the parent's destructors.
        unsafe { libc::_exit(126) };
    }
    let timed_out = wait_init(pid, spec.timeout);
    let elapsed = start.elapsed();
    let out_of_memory = group.as_ref().is_some_and(cgroup::Cgroup::hit_limit);
    // Moving this process back out of the group would cost another migration (a cgroup
    // write waits for an RCU grace period: milliseconds); kiln removes the group once this
    // helper has exited instead.
    let cgroup = group.map(cgroup::Cgroup::leave_to_parent);
    report(&Report::Done {
        cgroup,
        timed_out,
        out_of_memory,
        memory_limit: memory_limit.into(),
        elapsed_ms: elapsed.as_millis() as u64,
    });
    Ok(())
}

fn check_spec(spec: &Spec) -> R<()> {
    if spec.argv.is_empty() || spec.argv[0].is_empty() {
        return Err("empty command".into());
    }
    let absolute = |p: &str| p.starts_with('/') && !p.split('/').any(|s| s == "..");
    if !absolute(&spec.cwd) {
        return Err(format!("working directory {:?} is not absolute", spec.cwd));
    }
    for m in &spec.mounts {
        if !absolute(&m.at) || m.at == "/" {
            return Err(format!("mount point {:?} is not an absolute path", m.at));
        }
    }
    if !spec.scratch.is_absolute() {
        return Err("the scratch directory is not absolute".into());
    }
    Ok(())
}

/// Close every descriptor from `low` up.
fn close_from(low: u32) {
    // SAFETY: close_range only closes descriptors.
    let r = unsafe { libc::syscall(libc::SYS_close_range, low, u32::MAX, 0) };
    if r == 0 {
        return;
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd: &i32| fd >= low as i32)
            .collect();
        for fd in fds {
            // SAFETY: closing a descriptor number; the directory's own is gone by now.
            unsafe { libc::close(fd) };
        }
    }
}

/// Wait for init; at the time limit kill it (which kills its namespace). True when it was
/// killed at the limit.
fn wait_init(pid: libc::pid_t, timeout: Option<Duration>) -> bool {
    let mut timed_out = false;
    if let Some(limit) = timeout {
        let deadline = Instant::now() + limit;
        // SAFETY: pidfd_open on our own child.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                timed_out = true;
                break;
            }
            if pidfd >= 0 {
                let mut p = libc::pollfd {
                    fd: pidfd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                // SAFETY: one valid pollfd.
                let n = unsafe { libc::poll(&mut p, 1, ms) };
                if n > 0 {
                    break;
                }
            } else {
                let mut st = 0;
                // SAFETY: polling our own child without reaping others.
                let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG | libc::__WALL) };
                if r == pid {
                    // Reaped already: nothing more to wait for.
                    return false;
                }
                std::thread::sleep(Duration::from_millis(2).min(left));
            }
        }
        if pidfd >= 0 {
            // SAFETY: closing the descriptor pidfd_open gave.
            unsafe { libc::close(pidfd) };
        }
    }
    loop {
        let mut st = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
        if r == pid
            || (r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted)
        {
            return timed_out;
        }
    }
}

fn mount(
    src: Option<&OsStr>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> R<()> {
    let src_c = src.map(cstr).transpose()?;
    let target_c = cstr(target)?;
    let fs_c = fstype.map(cstr).transpose()?;
    let data_c = data.map(cstr).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is null or a valid C string that outlives the call.
    let r = unsafe {
        libc::mount(
            ptr(&src_c),
            target_c.as_ptr(),
            ptr(&fs_c),
            flags,
            ptr(&data_c).cast(),
        )
    };
    if r < 0 {
        return Err(os_err(format!("cannot mount {}", target.display())));
    }
    Ok(())
}

/// Bind `src` at `dst`; read-only binds keep the flags the kernel locks (nodev, noexec, …)
/// and add nosuid.
fn bind(src: &Path, dst: &Path, writable: bool) -> R<()> {
    mount(
        Some(src.as_os_str()),
        dst,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )?;
    if writable {
        return Ok(());
    }
    let c = cstr(dst)?;
    // SAFETY: statvfs fills the zeroed struct for a valid path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } < 0 {
        return Err(os_err(format!("cannot stat {}", dst.display())));
    }
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID;
    for (st_flag, ms_flag) in [
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    mount(None, dst, None, flags, None)
}

fn mkdir(p: &Path) -> R<()> {
    std::fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
}

fn touch(p: &Path) -> R<()> {
    if let Some(parent) = p.parent() {
        mkdir(parent)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
        .map(drop)
        .map_err(|e| format!("cannot create {}: {e}", p.display()))
}

fn symlink(target: &Path, at: &Path) -> R<()> {
    std::os::unix::fs::symlink(target, at)
        .map_err(|e| format!("cannot create {}: {e}", at.display()))
}

/// Bind a host file or directory read-only at the same kind of mount point.
fn bind_entry(src: &Path, dst: &Path, writable: bool) -> R<()> {
    let meta = std::fs::metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
    if meta.is_dir() {
        mkdir(dst)?;
    } else {
        touch(dst)?;
    }
    bind(src, dst, writable)
}

/// Set up the root, then run the command as init's child; returns only on failure.
fn init(spec: &Spec, rlimit_memory: Option<u64>) -> R<std::convert::Infallible> {
    // SAFETY: plain prctl and unshare (init has no other thread).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::unshare(libc::CLONE_NEWNS) < 0 {
            return Err(os_err("cannot create the sandbox's mount namespace"));
        }
    }
    // Nothing mounted from here on propagates back to the host.
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    let root = spec.scratch.as_path();
    mount(
        Some(OsStr::new("tmpfs")),
        root,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=0755"),
    )?;
    let have_etc = match &spec.root {
        Root::Host => {
            host_root(root)?;
            false
        }
        Root::Dir(dir) => dir_root(root, dir)?,
    };
    if !have_etc {
        make_etc(root, matches!(spec.root, Root::Host), spec.network)?;
    }
    make_dev(root)?;
    // A kernel that refuses a fresh /proc (say, in a container with masked paths) leaves the
    // sandbox without one.
    let proc_dir = root.join("proc");
    mkdir(&proc_dir)?;
    let _ = mount(
        Some(OsStr::new("proc")),
        &proc_dir,
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    );
    let tmp = root.join("tmp");
    mkdir(&tmp)?;
    mount(
        Some(OsStr::new("tmpfs")),
        &tmp,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=1777"),
    )?;
    for m in &spec.mounts {
        let at = root.join(m.at.trim_start_matches('/'));
        bind_entry(&m.host, &at, m.writable)?;
    }
    pivot(root)?;
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        None,
    )?;
    loopback_up();
    set_limits(rlimit_memory);
    let path = spec
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let program = resolve(&spec.argv[0], path, &spec.cwd)?;
    let argv: Vec<CString> = spec.argv.iter().map(cstr).collect::<R<_>>()?;
    let envp: Vec<CString> = spec
        .env
        .iter()
        .map(|(k, v)| cstr(format!("{k}={v}")))
        .collect::<R<_>>()?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let cwd = cstr(&spec.cwd)?;
    // SAFETY: chdir to a valid C string.
    if unsafe { libc::chdir(cwd.as_ptr()) } < 0 {
        return Err(os_err(format!("cannot enter {}", spec.cwd)));
    }
    // SAFETY: init is single-threaded; the child only execs or reports and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_err("cannot fork the command"));
    }
    if pid == 0 {
        // The helper and init share the memory cgroup: make the command and what it starts
        // the OOM killer's first choice, so hitting the limit ends the build's processes and
        // not the two that report on them. (Raising one's own score needs no privilege.)
        let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
        // SAFETY: argv and envp are null-terminated arrays of valid C strings.
        unsafe { libc::execve(program.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
        report(&Report::Setup(os_err(format!(
            "cannot run {:?}",
            spec.argv[0]
        ))));
        // SAFETY: ending the child.
        unsafe { libc::_exit(127) };
    }
    loop {
        let mut st = 0;
        // SAFETY: reaping any child of init (orphans are re-parented to it).
        let r = unsafe { libc::waitpid(-1, &mut st, libc::__WALL) };
        if r == pid {
            if libc::WIFEXITED(st) {
                report(&Report::Exit(libc::WEXITSTATUS(st)));
            } else if libc::WIFSIGNALED(st) {
                report(&Report::Signal(libc::WTERMSIG(st)));
            }
            // Init's end takes every other process of the namespace with it.
            // SAFETY: ending init.
            unsafe { libc::_exit(0) };
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // SAFETY: ending init.
            unsafe { libc::_exit(0) };
        }
    }
}

/// The host's `/usr` and its top-level companions, read-only.
fn host_root(root: &Path) -> R<()> {
    bind_entry(Path::new("/usr"), &root.join("usr"), false)?;
    for name in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let host = Path::new("/").join(name);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&host)
                    .map_err(|e| format!("cannot read {}: {e}", host.display()))?;
                symlink(&target, &root.join(name))?;
            }
            Ok(m) if m.is_dir() => bind_entry(&host, &root.join(name), false)?,
            _ => {}
        }
    }
    Ok(())
}

/// Every top-level entry of a root fs directory, read-only. Returns whether it has `/etc`.
fn dir_root(root: &Path, dir: &Path) -> R<bool> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .and_then(|rd| rd.collect::<std::io::Result<Vec<_>>>())
        .map_err(|e| format!("cannot read the root fs {}: {e}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    let mut have_etc = false;
    for e in entries {
        let name = e.file_name();
        if matches!(name.as_bytes(), b"dev" | b"proc" | b"tmp") {
            continue;
        }
        let host = e.path();
        let at = root.join(&name);
        let ft = e
            .file_type()
            .map_err(|err| format!("{}: {err}", host.display()))?;
        if ft.is_symlink() {
            let target = std::fs::read_link(&host)
                .map_err(|err| format!("cannot read {}: {err}", host.display()))?;
            symlink(&target, &at)?;
        } else if ft.is_dir() || ft.is_file() {
            bind_entry(&host, &at, false)?;
            have_etc |= name.as_bytes() == b"etc" && ft.is_dir();
        }
    }
    Ok(have_etc)
}

/// A small `/etc`: the sandbox user, localhost, and for the host builder the host's
/// alternatives links and library cache (plus name service and certificates with network).
fn make_etc(root: &Path, host: bool, network: bool) -> R<()> {
    let etc = root.join("etc");
    mkdir(&etc)?;
    let write = |name: &str, text: String| {
        std::fs::write(etc.join(name), text).map_err(|e| format!("cannot write /etc/{name}: {e}"))
    };
    write(
        "passwd",
        format!(
            "root:x:0:0:root:/root:/bin/sh\nkiln:x:{SANDBOX_UID}:{SANDBOX_UID}:kiln build:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        ),
    )?;
    write(
        "group",
        format!("root:x:0:\nkiln:x:{SANDBOX_UID}:\nnogroup:x:65534:\n"),
    )?;
    write("hosts", "127.0.0.1 localhost\n::1 localhost\n".into())?;
    write("hostname", "kiln-build\n".into())?;
    if network {
        write(
            "resolv.conf",
            format!("nameserver {}\n", usernet::NAMESERVER),
        )?;
    }
    if !host {
        return Ok(());
    }
    let mut shared = vec!["alternatives", "ld.so.cache"];
    if network {
        shared.extend(["nsswitch.conf", "ssl", "ca-certificates"]);
    }
    for name in shared {
        let h = Path::new("/etc").join(name);
        if h.exists() {
            bind_entry(&h, &etc.join(name), false)?;
        }
    }
    Ok(())
}

/// `/dev` with the harmless devices, bound from the host (a user namespace cannot mknod).
fn make_dev(root: &Path) -> R<()> {
    let dev = root.join("dev");
    mkdir(&dev)?;
    mount(
        Some(OsStr::new("tmpfs")),
        &dev,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("mode=0755"),
    )?;
    for name in ["null", "zero", "full", "random", "urandom"] {
        let host = Path::new("/dev").join(name);
        let at = dev.join(name);
        touch(&at)?;
        mount(Some(host.as_os_str()), &at, None, libc::MS_BIND, None)?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(Path::new(target), &dev.join(name))?;
    }
    let shm = dev.join("shm");
    mkdir(&shm)?;
    mount(
        Some(OsStr::new("tmpfs")),
        &shm,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=1777"),
    )
}

/// Make `root` the root and drop the old one.
fn pivot(root: &Path) -> R<()> {
    let root_c = cstr(root)?;
    let dot = cstr(".")?;
    let slash = cstr("/")?;
    // SAFETY: system calls on valid C strings. pivot_root(".", ".") stacks the old root on
    // the new one; detaching "." then drops it.
    unsafe {
        if libc::chdir(root_c.as_ptr()) < 0 {
            return Err(os_err("cannot enter the new root"));
        }
        if libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) < 0 {
            return Err(os_err("cannot pivot into the new root"));
        }
        if libc::umount2(dot.as_ptr(), libc::MNT_DETACH) < 0 {
            return Err(os_err("cannot detach the old root"));
        }
        if libc::chdir(slash.as_ptr()) < 0 {
            return Err(os_err("cannot enter /"));
        }
    }
    Ok(())
}

/// Bring up `lo` in the new network namespace, so a build can talk to itself.
fn loopback_up() {
    // SAFETY: a socket and two ioctls on a zeroed, NUL-terminated ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) == 0 {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
        }
        libc::close(fd);
    }
}

fn set_limits(rlimit_memory: Option<u64>) {
    let set = |what, value: u64| {
        let l = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: a valid rlimit struct.
        unsafe { libc::setrlimit(what, &l) };
    };
    set(libc::RLIMIT_CORE, 0);
    if let Some(m) = rlimit_memory {
        set(libc::RLIMIT_AS, m);
    }
    // SAFETY: plain prctl; no set-user-ID program can gain privileges from here on.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
}

/// The program to exec: as given when it has a `/`, else the first executable file of that
/// name on `path`.
fn resolve(program: &str, path: &str, cwd: &str) -> R<CString> {
    if program.contains('/') {
        return cstr(program);
    }
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let base = if dir.starts_with('/') {
            PathBuf::from(dir)
        } else {
            Path::new(cwd).join(dir)
        };
        let candidate = base.join(program);
        let c = cstr(&candidate)?;
        // SAFETY: access on a valid C string.
        let ok = unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 && candidate.is_file();
        if ok {
            return Ok(c);
        }
    }
    Err(format!(
        "command {program:?} was not found on the sandbox's PATH ({path})"
    ))
}
