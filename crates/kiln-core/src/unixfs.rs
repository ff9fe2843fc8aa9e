//! The UnixFS `Data` message carried in dag-pb nodes.

use crate::pb::{self, Field, Fields};
use crate::{Cid, Error, Result};

/// UnixFS node types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// Raw data (legacy leaves).
    Raw = 0,
    /// A directory.
    Directory = 1,
    /// A file.
    File = 2,
    /// Metadata (unused).
    Metadata = 3,
    /// A symbolic link.
    Symlink = 4,
    /// A HAMT-sharded directory.
    HamtShard = 5,
}

impl DataType {
    fn from_u64(v: u64) -> Option<DataType> {
        Some(match v {
            0 => DataType::Raw,
            1 => DataType::Directory,
            2 => DataType::File,
            3 => DataType::Metadata,
            4 => DataType::Symlink,
            5 => DataType::HamtShard,
            _ => return None,
        })
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Raw => "raw",
            DataType::Directory => "directory",
            DataType::File => "file",
            DataType::Metadata => "metadata",
            DataType::Symlink => "symlink",
            DataType::HamtShard => "hamt-sharded directory",
        }
    }
}

/// The UnixFS Data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixfsData {
    /// Node type.
    pub kind: DataType,
    /// Inline data (file bytes, symlink target, HAMT bitfield).
    pub data: Option<Vec<u8>>,
    /// File size.
    pub filesize: Option<u64>,
    /// Sizes of the file data under each link.
    pub blocksizes: Vec<u64>,
    /// HAMT hash function.
    pub hash_type: Option<u64>,
    /// HAMT fanout.
    pub fanout: Option<u64>,
    /// Unix mode bits.
    pub mode: Option<u32>,
    /// Modification time (seconds, nanoseconds).
    pub mtime: Option<(i64, Option<u32>)>,
}

impl UnixfsData {
    /// A message of the given type with nothing else set.
    pub fn new(kind: DataType) -> Self {
        UnixfsData {
            kind,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
            mode: None,
            mtime: None,
        }
    }

    /// Encode, fields in number order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            16 + self.data.as_ref().map_or(0, Vec::len) + self.blocksizes.len() * 4,
        );
        pb::put_varint_field(&mut out, 1, self.kind as u64);
        if let Some(d) = &self.data {
            pb::put_bytes_field(&mut out, 2, d);
        }
        if let Some(s) = self.filesize {
            pb::put_varint_field(&mut out, 3, s);
        }
        for b in &self.blocksizes {
            pb::put_varint_field(&mut out, 4, *b);
        }
        if let Some(h) = self.hash_type {
            pb::put_varint_field(&mut out, 5, h);
        }
        if let Some(f) = self.fanout {
            pb::put_varint_field(&mut out, 6, f);
        }
        if let Some(m) = self.mode {
            pb::put_varint_field(&mut out, 7, u64::from(m));
        }
        if let Some((secs, nanos)) = self.mtime {
            let mut t = Vec::new();
            pb::put_varint_field(&mut t, 1, secs as u64);
            if let Some(n) = nanos {
                pb::put_varint(&mut t, (2 << 3) | 5);
                t.extend_from_slice(&n.to_le_bytes());
            }
            pb::put_bytes_field(&mut out, 8, &t);
        }
        out
    }

    /// Decode.
    pub fn decode(bytes: &[u8], cid: Option<Cid>) -> Result<UnixfsData> {
        let bad = |r: String| Error::malformed("unixfs", cid, r);
        let mut kind = None;
        let mut d = UnixfsData::new(DataType::Raw);
        for f in Fields::new(bytes) {
            match f.map_err(bad)? {
                (1, Field::Varint(t)) => {
                    kind = Some(
                        DataType::from_u64(t).ok_or_else(|| bad(format!("unknown type {t}")))?,
                    )
                }
                (2, Field::Bytes(b)) => d.data = Some(b.to_vec()),
                (3, Field::Varint(v)) => d.filesize = Some(v),
                (4, Field::Varint(v)) => d.blocksizes.push(v),
                (4, Field::Bytes(packed)) => {
                    let mut rest = packed;
                    while !rest.is_empty() {
                        let (v, n) = pb::get_varint(rest)
                            .ok_or_else(|| bad("bad packed blocksizes".into()))?;
                        d.blocksizes.push(v);
                        rest = &rest[n..];
                    }
                }
                (5, Field::Varint(v)) => d.hash_type = Some(v),
                (6, Field::Varint(v)) => d.fanout = Some(v),
                (7, Field::Varint(v)) => d.mode = Some(v as u32),
                (8, Field::Bytes(t)) => {
                    let mut secs = 0i64;
                    let mut nanos = None;
                    for f in Fields::new(t) {
                        match f.map_err(bad)? {
                            (1, Field::Varint(s)) => secs = s as i64,
                            (2, Field::Fixed32(n)) => nanos = Some(n),
                            _ => {}
                        }
                    }
                    d.mtime = Some((secs, nanos));
                }
                (n, _) => return Err(bad(format!("unexpected field {n}"))),
            }
        }
        d.kind = kind.ok_or_else(|| bad("missing Type".into()))?;
        Ok(d)
    }
}
