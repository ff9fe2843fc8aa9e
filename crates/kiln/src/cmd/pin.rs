//! `kiln pin add|rm|ls`.

use crate::cli::{PinCommand, truthy};
use anyhow::{Result, bail};
use kiln_core::cids::parse_cid;
use kiln_store::{PinMode, PinStatus};
use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn run(home: &Path, cmd: PinCommand) -> Result<ExitCode> {
    let store = crate::repo::open(home)?;
    match cmd {
        PinCommand::Add {
            paths,
            recursive,
            name,
        } => {
            let mode = if truthy(&recursive) {
                PinMode::Recursive
            } else {
                PinMode::Direct
            };
            for p in &paths {
                let cid = super::resolve(&store, p)?;
                store.pin_add(&cid, mode, name.as_deref())?;
                let how = if mode == PinMode::Recursive {
                    " recursively"
                } else {
                    " directly"
                };
                println!("pinned {cid}{how}");
            }
        }
        PinCommand::Rm { paths } => {
            for p in &paths {
                let cid = super::resolve(&store, p)?;
                store.pin_rm(&cid)?;
                println!("unpinned {cid}");
            }
        }
        PinCommand::Ls { paths, kind, quiet } => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            if !paths.is_empty() {
                let mut code = ExitCode::SUCCESS;
                for p in &paths {
                    let cid = parse_cid(p)?;
                    match store.pin_status(&cid)? {
                        Some(PinStatus::Indirect { via }) => {
                            writeln!(out, "{cid} indirect through {via}")?
                        }
                        Some(s) => writeln!(out, "{cid} {s}")?,
                        None => {
                            out.flush()?;
                            eprintln!("Error: {cid} is not pinned");
                            code = ExitCode::FAILURE;
                        }
                    }
                }
                out.flush()?;
                return Ok(code);
            }
            let (want_rec, want_direct, want_ind) = match kind.as_str() {
                "all" => (true, true, false),
                "recursive" => (true, false, false),
                "direct" => (false, true, false),
                "indirect" => (false, false, true),
                other => bail!(
                    "invalid pin type {other:?} (expected all, recursive, direct or indirect)"
                ),
            };
            let pins = store.pins()?;
            for pin in &pins {
                let want = match pin.mode {
                    PinMode::Recursive => want_rec,
                    PinMode::Direct => want_direct,
                };
                if !want {
                    continue;
                }
                if quiet {
                    writeln!(out, "{}", pin.cid)?;
                } else {
                    match &pin.name {
                        Some(n) => writeln!(out, "{} {} {n}", pin.cid, pin.mode)?,
                        None => writeln!(out, "{} {}", pin.cid, pin.mode)?,
                    }
                }
            }
            if want_ind {
                let roots: HashSet<_> = pins.iter().map(|p| p.cid).collect();
                let mut seen = HashSet::new();
                let mut stack: Vec<_> = pins
                    .iter()
                    .filter(|p| p.mode == PinMode::Recursive)
                    .flat_map(|p| store.links(&p.cid).ok().flatten().unwrap_or_default())
                    .collect();
                while let Some(c) = stack.pop() {
                    if !seen.insert(c) {
                        continue;
                    }
                    if !roots.contains(&c) {
                        if quiet {
                            writeln!(out, "{c}")?;
                        } else {
                            writeln!(out, "{c} indirect")?;
                        }
                    }
                    stack.extend(store.links(&c)?.unwrap_or_default());
                }
            }
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
