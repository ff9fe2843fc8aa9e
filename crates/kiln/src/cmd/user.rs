//! `kiln user add|rm|ls|grant|revoke|quota`: the identities this node knows and their roles per
//! namespace. Managing users is the repository owner's work: these commands open the
//! repository here ([`crate::client::Local`]), whether or not a daemon runs on it (the
//! daemon reads the same registry).

use crate::cli::UserCommand;
use crate::client::Local;
use crate::cmd::Repo;
use anyhow::Result;
use kiln_node::quotas::{Usage, limit_text};
use kiln_node::users::{ALL, Role, shown};
use kiln_store::quotas::Limit;
use std::io::Write;
use std::process::ExitCode;

pub fn run(repo: &Repo, cmd: UserCommand) -> Result<ExitCode> {
    let local = Local::open(repo.home())?;
    match cmd {
        UserCommand::Ls { json } => {
            let users = local.users()?;
            let mut out = std::io::stdout().lock();
            if json {
                let v: Vec<_> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "did": u.did,
                            "name": u.name,
                            "added_ms": u.added_ms,
                            "added_by": u.added_by,
                            "roles": u.grants.iter().map(|(ns, r)| serde_json::json!({"namespace": ns, "role": r})).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(v))?;
            } else {
                for u in &users {
                    let roles = if u.grants.is_empty() {
                        "no role".to_string()
                    } else {
                        u.grants
                            .iter()
                            .map(|(ns, r)| format!("{r}@{ns}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    match &u.name {
                        Some(n) => writeln!(out, "{} {roles} {n}", u.did)?,
                        None => writeln!(out, "{} {roles}", u.did)?,
                    }
                }
            }
        }
        UserCommand::Add {
            did,
            name,
            role,
            namespace,
        } => {
            let role = role.as_deref().map(Role::parse).transpose()?;
            let ns = namespace.as_deref().unwrap_or(ALL);
            let u = local.user_add(&did, name.as_deref(), role.map(|r| (r, ns)))?;
            match role {
                Some(r) => println!("added {} as {r} in {}", u.did, shown(ns)),
                None => println!("added {} (no role yet: kiln user grant)", u.did),
            }
        }
        UserCommand::Rm { did } => {
            local.user_rm(&did)?;
            println!("removed {did}");
        }
        UserCommand::Grant {
            did,
            role,
            namespace,
        } => {
            let role = Role::parse(&role)?;
            let ns = namespace.as_deref().unwrap_or(ALL);
            match local.user_grant(&did, role, ns)? {
                Some(old) if old != role.as_str() => {
                    println!("{did} is now {role} in {} (was {old})", shown(ns))
                }
                _ => println!("{did} is {role} in {}", shown(ns)),
            }
        }
        UserCommand::Revoke { did, namespace } => {
            let ns = namespace.as_deref().unwrap_or(ALL);
            let old = local.user_revoke(&did, ns)?;
            println!("{did} is no longer {old} in {}", shown(ns));
        }
        UserCommand::Quota {
            did,
            pinned_bytes,
            builds,
            json,
        } => {
            if pinned_bytes.is_some() || builds.is_some() {
                let mut q = local.quota(&did)?.set;
                if let Some(p) = pinned_bytes {
                    q.pinned_bytes = limit(&p, kiln_wire::parse_size)?;
                }
                if let Some(b) = builds {
                    q.builds = limit(&b, |s| {
                        s.parse::<u64>()
                            .map_err(|_| format!("bad number of builds {s:?}"))
                    })?;
                }
                local.quota_set(&did, q)?;
            }
            let u = local.quota(&did)?;
            print_quota(&u, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `none`, `default`, or a value `parse` reads.
fn limit(s: &str, parse: impl Fn(&str) -> Result<u64, String>) -> Result<Limit> {
    Ok(match s {
        "none" => Limit::Unlimited,
        "default" => Limit::Inherit,
        v => Limit::Max(parse(v).map_err(anyhow::Error::msg)?),
    })
}

fn print_quota(u: &Usage, json: bool) -> Result<()> {
    let max = |l: Limit| match l {
        Limit::Max(n) => serde_json::json!(n),
        Limit::Unlimited | Limit::Inherit => serde_json::Value::Null,
    };
    if json {
        let v = serde_json::json!({
            "did": u.did,
            "pinned_bytes": {"max": max(u.effective.pinned_bytes), "used": u.pinned_bytes,
                "set": limit_text(u.set.pinned_bytes, true)},
            "builds": {"max": max(u.effective.builds), "set": limit_text(u.set.builds, false)},
        });
        println!("{v}");
        return Ok(());
    }
    let follows = |l: Limit| {
        if l == Limit::Inherit {
            " (the default)"
        } else {
            ""
        }
    };
    // What applies: a limit the default leaves unset too is none.
    let applies = |l: Limit| {
        if l == Limit::Inherit {
            Limit::Unlimited
        } else {
            l
        }
    };
    let mut pinned = limit_text(applies(u.effective.pinned_bytes), true);
    if let Some(used) = u.pinned_bytes {
        pinned = format!("{} used of {pinned}", kiln_wire::human_bytes(used));
    }
    println!("{}", u.did);
    println!("  pinned bytes  {pinned}{}", follows(u.set.pinned_bytes));
    println!(
        "  builds        {} at once{}",
        limit_text(applies(u.effective.builds), false),
        follows(u.set.builds)
    );
    Ok(())
}
