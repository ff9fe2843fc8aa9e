//! A UnixFS tree as a tar stream, shared by the RPC `get` and the gateway's `format=tar`.
//!
//! Files, directories and symlinks go under one top-level name, depth first, in the
//! directory's (sorted) order; headers are deterministic (mtime 0, fixed modes), so the
//! same tree always gives the same bytes. Entry names are refused unless they are one
//! plain path segment: a hostile name (`..`, `a/b`, NUL) ends the stream with an error
//! instead of writing a path that would escape the extraction directory.

use kiln_core::export::{self, Node};
use kiln_core::{BlockSource, Cid};
use std::io::Write;

use kiln_core::names::{MAX_DEPTH, is_safe as safe_name};

/// Write the tree at `cid` as a tar archive whose top-level entry is `name` (which must
/// be [`safe_name`]). Errors are one line, for the log and the RPC error trailer.
pub(crate) fn write_tar(
    src: &dyn BlockSource,
    cid: &Cid,
    name: &str,
    w: &mut dyn Write,
) -> Result<(), String> {
    if !safe_name(name) {
        return Err(format!("refusing unsafe top-level name {name:?}"));
    }
    let mut tar = tar::Builder::new(w);
    tar.mode(tar::HeaderMode::Deterministic);
    append(src, &mut tar, cid, name, 0)?;
    tar.finish().map_err(|e| e.to_string())
}

fn append(
    src: &dyn BlockSource,
    tar: &mut tar::Builder<&mut dyn Write>,
    cid: &Cid,
    path: &str,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("directory tree under {cid} is too deep"));
    }
    let node = export::stat(src, cid).map_err(|e| e.to_string())?;
    let mut h = tar::Header::new_gnu();
    h.set_mtime(0);
    match node {
        Node::File { size } => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(size);
            let reader = export::FileReader::new(src, cid).map_err(|e| e.to_string())?;
            tar.append_data(&mut h, path, reader)
                .map_err(|e| e.to_string())
        }
        Node::Symlink { target } => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            let target = String::from_utf8_lossy(&target).into_owned();
            tar.append_link(&mut h, path, target)
                .map_err(|e| e.to_string())
        }
        Node::Directory { .. } => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, path, std::io::empty())
                .map_err(|e| e.to_string())?;
            for e in export::list(src, cid).map_err(|e| e.to_string())? {
                if !safe_name(&e.name) {
                    return Err(format!(
                        "refusing unsafe entry name {:?} in directory {cid}",
                        e.name
                    ));
                }
                append(src, tar, &e.cid, &format!("{path}/{}", e.name), depth + 1)?;
            }
            Ok(())
        }
    }
}
