//! The sandbox against the real kernel. This test binary is its own sandbox helper (it runs
//! without libtest's harness, so it is single-threaded when started as `__sandbox`).

#[path = "../../../tests/support/needs.rs"]
mod needs;

use kiln_build::sandbox::{self, Mount, Outcome, Root, Spec};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("scratch")).unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        Case { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn spec(&self, argv: &[&str]) -> Spec {
        Spec {
            root: Root::Host,
            mounts: vec![Mount {
                host: self.path("work"),
                at: "/work".into(),
                writable: true,
            }],
            cwd: "/work".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            network: false,
            timeout: Some(Duration::from_secs(30)),
            memory: None,
            scratch: self.path("scratch"),
        }
    }
}

fn run(spec: &Spec) -> (Outcome, String) {
    let exe = std::env::current_exe().unwrap();
    let mut out = Vec::new();
    let o = sandbox::run(&exe, spec, &mut |b| out.extend_from_slice(b)).unwrap();
    if std::env::var_os("KILN_TEST_VERBOSE").is_some() {
        eprintln!(
            "  {:?} -> {o:?}\n{}",
            spec.argv,
            String::from_utf8_lossy(&out)
        );
    }
    (o, String::from_utf8_lossy(&out).into_owned())
}

fn sh(case: &Case, script: &str) -> (Outcome, String) {
    run(&case.spec(&["sh", "-c", script]))
}

fn runs_a_command_as_the_sandbox_user() {
    let c = Case::new();
    let (o, out) = sh(
        &c,
        "id -u; hostname; pwd; echo hi > out.txt; echo err >&2; exit 3",
    );
    assert_eq!(o.code, Some(3), "{out}");
    assert_eq!(out, "1000\nkiln-build\n/work\nerr\n", "{o:?}");
    assert_eq!(
        std::fs::read_to_string(c.path("work/out.txt")).unwrap(),
        "hi\n"
    );
}

fn cannot_read_host_files() {
    let c = Case::new();
    let secret = c.path("secret");
    std::fs::write(&secret, "key").unwrap();
    let script = format!(
        "cat /etc/shadow; cat {}; ls /root /home /var 2>&1 | head -3; test -e /etc/shadow && echo SHADOW",
        secret.display()
    );
    let (o, out) = sh(&c, &script);
    assert!(!out.contains("key"), "{out}");
    assert!(!out.contains("SHADOW") && !out.contains("root:"), "{out}");
    assert!(o.code.is_some(), "{o:?}");
}

fn inputs_and_root_are_read_only() {
    let c = Case::new();
    std::fs::create_dir(c.path("input")).unwrap();
    std::fs::write(c.path("input/a"), "A").unwrap();
    std::fs::create_dir(c.path("work/in")).unwrap();
    let mut spec = c.spec(&[
        "sh",
        "-c",
        "cat in/a; echo x > in/a; echo y > in/b; touch /usr/x; touch /x; mount -o remount,rw /work/in; echo x > in/a; true",
    ]);
    spec.mounts.push(Mount {
        host: c.path("input"),
        at: "/work/in".into(),
        writable: false,
    });
    let (o, out) = run(&spec);
    assert!(o.success(), "{o:?} {out}");
    assert!(out.starts_with('A'), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert_eq!(std::fs::read_to_string(c.path("input/a")).unwrap(), "A");
    assert!(!c.path("input/b").exists());
}

fn no_network_by_default() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let c = Case::new();
    // bash's /dev/tcp makes a connection with nothing but the shell.
    let script = format!("echo hi > /dev/tcp/127.0.0.1/{port} && echo CONNECTED; true");
    let (o, out) = run(&c.spec(&["bash", "-c", &script]));
    assert!(o.success(), "{o:?} {out}");
    assert!(!out.contains("CONNECTED"), "{out}");
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the host's loopback"
    );
}

/// The host's first non-loopback IPv4 address, from the routing table's view: the address a
/// UDP socket "connected" to a public one would send from (nothing is sent).
fn host_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.254:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A fixed-output step's network (slirp4netns) reaches the host's other addresses but never
/// its loopback, neither at 127.0.0.1 nor through slirp's alias for the host (10.0.2.2).
fn network_without_the_host_loopback() {
    if needs::host_program(
        "network_without_the_host_loopback",
        "slirp4netns",
        "slirp4netns",
    )
    .is_none()
    {
        return;
    }
    let lo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lo_port = lo.local_addr().unwrap().port();
    let c = Case::new();
    let probe = |host: &str, port: u16| {
        format!("(echo hi > /dev/tcp/{host}/{port}) 2>/dev/null && echo REACHED {host}; ")
    };
    let mut script = probe("127.0.0.1", lo_port) + &probe("10.0.2.2", lo_port);
    let outside = host_address().map(|ip| {
        let l = std::net::TcpListener::bind((ip, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        script += &probe(&ip.to_string(), port);
        (ip, l)
    });
    script += "cat /etc/resolv.conf; true";
    let mut spec = c.spec(&["bash", "-c", &script]);
    spec.network = true;
    let (o, out) = run(&spec);
    assert!(o.success(), "{o:?} {out}");
    assert!(!out.contains("REACHED 127.0.0.1"), "{out}");
    assert!(!out.contains("REACHED 10.0.2.2"), "{out}");
    lo.set_nonblocking(true).unwrap();
    assert!(lo.accept().is_err(), "the step reached the host's loopback");
    assert!(out.contains("nameserver 10.0.2.3"), "{out}");
    match outside {
        Some((ip, _)) => assert!(out.contains(&format!("REACHED {ip}")), "{out}"),
        None => eprintln!("  (no non-loopback address here: the reachable side is not checked)"),
    }
}

fn killed_at_timeout_with_nothing_left() {
    let c = Case::new();
    let mut spec = c.spec(&[
        "sh",
        "-c",
        "sleep 4242 & (sleep 4243 &) ; setsid sleep 4244 & sleep 4245",
    ]);
    spec.timeout = Some(Duration::from_millis(500));
    let t = Instant::now();
    let (o, _) = run(&spec);
    assert!(o.timed_out, "{o:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    gone_within(Duration::from_secs(10));
    // The end of the command also ends what it started.
    let (o, _) = sh(&c, "sleep 4246 & (setsid sleep 4247 &); exit 0");
    assert!(o.success());
    gone_within(Duration::from_secs(10));
}

/// Wait until no process the test started is left, at most `limit`.
fn gone_within(limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = sleepers();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sleepers() -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.starts_with("sleep 424") {
                found.push(cmd);
            }
        }
    }
    found
}

fn memory_limit() {
    let c = Case::new();
    let mut spec = c.spec(&[
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo done",
    ]);
    spec.memory = Some(32 << 20);
    let (o, out) = run(&spec);
    assert!(!o.success() || !out.contains("done"), "{o:?} {out}");
    assert_ne!(o.memory_limit, "none");
    if o.memory_limit == "cgroup" {
        assert!(o.out_of_memory, "{o:?}");
        assert_eq!(o.describe(), "killed at its memory limit");
        // The group is gone afterwards.
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let leftover = own.lines().any(|l| {
            let rel = l.rsplit(':').next().unwrap_or("");
            ["/sys/fs/cgroup", "/sys/fs/cgroup/memory"]
                .iter()
                .any(|base| {
                    std::fs::read_dir(format!("{base}{rel}")).is_ok_and(|rd| {
                        rd.flatten()
                            .any(|e| e.file_name().to_string_lossy().starts_with("kiln-sandbox-"))
                    })
                })
        });
        assert!(!leftover, "a kiln-sandbox cgroup was left behind");
    }
}

fn unknown_command_is_a_clear_error() {
    let c = Case::new();
    let exe = std::env::current_exe().unwrap();
    let err = sandbox::run(&exe, &c.spec(&["no-such-program"]), &mut |_| {}).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"no-such-program\" was not found"),
        "{err}"
    );
}

fn rootfs_dir() {
    let c = Case::new();
    let Some(busybox) = needs::busybox("rootfs_dir") else {
        return;
    };
    let rootfs = c.path("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let mut spec = c.spec(&["sh", "-c", "ls /; ls /usr 2>&1; echo ok > /work/x"]);
    spec.root = Root::Dir(rootfs);
    spec.env = vec![("PATH".into(), "/bin".into())];
    let (o, out) = run(&spec);
    assert!(o.success(), "{o:?} {out}");
    assert!(out.contains("bin") && out.contains("work"), "{out}");
    assert!(out.contains("No such file"), "{out}");
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(sandbox::HELPER_ARG) {
        sandbox::helper_main();
    }
    let tests: &[(&str, fn())] = &[
        (
            "runs_a_command_as_the_sandbox_user",
            runs_a_command_as_the_sandbox_user,
        ),
        ("cannot_read_host_files", cannot_read_host_files),
        (
            "inputs_and_root_are_read_only",
            inputs_and_root_are_read_only,
        ),
        ("no_network_by_default", no_network_by_default),
        (
            "network_without_the_host_loopback",
            network_without_the_host_loopback,
        ),
        (
            "killed_at_timeout_with_nothing_left",
            killed_at_timeout_with_nothing_left,
        ),
        ("memory_limit", memory_limit),
        (
            "unknown_command_is_a_clear_error",
            unknown_command_is_a_clear_error,
        ),
        ("rootfs_dir", rootfs_dir),
    ];
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut failed = 0;
    for (name, f) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let r = std::panic::catch_unwind(f);
        println!(
            "test {name} ... {}",
            if r.is_ok() { "ok" } else { "FAILED" }
        );
        failed += usize::from(r.is_err());
    }
    if failed > 0 {
        eprintln!("{failed} sandbox test(s) failed");
        std::process::exit(1);
    }
}
