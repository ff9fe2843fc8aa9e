//! `kiln pin remote add|ls|rm` and `kiln pin remote service add|ls|rm`: pins on remote
//! pinning services (any Pinning Service API v1 endpoint), with kubo's flags and output.
//! The services and their keys are the user's, kept mode 0600 in
//! `$XDG_CONFIG_HOME/kiln/pinning-services.json`.

use crate::cli::{PinRemoteCommand, PinServiceCommand};
use crate::client::RemotePinning;
use anyhow::{Context, Result, anyhow, bail};
use kiln_wire::psa::{Pin, PinStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const FILE: &str = "pinning-services.json";

/// One remembered service.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Service {
    endpoint: String,
    key: String,
}

fn file() -> Result<PathBuf> {
    Ok(super::identity::config_dir()?.join(FILE))
}

fn load() -> Result<BTreeMap<String, Service>> {
    let path = file()?;
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("{} is not a list of pinning services", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Write the services (keys included) readable by the user alone, atomically.
fn save(services: &BTreeMap<String, Service>) -> Result<()> {
    super::identity::write_private(&file()?, &serde_json::to_vec_pretty(services)?)
}

fn service(name: &str) -> Result<RemotePinning> {
    let services = load()?;
    let s = services.get(name).ok_or_else(|| {
        anyhow!("no pinning service named {name:?}: `kiln pin remote service add {name} ENDPOINT KEY` adds it")
    })?;
    RemotePinning::new(&s.endpoint, &s.key)
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !ok {
        bail!("a service name is letters, digits, '-', '_' and '.' ({name:?} is not)");
    }
    Ok(())
}

/// The query of `ls` and `rm`.
fn query(
    name: &Option<String>,
    cids: &[String],
    status: &[String],
) -> Result<Vec<(&'static str, String)>> {
    for s in status {
        if !["queued", "pinning", "pinned", "failed"].contains(&s.as_str()) {
            bail!("--status takes queued, pinning, pinned and failed ({s:?} given)");
        }
    }
    let mut q = vec![("status", status.join(","))];
    if let Some(n) = name {
        q.push(("name", n.clone()));
        q.push(("match", "exact".into()));
    }
    if !cids.is_empty() {
        q.push(("cid", cids.join(",")));
    }
    Ok(q)
}

fn print_status(s: &PinStatus) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "CID:\t{}", s.pin.cid)?;
    writeln!(out, "Name:\t{}", s.pin.name.as_deref().unwrap_or(""))?;
    writeln!(out, "Status:\t{}", s.status)?;
    Ok(())
}

pub fn run(cmd: PinRemoteCommand) -> Result<ExitCode> {
    match cmd {
        PinRemoteCommand::Service(s) => return run_service(s),
        PinRemoteCommand::Add {
            cid,
            service: name,
            name: pin_name,
            origins,
            background,
            timeout,
        } => {
            let svc = service(&name)?;
            let cid = cid.trim().trim_start_matches("/ipfs/");
            let cid = cid.split('/').next().unwrap_or(cid);
            let parsed = kiln_core::cids::parse_cid(cid)?;
            let wait =
                kiln_wire::parse_duration(&timeout).map_err(|e| anyhow!("--timeout: {e}"))?;
            let mut status = svc.add(&Pin {
                cid: parsed.to_string(),
                name: pin_name,
                origins,
                meta: BTreeMap::new(),
            })?;
            let deadline = Instant::now() + wait;
            let mut pause = Duration::from_millis(200);
            while !background && status.status != "pinned" {
                if status.status == "failed" {
                    let why = status.info.get("reason").cloned().unwrap_or_default();
                    bail!("the service could not pin {}: {why}", status.pin.cid);
                }
                if Instant::now() >= deadline {
                    bail!(
                        "{} is still {} on {name} after {timeout} (request {}; `kiln pin remote ls --service {name} --status queued,pinning` follows it)",
                        status.pin.cid,
                        status.status,
                        status.requestid
                    );
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(5));
                status = svc.get(&status.requestid)?;
            }
            print_status(&status)?;
        }
        PinRemoteCommand::Ls {
            service: name,
            name: pin_name,
            cid,
            status,
        } => {
            let svc = service(&name)?;
            let all = svc.list_all(&query(&pin_name, &cid, &status)?)?;
            let mut out = std::io::stdout().lock();
            for p in all {
                writeln!(
                    out,
                    "{}\t{}\t{}",
                    p.pin.cid,
                    p.status,
                    p.pin.name.as_deref().unwrap_or("")
                )?;
            }
        }
        PinRemoteCommand::Rm {
            service: name,
            name: pin_name,
            cid,
            status,
            force,
        } => {
            let svc = service(&name)?;
            let all = svc.list_all(&query(&pin_name, &cid, &status)?)?;
            if all.len() > 1 && !force {
                bail!(
                    "{} remote pins match this query: add --force to confirm removing them all",
                    all.len()
                );
            }
            for p in all {
                svc.remove(&p.requestid)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_service(cmd: PinServiceCommand) -> Result<ExitCode> {
    let mut services = load()?;
    match cmd {
        PinServiceCommand::Add {
            name,
            endpoint,
            key,
        } => {
            check_name(&name)?;
            if services.contains_key(&name) {
                bail!(
                    "a pinning service named {name:?} exists already (`kiln pin remote service rm {name}` first)"
                );
            }
            let e = endpoint.trim_end_matches('/');
            if !(e.starts_with("https://") || e.starts_with("http://")) {
                bail!("the endpoint must be an http:// or https:// URL ({endpoint:?} is not)");
            }
            if e.ends_with("/pins") {
                bail!(
                    "give the endpoint without its /pins ({})",
                    e.trim_end_matches("/pins")
                );
            }
            services.insert(
                name,
                Service {
                    endpoint: e.to_string(),
                    key,
                },
            );
            save(&services)?;
        }
        PinServiceCommand::Ls => {
            let mut out = std::io::stdout().lock();
            for (name, s) in &services {
                writeln!(out, "{name}\t{}", s.endpoint)?;
            }
        }
        PinServiceCommand::Rm { name } => {
            if services.remove(&name).is_none() {
                bail!("no pinning service named {name:?}");
            }
            save(&services)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
