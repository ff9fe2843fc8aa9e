//! `kiln block get|put|stat|rm`.

use crate::cli::{BlockCommand, truthy};
use anyhow::{Context, Result, bail};
use kiln_core::cids::{self, parse_cid};
use kiln_store::PinMode;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn run(home: &Path, cmd: BlockCommand) -> Result<ExitCode> {
    let store = crate::repo::open(home)?;
    match cmd {
        BlockCommand::Get { cid } => {
            let cid = parse_cid(&cid)?;
            let data = store
                .get(&cid)?
                .ok_or_else(|| anyhow::anyhow!("block {cid} not found"))?;
            let mut out = std::io::stdout().lock();
            out.write_all(&data)?;
            out.flush()?;
        }
        BlockCommand::Stat { cid } => {
            let cid = parse_cid(&cid)?;
            let size = store
                .size(&cid)?
                .ok_or_else(|| anyhow::anyhow!("block {cid} not found"))?;
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
            let mut session = store.session()?;
            let mut printed = Vec::new();
            for f in &files {
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
                let cid = cids::cid_of(cid::Version::V1, codec, &data);
                let links = kiln_core::links::links_of(&cid, &data)
                    .with_context(|| format!("{} is not valid {cid_codec}", f.display()))?;
                session.put(&cid, &data, &links)?;
                if truthy(&pin) {
                    session.pin(&cid, PinMode::Recursive, None);
                }
                printed.push(cid);
            }
            session.commit()?;
            for c in printed {
                println!("{c}");
            }
        }
        BlockCommand::Rm { cids: list, force } => {
            let mut code = ExitCode::SUCCESS;
            for c in &list {
                let cid = parse_cid(c)?;
                match store.remove_block(&cid) {
                    Ok(()) => println!("removed {cid}"),
                    Err(kiln_store::Error::NotFound(_)) if force => {}
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
