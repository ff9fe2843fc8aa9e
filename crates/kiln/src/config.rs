//! The daemon's configuration file (TOML); see `kiln daemon --help`.

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// The event journal.
    pub events: EventsConfig,
}

/// The `[events]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How long the journal keeps an event (`90d`, `12h`); older ones are pruned after each
    /// garbage collection and when the daemon starts. Default 90 days.
    pub keep: Option<String>,
}

/// A listener section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listener {
    /// `ADDR:PORT`.
    pub listen: Option<SocketAddr>,
    /// Loopback clients act as the local administrator, without a token (`[api]` only).
    pub open_loopback: Option<bool>,
}

/// The `[limits]` section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, bytes.
    pub max_body_bytes: Option<u64>,
    /// Requests in flight per client IP.
    pub per_ip_concurrency: Option<usize>,
    /// Open connections per listener.
    pub max_connections: Option<usize>,
    /// Largest request head, bytes.
    pub max_header_bytes: Option<usize>,
    /// Seconds a client has to send a request head.
    pub header_timeout_secs: Option<f64>,
    /// Seconds without traffic after which a connection is closed.
    pub idle_timeout_secs: Option<f64>,
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

    /// How long the event journal keeps events.
    pub fn keep_events(&self) -> Result<Duration> {
        match &self.events.keep {
            None => Ok(kiln_node::journal::DEFAULT_RETENTION),
            Some(s) => kiln_wire::parse_duration(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow!(
                        "[events] keep must be a positive duration such as 90d or 12h, not {s:?}"
                    )
                }),
        }
    }

    /// The limits, defaults filled in.
    pub fn limits(&self) -> Result<kiln_api::Limits> {
        let d = kiln_api::Limits::default();
        let l = &self.limits;
        let secs = |v: Option<f64>, name: &str, default: Duration| -> Result<Duration> {
            match v {
                None => Ok(default),
                Some(s) => Duration::try_from_secs_f64(s)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| anyhow!("[limits] {name} must be a positive number of seconds")),
            }
        };
        Ok(kiln_api::Limits {
            max_body_bytes: l.max_body_bytes.unwrap_or(d.max_body_bytes),
            per_ip_concurrency: l.per_ip_concurrency.unwrap_or(d.per_ip_concurrency),
            max_connections: l.max_connections.unwrap_or(d.max_connections),
            max_header_bytes: l.max_header_bytes.unwrap_or(d.max_header_bytes),
            header_timeout: secs(
                l.header_timeout_secs,
                "header_timeout_secs",
                d.header_timeout,
            )?,
            idle_timeout: secs(l.idle_timeout_secs, "idle_timeout_secs", d.idle_timeout)?,
        })
    }
}
