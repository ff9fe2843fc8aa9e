//! The command line talks to the daemon running on its repository, and prints exactly what
//! it prints when it opens the repository itself.

mod common;

use common::daemon::{Daemon, request};
use common::{Repo, bytes, write};
use std::path::Path;
use std::process::Output;

/// How many requests the daemon has answered on `route` (from its metrics).
fn served(d: &Daemon, route: &str) -> u64 {
    let m = request(&d.api, "GET", "/metrics", &[]);
    let text = String::from_utf8_lossy(&m.body).into_owned();
    text.lines()
        .filter(|l| {
            l.starts_with("kiln_http_requests_total{") && l.contains(&format!("route=\"{route}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deep")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    write(&root.join("a.txt"), b"hello\n");
    write(&root.join(".hidden"), b"h");
    write(&root.join("sub/big.bin"), &bytes(3 << 20, 7));
    write(&root.join("sub/deep/x"), b"x");
    std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
}

/// Stdout, stderr and status, with the one line that names elapsed time cut.
fn shown(o: &Output) -> (String, String, Option<i32>) {
    let cut = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| l.split(" in ").next().unwrap_or(l).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    (cut(&o.stdout), cut(&o.stderr), o.status.code())
}

#[test]
fn every_command_prints_the_same_through_the_daemon() {
    // Two repositories with the same history: `a` through its daemon, `b` directly.
    let a = Repo::new();
    let b = Repo::new();
    let src = a.path("src");
    tree(&src);
    let d = Daemon::start(&a);
    let s = src.to_str().unwrap();
    let file = src.join("a.txt");
    let f = file.to_str().unwrap();
    let car = a.path("tree.car");
    let adds_before = served(&d, "/api/v0/add");

    let both = |args: &[&str]| {
        let oa = a.run(args);
        let ob = b.run(args);
        assert_eq!(
            shown(&oa),
            shown(&ob),
            "kiln {args:?} differs through the daemon"
        );
        String::from_utf8_lossy(&oa.stdout).into_owned()
    };
    let root = both(&["add", "-Q", "-r", s]).trim().to_string();
    for args in [
        vec!["add", "-r", s],
        vec!["add", "-r", "-H", "--cid-version", "0", s],
        vec!["add", "-q", "-r", "--chunker", "size-1000", s],
        vec!["add", "-w", f, src.join("link").to_str().unwrap()],
        vec!["add", "--pin=false", "--raw-leaves=false", f],
        vec!["add", s],
    ] {
        both(&args);
    }
    let adds = served(&d, "/api/v0/add");
    assert!(
        adds >= adds_before + 6,
        "adds did not go through the daemon: {adds_before} then {adds}"
    );

    let sub = format!("{root}/sub");
    let big = format!("{root}/sub/big.bin");
    let nothing = format!("{root}/nothing");
    let ok_cmds: Vec<Vec<&str>> = vec![
        vec!["cat", &big],
        vec!["cat", "--offset", "1000", "--length", "5000", &big],
        vec!["ls", &root],
        vec!["ls", &root, &sub],
        vec!["pin", "ls"],
        vec!["pin", "ls", "-t", "indirect"],
        vec!["pin", "ls", "-q", "-t", "recursive"],
        vec!["pin", "ls", &root],
        vec!["repo", "verify"],
        vec!["block", "stat", &root],
        vec!["block", "get", &root],
        vec!["dag", "export", &root],
        vec!["pin", "add", "--name", "mine", &sub],
        vec!["pin", "ls"],
        vec!["pin", "rm", &sub],
        vec!["pin", "add", "--recursive=false", &big],
        vec!["block", "rm", &root],
        // Errors: the same message and status.
        vec!["cat", &root],
        vec!["cat", "bafybeigarbage"],
        vec!["ls", &nothing],
        vec!["pin", "ls", "bafkqaaa"],
        vec![
            "block",
            "rm",
            "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
        ],
    ];
    for args in &ok_cmds {
        both(args);
    }
    // cat reads the daemon's blocks (and checks them) with the same code as a local cat.
    assert!(served(&d, "/api/kiln/v1/blocks/{cid}") >= 3);
    assert!(served(&d, "/api/kiln/v1/pins") >= 3);

    // CAR round trip and GC.
    std::fs::write(&car, a.ok_bytes(&["dag", "export", &root])).unwrap();
    let c = car.to_str().unwrap();
    both(&["pin", "rm", &root]);
    both(&["pin", "rm", &big]);
    both(&["gc"]);
    // Statistics name the repository and its database size: compare with `a` opened directly.
    let through = a.run(&["repo", "stat", "--raw"]);
    let direct = a.run(&["--no-daemon", "repo", "stat", "--raw"]);
    assert_eq!(shown(&through), shown(&direct));
    both(&["dag", "import", c, c]);
    both(&["dag", "import", "--pin-roots=false", c]);
    assert!(served(&d, "/api/kiln/v1/gc") >= 1);
    std::fs::write(a.path("bad.car"), &std::fs::read(&car).unwrap()[..100]).unwrap();
    both(&["dag", "import", a.path("bad.car").to_str().unwrap()]);

    // get writes the same tree.
    let (ga, gb) = (a.path("got-a"), b.path("got-b"));
    a.ok(&["get", &root, "-o", ga.to_str().unwrap()]);
    b.ok(&["get", &root, "-o", gb.to_str().unwrap()]);
    for rel in ["a.txt", "sub/big.bin", "sub/deep/x"] {
        assert_eq!(
            std::fs::read(ga.join(rel)).unwrap(),
            std::fs::read(gb.join(rel)).unwrap()
        );
    }
    assert_eq!(
        std::fs::read_link(ga.join("link")).unwrap(),
        Path::new("a.txt")
    );
    assert!(ga.join("empty").is_dir());

    // Standard input and raw blocks.
    let stdin_add = |r: &Repo, args: &[&str]| {
        let mut c = r.cmd();
        c.args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"from stdin\n")
            .unwrap();
        child.wait_with_output().unwrap().stdout
    };
    for args in [
        vec!["add", "-"],
        vec!["add", "-w", "-"],
        vec!["block", "put", "--cid-codec", "raw", "-"],
    ] {
        assert_eq!(stdin_add(&a, &args), stdin_add(&b, &args), "{args:?}");
    }
    let verify = a.ok(&["repo", "verify"]);
    assert!(verify.contains("0 corrupt, 0 missing"), "{verify}");
    d.stop();
}

#[test]
fn a_stale_api_file_falls_back_to_the_repository() {
    let r = Repo::new();
    let f = r.path("f.txt");
    write(&f, b"stale");
    let cid = r.add(&[f.to_str().unwrap()]);
    let mut d = Daemon::start(&r);
    let api = std::fs::read_to_string(r.home().join("api")).unwrap();
    assert!(api.trim().starts_with("http://127.0.0.1:"), "{api}");
    // A daemon killed outright leaves its file behind.
    d.kill();
    assert!(r.home().join("api").exists());
    assert_eq!(r.ok(&["cat", &cid]), "stale");
    // A clean stop removes it.
    let d = Daemon::start(&r);
    d.stop();
    assert!(!r.home().join("api").exists());
    // An explicit --node must answer.
    let err = r.fails(&["--node", "http://127.0.0.1:9", "cat", &cid]);
    assert!(
        err.contains("no kiln daemon answers at http://127.0.0.1:9"),
        "{err}"
    );
}

#[test]
fn another_nodes_api_file_is_not_used() {
    // `a`'s daemon address written into `b`'s repository: b's identity differs, so b's
    // commands open b directly.
    let a = Repo::new();
    let b = Repo::new();
    let f = b.path("f.txt");
    write(&f, b"only in b");
    let cid = b.add(&["--pin=false", f.to_str().unwrap()]);
    let d = Daemon::start(&a);
    std::fs::copy(a.home().join("api"), b.home().join("api")).unwrap();
    assert_eq!(b.ok(&["cat", &cid]), "only in b");
    let pins_before = served(&d, "/api/v0/cat");
    assert_eq!(pins_before, 0);
    d.stop();
}
