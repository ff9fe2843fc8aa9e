//! `kiln rootfs import`: directories and tar archives as build root file systems, with the
//! executable bit kept, pinned as `rootfs:NAME`, the same through the daemon as directly.

mod common;

use common::daemon::Daemon;
use common::{Repo, bytes, write};
use kiln_core::NullSink;
use kiln_core::cids::parse_cid;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn chmod(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// An executable script, a plain file, a symlink, a subdirectory (and an empty one), a file
/// of several chunks.
fn sample(root: &Path) {
    write(&root.join("bin/hello"), b"#!/bin/sh\necho hello\n");
    chmod(&root.join("bin/hello"), 0o755);
    write(&root.join("etc/motd"), b"welcome\n");
    chmod(&root.join("etc/motd"), 0o600);
    write(&root.join("usr/lib/big.so"), &bytes((1 << 20) + 12345, 3));
    chmod(&root.join("usr/lib/big.so"), 0o700);
    fs::create_dir_all(root.join("tmp")).unwrap();
    std::os::unix::fs::symlink("hello", root.join("bin/hi")).unwrap();
    std::os::unix::fs::symlink("/usr/lib", root.join("lib")).unwrap();
}

/// A tar of the directory, symlinks stored as symlinks, paths as `./x`.
fn tar_of(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap();
}

/// The store of a repository, opened directly (no daemon running on it).
fn store(r: &Repo) -> kiln_store::Store {
    kiln_store::Store::open(&r.home(), kiln_store::StoreOptions::default()).unwrap()
}

/// `kiln rootfs import`: (stdout, stderr).
fn import(r: &Repo, args: &[&str]) -> (String, String) {
    let mut a = vec!["rootfs", "import"];
    a.extend_from_slice(args);
    let o = r.run(&a);
    assert!(
        o.status.success(),
        "kiln {a:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
fn directory_and_tar_give_the_same_root() {
    let r = Repo::new();
    let src = r.path("alpine");
    sample(&src);
    let (out, err) = import(&r, &[src.to_str().unwrap()]);
    let cid = out.trim().to_string();
    assert_eq!(out, format!("{cid}\n"), "stdout is the CID alone");
    assert!(err.contains("pinned as rootfs:alpine"), "{err}");
    assert!(!err.contains("warning"), "{err}");
    // The convention of kiln-build: the same CID as a source tree hashes to.
    assert_eq!(
        kiln_build::content::import_tree(&mut NullSink, &src)
            .unwrap()
            .cid
            .to_string(),
        cid
    );

    let tarball = r.path("alpine.tar");
    tar_of(&src, &tarball);
    let (out_tar, _) = import(&r, &[tarball.to_str().unwrap(), "--name", "from-tar"]);
    assert_eq!(out_tar.trim(), cid);

    // gzip-compressed, default name without the extension.
    let gz = r.path("mini.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(
        fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    std::io::copy(&mut fs::File::open(&tarball).unwrap(), &mut enc).unwrap();
    enc.finish().unwrap();
    let (out_gz, err_gz) = import(&r, &[gz.to_str().unwrap()]);
    assert_eq!(out_gz.trim(), cid);
    assert!(err_gz.contains("pinned as rootfs:mini"), "{err_gz}");

    // One pin, owned by `rootfs` and named by the last import.
    let pins = r.ok(&["pin", "ls"]);
    assert_eq!(pins, format!("{cid} recursive rootfs mini\n"));

    // What the store holds writes back out with the modes: 0755 for the executables, 0644
    // for the rest, symlinks verbatim.
    let out_dir = r.path("out");
    kiln_build::content::materialize(&store(&r), &parse_cid(&cid).unwrap(), &out_dir).unwrap();
    assert_eq!(mode(&out_dir.join("bin/hello")), 0o755);
    assert_eq!(mode(&out_dir.join("usr/lib/big.so")), 0o755);
    assert_eq!(mode(&out_dir.join("etc/motd")), 0o644);
    assert_eq!(
        fs::read(out_dir.join("bin/hello")).unwrap(),
        b"#!/bin/sh\necho hello\n"
    );
    assert_eq!(
        fs::read(out_dir.join("usr/lib/big.so")).unwrap(),
        bytes((1 << 20) + 12345, 3)
    );
    assert_eq!(
        fs::read_link(out_dir.join("lib")).unwrap(),
        Path::new("/usr/lib")
    );
    assert!(out_dir.join("tmp").is_dir());

    // `kiln ls` shows the entries.
    let ls = r.ok(&["ls", &format!("{cid}/bin")]);
    let names: Vec<&str> = ls.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(names, ["hello", "hi"], "{ls}");
}

#[test]
fn only_the_execute_bit_is_kept() {
    let r = Repo::new();
    let a = r.path("a");
    let b = r.path("b");
    for (d, exec, plain) in [(&a, 0o755, 0o644), (&b, 0o700, 0o600)] {
        write(&d.join("x"), b"#!/bin/sh\n");
        chmod(&d.join("x"), exec);
        write(&d.join("y"), b"data");
        chmod(&d.join("y"), plain);
    }
    let ca = import(&r, &[a.to_str().unwrap()]).0;
    let cb = import(&r, &[b.to_str().unwrap()]).0;
    assert_eq!(ca, cb);
    chmod(&b.join("x"), 0o644);
    let cc = import(&r, &[b.to_str().unwrap()]).0;
    assert_ne!(ca, cc, "the execute bit is part of the CID");
}

/// A tar entry written by hand: the tar crate refuses to write `..` and absolute paths.
fn raw_entry(
    b: &mut tar::Builder<fs::File>,
    path: &[u8],
    kind: tar::EntryType,
    link: &[u8],
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..path.len()].copy_from_slice(path);
        gnu.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

#[test]
fn hard_links_copied_and_special_files_skipped() {
    let r = Repo::new();
    let t = r.path("t.tar");
    let mut b = tar::Builder::new(fs::File::create(&t).unwrap());
    raw_entry(&mut b, b"./bin/", tar::EntryType::Directory, b"", b"");
    raw_entry(
        &mut b,
        b"./bin/tool",
        tar::EntryType::Regular,
        b"",
        b"tool bytes",
    );
    raw_entry(
        &mut b,
        b"./bin/alias",
        tar::EntryType::Link,
        b"./bin/tool",
        b"",
    );
    raw_entry(&mut b, b"./dev/null", tar::EntryType::Char, b"", b"");
    raw_entry(&mut b, b"./dev/sda", tar::EntryType::Block, b"", b"");
    raw_entry(&mut b, b"./run/fifo", tar::EntryType::Fifo, b"", b"");
    b.into_inner().unwrap();
    let (out, err) = import(&r, &[t.to_str().unwrap()]);
    let cid = out.trim();
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("skipped 3 special files"), "{err}");
    assert!(err.contains("1 hard link copied"), "{err}");
    let tool = r.ok(&["ls", &format!("{cid}/bin")]);
    let cids: Vec<&str> = tool.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(cids.len(), 2);
    assert_eq!(cids[0], cids[1], "the hard link is a copy: {tool}");
    // The parents of skipped entries still exist, empty.
    let root = r.ok(&["ls", cid]);
    assert!(root.contains(" dev/") && root.contains(" run/"), "{root}");
    let out_dir = r.path("out");
    kiln_build::content::materialize(&store(&r), &parse_cid(cid).unwrap(), &out_dir).unwrap();
    assert_eq!(fs::read(out_dir.join("bin/alias")).unwrap(), b"tool bytes");
    assert_eq!(mode(&out_dir.join("bin/alias")), 0o755);
}

#[test]
fn unsafe_archives_are_refused_and_nothing_is_pinned() {
    let r = Repo::new();
    for (name, path, kind, link) in [
        ("dotdot", &b"../evil"[..], tar::EntryType::Regular, &b""[..]),
        ("nested", b"./a/../../evil", tar::EntryType::Regular, b""),
        ("absolute", b"/etc/evil", tar::EntryType::Regular, b""),
        ("link", b"./ok", tar::EntryType::Link, b"../outside"),
    ] {
        let t = r.path(&format!("{name}.tar"));
        let mut b = tar::Builder::new(fs::File::create(&t).unwrap());
        raw_entry(&mut b, b"./fine", tar::EntryType::Regular, b"", b"fine");
        raw_entry(&mut b, path, kind, link, b"evil");
        b.into_inner().unwrap();
        let err = r.fails(&["rootfs", "import", t.to_str().unwrap()]);
        let named = String::from_utf8_lossy(if link.is_empty() { path } else { link });
        assert!(err.starts_with("Error: "), "{err}");
        assert!(err.contains(&*named), "{name}: {err}");
        assert!(
            err.contains("'..'") || err.contains("absolute"),
            "{name}: {err}"
        );
    }
    assert_eq!(r.ok(&["pin", "ls"]), "");
    assert!(!r.path("evil").exists());
}

#[test]
fn a_missing_path_is_one_line() {
    let r = Repo::new();
    let err = r.fails(&["rootfs", "import", r.path("nope").to_str().unwrap()]);
    assert!(err.contains("nope"), "{err}");
    let not_tar = r.path("notes.txt");
    write(&not_tar, &[b'x'; 2000]);
    let err = r.fails(&["rootfs", "import", not_tar.to_str().unwrap()]);
    assert!(err.contains("notes.txt: not a tar archive"), "{err}");
    // Text whose lines the tar reader would quote stays one line too.
    write(&not_tar, "[package]\nname = \"x\"\n".repeat(40).as_bytes());
    let err = r.fails(&["rootfs", "import", not_tar.to_str().unwrap()]);
    assert!(err.contains("not a tar archive"), "{err}");
    // A damaged archive after a good entry.
    let t = r.path("cut.tar");
    let mut b = tar::Builder::new(fs::File::create(&t).unwrap());
    raw_entry(&mut b, b"./fine", tar::EntryType::Regular, b"", b"fine");
    b.into_inner().unwrap();
    let mut bytes_of = fs::read(&t).unwrap();
    bytes_of.truncate(1024);
    bytes_of.extend_from_slice(&[b'z'; 512]);
    fs::write(&t, &bytes_of).unwrap();
    let err = r.fails(&["rootfs", "import", t.to_str().unwrap()]);
    assert!(err.contains("damaged after 1 entry"), "{err}");
    assert_eq!(r.ok(&["pin", "ls"]), "");
}

#[test]
fn the_same_through_the_daemon() {
    let a = Repo::new();
    let b = Repo::new();
    let src = a.path("root");
    sample(&src);
    mkfifo(&src.join("fifo"));
    let tarball = a.path("root.tar");
    tar_of(&src, &tarball);
    let d = Daemon::start(&a);
    for args in [
        vec![src.to_str().unwrap()],
        vec![tarball.to_str().unwrap(), "--name", "tarred"],
    ] {
        let mut full = vec!["rootfs", "import"];
        full.extend_from_slice(&args);
        let oa = a.run(&full);
        let ob = b.run(&full);
        assert!(
            oa.status.success(),
            "{}",
            String::from_utf8_lossy(&oa.stderr)
        );
        assert_eq!(oa.stdout, ob.stdout);
        assert_eq!(
            String::from_utf8_lossy(&oa.stderr),
            String::from_utf8_lossy(&ob.stderr)
        );
    }
    // It did go through the daemon: two CARs, each pinned for `rootfs` under its name in
    // the import's own request (no separate pin/add).
    let metrics = common::daemon::request(&d.api, "GET", "/metrics", &[]);
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    for (route, n) in [("/api/v0/dag/import", 2.0), ("/api/v0/pin/add", 0.0)] {
        let served: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("kiln_http_requests_total{"))
            .filter(|l| l.contains(&format!("route=\"{route}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(served, n, "{route}");
    }
    let pins_a = a.ok(&["pin", "ls"]);
    assert_eq!(pins_a, b.ok(&["pin", "ls"]));
    assert!(
        pins_a.trim().ends_with("recursive rootfs tarred"),
        "{pins_a}"
    );
    // A refused archive through the daemon: the same error, nothing pinned.
    let evil = a.path("evil.tar");
    let mut t = tar::Builder::new(fs::File::create(&evil).unwrap());
    raw_entry(&mut t, b"../evil", tar::EntryType::Regular, b"", b"x");
    t.into_inner().unwrap();
    let ea = a.fails(&["rootfs", "import", evil.to_str().unwrap()]);
    let eb = b.fails(&["rootfs", "import", evil.to_str().unwrap()]);
    assert_eq!(ea, eb);
    assert_eq!(a.ok(&["pin", "ls"]), pins_a);
    d.stop();
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// A minimal busybox root file system, when Debian's busybox-static is installed: the
/// binary and its applets as symlinks; written back out, its shell runs.
#[test]
fn busybox_root() {
    let Some(busybox) = common::needs::busybox("busybox_root") else {
        return;
    };
    let r = Repo::new();
    let root = r.path("busybox-root");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy(busybox, root.join("bin/busybox")).unwrap();
    chmod(&root.join("bin/busybox"), 0o755);
    for applet in ["sh", "true", "cat", "echo", "ls"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::create_dir_all(root.join("tmp")).unwrap();
    let (out, err) = import(&r, &[root.to_str().unwrap()]);
    let cid = out.trim();
    assert!(err.contains("pinned as rootfs:busybox-root"), "{err}");
    assert_eq!(
        r.ok(&["pin", "ls"]),
        format!("{cid} recursive rootfs busybox-root\n")
    );
    let out_dir = r.path("written");
    kiln_build::content::materialize(&store(&r), &parse_cid(cid).unwrap(), &out_dir).unwrap();
    kiln_build::content::seal(&out_dir).unwrap();
    assert_eq!(mode(&out_dir.join("bin/busybox")), 0o555);
    let ran = std::process::Command::new(out_dir.join("bin/sh"))
        .args(["-c", "echo from-the-rootfs"])
        .output()
        .unwrap();
    assert!(ran.status.success());
    assert_eq!(ran.stdout, b"from-the-rootfs\n");
    // Make it removable again.
    for d in ["", "bin", "tmp"] {
        chmod(&out_dir.join(d), 0o755);
    }
}
