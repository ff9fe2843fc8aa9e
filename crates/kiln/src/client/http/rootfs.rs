//! `kiln rootfs import` through the daemon: the tree read here (`crate::cmd::rootfs`), its
//! blocks sent as one CAR to `dag/import`, which pins the root for the owner `rootfs` under
//! its name in the same transaction.

use crate::client::RootfsCounts;
use crate::remote::{CarFile, Daemon, Multipart, Part};
use anyhow::{Result, bail};
use kiln_core::import::Imported;
use std::path::Path;

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
    let mut body = CarFile::new()?;
    let (root, counts) = crate::cmd::rootfs::read_tree(&mut body, path)?;
    let car = body.finish(&root.cid)?;
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
