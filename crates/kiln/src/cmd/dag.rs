//! `kiln dag export|import`: CAR files.

use crate::cli::{DagCommand, truthy};
use anyhow::{Context, Result};
use kiln_core::car::export_dag;
use kiln_store::PinMode;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn run(home: &Path, cmd: DagCommand) -> Result<ExitCode> {
    let store = crate::repo::open(home)?;
    match cmd {
        DagCommand::Export { path, output } => {
            let cid = super::resolve(&store, &path)?;
            let src: &dyn kiln_core::BlockSource = &store;
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
                    export_dag(src, &cid, &mut w)?;
                    let tmp = w.into_inner().map_err(|e| e.into_error())?;
                    tmp.persist(&o)
                        .with_context(|| format!("cannot write {}", o.display()))?;
                }
                None => {
                    let mut w = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
                    export_dag(src, &cid, &mut w)?;
                    w.flush()?;
                }
            }
        }
        DagCommand::Import { files, pin_roots } => {
            let mut session = store.session()?;
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
            if truthy(&pin_roots) {
                for r in &roots {
                    session.pin(r, PinMode::Recursive, None);
                }
            }
            session.commit().context("import not committed")?;
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
