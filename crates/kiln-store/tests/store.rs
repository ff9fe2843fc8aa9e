//! Functional tests of the embedded store: real files in temporary directories.

mod common;

use common::*;
use kiln_store::{Cid, Error, NewPin, PinMode, PinOwner, PinStatus, Store};
use multihash::Multihash;

/// A pin of the local administrator.
fn pin(mode: PinMode, name: Option<&str>) -> kiln_store::NewPin {
    kiln_store::NewPin::new(local(), mode).named(name)
}

fn local() -> kiln_store::PinOwner {
    kiln_store::PinOwner::new("local").unwrap()
}

fn put_all(store: &Store, blocks: &[Block], pinned: Option<(Cid, PinMode)>) {
    let mut s = store.session().unwrap();
    for (c, d, l) in blocks {
        s.put(c, d, l).unwrap();
    }
    if let Some((c, m)) = pinned {
        s.pin(&c, pin(m, None));
    }
    s.commit().unwrap();
}

#[test]
fn put_get_roundtrip_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("a");
    put_all(&store, &blocks, None);
    for (c, d, l) in &blocks {
        assert_eq!(store.get(c).unwrap().as_deref(), Some(&d[..]));
        assert!(store.has(c).unwrap());
        assert_eq!(store.size(c).unwrap(), Some(d.len() as u64));
        assert_eq!(store.links(c).unwrap().as_deref(), Some(&l[..]));
    }
    assert_eq!(store.links(&root).unwrap().unwrap().len(), 3);
    let absent = raw(b"absent");
    assert_eq!(store.get(&absent).unwrap(), None);
    assert!(!store.has(&absent).unwrap());
    assert_eq!(store.size(&absent).unwrap(), None);
    assert_eq!(store.links(&absent).unwrap(), None);
    // Reopening sees the same data.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.get(&root).unwrap().as_deref(), Some(&blocks[3].1[..]));
    let st = store.stat().unwrap();
    assert_eq!(st.blocks, 4);
    assert_eq!(st.packs, 1);
}

#[test]
fn empty_block_and_large_block() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut s = store.session().unwrap();
    s.put(&raw(b""), b"", &[]).unwrap();
    s.put(&raw(&big), &big, &[]).unwrap();
    s.commit().unwrap();
    assert_eq!(store.get(&raw(b"")).unwrap(), Some(vec![]));
    assert_eq!(store.get(&raw(&big)).unwrap(), Some(big));
}

#[test]
fn dedup_within_and_across_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let data = vec![42u8; 100_000];
    let c = raw(&data);
    let mut s = store.session().unwrap();
    s.put(&c, &data, &[]).unwrap();
    s.put(&c, &data, &[]).unwrap();
    s.commit().unwrap();
    let before = store.stat().unwrap();
    let mut s = store.session().unwrap();
    s.put(&c, &data, &[]).unwrap();
    s.commit().unwrap();
    let after = store.stat().unwrap();
    assert_eq!(after.blocks, 1);
    assert_eq!(
        before.pack_bytes, after.pack_bytes,
        "no bytes written for a duplicate"
    );
    // CIDv0 and CIDv1 of the same multihash name the same block.
    let v0 = Cid::new_v0(c.hash().to_owned()).unwrap();
    assert_eq!(store.get(&v0).unwrap(), Some(data));
}

#[test]
fn identity_cids_are_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = Cid::new_v1(RAW, Multihash::wrap(0x00, b"inline").unwrap());
    assert_eq!(store.get(&id).unwrap().as_deref(), Some(&b"inline"[..]));
    assert!(store.has(&id).unwrap());
    assert_eq!(store.size(&id).unwrap(), Some(6));
    let mut s = store.session().unwrap();
    s.put(&id, b"inline", &[]).unwrap();
    s.pin(&id, pin(PinMode::Recursive, None));
    s.commit().unwrap();
    assert_eq!(store.stat().unwrap().blocks, 0);
    assert_eq!(store.pin_status(&id).unwrap(), Some(PinStatus::Recursive));
    // bafkqaaa: the empty identity CID.
    let empty: Cid = "bafkqaaa".parse().unwrap();
    assert_eq!(store.get(&empty).unwrap(), Some(vec![]));
}

#[test]
fn identity_node_links_protect_children() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let leaf = b"child of an inline node".to_vec();
    let leaf_cid = raw(&leaf);
    let inline = Cid::new_v1(DAG_PB, Multihash::wrap(0x00, b"tiny node").unwrap());
    let mut s = store.session().unwrap();
    s.put(&leaf_cid, &leaf, &[]).unwrap();
    s.put(&inline, b"tiny node", &[leaf_cid]).unwrap();
    s.pin(&inline, pin(PinMode::Recursive, None));
    s.commit().unwrap();
    assert_eq!(store.links(&inline).unwrap(), Some(vec![leaf_cid]));
    store.gc().unwrap();
    assert_eq!(store.get(&leaf_cid).unwrap(), Some(leaf));
}

#[test]
fn put_verified_checks_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let c = raw(b"good");
    let mut s = store.session().unwrap();
    match s.put_verified(&c, b"evil", &[]) {
        Err(Error::HashMismatch(bad)) => assert_eq!(bad, c),
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    let blake = Cid::new_v1(RAW, Multihash::wrap(0x1e, &[0u8; 32]).unwrap());
    assert!(matches!(
        s.put_verified(&blake, b"x", &[]),
        Err(Error::UnsupportedHash { code: 0x1e, .. })
    ));
    // The session is still usable.
    s.put_verified(&c, b"good", &[]).unwrap();
    s.commit().unwrap();
    assert!(store.has(&c).unwrap());
    assert!(
        Error::HashMismatch(c).to_string().contains(&c.to_string()),
        "message names the CID"
    );
}

#[test]
fn pins_recursive_direct_and_rm() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("p");
    put_all(&store, &blocks, None);
    store
        .pin_add(&root, &pin(PinMode::Recursive, Some("docs")))
        .unwrap();
    let leaf = blocks[0].0;
    store.pin_add(&leaf, &pin(PinMode::Direct, None)).unwrap();
    let pins = store.pins().unwrap();
    assert_eq!(pins.len(), 2);
    assert_eq!(pins[0].cid, root);
    assert_eq!(pins[0].mode, PinMode::Recursive);
    assert_eq!(pins[0].name.as_deref(), Some("docs"));
    assert_eq!(store.pin_status(&root).unwrap(), Some(PinStatus::Recursive));
    assert_eq!(store.pin_status(&leaf).unwrap(), Some(PinStatus::Direct));
    assert_eq!(
        store.pin_status(&blocks[1].0).unwrap(),
        Some(PinStatus::Indirect { via: root })
    );
    assert!(matches!(
        store.pin_add(&root, &pin(PinMode::Direct, None)),
        Err(Error::AlreadyPinnedRecursively(_))
    ));
    // Upgrading direct -> recursive works.
    store
        .pin_add(&leaf, &pin(PinMode::Recursive, None))
        .unwrap();
    assert_eq!(store.pin_status(&leaf).unwrap(), Some(PinStatus::Recursive));
    store.pin_rm(&root, &local()).unwrap();
    assert!(matches!(store.pin_rm(&root, &local()), Err(Error::NotPinned(c)) if c == root));
    assert_eq!(store.pin_status(&blocks[1].0).unwrap(), None);
    assert_eq!(store.pins().unwrap().len(), 1);
}

/// The defect issue 10 names: a root file system's pin was gone after a user pinned and
/// unpinned the same root. Each owner holds its own pin; unpinning takes only the caller's.
#[test]
fn a_cid_holds_pins_of_several_owners_and_unpinning_takes_only_the_callers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("owners");
    put_all(&store, &blocks, None);
    let leaf = blocks[0].0;
    let rootfs = PinOwner::new("rootfs").unwrap();
    let alice = PinOwner::new("did:key:z6MkAlice").unwrap();
    store
        .pin_add(
            &root,
            &NewPin::new(rootfs.clone(), PinMode::Recursive).named(Some("t")),
        )
        .unwrap();
    let mine = store
        .pin_add(&root, &pin(PinMode::Recursive, Some("mine")))
        .unwrap();
    // Pinning again is the same pin of that owner (kubo's semantics, per owner).
    assert_eq!(
        store
            .pin_add(&root, &pin(PinMode::Recursive, None))
            .unwrap(),
        mine
    );
    assert!(matches!(
        store.pin_add(&root, &pin(PinMode::Direct, None)),
        Err(Error::AlreadyPinnedRecursively(_))
    ));
    // Another owner may hold it directly beside the others' recursive pins.
    let mut meta = NewPin::new(alice.clone(), PinMode::Direct);
    meta.meta.insert("app".into(), "ci".into());
    store.pin_add(&root, &meta).unwrap();
    let of = store.pins_of(&root).unwrap();
    let owners: Vec<&str> = of.iter().map(|p| p.owner.as_str()).collect();
    assert_eq!(owners, ["rootfs", "local", "did:key:z6MkAlice"]);
    assert_eq!(of[0].name.as_deref(), Some("t"));
    assert_eq!(of[1].name.as_deref(), Some("mine"));
    assert_eq!(of[2].meta.get("app").map(String::as_str), Some("ci"));
    assert!(of[0].meta.is_empty());
    assert_eq!(store.pins().unwrap().len(), 3);

    // The user's unpin leaves the root file system's pin (and alice's).
    let done = store.pin_rm(&root, &local()).unwrap();
    assert_eq!(done.removed.len(), 1);
    assert_eq!(done.removed[0].name.as_deref(), Some("mine"));
    let left: Vec<&str> = done.remaining.iter().map(|p| p.owner.as_str()).collect();
    assert_eq!(left, ["rootfs", "did:key:z6MkAlice"]);
    match store.pin_rm(&root, &local()) {
        Err(e @ Error::NotPinnedBy { .. }) => {
            let m = e.to_string();
            assert!(m.contains("has no pin of local"), "{m}");
            assert!(m.contains("pinned by rootfs, did:key:z6MkAlice"), "{m}");
        }
        other => panic!("expected NotPinnedBy, got {other:?}"),
    }
    store.gc().unwrap();
    assert!(
        store.get(&leaf).unwrap().is_some(),
        "the rootfs pin keeps the DAG"
    );
    assert_eq!(store.pin_status(&root).unwrap(), Some(PinStatus::Recursive));

    // Without the recursive pin only alice's direct one is left: the root stays, the rest goes.
    store.pin_rm(&root, &rootfs).unwrap();
    assert_eq!(store.pin_status(&root).unwrap(), Some(PinStatus::Direct));
    store.gc().unwrap();
    assert!(store.get(&root).unwrap().is_some());
    assert!(store.get(&leaf).unwrap().is_none());

    // Everyone's pins at once; the metadata goes with its pin.
    let all = store.pin_rm_all(&root).unwrap();
    assert_eq!(all.removed.len(), 1);
    assert!(all.remaining.is_empty());
    assert!(matches!(store.pin_rm_all(&root), Err(Error::NotPinned(_))));
    store
        .pin_add(&root, &NewPin::new(alice, PinMode::Direct))
        .unwrap();
    assert!(store.pins_of(&root).unwrap()[0].meta.is_empty());
}

#[test]
fn pin_owners_are_checked() {
    for bad in ["", "a b", "x\n", "tab\there", &"o".repeat(257)] {
        assert!(
            matches!(PinOwner::new(bad), Err(Error::InvalidOwner(_))),
            "{bad:?}"
        );
    }
    assert_eq!(PinOwner::new("schedule:3").unwrap().as_str(), "schedule:3");
}

/// A store written by a newer kiln (a schema version this one does not know) is refused
/// with both versions named, and left as it was.
#[test]
fn a_store_from_a_newer_kiln_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let db = dir.path().join("store.db");
    let newest = kiln_store::schema::newest_store_version();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", newest + 1)
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    match Store::open(dir.path(), kiln_store::StoreOptions::default()) {
        Err(e @ Error::NewerSchema { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains(&format!("schema version {}", newest + 1))
                    && m.contains(&format!("({newest})"))
                    && m.contains("written by a newer kiln"),
                "{m}"
            );
        }
        Err(e) => panic!("expected NewerSchema, got {e}"),
        Ok(_) => panic!("a newer store was opened"),
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing was written");
}

#[test]
fn incomplete_dag_cannot_be_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("inc");
    let missing = blocks[2].0;
    // Outside a session.
    let partial: Vec<_> = blocks.iter().filter(|b| b.0 != missing).cloned().collect();
    put_all(&store, &partial, None);
    match store.pin_add(&root, &pin(PinMode::Recursive, None)) {
        Err(Error::MissingBlock {
            missing: m,
            root: r,
        }) => {
            assert_eq!((m, r), (missing, root));
        }
        other => panic!("expected MissingBlock, got {other:?}"),
    }
    assert!(store.pins().unwrap().is_empty());
    // A direct pin needs only the root; a missing root is refused.
    store.pin_add(&root, &pin(PinMode::Direct, None)).unwrap();
    assert!(matches!(
        store.pin_add(&raw(b"nope"), &pin(PinMode::Direct, None)),
        Err(Error::MissingBlock { .. })
    ));

    // Inside a session: the commit fails and nothing of its last batch is visible.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = open(dir2.path());
    let mut s = store2.session().unwrap();
    for (c, d, l) in &partial {
        s.put(c, d, l).unwrap();
    }
    s.pin(&root, pin(PinMode::Recursive, None));
    match s.commit() {
        Err(Error::MissingBlock { missing: m, .. }) => assert_eq!(m, missing),
        other => panic!("expected MissingBlock, got {other:?}"),
    }
    assert!(store2.pins().unwrap().is_empty());
    assert!(!store2.has(&root).unwrap());
}

#[test]
fn gc_removes_unpinned_keeps_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (keep, keep_blocks) = small_dag("keep");
    let (drop_root, drop_blocks) = small_dag("drop");
    let direct_data = b"direct".to_vec();
    let direct = raw(&direct_data);
    put_all(&store, &keep_blocks, Some((keep, PinMode::Recursive)));
    put_all(&store, &drop_blocks, None);
    put_all(
        &store,
        &[(direct, direct_data.clone(), vec![])],
        Some((direct, PinMode::Direct)),
    );
    let report = store.gc().unwrap();
    assert_eq!(report.blocks_removed, 4);
    for (c, d, _) in &keep_blocks {
        assert_eq!(store.get(c).unwrap().as_ref(), Some(d));
    }
    assert_eq!(store.get(&direct).unwrap(), Some(direct_data));
    for (c, ..) in &drop_blocks {
        assert!(!store.has(c).unwrap(), "{c} should be gone");
    }
    assert!(!store.has(&drop_root).unwrap());
    // A second GC finds nothing.
    assert_eq!(store.gc().unwrap().blocks_removed, 0);
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn remove_block_respects_pins() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("rm");
    put_all(&store, &blocks, Some((root, PinMode::Recursive)));
    let leaf = blocks[0].0;
    match store.remove_block(&leaf) {
        Err(Error::Pinned {
            status: PinStatus::Indirect { via },
            ..
        }) => assert_eq!(via, root),
        other => panic!("expected Pinned, got {other:?}"),
    }
    assert!(matches!(
        store.remove_block(&root),
        Err(Error::Pinned { .. })
    ));
    store.pin_rm(&root, &local()).unwrap();
    store.remove_block(&leaf).unwrap();
    assert!(!store.has(&leaf).unwrap());
    assert!(matches!(store.remove_block(&leaf), Err(Error::NotFound(_))));
}

#[test]
fn gc_compaction_keeps_data_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small_opts()).unwrap();
    let mut all = Vec::new();
    let mut s = store.session().unwrap();
    for i in 0..400u32 {
        let mut d = i.to_le_bytes().to_vec();
        d.extend((0..4000u32).map(|j| (i * 31 + j) as u8));
        let c = raw(&d);
        s.put(&c, &d, &[]).unwrap();
        if i % 10 == 0 {
            s.pin(&c, pin(PinMode::Direct, None));
        }
        all.push((c, d));
    }
    s.commit().unwrap();
    let before = store.stat().unwrap();
    assert!(before.packs > 3, "small packs roll over: {before:?}");
    let report = store.gc().unwrap();
    assert_eq!(report.blocks_removed, 360);
    assert!(report.packs_rewritten > 0, "{report:?}");
    let after = store.stat().unwrap();
    assert!(
        after.pack_bytes < before.pack_bytes / 4,
        "{before:?} -> {after:?}"
    );
    for (i, (c, d)) in all.iter().enumerate() {
        let got = store.get(c).unwrap();
        if i % 10 == 0 {
            assert_eq!(got.as_ref(), Some(d));
        } else {
            assert_eq!(got, None);
        }
    }
    assert!(store.verify().unwrap().is_ok());
    // Small packs merged; GC again is stable.
    store.gc().unwrap();
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn verify_detects_corruption_and_missing_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("v");
    put_all(&store, &blocks, Some((root, PinMode::Recursive)));
    let ok = store.verify().unwrap();
    assert!(ok.is_ok());
    assert_eq!(ok.blocks_ok, 4);

    // Flip one byte of a leaf's data inside the pack file.
    let pack = std::fs::read_dir(dir.path().join("packs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&pack).unwrap();
    let needle = &blocks[1].1;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == &needle[..])
        .unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&pack, &bytes).unwrap();

    // Drop another leaf's index row behind the store's back.
    let db = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
    db.execute(
        "DELETE FROM blocks WHERE mh = ?1",
        [blocks[2].0.hash().to_bytes()],
    )
    .unwrap();
    drop(db);

    let report = store.verify().unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.corrupt, vec![blocks[1].0]);
    assert_eq!(report.missing.len(), 1);
    assert_eq!(report.missing[0].cid, blocks[2].0);
    assert_eq!(report.missing[0].pin, root);
}

#[test]
fn live_session_protects_its_blocks_from_gc() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let other = open(dir.path());
    let (root, blocks) = small_dag("live");
    let mut s = store.session().unwrap();
    for (c, d, l) in &blocks {
        s.put(c, d, l).unwrap();
    }
    s.flush().unwrap();
    // Another handle (as another process would) collects garbage while the session is open.
    assert_eq!(other.gc().unwrap().blocks_removed, 0);
    s.pin(&root, pin(PinMode::Recursive, None));
    s.commit().unwrap();
    assert_eq!(other.gc().unwrap().blocks_removed, 0);
    assert!(other.verify().unwrap().is_ok());
}

#[test]
fn duplicate_put_survives_gc_of_the_old_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("dup");
    put_all(&store, &blocks, None); // stored, unpinned
    let mut s = store.session().unwrap();
    for (c, d, l) in &blocks {
        s.put(c, d, l).unwrap(); // all duplicates, buffered
    }
    // GC runs before the session flushes: the old copies are garbage by then... except that
    // the live session must keep them (or rewrite them at flush).
    store.gc().unwrap();
    s.pin(&root, pin(PinMode::Recursive, None));
    s.commit().unwrap();
    store.gc().unwrap();
    for (c, d, _) in &blocks {
        assert_eq!(store.get(c).unwrap().as_ref(), Some(d));
    }
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn dropped_session_leaves_store_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("abandon");
    let mut s = store.session().unwrap();
    s.put(&blocks[0].0, &blocks[0].1, &[]).unwrap();
    s.flush().unwrap();
    s.put(&blocks[1].0, &blocks[1].1, &[]).unwrap();
    s.pin(&root, pin(PinMode::Recursive, None));
    drop(s);
    assert!(store.has(&blocks[0].0).unwrap(), "flushed block visible");
    assert!(
        !store.has(&blocks[1].0).unwrap(),
        "unflushed block invisible"
    );
    assert!(store.pins().unwrap().is_empty());
    let r = store.gc().unwrap();
    assert_eq!(r.blocks_removed, 1);
    assert_eq!(store.stat().unwrap().packs, 0, "{r:?}");
}

#[test]
fn garbage_after_last_record_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("tail");
    put_all(&store, &blocks, Some((root, PinMode::Recursive)));
    let pack = std::fs::read_dir(dir.path().join("packs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&pack)
        .unwrap();
    std::io::Write::write_all(&mut f, b"torn half-written record").unwrap();
    drop(f);
    let store = open(dir.path());
    assert!(store.verify().unwrap().is_ok());
    put_all(&store, &small_dag("more").1, None);
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn shared_links_and_duplicate_children() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let leaf = b"same".to_vec();
    let lc = raw(&leaf);
    let (a, ad) = node("a", &[lc, lc]);
    let (b, bd) = node("b", &[a, lc]);
    let mut s = store.session().unwrap();
    s.put(&lc, &leaf, &[]).unwrap();
    s.put(&a, &ad, &[lc, lc]).unwrap();
    s.put(&b, &bd, &[a, lc]).unwrap();
    s.pin(&b, pin(PinMode::Recursive, None));
    s.commit().unwrap();
    assert_eq!(store.links(&a).unwrap(), Some(vec![lc, lc]));
    // Same bytes put again under another codec with other links: links are merged.
    let extra = raw(b"extra");
    let mut s = store.session().unwrap();
    s.put(&extra, b"extra", &[]).unwrap();
    let a_raw = Cid::new_v1(RAW, a.hash().to_owned());
    s.put(&a_raw, &ad, &[lc, extra]).unwrap();
    s.commit().unwrap();
    assert_eq!(store.links(&a).unwrap(), Some(vec![lc, lc, extra]));
    store.gc().unwrap();
    assert!(store.has(&extra).unwrap());
}

/// The journal's entries commit with the change they describe, or not at all.
#[test]
fn journal_entries_commit_with_their_change_or_not_at_all() {
    use kiln_store::journal::{Entry, Query};
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let all = |s: &Store| s.events(&Query::default()).unwrap();
    let (root, blocks) = small_dag("journal");

    // A session whose commit fails (a recursive pin of an incomplete DAG) records nothing.
    let mut s = store.session().unwrap();
    s.put(&blocks[0].0, &blocks[0].1, &blocks[0].2).unwrap();
    s.pin(&root, pin(PinMode::Recursive, None));
    s.record(Entry::ok("local", "cli", "add", root.to_string()));
    assert!(s.commit().is_err());
    assert!(all(&store).is_empty());

    // A session that commits records its entry with its blocks and pins.
    let mut s = store.session().unwrap();
    for (c, d, l) in &blocks {
        s.put(c, d, l).unwrap();
    }
    s.pin(&root, pin(PinMode::Recursive, None));
    s.record(Entry::ok("local", "cli", "add", root.to_string()).detail("pinned"));
    // Not yet visible: it is staged with the pin.
    assert!(all(&store).is_empty());
    s.commit().unwrap();
    let ev = all(&store);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].entry.action, "add");
    assert_eq!(ev[0].entry.detail, "pinned");
    assert!(ev[0].entry.ok);

    // A pin that cannot be made (the block is absent) records nothing; one that is made does.
    let absent = raw(b"not stored");
    let e = Entry::ok("local", "rpc", "pin", absent.to_string());
    assert!(
        store
            .pin_add_recorded(&absent, &pin(PinMode::Direct, None), &e)
            .is_err()
    );
    assert_eq!(all(&store).len(), 1);
    let other = PinOwner::new("rootfs").unwrap();
    store
        .pin_add_recorded(
            &root,
            &NewPin::new(other.clone(), PinMode::Recursive),
            &Entry::ok("local", "cli", "pin", root.to_string()),
        )
        .unwrap();
    // An unpin's entry is made from what it removed and what remains.
    let done = store
        .pin_rm_recorded(&root, Some(&local()), &|u| {
            Entry::ok("local", "cli", "unpin", root.to_string()).detail(format!(
                "{} removed, {} left",
                u.removed.len(),
                u.remaining.len()
            ))
        })
        .unwrap();
    assert_eq!(done.remaining.len(), 1);
    let ev = all(&store);
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[2].entry.detail, "1 removed, 1 left");
    // Not pinned by that owner any more: an error, and no entry.
    assert!(
        store
            .pin_rm_recorded(&root, Some(&local()), &|_| Entry::ok("x", "y", "z", ""))
            .is_err()
    );
    assert_eq!(all(&store).len(), 3);

    // Reading: after a number, newest first with a limit; pruning by age.
    let q = Query {
        after: Some(ev[0].id),
        ..Query::default()
    };
    assert_eq!(store.events(&q).unwrap().len(), 2);
    let q = Query {
        limit: Some(1),
        newest_first: true,
        ..Query::default()
    };
    assert_eq!(store.events(&q).unwrap()[0].id, ev[2].id);
    // By who and by action.
    for (who, action) in [(Some("nobody"), None), (None, Some("no such action"))] {
        let q = Query {
            who: who.map(str::to_string),
            action: action.map(str::to_string),
            ..Query::default()
        };
        assert!(store.events(&q).unwrap().is_empty());
    }
    let first = &ev[0].entry;
    let q = Query {
        who: Some(first.who.clone()),
        action: Some(first.action.clone()),
        ..Query::default()
    };
    let found = store.events(&q).unwrap();
    assert!(!found.is_empty());
    assert!(
        found
            .iter()
            .all(|e| e.entry.who == first.who && e.entry.action == first.action)
    );
    assert_eq!(store.last_event().unwrap(), ev[2].id);
    assert_eq!(store.prune_events(std::time::UNIX_EPOCH).unwrap(), 0);
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    assert_eq!(store.prune_events(later).unwrap(), 3);
    // Numbers are never reused.
    let id = store.record(&Entry::ok("local", "cli", "gc", "")).unwrap();
    assert!(id > ev[2].id);
}

/// A store as the previous kiln left it (schema 2: pins with owners, no journal) opens
/// migrated to the newest in one step, its pins and blocks kept, its journal empty.
#[test]
fn a_schema_2_store_gains_the_journal_and_keeps_its_pins() {
    let dir = tempfile::tempdir().unwrap();
    let (root, blocks) = small_dag("two");
    {
        let store = open(dir.path());
        put_all(&store, &blocks, Some((root, PinMode::Recursive)));
    }
    // Back to version 2, as the earlier kiln wrote it: without what versions 3 (the
    // journal), 4 (users), 5 (tokens), 6 (quotas), 7 (pin requests), 8 (invites) and 9 (pin
    // namespaces) added.
    {
        let c = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
        c.execute_batch(
            "DROP TABLE events; DROP TABLE users; DROP TABLE grants; DROP TABLE tokens; DROP TABLE revoked; DROP TABLE quotas;
             DROP TRIGGER pin_requests_lose_pin; DROP TABLE pin_requests; DROP TABLE invites;
             ALTER TABLE pins DROP COLUMN namespace;
             UPDATE state SET schema = 2 WHERE id = 1; PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let store = open(dir.path());
    let m = store.migrated();
    assert_eq!(
        (m.from, m.to),
        (2, kiln_store::schema::newest_store_version())
    );
    let pins = store.pins().unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(
        pins[0].namespace, "default",
        "an earlier pin is in the default namespace"
    );
    assert!(store.get(&blocks[0].0).unwrap().is_some());
    assert!(store.events(&Default::default()).unwrap().is_empty());
    store
        .record(&kiln_store::journal::Entry::ok("local", "cli", "gc", ""))
        .unwrap();
}

/// Pin requests: unique, newest-first `created`; pinned only once the whole DAG is here,
/// with a pin of their own that the owner's plain `pin rm` leaves; replaced without a gap;
/// removed with their pin; a pin taken from under a request marks it failed.
#[test]
fn pin_requests_hold_pins_of_their_own() {
    use kiln_store::requests::{NewRequest, RequestQuery, RequestStatus};
    use kiln_store::{NewPin, PinOwner, journal::Entry};
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("req");
    let alice = PinOwner::new("did:key:alice").unwrap();
    let entry = || Entry::ok("did:key:alice", "psa", "pin request", "");
    let new = |id: &str, cid: Cid| NewRequest {
        id: id.into(),
        owner: alice.clone(),
        namespace: "default".into(),
        cid,
        name: Some(format!("name-{id}")),
        origins: vec!["/dns4/example.org/tcp/443/https".into()],
        meta: [("k".to_string(), "v\tw".to_string())]
            .into_iter()
            .collect(),
    };
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(
            store
                .request_add(&new(&format!("r{i}"), root), &entry())
                .unwrap(),
        );
    }
    for w in made.windows(2) {
        assert!(w[1].created_ms > w[0].created_ms, "created must be unique");
    }
    assert_eq!(made[0].status, RequestStatus::Queued);
    assert_eq!(made[0].meta["k"], "v\tw");
    let listed = store.requests(&alice, &RequestQuery::default()).unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r4", "r3", "r2", "r1", "r0"]
    );
    let before = RequestQuery {
        before_ms: Some(made[2].created_ms),
        ..RequestQuery::default()
    };
    assert_eq!(store.requests(&alice, &before).unwrap().len(), 2);
    let bob = PinOwner::new("did:key:bob").unwrap();
    assert!(
        store
            .requests(&bob, &RequestQuery::default())
            .unwrap()
            .is_empty()
    );

    // Not here yet: pinning fails and changes nothing.
    assert!(store.request_pin("r0", None, &entry()).is_err());
    assert_eq!(
        store.request("r0").unwrap().unwrap().status,
        RequestStatus::Queued
    );
    put_all(&store, &blocks, None);
    let r0 = store.request_pin("r0", None, &entry()).unwrap().unwrap();
    assert_eq!(r0.status, RequestStatus::Pinned);
    let pin = r0.pin.unwrap();
    // The owner's own plain pin of the same CID is another pin; its plain unpin leaves the
    // request's.
    store
        .pin_add(&root, &NewPin::new(alice.clone(), PinMode::Recursive))
        .unwrap();
    assert_eq!(store.pins().unwrap().len(), 2);
    store.pin_rm(&root, &alice).unwrap();
    let left = store.pins().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, pin);
    assert!(store.pin_rm(&root, &alice).is_err());

    // Replacing keeps the old pin until the new request is pinned.
    let r5 = store
        .request_replace("r0", &new("r5", root), &entry())
        .unwrap()
        .unwrap();
    assert!(store.request("r0").unwrap().is_none());
    assert_eq!(r5.replaces, Some(pin));
    assert!(r5.created_ms > made[4].created_ms);
    assert_eq!(store.pins().unwrap().len(), 1);
    let r5 = store.request_pin("r5", None, &entry()).unwrap().unwrap();
    let pins = store.pins().unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(Some(pins[0].id), r5.pin);

    // Removing a request removes its pin.
    store.request_rm("r5", &entry()).unwrap().unwrap();
    assert!(store.pins().unwrap().is_empty());
    assert!(store.request_rm("r5", &entry()).unwrap().is_none());

    // Over the quota: nothing pinned.
    assert!(matches!(
        store.request_pin("r1", Some(1), &entry()),
        Err(kiln_store::Error::QuotaExceeded { .. })
    ));
    assert!(store.pins().unwrap().is_empty());
    // A pin taken from under its request (every owner's pins removed) marks it failed.
    store.request_pin("r1", None, &entry()).unwrap();
    store.pin_rm_all(&root).unwrap();
    let r1 = store.request("r1").unwrap().unwrap();
    assert_eq!(r1.status, RequestStatus::Failed);
    assert!(r1.info["reason"].contains("removed"));
    // Waiting ones, oldest first; a status change applies only while waiting.
    let waiting: Vec<String> = store
        .requests_waiting()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(waiting, ["r2", "r3", "r4"]);
    let info = [("reason".to_string(), "gave up".to_string())]
        .into_iter()
        .collect();
    assert!(
        store
            .request_status("r2", RequestStatus::Failed, &info)
            .unwrap()
    );
    assert!(
        !store
            .request_status("r2", RequestStatus::Pinning, &info)
            .unwrap()
    );
}

/// A pin lives in a namespace; an owner's pin of a CID in one, so pinning it again in
/// another is refused (and changes nothing), while another owner may pin it anywhere.
#[test]
fn a_pin_lives_in_one_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (root, blocks) = small_dag("ns");
    put_all(&store, &blocks, None);
    let ci = PinOwner::new("did:key:ci").unwrap();
    store
        .pin_add(
            &root,
            &NewPin::new(ci.clone(), PinMode::Recursive).in_namespace("ci"),
        )
        .unwrap();
    // Again in the same namespace: fine (it updates the pin).
    store
        .pin_add(
            &root,
            &NewPin::new(ci.clone(), PinMode::Recursive)
                .in_namespace("ci")
                .named(Some("again")),
        )
        .unwrap();
    match store.pin_add(&root, &NewPin::new(ci.clone(), PinMode::Recursive)) {
        Err(Error::PinnedElsewhere { namespace, .. }) => assert_eq!(namespace, "ci"),
        other => panic!("expected PinnedElsewhere, got {other:?}"),
    }
    let other = PinOwner::new("did:key:other").unwrap();
    store
        .pin_add(&root, &NewPin::new(other, PinMode::Recursive))
        .unwrap();
    let pins = store.pins_of(&root).unwrap();
    let seen: Vec<(&str, &str, Option<&str>)> = pins
        .iter()
        .map(|p| (p.owner.as_str(), p.namespace.as_str(), p.name.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("did:key:ci", "ci", Some("again")),
            ("did:key:other", "default", None)
        ]
    );
}
