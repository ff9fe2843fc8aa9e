//! Store content to file trees and back (`kiln_build::content`): modes, symlinks, large
//! files, CIDs that ignore umask and owners, and unsafe names refused.

use kiln_build::content::{import_tree, materialize, seal};
use kiln_build::{Error, tree};
use kiln_core::dag_pb::{PbLink, PbNode};
use kiln_core::import::{self, DirEntry};
use kiln_core::unixfs::{DataType, UnixfsData};
use kiln_core::{MemoryBlocks, NullSink, cids};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

/// A tree with an executable, a plain file, an empty file, a symlink, nested directories
/// and a file of more than one chunk.
fn sample(root: &Path) -> Vec<u8> {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("share/doc/empty")).unwrap();
    fs::write(root.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    chmod(&root.join("bin/tool"), 0o755);
    fs::write(root.join("share/doc/README"), b"read me\n").unwrap();
    fs::write(root.join("share/empty-file"), b"").unwrap();
    std::os::unix::fs::symlink("../bin/tool", root.join("share/tool-link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/abs", root.join("dangling")).unwrap();
    let big: Vec<u8> = (0..(1 << 20) + 300_000u32)
        .map(|i| (i ^ (i >> 11)) as u8)
        .collect();
    fs::write(root.join("bin/big"), &big).unwrap();
    chmod(&root.join("bin/big"), 0o700);
    big
}

#[test]
fn round_trip_keeps_bytes_modes_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let big = sample(&src);
    let mut blocks = MemoryBlocks::default();
    let root = import_tree(&mut blocks, &src).unwrap();
    assert_eq!(tree::hash_path(&src).unwrap(), root.cid);

    let out = dir.path().join("out");
    materialize(&blocks, &root.cid, &out).unwrap();
    assert_eq!(mode(&out), 0o755);
    assert_eq!(mode(&out.join("bin")), 0o755);
    assert_eq!(mode(&out.join("share/doc/empty")), 0o755);
    assert_eq!(mode(&out.join("bin/tool")), 0o755);
    assert_eq!(mode(&out.join("bin/big")), 0o755);
    assert_eq!(mode(&out.join("share/doc/README")), 0o644);
    assert_eq!(mode(&out.join("share/empty-file")), 0o644);
    assert_eq!(
        fs::read(out.join("bin/tool")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    assert_eq!(fs::read(out.join("bin/big")).unwrap(), big);
    assert_eq!(fs::read(out.join("share/empty-file")).unwrap(), b"");
    assert_eq!(
        fs::read_link(out.join("share/tool-link")).unwrap(),
        Path::new("../bin/tool")
    );
    assert_eq!(
        fs::read_link(out.join("dangling")).unwrap(),
        Path::new("/nonexistent/abs")
    );
    assert!(
        fs::read_dir(out.join("share/doc/empty"))
            .unwrap()
            .next()
            .is_none()
    );

    // Written back out, the tree imports to the same CID.
    assert_eq!(import_tree(&mut NullSink, &out).unwrap().cid, root.cid);

    // A file's own root records the mode; a plain file's does not.
    let tool = kiln_core::export::resolve(
        &blocks,
        &cids::ContentPath::parse(&format!("{}/bin/tool", root.cid)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        kiln_core::export::file_mode(&blocks, &tool).unwrap(),
        Some(0o755)
    );
    let readme = kiln_core::export::resolve(
        &blocks,
        &cids::ContentPath::parse(&format!("{}/share/doc/README", root.cid)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        kiln_core::export::file_mode(&blocks, &readme).unwrap(),
        None
    );
    assert_eq!(readme.codec(), cids::RAW);

    // Sealed: read-only, executables stay executable, symlinks untouched and not followed.
    seal(&out).unwrap();
    assert_eq!(mode(&out), 0o555);
    assert_eq!(mode(&out.join("share/doc")), 0o555);
    assert_eq!(mode(&out.join("bin/tool")), 0o555);
    assert_eq!(mode(&out.join("share/doc/README")), 0o444);
    assert_eq!(mode(&out.join("share/empty-file")), 0o444);
    assert_eq!(import_tree(&mut NullSink, &out).unwrap().cid, root.cid);
    // Writable again so the temporary directory can be removed.
    for d in ["", "bin", "share", "share/doc", "share/doc/empty"] {
        chmod(&out.join(d), 0o755);
    }
}

#[test]
fn seal_does_not_follow_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::write(&outside, b"x").unwrap();
    chmod(&outside, 0o644);
    fs::create_dir(dir.path().join("t")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.path().join("t/link")).unwrap();
    seal(&dir.path().join("t")).unwrap();
    assert_eq!(mode(&outside), 0o644);
    assert_eq!(mode(&dir.path().join("t")), 0o555);
    chmod(&dir.path().join("t"), 0o755);
    // A symlink as the root is left alone too.
    seal(&dir.path().join("t/link")).unwrap();
    assert_eq!(mode(&outside), 0o644);
}

#[test]
fn only_the_execute_bit_changes_a_cid() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    fs::write(&f, b"same bytes").unwrap();
    let cid_with = |m: u32| {
        chmod(&f, m);
        tree::hash_path(&f).unwrap()
    };
    let plain = cid_with(0o644);
    assert_eq!(cid_with(0o600), plain);
    assert_eq!(cid_with(0o664), plain);
    assert_eq!(cid_with(0o400), plain);
    assert_eq!(
        plain,
        import::import_bytes(&mut NullSink, b"same bytes", &tree::options())
            .unwrap()
            .cid
    );
    let exec = cid_with(0o755);
    assert_ne!(exec, plain);
    assert_eq!(cid_with(0o700), exec);
    assert_eq!(cid_with(0o711), exec);
    assert_eq!(cid_with(0o744), exec);
    assert_eq!(cid_with(0o645), exec);
    // A directory's own mode is never recorded.
    let d = dir.path().join("d");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("x"), b"x").unwrap();
    chmod(&d, 0o700);
    let a = tree::hash_path(&d).unwrap();
    chmod(&d, 0o755);
    assert_eq!(tree::hash_path(&d).unwrap(), a);
}

/// A directory node with one entry named `name`, built by hand (the importer would never
/// make one with such a name from a file system).
fn dir_with(blocks: &mut MemoryBlocks, name: &str) -> cid::Cid {
    let file = import::import_bytes(blocks, b"evil", &tree::options()).unwrap();
    let node = PbNode {
        links: vec![PbLink {
            cid: file.cid,
            name: name.to_string(),
            tsize: file.tsize,
        }],
        data: Some(UnixfsData::new(DataType::Directory).encode()),
    };
    let bytes = node.encode();
    let cid = cids::cid_of(cid::Version::V1, cids::DAG_PB, &bytes);
    kiln_core::BlockSink::put(blocks, &cid, &bytes, &[file.cid]).unwrap();
    cid
}

#[test]
fn unsafe_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["..", ".", "", "a/b", "../../escape", "nul\0byte"] {
        let mut blocks = MemoryBlocks::default();
        let bad = dir_with(&mut blocks, name);
        // Nested one level down too, so the check is not only at the top.
        let outer = import::build_directory(
            &mut blocks,
            vec![DirEntry {
                name: "inner".into(),
                cid: bad,
                tsize: 0,
            }],
            &tree::options(),
        )
        .unwrap();
        for (cid, what) in [(bad, "top"), (outer.cid, "nested")] {
            let out = dir.path().join(format!("out-{what}"));
            let err = materialize(&blocks, &cid, &out).unwrap_err();
            assert!(
                matches!(&err, Error::UnsafeName { name: n, dir } if n == name && *dir == bad),
                "{name:?} {what}: {err}"
            );
            assert!(err.to_string().contains("unsafe entry name"), "{err}");
            // Nothing was written inside the directory with the bad entry, nor beside it.
            let bad_dir = if what == "top" {
                out.clone()
            } else {
                out.join("inner")
            };
            assert!(!bad_dir.exists(), "{name:?} {what}");
            assert!(!dir.path().join("escape").exists());
            if out.exists() {
                fs::remove_dir_all(&out).unwrap();
            }
        }
    }
}

#[test]
fn destination_must_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let mut blocks = MemoryBlocks::default();
    let f = import::import_bytes(&mut blocks, b"data", &tree::options()).unwrap();
    let existing = dir.path().join("existing");
    fs::write(&existing, b"keep").unwrap();
    let err = materialize(&blocks, &f.cid, &existing).unwrap_err();
    assert!(matches!(err, Error::Write { .. }), "{err}");
    assert_eq!(fs::read(&existing).unwrap(), b"keep");
    // Not through a symlink either, even a dangling one.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
    assert!(materialize(&blocks, &f.cid, &link).is_err());
    assert!(!dir.path().join("target").exists());
    // A missing block names the CID.
    let empty = MemoryBlocks::default();
    let err = materialize(&empty, &f.cid, &dir.path().join("new")).unwrap_err();
    assert!(err.to_string().contains(&f.cid.to_string()), "{err}");
}

#[test]
fn too_deep_is_refused() {
    let mut blocks = MemoryBlocks::default();
    let mut cur = import::build_directory(&mut blocks, vec![], &tree::options()).unwrap();
    for _ in 0..kiln_build::content::MAX_DEPTH + 1 {
        cur = import::build_directory(
            &mut blocks,
            vec![DirEntry::new("d", &cur)],
            &tree::options(),
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let err = materialize(&blocks, &cur.cid, &dir.path().join("deep")).unwrap_err();
    assert!(matches!(err, Error::TooDeep { .. }), "{err}");
}
