//! `kiln add`: files, directories, symlinks and stdin, with kubo's flags.

use super::Repo;
use crate::cli::{AddArgs, truthy};
use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use kiln_core::import::{self, ChunkSource, DirEntry, ImportOptions, Imported, ReaderSource};
use kiln_core::{BlockSink, NullSink};
use std::fs;
use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Import options from the flags.
pub fn options(a: &AddArgs) -> Result<ImportOptions> {
    Ok(ImportOptions::from_flags(
        a.profile.as_deref(),
        a.cid_version,
        a.raw_leaves.as_deref().map(truthy),
        a.chunker.as_deref(),
    )?)
}

struct Adder<'a> {
    args: &'a AddArgs,
    opts: ImportOptions,
    sink: &'a mut dyn BlockSink,
    out: std::io::StdoutLock<'static>,
    bar: ProgressBar,
    done_before: u64,
}

impl Adder<'_> {
    fn report(&mut self, cid: &cid::Cid, name: &str) -> Result<()> {
        if self.args.quieter {
            return Ok(());
        }
        self.bar.suspend(|| {
            if self.args.quiet {
                writeln!(self.out, "{cid}")
            } else if name.is_empty() {
                writeln!(self.out, "added {cid}")
            } else {
                writeln!(self.out, "added {cid} {name}")
            }
        })?;
        Ok(())
    }

    /// Import one file's bytes, advancing the progress bar.
    fn chunks(&mut self, source: &mut dyn ChunkSource) -> Result<Imported> {
        let bar = self.bar.clone();
        let base = self.done_before;
        let node = import::import_chunks(self.sink, source, &self.opts, &mut |n| {
            bar.set_position(base + n)
        })?;
        self.done_before += node.size;
        Ok(node)
    }
}

/// What a walk over the inputs does with each file, symlink and directory; directories are
/// visited after their entries, in name order.
pub(crate) trait Visit {
    type Node;
    fn file(&mut self, path: &Path, meta: &fs::Metadata, display: &str) -> Result<Self::Node>;
    fn symlink(&mut self, target: &[u8], display: &str) -> Result<Self::Node>;
    fn directory(
        &mut self,
        entries: Vec<(String, Self::Node)>,
        display: &str,
    ) -> Result<Self::Node>;
}

/// Walk `path` (named `display` in the output), refusing what cannot be added.
pub(crate) fn walk<V: Visit>(
    v: &mut V,
    args: &AddArgs,
    path: &Path,
    display: &str,
) -> Result<V::Node> {
    let meta =
        fs::symlink_metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target =
            fs::read_link(path).with_context(|| format!("cannot read link {}", path.display()))?;
        v.symlink(target.as_os_str().as_bytes(), display)
    } else if ft.is_dir() {
        if !args.recursive {
            bail!(
                "{} is a directory (use -r to add directories)",
                path.display()
            );
        }
        let mut children: Vec<_> = fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("cannot list {}", path.display()))?;
        children.sort_by_key(|c| c.file_name());
        let mut entries = Vec::with_capacity(children.len());
        for c in children {
            let name = c.file_name();
            let Some(name) = name.to_str() else {
                bail!("{}: file name is not valid UTF-8", c.path().display());
            };
            if name.starts_with('.') && !args.hidden {
                continue;
            }
            let shown = if display.is_empty() {
                name.to_string()
            } else {
                format!("{display}/{name}")
            };
            let child = walk(v, args, &c.path(), &shown)?;
            entries.push((name.to_string(), child));
        }
        v.directory(entries, display)
    } else if ft.is_file() {
        v.file(path, &meta, display)
    } else {
        let kind = if ft.is_fifo() {
            "a named pipe"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_block_device() || ft.is_char_device() {
            "a device"
        } else {
            "an unsupported file type"
        };
        bail!(
            "{} is {kind}; only files, directories and symlinks can be added",
            path.display()
        );
    }
}

impl Visit for Adder<'_> {
    type Node = Imported;

    fn file(&mut self, path: &Path, meta: &fs::Metadata, display: &str) -> Result<Imported> {
        let mut f =
            fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mapped = f
            .try_clone()
            .ok()
            .and_then(|dup| crate::mapped::MappedFile::new(dup, meta.len(), self.opts.chunk_size));
        let node = match mapped {
            Some(mut m) => self.chunks(&mut m),
            None => self.chunks(&mut ReaderSource(&mut f)),
        }
        .with_context(|| format!("adding {}", path.display()))?;
        self.report(&node.cid, display)?;
        Ok(node)
    }

    fn symlink(&mut self, target: &[u8], display: &str) -> Result<Imported> {
        let node = import::symlink(self.sink, target, &self.opts)?;
        self.report(&node.cid, display)?;
        Ok(node)
    }

    fn directory(&mut self, entries: Vec<(String, Imported)>, display: &str) -> Result<Imported> {
        let entries = entries
            .iter()
            .map(|(name, n)| DirEntry::new(name.clone(), n))
            .collect();
        let node = import::build_directory(self.sink, entries, &self.opts)?;
        self.report(&node.cid, display)?;
        Ok(node)
    }
}

/// Sum of file sizes under the inputs, for the progress bar.
fn total_size(paths: &[std::path::PathBuf], hidden: bool) -> u64 {
    fn walk(p: &Path, hidden: bool) -> u64 {
        let Ok(m) = fs::symlink_metadata(p) else {
            return 0;
        };
        if m.is_file() {
            return m.len();
        }
        if !m.is_dir() {
            return 0;
        }
        let Ok(rd) = fs::read_dir(p) else { return 0 };
        rd.flatten()
            .filter(|e| hidden || !e.file_name().as_bytes().starts_with(b"."))
            .map(|e| walk(&e.path(), hidden))
            .sum()
    }
    paths.iter().map(|p| walk(p, hidden)).sum()
}

pub(crate) fn base_name(p: &Path) -> Result<String> {
    let name = p
        .file_name()
        .map(|n| n.to_str().map(str::to_string))
        .unwrap_or_else(|| Some(String::new()));
    match name {
        Some(n) => Ok(n),
        None => bail!("{}: file name is not valid UTF-8", p.display()),
    }
}

pub fn run(repo: &Repo, mut args: AddArgs) -> Result<ExitCode> {
    if args.paths.is_empty() {
        // As `ipfs add` does, no path means standard input; a terminal there is a mistake.
        if std::io::stdin().is_terminal() {
            bail!("nothing to add: give a path, or pipe data to standard input");
        }
        args.paths.push(PathBuf::from("-"));
    }
    let opts = options(&args)?;
    let force_progress = args.progress.as_deref().map(truthy);
    let bar = if args.quiet || args.quieter {
        ProgressBar::hidden()
    } else {
        let stdin = args.paths.iter().any(|p| p.as_os_str() == "-");
        crate::progress::bytes(
            || (!stdin).then(|| total_size(&args.paths, args.hidden)),
            force_progress,
        )
    };
    if args.only_hash {
        // Nothing is stored: no repository is needed.
        let roots = import(&args, opts, &mut NullSink, bar)?;
        print_last(&args, &roots);
    } else {
        repo.node()?.add(&args, opts, bar)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// With `--quieter`, the one CID printed: the last root's.
pub(crate) fn print_last(args: &AddArgs, roots: &[Imported]) {
    if let Some(last) = roots.last().filter(|_| args.quieter) {
        println!("{}", last.cid);
    }
}

/// Walk and import the inputs into `sink`, printing each entry as it is added; the roots
/// (one, the wrapping directory, with `-w`).
pub(crate) fn import(
    args: &AddArgs,
    opts: ImportOptions,
    sink: &mut dyn BlockSink,
    bar: ProgressBar,
) -> Result<Vec<Imported>> {
    let mut adder = Adder {
        args,
        opts,
        sink,
        out: std::io::stdout().lock(),
        bar,
        done_before: 0,
    };
    let mut roots = Vec::new();
    for p in &args.paths {
        let (node, name) = if p.as_os_str() == "-" {
            let mut stdin = std::io::stdin();
            let node = adder
                .chunks(&mut ReaderSource(&mut stdin))
                .context("adding standard input")?;
            let name = node.cid.to_string();
            if !args.wrap_with_directory {
                adder.report(&node.cid, &name)?;
            }
            (node, name)
        } else {
            let name = base_name(p)?;
            // Printed names start at the base name of each input, as ipfs add does.
            (walk(&mut adder, args, p, &name)?, name)
        };
        roots.push((node, name));
    }
    let final_root = if args.wrap_with_directory {
        let entries = roots
            .iter()
            .map(|(n, name)| DirEntry::new(name.clone(), n))
            .collect();
        let w = import::build_directory(adder.sink, entries, &adder.opts)?;
        adder.report(&w.cid, "")?;
        vec![w]
    } else {
        roots.into_iter().map(|(n, _)| n).collect()
    };
    adder.bar.finish_and_clear();
    Ok(final_root)
}
