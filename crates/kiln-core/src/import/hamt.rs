//! HAMT-sharded directories: fanout 256, murmur3-x64-64 of the entry name, one
//! byte of the hash per level; link names are the bucket index as two upper-case
//! hex digits, followed by the entry name on leaf entries.

use super::dir::{DirEntry, put_node};
use super::{ImportOptions, Imported};
use crate::dag_pb::{PbLink, PbNode};
use crate::unixfs::{DataType, UnixfsData};
use crate::{BlockSink, Error, Result};
use std::collections::BTreeMap;

/// Multicodec of murmur3-x64-64.
pub const MURMUR3_X64_64: u64 = 0x22;
/// Buckets per node.
pub const FANOUT: u64 = 256;

/// The 8-byte murmur3-x64-64 hash of a name (the first half of murmur3-x64-128, big-endian).
pub fn hash_name(name: &[u8]) -> [u8; 8] {
    let mut r = name;
    // Reading from a slice cannot fail.
    let h = murmur3::murmur3_x64_128(&mut r, 0).unwrap_or(0);
    (h as u64).to_be_bytes()
}

enum Slot {
    Entry(DirEntry, [u8; 8]),
    Shard(Box<Shard>),
}

#[derive(Default)]
struct Shard {
    slots: BTreeMap<u8, Slot>,
}

impl Shard {
    fn insert(&mut self, entry: DirEntry, hash: [u8; 8], depth: usize) -> Result<()> {
        let Some(&idx) = hash.get(depth) else {
            return Err(Error::Options(format!(
                "HAMT hash collision on {:?}",
                entry.name
            )));
        };
        match self.slots.remove(&idx) {
            None => {
                self.slots.insert(idx, Slot::Entry(entry, hash));
            }
            Some(Slot::Shard(mut child)) => {
                child.insert(entry, hash, depth + 1)?;
                self.slots.insert(idx, Slot::Shard(child));
            }
            Some(Slot::Entry(old, old_hash)) => {
                let mut child = Box::<Shard>::default();
                child.insert(old, old_hash, depth + 1)?;
                child.insert(entry, hash, depth + 1)?;
                self.slots.insert(idx, Slot::Shard(child));
            }
        }
        Ok(())
    }

    fn write(self, sink: &mut dyn BlockSink, opts: &ImportOptions) -> Result<Imported> {
        let mut bits = [0u8; 32];
        let mut links = Vec::with_capacity(self.slots.len());
        for (idx, slot) in self.slots {
            // Bit i of the 256-bit field, stored big-endian.
            bits[31 - usize::from(idx) / 8] |= 1 << (idx % 8);
            match slot {
                Slot::Entry(e, _) => links.push(PbLink {
                    cid: e.cid,
                    name: format!("{idx:02X}{}", e.name),
                    tsize: e.tsize,
                }),
                Slot::Shard(child) => {
                    let c = child.write(sink, opts)?;
                    links.push(PbLink {
                        cid: c.cid,
                        name: format!("{idx:02X}"),
                        tsize: c.tsize,
                    });
                }
            }
        }
        let first = bits.iter().position(|b| *b != 0).unwrap_or(bits.len());
        let mut u = UnixfsData::new(DataType::HamtShard);
        u.data = Some(bits[first..].to_vec());
        u.hash_type = Some(MURMUR3_X64_64);
        u.fanout = Some(FANOUT);
        put_node(
            sink,
            &PbNode {
                links,
                data: Some(u.encode()),
            },
            opts,
            0,
        )
    }
}

/// Build a HAMT directory from entries.
pub fn build(
    sink: &mut dyn BlockSink,
    entries: Vec<DirEntry>,
    opts: &ImportOptions,
) -> Result<Imported> {
    let mut root = Shard::default();
    for e in entries {
        let h = hash_name(e.name.as_bytes());
        root.insert(e, h, 0)?;
    }
    root.write(sink, opts)
}
