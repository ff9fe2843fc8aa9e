//! UnixFS export: resolve paths, read files (with ranges), list directories
//! (flat and HAMT). Writing trees to disk is the caller's business.

use crate::cids::{self, ContentPath, DAG_PB, RAW};
use crate::dag_pb::PbNode;
use crate::import::hamt_hash_name;
use crate::unixfs::{DataType, UnixfsData};
use crate::{BlockSource, Cid, Error, Result};
use std::io::Write;

/// What a UnixFS node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A file: a raw block or a dag-pb File node.
    File {
        /// Its size in bytes.
        size: u64,
    },
    /// A directory, flat or sharded.
    Directory {
        /// True for a HAMT shard.
        sharded: bool,
    },
    /// A symbolic link.
    Symlink {
        /// The link target.
        target: Vec<u8>,
    },
}

impl Node {
    /// Short type name.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::File { .. } => "file",
            Node::Directory { .. } => "directory",
            Node::Symlink { .. } => "symlink",
        }
    }
}

/// A block fetched and decoded.
struct Loaded {
    cid: Cid,
    raw: Option<Vec<u8>>,
    pb: Option<(PbNode, UnixfsData)>,
}

fn load(src: &dyn BlockSource, cid: &Cid) -> Result<Loaded> {
    let data = src.get(cid)?.ok_or(Error::NotFound(*cid))?;
    match cid.codec() {
        RAW => Ok(Loaded {
            cid: *cid,
            raw: Some(data),
            pb: None,
        }),
        DAG_PB => {
            let node = PbNode::decode(&data, Some(*cid))?;
            let ufs = node.data.as_deref().ok_or_else(|| {
                Error::malformed("unixfs", Some(*cid), "dag-pb node without UnixFS data")
            })?;
            let u = UnixfsData::decode(ufs, Some(*cid))?;
            Ok(Loaded {
                cid: *cid,
                raw: None,
                pb: Some((node, u)),
            })
        }
        code => Err(Error::Unsupported {
            what: "codec for UnixFS",
            code,
        }),
    }
}

fn describe(l: &Loaded) -> Result<Node> {
    Ok(match (&l.raw, &l.pb) {
        (Some(r), _) => Node::File {
            size: r.len() as u64,
        },
        (None, Some((node, u))) => match u.kind {
            DataType::Directory => Node::Directory { sharded: false },
            DataType::HamtShard => Node::Directory { sharded: true },
            DataType::Symlink => Node::Symlink {
                target: u.data.clone().unwrap_or_default(),
            },
            _ => Node::File {
                size: file_size(&l.cid, node, u)?,
            },
        },
        (None, None) => Node::File { size: 0 },
    })
}

/// A file node's size, checked against what the node holds: its inline data plus the sizes
/// it gives its children (one per link), which must add up to `filesize` when it is set. A
/// node that claims more (or less) than that is malformed, so no length is promised that
/// the DAG does not back; each child is checked against its share as it is read.
fn file_size(cid: &Cid, node: &PbNode, u: &UnixfsData) -> Result<u64> {
    if node.links.len() != u.blocksizes.len() {
        return Err(Error::malformed(
            "unixfs",
            Some(*cid),
            format!(
                "{} links but {} blocksizes",
                node.links.len(),
                u.blocksizes.len()
            ),
        ));
    }
    let inline = u.data.as_ref().map_or(0, |d| d.len() as u64);
    let held = u
        .blocksizes
        .iter()
        .try_fold(inline, |a, &b| a.checked_add(b))
        .ok_or_else(|| Error::malformed("unixfs", Some(*cid), "blocksizes overflow"))?;
    match u.filesize {
        Some(claimed) if claimed != held => Err(Error::malformed(
            "unixfs",
            Some(*cid),
            format!("filesize {claimed} but the node holds {held} bytes"),
        )),
        _ => Ok(held),
    }
}

/// The size of a loaded file block, checked against what its parent says it holds.
fn checked_child_size(l: &Loaded, expected: u64) -> Result<()> {
    let size = match describe(l)? {
        Node::File { size } => size,
        other => {
            return Err(Error::malformed(
                "unixfs",
                Some(l.cid),
                format!("{} inside a file", other.kind()),
            ));
        }
    };
    if size != expected {
        return Err(Error::malformed(
            "unixfs",
            Some(l.cid),
            format!("holds {size} bytes but its parent says {expected}"),
        ));
    }
    Ok(())
}

/// Decode the node at `cid`.
pub fn stat(src: &dyn BlockSource, cid: &Cid) -> Result<Node> {
    describe(&load(src, cid)?)
}

/// The UnixFS `mode` recorded in the node at `cid` (see
/// [`crate::import::import_chunks_with_mode`]): `None` for raw blocks and for nodes that
/// record none. The value is returned as stored (permission bits, possibly with file-type
/// bits above them).
pub fn file_mode(src: &dyn BlockSource, cid: &Cid) -> Result<Option<u32>> {
    Ok(load(src, cid)?.pb.and_then(|(_, u)| u.mode))
}

/// Find the CID a path names.
pub fn resolve(src: &dyn BlockSource, path: &ContentPath) -> Result<Cid> {
    let mut cur = path.root;
    for seg in &path.segments {
        cur = lookup(src, &cur, seg)?;
    }
    Ok(cur)
}

/// Look a name up in a directory.
pub fn lookup(src: &dyn BlockSource, dir: &Cid, name: &str) -> Result<Cid> {
    let l = load(src, dir)?;
    let (node, u) = match &l.pb {
        Some((n, u)) if matches!(u.kind, DataType::Directory | DataType::HamtShard) => (n, u),
        _ => {
            return Err(Error::WrongType {
                cid: *dir,
                expected: "directory",
                actual: describe(&l)?.kind(),
            });
        }
    };
    let missing = || Error::NoSuchLink {
        cid: *dir,
        name: name.to_string(),
    };
    if u.kind == DataType::Directory {
        return node
            .links
            .iter()
            .find(|x| x.name == name)
            .map(|x| x.cid)
            .ok_or_else(missing);
    }
    let hash = hamt_hash_name(name.as_bytes());
    let (mut node, mut u) = (node.clone(), u.clone());
    let mut shard_cid = *dir;
    for &idx in hash.iter() {
        check_fanout(&shard_cid, &u)?;
        let prefix = format!("{idx:02X}");
        let Some(link) = node.links.iter().find(|x| x.name.starts_with(&prefix)) else {
            return Err(missing());
        };
        if link.name.len() == 2 {
            let next = load(src, &link.cid)?;
            shard_cid = link.cid;
            match next.pb {
                Some((n, nu)) if nu.kind == DataType::HamtShard => {
                    node = n;
                    u = nu;
                }
                _ => {
                    return Err(Error::malformed(
                        "unixfs",
                        Some(link.cid),
                        "HAMT child is not a shard",
                    ));
                }
            }
        } else if &link.name[2..] == name {
            return Ok(link.cid);
        } else {
            return Err(missing());
        }
    }
    Err(missing())
}

fn check_fanout(cid: &Cid, u: &UnixfsData) -> Result<()> {
    if u.fanout != Some(256) {
        return Err(Error::malformed(
            "unixfs",
            Some(*cid),
            format!("unsupported HAMT fanout {:?}", u.fanout),
        ));
    }
    if u.hash_type != Some(crate::import::MURMUR3_X64_64) {
        return Err(Error::malformed(
            "unixfs",
            Some(*cid),
            "unsupported HAMT hash function",
        ));
    }
    Ok(())
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Name in the directory.
    pub name: String,
    /// Target.
    pub cid: Cid,
    /// The link's cumulative size.
    pub tsize: u64,
}

/// The entries of a directory (flat or sharded), sorted by name.
pub fn list(src: &dyn BlockSource, dir: &Cid) -> Result<Vec<Entry>> {
    let l = load(src, dir)?;
    let mut out = Vec::new();
    match &l.pb {
        Some((n, u)) if u.kind == DataType::Directory => {
            out.extend(n.links.iter().map(|x| Entry {
                name: x.name.clone(),
                cid: x.cid,
                tsize: x.tsize,
            }));
        }
        Some((n, u)) if u.kind == DataType::HamtShard => list_shard(src, dir, n, u, &mut out, 0)?,
        _ => {
            return Err(Error::WrongType {
                cid: *dir,
                expected: "directory",
                actual: describe(&l)?.kind(),
            });
        }
    }
    out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(out)
}

fn list_shard(
    src: &dyn BlockSource,
    cid: &Cid,
    node: &PbNode,
    u: &UnixfsData,
    out: &mut Vec<Entry>,
    depth: usize,
) -> Result<()> {
    check_fanout(cid, u)?;
    if depth > 8 {
        return Err(Error::malformed(
            "unixfs",
            Some(*cid),
            "HAMT deeper than its hash",
        ));
    }
    for link in &node.links {
        if link.name.len() < 2 || !link.name.is_char_boundary(2) {
            return Err(Error::malformed(
                "unixfs",
                Some(*cid),
                format!("bad HAMT link name {:?}", link.name),
            ));
        }
        if link.name.len() == 2 {
            let child = load(src, &link.cid)?;
            match &child.pb {
                Some((n, cu)) if cu.kind == DataType::HamtShard => {
                    list_shard(src, &link.cid, n, cu, out, depth + 1)?
                }
                _ => {
                    return Err(Error::malformed(
                        "unixfs",
                        Some(link.cid),
                        "HAMT child is not a shard",
                    ));
                }
            }
        } else {
            out.push(Entry {
                name: link.name[2..].to_string(),
                cid: link.cid,
                tsize: link.tsize,
            });
        }
    }
    Ok(())
}

/// Write bytes `[offset, offset+length)` of the file at `cid` to `out`; returns
/// the number of bytes written. `length = None` reads to the end.
pub fn read_file(
    src: &dyn BlockSource,
    cid: &Cid,
    offset: u64,
    length: Option<u64>,
    out: &mut dyn Write,
) -> Result<u64> {
    let l = load(src, cid)?;
    let node = describe(&l)?;
    let Node::File { size } = node else {
        return Err(Error::WrongType {
            cid: *cid,
            expected: "file",
            actual: node.kind(),
        });
    };
    let start = offset.min(size);
    let end = length.map_or(size, |n| start.saturating_add(n).min(size));
    let mut written = 0;
    write_range(src, l, start, end, out, &mut written, 0)?;
    Ok(written)
}

fn emit(bytes: &[u8], from: u64, to: u64, out: &mut dyn Write, written: &mut u64) -> Result<()> {
    // `bytes` covers [0, len); write the part inside [from, to).
    let len = bytes.len() as u64;
    let a = from.min(len) as usize;
    let b = to.min(len) as usize;
    if a < b {
        out.write_all(&bytes[a..b])
            .map_err(|e| Error::io("writing output", e))?;
        *written += (b - a) as u64;
    }
    Ok(())
}

fn write_range(
    src: &dyn BlockSource,
    l: Loaded,
    from: u64,
    to: u64,
    out: &mut dyn Write,
    written: &mut u64,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        return Err(Error::malformed("unixfs", Some(l.cid), "file DAG too deep"));
    }
    if let Some(r) = &l.raw {
        return emit(r, from, to, out, written);
    }
    let Some((node, u)) = &l.pb else {
        return Ok(());
    };
    if !matches!(u.kind, DataType::File | DataType::Raw) {
        return Err(Error::malformed(
            "unixfs",
            Some(l.cid),
            format!("{} inside a file", u.kind.name()),
        ));
    }
    let inline = u.data.as_deref().unwrap_or_default();
    emit(inline, from, to, out, written)?;
    let mut pos = inline.len() as u64;
    // Checks the links against the blocksizes and their sum (no overflow below).
    file_size(&l.cid, node, u)?;
    for (link, &bs) in node.links.iter().zip(&u.blocksizes) {
        let (a, b) = (pos, pos + bs);
        pos = b;
        if b <= from || a >= to || bs == 0 {
            continue;
        }
        let child = load(src, &link.cid)?;
        checked_child_size(&child, bs)?;
        write_range(
            src,
            child,
            from.saturating_sub(a),
            to - a,
            out,
            written,
            depth + 1,
        )?;
    }
    Ok(())
}

/// A file's bytes as a `Read`, fetched block by block as they are read (memory bounded by
/// one block plus the links of the nodes on the current path).
pub struct FileReader<'a> {
    src: &'a dyn BlockSource,
    pending: std::collections::VecDeque<Piece>,
    cur: Vec<u8>,
    pos: usize,
}

enum Piece {
    /// A block, with the size its parent says it holds (none for the root).
    Block(Cid, Option<u64>),
    Bytes(Vec<u8>),
}

impl<'a> FileReader<'a> {
    /// A reader over the file at `cid` (checked to be a file).
    pub fn new(src: &'a dyn BlockSource, cid: &Cid) -> Result<Self> {
        let node = stat(src, cid)?;
        if !matches!(node, Node::File { .. }) {
            return Err(Error::WrongType {
                cid: *cid,
                expected: "file",
                actual: node.kind(),
            });
        }
        Ok(FileReader {
            src,
            pending: [Piece::Block(*cid, None)].into(),
            cur: Vec::new(),
            pos: 0,
        })
    }

    /// Load the next run of bytes into `cur`; false at the end.
    fn advance(&mut self) -> Result<bool> {
        while let Some(piece) = self.pending.pop_front() {
            let (cid, expected) = match piece {
                Piece::Bytes(b) => {
                    self.cur = b;
                    self.pos = 0;
                    return Ok(true);
                }
                Piece::Block(c, expected) => (c, expected),
            };
            let l = load(self.src, &cid)?;
            match expected {
                Some(n) => checked_child_size(&l, n)?,
                None => {
                    describe(&l)?;
                }
            }
            if let Some(r) = l.raw {
                (self.cur, self.pos) = (r, 0);
                return Ok(true);
            }
            let Some((node, u)) = l.pb else { continue };
            if !matches!(u.kind, DataType::File | DataType::Raw) {
                return Err(Error::malformed(
                    "unixfs",
                    Some(cid),
                    format!("{} inside a file", u.kind.name()),
                ));
            }
            if self.pending.len() > 1 << 20 {
                return Err(Error::malformed("unixfs", Some(cid), "file DAG too wide"));
            }
            for (link, &size) in node.links.iter().zip(&u.blocksizes).rev() {
                self.pending.push_front(Piece::Block(link.cid, Some(size)));
            }
            if let Some(d) = u.data.filter(|d| !d.is_empty()) {
                self.pending.push_front(Piece::Bytes(d));
            }
        }
        Ok(false)
    }
}

impl std::io::Read for FileReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.advance() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// True if the CID is one whose bytes need no storage.
pub fn is_inline(cid: &Cid) -> bool {
    cids::identity_data(cid).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBlocks;
    use crate::import::{DirEntry, ImportOptions, Profile, build_directory, import_bytes};

    #[test]
    fn roundtrip_with_ranges_and_dirs() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for p in [Profile::KuboV0, Profile::KuboV1, Profile::V1_2025] {
            let mut o = ImportOptions::from_profile(p);
            o.chunk_size = 100;
            o.max_links = 5;
            let mut m = MemoryBlocks::default();
            let f = import_bytes(&mut m, &data, &o).unwrap();
            for (off, len) in [
                (0, None),
                (5, Some(10)),
                (99, Some(2)),
                (12345, Some(54321)),
                (99_999, None),
                (200_000, None),
            ] {
                let mut out = Vec::new();
                read_file(&m, &f.cid, off, len, &mut out).unwrap();
                let a = (off as usize).min(data.len());
                let b = len.map_or(data.len(), |n| (a + n as usize).min(data.len()));
                assert_eq!(out, &data[a..b], "{p:?} {off} {len:?}");
            }
            // A big directory, sharded, resolved and listed.
            o.hamt_threshold = 1000;
            let entries: Vec<DirEntry> = (0..500)
                .map(|i| DirEntry::new(format!("f{i}"), &f))
                .collect();
            let d = build_directory(&mut m, entries, &o).unwrap();
            assert_eq!(stat(&m, &d.cid).unwrap(), Node::Directory { sharded: true });
            assert_eq!(list(&m, &d.cid).unwrap().len(), 500);
            let p = ContentPath::parse(&format!("{}/f77", d.cid)).unwrap();
            assert_eq!(resolve(&m, &p).unwrap(), f.cid);
            let mut streamed = Vec::new();
            std::io::Read::read_to_end(&mut FileReader::new(&m, &f.cid).unwrap(), &mut streamed)
                .unwrap();
            assert_eq!(streamed, data, "{p:?} FileReader");
            assert!(FileReader::new(&m, &d.cid).is_err());
            let p = ContentPath::parse(&format!("{}/nope", d.cid)).unwrap();
            assert!(matches!(resolve(&m, &p), Err(Error::NoSuchLink { .. })));
        }
    }
}
