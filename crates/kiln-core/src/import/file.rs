//! Files: fixed-size chunks, hashed in parallel, assembled into a balanced DAG.

use super::{ImportOptions, Imported};
use crate::cids::{self, DAG_PB, RAW};
use crate::dag_pb::{PbLink, PbNode};
use crate::unixfs::{DataType, UnixfsData};
use crate::{BlockSink, Cid, Error, Result};
use cid::Version;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex, mpsc};

/// Bytes of chunks read ahead of the store.
const IN_FLIGHT_BYTES: usize = 32 << 20;

/// The bytes of one chunk: a buffer of its own, or a piece of a shared one (for
/// example a memory-mapped window of a file, so no copy is made before hashing).
pub enum Chunk {
    /// A buffer owned by the chunk.
    Owned(Vec<u8>),
    /// `buf[start..end]` of a shared buffer.
    Shared {
        /// The shared bytes.
        buf: Arc<dyn AsRef<[u8]> + Send + Sync>,
        /// First byte.
        start: usize,
        /// One past the last byte.
        end: usize,
    },
}

impl Chunk {
    /// The chunk's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared { buf, start, end } => &(**buf).as_ref()[*start..*end],
        }
    }

    fn len(&self) -> usize {
        self.bytes().len()
    }
}

/// Where a file's bytes come from, chunk by chunk.
pub trait ChunkSource: Send {
    /// The next `size` bytes (fewer only at the end of the input; none at the end).
    /// `spare` is a used buffer the source may fill instead of allocating.
    fn next_chunk(&mut self, size: usize, spare: Option<Vec<u8>>) -> std::io::Result<Chunk>;
}

/// Chunks read from a `Read`.
pub struct ReaderSource<'a>(pub &'a mut (dyn Read + Send));

impl ChunkSource for ReaderSource<'_> {
    fn next_chunk(&mut self, size: usize, spare: Option<Vec<u8>>) -> std::io::Result<Chunk> {
        let mut buf = spare.unwrap_or_default();
        buf.resize(size, 0);
        let n = read_full(self.0, &mut buf)?;
        buf.truncate(n);
        Ok(Chunk::Owned(buf))
    }
}

/// A leaf block ready to store.
struct Leaf {
    data: Chunk,
    cid: Cid,
    filesize: u64,
}

/// Make a leaf block from a chunk (the expensive part: hashing).
fn make_leaf(chunk: Chunk, opts: &ImportOptions) -> Leaf {
    let filesize = chunk.len() as u64;
    if opts.raw_leaves {
        let cid = cids::cid_of(Version::V1, RAW, chunk.bytes());
        Leaf {
            data: chunk,
            cid,
            filesize,
        }
    } else {
        let mut u = UnixfsData::new(DataType::File);
        u.filesize = Some(filesize);
        if filesize > 0 {
            u.data = Some(match chunk {
                Chunk::Owned(v) => v,
                shared => shared.bytes().to_vec(),
            });
        }
        let data = PbNode {
            links: Vec::new(),
            data: Some(u.encode()),
        }
        .encode();
        let cid = cids::cid_of(opts.cid_version, DAG_PB, &data);
        Leaf {
            data: Chunk::Owned(data),
            cid,
            filesize,
        }
    }
}

/// One entry under a file node: a link with its file size.
#[derive(Clone, Copy)]
struct Child {
    cid: Cid,
    tsize: u64,
    filesize: u64,
}

/// Builds the balanced tree as leaves stream in: level k holds up to `max_links`
/// children waiting for their parent. The result is the tree that grouping every
/// level in consecutive runs of `max_links` gives (kubo's and JS's balanced layout).
struct Balanced<'a> {
    opts: &'a ImportOptions,
    levels: Vec<Vec<Child>>,
    leaves: u64,
}

impl<'a> Balanced<'a> {
    fn new(opts: &'a ImportOptions) -> Self {
        Balanced {
            opts,
            levels: vec![Vec::new()],
            leaves: 0,
        }
    }

    /// Store a leaf and place it in the tree; gives its buffer back for reuse.
    fn push_leaf(&mut self, sink: &mut dyn BlockSink, leaf: Leaf) -> Result<Chunk> {
        sink.put(&leaf.cid, leaf.data.bytes(), &[])?;
        self.leaves += 1;
        let child = Child {
            cid: leaf.cid,
            tsize: leaf.data.len() as u64,
            filesize: leaf.filesize,
        };
        self.push(sink, 0, child)?;
        Ok(leaf.data)
    }

    fn push(&mut self, sink: &mut dyn BlockSink, level: usize, child: Child) -> Result<()> {
        if self.levels.len() <= level {
            self.levels.push(Vec::new());
        }
        self.levels[level].push(child);
        if self.levels[level].len() == self.opts.max_links {
            let group = std::mem::take(&mut self.levels[level]);
            let parent = self.parent(sink, &group)?;
            self.push(sink, level + 1, parent)?;
        }
        Ok(())
    }

    fn parent(&self, sink: &mut dyn BlockSink, group: &[Child]) -> Result<Child> {
        let mut u = UnixfsData::new(DataType::File);
        let filesize: u64 = group.iter().map(|c| c.filesize).sum();
        u.filesize = Some(filesize);
        u.blocksizes = group.iter().map(|c| c.filesize).collect();
        let node = PbNode {
            links: group
                .iter()
                .map(|c| PbLink {
                    cid: c.cid,
                    name: String::new(),
                    tsize: c.tsize,
                })
                .collect(),
            data: Some(u.encode()),
        };
        let bytes = node.encode();
        let cid = cids::cid_of(self.opts.cid_version, DAG_PB, &bytes);
        let links: Vec<Cid> = group.iter().map(|c| c.cid).collect();
        sink.put(&cid, &bytes, &links)?;
        let tsize = bytes.len() as u64 + group.iter().map(|c| c.tsize).sum::<u64>();
        Ok(Child {
            cid,
            tsize,
            filesize,
        })
    }

    fn finish(mut self, sink: &mut dyn BlockSink) -> Result<Imported> {
        let mut level = 0;
        loop {
            let top = self.levels.len() - 1;
            if level == top && self.levels[level].len() == 1 {
                let c = self.levels[level][0];
                return Ok(Imported {
                    cid: c.cid,
                    tsize: c.tsize,
                    size: c.filesize,
                });
            }
            let group = std::mem::take(&mut self.levels[level]);
            if !group.is_empty() {
                let parent = self.parent(sink, &group)?;
                if self.levels.len() <= level + 1 {
                    self.levels.push(Vec::new());
                }
                // Not `push`: a full level here was already flushed while streaming.
                self.levels[level + 1].push(parent);
            }
            level += 1;
            if level >= self.levels.len() {
                return Err(Error::Options("internal: empty file tree".into()));
            }
        }
    }
}

/// Read up to `buf.len()` bytes, short only at end of input.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Import bytes held in memory.
pub fn import_bytes(
    sink: &mut dyn BlockSink,
    bytes: &[u8],
    opts: &ImportOptions,
) -> Result<Imported> {
    import_reader(sink, &mut &bytes[..], opts, &mut |_| {})
}

/// Import a file from a reader. `progress` is called with the number of bytes read
/// so far. Chunks are hashed on `opts.threads` threads while the caller's thread
/// stores blocks in order.
pub fn import_reader(
    sink: &mut dyn BlockSink,
    reader: &mut (dyn Read + Send),
    opts: &ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Imported> {
    import_chunks(sink, &mut ReaderSource(reader), opts, progress)
}

/// Import a file whose bytes come from a [`ChunkSource`] (see [`import_reader`]).
pub fn import_chunks(
    sink: &mut dyn BlockSink,
    source: &mut dyn ChunkSource,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Imported> {
    let threads = opts.hash_threads();
    let mut tree = Balanced::new(opts);
    let mut done: u64 = 0;
    let read_err = |e| Error::io("reading input", e);
    // The first chunk is read here: a file of one chunk (most files in a tree) needs no threads.
    let first = source.next_chunk(opts.chunk_size, None).map_err(read_err)?;
    if threads <= 1 || first.len() < opts.chunk_size {
        let mut next = Some(first);
        while let Some(chunk) = next.take() {
            let n = chunk.len();
            if n == 0 && tree.leaves > 0 {
                break;
            }
            done += n as u64;
            let spare = tree.push_leaf(sink, make_leaf(chunk, opts))?;
            progress(done);
            if n == opts.chunk_size {
                let spare = match spare {
                    Chunk::Owned(v) => Some(v),
                    Chunk::Shared { .. } => None,
                };
                next = Some(
                    source
                        .next_chunk(opts.chunk_size, spare)
                        .map_err(read_err)?,
                );
            }
        }
        return tree.finish(sink);
    }

    std::thread::scope(|s| -> Result<()> {
        // Up to ~32 MiB per queue in flight, so hashing goes on while the store flushes a batch.
        let depth = (IN_FLIGHT_BYTES / opts.chunk_size).clamp(threads * 2, 1024);
        let (chunk_tx, chunk_rx) = mpsc::sync_channel::<(u64, Chunk)>(depth);
        let (leaf_tx, leaf_rx) = mpsc::sync_channel::<(u64, Leaf)>(depth);
        // Buffers come back from the store side for reuse: no fresh zeroed pages per chunk.
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let chunk_rx = Arc::new(Mutex::new(chunk_rx));
        let chunk_size = opts.chunk_size;
        let reader_thread = s.spawn(move || -> std::io::Result<()> {
            if chunk_tx.send((0, first)).is_err() {
                return Ok(());
            }
            let mut seq = 1u64;
            loop {
                let chunk = source.next_chunk(chunk_size, free_rx.try_recv().ok())?;
                let n = chunk.len();
                if n == 0 {
                    return Ok(());
                }
                if chunk_tx.send((seq, chunk)).is_err() {
                    return Ok(());
                }
                seq += 1;
                if n < chunk_size {
                    return Ok(());
                }
            }
        });
        for _ in 0..threads {
            let leaf_tx = leaf_tx.clone();
            // Each worker owns a handle: when all have stopped, the reader's send fails.
            let chunk_rx = Arc::clone(&chunk_rx);
            s.spawn(move || {
                loop {
                    let next = match chunk_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, chunk)) = next else { return };
                    if leaf_tx.send((seq, make_leaf(chunk, opts))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(leaf_tx);
        drop(chunk_rx);
        let mut pending: BTreeMap<u64, Leaf> = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        for (seq, leaf) in leaf_rx.iter() {
            pending.insert(seq, leaf);
            while let Some(leaf) = pending.remove(&next) {
                done += leaf.filesize;
                match tree.push_leaf(sink, leaf) {
                    Ok(Chunk::Owned(buf)) if buf.capacity() >= chunk_size => {
                        let _ = free_tx.send(buf);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                progress(done);
                next += 1;
            }
            if result.is_err() {
                break;
            }
        }
        // Stop the pipeline (dropping the receiver unblocks the workers).
        drop(leaf_rx);
        let read = reader_thread
            .join()
            .map_err(|_| Error::Options("internal: reader thread panicked".into()))?;
        result?;
        read.map_err(|e| Error::io("reading input", e))?;
        if !pending.is_empty() {
            return Err(Error::Options(
                "internal: chunks lost in the hashing pipeline".into(),
            ));
        }
        Ok(())
    })?;
    tree.finish(sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Profile;
    use crate::{MemoryBlocks, NullSink};

    fn cid(p: Profile, data: &[u8]) -> String {
        import_bytes(&mut NullSink, data, &ImportOptions::from_profile(p))
            .unwrap()
            .cid
            .to_string()
    }

    #[test]
    fn well_known_files() {
        assert_eq!(
            cid(Profile::KuboV0, b""),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        assert_eq!(
            cid(Profile::KuboV1, b""),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn chunk_boundaries_agree_across_paths() {
        for len in [0usize, 1, 999, 1000, 1001, 2000, 7000, 7001] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let mut o = ImportOptions::from_profile(Profile::KuboV0);
            o.chunk_size = 1000;
            o.max_links = 3;
            o.threads = 1;
            let seq = import_bytes(&mut NullSink, &data, &o).unwrap();
            o.threads = 2;
            let par = import_bytes(&mut NullSink, &data, &o).unwrap();
            assert_eq!(seq, par, "length {len}");
            assert_eq!(seq.size, len as u64);
        }
    }

    #[test]
    fn parallel_equals_sequential() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for p in [Profile::KuboV0, Profile::KuboV1, Profile::V1_2025] {
            let mut o = ImportOptions::from_profile(p);
            o.chunk_size = 1000;
            o.max_links = 7;
            o.threads = 1;
            let mut a = MemoryBlocks::default();
            let seq = import_bytes(&mut a, &data, &o).unwrap();
            o.threads = 3;
            let mut b = MemoryBlocks::default();
            let par = import_bytes(&mut b, &data, &o).unwrap();
            assert_eq!(seq, par);
            assert_eq!(a.blocks.len(), b.blocks.len());
            assert_eq!(seq.size, data.len() as u64);
        }
    }
}
