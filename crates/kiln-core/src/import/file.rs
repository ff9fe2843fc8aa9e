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
///
/// With a mode, every node above the leaves carries it (as in the JS importer), and the first
/// leaf is held back until a second one comes: a file of one chunk becomes a single File node
/// carrying the bytes inline and the mode.
struct Balanced<'a> {
    opts: &'a ImportOptions,
    mode: Option<u32>,
    levels: Vec<Vec<Child>>,
    leaves: u64,
    /// With a mode: the first leaf, not yet stored.
    held: Option<Leaf>,
}

impl<'a> Balanced<'a> {
    fn new(opts: &'a ImportOptions, mode: Option<u32>) -> Self {
        Balanced {
            opts,
            mode,
            levels: vec![Vec::new()],
            leaves: 0,
            held: None,
        }
    }

    /// Store a leaf and place it in the tree; gives its buffer back for reuse.
    fn push_leaf(&mut self, sink: &mut dyn BlockSink, leaf: Leaf) -> Result<Chunk> {
        self.leaves += 1;
        if self.mode.is_some() && self.leaves == 1 {
            self.held = Some(leaf);
            return Ok(Chunk::Owned(Vec::new()));
        }
        if let Some(first) = self.held.take() {
            self.store_leaf(sink, first)?;
        }
        self.store_leaf(sink, leaf)
    }

    fn store_leaf(&mut self, sink: &mut dyn BlockSink, leaf: Leaf) -> Result<Chunk> {
        sink.put(&leaf.cid, leaf.data.bytes(), &[])?;
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
        u.mode = self.mode;
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
        if let Some(leaf) = self.held.take() {
            return self.single_with_mode(sink, leaf);
        }
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

impl Balanced<'_> {
    /// A file of one chunk with a mode: one File node holding the bytes inline, its size and
    /// the mode (what the JS importer makes; kubo's `--preserve-mode` gives the same node).
    fn single_with_mode(&self, sink: &mut dyn BlockSink, leaf: Leaf) -> Result<Imported> {
        let mut u = if leaf.cid.codec() == RAW {
            let mut u = UnixfsData::new(DataType::File);
            if leaf.filesize > 0 {
                u.data = Some(leaf.data.bytes().to_vec());
            }
            u
        } else {
            let node = PbNode::decode(leaf.data.bytes(), Some(leaf.cid))?;
            UnixfsData::decode(node.data.as_deref().unwrap_or_default(), Some(leaf.cid))?
        };
        u.filesize = Some(leaf.filesize);
        u.mode = self.mode;
        let bytes = PbNode {
            links: Vec::new(),
            data: Some(u.encode()),
        }
        .encode();
        let cid = cids::cid_of(self.opts.cid_version, DAG_PB, &bytes);
        sink.put(&cid, &bytes, &[])?;
        Ok(Imported {
            cid,
            tsize: bytes.len() as u64,
            size: leaf.filesize,
        })
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
    import_chunks_with_mode(sink, source, opts, None, progress)
}

/// Import a file as [`import_chunks`] does, recording `mode` (UnixFS 1.5 `mode`, e.g.
/// `0o755`) in its root. With `None` the result is exactly [`import_chunks`]'s. With a mode
/// the root is always a dag-pb File node, since a raw block has nowhere to keep one: a file
/// of one chunk becomes a single File node holding its bytes inline, a longer file gets the
/// mode on every node above its leaves. Both are byte for byte what the JS importer
/// (`ipfs-unixfs-importer`) makes for an entry with `mode` set. (kubo's `--preserve-mode`
/// differs only for multi-chunk files: it turns raw leaves off and sets the mode on the root
/// alone.)
pub fn import_chunks_with_mode(
    sink: &mut dyn BlockSink,
    source: &mut dyn ChunkSource,
    opts: &ImportOptions,
    mode: Option<u32>,
    progress: &mut dyn FnMut(u64),
) -> Result<Imported> {
    let threads = opts.hash_threads();
    let mut tree = Balanced::new(opts, mode);
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

    /// Root CIDs from `ipfs-unixfs-importer` 17.1.1 (the interop harness's pin) for the same
    /// bytes, without and with `mode: 0o755` (`chunker: fixedSize`, `layout: balanced` with
    /// the same chunk size and links per node).
    #[test]
    fn mode_matches_the_js_importer() {
        let data = |n: usize| -> Vec<u8> { (0..n).map(|i| (i * 7 + (i >> 5)) as u8).collect() };
        // (profile, bytes, chunk size, max links, CID without mode, CID with 0o755)
        type Case = (Profile, Vec<u8>, usize, usize, &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (
                Profile::V1_2025,
                vec![],
                0,
                0,
                "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
                "bafybeihotrbjn3vr2qdxsrxwb352tadnvc4kyxsl2ahvli3uhapwrmmzda",
            ),
            (
                Profile::V1_2025,
                b"hello\n".to_vec(),
                0,
                0,
                "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am",
                "bafybeigci6lwb2rb6tv4ld2a6i27wpesmp2kprahfzauwbcvtqgb2iqmmi",
            ),
            (
                Profile::KuboV1,
                b"hello\n".to_vec(),
                0,
                0,
                "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am",
                "bafybeigci6lwb2rb6tv4ld2a6i27wpesmp2kprahfzauwbcvtqgb2iqmmi",
            ),
            (
                Profile::V1_2025,
                data(1000),
                1000,
                0,
                "bafkreibacjc6w5chahh6wivfhdyfyd5xlxaewvprkpc2x6zgaiie25uflu",
                "bafybeigiagymwrq76jzw4fep4mf6mmnenferdjxgqhut6hhqramypxasee",
            ),
            (
                Profile::V1_2025,
                data(2500),
                1000,
                0,
                "bafybeifdgdpxea62ehjmwwmr7bxlf2w3dzkklybvze3gvzgx5et2gri2by",
                "bafybeihbpkpadsgn5tbqkegio2pskjuoc5smmrv7qpmwickedajd2hnn7e",
            ),
            (
                Profile::V1_2025,
                data(5500),
                1000,
                3,
                "bafybeicxopn34yf4a2panhxegap5lvfqj6hvpmqjbstgttwh65hosegsq4",
                "bafybeid5kev6cxjdutgxpuzfr7epkiggiyc4nn2u2egi7qm2mrmrrt57ve",
            ),
            // Exactly max_links and max_links² leaves: the root is a full level.
            (
                Profile::V1_2025,
                data(3000),
                1000,
                3,
                "bafybeiey2wqu7h3vpcqjkfpapmwxia5g6stpq2oybaffy7v6fln4axgttu",
                "bafybeids3iqcakxhmvea22mls7myltjpg4qfgvolwafsvyczs5sfnhf7se",
            ),
            (
                Profile::V1_2025,
                data(9000),
                1000,
                3,
                "bafybeicjxmc3wpvp65fadeg7sb6ow5dg7zwboc5egaro4e5izm3sn5vzca",
                "bafybeicf6yn6vc3hslrvx77oko5ugvyrgjvyj5tx27yla3ztg55sjss2gy",
            ),
            (
                Profile::V1_2025,
                data(9001),
                1000,
                3,
                "bafybeibf4a7hi2dds2lrtswu7dfqe4jwvawyjaxmyp2kw6q5gfh6oybzpu",
                "bafybeibn6l6lid4yendgvs627flexqa4lewh6v2hvuobi53ddrs6hepv6y",
            ),
            (
                Profile::KuboV0,
                data(2500),
                1000,
                0,
                "QmaZHDTSYdeabbs4n8GKSoGXd15QWHA8kjsD3s1GPSH5xa",
                "QmdqzqjGn9LQJzimC8v6Dw8Pj7ZpX4rujDmPwgJdhMhxTS",
            ),
            (
                Profile::KuboV0,
                data(9000),
                1000,
                3,
                "QmPucCTubRroEEh8L3FuXGSWQrtjbKjFj3PhrX7ThKj6Eb",
                "QmPSw61SKtKt5GKr6tgNEfHAncKSY1irUNxgQ2DbuZZDjC",
            ),
        ];
        for (p, bytes, chunk, links, plain, with_mode) in cases {
            let mut o = ImportOptions::from_profile(p);
            if chunk > 0 {
                o.chunk_size = chunk;
            }
            if links > 0 {
                o.max_links = links;
            }
            for threads in [1, 2] {
                o.threads = threads;
                let what = format!("{p:?} {} bytes, {threads} threads", bytes.len());
                let none = import_bytes(&mut NullSink, &bytes, &o).unwrap();
                assert_eq!(none.cid.to_string(), plain, "{what}");
                let same = import_chunks_with_mode(
                    &mut NullSink,
                    &mut ReaderSource(&mut &bytes[..]),
                    &o,
                    None,
                    &mut |_| {},
                )
                .unwrap();
                assert_eq!(same, none, "{what}: mode None");
                let mut m = MemoryBlocks::default();
                let moded = import_chunks_with_mode(
                    &mut m,
                    &mut ReaderSource(&mut &bytes[..]),
                    &o,
                    Some(0o755),
                    &mut |_| {},
                )
                .unwrap();
                assert_eq!(moded.cid.to_string(), with_mode, "{what}: mode 0o755");
                assert_eq!(moded.size, bytes.len() as u64);
                assert_eq!(
                    crate::export::file_mode(&m, &moded.cid).unwrap(),
                    Some(0o755)
                );
                let mut back = Vec::new();
                crate::export::read_file(&m, &moded.cid, 0, None, &mut back).unwrap();
                assert_eq!(back, bytes, "{what}: bytes read back");
                // Every dag-pb node carries the mode (leaves are raw except in v0).
                for (cid, block) in &m.blocks {
                    if cid.codec() == DAG_PB {
                        let n = PbNode::decode(block, None).unwrap();
                        let u = UnixfsData::decode(n.data.as_deref().unwrap(), None).unwrap();
                        let leaf = n.links.is_empty() && *cid != moded.cid;
                        let want = if leaf { None } else { Some(0o755) };
                        assert_eq!(u.mode, want, "{what}: mode of {cid}");
                    }
                }
                // tsize: the root block plus its links' tsizes, as for any other node.
                let root = PbNode::decode(&m.blocks[&moded.cid], None).unwrap();
                let tsize = m.blocks[&moded.cid].len() as u64
                    + root.links.iter().map(|l| l.tsize).sum::<u64>();
                assert_eq!(moded.tsize, tsize, "{what}: tsize");
            }
        }
    }

    /// Not compared with JS: for a one-chunk file with dag-pb leaves (v0) and a mode, the JS
    /// importer wraps the *encoded* leaf node as the new node's data (its bytes then read back
    /// wrong); kiln makes kubo's node, the leaf's Data message plus the mode.
    #[test]
    fn no_mode_for_raw_leaves_and_plain_nodes() {
        let mut m = MemoryBlocks::default();
        let o = ImportOptions::from_profile(Profile::V1_2025);
        let raw = import_bytes(&mut m, b"x", &o).unwrap();
        assert_eq!(crate::export::file_mode(&m, &raw.cid).unwrap(), None);
        let v0 = import_bytes(&mut m, b"x", &ImportOptions::from_profile(Profile::KuboV0)).unwrap();
        assert_eq!(crate::export::file_mode(&m, &v0.cid).unwrap(), None);
        // A one-chunk dag-pb leaf with a mode keeps its bytes inline and gains the mode.
        let v0m = import_chunks_with_mode(
            &mut m,
            &mut ReaderSource(&mut &b"x"[..]),
            &ImportOptions::from_profile(Profile::KuboV0),
            Some(0o755),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(crate::export::file_mode(&m, &v0m.cid).unwrap(), Some(0o755));
        let mut back = Vec::new();
        crate::export::read_file(&m, &v0m.cid, 0, None, &mut back).unwrap();
        assert_eq!(back, b"x");
    }
}
