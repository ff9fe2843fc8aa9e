//! The `kiln` binary end to end: add/cat/get/ls, pins, gc, blocks, CARs, bad input.

mod common;

use common::{Repo, bytes, write};
use std::os::unix::fs::symlink;

const EMPTY_FILE_V0: &str = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH";
const EMPTY_DIR_V0: &str = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn";
const EMPTY_DIR_V1: &str = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354";
const EMPTY_RAW: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

#[test]
fn well_known_cids() {
    let r = Repo::new();
    let f = r.path("empty");
    write(&f, b"");
    std::fs::create_dir(r.path("dir")).unwrap();
    let fs = f.to_str().unwrap();
    let ds = r.path("dir");
    let ds = ds.to_str().unwrap();
    assert_eq!(r.add(&["--cid-version", "0", fs]), EMPTY_FILE_V0);
    assert_eq!(r.add(&["--profile", "unixfs-v0-2015", fs]), EMPTY_FILE_V0);
    assert_eq!(r.add(&["--cid-version", "1", fs]), EMPTY_RAW);
    assert_eq!(r.add(&[fs]), EMPTY_RAW);
    assert_eq!(r.add(&["-r", "--cid-version", "0", ds]), EMPTY_DIR_V0);
    assert_eq!(r.add(&["-r", ds]), EMPTY_DIR_V1);
    assert_eq!(r.ok_bytes(&["cat", "bafkqaaa"]), b"");
    assert!(r.ok(&["block", "stat", "bafkqaaa"]).contains("Size: 0"));
}

#[test]
fn add_cat_roundtrip_all_profiles_with_ranges() {
    let r = Repo::new();
    let data = bytes(3 * 1024 * 1024 + 17, 1);
    let f = r.path("big.bin");
    write(&f, &data);
    let fs = f.to_str().unwrap();
    for flags in [
        &["--cid-version", "0"][..],
        &["--cid-version", "1"],
        &[],
        &["--chunker", "size-1000"],
    ] {
        let mut a = flags.to_vec();
        a.push(fs);
        let cid = r.add(&a);
        assert_eq!(r.ok_bytes(&["cat", &cid]), data, "{flags:?}");
        let part = r.ok_bytes(&["cat", &cid, "--offset", "262140", "--length", "300000"]);
        assert_eq!(part, &data[262_140..562_140]);
        // only-hash gives the same CID
        let mut n = vec!["-n"];
        n.extend_from_slice(&a);
        assert_eq!(r.add(&n), cid);
    }
    // the add lines look like ipfs add's
    let out = r.ok(&["add", fs]);
    assert!(
        out.starts_with("added bafy") && out.trim_end().ends_with(" big.bin"),
        "{out}"
    );
}

#[test]
fn stdin_and_wrap() {
    let r = Repo::new();
    let mut child = r
        .cmd()
        .args(["add", "-Q", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello stdin")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let cid = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(r.ok(&["cat", &cid]), "hello stdin");

    let f = r.path("note.txt");
    write(&f, b"wrapped");
    let root = r.add(&["-w", f.to_str().unwrap()]);
    assert_eq!(r.ok(&["cat", &format!("{root}/note.txt")]), "wrapped");
    let ls = r.ok(&["ls", &root]);
    assert!(ls.trim_end().ends_with(" 7 note.txt"), "{ls}");
}

#[test]
fn directories_hidden_symlinks_and_get() {
    let r = Repo::new();
    let src = r.path("tree");
    write(&src.join("a.txt"), b"alpha");
    write(&src.join("sub dir/é ü.txt"), b"unicode");
    write(&src.join(".hidden"), b"secret");
    write(&src.join("deep/er/file"), &bytes(600_000, 2));
    std::fs::create_dir_all(src.join("empty")).unwrap();
    symlink("a.txt", src.join("link")).unwrap();
    symlink("/nonexistent/target", src.join("dangling")).unwrap();
    let s = src.to_str().unwrap();

    let root = r.add(&["-r", s]);
    let with_hidden = r.add(&["-r", "-H", s]);
    assert_ne!(root, with_hidden);
    assert!(r.run(&["cat", &format!("{root}/.hidden")]).status.code() != Some(0));
    assert_eq!(r.ok(&["cat", &format!("{with_hidden}/.hidden")]), "secret");
    assert_eq!(
        r.ok(&["cat", &format!("{root}/sub dir/é ü.txt")]),
        "unicode"
    );
    let ls = r.ok(&["ls", &root]);
    for name in ["a.txt", "deep/", "empty/", "link", "dangling", "sub dir/"] {
        assert!(
            ls.lines().any(|l| l.ends_with(&format!(" {name}"))),
            "{name} missing in {ls}"
        );
    }

    let out = r.path("out");
    r.ok(&["get", &with_hidden, "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(out.join(".hidden")).unwrap(), b"secret");
    assert_eq!(
        std::fs::read(out.join("deep/er/file")).unwrap(),
        bytes(600_000, 2)
    );
    assert!(out.join("empty").is_dir());
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap().to_str(),
        Some("a.txt")
    );
    assert_eq!(
        std::fs::read_link(out.join("dangling")).unwrap().to_str(),
        Some("/nonexistent/target")
    );
    // re-adding what was written gives the same root
    assert_eq!(r.add(&["-r", "-H", out.to_str().unwrap()]), with_hidden);
    // the target must not exist
    let err = r.fails(&["get", &with_hidden, "-o", out.to_str().unwrap()]);
    assert!(err.contains("already exists"), "{err}");
    // a directory without -r is refused
    let err = r.fails(&["add", s]);
    assert!(err.contains("use -r"), "{err}");
}

#[test]
fn pins_and_gc() {
    let r = Repo::new();
    let a = r.path("a");
    let b = r.path("b");
    write(&a, &bytes(700_000, 3));
    write(&b, &bytes(700_000, 4));
    let ca = r.add(&["--cid-version", "0", a.to_str().unwrap()]);
    let cb = r.add(&["--pin=false", b.to_str().unwrap()]);
    let pins = r.ok(&["pin", "ls"]);
    assert!(
        pins.contains(&format!("{ca} recursive")) && !pins.contains(&cb),
        "{pins}"
    );
    r.ok(&["gc"]);
    assert_eq!(r.ok_bytes(&["cat", &ca]), bytes(700_000, 3));
    let err = r.fails(&["cat", &cb]);
    assert!(err.contains("not found"), "{err}");
    // pin rm + gc removes it
    r.ok(&["pin", "rm", &ca]);
    r.ok(&["gc"]);
    assert!(r.ok(&["repo", "stat", "--raw"]).contains("NumObjects: 0"));
    r.fails(&["pin", "rm", &ca]);
    // pinning something absent names it
    let err = r.fails(&["pin", "add", &ca]);
    assert!(
        err.contains("not found") || err.contains("missing"),
        "{err}"
    );
    // direct pins, pin ls for a CID
    let c = r.add(&["--cid-version", "0", a.to_str().unwrap()]);
    assert!(r.ok(&["pin", "ls", "-t", "indirect"]).lines().count() >= 3);
    let err = r.fails(&["pin", "add", "--recursive=false", &c]);
    assert!(err.contains("already pinned recursively"), "{err}");
    r.ok(&["pin", "rm", &c]);
    r.ok(&["pin", "add", "--recursive=false", &c]);
    assert_eq!(r.ok(&["pin", "ls", &c]).trim(), format!("{c} direct"));
    assert_eq!(r.ok(&["pin", "ls", "-t", "direct", "-q"]).trim(), c);
}

#[test]
fn blocks() {
    let r = Repo::new();
    let f = r.path("blk");
    write(&f, b"block bytes");
    let cid = r
        .ok(&["block", "put", f.to_str().unwrap()])
        .trim()
        .to_string();
    assert!(cid.starts_with("bafkrei"));
    assert_eq!(r.ok(&["block", "get", &cid]), "block bytes");
    assert!(r.ok(&["block", "stat", &cid]).contains("Size: 11"));
    r.ok(&["block", "rm", &cid]);
    r.fails(&["block", "get", &cid]);
    // a pinned block cannot be removed
    let c = r.add(&[f.to_str().unwrap()]);
    let err = r.fails(&["block", "rm", &c]);
    assert!(err.contains("pinned"), "{err}");
    // Both are in the event journal: the removal, and the refusal.
    let events = r.ok(&["events"]);
    let rm: Vec<&str> = events.lines().filter(|l| l.contains("block rm")).collect();
    assert_eq!(rm.len(), 2, "{events}");
    assert!(
        rm.iter().any(|l| l.contains(&cid)) && rm.iter().any(|l| l.contains(&c)),
        "{events}"
    );
    // invalid dag-pb is refused
    let err = r.fails(&["block", "put", "--cid-codec", "dag-pb", f.to_str().unwrap()]);
    assert!(err.contains("dag-pb"), "{err}");
}

#[test]
fn car_export_import_between_repos() {
    let r1 = Repo::new();
    let src = r1.path("t");
    write(&src.join("x/y.bin"), &bytes(2_000_000, 5));
    write(&src.join("z.txt"), b"zed");
    let root = r1.add(&["-r", "--cid-version", "0", src.to_str().unwrap()]);
    let car = r1.path("t.car");
    r1.ok(&["dag", "export", &root, "-o", car.to_str().unwrap()]);
    let stdout_car = r1.ok_bytes(&["dag", "export", &root]);
    assert_eq!(std::fs::read(&car).unwrap(), stdout_car);

    let r2 = Repo::new();
    let out = r2.ok(&["dag", "import", car.to_str().unwrap()]);
    assert!(out.contains(&format!("pinned root {root}")), "{out}");
    assert_eq!(
        r2.ok_bytes(&["cat", &format!("{root}/x/y.bin")]),
        bytes(2_000_000, 5)
    );
    r2.ok(&["repo", "verify"]);

    // corrupt and truncated CARs: one-line error, nothing pinned
    let mut bad = stdout_car.clone();
    let n = bad.len();
    bad[n - 10] ^= 0xff;
    let badf = r1.path("bad.car");
    std::fs::write(&badf, &bad).unwrap();
    let r3 = Repo::new();
    let err = r3.fails(&["dag", "import", badf.to_str().unwrap()]);
    assert!(err.contains("does not match"), "{err}");
    std::fs::write(&badf, &stdout_car[..n / 2]).unwrap();
    let err = r3.fails(&["dag", "import", badf.to_str().unwrap()]);
    assert!(err.contains("truncated"), "{err}");
    std::fs::write(&badf, b"not a car at all").unwrap();
    r3.fails(&["dag", "import", badf.to_str().unwrap()]);
    assert_eq!(r3.ok(&["pin", "ls"]), "");
    r3.ok(&["repo", "verify"]);
}

#[test]
fn bad_input_is_a_clear_error() {
    let r = Repo::new();
    let err = r.fails(&["cat", "notacid"]);
    assert!(err.contains("invalid CID"), "{err}");
    let err = r.fails(&[
        "cat",
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxqu",
    ]);
    assert!(err.contains("invalid CID"), "{err}");
    let err = r.fails(&["add", "/no/such/path"]);
    assert!(err.contains("/no/such/path"), "{err}");
    let err = r.fails(&["add", "--chunker", "rabin", "/etc/hostname"]);
    assert!(err.contains("chunker"), "{err}");
    let err = r.fails(&["add", "--profile", "nope", "/etc/hostname"]);
    assert!(err.contains("profile"), "{err}");
    // a named pipe is refused
    let fifo = r.path("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let err = r.fails(&["add", fifo.to_str().unwrap()]);
    assert!(err.contains("named pipe"), "{err}");
    // cat of a directory, ls of a file
    let d = r.path("d");
    write(&d.join("f"), b"x");
    let root = r.add(&["-r", d.to_str().unwrap()]);
    assert!(r.fails(&["cat", &root]).contains("directory"));
    assert!(
        r.fails(&["ls", &format!("{root}/f")])
            .contains("not a directory")
    );
    assert!(
        r.fails(&["cat", &format!("{root}/missing")])
            .contains("no link named")
    );
}

#[test]
fn get_refuses_hostile_names() {
    use kiln_core::dag_pb::{PbLink, PbNode};
    use kiln_core::unixfs::{DataType, UnixfsData};
    let r = Repo::new();
    let f = r.path("payload");
    write(&f, b"evil");
    let file = r.add(&["--cid-version", "1", f.to_str().unwrap()]);
    for name in ["../escape", "a/b", ".."] {
        let node = PbNode {
            links: vec![PbLink {
                cid: file.parse().unwrap(),
                name: name.into(),
                tsize: 4,
            }],
            data: Some(UnixfsData::new(DataType::Directory).encode()),
        };
        let nf = r.path("node.pb");
        std::fs::write(&nf, node.encode()).unwrap();
        let dir = r
            .ok(&[
                "block",
                "put",
                "--cid-codec",
                "dag-pb",
                nf.to_str().unwrap(),
            ])
            .trim()
            .to_string();
        let out = r.path("outdir");
        let err = r.fails(&["get", &dir, "-o", out.to_str().unwrap()]);
        assert!(err.contains("unsafe entry name"), "{err}");
        assert!(!r.dir.path().join("escape").exists());
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn verify_reports_corruption() {
    let r = Repo::new();
    let f = r.path("f");
    write(&f, &bytes(100_000, 9));
    let cid = r.add(&[f.to_str().unwrap()]);
    assert!(r.ok(&["repo", "verify"]).contains("0 corrupt, 0 missing"));
    // flip a byte in the middle of the pack holding the data
    let packs = r.home().join("packs");
    let pack = std::fs::read_dir(&packs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&pack, bytes).unwrap();
    let o = r.run(&["repo", "verify"]);
    assert!(!o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("corrupt: {cid}")), "{text}");
}

#[test]
fn unreadable_input_is_a_clear_error_and_commits_nothing() {
    let r = Repo::new();
    // Readable metadata, unreadable bytes (EIO), even for root.
    let err = r.fails(&["add", "/proc/self/mem"]);
    assert!(err.contains("/proc/self/mem"), "{err}");
    assert_eq!(r.ok(&["pin", "ls"]), "");
    r.ok(&["repo", "verify"]);
}

/// A repository on a 32 MiB tmpfs: adding 64 MiB fails with one line naming the problem,
/// nothing is pinned, the store verifies, and it still works afterwards. Needs root (mount).
#[test]
fn full_disk_is_a_clear_error_and_loses_nothing() {
    let r = Repo::new();
    let mnt = r.path("small");
    std::fs::create_dir(&mnt).unwrap();
    let Some(_fs) = common::needs::Tmpfs::mount("full_disk", &mnt, "32m") else {
        return;
    };
    let home = mnt.join("home");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .env("KILN_HOME", &home)
            .args(args)
            .output()
            .unwrap()
    };
    let small = r.path("small.txt");
    write(&small, b"still works");
    let o = run(&["add", "-Q", small.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kept = String::from_utf8(o.stdout).unwrap().trim().to_string();

    let big = r.path("big.bin");
    write(&big, &bytes(64 << 20, 11));
    let o = run(&["add", "-Q", big.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("no space left"), "{err}");

    let o = run(&["pin", "ls", "-q"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), kept);
    assert!(run(&["gc"]).status.success());
    let o = run(&["repo", "verify"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = run(&["cat", &kept]);
    assert_eq!(o.stdout, b"still works");
    let o = run(&["add", "-Q", small.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Large files are read through mapped windows, stdin through `read`: same CIDs, for
/// chunk sizes that divide the page size, that don't, and that are odd.
#[test]
fn mapped_and_streamed_inputs_agree() {
    let r = Repo::new();
    let data = bytes(9 * 1024 * 1024 + 4321, 21);
    let f = r.path("nine.bin");
    write(&f, &data);
    for extra in [
        &[][..],
        &["--chunker", "size-1000"],
        &["--chunker", "size-4097"],
        &["--cid-version", "0"],
    ] {
        let mut a = vec!["add", "-Q"];
        a.extend_from_slice(extra);
        let mut from_file = a.clone();
        from_file.push(f.to_str().unwrap());
        let mapped = r.ok(&from_file).trim().to_string();
        a.push("-");
        let out = r
            .cmd()
            .args(&a)
            .stdin(std::fs::File::open(&f).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            mapped,
            "{extra:?}"
        );
        assert_eq!(r.ok_bytes(&["cat", &mapped]), data);
    }
}

/// The node's identity is created with the repository, kept private, stable, and the
/// did:key and the peer ID name the same key.
#[test]
fn node_identity() {
    use std::os::unix::fs::PermissionsExt;
    let r = Repo::new();
    r.ok(&["init"]);
    let key_file = r.home().join("identity.key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let a: serde_json::Value = serde_json::from_str(&r.ok(&["id"])).unwrap();
    let b: serde_json::Value = serde_json::from_str(&r.ok(&["id"])).unwrap();
    assert_eq!(a, b);
    let did = a["DID"].as_str().unwrap();
    let key = kiln_id::parse_did_key(did).unwrap();
    assert_eq!(a["ID"].as_str().unwrap(), kiln_id::peer_id(&key));
    assert!(a["AgentVersion"].as_str().unwrap().starts_with("kiln/"));
    // A damaged key file is a clear error, not a new identity.
    std::fs::write(&key_file, b"junk").unwrap();
    let err = r.fails(&["id"]);
    assert!(err.contains("not a kiln ed25519 key file"), "{err}");
}
