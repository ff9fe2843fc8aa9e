//! `kiln cat`, `kiln get`, `kiln ls`: reading UnixFS content out of the store.

use super::Repo;
use crate::cli::{CatArgs, GetArgs, LsArgs};
use crate::client::{Entry, Listed};
use anyhow::{Context, Result, bail};
use kiln_core::Cid;
use kiln_core::cids::ContentPath;
use kiln_core::export::{self, Node};
use kiln_core::names::is_safe as safe_name;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn cat(repo: &Repo, a: CatArgs) -> Result<ExitCode> {
    let node = repo.node()?;
    let stdout = std::io::stdout();
    // A small buffer: whole blocks (≥ 64 KiB) go straight to stdout without a copy.
    let mut out = BufWriter::with_capacity(64 << 10, stdout.lock());
    node.cat(&a.path, a.offset, a.length, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn print_entry(out: &mut impl Write, l: &Listed) -> std::io::Result<()> {
    let (cid, name) = (&l.cid, &l.name);
    match l.entry {
        Entry::Directory => writeln!(out, "{cid} - {name}/"),
        Entry::File(size) | Entry::Symlink(size) => writeln!(out, "{cid} {size} {name}"),
        Entry::Missing(tsize) => writeln!(out, "{cid} {tsize} {name} (not in repository)"),
    }
}

pub fn ls(repo: &Repo, a: LsArgs) -> Result<ExitCode> {
    let node = repo.node()?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for p in &a.paths {
        if a.paths.len() > 1 {
            writeln!(out, "{p}:")?;
        }
        for l in node.ls(p)? {
            print_entry(&mut out, &l)?;
        }
        if a.paths.len() > 1 {
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
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
            // A file recorded as executable (UnixFS mode with an execute bit, as build
            // outputs and root file systems keep it) is written executable.
            if export::file_mode(src, cid)?.is_some_and(|m| m & 0o111 != 0) {
                use std::os::unix::fs::PermissionsExt;
                w.get_ref()
                    .set_permissions(std::fs::Permissions::from_mode(0o755))
                    .with_context(|| format!("setting the mode of {}", dest.display()))?;
            }
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

pub fn get(repo: &Repo, a: GetArgs) -> Result<ExitCode> {
    let parsed = ContentPath::parse(&a.path)?;
    let node = repo.node()?;
    // An action (dag-cbor) means its output: find it or build it (here, or by the daemon).
    let action = (parsed.root.codec() == kiln_core::cids::DAG_CBOR)
        .then(|| super::build::action_output(node, parsed.root, &parsed.segments, &a.timeout))
        .transpose()?;
    let src = node.blocks();
    let (cid, default_name) = match action {
        Some((cid, name)) => (cid, name),
        None => (
            export::resolve(src, &parsed)?,
            parsed
                .segments
                .last()
                .cloned()
                .unwrap_or_else(|| parsed.root.to_string()),
        ),
    };
    let dest = match a.output {
        Some(o) => o,
        None => {
            if !safe_name(&default_name) {
                bail!("cannot derive an output name from {:?}; use -o", a.path);
            }
            default_name.into()
        }
    };
    if std::fs::symlink_metadata(&dest).is_ok() {
        bail!("{} already exists", dest.display());
    }
    // The tree is written under a hidden directory beside `dest` and renamed into place
    // once whole: a get that fails part way (an unsafe name, a missing block, a full disk)
    // leaves nothing behind.
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let staging = tempfile::Builder::new()
        .prefix(".kiln-get-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let staged = staging.path().join("out");
    write_tree(src, &cid, &staged, 0)?;
    if std::fs::symlink_metadata(&dest).is_ok() {
        bail!("{} already exists", dest.display());
    }
    std::fs::rename(&staged, &dest)
        .with_context(|| format!("cannot move the tree to {}", dest.display()))?;
    eprintln!("Saved {} to {}", cid, dest.display());
    Ok(ExitCode::SUCCESS)
}
