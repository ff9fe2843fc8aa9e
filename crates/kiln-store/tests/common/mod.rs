//! Helpers shared by the integration tests.
#![allow(dead_code)]

use kiln_store::{Cid, Store, StoreOptions};
use multihash::Multihash;
use sha2::{Digest, Sha256};
use std::path::Path;

pub const RAW: u64 = 0x55;
pub const DAG_PB: u64 = 0x70;

pub fn mh(data: &[u8]) -> Multihash<64> {
    Multihash::wrap(0x12, &Sha256::digest(data)).unwrap()
}

pub fn raw(data: &[u8]) -> Cid {
    Cid::new_v1(RAW, mh(data))
}

/// A fake "node": its bytes are the concatenated child CIDs plus a tag, so it is unique.
pub fn node_bytes(tag: &str, children: &[Cid]) -> Vec<u8> {
    let mut v = tag.as_bytes().to_vec();
    for c in children {
        v.extend_from_slice(&c.to_bytes());
    }
    v
}

pub fn node(tag: &str, children: &[Cid]) -> (Cid, Vec<u8>) {
    let data = node_bytes(tag, children);
    (Cid::new_v1(DAG_PB, mh(&data)), data)
}

pub fn open(dir: &Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

pub fn small_opts() -> StoreOptions {
    StoreOptions {
        max_pack_size: 256 << 10,
        batch_bytes: 64 << 10,
        batch_blocks: 50,
        ..StoreOptions::default()
    }
}

/// A small DAG: root -> 3 leaves (and a shared leaf). Returns (root, all blocks).
/// A block to put: CID, bytes, links.
pub type Block = (Cid, Vec<u8>, Vec<Cid>);

pub fn small_dag(tag: &str) -> (Cid, Vec<Block>) {
    let mut blocks = Vec::new();
    let mut leaves = Vec::new();
    for i in 0..3 {
        let d = format!("{tag}-leaf-{i}").into_bytes();
        let c = raw(&d);
        leaves.push(c);
        blocks.push((c, d, vec![]));
    }
    let (root, data) = node(tag, &leaves);
    blocks.push((root, data, leaves));
    (root, blocks)
}
