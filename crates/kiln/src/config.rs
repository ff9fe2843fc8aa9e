//! The daemon's configuration file (TOML); see `kiln daemon --help`.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `config.toml`. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The RPC API listener.
    pub api: Listener,
    /// The gateway listener.
    pub gateway: Listener,
    /// Request limits.
    pub limits: LimitsConfig,
}

/// A listener section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listener {
    /// `ADDR:PORT`.
    pub listen: Option<SocketAddr>,
}

/// The `[limits]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, bytes.
    pub max_body_bytes: Option<u64>,
    /// Requests in flight per client IP.
    pub per_ip_concurrency: Option<usize>,
}

impl Config {
    /// Load `explicit`, else `home/config.toml` if it exists, else defaults.
    pub fn load(explicit: Option<&Path>, home: &Path) -> Result<(Config, Option<PathBuf>)> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = home.join("config.toml");
                if !p.exists() {
                    return Ok((Config::default(), None));
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let cfg: Config = toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        Ok((cfg, Some(path)))
    }

    /// The limits, defaults filled in.
    pub fn limits(&self) -> kiln_api::Limits {
        let d = kiln_api::Limits::default();
        kiln_api::Limits {
            max_body_bytes: self.limits.max_body_bytes.unwrap_or(d.max_body_bytes),
            per_ip_concurrency: self
                .limits
                .per_ip_concurrency
                .unwrap_or(d.per_ip_concurrency),
        }
    }
}
