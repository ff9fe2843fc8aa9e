//! Sandbox overhead: the same command run bare and in kiln's sandbox (host builder, a work
//! directory and one read-only input bound, no network), medians of many runs. This bench
//! binary is its own sandbox helper, as kiln is.
//!
//! `cargo bench -p kiln-build --bench sandbox [-- RUNS]`

use kiln_build::sandbox::{self, Mount, Root, Spec};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(sandbox::HELPER_ARG) {
        sandbox::helper_main();
    }
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let input = dir.path().join("input");
    let scratch = dir.path().join("scratch");
    for d in [&work, &input, &scratch] {
        std::fs::create_dir(d).expect("mkdir");
    }
    std::fs::create_dir(work.join("in")).expect("mkdir");
    let exe = std::env::current_exe().expect("exe");
    let program = "/bin/true";
    let spec = Spec {
        root: Root::Host,
        mounts: vec![
            Mount {
                host: work.clone(),
                at: "/work".into(),
                writable: true,
            },
            Mount {
                host: input.clone(),
                at: "/work/in".into(),
                writable: false,
            },
        ],
        cwd: "/work".into(),
        argv: vec![program.into()],
        env: vec![("PATH".into(), sandbox::DEFAULT_PATH.into())],
        network: false,
        timeout: Some(Duration::from_secs(10)),
        memory: None,
        scratch,
    };
    let limited = Spec {
        memory: Some(256 << 20),
        ..spec.clone()
    };
    let mut bare = Vec::new();
    let mut boxed = Vec::new();
    let mut boxed_mem = Vec::new();
    let mut inner = Vec::new();
    // Interleaved, after a warm-up of each.
    for i in 0..runs + 5 {
        let t = Instant::now();
        let st = std::process::Command::new(program).status().expect("spawn");
        let b = t.elapsed();
        assert!(st.success());
        let t = Instant::now();
        let o = sandbox::run(&exe, &spec, &mut |_| {}).expect("sandbox");
        let s = t.elapsed();
        assert!(o.success(), "{o:?}");
        let t = Instant::now();
        let om = sandbox::run(&exe, &limited, &mut |_| {}).expect("sandbox");
        let m = t.elapsed();
        assert!(om.success(), "{om:?}");
        if i >= 5 {
            bare.push(b);
            boxed.push(s);
            boxed_mem.push(m);
            inner.push(o.elapsed);
            if i == 5 {
                println!("memory limit enforced by: {}", om.memory_limit);
            }
        }
    }
    let (b, s, n, m) = (
        median(bare),
        median(boxed),
        median(inner),
        median(boxed_mem),
    );
    println!("runs: {runs} (medians)");
    println!(
        "bare {program}:            {:>8.2} ms",
        b.as_secs_f64() * 1e3
    );
    println!(
        "in kiln's sandbox:         {:>8.2} ms",
        s.as_secs_f64() * 1e3
    );
    println!(
        "  of which namespaces+init to exit: {:>6.2} ms",
        n.as_secs_f64() * 1e3
    );
    println!(
        "with a memory limit:       {:>8.2} ms",
        m.as_secs_f64() * 1e3
    );
    println!(
        "sandbox overhead:          {:>8.2} ms (ratio {:.1}x)",
        (s.saturating_sub(b)).as_secs_f64() * 1e3,
        s.as_secs_f64() / b.as_secs_f64()
    );
}
