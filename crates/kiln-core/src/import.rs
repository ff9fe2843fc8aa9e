//! UnixFS import: files, directories, symlinks and HAMT shards, with kubo's and
//! IPIP-499's profiles. Output CIDs are byte-for-byte those of kubo and the JS importer.

mod dir;
mod file;
mod hamt;
mod options;

pub use dir::{DirEntry, build_directory, symlink};
pub use file::{
    Chunk, ChunkSource, ReaderSource, import_bytes, import_chunks, import_chunks_with_mode,
    import_reader,
};
pub use hamt::{MURMUR3_X64_64, hash_name as hamt_hash_name};
pub use options::{HamtRule, ImportOptions, MAX_CHUNK_SIZE, Profile};

use crate::Cid;

/// The root of something imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Its CID.
    pub cid: Cid,
    /// Cumulative size of the DAG (block bytes), as written in parents' `Tsize`.
    pub tsize: u64,
    /// File size (0 for directories and symlinks).
    pub size: u64,
}
