//! Finding and opening the repository (`$KILN_HOME`, default `~/.kiln`).

use anyhow::{Context, Result, anyhow};
use kiln_store::{Store, StoreOptions};
use std::path::{Path, PathBuf};

/// The repository directory from `--home`/`$KILN_HOME`, else `~/.kiln`.
pub fn home(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    let base =
        std::env::var_os("HOME").ok_or_else(|| anyhow!("neither KILN_HOME nor HOME is set"))?;
    Ok(PathBuf::from(base).join(".kiln"))
}

/// Open (creating if needed) the store of the repository.
pub fn open(home: &Path) -> Result<Store> {
    std::fs::create_dir_all(home)
        .with_context(|| format!("cannot create repository {}", home.display()))?;
    Store::open(home, StoreOptions::default())
        .with_context(|| format!("cannot open repository {}", home.display()))
}
