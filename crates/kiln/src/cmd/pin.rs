//! `kiln pin add|rm|ls`.

use super::Repo;
use crate::cli::{PinCommand, truthy};
use anyhow::{Result, bail};
use kiln_core::cids::parse_cid;
use kiln_node::pins::Whose;
use kiln_store::PinOwner;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

pub fn run(repo: &Repo, cmd: PinCommand) -> Result<ExitCode> {
    if let PinCommand::Remote(r) = cmd {
        return super::remote_pins::run(r);
    }
    let node = repo.node()?;
    match cmd {
        PinCommand::Remote(_) => unreachable!("handled above"),
        PinCommand::Add {
            paths,
            recursive,
            name,
            namespace,
        } => {
            let recursive = truthy(&recursive);
            let how = if recursive {
                " recursively"
            } else {
                " directly"
            };
            for p in &paths {
                let cid = node.pin_add(p, recursive, name.as_deref(), namespace.as_deref())?;
                println!("pinned {cid}{how}");
            }
        }
        PinCommand::Rm { paths, owner, all } => {
            let whose = match (&owner, all) {
                (Some(o), _) => Whose::Of(PinOwner::new(o.as_str())?),
                (None, true) => Whose::All,
                (None, false) => Whose::Mine,
            };
            for p in &paths {
                let (cid, remaining) = node.pin_rm(p, &whose)?;
                if remaining.is_empty() {
                    println!("unpinned {cid}");
                } else {
                    println!("unpinned {cid}; still pinned by {}", remaining.join(", "));
                }
            }
        }
        PinCommand::Ls { paths, kind, quiet } => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            if !paths.is_empty() {
                let mut code = ExitCode::SUCCESS;
                for p in &paths {
                    let cid = parse_cid(p)?;
                    let status = node.pin_status(&cid)?;
                    match status {
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
            let list = node.pins(want_ind)?;
            let mut printed = std::collections::HashSet::new();
            for pin in &list.pins {
                let want = match pin.mode.as_str() {
                    "recursive" => want_rec,
                    _ => want_direct,
                };
                if !want {
                    continue;
                }
                if quiet {
                    // A CID held by several owners is printed once.
                    if printed.insert(pin.cid.clone()) {
                        writeln!(out, "{}", pin.cid)?;
                    }
                } else {
                    let owner = if pin.namespace == kiln_node::auth::DEFAULT_NAMESPACE {
                        pin.owner.clone()
                    } else {
                        format!("{}@{}", pin.owner, pin.namespace)
                    };
                    match &pin.name {
                        Some(n) => writeln!(out, "{} {} {owner} {n}", pin.cid, pin.mode)?,
                        None => writeln!(out, "{} {} {owner}", pin.cid, pin.mode)?,
                    }
                }
            }
            for c in &list.indirect {
                if quiet {
                    writeln!(out, "{c}")?;
                } else {
                    writeln!(out, "{c} indirect")?;
                }
            }
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
