//! `kiln pin add|rm|ls`.

use super::cli_caller;
use super::{Repo, Target};
use crate::cli::{PinCommand, truthy};
use anyhow::{Result, bail};
use kiln_core::cids::parse_cid;
use kiln_node::pins::{self, Whose};
use kiln_store::{PinMode, PinOwner, PinStatus};
use kiln_wire::PinList;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// `/api/v0/pin/add` and `/api/v0/pin/rm` answers.
#[derive(serde::Deserialize)]
struct Pins {
    #[serde(rename = "Pins")]
    pins: Vec<String>,
}

/// `/api/v0/pin/ls?arg=CID` answer.
#[derive(serde::Deserialize)]
struct PinLsAnswer {
    #[serde(rename = "Keys")]
    keys: std::collections::BTreeMap<String, PinType>,
}

#[derive(serde::Deserialize)]
struct PinType {
    #[serde(rename = "Type")]
    kind: String,
}

pub fn run(repo: &Repo, cmd: PinCommand) -> Result<ExitCode> {
    let target = repo.target()?;
    match cmd {
        PinCommand::Add {
            paths,
            recursive,
            name,
        } => {
            let recursive = truthy(&recursive);
            let how = if recursive {
                " recursively"
            } else {
                " directly"
            };
            for p in &paths {
                let cid = match &target {
                    Target::Local(store) => {
                        let mode = if recursive {
                            PinMode::Recursive
                        } else {
                            PinMode::Direct
                        };
                        pins::add(store, &cli_caller(), p, mode, name.as_deref())?.to_string()
                    }
                    Target::Daemon(d) => {
                        let mut q = vec![("arg", p.clone()), ("recursive", recursive.to_string())];
                        if let Some(n) = &name {
                            q.push(("name", n.clone()));
                        }
                        let answer: Pins = d.rpc_json("pin/add", &q)?;
                        answer.pins.into_iter().next().unwrap_or_default()
                    }
                };
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
                let (cid, remaining) = match &target {
                    Target::Local(store) => {
                        let done = pins::remove(store, &cli_caller(), p, &whose)?;
                        let left = pins::owners(&done.pins.remaining)
                            .iter()
                            .map(|o| o.to_string())
                            .collect();
                        (done.cid.to_string(), left)
                    }
                    Target::Daemon(d) => {
                        let mut q = vec![("arg", p.clone())];
                        match &whose {
                            Whose::Mine => {}
                            Whose::Of(o) => q.push(("owner", o.to_string())),
                            Whose::All => q.push(("all", "true".into())),
                        }
                        let answer: Pins = d.rpc_json("pin/rm", &q)?;
                        let cid = answer.pins.into_iter().next().unwrap_or_default();
                        let list: PinList = d.get_json(&format!("{}/pins", kiln_wire::PREFIX))?;
                        let mut left: Vec<String> = Vec::new();
                        for pin in list.pins.into_iter().filter(|v| v.cid == cid) {
                            if !left.contains(&pin.owner) {
                                left.push(pin.owner);
                            }
                        }
                        (cid, left)
                    }
                };
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
                    let status = match &target {
                        Target::Local(store) => {
                            pins::status(store, &cli_caller(), &cid)?.map(|s| match s {
                                PinStatus::Indirect { via } => format!("indirect through {via}"),
                                s => s.to_string(),
                            })
                        }
                        Target::Daemon(d) => {
                            match d.rpc_json::<PinLsAnswer>("pin/ls", &[("arg", cid.to_string())]) {
                                Ok(a) => a.keys.into_values().next().map(|t| t.kind),
                                Err(e) if e.to_string().contains("is not pinned") => None,
                                Err(e) => return Err(e),
                            }
                        }
                    };
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
            let list = match &target {
                Target::Local(store) => PinList {
                    pins: pins::list(store, &cli_caller())?
                        .iter()
                        .map(kiln_node::view::pin)
                        .collect(),
                    indirect: if want_ind {
                        pins::indirect(store, &cli_caller())?
                            .iter()
                            .map(|c| c.to_string())
                            .collect()
                    } else {
                        Vec::new()
                    },
                },
                Target::Daemon(d) => {
                    d.get_json(&format!("{}/pins?indirect={want_ind}", kiln_wire::PREFIX))?
                }
            };
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
                    match &pin.name {
                        Some(n) => writeln!(out, "{} {} {} {n}", pin.cid, pin.mode, pin.owner)?,
                        None => writeln!(out, "{} {} {}", pin.cid, pin.mode, pin.owner)?,
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
