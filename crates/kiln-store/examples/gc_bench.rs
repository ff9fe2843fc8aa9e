//! Build a repository of N small blocks (default 1,000,000) in DAGs shaped like UnixFS files
//! (174 links per node), pin half of them, then time `gc`, a second `gc`, `stat` and `verify`.
//!
//! ```sh
//! cargo run --release -p kiln-store --example gc_bench -- [blocks] [dir]
//! ```
//! With a `dir` that already holds a repository, the build step is skipped.

use std::time::Instant;

use kiln_store::{Cid, PinMode, Store, StoreOptions};
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// A pin of the local administrator.
fn pin(mode: PinMode, name: Option<&str>) -> kiln_store::NewPin {
    kiln_store::NewPin::new(local(), mode).named(name)
}

fn local() -> kiln_store::PinOwner {
    kiln_store::PinOwner::new("local").unwrap()
}

fn cid(codec: u64, data: &[u8]) -> Cid {
    let mh = Multihash::<64>::wrap(0x12, &Sha256::digest(data)).expect("32-byte digest fits");
    Cid::new_v1(codec, mh)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let tmp;
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };
    let fresh = !dir.join("store.db").exists();
    let store = Store::open(&dir, StoreOptions::default())?;

    if fresh {
        let t = Instant::now();
        let mut session = store.session()?;
        let mut made = 0usize;
        let mut file = 0usize;
        while made < n {
            // One "file": up to 174 leaves of 200 bytes and a root.
            let leaves_n = 174.min(n - made).max(1);
            let mut leaves = Vec::with_capacity(leaves_n);
            for i in 0..leaves_n {
                let data = format!("file {file} leaf {i} {:0>180}", made).into_bytes();
                let c = cid(0x55, &data);
                session.put(&c, &data, &[])?;
                leaves.push(c);
            }
            let mut root_data = format!("root {file}").into_bytes();
            for c in &leaves {
                root_data.extend_from_slice(&c.to_bytes());
            }
            let root = cid(0x70, &root_data);
            session.put(&root, &root_data, &leaves)?;
            if file.is_multiple_of(2) {
                session.pin(&root, pin(PinMode::Recursive, None));
            }
            made += leaves_n + 1;
            file += 1;
        }
        session.commit()?;
        println!("built {made} blocks in {file} DAGs: {:.2?}", t.elapsed());
    }

    let t = Instant::now();
    let st = store.stat()?;
    println!("stat: {:.2?} {st:?}", t.elapsed());
    let t = Instant::now();
    let r = store.gc()?;
    println!("gc: {:.2?} {r:?}", t.elapsed());
    let t = Instant::now();
    let r = store.gc()?;
    println!("gc again: {:.2?} {r:?}", t.elapsed());
    let t = Instant::now();
    let r = store.verify()?;
    println!(
        "verify: {:.2?} ok={} blocks_ok={} corrupt={} missing={}",
        t.elapsed(),
        r.is_ok(),
        r.blocks_ok,
        r.corrupt.len(),
        r.missing.len()
    );
    Ok(())
}
