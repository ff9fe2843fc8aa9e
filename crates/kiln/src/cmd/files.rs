//! `kiln cat`, `kiln get`, `kiln ls`: reading UnixFS content out of the store.

use crate::cli::{CatArgs, GetArgs, LsArgs};
use anyhow::{Context, Result, bail};
use kiln_core::Cid;
use kiln_core::cids::ContentPath;
use kiln_core::export::{self, Node};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn cat(home: &Path, a: CatArgs) -> Result<ExitCode> {
    let store = crate::repo::open(home)?;
    let cid = super::resolve(&store, &a.path)?;
    let stdout = std::io::stdout();
    // A small buffer: whole blocks (≥ 64 KiB) go straight to stdout without a copy.
    let mut out = BufWriter::with_capacity(64 << 10, stdout.lock());
    export::read_file(&store, &cid, a.offset, a.length, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn ls(home: &Path, a: LsArgs) -> Result<ExitCode> {
    let store = crate::repo::open(home)?;
    let src: &dyn kiln_core::BlockSource = &store;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for p in &a.paths {
        let cid = super::resolve(&store, p)?;
        if a.paths.len() > 1 {
            writeln!(out, "{p}:")?;
        }
        for e in export::list(src, &cid)? {
            match export::stat(src, &e.cid) {
                Ok(Node::Directory { .. }) => writeln!(out, "{} - {}/", e.cid, e.name)?,
                Ok(Node::File { size }) => writeln!(out, "{} {size} {}", e.cid, e.name)?,
                Ok(Node::Symlink { .. }) => writeln!(out, "{} {} {}", e.cid, e.tsize, e.name)?,
                Err(kiln_core::Error::NotFound(_)) => {
                    writeln!(out, "{} {} {} (not in repository)", e.cid, e.tsize, e.name)?
                }
                Err(err) => return Err(err.into()),
            }
        }
        if a.paths.len() > 1 {
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A directory entry name that is safe to create on disk.
fn safe_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

fn write_tree(
    src: &dyn kiln_core::BlockSource,
    cid: &Cid,
    dest: &Path,
    depth: usize,
) -> Result<()> {
    if depth > 1024 {
        bail!("directory tree under {cid} is too deep");
    }
    match export::stat(src, cid)? {
        Node::File { .. } => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dest)
                .with_context(|| format!("cannot create {}", dest.display()))?;
            let mut w = BufWriter::with_capacity(64 << 10, f);
            export::read_file(src, cid, 0, None, &mut w)?;
            w.flush()
                .with_context(|| format!("writing {}", dest.display()))?;
        }
        Node::Symlink { target } => {
            use std::os::unix::ffi::OsStrExt;
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), dest)
                .with_context(|| format!("cannot create symlink {}", dest.display()))?;
        }
        Node::Directory { .. } => {
            std::fs::create_dir(dest)
                .with_context(|| format!("cannot create directory {}", dest.display()))?;
            for e in export::list(src, cid)? {
                if !safe_name(&e.name) {
                    bail!("refusing unsafe entry name {:?} in directory {cid}", e.name);
                }
                write_tree(src, &e.cid, &dest.join(&e.name), depth + 1)?;
            }
        }
    }
    Ok(())
}

pub fn get(home: &Path, a: GetArgs) -> Result<ExitCode> {
    let store = crate::repo::open(home)?;
    let parsed = ContentPath::parse(&a.path)?;
    let cid = super::resolve(&store, &a.path)?;
    let dest = match a.output {
        Some(o) => o,
        None => {
            let name = parsed
                .segments
                .last()
                .cloned()
                .unwrap_or_else(|| parsed.root.to_string());
            if !safe_name(&name) {
                bail!("cannot derive an output name from {:?}; use -o", a.path);
            }
            name.into()
        }
    };
    if std::fs::symlink_metadata(&dest).is_ok() {
        bail!("{} already exists", dest.display());
    }
    write_tree(&store, &cid, &dest, 0)?;
    eprintln!("Saved {} to {}", cid, dest.display());
    Ok(ExitCode::SUCCESS)
}
