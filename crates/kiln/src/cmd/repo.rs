//! `kiln init`, `kiln gc`, `kiln repo stat`, `kiln repo verify`.

use super::Repo;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

pub fn init(home: &Path) -> Result<ExitCode> {
    let existed = home.join("store.db").exists();
    let local = crate::client::Local::open(home)?;
    if existed {
        println!("kiln repository already initialized at {}", home.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!("initialized kiln repository at {}", home.display());
    // The identity that initialises a node is its first admin.
    if let Some((me, _)) = super::identity::load()? {
        use kiln_node::users::{ALL, Role};
        local.user_add(&me.did(), None, Some((Role::Admin, ALL)))?;
        println!("your identity {} is its first administrator", me.did());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn id(repo: &Repo) -> Result<ExitCode> {
    use base64::Engine;
    let addresses = repo.node()?.addresses()?;
    let key = crate::repo::identity(repo.home())?;
    let public = kiln_id::libp2p_public_key(&key.public_key());
    let doc = serde_json::json!({
        "ID": key.peer_id(),
        "DID": key.did(),
        "PublicKey": base64::engine::general_purpose::STANDARD.encode(public),
        "Addresses": addresses,
        "AgentVersion": format!("kiln/{}", env!("CARGO_PKG_VERSION")),
        "Protocols": [],
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(ExitCode::SUCCESS)
}

/// Human-readable bytes.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn gc(repo: &Repo) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let r = repo.node()?.gc()?;
    println!(
        "removed {} blocks ({}), deleted {} packs, rewrote {} packs, reclaimed {} of disk in {:.2?}",
        r.blocks_removed,
        human(r.bytes_freed),
        r.packs_deleted,
        r.packs_rewritten,
        human(r.disk_bytes_reclaimed),
        started.elapsed()
    );
    if r.build_dirs_removed > 0 {
        println!(
            "removed {} build directories nothing refers to (content written out for builds, git checkouts, fetch caches)",
            r.build_dirs_removed
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn stat(repo: &Repo, raw: bool) -> Result<ExitCode> {
    let s = repo.node()?.stat()?;
    let b = |n: u64| if raw { n.to_string() } else { human(n) };
    println!("NumObjects: {}", s.blocks);
    println!("BlockBytes: {}", b(s.block_bytes));
    println!("RepoSize:   {}", b(s.pack_bytes + s.db_bytes));
    println!("Pins:       {}", s.pins);
    println!("Packs:      {} ({})", s.packs, b(s.pack_bytes));
    println!("RepoPath:   {}", s.repo_path);
    println!("Version:    kiln {}", env!("CARGO_PKG_VERSION"));
    Ok(ExitCode::SUCCESS)
}

pub fn verify(repo: &Repo) -> Result<ExitCode> {
    let r = repo.node()?.verify()?;
    for c in &r.corrupt {
        println!("corrupt: {c}");
    }
    for m in &r.missing {
        println!("missing: {} (needed by pin {})", m.cid, m.pin);
    }
    for c in &r.unsupported {
        println!("unchecked (unsupported hash): {c}");
    }
    println!(
        "verified {} blocks ({}): {} corrupt, {} missing",
        r.blocks_ok + r.corrupt.len() as u64,
        human(r.bytes_checked),
        r.corrupt.len(),
        r.missing.len()
    );
    Ok(if r.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
