//! kiln-core: content identifiers, codecs, UnixFS import/export and CAR files.
//!
//! Everything here is pure computation over `Read`/`Write`: no async, no HTTP, no
//! knowledge of where blocks are kept. Blocks leave the importer through a
//! [`BlockSink`] and enter the exporter through a [`BlockSource`].
//!
//! ```
//! use kiln_core::{import::{import_bytes, ImportOptions, Profile}, NullSink};
//! let opts = ImportOptions::from_profile(Profile::KuboV0);
//! let root = import_bytes(&mut NullSink, b"", &opts).unwrap();
//! assert_eq!(root.cid.to_string(), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
//! ```
#![deny(missing_docs)]
// Errors carry the CIDs they are about (about 80 bytes each); they are cold paths.
#![allow(clippy::result_large_err)]

pub mod car;
pub mod cids;
pub mod dag_pb;
mod error;
pub mod export;
pub mod import;
pub mod links;
pub mod names;
pub mod pb;
pub mod unixfs;

pub use cid::Cid;
pub use error::{Error, Result};

/// Where the importer puts the blocks it makes.
pub trait BlockSink {
    /// Store one block. `links` are the CIDs the block refers to, in order.
    fn put(&mut self, cid: &Cid, data: &[u8], links: &[Cid]) -> Result<()>;
}

/// A sink that keeps nothing: used for `--only-hash`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl BlockSink for NullSink {
    fn put(&mut self, _cid: &Cid, _data: &[u8], _links: &[Cid]) -> Result<()> {
        Ok(())
    }
}

/// Where the exporter reads blocks from.
pub trait BlockSource {
    /// The bytes of a block, or `Ok(None)` if it is not available.
    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>>;
}

/// An in-memory block map: a sink and a source, handy in tests and tools.
#[derive(Debug, Default, Clone)]
pub struct MemoryBlocks {
    /// Blocks by CID.
    pub blocks: std::collections::HashMap<Cid, Vec<u8>>,
}

impl BlockSink for MemoryBlocks {
    fn put(&mut self, cid: &Cid, data: &[u8], _links: &[Cid]) -> Result<()> {
        self.blocks.insert(*cid, data.to_vec());
        Ok(())
    }
}

impl BlockSource for MemoryBlocks {
    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        if let Some(d) = cids::identity_data(cid) {
            return Ok(Some(d.to_vec()));
        }
        Ok(self.blocks.get(cid).cloned())
    }
}
