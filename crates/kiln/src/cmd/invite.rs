//! `kiln invite create|ls` and `kiln join URL CODE`. An administrator makes an invite on the
//! repository (or, with `--node URL` and an administrator's `$KILN_TOKEN`, on the node
//! there) and passes the code on; the joiner's `kiln join` fetches the sealed bundle by the
//! code's id, opens it with the code, checks that the node answering at URL signed it,
//! signs the join with the joiner's identity, and remembers the node in
//! `$XDG_CONFIG_HOME/kiln/nodes.json`.

use crate::cli::InviteCommand;
use crate::client::{Http, Local};
use crate::cmd::Repo;
use anyhow::{Context, Result, anyhow, bail};
use kiln_id::invite::{InviteCode, join_message};
use kiln_wire::{InviteBundle, InviteCreated, InviteRequest, JoinRequest, SignedBundle};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

fn remote(repo: &Repo) -> Result<Option<Http>> {
    repo.node_url()
        .map(|url| Http::named(repo.home(), url))
        .transpose()
}

fn when(ms: i64) -> String {
    kiln_node::text::when_secs(ms / 1000)
}

pub fn run(repo: &Repo, cmd: InviteCommand) -> Result<ExitCode> {
    match cmd {
        InviteCommand::Create {
            role,
            namespace,
            expires,
            json,
        } => {
            let ttl = kiln_wire::parse_duration(&expires).map_err(|e| anyhow!("--expires: {e}"))?;
            let made: InviteCreated = match remote(repo)? {
                Some(node) => node.invite_create(&InviteRequest {
                    role,
                    namespace,
                    ttl_secs: ttl.as_secs(),
                })?,
                None => {
                    Local::open(repo.home())?.invite_create(&role, namespace.as_deref(), ttl)?
                }
            };
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer(&mut out, &made)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", made.code)?;
                drop(out);
                eprintln!(
                    "Invite {} grants {} in {} until {}; it works once: kiln join NODE-URL {}",
                    made.id,
                    made.role,
                    kiln_node::users::shown(&made.namespace),
                    when(made.expires_ms),
                    made.code
                );
            }
        }
        InviteCommand::Ls { json } => {
            let list = match remote(repo)? {
                Some(node) => node.invites()?,
                None => Local::open(repo.home())?.invites()?,
            };
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer(&mut out, &kiln_wire::InviteList { invites: list })?;
                writeln!(out)?;
            } else {
                for i in list {
                    writeln!(
                        out,
                        "{} {}@{} {} {}",
                        i.id,
                        i.role,
                        i.namespace,
                        when(i.expires_ms),
                        i.used_by.as_deref().unwrap_or("unused")
                    )?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kiln join URL CODE`.
pub fn join(repo: &Repo, url: &str, code: &str) -> Result<ExitCode> {
    let code = InviteCode::parse(code)?;
    let (key, _) = crate::cmd::identity::existing()?;
    let node = Http::named(repo.home(), url)?;
    let node_did = node.node_did()?;
    let id = code.id();
    let sealed = node
        .invite_sealed(&id)
        .context("the node has no live invite for this code (wrong, used or expired)")?;
    let sealed = kiln_node::invites::unhex(&sealed)
        .ok_or_else(|| anyhow!("the node sent a sealed invite that is not hex"))?;
    let plain = code.open(&sealed)?;
    let signed: SignedBundle =
        serde_json::from_slice(&plain).context("the invite's bundle is not one")?;
    let signature = kiln_node::invites::unhex(&signed.signature)
        .ok_or_else(|| anyhow!("the invite's signature is not hex"))?;
    let bundle: InviteBundle =
        serde_json::from_str(&signed.bundle).context("the invite's bundle is not one")?;
    if bundle.node != node_did
        || !kiln_id::verify(&node_did, signed.bundle.as_bytes(), &signature).unwrap_or(false)
    {
        bail!(
            "the invite was not signed by the node answering at {url} ({node_did}): refusing to join"
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    if now >= bundle.expires_ms {
        bail!("the invite expired at {}", when(bundle.expires_ms));
    }
    let did = key.did();
    let sig = key.sign(&join_message(&node_did, &id, &did));
    let joined = node.invite_join(
        &id,
        &JoinRequest {
            did: did.clone(),
            proof: code.proof(),
            signature: sig.iter().map(|b| format!("{b:02x}")).collect(),
        },
    )?;
    remember(url, &node_did, &joined)?;
    println!(
        "Joined {node_did} at {url} as {did}: {} in {}",
        joined.role,
        kiln_node::users::shown(&joined.namespace)
    );
    eprintln!("kiln token create --node {url} gives you a token for it.");
    Ok(ExitCode::SUCCESS)
}

/// Keep the node joined in the user's `nodes.json` (mode 0600).
fn remember(url: &str, node: &str, joined: &kiln_wire::JoinedView) -> Result<()> {
    let path = crate::cmd::identity::config_dir()?.join("nodes.json");
    let mut nodes: BTreeMap<String, serde_json::Value> = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
        Err(_) => BTreeMap::new(),
    };
    nodes.insert(
        url.trim_end_matches('/').to_string(),
        serde_json::json!({"did": node, "as": joined.did, "role": joined.role, "namespace": joined.namespace}),
    );
    crate::cmd::identity::write_private(&path, &serde_json::to_vec_pretty(&nodes)?)
}
