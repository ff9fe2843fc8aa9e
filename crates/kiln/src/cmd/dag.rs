//! `kiln dag export|import`: CAR files.

use super::Repo;
use crate::cli::{DagCommand, truthy};
use anyhow::{Context, Result};
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn run(repo: &Repo, cmd: DagCommand) -> Result<ExitCode> {
    let node = repo.node()?;
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
                    node.dag_export(&path, &mut w)?;
                    let tmp = w.into_inner().map_err(|e| e.into_error())?;
                    tmp.persist(&o)
                        .with_context(|| format!("cannot write {}", o.display()))?;
                }
                None => {
                    let mut w = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
                    node.dag_export(&path, &mut w)?;
                    w.flush()?;
                }
            }
        }
        DagCommand::Import { files, pin_roots } => {
            let mut inputs = Vec::new();
            for f in &files {
                let input: Box<dyn Read + Send> = if f.as_os_str() == "-" {
                    Box::new(std::io::stdin())
                } else {
                    Box::new(
                        std::fs::File::open(f)
                            .with_context(|| format!("cannot open {}", f.display()))?,
                    )
                };
                inputs.push((f.display().to_string(), input));
            }
            let done = node.dag_import(inputs, truthy(&pin_roots))?;
            for r in &done.pinned {
                println!("pinned root {r}");
            }
            println!("imported {} blocks", done.blocks);
        }
    }
    Ok(ExitCode::SUCCESS)
}
