//! `kiln rootfs import` through the daemon: the tree read here (`crate::cmd::rootfs`), its
//! blocks sent as one CAR to `dag/import`, which pins the root for the owner `rootfs` under
//! its name in the same transaction.

use crate::client::RootfsCounts;
use crate::remote::{Daemon, Multipart, Part};
use anyhow::{Context, Result, bail};
use kiln_core::import::Imported;
use kiln_core::{BlockSink, Cid};
use std::collections::HashSet;
use std::fs;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::Path;

/// Blocks written as the sections of a CAR body to a temporary file, each once; the header
/// (which names the root) is put in front when the body is sent.
struct CarBody {
    out: BufWriter<fs::File>,
    seen: HashSet<Cid>,
    buf: Vec<u8>,
}

impl BlockSink for CarBody {
    fn put(&mut self, cid: &Cid, data: &[u8], _links: &[Cid]) -> kiln_core::Result<()> {
        if !self.seen.insert(*cid) {
            return Ok(());
        }
        let cb = cid.to_bytes();
        self.buf.clear();
        kiln_core::pb::put_varint(&mut self.buf, (cb.len() + data.len()) as u64);
        self.buf.extend_from_slice(&cb);
        let io = |e| kiln_core::Error::io("writing a temporary CAR", e);
        self.out.write_all(&self.buf).map_err(io)?;
        self.out.write_all(data).map_err(io)
    }
}

/// One `dag/import` answer line.
#[derive(serde::Deserialize)]
struct ImportLine {
    #[serde(rename = "Root")]
    root: Option<ImportRoot>,
}

#[derive(serde::Deserialize)]
struct ImportRoot {
    #[serde(rename = "Cid")]
    cid: serde_json::Value,
    #[serde(rename = "PinErrorMsg", default)]
    pin_error: String,
}

/// Through the daemon: the blocks as one CAR to `dag/import`, which pins the root for the
/// owner `rootfs` under its name in the same transaction.
pub(super) fn import(d: &Daemon, path: &Path, name: &str) -> Result<(Imported, RootfsCounts)> {
    let tmp = tempfile::tempfile().context("cannot create a temporary file")?;
    let mut body = CarBody {
        out: BufWriter::with_capacity(1 << 20, tmp),
        seen: HashSet::new(),
        buf: Vec::new(),
    };
    let (root, counts) = crate::cmd::rootfs::read_tree(&mut body, path)?;
    let mut file = body
        .out
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing a temporary CAR")?;
    file.rewind().context("reading a temporary CAR")?;
    let header = kiln_core::car::encode_header(&[root.cid]);
    let mut head = Vec::with_capacity(header.len() + 4);
    kiln_core::pb::put_varint(&mut head, header.len() as u64);
    head.extend_from_slice(&header);
    let car: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head).chain(file));
    let parts = vec![Part::File("rootfs.car".into(), car)];
    let q = [
        ("pin-roots", "true".to_string()),
        ("pin-owner", kiln_build::owners::ROOTFS.to_string()),
        ("pin-name", name.to_string()),
    ];
    let text = d
        .rpc_multipart("dag/import", &q, Multipart::new(parts, Box::new(|_| {})))?
        .text()?;
    let lines: Vec<ImportLine> = crate::remote::parse_ndjson(&text, "dag/import")?;
    let root_line = lines.iter().find_map(|l| l.root.as_ref());
    match root_line {
        Some(r) if !r.pin_error.is_empty() => bail!("pinning {}: {}", root.cid, r.pin_error),
        Some(r) if r.cid.get("/").and_then(|c| c.as_str()) == Some(&root.cid.to_string()) => {}
        _ => bail!("the daemon did not report pinning {}", root.cid),
    }
    Ok((root, counts))
}
