//! `kiln rootfs import`: a directory or a tar archive as a root file system for builds,
//! imported with kiln-build's file-mode convention (`kiln_build::content`), pinned as
//! `rootfs:NAME`.
//!
//! The tree is read here either way ([`read_tree`]); the node
//! ([`crate::client::Node::rootfs_import`]) decides where its blocks go: into a store
//! session (pinned when it commits), or to the daemon as one CAR. Either way the CID alone
//! is printed on stdout and the same summary on stderr.

use super::Repo;
use crate::cli::RootfsCommand;
use anyhow::{Context, Result, anyhow, bail};
use kiln_build::content::recorded_mode;
use kiln_core::BlockSink;
use kiln_core::import::{self, ChunkSource, DirEntry, ImportOptions, Imported, ReaderSource};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc;

/// The prefix of the pin names of root file systems.
pub const PIN_PREFIX: &str = "rootfs:";

/// A node of the tree being assembled: files and symlinks are imported as soon as they are
/// read, directories are built at the end (tar entries come in any order).
enum Node {
    File(Imported),
    Symlink(Imported),
    Dir(BTreeMap<String, Node>),
}

use crate::client::RootfsCounts as Counts;

struct Tree<'a> {
    root: BTreeMap<String, Node>,
    opts: ImportOptions,
    sink: &'a mut dyn BlockSink,
    counts: Counts,
}

impl<'a> Tree<'a> {
    fn new(sink: &'a mut dyn BlockSink) -> Self {
        Tree {
            root: BTreeMap::new(),
            opts: kiln_build::tree::options(),
            sink,
            counts: Counts::default(),
        }
    }

    /// The directory `parents` names, made (empty) where missing.
    fn dir_mut(&mut self, parents: &[String], shown: &str) -> Result<&mut BTreeMap<String, Node>> {
        let mut cur = &mut self.root;
        for (i, name) in parents.iter().enumerate() {
            let next = cur
                .entry(name.clone())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            match next {
                Node::Dir(d) => cur = d,
                _ => bail!(
                    "{shown}: {} is not a directory in the archive",
                    parents[..=i].join("/")
                ),
            }
        }
        Ok(cur)
    }

    /// Put `node` at `path` (not the root): a directory over a directory keeps what it holds;
    /// a file or symlink replaces a file or symlink (as unpacking the archive would).
    fn insert(&mut self, path: &[String], node: Node, shown: &str) -> Result<()> {
        let (name, parents) = path
            .split_last()
            .ok_or_else(|| anyhow!("{shown}: empty path"))?;
        let dir = self.dir_mut(parents, shown)?;
        match (dir.get(name), &node) {
            (Some(Node::Dir(_)), Node::Dir(_)) => {}
            (Some(Node::Dir(_)), _) => {
                bail!("{shown}: a directory of the same name is already in the archive")
            }
            (Some(_), Node::Dir(_)) => {
                bail!("{shown}: a file of the same name is already in the archive")
            }
            _ => {
                dir.insert(name.clone(), node);
            }
        }
        Ok(())
    }

    fn get(&self, path: &[String]) -> Option<&Node> {
        let (name, parents) = path.split_last()?;
        let mut cur = &self.root;
        for p in parents {
            match cur.get(p)? {
                Node::Dir(d) => cur = d,
                _ => return None,
            }
        }
        cur.get(name)
    }

    fn file(&mut self, source: &mut dyn ChunkSource, perm: u32, shown: &str) -> Result<Node> {
        let node = import::import_chunks_with_mode(
            self.sink,
            source,
            &self.opts,
            recorded_mode(perm),
            &mut |_| {},
        )
        .with_context(|| format!("importing {shown}"))?;
        self.counts.files += 1;
        self.counts.bytes += node.size;
        Ok(Node::File(node))
    }

    fn symlink(&mut self, target: &[u8]) -> Result<Node> {
        self.counts.symlinks += 1;
        Ok(Node::Symlink(import::symlink(
            self.sink, target, &self.opts,
        )?))
    }

    /// Build the directories, innermost first; the root directory's CID.
    fn finish(mut self) -> Result<(Imported, Counts)> {
        let root = std::mem::take(&mut self.root);
        let cid = self.build(root)?;
        Ok((cid, self.counts))
    }

    fn build(&mut self, dir: BTreeMap<String, Node>) -> Result<Imported> {
        let mut entries = Vec::with_capacity(dir.len());
        for (name, node) in dir {
            let imported = match node {
                Node::File(i) | Node::Symlink(i) => i,
                Node::Dir(d) => self.build(d)?,
            };
            entries.push(DirEntry::new(name, &imported));
        }
        self.counts.dirs += 1;
        Ok(import::build_directory(self.sink, entries, &self.opts)?)
    }
}

/// A file name as UTF-8 (UnixFS names are strings).
fn utf8_name(name: &[u8], shown: &dyn Fn() -> String) -> Result<String> {
    match std::str::from_utf8(name) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => bail!("{}: file name is not valid UTF-8", shown()),
    }
}

/// Walk a directory into the tree: entries in name order, symlinks never followed, special
/// files counted and left out.
fn walk(tree: &mut Tree, dir: &Path, at: &mut Vec<String>) -> Result<()> {
    if at.len() > kiln_build::content::MAX_DEPTH {
        bail!(
            "{}: more than {} directories deep",
            dir.display(),
            kiln_build::content::MAX_DEPTH
        );
    }
    let mut children: Vec<_> = fs::read_dir(dir)
        .and_then(|rd| rd.collect::<std::io::Result<_>>())
        .with_context(|| format!("cannot list {}", dir.display()))?;
    children.sort_by_key(|c| c.file_name());
    if !at.is_empty() {
        tree.insert(at, Node::Dir(BTreeMap::new()), &dir.display().to_string())?;
    }
    for c in children {
        let path = c.path();
        let name = utf8_name(c.file_name().as_bytes(), &|| path.display().to_string())?;
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let shown = path.display().to_string();
        at.push(name);
        let ft = meta.file_type();
        if ft.is_dir() {
            walk(tree, &path, at)?;
        } else if ft.is_symlink() {
            let target =
                fs::read_link(&path).with_context(|| format!("cannot read link {shown}"))?;
            let node = tree.symlink(target.as_os_str().as_bytes())?;
            tree.insert(at, node, &shown)?;
        } else if ft.is_file() {
            let mut f = fs::File::open(&path).with_context(|| format!("cannot open {shown}"))?;
            let mapped = f.try_clone().ok().and_then(|dup| {
                crate::mapped::MappedFile::new(dup, meta.len(), tree.opts.chunk_size)
            });
            let perm = meta.permissions().mode();
            let node = match mapped {
                Some(mut m) => tree.file(&mut m, perm, &shown)?,
                None => tree.file(&mut ReaderSource(&mut f), perm, &shown)?,
            };
            tree.insert(at, node, &shown)?;
        } else {
            tree.counts.skipped += 1;
        }
        at.pop();
    }
    Ok(())
}

/// One message from the thread reading a tar archive.
enum TarMsg {
    Entry {
        path: Vec<u8>,
        kind: tar::EntryType,
        mode: u32,
        link: Option<Vec<u8>>,
    },
    /// Bytes of the current entry.
    Data(Vec<u8>),
    /// The end of the current entry's bytes.
    End,
    Failed(String),
}

/// Bytes sent per message while reading a tar entry.
const TAR_PIECE: usize = 256 << 10;

fn is_file_kind(k: tar::EntryType) -> bool {
    matches!(
        k,
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse
    )
}

/// Read the archive on a thread of its own (the tar reader cannot cross threads, and the
/// importer hashes on several): headers and bytes come back through a bounded channel.
fn read_tar(input: Box<dyn Read + Send>, tx: mpsc::SyncSender<TarMsg>) {
    let fail = |tx: &mpsc::SyncSender<TarMsg>, e: std::io::Error| {
        let _ = tx.send(TarMsg::Failed(e.to_string()));
    };
    let mut archive = tar::Archive::new(input);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return fail(&tx, e),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return fail(&tx, e),
        };
        let kind = entry.header().entry_type();
        let mode = match entry.header().mode() {
            Ok(m) => m,
            Err(e) => return fail(&tx, e),
        };
        let msg = TarMsg::Entry {
            path: entry.path_bytes().into_owned(),
            kind,
            mode,
            link: entry.link_name_bytes().map(|l| l.into_owned()),
        };
        if tx.send(msg).is_err() {
            return;
        }
        if !is_file_kind(kind) {
            continue;
        }
        loop {
            let mut buf = vec![0u8; TAR_PIECE];
            let mut n = 0;
            while n < buf.len() {
                match entry.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return fail(&tx, e),
                }
            }
            buf.truncate(n);
            let last = n < TAR_PIECE;
            if n > 0 && tx.send(TarMsg::Data(buf)).is_err() {
                return;
            }
            if last {
                break;
            }
        }
        if tx.send(TarMsg::End).is_err() {
            return;
        }
    }
}

/// A tar entry's bytes as a [`ChunkSource`], from the reading thread's messages.
struct TarSource<'a> {
    rx: &'a mut mpsc::Receiver<TarMsg>,
    pending: Vec<u8>,
    ended: bool,
}

impl ChunkSource for TarSource<'_> {
    fn next_chunk(
        &mut self,
        size: usize,
        spare: Option<Vec<u8>>,
    ) -> std::io::Result<import::Chunk> {
        let mut out = spare.unwrap_or_default();
        out.clear();
        while out.len() < size {
            if self.pending.is_empty() {
                if self.ended {
                    break;
                }
                match self.rx.recv() {
                    Ok(TarMsg::Data(d)) => self.pending = d,
                    Ok(TarMsg::End) => self.ended = true,
                    Ok(TarMsg::Failed(e)) => return Err(std::io::Error::other(e)),
                    Ok(TarMsg::Entry { .. }) | Err(_) => {
                        return Err(std::io::Error::other("the tar reader stopped"));
                    }
                }
                continue;
            }
            let take = (size - out.len()).min(self.pending.len());
            out.extend_from_slice(&self.pending[..take]);
            self.pending.drain(..take);
        }
        Ok(import::Chunk::Owned(out))
    }
}

/// A path inside an archive as clean components: `./` and empty segments dropped; absolute
/// paths and `..` refused, naming the entry.
fn archive_path(raw: &[u8], what: &str) -> Result<Vec<String>> {
    let shown = String::from_utf8_lossy(raw);
    if raw.starts_with(b"/") {
        bail!("{what} {shown:?} is an absolute path; refusing the archive");
    }
    let mut out = Vec::new();
    if raw.split(|&b| b == b'/').count() > kiln_build::content::MAX_DEPTH {
        bail!("{what} {shown:?} is too deep");
    }
    for seg in raw.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => bail!("{what} {shown:?} has a '..' component; refusing the archive"),
            s if s.contains(&0) => bail!("{what} {shown:?} contains a NUL byte"),
            s => out.push(utf8_name(s, &|| format!("{what} {shown:?}"))?),
        }
    }
    Ok(out)
}

fn import_tar(tree: &mut Tree, file: fs::File, shown: &str) -> Result<()> {
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 2];
    let n = input.read(&mut magic).context("reading")?;
    input.rewind().context("reading")?;
    let input: Box<dyn Read + Send> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let (tx, rx) = mpsc::sync_channel(16);
    std::thread::scope(|s| -> Result<()> {
        let reader = s.spawn(move || read_tar(input, tx));
        // On an error below, `rx` is dropped as this closure returns, so the reader's next
        // send fails and it stops before the scope waits for it.
        let mut rx = rx;
        let mut entries = 0u64;
        while let Ok(msg) = rx.recv() {
            let (raw, kind, mode, link) = match msg {
                TarMsg::Entry {
                    path,
                    kind,
                    mode,
                    link,
                } => (path, kind, mode, link),
                // The tar reader's messages may quote raw header bytes: one line, cut short.
                TarMsg::Failed(_) if entries == 0 => {
                    bail!("not a tar archive (plain or gzip-compressed)")
                }
                TarMsg::Failed(e) => {
                    let first: String = e.lines().next().unwrap_or("").chars().take(120).collect();
                    bail!(
                        "the tar archive is damaged after {}: {first}",
                        plural(entries, "entry", "entries")
                    )
                }
                TarMsg::Data(_) | TarMsg::End => bail!("internal: tar entry out of step"),
            };
            entries += 1;
            let path = archive_path(&raw, "tar entry")?;
            let entry = format!("tar entry {:?}", String::from_utf8_lossy(&raw));
            use tar::EntryType as T;
            match kind {
                k if is_file_kind(k) => {
                    let mut src = TarSource {
                        rx: &mut rx,
                        pending: Vec::new(),
                        ended: false,
                    };
                    let node = tree.file(&mut src, mode, &entry)?;
                    // Drain what the importer did not need (nothing, normally).
                    while !src.ended {
                        src.next_chunk(TAR_PIECE, None)
                            .with_context(|| format!("reading {entry}"))?;
                    }
                    if path.is_empty() {
                        bail!("{entry}: a file cannot be the root");
                    }
                    tree.insert(&path, node, &entry)?;
                }
                T::Directory => {
                    if !path.is_empty() {
                        tree.insert(&path, Node::Dir(BTreeMap::new()), &entry)?;
                    }
                }
                T::Symlink => {
                    let target = link.unwrap_or_default();
                    if path.is_empty() {
                        bail!("{entry}: a symlink cannot be the root");
                    }
                    let node = tree.symlink(&target)?;
                    tree.insert(&path, node, &entry)?;
                }
                T::Link => {
                    let raw_target = link.unwrap_or_default();
                    let target = archive_path(&raw_target, "hard link target")?;
                    let copy = match tree.get(&target) {
                        Some(Node::File(i)) => Node::File(*i),
                        Some(Node::Symlink(i)) => Node::Symlink(*i),
                        Some(Node::Dir(_)) => bail!("{entry}: a hard link to a directory"),
                        None => bail!(
                            "{entry}: hard link to {:?}, which is not earlier in the archive",
                            String::from_utf8_lossy(&raw_target)
                        ),
                    };
                    if let Node::File(i) = &copy {
                        tree.counts.files += 1;
                        tree.counts.bytes += i.size;
                    }
                    tree.counts.hardlinks += 1;
                    tree.insert(&path, copy, &entry)?;
                }
                // PAX global headers carry no file.
                T::XGlobalHeader => {}
                // Left out, but its directory is made, as unpacking the archive would.
                _ => {
                    if let Some((_, parents)) = path.split_last() {
                        tree.dir_mut(parents, &entry)?;
                    }
                    tree.counts.skipped += 1;
                }
            }
        }
        reader
            .join()
            .map_err(|_| anyhow!("internal: the tar reader panicked"))
    })
    .with_context(|| shown.to_string())
}

/// The pin name's default: the base name, without a tar extension.
fn default_name(path: &Path) -> Result<String> {
    let full = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let base = full
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("cannot derive a name from {}; use --name", path.display()))?;
    let stem = [".tar.gz", ".tgz", ".tar"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .filter(|s| !s.is_empty())
        .unwrap_or(base);
    Ok(stem.to_string())
}

/// Read the directory or archive at `path` into `sink`; the root and what was imported.
pub(crate) fn read_tree(sink: &mut dyn BlockSink, path: &Path) -> Result<(Imported, Counts)> {
    let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut tree = Tree::new(sink);
    if meta.is_dir() {
        walk(&mut tree, path, &mut Vec::new())?;
    } else if meta.is_file() {
        let f = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        import_tar(&mut tree, f, &path.display().to_string())?;
    } else {
        bail!(
            "{} is neither a directory nor a tar archive",
            path.display()
        );
    }
    tree.finish()
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn run(repo: &Repo, cmd: RootfsCommand) -> Result<ExitCode> {
    let RootfsCommand::Import { path, name } = cmd;
    // Refuse a missing input before reaching the repository or the daemon.
    fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = match name {
        Some(n) if n.trim().is_empty() => bail!("the name must not be empty"),
        Some(n) => n,
        None => default_name(&path)?,
    };
    let pin = format!("{PIN_PREFIX}{name}");
    let (root, counts) = repo.node()?.rootfs_import(&path, &name)?;
    if counts.skipped > 0 {
        eprintln!(
            "warning: skipped {} (device nodes, fifos, sockets): a root file system holds only files, directories and symlinks",
            plural(counts.skipped, "special file", "special files")
        );
    }
    let hard = if counts.hardlinks > 0 {
        format!(
            " ({} copied)",
            plural(counts.hardlinks, "hard link", "hard links")
        )
    } else {
        String::new()
    };
    eprintln!(
        "imported {} of {} bytes{hard}, {}, {}; pinned as {pin}",
        plural(counts.files, "file", "files"),
        counts.bytes,
        plural(counts.dirs, "directory", "directories"),
        plural(counts.symlinks, "symlink", "symlinks"),
    );
    println!("{}", root.cid);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths() {
        let ok = |p: &str| archive_path(p.as_bytes(), "tar entry").unwrap();
        assert_eq!(ok("./bin/sh"), ["bin", "sh"]);
        assert_eq!(ok("bin//sh/"), ["bin", "sh"]);
        assert!(ok("./").is_empty());
        assert!(ok(".").is_empty());
        for bad in ["/etc/passwd", "../evil", "a/../../b", "a/.."] {
            let e = archive_path(bad.as_bytes(), "tar entry").unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert!(archive_path(b"a\xffb", "tar entry").is_err());
    }

    #[test]
    fn default_names() {
        let d = tempfile::tempdir().unwrap();
        for (file, want) in [
            ("alpine.tar.gz", "alpine"),
            ("x.tgz", "x"),
            ("y.tar", "y"),
            ("plain", "plain"),
            (".tar", ".tar"),
        ] {
            let p = d.path().join(file);
            fs::write(&p, b"").unwrap();
            assert_eq!(default_name(&p).unwrap(), want);
        }
        let sub = d.path().join("root");
        fs::create_dir(&sub).unwrap();
        assert_eq!(default_name(&sub.join(".")).unwrap(), "root");
    }
}
