//! `kiln token create|ls|revoke|attenuate|inspect`: capability tokens. On the repository
//! (opened here, as its owner: the local administrator) tokens are issued for any user; with
//! `--node URL`, the node there issues them — to the holder of `$KILN_TOKEN` (an
//! administrator), or, without one, to your identity once it has signed the node's
//! challenge. Attenuating and inspecting need no node.

use crate::cli::TokenCommand;
use crate::client::{Http, Local};
use crate::cmd::Repo;
use anyhow::{Context, Result, anyhow, bail};
use kiln_wire::{RoleView, TokenList, TokenMinted, TokenRequest};
use std::io::{Read, Write};
use std::process::ExitCode;

pub fn run(repo: &Repo, cmd: TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Attenuate {
            token,
            only,
            namespace,
            ttl,
        } => {
            let token = read_token(&token)?;
            if let Some(ns) = &namespace {
                kiln_node::users::check_namespace(ns).map_err(|e| anyhow!("{e}"))?;
            }
            let expires = ttl
                .as_deref()
                .map(duration)
                .transpose()?
                .map(|d| kiln_id::token::now() + d.as_secs());
            let narrowed = kiln_id::token::attenuate(
                &token,
                &kiln_id::token::Narrowing {
                    only,
                    namespace,
                    expires,
                },
            )?;
            println!("{narrowed}");
        }
        TokenCommand::Inspect { token } => {
            let token = read_token(&token)?;
            let mut out = std::io::stdout().lock();
            for (i, b) in kiln_id::token::describe(&token)?.iter().enumerate() {
                writeln!(
                    out,
                    "// block {i}{}",
                    if i == 0 { " (issued by the node)" } else { "" }
                )?;
                writeln!(out, "{}", b.trim_end())?;
            }
        }
        TokenCommand::Create {
            did,
            role,
            ttl,
            note,
            json,
        } => {
            let roles = if role.is_empty() {
                None
            } else {
                Some(
                    role.iter()
                        .map(|r| parse_role(r))
                        .collect::<Result<Vec<_>>>()?,
                )
            };
            let ttl = ttl.as_deref().map(duration).transpose()?;
            let m = match remote(repo)? {
                Some(node) if node.has_token() => node.token_create(&TokenRequest {
                    did,
                    roles,
                    ttl_secs: ttl.map(|t| t.as_secs()),
                    note,
                })?,
                Some(node) => {
                    if did.is_some() || roles.is_some() {
                        bail!(
                            "without KILN_TOKEN this signs your own identity in, with the roles it holds; an administrator's token (in KILN_TOKEN) issues tokens for others"
                        );
                    }
                    let (key, _) = crate::cmd::identity::existing()?;
                    node.sign_in(&key, ttl, note)?
                }
                None => {
                    let did = match did {
                        Some(d) => d,
                        None => own_did()?,
                    };
                    let local = Local::open(repo.home())?;
                    let m = local.token_create(kiln_node::tokens::Request {
                        did: Some(did),
                        roles: roles
                            .map(|r| r.into_iter().map(|g| (g.namespace, g.role)).collect()),
                        ttl,
                        note: note.unwrap_or_default(),
                    })?;
                    TokenMinted {
                        token: m.token,
                        id: m.id,
                        expires: m.expires,
                    }
                }
            };
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&m)?)?;
            } else {
                writeln!(out, "{}", m.token)?;
                eprintln!(
                    "token {} expires {} (shown once: keep it secret)",
                    m.id,
                    kiln_node::text::when_secs(m.expires as i64)
                );
            }
        }
        TokenCommand::Ls { did, json } => {
            let tokens = match remote(repo)? {
                Some(node) => node.tokens(did.as_deref())?,
                None => Local::open(repo.home())?.tokens(did.as_deref())?,
            };
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&TokenList { tokens })?)?;
            } else {
                let now = kiln_id::token::now() as i64;
                for t in &tokens {
                    let state = match (t.revoked_ms, t.expires < now) {
                        (Some(_), _) => "revoked".to_string(),
                        (None, true) => "expired".to_string(),
                        (None, false) => {
                            format!("until {}", kiln_node::text::when_secs(t.expires))
                        }
                    };
                    writeln!(out, "{} {} {state} {}", t.id, t.did, t.note)?;
                }
            }
        }
        TokenCommand::Revoke { token } => {
            let token = read_token(&token)?;
            let id = match remote(repo)? {
                Some(node) => node.token_revoke(&token)?,
                None => Local::open(repo.home())?.token_revoke(&token)?,
            };
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The node named by `--node`, if one is: token commands without it work on the
/// repository itself (whether or not a node runs on it; it reads the same tables).
fn remote(repo: &Repo) -> Result<Option<Http>> {
    repo.node_url()
        .map(|url| Http::named(repo.home(), url))
        .transpose()
}

fn own_did() -> Result<String> {
    Ok(crate::cmd::identity::existing()
        .context("say whose token with --for DID, or make your identity")?
        .0
        .did())
}

/// `ROLE` or `ROLE@NAMESPACE`.
fn parse_role(s: &str) -> Result<RoleView> {
    let (role, ns) = s.split_once('@').unwrap_or((s, kiln_node::users::ALL));
    kiln_node::users::Role::parse(role).map_err(|e| anyhow!("{e}"))?;
    kiln_node::users::check_namespace(ns).map_err(|e| anyhow!("{e}"))?;
    Ok(RoleView {
        namespace: ns.to_string(),
        role: role.to_string(),
    })
}

fn duration(s: &str) -> Result<std::time::Duration> {
    kiln_wire::parse_duration(s).map_err(|e| anyhow!("{e}"))
}

/// A token given as an argument, or `-` for standard input (so it stays out of the shell's
/// history and the process list).
fn read_token(arg: &str) -> Result<String> {
    if arg != "-" {
        return Ok(arg.trim().to_string());
    }
    let mut s = String::new();
    std::io::stdin()
        .take(kiln_id::token::MAX_LEN as u64 + 1)
        .read_to_string(&mut s)
        .context("reading the token from standard input")?;
    Ok(s.trim().to_string())
}
