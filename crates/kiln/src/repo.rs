//! Finding and opening the repository (`$KILN_HOME`, default `~/.kiln`).

use anyhow::{Context, Result, anyhow};
use kiln_store::{Store, StoreOptions};
use std::path::{Path, PathBuf};

/// File holding the node's ed25519 key (mode 0600).
pub const IDENTITY_FILE: &str = "identity.key";

/// The repository directory from `--home`/`$KILN_HOME`, else `~/.kiln`.
pub fn home(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    let base =
        std::env::var_os("HOME").ok_or_else(|| anyhow!("neither KILN_HOME nor HOME is set"))?;
    Ok(PathBuf::from(base).join(".kiln"))
}

/// Open (creating if needed) the store of the repository; a new repository also gets
/// the node's identity key.
pub fn open(home: &Path) -> Result<Store> {
    std::fs::create_dir_all(home)
        .with_context(|| format!("cannot create repository {}", home.display()))?;
    let store = Store::open(home, StoreOptions::default())
        .with_context(|| format!("cannot open repository {}", home.display()))?;
    let m = store.migrated();
    if m.from > 0 && m.from != m.to {
        eprintln!(
            "Migrated repository {} from schema version {} to {} (written by an earlier kiln)",
            home.display(),
            m.from,
            m.to
        );
    }
    if !home.join(IDENTITY_FILE).exists() {
        identity(home)?;
    }
    Ok(store)
}

/// The node's key, created with the repository.
pub fn identity(home: &Path) -> Result<kiln_id::NodeKey> {
    let (key, _) = kiln_id::NodeKey::load_or_create(&home.join(IDENTITY_FILE))
        .with_context(|| format!("node identity in {}", home.display()))?;
    Ok(key)
}
