//! Concurrency and crash-safety: GC racing with writers; kill -9 of a writing process.

mod common;
#[path = "../../../tests/support/needs.rs"]
mod needs;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use kiln_store::{Cid, Error, PinMode, Store};

/// A pin of the local administrator.
fn pin(mode: PinMode, name: Option<&str>) -> kiln_store::NewPin {
    kiln_store::NewPin::new(local(), mode).named(name)
}

fn local() -> kiln_store::PinOwner {
    kiln_store::PinOwner::new("local").unwrap()
}

/// A DAG of `n` leaves of `size` bytes under one root, unique per `tag`.
fn dag(tag: &str, n: usize, size: usize) -> (Cid, Vec<Block>) {
    let mut blocks = Vec::new();
    let mut leaves = Vec::new();
    for i in 0..n {
        let mut d = format!("{tag}/{i}/").into_bytes();
        d.resize(size, (i % 251) as u8);
        let c = raw(&d);
        leaves.push(c);
        blocks.push((c, d, vec![]));
    }
    let (root, data) = node(tag, &leaves);
    blocks.push((root, data, leaves));
    (root, blocks)
}

fn check_pinned_readable(store: &Store, dags: &HashMap<Cid, Vec<Block>>) {
    for pin in store.pins().unwrap() {
        if let Some(blocks) = dags.get(&pin.cid) {
            for (c, d, _) in blocks {
                let got = store.get(c).unwrap();
                assert_eq!(
                    got.as_ref(),
                    Some(d),
                    "block {c} of pinned {} lost",
                    pin.cid
                );
            }
        }
    }
}

#[test]
fn gc_in_a_loop_never_loses_pinned_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let gc_store = Store::open(dir.path(), small_opts()).unwrap();
    let gc_stop = stop.clone();
    let gc_runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let runs_seen = gc_runs.clone();
    let gc = std::thread::spawn(move || {
        let mut runs = 0;
        let mut removed = 0;
        while !gc_stop.load(Ordering::Relaxed) {
            removed += gc_store.gc().unwrap().blocks_removed;
            runs += 1;
            runs_seen.store(runs, Ordering::Relaxed);
        }
        (runs, removed)
    });

    let mut writers = Vec::new();
    for w in 0..2 {
        let store = Store::open(dir.path(), small_opts()).unwrap();
        writers.push(std::thread::spawn(move || {
            let mut dags: HashMap<Cid, Vec<Block>> = HashMap::new();
            let mut order = Vec::new();
            // Content shared by every round and writer: exercises the duplicate path.
            let (shared_root, shared) = dag("shared", 20, 300);
            for i in 0..40 {
                let (root, blocks) = dag(&format!("w{w}-{i}"), 20, 1500);
                let mut s = store.session().unwrap();
                for (c, d, l) in blocks.iter().chain(&shared) {
                    s.put(c, d, l).unwrap();
                }
                // Unpinned garbage in the same session.
                let junk = format!("junk-{w}-{i}").into_bytes();
                s.put(&raw(&junk), &junk, &[]).unwrap();
                s.pin(&root, pin(PinMode::Recursive, None));
                if i % 7 == 0 {
                    s.pin(&shared_root, pin(PinMode::Recursive, Some("shared")));
                }
                s.commit().unwrap();
                dags.insert(root, blocks);
                dags.insert(shared_root, shared.clone());
                order.push(root);
                // Unpin an old DAG now and then so GC has real work.
                if i % 3 == 0 && order.len() > 4 {
                    let old = order.remove(0);
                    store.pin_rm(&old, &local()).unwrap();
                    dags.remove(&old);
                }
                // pin_add outside a session of a DAG committed unpinned: may lose the race
                // with GC (then it must say which block is missing), never half-succeed.
                let (r2, b2) = dag(&format!("late-{w}-{i}"), 3, 100);
                let mut s = store.session().unwrap();
                for (c, d, l) in &b2 {
                    s.put(c, d, l).unwrap();
                }
                s.commit().unwrap();
                match store.pin_add(&r2, &pin(PinMode::Recursive, None)) {
                    Ok(_) => {
                        dags.insert(r2, b2);
                    }
                    Err(Error::MissingBlock { root, .. }) => assert_eq!(root, r2),
                    Err(e) => panic!("pin_add: {e}"),
                }
                check_pinned_readable(&store, &dags);
            }
            dags
        }));
    }
    let mut all = HashMap::new();
    for w in writers {
        all.extend(w.join().unwrap());
    }
    // On a busy machine the writers may finish first: let GC run at least twice (a run
    // that started during the writes, and one after).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while gc_runs.load(Ordering::Relaxed) < 2 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let (runs, removed) = gc.join().unwrap();
    assert!(
        runs > 1 && removed > 0,
        "gc ran {runs} times, removed {removed}"
    );
    let store = Store::open(dir.path(), small_opts()).unwrap();
    store.gc().unwrap();
    check_pinned_readable(&store, &all);
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
}

const CHILD_ENV: &str = "KILN_STORE_CRASH_CHILD";

/// Writer process for the kill -9 test: adds and pins DAGs forever, with GC in a thread.
fn crash_child(dir: &str) {
    let store = Store::open(dir.as_ref(), small_opts()).unwrap();
    let gc_store = store.clone();
    std::thread::spawn(move || {
        loop {
            gc_store.gc().unwrap();
        }
    });
    let pid = std::process::id();
    for i in 0.. {
        let (root, blocks) = dag(&format!("c{pid}-{i}"), 30, 4000);
        let mut s = store.session().unwrap();
        for (c, d, l) in &blocks {
            s.put(c, d, l).unwrap();
        }
        s.pin(&root, pin(PinMode::Recursive, Some(&format!("{i}"))));
        s.commit().unwrap();
        if i % 4 == 3 {
            store.pin_rm(&root, &local()).unwrap();
        }
    }
}

#[test]
fn kill_9_at_any_moment_leaves_a_consistent_store() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        crash_child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut last_pins = 0;
    for round in 0..5u64 {
        let mut child = Command::new(&exe)
            .args([
                "kill_9_at_any_moment_leaves_a_consistent_store",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Let it commit a few pins, then kill it at a varying moment.
        let store = Store::open(dir.path(), small_opts()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.pins().unwrap().len() < last_pins + 3 {
            assert!(Instant::now() < deadline, "child made no progress");
            assert!(child.try_wait().unwrap().is_none(), "child exited early");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(7 * round + 3));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let report = store.verify().unwrap();
        assert!(report.is_ok(), "round {round}: {report:?}");
        for pin in store.pins().unwrap() {
            let links = store.links(&pin.cid).unwrap().expect("pinned root present");
            for c in links {
                assert!(store.get(&c).unwrap().is_some());
            }
        }
        // The dead process's session no longer protects anything; GC must cope with its
        // half-written pack.
        store.gc().unwrap();
        let report = store.verify().unwrap();
        assert!(report.is_ok(), "round {round} after gc: {report:?}");
        last_pins = store.pins().unwrap().len();
    }
}

#[test]
fn disk_full_is_a_clear_error_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_fs) = needs::Tmpfs::mount("disk_full", dir.path(), "3m") else {
        return;
    };
    let opts = kiln_store::StoreOptions {
        batch_bytes: 256 << 10,
        reserve_bytes: 256 << 10,
        ..small_opts()
    };
    let store = Store::open(dir.path(), opts.clone()).unwrap();
    let (root, blocks) = dag("before", 10, 1000);
    let mut s = store.session().unwrap();
    for (c, d, l) in &blocks {
        s.put(c, d, l).unwrap();
    }
    s.pin(&root, pin(PinMode::Recursive, None));
    s.commit().unwrap();

    // Fill the disk.
    let mut s = store.session().unwrap();
    let mut err = None;
    for i in 0..100u32 {
        let mut d = vec![(i % 251) as u8; 256 << 10];
        d[..4].copy_from_slice(&i.to_le_bytes());
        if let Err(e) = s.put(&raw(&d), &d, &[]) {
            err = Some(e);
            break;
        }
    }
    let err = match err {
        Some(e) => {
            drop(s);
            e
        }
        None => s.commit().unwrap_err(),
    };
    assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("no space left"), "{err}");

    // Consistent: the earlier pin is intact; the failed batch is invisible or complete.
    let report = store.verify().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(store.pins().unwrap().len(), 1);
    // GC gives the space back and writing works again.
    store.gc().unwrap();
    let (root2, blocks2) = dag("after", 5, 1000);
    let mut s = store.session().unwrap();
    for (c, d, l) in &blocks2 {
        s.put(c, d, l).unwrap();
    }
    s.pin(&root2, pin(PinMode::Recursive, None));
    s.commit().unwrap();
    assert!(store.verify().unwrap().is_ok());
    drop(store);
}
