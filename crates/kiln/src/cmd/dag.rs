//! `kiln dag export|import`: CAR files.

use super::{Repo, Target};
use crate::cli::{DagCommand, truthy};
use crate::remote::{Multipart, Part};
use anyhow::{Context, Result};
use kiln_core::car::export_dag;
use kiln_store::PinMode;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

/// One `/api/v0/dag/import` line: a root, or the totals.
#[derive(serde::Deserialize)]
struct ImportLine {
    #[serde(rename = "Root")]
    root: Option<ImportRoot>,
    #[serde(rename = "Stats")]
    stats: Option<ImportStats>,
}

#[derive(serde::Deserialize)]
struct ImportRoot {
    #[serde(rename = "Cid")]
    cid: serde_json::Value,
}

#[derive(serde::Deserialize)]
struct ImportStats {
    #[serde(rename = "BlockCount")]
    blocks: u64,
}

/// Write the CAR of `path` to `w`, from the store or the daemon.
fn export(target: &Target, path: &str, w: &mut dyn Write) -> Result<()> {
    match target {
        Target::Local(store) => {
            let cid = super::resolve(store, path)?;
            export_dag(store, &cid, w)?;
        }
        Target::Daemon(d) => {
            let mut body = d.rpc("dag/export", &[("arg", path.to_string())])?;
            std::io::copy(&mut body, w).context("reading the CAR from the daemon")?;
        }
    }
    Ok(())
}

/// `dag import` through the daemon: the CARs stream to it as multipart parts.
fn import_remote(
    d: &crate::remote::Daemon,
    files: &[std::path::PathBuf],
    pin_roots: &str,
) -> Result<()> {
    let mut parts = Vec::new();
    for f in files {
        let input: Box<dyn Read + Send> = if f.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(
                std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?,
            )
        };
        parts.push(Part::File(f.display().to_string(), input));
    }
    let body = Multipart::new(parts, Box::new(|_| {}));
    let q = [
        ("pin-roots", pin_roots.to_string()),
        ("stats", "true".into()),
    ];
    let text = d.rpc_multipart("dag/import", &q, body)?.text()?;
    let lines: Vec<ImportLine> = crate::remote::parse_ndjson(&text, "dag/import")?;
    for l in &lines {
        if let Some(r) = &l.root {
            let cid = r.cid.get("/").and_then(|c| c.as_str()).unwrap_or_default();
            println!("pinned root {cid}");
        }
    }
    let blocks: u64 = lines
        .iter()
        .filter_map(|l| l.stats.as_ref())
        .map(|s| s.blocks)
        .sum();
    println!("imported {blocks} blocks");
    Ok(())
}

pub fn run(repo: &Repo, cmd: DagCommand) -> Result<ExitCode> {
    let target = repo.target()?;
    match cmd {
        DagCommand::Export { path, output } => {
            match output {
                Some(o) => {
                    // Write next to the target and rename, so a failed export leaves no partial file.
                    let dir = o
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."));
                    let tmp = tempfile::NamedTempFile::new_in(dir)
                        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
                    let mut w = BufWriter::with_capacity(1 << 20, tmp);
                    export(&target, &path, &mut w)?;
                    let tmp = w.into_inner().map_err(|e| e.into_error())?;
                    tmp.persist(&o)
                        .with_context(|| format!("cannot write {}", o.display()))?;
                }
                None => {
                    let mut w = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
                    export(&target, &path, &mut w)?;
                    w.flush()?;
                }
            }
        }
        DagCommand::Import { files, pin_roots } => {
            let store = match &target {
                Target::Daemon(d) => {
                    import_remote(d, &files, &pin_roots)?;
                    return Ok(ExitCode::SUCCESS);
                }
                Target::Local(store) => store,
            };
            let mut session = kiln_node::content::session(store, &super::cli_caller())?;
            let mut blocks = 0u64;
            let mut roots = Vec::new();
            for f in &files {
                let input: Box<dyn Read> = if f.as_os_str() == "-" {
                    Box::new(std::io::stdin())
                } else {
                    Box::new(
                        std::fs::File::open(f)
                            .with_context(|| format!("cannot open {}", f.display()))?,
                    )
                };
                let got =
                    kiln_core::car::import(BufReader::with_capacity(1 << 20, input), &mut session)
                        .with_context(|| f.display().to_string())?;
                roots.extend(got.roots);
                blocks += got.blocks;
            }
            let pin = truthy(&pin_roots).then(|| super::cli_pin(PinMode::Recursive));
            kiln_node::content::commit(
                session,
                &super::cli_caller(),
                kiln_node::journal::action::IMPORT,
                &roots,
                pin.as_ref(),
            )
            .context("import not committed")?;
            if truthy(&pin_roots) {
                for r in &roots {
                    println!("pinned root {r}");
                }
            }
            println!("imported {blocks} blocks");
        }
    }
    Ok(ExitCode::SUCCESS)
}
