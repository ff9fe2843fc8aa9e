//! `kiln block get|put|stat|rm`.

use super::Repo;
use crate::cli::{BlockCommand, truthy};
use anyhow::{Context, Result, bail};
use kiln_core::cids::{self, parse_cid};
use std::io::{Read, Write};
use std::process::ExitCode;

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
    let node = repo.node()?;
    match cmd {
        BlockCommand::Get { cid } => {
            let cid = parse_cid(&cid)?;
            let data = node.block_get(&cid)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&data)?;
            out.flush()?;
        }
        BlockCommand::Stat { cid } => {
            let cid = parse_cid(&cid)?;
            let size = node.block_stat(&cid)?;
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
            // Each block is read and checked to decode as the codec it is put as, then
            // handed to the node (one at a time: blocks are up to 4 MiB each).
            let mut blocks = files.iter().map(|f| {
                let data = read_input(f)?;
                let cid = cids::cid_of(cid::Version::V1, codec, &data);
                kiln_core::links::links_of(&cid, &data)
                    .with_context(|| format!("{} is not valid {cid_codec}", f.display()))?;
                Ok((cid, data))
            });
            for c in node.block_put(&mut blocks, &cid_codec, truthy(&pin))? {
                println!("{c}");
            }
        }
        BlockCommand::Rm { cids: list, force } => {
            let mut code = ExitCode::SUCCESS;
            for c in &list {
                let cid = parse_cid(c)?;
                match node.block_rm(&cid, force)? {
                    None => {}
                    Some(Ok(())) => println!("removed {cid}"),
                    Some(Err(e)) => {
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
