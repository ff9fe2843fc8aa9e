//! `kiln block get|put|stat|rm`.

use super::{Repo, Target};
use crate::cli::{BlockCommand, truthy};
use crate::remote::{Multipart, Part};
use anyhow::{Context, Result, bail};
use kiln_core::cids::{self, parse_cid};
use kiln_store::PinMode;
use std::io::{Read, Write};
use std::process::ExitCode;

/// `/api/v0/block/stat` and `/api/v0/block/put` answers.
#[derive(serde::Deserialize)]
struct BlockStat {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Size")]
    size: u64,
}

/// One `/api/v0/block/rm` line.
#[derive(serde::Deserialize)]
struct Removed {
    #[serde(rename = "Hash")]
    hash: String,
    #[serde(rename = "Error", default)]
    error: String,
}

fn read_input(f: &std::path::Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    if f.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(f)
            .and_then(|mut h| h.read_to_end(&mut data))
            .with_context(|| format!("cannot read {}", f.display()))?;
    }
    if data.len() > 4 << 20 {
        bail!(
            "{}: block of {} bytes is larger than the 4 MiB limit",
            f.display(),
            data.len()
        );
    }
    Ok(data)
}

pub fn run(repo: &Repo, cmd: BlockCommand) -> Result<ExitCode> {
    let target = repo.target()?;
    match cmd {
        BlockCommand::Get { cid } => {
            let cid = parse_cid(&cid)?;
            let data = match &target {
                Target::Local(store) => {
                    kiln_node::content::block(store, &super::cli_caller(), &cid)?
                }
                Target::Daemon(d) => {
                    kiln_core::BlockSource::get(&crate::remote::Blocks(d.clone()), &cid)?
                        .ok_or_else(|| anyhow::anyhow!("block {cid} not found"))?
                }
            };
            let mut out = std::io::stdout().lock();
            out.write_all(&data)?;
            out.flush()?;
        }
        BlockCommand::Stat { cid } => {
            let cid = parse_cid(&cid)?;
            let size = match &target {
                Target::Local(store) => {
                    kiln_node::content::block_size(store, &super::cli_caller(), &cid)?
                }
                Target::Daemon(d) => {
                    d.rpc_json::<BlockStat>("block/stat", &[("arg", cid.to_string())])?
                        .size
                }
            };
            println!("Key: {cid}\nSize: {size}");
        }
        BlockCommand::Put {
            files,
            cid_codec,
            mhtype,
            pin,
        } => {
            if mhtype != "sha2-256" {
                bail!("unsupported hash function {mhtype:?} (only sha2-256)");
            }
            let codec = cids::codec_from_name(&cid_codec)?;
            let mut printed = Vec::new();
            match &target {
                Target::Local(store) => {
                    let mut session = kiln_node::content::session(store, &super::cli_caller())?;
                    let mut cids = Vec::new();
                    for f in &files {
                        let data = read_input(f)?;
                        let cid = cids::cid_of(cid::Version::V1, codec, &data);
                        let links = kiln_core::links::links_of(&cid, &data)
                            .with_context(|| format!("{} is not valid {cid_codec}", f.display()))?;
                        session.put(&cid, &data, &links)?;
                        cids.push(cid);
                        printed.push(cid.to_string());
                    }
                    let pin = truthy(&pin).then(|| super::cli_pin(PinMode::Recursive));
                    kiln_node::content::commit(
                        session,
                        &super::cli_caller(),
                        kiln_node::journal::action::BLOCK_PUT,
                        &cids,
                        pin.as_ref(),
                    )?;
                }
                Target::Daemon(d) => {
                    for f in &files {
                        let data = read_input(f)?;
                        let cid = cids::cid_of(cid::Version::V1, codec, &data);
                        kiln_core::links::links_of(&cid, &data)
                            .with_context(|| format!("{} is not valid {cid_codec}", f.display()))?;
                        let body = Multipart::new(
                            vec![Part::File(
                                String::new(),
                                Box::new(std::io::Cursor::new(data)),
                            )],
                            Box::new(|_| {}),
                        );
                        let q = [("cid-codec", cid_codec.clone()), ("pin", pin.clone())];
                        let answer: BlockStat = d.rpc_multipart("block/put", &q, body)?.json()?;
                        printed.push(answer.key);
                    }
                }
            }
            for c in printed {
                println!("{c}");
            }
        }
        BlockCommand::Rm { cids: list, force } => {
            let mut code = ExitCode::SUCCESS;
            for c in &list {
                let cid = parse_cid(c)?;
                let result = match &target {
                    Target::Local(store) => {
                        match kiln_node::content::remove_block(
                            store,
                            &super::cli_caller(),
                            &cid,
                            force,
                        ) {
                            Ok(true) => Ok(()),
                            Ok(false) => continue,
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Target::Daemon(d) => {
                        let q = [("arg", cid.to_string()), ("force", force.to_string())];
                        let lines: Vec<Removed> = d.rpc_ndjson("block/rm", &q)?;
                        match lines.into_iter().find(|l| l.hash == cid.to_string()) {
                            None => continue,
                            Some(l) if l.error.is_empty() => Ok(()),
                            Some(l) => Err(l.error),
                        }
                    }
                };
                match result {
                    Ok(()) => println!("removed {cid}"),
                    Err(e) => {
                        eprintln!("Error: cannot remove {cid}: {e}");
                        code = ExitCode::FAILURE;
                    }
                }
            }
            return Ok(code);
        }
    }
    Ok(ExitCode::SUCCESS)
}
