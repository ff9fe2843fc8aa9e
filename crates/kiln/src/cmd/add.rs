//! `kiln add`: files, directories, symlinks and stdin, with kubo's flags.

use crate::cli::{AddArgs, truthy};
use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use kiln_core::import::{self, ChunkSource, DirEntry, ImportOptions, Imported, ReaderSource};
use kiln_core::{BlockSink, NullSink};
use kiln_store::PinMode;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
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

    /// Add one path; `display` is the name printed for it.
    fn path(&mut self, path: &Path, display: &str) -> Result<Imported> {
        let meta = fs::symlink_metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let ft = meta.file_type();
        let node = if ft.is_symlink() {
            let target = fs::read_link(path)
                .with_context(|| format!("cannot read link {}", path.display()))?;
            import::symlink(self.sink, target.as_os_str().as_bytes(), &self.opts)?
        } else if ft.is_dir() {
            if !self.args.recursive {
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
                if name.starts_with('.') && !self.args.hidden {
                    continue;
                }
                let shown = if display.is_empty() {
                    name.to_string()
                } else {
                    format!("{display}/{name}")
                };
                let child = self.path(&c.path(), &shown)?;
                entries.push(DirEntry::new(name, &child));
            }
            import::build_directory(self.sink, entries, &self.opts)?
        } else if ft.is_file() {
            let mut f =
                fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let mapped = f.try_clone().ok().and_then(|dup| {
                crate::mapped::MappedFile::new(dup, meta.len(), self.opts.chunk_size)
            });
            match mapped {
                Some(mut m) => self.chunks(&mut m),
                None => self.chunks(&mut ReaderSource(&mut f)),
            }
            .with_context(|| format!("adding {}", path.display()))?
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
        };
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

fn base_name(p: &Path) -> Result<String> {
    let name = p
        .file_name()
        .map(|n| n.to_str().map(str::to_string))
        .unwrap_or_else(|| Some(String::new()));
    match name {
        Some(n) => Ok(n),
        None => bail!("{}: file name is not valid UTF-8", p.display()),
    }
}

pub fn run(home: &Path, args: AddArgs) -> Result<ExitCode> {
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
    let store = if args.only_hash {
        None
    } else {
        Some(crate::repo::open(home)?)
    };
    let mut session = match &store {
        Some(s) => Some(s.session()?),
        None => None,
    };
    let mut null = NullSink;
    let sink: &mut dyn BlockSink = match session.as_mut() {
        Some(s) => s,
        None => &mut null,
    };
    let mut adder = Adder {
        args: &args,
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
            (adder.path(p, &name)?, name)
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
    drop(adder);
    if let Some(mut s) = session {
        if truthy(&args.pin) {
            for r in &final_root {
                s.pin(&r.cid, PinMode::Recursive, None);
            }
        }
        s.commit().context("committing added blocks")?;
    }
    if let Some(last) = final_root.last().filter(|_| args.quieter) {
        println!("{}", last.cid);
    }
    Ok(ExitCode::SUCCESS)
}
